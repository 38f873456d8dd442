//! The join phase: admitting members (dynamic, pending, static), starting a
//! rebalance, choosing the protocol and answering the joiners.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Group, GroupError, GroupState, JoinArgs, JoinResult, Joined, Limits, Member, MemberInfo, Reply};

impl Group {
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
    pub(super) fn supports(&self, args: &JoinArgs) -> bool {
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
    pub(super) fn admit(
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

    pub(super) fn add_member(&mut self, id: &str, args: &JoinArgs, now: Instant) {
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
    pub(super) fn replace_static(&mut self, old: &str, new: String) -> String {
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

    pub(super) fn prepare_rebalance(&mut self, now: Instant, limits: &Limits) {
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
    pub(super) fn try_complete_join(&mut self, now: Instant) -> bool {
        if self.state != GroupState::PreparingRebalance
            || self.join_not_before.is_some_and(|t| now < t)
            || self.members.values().any(|m| m.join.is_none())
        {
            return false;
        }
        self.complete_join(now);
        true
    }

    pub(super) fn complete_join(&mut self, now: Instant) {
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
    pub(super) fn choose_protocol(&self) -> Option<String> {
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

    pub(super) fn joined(&self, member_id: &str, with_members: bool) -> Joined {
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
}
