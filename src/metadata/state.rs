//! The cluster metadata as a pure state machine: `apply` takes a command and
//! returns the result, with no clock, no randomness and no IO (STYLE.md §7).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::metadata::command::{BrokerInfo, LeaderReport, MetadataCommand, MetadataResponse, Rejection};
use crate::raft::types::{GroupId, NodeId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// The partition's Raft group.
    pub group: GroupId,
    /// Replica brokers; the first is the preferred leader.
    pub replicas: Vec<NodeId>,
    /// The last leader that reported itself, and its Raft term (the Kafka
    /// leader epoch). Replicas know fresher values from their own group.
    pub leader: Option<NodeId>,
    pub leader_term: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<PartitionInfo>,
    /// Overrides only; defaults come from `metadata::topic_config`.
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataState {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<NodeId, BrokerInfo>,
    pub topics: BTreeMap<String, TopicInfo>,
    pub next_group_id: GroupId,
    pub next_producer_id: i64,
}

impl Default for MetadataState {
    fn default() -> Self {
        Self {
            cluster_id: None,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            // Group 0 is the metadata group itself.
            next_group_id: 1,
            next_producer_id: 0,
        }
    }
}

impl MetadataState {
    pub fn apply(&mut self, cmd: MetadataCommand) -> MetadataResponse {
        match cmd {
            MetadataCommand::Init { cluster_id } => {
                self.cluster_id.get_or_insert(cluster_id);
                MetadataResponse::Done
            }
            MetadataCommand::RegisterBroker(info) => {
                self.brokers.insert(info.id, info);
                MetadataResponse::Done
            }
            MetadataCommand::CreateTopic { name, id, replicas, configs } => {
                if self.topics.contains_key(&name) {
                    return MetadataResponse::Rejected(Rejection::TopicExists(name));
                }
                let partitions = self.new_partitions(replicas);
                self.topics.insert(name.clone(), TopicInfo { name, id, partitions, configs });
                MetadataResponse::Done
            }
            MetadataCommand::DeleteTopic { name } => match self.topics.remove(&name) {
                Some(_) => MetadataResponse::Done,
                None => MetadataResponse::Rejected(Rejection::UnknownTopic(name)),
            },
            MetadataCommand::CreatePartitions { name, replicas } => {
                let Some(current) = self.topics.get(&name).map(|t| t.partitions.len()) else {
                    return MetadataResponse::Rejected(Rejection::UnknownTopic(name));
                };
                if replicas.is_empty() {
                    return MetadataResponse::Rejected(Rejection::PartitionsNotIncreasing {
                        current,
                        requested: current,
                    });
                }
                let added = self.new_partitions(replicas);
                if let Some(topic) = self.topics.get_mut(&name) {
                    topic.partitions.extend(added);
                }
                MetadataResponse::Done
            }
            MetadataCommand::AlterConfigs { name, set, delete } => match self.topics.get_mut(&name) {
                Some(topic) => {
                    for key in delete {
                        topic.configs.remove(&key);
                    }
                    topic.configs.extend(set);
                    MetadataResponse::Done
                }
                None => MetadataResponse::Rejected(Rejection::UnknownTopic(name)),
            },
            MetadataCommand::AllocateProducerIds { count } => {
                let first = self.next_producer_id;
                self.next_producer_id = first.saturating_add(count.max(1));
                MetadataResponse::ProducerIds { first }
            }
            MetadataCommand::ReportLeaders(reports) => {
                let reports: BTreeMap<GroupId, LeaderReport> =
                    reports.into_iter().map(|r| (r.group, r)).collect();
                for p in self.topics.values_mut().flat_map(|t| t.partitions.iter_mut()) {
                    // Terms only grow: a late report from a deposed leader loses.
                    if let Some(r) = reports.get(&p.group).filter(|r| r.term >= p.leader_term) {
                        p.leader = Some(r.leader);
                        p.leader_term = r.term;
                    }
                }
                MetadataResponse::Done
            }
        }
    }

    fn new_partitions(&mut self, replicas: Vec<Vec<NodeId>>) -> Vec<PartitionInfo> {
        replicas
            .into_iter()
            .map(|replicas| {
                let group = self.next_group_id;
                self.next_group_id += 1;
                PartitionInfo { group, replicas, leader: None, leader_term: 0 }
            })
            .collect()
    }

    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    /// Every partition replica hosted by `node`: (topic, partition index, info).
    pub fn replicas_on(&self, node: NodeId) -> impl Iterator<Item = (&str, i32, &PartitionInfo)> {
        self.topics.values().flat_map(move |t| {
            t.partitions
                .iter()
                .enumerate()
                .filter(move |(_, p)| p.replicas.contains(&node))
                .map(move |(i, p)| (t.name.as_str(), i as i32, p))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str, n: usize) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            name: name.into(),
            id: Uuid::nil(),
            replicas: vec![vec![1]; n],
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn create_topic_assigns_fresh_groups_and_rejects_duplicates() {
        let mut s = MetadataState::default();
        assert_eq!(s.apply(create("a", 2)), MetadataResponse::Done);
        assert_eq!(s.apply(create("b", 1)), MetadataResponse::Done);
        let groups: Vec<_> = s.topics.values().flat_map(|t| t.partitions.iter().map(|p| p.group)).collect();
        assert_eq!(groups, vec![1, 2, 3]);
        assert_eq!(s.apply(create("a", 1)), MetadataResponse::Rejected(Rejection::TopicExists("a".into())));
    }

    #[test]
    fn leader_reports_never_go_back_in_term() {
        let mut s = MetadataState::default();
        s.apply(create("a", 2));
        let report = |group, leader, term| LeaderReport { group, leader, term };
        s.apply(MetadataCommand::ReportLeaders(vec![report(1, 2, 5), report(2, 3, 1)]));
        s.apply(MetadataCommand::ReportLeaders(vec![report(1, 1, 4)]));
        let leaders: Vec<_> = s.topics["a"].partitions.iter().map(|p| (p.leader, p.leader_term)).collect();
        assert_eq!(leaders, vec![(Some(2), 5), (Some(3), 1)]);
    }

    #[test]
    fn recreated_topic_never_reuses_group_ids() {
        let mut s = MetadataState::default();
        s.apply(create("a", 1));
        s.apply(MetadataCommand::DeleteTopic { name: "a".into() });
        s.apply(create("a", 1));
        assert_eq!(s.topics["a"].partitions[0].group, 2);
    }

    #[test]
    fn create_partitions_appends_and_producer_ids_are_unique() {
        let mut s = MetadataState::default();
        s.apply(create("a", 1));
        s.apply(MetadataCommand::CreatePartitions { name: "a".into(), replicas: vec![vec![1], vec![1]] });
        assert_eq!(s.topics["a"].partitions.len(), 3);
        let a = s.apply(MetadataCommand::AllocateProducerIds { count: 10 });
        let b = s.apply(MetadataCommand::AllocateProducerIds { count: 10 });
        assert_eq!(a, MetadataResponse::ProducerIds { first: 0 });
        assert_eq!(b, MetadataResponse::ProducerIds { first: 10 });
    }
}
