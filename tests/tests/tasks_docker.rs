//! Tasks as Docker containers, on the local engine, with a locally built image
//! (nothing can be pulled here: see berth-agent's `testing::ensure_busybox_image`).

use std::time::Duration;

use aws_sdk_ecs::types::{ContainerDefinition, PortMapping, TaskStopCode, TransportProtocol};
use berth_agent::runtime::testing::{
    BUSYBOX_IMAGE, docker_client, ensure_busybox_image, free_port,
};
use berth_e2e::{Berth, DriverChoice, wait_for_instances, wait_for_tasks};

#[tokio::test]
async fn a_task_runs_as_docker_containers_with_port_bindings() {
    let docker = docker_client()
        .await
        .expect("a Docker engine on /var/run/docker.sock");
    ensure_busybox_image(&docker)
        .await
        .expect("build the busybox test image");
    let berth = Berth::start_with(None, Some(DriverChoice::docker())).await;
    let ecs = berth.ecs();
    wait_for_instances(&ecs, "default", 1).await;

    let static_port = i32::from(free_port());
    let container = |name: &str, host_port: i32, script: &str| {
        ContainerDefinition::builder()
            .name(name)
            .image(BUSYBOX_IMAGE)
            .memory(32)
            // busybox sh as PID 1 ignores SIGTERM: do not wait the default 30 s.
            .stop_timeout(2)
            .entry_point("/bin/busybox")
            .entry_point("sh")
            .entry_point("-c")
            .command(script)
            .port_mappings(
                PortMapping::builder()
                    .container_port(80)
                    .host_port(host_port)
                    .protocol(TransportProtocol::Tcp)
                    .build(),
            )
            .build()
    };
    ecs.register_task_definition()
        .family("docker-web")
        .container_definitions(container("web", 0, "echo up; sleep 600"))
        .container_definitions(container("static", static_port, "sleep 600"))
        .send()
        .await
        .unwrap();
    let run = ecs
        .run_task()
        .task_definition("docker-web")
        .send()
        .await
        .unwrap();
    assert!(run.failures().is_empty(), "{:?}", run.failures());
    let arns = vec![run.tasks()[0].task_arn().unwrap().to_owned()];
    let running = wait_for_tasks(&ecs, "default", &arns, Duration::from_secs(60), |t| {
        t.last_status() == Some("RUNNING")
    })
    .await;
    let binding = |name: &str| {
        running[0]
            .containers()
            .iter()
            .find(|c| c.name() == Some(name))
            .and_then(|c| c.network_bindings().first().cloned())
            .unwrap_or_else(|| panic!("no binding for {name}: {running:#?}"))
    };
    assert!(
        binding("web").host_port().unwrap() >= 49_153,
        "a dynamic port from the ephemeral range"
    );
    assert_eq!(binding("static").host_port(), Some(static_port));
    // Docker publishes a port once per address family (0.0.0.0 and, with IPv6, ::): each
    // binding shows the address it is on, as ECS shows them, never twice the same one.
    for container in running[0].containers() {
        let mut addresses: Vec<_> = container
            .network_bindings()
            .iter()
            .map(|b| b.bind_ip().unwrap_or_default())
            .collect();
        assert!(addresses.contains(&"0.0.0.0"), "{container:#?}");
        addresses.sort();
        addresses.dedup();
        assert_eq!(
            addresses.len(),
            container.network_bindings().len(),
            "{container:#?}"
        );
    }
    assert!(
        running[0]
            .containers()
            .iter()
            .all(|c| c.runtime_id().is_some())
    );

    ecs.stop_task().task(&arns[0]).send().await.unwrap();
    let stopped = wait_for_tasks(&ecs, "default", &arns, Duration::from_secs(60), |t| {
        t.last_status() == Some("STOPPED")
    })
    .await;
    assert_eq!(stopped[0].stop_code(), Some(&TaskStopCode::UserInitiated));
    berth.stop().await;
}
