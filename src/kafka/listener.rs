//! The Kafka accept loop: one task per connection, at most `max_connections`
//! at once (a semaphore), all stopped by the shutdown token.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::kafka::connection;
use crate::kafka::ctx::Ctx;
use crate::protocol::ProtocolError;

pub async fn run(listener: TcpListener, ctx: Arc<Ctx>, shutdown: CancellationToken, tasks: TaskTracker) {
    let limit = Arc::new(Semaphore::new(ctx.config.max_connections));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "kafka accept failed");
                continue;
            }
        };
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let _permit = permit;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                r = connection::serve(ctx, stream) => match r {
                    Ok(()) => {}
                    Err(ProtocolError::Io(e)) => tracing::debug!(%peer, error = %e, "kafka connection io error"),
                    Err(e) => tracing::warn!(%peer, error = %e, "closing kafka connection"),
                },
            }
        });
    }
}
