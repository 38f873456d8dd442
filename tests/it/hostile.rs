//! The broker's edges against hostile and unlucky peers, over real sockets:
//! the requests that used to abort the process, a client whose frames
//! arrive a byte at a time while responses complete, decompression bombs,
//! batches whose arithmetic overflows, and the connection budgets (per-IP
//! limit, frame deadline, idle close, the queued-bytes budget) on the Kafka,
//! Raft and HTTP listeners. Each case checks the offending connection is
//! closed (or answered with an error), that `/metrics` counted it, and that
//! the broker keeps serving everyone else.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::{ops, sb, wait_until, Client, TestBroker};

/// A request header (v1, or v2 with an empty tagged-field section), no
/// client id, then `body`, as one frame.
fn raw_frame(key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let mut f = BytesMut::new();
    f.put_i32(0);
    f.put_i16(key as i16);
    f.put_i16(version);
    f.put_i32(1);
    f.put_i16(-1);
    if key.request_header_version(version) >= 2 {
        f.put_u8(0);
    }
    f.put_slice(body);
    let len = (f.len() - 4) as i32;
    f[0..4].copy_from_slice(&len.to_be_bytes());
    f.to_vec()
}

/// i32::MAX as an array count, and as a compact (varint) one.
const COUNT: [u8; 4] = [0x7f, 0xff, 0xff, 0xff];
const COMPACT_COUNT: [u8; 5] = [0x80, 0x80, 0x80, 0x80, 0x08];

async fn metrics(b: &TestBroker) -> String {
    let url = format!("http://{}/metrics", b.broker().http_addr);
    reqwest::get(url).await.expect("metrics").text().await.expect("metrics text")
}

/// The value of the refusal counter for `listener` and `reason`.
async fn refused(b: &TestBroker, listener: &str, reason: &str) -> u64 {
    let text = metrics(b).await;
    let row = format!("raftka_connections_refused_total{{listener=\"{listener}\",reason=\"{reason}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(row.as_str())).map_or(0, |v| v.trim().parse().expect("a count"))
}

async fn still_serves(b: &TestBroker) {
    let mut c = Client::connect(b.kafka_addr()).await;
    let resp: MetadataResponse = c.send(ApiKey::Metadata, 12, &MetadataRequest::default()).await;
    assert_eq!(resp.brokers.len(), 1, "broker still answers Metadata");
}

/// The requests of issue 12 (each aborted the whole process), and a lying
/// count at the start of every routed API's body: each closes its own
/// connection; a connection opened before keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_counts_close_their_connection_and_nothing_else() {
    let b = TestBroker::start().await;
    let mut healthy = Client::connect(b.kafka_addr()).await;
    let reported: Vec<(ApiKey, i16, Vec<u8>)> = vec![
        // topics[]
        (ApiKey::CreateTopics, 2, COUNT.to_vec()),
        // replica id, max wait, min bytes, max bytes, isolation, topics[]
        (ApiKey::Fetch, 4, [&[0xff; 4][..], &[0; 4], &[0, 0, 0, 1], &[0, 0, 0, 1], &[0], &COUNT].concat()),
        (ApiKey::Metadata, 1, COUNT.to_vec()),
        (ApiKey::Metadata, 9, COMPACT_COUNT.to_vec()),
        // group id "g", generation, member id "m", retention, topics[]
        (ApiKey::OffsetCommit, 2, [&[0, 1, b'g'][..], &[0; 4], &[0, 1, b'm'], &[0xff; 8], &COUNT].concat()),
        // transactional id null, acks, timeout, topic data[]
        (ApiKey::Produce, 3, [&[0xff, 0xff][..], &[0xff, 0xff], &[0, 0, 0x75, 0x30], &COUNT].concat()),
        // replica id, topics[]
        (ApiKey::ListOffsets, 1, [&[0xff; 4][..], &COUNT].concat()),
    ];
    let mut cases = reported;
    for route in raftka::kafka::dispatch::ROUTES {
        for v in [route.min, route.max] {
            cases.push((route.key, v, COUNT.to_vec()));
            cases.push((route.key, v, COMPACT_COUNT.to_vec()));
        }
    }
    for (key, version, body) in &cases {
        let frame = raw_frame(*key, *version, body);
        let mut c = Client::connect(b.kafka_addr()).await;
        c.stream.write_all(&frame).await.expect("write");
        // Closed, or answered first where the body is valid (ApiVersions
        // ignores a body it does not need): either way, still alive.
        let mut buf = vec![0u8; 64 * 1024];
        let read = tokio::time::timeout(Duration::from_secs(5), c.stream.read(&mut buf)).await;
        assert!(read.is_ok(), "{key:?} v{version} ({} bytes): no answer and not closed", frame.len());
    }
    let resp: MetadataResponse = healthy.send(ApiKey::Metadata, 1, &MetadataRequest::default()).await;
    assert_eq!(resp.brokers.len(), 1);
    assert!(refused(&b, "kafka", "Malformed").await >= 7, "the malformed requests were counted");
    b.stop().await;
}

