use super::*;
use crate::balance::{Routable, TargetState};
use model::lb::Algorithm;
use proptest::prelude::*;

/// 1994-11-06T08:49:37Z, RFC 9110's example date.
const EXAMPLE_DATE: u64 = 784_111_777;
const NOW: u64 = 1_732_615_200;
const DAY: Duration = Duration::from_secs(86_400);

fn key(id: &str) -> TargetKey {
    TargetKey {
        id: id.into(),
        port: 80,
    }
}

fn group(arn: &str, ids: &[&str]) -> Group {
    let backends = ids
        .iter()
        .map(|id| {
            Arc::new(Backend {
                key: key(id),
                authority: http::uri::Authority::from_static("127.0.0.1:80"),
                draining: false,
                mark: 0,
                cookie_id: compute_cookie_id(arn, &key(id)),
                state: Arc::new(TargetState::new(Routable::Healthy, 1)),
                requests: Arc::new(telemetry::LbRequests::for_target_group(arn)),
                meter: Arc::new(crate::alb_metrics::GroupMeter::new(1)),
            })
        })
        .collect();
    Group::new(arn.into(), Algorithm::RoundRobin, backends).with_stickiness(Some(DAY))
}

/// A token for target `id` of group `arn`, expiring at `expires`.
fn token(arn: &str, id: &str, expires: u64) -> String {
    let cookie = StickyCookie {
        target: compute_cookie_id(arn, &key(id)),
        expires,
    };
    String::from_utf8(cookie.token().to_vec()).expect("hex")
}

/// Which target a request with these `Cookie` headers (raw, as the fast path has them)
/// gets, and which target its cookie then names.
fn pick_raw(g: &Group, cookies: &[&str]) -> (String, u64) {
    let headers: Vec<httparse::Header<'_>> = cookies
        .iter()
        .map(|c| httparse::Header {
            name: "Cookie",
            value: c.as_bytes(),
        })
        .collect();
    let (backend, cookie) = pick(g, DAY, &Headers::Raw(&headers), NOW).expect("a target");
    assert_eq!(cookie.target, backend.cookie_id);
    assert_eq!(cookie.expires, NOW + DAY.as_secs());
    (backend.key.id.clone(), cookie.target)
}

#[test]
fn a_cookie_naming_a_target_of_the_group_brings_the_request_back_to_it() {
    let g = group("tg", &["a", "b", "c"]);
    let b = token("tg", "b", NOW + 60);
    for _ in 0..5 {
        let (picked, named) = pick_raw(&g, &[&format!("theme=dark; AWSALB={b}; lang=en")]);
        assert_eq!(picked, "b");
        assert_eq!(named, compute_cookie_id("tg", &key("b")));
    }
    // The CORS twin, quoted, in the second of two Cookie headers, through hyper's map.
    let mut map = HeaderMap::new();
    map.append(COOKIE, HeaderValue::from_static("theme=dark"));
    let cors = format!("AWSALBCORS=\"{b}\"");
    map.append(COOKIE, HeaderValue::from_str(&cors).expect("value"));
    let (backend, _) = pick(&g, DAY, &Headers::Map(&map), NOW).expect("a target");
    assert_eq!(backend.key.id, "b");
}

#[test]
fn foreign_expired_and_malformed_cookies_are_balanced_as_usual() {
    let g = group("tg", &["a", "b", "c"]);
    let ignored = [
        format!("AWSALB={}", token("other-tg", "b", NOW + 60)),
        format!("AWSALB={}", token("tg", "b", NOW)),
        format!("AWSALB={}", token("tg", "gone", NOW + 60)),
        format!("awsalb={}", token("tg", "b", NOW + 60)),
        "AWSALB=".into(),
        "AWSALB=zz".into(),
        format!("AWSALB={}0", token("tg", "b", NOW + 60)),
        format!("AWSALB=+{}", &token("tg", "b", NOW + 60)[1..]),
        "AWSALB".into(),
        ";;=;".into(),
    ];
    for cookie in &ignored {
        let spread: Vec<String> = (0..3).map(|_| pick_raw(&g, &[cookie]).0).collect();
        let mut sorted = spread.clone();
        sorted.sort();
        assert_eq!(sorted, ["a", "b", "c"], "{cookie}: {spread:?}");
    }
    // A bad cookie first does not hide a good one after it.
    let good = token("tg", "c", NOW + 60);
    assert_eq!(
        pick_raw(&g, &["AWSALB=junk", &format!("AWSALB={good}")]).0,
        "c"
    );
}

