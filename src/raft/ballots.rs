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
//!
//! That peer learns it too, from the request it refused (`raft::rpc`): it
//! need not wait for its turn, and campaigns at once (`out_logged`). Its
//! campaign asks for the term the refused candidate voted for itself in,
//! so it is refused in turn; a campaign refused for that reason alone, a
//! vote already cast in its term (`collided`), is repeated at once, one
//! term higher, where the shorter log's vote is free. Two candidates with
//! equal logs that collide (each voted for itself, as two replicas that
//! both found their turn come do) break the tie by id: the lower repeats
//! at once and wins, where both would wait out a retry and might collide
//! again.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::raft::types::{GroupId, NodeId};

#[derive(Debug, Default)]
pub struct Ballots {
    // std mutexes: a map update or lookup, never held across an await.
    outdone: Mutex<HashMap<GroupId, Instant>>,
    out_logged: Mutex<HashMap<GroupId, Instant>>,
    /// When a campaign collided, and with whose.
    collided: Mutex<HashMap<GroupId, (Instant, Option<NodeId>)>>,
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
        within(&self.outdone, group, window)
    }

    /// This node refused a candidate of `group` whose log is shorter.
    pub fn out_logged(&self, group: GroupId) {
        self.out_logged.lock().unwrap_or_else(PoisonError::into_inner).insert(group, Instant::now());
    }

    /// Whether this node refused a shorter log's candidate in `group`
    /// within `window`.
    pub fn out_logged_within(&self, group: GroupId, window: Duration) -> bool {
        within(&self.out_logged, group, window)
    }

    /// A peer of `group` refused this node's vote request only because it
    /// had voted for another candidate, `rival`, in the same term.
    pub fn collided(&self, group: GroupId, rival: Option<NodeId>) {
        self.collided.lock().unwrap_or_else(PoisonError::into_inner).insert(group, (Instant::now(), rival));
    }

    /// Whether a campaign of this node in `group` collided within `window`
    /// with a rival (`None`: unknown) for which `repeat` holds; forgotten
    /// once taken, so it buys one repeat.
    pub fn take_collided(
        &self,
        group: GroupId,
        window: Duration,
        repeat: impl FnOnce(Option<NodeId>) -> bool,
    ) -> bool {
        let mut m = self.collided.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = m.get(&group).is_some_and(|(at, rival)| at.elapsed() < window && repeat(*rival));
        if taken {
            m.remove(&group);
        }
        taken
    }
}

/// Whether `group` was noted in `map` within `window`; drops an old note.
fn within(map: &Mutex<HashMap<GroupId, Instant>>, group: GroupId, window: Duration) -> bool {
    let mut m = map.lock().unwrap_or_else(PoisonError::into_inner);
    match m.get(&group) {
        Some(at) if at.elapsed() < window => true,
        Some(_) => {
            m.remove(&group);
            false
        }
        None => false,
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

    #[test]
    fn a_collision_buys_one_repeat() {
        let b = Ballots::new();
        b.collided(7, Some(3));
        assert!(!b.take_collided(7, Duration::from_secs(1), |rival| rival < Some(3)), "not for this rival");
        assert!(b.take_collided(7, Duration::from_secs(1), |rival| rival == Some(3)), "kept until it serves");
        assert!(
            !b.take_collided(7, Duration::from_secs(1), |_| true),
            "taken: a second repeat needs a second collision"
        );
        b.out_logged(8);
        assert!(
            b.out_logged_within(8, Duration::from_secs(1)) && !b.out_logged_within(7, Duration::from_secs(1))
        );
    }
}
