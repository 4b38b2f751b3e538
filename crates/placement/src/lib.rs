//! `placement` owns ECS task placement for the EC2 launch type: given the cluster's
//! container instances, a task's demands, its placement constraints and strategies, it
//! decides where each task goes, or why it cannot go anywhere, with AWS's failure reasons.
//!
//! It must stay pure: no I/O, no async runtime, no clock, no global RNG. Time comes in as
//! `now` where it matters and randomness as a `u64` seed, so any decision can be replayed
//! from its inputs (a test checks the dependency list).
//!
//! # Pipeline
//!
//! ```text
//!  instances ──► Cluster (snapshot: columns per ACTIVE instance, interned attributes,
//!                   │     group and port indexes; reusable across calls)
//!                   ▼
//!               ClusterView (per call, for one task)
//!                   │   gate, decided once per candidate from interned columns:
//!                   │   AGENT, ATTRIBUTE, memberOf expressions that do not read plan state
//!                   │   live candidates: resources, ports, GPUs, group counts as arrays
//!                   ▼
//!  for each of `count` tasks:
//!      select among the feasible live slots: narrow by strategy key 1, then key 2, …,
//!          then the instance id (lexicographic, deterministic)
//!      apply the placement to the view (resources, ports, group counts, runningTasksCount)
//!      and re-run the filters on that one slot:
//!          CPU, MEMORY, PORTS, PORTS_UDP, GPU, memberOf (plan-dependent), distinctInstance
//! ```
//!
//! Constraints are binding and produce [`Failure`]s; strategies only order the feasible
//! instances and never cause a failure (best effort, as in ECS). Filters run in AWS's
//! order and the first that rejects names the reason; a candidate failing the gate is
//! still reported with a resource reason first if it also lacks resources.
//!
//! # Vocabulary
//!
//! - *candidate*: an ACTIVE container instance. DRAINING and INACTIVE ones are never
//!   considered and never reported.
//! - *live*: a candidate that passes every filter that cannot change during the plan.
//!   Only live candidates can receive a placement, so only they have mutable state.
//! - *group*: the task group (`family:web`, `service:api`) that spread and
//!   `distinctInstance` count tasks of.
//!
//! # Cost
//!
//! `n` instances, `a` attributes each, `k` tasks to place, `d` distinct values of an
//! attribute, `t` the size of the tie set left after a strategy key:
//!
//! - [`Cluster::new`]: `O(n · a)` hashing plus an `O(n log n)` sort ranking instance ids
//!   (the final tie-breaker becomes one integer), and a walk over every instance's heap data
//!   (strings, maps, sets). On large clusters this walk, not placement, is the cost of a
//!   cold call: a caller placing repeatedly on one snapshot should keep the `Cluster`.
//!   [`place`] builds one interning only the attributes the call reads.
//! - Per call: `O(n)` over integer columns, plus `O(d)` per attribute comparison (a regex
//!   runs once per distinct value, not per instance).
//! - Per placement: one pass over the feasible slots for the first strategy key and
//!   passes over the shrinking tie sets for the next ones (`O(n + Σ t)`), then `O(1)` to
//!   apply it, plus one evaluation of the plan-dependent expressions for the chosen
//!   instance. Feasibility is maintained incrementally: a placement changes only the
//!   instance that received it.
//! - A failed placement adds one `O(n)` pass to name each instance's reason.

#![forbid(unsafe_code)]

mod cluster;
mod engine;
mod error;
pub mod expression;
mod filter;
mod parse;
mod rng;
mod strategy;
mod types;
mod view;

pub use cluster::Cluster;
pub use engine::{place, NO_INSTANCES_DETAIL};
pub use error::PlacementError;
pub use expression::{parse_expression, Expression};
pub use parse::{parse_constraint, parse_constraint_shape, parse_strategy, parse_strategy_shape};
pub use types::{
    Constraint, Explanation, Failure, Field, Instance, Plan, Reason, SpreadField, Strategy,
    TaskRequest,
};
