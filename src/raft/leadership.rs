//! Leadership of any Raft group, metadata and partitions alike, over
//! `raft::liveness`: when to campaign, when a leader nudges its followers,
//! and how a leader hands its group to a caught-up replica.
//!
//! Partition groups run with openraft's heartbeats and election timers off
//! (`raft::partition_raft_config`): with a thousand groups per node those
//! timers alone would keep a core busy. Instead `Elections`, consulted a few
//! times per node timeout for every hosted group, decides:
//!
//! - on a follower whose leader is unknown or on a node `Liveness` declares
//!   dead, to campaign — replicas take turns in their preferred order
//!   (`ELECT_STAGGER` apart) so two of them rarely split the vote, and only
//!   when a majority of the group's voters is alive, so a cut-off node does
//!   not keep raising terms; a replica whose last campaign was refused for a
//!   shorter log (`raft::ballots`) stands aside for a while, so the longer
//!   log's next campaign, `ELECT_RETRY` later, wins; and a replica whose log
//!   grew within the node timeout does not campaign at all: a leader is
//!   feeding it, whatever the failure detector says (a replica catching up
//!   at full speed is too busy to hear pings in time, and each campaign of
//!   its shorter log deposed the leader it was catching up from); nor does
//!   one of a group with other voters opened from disk with entries, in the first
//!   `RESTART_GRACE` node timeouts after this node started — a restarted
//!   replica remembers the leadership it held before, and the group's
//!   current leader contacts it within that time (`upkeep`). The leader a
//!   follower knows counts as dead, though alive, once its node's process
//!   started after it was seen leading: a restarted node leads nothing
//!   (`leader_restarted`);
//! - on a leader that drives its own heartbeats, to send one when a live
//!   follower lags (which restarts replication to a follower that came back)
//!   or when a newer term is reported (so a deposed leader learns it and
//!   steps down), and otherwise every `IDLE_HEARTBEAT` as a safety net.
//!
//! A group that keeps openraft's timers (the metadata group) campaigns the
//! same way as soon as its leader's node is declared dead, which saves the
//! wait for a leader lease plus an election timeout. Its election timer runs
//! only while no leader is heard from (`timer_wanted`): on saturated cores a
//! leader's heartbeats can come seconds late while the node, heard through
//! pings and every other request, is alive — and the timer alone would then
//! depose it. The timer stays on until the first leader is known, so a
//! cluster's first election is openraft's own, and it comes back on under a
//! live leader that sent the group nothing for `MUTE_LEADER` node timeouts.
//!
//! Hand-over: openraft 0.9 has no leader-transfer call, so a leader asks the
//! chosen replica to campaign (`RpcKind::Elect`); the old leader's lease has
//! long expired, so it grants the vote, and a replica that is not caught up
//! cannot win.

use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::{BasicNode, Raft, RaftMetrics, RaftTypeConfig, ServerState};

use crate::raft::network::Transport;
use crate::raft::registry::Registry;
use crate::raft::types::{GroupId, NodeId};
use crate::raft::wire::{RpcKind, RpcRequest};

/// Delay between the turns of successive replicas to campaign.
const ELECT_STAGGER: Duration = Duration::from_millis(150);
/// A campaign that has not produced a leader is repeated this long after.
const ELECT_RETRY: Duration = Duration::from_millis(300);
/// A lagging follower or a superseded leader is nudged this often.
const NUDGE_EVERY: Duration = Duration::from_millis(300);
/// An idle, healthy group still gets a heartbeat this often.
const IDLE_HEARTBEAT: Duration = Duration::from_secs(60);
/// Node timeouts a restarted replica waits to hear from its group's leader
/// before it may campaign.
const RESTART_GRACE: u32 = 2;
/// Node timeouts a group on openraft's timers waits for its live leader's
/// next AppendEntries before its election timer runs again (10 s by
/// default, a metadata write's own deadline).
const MUTE_LEADER: u32 = 20;
/// Deadline of one request to campaign.
const ELECT_RPC_TIMEOUT: Duration = Duration::from_secs(1);

/// Who drives a group's heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeats {
    /// openraft's own timers (the metadata group).
    Openraft,
    /// `Elections` (partition groups).
    Driven,
}

/// What one group needs from `Elections`, as its owner sees it.
pub struct GroupView<'a> {
    pub group: GroupId,
    /// Replicas in the order they should take leadership.
    pub preferred: &'a [NodeId],
    /// The leader and term the cluster's metadata last recorded, if any.
    pub reported: Option<(NodeId, u64)>,
    pub heartbeats: Heartbeats,
    /// The group was opened from disk already formed, not created since
    /// this node started: a restarted replica's (`RESTART_GRACE`).
    pub restored: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Action {
    Nothing,
    Elect,
    Heartbeat,
}

