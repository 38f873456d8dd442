//! Metadata writes from any node. Only the metadata group's Raft leader can
//! propose, so a node that is not the leader sends its command over the Raft
//! transport (`RpcKind::Forward`) to the node it believes leads; that node
//! proposes it locally or answers `NotLeader` with a better guess. A broker
//! outside the initial voters joins the same way: the leader adds it as a
//! learner of the metadata group, then registers it.

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::metadata::command::{BrokerInfo, MetaConfig, MetaRaft, MetadataCommand, MetadataResponse};
use crate::raft::network::{Transport, TransportError};
use crate::raft::registry::Registry;
use crate::raft::rpc::{GroupHandler, HandlerFuture, RaftRpc};
use crate::raft::types::{NodeId, METADATA_GROUP};
use crate::raft::wire::{RpcKind, RpcRefusal, RpcReply, RpcRequest, WireError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardRequest {
    Write(MetadataCommand),
    /// Adds a broker that is not an initial voter: learner, then registered.
    Join(BrokerInfo),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardFailure {
    /// Nothing was proposed; `leader` is the Raft address of a better guess.
    #[error("not the metadata leader")]
    NotLeader { leader: Option<(NodeId, String)> },
    #[error(transparent)]
    Failed(#[from] WriteFailure),
}

/// Why the metadata leader could not carry out a write (the Raft error
/// itself is logged where it happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum WriteFailure {
    #[error("the metadata group's raft has stopped")]
    Stopped,
    #[error("the metadata group's membership cannot change now")]
    MembershipRefused,
}

/// The result, and the index of the log entry that produced it, so the
/// forwarding node can wait until its own replica has applied it too.
pub type ForwardReply = Result<(MetadataResponse, u64), ForwardFailure>;

/// The metadata group's handler of incoming RPCs: forwarded writes here,
/// the rest to its Raft.
pub struct MetadataRpc {
    pub rpc: RaftRpc<MetaConfig>,
    /// Told of every AppendEntries as it arrives: the group's election
    /// timer is off while its leader is alive, and comes back on if that
    /// leader sends nothing for long (`raft::leadership`).
    pub registry: Arc<Registry>,
}

impl GroupHandler for MetadataRpc {
    fn handle<'a>(&'a self, kind: RpcKind, body: &'a [u8]) -> HandlerFuture<'a> {
        Box::pin(async move {
            match kind {
                RpcKind::Forward => serve(&self.rpc.raft, body).await,
                RpcKind::AppendEntries => {
                    self.registry.heard_leader(self.rpc.group);
                    self.rpc.serve(kind, body).await
                }
                other => self.rpc.serve(other, body).await,
            }
        })
    }
}

/// Serves one forwarded request on this node (the transport's server side).
async fn serve(raft: &MetaRaft, body: &[u8]) -> RpcReply {
    let req: ForwardRequest =
        codec::decode("forwarded write", body).map_err(|_| RpcRefusal::Undecodable(RpcKind::Forward))?;
    codec::encode("forward reply", &apply_here(raft, req).await)
        .map(Bytes::from)
        .map_err(|_| RpcRefusal::Unencodable(RpcKind::Forward))
}

/// Proposes `req` through the local Raft, which must be the leader.
pub async fn apply_here(raft: &MetaRaft, req: ForwardRequest) -> ForwardReply {
    match req {
        ForwardRequest::Write(cmd) => write(raft, cmd).await,
        ForwardRequest::Join(info) => {
            if let Err(e) = raft.add_learner(info.id, BasicNode::new(info.raft_addr.clone()), false).await {
                return Err(match e {
                    RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                        ForwardFailure::NotLeader { leader: leader_guess(f.leader_id, f.leader_node) }
                    }
                    other => {
                        tracing::warn!(node = info.id, error = %other, "cannot add the broker as a learner");
                        ForwardFailure::Failed(match other {
                            RaftError::Fatal(_) => WriteFailure::Stopped,
                            RaftError::APIError(_) => WriteFailure::MembershipRefused,
                        })
                    }
                });
            }
            write(raft, MetadataCommand::RegisterBroker(info)).await
        }
    }
}

async fn write(raft: &MetaRaft, cmd: MetadataCommand) -> ForwardReply {
    match raft.client_write(cmd).await {
        Ok(resp) => Ok((resp.data, resp.log_id.index)),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(ForwardFailure::NotLeader { leader: leader_guess(f.leader_id, f.leader_node) })
        }
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
            tracing::warn!(error = %e, "metadata membership change refused");
            Err(ForwardFailure::Failed(WriteFailure::MembershipRefused))
        }
        Err(RaftError::Fatal(e)) => {
            tracing::warn!(error = %e, "metadata raft stopped");
            Err(ForwardFailure::Failed(WriteFailure::Stopped))
        }
    }
}

fn leader_guess(id: Option<NodeId>, node: Option<BasicNode>) -> Option<(NodeId, String)> {
    Some((id?, node?.addr))
}

/// Sends `req` to the node at `addr`; transport errors mean it was not applied
/// only when the connection could not be made (see `TransportError`).
pub async fn send(
    transport: &Transport,
    addr: &str,
    req: &ForwardRequest,
    timeout: Duration,
) -> Result<ForwardReply, TransportError> {
    let body = codec::encode("forwarded write", req).map_err(WireError::from)?;
    let request = RpcRequest { group: METADATA_GROUP, kind: RpcKind::Forward, body: body.into() };
    let bytes = transport.call(addr, &request, timeout).await?;
    Ok(codec::decode("forward reply", &bytes).map_err(WireError::from)?)
}
