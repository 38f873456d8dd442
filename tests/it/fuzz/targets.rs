//! The three targets and their tests (each a slice in `make test`, the full
//! count under `make fuzz`).

use std::ops::RangeBounds;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::records::Compression;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest, VoteResponse,
};
use openraft::storage::RaftLogReader;
use openraft::{SnapshotMeta, Vote};
use raftka::codec;
use raftka::kafka::dispatch::dispatch;
use raftka::metadata::command::MetaConfig;
use raftka::metadata::forward::{ForwardReply, ForwardRequest};
use raftka::metadata::handle::NewTopic;
use raftka::net::{Budget, FrameReader};
use raftka::node::Node;
use raftka::partition::command::PartConfig;
use raftka::partition::{batch, inflate};
use raftka::protocol::header::decode_request;
use raftka::raft::log_store::LogStore;
use raftka::raft::types::{NodeId, METADATA_GROUP};
use raftka::raft::wire::{self, RpcKind, RpcReply, RpcRequest};

use crate::common::{ops, Client, TestBroker};
use crate::fuzz::corpus::{batch_seeds, kafka_seeds};
use crate::fuzz::mutate::mutate;
use crate::fuzz::rng::Rng;
use crate::fuzz::{guarded, input_count, run_seed, Findings, Tracked};

/// Allocation bounds (see the module doc of `fuzz`): an in-memory request
/// element may be a few hundred bytes for one byte of input.
const KAFKA_RATIO: usize = 512;
const KAFKA_FLOOR: usize = 4 << 20;
const RAFT_RATIO: usize = 256;
const RAFT_FLOOR: usize = 1 << 20;
const BATCH_RATIO: usize = 512;
const BATCH_FLOOR: usize = 64 << 10;
/// Inputs dispatched at once, and how long one may wait (a Fetch's
/// `max_wait_ms`, a JoinGroup waiting for its group).
const IN_FLIGHT: usize = 64;
const DISPATCH_WAIT: Duration = Duration::from_millis(300);
const MAX_FRAME: usize = 1 << 20;

fn fix_length(frame: &mut [u8]) {
    if frame.len() >= 4 {
        let len = (frame.len() - 4) as i32;
        frame[0..4].copy_from_slice(&len.to_be_bytes());
    }
}

/// Frames out of `input`, each decoded and dispatched; true if one got an
/// answer (or was still being served when its wait ran out).
async fn serve_input(ctx: Arc<Node>, budget: Arc<Budget>, input: Arc<Vec<u8>>) -> bool {
    let mut frames = FrameReader::new(&input[..], MAX_FRAME, Duration::from_secs(1));
    let mut deep = false;
    while let Ok(Some(frame)) = frames.next(&budget).await {
        let Ok(request) = decode_request(frame.body) else { break };
        match tokio::time::timeout(DISPATCH_WAIT, dispatch(&ctx, request, "/fuzz")).await {
            Ok(Ok(_)) | Err(_) => deep = true,
            Ok(Err(_)) => break,
        }
    }
    deep
}

