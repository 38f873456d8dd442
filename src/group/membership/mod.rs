//! One consumer group: Kafka's classic ("eager") group protocol as a state
//! machine, plus the group's committed offsets. No IO and no clock of its own:
//! callers pass `now`, hand over the channels on which delayed answers go out,
//! and persist what the methods say changed.
//!
//! States follow Kafka's `GroupCoordinator`: `Empty` → (join) →
//! `PreparingRebalance` → (every member rejoined, or the rebalance timeout) →
//! `CompletingRebalance` → (the leader's SyncGroup) → `Stable`; any join of a
//! new member, change of subscription, leave or session expiry goes back to
//! `PreparingRebalance`. The broker never looks inside subscriptions or
//! assignments: the clients' assignors (range, roundrobin, sticky,
//! cooperative-sticky) run in the leader member.
//!
//! `member` holds who the members are, `join` the join phase, `session` what
//! follows it (sync, heartbeats, leaving, expiry).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

mod join;
mod member;
mod session;
#[cfg(test)]
mod tests;

use member::subscribed_topics;
pub use member::{Committed, GroupSnapshot, JoinArgs, Member, MemberInfo};

/// Why a group operation failed; mapped to Kafka codes at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("this broker is not the group's coordinator")]
    NotCoordinator,
    #[error("the group coordinator is not available yet")]
    CoordinatorNotAvailable,
    #[error("the coordinator is still loading the group's partition")]
    LoadInProgress,
    #[error("the group id is empty")]
    InvalidGroupId,
    #[error("unknown member id")]
    UnknownMember,
    #[error("the member must rejoin with its new id {0}")]
    MemberIdRequired(String),
    #[error("generation {0} is not the group's")]
    IllegalGeneration(i32),
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    #[error("protocol type or protocols do not match the group's")]
    InconsistentProtocol,
    #[error("session timeout {0} ms is outside the broker's limits")]
    InvalidSessionTimeout(i32),
    #[error("another member holds this group.instance.id")]
    FencedInstanceId,
    #[error("the group does not exist")]
    GroupIdNotFound,
    #[error("the group still has members")]
    NonEmptyGroup,
    #[error("the group's members still consume this topic")]
    SubscribedToTopic,
}

/// A group's state, as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    /// Only in descriptions: the group does not exist (no live group is in
    /// this state).
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a member gets back from a completed join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member's id, instance id and subscription — for the leader only.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

pub type JoinResult = Result<Joined, GroupError>;
pub type SyncResult = Result<Bytes, GroupError>;

/// Either an answer now, or a channel the answer will come on.
#[derive(Debug)]
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

impl<T> Reply<Result<T, GroupError>> {
    /// The answer, waiting for it if it comes later; a dropped sender means
    /// the group's shard went away with this broker's leadership.
    pub async fn answer(self) -> Result<T, GroupError> {
        match self {
            Reply::Now(r) => r,
            Reply::Later(rx) => rx.await.unwrap_or(Err(GroupError::NotCoordinator)),
        }
    }
}

/// Broker-wide limits and delays (Kafka's `group.*` settings).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    pub initial_rebalance_delay: Duration,
}

#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    pub offsets: BTreeMap<(String, i32), Committed>,
    /// Ids handed out with MEMBER_ID_REQUIRED, until they join or expire.
    pending: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    /// A rebalance of an empty group waits this long for more members.
    join_not_before: Option<Instant>,
}

impl Group {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            offsets: BTreeMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            join_not_before: None,
        }
    }

    /// A group as it was last persisted, its members given a fresh session.
    pub fn restore(id: &str, snap: GroupSnapshot, now: Instant) -> Self {
        let mut g = Self::new(id);
        g.generation = snap.generation;
        g.protocol_type = snap.protocol_type;
        g.protocol = snap.protocol;
        g.leader = snap.leader;
        for info in snap.members {
            g.members.insert(info.id.clone(), Member { info, last_seen: now, join: None, sync: None });
        }
        g.state = if g.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
        g
    }

    pub fn snapshot(&self) -> GroupSnapshot {
        GroupSnapshot {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            members: self.members.values().map(|m| m.info.clone()).collect(),
        }
    }

    /// Whether the group holds nothing worth keeping.
    pub fn is_vacant(&self) -> bool {
        self.members.is_empty() && self.offsets.is_empty() && self.generation == 0 && self.pending.is_empty()
    }

    pub(super) fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        let m = self.members.get(member_id).ok_or(GroupError::UnknownMember)?;
        if instance_id.is_some() && m.info.instance_id.as_deref() != instance_id {
            return Err(GroupError::FencedInstanceId);
        }
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration(generation));
        }
        Ok(())
    }

    /// Checks that a commit comes from a current member (or, with no member
    /// id and generation -1, from a client that manages partitions itself).
    ///
    /// As in Kafka, only `CompletingRebalance` refuses a member's commit: while
    /// the group prepares a rebalance its members still hold their partitions,
    /// and clients commit them before rejoining. Refusing those commits (as
    /// this did) left kafka-python 3.x retrying its pre-rebalance commit
    /// instead of rejoining, and the rebalance waited for it.
    pub fn check_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if generation < 0 && member_id.is_empty() {
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(GroupError::IllegalGeneration(generation))
            };
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        self.check_member(member_id, instance_id, generation)
    }

    /// Whether a member of a non-empty consumer group subscribes to `topic`.
    pub fn consumes(&self, topic: &str) -> bool {
        self.state != GroupState::Empty
            && self.protocol_type.as_deref() == Some("consumer")
            && self.members.values().any(|m| {
                subscribed_topics(m.metadata(self.protocol.as_deref())).iter().any(|t| t.as_str() == topic)
            })
    }

    /// The chosen protocol's subscription and assignment of every member.
    pub fn describe_members(&self) -> Vec<(&Member, Bytes)> {
        self.members.values().map(|m| (m, m.metadata(self.protocol.as_deref()))).collect()
    }
}
