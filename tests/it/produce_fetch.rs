//! Produce, fetch and list-offsets semantics on a one-node broker.

use std::time::{Duration, Instant};

use kafka_protocol::records::Compression;
use kafka_protocol::ResponseError;

use crate::common::ops::*;
use crate::common::{wait_until, Client, TestBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_then_fetch_returns_records_with_contiguous_offsets() {
    let b = TestBroker::start().await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(create_topic(&mut c, "t", 2, &[]).await, 0);
    let codecs =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
    let mut expected = Vec::new();
    for (i, codec) in codecs.into_iter().enumerate() {
        let values: Vec<String> = (0..3).map(|j| format!("v{i}-{j}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let (err, base) = produce(&mut c, "t", 1, records(&refs, 1_000, codec)).await;
        assert_eq!(err, 0, "produce with {codec:?}");
        assert_eq!(base, (i * 3) as i64, "offsets continue across batches");
        expected.extend(values);
    }
    let f = fetch(&mut c, "t", 1, 0).await;
    assert_eq!(f.error_code, 0);
    assert_eq!(f.high_watermark, 15);
    let offsets: Vec<i64> = f.records.iter().map(|r| r.0).collect();
    assert_eq!(offsets, (0..15).collect::<Vec<_>>());
    let values: Vec<String> = f.records.iter().map(|r| String::from_utf8_lossy(&r.1).into_owned()).collect();
    assert_eq!(values, expected);
    // Fetching from the middle of a batch returns that whole batch.
    let f = fetch(&mut c, "t", 1, 4).await;
    assert_eq!(f.records.first().map(|r| r.0), Some(3));
    // The other partition is untouched.
    assert_eq!(fetch(&mut c, "t", 0, 0).await.high_watermark, 0);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_earliest_latest_and_by_timestamp() {
    let b = TestBroker::start().await;
    let mut c = Client::connect(b.kafka_addr()).await;
    create_topic(&mut c, "ts", 1, &[]).await;
    for (i, ts) in [100, 200, 300].into_iter().enumerate() {
        let v = format!("r{i}");
        produce(&mut c, "ts", 0, records(&[&v, &v], ts, Compression::None)).await;
    }
    assert_eq!(list_offset(&mut c, "ts", 0, -2).await, (0, 0, -1));
    assert_eq!(list_offset(&mut c, "ts", 0, -1).await, (0, 6, -1), "latest = last record + 1");
    assert_eq!(list_offset(&mut c, "ts", 0, 150).await, (0, 2, 200), "first offset with ts >= target");
    assert_eq!(list_offset(&mut c, "ts", 0, 200).await, (0, 2, 200));
    assert_eq!(list_offset(&mut c, "ts", 0, 301).await, (0, -1, -1), "nothing past the end");
    assert_eq!(list_offset(&mut c, "ts", 0, -3).await.1, 4, "max timestamp");
    let unknown = list_offset(&mut c, "nope", 0, -1).await.0;
    assert_eq!(unknown, ResponseError::UnknownTopicOrPartition.code());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_fetch_wakes_when_data_arrives_not_at_max_wait() {
    let b = TestBroker::start().await;
    let mut c = Client::connect(b.kafka_addr()).await;
    create_topic(&mut c, "lp", 1, &[]).await;
    let addr = b.kafka_addr();
    let started = Instant::now();
    let waiter = tokio::spawn(async move {
        let mut c2 = Client::connect(addr).await;
        fetch_with(&mut c2, "lp", 0, 0, 20_000, 1).await
    });
    // Once the fetch is parked, produce.
    let metrics = b.broker().node().metrics.clone();
    wait_until(Duration::from_secs(10), "the fetch is parked", || {
        let metrics = metrics.clone();
        async move { metrics.fetches_waiting() == 1 }
    })
    .await;
    produce(&mut c, "lp", 0, records(&["wake"], 1, Compression::None)).await;
    let f = waiter.await.expect("fetch task");
    assert_eq!(f.records.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fetch returned at data, took {:?}",
        started.elapsed()
    );
    // With nothing to read, max_wait bounds the wait.
    let started = Instant::now();
    let f = fetch_with(&mut c, "lp", 0, 1, 300, 1).await;
    assert!(f.records.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(250));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_errors_have_kafka_codes() {
    let b = TestBroker::start_with(|c| c.message_max_bytes = 10_000).await;
    let mut c = Client::connect(b.kafka_addr()).await;
    create_topic(&mut c, "e", 1, &[]).await;
    let (err, _) = produce(&mut c, "missing", 0, records(&["x"], 1, Compression::None)).await;
    assert_eq!(err, ResponseError::UnknownTopicOrPartition.code());
    let (err, _) = produce(&mut c, "e", 5, records(&["x"], 1, Compression::None)).await;
    assert_eq!(err, ResponseError::UnknownTopicOrPartition.code());
    let big = "x".repeat(20_000);
    let (err, _) = produce(&mut c, "e", 0, records(&[&big], 1, Compression::None)).await;
    assert_eq!(err, ResponseError::MessageTooLarge.code());
    let mut corrupt = records(&["payload"], 1, Compression::None).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    let (err, _) = produce(&mut c, "e", 0, corrupt.into()).await;
    assert_eq!(err, ResponseError::CorruptMessage.code());
    assert_eq!(fetch(&mut c, "e", 0, 0).await.high_watermark, 0, "nothing rejected was written");
    assert_eq!(create_topic(&mut c, "e", 1, &[]).await, ResponseError::TopicAlreadyExists.code());
    assert_eq!(create_topic(&mut c, "bad name", 1, &[]).await, ResponseError::InvalidTopicException.code());
    assert_eq!(
        create_topic(&mut c, "z", 1, &[("retention.ms", "soon")]).await,
        ResponseError::InvalidConfig.code()
    );
    assert_eq!(fetch(&mut c, "e", 0, 7).await.error_code, ResponseError::OffsetOutOfRange.code());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retries_are_written_once_and_gaps_refused() {
    let b = TestBroker::start().await;
    let mut c = Client::connect(b.kafka_addr()).await;
    create_topic(&mut c, "idem", 1, &[]).await;
    let batch = |seq: i32, n: usize| {
        let items = (0..n).map(|i| (None, bytes::Bytes::from(format!("s{}", seq + i as i32)), 1)).collect();
        records_from(items, Compression::None, Some((42, 0, seq)))
    };
    assert_eq!(produce(&mut c, "idem", 0, batch(0, 3)).await, (0, 0));
    assert_eq!(produce(&mut c, "idem", 0, batch(3, 2)).await, (0, 3));
    assert_eq!(produce(&mut c, "idem", 0, batch(0, 3)).await, (0, 0), "retry answered with the first offset");
    let (err, _) = produce(&mut c, "idem", 0, batch(9, 1)).await;
    assert_eq!(err, ResponseError::OutOfOrderSequenceNumber.code());
    let f = fetch(&mut c, "idem", 0, 0).await;
    assert_eq!((f.error_code, f.high_watermark, f.records.len()), (0, 5, 5));
    b.stop().await;
}

/// `fsync = true`: every acknowledged batch is read back, and partitions
/// producing at once share their syncs (the group commit, `storage::syncer`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fsync_concurrent_appends_share_their_syncs() {
    const PARTITIONS: i32 = 6;
    const BATCHES: usize = 60;
    let b = TestBroker::start_with(|c| c.fsync = true).await;
    let mut c = Client::connect(b.kafka_addr()).await;
    assert_eq!(create_topic(&mut c, "durable", PARTITIONS, &[]).await, 0);
    let addr = b.kafka_addr();
    let producers: Vec<_> = (0..PARTITIONS)
        .map(|p| {
            tokio::spawn(async move {
                let mut c = Client::connect(addr).await;
                for i in 0..BATCHES {
                    let v = format!("p{p}-{i}");
                    let (err, base) =
                        produce(&mut c, "durable", p, records(&[&v], 1_000, Compression::None)).await;
                    assert_eq!((err, base), (0, i as i64), "partition {p}, batch {i}");
                }
            })
        })
        .collect();
    for p in producers {
        p.await.expect("a producer's acknowledgements");
    }
    for p in 0..PARTITIONS {
        let f = fetch(&mut c, "durable", p, 0).await;
        let values: Vec<String> =
            f.records.iter().map(|r| String::from_utf8_lossy(&r.1).into_owned()).collect();
        assert_eq!(values, (0..BATCHES).map(|i| format!("p{p}-{i}")).collect::<Vec<_>>());
    }
    let text = reqwest::get(format!("http://{}/metrics", b.broker().http_addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let counter = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("raftka_{name}_total ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    };
    let (appends, rounds) = (counter("log_synced_appends"), counter("log_sync_rounds"));
    let produced = (PARTITIONS as usize * BATCHES) as u64;
    assert!(appends >= produced, "{appends} synced appends for {produced} batches");
    assert!(rounds < appends, "{rounds} sync rounds for {appends} appends: none shared");
    b.stop().await;
}
