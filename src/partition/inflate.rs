//! Bounded decompression of record batches, and the one way the broker turns
//! a batch's bytes into records. A compressed batch is inflated by streaming
//! decoders that stop at a limit, so a small batch that claims (or truly
//! holds) gigabytes costs at most the limit: a gzip bomb is refused after the
//! limit's worth of output, a raw snappy block whose header claims more than
//! the limit (or more than snappy can expand its input to) is refused before
//! anything is allocated, and zstd frames may not ask for a window above
//! `ZSTD_WINDOW_LOG_MAX`.
//!
//! The limit depends on the batch alone (`limit_for`): 32 MiB, or 32 times
//! the size of its compressed records if that is more. Kafka bounds a batch after compression
//! only, and producers batch up to about a megabyte before compressing, so
//! every ordinary client fits with room to spare, while what one batch can
//! make the broker allocate stays bounded by its own size. Because it is a
//! function of the bytes, every replica and every reader agrees on it: the
//! produce path inflates each compressed batch once to validate it
//! (`batch::check_records`), so a stored batch inflates within the same limit
//! for compaction (in the state machine, where replicas must agree), the REST
//! read path, timestamp lookups and the group coordinator's replay.

use std::io::Read;

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordSet};

/// The largest zstd window a batch may use (8 MiB). zstd's own default cap is
/// 2^27; producers at their default levels use 2^21 or less.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;
/// Snappy turns a 3-byte copy into at most 64 bytes, so no valid raw snappy
/// block inflates to more than this many times its size.
const SNAPPY_MAX_RATIO: usize = 32;
/// The 16-byte header of snappy-java's framing (what the Java client writes).
const XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    #[error("batch inflates to more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("batch does not decompress as {}", codec_name(*.0))]
    Corrupt(Compression),
    #[error("unknown compression codec {0}")]
    UnknownCodec(i16),
    #[error("record batch does not decode")]
    Malformed,
}

/// A codec's name as Kafka's `compression.type` spells it.
pub fn codec_name(codec: Compression) -> &'static str {
    match codec {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

/// The codec named by a batch's attributes.
pub fn codec(attributes: i16) -> Result<Compression, InflateError> {
    match attributes & 0x7 {
        0 => Ok(Compression::None),
        1 => Ok(Compression::Gzip),
        2 => Ok(Compression::Snappy),
        3 => Ok(Compression::Lz4),
        4 => Ok(Compression::Zstd),
        other => Err(InflateError::UnknownCodec(other)),
    }
}

/// Whatever its size, a batch may inflate to this much.
pub const LIMIT_FLOOR: usize = 32 * 1024 * 1024;
/// A larger batch may inflate to this many times its size.
pub const LIMIT_RATIO: usize = 32;

/// How far `compressed_len` bytes of a batch's records may inflate.
pub fn limit_for(compressed_len: usize) -> usize {
    compressed_len.saturating_mul(LIMIT_RATIO).max(LIMIT_FLOOR)
}

/// Inflates `input` (a batch's records section) compressed with `codec`;
/// `TooLarge` as soon as the output would pass `limit`.
pub fn inflate(codec: Compression, input: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    let corrupt = |_: std::io::Error| InflateError::Corrupt(codec);
    match codec {
        Compression::None => bounded(codec, input, input.len(), limit),
        Compression::Gzip => bounded(codec, flate2::read::MultiGzDecoder::new(input), input.len(), limit),
        Compression::Lz4 => bounded(codec, lz4::Decoder::new(input).map_err(corrupt)?, input.len(), limit),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::new(input).map_err(corrupt)?;
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(corrupt)?;
            bounded(codec, decoder, input.len(), limit)
        }
        Compression::Snappy => snappy(input, limit),
    }
}

/// Reads `r` to its end, never holding more than `limit` bytes of output.
fn bounded(
    codec: Compression,
    r: impl Read,
    input_len: usize,
    limit: usize,
) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::with_capacity(input_len.saturating_mul(4).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    r.take(cap).read_to_end(&mut out).map_err(|_| InflateError::Corrupt(codec))?;
    if out.len() > limit {
        return Err(InflateError::TooLarge { limit });
    }
    Ok(out)
}

/// Raw snappy (librdkafka) or snappy-java's framing: a magic header, then
/// blocks of `u32` length + raw snappy.
fn snappy(input: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    let Some(mut rest) = input.strip_prefix(XERIAL_MAGIC.as_slice()) else {
        let mut out = Vec::new();
        snappy_block(input, limit, &mut out)?;
        return Ok(out);
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(|| truncated("block length"))?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail.get(..len).ok_or_else(|| truncated("block"))?;
        snappy_block(block, limit, &mut out)?;
        rest = &tail[len..];
    }
    Ok(out)
}

