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

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
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

/// A JoinGroup request, as the group sees it.
#[derive(Debug, Clone)]
pub struct JoinArgs {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets its id, then rejoins.
    pub require_known_id: bool,
}

/// A live member: who it is (what is persisted) and its session.
#[derive(Debug)]
pub struct Member {
    pub info: MemberInfo,
    last_seen: Instant,
    join: Option<oneshot::Sender<JoinResult>>,
    sync: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    /// This member's subscription for `protocol`.
    pub fn metadata(&self, protocol: Option<&str>) -> Bytes {
        self.info
            .protocols
            .iter()
            .find(|(n, _)| Some(n.as_str()) == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp: i64,
}

/// Who a member is and what it asked for: the part of a member that is
/// persisted with the group.
#[derive(Debug, Clone)]
pub struct MemberInfo {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
}

/// The durable part of a group's membership.
#[derive(Debug, Clone)]
pub struct GroupSnapshot {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<MemberInfo>,
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

    /// JoinGroup. `new_id` makes a member id for a newcomer.
    pub fn join(
        &mut self,
        args: JoinArgs,
        limits: &Limits,
        now: Instant,
        new_id: impl FnOnce() -> String,
    ) -> Reply<JoinResult> {
        if args.session_timeout < limits.min_session_timeout
            || args.session_timeout > limits.max_session_timeout
        {
            let ms = i32::try_from(args.session_timeout.as_millis()).unwrap_or(i32::MAX);
            return Reply::Now(Err(GroupError::InvalidSessionTimeout(ms)));
        }
        if args.protocol_type.is_empty() || args.protocols.is_empty() || !self.supports(&args) {
            return Reply::Now(Err(GroupError::InconsistentProtocol));
        }
        let member_id = match self.admit(&args, now, new_id) {
            Ok(id) => id,
            Err(e) => return Reply::Now(Err(e)),
        };
        let (tx, rx) = oneshot::channel();
        let Some(member) = self.members.get_mut(&member_id) else {
            return Reply::Now(Err(GroupError::UnknownMember));
        };
        let changed = member.info.protocols != args.protocols;
        member.info.protocols = args.protocols;
        member.info.protocol_type = args.protocol_type;
        member.info.session_timeout = args.session_timeout;
        member.info.rebalance_timeout = args.rebalance_timeout;
        member.info.client_id = args.client_id;
        member.info.client_host = args.client_host;
        member.last_seen = now;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        // A follower rejoining a settled group with the same subscription
        // (a lost response, a restarted static member) gets the current
        // generation back instead of disturbing everyone.
        if self.state == GroupState::Stable && !changed && !is_leader {
            return Reply::Now(Ok(self.joined(&member_id, false)));
        }
        member.join = Some(tx);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now, limits);
        }
        self.try_complete_join(now);
        Reply::Later(rx)
    }

