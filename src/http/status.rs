//! Where partitions stand — high watermark, log start, in-sync replicas — as
//! only their leaders know it. Each node reports the partitions it leads
//! (`GET /v1/internal/leading`); a node describing a topic or a group asks
//! the leaders involved, in parallel, and falls back to its own replica's
//! offsets (ISR unknown) when a leader does not answer. Also what one
//! replica holds, for checking replicas against each other
//! (`GET /v1/internal/replicas/...`).

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, State};
use axum::Json;
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use crate::http::error::{ApiError, Params};
use crate::http::AppState;
use crate::partition::log::{ReadError, StoredBatch};
use crate::raft::types::NodeId;
use crate::storage::keys::GroupId;

/// A partition as its leader reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaderStatus {
    pub topic: String,
    pub partition: i32,
    /// The partition's Raft group: which incarnation of a topic name it is.
    pub group: GroupId,
    pub leader: NodeId,
    pub leader_term: u64,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// `None` when it comes from a follower's replica, not the leader.
    pub isr: Option<Vec<NodeId>>,
}

#[derive(Debug, Deserialize)]
pub struct LeadingQuery {
    /// Comma-separated topic names (a topic name has no comma); every topic
    /// when absent.
    topics: Option<String>,
}

/// `GET /v1/internal/leading?topics=a,b`: the partitions of these topics (of
/// every topic, without `topics`) this node leads. For other nodes, not for
/// users (not in the OpenAPI document).
pub async fn leading(
    State(api): State<AppState>,
    Params(q): Params<LeadingQuery>,
) -> Json<Vec<LeaderStatus>> {
    let Some(topics) = q.topics else {
        return Json(local(&api, |_| true, true));
    };
    let topics: BTreeSet<&str> = topics.split(',').filter(|t| !t.is_empty()).collect();
    Json(local(&api, |t| topics.contains(t), true))
}

/// This node's own copy of one partition, as `replica` answers it.
#[derive(Debug, Serialize)]
pub struct ReplicaDigest {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// Raft index of the last entry applied, and up to which the Raft log is
    /// purged (a replica that holds less must catch up by snapshot).
    pub raft_applied: Option<u64>,
    pub raft_purged: Option<u64>,
    /// The first Raft index of each of its segment files, oldest first.
    pub segments: Vec<u64>,
    /// On the leader: each voter's matched Raft index and the committed
    /// records it lacks (what its place in the ISR is decided by).
    pub followers: Vec<FollowerLag>,
    pub batches: Vec<StoredBatch>,
}

#[derive(Debug, Serialize)]
pub struct FollowerLag {
    pub node: u64,
    pub matched: Option<u64>,
    pub lag_records: u64,
}

/// `GET /v1/internal/replicas/{topic}/{partition}`: what this node's replica
/// stores (offset, length and CRC of every stored value), never forwarded —
/// how the fault tests check that every replica holds the same batches.
pub async fn replica(
    State(api): State<AppState>,
    Path((topic, partition)): Path<(String, i32)>,
) -> Result<Json<ReplicaDigest>, ApiError> {
    let h = api
        .node
        .partitions
        .get(&topic, partition)
        .ok_or_else(|| ApiError::not_found(format!("no replica of {topic}/{partition} here")))?;
    let offsets = h.log.offsets();
    let (raft_applied, raft_purged, matched) = {
        let m = h.raft.metrics();
        let m = m.borrow();
        (
            m.last_applied.map(|l| l.index),
            m.purged.map(|l| l.index),
            m.replication.clone().unwrap_or_default(),
        )
    };
    let followers = h
        .replica_lag()
        .into_iter()
        .map(|(node, lag_records)| FollowerLag {
            node,
            matched: matched.get(&node).copied().flatten().map(|l| l.index),
            lag_records,
        })
        .collect();
    let batches = h.log.digest().map_err(ReadError::from)?;
    Ok(Json(ReplicaDigest {
        log_start_offset: offsets.log_start_offset,
        high_watermark: offsets.high_watermark,
        raft_applied,
        raft_purged,
        segments: h.log.retained().segment_firsts(),
        followers,
        batches,
    }))
}

/// This node's replicas of topics passing `wanted`: those it leads, or with
/// `leading_only` false all of them.
fn local(api: &AppState, wanted: impl Fn(&str) -> bool, leading_only: bool) -> Vec<LeaderStatus> {
    let ctx = &api.node;
    let max_lag = ctx.config.replica_lag_max_records;
    ctx.partitions
        .all()
        .into_iter()
        .filter(|h| wanted(&h.topic))
        .filter_map(|h| {
            let leads = ctx.partitions.serves_as_leader(&h);
            if leading_only && !leads {
                return None;
            }
            let offsets = h.log.offsets();
            let (leader, term) = h.leader();
            Some(LeaderStatus {
                topic: h.topic.to_string(),
                partition: h.partition,
                group: h.group,
                leader: leader.unwrap_or(0),
                leader_term: term,
                high_watermark: offsets.high_watermark,
                log_start_offset: offsets.log_start_offset,
                isr: if leads { h.in_sync(|n| ctx.metadata.is_alive(n), max_lag) } else { None },
            })
        })
        .collect()
}

/// The status of every partition of `topics` that can be learnt: from its
/// leader, else from this node's replica.
pub async fn gather(api: &AppState, topics: &[String]) -> HashMap<(String, i32), LeaderStatus> {
    let ctx = &api.node;
    let state = ctx.metadata.state();
    let wanted = |t: &str| topics.iter().any(|w| w == t);
    let mut out: HashMap<(String, i32), LeaderStatus> =
        local(api, wanted, false).into_iter().map(|s| ((s.topic.clone(), s.partition), s)).collect();
    let mut leaders = BTreeSet::new();
    for t in topics {
        let count = state.topic(t).map_or(0, |t| t.partitions.len() as i32);
        for p in 0..count {
            if let Some((leader, _)) = ctx.routing.leader_of(t, p) {
                if leader != ctx.node_id {
                    leaders.insert(leader);
                }
            }
        }
    }
    let query = format!("/v1/internal/leading?topics={}", topics.join(","));
    let asks = leaders.into_iter().filter_map(|n| state.brokers.get(&n)).map(|b| {
        let query = query.clone();
        async move { api.peers.get_json::<Vec<LeaderStatus>>(&b.http_addr, &query).await.unwrap_or_default() }
    });
    // A topic deleted and created again under its name has new groups: what
    // a replica of the old one says is not about the new one.
    let current = |s: &LeaderStatus| {
        state
            .topic(&s.topic)
            .and_then(|t| t.partitions.get(usize::try_from(s.partition).ok()?))
            .is_some_and(|p| p.group == s.group)
    };
    for s in join_all(asks).await.into_iter().flatten().filter(|s| current(s)) {
        out.insert((s.topic.clone(), s.partition), s);
    }
    out.retain(|_, s| current(s));
    out
}
