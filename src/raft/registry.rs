//! GroupId → the local Raft handle that serves it, for incoming RPCs; and the
//! node's failure detector, which incoming pings feed, and its campaigns'
//! vote outcomes, which outgoing vote RPCs feed.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use crate::raft::ballots::Ballots;
use crate::raft::liveness::Liveness;
use crate::raft::types::{GroupId, MetaRaft, PartRaft};

pub struct Registry {
    metadata: OnceLock<MetaRaft>,
    // A std lock: lookups and inserts only, never held across an await.
    partitions: RwLock<HashMap<GroupId, PartRaft>>,
    liveness: Arc<Liveness>,
    ballots: Arc<Ballots>,
}

impl Registry {
    pub fn new(liveness: Arc<Liveness>) -> Self {
        Self {
            metadata: OnceLock::new(),
            partitions: RwLock::new(HashMap::new()),
            liveness,
            ballots: Arc::new(Ballots::new()),
        }
    }

    pub fn liveness(&self) -> &Arc<Liveness> {
        &self.liveness
    }

    pub fn ballots(&self) -> &Arc<Ballots> {
        &self.ballots
    }

    pub fn set_metadata(&self, raft: MetaRaft) {
        let _ = self.metadata.set(raft);
    }

    pub fn metadata(&self) -> Option<MetaRaft> {
        self.metadata.get().cloned()
    }

    pub fn insert(&self, group: GroupId, raft: PartRaft) {
        if let Ok(mut map) = self.partitions.write() {
            map.insert(group, raft);
        }
    }

    pub fn remove(&self, group: GroupId) -> Option<PartRaft> {
        self.partitions.write().ok()?.remove(&group)
    }

    pub fn partition(&self, group: GroupId) -> Option<PartRaft> {
        self.partitions.read().ok()?.get(&group).cloned()
    }
}
