//! Task `volumes`: names, the one-configuration-per-volume rule, and the shape of each volume
//! type. A volume with no configuration is a Docker-managed host volume, which ECS reports as
//! `"host": {}`.

use serde_json::{Map, Value, json};

use crate::cluster::is_resource_name;
use crate::error::ValidationError;
use crate::json::{Obj, strip_nulls};

const CONFIGURATIONS: &[&str] = &[
    "host",
    "dockerVolumeConfiguration",
    "efsVolumeConfiguration",
    "s3filesVolumeConfiguration",
    "fsxWindowsFileServerVolumeConfiguration",
];

/// Validated volumes and what the rest of the task definition needs from them.
#[derive(Debug, Default)]
pub(crate) struct Volumes {
    pub(crate) normalized: Vec<Value>,
    pub(crate) names: Vec<String>,
    pub(crate) fargate_blockers: Vec<String>,
    /// Docker volume drivers used (`local` when unspecified).
    pub(crate) docker_drivers: Vec<String>,
    pub(crate) uses_efs: bool,
    pub(crate) uses_efs_authorization: bool,
}

pub(crate) fn validate_volumes(request: &Obj<'_>) -> Result<Volumes, ValidationError> {
    let mut volumes = Volumes::default();
    let mut configured_at_launch = 0;
    for volume in request.objs("volumes")? {
        let name = volume.str("name")?.unwrap_or_default();
        if name.is_empty() {
            return Err(ValidationError::client(
                "Volume.name should not be null or empty.",
            ));
        }
        if !is_resource_name(name) {
            return Err(ValidationError::client(
                "Volume.name contains invalid characters.",
            ));
        }
        if volumes.names.iter().any(|n| n == name) {
            return Err(ValidationError::client(
                "Volume names must be unique within a Task Definition.",
            ));
        }
        let at_launch = volume.bool("configuredAtLaunch")?.unwrap_or(false);
        let configured: Vec<&str> = CONFIGURATIONS
            .iter()
            .copied()
            .filter(|key| volume.get(key).is_some())
            .collect();
        if configured.len() + usize::from(at_launch) > 1 {
            return Err(ValidationError::client(format!(
                "Volume '{name}' may only specify one of host, dockerVolumeConfiguration, \
                 efsVolumeConfiguration, s3filesVolumeConfiguration, \
                 fsxWindowsFileServerVolumeConfiguration or configuredAtLaunch."
            )));
        }
        if at_launch {
            configured_at_launch += 1;
            if configured_at_launch > 1 {
                return Err(ValidationError::client(
                    "Each task definition revision may only have one volume configured at launch.",
                ));
            }
        }
        check_configuration(&volume, name, &mut volumes)?;

        let mut out = Map::new();
        out.insert("name".into(), name.into());
        if let Some(flag) = volume.get("configuredAtLaunch") {
            out.insert("configuredAtLaunch".into(), flag.clone());
        }
        for key in &configured {
            if let Some(config) = volume.get(key) {
                out.insert((*key).to_string(), strip_nulls(config));
            }
        }
        if configured.is_empty() && !at_launch {
            out.insert("host".into(), json!({}));
        }
        volumes.names.push(name.to_string());
        volumes.normalized.push(Value::Object(out));
    }
    Ok(volumes)
}

fn check_configuration(
    volume: &Obj<'_>,
    name: &str,
    volumes: &mut Volumes,
) -> Result<(), ValidationError> {
    let required = |config: &Obj<'_>, key: &str| -> Result<(), ValidationError> {
        if config.str(key)?.unwrap_or_default().is_empty() {
            return Err(ValidationError::client(format!(
                "Volume '{name}' is missing the required {}.",
                config.path(key)
            )));
        }
        Ok(())
    };
    if let Some(host) = volume.obj("host")?
        && host.str("sourcePath")?.is_some()
    {
        volumes
            .fargate_blockers
            .push("Fargate compatible task definitions do not support sourcePath".into());
    }
    if let Some(docker) = volume.obj("dockerVolumeConfiguration")? {
        let scope = docker.str("scope")?;
        if let Some(scope) = scope
            && !matches!(scope, "task" | "shared")
        {
            return Err(ValidationError::enum_value(
                &docker.path("scope"),
                scope,
                &["task", "shared"],
            ));
        }
        if docker.bool("autoprovision")? == Some(true) && scope != Some("shared") {
            return Err(ValidationError::client(format!(
                "Volume '{name}': autoprovision is only supported when scope is shared."
            )));
        }
        let driver = docker.str("driver")?.unwrap_or("local");
        docker.str_map("driverOpts")?;
        docker.str_map("labels")?;
        volumes.docker_drivers.push(driver.to_string());
        volumes.fargate_blockers.push(
            "Fargate compatible task definitions do not support dockerVolumeConfiguration".into(),
        );
    }
    if let Some(efs) = volume.obj("efsVolumeConfiguration")? {
        required(&efs, "fileSystemId")?;
        let root = efs.str("rootDirectory")?;
        let encryption = efs.str("transitEncryption")?;
        if let Some(encryption) = encryption
            && !matches!(encryption, "ENABLED" | "DISABLED")
        {
            return Err(ValidationError::enum_value(
                &efs.path("transitEncryption"),
                encryption,
                &["ENABLED", "DISABLED"],
            ));
        }
        if let Some(port) = efs.int("transitEncryptionPort")?
            && !(0..=65535).contains(&port)
        {
            return Err(ValidationError::client(format!(
                "Volume '{name}': transitEncryptionPort must be between 0 and 65535."
            )));
        }
        volumes.uses_efs = true;
        if let Some(auth) = efs.obj("authorizationConfig")? {
            volumes.uses_efs_authorization = true;
            let access_point = auth.str("accessPointId")?;
            let iam = auth.str("iam")?;
            if let Some(iam) = iam
                && !matches!(iam, "ENABLED" | "DISABLED")
            {
                return Err(ValidationError::enum_value(
                    &auth.path("iam"),
                    iam,
                    &["ENABLED", "DISABLED"],
                ));
            }
            let needs_encryption = access_point.is_some() || iam == Some("ENABLED");
            if needs_encryption && encryption != Some("ENABLED") {
                return Err(ValidationError::client(format!(
                    "Volume '{name}': transit encryption must be enabled when an EFS access \
                     point or EFS IAM authorization is used."
                )));
            }
            if access_point.is_some() && root.is_some_and(|r| r != "/") {
                return Err(ValidationError::client(format!(
                    "Volume '{name}': the root directory must be omitted or set to / when an EFS \
                     access point is used."
                )));
            }
        }
    }
    if let Some(s3files) = volume.obj("s3filesVolumeConfiguration")? {
        required(&s3files, "fileSystemArn")?;
        s3files.str("rootDirectory")?;
        s3files.str("accessPointArn")?;
        s3files.int("transitEncryptionPort")?;
    }
    if let Some(fsx) = volume.obj("fsxWindowsFileServerVolumeConfiguration")? {
        required(&fsx, "fileSystemId")?;
        required(&fsx, "rootDirectory")?;
        let Some(auth) = fsx.obj("authorizationConfig")? else {
            return Err(ValidationError::client(format!(
                "Volume '{name}' is missing the required {}.",
                fsx.path("authorizationConfig")
            )));
        };
        required(&auth, "credentialsParameter")?;
        required(&auth, "domain")?;
    }
    Ok(())
}
