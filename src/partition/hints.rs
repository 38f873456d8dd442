//! Partition leaders as other nodes report them, for a node that cannot
//! learn them through Raft: one cut off from the others (its replicas hear
//! of no election and its metadata state is stale) or one whose view names
//! no live leader. `http::hints` fills this from other nodes' admin APIs;
//! `PartitionManager::leader_of` weighs a hint like any other report, by
//! term. A hint is forgotten after `MAX_AGE`, so a node that heals goes back
//! to its own view. Hints are kept by Raft group, never by topic name: a
//! topic deleted and created again under its name gets new groups, and a
//! leader reported for the old one must not stand for the new one.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::raft::types::NodeId;
use crate::storage::keys::GroupId;

/// How long a reported leader is believed without being reported again.
pub const MAX_AGE: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
pub struct LeaderHints {
    hints: Mutex<HashMap<GroupId, Hint>>,
}

#[derive(Debug, Clone, Copy)]
struct Hint {
    leader: NodeId,
    term: u64,
    at: Instant,
}

impl LeaderHints {
    /// `leader` said it leads the partition of Raft group `group` in `term`
    /// (the newest term wins over an older report).
    pub fn record(&self, group: GroupId, leader: NodeId, term: u64) {
        let now = Instant::now();
        let mut hints = self.hints.lock().unwrap_or_else(PoisonError::into_inner);
        hints.retain(|_, h| now.duration_since(h.at) < MAX_AGE);
        let hint = hints.entry(group).or_insert(Hint { leader, term, at: now });
        if term >= hint.term {
            *hint = Hint { leader, term, at: now };
        }
    }

    /// The leader and term last reported for group `group`, if recent.
    pub fn get(&self, group: GroupId) -> Option<(NodeId, u64)> {
        let hints = self.hints.lock().unwrap_or_else(PoisonError::into_inner);
        let h = hints.get(&group)?;
        (h.at.elapsed() < MAX_AGE).then_some((h.leader, h.term))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_term_wins() {
        let hints = LeaderHints::default();
        assert_eq!(hints.get(7), None);
        hints.record(7, 2, 5);
        hints.record(7, 3, 4);
        assert_eq!(hints.get(7), Some((2, 5)));
        hints.record(7, 3, 6);
        assert_eq!(hints.get(7), Some((3, 6)));
        assert_eq!(hints.get(8), None);
    }
}
