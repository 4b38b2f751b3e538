//! RegisterTaskDefinition's rules: what ECS refuses, and how it fills in what the caller
//! left out. Pure: [`compute_task_definition`] turns a request into the stored
//! definition or explains, in AWS's terms, what is wrong.

use super::names::{check_tags, is_simple_name};
use super::shapes::{
    Attribute, Compatibility, ContainerCondition, ContainerDefinition, NetworkMode,
    RegisterTaskDefinitionRequest, TaskDefinition, TaskDefinitionPlacementConstraintType,
    TaskDefinitionStatus, TransportProtocol,
};
use std::collections::BTreeSet;

/// Why a task definition was refused; the text is the message the caller sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TaskDefinitionError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, TaskDefinitionError> {
    Err(TaskDefinitionError(msg.into()))
}

/// Who registers, where, and when: the parts of a definition that do not come from the
/// request.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    /// The revision this registration gets.
    pub revision: i32,
    /// The definition's ARN.
    pub arn: String,
    /// Epoch seconds.
    pub now: f64,
    /// Principal ARN of the caller.
    pub registered_by: &'a str,
}

/// The one kernel capability a Fargate container may add, as AWS documents
/// (`KernelCapabilities.add`: "Tasks launched on Fargate only support adding the
/// SYS_PTRACE kernel capability").
pub const FARGATE_ADDABLE_CAPABILITY: &str = "SYS_PTRACE";

/// Why a container cannot run on Fargate, if it cannot: privileged mode, or a kernel
/// capability added other than [`FARGATE_ADDABLE_CAPABILITY`]. Checked when a
/// FARGATE-requiring definition is registered and again when a task launches on Fargate.
pub fn fargate_container_refusal(c: &ContainerDefinition) -> Option<String> {
    let name = c.name.as_deref().unwrap_or("");
    if c.privileged == Some(true) {
        return Some(format!(
            "Container '{name}': privileged mode is not supported on Fargate."
        ));
    }
    let added = c
        .linux_parameters
        .as_ref()
        .and_then(|lp| lp.capabilities.as_ref())
        .and_then(|caps| caps.add.as_deref())
        .unwrap_or_default();
    added
        .iter()
        .find(|cap| *cap != FARGATE_ADDABLE_CAPABILITY)
        .map(|cap| {
            format!(
                "Container '{name}': linuxParameters.capabilities.add contains '{cap}'; tasks launched on Fargate only support adding the '{FARGATE_ADDABLE_CAPABILITY}' kernel capability."
            )
        })
}

/// The Fargate table of valid (cpu units, memory MiB) pairs.
pub fn fargate_size_is_valid(cpu: i64, memory: i64) -> bool {
    let steps =
        |lo: i64, hi: i64, step: i64| memory >= lo && memory <= hi && (memory - lo) % step == 0;
    match cpu {
        256 => matches!(memory, 512 | 1024 | 2048),
        512 => steps(1024, 4096, 1024),
        1024 => steps(2048, 8192, 1024),
        2048 => steps(4096, 16384, 1024),
        4096 => steps(8192, 30720, 1024),
        8192 => steps(16384, 61440, 4096),
        16384 => steps(32768, 122880, 8192),
        _ => false,
    }
}

/// Parses a task-level `cpu`: CPU units ("1024") or vCPUs ("1 vCPU", "0.5vcpu").
pub fn parse_task_cpu(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(v) = t.strip_suffix("vcpu") {
        let vcpu: f64 = v.trim().parse().ok()?;
        let units = vcpu * 1024.0;
        return (units.is_finite() && units > 0.0 && units.fract() == 0.0 && units <= 1e9)
            .then_some(units as i64);
    }
    t.parse::<i64>().ok().filter(|v| *v > 0)
}

/// Parses a task-level `memory`: MiB ("2048") or GB ("2 GB", "0.5gb").
pub fn parse_task_memory(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(v) = t.strip_suffix("gb") {
        let gb: f64 = v.trim().parse().ok()?;
        let mib = gb * 1024.0;
        return (mib.is_finite() && mib > 0.0 && mib.fract() == 0.0 && mib <= 1e12)
            .then_some(mib as i64);
    }
    t.parse::<i64>().ok().filter(|v| *v > 0)
}

