use super::fleet::compute_cluster_arn;
use super::report::Reported;
use super::*;
use model::acs::{Container, PortMapping, Task};
use model::ecs::shapes::TransportProtocol;

fn task(arn: &str, desired: &str, mappings: Vec<PortMapping>) -> Task {
    Task {
        arn: arn.into(),
        desired_status: desired.into(),
        family: "web".into(),
        version: "1".into(),
        containers: vec![Container {
            name: "app".into(),
            image: "nginx".into(),
            essential: true,
            port_mappings: mappings,
            ..Container::default()
        }],
        ..Task::default()
    }
}

fn pm(container: i32, host: Option<i32>) -> PortMapping {
    PortMapping {
        container_port: Some(container),
        host_port: host,
        protocol: Some("tcp".into()),
        ..PortMapping::default()
    }
}

#[test]
fn running_is_reported_once_even_when_the_payload_repeats() {
    let mut r = Reporter::new("c");
    let t = task("arn:aws:ecs:us-east-1:1:task/c/t1", "RUNNING", vec![]);
    let first = r.plan(&t, 1.0).expect("report");
    assert_eq!(first.request.status.as_deref(), Some("RUNNING"));
    r.record(&first.arn, first.status);
    assert!(r.plan(&t, 2.0).is_none());
    assert_eq!(r.running(), 1);
}

#[test]
fn a_stopped_task_is_never_reported_running_again() {
    let mut r = Reporter::new("c");
    let run = task("t1", "RUNNING", vec![]);
    let stop = task("t1", "STOPPED", vec![]);
    let a = r.plan(&run, 1.0).expect("running");
    r.record(&a.arn, a.status);
    let b = r.plan(&stop, 2.0).expect("stopped");
    assert_eq!(b.status, Reported::Stopped);
    let c = &b.request.containers.as_ref().expect("containers")[0];
    assert_eq!(c.exit_code, Some(0));
    assert_eq!(c.status.as_deref(), Some("STOPPED"));
    assert_eq!(b.request.execution_stopped_at, Some(2.0));
    r.record(&b.arn, b.status);
    assert!(r.plan(&run, 3.0).is_none());
    assert!(r.plan(&stop, 3.0).is_none());
    assert_eq!(r.running(), 0);
}

#[test]
fn stop_without_a_prior_run_is_still_reported() {
    let mut r = Reporter::new("c");
    let report = r
        .plan(&task("t9", "STOPPED", vec![]), 1.0)
        .expect("stopped");
    assert_eq!(report.request.status.as_deref(), Some("STOPPED"));
}

#[test]
fn static_host_ports_are_kept_and_dynamic_ones_get_fake_ports() {
    let mut r = Reporter::new("c");
    let t1 = task(
        "t1",
        "RUNNING",
        vec![pm(80, Some(8080)), pm(443, Some(0)), pm(9000, None)],
    );
    let report = r.plan(&t1, 1.0).expect("report");
    let c = &report.request.containers.as_ref().expect("containers")[0];
    let b = c.network_bindings.as_ref().expect("bindings");
    assert_eq!(b.len(), 3);
    assert_eq!(
        (b[0].container_port, b[0].host_port),
        (Some(80), Some(8080))
    );
    assert_eq!(
        (b[1].container_port, b[1].host_port),
        (Some(443), Some(49153))
    );
    assert_eq!(
        (b[2].container_port, b[2].host_port),
        (Some(9000), Some(49154))
    );
    assert_eq!(b[0].bind_ip.as_deref(), Some("0.0.0.0"));
    assert_eq!(b[0].protocol, Some(TransportProtocol::Tcp));
    assert_eq!(c.runtime_id.as_deref(), Some("sim-t1-app"));
}

#[test]
fn host_mode_binds_the_container_port() {
    let mut r = Reporter::new("c");
    let mut t = task("t1", "RUNNING", vec![pm(8081, None)]);
    t.network_mode = Some("host".into());
    let report = r.plan(&t, 1.0).expect("report");
    let b = &report.request.containers.as_ref().expect("c")[0]
        .network_bindings
        .as_ref()
        .expect("b")[0];
    assert_eq!(b.host_port, Some(8081));
}

#[test]
fn single_letter_zones_get_the_region_prefix() {
    assert_eq!(compute_availability_zone("us-east-1", "a"), "us-east-1a");
    assert_eq!(
        compute_availability_zone("us-east-1", "eu-west-1b"),
        "eu-west-1b"
    );
}

#[test]
fn registration_carries_resources_and_capabilities() {
    let req = compute_registration(&InstanceSpec {
        cluster: "sim".into(),
        cpu: 4096,
        memory: 16384,
        instance_type: "m5.xlarge".into(),
        availability_zone: "us-east-1b".into(),
    });
    let v = serde_json::to_value(&req).expect("json");
    let res = v["totalResources"].as_array().expect("resources");
    assert_eq!(
        res[0],
        serde_json::json!({"name": "CPU", "type": "INTEGER", "integerValue": 4096})
    );
    assert_eq!(res[1]["integerValue"], 16384);
    assert_eq!(
        res[2]["stringSetValue"],
        serde_json::json!(["22", "2375", "2376", "51678", "51679"])
    );
    assert_eq!(res[3]["name"], "PORTS_UDP");
    let attrs = req.attributes.expect("attributes");
    let has =
        |n: &str, v: Option<&str>| attrs.iter().any(|a| a.name == n && a.value.as_deref() == v);
    assert!(has("ecs.availability-zone", Some("us-east-1b")));
    assert!(has("ecs.instance-type", Some("m5.xlarge")));
    assert!(has("ecs.os-type", Some("linux")));
    assert!(has(
        "com.amazonaws.ecs.capability.docker-remote-api.1.17",
        None
    ));
    assert!(has(
        "com.amazonaws.ecs.capability.docker-remote-api.1.44",
        None
    ));
    assert!(has("ecs.capability.task-eni", None));
    assert_eq!(v["versionInfo"]["agentVersion"], "1.0.0-stevedore-sim");
}

#[test]
fn cluster_arn_is_derived_from_the_instance_arn() {
    assert_eq!(
        compute_cluster_arn(
            "sim",
            "arn:aws:ecs:us-east-1:123:container-instance/sim/abc"
        ),
        "arn:aws:ecs:us-east-1:123:cluster/sim"
    );
    assert_eq!(
        compute_cluster_arn("arn:aws:ecs:r:1:cluster/x", "whatever"),
        "arn:aws:ecs:r:1:cluster/x"
    );
    assert_eq!(
        compute_cluster_arn("sim", "arn:aws:ecs:r:1:container-instance/abc"),
        "sim"
    );
}
