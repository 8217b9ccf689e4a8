//! [`VecMap`]: an ordered map kept as one sorted vector, for the small maps of a candidate's
//! state (its applications, commands, fields and field sources).
//!
//! A `BTreeMap` allocates its first node with room for 11 entries, so a candidate's single
//! application cost a ~1.9 KB node and its handful of commands a ~1.4 KB one: most of the
//! ~6.6 KB a candidate held in memory (measured over the `fold` bench's stream). Here
//! the entries sit back to back, in key order; lookups are a binary search, inserting shifts
//! the entries after it (a few, for maps this size).
//!
//! Invariant: the keys are strictly increasing. So iteration is in key order, as a
//! `BTreeMap`'s, and everything that writes the map — serde (a map), the state codec, the
//! digests of the projection — writes exactly what it wrote for the `BTreeMap` it replaces.
//! Built from unsorted pairs (deserialising, `FromIterator`), the last value of a repeated key
//! wins, as it does in a `BTreeMap`.

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ordered map in one sorted vector; see the module documentation.
#[derive(Clone, PartialEq, Eq)]
pub struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries the map holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where `key` is: `Ok` at its index, or `Err` where it would go.
    fn search<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let i = self.search(key).ok()?;
        Some(&self.entries[i].1)
    }

    /// The value of `key`, to change.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let i = self.search(key).ok()?;
        Some(&mut self.entries[i].1)
    }

    /// Where `key` is in key order, for [`VecMap::at_mut`]: a lookup that a later change of
    /// the same entry need not repeat. Valid until the map gains or loses an entry.
    pub fn position<Q>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).ok()
    }

    /// The value at `position` (from [`VecMap::position`]), to change.
    ///
    /// # Panics
    /// When `position` is not below [`VecMap::len`].
    pub fn at_mut(&mut self, position: usize) -> &mut V {
        &mut self.entries[position].1
    }

    /// Whether the map holds `key`.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaced (the key is kept, as a `BTreeMap`
    /// keeps it).
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.search(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Sets `key` to `value`, as [`VecMap::insert`] does, but makes the key (`key.to_owned()`,
    /// say, or a reference-counted clone) only when the map does not hold it yet.
    pub fn set<Q>(&mut self, key: &Q, value: V, make_key: impl FnOnce(&Q) -> K) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self.search(key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (make_key(key), value));
                None
            }
        }
    }

    /// The value of `key`, inserting `make()`'s when the map has none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.search(&key) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(i, (key, make()));
                i
            }
        };
        &mut self.entries[i].1
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let i = self.search(key).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// Keeps the entries `keep` answers `true` for, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The values in key order, to change.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for VecMap<K, V> {
    /// Sorted by key; of a repeated key, the last value wins (as `BTreeMap::from_iter`).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut entries: Vec<(K, V)> = iter.into_iter().collect();
        // Already strictly increasing (the state codec's decoder checked it): taken as it is.
        if entries.windows(2).all(|w| w[0].0 < w[1].0) {
            return VecMap { entries };
        }
        // Stable: pairs of one key stay in input order, so the last of them is the one kept.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(K, V)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        VecMap { entries: out }
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for VecMap<K, V> {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<'a, K, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<K, V> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<K, V, Q> std::ops::Index<&Q> for VecMap<K, V>
where
    K: Ord + Borrow<Q>,
    Q: Ord + ?Sized,
{
    type Output = V;

    /// The value of `key`; panics when there is none, as a `BTreeMap` does.
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for the key in the VecMap")
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for VecMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K: Serialize, V: Serialize> Serialize for VecMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for VecMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for Entries<K, V> {
            type Value = VecMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(pairs.into_iter().collect())
            }
        }
        deserializer.deserialize_map(Entries(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u16),
        Set(u8, u16),
        Remove(u8),
        GetOrInsert(u8, u16),
        RetainEven,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Insert(k % 32, v)),
            2 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Set(k % 32, v)),
            2 => any::<u8>().prop_map(|k| Op::Remove(k % 32)),
            2 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::GetOrInsert(k % 32, v)),
            1 => Just(Op::RetainEven),
        ]
    }

    proptest! {
        /// Any sequence of changes leaves the map equal, entry for entry and in order, to a
        /// `BTreeMap` given the same changes; every answer along the way is the same too.
        #[test]
        fn behaves_as_a_btreemap(ops in prop::collection::vec(op(), 0..200)) {
            let mut mine: VecMap<u8, u16> = VecMap::new();
            let mut model: BTreeMap<u8, u16> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(mine.insert(k, v), model.insert(k, v)),
                    Op::Set(k, v) => {
                        let mut made = false;
                        let had = model.contains_key(&k);
                        prop_assert_eq!(mine.set(&k, v, |k| { made = true; *k }), model.insert(k, v));
                        prop_assert_eq!(made, !had, "the key is made only when new");
                    }
                    Op::Remove(k) => prop_assert_eq!(mine.remove(&k), model.remove(&k)),
                    Op::GetOrInsert(k, v) => {
                        prop_assert_eq!(*mine.get_or_insert_with(k, || v), *model.entry(k).or_insert(v));
                    }
                    Op::RetainEven => {
                        mine.retain(|_, v| *v % 2 == 0);
                        model.retain(|_, v| *v % 2 == 0);
                    }
                }
                prop_assert_eq!(mine.len(), model.len());
                for k in 0..32u8 {
                    prop_assert_eq!(mine.get(&k), model.get(&k));
                    prop_assert_eq!(mine.contains_key(&k), model.contains_key(&k));
                }
                prop_assert!(mine.iter().eq(model.iter()));
            }
        }

        /// Built from unsorted pairs with repeats, it holds what a `BTreeMap` built from them
        /// holds (the last value of a key wins), and serialises to the same JSON.
        #[test]
        fn collects_and_serialises_as_a_btreemap(pairs in prop::collection::vec((0u8..16, any::<u16>()), 0..40)) {
            let mine: VecMap<String, u16> = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            let model: BTreeMap<String, u16> = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            prop_assert!(mine.iter().eq(model.iter()));
            let json = serde_json::to_string(&mine).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&model).unwrap());
            let back: VecMap<String, u16> = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, mine);
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_in_a_btreemap() {
        let repeated: VecMap<String, u8> = serde_json::from_str(r#"{"b":1,"a":2,"b":3}"#).unwrap();
        assert_eq!(
            repeated.iter().collect::<Vec<_>>(),
            [(&"a".to_owned(), &2), (&"b".to_owned(), &3)]
        );
    }
}
