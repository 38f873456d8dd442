//! Partition leadership seen from the cluster: a partition's leader is its
//! Raft group's leader, and this module makes that known and keeps it where
//! users expect it.
//!
//! - New leaders report themselves to the metadata group (one batched write
//!   per tick for every change), so any broker answers `Metadata` with every
//!   partition's leader.
//! - Elections of every group this node hosts, the metadata group's
//!   included, are decided by `raft::leadership::Elections` on each pass.
//! - Leadership goes back to the preferred replica (the first of the replica
//!   set) once it is caught up and, if it was down, has been back for the
//!   return delay (clients reconnect to it meanwhile); it is handed to a
//!   caught-up replica on a graceful shutdown (`raft::leadership::hand_over`);
//!   and a node up for less than the return delay passes what it won on to
//!   a replica up for longer (`pass_on`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::metadata::command::{LeaderReport, MetadataCommand};
use crate::metadata::handle::MetadataHandle;
use crate::metadata::state::MetadataState;
use crate::partition::handle::PartitionHandle;
use crate::partition::manager::PartitionManager;
use crate::raft::leadership::{
    self, ask_to_campaign, caught_up_replica, first_with_every_entry, Elections, GroupView, Heartbeats,
};
use crate::raft::liveness::Liveness;
use crate::raft::network::Transport;
use crate::raft::types::{GroupId, NodeId, METADATA_GROUP};

/// How often leader changes are looked for and reported, and elections
/// driven (`raft::leadership::Elections`).
const TICK: Duration = Duration::from_millis(50);
/// How often a full pass runs while every group is settled.
const IDLE_PASS: Duration = Duration::from_secs(1);
/// How often leaderships are moved back to preferred replicas.
const REBALANCE_EVERY: Duration = Duration::from_secs(3);
/// At most this many leaderships move per rebalance round, so a returning
/// node takes its partitions back gradually.
const MAX_TRANSFERS_PER_ROUND: usize = 64;
/// Longest a leader holds new appends while it hands a group over.
const TRANSFER_FENCE: Duration = Duration::from_millis(500);
/// Longest a stopping node waits to hear from the successors it voted for.
const SUCCESSOR_WAIT: Duration = Duration::from_millis(300);
/// A replica asked to campaign is not asked again for this long.
const TRANSFER_COOLDOWN: Duration = Duration::from_secs(10);

/// Which replicas may take leaderships back: live ones that, if they were
/// down, have been back for `return_delay`.
pub struct Availability {
    pub liveness: Arc<Liveness>,
    pub return_delay: Duration,
}

impl Availability {
    fn may_take_back(&self, node: NodeId) -> bool {
        self.liveness.is_alive(node) && !self.liveness.back_within(node, self.return_delay)
    }

    /// `replicas` with those that may not take leaderships back yet moved
    /// to the end, the one back longest first among them, order kept
    /// otherwise.
    fn settled_first(&self, mut replicas: Vec<NodeId>) -> Vec<NodeId> {
        // `None` (never down, or back long ago) sorts before any instant.
        replicas.sort_by_key(|&n| self.liveness.back_since(n, self.return_delay));
        replicas
    }
}

/// Runs until `shutdown`: drives elections, reports leaders and rebalances
/// leaderships.
pub async fn run(
    node_id: NodeId,
    metadata: MetadataHandle,
    partitions: Arc<PartitionManager>,
    transport: Arc<Transport>,
    mut elections: Elections,
    availability: Availability,
    shutdown: CancellationToken,
) {
    let liveness = &availability.liveness;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_rebalance = Instant::now();
    let mut asked: HashMap<GroupId, Instant> = HashMap::new();
    let (mut unsettled, mut seen_changes, mut last_pass) = (true, liveness.changes(), Instant::now());
    let mut seen_state = metadata.state();
    // Reports go to the metadata leader, which may be the node that just
    // died: the proposal can wait out the write timeout, and elections must
    // not wait with it. One report is in flight at a time; a later pass
    // sends what is still unreported.
    let mut reporting: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                if let Some(report) = reporting.take() {
                    report.abort();
                }
                return;
            }
            _ = tick.tick() => {}
        }
        // A full pass costs about a microsecond per hosted replica: run it
        // every tick only while something is unsettled or a node changed
        // state, else once per IDLE_PASS, so idle CPU stays flat.
        // A metadata change (a new topic: groups to elect and report) also
        // warrants a pass at once.
        let changes = liveness.changes();
        let state = metadata.state();
        let new_state = !Arc::ptr_eq(&state, &seen_state);
        if !unsettled && !new_state && changes == seen_changes && last_pass.elapsed() < IDLE_PASS {
            continue;
        }
        seen_changes = changes;
        seen_state = state.clone();
        last_pass = Instant::now();
        unsettled = elect(&mut elections, &metadata, &state, &partitions).await;
        let reports = unreported(node_id, &state, &partitions);
        unsettled |= !reports.is_empty();
        if !reports.is_empty() && reporting.as_ref().is_none_or(|r| r.is_finished()) {
            let (n, metadata) = (reports.len(), metadata.clone());
            reporting = Some(tokio::spawn(async move {
                match metadata.propose(MetadataCommand::ReportLeaders(reports)).await {
                    Ok(_) => tracing::debug!(node_id, partitions = n, "reported partition leaderships"),
                    Err(e) => tracing::debug!(node_id, error = %e, "cannot report leaderships yet"),
                }
            }));
        }
        if !liveness.up_for(node_id, availability.return_delay) {
            asked.retain(|_, at| at.elapsed() < TRANSFER_COOLDOWN);
            unsettled |=
                pass_on(node_id, &state, &partitions, &transport, &availability, &mut asked, &elections);
        }
        if last_rebalance.elapsed() >= REBALANCE_EVERY {
            last_rebalance = Instant::now();
            asked.retain(|_, at| at.elapsed() < TRANSFER_COOLDOWN);
            rebalance(node_id, &state, &partitions, &transport, &availability, &mut asked);
        }
    }
}

