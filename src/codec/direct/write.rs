//! [`Out`]: writing the Avro binary encoding byte for byte as apache-avro writes a `Value` of
//! the same schema — except maps, which apache-avro writes in its `HashMap`'s (random) order
//! and these in key order.

use crate::model::{FieldValue, Timestamp};

/// Appends an Avro body to a buffer.
pub(crate) struct Out<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> Out<'o> {
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        Out { out }
    }

    fn varint(&mut self, n: u64) {
        let (buf, len) = crate::codec::leb128::encode(n);
        self.out.extend_from_slice(&buf[..len]);
    }

    /// `long` (zigzag varint); also `int`, whose encoding is the same for the same number.
    pub fn long(&mut self, n: i64) {
        self.varint(((n << 1) ^ (n >> 63)) as u64);
    }

    /// `int` of a count: `None` above `i32::MAX`, which the `Value` path refuses (with the
    /// error the caller falls back for).
    pub fn count(&mut self, n: u32) -> Option<()> {
        self.long(i64::from(i32::try_from(n).ok()?));
        Some(())
    }

    pub fn timestamp(&mut self, t: Timestamp) {
        self.long(t.0);
    }

    pub fn boolean(&mut self, b: bool) {
        self.out.push(u8::from(b));
    }

    pub fn double(&mut self, x: f64) {
        self.out.extend_from_slice(&x.to_le_bytes());
    }

    pub fn string(&mut self, s: &str) {
        self.long(s.len() as i64);
        self.out.extend_from_slice(s.as_bytes());
    }

    /// A union branch or an enum symbol.
    pub fn index(&mut self, i: usize) {
        self.long(i as i64);
    }

    /// The index of `x` in `all`, an enum's values in symbol order (as the `Value` path writes
    /// it: the first symbol if `x` is missing, which the model's lists rule out).
    pub fn symbol<T: PartialEq>(&mut self, all: &[T], x: &T) {
        self.index(all.iter().position(|y| y == x).unwrap_or(0));
    }

    /// `["null", "string"]`.
    pub fn opt_string(&mut self, s: Option<&str>) {
        match s {
            None => self.index(0),
            Some(s) => {
                self.index(1);
                self.string(s);
            }
        }
    }

    /// `["null", timestamp-micros]`.
    pub fn opt_timestamp(&mut self, t: Option<Timestamp>) {
        match t {
            None => self.index(0),
            Some(t) => {
                self.index(1);
                self.timestamp(t);
            }
        }
    }

    /// An array or a map of `n` elements, `item` writing each: one block, then the end.
    pub fn blocks<T>(
        &mut self,
        items: impl ExactSizeIterator<Item = T>,
        mut item: impl FnMut(&mut Self, T) -> Option<()>,
    ) -> Option<()> {
        if items.len() > 0 {
            self.long(items.len() as i64);
            for x in items {
                item(self, x)?;
            }
        }
        self.long(0);
        Some(())
    }

    /// `array<string>`.
    pub fn strings<S: AsRef<str>>(&mut self, items: &[S]) -> Option<()> {
        self.blocks(items.iter(), |o, s| {
            o.string(s.as_ref());
            Some(())
        })
    }

    /// `map<[boolean, double, string, array<string>]>`, in key order.
    pub fn field_values<'a, K: AsRef<str> + 'a>(
        &mut self,
        fields: impl ExactSizeIterator<Item = (&'a K, &'a FieldValue)>,
    ) -> Option<()> {
        self.blocks(fields, |o, (k, v)| {
            o.string(k.as_ref());
            match v {
                FieldValue::Bool(b) => {
                    o.index(0);
                    o.boolean(*b);
                }
                FieldValue::Number(x) => {
                    o.index(1);
                    o.double(*x);
                }
                FieldValue::Text(s) => {
                    o.index(2);
                    o.string(s);
                }
                FieldValue::List(items) => {
                    o.index(3);
                    o.strings(items)?;
                }
            }
            Some(())
        })
    }
}
