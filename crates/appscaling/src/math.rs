//! The arithmetic of scaling policies, pure: which step adjustment a breach selects, the
//! capacity it asks for, target tracking's proportional capacity, and the min/max clamp.
//! The callers ([`crate::scaling`]) decide whether to act (cooldowns, direction,
//! deployments); nothing here reads a clock or a store.

use serde::{Deserialize, Serialize};

/// `AdjustmentType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdjustmentType {
    /// Add (or remove) this many.
    ChangeInCapacity,
    /// Add (or remove) this percentage of the current capacity.
    PercentChangeInCapacity,
    /// Set the capacity to this.
    ExactCapacity,
}

impl AdjustmentType {
    /// The type named `s` on the wire.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ChangeInCapacity" => Some(Self::ChangeInCapacity),
            "PercentChangeInCapacity" => Some(Self::PercentChangeInCapacity),
            "ExactCapacity" => Some(Self::ExactCapacity),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChangeInCapacity => "ChangeInCapacity",
            Self::PercentChangeInCapacity => "PercentChangeInCapacity",
            Self::ExactCapacity => "ExactCapacity",
        }
    }
}

/// One `StepAdjustment`: bounds are offsets from the alarm threshold (`None` = infinite).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// `MetricIntervalLowerBound`.
    pub lower: Option<f64>,
    /// `MetricIntervalUpperBound`.
    pub upper: Option<f64>,
    /// `ScalingAdjustment`.
    pub adjustment: i64,
}

/// Why a set of step adjustments is refused (the text is the ValidationException's).
pub fn check_steps(steps: &[Step], kind: AdjustmentType) -> Result<(), String> {
    if steps.is_empty() {
        return Err("StepAdjustments must contain at least one step adjustment.".into());
    }
    for s in steps {
        if let (Some(l), Some(u)) = (s.lower, s.upper) {
            if l >= u {
                return Err(format!(
                    "The upper bound ({u}) must be greater than the lower bound ({l}) of a step adjustment."
                ));
            }
        }
        if kind == AdjustmentType::ExactCapacity && s.adjustment < 0 {
            return Err(
                "ScalingAdjustment must be greater than or equal to 0 for ExactCapacity.".into(),
            );
        }
        if [s.lower, s.upper].iter().flatten().any(|b| !b.is_finite()) {
            return Err("Step adjustment bounds must be finite numbers.".into());
        }
    }
    if steps.iter().filter(|s| s.lower.is_none()).count() > 1
        || steps.iter().filter(|s| s.upper.is_none()).count() > 1
    {
        return Err("Only one step adjustment may have an unbounded lower bound and only one an unbounded upper bound.".into());
    }
    // Sorted by lower bound, each step must start where the previous one ends.
    let mut sorted: Vec<Step> = steps.to_vec();
    sorted.sort_by(|a, b| {
        let key = |s: &Step| s.lower.unwrap_or(f64::NEG_INFINITY);
        key(a).total_cmp(&key(b))
    });
    for pair in sorted.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        match (a.upper, b.lower) {
            (Some(u), Some(l)) if u > l => return Err("Step adjustments may not overlap.".into()),
            (Some(u), Some(l)) if u < l => {
                return Err("There may be no gaps between step adjustments.".into())
            }
            (None, _) => return Err("Step adjustments may not overlap.".into()),
            _ => {}
        }
    }
    Ok(())
}

/// The step a breach `offset` (metric − threshold) selects. Above the threshold a step
/// holds `[lower, upper)`; below it `(lower, upper]`, as AWS defines the bounds.
pub fn select_step(steps: &[Step], offset: f64) -> Option<Step> {
    let above = offset >= 0.0;
    steps.iter().copied().find(|s| {
        let lower_ok = s
            .lower
            .is_none_or(|l| if above { offset >= l } else { offset > l });
        let upper_ok = s
            .upper
            .is_none_or(|u| if above { offset < u } else { offset <= u });
        lower_ok && upper_ok
    })
}

/// The capacity an adjustment asks for from `current`. A percentage change is truncated
/// toward zero but moves by at least one (and by `min_magnitude` when given), as AWS
/// rounds.
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
pub fn compute_adjusted(
    current: i64,
    kind: AdjustmentType,
    adjustment: i64,
    min_magnitude: Option<i64>,
) -> i64 {
    match kind {
        AdjustmentType::ExactCapacity => adjustment,
        AdjustmentType::ChangeInCapacity => current.saturating_add(adjustment),
        AdjustmentType::PercentChangeInCapacity => {
            let raw = current as f64 * adjustment as f64 / 100.0;
            let mut change = raw.trunc() as i64;
            if change == 0 && raw != 0.0 {
                change = if raw > 0.0 { 1 } else { -1 };
            }
            if let Some(m) = min_magnitude {
                if change.abs() < m && adjustment != 0 {
                    change = m * adjustment.signum();
                }
            }
            current.saturating_add(change)
        }
    }
}

/// Target tracking's capacity: `ceil(current × metric ÷ target)`, the proportional
/// capacity that brings the metric to the target if load spreads evenly. `None` when
/// the target is not positive or the metric not finite.
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
pub fn compute_tracking(current: i64, metric: f64, target: f64) -> Option<i64> {
    if target <= 0.0 || !metric.is_finite() || metric < 0.0 {
        return None;
    }
    let wanted = current as f64 * metric / target;
    // A hair under an integer is that integer (62.999… from 3 × 21 ÷ 1 in floats).
    Some((wanted - 1e-9).ceil().max(0.0) as i64)
}

