//! Incoming Raft RPCs: accepts peer connections on the Raft address and hands
//! each tagged request to the handler its group registered (`raft::rpc`);
//! pings feed the failure detector. The port is as open as the Kafka one, so it is
//! guarded the same way: at most `raft_max_connections` at once (more wait to
//! be accepted), frames bounded by `raft_max_frame_bytes` and read under the
//! listener's `raft_queued_max_bytes` budget, each frame due whole within
//! `frame_timeout_ms` of its first byte, and bodies decoded by the bounded
//! `storage::decode`. Peers keep pooled connections open between calls, so
//! there is no idle close here.

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::net::{Accepted, Acceptor, Budget, EdgeStats, FrameError, FrameReader, Refusal};
use crate::raft::registry::Registry;
use crate::raft::wire::RpcRefusal;
use crate::raft::wire::{self, RpcKind, RpcReply, RpcRequest, WireError};

/// How the Raft listener guards itself.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_frame: usize,
    pub max_connections: usize,
    pub queued_max_bytes: usize,
    pub frame_timeout: Duration,
}

pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    limits: Limits,
    stats: Arc<EdgeStats>,
    shutdown: CancellationToken,
) {
    let budget = Arc::new(Budget::new(limits.queued_max_bytes));
    stats.set_budget(budget.clone());
    // Peers are few and pool their connections: no per-address limit.
    let acceptor = Acceptor::new(listener, limits.max_connections, None, stats.clone());
    while let Some(Accepted { stream, peer, held }) = acceptor.next(&shutdown).await {
        let _ = stream.set_nodelay(true);
        let (registry, shutdown, budget, stats, limits) =
            (registry.clone(), shutdown.clone(), budget.clone(), stats.clone(), limits.clone());
        tokio::spawn(async move {
            let _held = held;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                r = connection(stream, registry, &budget, &limits) => if let Err(e) = r {
                    match refusal(&e) {
                        Some(reason) => {
                            stats.refused(reason);
                            tracing::warn!(%peer, error = %e, "closing raft connection");
                        }
                        None => tracing::debug!(%peer, error = %e, "raft connection closed"),
                    }
                }
            }
        });
    }
}

/// What `/metrics` counts a closed connection as; `None` where the network
/// failed under us.
fn refusal(e: &WireError) -> Option<Refusal> {
    match e {
        WireError::Frame(FrameError::TooLarge { .. }) | WireError::TooLarge { .. } => {
            Some(Refusal::FrameTooLarge)
        }
        WireError::Frame(FrameError::NegativeLength(_)) => Some(Refusal::NegativeLength),
        WireError::Frame(FrameError::Truncated { .. }) => Some(Refusal::Truncated),
        WireError::Frame(FrameError::Timeout(_)) => Some(Refusal::FrameTimeout),
        WireError::Codec(_) => Some(Refusal::Malformed),
        WireError::Frame(FrameError::Io(_)) | WireError::Io(_) => None,
    }
}

async fn connection(
    stream: TcpStream,
    registry: Arc<Registry>,
    budget: &Budget,
    limits: &Limits,
) -> Result<(), WireError> {
    let (read, mut write) = stream.into_split();
    let mut frames = FrameReader::new(read, limits.max_frame, limits.frame_timeout);
    while let Some(frame) = frames.next(budget).await? {
        let request: RpcRequest = wire::decode(&frame.body)?;
        let reply = route(&registry, request).await;
        drop(frame);
        match tokio::time::timeout(limits.frame_timeout, wire::write_frame(&mut write, &reply)).await {
            Ok(written) => written?,
            Err(_) => return Err(WireError::Io(std::io::ErrorKind::TimedOut.into())),
        }
    }
    Ok(())
}

async fn route(registry: &Registry, req: RpcRequest) -> RpcReply {
    if req.kind == RpcKind::Ping {
        let from = crate::raft::liveness::ping_sender(&req.body)
            .map_err(|_| RpcRefusal::Undecodable(RpcKind::Ping))?;
        registry.liveness().heard(from);
        let reply = crate::raft::liveness::ping_reply(registry.liveness())
            .map_err(|_| RpcRefusal::Unencodable(RpcKind::Ping))?;
        return Ok(Bytes::from(reply));
    }
    if req.kind == RpcKind::Elect && registry.is_draining() {
        return Err(RpcRefusal::Draining);
    }
    let handler = registry.handler(req.group).ok_or(RpcRefusal::NotHosted(req.group))?;
    handler.handle(req.kind, &req.body).await
}
