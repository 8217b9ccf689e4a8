//! [`Body`]: reading the Avro binary encoding as apache-avro reads it, failing (`None`) where it
//! would fail or would read something else than the schema says is there.

use std::cmp::Ordering;

use apache_avro::types::Value;

use crate::codec::AVRO_MAX_ALLOCATION;
use crate::model::{FieldValue, Timestamp};

/// A cursor over an Avro body.
pub(crate) struct Body<'a> {
    rest: &'a [u8],
    /// apache-avro's allocation limit in effect (process-wide; the first value set wins).
    limit: usize,
}

impl<'a> Body<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Body {
            rest: bytes,
            limit: apache_avro::util::max_allocation_bytes(AVRO_MAX_ALLOCATION),
        }
    }

    /// Every byte was read.
    pub fn end(self) -> Option<()> {
        self.rest.is_empty().then_some(())
    }

    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    /// A varint of at most ten bytes, bits beyond 64 dropped, as apache-avro reads one.
    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    /// `long` (zigzag varint).
    pub fn long(&mut self) -> Option<i64> {
        let z = self.varint()?;
        Some(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// `int` read as the model's count: apache-avro refuses a value outside `i32`, the model
    /// a negative one.
    pub fn count(&mut self) -> Option<u32> {
        let n = i32::try_from(self.long()?).ok()?;
        u32::try_from(n).ok()
    }

    pub fn timestamp(&mut self) -> Option<Timestamp> {
        self.long().map(Timestamp)
    }

    pub fn boolean(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    pub fn double(&mut self) -> Option<f64> {
        let (b, rest) = self.rest.split_first_chunk::<8>()?;
        self.rest = rest;
        Some(f64::from_le_bytes(*b))
    }

    pub fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.long()?).ok()?;
        if n > self.limit || n > self.rest.len() {
            return None;
        }
        let (s, rest) = self.rest.split_at(n);
        self.rest = rest;
        std::str::from_utf8(s).ok().map(str::to_owned)
    }

    /// A union branch or an enum symbol: an index below `n`.
    pub fn index(&mut self, n: usize) -> Option<usize> {
        usize::try_from(self.long()?).ok().filter(|i| *i < n)
    }

    /// The symbol at the index read, of an enum whose symbols map to `all` in order.
    pub fn symbol<T: Copy>(&mut self, all: &[T]) -> Option<T> {
        self.index(all.len()).map(|i| all[i])
    }

    /// `["null", "string"]`.
    pub fn opt_string(&mut self) -> Option<Option<String>> {
        match self.index(2)? {
            0 => Some(None),
            _ => self.string().map(Some),
        }
    }

    /// The blocks of an array or a map, `item` reading each element. apache-avro bounds the
    /// elements by its allocation limit counted in `Value`s (`(String, Value)` pairs for a
    /// map): `element` is that size, so what it refuses is refused here too.
    fn blocks(
        &mut self,
        element: usize,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        let mut total = 0usize;
        loop {
            let n = self.long()?;
            let n = match n.cmp(&0) {
                Ordering::Equal => return Some(()),
                Ordering::Greater => n,
                // A negative count is followed by the block's size in bytes.
                Ordering::Less => {
                    self.long()?;
                    n.checked_neg()?
                }
            };
            total = total.checked_add(usize::try_from(n).ok()?)?;
            if total.checked_mul(element)? > self.limit {
                return None;
            }
            for _ in 0..n {
                item(self)?;
            }
        }
    }

    /// `array<string>`.
    pub fn strings(&mut self) -> Option<Vec<String>> {
        let mut items = Vec::new();
        self.blocks(size_of::<Value>(), |b| {
            items.push(b.string()?);
            Some(())
        })?;
        Some(items)
    }

    /// `map<[boolean, double, string, array<string>]>`; a key repeated keeps its last value,
    /// as the generic path's `HashMap` does.
    pub fn field_values<K: From<String>, M: Default + Extend<(K, FieldValue)>>(
        &mut self,
    ) -> Option<M> {
        let mut map = M::default();
        self.blocks(size_of::<(String, Value)>(), |b| {
            let key = b.string()?;
            let value = match b.index(4)? {
                0 => FieldValue::Bool(b.boolean()?),
                1 => FieldValue::Number(b.double()?),
                2 => FieldValue::Text(b.string()?),
                _ => FieldValue::List(b.strings()?),
            };
            map.extend([(key.into(), value)]);
            Some(())
        })?;
        Some(map)
    }
}
