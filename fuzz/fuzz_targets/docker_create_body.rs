//! Arbitrary JSON as a task the control channel delivers, through the agent's Docker
//! create-body builders (`compute_create_body` for each container, the awsvpc pause body,
//! Fargate limits): they must build a body or refuse with a message, never panic, and a
//! body they build must serialize.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(task) = serde_json::from_slice::<model::acs::Task>(data) else { return };
    let names: BTreeMap<String, String> = task
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), format!("docker-{i}")))
        .collect();
    let env: BTreeMap<String, String> = [("ECS_CONTAINER_METADATA_URI_V4".to_owned(), "http://127.0.0.1:1/v4/x".to_owned())].into();
    for (i, c) in task.containers.iter().enumerate() {
        let pause = (i % 2 == 1).then_some("pause-id");
        if let Ok(mut body) = agent::engine::spec::compute_create_body("fuzz", &task, c, &names, &env, pause) {
            agent::engine::spec::apply_fargate_limits(&mut body, &task, Some("runsc"), 2.0);
            serde_json::to_vec(&body).expect("a built body serializes");
        }
    }
    if let Ok(body) = agent::engine::spec::compute_pause_body("fuzz", &task, "pause:latest") {
        serde_json::to_vec(&body).expect("a built body serializes");
    }
    let _ = agent::engine::spec::compute_task_eni(&task);
});