/// One pass of `Elections` over the metadata group and every hosted
/// partition group; whether some group is still unsettled.
async fn elect(
    elections: &mut Elections,
    metadata: &MetadataHandle,
    state: &MetadataState,
    partitions: &PartitionManager,
) -> bool {
    elections.begin_pass();
    let raft = metadata.raft();
    let mut voters: Vec<NodeId> =
        raft.metrics().borrow().membership_config.membership().voter_ids().collect();
    voters.sort_unstable();
    let view = GroupView {
        group: METADATA_GROUP,
        preferred: &voters,
        reported: None,
        heartbeats: Heartbeats::Openraft,
        // Opened from disk at start-up, always; formed if it has entries.
        restored: true,
    };
    elections.tend(raft, view, &"metadata").await;
    let hosted = partitions.all();
    for h in &hosted {
        let Some(info) = state
            .topic(&h.topic)
            .and_then(|t| t.partitions.get(h.partition as usize))
            .filter(|i| i.group == h.group)
        else {
            continue;
        };
        let view = GroupView {
            group: h.group,
            preferred: &info.replicas,
            reported: info.leader.map(|l| (l, info.leader_term)),
            heartbeats: Heartbeats::Driven,
            restored: h.restored,
        };
        elections.tend(&h.raft, view, &Named(&h.topic, h.partition)).await;
    }
    let mut groups: HashSet<GroupId> = hosted.iter().map(|h| h.group).collect();
    groups.insert(METADATA_GROUP);
    elections.end_pass(&groups)
}

/// A partition as log lines name it: `topic/partition`.
struct Named<'a>(&'a str, i32);

impl std::fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.0, self.1)
    }
}

/// Groups this node leads whose leadership the metadata does not show yet.
fn unreported(node_id: NodeId, state: &MetadataState, partitions: &PartitionManager) -> Vec<LeaderReport> {
    partitions
        .all()
        .into_iter()
        .filter_map(|h| {
            let (leader, term) = h.leader();
            if leader != Some(node_id) {
                return None;
            }
            let info = state.topic(&h.topic)?.partitions.get(h.partition as usize)?;
            let known = info.group == h.group && info.leader == Some(node_id) && info.leader_term == term;
            (!known).then_some(LeaderReport { group: h.group, leader: node_id, term })
        })
        .collect()
}

