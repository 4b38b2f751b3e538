//! From one compiled table to the next as a small `nft -f` batch (pure): only the set
//! and map elements, chains and rules that differ are written, so one API change costs
//! a few statements instead of the whole table. Both sides are [`compile`]'s text,
//! whose layout this module reads back (one `set`/`map`/`chain` block per name).
//!
//! The batch is one kernel transaction like a full rebuild; its statements are ordered
//! so that nothing is referenced before it exists or deleted while still referenced:
//! new sets, maps and chains are declared first, then set elements added, chains
//! rewritten (flushed and filled), map elements replaced, set elements removed, and
//! last the chains and sets that are gone are flushed and deleted.
//!
//! [`compile`]: crate::compile

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::TABLE;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Set,
    Map,
    Chain,
}

/// One top-level block of a compiled table.
#[derive(Debug, PartialEq, Eq)]
struct Block {
    kind: Kind,
    /// `type …` and hook lines, as written.
    decl: Vec<String>,
    /// Set or map elements (a map's as `key : verdict`).
    elements: Vec<String>,
    /// A chain's rules, in order.
    rules: Vec<String>,
}

/// The blocks of a compiled table by name, in the order written.
fn parse(text: &str) -> Option<Vec<(String, Block)>> {
    let mut out = Vec::new();
    let mut current: Option<(String, Block)> = None;
    for line in text.lines() {
        if let Some(head) = line.strip_prefix('\t').filter(|l| !l.starts_with('\t')) {
            if head == "}" {
                out.push(current.take()?);
                continue;
            }
            let (kind, rest) = head.split_once(' ')?;
            let kind = match kind {
                "set" => Kind::Set,
                "map" => Kind::Map,
                "chain" => Kind::Chain,
                _ => return None,
            };
            let name = rest.strip_suffix(" {")?.to_owned();
            let block = Block {
                kind,
                decl: Vec::new(),
                elements: Vec::new(),
                rules: Vec::new(),
            };
            current = Some((name, block));
        } else if let Some(body) = line.strip_prefix("\t\t") {
            let (_, block) = current.as_mut()?;
            if let Some(list) = body
                .strip_prefix("elements = { ")
                .and_then(|l| l.strip_suffix(" }"))
            {
                block.elements = list.split(", ").map(str::to_owned).collect();
            } else if block.kind != Kind::Chain || body.starts_with("type ") {
                block.decl.push(body.to_owned());
            } else {
                block.rules.push(body.to_owned());
            }
        }
    }
    Some(out)
}

/// A map element's key (`172.31.0.5` of `172.31.0.5 : jump in_eni_a`).
fn key(element: &str) -> &str {
    element.split(" : ").next().unwrap_or(element)
}

/// The batch that turns the table compiled as `old` into the one compiled as `new`, or
/// `None` when the two cannot be bridged statement by statement (a block changed kind
/// or declaration, or a text is not [`compile`](crate::compile)'s): rebuild the table
/// whole then. An empty batch means nothing changed.
pub fn compile_change(old: &str, new: &str) -> Option<String> {
    compile_change_parts(old, new).map(|(change, cleanup)| change + &cleanup)
}

