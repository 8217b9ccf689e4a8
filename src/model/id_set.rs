//! [`IdSet`]: the ordered set of event ids a candidate has seen (the fold's `duplicate` check),
//! kept in two allocations instead of one per id.
//!
//! It owns every id's bytes, back to back in one string (the arena), and a vector of
//! `(offset, len)` spans into it, sorted by the ids they name. Inserting is a binary search of
//! the spans, an append to the arena and an insertion into the span vector; nothing is ever
//! removed. Iteration is in byte-wise (`str`) order, the order of a `BTreeSet<String>`, so
//! everything that writes the set — serde (a sequence of strings, as a `BTreeSet<String>`),
//! the snapshot codecs and the state codec — writes exactly what it wrote for the set it
//! replaces.
//!
//! Invariants: the spans are strictly increasing by the ids they name (so no id is held
//! twice), each lies within the arena on `char` boundaries, and the arena holds nothing else.
//! The arena is addressed with `u32`: a set whose ids total 4 GiB or more is refused with a
//! panic (a candidate's ids are a few hundred bytes).

use std::cmp::Ordering;
use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ordered set of strings stored in one arena; see the module documentation.
#[derive(Clone, Default)]
pub struct IdSet {
    /// Every id, in insertion order, back to back.
    arena: String,
    /// `(offset, len)` of each id in `arena`, sorted by the id.
    spans: Vec<(u32, u32)>,
}

impl IdSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set with room for `ids` ids of `bytes` bytes in all.
    pub fn with_capacity(ids: usize, bytes: usize) -> Self {
        IdSet {
            arena: String::with_capacity(bytes),
            spans: Vec::with_capacity(ids),
        }
    }

    /// How many ids the set holds.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the set holds no id.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn get(&self, (offset, len): (u32, u32)) -> &str {
        &self.arena[offset as usize..(offset + len) as usize]
    }

    /// Where `id` is among the sorted spans: `Ok` at its index, or `Err` where it would go.
    fn search(&self, id: &str) -> Result<usize, usize> {
        self.spans.binary_search_by(|&span| self.get(span).cmp(id))
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: &str) -> bool {
        self.search(id).is_ok()
    }

    /// Adds `id`; `false` when it was there already (and the set is unchanged).
    ///
    /// # Panics
    /// When the ids would total 4 GiB or more.
    pub fn insert(&mut self, id: impl AsRef<str>) -> bool {
        let id = id.as_ref();
        // Ids often come in ascending order (a decoded set always does): one comparison with
        // the greatest then, not a search.
        let at = match self.spans.last().map(|&last| self.get(last).cmp(id)) {
            None | Some(Ordering::Less) => Err(self.spans.len()),
            Some(Ordering::Equal) => Ok(()),
            Some(Ordering::Greater) => self.search(id).map(drop),
        };
        match at {
            Ok(_) => false,
            Err(at) => {
                if self.spans.capacity() == 0 {
                    // A candidate sees about a dozen events: room for several ids of this
                    // length at once, rather than growing from a few bytes by doubling.
                    self.arena.reserve(id.len() * 8);
                    self.spans.reserve(8);
                }
                let offset = Self::offset(self.arena.len());
                let end = Self::offset(self.arena.len() + id.len());
                self.arena.push_str(id);
                self.spans.insert(at, (offset, end - offset));
                true
            }
        }
    }

    fn offset(n: usize) -> u32 {
        u32::try_from(n).expect("an id set's ids total less than 4 GiB")
    }

    /// The ids in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            set: self,
            spans: self.spans.iter(),
        }
    }
}

/// The ids of an [`IdSet`] in ascending order.
#[derive(Clone)]
pub struct Iter<'a> {
    set: &'a IdSet,
    spans: std::slice::Iter<'a, (u32, u32)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.spans.next().map(|&span| self.set.get(span))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.spans.next_back().map(|&span| self.set.get(span))
    }
}

impl<'a> IntoIterator for &'a IdSet {
    type Item = &'a str;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<S: AsRef<str>> Extend<S> for IdSet {
    fn extend<I: IntoIterator<Item = S>>(&mut self, ids: I) {
        for id in ids {
            self.insert(id);
        }
    }
}

impl<S: AsRef<str>> FromIterator<S> for IdSet {
    fn from_iter<I: IntoIterator<Item = S>>(ids: I) -> Self {
        let mut set = IdSet::new();
        set.extend(ids);
        set
    }
}

/// Equal when they hold the same ids (however they were inserted).
impl PartialEq for IdSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for IdSet {}

