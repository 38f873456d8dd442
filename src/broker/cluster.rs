//! Forming or joining the cluster, registering this broker, start-up
//! topics, and following the metadata's partition assignments.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use openraft::BasicNode;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metadata::command::MetaRaft;
use crate::metadata::command::{BrokerInfo, MetadataCommand};
use crate::metadata::handle::{MetadataHandle, NewTopic};
use crate::partition::manager::PartitionManager;
use crate::raft::types::NodeId;

use super::{BrokerError, LEADER_WAIT};

/// Joins an existing cluster as a broker that is not an initial voter.
pub(super) async fn join(metadata: &MetadataHandle, info: BrokerInfo) -> Result<(), BrokerError> {
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        match metadata.join(info.clone()).await {
            Ok(()) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::info!(error = %e, "waiting for the cluster to accept this broker");
            }
            Err(_) => return Err(BrokerError::NoLeader(LEADER_WAIT)),
        }
    }
    metadata
        .raft()
        .wait(Some(LEADER_WAIT))
        .metrics(|m| m.current_leader.is_some(), "metadata replicated to this learner")
        .await
        .map_err(|_| BrokerError::NoLeader(LEADER_WAIT))?;
    tracing::info!(node_id = info.id, "joined the cluster as a broker");
    Ok(())
}

/// Initialises the metadata group on the very first start (the lowest-id
/// voter does it, once) and waits until it has a leader.
pub(super) async fn form_metadata_group(
    config: &Config,
    raft: &MetaRaft,
    raft_addr: SocketAddr,
) -> Result<(), BrokerError> {
    let voters = config.voter_list();
    let initialized = raft.is_initialized().await?;
    let lowest = voters.iter().map(|v| v.id).min();
    if !initialized && lowest == Some(config.node_id) {
        let members: BTreeMap<NodeId, BasicNode> = voters
            .iter()
            .map(|v| {
                let addr = if v.id == config.node_id && config.voters.is_empty() {
                    raft_addr.to_string()
                } else {
                    v.raft_addr.clone()
                };
                (v.id, BasicNode::new(addr))
            })
            .collect();
        tracing::info!(voters = ?members.keys().collect::<Vec<_>>(), "initialising the metadata group");
        raft.initialize(members).await?;
    }
    raft.wait(Some(LEADER_WAIT))
        .metrics(|m| m.current_leader.is_some(), "metadata leader elected")
        .await
        .map_err(|_| BrokerError::NoLeader(LEADER_WAIT))?;
    Ok(())
}

/// Records the cluster id (first start) and this broker's listeners.
pub(super) async fn register(metadata: &MetadataHandle, info: BrokerInfo) {
    let state = metadata.state();
    if state.cluster_id.is_none() {
        let id = uuid::Uuid::new_v4().simple().to_string();
        if let Err(e) = metadata.propose(MetadataCommand::Init { cluster_id: id }).await {
            tracing::warn!(error = %e, "cannot set the cluster id");
        }
    }
    if state.brokers.get(&info.id) != Some(&info) {
        if let Err(e) = metadata.propose(MetadataCommand::RegisterBroker(info)).await {
            tracing::warn!(error = %e, "cannot register this broker");
        }
    }
}

pub(super) async fn follow_metadata(
    metadata: MetadataHandle,
    partitions: Arc<PartitionManager>,
    shutdown: CancellationToken,
) {
    let mut rx = metadata.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
        let state = rx.borrow_and_update().clone();
        partitions.reconcile(&state).await;
    }
}

/// Creates the `create_topics` of the config that do not exist yet, capping
/// the replication factor to the live brokers.
pub(super) async fn create_startup_topics(config: &Config, metadata: &MetadataHandle) {
    for spec in config.topic_specs() {
        if metadata.state().topic(&spec.name).is_some() {
            continue;
        }
        let requested = i32::from(spec.replication_factor);
        let rf = metadata.capped_replication(requested);
        if rf < requested {
            tracing::warn!(topic = %spec.name, requested, rf, "replication factor capped to live brokers");
        }
        let mut configs = BTreeMap::new();
        if let Some(policy) = &spec.cleanup_policy {
            configs.insert("cleanup.policy".to_string(), policy.clone());
        }
        let req = NewTopic {
            name: spec.name.clone(),
            partitions: spec.partitions,
            replication_factor: rf,
            configs,
        };
        match metadata.create_topic(&req, false).await {
            Ok(_) => {
                tracing::info!(topic = %spec.name, partitions = spec.partitions, replication_factor = rf, "created start-up topic")
            }
            Err(e) => {
                tracing::error!(topic = %spec.name, error = %e, "cannot create start-up topic")
            }
        }
    }
}