/// [`compile_change`]'s batch in two: the change itself, after which the table enforces
/// the new rule set, and the cleanup (chains, sets and maps nothing uses any more,
/// flushed and deleted), to apply right after as a second transaction. A transaction
/// that deletes rules took 10–25 ms on a loaded host: the change does without.
pub fn compile_change_parts(old: &str, new: &str) -> Option<(String, String)> {
    let old: BTreeMap<String, Block> = parse(old)?.into_iter().collect();
    let new_list = parse(new)?;
    let mut out = String::new();
    let t = format!("inet {TABLE}");
    // 1. Declarations of what is new.
    for (name, b) in &new_list {
        match old.get(name) {
            Some(o) if o.kind != b.kind || o.decl != b.decl => return None,
            Some(_) => {}
            None => match b.kind {
                Kind::Set => {
                    let _ = writeln!(out, "add set {t} {name} {{ {}; }}", b.decl.join("; "));
                }
                Kind::Map => {
                    let _ = writeln!(out, "add map {t} {name} {{ {}; }}", b.decl.join("; "));
                }
                Kind::Chain if b.decl.is_empty() => {
                    let _ = writeln!(out, "add chain {t} {name}");
                }
                Kind::Chain => {
                    let _ = writeln!(out, "add chain {t} {name} {{ {} }}", b.decl.join(" "));
                }
            },
        }
    }
    let empty = Block {
        kind: Kind::Set,
        decl: Vec::new(),
        elements: Vec::new(),
        rules: Vec::new(),
    };
    let mut removals = String::new();
    // 2. Set elements added; 3. chains rewritten; 4. map elements replaced.
    let mut map_changes = String::new();
    for (name, b) in &new_list {
        let o = old.get(name).unwrap_or(&empty);
        match b.kind {
            Kind::Set => {
                let before: BTreeSet<&String> = o.elements.iter().collect();
                let after: BTreeSet<&String> = b.elements.iter().collect();
                write_elements(&mut out, "add", &t, name, after.difference(&before));
                write_elements(&mut removals, "delete", &t, name, before.difference(&after));
            }
            Kind::Map => {
                let before: BTreeSet<&String> = o.elements.iter().collect();
                let after: BTreeSet<&String> = b.elements.iter().collect();
                let gone: BTreeSet<&str> = before.difference(&after).map(|e| key(e)).collect();
                write_elements(&mut map_changes, "delete", &t, name, gone.iter());
                write_elements(&mut map_changes, "add", &t, name, after.difference(&before));
            }
            Kind::Chain if old.contains_key(name) && o.rules == b.rules => {}
            Kind::Chain => {
                if old.contains_key(name) {
                    let _ = writeln!(out, "flush chain {t} {name}");
                }
                for rule in &b.rules {
                    let _ = writeln!(out, "add rule {t} {name} {rule}");
                }
            }
        }
    }
    out.push_str(&map_changes);
    out.push_str(&removals);
    // 5. What is gone, in the cleanup: chains flushed before any is deleted (one may
    //    jump to another), sets and maps after the chains that used them.
    let change = out;
    let mut out = String::new();
    let new_names: BTreeSet<&String> = new_list.iter().map(|(n, _)| n).collect();
    let gone: Vec<(&String, &Block)> = old.iter().filter(|(n, _)| !new_names.contains(n)).collect();
    for (name, _) in gone.iter().filter(|(_, b)| b.kind == Kind::Chain) {
        let _ = writeln!(out, "flush chain {t} {name}");
    }
    for (name, _) in gone.iter().filter(|(_, b)| b.kind == Kind::Chain) {
        let _ = writeln!(out, "delete chain {t} {name}");
    }
    for (name, b) in &gone {
        match b.kind {
            Kind::Set => {
                let _ = writeln!(out, "delete set {t} {name}");
            }
            Kind::Map => {
                let _ = writeln!(out, "delete map {t} {name}");
            }
            Kind::Chain => {}
        }
    }
    Some((change, out))
}

/// The batch from the table one [`compile_script`](crate::compile_script) made to the
/// one another makes: a change when both keep the table, `None` when the table must be
/// written whole (it appears, goes, or cannot be bridged).
pub fn compile_update(old_script: &str, new_script: &str) -> Option<String> {
    compile_update_parts(old_script, new_script).map(|(change, cleanup)| change + &cleanup)
}

/// [`compile_update`] as [`compile_change_parts`]: the change, then the cleanup.
pub fn compile_update_parts(old_script: &str, new_script: &str) -> Option<(String, String)> {
    let prefix = format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\n");
    let old = old_script.strip_prefix(&prefix)?;
    let new = new_script.strip_prefix(&prefix)?;
    if old.is_empty() || new.is_empty() {
        return None;
    }
    compile_change_parts(old, new)
}

fn write_elements<S: AsRef<str>>(
    out: &mut String,
    verb: &str,
    table: &str,
    name: &str,
    elements: impl Iterator<Item = S>,
) {
    let list: Vec<S> = elements.collect();
    if list.is_empty() {
        return;
    }
    let joined: Vec<&str> = list.iter().map(AsRef::as_ref).collect();
    let _ = writeln!(
        out,
        "{verb} element {table} {name} {{ {} }}",
        joined.join(", ")
    );
}

#[cfg(test)]
#[path = "change_tests.rs"]
mod tests;
