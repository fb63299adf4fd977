//! Tasks that really run: `berth up`'s own agent with the process driver.

use std::time::Duration;

use aws_sdk_ecs::types::{
    ContainerDefinition, PlacementStrategy, PlacementStrategyType, TaskStopCode,
};
use berth_e2e::{Berth, DriverChoice, error_code, wait_for_instances, wait_for_tasks};

fn shell(name: &str, script: &str, memory: i32) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name(name)
        .image("busybox")
        .memory(memory)
        .entry_point("sh")
        .entry_point("-c")
        .command(script)
        .build()
}

async fn register(ecs: &aws_sdk_ecs::Client, family: &str, container: ContainerDefinition) {
    ecs.register_task_definition()
        .family(family)
        .container_definitions(container)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn run_describe_stop_and_read_the_log() {
    let berth = Berth::start_with(None, Some(DriverChoice::Process)).await;
    let ecs = berth.ecs();
    let instances = wait_for_instances(&ecs, "default", 1).await;

    let described = ecs
        .describe_container_instances()
        .cluster("default")
        .container_instances(&instances[0])
        .send()
        .await
        .unwrap();
    let instance = &described.container_instances()[0];
    assert!(instance.agent_connected());
    assert_eq!(instance.status(), Some("ACTIVE"));
    let cpu = instance
        .registered_resources()
        .iter()
        .find(|r| r.name() == Some("CPU"))
        .unwrap();
    assert_eq!(cpu.integer_value() % 1024, 0);
    assert!(
        instance
            .attributes()
            .iter()
            .any(|a| a.name() == "ecs.os-type" && a.value() == Some("linux"))
    );

    register(
        &ecs,
        "sleeper",
        shell("main", "echo hello-from-berth; sleep 60", 32),
    )
    .await;
    let run = ecs
        .run_task()
        .task_definition("sleeper")
        .count(2)
        .started_by("e2e")
        .send()
        .await
        .unwrap();
    assert!(run.failures().is_empty(), "{:?}", run.failures());
    let arns: Vec<String> = run
        .tasks()
        .iter()
        .map(|t| t.task_arn().unwrap().to_owned())
        .collect();
    assert_eq!(arns.len(), 2);
    assert_eq!(run.tasks()[0].group(), Some("family:sleeper"));

    let running = wait_for_tasks(&ecs, "default", &arns, Duration::from_secs(20), |t| {
        t.last_status() == Some("RUNNING")
    })
    .await;
    assert!(
        running
            .iter()
            .all(|t| t.started_at().is_some() && t.container_instance_arn() == Some(&instances[0]))
    );
    let listed = ecs.list_tasks().started_by("e2e").send().await.unwrap();
    assert_eq!(listed.task_arns().len(), 2);

    // The container's output is in the agent's log file for it.
    let task_id = arns[0].rsplit('/').next().unwrap();
    let log = berth
        .data_dir
        .path()
        .join(format!("agent/tasks/{task_id}/main.log"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("hello-from-berth")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no output in {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let stopped = ecs
        .stop_task()
        .task(&arns[0])
        .reason("e2e says stop")
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.task().unwrap().desired_status(), Some("STOPPED"));
    let stopped = wait_for_tasks(&ecs, "default", &arns[..1], Duration::from_secs(40), |t| {
        t.last_status() == Some("STOPPED")
    })
    .await;
    assert_eq!(stopped[0].stop_code(), Some(&TaskStopCode::UserInitiated));
    assert_eq!(stopped[0].stopped_reason(), Some("e2e says stop"));
    let stopped_list = ecs
        .list_tasks()
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .unwrap();
    assert_eq!(stopped_list.task_arns(), &arns[..1]);
    berth.stop().await;
}

#[tokio::test]
async fn essential_exits_failures_attributes_and_draining() {
    let berth = Berth::start_with(None, Some(DriverChoice::Process)).await;
    let ecs = berth.ecs();
    let instances = wait_for_instances(&ecs, "default", 1).await;

    // An essential container exiting stops the task, with its exit code.
    register(&ecs, "quitter", shell("main", "exit 3", 16)).await;
    let run = ecs
        .run_task()
        .task_definition("quitter")
        .send()
        .await
        .unwrap();
    let arns = vec![run.tasks()[0].task_arn().unwrap().to_owned()];
    let stopped = wait_for_tasks(&ecs, "default", &arns, Duration::from_secs(20), |t| {
        t.last_status() == Some("STOPPED")
    })
    .await;
    assert_eq!(
        stopped[0].stop_code(),
        Some(&TaskStopCode::EssentialContainerExited)
    );
    assert_eq!(stopped[0].containers()[0].exit_code(), Some(3));

    // More memory than the host has: a RESOURCE:MEMORY failure, no task.
    register(&ecs, "huge", shell("main", "true", 4_000_000)).await;
    let run = ecs.run_task().task_definition("huge").send().await.unwrap();
    assert!(run.tasks().is_empty());
    assert_eq!(run.failures()[0].reason(), Some("RESOURCE:MEMORY"));
    assert_eq!(run.failures()[0].arn(), Some(instances[0].as_str()));

    // Custom attributes, and the cluster query language over them.
    ecs.put_attributes()
        .cluster("default")
        .attributes(
            aws_sdk_ecs::types::Attribute::builder()
                .name("stack")
                .value("blue")
                .target_id(&instances[0])
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let blue = ecs
        .list_container_instances()
        .filter("attribute:stack == blue")
        .send()
        .await
        .unwrap();
    assert_eq!(blue.container_instance_arns(), &instances[..]);
    let red = ecs
        .list_container_instances()
        .filter("attribute:stack == red")
        .send()
        .await
        .unwrap();
    assert!(red.container_instance_arns().is_empty());
    let listed = ecs
        .list_attributes()
        .target_type(aws_sdk_ecs::types::TargetType::ContainerInstance)
        .attribute_name("stack")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.attributes()[0].value(), Some("blue"));
    let bad = ecs
        .list_container_instances()
        .filter("attribute:stack ==")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&bad).as_deref(),
        Some("InvalidParameterException")
    );

    // A DRAINING instance takes no new task.
    ecs.update_container_instances_state()
        .container_instances(&instances[0])
        .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
        .send()
        .await
        .unwrap();
    register(&ecs, "later", shell("main", "sleep 1", 16)).await;
    let run = ecs
        .run_task()
        .task_definition("later")
        .placement_strategy(
            PlacementStrategy::builder()
                .r#type(PlacementStrategyType::Random)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(run.tasks().is_empty(), "placed on a DRAINING instance");
    assert!(!run.failures().is_empty());
    berth.stop().await;
}

#[tokio::test]
async fn the_aws_cli_runs_and_waits_for_tasks() {
    let berth = Berth::start_with(None, Some(DriverChoice::Process)).await;
    wait_for_instances(&berth.ecs(), "default", 1).await;
    let registered = berth
        .aws_cli(&[
            "register-task-definition",
            "--family",
            "cli",
            "--container-definitions",
            r#"[{"name":"main","image":"busybox","memory":16,"entryPoint":["sh","-c"],"command":["sleep 60"]}]"#,
        ])
        .await;
    berth_e2e::cli_json(&registered);
    let run = berth_e2e::cli_json(
        &berth
            .aws_cli(&["run-task", "--task-definition", "cli"])
            .await,
    );
    let arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    let waited = berth
        .aws_cli(&["wait", "tasks-running", "--tasks", &arn])
        .await;
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    berth_e2e::cli_json(&berth.aws_cli(&["stop-task", "--task", &arn]).await);
    let waited = berth
        .aws_cli(&["wait", "tasks-stopped", "--tasks", &arn])
        .await;
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    berth.stop().await;
}

fn task_ids(run: &aws_sdk_ecs::operation::run_task::RunTaskOutput) -> Vec<String> {
    let mut ids: Vec<String> = run
        .tasks()
        .iter()
        .map(|t| t.task_arn().unwrap().rsplit('/').next().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_retried_run_task_runs_nothing_twice() {
    let berth = Berth::start_with(None, Some(DriverChoice::Process)).await;
    let ecs = berth.ecs();
    wait_for_instances(&ecs, "default", 1).await;
    register(&ecs, "once", shell("main", "sleep 60", 8)).await;
    let run = |token: &'static str, count: i32| {
        ecs.run_task()
            .task_definition("once")
            .count(count)
            .client_token(token)
            .send()
    };

    // Two attempts at once: the second arrives before all of the first's tasks are
    // in the read model, so the log's duplicate window must catch it.
    let (first, racing) = tokio::join!(run("token-a", 3), run("token-a", 3));
    let first = task_ids(&first.unwrap());
    assert_eq!(first.len(), 3);
    assert_eq!(task_ids(&racing.unwrap()), first);
    // A later retry: answered from the read model.
    assert_eq!(task_ids(&run("token-a", 3).await.unwrap()), first);

    // Another token is another request. Task ids are time-ordered, so the read
    // models append new tasks at the end of their indexes.
    let second = task_ids(&run("token-b", 3).await.unwrap());
    assert_eq!(second.len(), 3);
    assert!(first.iter().all(|id| second.iter().all(|later| later > id)));

    // A retry that finds only part of its request in the read model (a first
    // attempt still being projected, or one that failed part way, made here by a
    // first attempt of one task) ends with all the tasks it asks for, the ones
    // found among them.
    let partial = task_ids(&run("token-c", 1).await.unwrap());
    let completed = task_ids(&run("token-c", 3).await.unwrap());
    assert_eq!(completed.len(), 3);
    assert!(completed.contains(&partial[0]));

    let listed = ecs.list_tasks().family("once").send().await.unwrap();
    assert_eq!(listed.task_arns().len(), 9);
    berth.stop().await;
}
