//! Record-batch validation and offset stamping, on the raw bytes the client
//! sent (pure: no IO, no clock). Batches are stored as sent, compressed ones
//! stay compressed; only the base offset and the partition leader epoch are
//! rewritten, and the CRC covers neither.
//!
//! Layout of a v2 batch header (Kafka's `DefaultRecordBatch`):
//! `baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 |
//!  crc u32 | attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 |
//!  maxTimestamp i64 | producerId i64 | producerEpoch i16 | baseSequence i32 |
//!  recordsCount i32`, 61 bytes; the CRC-32C covers `attributes` to the end.

use bytes::Bytes;

use crate::partition::inflate::{self, InflateError};

pub const HEADER_LEN: usize = 61;
const LENGTH_PREFIX: usize = 12;
const CRC_START: usize = 21;
const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record batch is truncated")]
    Truncated,
    #[error("record batch length {0} is invalid")]
    BadLength(i32),
    #[error("record batch magic {0} is not supported (only v2)")]
    UnsupportedMagic(i8),
    #[error("record batch CRC mismatch")]
    CrcMismatch,
    #[error("record batch has no records")]
    Empty,
    #[error("record batch count {count} does not match last offset delta {delta}")]
    NonSequentialOffsets { count: i32, delta: i32 },
    #[error("transactional and control batches are not supported")]
    Transactional,
    #[error(transparent)]
    Inflate(#[from] InflateError),
    #[error("record {index} of the batch is malformed: {reason}")]
    BadRecord { index: i32, reason: &'static str },
    #[error("the batch holds {extra} bytes after its last record")]
    TrailingBytes { extra: usize },
}

/// The fixed header of one stored or received batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], BatchError> {
    b.get(at..at + N).and_then(|s| s.try_into().ok()).ok_or(BatchError::Truncated)
}

impl BatchHeader {
    /// Parses the header at the start of `b` (no CRC check).
    pub fn parse(b: &[u8]) -> Result<Self, BatchError> {
        let magic = i8::from_be_bytes(be(b, 16)?);
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        Ok(Self {
            base_offset: i64::from_be_bytes(be(b, 0)?),
            batch_length: i32::from_be_bytes(be(b, 8)?),
            leader_epoch: i32::from_be_bytes(be(b, 12)?),
            magic,
            crc: u32::from_be_bytes(be(b, 17)?),
            attributes: i16::from_be_bytes(be(b, 21)?),
            last_offset_delta: i32::from_be_bytes(be(b, 23)?),
            base_timestamp: i64::from_be_bytes(be(b, 27)?),
            max_timestamp: i64::from_be_bytes(be(b, 35)?),
            producer_id: i64::from_be_bytes(be(b, 43)?),
            producer_epoch: i16::from_be_bytes(be(b, 51)?),
            base_sequence: i32::from_be_bytes(be(b, 53)?),
            records_count: i32::from_be_bytes(be(b, 57)?),
        })
    }

