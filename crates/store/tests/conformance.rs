//! Runs the backend-neutral conformance suite against `SqliteStore`, one test per check,
//! each on a fresh database in its own temp dir.

use std::sync::Arc;

use store::testsuite;
use store::Store;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, store) = match testsuite::temp_sqlite() {
                Ok(fixture) => fixture,
                Err(e) => panic!("could not open a store: {e}"),
            };
            let store: Arc<dyn Store> = Arc::new(store);
            testsuite::$name(store).await;
        }
    )*};
}

conformance!(
    put_then_get_returns_value,
    get_of_missing_key_is_none,
    create_and_mod_revisions_track_writes,
    revision_grows_by_one_per_commit,
    txn_without_ops_keeps_revision,
    delete_then_recreate_resets_create_revision,
    delete_of_absent_key_commits,
    compare_zero_means_absent,
    conflicting_txn_writes_nothing,
    conflict_names_first_failing_key,
    later_op_on_same_key_wins,
    range_is_ordered_and_bounded_by_prefix,
    range_pages_with_start_after_and_limit,
    range_reports_current_revision,
    count_by_prefix,
    concurrent_cas_increments_lose_nothing,
    concurrent_creates_have_one_winner,
    large_values_round_trip,
    many_keys_round_trip,
    watch_replays_history_from_a_revision_in_order,
    watch_is_filtered_by_prefix,
    watch_delivers_live_events,
    watch_reports_deletes_of_existing_keys_only,
    watch_from_a_compacted_revision_fails,
    watch_delivers_all_ops_of_a_txn_with_its_revision,
);

/// Keeps the list above in step with the suite: a check added to `CHECKS` but not here
/// fails this test.
#[test]
fn every_suite_check_is_run_here() {
    let here = [
        "put_then_get_returns_value",
        "get_of_missing_key_is_none",
        "create_and_mod_revisions_track_writes",
        "revision_grows_by_one_per_commit",
        "txn_without_ops_keeps_revision",
        "delete_then_recreate_resets_create_revision",
        "delete_of_absent_key_commits",
        "compare_zero_means_absent",
        "conflicting_txn_writes_nothing",
        "conflict_names_first_failing_key",
        "later_op_on_same_key_wins",
        "range_is_ordered_and_bounded_by_prefix",
        "range_pages_with_start_after_and_limit",
        "range_reports_current_revision",
        "count_by_prefix",
        "concurrent_cas_increments_lose_nothing",
        "concurrent_creates_have_one_winner",
        "large_values_round_trip",
        "many_keys_round_trip",
        "watch_replays_history_from_a_revision_in_order",
        "watch_is_filtered_by_prefix",
        "watch_delivers_live_events",
        "watch_reports_deletes_of_existing_keys_only",
        "watch_from_a_compacted_revision_fails",
        "watch_delivers_all_ops_of_a_txn_with_its_revision",
    ];
    let suite: Vec<&str> = testsuite::CHECKS.iter().map(|(name, _)| *name).collect();
    assert_eq!(suite, here);
}

/// `run_all` drives every check with a factory, as another backend's tests would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_passes_on_sqlite() {
    testsuite::run_all(|| async {
        let (dir, store) = match testsuite::temp_sqlite() {
            Ok(fixture) => fixture,
            Err(e) => panic!("could not open a store: {e}"),
        };
        (Arc::new(store) as Arc<dyn Store>, dir)
    })
    .await;
}
