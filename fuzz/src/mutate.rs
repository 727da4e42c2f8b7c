//! Mutations: how one input becomes the next.
//!
//! Without coverage feedback the fuzzer relies on mutations that keep an
//! input close to valid while breaking it in the ways parsers and
//! decoders get wrong: single bit and byte changes, inserted and deleted
//! ranges, chunks duplicated or spliced in from another input, tokens of
//! the target's grammar (its dictionary), runs repeated thousands of
//! times, and little-endian `u32`s (the length prefixes of kiln's binary
//! records) set to boundary values. Choosing inputs and running them is
//! `run.rs`.

use crate::rng::Rng;

/// Bytes that tend to matter: NUL, newline, quotes, high and boundary
/// values.
const BYTES: &[u8] = &[
    0x00, 0x01, b'\n', b'\r', b'\t', b' ', b'"', b'\'', b'\\', b'/', b':', b'.', b'(', b')', b'[',
    b']', b'{', b'}', b'=', b',', b'$', b'#', b'@', 0x7f, 0x80, 0xc0, 0xe2, 0xf0, 0xff,
];

/// `u32` values for length prefixes and counts.
const U32S: &[u32] = &[
    0,
    1,
    2,
    7,
    8,
    16,
    32,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
];

/// How many times a chunk is repeated: small counts, and huge ones that
/// find quadratic work and unbounded recursion.
const REPEATS: &[usize] = &[2, 3, 4, 8, 16, 64, 256, 1000, 4096, 10_000, 65_536];

/// Mutate `input` in place with one to eight stacked mutations, using
/// `dict` (the target's tokens) and `other` (another corpus input, for
/// splicing), keeping it at most `max_len` bytes.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8], dict: &[&[u8]], max_len: usize) {
    // Mostly one or two mutations, sometimes many.
    let most = 1 + rng.below(8);
    let n = 1 + rng.below(most);
    for _ in 0..n {
        mutate_once(rng, input, other, dict, max_len);
    }
    input.truncate(max_len);
}

fn mutate_once(rng: &mut Rng, b: &mut Vec<u8>, other: &[u8], dict: &[&[u8]], max_len: usize) {
    let len = b.len();
    match rng.below(14) {
        // Flip one bit.
        0 if len > 0 => {
            let i = rng.below(len);
            b[i] ^= 1 << rng.below(8);
        }
        // Set a byte to an interesting or random value.
        1 if len > 0 => {
            let i = rng.below(len);
            b[i] = if rng.one_in(2) {
                *rng.pick(BYTES)
            } else {
                rng.next_u64() as u8
            };
        }
        // Insert a few bytes.
        2 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let new: Vec<u8> = (0..n)
                .map(|_| {
                    if rng.one_in(2) {
                        *rng.pick(BYTES)
                    } else {
                        // Printable ASCII, most text targets' alphabet.
                        0x20 + rng.below(0x5f) as u8
                    }
                })
                .collect();
            b.splice(at..at, new);
        }
        // Delete a range.
        3 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            b.drain(at..at + n);
        }
        // Duplicate a chunk to another position.
        4 if len > 0 => {
            let (from, n) = chunk(rng, len);
            let at = rng.below(len + 1);
            let c = b[from..from + n].to_vec();
            b.splice(at..at, c);
        }
        // Overwrite a chunk with another chunk of the input.
        5 if len > 1 => {
            let (from, n) = chunk(rng, len);
            let to = rng.below(len - n + 1);
            let c = b[from..from + n].to_vec();
            b[to..to + n].copy_from_slice(&c);
        }
        // Splice: this input's head, the other's tail; or insert a chunk
        // of the other input.
        6 if !other.is_empty() => {
            if rng.one_in(2) {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            } else {
                let (from, n) = chunk(rng, other.len());
                let at = rng.below(len + 1);
                b.splice(at..at, other[from..from + n].iter().copied());
            }
        }
        // Insert a dictionary token.
        7 if !dict.is_empty() => {
            let t = rng.pick(dict);
            let at = rng.below(len + 1);
            b.splice(at..at, t.iter().copied());
        }
        // Overwrite with a dictionary token.
        8 if !dict.is_empty() && len > 0 => {
            let t = rng.pick(dict);
            let at = rng.below(len);
            let end = (at + t.len()).min(len);
            b.splice(at..end, t.iter().copied());
        }
        // Repeat a chunk or a token many times.
        9 => {
            let unit: Vec<u8> = if len > 0 && (dict.is_empty() || rng.one_in(2)) {
                let (from, n) = chunk(rng, len);
                b[from..from + n.min(16)].to_vec()
            } else if !dict.is_empty() {
                rng.pick(dict).to_vec()
            } else {
                vec![*rng.pick(BYTES)]
            };
            if unit.is_empty() {
                return;
            }
            let room = max_len.saturating_sub(len) / unit.len();
            let times = (*rng.pick(REPEATS)).min(room);
            let at = rng.below(len + 1);
            let rep: Vec<u8> = unit
                .iter()
                .copied()
                .cycle()
                .take(unit.len() * times)
                .collect();
            b.splice(at..at, rep);
        }
        // A little-endian u32 (a length or count) set to a boundary value,
        // or to one near the input's length.
        10 if len >= 4 => {
            let at = rng.below(len - 3);
            let v = if rng.one_in(3) {
                (len as u32)
                    .wrapping_add(rng.below(5) as u32)
                    .wrapping_sub(2)
            } else {
                *rng.pick(U32S)
            };
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        // Add to or subtract from a little-endian u32.
        11 if len >= 4 => {
            let at = rng.below(len - 3);
            let mut v = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let d = 1 + rng.below(32) as u32;
            v = if rng.one_in(2) {
                v.wrapping_add(d)
            } else {
                v.wrapping_sub(d)
            };
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        // Truncate.
        12 if len > 0 => {
            let at = rng.below(len);
            b.truncate(at);
        }
        // Insert a run of ASCII digits (numbers in text formats).
        13 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(24);
            let digits: Vec<u8> = (0..n).map(|_| b'0' + rng.below(10) as u8).collect();
            b.splice(at..at, digits);
        }
        // A mutation that does not apply to this input: insert one byte.
        _ => {
            let at = rng.below(len + 1);
            b.insert(at, *rng.pick(BYTES));
        }
    }
}

/// A random non-empty chunk of an input of `len > 0` bytes: (start, length),
/// mostly short.
fn chunk(rng: &mut Rng, len: usize) -> (usize, usize) {
    let from = rng.below(len);
    let max = (len - from).min(if rng.one_in(4) { 4096 } else { 32 });
    (from, 1 + rng.below(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_max_len_and_changes_inputs() {
        let mut rng = Rng::new(1);
        let dict: &[&[u8]] = &[b"//", b"deps("];
        let mut changed = 0;
        for i in 0..5000 {
            let mut b = b"//pkg:name".to_vec();
            let other = if i % 2 == 0 { &b"x"[..] } else { &b""[..] };
            mutate(&mut rng, &mut b, other, dict, 64);
            assert!(b.len() <= 64);
            changed += usize::from(b != b"//pkg:name");
        }
        assert!(changed > 4500, "{changed}");
        // Empty inputs grow.
        let mut b = Vec::new();
        for _ in 0..100 {
            mutate(&mut rng, &mut b, b"", &[], 1024);
        }
        assert!(!b.is_empty());
    }
}