    /// Whether the group's protocol type and at least one of its current
    /// protocols are acceptable to this joiner.
    fn supports(&self, args: &JoinArgs) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref().is_some_and(|t| t != args.protocol_type) {
            return false;
        }
        let others: Vec<&Member> = self.members.values().filter(|m| m.info.id != args.member_id).collect();
        others.is_empty()
            || args
                .protocols
                .iter()
                .any(|(name, _)| others.iter().all(|m| m.info.protocols.iter().any(|(n, _)| n == name)))
    }

    /// Finds or creates the member a join is for; returns its id.
    fn admit(
        &mut self,
        args: &JoinArgs,
        now: Instant,
        new_id: impl FnOnce() -> String,
    ) -> Result<String, GroupError> {
        if let Some(instance) = &args.instance_id {
            let holder = self
                .members
                .values()
                .find(|m| m.info.instance_id.as_ref() == Some(instance))
                .map(|m| m.info.id.clone());
            return match holder {
                Some(old) if args.member_id.is_empty() => Ok(self.replace_static(&old, new_id())),
                Some(old) if old != args.member_id => Err(GroupError::FencedInstanceId),
                Some(old) => Ok(old),
                None if args.member_id.is_empty() => {
                    let id = new_id();
                    self.add_member(&id, args, now);
                    Ok(id)
                }
                None => Err(GroupError::UnknownMember),
            };
        }
        if args.member_id.is_empty() {
            let id = new_id();
            if args.require_known_id {
                self.pending.insert(id.clone(), now + args.session_timeout);
                return Err(GroupError::MemberIdRequired(id));
            }
            self.add_member(&id, args, now);
            return Ok(id);
        }
        if self.members.contains_key(&args.member_id) {
            return Ok(args.member_id.clone());
        }
        if self.pending.remove(&args.member_id).is_some() {
            self.add_member(&args.member_id, args, now);
            return Ok(args.member_id.clone());
        }
        Err(GroupError::UnknownMember)
    }

    fn add_member(&mut self, id: &str, args: &JoinArgs, now: Instant) {
        self.members.insert(
            id.to_string(),
            Member {
                info: MemberInfo {
                    id: id.to_string(),
                    instance_id: args.instance_id.clone(),
                    client_id: args.client_id.clone(),
                    client_host: args.client_host.clone(),
                    session_timeout: args.session_timeout,
                    rebalance_timeout: args.rebalance_timeout,
                    protocol_type: args.protocol_type.clone(),
                    protocols: Vec::new(),
                    assignment: Bytes::new(),
                },
                last_seen: now,
                join: None,
                sync: None,
            },
        );
    }

    /// A static member came back under a new member id: it takes over the
    /// old id's place (and leadership); whoever still waits on the old id is
    /// fenced.
    fn replace_static(&mut self, old: &str, new: String) -> String {
        if let Some(mut m) = self.members.remove(old) {
            if let Some(tx) = m.join.take() {
                let _ = tx.send(Err(GroupError::FencedInstanceId));
            }
            if let Some(tx) = m.sync.take() {
                let _ = tx.send(Err(GroupError::FencedInstanceId));
            }
            m.info.id = new.clone();
            self.members.insert(new.clone(), m);
        }
        if self.leader.as_deref() == Some(old) {
            self.leader = Some(new.clone());
        }
        new
    }

    fn prepare_rebalance(&mut self, now: Instant, limits: &Limits) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.info.assignment = Bytes::new();
                if let Some(tx) = m.sync.take() {
                    let _ = tx.send(Err(GroupError::RebalanceInProgress));
                }
            }
        }
        let timeout = self.members.values().map(|m| m.info.rebalance_timeout).max().unwrap_or_default();
        self.join_not_before = (self.state == GroupState::Empty && !limits.initial_rebalance_delay.is_zero())
            .then(|| now + limits.initial_rebalance_delay);
        self.rebalance_deadline = Some(now + timeout);
        self.state = GroupState::PreparingRebalance;
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(), "rebalance started");
    }

    /// Completes the join phase once every member has rejoined.
    fn try_complete_join(&mut self, now: Instant) -> bool {
        if self.state != GroupState::PreparingRebalance
            || self.join_not_before.is_some_and(|t| now < t)
            || self.members.values().any(|m| m.join.is_none())
        {
            return false;
        }
        self.complete_join(now);
        true
    }

    fn complete_join(&mut self, now: Instant) {
        self.generation += 1;
        self.rebalance_deadline = None;
        self.join_not_before = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            tracing::info!(group = %self.id, generation = self.generation, "group is empty");
            return;
        }
        self.protocol_type = self.members.values().next().map(|m| m.info.protocol_type.clone());
        self.protocol = self.choose_protocol();
        if !self.leader.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(),
            protocol = self.protocol.as_deref().unwrap_or(""), "rebalance joined");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let leader = self.leader.as_deref() == Some(id.as_str());
            let joined = self.joined(&id, leader);
            if let Some(m) = self.members.get_mut(&id) {
                m.last_seen = now;
                if let Some(tx) = m.join.take() {
                    let _ = tx.send(Ok(joined));
                }
            }
        }
    }

    /// The protocol every member supports that most members prefer.
    fn choose_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let common: Vec<&String> = first
            .info
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| self.members.values().all(|m| m.info.protocols.iter().any(|(p, _)| &p == n)))
            .collect();
        let mut votes: HashMap<&String, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m.info.protocols.iter().find(|(p, _)| common.contains(&p)) {
                *votes.entry(n).or_default() += 1;
            }
        }
        // Ties go to the first member's preference order.
        let best = common.iter().copied().max_by_key(|n| {
            (votes.get(n).copied().unwrap_or(0), std::cmp::Reverse(common.iter().position(|c| c == n)))
        });
        best.cloned()
    }

    fn joined(&self, member_id: &str, with_members: bool) -> Joined {
        let members = if with_members {
            self.members
                .values()
                .map(|m| {
                    (m.info.id.clone(), m.info.instance_id.clone(), m.metadata(self.protocol.as_deref()))
                })
                .collect()
        } else {
            Vec::new()
        };
        Joined {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
        }
    }

    fn check_member(
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

    /// SyncGroup. Returns the reply and whether the group just became stable
    /// (and so should be persisted).
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> (Reply<SyncResult>, bool) {
        if let Err(e) = self.check_member(member_id, instance_id, generation) {
            return (Reply::Now(Err(e)), false);
        }
        match self.state {
            GroupState::Empty | GroupState::PreparingRebalance => {
                (Reply::Now(Err(GroupError::RebalanceInProgress)), false)
            }
            GroupState::Stable => {
                let m = self.members.get_mut(member_id);
                let assignment = m.map(|m| {
                    m.last_seen = now;
                    m.info.assignment.clone()
                });
                (Reply::Now(assignment.ok_or(GroupError::UnknownMember)), false)
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.sync = Some(tx);
                    m.last_seen = now;
                }
                if self.leader.as_deref() != Some(member_id) {
                    return (Reply::Later(rx), false);
                }
                let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                for m in self.members.values_mut() {
                    m.info.assignment = given.remove(&m.info.id).unwrap_or_default();
                    if let Some(tx) = m.sync.take() {
                        let _ = tx.send(Ok(m.info.assignment.clone()));
                    }
                }
                self.state = GroupState::Stable;
                tracing::info!(group = %self.id, generation = self.generation, "group is stable");
                (Reply::Later(rx), true)
            }
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Empty {
            return Err(GroupError::UnknownMember);
        }
        self.check_member(member_id, instance_id, generation)?;
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_seen = now;
        }
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// LeaveGroup for one member, named by member id or (static) instance id.
    /// Returns whether the group became empty (and so should be persisted).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        limits: &Limits,
        now: Instant,
    ) -> Result<bool, GroupError> {
        let id = match instance_id {
            Some(inst) => {
                let holder = self.members.values().find(|m| m.info.instance_id.as_deref() == Some(inst));
                match holder {
                    Some(m) if member_id.is_empty() || m.info.id == member_id => m.info.id.clone(),
                    Some(_) => return Err(GroupError::FencedInstanceId),
                    None => return Err(GroupError::UnknownMember),
                }
            }
            None if self.members.contains_key(member_id) => member_id.to_string(),
            None => return Err(GroupError::UnknownMember),
        };
        tracing::info!(group = %self.id, member = %id, "member left");
        Ok(self.remove_members(&[id], limits, now))
    }

    /// Drops members and rebalances the rest; true when the group became empty.
    fn remove_members(&mut self, ids: &[String], limits: &Limits, now: Instant) -> bool {
        for id in ids {
            if let Some(mut m) = self.members.remove(id) {
                if let Some(tx) = m.join.take() {
                    let _ = tx.send(Err(GroupError::UnknownMember));
                }
                if let Some(tx) = m.sync.take() {
                    let _ = tx.send(Err(GroupError::UnknownMember));
                }
            }
        }
        if self.state != GroupState::PreparingRebalance {
            if self.state == GroupState::Empty {
                return false;
            }
            self.prepare_rebalance(now, limits);
        }
        self.try_complete_join(now) && self.state == GroupState::Empty
    }

    /// Session expiry and rebalance deadlines. Returns whether the group's
    /// durable membership changed (it became empty).
    pub fn tick(&mut self, limits: &Limits, now: Instant) -> bool {
        self.pending.retain(|_, until| *until > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join.is_none() && now.duration_since(m.last_seen) > m.info.session_timeout)
            .map(|m| m.info.id.clone())
            .collect();
        let mut emptied = false;
        if !expired.is_empty() {
            tracing::info!(group = %self.id, members = ?expired, "session expired");
            emptied = self.remove_members(&expired, limits, now);
        }
        if self.state == GroupState::PreparingRebalance {
            if self.rebalance_deadline.is_some_and(|d| now >= d) {
                // Members that did not rejoin in time are out.
                let late: Vec<String> =
                    self.members.values().filter(|m| m.join.is_none()).map(|m| m.info.id.clone()).collect();
                for id in &late {
                    self.members.remove(id);
                }
                self.complete_join(now);
                emptied |= self.state == GroupState::Empty;
            } else {
                emptied |= self.try_complete_join(now) && self.state == GroupState::Empty;
            }
        }
        emptied
    }

    /// Checks that a commit comes from a current member (or, with no member
    /// id and generation -1, from a client that manages partitions itself).
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
        self.check_member(member_id, instance_id, generation)?;
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
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

