//! ECS's AWS/ECS metrics into the region's CloudWatch store: the port
//! (`ecs::usage::UsageSink`) is ECS's, the store is `cloudwatch`'s; this adapter is the
//! only place that knows both. Points are stored in the background, so an agent's report
//! never waits on a disk write.

use cloudwatch::{CloudWatch, Dimension, Sample, SeriesKey, Sketch, StatisticSet};
use ecs::usage::{UsagePoint, UsageSink, NAMESPACE};

/// [`UsageSink`] over one region's CloudWatch.
pub struct CloudWatchUsage(pub CloudWatch);

/// The CloudWatch sample of one AWS/ECS point (one value, in Percent, 1-minute data).
pub fn sample_of(p: UsagePoint) -> Sample {
    let mut dimensions = vec![Dimension {
        name: "ClusterName".into(),
        value: p.cluster,
    }];
    if let Some(service) = p.service {
        dimensions.push(Dimension {
            name: "ServiceName".into(),
            value: service,
        });
    }
    let mut sketch = Sketch::default();
    sketch.add(p.value, 1.0);
    Sample {
        key: SeriesKey::new(NAMESPACE, p.metric, dimensions),
        unit: "Percent".into(),
        timestamp: p.timestamp,
        set: StatisticSet::of(p.value, 1.0),
        sketch,
        high_resolution: false,
    }
}

/// Stores `samples` of `namespace` in the background (the services' own metrics: a
/// report or a data plane period never waits on the disk write).
pub fn put_in_background(store: &CloudWatch, samples: Vec<Sample>, namespace: &'static str) {
    let store = store.clone();
    tokio::spawn(async move {
        if let Err(error) = store.put(samples).await {
            tracing::warn!(%error, namespace, "Could not store a service's own metrics.");
        }
    });
}

impl UsageSink for CloudWatchUsage {
    fn publish(&self, points: Vec<UsagePoint>) {
        // With a time scale, alarm periods shrink below a minute and read the 1-second
        // tier, which keeps only high-resolution data: the services' own metrics go there
        // too, or no scaled alarm (target tracking's) could ever see them.
        let high_resolution = self.0.time_scale() > 1.0;
        let samples: Vec<Sample> = points
            .into_iter()
            .map(|p| Sample {
                high_resolution,
                ..sample_of(p)
            })
            .collect();
        put_in_background(&self.0, samples, NAMESPACE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_point_is_a_percent_sample_with_both_dimensions() {
        let s = sample_of(UsagePoint {
            metric: "CPUUtilization",
            cluster: "prod".into(),
            service: Some("web".into()),
            value: 42.5,
            timestamp: 120,
        });
        assert_eq!(s.key.namespace, "AWS/ECS");
        assert_eq!(s.key.metric_name, "CPUUtilization");
        let dims: Vec<(&str, &str)> = s
            .key
            .dimensions()
            .iter()
            .map(|d| (d.name.as_str(), d.value.as_str()))
            .collect();
        assert_eq!(dims, [("ClusterName", "prod"), ("ServiceName", "web")]);
        assert_eq!(
            (s.unit.as_str(), s.timestamp, s.set.sum),
            ("Percent", 120, 42.5)
        );
    }
}
