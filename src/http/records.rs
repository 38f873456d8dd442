//! A small REST proxy for people without a Kafka client: produce JSON or
//! base64 records (`POST /v1/topics/{name}/records`) and read a partition
//! (`GET /v1/topics/{name}/partitions/{p}/records`).
//!
//! Records are partitioned as Kafka's clients do — the given partition, else
//! `murmur2(key) % partitions` for a keyed record, else one partition per
//! request in turn (like the sticky partitioner) — and each partition's share
//! becomes one uncompressed record batch appended through the same path as a
//! Kafka produce, on the partition's leader (forwarded there when that is
//! another node). A request spanning partitions is not atomic across them:
//! on an error, the partitions not named in it may have been written.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::{ApiError, Body, ErrorBody, Params};
use crate::http::{peer, AppState};
use crate::partition::batch::{self, PlainRecord};
use crate::partition::inflate;
use crate::partition::routing::Lookup;

const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX: usize = 100;
/// How long a request waits for a partition without a leader to get one.
const LEADER_WAIT: Duration = Duration::from_secs(5);
const MAX_MAX: usize = 10_000;
/// Bytes read from the log per step of a read.
const READ_CHUNK: usize = 1024 * 1024;
/// A read answers once its records hold this many key, value and header
/// bytes (at least one record, as a Kafka fetch does), whatever `max` says:
/// 10,000 records of a megabyte each would make a 13 GB answer.
const READ_MAX_BYTES: usize = 16 * 1024 * 1024;

/// How keys and values are given when producing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProduceFormat {
    /// A JSON string is stored as its text; any other JSON value as its JSON.
    #[default]
    Json,
    /// Strings holding base64 (standard alphabet, padded) of the bytes.
    Base64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    #[schema(value_type = Option<Object>)]
    pub key: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub value: Option<serde_json::Value>,
    /// Default: by key, else the request's partition in turn.
    pub partition: Option<i32>,
    /// Header values are UTF-8 text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceBody {
    #[serde(default)]
    pub format: ProduceFormat,
    pub records: Vec<NewRecord>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct RecordOffset {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Produced {
    /// One per record, in the request's order.
    pub offsets: Vec<RecordOffset>,
}

/// How keys and values are shown when reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadFormat {
    /// UTF-8 text (invalid sequences replaced).
    #[default]
    Text,
    Base64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReadQuery {
    /// First offset to read; default the log start.
    pub offset: Option<i64>,
    /// At most this many records (default 100, at most 10000).
    pub max: Option<usize>,
    pub format: Option<ReadFormat>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<String>,
    pub value: Option<String>,
    pub headers: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadRecords {
    pub topic: String,
    pub partition: i32,
    pub records: Vec<ReadRecord>,
    /// Where the next read continues.
    pub next_offset: i64,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// Kafka's `murmur2` (as its Java and Python clients hash keys).
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate().rev() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for `key`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

fn bytes_of(
    format: ProduceFormat,
    v: Option<serde_json::Value>,
    what: &str,
) -> Result<Option<Bytes>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    match (format, v) {
        (ProduceFormat::Json, serde_json::Value::String(s)) => Ok(Some(Bytes::from(s))),
        (ProduceFormat::Json, other) => Ok(Some(Bytes::from(other.to_string()))),
        (ProduceFormat::Base64, serde_json::Value::String(s)) => B64
            .decode(s.as_bytes())
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| ApiError::bad_request(format!("{what} is not base64: {e}"))),
        (ProduceFormat::Base64, _) => Err(ApiError::bad_request(format!("{what} must be a base64 string"))),
    }
}

#[utoipa::path(post, operation_id = "records_produce", path = "/v1/topics/{name}/records", tag = "records", request_body = ProduceBody,
    params(("name" = String, Path, description = "Topic name")),
    responses((status = 200, body = Produced), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, description = "A partition's batch exceeds max.message.bytes", body = ErrorBody),
        (status = 503, description = "No leader yet; retry", body = ErrorBody)))]
