//! Several agents in one cluster: placement strategies and constraints, and an agent
//! that disappears and comes back.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_ecs::types::{
    ContainerDefinition, DesiredStatus, PlacementConstraint, PlacementConstraintType,
    PlacementStrategy, PlacementStrategyType, TaskStopCode,
};
use berth_agent::{AgentConfig, DriverChoice};
use berth_e2e::{AGENT_TOKEN, Berth, wait_for_instances, wait_for_tasks};

/// Starts an agent in this process; aborting the handle is a crash (the socket just
/// drops).
fn agent(
    berth: &Berth,
    cluster: &str,
    zone: &str,
    driver: DriverChoice,
    data_dir: &std::path::Path,
) -> tokio::task::JoinHandle<()> {
    let mut config = AgentConfig::new(
        cluster,
        berth.agent_gateway(),
        AGENT_TOKEN,
        driver,
        Some(data_dir.to_owned()),
    );
    config.zone = Some(zone.to_owned());
    config.cpu_units = Some(2048);
    config.memory_mib = Some(1024);
    config.host_id = Some(format!("host-{zone}"));
    tokio::spawn(async move {
        let _ = berth_agent::run_agent(config, std::future::pending()).await;
    })
}

/// Creates `cluster` with one simulated agent per zone: the agents' data dirs (to keep
/// while they run), the agents, and their instances' ARNs once all have registered.
async fn simulated_cluster(
    berth: &Berth,
    cluster: &str,
    zones: &[&str],
) -> (
    Vec<tempfile::TempDir>,
    Vec<tokio::task::JoinHandle<()>>,
    Vec<String>,
) {
    berth
        .ecs()
        .create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .unwrap();
    let dirs: Vec<_> = zones.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let agents = zones
        .iter()
        .zip(&dirs)
        .map(|(zone, dir)| agent(berth, cluster, zone, DriverChoice::Sim, dir.path()))
        .collect();
    let instances = wait_for_instances(&berth.ecs(), cluster, zones.len()).await;
    (dirs, agents, instances)
}

fn container(memory: i32, script: &str) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name("main")
        .image("busybox")
        .memory(memory)
        .entry_point("sh")
        .entry_point("-c")
        .command(script)
        .build()
}

/// Zone of each task's instance.
async fn zones_of(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    tasks: &[aws_sdk_ecs::types::Task],
) -> Vec<String> {
    let mut zones = Vec::new();
    for task in tasks {
        let described = ecs
            .describe_container_instances()
            .cluster(cluster)
            .container_instances(task.container_instance_arn().unwrap())
            .send()
            .await
            .unwrap();
        let zone = described.container_instances()[0]
            .attributes()
            .iter()
            .find(|a| a.name() == "ecs.availability-zone")
            .and_then(|a| a.value())
            .unwrap()
            .to_owned();
        zones.push(zone);
    }
    zones
}

