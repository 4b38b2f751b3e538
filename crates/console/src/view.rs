//! The page shell and the small pieces every page draws with: navigation, status
//! badges, AWS errors shown where they happened, empty states, and reading fields out of
//! the APIs' JSON answers.

use crate::client::ApiError;
use crate::session::Session;
use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

/// The sections in the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Section {
    Clusters,
    TaskDefinitions,
    Repositories,
    LoadBalancers,
}

impl Section {
    const ALL: [(Self, &'static str, &'static str); 4] = [
        (Self::Clusters, "Clusters", "/clusters"),
        (
            Self::TaskDefinitions,
            "Task definitions",
            "/task-definitions",
        ),
        (Self::Repositories, "Repositories", "/repositories"),
        (Self::LoadBalancers, "Load balancers", "/load-balancers"),
    ];
}

/// A full page: `title`, the navigation with `section` current, and `body`.
pub(crate) fn page(
    title: &str,
    section: Option<Section>,
    session: Option<&Session>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // Inline indicator styles would need 'unsafe-inline' under the CSP. A
                // poll answered 304 (its ETag still current, see console.js) swaps nothing.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"responseHandling":[{"code":"204","swap":false},{"code":"304","swap":false},{"code":"[23]..","swap":true},{"code":"[45]..","swap":false,"error":true},{"code":"...","swap":false}]}"#;
                title { (title) " · Stevedore" }
                // No icon: without this line browsers ask the API for /favicon.ico.
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(crate::assets::css_url());
                script src=(crate::assets::htmx_url()) defer {}
                script src=(crate::assets::js_url()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a href=(url("/clusters")) { strong { "Stevedore" } }
                    @if let Some(s) = session {
                        nav aria-label="Sections" {
                            @for (sec, label, path) in Section::ALL {
                                @if Some(sec) == section {
                                    a href=(url(path)) aria-current="page" { (label) }
                                } @else {
                                    a href=(url(path)) { (label) }
                                }
                            }
                        }
                        div.who {
                            span title=(s.principal_arn) { (short_arn(&s.principal_arn)) " · " (s.account) " · " (s.region) }
                            form method="post" action=(url("/signout")) {
                                (csrf(s))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A console path under the mount point.
pub(crate) fn url(path: &str) -> String {
    format!("{}{path}", crate::MOUNT)
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A region that re-renders itself from `src` every two seconds (htmx polling); `src`
/// answers just this fragment to htmx requests.
pub(crate) fn live(src: &str, body: Markup) -> Markup {
    html! {
        div #live hx-get=(src) hx-trigger="every 2s" hx-select="#live" hx-swap="outerHTML" {
            p #live-note.muted aria-live="polite" {}
            (body)
        }
    }
}

/// An AWS error, shown where the failed call was made.
pub(crate) fn error(e: &ApiError) -> Markup {
    html! {
        div.error role="alert" {
            code { (e.code) } ": " (e.message)
        }
    }
}

/// What to do when a list is empty: a sentence and the CLI command that fills it.
pub(crate) fn empty(what: &str, command: &str) -> Markup {
    html! {
        div.empty {
            p { (what) }
            p { "With the AWS CLI: " code { (command) } }
        }
    }
}

/// A status word styled by its value.
pub(crate) fn status(s: &str) -> Markup {
    html! { span class={ "status " (s) } { (s) } }
}

/// The last part of an ARN (`…/name`), for display.
pub(crate) fn short_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A string field of a JSON answer, or "".
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An integer field of a JSON answer, or 0.
pub(crate) fn n(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// An array field of a JSON answer, or empty.
pub(crate) fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// An epoch-seconds timestamp (as the JSON protocols send them), as UTC text.
pub(crate) fn time(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_f64)
        .map_or_else(String::new, epoch_text)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn epoch_text(secs: f64) -> String {
    let secs = secs.floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Pretty JSON, escaped for a `<pre>`.
pub(crate) fn json_block(v: &Value) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_read_as_utc_dates() {
        assert_eq!(epoch_text(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(epoch_text(1_796_651_523.5), "2026-12-07 13:52:03 UTC");
    }

    #[test]
    fn errors_escape_what_the_server_said() {
        let e = ApiError {
            code: "AccessDeniedException".into(),
            message: "<script>".into(),
        };
        let out = error(&e).into_string();
        assert!(out.contains("&lt;script&gt;") && !out.contains("<script>"));
    }
}
#[cfg(test)]
mod status_tests {
    #[test]
    fn status_badges_carry_the_status_as_a_class() {
        assert_eq!(
            super::status("RUNNING").into_string(),
            r#"<span class="status RUNNING">RUNNING</span>"#
        );
    }
}
