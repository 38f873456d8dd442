//! Typed Kafka operations for the tests, on top of `Client`.

#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::{sb, Client};

pub fn records(values: &[&str], timestamp: i64, compression: Compression) -> Bytes {
    records_from(
        values.iter().map(|v| (None, Bytes::from(v.to_string()), timestamp)).collect(),
        compression,
        None,
    )
}

/// Encodes one batch; `producer` is (id, epoch, base sequence) for idempotence.
pub fn records_from(
    items: Vec<(Option<Bytes>, Bytes, i64)>,
    compression: Compression,
    producer: Option<(i64, i16, i32)>,
) -> Bytes {
    let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = items
        .into_iter()
        .enumerate()
        .map(|(i, (key, value, ts))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if seq < 0 { i as i32 - 1 } else { seq + i as i32 },
            timestamp: ts,
            key,
            value: Some(value),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression })
        .expect("encode batch");
    buf.freeze()
}

pub async fn create_topic(c: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) -> i16 {
    create_replicated_topic(c, name, partitions, 1, configs).await
}

pub async fn create_replicated_topic(
    c: &mut Client,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(&str, &str)],
) -> i16 {
    let topic = CreatableTopic::default()
        .with_name(TopicName(sb(name)))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig::default().with_name(sb(k)).with_value(Some(sb(v))))
                .collect(),
        );
    let req = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(10_000);
    let resp: CreateTopicsResponse = c.send(ApiKey::CreateTopics, 7, &req).await;
    resp.topics[0].error_code
}

/// Produces one batch with acks=-1; returns (error code, base offset).
pub async fn produce(c: &mut Client, topic: &str, partition: i32, batch: Bytes) -> (i16, i64) {
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(sb(topic))).with_partition_data(vec![
            PartitionProduceData::default().with_index(partition).with_records(Some(batch)),
        ]),
    ]);
    let resp: ProduceResponse = c.send(ApiKey::Produce, 9, &req).await;
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

pub struct Fetched {
    pub error_code: i16,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// (offset, value) of every record returned.
    pub records: Vec<(i64, Bytes)>,
}

pub async fn fetch_with(
    c: &mut Client,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> Fetched {
    let req = FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(50 * 1024 * 1024)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(TopicName(sb(topic))).with_partitions(vec![
            FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(10 * 1024 * 1024),
        ])]);
    let resp: FetchResponse = c.send(ApiKey::Fetch, 12, &req).await;
    let p = &resp.responses[0].partitions[0];
    let mut records = Vec::new();
    if let Some(bytes) = &p.records {
        let mut buf = bytes.clone();
        for set in RecordBatchDecoder::decode_all(&mut buf).expect("decode fetched batches") {
            for r in set.records {
                records.push((r.offset, r.value.unwrap_or_default()));
            }
        }
    }
    Fetched {
        error_code: p.error_code,
        high_watermark: p.high_watermark,
        log_start_offset: p.log_start_offset,
        records,
    }
}

pub async fn fetch(c: &mut Client, topic: &str, partition: i32, offset: i64) -> Fetched {
    fetch_with(c, topic, partition, offset, 0, 0).await
}

/// ListOffsets for one partition: (error code, offset, timestamp).
pub async fn list_offset(c: &mut Client, topic: &str, partition: i32, timestamp: i64) -> (i16, i64, i64) {
    let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        ListOffsetsTopic::default().with_name(TopicName(sb(topic))).with_partitions(vec![
            ListOffsetsPartition::default().with_partition_index(partition).with_timestamp(timestamp),
        ]),
    ]);
    let resp: ListOffsetsResponse = c.send(ApiKey::ListOffsets, 7, &req).await;
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}