    /// Bytes the whole batch occupies, header included.
    pub fn total_len(&self) -> usize {
        LENGTH_PREFIX + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The batch's last sequence number (sequences wrap at `i32::MAX`).
    pub fn last_sequence(&self) -> i32 {
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }

    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Splits a produce request's `records` into batches and validates each:
/// magic v2, length, CRC-32C, a non-empty record count matching the offset
/// delta, and no transactional/control batches.
pub fn validate(records: &Bytes) -> Result<Vec<(BatchHeader, Bytes)>, BatchError> {
    let out = split_checked(records)?;
    for (header, _) in &out {
        if header.records_count - 1 != header.last_offset_delta {
            return Err(BatchError::NonSequentialOffsets {
                count: header.records_count,
                delta: header.last_offset_delta,
            });
        }
        if header.attributes & (TRANSACTIONAL | CONTROL) != 0 {
            return Err(BatchError::Transactional);
        }
    }
    Ok(out)
}

/// Splits back-to-back batches, checking each one's length, CRC-32C and
/// that it holds records — what any batch, received or stored, must pass.
/// (A stored batch that compaction rewrote may skip offsets, so the offset
/// delta is checked only on what clients send, by `validate`.)
pub fn split_checked(records: &Bytes) -> Result<Vec<(BatchHeader, Bytes)>, BatchError> {
    let out = split(records)?;
    for (header, batch) in &out {
        if crc32c::crc32c(&batch[CRC_START..]) != header.crc {
            return Err(BatchError::CrcMismatch);
        }
    }
    Ok(out)
}

/// Splits back-to-back batches by their headers' lengths, without checking
/// CRCs: for a partition applying an entry its leader validated
/// (`validate`) before it went into the Raft log.
pub fn split(records: &Bytes) -> Result<Vec<(BatchHeader, Bytes)>, BatchError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let rest = &records[at..];
        if rest.len() < HEADER_LEN {
            return Err(BatchError::Truncated);
        }
        let header = BatchHeader::parse(rest)?;
        if (header.batch_length as i64) < (HEADER_LEN - LENGTH_PREFIX) as i64 {
            return Err(BatchError::BadLength(header.batch_length));
        }
        let len = header.total_len();
        if rest.len() < len {
            return Err(BatchError::Truncated);
        }
        if header.records_count <= 0 {
            return Err(BatchError::Empty);
        }
        out.push((header, records.slice(at..at + len)));
        at += len;
    }
    if out.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(out)
}

/// The leader's check of one batch's records, beyond what `validate` reads
/// from its header: the records section inflates within the batch's limit
/// (`partition::inflate::limit_for`) and holds exactly `records_count` well-formed
/// records whose offset deltas run 0, 1, 2, … — what makes every stored batch
/// readable later and its offsets contiguous. Walks the records without
/// allocating them. Not run again when a replica applies the batch: what
/// the leader accepted is in the log as it was checked.
pub fn check_records(header: &BatchHeader, batch: &[u8]) -> Result<(), BatchError> {
    let section = batch.get(HEADER_LEN..).ok_or(BatchError::Truncated)?;
    check_records_within(header, batch, inflate::limit_for(section.len()))
}

fn check_records_within(header: &BatchHeader, batch: &[u8], inflate_limit: usize) -> Result<(), BatchError> {
    let section = batch.get(HEADER_LEN..).ok_or(BatchError::Truncated)?;
    let codec = inflate::codec(header.attributes)?;
    let inflated;
    let mut records = match codec {
        kafka_protocol::records::Compression::None => section,
        other => {
            inflated = inflate::inflate(other, section, inflate_limit)?;
            &inflated[..]
        }
    };
    for index in 0..header.records_count {
        let bad = |reason| BatchError::BadRecord { index, reason };
        let len = varint(&mut records).ok_or(bad("length"))?;
        let mut r = take(&mut records, len).ok_or(bad("length past the end"))?;
        take(&mut r, 1).ok_or(bad("attributes"))?;
        varint(&mut r).ok_or(bad("timestamp delta"))?;
        if varint(&mut r) != Some(i64::from(index)) {
            return Err(bad("offset delta out of sequence"));
        }
        let key = varint(&mut r).ok_or(bad("key length"))?;
        nullable(&mut r, key).ok_or(bad("key"))?;
        let value = varint(&mut r).ok_or(bad("value length"))?;
        nullable(&mut r, value).ok_or(bad("value"))?;
        let headers = varint(&mut r).ok_or(bad("header count"))?;
        for _ in 0..headers.max(0) {
            let k = varint(&mut r).ok_or(bad("header key length"))?;
            take(&mut r, k).ok_or(bad("header key"))?;
            let v = varint(&mut r).ok_or(bad("header value length"))?;
            nullable(&mut r, v).ok_or(bad("header value"))?;
        }
        if headers < 0 || !r.is_empty() {
            return Err(bad("length does not match its fields"));
        }
    }
    if !records.is_empty() {
        return Err(BatchError::TrailingBytes { extra: records.len() });
    }
    Ok(())
}

