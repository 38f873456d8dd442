//! Elections and leader upkeep for partition groups.
//!
//! Partition groups run with openraft's heartbeats and election timers off
//! (`raft::partition_raft_config`): with a thousand groups per node those
//! timers alone would keep a core busy. Instead this driver, ticking a few
//! times per node timeout, looks at every hosted replica and:
//!
//! - on a follower whose leader is unknown or on a node `Liveness` declares
//!   dead, starts an election — replicas take turns in their preferred order
//!   (`ELECT_STAGGER` apart) so two of them rarely split the vote, and only
//!   when a majority of the group's voters is alive, so a cut-off node does
//!   not keep raising terms; a replica whose last campaign was refused for a
//!   shorter log (`raft::ballots`) stands aside for a while, so the longer
//!   log's next campaign, `ELECT_RETRY` later, wins;
//! - on a leader, sends a heartbeat when a live follower lags (which restarts
//!   replication to a follower that came back) or when the metadata shows a
//!   newer term (so a deposed leader learns it and steps down), and otherwise
//!   every `IDLE_HEARTBEAT` as a safety net.
//!
//! The metadata group keeps openraft's timers, but campaigns the same way as
//! soon as its leader's node is declared dead (`tick_metadata`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::{RaftMetrics, ServerState};

use crate::metadata::command::MetaRaft;
use crate::metadata::state::{MetadataState, PartitionInfo};
use crate::partition::manager::PartitionManager;
use crate::raft::ballots::Ballots;
use crate::raft::liveness::Liveness;
use crate::raft::types::{GroupId, NodeId, METADATA_GROUP};

/// Delay between the turns of successive replicas to campaign.
const ELECT_STAGGER: Duration = Duration::from_millis(150);
/// A campaign that has not produced a leader is repeated this long after.
const ELECT_RETRY: Duration = Duration::from_millis(300);
/// A lagging follower or a superseded leader is nudged this often.
const NUDGE_EVERY: Duration = Duration::from_millis(300);
/// An idle, healthy group still gets a heartbeat this often.
const IDLE_HEARTBEAT: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq, Eq)]
enum Action {
    Nothing,
    Elect,
    Heartbeat,
}

pub struct Failover {
    node_id: NodeId,
    liveness: Arc<Liveness>,
    ballots: Arc<Ballots>,
    /// Since when each group has been without a usable leader, restarted
    /// whenever its term moves (someone else is campaigning).
    leaderless_since: HashMap<GroupId, Instant>,
    seen_term: HashMap<GroupId, u64>,
    last_elect: HashMap<GroupId, Instant>,
    last_nudge: HashMap<GroupId, Instant>,
    /// Whether the last pass met a group without a healthy leader (or a
    /// lagging follower): then the next tick must look again.
    unsettled: bool,
}

impl Failover {
    pub fn new(node_id: NodeId, liveness: Arc<Liveness>, ballots: Arc<Ballots>) -> Self {
        Self {
            node_id,
            liveness,
            ballots,
            leaderless_since: HashMap::new(),
            seen_term: HashMap::new(),
            last_elect: HashMap::new(),
            last_nudge: HashMap::new(),
            unsettled: false,
        }
    }

    /// One pass over every replica this node hosts. Returns whether some
    /// group is still unsettled (no live leader, or a lagging follower).
    pub async fn tick(&mut self, state: &MetadataState, partitions: &PartitionManager) -> bool {
        let now = Instant::now();
        self.unsettled = false;
        let hosted = partitions.all();
        for h in &hosted {
            let Some(info) = state
                .topic(&h.topic)
                .and_then(|t| t.partitions.get(h.partition as usize))
                .filter(|i| i.group == h.group)
            else {
                continue;
            };
            let action = {
                let metrics = h.raft.metrics();
                let m = metrics.borrow();
                self.decide(h.group, &m, info, now)
            };
            let done = match action {
                Action::Nothing => continue,
                Action::Elect => {
                    tracing::info!(node_id = self.node_id, topic = %h.topic, partition = h.partition, "no live leader: campaigning");
                    h.raft.trigger().elect().await
                }
                Action::Heartbeat => h.raft.trigger().heartbeat().await,
            };
            if let Err(e) = done {
                tracing::debug!(topic = %h.topic, partition = h.partition, error = %e, "raft trigger failed");
            }
        }
        let mut groups: HashSet<GroupId> = hosted.iter().map(|h| h.group).collect();
        groups.insert(METADATA_GROUP);
        self.leaderless_since.retain(|g, _| groups.contains(g));
        self.seen_term.retain(|g, _| groups.contains(g));
        self.last_elect.retain(|g, _| groups.contains(g));
        self.last_nudge.retain(|g, _| groups.contains(g));
        self.unsettled
    }

