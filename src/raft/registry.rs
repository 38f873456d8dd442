//! GroupId → the handler its owner registered, for incoming RPCs; and the
//! node's failure detector, which incoming pings feed, and its campaigns'
//! vote outcomes, which outgoing vote RPCs feed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::raft::ballots::Ballots;
use crate::raft::liveness::Liveness;
use crate::raft::rpc::GroupHandler;
use crate::raft::types::GroupId;

pub struct Registry {
    // A std lock: lookups and inserts only, never held across an await.
    groups: RwLock<HashMap<GroupId, Arc<dyn GroupHandler>>>,
    liveness: Arc<Liveness>,
    ballots: Arc<Ballots>,
    /// Set when the node starts shutting down: it hands its leaderships
    /// over and must not be asked to take one back meanwhile.
    draining: AtomicBool,
}

impl Registry {
    pub fn new(liveness: Arc<Liveness>) -> Self {
        Self {
            groups: RwLock::new(HashMap::new()),
            liveness,
            ballots: Arc::new(Ballots::new()),
            draining: AtomicBool::new(false),
        }
    }

    /// From now on, requests to campaign are refused.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn liveness(&self) -> &Arc<Liveness> {
        &self.liveness
    }

    pub fn ballots(&self) -> &Arc<Ballots> {
        &self.ballots
    }

    // The map holds only handles: a panic elsewhere cannot leave it half
    // written, so a poisoned lock is still good to use.
    pub fn register(&self, group: GroupId, handler: Arc<dyn GroupHandler>) {
        self.groups.write().unwrap_or_else(PoisonError::into_inner).insert(group, handler);
    }

    pub fn remove(&self, group: GroupId) {
        self.groups.write().unwrap_or_else(PoisonError::into_inner).remove(&group);
    }

    pub fn handler(&self, group: GroupId) -> Option<Arc<dyn GroupHandler>> {
        self.groups.read().unwrap_or_else(PoisonError::into_inner).get(&group).cloned()
    }
}