/// Validates `req` and builds the definition ECS would store for it.
pub fn compute_task_definition(
    req: &RegisterTaskDefinitionRequest,
    reg: &Registration<'_>,
) -> Result<TaskDefinition, TaskDefinitionError> {
    if !is_simple_name(&req.family, 255) {
        return fail(format!("Family '{}' is invalid. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.", req.family));
    }
    if req.container_definitions.is_empty() {
        return fail("Container list cannot be empty.");
    }
    if req.container_definitions.len() > 10 {
        return fail(
            "Too many containers: a task definition can have at most 10 container definitions.",
        );
    }
    if let Some(tags) = &req.tags {
        check_tags(tags).map_err(TaskDefinitionError)?;
    }
    let requires = req.requires_compatibilities.clone().unwrap_or_default();
    let fargate = requires.contains(&Compatibility::Fargate);
    let network_mode = req.network_mode;

    let task_cpu = match &req.cpu {
        Some(c) => Some(parse_task_cpu(c).ok_or_else(|| {
            TaskDefinitionError(format!("Invalid 'cpu' setting for task: '{c}'. Specify CPU units (for example '1024') or vCPUs (for example '1 vCPU')."))
        })?),
        None => None,
    };
    let task_memory = match &req.memory {
        Some(m) => Some(parse_task_memory(m).ok_or_else(|| {
            TaskDefinitionError(format!("Invalid 'memory' setting for task: '{m}'. Specify MiB (for example '2048') or GB (for example '2 GB')."))
        })?),
        None => None,
    };
    if let Some(cpu) = task_cpu {
        if !fargate && !(128..=196_608).contains(&cpu) {
            return fail(format!("Invalid 'cpu' setting for task. Task CPU must be between 128 and 196608 units (0.125 to 192 vCPUs); got {cpu}."));
        }
    }
    if fargate {
        if network_mode != Some(NetworkMode::Awsvpc) {
            return fail("Fargate only supports network mode 'awsvpc'.");
        }
        let (Some(cpu), Some(memory)) = (task_cpu, task_memory) else {
            return fail("Fargate requires that 'cpu' and 'memory' be defined at the task level.");
        };
        if !fargate_size_is_valid(cpu, memory) {
            return fail(format!("No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Amazon ECS documentation for the valid combinations of task CPU and memory."));
        }
    }
    if let Some(es) = &req.ephemeral_storage {
        if !(21..=200).contains(&es.size_in_gi_b) {
            return fail(
                "Invalid 'ephemeralStorage.sizeInGiB' setting. It must be between 21 and 200 GiB.",
            );
        }
    }

    let mut volume_names = BTreeSet::new();
    for v in req.volumes.iter().flatten() {
        let name = v.name.as_deref().unwrap_or("");
        if !is_simple_name(name, 255) {
            return fail(format!("Invalid volume name '{name}'. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed."));
        }
        if !volume_names.insert(name.to_owned()) {
            return fail(format!("Volume name '{name}' is used more than once."));
        }
        if fargate
            && v.host
                .as_ref()
                .and_then(|h| h.source_path.as_ref())
                .is_some()
        {
            return fail("Host volumes with a sourcePath are not supported on Fargate.");
        }
    }

    for pc in req.placement_constraints.iter().flatten() {
        if pc.type_ == Some(TaskDefinitionPlacementConstraintType::MemberOf)
            && pc.expression.as_deref().unwrap_or("").trim().is_empty()
        {
            return fail("A memberOf placement constraint requires an expression.");
        }
    }
    if req
        .placement_constraints
        .as_ref()
        .is_some_and(|p| p.len() > 10)
    {
        return fail("Too many placement constraints: at most 10 are allowed.");
    }
    if fargate
        && req
            .placement_constraints
            .as_ref()
            .is_some_and(|p| !p.is_empty())
    {
        return fail("Placement constraints are not supported on Fargate.");
    }

    let names: BTreeSet<&str> = req
        .container_definitions
        .iter()
        .filter_map(|c| c.name.as_deref())
        .collect();
    let mut seen_names = BTreeSet::new();
    let mut static_host_ports = BTreeSet::new();
    let mut containers = Vec::with_capacity(req.container_definitions.len());
    let mut cpu_sum: i64 = 0;
    let mut mem_sum: i64 = 0;
    for c in &req.container_definitions {
        let c = compute_container(
            c,
            &Ctx {
                network_mode,
                fargate,
                task_memory,
                volume_names: &volume_names,
                names: &names,
            },
        )?;
        let name = c.name.clone().unwrap_or_default();
        if !seen_names.insert(name.clone()) {
            return fail(format!("Container names must be unique within a task definition; '{name}' is used more than once."));
        }
        for pm in c.port_mappings.iter().flatten() {
            if let Some(hp) = pm.host_port.filter(|p| *p != 0) {
                let proto = pm.protocol.unwrap_or(TransportProtocol::Tcp);
                if !static_host_ports.insert((hp, proto)) {
                    return fail(format!(
                        "The host port {hp}/{} is mapped more than once in this task definition.",
                        proto.as_str()
                    ));
                }
            }
        }
        cpu_sum += i64::from(c.cpu.unwrap_or(0));
        mem_sum += i64::from(c.memory_reservation.or(c.memory).unwrap_or(0));
        containers.push(c);
    }
    if !containers.iter().any(|c| c.essential.unwrap_or(true)) {
        return fail("Invalid task definition: at least one container must be essential.");
    }
    if let Some(tc) = task_cpu {
        if cpu_sum > tc {
            return fail(format!("Invalid setting: the containers' CPU units ({cpu_sum}) exceed the task CPU ({tc})."));
        }
    }
    if let Some(tm) = task_memory {
        if mem_sum > tm {
            return fail(format!("Invalid setting: the containers' memory reservations ({mem_sum} MiB) exceed the task memory ({tm} MiB)."));
        }
    }
    for c in &containers {
        for d in c.depends_on.iter().flatten() {
            let dep = containers
                .iter()
                .find(|o| o.name.as_deref() == Some(d.container_name.as_str()));
            if d.condition == ContainerCondition::Complete
                && dep.is_some_and(|o| o.essential.unwrap_or(true))
            {
                return fail(format!("Invalid dependsOn in container '{}': the COMPLETE condition cannot be used on essential container '{}'.", c.name.as_deref().unwrap_or(""), d.container_name));
            }
        }
    }

    let mut compatibilities = vec![Compatibility::Ec2];
    let fargate_ok = network_mode == Some(NetworkMode::Awsvpc)
        && matches!((task_cpu, task_memory), (Some(c), Some(m)) if fargate_size_is_valid(c, m));
    if fargate_ok {
        compatibilities.push(Compatibility::Fargate);
    }
    Ok(TaskDefinition {
        task_definition_arn: Some(reg.arn.clone()),
        requires_attributes: Some(compute_requires_attributes(req, &containers)),
        container_definitions: Some(containers),
        family: Some(req.family.clone()),
        task_role_arn: req.task_role_arn.clone(),
        execution_role_arn: req.execution_role_arn.clone(),
        network_mode,
        revision: Some(reg.revision),
        volumes: Some(req.volumes.clone().unwrap_or_default()),
        status: Some(TaskDefinitionStatus::Active),
        placement_constraints: Some(req.placement_constraints.clone().unwrap_or_default()),
        compatibilities: Some(compatibilities),
        runtime_platform: req.runtime_platform.clone(),
        requires_compatibilities: req.requires_compatibilities.clone(),
        cpu: task_cpu.map(|c| c.to_string()),
        memory: task_memory.map(|m| m.to_string()),
        inference_accelerators: req.inference_accelerators.clone(),
        pid_mode: req.pid_mode,
        ipc_mode: req.ipc_mode,
        proxy_configuration: req.proxy_configuration.clone(),
        registered_at: Some(reg.now),
        deregistered_at: None,
        delete_requested_at: None,
        registered_by: Some(reg.registered_by.to_owned()),
        ephemeral_storage: req.ephemeral_storage.clone(),
        enable_fault_injection: req.enable_fault_injection,
        trusted_execution_configuration: req.trusted_execution_configuration.clone(),
    })
}

