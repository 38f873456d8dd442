//! End-to-end latency with native clients: a producer thread sends 100-byte
//! records at a fixed rate (acks=all) carrying their send time, round-robin
//! over the topic's first `partitions` partitions; the consumer measures
//! receive − send. Prints p50/p99 in ms. `Clients::Tuned` is linger 0 and a
//! 100 ms fetch wait (issue 2's figure); `Clients::Defaults` leaves every
//! librdkafka setting at its default (linger.ms 5, fetch.wait.max.ms 500);
//! `Clients::Linger1` is the defaults but for a 1 ms linger.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn now_us() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clients {
    Tuned,
    Defaults,
    Linger1,
}

pub fn run(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    rate: u64,
    seconds: u64,
    clients: Clients,
) -> Result<(f64, f64, f64), Box<dyn std::error::Error>> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("group.id", "latency").set("enable.auto.commit", "false");
    if clients == Clients::Tuned {
        config.set("fetch.wait.max.ms", "100");
    }
    let consumer: BaseConsumer = config.create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::End)?;
    }
    consumer.assign(&tpl)?;
    let _ = consumer.poll(Duration::from_millis(500));
    let bootstrap = bootstrap.to_string();
    let topic_name = topic.to_string();
    let total = rate * seconds;
    let producer_thread = std::thread::spawn(move || -> Result<(), String> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &bootstrap).set("acks", "all");
        match clients {
            Clients::Tuned => {
                config.set("linger.ms", "0");
            }
            Clients::Linger1 => {
                config.set("linger.ms", "1");
            }
            Clients::Defaults => {}
        }
        let producer: BaseProducer = config.create().map_err(|e| e.to_string())?;
        let start = Instant::now();
        for i in 0..total {
            let due = start + Duration::from_micros(i * 1_000_000 / rate);
            // Wait for the record's time serving delivery reports, in one
            // wake-up when it is near (not one per 100 µs at any rate).
            while let Some(wait) = due.checked_duration_since(Instant::now()).filter(|w| !w.is_zero()) {
                producer.poll(wait.min(Duration::from_millis(1)));
            }
            let payload = format!("{:<100}", now_us());
            let partition = (i % partitions.max(1) as u64) as i32;
            let mut record = BaseRecord::<(), _>::to(&topic_name).payload(&payload).partition(partition);
            // A full local queue: serve deliveries and try the same record again.
            while let Err((_, r)) = producer.send(record) {
                producer.poll(Duration::from_millis(1));
                record = r;
            }
        }
        producer.flush(Duration::from_secs(30)).map_err(|e| e.to_string())
    });
    let mut lat = Vec::with_capacity(total as usize);
    let deadline = Instant::now() + Duration::from_secs(seconds * 4 + 10);
    while (lat.len() as u64) < total && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            if let Some(Ok(text)) = m.payload_view::<str>() {
                if let Ok(sent) = text.trim().parse::<u128>() {
                    lat.push((now_us().saturating_sub(sent)) as f64 / 1000.0);
                }
            }
        }
    }
    producer_thread.join().map_err(|_| "producer thread panicked")??;
    lat.sort_by(|a, b| a.total_cmp(b));
    if lat.is_empty() {
        return Err("no records received".into());
    }
    Ok((lat[lat.len() / 2], lat[lat.len() * 99 / 100], lat[lat.len() - 1]))
}
