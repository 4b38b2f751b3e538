//! `console` owns Stevedore's web console: server-rendered HTML pages (maud templates,
//! htmx for live updates, every asset embedded in the binary) mounted at `/console/` on
//! the API listener.
//!
//! The console holds no privileges of its own. Sign-in takes an access key and secret
//! (and a session token for temporary credentials) and proves them with a signed STS
//! `GetCallerIdentity`; the server then keeps them in a session (in memory only) and
//! every page signs its AWS calls with them and sends them through the same public
//! endpoint the CLI reaches ([`Api`]): SigV4 verification, the account and region
//! lookup, policy evaluation and the handlers are the CLI's, so a denied action answers
//! AWS's own AccessDenied text. The browser only ever holds an opaque session cookie
//! (HttpOnly, SameSite=Strict, Secure under TLS) and a per-session CSRF token in forms.
//!
//! It must not reach into any service's state directly: a page that needs data the
//! public APIs do not give does without it.

#![forbid(unsafe_code)]

mod assets;
mod client;
mod etag;
mod pages;
mod session;
mod view;

use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use client::Peer;
pub use session::DEFAULT_TTL;

/// Where the console is mounted.
pub const MOUNT: &str = "/console";

/// The public API endpoint, as the console reaches it: one signed request in, its
/// response out, served exactly as a request from the network would be.
pub trait Api: Send + Sync + 'static {
    /// Serves one signed AWS API request.
    fn call(
        &self,
        req: http::Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = http::Response<Bytes>> + Send + '_>>;

    /// The region requests are signed for when the user names none at sign-in.
    fn default_region(&self) -> String;
}

/// How the console is served.
#[derive(Clone, Debug)]
pub struct Options {
    /// Whether the listener speaks TLS: session cookies are then marked `Secure`.
    pub tls: bool,
    /// How long a session lasts after sign-in.
    pub session_ttl: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tls: false,
            session_ttl: DEFAULT_TTL,
        }
    }
}

/// What every handler shares.
pub(crate) struct Console {
    pub api: Arc<dyn Api>,
    pub sessions: session::Sessions,
    pub options: Options,
}

/// The console's routes, to be nested at [`MOUNT`] in the server's router.
pub fn router(api: Arc<dyn Api>, options: Options) -> axum::Router {
    let console = Arc::new(Console {
        api,
        sessions: session::Sessions::default(),
        options,
    });
    pages::routes()
        .layer(axum::middleware::from_fn(etag::layer))
        .with_state(console)
}