fn fetch_request(topic: &str, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1 << 20)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default().with_topic(TopicName(sb(topic))).with_partitions(vec![
            FetchPartition::default().with_partition(0).with_partition_max_bytes(1 << 20),
        ])])
}

/// The bug that dropped healthy connections: a response completing while a
/// frame was half read lost the bytes already read. Frames are written a
/// byte at a time while fetches with staggered waits complete; every request
/// must get its response, in order, and the connection must stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_trickling_in_while_responses_complete_keep_their_place() {
    const REQUESTS: i32 = 240;
    let b = TestBroker::start().await;
    let mut setup = Client::connect(b.kafka_addr()).await;
    assert_eq!(ops::create_topic(&mut setup, "trickle", 1, &[]).await, 0);
    let mut c = Client::connect(b.kafka_addr()).await;
    let mut wire = Vec::new();
    for i in 0..REQUESTS {
        let frame = match i % 3 {
            0 => c.encode(ApiKey::Fetch, 12, &fetch_request("trickle", 2 + (i % 7) * 3)),
            1 => c.encode(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()),
            _ => c.encode(ApiKey::Metadata, 12, &MetadataRequest::default()),
        };
        wire.extend_from_slice(&frame);
    }
    let (mut read, mut write) = c.stream.into_split();
    let writer = tokio::spawn(async move {
        let mut pace = tokio::time::interval(Duration::from_millis(1));
        for (n, byte) in wire.iter().enumerate() {
            write.write_all(&[*byte]).await.expect("write a byte");
            if n % 24 == 0 {
                pace.tick().await;
            }
        }
        write
    });
    let started = Instant::now();
    let mut answered = 0;
    while answered < REQUESTS {
        let mut len = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(30), read.read_exact(&mut len))
            .await
            .expect("a response within 30 s")
            .expect("the connection stays open");
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        read.read_exact(&mut body).await.expect("a whole response");
        answered += 1;
        let correlation = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        assert_eq!(correlation, answered, "responses in request order");
    }
    let mut write = writer.await.expect("writer task");
    assert!(started.elapsed() > Duration::from_millis(100), "the frames did trickle");
    // The same connection still works, and nothing was refused.
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(3)
        .with_correlation_id(REQUESTS + 1);
    kafka_protocol::protocol::Encodable::encode(&header, &mut frame, 2).expect("header");
    kafka_protocol::protocol::Encodable::encode(&ApiVersionsRequest::default(), &mut frame, 3).expect("body");
    let len = (frame.len() - 4) as i32;
    frame[0..4].copy_from_slice(&len.to_be_bytes());
    write.write_all(&frame).await.expect("write");
    let mut len = [0u8; 4];
    read.read_exact(&mut len).await.expect("answered after the trickle");
    for reason in ["FrameTooLarge", "NegativeLength", "Malformed", "UnknownApiKey", "UnsupportedVersion"] {
        assert_eq!(refused(&b, "kafka", reason).await, 0, "{reason}");
    }
    b.stop().await;
}

/// `n` bytes of zeros as the value of one record, compressed with `codec` as
/// it is written (the test never holds the inflated bytes), in one v2 batch.
fn bomb(codec: Compression, n: usize) -> Bytes {
    fn varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let b = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    let mut fields = vec![0u8]; // attributes
    varint(&mut fields, 0); // timestamp delta
    varint(&mut fields, 0); // offset delta
    varint(&mut fields, -1); // no key
    varint(&mut fields, n as i64); // value length
    let mut head = Vec::new();
    varint(&mut head, (fields.len() + n + 1) as i64);
    head.extend_from_slice(&fields);
    let zeros = vec![0u8; 1 << 20];
    let write_all = |w: &mut dyn std::io::Write| {
        w.write_all(&head).unwrap();
        for _ in 0..n / zeros.len() {
            w.write_all(&zeros).unwrap();
        }
        w.write_all(&zeros[..n % zeros.len()]).unwrap();
        w.write_all(&[0]).unwrap(); // no headers
    };
    let (compressed, attributes) = match codec {
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            write_all(&mut e);
            (e.finish().unwrap(), 1i16)
        }
        Compression::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
            write_all(&mut e);
            (e.finish().unwrap(), 4)
        }
        other => panic!("no bomb for {other:?}"),
    };
    batch_of(attributes, 1, &compressed)
}

