//! Incoming Raft RPCs: accepts peer connections on the Raft address and routes
//! each tagged request to the local group it names (forwarded metadata writes
//! go to `metadata::forward`).

use std::sync::Arc;

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{Raft, RaftTypeConfig};
use serde::de::DeserializeOwned;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::raft::registry::Registry;
use crate::raft::types::{NodeId, METADATA_GROUP};
use crate::raft::wire::{self, RpcKind, RpcReply, RpcRequest};
use crate::storage;

pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    max_frame: usize,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let registry = registry.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        r = connection(stream, registry, max_frame) => {
                            if let Err(e) = r {
                                tracing::debug!(%peer, error = %e, "raft connection closed");
                            }
                        }
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "raft accept failed"),
        }
    }
}

async fn connection(
    mut stream: TcpStream,
    registry: Arc<Registry>,
    max_frame: usize,
) -> Result<(), wire::WireError> {
    while let Some(request) = wire::read_frame::<_, RpcRequest>(&mut stream, max_frame).await? {
        let reply = route(&registry, request).await;
        wire::write_frame(&mut stream, &reply).await?;
    }
    Ok(())
}

async fn route(registry: &Registry, req: RpcRequest) -> RpcReply {
    if req.kind == RpcKind::Ping {
        let from = crate::raft::liveness::ping_sender(&req.body).map_err(|e| e.to_string())?;
        registry.liveness().heard(from);
        return Ok(Vec::new());
    }
    if req.group == METADATA_GROUP {
        let raft = registry.metadata().ok_or("metadata group is not running")?;
        if req.kind == RpcKind::Forward {
            return crate::metadata::forward::serve(&raft, &req.body).await;
        }
        dispatch(&raft, req.kind, &req.body).await
    } else {
        let raft =
            registry.partition(req.group).ok_or_else(|| format!("group {} is not hosted here", req.group))?;
        dispatch(&raft, req.kind, &req.body).await
    }
}

async fn dispatch<C>(raft: &Raft<C>, kind: RpcKind, body: &[u8]) -> RpcReply
where
    C: RaftTypeConfig<NodeId = NodeId>,
    AppendEntriesRequest<C>: DeserializeOwned,
    InstallSnapshotRequest<C>: DeserializeOwned,
{
    let decode_err = |e: storage::StorageError| e.to_string();
    let encoded = match kind {
        RpcKind::AppendEntries => {
            let rpc = storage::decode("append entries", body).map_err(decode_err)?;
            storage::encode("append reply", &raft.append_entries(rpc).await)
        }
        RpcKind::Vote => {
            let rpc: VoteRequest<NodeId> = storage::decode("vote", body).map_err(decode_err)?;
            storage::encode("vote reply", &raft.vote(rpc).await)
        }
        RpcKind::InstallSnapshot => {
            let rpc = storage::decode("install snapshot", body).map_err(decode_err)?;
            storage::encode("snapshot reply", &raft.install_snapshot(rpc).await)
        }
        RpcKind::Elect => {
            let started = raft.trigger().elect().await.map_err(|e| e.to_string());
            storage::encode("elect reply", &started)
        }
        RpcKind::Forward => return Err("only the metadata group takes forwarded writes".to_string()),
        RpcKind::Ping => return Ok(Vec::new()),
    };
    encoded.map_err(|e| e.to_string())
}
