//! The change batches against the real kernel: a table brought from one rule set to
//! the next by [`netfilter::compile_update`]'s batch lists exactly like a table written
//! whole from the next rule set. Throwaway tables (`inet stevedore_t<pid>_…`) only, never
//! Stevedore's own; they are removed at the end. Needs root and nft: skipped without
//! them, except under CI=true where that fails.

use netfilter::{
    compile_script, compile_update, Group, HostPorts, Interface, Listener, Peer, Protocol, Rule,
    Ruleset,
};
use std::net::Ipv4Addr;
use std::process::Command;

fn ruleset(enis: usize, rule: bool, lb: bool) -> Ruleset {
    let mut g = Group {
        ingress: vec![Rule {
            protocol: Protocol::All,
            peer: Peer::Group("sg-a".into()),
        }],
        egress: vec![Rule {
            protocol: Protocol::All,
            peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
        }],
    };
    if rule {
        g.ingress.push(Rule {
            protocol: Protocol::Tcp { from: 80, to: 80 },
            peer: Peer::Group("sg-lb".into()),
        });
    }
    let lb_listeners = if lb {
        vec![Listener {
            address: Some(Ipv4Addr::LOCALHOST),
            port: 18080,
            groups: vec!["sg-lb".into()],
            marks: vec![0x5E00_0009],
        }]
    } else {
        Vec::new()
    };
    Ruleset {
        interfaces: (0..enis)
            .map(|i| Interface {
                id: format!("eni-{i}"),
                address: Ipv4Addr::new(10, 99, 0, u8::try_from(i + 2).expect("small")),
                groups: vec!["sg-a".into()],
            })
            .collect(),
        groups: [
            ("sg-a".to_owned(), g),
            ("sg-lb".to_owned(), Group::default()),
        ]
        .into(),
        listeners: lb_listeners,
        hosts: if lb {
            vec![HostPorts {
                id: "i1".into(),
                groups: vec!["sg-a".into()],
                tcp: vec![32768],
                udp: Vec::new(),
            }]
        } else {
            Vec::new()
        },
    }
}

fn nft(script: &str) -> Result<(), String> {
    netfilter::apply(script).map_err(|e| e.to_string())
}

/// The table's listing with its blocks (sets, maps, chains) sorted: nft lists them in
/// creation order, which a change batch does not keep and which means nothing.
fn listing(table: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "inet", table])
        .output()
        .expect("nft runs");
    let text = String::from_utf8_lossy(&out.stdout).replace(table, "T");
    let body = text
        .trim()
        .strip_prefix("table inet T {")
        .and_then(|b| b.strip_suffix('}'))
        .unwrap_or_default();
    let mut blocks: Vec<&str> = body.split("\n\n").map(str::trim).collect();
    blocks.sort();
    blocks.join("\n\n")
}

