//! What an EC2 instance type offers, for RegisterContainerInstance calls that give an
//! instance identity document but no `totalResources` (AWS derives the resources from
//! the instance it knows; here the document's `instanceType` is all there is).
//!
//! Not AWS's full catalogue: the burstable `t2`/`t3`/`t3a`/`t4g` sizes, and the general
//! purpose (`m`), compute (`c`) and memory (`r`) families of generations 5 to 8, whose
//! sizes follow one rule: `large` is 2 vCPUs, `xlarge` 4, `Nxlarge` 4×N, and each vCPU
//! comes with 4 GiB (m), 2 GiB (c) or 8 GiB (r). Memory is the instance's whole memory;
//! the ECS agent on AWS registers a little less (what the OS keeps), which no document
//! tells us. Anything else is refused, asking for `totalResources`.

/// CPU units (1,024 per vCPU) and memory in MiB of `instance_type`, if known.
pub(crate) fn compute_instance_resources(instance_type: &str) -> Option<(i32, i32)> {
    let (family, size) = instance_type.split_once('.')?;
    let (vcpus, mib) = match family {
        "t2" | "t3" | "t3a" | "t4g" => burstable(family, size)?,
        _ => {
            let gib_per_vcpu = match family.as_bytes().first()? {
                b'm' => 4,
                b'c' => 2,
                b'r' => 8,
                _ => return None,
            };
            // The generation digit, then optional attribute letters (m5, m6i, c7g, r5a…).
            let generation = family.get(1..2)?.parse::<u8>().ok()?;
            let rest = family.get(2..)?;
            if !(5..=8).contains(&generation) || !rest.bytes().all(|b| b.is_ascii_lowercase()) {
                return None;
            }
            let vcpus = sized_vcpus(size)?;
            (vcpus, vcpus * gib_per_vcpu * 1024)
        }
    };
    Some((vcpus * 1024, mib))
}

/// vCPUs of a `large`/`xlarge`/`Nxlarge` size.
fn sized_vcpus(size: &str) -> Option<i32> {
    match size {
        "large" => Some(2),
        "xlarge" => Some(4),
        _ => {
            let n = size.strip_suffix("xlarge")?.parse::<i32>().ok()?;
            (1..=48).contains(&n).then_some(4 * n)
        }
    }
}

/// The burstable families' sizes: (vCPUs, MiB).
fn burstable(family: &str, size: &str) -> Option<(i32, i32)> {
    let t2 = family == "t2";
    Some(match size {
        "nano" => (if t2 { 1 } else { 2 }, 512),
        "micro" => (if t2 { 1 } else { 2 }, 1024),
        "small" => (if t2 { 1 } else { 2 }, 2048),
        "medium" => (2, 4096),
        "large" => (2, 8192),
        "xlarge" => (4, 16384),
        "2xlarge" => (8, 32768),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burstable_sizes_come_from_the_table() {
        assert_eq!(compute_instance_resources("t3.micro"), Some((2048, 1024)));
        assert_eq!(compute_instance_resources("t2.micro"), Some((1024, 1024)));
        assert_eq!(compute_instance_resources("t3.medium"), Some((2048, 4096)));
        assert_eq!(
            compute_instance_resources("t4g.2xlarge"),
            Some((8192, 32768))
        );
    }

    #[test]
    fn m_c_r_families_follow_the_size_rule() {
        assert_eq!(compute_instance_resources("m5.large"), Some((2048, 8192)));
        assert_eq!(compute_instance_resources("c6i.xlarge"), Some((4096, 8192)));
        assert_eq!(
            compute_instance_resources("r5a.4xlarge"),
            Some((16384, 131_072))
        );
        assert_eq!(
            compute_instance_resources("m7g.2xlarge"),
            Some((8192, 32768))
        );
    }

    #[test]
    fn unknown_types_are_none() {
        for t in [
            "",
            "m5",
            "x1.large",
            "m4.large",
            "m5.metal",
            "m5.0xlarge",
            "p3.2xlarge",
            "t3.huge",
        ] {
            assert_eq!(compute_instance_resources(t), None, "{t}");
        }
    }
}
