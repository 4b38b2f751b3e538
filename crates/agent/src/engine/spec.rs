//! From an ACS container to a Docker Engine API create body (pure): labels, resources,
//! networking, environment, mounts, and the `dockerConfig` fragments merged in.

use std::collections::BTreeMap;

use model::acs;
use serde_json::{json, Map, Value};

/// Label: the cluster (ARN) the container's task belongs to.
pub const LABEL_CLUSTER: &str = "com.amazonaws.ecs.cluster";
/// Label: the task ARN.
pub const LABEL_TASK_ARN: &str = "com.amazonaws.ecs.task-arn";
/// Label: the container's name in the task definition.
pub const LABEL_CONTAINER_NAME: &str = "com.amazonaws.ecs.container-name";
/// Label: the task definition family.
pub const LABEL_FAMILY: &str = "com.amazonaws.ecs.task-definition-family";
/// Label: the task definition revision.
pub const LABEL_VERSION: &str = "com.amazonaws.ecs.task-definition-version";

/// The name (and `container-name` label) of an awsvpc task's pause container, as the
/// ECS agent names it; `~` keeps it apart from every task definition container name.
pub const PAUSE_CONTAINER_NAME: &str = "~internal~ecs~pause";
/// The Docker network awsvpc tasks' pause containers join (shared by every agent on a
/// daemon).
pub const AWSVPC_NETWORK: &str = "stevedore-awsvpc";
/// Label on that network, so tests and operators can find it.
pub const LABEL_NETWORK: &str = "io.stevedore.network";

