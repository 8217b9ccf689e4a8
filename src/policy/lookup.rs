//! The policy's collections the fold looks names up in on every event: [`NameMap`] (stages,
//! fields, targets, regions, a target's remote names) and [`Transitions`].
//!
//! They were `BTreeMap`s and a `Vec` searched front to back: each lookup compared the name
//! with several keys, a `memcmp` call each; about 40 of the 58 calls an event the fold made
//! (callgrind, over the `fold` bench's stream). Here a lookup is one hash of the name and one
//! comparison.
//!
//! Invariant: the hash index always agrees with the entries. Only `insert`/`push` (and the
//! `FromIterator` impls) change a collection, and each keeps its index; there is no mutable
//! access to an entry's key. Iteration and serialisation are in key order (`NameMap`) or in
//! listed order (`Transitions`), exactly what the `BTreeMap` and `Vec` gave, so the digest,
//! the diagrams and every rendering are unchanged.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::types::Transition;

/// A map from names, iterated in name order, looked up by hash.
#[derive(Clone)]
pub struct NameMap<V> {
    /// Sorted by name, names unique. Each name is shared (`Arc`) with whatever keeps it: a
    /// candidate's state keys its fields by the dictionary's own names.
    entries: Vec<(Arc<str>, V)>,
    /// Name → index into `entries`.
    index: FxHashMap<Arc<str>, usize>,
}

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        NameMap {
            entries: Vec::new(),
            index: FxHashMap::default(),
        }
    }
}

impl<V> NameMap<V> {
    /// The value named `name`.
    pub fn get(&self, name: &str) -> Option<&V> {
        self.index.get(name).map(|&i| &self.entries[i].1)
    }

    /// The value named `name`, to change (its name stays).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        self.index.get(name).map(|&i| &mut self.entries[i].1)
    }

    /// The entry named `name`: the map's own (shared) name, and its value.
    pub fn get_key_value(&self, name: &str) -> Option<(&Arc<str>, &V)> {
        self.index.get(name).map(|&i| {
            let (k, v) = &self.entries[i];
            (k, v)
        })
    }

    /// Whether the map names `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Sets `name` to `value`; returns the value it replaced.
    pub fn insert(&mut self, name: String, value: V) -> Option<V> {
        if let Some(&i) = self.index.get(name.as_str()) {
            return Some(std::mem::replace(&mut self.entries[i].1, value));
        }
        let at = self.entries.partition_point(|(k, _)| **k < *name);
        self.entries.insert(at, (name.into(), value));
        self.reindex();
        None
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, (k, _)) in self.entries.iter().enumerate() {
            self.index.insert(k.clone(), i);
        }
    }

    /// How many names the map holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map holds no name.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &V)> {
        self.into_iter()
    }

    /// Names in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.entries.iter().map(|(k, _)| &**k)
    }

    /// Values in name order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }
}

impl<V> FromIterator<(String, V)> for NameMap<V> {
    /// The last value of a repeated name wins, as in a `BTreeMap`.
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut entries: Vec<(String, V)> = iter.into_iter().collect();
        // Stable: of equal names, the last one given ends up last, and is the one kept.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(Arc<str>, V)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match kept.last_mut() {
                Some(last) if *last.0 == *k => last.1 = v,
                _ => kept.push((k.into(), v)),
            }
        }
        let mut map = NameMap {
            entries: kept,
            index: FxHashMap::default(),
        };
        map.reindex();
        map
    }
}

impl<'a, V> IntoIterator for &'a NameMap<V> {
    type Item = (&'a str, &'a V);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (Arc<str>, V)>, fn(&'a (Arc<str>, V)) -> Self::Item>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }
}

impl<V> std::ops::Index<&str> for NameMap<V> {
    type Output = V;

