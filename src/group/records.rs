//! The records of `__consumer_offsets`: keys and values are bincode (this
//! topic is raftka's own; Kafka's binary schemas would buy nothing, as no
//! tool reads it), wrapped in ordinary Kafka record batches so the topic is
//! replicated, retained and fetched like any other. A record with no value
//! is a tombstone: the offset or group it names is gone.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::codec;
use crate::partition::inflate::{self, InflateError};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::group::membership::{Committed, Group, GroupSnapshot};
use crate::partition::batch::{self, EncodeError, PlainRecord};
use crate::storage::StorageError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Key {
    Offset { group: String, topic: String, partition: i32 },
    Group { group: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp: i64,
}

/// A group's stored value: its durable membership, as `membership` keeps it.
pub type GroupValue = GroupSnapshot;

/// One write to the topic: a key and its new value, or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Offset { group: String, topic: String, partition: i32, value: Option<OffsetValue> },
    Group { group: String, value: Option<GroupValue> },
}

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("record batch: {0}")]
    Inflate(#[from] InflateError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl From<&Committed> for OffsetValue {
    fn from(c: &Committed) -> Self {
        Self {
            offset: c.offset,
            leader_epoch: c.leader_epoch,
            metadata: c.metadata.clone(),
            commit_timestamp: c.commit_timestamp,
        }
    }
}

/// One uncompressed record batch holding `entries`, in order.
pub fn encode(entries: &[Entry]) -> Result<Bytes, RecordsError> {
    let timestamp = now_ms();
    let records = entries
        .iter()
        .map(|e| {
            let (key, value) = match e {
                Entry::Offset { group, topic, partition, value } => (
                    Key::Offset { group: group.clone(), topic: topic.clone(), partition: *partition },
                    value.as_ref().map(|v| codec::encode("offset value", v)).transpose()?,
                ),
                Entry::Group { group, value } => (
                    Key::Group { group: group.clone() },
                    value.as_ref().map(|v| codec::encode("group value", v)).transpose()?,
                ),
            };
            Ok(PlainRecord {
                key: Some(Bytes::from(codec::encode("group key", &key)?)),
                value: value.map(Bytes::from),
                headers: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    Ok(batch::encode_plain(records, timestamp)?)
}

/// Replays stored batches into `groups`, in log order. Returns the offset
/// after the last record read. Records that do not decode are skipped with a
/// warning rather than failing the whole load.
pub fn replay(bytes: Bytes, groups: &mut HashMap<String, Group>, now: Instant) -> Result<i64, RecordsError> {
    let mut next = -1;
    for set in inflate::decode_all(bytes)? {
        for r in set.records {
            next = next.max(r.offset + 1);
            let Some(key) = r.key.as_ref().and_then(|k| codec::decode::<Key>("group key", k).ok()) else {
                tracing::warn!(offset = r.offset, "skipping an unreadable __consumer_offsets record");
                continue;
            };
            apply(groups, key, r.value.as_deref(), now);
        }
    }
    Ok(next)
}

fn apply(groups: &mut HashMap<String, Group>, key: Key, value: Option<&[u8]>, now: Instant) {
    match key {
        Key::Offset { group, topic, partition } => {
            let value = value.and_then(|v| codec::decode::<OffsetValue>("offset value", v).ok());
            let g = groups.entry(group.clone()).or_insert_with(|| Group::new(&group));
            match value {
                Some(v) => {
                    g.offsets.insert(
                        (topic, partition),
                        Committed {
                            offset: v.offset,
                            leader_epoch: v.leader_epoch,
                            metadata: v.metadata,
                            commit_timestamp: v.commit_timestamp,
                        },
                    );
                }
                None => {
                    g.offsets.remove(&(topic, partition));
                }
            }
            if g.is_vacant() {
                groups.remove(&group);
            }
        }
        Key::Group { group } => {
            match value.and_then(|v| codec::decode::<GroupValue>("group value", v).ok()) {
                Some(v) => {
                    let offsets = groups.remove(&group).map(|g| g.offsets).unwrap_or_default();
                    let mut g = Group::restore(&group, v, now);
                    g.offsets = offsets;
                    groups.insert(group, g);
                }
                None => {
                    groups.remove(&group);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_groups_replay_with_tombstones() {
        let off = |p: i32, o: Option<i64>| Entry::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: p,
            value: o.map(|offset| OffsetValue {
                offset,
                leader_epoch: 3,
                metadata: None,
                commit_timestamp: 1,
            }),
        };
        let gv = GroupValue {
            generation: 4,
            protocol_type: Some("consumer".into()),
            protocol: None,
            leader: None,
            members: vec![],
        };
        let first = encode(&[
            off(0, Some(10)),
            off(1, Some(20)),
            Entry::Group { group: "g".into(), value: Some(gv) },
        ])
        .unwrap();
        let second = encode(&[off(1, None), off(0, Some(11))]).unwrap();
        let mut groups = HashMap::new();
        let now = Instant::now();
        assert_eq!(replay(first, &mut groups, now).unwrap(), 3);
        replay(second, &mut groups, now).unwrap();
        let g = &groups["g"];
        assert_eq!(g.generation, 4);
        assert_eq!(g.offsets.len(), 1);
        assert_eq!(g.offsets[&("t".to_string(), 0)].offset, 11);

        replay(
            encode(&[off(0, None), Entry::Group { group: "g".into(), value: None }]).unwrap(),
            &mut groups,
            now,
        )
        .unwrap();
        assert!(groups.is_empty(), "tombstones remove the group");
    }
}
