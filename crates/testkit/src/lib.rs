//! `testkit` owns what Stevedore's tests share and nothing a binary ships: a temporary
//! SQLite store ([`TempStore`]), a store wrapper that records commits and can reject one
//! ([`CommitRecorder`]), a settable clock ([`FakeClock`]), and builders for the inputs of
//! placement and the scheduler ([`instance`], [`task_def`], [`task`]).
//!
//! It is a dev-dependency only: no crate's normal build depends on it.

#![forbid(unsafe_code)]

mod clock;
mod commits;
mod fixtures;
mod temp;

pub use clock::FakeClock;
pub use commits::{CommitRecorder, Recorded};
pub use fixtures::{instance, node, task, task_def, InstanceBuilder, TaskBuilder};
pub use temp::TempStore;
