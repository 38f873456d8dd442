//! Durability and retention: what a broker wrote is there after a restart,
//! offsets stay contiguous, retention moves the log start forward, and
//! compaction keeps the last record of each key.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::Compression;
use kafka_protocol::ResponseError;

use crate::common::ops::*;
use crate::common::{wait_until, Client, TestBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_recovers_records_topics_and_offsets() {
    let mut b = TestBroker::start().await;
    let mut c = Client::connect(b.kafka_addr()).await;
    create_topic(&mut c, "durable", 3, &[("retention.ms", "-1")]).await;
    for p in 0..3 {
        for i in 0..10 {
            let v = format!("p{p}-{i}");
            let (err, base) = produce(&mut c, "durable", p, records(&[&v, &v], 1, Compression::Lz4)).await;
            assert_eq!((err, base), (0, i * 2));
        }
    }
    b.restart().await;
    let mut c = Client::connect(b.kafka_addr()).await;
    for p in 0..3 {
        let f = fetch(&mut c, "durable", p, 0).await;
        assert_eq!(f.error_code, 0);
        assert_eq!(f.records.len(), 20);
        assert_eq!(f.records.iter().map(|r| r.0).collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
    }
    // Appends continue from where the log ended.
    let (err, base) = produce(&mut c, "durable", 0, records(&["after"], 1, Compression::None)).await;
    assert_eq!((err, base), (0, 20));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_time_and_size_moves_log_start() {
    let b = TestBroker::start_with(|c| c.log_retention_check_interval = Duration::from_millis(50)).await;
    let mut c = Client::connect(b.kafka_addr()).await;
    create_topic(&mut c, "old", 1, &[("retention.ms", "60000")]).await;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    // Two ancient batches, then a fresh one.
    produce(&mut c, "old", 0, records(&["a", "b"], now - 3_600_000, Compression::None)).await;
    produce(&mut c, "old", 0, records(&["c"], now - 3_600_000, Compression::None)).await;
    produce(&mut c, "old", 0, records(&["d"], now, Compression::None)).await;
    wait_until(Duration::from_secs(10), "time retention trims the log", || {
        let addr = b.kafka_addr();
        async move { list_offset(&mut Client::connect(addr).await, "old", 0, -2).await.1 == 3 }
    })
    .await;
    let f = fetch(&mut c, "old", 0, 3).await;
    assert_eq!(f.records.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3]);
    assert_eq!(fetch(&mut c, "old", 0, 0).await.error_code, ResponseError::OffsetOutOfRange.code());

    create_topic(&mut c, "big", 1, &[("retention.bytes", "200"), ("retention.ms", "-1")]).await;
    for i in 0..10 {
        let v = format!("{i:0>60}");
        produce(&mut c, "big", 0, records(&[&v], now, Compression::None)).await;
    }
    wait_until(Duration::from_secs(10), "size retention trims the log", || {
        let addr = b.kafka_addr();
        async move { list_offset(&mut Client::connect(addr).await, "big", 0, -2).await.1 >= 8 }
    })
    .await;
    let start = list_offset(&mut c, "big", 0, -2).await.1;
    let f = fetch(&mut c, "big", 0, start).await;
    assert_eq!(f.records.last().map(|r| r.0), Some(9), "newest records stay");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_the_last_record_of_each_key_across_a_restart() {
    let mut b = TestBroker::start_with(|c| {
        c.log_retention_check_interval = Duration::from_millis(50);
        c.log_cleaner_min_dirty_records = 10;
    })
    .await;
    let mut c = Client::connect(b.kafka_addr()).await;
    create_topic(&mut c, "latest", 1, &[("cleanup.policy", "compact")]).await;
    // Keys k0..k4, eight versions each, in batches of five (every other one gzip).
    for round in 0..8 {
        let items = (0..5)
            .map(|k| (Some(Bytes::from(format!("k{k}"))), Bytes::from(format!("k{k}=v{round}")), 1_000))
            .collect();
        let compression = if round % 2 == 0 { Compression::Gzip } else { Compression::None };
        assert_eq!(produce(&mut c, "latest", 0, records_from(items, compression, None)).await.0, 0);
    }
    let expected: Vec<(i64, Bytes)> = (0..5).map(|k| (35 + k, Bytes::from(format!("k{k}=v7")))).collect();
    wait_until(Duration::from_secs(10), "the log compacted to one record per key", || {
        let addr = b.kafka_addr();
        async move { fetch(&mut Client::connect(addr).await, "latest", 0, 0).await.records.len() == 5 }
    })
    .await;
    let f = fetch(&mut c, "latest", 0, 0).await;
    assert_eq!(f.records, expected);
    assert_eq!((f.log_start_offset, f.high_watermark), (0, 40), "offsets are kept, with gaps");
    // A fetch from an offset that was compacted away continues at the next record.
    assert_eq!(fetch(&mut c, "latest", 0, 12).await.records, expected);

    b.restart().await;
    let mut c = Client::connect(b.kafka_addr()).await;
    wait_until(Duration::from_secs(10), "the restarted partition led", || {
        let addr = b.kafka_addr();
        async move { fetch(&mut Client::connect(addr).await, "latest", 0, 0).await.error_code == 0 }
    })
    .await;
    assert_eq!(fetch(&mut c, "latest", 0, 0).await.records, expected);
    let (code, base) = produce(
        &mut c,
        "latest",
        0,
        records_from(vec![(Some(Bytes::from("k9")), Bytes::from("new"), 2_000)], Compression::None, None),
    )
    .await;
    assert_eq!((code, base), (0, 40), "offsets continue after the compacted range");
    b.stop().await;
}
