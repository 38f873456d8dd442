//! Fetch: committed batches from the partitions this broker leads, as stored.
//! A fetch with less than `min_bytes` available waits on the partitions'
//! high-watermark channels and answers as soon as enough data is there, or at
//! `max_wait_ms` — it never spins. Fetch sessions are not kept: we answer
//! session id 0, which tells clients to send full fetches (KIP-227).
//!
//! A stored batch is copied once on its way out: read from its segment file
//! into a buffer of the partition's exact read size (`PartitionLog::read`),
//! which the response frame holds by reference (`protocol::header::Encoded`)
//! and the connection writes to the socket as it is.

use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::kafka::error::read_code;
use crate::node::Node;
use crate::partition::log::LogOffsets;
use crate::partition::routing::Lookup;

/// Upper bound on one fetch's wait, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

pub async fn handle(ctx: &Node, req: FetchRequest) -> FetchResponse {
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let min_bytes = req.min_bytes.max(0) as usize;
    // The broker's `fetch.max.bytes` caps what a client may ask for (v0-2
    // requests carry no limit at all).
    let cap = ctx.config.fetch_max_bytes;
    let max_bytes = if req.max_bytes > 0 { (req.max_bytes as usize).min(cap) } else { cap };
    loop {
        let mut watchers: Vec<watch::Receiver<LogOffsets>> = Vec::new();
        let started = std::time::Instant::now();
        let (responses, bytes, errored) = read_all(ctx, &req, max_bytes, &mut watchers);
        tracing::trace!(bytes, elapsed_us = started.elapsed().as_micros() as u64, "fetch read");
        if bytes >= min_bytes || errored || watchers.is_empty() || Instant::now() >= deadline {
            return FetchResponse::default().with_responses(responses);
        }
        // Wait for any partition's high watermark to move, or the deadline.
        let changed = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        let _waiting = ctx.metrics.fetch_waiting();
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let mut unused = Vec::new();
            let (responses, _, _) = read_all(ctx, &req, max_bytes, &mut unused);
            return FetchResponse::default().with_responses(responses);
        }
    }
}

/// Reads every requested partition once; returns the responses, the bytes
/// read and whether any partition had an error. Subscribes `watchers` to the
/// partitions read *before* reading, so no append between read and wait is missed.
fn read_all(
    ctx: &Node,
    req: &FetchRequest,
    max_bytes: usize,
    watchers: &mut Vec<watch::Receiver<LogOffsets>>,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut total = 0usize;
    let mut errored = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let name = topic.topic.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let data = PartitionData::default().with_partition_index(p.partition);
            let handle = match ctx.routing.leader_replica(name, p.partition) {
                Lookup::Leader(h) => h,
                Lookup::NotLeader => {
                    errored = true;
                    partitions.push(data.with_error_code(ResponseError::NotLeaderOrFollower.code()));
                    continue;
                }
                Lookup::UnknownTopicOrPartition => {
                    errored = true;
                    partitions.push(data.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                    continue;
                }
            };
            let mut rx = handle.log.subscribe();
            rx.borrow_and_update();
            watchers.push(rx);
            let offsets = handle.log.offsets();
            let data = data
                .with_high_watermark(offsets.high_watermark)
                .with_last_stable_offset(offsets.high_watermark)
                .with_log_start_offset(offsets.log_start_offset);
            let room = max_bytes.saturating_sub(total);
            let limit = (p.partition_max_bytes.max(0) as usize).min(room);
            // Past the response limit, only the first partition with data may
            // exceed it (one whole batch), as Kafka does.
            if limit == 0 && total > 0 {
                partitions.push(data);
                continue;
            }
            match handle.log.read(p.fetch_offset, limit) {
                Ok(read) => {
                    total += read.bytes.len();
                    partitions.push(data.with_records(Some(Bytes::from(read.bytes))));
                }
                Err(e) => {
                    errored = true;
                    tracing::debug!(topic = name, partition = p.partition, error = %e, "fetch read");
                    partitions.push(data.with_error_code(read_code(&e).code()));
                }
            }
        }
        topics.push(
            FetchableTopicResponse::default().with_topic(topic.topic.clone()).with_partitions(partitions),
        );
    }
    (topics, total, errored)
}
