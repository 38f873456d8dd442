//! Outgoing Raft RPCs: one small pool of TCP connections per peer address,
//! shared by every group on this node; each call has a deadline and a broken
//! connection is simply dropped and redialled on the next call.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftTypeConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::codec;
use crate::raft::ballots::Ballots;
use crate::raft::liveness::Liveness;
use crate::raft::types::{GroupId, NodeId};
use crate::raft::wire::RpcRefusal;
use crate::raft::wire::{self, RpcKind, RpcReply, RpcRequest, WireError};

/// Idle connections kept per peer.
const POOL_SIZE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connecting to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("rpc to {addr} timed out after {after:?}")]
    Timeout { addr: String, after: Duration },
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("peer closed the connection")]
    Closed,
    #[error("peer could not route the request: {0}")]
    Refused(#[from] RpcRefusal),
}

/// What the transport does with one outgoing request. Tests cut and slow
/// links with a `LinkRule`; without one every request is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Deliver,
    /// Lost: the call times out, as over a cut network.
    Drop,
    /// Sent this much later.
    Delay(Duration),
}

/// Decides the fate of each request by its destination address.
pub type LinkRule = Arc<dyn Fn(&str, &RpcRequest) -> Link + Send + Sync>;

/// Connection pools to every peer, shared by all groups of this node.
pub struct Transport {
    // A std mutex: held only to push or pop an idle connection, never across IO.
    idle: Mutex<HashMap<String, Vec<TcpStream>>>,
    max_frame: usize,
    rule: RwLock<Option<LinkRule>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("max_frame", &self.max_frame).finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(max_frame: usize) -> Arc<Self> {
        Arc::new(Self { idle: Mutex::new(HashMap::new()), max_frame, rule: RwLock::new(None) })
    }

    fn take(&self, addr: &str) -> Option<TcpStream> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).get_mut(addr)?.pop()
    }

    /// Drops the idle connections to `addr` (its peer closed one of them).
    pub fn forget(&self, addr: &str) {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).remove(addr);
    }

    fn give_back(&self, addr: &str, conn: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let pool = idle.entry(addr.to_string()).or_default();
        if pool.len() < POOL_SIZE {
            pool.push(conn);
        }
    }

    /// Sends one request to `addr` and waits for its reply, within `timeout`.
    pub async fn call(
        &self,
        addr: &str,
        request: &RpcRequest,
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        let timed_out = || TransportError::Timeout { addr: addr.to_string(), after: timeout };
        let mut remaining = timeout;
        match self.link(addr, request) {
            Link::Deliver => {}
            Link::Drop => {
                tokio::time::sleep(timeout).await;
                return Err(timed_out());
            }
            Link::Delay(d) => {
                tokio::time::sleep(d.min(timeout)).await;
                remaining = timeout.saturating_sub(d);
                if remaining.is_zero() {
                    return Err(timed_out());
                }
            }
        }
        tokio::time::timeout(remaining, self.call_inner(addr, request)).await.map_err(|_| timed_out())?
    }

    /// Installs (or with `None` removes) the rule outgoing requests obey.
    pub fn set_link_rule(&self, rule: Option<LinkRule>) {
        *self.rule.write().unwrap_or_else(PoisonError::into_inner) = rule;
    }

    fn link(&self, addr: &str, request: &RpcRequest) -> Link {
        match &*self.rule.read().unwrap_or_else(PoisonError::into_inner) {
            Some(rule) => rule(addr, request),
            None => Link::Deliver,
        }
    }

    async fn call_inner(&self, addr: &str, request: &RpcRequest) -> Result<Vec<u8>, TransportError> {
        let mut conn = match self.take(addr) {
            Some(c) => c,
            None => {
                let c = TcpStream::connect(addr)
                    .await
                    .map_err(|source| TransportError::Connect { addr: addr.to_string(), source })?;
                let _ = c.set_nodelay(true);
                c
            }
        };
        wire::write_frame(&mut conn, request).await?;
        let reply: RpcReply =
            wire::read_frame(&mut conn, self.max_frame).await?.ok_or(TransportError::Closed)?;
        self.give_back(addr, conn);
        reply.map(Vec::from).map_err(TransportError::Refused)
    }
}

/// Makes a group's clients; one per group, all sharing the `Transport`.
pub struct NetworkFactory<C> {
    transport: Arc<Transport>,
    ballots: Arc<Ballots>,
    liveness: Arc<Liveness>,
    group: GroupId,
    _config: PhantomData<fn() -> C>,
}

impl<C> NetworkFactory<C> {
    /// Clients of `group` over `transport`; their vote replies feed
    /// `ballots`, and every reply feeds `liveness`: a peer answering Raft
    /// requests is alive, however late its pings are under load.
    pub fn new(
        transport: Arc<Transport>,
        ballots: Arc<Ballots>,
        liveness: Arc<Liveness>,
        group: GroupId,
    ) -> Self {
        Self { transport, ballots, liveness, group, _config: PhantomData }
    }
}

pub struct GroupClient<C> {
    transport: Arc<Transport>,
    ballots: Arc<Ballots>,
    liveness: Arc<Liveness>,
    group: GroupId,
    target: NodeId,
    addr: String,
    _config: PhantomData<fn() -> C>,
}

impl<C> RaftNetworkFactory<C> for NetworkFactory<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
    AppendEntriesRequest<C>: Serialize,
    InstallSnapshotRequest<C>: Serialize,
{
    type Network = GroupClient<C>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        GroupClient {
            transport: self.transport.clone(),
            ballots: self.ballots.clone(),
            liveness: self.liveness.clone(),
            group: self.group,
            target,
            addr: node.addr.clone(),
            _config: PhantomData,
        }
    }
}

impl<C> GroupClient<C> {
    async fn rpc<Req, Resp, E>(
        &self,
        kind: RpcKind,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = codec::encode("raft rpc", req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let request = RpcRequest { group: self.group, kind, body: body.into() };
        let bytes = self
            .transport
            .call(&self.addr, &request, option.hard_ttl())
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        self.liveness.heard(self.target);
        let result: Result<Resp, RaftError<NodeId, E>> =
            codec::decode("raft rpc reply", &bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl<C> RaftNetwork<C> for GroupClient<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
    AppendEntriesRequest<C>: Serialize,
    InstallSnapshotRequest<C>: Serialize,
{
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc(RpcKind::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.rpc(RpcKind::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let resp: VoteResponse<NodeId> = self.rpc(RpcKind::Vote, &rpc, &option).await?;
        if !resp.vote_granted && resp.last_log_id > rpc.last_log_id {
            self.ballots.outdone(self.group);
        } else if !resp.vote_granted
            && resp.vote.leader_id().term == rpc.vote.leader_id().term
            && resp.vote.leader_id().voted_for() != rpc.vote.leader_id().voted_for()
            && !resp.vote.is_committed()
        {
            // Not for our log: the peer voted for someone else in this very
            // term, and no leader came of it yet.
            self.ballots.collided(self.group, resp.vote.leader_id().voted_for());
        }
        Ok(resp)
    }
}
