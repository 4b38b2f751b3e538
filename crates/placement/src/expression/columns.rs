//! Evaluating a plan-independent expression over a whole cluster at once.
//!
//! Instances share few distinct attribute values (a handful of instance types and zones
//! across thousands of instances), so an attribute comparison is decided once per distinct
//! value and then looked up per instance through interned value ids. A regex therefore runs
//! a few times per `place` call instead of once per instance, and the per-instance work is
//! an array lookup.

use super::{Comparison, Expression, Node, Subject};
use crate::types::Instance;

/// Column-oriented access to the candidates of a cluster snapshot.
pub(crate) trait Columns {
    /// Number of candidates.
    fn len(&self) -> usize;
    /// The instance behind candidate `c`.
    fn instance(&self, c: usize) -> &Instance;
    /// An attribute as (value id per candidate, value per id). Id 0 means the candidate
    /// lacks the attribute, id 1 that it has it without a value; both map to `None`.
    fn attribute(&self, name: &str) -> Option<(&[u32], &[Option<String>])>;
}

impl Expression {
    /// Whether each candidate matches, for an expression that does not depend on the plan.
    pub(crate) fn matches_columns(&self, cols: &impl Columns) -> Vec<bool> {
        self.root.eval_columns(cols)
    }
}

impl Node {
    fn eval_columns(&self, cols: &impl Columns) -> Vec<bool> {
        match self {
            Node::Or(items) | Node::And(items) => {
                let is_or = matches!(self, Node::Or(_));
                let mut acc = vec![!is_or; cols.len()];
                for item in items {
                    let v = item.eval_columns(cols);
                    for (a, b) in acc.iter_mut().zip(v) {
                        *a = if is_or { *a || b } else { *a && b };
                    }
                }
                acc
            }
            Node::Not(n) => {
                let mut v = n.eval_columns(cols);
                v.iter_mut().for_each(|b| *b = !*b);
                v
            }
            Node::Cmp(c) => c.eval_columns(cols),
        }
    }
}

impl Comparison {
    fn eval_columns(&self, cols: &impl Columns) -> Vec<bool> {
        let Subject::Attribute(name) = &self.subject else {
            return (0..cols.len())
                .map(|c| self.eval(cols.instance(c), &super::PlanDelta::NONE))
                .collect();
        };
        let Some((ids, dict)) = cols.attribute(name) else {
            return vec![self.eval_attribute(None); cols.len()];
        };
        let table: Vec<bool> = dict
            .iter()
            .enumerate()
            .map(|(id, v)| match id {
                0 => self.eval_attribute(None),
                _ => self.eval_attribute(Some(v.as_deref())),
            })
            .collect();
        ids.iter().map(|&id| table[id as usize]).collect()
    }
}