impl PartialOrd for IdSet {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Lexicographic over the ids in ascending order, as for a `BTreeSet<String>`.
impl Ord for IdSet {
    fn cmp(&self, other: &Self) -> Ordering {
        self.iter().cmp(other.iter())
    }
}

/// As a set of strings: `{"e1", "e2"}`.
impl fmt::Debug for IdSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A sequence of strings in ascending order.
impl Serialize for IdSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// A sequence of strings, in any order; an id repeated is held once.
impl<'de> Deserialize<'de> for IdSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ids;

        impl<'de> Visitor<'de> for Ids {
            type Value = IdSet;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of strings")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IdSet, A::Error> {
                let mut set = IdSet::with_capacity(seq.size_hint().unwrap_or(0).min(4096), 0);
                while let Some(id) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
                    set.insert(id);
                }
                Ok(set)
            }
        }

        deserializer.deserialize_seq(Ids)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn inserts_once_and_iterates_in_str_order() {
        let mut s = IdSet::new();
        assert!(s.is_empty());
        assert!(s.insert("b-e10"));
        assert!(s.insert("b-e2"));
        assert!(s.insert(String::from("a")));
        assert!(s.insert(""));
        assert!(!s.insert("b-e2"));
        assert!(!s.insert(""));
        assert_eq!(s.len(), 4);
        assert!(s.contains("a") && s.contains("") && !s.contains("b"));
        assert_eq!(s.iter().collect::<Vec<_>>(), ["", "a", "b-e10", "b-e2"]);
        assert_eq!(s.iter().next_back(), Some("b-e2"));
        assert_eq!(s.iter().len(), 4);
    }

    #[test]
    fn equality_ignores_insertion_order() {
        let a: IdSet = ["x", "y", "z"].into_iter().collect();
        let b: IdSet = ["z", "x", "y", "x"].into_iter().collect();
        assert_eq!(a, b);
        let c: IdSet = ["x", "y"].into_iter().collect();
        assert_ne!(a, c);
        assert_ne!(a, IdSet::new());
    }

    #[test]
    fn debug_and_json_are_a_btreeset_s() {
        let ids = ["e2", "é", "e1"];
        let set: IdSet = ids.into_iter().collect();
        let model: BTreeSet<String> = ids.into_iter().map(String::from).collect();
        assert_eq!(format!("{set:?}"), format!("{model:?}"));
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, serde_json::to_string(&model).unwrap());
        assert_eq!(json, r#"["e1","e2","é"]"#);
        let back: IdSet = serde_json::from_str(r#"["é","e1","e2","e1"]"#).unwrap();
        assert_eq!(back, set);
        assert!(serde_json::from_str::<IdSet>(r#"["e1",2]"#).is_err());
        assert!(serde_json::from_str::<IdSet>(r#""e1""#).is_err());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String),
        Contains(String),
    }

    fn id() -> impl Strategy<Value = String> {
        // A small alphabet, so that ids collide and share prefixes; and any string.
        prop_oneof![3 => "[ab\u{e9}]{0,4}", 1 => any::<String>()]
    }

    proptest! {
        #[test]
        fn behaves_as_a_btreeset_of_strings(
            ops in prop::collection::vec(
                prop_oneof![3 => id().prop_map(Op::Insert), 1 => id().prop_map(Op::Contains)],
                0..64,
            )
        ) {
            let mut set = IdSet::new();
            let mut model = BTreeSet::new();
            for op in &ops {
                match op {
                    Op::Insert(id) => prop_assert_eq!(set.insert(id), model.insert(id.clone())),
                    Op::Contains(id) => prop_assert_eq!(set.contains(id), model.contains(id)),
                }
                prop_assert_eq!(set.len(), model.len());
            }
            prop_assert!(set.iter().eq(model.iter().map(String::as_str)));
            prop_assert!(set.iter().rev().eq(model.iter().rev().map(String::as_str)));
            let rebuilt: IdSet = model.iter().rev().collect();
            prop_assert_eq!(&rebuilt, &set);
            prop_assert_eq!(
                serde_json::to_string(&set).unwrap(),
                serde_json::to_string(&model).unwrap()
            );
            let back: IdSet = serde_json::from_str(&serde_json::to_string(&model).unwrap()).unwrap();
            prop_assert_eq!(&back, &set);
        }

        #[test]
        fn equality_and_order_are_a_btreeset_s(
            a in prop::collection::btree_set(id(), 0..8),
            b in prop::collection::btree_set(id(), 0..8),
        ) {
            let (sa, sb): (IdSet, IdSet) = (a.iter().collect(), b.iter().collect());
            prop_assert_eq!(sa == sb, a == b);
            prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
        }
    }
}
