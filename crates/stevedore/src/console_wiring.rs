//! Mounts the web console (`crates/console`) on the API listener and gives it the one
//! way in it has: its signed requests go through the same front door as the network's
//! ([`crate::http::api`]), so the account, region, SigV4 check and policy evaluation
//! are exactly those of a CLI request.

use crate::http::App;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The console's routes (under [`console::MOUNT`]), calling the API of `app`.
pub fn routes(app: Arc<App>, options: console::Options) -> axum::Router {
    console::router(Arc::new(FrontDoor(app)), options)
}

struct FrontDoor(Arc<App>);

impl console::Api for FrontDoor {
    fn call(
        &self,
        req: http::Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = http::Response<Bytes>> + Send + '_>> {
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            // The browser's address stands where a network client's would: `aws:SourceIp`.
            if let Some(peer) = parts.extensions.remove::<console::Peer>() {
                parts.extensions.insert(ConnectInfo(peer.0));
            }
            let req = http::Request::from_parts(parts, Body::from(body));
            let (parts, body) = crate::http::api(State(self.0.clone()), req)
                .await
                .into_parts();
            let bytes = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    tracing::error!(%error, "Could not read an API response for the console.");
                    Bytes::new()
                }
            };
            http::Response::from_parts(parts, bytes)
        })
    }

    fn default_region(&self) -> String {
        self.0
            .accounts()
            .first()
            .regions
            .default_region()
            .scope
            .region
            .clone()
    }
}
