use super::*;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("address")
}

fn eni(id: &str, address: &str, groups: &[&str]) -> Interface {
    Interface {
        id: id.into(),
        address: ip(address),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn all_egress() -> Rule {
    Rule {
        protocol: Protocol::All,
        peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
    }
}

/// The default group as AWS creates it: all in from itself, all out.
fn default_group(id: &str) -> Group {
    Group {
        ingress: vec![Rule {
            protocol: Protocol::All,
            peer: Peer::Group(id.into()),
        }],
        egress: vec![all_egress()],
    }
}

/// The rules of chain `name`, or of the set of groups' chain whose name is `name` and a
/// hash of its rules.
fn chain<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let start = text
        .find(&format!("chain {name} {{"))
        .or_else(|| {
            text.match_indices(&format!("chain {name}_"))
                .find_map(|(at, m)| {
                    let rest = &text[at + m.len()..];
                    (rest.len() > 14
                        && rest[..12].bytes().all(|b| b.is_ascii_hexdigit())
                        && rest[12..].starts_with(" {"))
                    .then_some(at)
                })
        })
        .unwrap_or_else(|| panic!("no chain {name} in\n{text}"));
    text[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.trim() != "}")
        .map(str::trim)
        .collect()
}

#[test]
fn default_group_members_admit_each_other_through_a_set_of_their_addresses() {
    let rs = Ruleset {
        interfaces: vec![
            eni("eni-a1", "172.31.0.5", &["sg-a"]),
            eni("eni-a2", "172.31.0.6", &["sg-a"]),
        ],
        groups: [("sg-a".to_owned(), default_group("sg-a"))].into(),
        listeners: Vec::new(),
        hosts: Vec::new(),
    };
    let text = compile(&rs);
    assert!(
        text.contains("set sg_a {\n\t\ttype ipv4_addr\n\t\telements = { 172.31.0.5, 172.31.0.6 }"),
        "{text}"
    );
    assert_eq!(chain(&text, "in_sg_a"), ["ip saddr @sg_a accept", "drop"]);
    assert_eq!(
        chain(&text, "out_sg_a"),
        ["ip daddr 169.254.0.0/16 return", "return", "drop"]
    );
    assert!(text.contains("172.31.0.5 : jump in_sg_a"), "{text}");
    assert!(text.contains("172.31.0.6 : jump out_sg_a"), "{text}");
}

#[test]
fn a_group_without_rules_drops_everything_but_established_flows() {
    let rs = Ruleset {
        interfaces: vec![eni("eni-b", "10.0.0.9", &["sg-empty"])],
        groups: [("sg-empty".to_owned(), Group::default())].into(),
        listeners: Vec::new(),
        hosts: Vec::new(),
    };
    let text = compile(&rs);
    assert_eq!(chain(&text, "in_sg_empty"), ["drop"]);
    assert_eq!(
        chain(&text, "out_sg_empty"),
        ["ip daddr 169.254.0.0/16 return", "drop"]
    );
    let forward = chain(&text, "forward");
    assert_eq!(forward[1], "ct state established,related accept");
    // A group the rule set does not know grants nothing either.
    let rs = Ruleset {
        interfaces: vec![eni("eni-c", "10.0.0.10", &["sg-gone"])],
        groups: BTreeMap::new(),
        listeners: Vec::new(),
        hosts: Vec::new(),
    };
    assert_eq!(chain(&compile(&rs), "in_sg_gone"), ["drop"]);
}

#[test]
fn protocols_ports_and_cidrs_become_nft_matches() {
    let rules = vec![
        Rule {
            protocol: Protocol::Tcp { from: 80, to: 80 },
            peer: Peer::Cidr(ip("10.1.0.0"), 16),
        },
        Rule {
            protocol: Protocol::Tcp {
                from: 8000,
                to: 8100,
            },
            peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
        },
        Rule {
            protocol: Protocol::Udp { from: 0, to: 65535 },
            peer: Peer::Group("sg-b".into()),
        },
        Rule {
            protocol: Protocol::Icmp {
                icmp_type: Some(8),
                code: None,
            },
            peer: Peer::Cidr(ip("192.168.1.7"), 32),
        },
        Rule {
            protocol: Protocol::Icmp {
                icmp_type: Some(3),
                code: Some(4),
            },
            peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
        },
        Rule {
            protocol: Protocol::Icmp {
                icmp_type: None,
                code: None,
            },
            peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
        },
        Rule {
            protocol: Protocol::Number(47),
            peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
        },
    ];
    let rs = Ruleset {
        interfaces: vec![
            eni("eni-x", "10.0.0.2", &["sg-x"]),
            eni("eni-y", "10.0.0.3", &["sg-b"]),
        ],
        groups: [
            (
                "sg-x".to_owned(),
                Group {
                    ingress: rules,
                    egress: vec![Rule {
                        protocol: Protocol::Tcp { from: 443, to: 443 },
                        peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
                    }],
                },
            ),
            ("sg-b".to_owned(), Group::default()),
        ]
        .into(),
        listeners: Vec::new(),
        hosts: Vec::new(),
    };
    let text = compile(&rs);
    assert_eq!(
        chain(&text, "in_sg_x"),
        [
            "ip saddr 10.1.0.0/16 tcp dport 80 accept",
            "tcp dport 8000-8100 accept",
            "ip saddr @sg_b meta l4proto udp accept",
            "ip saddr 192.168.1.7/32 icmp type 8 accept",
            "icmp type 3 icmp code 4 accept",
            "meta l4proto icmp accept",
            "meta l4proto 47 accept",
            "drop",
        ]
    );
    assert_eq!(
        chain(&text, "out_sg_x"),
        [
            "ip daddr 169.254.0.0/16 return",
            "tcp dport 443 return",
            "drop"
        ]
    );
    // sg-b is a peer: its set holds its member, eni-y.
    assert!(text.contains("elements = { 10.0.0.3 }"), "{text}");
}

#[test]
fn rules_of_several_groups_are_unioned_once() {
    let rs = Ruleset {
        interfaces: vec![eni("eni-u", "10.0.0.4", &["sg-1", "sg-2"])],
        groups: [
            ("sg-1".to_owned(), default_group("sg-1")),
            ("sg-2".to_owned(), default_group("sg-2")),
        ]
        .into(),
        listeners: Vec::new(),
        hosts: Vec::new(),
    };
    let text = compile(&rs);
    assert_eq!(
        chain(&text, "in_sg_1_sg_2"),
        ["ip saddr @sg_1 accept", "ip saddr @sg_2 accept", "drop"]
    );
    assert_eq!(
        chain(&text, "out_sg_1_sg_2"),
        ["ip daddr 169.254.0.0/16 return", "return", "drop"]
    );
}

#[test]
fn the_script_replaces_the_table_atomically_and_removes_it_when_nothing_is_enforced() {
    let empty = compile_script(&Ruleset::default());
    assert_eq!(
        empty,
        "table inet stevedore {}\ndelete table inet stevedore\n"
    );
    let rs = Ruleset {
        interfaces: vec![eni("eni-a", "10.0.0.2", &["sg-a"])],
        groups: [("sg-a".to_owned(), default_group("sg-a"))].into(),
        listeners: Vec::new(),
        hosts: Vec::new(),
    };
    let script = compile_script(&rs);
    assert!(script.starts_with(
        "table inet stevedore {}\ndelete table inet stevedore\ntable inet stevedore {\n"
    ));
    // Nothing outside Stevedore's table is named.
    for line in script
        .lines()
        .filter(|l| l.starts_with("table") || l.starts_with("delete"))
    {
        assert!(line.contains("inet stevedore"), "{line}");
    }
}

#[test]
fn a_duplicate_address_is_enforced_once() {
    let rs = Ruleset {
        interfaces: vec![
            eni("eni-1", "10.0.0.2", &["sg-a"]),
            eni("eni-2", "10.0.0.2", &["sg-a"]),
        ],
        groups: [("sg-a".to_owned(), default_group("sg-a"))].into(),
        listeners: Vec::new(),
        hosts: Vec::new(),
    };
    let text = compile(&rs);
    assert_eq!(text.matches("10.0.0.2 : jump in_sg_a").count(), 1, "{text}");
}

#[test]
fn interfaces_with_the_same_groups_share_one_pair_of_chains() {
    let rs = Ruleset {
        interfaces: vec![
            eni("eni-1", "10.0.0.2", &["sg-a", "sg-b"]),
            eni("eni-2", "10.0.0.3", &["sg-b", "sg-a", "sg-b"]),
            eni("eni-3", "10.0.0.4", &["sg-b"]),
        ],
        groups: [
            ("sg-a".to_owned(), default_group("sg-a")),
            ("sg-b".to_owned(), default_group("sg-b")),
        ]
        .into(),
        listeners: Vec::new(),
        hosts: Vec::new(),
    };
    let text = compile(&rs);
    assert_eq!(text.matches("\tchain in_").count(), 2, "{text}");
    // A rule change renames the chain (a hash of its rules ends the name).
    let mut changed = rs.clone();
    changed
        .groups
        .get_mut("sg-b")
        .expect("sg-b")
        .ingress
        .push(Rule {
            protocol: Protocol::Tcp { from: 1, to: 1 },
            peer: Peer::Cidr(Ipv4Addr::new(10, 0, 0, 0), 8),
        });
    let again = compile(&changed);
    let name = |t: &str| {
        let ingress = &t[t.find("map ingress").expect("map")..];
        let at = ingress.find("10.0.0.4 : jump ").expect("element") + 16;
        ingress[at..]
            .split([',', ' ', '\n'])
            .next()
            .expect("name")
            .to_owned()
    };
    assert_ne!(name(&text), name(&again));
    assert_eq!(
        name(&text),
        name(&compile(&rs)),
        "stable from one compile to the next"
    );
    assert_eq!(text.matches("\tchain out_").count(), 2, "{text}");
    assert!(text.contains("10.0.0.2 : jump in_sg_a_sg_b"), "{text}");
    assert!(text.contains("10.0.0.3 : jump in_sg_a_sg_b"), "{text}");
    assert!(text.contains("10.0.0.4 : jump in_sg_b"), "{text}");
    assert_eq!(
        chain(&text, "in_sg_a_sg_b"),
        ["ip saddr @sg_a accept", "ip saddr @sg_b accept", "drop"]
    );
}

#[test]
fn a_set_of_many_groups_is_named_by_a_stable_hash() {
    let groups: Vec<String> = (0..16).map(|i| format!("sg-{i:017x}")).collect();
    let name = set_chain("in", &groups);
    assert!(name.len() < 64 && name.starts_with("in_h"), "{name}");
    let mut reversed = groups.clone();
    reversed.reverse();
    assert_eq!(set_chain("in", &reversed), name);
    assert_ne!(set_chain("in", &groups[1..]), name);
}

/// The compiled script is valid nft syntax: checked with `nft -c` (which changes
/// nothing) where the tool can run.
#[test]
fn the_script_passes_nft_check_mode_where_nft_runs() {
    if crate::probe().is_err() {
        eprintln!("nft cannot run here; syntax not checked");
        return;
    }
    let rs = Ruleset {
        interfaces: vec![
            eni("eni-a", "10.0.0.2", &["sg-a", "sg-b"]),
            eni("eni-b", "10.0.0.3", &["sg-b"]),
        ],
        groups: [
            ("sg-a".to_owned(), default_group("sg-a")),
            (
                "sg-b".to_owned(),
                Group {
                    ingress: vec![
                        Rule {
                            protocol: Protocol::Tcp { from: 80, to: 90 },
                            peer: Peer::Group("sg-a".into()),
                        },
                        Rule {
                            protocol: Protocol::Icmp {
                                icmp_type: Some(8),
                                code: Some(0),
                            },
                            peer: Peer::Cidr(ip("10.0.0.0"), 8),
                        },
                        Rule {
                            protocol: Protocol::Number(47),
                            peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
                        },
                    ],
                    egress: vec![Rule {
                        protocol: Protocol::Udp { from: 53, to: 53 },
                        peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
                    }],
                },
            ),
        ]
        .into(),
        listeners: vec![Listener {
            address: Some(ip("127.0.0.1")),
            port: 8080,
            groups: vec!["sg-a".into()],
            marks: vec![0x5E00_0001, 0x5E00_0002],
        }],
        hosts: vec![HostPorts {
            id: "abc".into(),
            groups: vec!["sg-b".into()],
            tcp: vec![32768, 32770],
            udp: vec![5353],
        }],
    };
    let script = compile_script(&rs);
    let out = std::process::Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(script.as_bytes())?;
            c.wait_with_output()
        })
        .expect("nft runs");
    assert!(
        out.status.success(),
        "{}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn listener(port: u16, groups: &[&str]) -> Listener {
    Listener {
        address: Some(ip("127.0.0.1")),
        port,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        marks: Vec::new(),
    }
}

