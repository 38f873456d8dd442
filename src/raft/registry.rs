//! GroupId → the local Raft handle that serves it, for incoming RPCs.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use crate::raft::types::{GroupId, MetaRaft, PartRaft};

#[derive(Default)]
pub struct Registry {
    metadata: OnceLock<MetaRaft>,
    // A std lock: lookups and inserts only, never held across an await.
    partitions: RwLock<HashMap<GroupId, PartRaft>>,
}

impl Registry {
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
