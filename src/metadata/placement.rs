//! Replica placement (pure). Leaders (first replicas) go round-robin over the
//! live brokers; each follower slot goes to the broker hosting the fewest
//! replicas so far, ties broken towards brokers that led most recently (the
//! ones furthest from leading again), which keeps both leaders and replicas
//! within one of an even share for any partition count (checked below against
//! a naive oracle).

use crate::raft::types::NodeId;

/// Replica sets for `count` new partitions of replication `rf` over `brokers`
/// (sorted, live). `offset` rotates where leadership starts, so topics and
/// added partitions do not all begin on the same broker.
pub fn place(brokers: &[NodeId], count: usize, rf: usize, offset: usize) -> Vec<Vec<NodeId>> {
    let n = brokers.len();
    if n == 0 {
        return Vec::new();
    }
    let mut hosted = vec![0usize; n];
    (0..count)
        .map(|p| {
            let leader = (offset + p) % n;
            hosted[leader] += 1;
            let mut followers: Vec<usize> = (0..n).filter(|&b| b != leader).collect();
            followers.sort_by_key(|&b| (hosted[b], n - (b + n - leader) % n));
            let mut set = vec![brokers[leader]];
            for &b in followers.iter().take(rf.min(n).saturating_sub(1)) {
                hosted[b] += 1;
                set.push(brokers[b]);
            }
            set
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// The naive oracle: every replica set has `rf` distinct brokers, and no
    /// broker leads or hosts more than its fair share rounded up.
    fn check(brokers: &[NodeId], count: usize, rf: usize) {
        let sets = place(brokers, count, rf, 0);
        assert_eq!(sets.len(), count);
        let mut leaders: BTreeMap<NodeId, usize> = BTreeMap::new();
        let mut hosted: BTreeMap<NodeId, usize> = BTreeMap::new();
        for s in &sets {
            assert_eq!(s.iter().collect::<BTreeSet<_>>().len(), rf, "distinct replicas in {s:?}");
            *leaders.entry(s[0]).or_default() += 1;
            for b in s {
                *hosted.entry(*b).or_default() += 1;
            }
        }
        let n = brokers.len();
        assert!(leaders.values().all(|&l| l <= count.div_ceil(n)));
        assert!(hosted.values().all(|&h| h <= (count * rf).div_ceil(n)));
    }

    #[test]
    fn placement_is_balanced_for_many_shapes() {
        for n in 1..=5u64 {
            let brokers: Vec<NodeId> = (1..=n).collect();
            for rf in 1..=n as usize {
                for count in 1..60 {
                    check(&brokers, count, rf);
                }
            }
        }
    }

    #[test]
    fn offset_rotates_the_first_leader() {
        let b = [1, 2, 3];
        assert_eq!(place(&b, 2, 1, 0), vec![vec![1], vec![2]]);
        assert_eq!(place(&b, 1, 1, 2), vec![vec![3]]);
        assert_eq!(place(&b, 1, 3, 1)[0][0], 2);
    }
}
