//! Key layout: every key starts with the 8-byte big-endian group id, then an
//! 8-byte big-endian index (a Raft log index or a Kafka offset) or a one-byte
//! tag. Big-endian makes RocksDB's byte order equal numeric (group, index)
//! order, so a group's data is one contiguous range.

/// Raft group id: 0 is the metadata group, partitions get ids from 1 upward.
pub type GroupId = u64;

/// `group ++ index`, both big-endian.
pub fn indexed(group: GroupId, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// `group ++ tag`: single values kept per group (vote, state machine state).
pub fn tagged(group: GroupId, tag: u8) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8] = tag;
    key
}

/// The index part of an `indexed` key, or `None` for a key of another shape.
pub fn index_of(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(8..16)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// First key past every key of `group`: the exclusive end of its range.
pub fn group_end(group: GroupId) -> [u8; 8] {
    group.saturating_add(1).to_be_bytes()
}

/// First key of `group`.
pub fn group_start(group: GroupId) -> [u8; 8] {
    group.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn indexed_round_trips(g in any::<u64>(), i in any::<u64>()) {
            prop_assert_eq!(index_of(&indexed(g, i)), Some(i));
        }

        #[test]
        fn byte_order_is_numeric_order(g1 in 0u64..4, i1 in any::<u64>(), g2 in 0u64..4, i2 in any::<u64>()) {
            let a = indexed(g1, i1);
            let b = indexed(g2, i2);
            prop_assert_eq!(a.cmp(&b), (g1, i1).cmp(&(g2, i2)));
        }

        #[test]
        fn group_keys_stay_inside_group_range(g in 0u64..u64::MAX, i in any::<u64>(), t in any::<u8>()) {
            let k = indexed(g, i);
            prop_assert!(k.as_slice() >= group_start(g).as_slice());
            prop_assert!(k.as_slice() < group_end(g).as_slice());
            let t = tagged(g, t);
            prop_assert!(t.as_slice() < group_end(g).as_slice());
        }
    }
}