#[test]
fn a_target_admitting_the_load_balancers_group_admits_its_marked_connections() {
    let target = Group {
        ingress: vec![Rule {
            protocol: Protocol::Tcp {
                from: 8080,
                to: 8080,
            },
            peer: Peer::Group("sg-lb".into()),
        }],
        egress: vec![all_egress()],
    };
    let mut lb = listener(80, &["sg-lb"]);
    lb.marks = vec![0x5E00_0001];
    let rs = Ruleset {
        interfaces: vec![eni("eni-t", "172.31.0.7", &["sg-t"])],
        groups: [
            ("sg-t".to_owned(), target),
            ("sg-lb".to_owned(), Group::default()),
        ]
        .into(),
        listeners: vec![lb],
        hosts: Vec::new(),
    };
    let text = compile(&rs);
    assert_eq!(
        chain(&text, "in_sg_t"),
        [
            "ip saddr @sg_lb tcp dport 8080 accept",
            "meta mark @sgm_lb tcp dport 8080 accept",
            "drop"
        ]
    );
    assert!(
        text.contains("set sgm_lb {\n\t\ttype mark\n\t\telements = { 0x5e000001 }"),
        "{text}"
    );
    assert_eq!(
        chain(&text, "output")[2..],
        ["meta mark @lb_marks ip daddr vmap @ingress"]
    );
}

