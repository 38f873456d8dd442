//! `MetadataHandle`: the cheap-to-clone way every other module reads cluster
//! metadata (locally, from the replicated state) and changes it (validated
//! here, then proposed to the metadata group). Decisions that need the current
//! state or randomness, such as placement and uuids, are made here, before
//! proposing, so the state machine stays deterministic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use uuid::Uuid;

use crate::metadata::command::MetaRaft;
use crate::metadata::command::{BrokerInfo, MetadataCommand, MetadataResponse, Rejection};
use crate::metadata::forward::{self, ForwardFailure, ForwardRequest, WriteFailure};
use crate::metadata::placement;
use crate::metadata::state::MetadataState;
use crate::metadata::topic_config::{self, TopicConfigError};
use crate::raft::liveness::Liveness;
use crate::raft::network::{Transport, TransportError};
use crate::raft::types::NodeId;

/// Pause between attempts while the metadata group has no reachable leader.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName { name: String, reason: &'static str },
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("partition count must be at least 1, got {0}")]
    InvalidPartitions(i32),
    #[error("{requested} more partitions would pass the cluster's limit of {limit} ({existing} exist)")]
    TooManyPartitions { requested: usize, existing: usize, limit: usize },
    #[error("replication factor {requested} is invalid: {available} broker(s) available")]
    InvalidReplicationFactor { requested: i32, available: usize },
    #[error(transparent)]
    InvalidConfig(#[from] TopicConfigError),
    #[error("metadata write not committed within {0:?}")]
    Timeout(Duration),
    #[error("metadata write failed: {0}")]
    Failed(WriteFailure),
    #[error("the metadata group is shutting down")]
    ShuttingDown,
}

/// A topic to create, as every front end (Kafka, HTTP, start-up) asks for it.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub configs: BTreeMap<String, String>,
}

#[derive(Clone)]
pub struct MetadataHandle {
    node_id: NodeId,
    raft: MetaRaft,
    state: watch::Receiver<Arc<MetadataState>>,
    transport: Arc<Transport>,
    /// Raft addresses of the initial voters: where to look for the leader
    /// when this node does not know it.
    seeds: Vec<String>,
    write_timeout: Duration,
    liveness: Arc<Liveness>,
    max_partitions: usize,
}

/// Where to send a metadata write.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Here,
    Peer(String),
}