/// Run while this node has been up for less than the return delay: clients
/// may still be backing off their reconnects to it (librdkafka waits up to
/// 10 s), so a leadership it won — only as the longer log, since it takes
/// its election turns last — goes to a replica that had been up for the
/// delay when this node started, as soon as one is caught up. Uptimes come
/// from the peers' own clocks (`Liveness::up_for`), so no node moves a
/// leadership to a replica that would move it on. A leadership younger than
/// the leader lease is kept a moment longer: until then this node refuses
/// to vote for the replica it asks to campaign (openraft's lease covers the
/// leader's own vote too), and the failed campaign would depose it for
/// nothing. Whether a leadership waits for that.
fn pass_on(
    node_id: NodeId,
    state: &MetadataState,
    partitions: &PartitionManager,
    transport: &Arc<Transport>,
    availability: &Availability,
    asked: &mut HashMap<GroupId, Instant>,
    elections: &Elections,
) -> bool {
    let liveness = &availability.liveness;
    // Up for the delay already when this node started: in a cluster whose
    // nodes all started together, none is, and nothing moves when the
    // first of them turns the delay old.
    let up_for = availability.return_delay + liveness.uptime();
    let mut waiting = false;
    for h in partitions.all() {
        let (leader, term) = h.leader();
        if leader != Some(node_id) || asked.contains_key(&h.group) {
            continue;
        }
        // Won after the last elections pass looked: just now.
        let since = elections.led_since(h.group, term).unwrap_or_else(Instant::now);
        if since.elapsed() <= Duration::from_millis(h.raft.config().election_timeout_max) {
            waiting = true;
            continue;
        }
        let Some(info) = state.topic(&h.topic).and_then(|t| t.partitions.get(h.partition as usize)) else {
            continue;
        };
        let settled: Vec<NodeId> = info
            .replicas
            .iter()
            .copied()
            .filter(|&n| n != node_id && liveness.is_alive(n) && liveness.up_for(n, up_for))
            .collect();
        let Some(to) = caught_up_replica(&h.raft, node_id, &settled) else { continue };
        let Some(broker) = state.brokers.get(&to) else { continue };
        asked.insert(h.group, Instant::now());
        tracing::info!(topic = %h.topic, partition = h.partition, to, "passing a leadership won just after a restart on");
        let to = vec![(to, broker.raft_addr.clone())];
        tokio::spawn(transfer(h, node_id, to, 1, transport.clone(), TRANSFER_FENCE));
    }
    waiting
}

fn rebalance(
    node_id: NodeId,
    state: &MetadataState,
    partitions: &PartitionManager,
    transport: &Arc<Transport>,
    availability: &Availability,
    asked: &mut HashMap<GroupId, Instant>,
) {
    let mut moved = 0;
    for h in partitions.all() {
        if moved >= MAX_TRANSFERS_PER_ROUND {
            break;
        }
        if h.leader().0 != Some(node_id) || asked.contains_key(&h.group) {
            continue;
        }
        let Some(info) = state.topic(&h.topic).and_then(|t| t.partitions.get(h.partition as usize)) else {
            continue;
        };
        let Some(&preferred) = info.replicas.first() else { continue };
        if preferred == node_id
            || !availability.may_take_back(preferred)
            || caught_up_replica(&h.raft, node_id, &[preferred]) != Some(preferred)
        {
            continue;
        }
        let Some(broker) = state.brokers.get(&preferred) else { continue };
        asked.insert(h.group, Instant::now());
        moved += 1;
        tracing::info!(topic = %h.topic, partition = h.partition, to = preferred, "moving leadership back to the preferred replica");
        // Not awaited here: a preferred replica that stopped answering would
        // hold the election loop for the RPC's timeout.
        let to = vec![(preferred, broker.raft_addr.clone())];
        tokio::spawn(transfer(h, node_id, to, 1, transport.clone(), TRANSFER_FENCE));
    }
}

/// Hands `h`'s group from this leader to the first of `to` (id, Raft
/// address) that holds every entry, one of the first `preferred` (or the
/// first of all) if one catches up in time: appends wait at the fence until one does, then it
/// campaigns with a log as long as this leader's, which votes for it. The
/// fence stays up `fence` at most.
async fn transfer(
    h: PartitionHandle,
    me: NodeId,
    to: Vec<(NodeId, String)>,
    preferred: usize,
    transport: Arc<Transport>,
    fence: Duration,
) {
    let until = Instant::now() + fence;
    h.fence.raise(until);
    let ids: Vec<NodeId> = to.iter().map(|(id, _)| *id).filter(|&id| id != me).collect();
    let mut first: Vec<NodeId> =
        to.iter().take(preferred).map(|(id, _)| *id).filter(|&id| id != me).collect();
    if first.is_empty() {
        first = ids.iter().take(1).copied().collect();
    }
    // Entries proposed before the fence went up reach a replica within a
    // round trip; a preferred one is waited for first, then any.
    let mut chosen = caught_up_within(&h, me, &first, fence / 2).await;
    if chosen.is_none() && first.len() < ids.len() {
        chosen = caught_up_within(&h, me, &ids, fence / 4).await;
    }
    if let Some((_, addr)) = chosen.and_then(|id| to.iter().find(|(n, _)| *n == id)) {
        ask_to_campaign(&transport, addr, h.group).await;
        let left = until.saturating_duration_since(Instant::now());
        let _ = h.raft.wait(Some(left)).metrics(|m| m.current_leader != Some(me), "handed over").await;
    }
    h.fence.lower();
}