#[test]
fn without_a_marking_load_balancer_the_host_stays_unfiltered() {
    let rs = Ruleset {
        interfaces: vec![eni("eni-a", "172.31.0.5", &["sg-a"])],
        groups: [("sg-a".to_owned(), default_group("sg-a"))].into(),
        listeners: Vec::new(),
        hosts: Vec::new(),
    };
    let text = compile(&rs);
    assert!(!text.contains("chain output"), "{text}");
    assert!(!text.contains("sgm_"), "{text}");
}

#[test]
fn a_guarded_listener_admits_only_its_groups_ingress_rules() {
    let web = Group {
        ingress: vec![
            Rule {
                protocol: Protocol::Tcp { from: 80, to: 80 },
                peer: Peer::Cidr(ip("127.0.0.0"), 8),
            },
            Rule {
                protocol: Protocol::All,
                peer: Peer::Group("sg-clients".into()),
            },
        ],
        egress: vec![all_egress()],
    };
    let rs = Ruleset {
        interfaces: vec![eni("eni-c", "172.31.0.9", &["sg-clients"])],
        groups: [
            ("sg-web".to_owned(), web),
            ("sg-clients".to_owned(), Group::default()),
        ]
        .into(),
        listeners: vec![listener(80, &["sg-web"])],
        hosts: Vec::new(),
    };
    let text = compile(&rs);
    assert_eq!(
        chain(&text, "lb_80"),
        [
            "ip saddr 127.0.0.0/8 tcp dport 80 accept",
            "ip saddr @sg_clients accept",
            "drop"
        ]
    );
    assert!(
        chain(&text, "input").contains(&"ip daddr 127.0.0.1 tcp dport 80 jump lb_80"),
        "{text}"
    );
    assert!(
        text.contains("set sg_clients {\n\t\ttype ipv4_addr\n\t\telements = { 172.31.0.9 }"),
        "{text}"
    );
}