/// Election and upkeep decisions for every group this node hosts.
pub struct Elections {
    node_id: NodeId,
    /// The node's liveness and ballots, and whether it is draining: a node
    /// handing its leaderships over campaigns for none.
    registry: Arc<Registry>,
    /// Since when each group has been without a usable leader, restarted
    /// whenever its term moves (someone else is campaigning).
    leaderless_since: HashMap<GroupId, Instant>,
    seen_term: HashMap<GroupId, u64>,
    /// The leader each group had at the last look, its term, and when this
    /// node first saw it lead in that term (`leader_restarted`, `led_since`).
    seen_leader: HashMap<GroupId, (NodeId, u64, Instant)>,
    last_elect: HashMap<GroupId, Instant>,
    last_nudge: HashMap<GroupId, Instant>,
    /// When this node's elections began: groups it opened at start-up are a
    /// restarted replica's.
    started: Instant,
    /// Each group's log growth (`Growth`).
    growth: HashMap<GroupId, Growth>,
    /// Whether this pass met a group without a healthy leader (or a lagging
    /// follower): then the next tick must look again.
    unsettled: bool,
    /// A replica back from being down for less than this campaigns after
    /// the others (`with_return_delay`).
    return_delay: Duration,
}

impl Elections {
    pub fn new(node_id: NodeId, registry: Arc<Registry>) -> Self {
        Self {
            node_id,
            registry,
            leaderless_since: HashMap::new(),
            seen_term: HashMap::new(),
            seen_leader: HashMap::new(),
            last_elect: HashMap::new(),
            last_nudge: HashMap::new(),
            growth: HashMap::new(),
            started: Instant::now(),
            unsettled: false,
            return_delay: Duration::ZERO,
        }
    }

    /// Replicas back from being down (restarted, resumed, reconnected) for
    /// less than `delay` take their turns after the others: clients may
    /// still be backing off their reconnects to them — librdkafka waits up
    /// to 10 s — and a leadership there would be out of their reach.
    /// `partition::leadership::Availability` hands leaderships back once
    /// the same delay has passed.
    pub fn with_return_delay(mut self, delay: Duration) -> Self {
        self.return_delay = delay;
        self
    }

    /// When `node` came back, if within the return delay. This node counts
    /// from its own start, or from when it heard every peer again after a
    /// silence (it was paused or cut off): the instant its peers saw it
    /// back, so that all of them rank it alike — ranked first by itself and
    /// last by the others, two replicas each took the other for the one
    /// just back, campaigned together and split the vote.
    /// Peers are counted by `Liveness::back_since`, which sets aside the
    /// returns this node heard as it rejoined. Its own start counts only if
    /// it started while its peers ran (`Liveness::started_late`): nodes of
    /// a new cluster each ranked themselves back and the others not, and
    /// after the first kill each waited for the other (0.8 s).
    fn back_since(&self, node: NodeId, now: Instant) -> Option<Instant> {
        let liveness = self.registry.liveness();
        if node != self.node_id {
            return liveness.back_since(node, self.return_delay);
        }
        let started = Some(self.started)
            .filter(|at| now.saturating_duration_since(*at) < self.return_delay && liveness.started_late());
        started.max(liveness.rejoined_since(self.return_delay))
    }

    /// Starts a pass over the hosted groups.
    pub fn begin_pass(&mut self) {
        self.unsettled = false;
    }

    /// Ends a pass: forgets groups no longer hosted; whether some group is
    /// still unsettled (no live leader, or a lagging follower).
    pub fn end_pass(&mut self, hosted: &HashSet<GroupId>) -> bool {
        self.leaderless_since.retain(|g, _| hosted.contains(g));
        self.seen_term.retain(|g, _| hosted.contains(g));
        self.seen_leader.retain(|g, _| hosted.contains(g));
        self.last_elect.retain(|g, _| hosted.contains(g));
        self.last_nudge.retain(|g, _| hosted.contains(g));
        self.growth.retain(|g, _| hosted.contains(g));
        self.unsettled
    }

    /// Looks at one group and campaigns or sends a heartbeat if it is due.
    pub async fn tend<C>(
        &mut self,
        raft: &Raft<C>,
        view: GroupView<'_>,
        what: &(dyn std::fmt::Display + Sync),
    ) where
        C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
    {
        let action = {
            let lease = Duration::from_millis(raft.config().election_timeout_max);
            let metrics = raft.metrics();
            let m = metrics.borrow();
            let now = Instant::now();
            if view.heartbeats == Heartbeats::Openraft {
                raft.runtime_config().elect(self.timer_wanted(&m, view.group, now));
            }
            self.decide(&m, &view, now, lease)
        };
        let done = match action {
            Action::Nothing => return,
            Action::Elect => {
                tracing::info!(node_id = self.node_id, group = view.group, %what, "no live leader: campaigning");
                raft.trigger().elect().await
            }
            Action::Heartbeat => raft.trigger().heartbeat().await,
        };
        if let Err(e) = done {
            tracing::debug!(group = view.group, %what, error = %e, "raft trigger failed");
        }
    }

