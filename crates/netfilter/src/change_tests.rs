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
fn a_new_interface_adds_its_chains_map_entries_and_set_member_only() {
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
            "add chain inet stevedore out_eni_b",
            "add chain inet stevedore in_eni_b",
            "add element inet stevedore sg_a { 172.31.0.6 }",
            "add rule inet stevedore out_eni_b ip daddr 169.254.0.0/16 return",
            "add rule inet stevedore out_eni_b return",
            "add rule inet stevedore out_eni_b drop",
            "add rule inet stevedore in_eni_b ip saddr @sg_a accept",
            "add rule inet stevedore in_eni_b drop",
            "add element inet stevedore egress { 172.31.0.6 : jump out_eni_b }",
            "add element inet stevedore ingress { 172.31.0.6 : jump in_eni_b }",
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
    assert!(
        batch.contains("flush chain inet stevedore in_eni_a\n"),
        "{batch}"
    );
    assert!(
        batch.contains("flush chain inet stevedore in_eni_b\n"),
        "{batch}"
    );
    assert!(!batch.contains("out_eni"), "{batch}");
    assert!(!batch.contains("table"), "{batch}");
}

#[test]
fn a_removed_interface_leaves_the_maps_before_its_chains_are_deleted() {
    let old = compile(&ruleset(
        &[("eni-a", "172.31.0.5"), ("eni-b", "172.31.0.6")],
        false,
    ));
    let new = compile(&ruleset(&[("eni-a", "172.31.0.5")], false));
    let batch = compile_change(&old, &new).expect("bridgeable");
    let at = |needle: &str| {
        batch
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in\n{batch}"))
    };
    assert!(
        at("delete element inet stevedore ingress { 172.31.0.6 }")
            < at("delete chain inet stevedore in_eni_b")
    );
    assert!(
        at("flush chain inet stevedore out_eni_b") < at("delete chain inet stevedore out_eni_b")
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
