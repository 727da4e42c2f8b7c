//! The little binary encoding kiln's on-disk records share: little-endian
//! integers, `u32`-length-prefixed bytes and strings, raw 32-byte digests,
//! and optional stats (a `0` byte, or `1` then size, mtime, ctime, inode
//! and the racy flag as a byte).
//! Readers return `None` on any truncated or malformed input, never panic.

use crate::{Digest, Stat};

/// Appends encoded values to a buffer.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// One byte.
    pub fn u8(&mut self, n: u8) {
        self.0.push(n);
    }
    /// A `u32`.
    pub fn u32(&mut self, n: u32) {
        self.0.extend(n.to_le_bytes());
    }
    /// A `u64`.
    pub fn u64(&mut self, n: u64) {
        self.0.extend(n.to_le_bytes());
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend(b);
    }
    /// A length-prefixed string.
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    /// A digest (32 raw bytes).
    pub fn digest(&mut self, d: &Digest) {
        self.0.extend(d.0);
    }
    /// An optional stat.
    pub fn stat(&mut self, s: Option<Stat>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.u64(s.size);
                self.u64(s.mtime_ns as u64);
                self.u64(s.ctime_ns as u64);
                self.u64(s.inode);
                self.u8(u8::from(s.racy));
            }
        }
    }
}

/// Reads encoded values from a slice.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    /// The next `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    /// A `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }
    /// A `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
    /// A digest.
    pub fn digest(&mut self) -> Option<Digest> {
        Digest::from_slice(self.take(32)?)
    }
    /// An optional stat.
    pub fn stat(&mut self) -> Option<Option<Stat>> {
        Some(match self.u8()? {
            0 => None,
            _ => Some(Stat {
                size: self.u64()?,
                mtime_ns: self.u64()? as i64,
                ctime_ns: self.u64()? as i64,
                inode: self.u64()?,
                racy: self.u8()? != 0,
            }),
        })
    }
    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut w = Writer::default();
        w.u8(7);
        w.str("héllo");
        w.digest(&Digest::of(b"x"));
        let st = Stat {
            size: 1,
            mtime_ns: -2,
            ctime_ns: 5,
            inode: 3,
            racy: true,
        };
        w.stat(Some(st));
        w.stat(None);
        let mut r = Reader(&w.0);
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.str(), Some("héllo"));
        assert_eq!(r.digest(), Some(Digest::of(b"x")));
        let back = r.stat().flatten().unwrap();
        assert!(back.same_timestamps_and_inode(&st) && back.racy);
        assert!(matches!(r.stat(), Some(None)));
        assert!(r.is_empty());
        for cut in 0..w.0.len() {
            let mut r = Reader(&w.0[..cut]);
            let whole = (|| {
                Some((
                    r.u8()?,
                    r.str()?.to_owned(),
                    r.digest()?,
                    r.stat()?,
                    r.stat()?,
                ))
            })();
            assert!(whole.is_none(), "truncated at {cut}");
        }
    }
}
