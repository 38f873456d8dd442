//! Accepting admin HTTP connections: at most `http_max_connections` at once
//! and `max_connections_per_ip` from one address, request headers due within
//! `frame_timeout_ms` (hyper's header-read timeout, which `axum::serve` leaves
//! off for want of a timer), request bodies capped by the router's
//! `http_max_body_bytes` layer. On shutdown every connection finishes the
//! request it is serving and closes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::net::{Accepted, Acceptor, EdgeStats, Refusal};

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_ip: usize,
    pub header_timeout: Duration,
}

pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<EdgeStats>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let acceptor = Acceptor::new(listener, limits.max_connections, Some(limits.max_per_ip), stats.clone());
    while let Some(Accepted { stream, peer, held }) = acceptor.next(&shutdown).await {
        let (app, shutdown, stats, timeout) =
            (app.clone(), shutdown.clone(), stats.clone(), limits.header_timeout);
        tasks.spawn(async move {
            let _held = held;
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                app.clone().oneshot(req.map(Body::new))
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                if e.is_timeout() {
                    stats.refused(Refusal::FrameTimeout);
                    tracing::warn!(%peer, error = %e, "closing http connection");
                } else {
                    tracing::debug!(%peer, error = %e, "http connection ended");
                }
            }
        });
    }
}
