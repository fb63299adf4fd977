//! ECS API latency over loopback: the AWS SDK for Rust against an in-process control
//! plane (SQLite read model, private nats-server). Prints p50/p99 of CreateCluster
//! (a write: SigV4, validation, conditional append, read-your-writes wait) and of
//! DescribeClusters (a read).
//!
//! `cargo bench -p berth --bench api_latency`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use berth::{ControlPlane, ControlPlaneConfig};
use berth_aws_protocol::sigv4::KeyStore;
use berth_testkit::aws::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, ecs_client};

// The allocator the service binaries use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REQUESTS: usize = 2_000;

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "{name:<18} n={:<6} p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        samples.len(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let data_dir = tempfile::tempdir().unwrap();
    let local_agent = None;
    let config = ControlPlaneConfig {
        data_dir: data_dir.path().to_owned(),
        nats_url: None,
        nats_server_bin: None,
        api_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        read_model_url: None,
        rebuild: false,
        account_id: "000000000000".into(),
        body_limit: 1024 * 1024,
        agent_gateway_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        agent_token: "bench".to_owned(),
        agent_heartbeat_timeout: std::time::Duration::from_secs(2),
        local_agent,
    };
    let control_plane = ControlPlane::start(
        config,
        KeyStore::new().with_key(ACCESS_KEY_ID, SECRET_ACCESS_KEY),
    )
    .await
    .unwrap();
    let ecs = ecs_client(&control_plane.endpoint(), ACCESS_KEY_ID, SECRET_ACCESS_KEY);

    // Warm up connections and caches.
    for i in 0..50 {
        ecs.create_cluster()
            .cluster_name(format!("warm-{i}"))
            .send()
            .await
            .unwrap();
    }
    let mut creates = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let started = Instant::now();
        ecs.create_cluster()
            .cluster_name(format!("c-{i}"))
            .send()
            .await
            .unwrap();
        creates.push(started.elapsed());
    }
    let mut describes = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let started = Instant::now();
        ecs.describe_clusters()
            .clusters(format!("c-{i}"))
            .send()
            .await
            .unwrap();
        describes.push(started.elapsed());
    }
    report("CreateCluster", creates);
    report("DescribeClusters", describes);
    control_plane.stop().await;
}
