use super::*;
use crate::{compile, Group, Interface, Peer, Protocol, Rule, Ruleset};

/// The full name of the chain whose name starts with `stem_` in compiled `text`.
fn named(text: &str, stem: &str) -> String {
    let at = text
        .find(&format!("\tchain {stem}_"))
        .unwrap_or_else(|| panic!("no chain {stem} in\n{text}"))
        + "\tchain ".len();
    text[at..].split(' ').next().expect("name").to_owned()
}
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
    let (out, r#in) = (named(&new, "out_sg_a"), named(&new, "in_sg_a"));
    assert_eq!(
        lines,
        [
            "add element inet stevedore sg_a { 172.31.0.6 }".to_owned(),
            format!("add element inet stevedore egress {{ 172.31.0.6 : jump {out} }}"),
            format!("add element inet stevedore ingress {{ 172.31.0.6 : jump {in} }}"),
        ]
    );
}

#[test]
fn a_new_set_of_groups_adds_its_chains() {
    let old = compile(&ruleset(&[("eni-a", "172.31.0.5")], false));
    let mut rs = ruleset(&[("eni-a", "172.31.0.5"), ("eni-b", "172.31.0.6")], false);
    rs.interfaces[1].groups.push("sg-z".into());
    let new = compile(&rs);
    let batch = compile_change(&old, &new).expect("bridgeable");
    let lines: Vec<&str> = batch.lines().collect();
    let (out, r#in) = (named(&new, "out_sg_a_sg_z"), named(&new, "in_sg_a_sg_z"));
    assert_eq!(
        lines,
        [
            format!("add chain inet stevedore {out}"),
            format!("add chain inet stevedore {in}"),
            "add element inet stevedore sg_a { 172.31.0.6 }".to_owned(),
            format!("add rule inet stevedore {out} ip daddr 169.254.0.0/16 return"),
            format!("add rule inet stevedore {out} return"),
            format!("add rule inet stevedore {out} drop"),
            format!("add rule inet stevedore {in} ip saddr @sg_a accept"),
            format!("add rule inet stevedore {in} drop"),
            format!("add element inet stevedore egress {{ 172.31.0.6 : jump {out} }}"),
            format!("add element inet stevedore ingress {{ 172.31.0.6 : jump {in} }}"),
        ]
    );
}

#[test]
fn a_new_rule_makes_new_chains_for_the_members_and_the_cleanup_deletes_the_old() {
    let enis = [("eni-a", "172.31.0.5"), ("eni-b", "172.31.0.6")];
    let (old, new) = (
        compile(&ruleset(&enis, false)),
        compile(&ruleset(&enis, true)),
    );
    let (change, cleanup) = compile_change_parts(&old, &new).expect("bridgeable");
    let (was, now) = (named(&old, "in_sg_a"), named(&new, "in_sg_a"));
    assert_ne!(was, now);
    assert_eq!(
        change.matches("add chain").count(),
        1,
        "one chain for the two interfaces: {change}"
    );
    assert!(
        change.contains(&format!("add chain inet stevedore {now}\n")),
        "{change}"
    );
    assert!(
        change.contains(&format!("172.31.0.5 : jump {now}")),
        "{change}"
    );
    // The change deletes no rule and no chain; the egress chains did not change.
    assert!(
        !change.contains("flush") && !change.contains("delete chain"),
        "{change}"
    );
    assert!(!change.contains("out_sg"), "{change}");
    assert_eq!(
        cleanup,
        format!("flush chain inet stevedore {was}\ndelete chain inet stevedore {was}\n")
    );
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
    let (out, r#in) = (
        named(&compile(&old), "out_sg_a_sg_z"),
        named(&compile(&old), "in_sg_a_sg_z"),
    );
    assert!(
        at("delete element inet stevedore ingress { 172.31.0.6 }")
            < at(&format!("delete chain inet stevedore {in}"))
    );
    assert!(
        at(&format!("flush chain inet stevedore {out}"))
            < at(&format!("delete chain inet stevedore {out}"))
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
