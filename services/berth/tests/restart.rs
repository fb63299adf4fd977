//! `berth up` as users run it: the real binary, SIGKILLed and restarted on the same
//! data dir, and restarted with its read models deleted.

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{ContainerDefinition, Tag};
use berth_testkit::aws::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, ecs_client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

struct BerthProcess {
    child: Child,
    port: u16,
}

impl BerthProcess {
    async fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--api-addr", &format!("127.0.0.1:{port}")])
            // Its own agent gateway port, and a local agent running plain processes.
            .args([
                "--agent-gateway-addr",
                "127.0.0.1:0",
                "--agent-driver",
                "process",
            ])
            .args(extra)
            .env("BERTH_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("BERTH_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start berth up");
        let process = Self { child, port };
        process.wait_healthy().await;
        process
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn ecs(&self) -> aws_sdk_ecs::Client {
        ecs_client(&self.endpoint(), ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    }

    /// Polls `GET /health` until it answers 200.
    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if health_status(self.port).await == Some(200) {
                return;
            }
            assert!(Instant::now() < deadline, "berth up never became healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn sigkill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    async fn sigterm(mut self) {
        let pid = self.child.id().unwrap() as i32;
        // SIGTERM through kill(1): the workspace forbids unsafe code, libc::kill included.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exited = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
        assert!(exited.is_ok(), "berth up did not stop on SIGTERM");
    }
}

async fn health_status(port: u16) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

fn container(image: &str) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name("app")
        .image(image)
        .memory(64)
        .build()
}

async fn all_cluster_arns(ecs: &aws_sdk_ecs::Client) -> Vec<String> {
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        let page = ecs
            .list_clusters()
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        arns.extend(page.cluster_arns().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return arns;
        }
    }
}

#[tokio::test]
async fn sigkill_at_any_moment_loses_no_acknowledged_write() {
    let data_dir = tempfile::tempdir().unwrap();
    let berth = BerthProcess::start(data_dir.path(), &[]).await;
    let ecs = berth.ecs();

    // A writer that keeps creating; everything it saw acknowledged must survive.
    let writer = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for i in 0.. {
            let name = format!("c{i:04}");
            match ecs.create_cluster().cluster_name(&name).send().await {
                Ok(_) => acknowledged.push(name),
                Err(_) => break,
            }
            if ecs
                .register_task_definition()
                .family("survivor")
                .container_definitions(container(&format!("img:{i}")))
                .send()
                .await
                .is_err()
            {
                break;
            }
        }
        acknowledged
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    berth.sigkill().await;
    let acknowledged = writer.await.unwrap();
    assert!(
        acknowledged.len() > 5,
        "the writer barely ran: {}",
        acknowledged.len()
    );

    let berth = BerthProcess::start(data_dir.path(), &[]).await;
    let listed = all_cluster_arns(&berth.ecs()).await;
    for name in &acknowledged {
        assert!(
            listed.iter().any(|arn| arn.ends_with(&format!("/{name}"))),
            "acknowledged cluster {name} lost after SIGKILL"
        );
    }
    // Revisions kept counting from where they were.
    let latest = berth
        .ecs()
        .describe_task_definition()
        .task_definition("survivor")
        .send()
        .await
        .unwrap();
    assert!(latest.task_definition().unwrap().revision() as usize >= acknowledged.len() - 1);
    berth.sigterm().await;
}

/// Everything a user can read back, for comparing two runs.
async fn snapshot(ecs: &aws_sdk_ecs::Client) -> String {
    let clusters = all_cluster_arns(ecs).await;
    let described = ecs
        .describe_clusters()
        .set_clusters(Some(vec!["a".into(), "b".into(), "gone".into()]))
        .include(aws_sdk_ecs::types::ClusterField::Tags)
        .include(aws_sdk_ecs::types::ClusterField::Settings)
        .send()
        .await
        .unwrap();
    let definitions = ecs
        .list_task_definitions()
        .send()
        .await
        .unwrap()
        .task_definition_arns()
        .to_vec();
    let inactive = ecs
        .list_task_definitions()
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Inactive)
        .send()
        .await
        .unwrap()
        .task_definition_arns()
        .to_vec();
    let web = ecs
        .describe_task_definition()
        .task_definition("web:2")
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    format!(
        "{clusters:?}\n{:?}\n{:?}\n{definitions:?}\n{inactive:?}\n{:?}\n{:?}",
        described.clusters(),
        described.failures(),
        web.task_definition(),
        web.tags()
    )
}

#[tokio::test]
async fn deleted_read_models_are_rebuilt_from_the_log() {
    let data_dir = tempfile::tempdir().unwrap();
    let berth = BerthProcess::start(data_dir.path(), &[]).await;
    let ecs = berth.ecs();
    for name in ["a", "b", "gone"] {
        ecs.create_cluster()
            .cluster_name(name)
            .tags(Tag::builder().key("k").value(name).build())
            .send()
            .await
            .unwrap();
    }
    ecs.delete_cluster().cluster("gone").send().await.unwrap();
    for image in ["one", "two", "three"] {
        ecs.register_task_definition()
            .family("web")
            .container_definitions(container(image))
            .send()
            .await
            .unwrap();
    }
    ecs.deregister_task_definition()
        .task_definition("web:1")
        .send()
        .await
        .unwrap();
    ecs.tag_resource()
        .resource_arn("arn:aws:ecs:eu-west-1:000000000000:task-definition/web:2")
        .tags(Tag::builder().key("pinned").value("yes").build())
        .send()
        .await
        .unwrap();
    let before = snapshot(&ecs).await;
    berth.sigterm().await;

    let mut removed = 0;
    for entry in std::fs::read_dir(data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|e| e == "db" || e == "db-wal" || e == "db-shm")
        {
            std::fs::remove_file(&path).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 0, "no read model file was found to delete");
    let berth = BerthProcess::start(data_dir.path(), &[]).await;
    assert_eq!(snapshot(&berth.ecs()).await, before);
    berth.sigterm().await;

    // --rebuild replays the log over an existing read model and agrees too.
    let berth = BerthProcess::start(data_dir.path(), &["--rebuild"]).await;
    assert_eq!(snapshot(&berth.ecs()).await, before);
    berth.sigterm().await;
}