/// A v2 batch header (CRC computed) around a records section.
fn batch_of(attributes: i16, records: i32, section: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i64(0); // base offset
    b.put_i32((49 + section.len()) as i32); // batch length
    b.put_i32(-1); // leader epoch
    b.put_i8(2); // magic
    b.put_u32(0); // crc, below
    b.put_i16(attributes);
    b.put_i32(records - 1); // last offset delta
    b.put_i64(1); // base timestamp
    b.put_i64(1); // max timestamp
    b.put_i64(-1); // producer id
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(records);
    b.put_slice(section);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// The process's peak resident size, reset first so it reads from now.
fn peak_rss_kib(reset: bool) -> u64 {
    if reset {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// A small batch that inflates to 512 MiB is refused, and refusing it costs
/// the limit (32 MiB), not its inflated size; so is a snappy block whose
/// header lies about its length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bombs_are_refused_without_being_inflated() {
    let b = TestBroker::start().await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(ops::create_topic(&mut c, "bombs", 1, &[]).await, 0);
    for codec in [Compression::Gzip, Compression::Zstd] {
        let batch = bomb(codec, 512 << 20);
        assert!(batch.len() < 1 << 20, "{codec:?} bomb is {} bytes", batch.len());
        let before = peak_rss_kib(true);
        let (code, _) = ops::produce(&mut c, "bombs", 0, batch).await;
        let grew = peak_rss_kib(false).saturating_sub(before);
        assert_eq!(code, kafka_protocol::ResponseError::MessageTooLarge.code(), "{codec:?}");
        assert!(grew < 200 * 1024, "{codec:?}: refusing a 512 MiB bomb raised the peak RSS by {grew} KiB");
    }
    // Raw snappy whose varint header claims 4 GiB.
    let liar = batch_of(2, 1, &[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00]);
    let (code, _) = ops::produce(&mut c, "bombs", 0, liar).await;
    assert_eq!(code, kafka_protocol::ResponseError::MessageTooLarge.code());
    // A batch whose records do not match its header, CRC valid.
    let short = batch_of(0, 3, &[0x02, 0x00]);
    let (code, _) = ops::produce(&mut c, "bombs", 0, short).await;
    assert_eq!(code, kafka_protocol::ResponseError::InvalidRecord.code());
    // Nothing was stored, and good batches still go in.
    let good = ops::records(&["fine"], 5, Compression::Gzip);
    assert_eq!(ops::produce(&mut c, "bombs", 0, good).await, (0, 0));
    b.stop().await;
}

/// Records at the ends of the timestamp range (a delta that overflows when
/// added naively) are stored, read back over REST, and compacted, and the
/// partition keeps working: the decoder's arithmetic once panicked on them,
/// in the state machine's compaction among other places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_with_extreme_timestamps_are_read_and_compacted() {
    let b = TestBroker::start_with(|c| {
        c.log_retention_check_interval = Duration::from_millis(100);
        c.log_cleaner_min_dirty_records = 2;
    })
    .await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(ops::create_topic(&mut c, "extremes", 1, &[("cleanup.policy", "compact")]).await, 0);
    let key = |k: &str| Some(Bytes::from(k.to_string()));
    let extremes = ops::records_from(
        vec![(key("a"), Bytes::from("min"), i64::MIN), (key("b"), Bytes::from("max"), i64::MAX)],
        Compression::None,
        None,
    );
    assert_eq!(ops::produce(&mut c, "extremes", 0, extremes).await.0, 0);
    for i in 0..3 {
        let again =
            ops::records_from(vec![(key("a"), Bytes::from(format!("a{i}")), 10)], Compression::Lz4, None);
        assert_eq!(ops::produce(&mut c, "extremes", 0, again).await.0, 0);
    }
    let url = format!("http://{}/v1/topics/extremes/partitions/0/records?offset=0", b.broker().http_addr);
    let read = || async {
        let resp = reqwest::get(&url).await.expect("read");
        assert_eq!(resp.status(), 200);
        resp.json::<serde_json::Value>().await.expect("json")
    };
    let first = read().await;
    let b_record = first["records"].as_array().unwrap().iter().find(|r| r["key"] == "b").cloned();
    assert_eq!(b_record.map(|r| r["timestamp"].clone()), Some(i64::MAX.into()), "{first}");
    // Compaction drops the superseded "a" versions and keeps "b".
    wait_until(Duration::from_secs(20), "compaction", || async {
        read().await["records"].as_array().is_some_and(|r| r.iter().filter(|r| r["key"] == "a").count() == 1)
    })
    .await;
    // The extremes' batch was rewritten: its "a" is gone, its "b" kept.
    let last = read().await;
    let records = last["records"].as_array().unwrap();
    assert!(records.iter().any(|r| r["key"] == "b" && r["value"] == "max"), "{last}");
    assert!(records.iter().all(|r| r["offset"] != 0), "{last}");
    let more = ops::records(&["still writable"], 20, Compression::None);
    assert_eq!(ops::produce(&mut c, "extremes", 0, more).await.0, 0);
    b.stop().await;
}

async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(format!("{source}:0").parse().expect("address")).expect("bind source");
    socket.connect(to).await.expect("connect")
}