struct Ctx<'a> {
    network_mode: Option<NetworkMode>,
    fargate: bool,
    task_memory: Option<i64>,
    volume_names: &'a BTreeSet<String>,
    names: &'a BTreeSet<&'a str>,
}

fn compute_container(
    c: &ContainerDefinition,
    cx: &Ctx<'_>,
) -> Result<ContainerDefinition, TaskDefinitionError> {
    let name = c.name.as_deref().unwrap_or("");
    if name.is_empty() {
        return fail("Container.name should not be null or empty.");
    }
    if !is_simple_name(name, 255) {
        return fail(format!("Invalid container name '{name}'. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed."));
    }
    let image = c.image.as_deref().unwrap_or("");
    if image.trim().is_empty() {
        return fail(format!(
            "Container.image should not be null or empty (container '{name}')."
        ));
    }
    if image.len() > 1024 || image.chars().any(char::is_whitespace) {
        return fail(format!(
            "Invalid image reference '{image}' in container '{name}'."
        ));
    }
    if let Some(cpu) = c.cpu {
        if !(0..=10240).contains(&cpu) {
            return fail(format!("Invalid 'cpu' setting for container '{name}': {cpu}. It must be between 0 and 10240 CPU units."));
        }
    }
    for (field, v) in [
        ("memory", c.memory),
        ("memoryReservation", c.memory_reservation),
    ] {
        if let Some(v) = v {
            if v < 6 {
                return fail(format!("Invalid '{field}' setting for container '{name}': {v} MiB. The minimum is 6 MiB."));
            }
        }
    }
    if let (Some(hard), Some(soft)) = (c.memory, c.memory_reservation) {
        if hard <= soft {
            return fail(format!("Invalid setting for container '{name}'. 'memory' must be greater than 'memoryReservation'."));
        }
    }
    if cx.task_memory.is_none()
        && !cx.fargate
        && c.memory.is_none()
        && c.memory_reservation.is_none()
    {
        return fail(format!("Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified."));
    }
    if let (Some(tm), Some(m)) = (cx.task_memory, c.memory) {
        if i64::from(m) > tm {
            return fail(format!("Invalid setting for container '{name}': its memory ({m} MiB) exceeds the task memory ({tm} MiB)."));
        }
    }
    let mut out = c.clone();
    let mode = cx.network_mode.unwrap_or(NetworkMode::Bridge);
    let mut mappings = Vec::new();
    for pm in c.port_mappings.iter().flatten() {
        let mut pm = pm.clone();
        match (pm.container_port, &pm.container_port_range) {
            (Some(p), None) if (1..=65535).contains(&p) => {}
            (Some(p), None) => {
                return fail(format!(
                    "Invalid containerPort {p} in container '{name}': ports are 1 to 65535."
                ))
            }
            (None, Some(range)) => {
                if parse_port_range(range).is_none() {
                    return fail(format!("Invalid containerPortRange '{range}' in container '{name}': use 'first-last' with 1 ≤ first < last ≤ 65535."));
                }
                if pm.host_port.is_some() {
                    return fail(format!("Container '{name}': hostPort cannot be set together with containerPortRange."));
                }
            }
            (Some(_), Some(_)) => {
                return fail(format!(
                    "Container '{name}': containerPort and containerPortRange cannot both be set."
                ))
            }
            (None, None) => {
                return fail(format!(
                "Container '{name}': a port mapping needs a containerPort or a containerPortRange."
            ))
            }
        }
        if let Some(hp) = pm.host_port {
            if !(0..=65535).contains(&hp) {
                return fail(format!(
                    "Invalid hostPort {hp} in container '{name}': ports are 0 to 65535."
                ));
            }
        }
        match mode {
            NetworkMode::Awsvpc | NetworkMode::Host => {
                if let (Some(hp), Some(cp)) = (pm.host_port, pm.container_port) {
                    if hp != cp && hp != 0 {
                        return fail(format!("When networkMode={}, the host ports and container ports in port mappings must match.", mode.as_str()));
                    }
                }
                if pm.container_port_range.is_none() {
                    pm.host_port = pm.container_port;
                }
            }
            NetworkMode::None => {
                return fail("Port mappings are not allowed when networkMode=none.");
            }
            NetworkMode::Bridge => {}
        }
        if pm.protocol.is_none() {
            pm.protocol = Some(TransportProtocol::Tcp);
        }
        mappings.push(pm);
    }
    if c.links.as_ref().is_some_and(|l| !l.is_empty()) && mode != NetworkMode::Bridge {
        return fail(format!(
            "Container '{name}': links are only supported when networkMode=bridge."
        ));
    }
    if cx.fargate {
        if let Some(refusal) = fargate_container_refusal(c) {
            return fail(refusal);
        }
    }
    for mp in c.mount_points.iter().flatten() {
        let src = mp.source_volume.as_deref().unwrap_or("");
        if !cx.volume_names.contains(src) {
            return fail(format!("Invalid mountPoint in container '{name}': the source volume '{src}' is not a volume of this task definition."));
        }
        if mp.container_path.as_deref().unwrap_or("").is_empty() {
            return fail(format!(
                "Invalid mountPoint in container '{name}': containerPath is required."
            ));
        }
    }
    for d in c.depends_on.iter().flatten() {
        if !cx.names.contains(d.container_name.as_str()) || d.container_name == name {
            return fail(format!("Invalid dependsOn in container '{name}': '{}' is not another container of this task definition.", d.container_name));
        }
    }
    if let Some(hc) = &c.health_check {
        check_health_check(name, hc)?;
    }
    for e in c.environment.iter().flatten() {
        if e.name.as_deref().unwrap_or("").is_empty() {
            return fail(format!(
                "Container '{name}': environment variable names cannot be empty."
            ));
        }
    }
    if let Some(t) = c.stop_timeout {
        if t < 0 || (cx.fargate && !(2..=120).contains(&t)) {
            return fail(format!("Invalid stopTimeout {t} in container '{name}'."));
        }
    }
    // ECS fills these in on every container it stores, so describing a definition shows them.
    out.port_mappings = Some(mappings);
    out.cpu = Some(c.cpu.unwrap_or(0));
    out.essential = Some(c.essential.unwrap_or(true));
    out.environment = Some(c.environment.clone().unwrap_or_default());
    out.mount_points = Some(c.mount_points.clone().unwrap_or_default());
    out.volumes_from = Some(c.volumes_from.clone().unwrap_or_default());
    out.system_controls = Some(c.system_controls.clone().unwrap_or_default());
    Ok(out)
}

