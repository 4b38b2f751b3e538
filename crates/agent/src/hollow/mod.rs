//! Hollow instances: container instances that register, hold a channel and report task
//! state exactly as a real agent would, without running any container (like kubemark's
//! hollow nodes). They let one process put thousands of instances in front of the control
//! plane, to exercise registration, placement, the channel and state reporting at scale.
//!
//! [`register`] builds what an instance sends to `RegisterContainerInstance`; [`report`]
//! turns payload tasks into state changes, once per task and status (payloads are
//! delivered at least once, so duplicates are dropped there); [`fleet`] runs many
//! instances with bounded registration concurrency and shared counters.

pub mod fleet;
pub mod register;
pub mod report;

pub use fleet::{run_fleet, run_registered, Counters, CountersSnapshot, FleetConfig};
pub use register::{compute_availability_zone, compute_registration, InstanceSpec};
pub use report::{Reporter, TaskReport};

#[cfg(test)]
mod tests;
