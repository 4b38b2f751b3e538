//! The process-wide Prometheus recorder. It has no listener of its own: the server's
//! `GET /metrics` route renders the text from its handle.

use crate::names::{Kind, Metric};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Bucket bounds of every `_seconds` histogram: 0.5 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Bucket bounds of the store's batch-size histogram.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's metrics recorder (once; later calls
/// return the same handle).
///
/// Every event resolves its handles through here first, so a handle is never bound to
/// the no-op recorder that `metrics` uses before one is installed.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(Metric::StoreCommitBatchTransactions.name().into()),
                    BATCH_BUCKETS,
                )
            });
        let recorder = match builder {
            Ok(b) => b.build_recorder(),
            // Only an empty bucket list fails, and the lists above are not empty.
            Err(error) => {
                tracing::error!(%error, "Metric buckets refused; histograms become summaries.");
                PrometheusBuilder::new().build_recorder()
            }
        };
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            tracing::error!(%error, "Another metrics recorder is installed; /metrics stays empty.");
        }
        describe();
        handle
    })
}

fn describe() {
    for m in Metric::ALL {
        match m.kind() {
            Kind::Counter => metrics::describe_counter!(m.name(), m.help()),
            Kind::Gauge => metrics::describe_gauge!(m.name(), m.help()),
            Kind::Histogram => metrics::describe_histogram!(m.name(), m.help()),
        }
    }
}

/// The current values in the Prometheus text format ([`CONTENT_TYPE`]).
pub fn render() -> String {
    let handle = install();
    handle.run_upkeep();
    handle.render()
}

/// Drains histogram samples into their buckets, so memory stays bounded between scrapes
/// (the `metrics_upkeep` loop calls it every few seconds).
pub fn upkeep() {
    install().run_upkeep();
}