async fn closed(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(tokio::time::timeout(within, stream.read(&mut byte)).await, Ok(Ok(0)) | Ok(Err(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_limit_refuses_only_the_extra_connection() {
    let b = TestBroker::start_with(|c| c.max_connections_per_ip = 3).await;
    let addr = b.kafka_addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = Client::from_stream(connect_from("127.0.0.1", addr).await);
        let resp: MetadataResponse = c.send(ApiKey::Metadata, 12, &MetadataRequest::default()).await;
        assert_eq!(resp.brokers.len(), 1);
        held.push(c);
    }
    let mut extra = connect_from("127.0.0.1", addr).await;
    assert!(closed(&mut extra, Duration::from_secs(5)).await, "the fourth from 127.0.0.1 is closed");
    // Another address has places of its own; the first three still work.
    let mut other = Client::from_stream(connect_from("127.0.0.2", addr).await);
    let _: MetadataResponse = other.send(ApiKey::Metadata, 12, &MetadataRequest::default()).await;
    let _: MetadataResponse = held[0].send(ApiKey::Metadata, 12, &MetadataRequest::default()).await;
    assert!(refused(&b, "kafka", "PerIpLimit").await >= 1);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_frames_and_idle_connections_are_closed_busy_ones_are_not() {
    let b = TestBroker::start_with(|c| {
        c.frame_timeout = Duration::from_millis(300);
        c.connections_max_idle = Duration::from_millis(800);
    })
    .await;
    let addr = b.kafka_addr();
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(&[0, 0, 1, 0, 0, 18]).await.expect("half a frame");
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    let mut busy = Client::connect(addr).await;
    let started = Instant::now();
    assert!(closed(&mut slow, Duration::from_secs(5)).await, "the unfinished frame's connection is closed");
    assert!(started.elapsed() >= Duration::from_millis(250));
    // The busy client asks every 100 ms, past the idle limit, and keeps its connection.
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    while started.elapsed() < Duration::from_millis(2_000) {
        pace.tick().await;
        let _: ApiVersionsResponse = busy.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    }
    assert!(closed(&mut idle, Duration::from_secs(5)).await, "the idle connection is closed");
    assert!(refused(&b, "kafka", "FrameTimeout").await >= 1);
    assert!(refused(&b, "kafka", "Idle").await >= 1);
    b.stop().await;
}

/// Connections that announce 1 MiB frames and send little hold the large
/// lane of `queued_max_request_bytes`: another large frame waits for them —
/// it is not refused — until their frame deadline closes them, while small
/// requests are answered at once from their own lane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_frames_make_large_ones_wait_not_small_ones() {
    let b = TestBroker::start_with(|c| {
        c.socket_request_max_bytes = 1 << 20;
        c.queued_max_request_bytes = 2 << 20; // large lane 1.75 MiB: one hog fills it
        c.frame_timeout = Duration::from_millis(1_500);
    })
    .await;
    let addr = b.kafka_addr();
    let mut hog = TcpStream::connect(addr).await.expect("connect");
    hog.write_all(&(1i32 << 20).to_be_bytes()).await.expect("length");
    hog.write_all(&[0u8; 100]).await.expect("a little body");
    wait_until(Duration::from_secs(5), "the hog holds the budget", || async {
        metrics(&b).await.lines().any(|l| {
            l.strip_prefix("raftka_queued_request_bytes{listener=\"kafka\"} ")
                .is_some_and(|v| v.trim().parse::<u64>().unwrap_or(0) >= 1 << 20)
        })
    })
    .await;
    // A small request is answered while the hog holds the large lane.
    let started = Instant::now();
    let mut small = Client::connect(addr).await;
    let _: MetadataResponse = small.send(ApiKey::Metadata, 12, &MetadataRequest::default()).await;
    assert!(started.elapsed() < Duration::from_millis(1_000), "small requests do not wait for the hog");
    // A large produce (1 MiB of records) waits until the hog's deadline.
    let mut large = Client::connect(addr).await;
    assert_eq!(ops::create_topic(&mut large, "budget", 1, &[("max.message.bytes", "2000000")]).await, 0);
    let value = "x".repeat(900 * 1024);
    let (code, _) =
        ops::produce(&mut large, "budget", 0, ops::records(&[&value], 1, Compression::None)).await;
    assert_eq!(code, 0, "the large produce went through once the hog was closed");
    assert!(closed(&mut hog, Duration::from_secs(5)).await, "the hog is closed at its frame deadline");
    assert!(refused(&b, "kafka", "FrameTimeout").await >= 1);
    still_serves(&b).await;
    b.stop().await;
}

/// The Raft port: a length past the limit, a body whose bincode lengths lie,
/// and a frame never finished each close their connection; the node goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_raft_frames_close_only_their_connection() {
    let b = TestBroker::start_with(|c| c.frame_timeout = Duration::from_millis(300)).await;
    let raft = b.broker().raft_addr;
    let mut huge = TcpStream::connect(raft).await.expect("connect");
    huge.write_all(&[0x7f, 0xff, 0xff, 0xf0]).await.expect("write");
    assert!(closed(&mut huge, Duration::from_secs(5)).await);
    // group 0, kind AppendEntries (0), then a body Vec<u8> claiming 2^60 bytes.
    let body = [0u8, 0, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0x10, 1, 2, 3];
    let mut liar = TcpStream::connect(raft).await.expect("connect");
    liar.write_all(&(body.len() as u32).to_be_bytes()).await.expect("write");
    liar.write_all(&body).await.expect("write");
    assert!(closed(&mut liar, Duration::from_secs(5)).await);
    let mut slow = TcpStream::connect(raft).await.expect("connect");
    slow.write_all(&[0, 0, 0, 50, 1]).await.expect("write");
    assert!(closed(&mut slow, Duration::from_secs(5)).await);
    assert!(refused(&b, "raft", "FrameTooLarge").await >= 1);
    assert!(refused(&b, "raft", "Malformed").await >= 1);
    assert!(refused(&b, "raft", "FrameTimeout").await >= 1);
    // Replication (a produce commits through Raft) still works.
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(ops::create_topic(&mut c, "after-raft-abuse", 1, &[]).await, 0);
    let batch = ops::records(&["ok"], 1, Compression::None);
    assert_eq!(ops::produce(&mut c, "after-raft-abuse", 0, batch).await.0, 0);
    b.stop().await;
}

/// The admin HTTP port: a body past `http_max_body_bytes` is a JSON 413, and
/// headers that never finish are closed at the header deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bodies_and_headers_are_bounded() {
    let b = TestBroker::start_with(|c| {
        c.http_max_body_bytes = 64 * 1024;
        c.frame_timeout = Duration::from_millis(300);
    })
    .await;
    let http = b.broker().http_addr;
    let big = serde_json::json!({ "name": "x".repeat(100 * 1024), "partitions": 1 });
    let resp = reqwest::Client::new()
        .post(format!("http://{http}/v1/topics"))
        .json(&big)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.expect("a JSON error");
    assert!(body["error"].is_string());
    let mut slow = TcpStream::connect(http).await.expect("connect");
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n").await.expect("half the headers");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "closed at the header deadline");
    let health = reqwest::get(format!("http://{http}/v1/health")).await.expect("health");
    assert_eq!(health.status(), 200);
    b.stop().await;
}
