//! End-to-end latency with native clients: a producer thread sends 100-byte
//! records at a fixed rate (acks=all, linger 0) carrying their send time; the
//! consumer measures receive − send. Prints p50/p99 in ms.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn now_us() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros())
}

pub fn run(
    bootstrap: &str,
    topic: &str,
    rate: u64,
    seconds: u64,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "latency")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::End)?;
    consumer.assign(&tpl)?;
    let _ = consumer.poll(Duration::from_millis(500));
    let bootstrap = bootstrap.to_string();
    let topic_name = topic.to_string();
    let total = rate * seconds;
    let producer_thread = std::thread::spawn(move || -> Result<(), String> {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("acks", "all")
            .set("linger.ms", "0")
            .create()
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        for i in 0..total {
            let due = start + Duration::from_micros(i * 1_000_000 / rate);
            while Instant::now() < due {
                producer.poll(Duration::from_micros(100));
            }
            let payload = format!("{:<100}", now_us());
            let _ = producer.send(BaseRecord::<(), _>::to(&topic_name).payload(&payload));
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
    Ok((lat[lat.len() / 2], lat[lat.len() * 99 / 100]))
}
