//! A simulated fleet against a gateway played by the test: each agent is a real WebSocket client
//! with its own identity, and the simulated driver answers payloads like a very fast host.

mod fake_gateway;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use berth_agent::resources::{
    AVAILABILITY_ZONE_ATTRIBUTE, EC2_INSTANCE_ID_ATTRIBUTE, SIMULATED_ATTRIBUTE,
};
use berth_agent::{FleetConfig, Timing, run_fleet};
use berth_agent_protocol::{
    Ack, AgentFrame, ContainerSpec, DesiredStatus, GatewayFrame, NetworkMode, PayloadMessage,
    PortMapping, TaskPayload, TaskStatus, TransportProtocol,
};
use fake_gateway::{FakeGateway, WAIT};
use tokio::sync::oneshot;

fn web_task(arn: &str, desired: DesiredStatus) -> TaskPayload {
    let mut web = ContainerSpec::new("web", "nginx:latest");
    web.port_mappings = vec![PortMapping {
        container_port: 80,
        host_port: 32768,
        protocol: TransportProtocol::Tcp,
    }];
    TaskPayload {
        arn: arn.to_string(),
        family: "web".to_string(),
        revision: 1,
        desired_status: desired,
        network_mode: NetworkMode::Bridge,
        containers: vec![web],
        stop_reason: None,
    }
}

async fn expect_ack(session: &mut fake_gateway::FakeSession, id: &str) {
    assert_eq!(
        session.recv().await,
        AgentFrame::Ack(Ack {
            message_id: id.to_string()
        })
    );
}

