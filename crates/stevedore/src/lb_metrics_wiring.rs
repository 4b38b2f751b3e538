//! The load balancer's AWS/ApplicationELB metrics into the region's CloudWatch store: the
//! port (`lb::MetricsSink`) is the data plane's, the store is `cloudwatch`'s; this adapter
//! is the only place that knows both. Points are stored in the background, so the data
//! plane never waits on a disk write.

use cloudwatch::{CloudWatch, Dimension, Sample, SeriesKey, Sketch, StatisticSet};
use lb::alb_metrics::NAMESPACE;
use lb::{MetricPoint, MetricsSink, PointValue};

/// [`MetricsSink`] over one region's CloudWatch.
pub struct CloudWatchLbMetrics(pub CloudWatch);

/// The CloudWatch sample of one AWS/ApplicationELB point (1-minute data): a count is one
/// value; response times keep their distribution, so percentiles can be asked for.
/// `None` for a distribution without values (the data plane sends none).
pub fn sample_of(p: MetricPoint) -> Option<Sample> {
    let mut dimensions = Vec::new();
    if let Some(lb) = p.load_balancer {
        dimensions.push(Dimension {
            name: "LoadBalancer".into(),
            value: lb,
        });
    }
    if let Some(tg) = p.target_group {
        dimensions.push(Dimension {
            name: "TargetGroup".into(),
            value: tg,
        });
    }
    let mut sketch = Sketch::default();
    let (unit, set) = match p.value {
        PointValue::Count(v) => {
            sketch.add(v, 1.0);
            ("Count", StatisticSet::of(v, 1.0))
        }
        PointValue::Seconds(values) => {
            let mut set: Option<StatisticSet> = None;
            for (v, n) in values {
                let n = n as f64;
                sketch.add(v, n);
                let one = StatisticSet::of(v, n);
                match &mut set {
                    Some(s) => s.merge(&one),
                    None => set = Some(one),
                }
            }
            ("Seconds", set?)
        }
    };
    Some(Sample {
        key: SeriesKey::new(NAMESPACE, p.metric, dimensions),
        unit: unit.into(),
        timestamp: p.timestamp,
        set,
        sketch,
        high_resolution: false,
    })
}

impl MetricsSink for CloudWatchLbMetrics {
    fn publish(&self, points: Vec<MetricPoint>) {
        let samples: Vec<Sample> = points.into_iter().filter_map(sample_of).collect();
        crate::usage_wiring::put_in_background(&self.0, samples, NAMESPACE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(s: &Sample) -> Vec<(&str, &str)> {
        s.key
            .dimensions()
            .iter()
            .map(|d| (d.name.as_str(), d.value.as_str()))
            .collect()
    }

    #[test]
    fn a_count_is_one_value_with_aws_dimensions() {
        let s = sample_of(MetricPoint {
            metric: "RequestCount",
            load_balancer: Some("app/web/1".into()),
            target_group: Some("targetgroup/tg/2".into()),
            value: PointValue::Count(7.0),
            timestamp: 60,
        })
        .expect("a count is a sample");
        assert_eq!(
            (s.key.namespace.as_str(), s.key.metric_name.as_str()),
            ("AWS/ApplicationELB", "RequestCount")
        );
        let mut d = dims(&s);
        d.sort_unstable();
        assert_eq!(
            d,
            [
                ("LoadBalancer", "app/web/1"),
                ("TargetGroup", "targetgroup/tg/2")
            ]
        );
        assert_eq!(
            (s.unit.as_str(), s.set),
            ("Count", StatisticSet::of(7.0, 1.0))
        );
    }

    #[test]
    fn response_times_keep_their_distribution() {
        let s = sample_of(MetricPoint {
            metric: "TargetResponseTime",
            load_balancer: Some("app/web/1".into()),
            target_group: None,
            value: PointValue::Seconds(vec![(0.01, 3), (0.05, 1)]),
            timestamp: 60,
        })
        .expect("values make a sample");
        assert_eq!(s.unit, "Seconds");
        assert_eq!(s.set.sample_count, 4.0);
        assert!((s.set.sum - 0.08).abs() < 1e-12);
        assert_eq!((s.set.minimum, s.set.maximum), (0.01, 0.05));
        let p50 = s.sketch.percentile(50.0, 0.01, 0.05).expect("p50");
        assert!((p50 - 0.01).abs() < 0.0002, "{p50}");
    }

    #[test]
    fn an_empty_distribution_is_no_sample() {
        assert!(sample_of(MetricPoint {
            metric: "TargetResponseTime",
            load_balancer: None,
            target_group: None,
            value: PointValue::Seconds(Vec::new()),
            timestamp: 0,
        })
        .is_none());
    }
}
