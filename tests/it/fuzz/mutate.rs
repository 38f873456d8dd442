//! Mutations of a seed input, structural first: the fields that decoders
//! trust are lengths and counts, so most mutations find a plausible one (a
//! big-endian i16/i32 or a varint whose value fits the bytes after it) and
//! make it lie, or write an extreme integer or varint anywhere; the rest
//! truncate, splice two inputs, repeat or delete a range, or flip bytes.

use crate::fuzz::rng::Rng;

/// Values that break decoders: boundaries of every width, signs, off-by-ones.
const INTERESTING: [i64; 20] = [
    0,
    1,
    -1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX,
    i64::MIN,
    -2,
    1 << 20,
];

/// One mutant of `seed`, with 1 to 4 mutations; `others` are splice partners.
pub fn mutate(rng: &mut Rng, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(100) {
            0..=29 => lie_about_a_length(rng, &mut out),
            30..=44 => overwrite_int(rng, &mut out),
            45..=59 => write_varint(rng, &mut out),
            60..=66 => {
                let at = rng.below(out.len() + 1);
                out.truncate(at);
            }
            67..=74 => {
                let other = rng.pick(others);
                let (a, b) = (rng.below(out.len() + 1), rng.below(other.len() + 1));
                out.truncate(a);
                out.extend_from_slice(&other[b..]);
            }
            75..=81 => repeat_range(rng, &mut out),
            82..=87 => {
                if !out.is_empty() {
                    let a = rng.below(out.len());
                    let b = (a + 1 + rng.below(16)).min(out.len());
                    out.drain(a..b);
                }
            }
            _ => {
                for _ in 0..=rng.below(4) {
                    if out.is_empty() {
                        break;
                    }
                    let at = rng.below(out.len());
                    out[at] =
                        if rng.chance(50) { rng.next_u64() as u8 } else { out[at] ^ (1 << rng.below(8)) };
                }
            }
        }
    }
    out
}

/// Repeats a short range a few times (an array with more elements than its
/// count says, or the reverse).
fn repeat_range(rng: &mut Rng, out: &mut Vec<u8>) {
    if out.is_empty() {
        return;
    }
    let a = rng.below(out.len());
    let b = (a + 1 + rng.below(32)).min(out.len());
    let chunk = out[a..b].to_vec();
    let copies = chunk.repeat(1 + rng.below(8));
    out.splice(b..b, copies);
}

fn interesting(rng: &mut Rng) -> i64 {
    if rng.chance(80) {
        *rng.pick(&INTERESTING)
    } else {
        rng.next_u64() as i64
    }
}

/// Overwrites a 1, 2, 4 or 8-byte integer, big- or little-endian.
fn overwrite_int(rng: &mut Rng, out: &mut [u8]) {
    let width = *rng.pick(&[1usize, 2, 4, 8]);
    if out.len() < width {
        return;
    }
    let at = rng.below(out.len() - width + 1);
    let v = interesting(rng).to_be_bytes();
    let mut bytes = v[8 - width..].to_vec();
    if rng.chance(30) {
        bytes.reverse();
    }
    out[at..at + width].copy_from_slice(&bytes);
}

/// Replaces 1 to 5 bytes with a varint: Kafka's unsigned LEB128 or zig-zag,
/// or one of bincode's wide forms (251/252/253 then 2, 4 or 8 bytes).
fn write_varint(rng: &mut Rng, out: &mut Vec<u8>) {
    let v = interesting(rng);
    let encoded = match rng.below(3) {
        0 => leb128(v as u64 & 0xffff_ffff),
        1 => leb128(((v << 1) ^ (v >> 63)) as u64),
        _ => {
            let (tag, width) = *rng.pick(&[(251u8, 2usize), (252, 4), (253, 8)]);
            let mut e = vec![tag];
            e.extend_from_slice(&v.to_le_bytes()[..width]);
            e
        }
    };
    let at = rng.below(out.len() + 1);
    let end = (at + 1 + rng.below(5)).min(out.len());
    out.splice(at..end, encoded);
}

fn leb128(mut v: u64) -> Vec<u8> {
    let mut e = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            e.push(byte);
            return e;
        }
        e.push(byte | 0x80);
    }
}

/// Reads an unsigned LEB128 at `at`: (value, its length).
fn read_leb128(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for i in 0..5 {
        let byte = *b.get(at + i)?;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Finds a field that looks like a length or count (its value fits the
/// bytes after it and is not zero) and rewrites it to something that does not.
fn lie_about_a_length(rng: &mut Rng, out: &mut [u8]) {
    let mut candidates = Vec::new();
    for at in 0..out.len() {
        let rest = |w: usize| out.len().saturating_sub(at + w) as u64;
        if at + 4 <= out.len() {
            let v = u32::from_be_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]) as u64;
            if v > 0 && v <= rest(4) {
                candidates.push((at, 4usize, v));
            }
        }
        if at + 2 <= out.len() {
            let v = u16::from_be_bytes([out[at], out[at + 1]]) as u64;
            if v > 0 && v <= rest(2) {
                candidates.push((at, 2, v));
            }
        }
        if let Some((v, n)) = read_leb128(out, at) {
            if v > 1 && v <= rest(n) + 1 && n == 1 {
                candidates.push((at, 1, v));
            }
        }
    }
    if candidates.is_empty() {
        return;
    }
    let (at, width, v) = *rng.pick(&candidates);
    let remaining = out.len() as u64 - (at + width) as u64;
    let lie = match rng.below(6) {
        0 => v + 1,
        1 => remaining + 1,
        2 => v.saturating_mul(2),
        3 => u64::MAX,
        4 => 0,
        _ => interesting(rng) as u64,
    };
    match width {
        4 => out[at..at + 4].copy_from_slice(&(lie as u32).to_be_bytes()),
        2 => out[at..at + 2].copy_from_slice(&(lie as u16).to_be_bytes()),
        // A one-byte varint can only lie within a byte without shifting the rest.
        _ => out[at] = (lie as u8) & 0x7f,
    }
}

#[test]
fn mutants_differ_and_stay_reproducible() {
    let seed: Vec<u8> = (0..64u8).collect();
    let others = vec![seed.clone()];
    let a: Vec<Vec<u8>> = (0..100).map(|i| mutate(&mut Rng::new(i), &seed, &others)).collect();
    let b: Vec<Vec<u8>> = (0..100).map(|i| mutate(&mut Rng::new(i), &seed, &others)).collect();
    assert_eq!(a, b, "same seed, same mutant");
    assert!(a.iter().filter(|m| **m != seed).count() > 90);
}
