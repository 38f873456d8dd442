//! Failover and catch-up on an in-process three-node cluster
//! (`common::cluster`), with links cut and slowed by the transport's link
//! rule: every acknowledged record must end up, in order, in every replica's
//! own log.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::Compression;

use crate::common::cluster::TestCluster;
use crate::common::ops::{create_replicated_topic, produce, records};
use crate::common::{wait_until, Client};

/// Produces `values` one batch each to the node at `addr`, asserting every
/// one is acknowledged; returns their offsets.
async fn produce_all(
    addr: std::net::SocketAddr,
    topic: &str,
    values: impl Iterator<Item = String>,
) -> Vec<i64> {
    let mut c = Client::connect(addr).await;
    let mut offsets = Vec::new();
    for v in values {
        let (code, offset) = produce(&mut c, topic, 0, records(&[&v], 1_000, Compression::None)).await;
        assert_eq!(code, 0, "produce of {v} acknowledged");
        offsets.push(offset);
    }
    offsets
}

/// Waits until `id`'s replica holds exactly `expected` (offset, value) pairs.
async fn replica_holds(cluster: &TestCluster, id: u64, topic: &str, expected: &[(i64, Bytes)]) {
    let what = format!("node {id}'s replica to hold the {} acknowledged records", expected.len());
    wait_until(Duration::from_secs(20), &what, || {
        std::future::ready(cluster.replica_values(id, topic, 0) == expected)
    })
    .await;
}

fn acknowledged(offsets: &[i64], values: &[String]) -> Vec<(i64, Bytes)> {
    offsets.iter().zip(values).map(|(o, v)| (*o, Bytes::from(v.clone()))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_off_leader_is_replaced_and_catches_up_once_healed() {
    let cluster = TestCluster::start(3, |_| {}).await;
    let mut c = Client::connect(cluster.kafka_addr(1)).await;
    assert_eq!(create_replicated_topic(&mut c, "failover", 1, 3, &[]).await, 0);
    let old = cluster.agreed_leader("failover", 0, &[]).await;

    let before: Vec<String> = (0..50).map(|i| format!("before-{i}")).collect();
    let mut offsets = produce_all(cluster.kafka_addr(old), "failover", before.iter().cloned()).await;

    cluster.isolate(old);
    let new = cluster.agreed_leader("failover", 0, &[old]).await;
    assert_ne!(new, old);
    let after: Vec<String> = (0..50).map(|i| format!("after-{i}")).collect();
    offsets.extend(produce_all(cluster.kafka_addr(new), "failover", after.iter().cloned()).await);
    let values: Vec<String> = before.into_iter().chain(after).collect();
    let expected = acknowledged(&offsets, &values);
    assert_eq!(offsets, (0..100).collect::<Vec<i64>>(), "offsets continue across the failover");

    cluster.heal(old);
    for id in cluster.ids() {
        replica_holds(&cluster, id, "failover", &expected).await;
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_replica_behind_a_slow_link_catches_up_from_the_log() {
    let mut cluster = TestCluster::start(3, |_| {}).await;
    let mut c = Client::connect(cluster.kafka_addr(1)).await;
    assert_eq!(create_replicated_topic(&mut c, "catch-up", 1, 3, &[]).await, 0);
    let leader = cluster.agreed_leader("catch-up", 0, &[]).await;
    let follower = cluster.ids().into_iter().find(|id| *id != leader).expect("a follower");

    cluster.stop_node(follower).await;
    // The follower's stop may have been a no-op for leadership; find it again.
    let leader = cluster.agreed_leader("catch-up", 0, &[follower]).await;
    let values: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
    let offsets = produce_all(cluster.kafka_addr(leader), "catch-up", values.iter().cloned()).await;
    let expected = acknowledged(&offsets, &values);

    // Everything the leader sends the returning follower arrives late.
    cluster.delay(leader, follower, Duration::from_millis(150));
    cluster.start_node(follower).await;
    replica_holds(&cluster, follower, "catch-up", &expected).await;
    for id in cluster.ids() {
        replica_holds(&cluster, id, "catch-up", &expected).await;
    }
    cluster.shutdown().await;
}
