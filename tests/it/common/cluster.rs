//! An in-process cluster: `n` brokers in this test's runtime, each on its own
//! data dir and Raft port, every node's Raft transport obeying one shared
//! table of cut and slowed links (`raft::network::LinkRule`), so failover and
//! catch-up tests run without processes or network namespaces.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use kafka_protocol::records::RecordBatchDecoder;
use raftka::broker::Broker;
use raftka::config::Config;
use raftka::raft::network::{Link, LinkRule};
use raftka::raft::types::{GroupId, NodeId};
use raftka::raft::wire::RpcKind;

use super::{free_port, test_config, wait_until};

/// Links between nodes, as every node's transport sees them.
#[derive(Default)]
struct Links {
    /// Nodes cut off from every other.
    isolated: HashSet<NodeId>,
    /// (from, to) links that deliver late.
    delayed: HashMap<(NodeId, NodeId), Duration>,
    /// (from, to, group): that group's AppendEntries are dropped on the
    /// link, everything else (pings, other groups) delivered.
    held: HashSet<(NodeId, NodeId, GroupId)>,
}

pub struct TestCluster {
    brokers: BTreeMap<NodeId, Option<Broker>>,
    configs: BTreeMap<NodeId, Config>,
    links: Arc<Mutex<Links>>,
    /// Raft address → node, for the link rule.
    by_addr: Arc<HashMap<String, NodeId>>,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts `n` voters (ids 1..=n) and waits until the metadata group has
    /// a leader.
    pub async fn start(n: u64, tweak: impl Fn(&mut Config)) -> Self {
        let mut cluster = Self::configure(n, tweak);
        // Voters wait for each other's votes: start them together.
        cluster.start_nodes(&cluster.ids()).await;
        cluster
    }