    /// `lease`: how long a follower that heard from its leader refuses to
    /// vote for another (openraft's leader lease).
    fn decide(
        &mut self,
        m: &RaftMetrics<NodeId, BasicNode>,
        view: &GroupView<'_>,
        now: Instant,
        lease: Duration,
    ) -> Action {
        self.note_leader(m, view.group, now);
        if m.state == ServerState::Leader {
            return match view.heartbeats {
                Heartbeats::Openraft => Action::Nothing,
                Heartbeats::Driven => self.upkeep(m, view, now),
            };
        }
        if self.campaign_due(m, view, now, lease) {
            Action::Elect
        } else {
            Action::Nothing
        }
    }

    /// Whether this follower should campaign now: its leader is unknown or
    /// dead, a majority of voters is alive, and it is its turn among the live
    /// voters in preferred order.
    fn campaign_due(
        &mut self,
        m: &RaftMetrics<NodeId, BasicNode>,
        view: &GroupView<'_>,
        now: Instant,
        lease: Duration,
    ) -> bool {
        let group = view.group;
        if self.registry.is_draining() {
            return false;
        }
        if self.seen_term.insert(group, m.current_term) != Some(m.current_term) {
            self.leaderless_since.insert(group, now);
        }
        let restarted = self.leader_restarted(group);
        let alive = |n: NodeId| self.registry.liveness().is_alive(n);
        let first_look = Growth::new(m.last_log_index, now, view.restored);
        let grew = self.growth.entry(group).or_insert(first_look).grew_within(
            m.last_log_index,
            now,
            self.registry.liveness().timeout(),
        );
        // Growth vouches for a leader the detector may wrongly think dead;
        // not for one whose node refused a connection (its process is gone).
        let gone = m.current_leader.is_some_and(|l| self.registry.liveness().is_gone(l));
        let grew = grew && !gone;
        let leader_alive = m.current_leader.is_some_and(|l| l != self.node_id && alive(l)) && !restarted;
        // A live leader the metadata knows under a newer term will reach us.
        let newer_elsewhere =
            view.reported.is_some_and(|(l, term)| l != self.node_id && alive(l) && term > m.current_term);
        if grew || leader_alive || newer_elsewhere {
            // A leader vouched for by its entries alone may have just died:
            // look again next tick, not after an idle pass (a second).
            self.unsettled |= !leader_alive;
            // The spell without a leader starts at the first look that finds
            // none: a stamp from this look would date it to an idle pass up
            // to a second before the death, every replica's turn long come,
            // and all of them would campaign at once and split the vote.
            self.leaderless_since.remove(&group);
            return false;
        }
        self.unsettled = true;
        let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
        if !voters.contains(&self.node_id) {
            return false;
        }
        // A group opened from disk that had had a leader (whose first entry
        // is at index 1, after the initial membership at 0) is a restarted
        // replica's, in this node's first moments. A group created later is
        // not, however soon its leader dies — nor one created in a new
        // cluster's first second, whose leader may have written by the time
        // a pass first meets it; nor is a new group whose first campaign
        // failed: it has a term, but no leader ever wrote.
        let restarting = voters.len() > 1
            && self.growth.get(&group).is_some_and(|g| g.restored)
            && now.duration_since(self.started) < self.registry.liveness().timeout() * RESTART_GRACE;
        if restarting {
            // The turns below count from the end of the grace, or every
            // replica would find its turn long come and campaign at once.
            self.leaderless_since.insert(group, now);
            return false;
        }
        let mut live: Vec<NodeId> =
            view.preferred.iter().copied().filter(|n| voters.contains(n) && alive(*n)).collect();
        // Replicas back within the return delay go last, the one back
        // longest first (`None`, never down, sorts before any instant).
        live.sort_by_key(|n| self.back_since(*n, now));
        if live.len() * 2 <= voters.len() {
            return false;
        }
        let rank = live.iter().position(|n| *n == self.node_id).unwrap_or(live.len());
        let since = *self.leaderless_since.entry(group).or_insert(now);
        // A leader whose process is gone is known dead the moment it died,
        // when the other voters have just heard from it: they refuse to vote
        // until their lease runs out, and a campaign before then only fails
        // and waits out a retry. A leader found silent for a node timeout
        // left no lease behind.
        let lease_left = if gone { lease } else { Duration::ZERO };
        // A replica just back waits a node timeout more while a settled one
        // goes before it: that one may not have found the leader dead yet
        // (detectors disagree by up to a node timeout), and a leadership won
        // here is out of reach of clients backing off their reconnects —
        // one that learned it before it was passed on waited out its
        // back-off, 10 s.
        let settled_ahead = live.iter().take(rank).any(|n| self.back_since(*n, now).is_none());
        let back_wait = if settled_ahead && self.back_since(self.node_id, now).is_some() {
            self.registry.liveness().timeout()
        } else {
            Duration::ZERO
        };
        let turn = lease_left + back_wait + ELECT_STAGGER * u32::try_from(rank).unwrap_or(u32::MAX / 1000);
        // A candidate with a shorter log than ours asked for our vote and was
        // refused: ours is the log to elect, without waiting for our turn
        // (`Ballots`).
        let better = self.registry.ballots().out_logged_within(group, self.registry.liveness().timeout());
        if !better && now.duration_since(since) < turn {
            return false;
        }
        // Retries keep the turns too: two replicas whose campaigns split the
        // vote would otherwise split it again, retry after retry. But the
        // better log, refused only because the shorter one voted for itself
        // in the term it asked for, asks again at once, a term higher; so
        // does the lower id of two equal logs that split it (`Ballots`).
        if self.last_elect.get(&group).is_some_and(|at| now.duration_since(*at) < ELECT_RETRY + turn)
            && !self
                .registry
                .ballots()
                .take_collided(group, ELECT_RETRY, |rival| better || rival > Some(self.node_id))
        {
            return false;
        }
        if self.registry.ballots().outdone_within(group, self.registry.liveness().timeout() * 2) {
            return false;
        }
        self.last_elect.insert(group, now);
        true
    }

