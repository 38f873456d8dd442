//! Who a group's members are: a join's arguments, a live member with its
//! session, and the durable parts (`MemberInfo`, `GroupSnapshot`) that
//! `group::records` persists.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{JoinResult, SyncResult};

/// A JoinGroup request, as the group sees it.
#[derive(Debug, Clone)]
pub struct JoinArgs {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets its id, then rejoins.
    pub require_known_id: bool,
}

/// A live member: who it is (what is persisted) and its session.
#[derive(Debug)]
pub struct Member {
    pub info: MemberInfo,
    pub(super) last_seen: Instant,
    pub(super) join: Option<oneshot::Sender<JoinResult>>,
    pub(super) sync: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    /// This member's subscription for `protocol`.
    pub fn metadata(&self, protocol: Option<&str>) -> Bytes {
        self.info
            .protocols
            .iter()
            .find(|(n, _)| Some(n.as_str()) == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp: i64,
}

/// Who a member is and what it asked for: the part of a member that is
/// persisted with the group (`group::records`; durations as milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberInfo {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    #[serde(with = "crate::codec::millis")]
    pub session_timeout: Duration,
    #[serde(with = "crate::codec::millis")]
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
}

/// The durable part of a group's membership.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupSnapshot {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<MemberInfo>,
}

/// The topics of a consumer-protocol subscription (empty if it is not one).
pub(super) fn subscribed_topics(mut meta: Bytes) -> Vec<kafka_protocol::protocol::StrBytes> {
    use bytes::Buf;
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    if meta.len() < 2 {
        return Vec::new();
    }
    let version = meta.get_i16().clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut meta, version).map(|s| s.topics).unwrap_or_default()
}