/// `capacity` held within `[min, max]`.
pub fn clamp(capacity: i64, min: i64, max: i64) -> i64 {
    capacity.max(min).min(max.max(min))
}

/// `MetricAggregationType` over the breaching datapoints (Average when absent or
/// unknown).
pub fn aggregate(values: &[f64], kind: Option<&str>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let v = match kind {
        Some("Minimum") => values.iter().copied().fold(f64::INFINITY, f64::min),
        Some("Maximum") => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        #[allow(clippy::cast_precision_loss)]
        _ => values.iter().sum::<f64>() / values.len() as f64,
    };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(lower: Option<f64>, upper: Option<f64>, adjustment: i64) -> Step {
        Step {
            lower,
            upper,
            adjustment,
        }
    }

    #[test]
    fn above_threshold_steps_include_their_lower_bound() {
        let steps = [
            step(Some(0.0), Some(10.0), 1),
            step(Some(10.0), Some(20.0), 2),
            step(Some(20.0), None, 3),
        ];
        assert_eq!(select_step(&steps, 0.0).map(|s| s.adjustment), Some(1));
        assert_eq!(select_step(&steps, 9.99).map(|s| s.adjustment), Some(1));
        assert_eq!(select_step(&steps, 10.0).map(|s| s.adjustment), Some(2));
        assert_eq!(select_step(&steps, 1e9).map(|s| s.adjustment), Some(3));
        assert!(check_steps(&steps, AdjustmentType::ChangeInCapacity).is_ok());
    }

    #[test]
    fn below_threshold_steps_include_their_upper_bound() {
        let steps = [
            step(None, Some(-10.0), -2),
            step(Some(-10.0), Some(0.0), -1),
        ];
        assert_eq!(select_step(&steps, -10.0).map(|s| s.adjustment), Some(-2));
        assert_eq!(select_step(&steps, -9.0).map(|s| s.adjustment), Some(-1));
        assert_eq!(select_step(&steps, -0.5).map(|s| s.adjustment), Some(-1));
    }

    #[test]
    fn gaps_overlaps_and_two_open_ends_are_refused() {
        let kind = AdjustmentType::ChangeInCapacity;
        let gap = [step(Some(0.0), Some(10.0), 1), step(Some(15.0), None, 2)];
        assert!(check_steps(&gap, kind).expect_err("gap").contains("gaps"));
        let overlap = [step(Some(0.0), Some(10.0), 1), step(Some(5.0), None, 2)];
        assert!(check_steps(&overlap, kind)
            .expect_err("overlap")
            .contains("overlap"));
        let open = [step(Some(0.0), None, 1), step(Some(5.0), None, 2)];
        assert!(check_steps(&open, kind).is_err());
        assert!(check_steps(&[], kind).is_err());
        let negative_exact = [step(Some(0.0), None, -1)];
        assert!(check_steps(&negative_exact, AdjustmentType::ExactCapacity).is_err());
    }

    #[test]
    fn percent_changes_move_by_at_least_one_and_by_the_minimum_magnitude() {
        use AdjustmentType::*;
        assert_eq!(compute_adjusted(3, PercentChangeInCapacity, 10, None), 4);
        assert_eq!(compute_adjusted(10, PercentChangeInCapacity, 25, None), 12);
        assert_eq!(compute_adjusted(10, PercentChangeInCapacity, -25, None), 8);
        assert_eq!(compute_adjusted(3, PercentChangeInCapacity, -10, None), 2);
        assert_eq!(compute_adjusted(4, PercentChangeInCapacity, 50, Some(5)), 9);
        assert_eq!(compute_adjusted(4, ChangeInCapacity, -3, None), 1);
        assert_eq!(compute_adjusted(4, ExactCapacity, 7, None), 7);
    }

    #[test]
    fn tracking_is_proportional_and_rounds_up() {
        assert_eq!(compute_tracking(1, 100.0, 50.0), Some(2));
        assert_eq!(compute_tracking(2, 90.0, 50.0), Some(4));
        assert_eq!(compute_tracking(4, 10.0, 50.0), Some(1));
        assert_eq!(compute_tracking(3, 21.0, 1.0), Some(63));
        assert_eq!(compute_tracking(4, 0.0, 50.0), Some(0));
        assert_eq!(compute_tracking(4, 10.0, 0.0), None);
        assert_eq!(compute_tracking(4, f64::NAN, 50.0), None);
    }

    #[test]
    fn clamp_and_aggregate() {
        assert_eq!(clamp(9, 1, 4), 4);
        assert_eq!(clamp(0, 1, 4), 1);
        assert_eq!(aggregate(&[1.0, 3.0], None), Some(2.0));
        assert_eq!(aggregate(&[1.0, 3.0], Some("Maximum")), Some(3.0));
        assert_eq!(aggregate(&[1.0, 3.0], Some("Minimum")), Some(1.0));
        assert_eq!(aggregate(&[], None), None);
    }

    proptest::proptest! {
        #[test]
        fn clamped_capacity_always_holds_min_and_max(c in -1000i64..1000, min in 0i64..50, span in 0i64..50) {
            let max = min + span;
            let v = clamp(c, min, max);
            proptest::prop_assert!(v >= min && v <= max);
        }

        #[test]
        fn tracking_never_scales_in_when_the_metric_is_above_target(cur in 1i64..100, target in 1.0f64..100.0, over in 0.0f64..400.0) {
            let got = compute_tracking(cur, target + over, target).unwrap_or(0);
            proptest::prop_assert!(got >= cur);
        }
    }
}