/// A zig-zag varint (Kafka's `varint`/`varlong`), at most 10 bytes. Most
/// are one byte (small lengths and deltas): that case is decided first, as
/// the leader walks every record of every batch it takes.
#[inline(always)]
fn varint(b: &mut &[u8]) -> Option<i64> {
    if let Some((&byte, rest)) = b.split_first() {
        if byte & 0x80 == 0 {
            *b = rest;
            return Some(i64::from(byte >> 1) ^ -i64::from(byte & 1));
        }
    }
    varint_long(b)
}

fn varint_long(b: &mut &[u8]) -> Option<i64> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

/// `len` bytes off the front of `b`; `None` for a negative or too long `len`.
#[inline(always)]
fn take<'a>(b: &mut &'a [u8], len: i64) -> Option<&'a [u8]> {
    let (head, rest) = b.split_at_checked(usize::try_from(len).ok()?)?;
    *b = rest;
    Some(head)
}

/// Like `take`, with -1 meaning null.
#[inline(always)]
fn nullable<'a>(b: &mut &'a [u8], len: i64) -> Option<&'a [u8]> {
    if len == -1 {
        Some(&[])
    } else {
        take(b, len)
    }
}

/// Writes the offset and leader epoch the partition assigned into a batch.
pub fn stamp(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    if batch.len() >= HEADER_LEN {
        batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
        batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    }
}

/// A record the broker writes itself (group state, the REST proxy).
#[derive(Debug, Clone, Default)]
pub struct PlainRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Bytes)>,
}

/// kafka-protocol's encoder refused a batch (a field past its wire limits).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the record batch: {0}")]
pub struct EncodeError(Box<dyn std::error::Error + Send + Sync>);

