use super::*;
use crate::{compile, Group, Interface, Peer, Protocol, Rule, Ruleset};
use std::net::Ipv4Addr;

fn ruleset(enis: &[(&str, &str)], extra_rule: bool) -> Ruleset {
    let mut group = Group {
        ingress: vec![Rule {
            protocol: Protocol::All,
            peer: Peer::Group("sg-a".into()),
        }],
        egress: vec![Rule {
            protocol: Protocol::All,
            peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
        }],
    };
    if extra_rule {
        group.ingress.push(Rule {
            protocol: Protocol::Tcp { from: 80, to: 80 },
            peer: Peer::Cidr(Ipv4Addr::new(10, 0, 0, 0), 8),
        });
    }
    Ruleset {
        interfaces: enis
            .iter()
            .map(|(id, a)| Interface {
                id: (*id).into(),
                address: a.parse().expect("address"),
                groups: vec!["sg-a".into()],
            })
            .collect(),
        groups: [("sg-a".to_owned(), group)].into(),
        listeners: Vec::new(),
        hosts: Vec::new(),
    }
}

#[test]
fn nothing_changed_is_an_empty_batch() {
    let text = compile(&ruleset(&[("eni-a", "172.31.0.5")], false));
    assert_eq!(compile_change(&text, &text).as_deref(), Some(""));
}

#[test]
fn a_new_interface_with_groups_already_present_is_only_elements() {
    let old = compile(&ruleset(&[("eni-a", "172.31.0.5")], false));
    let new = compile(&ruleset(
        &[("eni-a", "172.31.0.5"), ("eni-b", "172.31.0.6")],
        false,
    ));
    let batch = compile_change(&old, &new).expect("bridgeable");
    let lines: Vec<&str> = batch.lines().collect();
    assert_eq!(
        lines,
        [
            "add element inet stevedore sg_a { 172.31.0.6 }",
            "add element inet stevedore egress { 172.31.0.6 : jump out_sg_a }",
            "add element inet stevedore ingress { 172.31.0.6 : jump in_sg_a }",
        ]
    );
}

#[test]
fn a_new_set_of_groups_adds_its_chains() {
    let old = compile(&ruleset(&[("eni-a", "172.31.0.5")], false));
    let mut rs = ruleset(&[("eni-a", "172.31.0.5"), ("eni-b", "172.31.0.6")], false);
    rs.interfaces[1].groups.push("sg-z".into());
    let batch = compile_change(&old, &compile(&rs)).expect("bridgeable");
    let lines: Vec<&str> = batch.lines().collect();
    assert_eq!(
        lines,
        [
            "add chain inet stevedore out_sg_a_sg_z",
            "add chain inet stevedore in_sg_a_sg_z",
            "add element inet stevedore sg_a { 172.31.0.6 }",
            "add rule inet stevedore out_sg_a_sg_z ip daddr 169.254.0.0/16 return",
            "add rule inet stevedore out_sg_a_sg_z return",
            "add rule inet stevedore out_sg_a_sg_z drop",
            "add rule inet stevedore in_sg_a_sg_z ip saddr @sg_a accept",
            "add rule inet stevedore in_sg_a_sg_z drop",
            "add element inet stevedore egress { 172.31.0.6 : jump out_sg_a_sg_z }",
            "add element inet stevedore ingress { 172.31.0.6 : jump in_sg_a_sg_z }",
        ]
    );
}

#[test]
fn a_new_rule_rewrites_only_the_chains_of_the_groups_members() {
    let enis = [("eni-a", "172.31.0.5"), ("eni-b", "172.31.0.6")];
    let batch = compile_change(
        &compile(&ruleset(&enis, false)),
        &compile(&ruleset(&enis, true)),
    )
    .expect("bridgeable");
    assert_eq!(
        batch.matches("flush chain").count(),
        1,
        "one chain for the two interfaces: {batch}"
    );
    assert!(
        batch.contains("flush chain inet stevedore in_sg_a\n"),
        "{batch}"
    );
    assert!(!batch.contains("out_sg"), "{batch}");
    assert!(!batch.contains("table"), "{batch}");
}

#[test]
fn a_removed_interface_leaves_the_maps_before_its_chains_are_deleted() {
    let mut old = ruleset(&[("eni-a", "172.31.0.5"), ("eni-b", "172.31.0.6")], false);
    old.interfaces[1].groups.push("sg-z".into());
    let new = compile(&ruleset(&[("eni-a", "172.31.0.5")], false));
    let batch = compile_change(&compile(&old), &new).expect("bridgeable");
    let at = |needle: &str| {
        batch
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in\n{batch}"))
    };
    assert!(
        at("delete element inet stevedore ingress { 172.31.0.6 }")
            < at("delete chain inet stevedore in_sg_a_sg_z")
    );
    assert!(
        at("flush chain inet stevedore out_sg_a_sg_z")
            < at("delete chain inet stevedore out_sg_a_sg_z")
    );
    assert!(
        batch.contains("delete element inet stevedore sg_a { 172.31.0.6 }"),
        "{batch}"
    );
}

#[test]
fn text_that_is_not_a_compiled_table_asks_for_a_rebuild() {
    let text = compile(&ruleset(&[("eni-a", "172.31.0.5")], false));
    assert_eq!(
        compile_change("table inet stevedore {\n\tbogus x {\n", &text),
        None
    );
}
