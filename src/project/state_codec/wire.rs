//! The primitives of the state encoding: varints, strings, front-coded sorted keys, interned
//! strings, command ids, timestamps — written by [`Writer`], read and validated by [`Reader`].
//! Nothing here knows the model's structs; `state_codec` composes these in field order.

use thiserror::Error;

use super::VERSION;
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

/// Appends to a caller's buffer; `'s` is the state being encoded, whose strings the interning
/// table borrows.
pub(super) struct Writer<'o, 's> {
    out: &'o mut Vec<u8>,
    /// The strings remembered so far, in order; `known` of them are set.
    table: [&'s str; INTERNED],
    known: usize,
}

impl<'o, 's> Writer<'o, 's> {
    pub(super) fn new(out: &'o mut Vec<u8>) -> Self {
        Writer {
            out,
            table: [""; INTERNED],
            known: 0,
        }
    }

    pub(super) fn u8(&mut self, b: u8) {
        self.out.push(b);
    }

    pub(super) fn bool(&mut self, b: bool) {
        self.out.push(u8::from(b));
    }

    pub(super) fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.out.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }

    pub(super) fn f64(&mut self, x: f64) {
        self.out.extend_from_slice(&x.to_bits().to_le_bytes());
    }

    pub(super) fn str(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }

    /// A string likely to repeat within the state: a back-reference after its first time.
    pub(super) fn interned(&mut self, s: &'s str) {
        match self.table[..self.known].iter().position(|t| *t == s) {
            Some(i) => self.varint(i as u64 + 1),
            None => {
                self.varint(0);
                self.str(s);
                if self.known < INTERNED {
                    self.table[self.known] = s;
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
            let shared = previous.iter().zip(key).take_while(|(a, b)| a == b).count();
            self.varint(shared as u64);
            self.varint((key.len() - shared) as u64);
            self.out.extend_from_slice(&key[shared..]);
            value(self, v);
            previous = key;
        }
    }

    /// 16 raw bytes when `id` is 32 lowercase hex chars (every id hirestate derives), else the
    /// string.
    pub(super) fn command_id(&mut self, id: &str) {
        let b = id.as_bytes();
        if b.len() == 32 && b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            self.out.push(0);
            for pair in b.chunks_exact(2) {
                self.out.push((nibble(pair[0]) << 4) | nibble(pair[1]));
            }
        } else {
            self.out.push(1);
            self.str(id);
        }
    }

    /// A command id that usually equals `key`, the id it is filed under: one byte then.
    pub(super) fn command_id_or_key(&mut self, id: &str, key: &str) {
        if id == key {
            self.out.push(2);
        } else {
            self.command_id(id);
        }
    }

    pub(super) fn ts(&mut self, t: Timestamp) {
        self.out.extend_from_slice(&t.0.to_le_bytes());
    }

    pub(super) fn opt_ts(&mut self, t: Option<Timestamp>) {
        match t {
            None => self.out.push(0),
            Some(t) => {
                self.out.push(1);
                self.ts(t);
            }
        }
    }
}

/// The value of a lowercase hex digit (callers checked it is one).
fn nibble(c: u8) -> u8 {
    if c.is_ascii_digit() {
        c - b'0'
    } else {
        c - b'a' + 10
    }
}

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
