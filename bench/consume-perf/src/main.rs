//! consume-perf BOOTSTRAP TOPIC PARTITIONS RECORDS: reads RECORDS records from
//! offset 0 of every partition and prints records/s (one JSON line), once
//! through librdkafka (a real client, message by message) and once through a
//! raw batching fetcher (`raw.rs`). The librdkafka figure is also given from
//! the first record on (`after_first_rps`): the client takes about half a
//! second to start (metadata, coordinator, offset lookup) before it fetches. `consume-perf latency BOOTSTRAP TOPIC`
//! measures end-to-end latency at 10,000 records/s instead (`latency.rs`), and
//! `consume-perf e2e BOOTSTRAP TOPIC PARTITIONS RATE SECONDS` at any rate over
//! several partitions, with librdkafka's default settings (`e2e-linger1`: but
//! for the producer's `linger.ms=1`).

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
            let (p50, p99, _) = latency::run(bootstrap, topic, 1, 10_000, 5, latency::Clients::Tuned)?;
            println!("{{\"p50_ms\": {p50:.3}, \"p99_ms\": {p99:.3}}}");
            return Ok(());
        }
    }
    if let [_, mode, bootstrap, topic, partitions, rate, seconds] = args.as_slice() {
        if mode == "e2e" || mode == "e2e-linger1" {
            let clients = if mode == "e2e" { latency::Clients::Defaults } else { latency::Clients::Linger1 };
            let (p50, p99, max) =
                latency::run(bootstrap, topic, partitions.parse()?, rate.parse()?, seconds.parse()?, clients)?;
            println!("{{\"p50_ms\": {p50:.3}, \"p99_ms\": {p99:.3}, \"max_ms\": {max:.3}}}");
            return Ok(());
        }
    }
    let [_, bootstrap, topic, partitions, records] = args.as_slice() else {
        return Err("usage: consume-perf BOOTSTRAP TOPIC PARTITIONS RECORDS".into());
    };
    let partitions: i32 = partitions.parse()?;
    let records: u64 = records.parse()?;
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "consume-perf")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        // librdkafka before 2.3 (Debian's is 2.0.2) backs a partition's
        // fetching off for fetch.error.backoff.ms (500 ms) whenever its local
        // queue holds more than queued.min.messages (100,000): two 10 MB
        // fetches do, so the consumer idles half a second at a time however
        // fast the broker answers. A queue of a million records keeps it
        // fetching (2.3+ has fetch.queue.backoff.ms for this).
        .set("queued.min.messages", "1000000");
    // CONSUME_PERF_CONFIG="key=value,...": extra librdkafka settings.
    for kv in std::env::var("CONSUME_PERF_CONFIG").unwrap_or_default().split(',').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or("CONSUME_PERF_CONFIG wants key=value pairs")?;
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let start = Instant::now();
    let mut first: Option<Instant> = None;
    let mut got = 0u64;
    while got < records {
        if start.elapsed() > Duration::from_secs(120) {
            return Err(format!("timed out after {got} records").into());
        }
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            m?;
            got += 1;
            first.get_or_insert_with(Instant::now);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // Client start-up (connect, metadata, offset lookup) until the first record.
    let first_secs = first.map_or(secs, |f| f.duration_since(start).as_secs_f64());
    let raw = raw::run(bootstrap, topic, partitions, records)?;
    println!(
        "{{\"records\": {got}, \"seconds\": {secs:.3}, \"rps\": {:.0}, \"first_record_s\": {first_secs:.3}, \"after_first_rps\": {:.0}, \"raw_rps\": {raw:.0}}}",
        got as f64 / secs,
        (got - 1) as f64 / (secs - first_secs).max(1e-9)
    );
    Ok(())
}
