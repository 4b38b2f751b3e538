//! `bench/vpc.sh`'s measurement: 1,000 task interfaces × 10 rules each, applied through
//! the real `nft` into a throwaway table (`inet stevedore_bench`, removed at the end,
//! never Stevedore's own): the whole rule set, then one change of each common kind,
//! each applied as the server's filter loop applies it (`netfilter::apply`: netlink for
//! a change batch it can carry, `nft -f` for the whole table), and which way each change
//! went. Prints one line per figure (median of the runs). Needs root (or CAP_NET_ADMIN)
//! and nft.

use netfilter::{
    compile, compile_change_parts, Group, Interface, Peer, Protocol, Rule, Ruleset, TABLE,
};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const INTERFACES: usize = 1000;
const GROUPS: usize = 100;
const RULES: usize = 10;
const RUNS: usize = 7;
const BENCH_TABLE: &str = "inet stevedore_bench";

/// 100 groups of 10 members; each group's 10 ingress rules mix ports, CIDRs and source
/// groups (another group, so the address sets are exercised), egress all.
fn ruleset(interfaces: usize, extra_rule: bool) -> Ruleset {
    let mut groups = std::collections::BTreeMap::new();
    for g in 0..GROUPS {
        let mut ingress: Vec<Rule> = (0..RULES)
            .map(|r| Rule {
                protocol: Protocol::Tcp {
                    from: 8000 + r as u16,
                    to: 8000 + r as u16,
                },
                peer: if r % 2 == 0 {
                    Peer::Group(format!("sg-{:04}", (g + r) % GROUPS))
                } else {
                    Peer::Cidr(Ipv4Addr::new(10, (r % 256) as u8, 0, 0), 16)
                },
            })
            .collect();
        if extra_rule && g == 0 {
            ingress.push(Rule {
                protocol: Protocol::Udp { from: 53, to: 53 },
                peer: Peer::Cidr(Ipv4Addr::new(192, 168, 0, 0), 16),
            });
        }
        let egress = vec![Rule {
            protocol: Protocol::All,
            peer: Peer::Cidr(Ipv4Addr::UNSPECIFIED, 0),
        }];
        groups.insert(format!("sg-{g:04}"), Group { ingress, egress });
    }
    let interfaces = (0..interfaces)
        .map(|i| Interface {
            id: format!("eni-{i:06}"),
            address: Ipv4Addr::new(172, 31, (i / 250) as u8, (i % 250 + 2) as u8),
            groups: vec![format!("sg-{:04}", i % GROUPS)],
        })
        .collect();
    Ruleset {
        interfaces,
        groups,
        listeners: Vec::new(),
        hosts: Vec::new(),
    }
}

fn rename(script: &str) -> String {
    script.replace("inet stevedore", BENCH_TABLE)
}

fn apply(script: &str) -> Duration {
    let started = Instant::now();
    if let Err(error) = netfilter::apply(&rename(script)) {
        eprintln!("nft refused the batch: {error}");
        std::process::exit(1);
    }
    started.elapsed()
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    // Written with Stevedore's table name like every script here: `apply` renames it
    // to the bench's (a reset naming the bench's table would be renamed twice and miss).
    let reset = format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\n");
    let base = compile(&ruleset(INTERFACES, false));
    let with_rule = compile(&ruleset(INTERFACES, true));
    let with_eni = compile(&ruleset(INTERFACES + 1, false));
    let rules: usize = base
        .lines()
        .filter(|l| l.starts_with("\t\t") && !l.contains("type "))
        .count();
    println!("rule set: {INTERFACES} interfaces x {RULES} rules ({} table lines, {rules} rules and elements)", base.lines().count());
    let mut whole = Vec::new();
    let mut compile_times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let text = compile(&ruleset(INTERFACES, false));
        compile_times.push(started.elapsed());
        whole.push(apply(&format!("{reset}{text}")));
    }
    println!("compile whole rule set: {}", ms(median(compile_times)));
    println!(
        "apply whole rule set (nft -f, one transaction): {}",
        ms(median(whole))
    );
    for (what, next) in [
        ("one rule added to a group of 10 members", &with_rule),
        ("one interface added", &with_eni),
    ] {
        let mut times = Vec::new();
        let mut diffs = Vec::new();
        let mut cleanups = Vec::new();
        let mut path = "";
        for _ in 0..RUNS {
            apply(&format!("{reset}{base}"));
            let started = Instant::now();
            let Some((batch, cleanup)) = compile_change_parts(&base, next) else {
                eprintln!("no change batch for: {what}");
                std::process::exit(1);
            };
            let diffed = started.elapsed();
            // Which way `netfilter::apply` sends it (it falls back to nft on a failure).
            path = if netfilter::parse_batch(&rename(&batch)).is_some() {
                "netlink"
            } else {
                "nft -f"
            };
            diffs.push(diffed);
            times.push(diffed + apply(&batch));
            // What the change left unused, removed right after (the server's loop does
            // the same): not part of the change's latency, printed apart.
            cleanups.push(if cleanup.is_empty() {
                Duration::ZERO
            } else {
                apply(&cleanup)
            });
        }
        println!(
            "one change ({what}): {} in force (diff {} + apply, {path}); cleanup after it {}",
            ms(median(times)),
            ms(median(diffs)),
            ms(median(cleanups))
        );
    }
    let _ = netfilter::apply(&rename(&reset));
}
