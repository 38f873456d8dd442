//! What this node's own campaigns learned from their vote replies.
//!
//! Partition groups elect on `raft::leadership`'s schedule, not on
//! openraft's randomised timers, so openraft's own "seen a greater log, wait"
//! back-off never applies. Without it, a survivor that campaigns first with a
//! shorter log is refused, campaigns again, and keeps voting for itself in
//! exactly the terms the survivor with the longer log asks for: the two can
//! trade refusals for seconds. The outgoing vote RPC (`raft::network`) notes
//! here when a peer refused because its log is longer; the failover driver
//! then stands aside so that peer's next campaign wins at once.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::raft::types::GroupId;

#[derive(Debug, Default)]
pub struct Ballots {
    // A std mutex: a map update or lookup, never held across an await.
    outdone: Mutex<HashMap<GroupId, Instant>>,
}

impl Ballots {
    pub fn new() -> Self {
        Self::default()
    }

    /// A peer of `group` refused this node's vote request: its log is longer.
    pub fn outdone(&self, group: GroupId) {
        self.outdone.lock().unwrap_or_else(PoisonError::into_inner).insert(group, Instant::now());
    }

    /// Whether a campaign of this node in `group` was refused for a shorter
    /// log within `window`. Old entries are dropped as they are met.
    pub fn outdone_within(&self, group: GroupId, window: Duration) -> bool {
        let mut m = self.outdone.lock().unwrap_or_else(PoisonError::into_inner);
        match m.get(&group) {
            Some(at) if at.elapsed() < window => true,
            Some(_) => {
                m.remove(&group);
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_holds_for_its_window_only() {
        let b = Ballots::new();
        assert!(!b.outdone_within(7, Duration::from_secs(1)));
        b.outdone(7);
        assert!(b.outdone_within(7, Duration::from_secs(1)));
        assert!(!b.outdone_within(8, Duration::from_secs(1)));
        assert!(!b.outdone_within(7, Duration::ZERO));
        assert!(!b.outdone_within(7, Duration::from_secs(1)), "an expired entry is dropped");
    }
}
