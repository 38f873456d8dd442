//! What the Raft listener does with a request: every group registers a
//! `GroupHandler` under its id in the `Registry`, and the server hands each
//! request to the handler of the group it names. `RaftRpc` is the handler of
//! a plain Raft group (AppendEntries, Vote, InstallSnapshot, Elect) of any
//! type config; an owner with requests of its own (the metadata group's
//! forwarded writes) wraps it. A request no handler can take is answered with
//! an `RpcRefusal`, which the caller's transport reports as such.

use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{Raft, RaftTypeConfig};
use serde::de::DeserializeOwned;

use crate::codec;
use crate::raft::ballots::Ballots;
use crate::raft::liveness::Liveness;
use crate::raft::types::{GroupId, NodeId};
use crate::raft::wire::{RpcKind, RpcRefusal, RpcReply};

pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = RpcReply> + Send + 'a>>;

/// How a group's owner answers the requests addressed to the group.
pub trait GroupHandler: Send + Sync {
    fn handle<'a>(&'a self, kind: RpcKind, body: &'a [u8]) -> HandlerFuture<'a>;
}

/// The handler of a plain Raft group. An AppendEntries names its sender,
/// the group's leader: it counts as heard from (`liveness`), however late
/// its pings are under load. A vote refused to a shorter log is noted
/// (`ballots`): this node is the better candidate.
pub struct RaftRpc<C: RaftTypeConfig> {
    pub group: GroupId,
    pub raft: Raft<C>,
    pub liveness: Arc<Liveness>,
    /// Notes a refused candidate whose log is shorter than ours.
    pub ballots: Arc<Ballots>,
}

impl<C> GroupHandler for RaftRpc<C>
where
    C: RaftTypeConfig<NodeId = NodeId>,
    AppendEntriesRequest<C>: DeserializeOwned,
    InstallSnapshotRequest<C>: DeserializeOwned,
{
    fn handle<'a>(&'a self, kind: RpcKind, body: &'a [u8]) -> HandlerFuture<'a> {
        Box::pin(self.serve(kind, body))
    }
}

impl<C> RaftRpc<C>
where
    C: RaftTypeConfig<NodeId = NodeId>,
    AppendEntriesRequest<C>: DeserializeOwned,
    InstallSnapshotRequest<C>: DeserializeOwned,
{
    pub async fn serve(&self, kind: RpcKind, body: &[u8]) -> RpcReply {
        fn decode<T: DeserializeOwned>(kind: RpcKind, body: &[u8]) -> Result<T, RpcRefusal> {
            codec::decode("raft request", body).map_err(|_| RpcRefusal::Undecodable(kind))
        }
        let encoded = match kind {
            RpcKind::AppendEntries => {
                let rpc: AppendEntriesRequest<C> = decode(kind, body)?;
                if let Some(leader) = rpc.vote.leader_id().voted_for() {
                    self.liveness.heard(leader);
                }
                codec::encode("append reply", &self.raft.append_entries(rpc).await)
            }
            RpcKind::Vote => {
                let rpc: VoteRequest<NodeId> = decode(kind, body)?;
                let candidate_log = rpc.last_log_id;
                let reply = self.raft.vote(rpc).await;
                if reply.as_ref().is_ok_and(|r| !r.vote_granted && r.last_log_id > candidate_log) {
                    self.ballots.out_logged(self.group);
                }
                codec::encode("vote reply", &reply)
            }
            RpcKind::InstallSnapshot => {
                let rpc: InstallSnapshotRequest<C> = decode(kind, body)?;
                codec::encode("snapshot reply", &self.raft.install_snapshot(rpc).await)
            }
            RpcKind::Elect => {
                let started = self.raft.trigger().elect().await.map_err(|e| e.to_string());
                codec::encode("elect reply", &started)
            }
            RpcKind::Forward | RpcKind::Ping => {
                return Err(RpcRefusal::WrongKind { group: self.group, kind })
            }
        };
        encoded.map(Bytes::from).map_err(|_| RpcRefusal::Unencodable(kind))
    }
}