/// The topics of a consumer-protocol subscription (empty if it is not one).
fn subscribed_topics(mut meta: Bytes) -> Vec<kafka_protocol::protocol::StrBytes> {
    use bytes::Buf;
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    if meta.len() < 2 {
        return Vec::new();
    }
    let version = meta.get_i16().clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut meta, version).map(|s| s.topics).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            min_session_timeout: Duration::from_millis(100),
            max_session_timeout: Duration::from_secs(300),
            initial_rebalance_delay: Duration::ZERO,
        }
    }

    fn args(member: &str) -> JoinArgs {
        JoinArgs {
            member_id: member.to_string(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
            require_known_id: false,
        }
    }

    fn now_joined(r: Reply<JoinResult>) -> JoinResult {
        match r {
            Reply::Now(r) => r,
            Reply::Later(mut rx) => rx.try_recv().unwrap_or(Err(GroupError::CoordinatorNotAvailable)),
        }
    }

    #[test]
    fn two_members_join_sync_and_a_leave_rebalances() {
        let (l, t0) = (limits(), Instant::now());
        let mut g = Group::new("g");
        let a = now_joined(g.join(args(""), &l, t0, || "a".into())).unwrap();
        assert_eq!((a.generation, a.leader.as_str(), a.members.len()), (1, "a", 1));
        let (r, stable) = g.sync("a", None, 1, vec![("a".into(), Bytes::from_static(b"all"))], t0);
        assert!(stable);
        assert!(matches!(r, Reply::Later(_)));
        assert_eq!(g.state, GroupState::Stable);

        // b joins: a learns of the rebalance by heartbeat, then rejoins.
        let rb = g.join(args(""), &l, t0, || "b".into());
        assert!(matches!(rb, Reply::Later(_)));
        assert_eq!(g.heartbeat("a", None, 1, t0), Err(GroupError::RebalanceInProgress));
        let ra = g.join(args("a"), &l, t0, || unreachable!());
        let (a, b) = (now_joined(ra).unwrap(), now_joined(rb).unwrap());
        assert_eq!((a.generation, b.generation), (2, 2));
        assert_eq!(a.members.len(), 2, "the leader gets every subscription");
        assert!(b.members.is_empty());
        let (rb, _) = g.sync("b", None, 2, vec![], t0);
        let (_, stable) =
            g.sync("a", None, 2, vec![("a".into(), "p0".into()), ("b".into(), "p1".into())], t0);
        assert!(stable);
        let Reply::Later(mut rx) = rb else { panic!("follower waits for the leader") };
        assert_eq!(rx.try_recv().unwrap().unwrap(), Bytes::from_static(b"p1"));

        assert_eq!(g.heartbeat("b", None, 1, t0), Err(GroupError::IllegalGeneration(1)));
        assert_eq!(g.heartbeat("zz", None, 2, t0), Err(GroupError::UnknownMember));
        assert_eq!(g.leave("b", None, &l, t0), Ok(false));
        assert_eq!(g.state, GroupState::PreparingRebalance);
        assert_eq!(g.leave("a", None, &l, t0), Ok(true));
        assert_eq!(g.state, GroupState::Empty);
    }

    #[test]
    fn v4_joiners_get_an_id_first() {
        let mut g = Group::new("g");
        let mut a = args("");
        a.require_known_id = true;
        let r = now_joined(g.join(a.clone(), &limits(), Instant::now(), || "m-1".into()));
        assert_eq!(r, Err(GroupError::MemberIdRequired("m-1".into())));
        a.member_id = "m-1".into();
        assert_eq!(
            now_joined(g.join(a, &limits(), Instant::now(), || unreachable!())).unwrap().member_id,
            "m-1"
        );
    }

    #[test]
    fn a_silent_member_expires_and_the_group_empties() {
        let (l, t0) = (limits(), Instant::now());
        let mut g = Group::new("g");
        now_joined(g.join(args(""), &l, t0, || "a".into())).unwrap();
        g.sync("a", None, 1, vec![], t0);
        assert!(!g.tick(&l, t0 + Duration::from_secs(5)));
        assert!(g.tick(&l, t0 + Duration::from_secs(11)));
        assert_eq!((g.state, g.generation), (GroupState::Empty, 2));
    }

    #[test]
    fn members_that_do_not_rejoin_within_the_rebalance_timeout_are_dropped() {
        let (l, t0) = (limits(), Instant::now());
        let mut g = Group::new("g");
        now_joined(g.join(args(""), &l, t0, || "a".into())).unwrap();
        g.sync("a", None, 1, vec![], t0);
        // b joins; a keeps heartbeating but never rejoins (a stuck poll loop).
        let rb = g.join(args(""), &l, t0, || "b".into());
        for s in 1..30 {
            assert_eq!(
                g.heartbeat("a", None, 1, t0 + Duration::from_secs(s)),
                Err(GroupError::RebalanceInProgress)
            );
            g.tick(&l, t0 + Duration::from_secs(s));
        }
        g.tick(&l, t0 + Duration::from_secs(31));
        let b = now_joined(rb).unwrap();
        assert_eq!((b.generation, b.leader.as_str()), (2, "b"));
        assert!(!g.members.contains_key("a"));
    }

    #[test]
    fn commits_check_membership() {
        let (l, t0) = (limits(), Instant::now());
        let mut g = Group::new("g");
        assert_eq!(g.check_commit("", None, -1), Ok(()));
        now_joined(g.join(args(""), &l, t0, || "a".into())).unwrap();
        assert_eq!(g.check_commit("", None, -1), Err(GroupError::IllegalGeneration(-1)));
        assert_eq!(g.check_commit("a", None, 7), Err(GroupError::IllegalGeneration(7)));
        assert_eq!(g.check_commit("a", None, 1), Ok(()));
    }

    #[test]
    fn a_static_member_takes_its_place_back() {
        let (l, t0) = (limits(), Instant::now());
        let mut g = Group::new("g");
        let mut a = args("");
        a.instance_id = Some("i-1".into());
        now_joined(g.join(a.clone(), &l, t0, || "a1".into())).unwrap();
        g.sync("a1", Some("i-1"), 1, vec![("a1".into(), "x".into())], t0);
        let again = now_joined(g.join(a, &l, t0, || "a2".into()));
        // The leader rejoining rebalances; the new id is the one in the group.
        assert!(again.is_ok());
        assert!(g.members.contains_key("a2") && !g.members.contains_key("a1"));
        assert_eq!(g.leader.as_deref(), Some("a2"));
        assert_eq!(g.heartbeat("a1", Some("i-1"), g.generation, t0), Err(GroupError::UnknownMember));
    }
}
