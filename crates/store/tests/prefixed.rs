//! Runs the backend-neutral conformance suite against a [`store::Prefixed`] view of a
//! SQLite store that also holds keys outside the view (the default region's and another
//! region's), which the view must never show or disturb.

use std::sync::Arc;

use store::testsuite;
use store::{Prefixed, Store, Txn, TxnOutcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_through_a_prefixed_view() {
    testsuite::run_all(|| async {
        let (dir, inner) = match testsuite::temp_sqlite() {
            Ok(fixture) => fixture,
            Err(e) => panic!("could not open a store: {e}"),
        };
        let inner: Arc<dyn Store> = Arc::new(inner);
        // Neighbours on both sides of the view's prefix, in key order.
        let neighbours = Txn::new()
            .put("a", "default region")
            .put("regions/us-east-1x/a", "another region")
            .put("regions/us-east-2", "a prefix of the view's prefix")
            .put("zzz", "default region");
        match inner.txn(neighbours).await {
            Ok(TxnOutcome::Committed { .. }) => {}
            other => panic!("could not write the neighbours: {other:?}"),
        }
        let view: Arc<dyn Store> = Arc::new(Prefixed::new(inner, "regions/us-east-2/"));
        (view, dir)
    })
    .await;
}
