use super::*;

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

fn period(lb: &str, tg: &str, window: Window, healthy: u64, registered: u64) -> GroupPeriod {
    GroupPeriod {
        load_balancer: lb.into(),
        target_group: tg.into(),
        window,
        healthy,
        unhealthy: registered - healthy,
        registered,
    }
}

fn find<'a>(
    points: &'a [MetricPoint],
    metric: &str,
    lb: Option<&str>,
    tg: Option<&str>,
) -> Option<&'a PointValue> {
    let matching: Vec<&MetricPoint> = points
        .iter()
        .filter(|p| {
            p.metric == metric
                && p.load_balancer.as_deref() == lb
                && p.target_group.as_deref() == tg
        })
        .collect();
    assert!(matching.len() <= 1, "{metric} {lb:?} {tg:?} twice");
    matching.first().map(|p| &p.value)
}

#[test]
fn a_window_counts_requests_target_5xx_and_response_times() {
    let mut w = Window::default();
    w.record(200, ms(10));
    w.record(200, ms(10));
    w.record(503, ms(30));
    // The load balancer's own 502: a request, but neither a target 5XX nor a time.
    w.record(502, None);
    assert_eq!((w.requests, w.target_5xx), (4, 1));
    assert_eq!(w.response_seconds(), vec![(0.01, 2), (0.03, 1)]);
}

#[test]
fn shards_drain_into_one_window_and_start_over() {
    let meter = GroupMeter::new(3);
    meter.record(0, 200, ms(1));
    meter.record(2, 500, ms(2));
    // A worker index past the shards still lands somewhere.
    meter.record(7, 200, None);
    let w = meter.drain();
    assert_eq!((w.requests, w.target_5xx, w.response_us.len()), (3, 1, 2));
    assert_eq!(meter.drain(), Window::default());
}

#[test]
fn dimensions_are_the_arn_tails_aws_uses() {
    assert_eq!(
        load_balancer_dimension(
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/50dc6c495c0c9188"
        ),
        "app/web/50dc6c495c0c9188"
    );
    assert_eq!(
        target_group_dimension(
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/73e2d6bc24d8a067"
        ),
        "targetgroup/tg/73e2d6bc24d8a067"
    );
}

#[test]
fn points_per_target_group_and_per_load_balancer() {
    let mut a = Window::default();
    for _ in 0..6 {
        a.record(200, ms(20));
    }
    a.record(500, ms(40));
    let mut b = Window::default();
    b.record(200, ms(100));
    let points = compute_points(
        &[
            period("app/web/1", "targetgroup/a/1", a, 2, 3),
            period("app/web/1", "targetgroup/b/2", b, 0, 2),
        ],
        120,
    );
    assert!(points.iter().all(|p| p.timestamp == 120));
    let (lb, ta, tb) = (
        Some("app/web/1"),
        Some("targetgroup/a/1"),
        Some("targetgroup/b/2"),
    );
    assert_eq!(
        find(&points, "RequestCount", lb, ta),
        Some(&PointValue::Count(7.0))
    );
    assert_eq!(
        find(&points, "RequestCount", lb, None),
        Some(&PointValue::Count(8.0))
    );
    // 7 requests over 2 healthy targets; b has none healthy, so all 2 registered count.
    assert_eq!(
        find(&points, "RequestCountPerTarget", None, ta),
        Some(&PointValue::Count(3.5))
    );
    assert_eq!(
        find(&points, "RequestCountPerTarget", lb, ta),
        Some(&PointValue::Count(3.5))
    );
    assert_eq!(
        find(&points, "RequestCountPerTarget", None, tb),
        Some(&PointValue::Count(0.5))
    );
    assert_eq!(
        find(&points, "TargetResponseTime", lb, ta),
        Some(&PointValue::Seconds(vec![(0.02, 6), (0.04, 1)]))
    );
    assert_eq!(
        find(&points, "TargetResponseTime", lb, None),
        Some(&PointValue::Seconds(vec![(0.02, 6), (0.04, 1), (0.1, 1)]))
    );
    assert_eq!(
        find(&points, "HTTPCode_Target_5XX_Count", lb, ta),
        Some(&PointValue::Count(1.0))
    );
    assert_eq!(
        find(&points, "HTTPCode_Target_5XX_Count", lb, None),
        Some(&PointValue::Count(1.0))
    );
    // Only when non-zero.
    assert_eq!(find(&points, "HTTPCode_Target_5XX_Count", lb, tb), None);
    assert_eq!(
        find(&points, "HealthyHostCount", lb, ta),
        Some(&PointValue::Count(2.0))
    );
    assert_eq!(
        find(&points, "UnHealthyHostCount", lb, tb),
        Some(&PointValue::Count(2.0))
    );
}