/// One uncompressed, non-idempotent v2 batch of `records`, offsets from 0,
/// every record stamped `timestamp` (ms).
pub fn encode_plain(records: Vec<PlainRecord>, timestamp: i64) -> Result<Bytes, EncodeError> {
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // No producer id, so base sequence -1; the encoder starts a new
            // batch wherever offset - sequence changes, so keep it constant.
            sequence: i as i32 - 1,
            timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers.into_iter().map(|(k, v)| (StrBytes::from_string(k), Some(v))).collect(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, &records, &options).map_err(|e| EncodeError(e.into()))?;
    Ok(buf.freeze())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    #[test]
    fn plain_records_make_one_batch() {
        let records = (0..5)
            .map(|i| PlainRecord { value: Some(Bytes::from(format!("v{i}"))), ..Default::default() })
            .collect();
        let encoded = encode_plain(records, 7).unwrap();
        let batches = validate(&encoded).unwrap();
        assert_eq!(batches.len(), 1);
        let h = batches[0].0;
        assert_eq!((h.records_count, h.last_offset_delta, h.base_sequence, h.producer_id), (5, 4, -1, -1));
    }

    pub(crate) fn batch(n: usize, compression: Compression) -> Bytes {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: 1_000 + i as i64,
                key: None,
                value: Some(Bytes::from(format!("value-{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        let opts = RecordEncodeOptions { version: 2, compression };
        RecordBatchEncoder::encode(&mut buf, &records, &opts).unwrap();
        buf.freeze()
    }

    #[test]
    fn valid_batches_pass_for_every_codec() {
        for c in
            [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
        {
            let b = batch(5, c);
            let parsed = validate(&b).unwrap();
            assert_eq!(parsed.len(), 1);
            assert_eq!(parsed[0].0.records_count, 5);
            assert_eq!(parsed[0].1.len(), b.len());
        }
    }

    #[test]
    fn flipped_payload_byte_fails_crc() {
        let mut b = batch(3, Compression::None).to_vec();
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert_eq!(validate(&Bytes::from(b)), Err(BatchError::CrcMismatch));
    }

    #[test]
    fn stamping_keeps_crc_valid() {
        let mut b = batch(3, Compression::Lz4).to_vec();
        stamp(&mut b, 42, 7);
        let parsed = validate(&Bytes::from(b)).unwrap();
        assert_eq!(parsed[0].0.base_offset, 42);
        assert_eq!(parsed[0].0.leader_epoch, 7);
        assert_eq!(parsed[0].0.last_offset(), 44);
    }

    #[test]
    fn truncation_and_garbage_are_rejected_not_panicking() {
        let b = batch(3, Compression::None);
        for cut in 0..b.len() {
            assert!(validate(&b.slice(..cut)).is_err());
        }
        let mut bad_magic = b.to_vec();
        bad_magic[16] = 1;
        assert_eq!(validate(&Bytes::from(bad_magic)), Err(BatchError::UnsupportedMagic(1)));
    }

    #[test]
    fn records_are_checked_for_every_codec() {
        for c in
            [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
        {
            let b = batch(20, c);
            let (h, bytes) = validate(&b).unwrap().remove(0);
            assert_eq!(check_records(&h, &bytes), Ok(()), "{c:?}");
            assert!(
                matches!(check_records_within(&h, &bytes, 100), Err(BatchError::Inflate(_)) | Ok(())),
                "{c:?}: a limit below the inflated size refuses compressed batches"
            );
        }
        let b = batch(20, Compression::Gzip);
        let (h, bytes) = validate(&b).unwrap().remove(0);
        assert_eq!(
            check_records_within(&h, &bytes, 100),
            Err(BatchError::Inflate(InflateError::TooLarge { limit: 100 }))
        );
    }

    /// A batch whose header says more (or fewer) records than it holds, or
    /// whose records repeat an offset, is refused even with a valid CRC.
    #[test]
    fn records_that_disagree_with_their_header_are_refused() {
        let b = batch(3, Compression::None).to_vec();
        let (h, _) = validate(&Bytes::from(b.clone())).unwrap().remove(0);
        let recrc = |mut v: Vec<u8>| {
            let crc = crc32c::crc32c(&v[CRC_START..]);
            v[17..21].copy_from_slice(&crc.to_be_bytes());
            v
        };
        let fewer = BatchHeader { records_count: 2, ..h };
        assert!(matches!(check_records(&fewer, &b), Err(BatchError::TrailingBytes { .. })));
        let more = BatchHeader { records_count: 4, ..h };
        assert!(matches!(check_records(&more, &b), Err(BatchError::BadRecord { index: 3, .. })));
        // The second record's offset delta (after its length, attributes and
        // timestamp delta varints) rewritten from 1 to 0.
        let first_len = b[HEADER_LEN] as usize / 2;
        let second = HEADER_LEN + 1 + first_len;
        let mut repeated = b.clone();
        assert_eq!(repeated[second + 3], 2, "offset delta 1, zig-zag encoded");
        repeated[second + 3] = 0;
        let repeated = recrc(repeated);
        let (h2, bytes) = validate(&Bytes::from(repeated)).unwrap().remove(0);
        assert!(matches!(check_records(&h2, &bytes), Err(BatchError::BadRecord { index: 1, .. })));
    }

    #[test]
    fn varints_decode_as_kafka_writes_them() {
        for (bytes, want) in [
            (&[0u8][..], 0i64),
            (&[1], -1),
            (&[2], 1),
            (&[0xac, 0x02], 150),
            (&[0xff, 0xff, 0xff, 0xff, 0x0f], -2147483648),
        ] {
            let mut b = bytes;
            assert_eq!(varint(&mut b), Some(want), "{bytes:?}");
            assert!(b.is_empty());
        }
        assert_eq!(varint(&mut &[0x80u8; 11][..]), None, "more than ten bytes");
        assert_eq!(varint(&mut &[0x80u8][..]), None, "cut short");
    }

    proptest::proptest! {
        #[test]
        fn random_records_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), count in 0i32..50) {
            let mut v = batch(1, Compression::None).to_vec();
            v.truncate(HEADER_LEN);
            v.extend_from_slice(&data);
            let h = BatchHeader { records_count: count, ..BatchHeader::parse(&v).unwrap() };
            let _ = check_records(&h, &v);
        }
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = validate(&Bytes::from(data));
        }
    }
}
