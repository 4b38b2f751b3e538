//! Sends arbitrary requests through full SigV4 verification: must never panic, whatever the
//! method, path, query, headers, body or clock. The input drives a template, so most runs
//! get past parsing into the date, scope and signature checks rather than stopping at the
//! first malformed byte.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use wire::sigv4::{verify, SignedRequest};

/// 20241126T103500Z
const BASE_NOW: i64 = 1_732_617_300;

fn text<'a>(u: &mut Unstructured<'a>, max: usize) -> Result<&'a str> {
    let len = u.int_in_range(0..=max)?.min(u.len());
    let bytes = u.bytes(len)?;
    Ok(std::str::from_utf8(bytes).unwrap_or("x"))
}

fn pick<'a>(u: &mut Unstructured<'_>, choices: &[&'a str]) -> Result<&'a str> {
    Ok(*u.choose(choices)?)
}

/// A timestamp either valid near the clock or arbitrary text.
fn amz_date(u: &mut Unstructured<'_>, now: i64) -> Result<String> {
    if u.ratio(1, 4)? {
        return Ok(text(u, 20)?.to_owned());
    }
    // `now` is sometimes an arbitrary i64; the harness itself must not overflow.
    let secs = now.saturating_add(i64::from(u.int_in_range(-2000i32..=2000)?));
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // 2024-11-26 is day 20053 since the epoch; stay in that month for simplicity.
    let day = 26 + (days - 20053).clamp(-25, 4);
    Ok(format!(
        "202411{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    ))
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let now = if u.ratio(1, 16)? {
        u.arbitrary::<i64>()?
    } else {
        BASE_NOW
    };
    let method = pick(u, &["GET", "POST", "PUT", "", "get"])?;
    let path = if u.ratio(1, 2)? {
        pick(
            u,
            &[
                "/",
                "",
                "/v2/a%2Fb/blobs/sha256:ab",
                "//a/./b/../",
                "/%",
                "/%zz/é",
            ],
        )?
        .to_owned()
    } else {
        text(u, 40)?.to_owned()
    };
    let date = amz_date(u, now)?;
    let scope_date = if u.ratio(1, 8)? {
        text(u, 10)?.to_owned()
    } else {
        date.get(..8).unwrap_or("").to_owned()
    };
    let akid = pick(u, &["AKID", "UNKNOWN", "", "A/B"])?;
    let region = pick(u, &["us-east-1", "", "eu-west-3"])?;
    let service = pick(u, &["ecs", "ecr", ""])?;
    let terminator = pick(u, &["aws4_request", "aws5_request", ""])?;
    let credential = format!("{akid}/{scope_date}/{region}/{service}/{terminator}");
    let signed_headers = if u.ratio(1, 4)? {
        text(u, 30)?.to_owned()
    } else {
        pick(
            u,
            &[
                "host;x-amz-date",
                "content-type;host;x-amz-date;x-amz-target",
                "x-amz-date",
                "host;host",
                "host;x-amz-content-sha256;x-amz-date",
            ],
        )?
        .to_owned()
    };
    let signature = if u.ratio(1, 2)? {
        "0".repeat(64)
    } else {
        text(u, 70)?.to_owned()
    };
    let sep = pick(u, &[", ", ",", " , ", ";"])?;

    let mut headers = http::HeaderMap::new();
    let mut query = if u.ratio(1, 2)? {
        Some(text(u, 60)?.to_owned())
    } else {
        None
    };
    match u.int_in_range(0u8..=3)? {
        // Authorization header built from the parts.
        0 | 1 => {
            let auth = format!("AWS4-HMAC-SHA256 Credential={credential}{sep}SignedHeaders={signed_headers}{sep}Signature={signature}");
            if let Ok(v) = http::HeaderValue::from_str(&auth) {
                headers.insert(http::header::AUTHORIZATION, v);
            }
            if u.ratio(3, 4)? {
                if let Ok(v) = http::HeaderValue::from_str(&date) {
                    headers.insert("x-amz-date", v);
                }
            } else if let Ok(v) = http::HeaderValue::from_str(text(u, 30)?) {
                headers.insert(http::header::DATE, v);
            }
        }
        // Presigned query built from the parts.
        2 => {
            let expires = pick(
                u,
                &[
                    "300",
                    "0",
                    "604800",
                    "604801",
                    "-1",
                    "9999999999999999999999",
                    "",
                ],
            )?;
            let extra = query.take().unwrap_or_default();
            query = Some(format!(
                "{extra}&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders={}&X-Amz-Signature={signature}",
                credential.replace('/', "%2F"),
                signed_headers.replace(';', "%3B"),
            ));
        }
        // Raw arbitrary Authorization header bytes.
        _ => {
            let len = u.int_in_range(0..=80usize)?.min(u.len());
            if let Ok(v) = http::HeaderValue::from_bytes(u.bytes(len)?) {
                headers.insert(http::header::AUTHORIZATION, v);
            }
        }
    }
    // A few more headers, possibly repeated, possibly the ones SigV4 reads.
    for _ in 0..u.int_in_range(0u8..=5)? {
        let name = pick(
            u,
            &[
                "host",
                "x-amz-target",
                "content-type",
                "x-amz-content-sha256",
                "authorization",
                "x-amz-date",
                "date",
            ],
        )?;
        let value = if name == "x-amz-content-sha256" && u.ratio(1, 2)? {
            pick(
                u,
                &[
                    "UNSIGNED-PAYLOAD",
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                ],
            )?
        } else {
            text(u, 30)?
        };
        if let Ok(v) = http::HeaderValue::from_str(value) {
            headers.append(name, v);
        }
    }
    let body = u.bytes(u.len().min(256))?;
    let req = SignedRequest {
        method,
        path: &path,
        query: query.as_deref(),
        headers: &headers,
        body,
    };
    let secret_for = |akid: &str| (akid == "AKID").then(|| "secret".to_owned());
    if let Err(e) = verify(&req, &secret_for, now) {
        assert!(!e.to_string().is_empty());
        assert!(e.aws_code().ends_with("Exception"));
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
