//! GroupId → the handler its owner registered, for incoming RPCs; the
//! node's failure detector, which incoming pings feed, and its campaigns'
//! vote outcomes, which outgoing vote RPCs feed; and when a group on
//! openraft's timers last heard from its leader (`heard_leader`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

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
    /// When each group whose owner reports it (`heard_leader`) last took an
    /// AppendEntries from its leader.
    leader_heard: Mutex<HashMap<GroupId, Instant>>,
    born: Instant,
}

impl Registry {
    pub fn new(liveness: Arc<Liveness>) -> Self {
        Self {
            groups: RwLock::new(HashMap::new()),
            liveness,
            ballots: Arc::new(Ballots::new()),
            draining: AtomicBool::new(false),
            leader_heard: Mutex::new(HashMap::new()),
            born: Instant::now(),
        }
    }

    /// From now on, requests to campaign are refused.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// `group`'s leader sent it an AppendEntries (a heartbeat, maybe) now.
    pub fn heard_leader(&self, group: GroupId) {
        self.leader_heard.lock().unwrap_or_else(PoisonError::into_inner).insert(group, Instant::now());
    }

    /// How long since `group` last heard from its leader (`heard_leader`),
    /// or since this node started if never.
    pub fn leader_silent_for(&self, group: GroupId, now: Instant) -> Duration {
        let heard = self.leader_heard.lock().unwrap_or_else(PoisonError::into_inner).get(&group).copied();
        now.saturating_duration_since(heard.unwrap_or(self.born))
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
