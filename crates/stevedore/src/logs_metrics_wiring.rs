//! Log metric filters' datapoints into the region's CloudWatch store: the port
//! (`logs::MetricSink`) is Logs', the store is `cloudwatch`'s; this adapter is the only
//! place that knows both. Points are stored in the background, so PutLogEvents never
//! waits on the metric store's disk write.

use cloudwatch::{CloudWatch, Dimension, Sample, SeriesKey, Sketch, StatisticSet};
use logs::{MetricPoint, MetricSink};

/// [`MetricSink`] over one region's CloudWatch.
pub struct CloudWatchLogMetrics(pub CloudWatch);

/// The CloudWatch sample of one metric filter datapoint (1-minute data, as AWS publishes
/// metric filter metrics).
pub fn sample_of(p: MetricPoint) -> Sample {
    let dimensions = p
        .dimensions
        .into_iter()
        .map(|(name, value)| Dimension { name, value })
        .collect();
    let mut sketch = Sketch::default();
    sketch.add(p.value, 1.0);
    Sample {
        key: SeriesKey::new(p.namespace, p.metric_name, dimensions),
        unit: p.unit,
        timestamp: p.timestamp_ms.div_euclid(1000),
        set: StatisticSet::of(p.value, 1.0),
        sketch,
        high_resolution: false,
    }
}

impl MetricSink for CloudWatchLogMetrics {
    fn publish(&self, points: Vec<MetricPoint>) {
        let samples = points.into_iter().map(sample_of).collect();
        crate::usage_wiring::put_in_background(&self.0, samples, "log metric filters");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_keeps_its_series_unit_and_second() {
        let s = sample_of(MetricPoint {
            namespace: "App".into(),
            metric_name: "Errors".into(),
            dimensions: vec![("Path".into(), "/a".into())],
            unit: "Count".into(),
            timestamp_ms: 120_999,
            value: 2.0,
        });
        assert_eq!(
            (s.key.namespace.as_str(), s.key.metric_name.as_str()),
            ("App", "Errors")
        );
        assert_eq!(s.key.dimensions()[0].value, "/a");
        assert_eq!(
            (s.unit.as_str(), s.timestamp, s.set.sum),
            ("Count", 120, 2.0)
        );
    }
}