#[tokio::test]
async fn strategies_and_constraints_across_agents() {
    let berth = Berth::start().await;
    let ecs = berth.ecs();
    let (_dirs, agents, _) = simulated_cluster(&berth, "multi", &["a", "b", "c"]).await;
    ecs.register_task_definition()
        .family("web")
        .container_definitions(container(100, "sleep 600"))
        .send()
        .await
        .unwrap();

    // Spread over zones: six tasks, two per zone.
    let spread = ecs
        .run_task()
        .cluster("multi")
        .task_definition("web")
        .count(6)
        .placement_strategy(
            PlacementStrategy::builder()
                .r#type(PlacementStrategyType::Spread)
                .field("attribute:ecs.availability-zone")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(spread.tasks().len(), 6, "{:?}", spread.failures());
    let mut per_zone: HashMap<String, usize> = HashMap::new();
    for zone in zones_of(&ecs, "multi", spread.tasks()).await {
        *per_zone.entry(zone).or_default() += 1;
    }
    assert_eq!(
        per_zone,
        HashMap::from([("a".into(), 2), ("b".into(), 2), ("c".into(), 2)])
    );

    // memberOf with the cluster query language: everything lands in zone b.
    let pinned = ecs
        .run_task()
        .cluster("multi")
        .task_definition("web")
        .count(3)
        .placement_constraints(
            PlacementConstraint::builder()
                .r#type(PlacementConstraintType::MemberOf)
                .expression("attribute:ecs.availability-zone == b")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        zones_of(&ecs, "multi", pinned.tasks()).await,
        ["b", "b", "b"]
    );

    // Binpack on memory fills the fullest instance first (zone b holds 500 MiB now).
    let packed = ecs
        .run_task()
        .cluster("multi")
        .task_definition("web")
        .placement_strategy(
            PlacementStrategy::builder()
                .r#type(PlacementStrategyType::Binpack)
                .field("memory")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(zones_of(&ecs, "multi", packed.tasks()).await, ["b"]);

    // distinctInstance within a group: three instances take three, the fourth fails.
    let distinct = ecs
        .run_task()
        .cluster("multi")
        .task_definition("web")
        .group("singletons")
        .count(4)
        .placement_constraints(
            PlacementConstraint::builder()
                .r#type(PlacementConstraintType::DistinctInstance)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(distinct.tasks().len(), 3);
    assert_eq!(distinct.failures()[0].reason(), Some("ATTRIBUTE"));

    // Never over-committed: 1024 MiB per instance, 100 MiB per task.
    let fill = ecs
        .run_task()
        .cluster("multi")
        .task_definition("web")
        .count(10)
        .send()
        .await
        .unwrap();
    let fill2 = ecs
        .run_task()
        .cluster("multi")
        .task_definition("web")
        .count(10)
        .send()
        .await
        .unwrap();
    let placed = 6 + 3 + 1 + 3 + fill.tasks().len() + fill2.tasks().len();
    assert_eq!(placed, 30, "3 × 10 tasks of 100 MiB fit in 3 × 1024 MiB");
    assert!(
        fill2
            .failures()
            .iter()
            .any(|f| f.reason() == Some("RESOURCE:MEMORY"))
    );
    let listed = ecs
        .list_container_instances()
        .cluster("multi")
        .send()
        .await
        .unwrap();
    let described = ecs
        .describe_container_instances()
        .cluster("multi")
        .set_container_instances(Some(listed.container_instance_arns().to_vec()))
        .send()
        .await
        .unwrap();
    for instance in described.container_instances() {
        let memory = instance
            .remaining_resources()
            .iter()
            .find(|r| r.name() == Some("MEMORY"))
            .unwrap();
        assert!(
            memory.integer_value() >= 0 && memory.integer_value() < 100,
            "{memory:?}"
        );
    }
    for agent in agents {
        agent.abort();
    }
    berth.stop().await;
}

/// StartTask puts one task on each instance it names, and its failures speak of those
/// instances alone, never of the others of the cluster: MISSING for one it does not
/// know, INACTIVE for one draining.
#[tokio::test]
async fn start_task_runs_on_the_named_instances_and_answers_for_them_only() {
    let berth = Berth::start().await;
    let ecs = berth.ecs();
    let (_dirs, agents, instances) = simulated_cluster(&berth, "named", &["a", "b"]).await;
    // One task of 600 MiB fills an instance of 1024.
    ecs.register_task_definition()
        .family("big")
        .container_definitions(container(600, "sleep 600"))
        .send()
        .await
        .unwrap();
    let start = |on: &[&String]| {
        ecs.start_task()
            .cluster("named")
            .task_definition("big")
            .started_by("pinning")
            .set_container_instances(Some(on.iter().map(|arn| arn.to_string()).collect()))
            .send()
    };
    let failures_of = |output: &aws_sdk_ecs::operation::start_task::StartTaskOutput| {
        output
            .failures()
            .iter()
            .map(|f| (f.arn().unwrap().to_owned(), f.reason().unwrap().to_owned()))
            .collect::<Vec<_>>()
    };
    let (first, second) = (&instances[0], &instances[1]);

    let on_first = start(&[first]).await.unwrap();
    assert_eq!(on_first.tasks().len(), 1, "{:?}", on_first.failures());
    assert_eq!(on_first.tasks()[0].container_instance_arn(), Some(&**first));
    assert_eq!(on_first.tasks()[0].started_by(), Some("pinning"));

    // The first is full; the second, free, is not named, so nothing starts.
    let full = start(&[first]).await.unwrap();
    assert!(full.tasks().is_empty());
    assert_eq!(
        failures_of(&full),
        [(first.clone(), "RESOURCE:MEMORY".to_owned())]
    );

    // Both named: one task on the second, and a failure for the first.
    let both = start(&[second, first]).await.unwrap();
    assert_eq!(both.tasks().len(), 1);
    assert_eq!(both.tasks()[0].container_instance_arn(), Some(&**second));
    assert_eq!(
        failures_of(&both),
        [(first.clone(), "RESOURCE:MEMORY".to_owned())]
    );

    // An instance the cluster does not know, and one draining: nothing is placed, and
    // each is named with why.
    let unknown = first.replace(
        first.rsplit('/').next().unwrap(),
        "00000000-0000-4000-8000-000000000000",
    );
    let missing = start(&[&unknown]).await.unwrap();
    assert!(missing.tasks().is_empty());
    assert_eq!(failures_of(&missing), [(unknown, "MISSING".to_owned())]);
    ecs.update_container_instances_state()
        .cluster("named")
        .container_instances(second)
        .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
        .send()
        .await
        .unwrap();
    let draining = start(&[second]).await.unwrap();
    assert!(draining.tasks().is_empty());
    assert_eq!(
        failures_of(&draining),
        [(second.clone(), "INACTIVE".to_owned())]
    );

    let arns = [on_first.tasks(), both.tasks()]
        .concat()
        .iter()
        .map(|t| t.task_arn().unwrap().to_owned())
        .collect::<Vec<_>>();
    wait_for_tasks(&ecs, "named", &arns, Duration::from_secs(20), |t| {
        t.last_status() == Some("RUNNING")
    })
    .await;
    for agent in agents {
        agent.abort();
    }
    berth.stop().await;
}

#[tokio::test]
async fn an_agent_that_disappears_is_noticed_and_reconciles_when_back() {
    let berth = Berth::start().await;
    let ecs = berth.ecs();
    ecs.create_cluster()
        .cluster_name("edge")
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = agent(&berth, "edge", "a", DriverChoice::Process, dir.path());
    let instances = wait_for_instances(&ecs, "edge", 1).await;
    ecs.register_task_definition()
        .family("long")
        .container_definitions(container(64, "sleep 600"))
        .send()
        .await
        .unwrap();
    let run = ecs
        .run_task()
        .cluster("edge")
        .task_definition("long")
        .send()
        .await
        .unwrap();
    let arns = vec![run.tasks()[0].task_arn().unwrap().to_owned()];
    wait_for_tasks(&ecs, "edge", &arns, Duration::from_secs(20), |t| {
        t.last_status() == Some("RUNNING")
    })
    .await;

    // The agent dies: no goodbye, its connection just drops.
    first.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let described = ecs
            .describe_container_instances()
            .cluster("edge")
            .container_instances(&instances[0])
            .send()
            .await
            .unwrap();
        if !described.container_instances()[0].agent_connected() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "agentConnected never turned false"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = ecs
        .run_task()
        .cluster("edge")
        .task_definition("long")
        .send()
        .await
        .unwrap();
    assert!(refused.tasks().is_empty());
    assert_eq!(refused.failures()[0].reason(), Some("AGENT"));

    // Stopped while the agent is away; the task keeps running on the host until the
    // agent returns, reconciles, and stops it. The agent is the same instance.
    ecs.stop_task()
        .cluster("edge")
        .task(&arns[0])
        .send()
        .await
        .unwrap();
    let second = agent(&berth, "edge", "a", DriverChoice::Process, dir.path());
    let back = wait_for_instances(&ecs, "edge", 1).await;
    assert_eq!(back, instances);
    let stopped = wait_for_tasks(&ecs, "edge", &arns, Duration::from_secs(40), |t| {
        t.last_status() == Some("STOPPED")
    })
    .await;
    assert_eq!(stopped[0].stop_code(), Some(&TaskStopCode::UserInitiated));
    // Nothing was started twice: one task, and the instance runs nothing now.
    let running = ecs.list_tasks().cluster("edge").send().await.unwrap();
    assert!(running.task_arns().is_empty());
    second.abort();
    berth.stop().await;
}

/// RunTask's checks (the cluster, the task definition, any registered instance) follow
/// every change right after the call that made it, although RunTask answers them from
/// memory between changes.
#[tokio::test]
async fn run_task_follows_changes_to_clusters_definitions_and_instances() {
    let berth = Berth::start().await;
    let ecs = berth.ecs();
    for cluster in ["catalog", "doomed"] {
        ecs.create_cluster()
            .cluster_name(cluster)
            .send()
            .await
            .unwrap();
    }
    let register = || {
        ecs.register_task_definition()
            .family("memo")
            .container_definitions(container(8, "sleep 60"))
            .send()
    };
    register().await.unwrap();
    let run = |cluster: &'static str, definition: &'static str| {
        ecs.run_task()
            .cluster(cluster)
            .task_definition(definition)
            .send()
    };
    let code_of = |result: Result<aws_sdk_ecs::operation::run_task::RunTaskOutput, _>| {
        berth_e2e::error_code(&result.expect_err("RunTask fails"))
    };

    // No instance yet: the answer "none registered" is remembered...
    assert_eq!(
        code_of(run("catalog", "memo").await).as_deref(),
        Some("InvalidParameterException")
    );
    // ...until one registers.
    let dir = tempfile::tempdir().unwrap();
    let _agent = agent(&berth, "catalog", "a", DriverChoice::Sim, dir.path());
    let instances = wait_for_instances(&ecs, "catalog", 1).await;
    let definition_of = |run: aws_sdk_ecs::operation::run_task::RunTaskOutput| {
        assert!(run.failures().is_empty(), "{:?}", run.failures());
        run.tasks()[0].task_definition_arn().unwrap().to_owned()
    };
    assert!(definition_of(run("catalog", "memo").await.unwrap()).ends_with("/memo:1"));

    // The family's latest ACTIVE revision moves with each registration and
    // deregistration.
    register().await.unwrap();
    assert!(definition_of(run("catalog", "memo").await.unwrap()).ends_with("/memo:2"));
    ecs.deregister_task_definition()
        .task_definition("memo:2")
        .send()
        .await
        .unwrap();
    assert!(definition_of(run("catalog", "memo").await.unwrap()).ends_with("/memo:1"));
    ecs.deregister_task_definition()
        .task_definition("memo:1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code_of(run("catalog", "memo:1").await).as_deref(),
        Some("ClientException")
    );

    // The last instance leaves: nothing is registered again.
    ecs.deregister_container_instance()
        .cluster("catalog")
        .container_instance(&instances[0])
        .force(true)
        .send()
        .await
        .unwrap();
    register().await.unwrap();
    assert_eq!(
        code_of(run("catalog", "memo:3").await).as_deref(),
        Some("InvalidParameterException")
    );

    // A cluster remembered as ACTIVE is gone once deleted.
    assert_eq!(
        code_of(run("doomed", "memo:3").await).as_deref(),
        Some("InvalidParameterException")
    );
    ecs.delete_cluster().cluster("doomed").send().await.unwrap();
    assert_eq!(
        code_of(run("doomed", "memo:3").await).as_deref(),
        Some("ClusterNotFoundException")
    );
    berth.stop().await;
}

/// ListTasks of one instance, a page of `page_size` at a time: the sorted task ARNs.
async fn listed_on(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    instance: &str,
    desired: DesiredStatus,
    page_size: i32,
) -> Vec<String> {
    let mut arns = Vec::new();
    let mut next_token = None;
    loop {
        let page = ecs
            .list_tasks()
            .cluster(cluster)
            .container_instance(instance)
            .desired_status(desired.clone())
            .max_results(page_size)
            .set_next_token(next_token)
            .send()
            .await
            .unwrap();
        arns.extend(page.task_arns().iter().cloned());
        next_token = page.next_token().map(str::to_owned);
        if next_token.is_none() {
            return arns;
        }
    }
}

#[tokio::test]
async fn tasks_by_instance_and_by_request_survive_a_restart() {
    indexes_scenario(Berth::start().await).await;
}

#[tokio::test]
async fn tasks_by_instance_and_by_request_survive_a_restart_on_postgres() {
    let url = berth_testkit::postgres_database().await;
    indexes_scenario(Berth::start_with(Some(url), None).await).await;
}

/// ListTasks by instance and RunTask retries by `clientToken`, which the api-gateway
/// answers from indexes it keeps in memory, before and after a restart.
async fn indexes_scenario(mut berth: Berth) {
    let ecs = berth.ecs();
    ecs.create_cluster()
        .cluster_name("lists")
        .send()
        .await
        .unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let _agents: Vec<_> = [("a", &dirs[0]), ("b", &dirs[1])]
        .into_iter()
        .map(|(zone, dir)| agent(&berth, "lists", zone, DriverChoice::Sim, dir.path()))
        .collect();
    let instances = wait_for_instances(&ecs, "lists", 2).await;
    ecs.register_task_definition()
        .family("listed")
        .container_definitions(container(8, "sleep 60"))
        .send()
        .await
        .unwrap();
    let run_once = |ecs: aws_sdk_ecs::Client| async move {
        ecs.run_task()
            .cluster("lists")
            .task_definition("listed")
            .count(7)
            .client_token("run-once")
            .placement_strategy(
                PlacementStrategy::builder()
                    .r#type(PlacementStrategyType::Spread)
                    .field("instanceId")
                    .build(),
            )
            .send()
            .await
            .unwrap()
    };
    let arns_of = |run: &aws_sdk_ecs::operation::run_task::RunTaskOutput| -> Vec<String> {
        let mut arns: Vec<String> = (run.tasks().iter())
            .map(|task| task.task_arn().unwrap().to_owned())
            .collect();
        arns.sort();
        arns
    };
    let run = run_once(ecs.clone()).await;
    assert!(run.failures().is_empty(), "{:?}", run.failures());
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for task in run.tasks() {
        expected
            .entry(task.container_instance_arn().unwrap().to_owned())
            .or_default()
            .push(task.task_arn().unwrap().to_owned());
    }
    for arns in expected.values_mut() {
        arns.sort();
    }
    assert_eq!(expected.len(), 2, "spread over both instances");
    let stopped = expected[&instances[0]][0].clone();
    ecs.stop_task()
        .cluster("lists")
        .task(&stopped)
        .send()
        .await
        .unwrap();
    let running_on = |instance: &str| -> Vec<String> {
        let mut arns = expected[instance].clone();
        arns.retain(|arn| *arn != stopped);
        arns
    };

    for pass in ["before the restart", "after it"] {
        let ecs = berth.ecs();
        for instance in &instances {
            // By ARN and by bare id, whole and a page at a time.
            let id = instance.rsplit('/').next().unwrap();
            for (reference, page_size) in [(instance.as_str(), 100), (id, 2)] {
                let running =
                    listed_on(&ecs, "lists", reference, DesiredStatus::Running, page_size).await;
                assert_eq!(running, running_on(instance), "{pass}: {reference}");
            }
            let stopped_here = listed_on(&ecs, "lists", instance, DesiredStatus::Stopped, 1).await;
            let expected_stopped: Vec<String> = expected[instance]
                .iter()
                .filter(|arn| **arn == stopped)
                .cloned()
                .collect();
            assert_eq!(stopped_here, expected_stopped, "{pass}: {instance}");
        }
        if pass == "before the restart" {
            // The index of tasks by instance lives in memory: a restarted gateway
            // loads it from its table.
            berth.restart().await;
        }
    }
    // A retry of the first request (same clientToken) finds its tasks (the index of
    // tasks by request is loaded too) and runs nothing again.
    let ecs = berth.ecs();
    assert_eq!(arns_of(&run_once(ecs.clone()).await), arns_of(&run));
    let listed = ecs.list_tasks().cluster("lists").send().await.unwrap();
    assert_eq!(listed.task_arns().len(), run.tasks().len() - 1);
    berth.stop().await;
}