    /// # Panics
    /// When the map does not name `name`, as a `BTreeMap` does.
    fn index(&self, name: &str) -> &V {
        self.get(name)
            .unwrap_or_else(|| panic!("no entry named {name:?}"))
    }
}

impl<V: PartialEq> PartialEq for NameMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl<V: fmt::Debug> fmt::Debug for NameMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Serialize> Serialize for NameMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The listed transitions, in the order the policy lists them, looked up by (from, to).
/// Read as a slice; only [`Transitions::push`] adds one.
#[derive(Clone, Default)]
pub struct Transitions {
    list: Vec<Transition>,
    /// From-stage → indexes into `list` of its transitions, in listed order (a stage has a
    /// handful of exits: comparing their `to` is cheaper than hashing a pair).
    from: FxHashMap<String, Vec<usize>>,
}

impl Transitions {
    /// The listed transition from `from` to `to`, if any (the first, if listed twice).
    pub fn get(&self, from: &str, to: &str) -> Option<&Transition> {
        self.from
            .get(from)?
            .iter()
            .map(|&i| &self.list[i])
            .find(|t| &*t.to == to)
    }

    /// Adds `t` after the others.
    pub fn push(&mut self, t: Transition) {
        self.from
            .entry(t.from.clone())
            .or_default()
            .push(self.list.len());
        self.list.push(t);
    }
}

impl Deref for Transitions {
    type Target = [Transition];

    fn deref(&self) -> &[Transition] {
        &self.list
    }
}

impl FromIterator<Transition> for Transitions {
    fn from_iter<I: IntoIterator<Item = Transition>>(iter: I) -> Self {
        let mut out = Transitions::default();
        for t in iter {
            out.push(t);
        }
        out
    }
}

impl<'a> IntoIterator for &'a Transitions {
    type Item = &'a Transition;
    type IntoIter = std::slice::Iter<'a, Transition>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl PartialEq for Transitions {
    fn eq(&self, other: &Self) -> bool {
        self.list == other.list
    }
}

impl fmt::Debug for Transitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.list.fmt(f)
    }
}

impl Serialize for Transitions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.list.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SourceSystem;

    fn t(from: &str, to: &str, owner: &str) -> Transition {
        Transition {
            from: from.into(),
            to: to.into(),
            authority: vec![SourceSystem::Ats],
            owner: owner.into(),
        }
    }

    #[test]
    fn a_name_map_iterates_in_name_order_and_finds_every_name_after_any_insert() {
        let mut m: NameMap<u32> = [("b".to_string(), 1), ("a".into(), 2), ("b".into(), 3)]
            .into_iter()
            .collect();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(m.get("b"), Some(&3), "the last of a repeated name wins");
        assert_eq!(m.insert("c".into(), 4), None);
        assert_eq!(m.insert("0".into(), 5), None);
        assert_eq!(m.insert("a".into(), 6), Some(2));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["0", "a", "b", "c"]);
        for (name, want) in [("0", 5), ("a", 6), ("b", 3), ("c", 4)] {
            assert_eq!(m.get(name), Some(&want), "{name}");
            let (key, value) = m.get_key_value(name).expect("named");
            assert_eq!((&**key, value), (name, &want));
        }
        assert!(!m.contains_key("d"));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"0":5,"a":6,"b":3,"c":4}"#
        );
    }

    #[test]
    fn transitions_are_found_by_from_and_to_and_keep_their_order() {
        let mut ts: Transitions = [t("a", "b", "x"), t("b", "c", "y"), t("a", "b", "z")]
            .into_iter()
            .collect();
        ts.push(t("c", "a", "w"));
        assert_eq!(ts.get("a", "b").map(|t| t.owner.as_str()), Some("x"));
        assert_eq!(ts.get("b", "c").map(|t| t.owner.as_str()), Some("y"));
        assert_eq!(ts.get("c", "a").map(|t| t.owner.as_str()), Some("w"));
        assert_eq!(ts.get("b", "a"), None);
        assert_eq!(ts.get("a", ""), None, "the whole name, not a prefix of it");
        assert_eq!(
            ts.get("ab", ""),
            None,
            "the pair is two names, not one string"
        );
        let owners: Vec<&str> = ts.iter().map(|t| t.owner.as_str()).collect();
        assert_eq!(owners, ["x", "y", "z", "w"]);
    }
}