    /// `n` voters (ids 1..=n), configured but none started.
    pub fn configure(n: u64, tweak: impl Fn(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(NodeId, u16)> = (1..=n).map(|id| (id, free_port())).collect();
        let voters: Vec<String> = ports.iter().map(|(id, p)| format!("{id}@127.0.0.1:{p}")).collect();
        let mut configs = BTreeMap::new();
        for (id, port) in &ports {
            let mut c = test_config(dir.path().join(format!("node{id}")));
            c.node_id = *id;
            c.raft_addr = format!("127.0.0.1:{port}");
            c.voters = voters.clone();
            tweak(&mut c);
            configs.insert(*id, c);
        }
        let by_addr = Arc::new(configs.iter().map(|(id, c)| (c.raft_addr.clone(), *id)).collect());
        let brokers = configs.keys().map(|id| (*id, None)).collect();
        Self { brokers, configs, links: Arc::default(), by_addr, _dir: dir }
    }

    /// Starts the (stopped) nodes `ids` together, on their data dirs and
    /// Raft ports: each start waits for a metadata leader, which needs a
    /// majority of the voters.
    pub async fn start_nodes(&mut self, ids: &[NodeId]) {
        let configs = ids.iter().map(|id| self.configs.get(id).expect("known node").clone());
        let started = join_all(configs.map(Broker::start)).await;
        for (id, b) in ids.iter().copied().zip(started) {
            self.adopt(id, b.expect("broker starts"));
        }
    }

    fn install_rule(&self, me: NodeId, broker: &Broker) {
        let (links, by_addr) = (self.links.clone(), self.by_addr.clone());
        let rule: LinkRule = Arc::new(move |addr, req| {
            let Some(&to) = by_addr.get(addr) else { return Link::Deliver };
            let links = links.lock().unwrap_or_else(|e| e.into_inner());
            let held = req.kind == RpcKind::AppendEntries && links.held.contains(&(me, to, req.group));
            if held || links.isolated.contains(&me) || links.isolated.contains(&to) {
                Link::Drop
            } else {
                links.delayed.get(&(me, to)).map_or(Link::Deliver, |d| Link::Delay(*d))
            }
        });
        broker.transport().set_link_rule(Some(rule));
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.brokers.keys().copied().collect()
    }

    pub fn broker(&self, id: NodeId) -> &Broker {
        self.brokers.get(&id).and_then(Option::as_ref).expect("broker running")
    }

    pub fn kafka_addr(&self, id: NodeId) -> SocketAddr {
        self.broker(id).kafka_addr
    }

    /// Cuts `id` off from every other node, both ways.
    pub fn isolate(&self, id: NodeId) {
        self.links.lock().expect("links").isolated.insert(id);
    }

    pub fn heal(&self, id: NodeId) {
        self.links.lock().expect("links").isolated.remove(&id);
    }

    /// Drops `group`'s AppendEntries from `from` to `to` (its heartbeats
    /// among them) until `release_appends`; the nodes still hear each other.
    pub fn hold_appends(&self, from: NodeId, to: NodeId, group: GroupId) {
        self.links.lock().expect("links").held.insert((from, to, group));
    }

    pub fn release_appends(&self, from: NodeId, to: NodeId, group: GroupId) {
        self.links.lock().expect("links").held.remove(&(from, to, group));
    }

    /// Every request from `from` to `to` arrives `by` late.
    pub fn delay(&self, from: NodeId, to: NodeId, by: Duration) {
        self.links.lock().expect("links").delayed.insert((from, to), by);
    }

    /// The leader of `topic`/`partition` as `id`'s replica sees it.
    pub fn leader_seen_by(&self, id: NodeId, topic: &str, partition: i32) -> Option<NodeId> {
        self.broker(id).partitions.get(topic, partition).and_then(|h| h.leader().0)
    }

    /// Waits until every running node agrees on one leader of the partition
    /// that is not in `not`; returns it.
    pub async fn agreed_leader(&self, topic: &str, partition: i32, not: &[NodeId]) -> NodeId {
        let mut found = None;
        wait_until(Duration::from_secs(15), "the replicas to agree on a leader", || {
            let seen: HashSet<Option<NodeId>> = self
                .brokers
                .iter()
                .filter(|(id, b)| b.is_some() && !not.contains(id))
                .map(|(id, _)| self.leader_seen_by(*id, topic, partition))
                .collect();
            found = match seen.into_iter().collect::<Vec<_>>().as_slice() {
                [Some(l)] if !not.contains(l) => Some(*l),
                _ => None,
            };
            std::future::ready(found.is_some())
        })
        .await;
        found.expect("a leader")
    }

    /// Every record value in `id`'s own copy of the partition, in offset
    /// order, read from its log (not through a leader).
    pub fn replica_values(&self, id: NodeId, topic: &str, partition: i32) -> Vec<(i64, Bytes)> {
        let Some(h) = self.broker(id).partitions.get(topic, partition) else { return Vec::new() };
        let mut out = Vec::new();
        let mut offset = h.log.offsets().log_start_offset;
        loop {
            let read = h.log.read(offset, 4 * 1024 * 1024).expect("replica log reads");
            if read.batches == 0 {
                return out;
            }
            let mut bytes = Bytes::from(read.bytes);
            for set in RecordBatchDecoder::decode_all(&mut bytes).expect("stored batches decode") {
                for r in set.records {
                    offset = r.offset + 1;
                    out.push((r.offset, r.value.unwrap_or_default()));
                }
            }
        }
    }

    /// Graceful stop of one node; its data stays.
    pub async fn stop_node(&mut self, id: NodeId) {
        if let Some(b) = self.brokers.get_mut(&id).and_then(Option::take) {
            b.shutdown().await;
        }
    }

    /// Starts a stopped node again on its data dir and Raft port.
    pub async fn start_node(&mut self, id: NodeId) {
        self.start_nodes(&[id]).await;
    }

    /// Takes in node `id`, started outside the cluster (`Broker::start`
    /// with `config(id)`).
    pub fn adopt(&mut self, id: NodeId, b: Broker) {
        self.install_rule(id, &b);
        self.brokers.insert(id, Some(b));
    }

    /// The config node `id` starts with.
    pub fn config(&self, id: NodeId) -> &Config {
        self.configs.get(&id).expect("known node")
    }

    pub async fn shutdown(mut self) {
        for id in self.ids() {
            self.stop_node(id).await;
        }
    }
}
