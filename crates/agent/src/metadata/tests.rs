use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use super::types::{compute_container_metadata, compute_task_metadata, format_timestamp};
use super::*;

fn view() -> TaskView {
    let container = ContainerView {
        name: "app".into(),
        docker_id: Some("abc123".into()),
        docker_name: Some("ecs-web-3-app-xyz".into()),
        image: "127.0.0.1:4747/team/app:v1".into(),
        image_id: Some("sha256:00ff".into()),
        labels: HashMap::from([("com.amazonaws.ecs.container-name".into(), "app".into())]),
        desired_status: "RUNNING".into(),
        known_status: "RUNNING".into(),
        cpu: Some(128),
        memory: Some(64),
        created_at: Some("2026-11-26T13:00:00.000000001Z".into()),
        started_at: Some("2026-11-26T13:00:01.000000001Z".into()),
        container_arn: Some("arn:aws:ecs:us-east-1:000000000000:container/c1".into()),
        network_mode: "bridge".into(),
        ipv4_addresses: vec!["172.17.0.5".into()],
        awsvpc: None,
        ports: vec![PortView {
            container_port: 80,
            protocol: "tcp".into(),
            host_port: 32768,
            host_ip: String::new(),
        }],
        exit_code: None,
    };
    TaskView {
        cluster: "arn:aws:ecs:us-east-1:000000000000:cluster/demo".into(),
        arn: "arn:aws:ecs:us-east-1:000000000000:task/demo/t1".into(),
        family: "web".into(),
        revision: "3".into(),
        desired_status: "RUNNING".into(),
        known_status: "RUNNING".into(),
        cpu: Some(0.25),
        memory: Some(512),
        pull_started_at: Some("2026-11-26T12:59:59.000000000Z".into()),
        pull_stopped_at: Some("2026-11-26T13:00:00.000000000Z".into()),
        availability_zone: "us-east-1a".into(),
        containers: vec![container],
        tokens: BTreeMap::from([("app".into(), "tok-1".into())]),
    }
}

#[test]
fn container_metadata_has_awss_v4_field_names() {
    let v = serde_json::to_value(compute_container_metadata(&view().containers[0]))
        .expect("serialises");
    assert_eq!(v["DockerId"], "abc123");
    assert_eq!(v["Name"], "app");
    assert_eq!(v["DockerName"], "ecs-web-3-app-xyz");
    assert_eq!(v["Image"], "127.0.0.1:4747/team/app:v1");
    assert_eq!(v["ImageID"], "sha256:00ff");
    assert_eq!(v["Labels"]["com.amazonaws.ecs.container-name"], "app");
    assert_eq!(v["DesiredStatus"], "RUNNING");
    assert_eq!(v["KnownStatus"], "RUNNING");
    assert_eq!(v["Limits"]["CPU"], 128.0);
    assert_eq!(v["Limits"]["Memory"], 64);
    assert_eq!(v["CreatedAt"], "2026-11-26T13:00:00.000000001Z");
    assert_eq!(v["StartedAt"], "2026-11-26T13:00:01.000000001Z");
    assert_eq!(v["Type"], "NORMAL");
    assert_eq!(
        v["ContainerARN"],
        "arn:aws:ecs:us-east-1:000000000000:container/c1"
    );
    assert_eq!(v["Networks"][0]["NetworkMode"], "bridge");
    assert_eq!(v["Networks"][0]["IPv4Addresses"][0], "172.17.0.5");
    assert_eq!(v["Ports"][0]["ContainerPort"], 80);
    assert_eq!(v["Ports"][0]["Protocol"], "tcp");
    assert_eq!(v["Ports"][0]["HostPort"], 32768);
    assert_eq!(v["Ports"][0]["HostIp"], "0.0.0.0");
    assert!(v.get("ExitCode").is_none());
}