/// The first of `ids` that holds every entry of `h`'s log, waiting up to
/// `wait` for one.
async fn caught_up_within(h: &PartitionHandle, me: NodeId, ids: &[NodeId], wait: Duration) -> Option<NodeId> {
    let ready = h
        .raft
        .wait(Some(wait))
        .metrics(|m| first_with_every_entry(m, me, ids).is_some(), "a replica caught up")
        .await;
    ready.ok().and_then(|m| first_with_every_entry(&m, me, ids))
}

/// Asks a caught-up replica among `candidates` to take `group` over.
pub async fn hand_over_group<C>(
    raft: &openraft::Raft<C>,
    group: GroupId,
    node_id: NodeId,
    candidates: &[NodeId],
    state: &MetadataState,
    transport: &Transport,
) -> Option<NodeId>
where
    C: openraft::RaftTypeConfig<NodeId = NodeId>,
{
    let raft_addr = |id: NodeId| state.brokers.get(&id).map(|b| b.raft_addr.clone());
    leadership::hand_over(raft, group, node_id, candidates, raft_addr, transport).await
}

/// Hands every leadership of this node to a caught-up replica and waits (up
/// to `timeout`) until the groups have moved. Called while clients are still
/// connected: writes pause at each group's fence for the moment of the
/// hand-over, and then hear NOT_LEADER_OR_FOLLOWER with the new leader known.
/// Replicas back from being down within the return delay are asked last:
/// clients may still be backing off their reconnects to them.
pub async fn hand_over(
    node_id: NodeId,
    state: &MetadataState,
    partitions: &PartitionManager,
    transport: &Arc<Transport>,
    availability: &Availability,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    let led: Vec<_> = partitions.all().into_iter().filter(|h| h.leader().0 == Some(node_id)).collect();
    if led.is_empty() {
        return;
    }
    let transfers = led.iter().map(|h| {
        let replicas = state
            .topic(&h.topic)
            .and_then(|t| t.partitions.get(h.partition as usize))
            .map(|p| p.replicas.clone())
            .unwrap_or_default();
        let to: Vec<(NodeId, String)> = availability
            .settled_first(replicas)
            .into_iter()
            .filter_map(|id| state.brokers.get(&id).map(|b| (id, b.raft_addr.clone())))
            .collect();
        let settled = to.iter().filter(|(id, _)| availability.may_take_back(*id)).count();
        transfer(h.clone(), node_id, to, settled, transport.clone(), TRANSFER_FENCE)
    });
    futures::future::join_all(transfers).await;
    while Instant::now() < deadline && led.iter().any(|h| h.leader().0 == Some(node_id)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A group counts as handed over once this node voted for the replica
    // asked; the reply to that vote may still be on its way, and a process
    // that stops now drops it — the candidate falls short of a majority, and
    // the group waits for an election after the node is found gone. So the
    // node serves a moment longer, until each successor's first append
    // names it leader here.
    let heard_by = deadline.min(Instant::now() + SUCCESSOR_WAIT);
    while Instant::now() < heard_by && led.iter().any(|h| h.leader().0.is_none()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let kept = led.iter().filter(|h| h.leader().0 == Some(node_id)).count();
    tracing::info!(node_id, handed_over = led.len() - kept, kept, "partition leaderships handed over");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A graceful stop hands a leadership to a replica whose clients are
    /// connected before one that came back moments ago.
    #[test]
    fn replicas_just_back_are_asked_last() {
        let timeout = Duration::from_millis(20);
        let liveness = Arc::new(Liveness::new(1, timeout));
        liveness.heard(2);
        liveness.heard(3);
        liveness.refused(2); // node 2's process exited …
        liveness.heard(2); // … and it is back
        let a = Availability { liveness: liveness.clone(), return_delay: Duration::from_secs(60) };
        assert_eq!(a.settled_first(vec![2, 3, 1]), vec![3, 1, 2]);
        // A fault of node 3's own, later: not node 1 hearing both again at
        // once, which would say node 1 was the one away.
        std::thread::sleep(timeout + Duration::from_millis(10));
        liveness.refused(3);
        liveness.heard(3); // back too, after node 2: node 2 goes first of the two
        assert_eq!(a.settled_first(vec![3, 2, 1]), vec![1, 2, 3]);
        let a = Availability { liveness, return_delay: Duration::ZERO };
        assert_eq!(a.settled_first(vec![2, 3, 1]), vec![2, 3, 1], "no return delay: the order stands");
    }
}