fn truncated(what: &str) -> InflateError {
    tracing::debug!(what, "snappy input is truncated");
    InflateError::Corrupt(Compression::Snappy)
}

/// Appends one raw snappy block to `out`, if `out` stays within `limit`.
fn snappy_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), InflateError> {
    let corrupt = |_: snap::Error| InflateError::Corrupt(Compression::Snappy);
    let len = snap::raw::decompress_len(block).map_err(corrupt)?;
    if len > limit.saturating_sub(out.len()) {
        return Err(InflateError::TooLarge { limit });
    }
    if len > block.len().saturating_mul(SNAPPY_MAX_RATIO).saturating_add(64) {
        return Err(InflateError::Corrupt(Compression::Snappy));
    }
    let start = out.len();
    out.resize(start + len, 0);
    snap::raw::Decoder::new().decompress(block, &mut out[start..]).map_err(corrupt)?;
    Ok(())
}

/// Decodes one whole batch into its records, inflating within its limit.
pub fn decode(batch: &[u8]) -> Result<RecordSet, InflateError> {
    let mut buf = Bytes::copy_from_slice(batch);
    decode_bytes(&mut buf)
}

/// Decodes consecutive batches (a stored range, a fetch's bytes).
pub fn decode_all(mut bytes: Bytes) -> Result<Vec<RecordSet>, InflateError> {
    let mut sets = Vec::new();
    while !bytes.is_empty() {
        sets.push(decode_bytes(&mut bytes)?);
    }
    Ok(sets)
}

fn decode_bytes(buf: &mut Bytes) -> Result<RecordSet, InflateError> {
    // The decoder's closure can only answer `anyhow`; the first typed error
    // it met is kept here so the caller gets that, not its text.
    let failure = std::cell::RefCell::new(None);
    let inflater = |records: &mut Bytes, codec: Compression| {
        if codec == Compression::None {
            return Ok(records.clone());
        }
        let limit = limit_for(records.len());
        inflate(codec, records, limit).map(Bytes::from).map_err(|e| {
            let text = e.to_string();
            *failure.borrow_mut() = Some(e);
            anyhow::anyhow!(text)
        })
    };
    RecordBatchDecoder::decode_with_custom_compression(buf, Some(inflater)).map_err(|e| {
        failure.borrow_mut().take().unwrap_or_else(|| {
            tracing::debug!(error = %e, "record batch does not decode");
            InflateError::Malformed
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const MIB: usize = 1024 * 1024;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_codec_round_trips_within_the_limit() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        let lz4 = {
            let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
            e.write_all(&data).unwrap();
            e.finish().0
        };
        let zstd = zstd::encode_all(&data[..], 3).unwrap();
        let raw_snappy = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let mut xerial = XERIAL_MAGIC.to_vec();
        for chunk in data.chunks(32 * 1024) {
            let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            xerial.extend_from_slice(&(block.len() as u32).to_be_bytes());
            xerial.extend_from_slice(&block);
        }
        for (codec, input) in [
            (Compression::None, data.clone()),
            (Compression::Gzip, gzip(&data)),
            (Compression::Lz4, lz4),
            (Compression::Zstd, zstd),
            (Compression::Snappy, raw_snappy),
            (Compression::Snappy, xerial),
        ] {
            assert_eq!(inflate(codec, &input, data.len()).unwrap(), data, "{codec:?}");
            assert_eq!(
                inflate(codec, &input, data.len() - 1),
                Err(InflateError::TooLarge { limit: data.len() - 1 }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn a_gzip_bomb_costs_the_limit_not_its_size() {
        // 64 MiB of zeros in about 64 KiB.
        let bomb = gzip(&vec![0u8; 64 * MIB]);
        assert!(bomb.len() < 100 * 1024);
        assert_eq!(inflate(Compression::Gzip, &bomb, MIB), Err(InflateError::TooLarge { limit: MIB }));
    }

    #[test]
    fn snappy_headers_that_lie_are_refused_before_allocating() {
        // A varint length of 2^32 - 1 and nothing behind it.
        let lying = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        assert!(matches!(inflate(Compression::Snappy, &lying, usize::MAX), Err(InflateError::Corrupt(_))));
        assert_eq!(inflate(Compression::Snappy, &lying, MIB), Err(InflateError::TooLarge { limit: MIB }));
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 200, 1]);
        assert!(matches!(inflate(Compression::Snappy, &xerial, MIB), Err(InflateError::Corrupt(_))));
    }

    #[test]
    fn garbage_is_corrupt_for_every_codec() {
        for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd, Compression::Snappy] {
            assert!(matches!(inflate(codec, b"not compressed at all", MIB), Err(InflateError::Corrupt(_))));
        }
        assert_eq!(codec(5), Err(InflateError::UnknownCodec(5)));
    }
}