#[test]
fn cookie_pairs_read_names_and_values_leniently() {
    let pairs: Vec<(&[u8], &[u8])> =
        cookie_pairs(b" a=1;b = 2 ;; c=\"3\"; flag; d==4; =5").collect();
    assert_eq!(
        pairs,
        [
            (b"a".as_slice(), b"1".as_slice()),
            (b"b", b"2"),
            (b"c", b"3"),
            (b"d", b"=4"),
            (b"", b"5"),
        ]
    );
}

#[test]
fn set_cookie_lines_name_the_target_and_expire_after_the_duration() {
    let cookie = StickyCookie {
        target: 0x0123_4567_89ab_cdef,
        expires: EXAMPLE_DATE,
    };
    let mut out = Vec::new();
    cookie.write_http1(&mut out);
    let expected = format!(
        "Set-Cookie: AWSALB=0123456789abcdef{e:016x}; Expires=Sun, 06 Nov 1994 08:49:37 GMT; Path=/\r\n\
         Set-Cookie: AWSALBCORS=0123456789abcdef{e:016x}; Expires=Sun, 06 Nov 1994 08:49:37 GMT; Path=/; SameSite=None\r\n",
        e = EXAMPLE_DATE
    );
    assert_eq!(String::from_utf8_lossy(&out), expected);

    let mut headers = HeaderMap::new();
    headers.append(SET_COOKIE, HeaderValue::from_static("app=1"));
    cookie.append_to(&mut headers);
    let values: Vec<&str> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(values.len(), 3);
    assert_eq!(values[0], "app=1");
    assert!(values[1].starts_with("AWSALB=0123456789abcdef"));
    assert!(values[2].ends_with("; Path=/; SameSite=None"));
    // A duration past what an HTTP date can say is clamped, not a panic.
    let far = StickyCookie::new(1, u64::MAX - 1, Duration::from_secs(u64::MAX));
    assert_eq!(far.expires, LAST_HTTP_DATE);
    far.write_http1(&mut Vec::new());
}

#[test]
fn cookie_ids_differ_by_group_target_and_port() {
    let id = compute_cookie_id("tg", &key("a"));
    assert_eq!(id, compute_cookie_id("tg", &key("a")), "stable");
    assert_ne!(id, compute_cookie_id("tg2", &key("a")));
    assert_ne!(id, compute_cookie_id("tg", &key("b")));
    let other_port = TargetKey {
        id: "a".into(),
        port: 81,
    };
    assert_ne!(id, compute_cookie_id("tg", &other_port));
    // The separator keeps field boundaries apart.
    assert_ne!(
        compute_cookie_id("tga", &key("")),
        compute_cookie_id("tg", &key("a"))
    );
}

proptest! {
    /// A token decodes to the target it was made for until it expires, and never after.
    #[test]
    fn tokens_round_trip_until_they_expire(target in any::<u64>(), now in 0u64..LAST_HTTP_DATE, secs in 0u64..1_000_000) {
        let cookie = StickyCookie::new(target, now, Duration::from_secs(secs));
        let token = cookie.token();
        let expected = (cookie.expires > now).then_some(target);
        prop_assert_eq!(decode_token(&token, now), expected);
        prop_assert_eq!(decode_token(&token, cookie.expires), None);
        prop_assert_eq!(decode_token(&token.to_ascii_uppercase(), now), expected);
    }

    /// Any bytes as a token or a Cookie header: no panic, and a pick still happens.
    #[test]
    fn garbage_cookies_never_panic(raw in prop::collection::vec(any::<u8>(), 0..120)) {
        let _ = decode_token(&raw, NOW);
        for (name, value) in cookie_pairs(&raw) {
            prop_assert!(name.len() + value.len() <= raw.len());
        }
        let g = group("tg", &["a", "b"]);
        let headers = [httparse::Header { name: "cookie", value: &raw }];
        prop_assert!(pick(&g, DAY, &Headers::Raw(&headers), NOW).is_some());
    }
}