#[test]
fn a_change_batch_leaves_the_table_a_whole_write_would() {
    if netfilter::probe().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nft is required under CI=true"
        );
        eprintln!("nft cannot run here; not checked");
        return;
    }
    let pid = std::process::id();
    let (stepped, whole) = (format!("stevedore_t{pid}_s"), format!("stevedore_t{pid}_w"));
    let rename =
        |script: &str, table: &str| script.replace("inet stevedore", &format!("inet {table}"));
    let steps = [
        ruleset(2, false, false),
        ruleset(3, false, false),
        ruleset(3, true, true),
        ruleset(1, true, true),
        ruleset(2, false, false),
    ];
    let mut result = Ok(());
    for pair in steps.windows(2) {
        let (old, new) = (compile_script(&pair[0]), compile_script(&pair[1]));
        let batch = compile_update(&old, &new).expect("bridgeable");
        result = nft(&rename(&old, &stepped))
            .and_then(|()| nft(&rename(&batch, &stepped)))
            .and_then(|()| nft(&rename(&new, &whole)))
            .map_err(|e| format!("{e}\nbatch:\n{batch}"));
        if result.is_err() {
            break;
        }
        let (a, b) = (listing(&stepped), listing(&whole));
        if a != b {
            result = Err(format!("stepped:\n{a}\nwhole:\n{b}\nbatch:\n{batch}"));
            break;
        }
    }
    for t in [&stepped, &whole] {
        let _ = nft(&format!("table inet {t} {{}}\ndelete table inet {t}\n"));
    }
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Interfaces coming and going with groups already present are element-only batches:
/// sent over netlink (not through `nft`, which `apply` would fall back to), they leave
/// the table as a whole write would.
#[test]
fn element_batches_over_netlink_leave_the_table_a_whole_write_would() {
    if netfilter::probe().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nft is required under CI=true"
        );
        eprintln!("nft cannot run here; not checked");
        return;
    }
    let pid = std::process::id();
    let (stepped, whole) = (
        format!("stevedore_t{pid}_ns"),
        format!("stevedore_t{pid}_nw"),
    );
    let rename =
        |script: &str, table: &str| script.replace("inet stevedore", &format!("inet {table}"));
    let steps = [
        ruleset(2, true, true),
        ruleset(5, true, true),
        ruleset(3, true, true),
        ruleset(4, true, true),
    ];
    let mut result = nft(&rename(&compile_script(&steps[0]), &stepped));
    for pair in steps.windows(2) {
        if result.is_err() {
            break;
        }
        let (old, new) = (compile_script(&pair[0]), compile_script(&pair[1]));
        let batch = rename(&compile_update(&old, &new).expect("bridgeable"), &stepped);
        let Some(changes) = netfilter::parse_elements(&batch) else {
            result = Err(format!("not an element batch:\n{batch}"));
            break;
        };
        result = netfilter::apply_elements(&changes)
            .map_err(|e| e.to_string())
            .and_then(|()| nft(&rename(&new, &whole)))
            .map_err(|e| format!("{e}\nbatch:\n{batch}"));
        if result.is_err() {
            break;
        }
        let (a, b) = (listing(&stepped), listing(&whole));
        if a != b {
            result = Err(format!("stepped:\n{a}\nwhole:\n{b}\nbatch:\n{batch}"));
        }
    }
    // A refused batch (an element of a set that does not exist) changes nothing.
    if result.is_ok() {
        let before = listing(&stepped);
        let bad = format!(
            "add element inet {stepped} sg_a {{ 10.99.9.9 }}\nadd element inet {stepped} no_such_set {{ 10.99.9.9 }}\n"
        );
        let changes = netfilter::parse_elements(&bad).expect("elements");
        if netfilter::apply_elements(&changes).is_ok() {
            result = Err("a batch naming a missing set was taken".into());
        } else if listing(&stepped) != before {
            result = Err("a refused batch changed the table".into());
        }
    }
    for t in [&stepped, &whole] {
        let _ = nft(&format!("table inet {t} {{}}\ndelete table inet {t}\n"));
    }
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Rules added to and removed from a group rewrite its set's chain over netlink: the
/// rules of every shape a group chain holds list exactly as nft's own.
#[test]
fn rule_changes_over_netlink_list_as_nfts_own() {
    if netfilter::probe().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nft is required under CI=true"
        );
        eprintln!("nft cannot run here; not checked");
        return;
    }
    let pid = std::process::id();
    let (stepped, whole) = (
        format!("stevedore_t{pid}_rs"),
        format!("stevedore_t{pid}_rw"),
    );
    let rename =
        |script: &str, table: &str| script.replace("inet stevedore", &format!("inet {table}"));
    let base = ruleset(3, true, true);
    let mut more = base.clone();
    let cidr = |a: [u8; 4], len| Peer::Cidr(Ipv4Addr::from(a), len);
    let shapes = [
        (Protocol::Tcp { from: 80, to: 90 }, cidr([10, 1, 0, 0], 16)),
        (
            Protocol::Udp { from: 53, to: 53 },
            cidr([192, 168, 1, 7], 32),
        ),
        (
            Protocol::Tcp { from: 0, to: 65535 },
            Peer::Group("sg-lb".into()),
        ),
        (
            Protocol::Icmp {
                icmp_type: Some(8),
                code: Some(0),
            },
            cidr([172, 16, 0, 0], 12),
        ),
        (
            Protocol::Icmp {
                icmp_type: Some(3),
                code: None,
            },
            cidr([0, 0, 0, 0], 0),
        ),
        (
            Protocol::Icmp {
                icmp_type: None,
                code: None,
            },
            Peer::Group("sg-a".into()),
        ),
        (Protocol::Number(47), cidr([10, 2, 3, 0], 24)),
        (
            Protocol::Udp {
                from: 1000,
                to: 2000,
            },
            Peer::Group("sg-lb".into()),
        ),
    ];
    let group = more.groups.get_mut("sg-a").expect("sg-a");
    for (protocol, peer) in shapes {
        group.ingress.push(Rule {
            protocol,
            peer: peer.clone(),
        });
        group.egress.push(Rule { protocol, peer });
    }
    let steps = [base.clone(), more, base];
    let mut result = nft(&rename(&compile_script(&steps[0]), &stepped));
    for pair in steps.windows(2) {
        if result.is_err() {
            break;
        }
        let (old, new) = (compile_script(&pair[0]), compile_script(&pair[1]));
        let batch = rename(&compile_update(&old, &new).expect("bridgeable"), &stepped);
        let Some(statements) = netfilter::parse_batch(&batch) else {
            result = Err(format!("netlink cannot carry:\n{batch}"));
            break;
        };
        result = netfilter::apply_batch(&statements)
            .map_err(|e| e.to_string())
            .and_then(|()| nft(&rename(&new, &whole)))
            .map_err(|e| format!("{e}\nbatch:\n{batch}"));
        if result.is_err() {
            break;
        }
        let (a, b) = (listing(&stepped), listing(&whole));
        if a != b {
            result = Err(format!("stepped:\n{a}\nwhole:\n{b}\nbatch:\n{batch}"));
        }
    }
    for t in [&stepped, &whole] {
        let _ = nft(&format!("table inet {t} {{}}\ndelete table inet {t}\n"));
    }
    if let Err(e) = result {
        panic!("{e}");
    }
}