fn check_health_check(
    name: &str,
    hc: &super::shapes::HealthCheck,
) -> Result<(), TaskDefinitionError> {
    let first = hc.command.first().map(String::as_str).unwrap_or("");
    if !matches!(first, "CMD" | "CMD-SHELL" | "NONE") {
        return fail(format!("Invalid healthCheck in container '{name}': the command must start with CMD, CMD-SHELL or NONE."));
    }
    let ranges = [
        ("interval", hc.interval, 5, 300),
        ("timeout", hc.timeout, 2, 120),
        ("retries", hc.retries, 1, 10),
        ("startPeriod", hc.start_period, 0, 300),
    ];
    for (field, v, lo, hi) in ranges {
        if let Some(v) = v {
            if !(lo..=hi).contains(&v) {
                return fail(format!("Invalid healthCheck.{field} {v} in container '{name}': it must be between {lo} and {hi}."));
            }
        }
    }
    Ok(())
}

/// Parses `"first-last"`.
pub fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a >= 1 && a < b).then_some((a, b))
}

/// The agent capabilities a definition needs, as ECS derives them; placement later
/// requires an instance to advertise each.
fn compute_requires_attributes(
    req: &RegisterTaskDefinitionRequest,
    containers: &[ContainerDefinition],
) -> Vec<Attribute> {
    let mut names = BTreeSet::new();
    if req.network_mode == Some(NetworkMode::Awsvpc) {
        names.insert("ecs.capability.task-eni");
    }
    if req.task_role_arn.is_some() {
        names.insert("com.amazonaws.ecs.capability.task-iam-role");
    }
    if req.cpu.is_some() || req.memory.is_some() {
        names.insert("ecs.capability.task-cpu-mem-limit");
    }
    for c in containers {
        if c.memory_reservation.is_some() {
            names.insert("com.amazonaws.ecs.capability.docker-remote-api.1.21");
        }
        if c.health_check.is_some() {
            names.insert("ecs.capability.container-health-check");
        }
        if c.depends_on.as_ref().is_some_and(|d| !d.is_empty()) {
            names.insert("ecs.capability.container-ordering");
        }
        if let Some(lc) = &c.log_configuration {
            if lc.log_driver.as_str() == "awslogs" {
                names.insert("com.amazonaws.ecs.capability.logging-driver.awslogs");
                names.insert("com.amazonaws.ecs.capability.docker-remote-api.1.19");
                if req.execution_role_arn.is_some() {
                    names.insert("ecs.capability.execution-role-awslogs");
                }
            }
        }
        if c.container_port_range_used() {
            names.insert("ecs.capability.network.container-port-range");
        }
    }
    names
        .into_iter()
        .map(|n| Attribute {
            name: n.to_owned(),
            value: None,
            target_type: None,
            target_id: None,
        })
        .collect()
}

impl ContainerDefinition {
    fn container_port_range_used(&self) -> bool {
        self.port_mappings
            .iter()
            .flatten()
            .any(|p| p.container_port_range.is_some())
    }
}

#[cfg(test)]
mod tests;