#[test]
fn listeners_alone_keep_the_table_and_a_port_is_guarded_once() {
    let rs = Ruleset {
        interfaces: Vec::new(),
        groups: [("sg-web".to_owned(), Group::default())].into(),
        listeners: vec![listener(81, &["sg-web"]), listener(81, &["sg-other"])],
        hosts: Vec::new(),
    };
    let script = compile_script(&rs);
    assert!(script.contains("table inet stevedore {\n"), "{script}");
    assert_eq!(chain(&script, "lb_81"), ["drop"]);
    assert_eq!(script.matches("chain lb_81 {").count(), 1, "{script}");
}

#[test]
fn an_instances_published_ports_admit_only_its_groups_and_the_load_balancers_marks() {
    let instance = Group {
        ingress: vec![Rule {
            protocol: Protocol::Tcp {
                from: 32768,
                to: 61000,
            },
            peer: Peer::Group("sg-lb".into()),
        }],
        egress: vec![all_egress()],
    };
    let mut lb = listener(80, &["sg-lb"]);
    lb.marks = vec![0x5E00_0002];
    let rs = Ruleset {
        interfaces: Vec::new(),
        groups: [
            ("sg-i".to_owned(), instance),
            ("sg-lb".to_owned(), Group::default()),
        ]
        .into(),
        listeners: vec![lb],
        hosts: vec![HostPorts {
            id: "0123abcd".into(),
            groups: vec!["sg-i".into()],
            tcp: vec![32769, 32768, 32769],
            udp: Vec::new(),
        }],
    };
    let text = compile(&rs);
    assert_eq!(
        chain(&text, "host_0123abcd"),
        [
            "ip saddr @sg_lb tcp dport 32768-61000 accept",
            "meta mark @sgm_lb tcp dport 32768-61000 accept",
            "drop"
        ]
    );
    let input = chain(&text, "input");
    assert!(
        input.contains(&"tcp dport { 32768, 32769 } jump host_0123abcd"),
        "{text}"
    );
    let forward = chain(&text, "forward");
    assert!(
        forward.contains(
            &"meta l4proto tcp ct status dnat ct original proto-dst { 32768, 32769 } jump host_0123abcd"
        ),
        "{text}"
    );
}