#[test]
fn task_metadata_has_awss_v4_field_names() {
    let v = serde_json::to_value(compute_task_metadata(&view())).expect("serialises");
    assert_eq!(
        v["Cluster"],
        "arn:aws:ecs:us-east-1:000000000000:cluster/demo"
    );
    assert_eq!(
        v["TaskARN"],
        "arn:aws:ecs:us-east-1:000000000000:task/demo/t1"
    );
    assert_eq!(v["Family"], "web");
    assert_eq!(v["Revision"], "3");
    assert_eq!(v["DesiredStatus"], "RUNNING");
    assert_eq!(v["KnownStatus"], "RUNNING");
    assert_eq!(v["Limits"]["CPU"], 0.25);
    assert_eq!(v["Limits"]["Memory"], 512);
    assert_eq!(v["PullStartedAt"], "2026-11-26T12:59:59.000000000Z");
    assert_eq!(v["PullStoppedAt"], "2026-11-26T13:00:00.000000000Z");
    assert_eq!(v["AvailabilityZone"], "us-east-1a");
    assert_eq!(v["LaunchType"], "EC2");
    assert_eq!(v["Containers"][0]["DockerId"], "abc123");
}

#[test]
fn a_token_resolves_to_its_task_and_container_until_the_task_is_removed() {
    let index = MetadataIndex::default();
    index.publish(view());
    let (task, container) = index.lookup("tok-1").expect("known token");
    assert_eq!(task.family, "web");
    assert_eq!(container, "app");
    assert!(index.lookup("tok-2").is_none());
    index.remove("arn:aws:ecs:us-east-1:000000000000:task/demo/t1");
    assert!(index.lookup("tok-1").is_none());
}

#[test]
fn host_mode_containers_get_the_loopback_address() {
    let endpoint = MetadataEndpoint {
        index: Arc::new(MetadataIndex::default()),
        bridge_base: "http://172.17.0.1:51679".into(),
        host_base: "http://127.0.0.1:51679".into(),
        credentials: Arc::default(),
        link_local: false,
    };
    assert_eq!(
        endpoint.compute_uri("bridge", "t"),
        "http://172.17.0.1:51679/v4/t"
    );
    assert_eq!(
        endpoint.compute_uri("host", "t"),
        "http://127.0.0.1:51679/v4/t"
    );
}

#[test]
fn credentials_uri_is_relative_behind_the_nat_rule_and_full_without_it() {
    let mut endpoint = MetadataEndpoint {
        index: Arc::new(MetadataIndex::default()),
        bridge_base: "http://172.17.0.1:51679".into(),
        host_base: "http://127.0.0.1:51679".into(),
        credentials: Arc::default(),
        link_local: false,
    };
    assert_eq!(
        endpoint.compute_credentials_env("bridge", "abc"),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_owned(),
            "http://172.17.0.1:51679/v2/credentials/abc".to_owned()
        )
    );
    assert_eq!(
        endpoint.compute_credentials_env("host", "abc").1,
        "http://127.0.0.1:51679/v2/credentials/abc"
    );
    endpoint.link_local = true;
    assert_eq!(
        endpoint.compute_credentials_env("awsvpc", "abc"),
        (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI".to_owned(),
            "/v2/credentials/abc".to_owned()
        )
    );
    assert_eq!(
        endpoint.bridge_addr(),
        Some("172.17.0.1:51679".parse().expect("addr"))
    );
}

#[test]
fn timestamps_format_as_rfc3339_with_nanoseconds() {
    let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_700_818, 73_143_739);
    assert_eq!(format_timestamp(t), "2026-11-26T13:46:58.073143739Z");
    assert_eq!(
        format_timestamp(SystemTime::UNIX_EPOCH),
        "1970-01-01T00:00:00.000000000Z"
    );
    assert_eq!(
        crate::runtime::parse_timestamp_ns(&format_timestamp(t)),
        Some(1_795_700_818_073_143_739)
    );
}