/// Kafka's topic name rules: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let invalid = |reason| Err(MetadataError::InvalidTopicName { name: name.to_string(), reason });
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > 249 {
        return invalid("longer than 249 characters");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are reserved");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

impl MetadataHandle {
    pub fn new(
        node_id: NodeId,
        raft: MetaRaft,
        state: watch::Receiver<Arc<MetadataState>>,
        transport: Arc<Transport>,
        seeds: Vec<String>,
        write_timeout: Duration,
        liveness: Arc<Liveness>,
    ) -> Self {
        Self { node_id, raft, state, transport, seeds, write_timeout, liveness, max_partitions: usize::MAX }
    }

    /// Refuses topic creates and growth past `max` partitions in the cluster.
    pub fn with_max_partitions(mut self, max: usize) -> Self {
        self.max_partitions = max;
        self
    }

    /// Partitions are Raft groups: refuse more than the cluster may hold
    /// before anything is placed (a count of 2^31 would be allocated first).
    fn check_partition_limit(&self, requested: usize) -> Result<(), MetadataError> {
        let existing: usize = self.state().topics.values().map(|t| t.partitions.len()).sum();
        if existing.saturating_add(requested) > self.max_partitions {
            return Err(MetadataError::TooManyPartitions { requested, existing, limit: self.max_partitions });
        }
        Ok(())
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn state(&self) -> Arc<MetadataState> {
        self.state.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataState>> {
        self.state.clone()
    }

    pub fn raft(&self) -> &MetaRaft {
        &self.raft
    }

    /// The metadata group's current leader and term.
    pub fn controller(&self) -> (Option<NodeId>, u64) {
        let m = self.raft.metrics();
        let m = m.borrow();
        (m.current_leader, m.current_term)
    }

    /// Whether `node` was heard from lately (this node always is).
    pub fn is_alive(&self, node: NodeId) -> bool {
        self.liveness.is_alive(node)
    }

    /// Brokers to place `rf` replicas on: those heard from within half the
    /// node timeout, so a broker that just died gets none, unless fewer
    /// than `rf` are (a busy cluster), then every live one; an error when
    /// fewer than `rf` are live.
    fn placement_brokers(&self, rf: usize) -> Result<Vec<NodeId>, MetadataError> {
        let fresh: Vec<NodeId> =
            self.state().brokers.keys().copied().filter(|id| self.liveness.is_fresh(*id)).collect();
        let brokers = if fresh.len() >= rf { fresh } else { self.live_brokers() };
        if rf > brokers.len() {
            return Err(MetadataError::InvalidReplicationFactor {
                requested: i32::try_from(rf).unwrap_or(i32::MAX),
                available: brokers.len(),
            });
        }
        Ok(brokers)
    }

    /// Brokers that can take replicas (registered, and heard from lately),
    /// sorted by id.
    pub fn live_brokers(&self) -> Vec<NodeId> {
        self.state().brokers.keys().copied().filter(|id| self.is_alive(*id)).collect()
    }

    /// `requested` lowered to the number of live brokers (at least 1), for
    /// defaults and start-up topics that must not fail on a small cluster.
    pub fn capped_replication(&self, requested: i32) -> i32 {
        requested.min(self.live_brokers().len().max(1) as i32)
    }

    /// Proposes `cmd` (forwarded to the metadata leader when that is another
    /// node) and waits until it is committed and applied.
    pub async fn propose(&self, cmd: MetadataCommand) -> Result<MetadataResponse, MetadataError> {
        self.submit(ForwardRequest::Write(cmd)).await
    }

    /// Joins the cluster as a broker that is not an initial voter.
    pub async fn join(&self, info: BrokerInfo) -> Result<(), MetadataError> {
        self.submit(ForwardRequest::Join(info)).await.map(|_| ())
    }

    /// The metadata leader as this node knows it.
    fn known_leader(&self) -> Option<Target> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let leader = m.current_leader?;
        if leader == self.node_id {
            return Some(Target::Here);
        }
        let node = m.membership_config.membership().get_node(&leader)?;
        Some(Target::Peer(node.addr.clone()))
    }

    /// Sends `req` to the leader, following `NotLeader` hints and retrying
    /// while there is none, until the write timeout. A timeout is never
    /// retried; a refusal or a failed connect surely was not proposed, but a
    /// connection lost mid-call may have been, so that retry can apply a
    /// command twice (harmless for reports and id blocks; a create then
    /// answers TOPIC_ALREADY_EXISTS).
    async fn submit(&self, req: ForwardRequest) -> Result<MetadataResponse, MetadataError> {
        self.submit_with(&|| Ok(req.clone())).await
    }

    /// `submit`, with the request made anew for each attempt: a new topic's
    /// replicas are placed on the brokers live at the attempt that lands, not
    /// on those live when the first attempt went to a controller that had
    /// just died (the topic would be born with a dead replica).
    async fn submit_with(
        &self,
        make: &(dyn Fn() -> Result<ForwardRequest, MetadataError> + Sync),
    ) -> Result<MetadataResponse, MetadataError> {
        let deadline = Instant::now() + self.write_timeout;
        let timed_out = || MetadataError::Timeout(self.write_timeout);
        let mut hint: Option<Target> = None;
        let mut next_seed = 0usize;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(timed_out());
            }
            let target = hint.take().or_else(|| self.known_leader()).or_else(|| {
                next_seed += 1;
                self.seeds.get(next_seed % self.seeds.len().max(1)).cloned().map(Target::Peer)
            });
            let req = make()?;
            let attempt = match target {
                Some(Target::Here) => {
                    let local = forward::apply_here(&self.raft, req);
                    tokio::time::timeout(remaining, local).await.map_err(|_| timed_out())?
                }
                Some(Target::Peer(addr)) => {
                    let sent = forward::send(&self.transport, &addr, &req, remaining);
                    tokio::select! {
                        reply = sent => match reply {
                            Ok(reply) => reply,
                            Err(TransportError::Timeout { .. }) => return Err(timed_out()),
                            Err(e) => {
                                tracing::debug!(%addr, error = %e, "metadata leader unreachable; retrying");
                                Err(ForwardFailure::NotLeader { leader: None })
                            }
                        },
                        // A leader that stopped answering (paused, cut off)
                        // is replaced within an election: the write goes to
                        // the new one instead of waiting out the deadline.
                        // Like a connection lost mid-call, the first may
                        // still have applied it (see above).
                        () = self.replaced(Target::Peer(addr.clone())) => {
                            tracing::debug!(%addr, "metadata leader replaced mid-call; retrying");
                            Err(ForwardFailure::NotLeader { leader: None })
                        }
                    }
                }
                None => Err(ForwardFailure::NotLeader { leader: None }),
            };
            match attempt {
                Ok((MetadataResponse::Rejected(r), _)) => return Err(r.into()),
                Ok((resp, index)) => {
                    self.await_applied(index, deadline).await;
                    return Ok(resp);
                }
                Err(ForwardFailure::Failed(why)) => return Err(MetadataError::Failed(why)),
                Err(ForwardFailure::NotLeader { leader: Some((id, addr)) }) => {
                    hint = Some(if id == self.node_id { Target::Here } else { Target::Peer(addr) });
                    // Leadership may be moving; don't bounce between stale guesses.
                    tokio::time::sleep(RETRY_PAUSE.min(remaining) / 5).await;
                }
                Err(ForwardFailure::NotLeader { leader: None }) => {
                    tokio::time::sleep(RETRY_PAUSE.min(remaining)).await;
                }
            }
        }
    }

    /// Resolves once this node knows a metadata leader other than `target`.
    async fn replaced(&self, target: Target) {
        let mut changes = self.raft.metrics();
        loop {
            if self.known_leader().is_some_and(|now| now != target) {
                return;
            }
            if changes.changed().await.is_err() {
                // The Raft stopped: the send's own deadline ends the call.
                return std::future::pending().await;
            }
        }
    }

    /// Waits (until `deadline`) for this node's replica to apply log entry
    /// `index`, so a write made through another node is visible here when
    /// it returns (read-your-writes for every front end). Past the deadline
    /// the write still stands; this replica only lags.
    async fn await_applied(&self, index: u64, deadline: Instant) {
        let applied = |m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>| {
            m.last_applied.is_some_and(|l| l.index >= index)
        };
        if applied(&self.raft.metrics().borrow()) {
            return;
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        if self.raft.wait(Some(wait)).metrics(applied, "write applied here").await.is_err() {
            tracing::debug!(node_id = self.node_id, index, "metadata write not yet applied here");
        }
    }

    /// Validates `req` and, unless `validate_only`, creates the topic.
    pub async fn create_topic(&self, req: &NewTopic, validate_only: bool) -> Result<Uuid, MetadataError> {
        validate_topic_name(&req.name)?;
        if req.partitions < 1 {
            return Err(MetadataError::InvalidPartitions(req.partitions));
        }
        self.check_partition_limit(req.partitions as usize)?;
        let brokers = self.live_brokers();
        if req.replication_factor < 1 || req.replication_factor as usize > brokers.len() {
            return Err(MetadataError::InvalidReplicationFactor {
                requested: req.replication_factor,
                available: brokers.len(),
            });
        }
        for (k, v) in &req.configs {
            topic_config::validate(k, v)?;
        }
        if self.state().topic(&req.name).is_some() {
            return Err(Rejection::TopicExists(req.name.clone()).into());
        }
        let id = Uuid::new_v4();
        if validate_only {
            return Ok(id);
        }
        let (count, rf) = (req.partitions as usize, req.replication_factor as usize);
        let make = || {
            let brokers = self.placement_brokers(rf)?;
            // Rotate the start by the topic count so single-partition topics
            // do not all get their leader on the same broker.
            let offset = self.state().topics.len();
            Ok(ForwardRequest::Write(MetadataCommand::CreateTopic {
                name: req.name.clone(),
                id,
                replicas: placement::place(&brokers, count, rf, offset),
                configs: req.configs.clone(),
            }))
        };
        match self.submit_with(&make).await {
            Ok(_) => Ok(id),
            // An attempt that was retried had landed after all.
            Err(MetadataError::Rejected(Rejection::TopicExists(_)))
                if self.state().topic(&req.name).is_some_and(|t| t.id == id) =>
            {
                Ok(id)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), MetadataError> {
        if self.state().topic(name).is_none() {
            return Err(Rejection::UnknownTopic(name.to_string()).into());
        }
        self.propose(MetadataCommand::DeleteTopic { name: name.to_string() }).await.map(|_| ())
    }

    /// Grows `name` to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), MetadataError> {
        let state = self.state();
        let topic = state.topic(name).ok_or_else(|| Rejection::UnknownTopic(name.to_string()))?;
        let current = topic.partitions.len();
        if count < 1 || (count as usize) <= current {
            return Err(
                Rejection::PartitionsNotIncreasing { current, requested: count.max(0) as usize }.into()
            );
        }
        self.check_partition_limit(count as usize - current)?;
        let rf = topic.partitions.first().map_or(1, |p| p.replicas.len());
        let brokers = self.live_brokers();
        if rf > brokers.len() {
            return Err(MetadataError::InvalidReplicationFactor {
                requested: rf as i32,
                available: brokers.len(),
            });
        }
        if validate_only {
            return Ok(());
        }
        let make = || {
            let brokers = self.placement_brokers(rf)?;
            let replicas = placement::place(&brokers, count as usize - current, rf, current);
            Ok(ForwardRequest::Write(MetadataCommand::CreatePartitions { name: name.to_string(), replicas }))
        };
        self.submit_with(&make).await.map(|_| ())
    }

    pub async fn alter_configs(
        &self,
        name: &str,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    ) -> Result<(), MetadataError> {
        for (k, v) in &set {
            topic_config::validate(k, v)?;
        }
        for k in &delete {
            if let Err(TopicConfigError::Unknown(k)) = topic_config::validate(k, "") {
                return Err(TopicConfigError::Unknown(k).into());
            }
        }
        if self.state().topic(name).is_none() {
            return Err(Rejection::UnknownTopic(name.to_string()).into());
        }
        self.propose(MetadataCommand::AlterConfigs { name: name.to_string(), set, delete }).await.map(|_| ())
    }

    /// Reserves a block of `count` producer ids and returns the first.
    pub async fn allocate_producer_ids(&self, count: i64) -> Result<i64, MetadataError> {
        match self.propose(MetadataCommand::AllocateProducerIds { count }).await? {
            MetadataResponse::ProducerIds { first } => Ok(first),
            _ => Err(MetadataError::ShuttingDown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in ["a", "Topic1", "my.topic-name_2", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "has space", "slash/", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
