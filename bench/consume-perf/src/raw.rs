//! A minimal batching fetcher: Fetch v12 over one connection, records counted
//! from batch headers without decoding them. It shows what the broker serves
//! when the client costs next to nothing (the shape of Java's batch poll).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

const VERSION: i16 = 12;

pub fn run(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    records: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(bootstrap)?;
    stream.set_nodelay(true)?;
    let mut offsets = vec![0i64; partitions as usize];
    let mut got = 0u64;
    let start = Instant::now();
    let mut correlation = 0;
    while got < records {
        correlation += 1;
        let parts = (0..partitions)
            .map(|p| {
                FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(offsets[p as usize])
                    .with_partition_max_bytes(10 * 1024 * 1024)
            })
            .collect();
        let req = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(50 * 1024 * 1024)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(parts)]);
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(1)
            .with_request_api_version(VERSION)
            .with_correlation_id(correlation)
            .encode(&mut buf, 2)?;
        req.encode(&mut buf, VERSION)?;
        let len = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        stream.write_all(&buf)?;
        let mut len = [0u8; 4];
        stream.read_exact(&mut len)?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        stream.read_exact(&mut body)?;
        let mut body = bytes::Bytes::from(body);
        ResponseHeader::decode(&mut body, 1)?;
        let resp = FetchResponse::decode(&mut body, VERSION)?;
        for p in &resp.responses[0].partitions {
            let Some(mut recs) = p.records.clone() else { continue };
            while recs.remaining() >= 61 {
                let base = (&recs[0..8]).get_i64();
                let batch_len = (&recs[8..12]).get_i32() as usize;
                let last_delta = (&recs[23..27]).get_i32();
                let count = (&recs[57..61]).get_i32();
                got += count as u64;
                offsets[p.partition_index as usize] = base + i64::from(last_delta) + 1;
                recs.advance(12 + batch_len);
            }
        }
    }
    Ok(got as f64 / start.elapsed().as_secs_f64())
}
