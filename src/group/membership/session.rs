//! After the join: SyncGroup hands out the leader's assignment, heartbeats
//! keep sessions alive, members leave or expire, and deadlines run out.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Group, GroupError, GroupState, Limits, Reply, SyncResult};

impl Group {
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
            GroupState::Empty | GroupState::PreparingRebalance | GroupState::Dead => {
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
    pub(super) fn remove_members(&mut self, ids: &[String], limits: &Limits, now: Instant) -> bool {
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
}
