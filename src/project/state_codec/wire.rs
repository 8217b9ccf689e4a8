//! The primitives of the state encoding: varints, strings, front-coded sorted keys, interned
//! strings, command ids, timestamps — written by [`Writer`], read and validated by [`Reader`].
//! Nothing here knows the model's structs; `state_codec` composes these in field order.

use thiserror::Error;

use super::VERSION;
use crate::codec::leb128;
use crate::model::Timestamp;

/// How many distinct strings one state remembers for back-references (part of the layout:
/// writer and reader must agree).
const INTERNED: usize = 32;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Why stored bytes are not a state.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("at byte {at}, reading {reading}: {problem}")]
pub struct DecodeError {
    /// Offset of the item that failed.
    pub at: usize,
    /// What was being read.
    pub reading: &'static str,
    pub problem: Problem,
}

/// What is wrong with the bytes.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Problem {
    #[error("encoding version {0}, this build reads version {VERSION}")]
    Version(u8),
    #[error("needs {needed} bytes, {left} left")]
    Truncated { needed: u64, left: usize },
    #[error("varint longer than 10 bytes or above 2^64")]
    Varint,
    #[error("unknown tag {0}")]
    Tag(u8),
    #[error("not UTF-8")]
    Utf8,
    #[error("value {0} out of range")]
    Range(u64),
    #[error("key not after the previous one (keys are strictly increasing)")]
    Order,
    #[error("shares {shared} bytes with a previous key of {previous}")]
    Shared { shared: u64, previous: usize },
    #[error("back-reference {index} to one of {known} remembered strings")]
    Reference { index: u64, known: usize },
    #[error("{0} bytes after the end of the state")]
    Trailing(usize),
}

/// Builds an encoding; `'s` is the state being encoded, whose strings the interning table
/// borrows.
///
/// The buffer is owned while writing (taken from the caller and handed back by
/// [`Writer::finish`]): behind a `&mut Vec` every byte stored could, as far as the compiler
/// knows, have changed the vector's length, so each push reloaded it.
pub(super) struct Writer<'s> {
    out: Vec<u8>,
    /// The strings remembered so far, in order; `known` of them are set.
    table: [&'s str; INTERNED],
    /// [`tag`] of each remembered string: most lookups are settled by comparing these, without
    /// reading the strings (the table's are often equally long ids that differ at the end).
    tags: [u64; INTERNED],
    known: usize,
}

impl<'s> Writer<'s> {
    /// Appends to what `out` holds.
    pub(super) fn new(out: Vec<u8>) -> Self {
        Writer {
            out,
            table: [""; INTERNED],
            tags: [0; INTERNED],
            known: 0,
        }
    }

    /// The buffer, with everything written appended.
    pub(super) fn finish(self) -> Vec<u8> {
        self.out
    }

    #[inline]
    pub(super) fn u8(&mut self, b: u8) {
        self.out.push(b);
    }

    #[inline]
    pub(super) fn bool(&mut self, b: bool) {
        self.out.push(u8::from(b));
    }

    #[inline]
    pub(super) fn varint(&mut self, n: u64) {
        if n < 0x80 {
            self.out.push(n as u8);
        } else {
            self.long_varint(n);
        }
    }

    /// Two varints, in one append when both are one byte (lengths and counts mostly are).
    #[inline]
    fn varints(&mut self, a: u64, b: u64) {
        if a < 0x80 && b < 0x80 {
            self.out.extend_from_slice(&[a as u8, b as u8]);
        } else {
            self.varint(a);
            self.varint(b);
        }
    }

    #[inline(never)]
    fn long_varint(&mut self, n: u64) {
        let (buf, len) = leb128::encode(n);
        self.out.extend_from_slice(&buf[..len]);
    }

    #[inline]
    pub(super) fn str(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }

    /// Appends what `fields` writes into a [`Chunk`].
    #[inline]
    pub(super) fn chunk(&mut self, fields: impl FnOnce(&mut Chunk)) {
        let mut c = Chunk {
            buf: [0; 32],
            len: 0,
        };
        fields(&mut c);
        self.out.extend_from_slice(&c.buf[..c.len]);
    }