    fn decide(
        &mut self,
        group: GroupId,
        m: &RaftMetrics<NodeId, openraft::BasicNode>,
        info: &PartitionInfo,
        now: Instant,
    ) -> Action {
        if m.state == ServerState::Leader {
            return self.upkeep(group, m, info, now);
        }
        let reported = info.leader.map(|l| (l, info.leader_term));
        if self.campaign_due(group, m, &info.replicas, reported, now) {
            Action::Elect
        } else {
            Action::Nothing
        }
    }

    /// Whether this follower should campaign now: its leader is unknown or
    /// dead, a majority of voters is alive, and it is its turn among the live
    /// voters in `preferred` order. `reported` is the leader (and term) the
    /// metadata last recorded, if any.
    fn campaign_due(
        &mut self,
        group: GroupId,
        m: &RaftMetrics<NodeId, openraft::BasicNode>,
        preferred: &[NodeId],
        reported: Option<(NodeId, u64)>,
        now: Instant,
    ) -> bool {
        if self.seen_term.insert(group, m.current_term) != Some(m.current_term) {
            self.leaderless_since.insert(group, now);
        }
        let alive = |n: NodeId| self.liveness.is_alive(n);
        let leader_ok = m.current_leader.is_some_and(|l| l != self.node_id && alive(l));
        // A live leader the metadata knows under a newer term will reach us.
        let newer_elsewhere =
            reported.is_some_and(|(l, term)| l != self.node_id && alive(l) && term > m.current_term);
        if leader_ok || newer_elsewhere {
            self.leaderless_since.insert(group, now);
            return false;
        }
        self.unsettled = true;
        let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
        if !voters.contains(&self.node_id) {
            return false;
        }
        let live: Vec<NodeId> =
            preferred.iter().copied().filter(|n| voters.contains(n) && alive(*n)).collect();
        if live.len() * 2 <= voters.len() {
            return false;
        }
        let rank = live.iter().position(|n| *n == self.node_id).unwrap_or(live.len());
        let since = *self.leaderless_since.entry(group).or_insert(now);
        let turn = ELECT_STAGGER * u32::try_from(rank).unwrap_or(u32::MAX / 1000);
        if now.duration_since(since) < turn {
            return false;
        }
        if self.last_elect.get(&group).is_some_and(|at| now.duration_since(*at) < ELECT_RETRY) {
            return false;
        }
        if self.ballots.outdone_within(group, self.liveness.timeout() * 2) {
            return false;
        }
        self.last_elect.insert(group, now);
        true
    }

    /// The metadata group keeps openraft's own timers, which wait out a
    /// leader lease plus an election timeout; when its leader's node is known
    /// dead, campaigning at once saves about a second.
    pub async fn tick_metadata(&mut self, raft: &MetaRaft) {
        let due = {
            let metrics = raft.metrics();
            let m = metrics.borrow();
            if m.state == ServerState::Leader {
                return;
            }
            let mut voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
            voters.sort_unstable();
            self.campaign_due(METADATA_GROUP, &m, &voters, None, Instant::now())
        };
        if due {
            tracing::info!(node_id = self.node_id, "metadata leader is down: campaigning");
            if let Err(e) = raft.trigger().elect().await {
                tracing::debug!(error = %e, "metadata elect trigger failed");
            }
        }
    }

    fn upkeep(
        &mut self,
        group: GroupId,
        m: &RaftMetrics<NodeId, openraft::BasicNode>,
        info: &PartitionInfo,
        now: Instant,
    ) -> Action {
        let lagging = m.replication.as_ref().is_some_and(|r| {
            r.iter().any(|(id, matched)| {
                *id != self.node_id
                    && self.liveness.is_alive(*id)
                    && matched.map(|l| l.index) < m.last_log_index
            })
        });
        let superseded = info.leader_term > m.current_term;
        self.unsettled |= lagging || superseded;
        let every = if lagging || superseded { NUDGE_EVERY } else { IDLE_HEARTBEAT };
        if self.last_nudge.get(&group).is_some_and(|at| now.duration_since(*at) < every) {
            return Action::Nothing;
        }
        self.last_nudge.insert(group, now);
        Action::Heartbeat
    }
}