    /// Whether a group on openraft's timers should have its election timer
    /// on: not while it leads, nor while the leader it follows is alive to
    /// the failure detector (which hears it through pings and every other
    /// request, where the group's own heartbeats may wait behind load) and
    /// sent the group something within `MUTE_LEADER` node timeouts. A
    /// leader unknown, dead or restarted is campaigned against by `decide`
    /// already; the timer is the fallback beside it.
    fn timer_wanted(&self, m: &RaftMetrics<NodeId, BasicNode>, group: GroupId, now: Instant) -> bool {
        if m.state == ServerState::Leader {
            return false;
        }
        let liveness = self.registry.liveness();
        let heard = m
            .current_leader
            .is_some_and(|l| l != self.node_id && liveness.is_alive(l) && !liveness.is_gone(l));
        // A live leader that sent the group nothing for this long is stuck,
        // not slow: the timer replaces it, as it always would have.
        let mute = self.registry.leader_silent_for(group, now) >= liveness.timeout() * MUTE_LEADER;
        !heard || mute || self.leader_restarted(group)
    }

    /// Whether this group's leader, as this replica knows it, restarted
    /// since it was first seen leading in this term. A Raft node
    /// starts as a follower, so a leader that restarted (its hand-over lost
    /// with its process) leads nothing now, though its followers keep
    /// naming it until someone wins an election; alive, it would keep them
    /// from campaigning, and a candidate whose log they refuse would retry
    /// alone until the restarted node campaigned itself, seconds later.
    fn leader_restarted(&self, group: GroupId) -> bool {
        self.seen_leader
            .get(&group)
            .is_some_and(|&(leader, _, since)| self.registry.liveness().started_after(leader, since))
    }

    /// Records who leads `group` now, and since when this node has seen it
    /// lead in this term.
    fn note_leader(&mut self, m: &RaftMetrics<NodeId, BasicNode>, group: GroupId, now: Instant) {
        let Some(leader) = m.current_leader else {
            self.seen_leader.remove(&group);
            return;
        };
        let seen = self.seen_leader.entry(group).or_insert((leader, m.current_term, now));
        if (seen.0, seen.1) != (leader, m.current_term) {
            *seen = (leader, m.current_term, now);
        }
    }

    /// Since when this node has led `group` in `term`, as of the last pass.
    pub fn led_since(&self, group: GroupId, term: u64) -> Option<Instant> {
        self.seen_leader
            .get(&group)
            .filter(|&&(leader, seen_term, _)| leader == self.node_id && seen_term == term)
            .map(|&(_, _, since)| since)
    }

    fn upkeep(&mut self, m: &RaftMetrics<NodeId, BasicNode>, view: &GroupView<'_>, now: Instant) -> Action {
        let lagging = m.replication.as_ref().is_some_and(|r| {
            r.iter().any(|(id, matched)| {
                *id != self.node_id
                    && self.registry.liveness().is_alive(*id)
                    && matched.map(|l| l.index) < m.last_log_index
            })
        });
        let superseded = view.reported.is_some_and(|(_, term)| term > m.current_term);
        self.unsettled |= lagging || superseded;
        let every = if lagging || superseded { NUDGE_EVERY } else { IDLE_HEARTBEAT };
        if self.last_nudge.get(&view.group).is_some_and(|at| now.duration_since(*at) < every) {
            return Action::Nothing;
        }
        self.last_nudge.insert(view.group, now);
        Action::Heartbeat
    }
}

/// A group's last log index as last looked at, and when it last grew.
#[derive(Debug, Clone, Copy)]
struct Growth {
    index: Option<u64>,
    looked: Instant,
    grew: Option<Instant>,
    /// The group was opened from disk with entries, not created since
    /// this node started.
    restored: bool,
}

impl Growth {
    /// At the first look; `opened_formed`: the owner opened the group from
    /// disk, already formed (`GroupView::restored`).
    fn new(index: Option<u64>, now: Instant, opened_formed: bool) -> Self {
        Self { index, looked: now, grew: None, restored: opened_formed && index.is_some_and(|i| i > 0) }
    }

