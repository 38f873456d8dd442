//! The seeds: requests captured from real clients (`tests/corpus/kafka`,
//! written by `tests/corpus/capture.py`), each re-encoded at every version
//! the broker routes, and a default request for any (API, version) that no
//! capture reaches; the record batches those requests carry; and Raft frames
//! built from a live broker's own log entries.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use raftka::kafka::dispatch::ROUTES;

/// One framed request, length prefix included.
#[derive(Clone)]
pub struct Seed {
    pub api: ApiKey,
    pub version: i16,
    pub frame: Vec<u8>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/kafka")
}

fn captured() -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus/kafka exists (make fuzz-corpus writes it)")
        .flat_map(|client| std::fs::read_dir(client.expect("entry").path()).expect("client dir"))
        .map(|f| f.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    files.into_iter().map(|p| std::fs::read(p).expect("corpus file")).collect()
}

/// A request of `key` with every field at its default (but a Produce's
/// acks, whose default 0 asks for no answer).
fn default_request(key: ApiKey) -> Option<RequestKind> {
    if key == ApiKey::Produce {
        return Some(RequestKind::Produce(ProduceRequest::default().with_acks(-1)));
    }
    macro_rules! defaults {
        ($($k:ident => $t:ident),* $(,)?) => {
            match key {
                $(ApiKey::$k => Some(RequestKind::$k($t::default())),)*
                _ => None,
            }
        };
    }
    defaults!(
        Produce => ProduceRequest, Fetch => FetchRequest, ListOffsets => ListOffsetsRequest,
        Metadata => MetadataRequest, ApiVersions => ApiVersionsRequest, CreateTopics => CreateTopicsRequest,
        DeleteTopics => DeleteTopicsRequest, InitProducerId => InitProducerIdRequest,
        DescribeConfigs => DescribeConfigsRequest, CreatePartitions => CreatePartitionsRequest,
        FindCoordinator => FindCoordinatorRequest, JoinGroup => JoinGroupRequest, SyncGroup => SyncGroupRequest,
        Heartbeat => HeartbeatRequest, LeaveGroup => LeaveGroupRequest, OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest, DescribeGroups => DescribeGroupsRequest,
        ListGroups => ListGroupsRequest, DeleteGroups => DeleteGroupsRequest, OffsetDelete => OffsetDeleteRequest,
    )
}

/// `header` and `body` as a frame at `version`, if `body` fits that version.
fn frame(header: &RequestHeader, body: &RequestKind, key: ApiKey, version: i16) -> Option<Vec<u8>> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    let header = header.clone().with_request_api_key(key as i16).with_request_api_version(version);
    header.encode(&mut buf, key.request_header_version(version)).ok()?;
    body.encode(&mut buf, version).ok()?;
    let len = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    Some(buf.to_vec())
}

fn route_versions(key: ApiKey) -> impl Iterator<Item = i16> {
    ROUTES.iter().filter(move |r| r.key == key).flat_map(|r| r.min..=r.max)
}

/// Every captured request at every routed version it fits, then defaults for
/// what is still missing. Panics if a routed (API, version) has no seed.
pub fn kafka_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for raw in captured() {
        let mut body = Bytes::from(raw[4..].to_vec());
        let (Some(key), Some(version)) = (
            body.get(0..2).and_then(|b| ApiKey::try_from(i16::from_be_bytes([b[0], b[1]])).ok()),
            body.get(2..4).map(|b| i16::from_be_bytes([b[0], b[1]])),
        ) else {
            continue;
        };
        seeds.push(Seed { api: key, version, frame: raw.clone() });
        let Ok(header) = RequestHeader::decode(&mut body, key.request_header_version(version)) else {
            continue;
        };
        let Ok(request) = RequestKind::decode(key, &mut body, version) else { continue };
        for v in route_versions(key).filter(|&v| v != version) {
            if let Some(f) = frame(&header, &request, key, v) {
                seeds.push(Seed { api: key, version: v, frame: f });
            }
        }
    }
    let covered: BTreeSet<(i16, i16)> = seeds.iter().map(|s| (s.api as i16, s.version)).collect();
    let missing: Vec<Seed> =
        default_seeds().into_iter().filter(|d| !covered.contains(&(d.api as i16, d.version))).collect();
    seeds.extend(missing);
    seeds
}

/// A default request (every field at its default) for every routed API at
/// every routed version; versions the crate cannot encode (Produce v0-2,
/// which the broker refuses by version) are the lowest it can, relabelled.
pub fn default_seeds() -> Vec<Seed> {
    let header = RequestHeader::default().with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut seeds: Vec<Seed> = Vec::new();
    for route in ROUTES {
        let body = default_request(route.key)
            .unwrap_or_else(|| panic!("no default request for routed {:?}", route.key));
        let encodable: Vec<(i16, Vec<u8>)> = (route.min..=route.max)
            .filter_map(|v| frame(&header, &body, route.key, v).map(|f| (v, f)))
            .collect();
        let (_, lowest) =
            encodable.first().unwrap_or_else(|| panic!("no {:?} request encodes", route.key)).clone();
        for v in route.min..=route.max {
            let f = match encodable.iter().find(|(ev, _)| *ev == v) {
                Some((_, f)) => f.clone(),
                None => {
                    let mut f = lowest.clone();
                    f[6..8].copy_from_slice(&v.to_be_bytes());
                    f
                }
            };
            seeds.push(Seed { api: route.key, version: v, frame: f });
        }
    }
    seeds
}

/// The record batches the captured Produce requests carry, every codec.
pub fn batch_seeds(kafka: &[Seed]) -> Vec<Vec<u8>> {
    let mut batches = Vec::new();
    for seed in kafka.iter().filter(|s| s.api == ApiKey::Produce) {
        let mut body = Bytes::from(seed.frame[4..].to_vec());
        let Ok(_) = RequestHeader::decode(&mut body, ApiKey::Produce.request_header_version(seed.version))
        else {
            continue;
        };
        let Ok(req) = ProduceRequest::decode(&mut body, seed.version) else { continue };
        for topic in req.topic_data {
            for p in topic.partition_data {
                if let Some(records) = p.records.filter(|r| !r.is_empty()) {
                    batches.push(records.to_vec());
                }
            }
        }
    }
    batches.sort();
    batches.dedup();
    batches
}