pub async fn produce(
    State(api): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    Body(req): Body<ProduceBody>,
) -> Result<Json<Produced>, ApiError> {
    let count = api.node.metadata.state().topic(&topic).map(|t| t.partitions.len() as i32);
    let Some(count) = count else {
        return Err(ApiError::not_found(format!("topic '{topic}' does not exist")));
    };
    if req.records.is_empty() {
        return Err(ApiError::bad_request("no records"));
    }
    let turn = (api.next_partition.fetch_add(1, Ordering::Relaxed) % count as u32) as i32;
    // partition → (indices in the request, records)
    let mut shares: BTreeMap<i32, (Vec<usize>, Vec<PlainRecord>)> = BTreeMap::new();
    for (i, r) in req.records.into_iter().enumerate() {
        let key = bytes_of(req.format, r.key, "key")?;
        let value = bytes_of(req.format, r.value, "value")?;
        let partition = match (r.partition, &key) {
            (Some(p), _) if (0..count).contains(&p) => p,
            (Some(p), _) => {
                return Err(ApiError::bad_request(format!(
                    "partition {p} out of range: '{topic}' has {count}"
                )))
            }
            (None, Some(k)) => partition_for_key(k, count),
            (None, None) => turn,
        };
        let share = shares.entry(partition).or_default();
        share.0.push(i);
        share.1.push(PlainRecord {
            key,
            value,
            headers: r.headers.into_iter().map(|(k, v)| (k, Bytes::from(v))).collect(),
        });
    }
    let forwarded = peer::was_forwarded(&headers);
    let total: usize = shares.values().map(|s| s.0.len()).sum();
    let results = join_all(shares.into_iter().map(|(partition, (indices, records))| {
        let (api, topic) = (&api, &topic);
        async move {
            let base = produce_share(api, topic, partition, records, forwarded).await?;
            Ok::<_, ApiError>((partition, indices, base))
        }
    }))
    .await;
    let mut offsets = vec![RecordOffset { partition: 0, offset: -1 }; total];
    for result in results {
        let (partition, indices, base) = result?;
        for (n, i) in indices.into_iter().enumerate() {
            offsets[i] = RecordOffset { partition, offset: base + n as i64 };
        }
    }
    Ok(Json(Produced { offsets }))
}

/// Appends one partition's records where its leader is; returns the first
/// record's offset.
async fn produce_share(
    api: &AppState,
    topic: &str,
    partition: i32,
    records: Vec<PlainRecord>,
    forwarded: bool,
) -> Result<i64, ApiError> {
    let ctx = &api.node;
    match ctx.routing.leader_replica(topic, partition) {
        Lookup::Leader(_) => {
            let batch = encode_batch(records)?;
            Ok(ctx.append(topic, partition, batch, PRODUCE_TIMEOUT).await?.base_offset)
        }
        Lookup::UnknownTopicOrPartition => {
            Err(ApiError::not_found(format!("{topic}/{partition} does not exist")))
        }
        Lookup::NotLeader if forwarded => {
            Err(ApiError::unavailable(format!("{topic}/{partition}: leadership is moving; retry")))
        }
        Lookup::NotLeader => {
            let addr = leader_addr(api, topic, partition).await?;
            let body = ProduceBody {
                format: ProduceFormat::Base64,
                records: records
                    .into_iter()
                    .map(|r| NewRecord {
                        key: r.key.map(|k| serde_json::Value::String(B64.encode(k))),
                        value: r.value.map(|v| serde_json::Value::String(B64.encode(v))),
                        partition: Some(partition),
                        headers: r
                            .headers
                            .into_iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                            .collect(),
                    })
                    .collect(),
            };
            let body = serde_json::to_vec(&body).map_err(|e| ApiError::unavailable(e.to_string()))?;
            let path = format!("/v1/topics/{topic}/records");
            let produced: Produced =
                api.peers.call_json(&addr, Method::POST, &path, Some(Bytes::from(body))).await?;
            produced
                .offsets
                .first()
                .map(|o| o.offset)
                .ok_or_else(|| ApiError::unavailable("the leader answered no offsets"))
        }
    }
}

/// The admin address of the partition's leader, waiting up to `LEADER_WAIT`
/// while it has none (just created, or electing), as a Kafka client retries.
async fn leader_addr(api: &AppState, topic: &str, partition: i32) -> Result<String, ApiError> {
    let ctx = &api.node;
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        let leader = ctx
            .routing
            .leader_of(topic, partition)
            .and_then(|(l, _)| ctx.metadata.state().brokers.get(&l).cloned());
        match leader {
            Some(b) => return Ok(b.http_addr),
            None if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            None => {
                return Err(ApiError::unavailable(format!("{topic}/{partition} has no leader yet; retry")))
            }
        }
    }
}