/// The Docker name of a container: `ecs-<family>-<version>-<container>-<random>`, with
/// characters Docker refuses replaced by `-`.
pub fn compute_docker_name(task: &acs::Task, container: &str, random: &str) -> String {
    let raw = format!(
        "ecs-{}-{}-{}-{}",
        task.family, task.version, container, random
    );
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The task id (last ARN segment).
pub fn compute_task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn fragment(raw: Option<&String>, what: &str) -> Result<Map<String, Value>, String> {
    match raw.map(String::as_str) {
        None | Some("") => Ok(Map::new()),
        Some(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(Value::Null) => Ok(Map::new()),
            Ok(_) => Err(format!("dockerConfig.{what} is not a JSON object")),
            Err(e) => Err(format!("dockerConfig.{what} is not valid JSON: {e}")),
        },
    }
}

/// The subnet (`10.200.0.0/16`) and gateway (`10.200.0.1`) of an interface's
/// `subnetGatewayIpv4Address` (`10.200.0.1/16`).
pub fn parse_gateway_cidr(cidr: &str) -> Option<(String, String)> {
    let (gw, len) = cidr.split_once('/')?;
    let gw: std::net::Ipv4Addr = gw.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    if !(1..=30).contains(&len) {
        return None;
    }
    let net = u32::from(gw) & (u32::MAX << (32 - len));
    Some((
        format!("{}/{len}", std::net::Ipv4Addr::from(net)),
        gw.to_string(),
    ))
}

/// The Docker network of the subnet an interface sits in: one per subnet block
/// (`stevedore-awsvpc-172.31.0.0-20`), named from its `subnetGatewayIpv4Address`;
/// [`AWSVPC_NETWORK`] for the server-wide pool's block (10.200.0.0/16) and for an
/// interface that names no valid block.
pub fn compute_network_name(eni: &acs::ElasticNetworkInterface) -> String {
    match eni
        .subnet_gateway_ipv4_address
        .as_deref()
        .and_then(parse_gateway_cidr)
    {
        Some((subnet, _)) if subnet != "10.200.0.0/16" => {
            format!("{AWSVPC_NETWORK}-{}", subnet.replace('/', "-"))
        }
        _ => AWSVPC_NETWORK.to_owned(),
    }
}

/// The interface an awsvpc task's pause container gets, with its address.
pub fn compute_task_eni(task: &acs::Task) -> Result<(&acs::ElasticNetworkInterface, &str), String> {
    let eni = task
        .elastic_network_interfaces
        .first()
        .ok_or("the awsvpc task has no elasticNetworkInterfaces in its payload")?;
    let address = eni
        .primary_ipv4()
        .ok_or("the task's network interface has no IPv4 address")?;
    Ok((eni, address))
}

/// The CPUs this machine has (Docker refuses a NanoCpus limit above them).
pub fn host_cpus() -> f64 {
    let n = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    f64::from(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Makes a FARGATE task's size hard limits, as Fargate's VM does: the task's vCPUs as
/// NanoCpus (at most the machine's), the task's memory as the limit of every container
/// that set none of its own, and the sandbox runtime when there is one.
pub fn apply_fargate_limits(body: &mut Value, task: &acs::Task, runtime: Option<&str>, cpus: f64) {
    let Some(host) = body.get_mut("HostConfig").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(vcpu) = task.cpu.filter(|v| *v > 0.0) {
        // NanoCpus wants an integer; vCPUs are small positive numbers.
        #[allow(clippy::cast_possible_truncation)]
        let nanos = (vcpu.min(cpus) * 1e9).round() as i64;
        host.insert("NanoCpus".into(), json!(nanos));
    }
    if let Some(mib) = task.memory.filter(|m| *m > 0) {
        if host.get("Memory").and_then(Value::as_i64).unwrap_or(0) == 0 {
            host.insert("Memory".into(), json!(i64::from(mib) * 1024 * 1024));
        }
        // No swap beyond the limit: the size is a hard limit.
        let limit = host.get("Memory").cloned().unwrap_or(Value::Null);
        host.insert("MemorySwap".into(), limit);
    }
    if let Some(r) = runtime {
        host.insert("Runtime".into(), json!(r));
    }
}

/// The create body of an awsvpc task's pause container: it alone joins the network, at
/// the task's address and MAC; the task's containers share its namespace.
pub fn compute_pause_body(cluster: &str, task: &acs::Task, image: &str) -> Result<Value, String> {
    let (eni, address) = compute_task_eni(task)?;
    let network = compute_network_name(eni);
    let mut labels = Map::new();
    labels.insert(LABEL_CLUSTER.into(), json!(cluster));
    labels.insert(LABEL_TASK_ARN.into(), json!(task.arn));
    labels.insert(LABEL_CONTAINER_NAME.into(), json!(PAUSE_CONTAINER_NAME));
    labels.insert(LABEL_FAMILY.into(), json!(task.family));
    labels.insert(LABEL_VERSION.into(), json!(task.version));
    let mut body = json!({
        "Image": image,
        "Labels": labels,
        "HostConfig": {"NetworkMode": network, "CpuShares": 2},
        "NetworkingConfig": {"EndpointsConfig": {network.as_str(): {
            "IPAMConfig": {"IPv4Address": address},
        }}},
    });
    if let Some(mac) = &eni.mac_address {
        // API 1.41 (Docker 20.10) takes the MAC on the container, not the endpoint.
        body["MacAddress"] = json!(mac);
    }
    if let Some(host) = eni
        .private_dns_name
        .as_deref()
        .and_then(|d| d.split('.').next())
        .filter(|h| !h.is_empty())
    {
        body["Hostname"] = json!(host);
    }
    Ok(body)
}

/// The create body for `c` of `task`. `names` maps container names to Docker names (for
/// links and volumesFrom); `env` is added to the container's environment; `pause` is the
/// id of the pause container whose network namespace an awsvpc task's containers join.
pub fn compute_create_body(
    cluster: &str,
    task: &acs::Task,
    c: &acs::Container,
    names: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
    pause: Option<&str>,
) -> Result<Value, String> {
    let docker = c.docker_config.as_ref();
    let mut config = fragment(docker.and_then(|d| d.config.as_ref()), "config")?;
    let mut host = fragment(docker.and_then(|d| d.host_config.as_ref()), "hostConfig")?;

    config.insert("Image".into(), json!(c.image));
    if let Some(cmd) = &c.command {
        config.insert("Cmd".into(), json!(cmd));
    }
    if let Some(ep) = &c.entry_point {
        config.insert("Entrypoint".into(), json!(ep));
    }
    let mut env_list: Vec<Value> = match config.remove("Env") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    for (k, v) in c.environment.iter().chain(env.iter()) {
        env_list.push(json!(format!("{k}={v}")));
    }
    config.insert("Env".into(), Value::Array(env_list));
    let mut labels = match config.remove("Labels") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    labels.insert(LABEL_CLUSTER.into(), json!(cluster));
    labels.insert(LABEL_TASK_ARN.into(), json!(task.arn));
    labels.insert(LABEL_CONTAINER_NAME.into(), json!(c.name));
    labels.insert(LABEL_FAMILY.into(), json!(task.family));
    labels.insert(LABEL_VERSION.into(), json!(task.version));
    config.insert("Labels".into(), Value::Object(labels));
    if let Some(t) = c.stop_timeout {
        config.insert("StopTimeout".into(), json!(t));
    }

    // Resources.
    if let Some(cpu) = c.cpu {
        host.insert("CpuShares".into(), json!(i64::from(cpu.max(2))));
    } else {
        host.insert("CpuShares".into(), json!(2));
    }
    if let Some(mib) = c.memory.filter(|m| *m > 0) {
        host.insert("Memory".into(), json!(i64::from(mib) * 1024 * 1024));
    }
    if let Some(vcpu) = task.cpu.filter(|v| *v > 0.0) {
        // NanoCpus wants an integer; payload vCPUs are small positive numbers.
        #[allow(clippy::cast_possible_truncation)]
        let nanos = (vcpu * 1e9).round() as i64;
        host.insert("NanoCpus".into(), json!(nanos));
    }
    if let Some(p) = c.privileged {
        host.insert("Privileged".into(), json!(p));
    }
    // Logs: Docker's awslogs driver would call AWS itself; Stevedore keeps json-file.
    let awslogs = host
        .get("LogConfig")
        .and_then(|l| l.get("Type"))
        .and_then(Value::as_str)
        == Some("awslogs");
    if awslogs {
        host.insert(
            "LogConfig".into(),
            json!({"Type": "json-file", "Config": {}}),
        );
    }

    // Networking.
    let mode = task.network_mode.as_deref().unwrap_or("bridge");
    match mode {
        "bridge" | "default" | "" => {
            host.insert("NetworkMode".into(), json!("bridge"));
            let mut exposed = Map::new();
            let mut bindings = Map::new();
            for pm in &c.port_mappings {
                let Some(cp) = pm.container_port else {
                    continue;
                };
                let proto = pm.protocol.as_deref().unwrap_or("tcp");
                let key = format!("{cp}/{proto}");
                exposed.insert(key.clone(), json!({}));
                let hp = pm
                    .host_port
                    .filter(|p| *p > 0)
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                bindings.insert(key, json!([{"HostIp": "", "HostPort": hp}]));
            }
            config.insert("ExposedPorts".into(), Value::Object(exposed));
            host.insert("PortBindings".into(), Value::Object(bindings));
            if let Some(links) = &c.links {
                let mut out = Vec::new();
                for l in links {
                    let (name, alias) = l.split_once(':').unwrap_or((l.as_str(), l.as_str()));
                    let target = names
                        .get(name)
                        .ok_or_else(|| format!("link to unknown container {name}"))?;
                    out.push(json!(format!("{target}:{alias}")));
                }
                host.insert("Links".into(), Value::Array(out));
            }
        }
        "host" | "none" => {
            host.insert("NetworkMode".into(), json!(mode));
        }
        "awsvpc" => {
            let pause = pause.ok_or("the awsvpc task's pause container is not running")?;
            // Docker refuses these with a container: network mode (they belong to the
            // namespace's owner); ports need no publishing: the task has its own address.
            for k in ["Hostname", "Domainname", "MacAddress", "ExposedPorts"] {
                config.remove(k);
            }
            for k in [
                "Dns",
                "DnsSearch",
                "DnsOptions",
                "ExtraHosts",
                "PortBindings",
                "PublishAllPorts",
                "Links",
            ] {
                host.remove(k);
            }
            host.insert("NetworkMode".into(), json!(format!("container:{pause}")));
        }
        other => {
            return Err(format!(
                "network mode {other} is not supported by this agent yet"
            ))
        }
    }

    // Volumes.
    let mut binds = Vec::new();
    for mp in &c.mount_points {
        let (Some(vol), Some(path)) = (&mp.source_volume, &mp.container_path) else {
            continue;
        };
        let volume = task
            .volumes
            .iter()
            .find(|v| &v.name == vol)
            .ok_or_else(|| format!("mount point names unknown volume {vol}"))?;
        let source = match volume.host.as_ref().and_then(|h| h.source_path.clone()) {
            Some(p) => p,
            None => format!("ecs-{}-{}", compute_task_id(&task.arn), volume.name),
        };
        let ro = if mp.read_only == Some(true) {
            ":ro"
        } else {
            ""
        };
        binds.push(json!(format!("{source}:{path}{ro}")));
    }
    if !binds.is_empty() {
        host.insert("Binds".into(), Value::Array(binds));
    }
    let mut from = Vec::new();
    for vf in &c.volumes_from {
        let Some(src) = &vf.source_container else {
            continue;
        };
        let target = names
            .get(src)
            .ok_or_else(|| format!("volumesFrom names unknown container {src}"))?;
        let ro = if vf.read_only == Some(true) {
            ":ro"
        } else {
            ""
        };
        from.push(json!(format!("{target}{ro}")));
    }
    if !from.is_empty() {
        host.insert("VolumesFrom".into(), Value::Array(from));
    }

    config.insert("HostConfig".into(), Value::Object(host));
    Ok(Value::Object(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> acs::Task {
        acs::Task {
            arn: "arn:aws:ecs:us-east-1:000000000000:task/c/abc".into(),
            desired_status: "RUNNING".into(),
            family: "web".into(),
            version: "3".into(),
            cpu: Some(0.5),
            containers: vec![acs::Container {
                name: "app".into(),
                image: "busybox".into(),
                cpu: Some(0),
                memory: Some(64),
                essential: true,
                port_mappings: vec![acs::PortMapping {
                    container_port: Some(80),
                    host_port: Some(0),
                    ..acs::PortMapping::default()
                }],
                environment: BTreeMap::from([("A".to_owned(), "1".to_owned())]),
                docker_config: Some(acs::DockerConfig {
                    config: Some(r#"{"Labels":{"team":"x"},"User":"nobody"}"#.into()),
                    host_config: Some(r#"{"MemoryReservation":33554432,"LogConfig":{"Type":"awslogs","Config":{}}}"#.into()),
                    version: None,
                }),
                ..acs::Container::default()
            }],
            ..acs::Task::default()
        }
    }

    #[test]
    fn create_body_carries_labels_resources_ports_and_fragments() {
        let t = task();
        let body = compute_create_body(
            "arn:c",
            &t,
            &t.containers[0],
            &BTreeMap::new(),
            &BTreeMap::new(),
            None,
        )
        .expect("body");
        assert_eq!(body["Labels"][LABEL_TASK_ARN], t.arn);
        assert_eq!(body["Labels"]["team"], "x");
        assert_eq!(body["User"], "nobody");
        assert_eq!(body["Env"][0], "A=1");
        let h = &body["HostConfig"];
        assert_eq!(h["CpuShares"], 2);
        assert_eq!(h["Memory"], 64 * 1024 * 1024);
        assert_eq!(h["MemoryReservation"], 33_554_432);
        assert_eq!(h["NanoCpus"], 500_000_000);
        assert_eq!(h["LogConfig"]["Type"], "json-file");
        assert_eq!(h["PortBindings"]["80/tcp"][0]["HostPort"], "");
        let cfg: bollard::container::Config<String> =
            serde_json::from_value(body).expect("bollard shape");
        assert_eq!(cfg.image.as_deref(), Some("busybox"));
    }

    fn awsvpc_task() -> acs::Task {
        let mut t = task();
        t.network_mode = Some("awsvpc".into());
        t.elastic_network_interfaces = vec![acs::ElasticNetworkInterface {
            ec2_id: Some("eni-0123456789abcdef0".into()),
            mac_address: Some("0e:ec:0a:c8:00:09".into()),
            ipv4_addresses: vec![acs::IPv4AddressAssignment {
                private_address: Some("10.200.0.9".into()),
                primary: Some(true),
            }],
            private_dns_name: Some("ip-10-200-0-9.ec2.internal".into()),
            subnet_gateway_ipv4_address: Some("10.200.0.1/16".into()),
            ..acs::ElasticNetworkInterface::default()
        }];
        t
    }

    #[test]
    fn awsvpc_containers_join_the_pause_namespace_without_publishing_ports() {
        let t = awsvpc_task();
        let err = compute_create_body(
            "c",
            &t,
            &t.containers[0],
            &BTreeMap::new(),
            &BTreeMap::new(),
            None,
        )
        .expect_err("no pause yet");
        assert!(err.contains("pause"));
        let body = compute_create_body(
            "c",
            &t,
            &t.containers[0],
            &BTreeMap::new(),
            &BTreeMap::new(),
            Some("abc123"),
        )
        .expect("body");
        let h = &body["HostConfig"];
        assert_eq!(h["NetworkMode"], "container:abc123");
        assert!(h.get("PortBindings").is_none());
        assert!(body.get("ExposedPorts").is_none());
        let _: bollard::container::Config<String> =
            serde_json::from_value(body).expect("bollard shape");
    }

    #[test]
    fn the_pause_container_holds_the_task_address_and_mac() {
        let t = awsvpc_task();
        let body = compute_pause_body("arn:c", &t, "stevedore/pause:1").expect("body");
        assert_eq!(body["Labels"][LABEL_CONTAINER_NAME], PAUSE_CONTAINER_NAME);
        assert_eq!(body["Labels"][LABEL_TASK_ARN], t.arn);
        assert_eq!(body["HostConfig"]["NetworkMode"], AWSVPC_NETWORK);
        assert_eq!(
            body["NetworkingConfig"]["EndpointsConfig"][AWSVPC_NETWORK]["IPAMConfig"]
                ["IPv4Address"],
            "10.200.0.9"
        );
        assert_eq!(body["MacAddress"], "0e:ec:0a:c8:00:09");
        assert_eq!(body["Hostname"], "ip-10-200-0-9");
        let cfg: bollard::container::Config<String> =
            serde_json::from_value(body).expect("bollard shape");
        assert!(cfg.networking_config.is_some());
        assert_eq!(
            parse_gateway_cidr("10.200.0.1/16"),
            Some(("10.200.0.0/16".to_owned(), "10.200.0.1".to_owned()))
        );
        assert_eq!(parse_gateway_cidr("10.200.0.1"), None);
        let mut bare = t;
        bare.elastic_network_interfaces.clear();
        assert!(compute_pause_body("c", &bare, "i").is_err());
    }

    #[test]
    fn docker_names_follow_the_ecs_pattern() {
        assert_eq!(
            compute_docker_name(&task(), "app/x", "r1"),
            "ecs-web-3-app-x-r1"
        );
    }
}