    /// A string likely to repeat within the state: a back-reference after its first time.
    #[inline]
    pub(super) fn interned(&mut self, s: &'s str) {
        let tag = tag(s.as_bytes());
        let known = &self.tags[..self.known];
        match (0..known.len()).find(|&i| known[i] == tag && self.table[i] == s) {
            Some(i) => self.varint(i as u64 + 1),
            None => {
                self.varints(0, s.len() as u64);
                self.out.extend_from_slice(s.as_bytes());
                if self.known < INTERNED {
                    self.table[self.known] = s;
                    self.tags[self.known] = tag;
                    self.known += 1;
                }
            }
        }
    }

    /// `n` keys in strictly increasing order (as an ordered map or set yields them), front
    /// coded, each followed by what `value` writes for it.
    pub(super) fn sorted<'k, K, V, I>(
        &mut self,
        n: usize,
        items: I,
        mut value: impl FnMut(&mut Self, V),
    ) where
        K: AsRef<str> + ?Sized + 'k,
        I: Iterator<Item = (&'k K, V)>,
    {
        self.varint(n as u64);
        let mut previous: &[u8] = b"";
        for (key, v) in items {
            let key = key.as_ref().as_bytes();
            let shared = shared_prefix(previous, key);
            let suffix = &key[shared..];
            self.varints(shared as u64, suffix.len() as u64);
            self.out.extend_from_slice(suffix);
            value(self, v);
            previous = key;
        }
    }

    /// 16 raw bytes when `id` is 32 lowercase hex chars (every id hirestate derives), else the
    /// string.
    #[inline]
    pub(super) fn command_id(&mut self, id: &str) {
        match packed_hex(id.as_bytes()) {
            Some(packed) => self.out.extend_from_slice(&packed),
            None => {
                self.out.push(1);
                self.str(id);
            }
        }
    }

    /// A command id that usually equals `key`, the id it is filed under: one byte then.
    #[inline]
    pub(super) fn command_id_or_key(&mut self, id: &str, key: &str) {
        if id == key {
            self.out.push(2);
        } else {
            self.command_id(id);
        }
    }

    #[inline]
    pub(super) fn ts(&mut self, t: Timestamp) {
        self.out.extend_from_slice(&t.0.to_le_bytes());
    }

    #[inline]
    pub(super) fn opt_ts(&mut self, t: Option<Timestamp>) {
        match t {
            None => self.out.push(0),
            Some(t) => {
                let mut buf = [1u8; 9];
                buf[1..].copy_from_slice(&t.0.to_le_bytes());
                self.out.extend_from_slice(&buf);
            }
        }
    }
}

/// Small fixed-size fields assembled on the stack and appended at once: one update of the
/// buffer's length instead of one per field. Holds at most 32 bytes; callers stay well below.
pub(super) struct Chunk {
    buf: [u8; 32],
    len: usize,
}

impl Chunk {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    pub(super) fn u8(&mut self, b: u8) {
        self.put(&[b]);
    }

    pub(super) fn bool(&mut self, b: bool) {
        self.put(&[u8::from(b)]);
    }

    pub(super) fn f64(&mut self, x: f64) {
        self.put(&x.to_bits().to_le_bytes());
    }

    pub(super) fn varint(&mut self, n: u64) {
        let (buf, len) = leb128::encode(n);
        self.put(&buf[..len]);
    }

    pub(super) fn ts(&mut self, t: Timestamp) {
        self.put(&t.0.to_le_bytes());
    }

    pub(super) fn opt_ts(&mut self, t: Option<Timestamp>) {
        match t {
            None => self.u8(0),
            Some(t) => {
                self.u8(1);
                self.ts(t);
            }
        }
    }
}