    /// Records a look at `index`; whether the log grew within `window`.
    /// Growth since the last look is dated to that look, the earliest it can
    /// have happened: after an idle pass a second ago, entries received just
    /// before a leader died must not vouch for it for another `window`.
    fn grew_within(&mut self, index: Option<u64>, now: Instant, window: Duration) -> bool {
        if index != self.index {
            self.grew = Some(self.looked);
            self.index = index;
        }
        self.looked = now;
        self.grew.is_some_and(|at| now.duration_since(at) < window)
    }
}

/// The first of `candidates` (other than this node) that has every entry of
/// the log this node leads.
pub fn caught_up_replica<C>(raft: &Raft<C>, me: NodeId, candidates: &[NodeId]) -> Option<NodeId>
where
    C: RaftTypeConfig<NodeId = NodeId>,
{
    let m = raft.metrics();
    let m = m.borrow();
    first_with_every_entry(&m, me, candidates)
}

/// The first of `candidates` (other than `me`) that the leader whose
/// metrics these are has replicated every entry to.
pub fn first_with_every_entry<N: openraft::Node>(
    m: &RaftMetrics<NodeId, N>,
    me: NodeId,
    candidates: &[NodeId],
) -> Option<NodeId> {
    let last = m.last_log_index?;
    let replication = m.replication.as_ref()?;
    candidates.iter().copied().find(|id| {
        *id != me && replication.get(id).is_some_and(|matched| matched.map(|l| l.index) == Some(last))
    })
}

/// Asks the node at `addr` to campaign in `group`.
pub async fn ask_to_campaign(transport: &Transport, addr: &str, group: GroupId) {
    let request = RpcRequest { group, kind: RpcKind::Elect, body: Bytes::new() };
    if let Err(e) = transport.call(addr, &request, ELECT_RPC_TIMEOUT).await {
        tracing::debug!(group, %addr, error = %e, "campaign request failed");
    }
}