#[tokio::test]
async fn a_simulated_fleet_registers_distinct_hosts_and_runs_tasks() {
    let mut gateway = FakeGateway::start().await;
    let mut fleet = FleetConfig::new(3, "bench", gateway.url.clone(), "s3cret");
    fleet.zones = vec!["a".to_string(), "b".to_string()];
    fleet.spawn_interval = Duration::from_millis(1);
    fleet.timing = Timing {
        idle_timeout: Duration::from_secs(5),
        backoff_initial: Duration::from_millis(100),
        ..Timing::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(run_fleet(fleet, async move {
        let _ = stopped.await;
    }));

    let mut sessions = Vec::new();
    let mut host_ids = HashSet::new();
    let mut zones: BTreeMap<String, usize> = BTreeMap::new();
    for n in 0..3 {
        let mut session = gateway.next_session().await;
        let register = session.register(&format!("inst-{n}")).await;
        assert_eq!(register.instance_id, None);
        assert_eq!(register.cluster, "bench");
        assert_eq!(register.resources.cpu_units, 4096);
        assert_eq!(register.resources.memory_mib, 16384);
        let attr = |name: &str| register.attributes.get(name).cloned();
        assert_eq!(attr(SIMULATED_ATTRIBUTE).as_deref(), Some("true"));
        host_ids.insert(attr(EC2_INSTANCE_ID_ATTRIBUTE).expect("host id"));
        *zones
            .entry(attr(AVAILABILITY_ZONE_ATTRIBUTE).expect("zone"))
            .or_default() += 1;
        let (resent, report) = session.reconciliation().await;
        assert!(resent.is_empty() && report.running.is_empty());
        sessions.push(session);
    }
    assert_eq!(host_ids.len(), 3, "host ids must differ: {host_ids:?}");
    assert_eq!(
        zones,
        BTreeMap::from([("a".to_string(), 2), ("b".to_string(), 1)])
    );

    let session = &mut sessions[1];
    let arn = "arn:aws:ecs:us-east-1:000000000000:task/bench/sim1";
    session
        .send(GatewayFrame::PayloadMessage(PayloadMessage {
            message_id: "m-1".to_string(),
            tasks: vec![web_task(arn, DesiredStatus::Running)],
        }))
        .await;
    expect_ack(session, "m-1").await;
    // The simulated task starts at once: PENDING and RUNNING reach the agent's outbox
    // together, and only the latest (the whole task, RUNNING) is reported.
    let AgentFrame::TaskStateChange(running_report) = session.recv().await else {
        panic!("expected RUNNING");
    };
    assert_eq!(
        (running_report.task.status, running_report.seq),
        (TaskStatus::Running, 1)
    );
    let binding = &running_report.task.containers[0].network_bindings[0];
    assert_eq!((binding.container_port, binding.host_port), (80, 32768));

    session
        .send(GatewayFrame::PayloadMessage(PayloadMessage {
            message_id: "m-2".to_string(),
            tasks: vec![web_task(arn, DesiredStatus::Stopped)],
        }))
        .await;
    expect_ack(session, "m-2").await;
    let AgentFrame::TaskStateChange(stopped_report) = session.recv().await else {
        panic!("expected STOPPED");
    };
    assert_eq!(stopped_report.task.status, TaskStatus::Stopped);
    assert_eq!(stopped_report.task.containers[0].exit_code, Some(0));

    let _ = stop.send(());
    let summary = tokio::time::timeout(WAIT, running)
        .await
        .expect("the fleet did not stop")
        .expect("the fleet panicked")
        .expect("the fleet failed");
    assert_eq!(summary.agents, 3);
    assert_eq!(summary.failed, 0);
    assert!(summary.all_registered_after.is_some());
    assert_eq!(summary.stats.registrations, 3);
    assert_eq!(summary.stats.payloads, 2);
    assert_eq!(summary.stats.reports_sent, 2, "RUNNING and STOPPED");
}

#[tokio::test]
async fn a_fleet_whose_every_agent_is_refused_fails() {
    let mut gateway = FakeGateway::start().await;
    let fleet = FleetConfig::new(2, "bench", gateway.url.clone(), "wrong");
    let running = tokio::spawn(run_fleet(fleet, std::future::pending()));
    for _ in 0..2 {
        let mut session = gateway.next_session().await;
        assert!(matches!(
            session.recv().await,
            AgentFrame::RegisterInstance(_)
        ));
        session
            .send(GatewayFrame::RegistrationRefused(
                berth_agent_protocol::RegistrationRefused {
                    reason: "invalid token".to_string(),
                },
            ))
            .await;
    }
    let result = tokio::time::timeout(WAIT, running)
        .await
        .expect("the fleet kept running")
        .expect("the fleet panicked");
    assert!(
        matches!(
            result,
            Err(berth_agent::AgentError::RegistrationRefused { .. })
        ),
        "{result:?}"
    );
}

/// A thousand agents from the `simulate` binary against one gateway: all register, and the agent
/// process stays small. Ignored by default (it opens 2,000 sockets and takes a few seconds); run
/// with `cargo test -p berth-agent --test simulate -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "opens 2,000 sockets; run explicitly"]
async fn a_thousand_simulated_agents_register_and_stay_small() {
    const COUNT: usize = 1000;
    let mut gateway = FakeGateway::start().await;
    let registered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth-agent"))
        .args([
            "simulate",
            "--count",
            &COUNT.to_string(),
            "--cluster",
            "bench",
        ])
        .args([
            "--gateway",
            &gateway.url,
            "--token",
            "t",
            "--zones",
            "a,b,c",
        ])
        .args(["--spawn-interval-ms", "1"])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("spawn berth-agent simulate");
    let started = std::time::Instant::now();
    for n in 0..COUNT {
        let mut session = gateway.next_session().await;
        let registered = std::sync::Arc::clone(&registered);
        tokio::spawn(async move {
            session.register(&format!("inst-{n}")).await;
            registered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Keep the session open (and the agent registered) until the test ends.
            while !matches!(session.next_within(WAIT).await, fake_gateway::Next::Closed) {}
        });
    }
    while registered.load(std::sync::atomic::Ordering::Relaxed) < COUNT {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "registration too slow"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = child.id().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS");
    eprintln!(
        "{COUNT} agents registered in {} ms; agent process RSS {} MiB ({} KiB per agent)",
        elapsed.as_millis(),
        rss_kib / 1024,
        rss_kib / COUNT as u64
    );
    assert!(rss_kib < 200 * 1024, "{rss_kib} KiB for {COUNT} agents");
    child.kill().await.expect("kill");
}
