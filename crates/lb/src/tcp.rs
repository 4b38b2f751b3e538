//! TCP listeners (network load balancers): each accepted connection is spliced to one
//! target chosen by the listener's forward action, bytes copied both ways until either
//! side closes.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::balance::InFlight;
use crate::table::TcpRoutes;

/// Accepts connections until `stop`. Established flows are not cut when the listener
/// goes away (as with NLB); they end with the data plane (`flows`).
pub(crate) async fn run_tcp_listener(
    listener: TcpListener,
    routes: Arc<ArcSwap<TcpRoutes>>,
    connect_timeout: Duration,
    stop: CancellationToken,
    flows: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, peer)) => {
                let in_flight = {
                    let routes = routes.load();
                    match routes.forward.as_ref().and_then(|f| f.pick()) {
                        Some(backend) => InFlight::start(backend.clone()),
                        None => {
                            tracing::debug!(%peer, "No target for a TCP connection; closing it.");
                            continue;
                        }
                    }
                };
                tokio::spawn(splice(client, in_flight, connect_timeout, flows.clone()));
            }
            Err(error) => {
                tracing::warn!(%error, "Accepting a connection failed.");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn splice(
    mut client: TcpStream,
    in_flight: InFlight,
    connect_timeout: Duration,
    flows: CancellationToken,
) {
    let authority = &in_flight.backend().authority;
    let connect = crate::pool::open_marked(
        authority.host().trim_matches(['[', ']']),
        authority.port_u16().unwrap_or(0),
        in_flight.backend().mark,
    );
    let mut upstream = match tokio::time::timeout(connect_timeout, connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%error, target = %authority, "Connecting to a TCP target failed.");
            return;
        }
        Err(_) => {
            tracing::debug!(target = %authority, "Connecting to a TCP target timed out.");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    tokio::select! {
        _ = flows.cancelled() => {}
        result = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
            if let Err(error) = result {
                tracing::debug!(%error, target = %authority, "TCP flow ended with an error.");
            }
        }
    }
}