/// Asks the first caught-up replica among `candidates` to take `group` over
/// from this node; the replica asked, if any. `raft_addr` finds a node's
/// Raft address.
pub async fn hand_over<C>(
    raft: &Raft<C>,
    group: GroupId,
    me: NodeId,
    candidates: &[NodeId],
    raft_addr: impl Fn(NodeId) -> Option<String>,
    transport: &Transport,
) -> Option<NodeId>
where
    C: RaftTypeConfig<NodeId = NodeId>,
{
    let to = caught_up_replica(raft, me, candidates)?;
    let addr = raft_addr(to)?;
    ask_to_campaign(transport, &addr, group).await;
    Some(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::ballots::Ballots;
    use crate::raft::liveness::Liveness;
    use openraft::{Membership, StoredMembership};

    /// A partition group's view, opened from disk, no leader reported.
    fn driven(group: GroupId, preferred: &[NodeId]) -> GroupView<'_> {
        GroupView { group, preferred, reported: None, heartbeats: Heartbeats::Driven, restored: true }
    }

    /// Node `me` of a three-voter group that node 2 leads, the other nodes
    /// heard from, `started` ago; its ballots, and the group as it sees it.
    fn voter(
        me: NodeId,
        started: Duration,
    ) -> (Arc<Liveness>, Arc<Ballots>, Elections, RaftMetrics<NodeId, BasicNode>) {
        let liveness = Arc::new(Liveness::new(me, Duration::from_secs(1)));
        [1, 2, 3].into_iter().filter(|&n| n != me).for_each(|n| liveness.heard(n));
        let registry = Arc::new(Registry::new(liveness.clone()));
        let ballots = registry.ballots().clone();
        let mut e = Elections::new(me, registry);
        e.started -= started;
        (liveness, ballots, e, follower(me, 2))
    }

    /// A follower of `leader` in a three-voter group, with a log.
    fn follower(me: NodeId, leader: NodeId) -> RaftMetrics<NodeId, BasicNode> {
        let mut m = RaftMetrics::new_initial(me);
        let voters = std::collections::BTreeSet::from([1, 2, 3]);
        m.membership_config = Arc::new(StoredMembership::new(None, Membership::new(vec![voters], None)));
        m.current_term = 4;
        m.current_leader = Some(leader);
        m.last_log_index = Some(10);
        m
    }

    /// Node 2 leads and dies between two idle passes a second apart. The
    /// survivors' turns count from the pass that found it dead: the first
    /// in preferred order campaigns at once, the second a stagger later —
    /// not both at once, which splits the vote.
    #[test]
    fn turns_count_from_the_first_look_without_a_leader() {
        let (liveness, _, mut e, m) = voter(3, Duration::from_secs(10)); // past the restart grace
        let view = driven(7, &[2, 1, 3]);
        let (t0, lease) = (Instant::now(), Duration::from_millis(150));
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "a live leader");
        liveness.refused(2);
        // Node 1's turn comes when the lease node 2 left has run out; node
        // 3's a stagger later.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            e.decide(&m, &view, t1, lease),
            Action::Nothing,
            "node 1 goes first; node 3 waits its turn"
        );
        assert_eq!(e.decide(&m, &view, t1 + lease, lease), Action::Nothing);
        assert_eq!(e.decide(&m, &view, t1 + lease + ELECT_STAGGER / 2, lease), Action::Nothing);
        let turn = t1 + lease + ELECT_STAGGER;
        assert_eq!(e.decide(&m, &view, turn, lease), Action::Elect, "node 1 did not win: node 3's turn");
    }

    /// The first in preferred order campaigns once the dead leader's lease
    /// has run out at the other voters, not before (its vote would be
    /// refused), and not a retry later.
    #[test]
    fn a_gone_leaders_successor_campaigns_when_its_lease_runs_out() {
        let (liveness, _, mut e, m) = voter(1, Duration::from_secs(10));
        let view = driven(7, &[2, 1, 3]);
        let (t0, lease) = (Instant::now(), Duration::from_millis(150));
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "a live leader");
        liveness.refused(2);
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "node 3 still holds node 2's lease");
        assert_eq!(e.decide(&m, &view, t0 + lease, lease), Action::Elect);
    }

    /// Node 1 restarted five seconds ago, within the return delay: though
    /// first in preferred order after the dead leader, it lets node 3 go
    /// first, whose clients are not backing off their reconnects — and
    /// waits a node timeout more, for node 3's detector to find the leader
    /// dead too.
    #[test]
    fn a_replica_just_back_takes_its_turn_last() {
        let (liveness, _, e, m) = voter(1, Duration::from_secs(5));
        let mut e = e.with_return_delay(Duration::from_secs(12));
        let view = driven(7, &[2, 1, 3]);
        let (t0, lease) = (Instant::now(), Duration::from_millis(150));
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "a live leader");
        liveness.refused(2);
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing);
        assert_eq!(e.decide(&m, &view, t0 + lease, lease), Action::Nothing, "node 3's turn, not node 1's");
        let after_node_3 = t0 + lease + ELECT_STAGGER;
        assert_eq!(
            e.decide(&m, &view, after_node_3, lease),
            Action::Nothing,
            "node 3 may find node 2 dead later"
        );
        let timeout = liveness.timeout();
        assert_eq!(
            e.decide(&m, &view, after_node_3 + timeout, lease),
            Action::Elect,
            "node 3 did not campaign"
        );
    }

    /// Node 1 heard both peers again after a silence: it was the one cut
    /// off, and ranks itself as they rank it, just back — last. Had it heard
    /// only node 3 again, node 3 was away, and node 1 goes first.
    #[test]
    fn a_replica_back_from_a_cut_ranks_itself_last_as_its_peers_do() {
        for cut_off in [1, 3] {
            let (liveness, _, e, m) = voter(1, Duration::from_secs(20));
            let mut e = e.with_return_delay(Duration::from_secs(12));
            let view = driven(7, &[2, 1, 3]);
            let away: &[NodeId] = if cut_off == 1 { &[2, 3] } else { &[3] };
            for &n in away {
                liveness.refused(n);
                liveness.heard(n);
            }
            let (t0, lease) = (Instant::now(), Duration::from_millis(150));
            assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "a live leader");
            liveness.refused(2);
            assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "the lease");
            let first_turn = e.decide(&m, &view, t0 + lease, lease);
            if cut_off == 1 {
                assert_eq!(first_turn, Action::Nothing, "node 3's turn, not node 1's");
                let after_node_3 = t0 + lease + ELECT_STAGGER + liveness.timeout();
                assert_eq!(
                    e.decide(&m, &view, after_node_3, lease),
                    Action::Elect,
                    "node 3 did not campaign"
                );
            } else {
                assert_eq!(first_turn, Action::Elect, "node 1 goes first: node 3 was away");
            }
        }
    }

    /// A new cluster: node 1 started with its peers, as their uptimes tell.
    /// None of them is back from anything, and node 1, first in preferred
    /// order after the dead leader, goes first — as node 3 ranks it.
    #[test]
    fn nodes_started_together_are_none_of_them_back() {
        let (liveness, _, e, m) = voter(1, Duration::from_secs(5));
        let mut e = e.with_return_delay(Duration::from_secs(12));
        let view = driven(7, &[2, 1, 3]);
        let (t0, lease) = (Instant::now(), Duration::from_millis(150));
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "a live leader");
        liveness.refused(2);
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "the lease");
        assert_eq!(
            e.decide(&m, &view, t0 + lease, lease),
            Action::Nothing,
            "peers' uptimes unknown: node 1 may be back"
        );
        for n in [2, 3] {
            liveness.heard_up(n, liveness.uptime(), Instant::now());
        }
        assert_eq!(
            e.decide(&m, &view, t0 + lease, lease),
            Action::Elect,
            "started with the others: node 1's turn"
        );
    }

    /// Node 3 came back from a pause, then node 1 was cut off and heard both
    /// peers again. Node 1's returns to itself are not theirs: node 3 is
    /// still the one back first, as it counts itself, and goes first, node 1
    /// after it — without waiting behind node 3 as behind a settled replica
    /// (in the fault run the two waited for each other: 0.9 s).
    #[test]
    fn a_peer_back_before_this_node_was_cut_off_stays_back() {
        let (liveness, _, e, m) = voter(1, Duration::from_secs(20));
        let mut e = e.with_return_delay(Duration::from_secs(12));
        let view = driven(7, &[2, 3, 1]);
        liveness.refused(3);
        liveness.heard(3); // node 3 back from its pause
        std::thread::sleep(liveness.timeout() + Duration::from_millis(10));
        for n in [2, 3] {
            liveness.refused(n);
            liveness.heard(n); // node 1 back from its cut
        }
        assert!(liveness.rejoined_since(Duration::from_secs(12)).is_some());
        let (t0, lease) = (Instant::now(), Duration::from_millis(150));
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "a live leader");
        liveness.refused(2);
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "the lease");
        assert_eq!(e.decide(&m, &view, t0 + lease, lease), Action::Nothing, "node 3's turn, not node 1's");
        assert_eq!(
            e.decide(&m, &view, t0 + lease + ELECT_STAGGER, lease),
            Action::Elect,
            "node 1 goes next: node 3 is back too, not a settled replica to wait a node timeout for"
        );
    }

    /// Node 1 (third in preferred order) refused node 3's campaign for its
    /// shorter log: node 1 campaigns at once, and when that campaign is
    /// refused only because node 3 voted for itself in that term, once
    /// more at once — not after its turn and a retry.
    #[test]
    fn the_longer_log_campaigns_at_once() {
        let (liveness, ballots, mut e, m) = voter(1, Duration::from_secs(10));
        let view = driven(7, &[2, 3, 1]);
        let (t0, lease) = (Instant::now(), Duration::from_millis(150));
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "a live leader");
        liveness.refused(2);
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(e.decide(&m, &view, t1, lease), Action::Nothing, "node 3 goes first");
        ballots.out_logged(7);
        assert_eq!(e.decide(&m, &view, t1, lease), Action::Elect, "refused node 3's shorter log");
        assert_eq!(e.decide(&m, &view, t1, lease), Action::Nothing, "just campaigned");
        ballots.collided(7, Some(3));
        assert_eq!(e.decide(&m, &view, t1, lease), Action::Elect, "node 3 had voted for itself in that term");
        assert_eq!(e.decide(&m, &view, t1, lease), Action::Nothing, "one repeat per collision");
    }

    /// Node 2 dies; nodes 1 and 3, with equal logs, both find their turn
    /// come (each may rank the other as just back) and each votes for
    /// itself. The lower id repeats at once, a term higher, and wins; the
    /// higher waits out its retry, by when it has granted that vote.
    #[test]
    fn of_two_equal_logs_that_split_the_vote_the_lower_id_repeats_at_once() {
        for (me, rival, repeats) in [(1, 3, true), (3, 1, false)] {
            let (liveness, ballots, mut e, m) = voter(me, Duration::from_secs(10));
            let preferred = [2, me, rival];
            let view = driven(7, &preferred);
            let (t0, lease) = (Instant::now(), Duration::from_millis(150));
            assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "a live leader");
            liveness.refused(2);
            assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "node 2's lease");
            let t1 = t0 + lease;
            assert_eq!(e.decide(&m, &view, t1, lease), Action::Elect, "node {me}'s turn");
            ballots.collided(7, Some(rival));
            let expected = if repeats { Action::Elect } else { Action::Nothing };
            assert_eq!(
                e.decide(&m, &view, t1, lease),
                expected,
                "node {me} after colliding with node {rival}"
            );
        }
    }

    /// A node handing its leaderships over on a graceful stop serves a
    /// moment longer to hear its successors; it must not campaign then, or
    /// it would win back a group it is about to leave leaderless.
    #[test]
    fn a_draining_node_campaigns_for_nothing() {
        let (liveness, _, e, m) = voter(1, Duration::from_secs(10));
        let mut e = e;
        let view = driven(7, &[2, 1, 3]);
        let (t0, lease) = (Instant::now(), Duration::from_millis(150));
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "a live leader");
        liveness.refused(2);
        e.registry.drain();
        assert_eq!(e.decide(&m, &view, t0 + lease * 4, lease), Action::Nothing, "draining");
    }

    /// Node 2 leads, stops and is back before anyone was elected (its
    /// hand-over lost): it is alive, but leads nothing. Node 1, first in
    /// turn once node 2 (just back) goes last, campaigns.
    #[test]
    fn a_leader_back_from_a_restart_is_not_waited_for() {
        let (liveness, _, e, m) = voter(1, Duration::from_secs(20));
        let mut e = e.with_return_delay(Duration::from_secs(12));
        let view = driven(7, &[2, 1, 3]);
        let (t0, lease) = (Instant::now(), Duration::from_millis(150));
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "a live leader");
        liveness.refused(2);
        liveness.heard(2);
        liveness.heard_up(2, Duration::ZERO, Instant::now());
        assert!(liveness.is_alive(2));
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Elect, "node 2 restarted: no leader");
    }

    /// The metadata group's election timer runs only while no leader is
    /// heard: not under a live leader, however late its heartbeats, nor on
    /// the leader; again once the leader is unknown, gone or restarted.
    #[test]
    fn the_election_timer_runs_only_without_a_live_leader() {
        let (liveness, _, mut e, mut m) = voter(1, Duration::from_secs(20));
        let (t0, lease) = (Instant::now(), Duration::from_millis(150));
        let view = GroupView {
            group: 0,
            preferred: &[1, 2, 3],
            reported: None,
            heartbeats: Heartbeats::Openraft,
            restored: true,
        };
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing);
        e.registry.heard_leader(0);
        assert!(!e.timer_wanted(&m, 0, t0), "node 2 leads and is heard");
        let mute = Instant::now() + liveness.timeout() * MUTE_LEADER;
        assert!(e.timer_wanted(&m, 0, mute), "node 2 is heard, but sent the group nothing for long");
        liveness.refused(2);
        liveness.heard(2);
        liveness.heard_up(2, Duration::ZERO, Instant::now());
        assert!(e.timer_wanted(&m, 0, t0), "node 2 restarted: it leads nothing");
        liveness.refused(2);
        assert!(e.timer_wanted(&m, 0, t0), "node 2 is gone");
        m.current_leader = None;
        assert!(e.timer_wanted(&m, 0, t0), "no leader known");
        m.current_leader = Some(1);
        m.state = ServerState::Leader;
        assert!(!e.timer_wanted(&m, 0, t0), "a leader does not campaign");
    }

    /// Node 2 leads, is cut off and heard again — the same process, its
    /// uptime running on: it may still lead, and is waited for.
    #[test]
    fn a_leader_back_from_a_cut_is_waited_for() {
        let (liveness, _, e, m) = voter(1, Duration::from_secs(20));
        let mut e = e.with_return_delay(Duration::from_secs(12));
        let view = driven(7, &[2, 1, 3]);
        liveness.heard_up(2, Duration::from_secs(30), Instant::now());
        let (t0, lease) = (Instant::now(), Duration::from_millis(150));
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "a live leader");
        liveness.refused(2);
        liveness.heard(2);
        liveness.heard_up(2, Duration::from_secs(33), Instant::now());
        assert!(liveness.is_alive(2));
        assert_eq!(e.decide(&m, &view, t0, lease), Action::Nothing, "node 2 never stopped: it leads");
    }

    /// Just after this node started, a replica opened from disk waits the
    /// restart grace for its leader to contact it; one of a group created
    /// since (a topic made in a new cluster's first second, whose leader
    /// wrote before a pass first met the group — even the first pass, which
    /// can run while the topic's replicas are being opened) campaigns on its
    /// turn.
    #[test]
    fn only_groups_opened_from_disk_wait_out_the_restart_grace() {
        let (liveness, _, mut e, m) = voter(1, Duration::from_millis(100));
        let view = |group, restored| GroupView {
            group,
            preferred: &[2, 1, 3],
            reported: None,
            heartbeats: Heartbeats::Driven,
            restored,
        };
        let (t0, lease) = (Instant::now(), Duration::from_millis(150));
        for (group, restored) in [(7, true), (8, false)] {
            assert_eq!(e.decide(&m, &view(group, restored), t0, lease), Action::Nothing, "a live leader");
        }
        liveness.refused(2);
        for (group, restored) in [(7, true), (8, false)] {
            assert_eq!(
                e.decide(&m, &view(group, restored), t0, lease),
                Action::Nothing,
                "node 2's lease holds"
            );
        }
        let turn = t0 + lease;
        assert_eq!(
            e.decide(&m, &view(7, true), turn, lease),
            Action::Nothing,
            "opened from disk: the grace holds"
        );
        assert_eq!(e.decide(&m, &view(8, false), turn, lease), Action::Elect, "created since: its turn came");
    }

    #[test]
    fn growth_seen_after_an_idle_pass_does_not_vouch_for_a_leader() {
        let (t0, window) = (Instant::now(), Duration::from_millis(500));
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut g = Growth::new(Some(10), t0, false);
        // Looked at again a second later: it grew meanwhile, but the leader
        // may have died right after.
        assert!(!g.grew_within(Some(20), at(1000), window));
        // Looked at every tick while a leader feeds it: it grows.
        assert!(g.grew_within(Some(30), at(1050), window));
        assert!(g.grew_within(Some(30), at(1400), window));
        assert!(!g.grew_within(Some(30), at(1600), window), "no growth for longer than the window");
    }
}
