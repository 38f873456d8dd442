//! consume-perf BOOTSTRAP TOPIC PARTITIONS RECORDS: reads RECORDS records from
//! offset 0 of every partition and prints records/s (one JSON line), once
//! through librdkafka (a real client, message by message) and once through a
//! raw batching fetcher (`raw.rs`). `consume-perf latency BOOTSTRAP TOPIC`
//! measures end-to-end latency at 10,000 records/s instead (`latency.rs`).

mod latency;
mod raw;

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, bootstrap, topic] = args.as_slice() {
        if mode == "latency" {
            let (p50, p99) = latency::run(bootstrap, topic, 10_000, 5)?;
            println!("{{\"p50_ms\": {p50:.3}, \"p99_ms\": {p99:.3}}}");
            return Ok(());
        }
    }
    let [_, bootstrap, topic, partitions, records] = args.as_slice() else {
        return Err("usage: consume-perf BOOTSTRAP TOPIC PARTITIONS RECORDS".into());
    };
    let partitions: i32 = partitions.parse()?;
    let records: u64 = records.parse()?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "consume-perf")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let start = Instant::now();
    let mut got = 0u64;
    while got < records {
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!("timed out after {got} records").into());
        }
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            m?;
            got += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let raw = raw::run(bootstrap, topic, partitions, records)?;
    println!(
        "{{\"records\": {got}, \"seconds\": {secs:.3}, \"rps\": {:.0}, \"raw_rps\": {raw:.0}}}",
        got as f64 / secs
    );
    Ok(())
}