/// How many leading bytes `a` and `b` have in common, compared eight at a time.
fn shared_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut i = 0;
    while let (Some(x), Some(y)) = (a[i..].first_chunk::<8>(), b[i..].first_chunk::<8>()) {
        let differ = u64::from_le_bytes(*x) ^ u64::from_le_bytes(*y);
        if differ != 0 {
            // Little endian: the lowest set bit is in the first byte that differs.
            return i + (differ.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + a[i..]
        .iter()
        .zip(&b[i..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Up to the first eight bytes of `b` as a number (zeros after a shorter `b`).
fn head(b: &[u8]) -> u64 {
    match b.first_chunk::<8>() {
        Some(x) => u64::from_le_bytes(*x),
        None => {
            let mut x = [0u8; 8];
            x[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(x)
        }
    }
}

/// A cheap fingerprint of a string for the interning table: its length, first and last eight
/// bytes. Equal strings have equal tags; unequal ones almost never do, and are then told apart
/// by comparing them.
fn tag(b: &[u8]) -> u64 {
    let tail = head(&b[b.len().saturating_sub(8)..]);
    (head(b) ^ tail.rotate_left(29))
        .wrapping_add((b.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The command id tag 0 and the 16 bytes `id` packs to, when it is 32 lowercase hex digits.
fn packed_hex(id: &[u8]) -> Option<[u8; 17]> {
    let digits: &[u8; 32] = id.try_into().ok()?;
    let mut packed = [0u8; 17];
    // Any byte that is not a lowercase hex digit sets the high bits of `invalid`.
    let mut invalid = 0u8;
    for (out, pair) in packed[1..].iter_mut().zip(digits.chunks_exact(2)) {
        let (hi, lo) = (
            HEX_VALUE[usize::from(pair[0])],
            HEX_VALUE[usize::from(pair[1])],
        );
        invalid |= hi | lo;
        *out = (hi << 4) | (lo & 0xf);
    }
    (invalid < 16).then_some(packed)
}

/// The value of each lowercase hex digit; 0xff for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 16 {
        t[HEX[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Reads and validates; every method fails with a [`DecodeError`] instead of reading past the
/// input or trusting a count.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    table: [&'a str; INTERNED],
    known: usize,
    /// The previous key of a front-coded run, then the one being assembled.
    scratch: Vec<u8>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader {
            bytes,
            at: 0,
            table: [""; INTERNED],
            known: 0,
            scratch: Vec::new(),
        }
    }

    /// The offset of the next byte.
    pub(super) fn at(&self) -> usize {
        self.at
    }

    pub(super) fn fail(&self, at: usize, reading: &'static str, problem: Problem) -> DecodeError {
        DecodeError {
            at,
            reading,
            problem,
        }
    }

    /// Fails unless every byte was read.
    pub(super) fn end(&self) -> Result<(), DecodeError> {
        match self.left() {
            0 => Ok(()),
            n => Err(self.fail(self.at, "the end", Problem::Trailing(n))),
        }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: u64, reading: &'static str) -> Result<&'a [u8], DecodeError> {
        let left = self.left();
        match usize::try_from(n) {
            Ok(n) if n <= left => {
                let s = &self.bytes[self.at..self.at + n];
                self.at += n;
                Ok(s)
            }
            _ => Err(self.fail(self.at, reading, Problem::Truncated { needed: n, left })),
        }
    }

    pub(super) fn array<const N: usize>(
        &mut self,
        reading: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64, reading)?);
        Ok(a)
    }

    pub(super) fn u8(&mut self, reading: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(reading)?[0])
    }

    /// A one-byte code that `from` maps to a value.
    pub(super) fn code<T>(
        &mut self,
        reading: &'static str,
        from: impl FnOnce(u8) -> Option<T>,
    ) -> Result<T, DecodeError> {
        let at = self.at;
        let code = self.u8(reading)?;
        from(code).ok_or_else(|| self.fail(at, reading, Problem::Tag(code)))
    }

    pub(super) fn bool(&mut self, reading: &'static str) -> Result<bool, DecodeError> {
        self.code(reading, |b| match b {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        })
    }

    pub(super) fn varint(&mut self, reading: &'static str) -> Result<u64, DecodeError> {
        let at = self.at;
        // Most are counts and lengths below 128: one byte.
        if let Some(&b) = self.bytes.get(at).filter(|b| **b < 0x80) {
            self.at += 1;
            return Ok(u64::from(b));
        }
        let mut n = 0u64;
        for i in 0..10 {
            let b = self.u8(reading).map_err(|mut e| {
                e.at = at;
                e
            })?;
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && b > 1 {
                break;
            }
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.fail(at, reading, Problem::Varint))
    }

    pub(super) fn u32(&mut self, reading: &'static str) -> Result<u32, DecodeError> {
        let at = self.at;
        let n = self.varint(reading)?;
        u32::try_from(n).map_err(|_| self.fail(at, reading, Problem::Range(n)))
    }

    pub(super) fn f64(&mut self, reading: &'static str) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(u64::from_le_bytes(self.array(reading)?)))
    }

    /// A count of items that each take at least one byte: never more than the bytes left, so a
    /// corrupt count cannot make the decoder reserve or loop beyond its input.
    pub(super) fn count(&mut self, reading: &'static str) -> Result<usize, DecodeError> {
        let at = self.at;
        let n = self.varint(reading)?;
        let left = self.left();
        match usize::try_from(n) {
            Ok(n) if n <= left => Ok(n),
            _ => Err(self.fail(at, reading, Problem::Truncated { needed: n, left })),
        }
    }

    pub(super) fn str(&mut self, reading: &'static str) -> Result<&'a str, DecodeError> {
        let at = self.at;
        let n = self.varint(reading)?;
        let bytes = self.take(n, reading).map_err(|mut e| {
            e.at = at;
            e
        })?;
        std::str::from_utf8(bytes).map_err(|_| self.fail(at, reading, Problem::Utf8))
    }

    /// A string field, as whatever string type the model holds it in.
    pub(super) fn string<T: for<'x> From<&'x str>>(
        &mut self,
        reading: &'static str,
    ) -> Result<T, DecodeError> {
        self.str(reading).map(T::from)
    }

    pub(super) fn interned(&mut self, reading: &'static str) -> Result<&'a str, DecodeError> {
        let at = self.at;
        match self.varint(reading)? {
            0 => {
                let s = self.str(reading)?;
                if self.known < INTERNED {
                    self.table[self.known] = s;
                    self.known += 1;
                }
                Ok(s)
            }
            i => match usize::try_from(i - 1) {
                Ok(i) if i < self.known => Ok(self.table[i]),
                _ => Err(self.fail(
                    at,
                    reading,
                    Problem::Reference {
                        index: i,
                        known: self.known,
                    },
                )),
            },
        }
    }

    /// A front-coded run of strictly increasing keys; `each` gets every key and reads its value.
    pub(super) fn sorted(
        &mut self,
        reading: &'static str,
        mut each: impl FnMut(&mut Self, &str) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let n = self.count(reading)?;
        let mut key = std::mem::take(&mut self.scratch);
        key.clear();
        for i in 0..n {
            let at = self.at;
            let shared = self.varint(reading)?;
            let previous = key.len();
            let shared = match usize::try_from(shared) {
                Ok(s) if s <= previous => s,
                _ => return Err(self.fail(at, reading, Problem::Shared { shared, previous })),
            };
            let len = self.varint(reading)?;
            let suffix = self.take(len, reading)?;
            // The first `shared` bytes are the previous key's: the new key is greater exactly
            // when its suffix is greater than the rest of the previous one.
            if i > 0 && suffix <= &key[shared..] {
                return Err(self.fail(at, reading, Problem::Order));
            }
            key.truncate(shared);
            key.extend_from_slice(suffix);
            let s = std::str::from_utf8(&key).map_err(|_| self.fail(at, reading, Problem::Utf8))?;
            each(self, s)?;
        }
        self.scratch = key;
        Ok(())
    }

    /// A command id, rendered into `hex` when it was stored as 16 raw bytes; `key` is what tag
    /// 2 ("the id it is filed under") stands for, `None` where there is no such id.
    pub(super) fn command_id<'h>(
        &mut self,
        hex: &'h mut [u8; 32],
        key: Option<&'h str>,
    ) -> Result<&'h str, DecodeError>
    where
        'a: 'h,
    {
        let at = self.at;
        match self.u8("command id tag")? {
            0 => {
                let raw: [u8; 16] = self.array("command id")?;
                for (i, b) in raw.iter().enumerate() {
                    hex[2 * i] = HEX[usize::from(b >> 4)];
                    hex[2 * i + 1] = HEX[usize::from(b & 0xf)];
                }
                std::str::from_utf8(&hex[..])
                    .map_err(|_| self.fail(at, "command id", Problem::Utf8))
            }
            1 => self.str("command id"),
            2 => key.ok_or_else(|| self.fail(at, "command id tag", Problem::Tag(2))),
            tag => Err(self.fail(at, "command id tag", Problem::Tag(tag))),
        }
    }

    pub(super) fn ts(&mut self, reading: &'static str) -> Result<Timestamp, DecodeError> {
        Ok(Timestamp(i64::from_le_bytes(self.array(reading)?)))
    }

    pub(super) fn opt_ts(
        &mut self,
        reading: &'static str,
    ) -> Result<Option<Timestamp>, DecodeError> {
        Ok(match self.bool(reading)? {
            false => None,
            true => Some(self.ts(reading)?),
        })
    }
}
