//! The console's static assets, embedded in the binary: nothing is fetched at run time.
//! Each is served under a name carrying its content hash, so browsers may cache it for
//! good and a new build never serves a stale copy.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// htmx 2.0.11 (npm `htmx.org`, Zero-Clause BSD: `assets/vendor/htmx-LICENSE`).
const HTMX: &[u8] = include_bytes!("../assets/vendor/htmx-2.0.11.min.js");
/// The console's own style sheet.
const CSS: &[u8] = include_bytes!("../assets/console.css");
/// The console's own script: small behaviour htmx does not cover.
const JS: &[u8] = include_bytes!("../assets/console.js");

struct Asset {
    name: String,
    body: &'static [u8],
    content_type: &'static str,
}

fn assets() -> &'static [Asset; 3] {
    static ASSETS: OnceLock<[Asset; 3]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let named = |stem: &str, ext: &str, body: &'static [u8], content_type| {
            let hash = hex::encode(&Sha256::digest(body)[..6]);
            Asset {
                name: format!("{stem}.{hash}.{ext}"),
                body,
                content_type,
            }
        };
        [
            named("htmx", "js", HTMX, "text/javascript; charset=utf-8"),
            named("console", "css", CSS, "text/css; charset=utf-8"),
            named("console", "js", JS, "text/javascript; charset=utf-8"),
        ]
    })
}

/// The URL of the htmx script.
pub(crate) fn htmx_url() -> String {
    format!("{}/assets/{}", crate::MOUNT, assets()[0].name)
}

/// The URL of the style sheet.
pub(crate) fn css_url() -> String {
    format!("{}/assets/{}", crate::MOUNT, assets()[1].name)
}

/// The URL of the console's script.
pub(crate) fn js_url() -> String {
    format!("{}/assets/{}", crate::MOUNT, assets()[2].name)
}

/// `GET /console/assets/{name}`.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    match assets().iter().find(|a| a.name == name) {
        Some(a) => (
            [
                (http::header::CONTENT_TYPE, a.content_type),
                (
                    http::header::CACHE_CONTROL,
                    "public, max-age=31536000, immutable",
                ),
            ],
            a.body,
        )
            .into_response(),
        None => http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// Total size of the assets, uncompressed (for the README's numbers).
#[cfg(test)]
pub(crate) fn total_bytes() -> usize {
    assets().iter().map(|a| a.body.len()).sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn asset_names_carry_their_hash_and_the_total_stays_small() {
        assert!(super::htmx_url().starts_with("/console/assets/htmx."));
        assert!(super::total_bytes() < 500 * 1024);
    }
}
