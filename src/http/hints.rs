//! Asking the other nodes who leads what, when Raft cannot tell this node:
//! while it hears from no majority of brokers, or knows no live leader for
//! some partition, it asks every other broker's `GET /v1/internal/leading`
//! a few times a second and records their answers in `partition::hints`, so
//! its Kafka `Metadata` names the leaders the majority elected. Raft traffic
//! may be cut while the admin port still answers (a partition of the Raft
//! network, a peer's Raft port firewalled); when nothing answers, the node
//! names the last leaders it knew (`PartitionManager::leader_of`).

use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::http::status::LeaderStatus;
use crate::http::AppState;

/// How often the need to ask is checked, and the others asked while it lasts.
const INTERVAL: Duration = Duration::from_millis(200);
/// How long one node's answer is waited for.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);

pub async fn run(api: AppState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ctx = &api.node;
        let state = ctx.metadata.state();
        if !ctx.partitions.needs_hints(&state) {
            continue;
        }
        let mut asks: FuturesUnordered<_> = state
            .brokers
            .iter()
            .filter(|(id, _)| **id != ctx.node_id)
            .map(|(_, b)| {
                api.peers.get_json_within::<Vec<LeaderStatus>>(
                    &b.http_addr,
                    "/v1/internal/leading",
                    ASK_TIMEOUT,
                )
            })
            .collect();
        // Each answer counts as it comes: a paused node does not hold back
        // what the others said.
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                answer = asks.next() => match answer {
                    Some(Some(leading)) => {
                        for s in leading {
                            ctx.partitions.hints().record(s.group, s.leader, s.leader_term);
                        }
                    }
                    Some(None) => {}
                    None => break,
                },
            }
        }
    }
}