#[test]
fn a_quiet_period_reports_only_host_counts() {
    let points = compute_points(
        &[period(
            "app/web/1",
            "targetgroup/a/1",
            Window::default(),
            1,
            1,
        )],
        60,
    );
    let metrics: Vec<&str> = points.iter().map(|p| p.metric).collect();
    assert_eq!(metrics, ["HealthyHostCount", "UnHealthyHostCount"]);
}

#[test]
fn traffic_to_a_group_without_targets_has_no_per_target_count() {
    let mut w = Window::default();
    w.record(502, None);
    let points = compute_points(&[period("app/web/1", "targetgroup/a/1", w, 0, 0)], 60);
    assert!(points.iter().all(|p| p.metric != "RequestCountPerTarget"));
    assert!(points.iter().all(|p| p.metric != "TargetResponseTime"));
}

#[test]
fn load_balancers_are_kept_apart() {
    let mut a = Window::default();
    a.record(200, ms(1));
    let mut b = Window::default();
    b.record(200, ms(1));
    b.record(200, ms(1));
    let points = compute_points(
        &[
            period("app/one/1", "targetgroup/a/1", a, 1, 1),
            period("app/two/2", "targetgroup/b/2", b, 1, 1),
        ],
        0,
    );
    assert_eq!(
        find(&points, "RequestCount", Some("app/one/1"), None),
        Some(&PointValue::Count(1.0))
    );
    assert_eq!(
        find(&points, "RequestCount", Some("app/two/2"), None),
        Some(&PointValue::Count(2.0))
    );
}

#[test]
fn periods_align_to_the_epoch() {
    let every = Duration::from_secs(60);
    // At 12:01:00.5 the period that just ended began at 12:00:00.
    assert_eq!(
        period_start(Duration::from_millis(43_260_500), every),
        43_200
    );
    assert_eq!(
        until_boundary(Duration::from_millis(43_260_500), every),
        Duration::from_millis(59_500)
    );
    assert_eq!(
        until_boundary(Duration::from_secs(120), Duration::from_secs(2)),
        Duration::from_secs(2)
    );
}

#[test]
fn response_times_keep_three_significant_digits_above_a_millisecond() {
    assert_eq!(coarse_us(0), 0);
    assert_eq!(coarse_us(999), 999);
    assert_eq!(coarse_us(1_000), 1_000);
    assert_eq!(coarse_us(12_345), 12_300);
    assert_eq!(coarse_us(12_350), 12_400);
    assert_eq!(coarse_us(59_999_999), 60_000_000);
    // No overflow at the top.
    assert!(coarse_us(u64::MAX) >= 18_400_000_000_000_000_000);
    // Every value stays within 0.5 %, and a whole minute of distinct times stays small.
    let mut keys = std::collections::HashSet::new();
    for us in (1_000..60_000_000u64).step_by(997) {
        let c = coarse_us(us);
        assert!(
            (c as f64 - us as f64).abs() <= us as f64 * 0.005,
            "{us} -> {c}"
        );
        keys.insert(c);
    }
    assert!(keys.len() < 5_000, "{}", keys.len());
}