/// Topics the captured requests name, so produce and fetch reach the log.
async fn create_corpus_topics(b: &TestBroker) {
    for client in ["kp3", "kp2", "confluent", "aiokafka", "kcat"] {
        let name = format!("corpus-{client}-topic");
        let topic = NewTopic {
            name: name.clone(),
            partitions: 3,
            replication_factor: 1,
            configs: Default::default(),
        };
        b.broker().metadata.create_topic(&topic, false).await.expect("create corpus topic");
        assert!(b.broker().node().routing.wait_for_leaders(&name, Duration::from_secs(10)).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_requests() {
    let b = TestBroker::start_with(|c| {
        c.socket_request_max_bytes = MAX_FRAME;
        c.fetch_max_bytes = 1 << 20;
        // Mutated CreateTopics and auto-created topics stop here.
        c.max_partitions = 300;
        c.offsets_topic_num_partitions = 3;
    })
    .await;
    create_corpus_topics(&b).await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(ops::create_topic(&mut c, "after-the-fuzz", 1, &[]).await, 0);
    let ctx = b.broker().node().clone();
    let budget = Arc::new(Budget::new(64 << 20));
    let seeds = kafka_seeds();
    let frames: Vec<Vec<u8>> = seeds.iter().map(|s| s.frame.clone()).collect();
    let (n, seed) = (input_count(), run_seed());
    let started = Instant::now();
    let mut found = Findings::default();
    let mut running = FuturesUnordered::new();
    for i in 0..n {
        let mut rng = Rng::new(seed ^ i.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let base = rng.pick(&seeds).frame.clone();
        let mut input = mutate(&mut rng, &base, &frames);
        if rng.chance(80) {
            fix_length(&mut input);
        }
        if rng.chance(5) {
            input.extend_from_slice(&rng.pick(&seeds).frame);
        }
        let input = Arc::new(input);
        let run = Tracked::new(serve_input(ctx.clone(), budget.clone(), input.clone()));
        running.push(async move { (i, input, run.await) });
        while running.len() >= IN_FLIGHT {
            if let Some((i, input, (outcome, largest))) = running.next().await {
                found.record(i, &input, outcome, largest, (KAFKA_RATIO * input.len()).max(KAFKA_FLOOR));
            }
        }
    }
    while let Some((i, input, (outcome, largest))) = running.next().await {
        found.record(i, &input, outcome, largest, (KAFKA_RATIO * input.len()).max(KAFKA_FLOOR));
    }
    found.report("kafka", started);
    // The broker still serves a real client afterwards, on a topic made
    // before the run (the corpus deletes its own topics, and mutated
    // creates use up the partition limit).
    let batch = ops::records(&["still serving"], 1, Compression::None);
    assert_eq!(ops::produce(&mut c, "after-the-fuzz", 0, batch).await, (0, 0), "produce after the fuzz");
    b.stop().await;
}

/// Fixes a mutated batch's CRC (and sometimes its length), so most inputs
/// get past the checksum to the records.
fn fix_batch(rng: &mut Rng, b: &mut [u8]) {
    if b.len() < batch::HEADER_LEN {
        return;
    }
    if rng.chance(50) {
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
    }
    let declared = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    let end = usize::try_from(declared).map_or(b.len(), |l| (l + 12).min(b.len()));
    if end > 21 {
        let crc = crc32c::crc32c(&b[21..end]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

#[test]
fn record_batches() {
    let seeds = {
        let mut s = batch_seeds(&kafka_seeds());
        // The broker's own batches (group records, REST produce) too.
        let plain = batch::encode_plain(
            vec![batch::PlainRecord { key: Some("k".into()), value: Some("v".into()), headers: vec![] }],
            1,
        )
        .expect("encode");
        s.push(plain.to_vec());
        s
    };
    let codecs: std::collections::BTreeSet<i16> =
        seeds.iter().map(|b| i16::from_be_bytes([b[21], b[22]]) & 7).collect();
    assert_eq!(codecs.len(), 5, "seeds in every codec: {codecs:?}");
    let (n, seed) = (input_count(), run_seed());
    let started = Instant::now();
    let mut found = Findings::default();
    for i in 0..n {
        let mut rng = Rng::new(seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let base = rng.pick(&seeds).clone();
        let mut input = mutate(&mut rng, &base, &seeds);
        if rng.chance(80) {
            fix_batch(&mut rng, &mut input);
        }
        let (outcome, largest) = guarded(|| {
            let bytes = Bytes::from(input.clone());
            let mut deep = false;
            if let Ok(batches) = batch::validate(&bytes) {
                deep = true;
                for (header, b) in &batches {
                    let _ = batch::check_records(header, b);
                    let _ = inflate::decode(b);
                }
            }
            let _ = inflate::decode_all(bytes);
            deep
        });
        let compressed = input.get(21..23).is_some_and(|a| i16::from_be_bytes([a[0], a[1]]) & 7 != 0);
        let allowed = BATCH_RATIO * input.len()
            + if compressed { 2 * inflate::limit_for(input.len()) } else { BATCH_FLOOR };
        found.record(i, &input, outcome, largest, allowed);
    }
    found.report("batches", started);
}

fn raft_frame(group: u64, kind: RpcKind, body: Vec<u8>) -> Vec<u8> {
    let encoded = codec::encode("rpc", &RpcRequest { group, kind, body: body.into() }).expect("encode");
    let mut frame = (encoded.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&encoded);
    frame
}

async fn entries<C, R>(store: &mut LogStore<C>, range: R) -> Vec<C::Entry>
where
    C: openraft::RaftTypeConfig<NodeId = NodeId>,
    LogStore<C>: RaftLogReader<C>,
    R: RangeBounds<u64> + Clone + std::fmt::Debug + Send,
{
    store.try_get_log_entries(range).await.expect("log entries")
}

/// Real Raft traffic's shapes, built from a live broker's own log: appends
/// of metadata and partition entries, votes, snapshots, forwarded writes,
/// pings, and the replies to each.
async fn raft_seeds() -> Vec<Vec<u8>> {
    let b = TestBroker::start().await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(ops::create_topic(&mut c, "raft-seed", 2, &[]).await, 0);
    for i in 0..5 {
        let batch =
            ops::records(&["a", "b", "c"], i, if i % 2 == 0 { Compression::Lz4 } else { Compression::None });
        assert_eq!(ops::produce(&mut c, "raft-seed", 0, batch).await.0, 0);
    }
    let storage = b.broker().storage().clone();
    let state = b.broker().metadata.state();
    let group = state.topic("raft-seed").expect("topic").partitions[0].group;
    let mut meta_log = LogStore::<MetaConfig>::new(storage.clone(), METADATA_GROUP);
    // A partition's entries are in its segment files, which its replica's
    // `Retained` owns.
    let replica = b.broker().partitions.get("raft-seed", 0).expect("replica");
    let mut part_log =
        LogStore::<PartConfig>::retaining(storage.clone(), group, replica.log.retained().clone());
    let meta = entries(&mut meta_log, 0..).await;
    let part = entries(&mut part_log, 0..).await;
    assert!(!meta.is_empty() && !part.is_empty());
    let vote = Vote::new_committed(3, 1);
    let enc = |what, v: &dyn erased::Encode| v.encode(what);
    let mut seeds = Vec::new();
    for chunk in meta.chunks(4) {
        let req = AppendEntriesRequest::<MetaConfig> {
            vote,
            prev_log_id: chunk.first().map(|e| e.log_id),
            entries: chunk.to_vec(),
            leader_commit: chunk.last().map(|e| e.log_id),
        };
        seeds.push(raft_frame(METADATA_GROUP, RpcKind::AppendEntries, enc("append", &req)));
    }
    for chunk in part.chunks(3) {
        let req = AppendEntriesRequest::<PartConfig> {
            vote,
            prev_log_id: None,
            entries: chunk.to_vec(),
            leader_commit: chunk.last().map(|e| e.log_id),
        };
        seeds.push(raft_frame(group, RpcKind::AppendEntries, enc("append", &req)));
    }
    let last = part.last().map(|e| e.log_id);
    seeds.push(raft_frame(
        group,
        RpcKind::Vote,
        enc("vote", &VoteRequest::<NodeId> { vote, last_log_id: last }),
    ));
    let snapshot = InstallSnapshotRequest::<PartConfig> {
        vote,
        meta: SnapshotMeta {
            last_log_id: last,
            last_membership: Default::default(),
            snapshot_id: "1-2-3".into(),
        },
        offset: 0,
        data: enc("entries", &part),
        done: true,
    };
    seeds.push(raft_frame(group, RpcKind::InstallSnapshot, enc("snapshot", &snapshot)));
    for cmd in meta.iter().filter_map(|e| match &e.payload {
        openraft::EntryPayload::Normal(cmd) => Some(cmd.clone()),
        _ => None,
    }) {
        seeds.push(raft_frame(METADATA_GROUP, RpcKind::Forward, enc("forward", &ForwardRequest::Write(cmd))));
    }
    seeds.push(raft_frame(METADATA_GROUP, RpcKind::Ping, enc("ping", &7u64)));
    seeds.push(raft_frame(group, RpcKind::Elect, Vec::new()));
    // Replies, as a node's client side reads them.
    let reply = |body: Vec<u8>| {
        let encoded = codec::encode("reply", &RpcReply::Ok(body.into())).expect("encode");
        let mut frame = (encoded.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&encoded);
        frame
    };
    let append_ok: Result<AppendEntriesResponse<NodeId>, openraft::error::RaftError<NodeId>> =
        Ok(AppendEntriesResponse::Success);
    seeds.push(reply(enc("reply", &append_ok)));
    let vote_ok: Result<VoteResponse<NodeId>, openraft::error::RaftError<NodeId>> =
        Ok(VoteResponse { vote, vote_granted: true, last_log_id: last });
    seeds.push(reply(enc("reply", &vote_ok)));
    b.stop().await;
    seeds
}

/// Object-safe encoding, so the seeds above can be listed in one place.
mod erased {
    pub trait Encode {
        fn encode(&self, what: &'static str) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Encode for T {
        fn encode(&self, what: &'static str) -> Vec<u8> {
            raftka::codec::encode(what, self).expect("encode seed")
        }
    }
}

/// Every way the Raft listener and client decode a frame's body.
fn decode_bodies(body: &[u8]) -> bool {
    let Ok(req) = wire::decode::<RpcRequest>(body) else {
        if let Ok(Ok(inner)) = wire::decode::<RpcReply>(body) {
            let _ = codec::decode::<Result<AppendEntriesResponse<NodeId>, openraft::error::RaftError<NodeId>>>(
                "r", &inner,
            );
            let _ = codec::decode::<Result<VoteResponse<NodeId>, openraft::error::RaftError<NodeId>>>(
                "r", &inner,
            );
            let _ = codec::decode::<ForwardReply>("r", &inner);
            return true;
        }
        return false;
    };
    let b = &req.body[..];
    match req.kind {
        RpcKind::AppendEntries => {
            let _ = codec::decode::<AppendEntriesRequest<MetaConfig>>("a", b);
            let _ = codec::decode::<AppendEntriesRequest<PartConfig>>("a", b);
        }
        RpcKind::InstallSnapshot => {
            let _ = codec::decode::<InstallSnapshotRequest<MetaConfig>>("s", b);
            let _ = codec::decode::<InstallSnapshotRequest<PartConfig>>("s", b);
        }
        RpcKind::Vote => {
            let _ = codec::decode::<VoteRequest<NodeId>>("v", b);
        }
        RpcKind::Forward => {
            let _ = codec::decode::<ForwardRequest>("f", b);
        }
        RpcKind::Ping => {
            let _ = raftka::raft::liveness::ping_sender(b);
        }
        RpcKind::Elect => {}
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_frames() {
    let seeds = raft_seeds().await;
    let budget = Budget::new(64 << 20);
    let (n, seed) = (input_count(), run_seed());
    let started = Instant::now();
    let mut found = Findings::default();
    for i in 0..n {
        let mut rng = Rng::new(seed ^ i.wrapping_mul(0xd6e8_feb8_6659_fd93));
        let base = rng.pick(&seeds).clone();
        let mut input = mutate(&mut rng, &base, &seeds);
        if rng.chance(80) {
            fix_length(&mut input);
        }
        let (outcome, largest) = Tracked::new(async {
            let mut frames = FrameReader::new(&input[..], 256 << 20, Duration::from_secs(1));
            let mut deep = false;
            while let Ok(Some(frame)) = frames.next(&budget).await {
                deep |= decode_bodies(&frame.body);
            }
            deep
        })
        .await;
        found.record(i, &input, outcome, largest, (RAFT_RATIO * input.len()).max(RAFT_FLOOR));
    }
    found.report("raft", started);
}