fn encode_batch(records: Vec<PlainRecord>) -> Result<Bytes, ApiError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    batch::encode_plain(records, now).map_err(|e| ApiError::bad_request(e.to_string()))
}

#[utoipa::path(get, operation_id = "records_read", path = "/v1/topics/{name}/partitions/{partition}/records", tag = "records",
    params(("name" = String, Path, description = "Topic name"), ("partition" = i32, Path), ReadQuery),
    responses((status = 200, body = ReadRecords), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 416, description = "Offset outside the log", body = ErrorBody)))]
pub async fn read(
    State(api): State<AppState>,
    Path((topic, partition)): Path<(String, String)>,
    Params(q): Params<ReadQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let ctx = &api.node;
    let partition: i32 = partition
        .parse()
        .map_err(|_| ApiError::bad_request(format!("'{partition}' is not a partition number")))?;
    let max = q.max.unwrap_or(DEFAULT_MAX);
    if max == 0 || max > MAX_MAX {
        return Err(ApiError::bad_request(format!("max must be 1 to {MAX_MAX}")));
    }
    let handle = match ctx.routing.leader_replica(&topic, partition) {
        Lookup::Leader(h) => h,
        Lookup::UnknownTopicOrPartition => {
            return Err(ApiError::not_found(format!("{topic}/{partition} does not exist")))
        }
        // Reads go to the leader, whose high watermark is the freshest; a
        // replica here answers when the leader cannot be reached.
        Lookup::NotLeader => {
            let local = ctx.partitions.get(&topic, partition);
            if !peer::was_forwarded(&headers) {
                if let Ok(addr) = leader_addr(&api, &topic, partition).await {
                    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
                    match api.peers.forward(&addr, Method::GET, path, None).await {
                        Ok(resp) => return Ok(resp),
                        Err(e) if local.is_none() => return Err(e),
                        Err(_) => {}
                    }
                }
            }
            local.ok_or_else(|| {
                ApiError::unavailable(format!("{topic}/{partition} has no leader yet; retry"))
            })?
        }
    };
    let offsets = handle.log.offsets();
    let from = q.offset.unwrap_or(offsets.log_start_offset);
    let format = q.format.unwrap_or_default();
    let show = |b: Option<Bytes>| {
        b.map(|b| match format {
            ReadFormat::Text => String::from_utf8_lossy(&b).into_owned(),
            ReadFormat::Base64 => B64.encode(b),
        })
    };
    if from < offsets.log_start_offset || from > offsets.high_watermark {
        return Err(ApiError::new(
            axum::http::StatusCode::RANGE_NOT_SATISFIABLE,
            format!("offset {from} is outside [{}, {}]", offsets.log_start_offset, offsets.high_watermark),
        ));
    }
    let mut out = Vec::new();
    let mut cursor = from;
    let mut payload = 0usize;
    let full = |out: &Vec<ReadRecord>, payload: usize| out.len() >= max || payload >= READ_MAX_BYTES;
    while !full(&out, payload) && cursor < offsets.high_watermark {
        let chunk = handle.log.read(cursor, READ_CHUNK)?;
        if chunk.batches == 0 {
            break;
        }
        let sets = inflate::decode_all(Bytes::from(chunk.bytes)).map_err(|e| {
            ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("cannot decode: {e}"))
        })?;
        for record in sets.into_iter().flat_map(|s| s.records) {
            cursor = cursor.max(record.offset + 1);
            if record.offset < from || record.control || full(&out, payload) {
                continue;
            }
            let len = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len());
            payload += len(&record.key)
                + len(&record.value)
                + record.headers.iter().map(|(k, v)| k.len() + len(v)).sum::<usize>();
            out.push(ReadRecord {
                offset: record.offset,
                timestamp: record.timestamp,
                key: show(record.key),
                value: show(record.value),
                headers: record.headers.into_iter().map(|(k, v)| (k.to_string(), show(v))).collect(),
            });
        }
    }
    let next_offset = out.last().map_or(cursor.max(from), |r| r.offset + 1);
    Ok(Json(ReadRecords {
        topic,
        partition,
        records: out,
        next_offset,
        high_watermark: offsets.high_watermark,
        log_start_offset: offsets.log_start_offset,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key), want, "{}", String::from_utf8_lossy(key));
        }
    }
}
