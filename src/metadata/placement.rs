//! Replica placement (pure): partitions go round-robin over the live brokers,
//! each partition's replica list starting one broker further along, so both
//! replicas and preferred leaders (the first replica) spread evenly.

use crate::raft::types::NodeId;

/// Replica sets for `count` new partitions of replication `rf` over `brokers`
/// (sorted, live). `offset` is the number of partitions the topic already has,
/// so added partitions continue the rotation. Requires `rf <= brokers.len()`.
pub fn place(brokers: &[NodeId], count: usize, rf: usize, offset: usize) -> Vec<Vec<NodeId>> {
    let n = brokers.len();
    if n == 0 {
        return Vec::new();
    }
    (0..count)
        .map(|p| {
            (0..rf.min(n))
                .map(|r| brokers[(offset + p + r) % n])
                .collect()
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
            assert_eq!(
                s.iter().collect::<BTreeSet<_>>().len(),
                rf,
                "distinct replicas in {s:?}"
            );
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
                for count in [1, 2, 3, 6, 7, 50] {
                    check(&brokers, count, rf);
                }
            }
        }
    }

    #[test]
    fn added_partitions_continue_the_rotation() {
        let b = [1, 2, 3];
        let first = place(&b, 2, 1, 0);
        let more = place(&b, 1, 1, 2);
        assert_eq!(first, vec![vec![1], vec![2]]);
        assert_eq!(more, vec![vec![3]]);
    }
}
