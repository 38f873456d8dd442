//! The Kafka listener: one task per connection, at most `max_connections` at
//! once and `max_connections_per_ip` from one address (`net::Acceptor`), all
//! sharing one `queued_max_request_bytes` budget and stopped by the shutdown
//! token. Every connection the broker ends for cause is logged here, once,
//! and counted in `/metrics`.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::kafka::connection::{self, Closed};
use crate::net::{Accepted, Acceptor, Budget, Refusal};
use crate::node::Node;
use crate::protocol::ProtocolError;

pub async fn run(listener: TcpListener, ctx: Arc<Node>, shutdown: CancellationToken, tasks: TaskTracker) {
    let stats = ctx.metrics.kafka_edge.clone();
    let per_ip = Some(ctx.config.max_connections_per_ip);
    let acceptor = Acceptor::new(listener, ctx.config.max_connections, per_ip, stats.clone());
    let budget = Arc::new(Budget::new(ctx.config.queued_max_request_bytes));
    stats.set_budget(budget.clone());
    while let Some(Accepted { stream, peer, held }) = acceptor.next(&shutdown).await {
        let (ctx, shutdown, budget, stats) = (ctx.clone(), shutdown.clone(), budget.clone(), stats.clone());
        tasks.spawn(async move {
            let _held = held;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                r = connection::serve(ctx, stream, &budget) => if let Err(e) = r {
                    let refusal = e.refusal();
                    if let Some(reason) = refusal {
                        stats.refused(reason);
                    }
                    log_close(&peer, &e, refusal);
                },
            }
        });
    }
}

/// One line per connection the broker ended: a warning where the client sent
/// something no healthy client sends, quieter where it merely went away or
/// went quiet.
fn log_close(peer: &std::net::SocketAddr, e: &Closed, refusal: Option<Refusal>) {
    match refusal {
        Some(Refusal::Idle) => tracing::debug!(%peer, error = %e, "closing idle kafka connection"),
        None if matches!(e, Closed::Protocol(ProtocolError::Encode { .. })) => {
            tracing::warn!(%peer, error = %e, "cannot answer a kafka request; closing its connection")
        }
        Some(Refusal::Truncated) | None => tracing::debug!(%peer, error = %e, "kafka connection ended"),
        Some(
            Refusal::FrameTooLarge
            | Refusal::NegativeLength
            | Refusal::FrameTimeout
            | Refusal::WriteTimeout
            | Refusal::Malformed
            | Refusal::UnknownApiKey
            | Refusal::UnsupportedVersion
            | Refusal::PerIpLimit,
        ) => tracing::warn!(%peer, error = %e, "closing kafka connection"),
    }
}
