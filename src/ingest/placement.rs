//! Placement: which partition of the event log a candidate's events must be on.
//!
//! The processor folds each partition on its own, so one candidate's whole history must sit on
//! one partition. Kafka does not guarantee that: the producer picks the partition, and clients
//! disagree on how. Java clients (and Kafka Connect, Streams, kafkajs, franz-go) hash the key
//! with murmur2; librdkafka's clients (confluent-kafka for Python, Go, .NET, and `rdkafka`)
//! default to CRC-32. Two vendors keyed by `candidate_id` but on different clients put about
//! three quarters of the candidates they share (with 4 partitions) on two partitions, and each
//! partition then folds a history with the other's events missing: commands lost, spurious
//! `unknown_application` rejections, and no error anywhere.
//!
//! Invariant: with a partitioner configured (`events_partitioner`, default `murmur2`), an event
//! is folded only on the partition that partitioner gives its key for the log's partition
//! count. Any other record is refused at admission, so the live path dead-letters it (with the
//! partition it belongs on in the error) and a restore skips it, the same way; nothing of it
//! reaches a state. `unchecked` turns the check off, for logs placed some other consistent way
//! (a custom partitioner; a copy that keeps partition numbers needs no such setting, since its
//! source was placed by a partitioner).
//!
//! Invariant: a log is folded under one placement. Every offset the processor commits carries
//! its placement in the offset's metadata ([`Placement::offset_metadata`]); an assignment
//! whose committed offsets were committed under another placement — partitions added since,
//! or `events_partitioner` changed — is refused before anything is restored
//! ([`Placement::changed_from`]): the records each placement refuses differ, so a restore under
//! the new one would skip events folded under the old, or fold ones it dead-lettered. This
//! holds with an empty state directory too, which records no partition count. A new group has
//! no committed offsets either; the snapshots an earlier group wrote tell instead: each sits
//! on the partition its candidate's events were folded on, so one that the placement puts on
//! another partition was written under another placement, and the restore stops there
//! (`ingest::restore`, [`RestoreError::MisplacedSnapshot`](super::restore::RestoreError)).
//!
//! The same metadata names the digest of the policy the committed batch was folded under
//! ([`policy_of_offset_metadata`]), so a restore can tell when it folds, under the configured
//! policy, events that were committed under another (`ingest::restore` warns).
//!
//! The hashes are Kafka's: Java's `Utils.murmur2` (seed `0x9747b28c`, its sign bit cleared)
//! and librdkafka's `consistent` partitioner (CRC-32), each modulo the partition count.

use std::fmt;
use std::str::FromStr;

/// How the producers of the event log place a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partitioner {
    /// Java clients' default, librdkafka's `murmur2_random`.
    #[default]
    Murmur2,
    /// librdkafka's default (`consistent_random`).
    Crc32,
    /// No check.
    Unchecked,
}

impl Partitioner {
    /// The partition this partitioner gives `key` among `partitions`; `None` when unchecked.
    pub fn partition_of(self, key: &[u8], partitions: usize) -> Option<i32> {
        let hash = match self {
            Partitioner::Murmur2 => murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff,
            Partitioner::Crc32 => crc32fast::hash(key),
            Partitioner::Unchecked => return None,
        };
        let n = u32::try_from(partitions.max(1)).unwrap_or(u32::MAX);
        i32::try_from(hash % n).ok()
    }

    /// librdkafka's `partitioner` setting that places keys this way, for the tools' producers.
    pub fn librdkafka_name(self) -> Option<&'static str> {
        match self {
            Partitioner::Murmur2 => Some("murmur2_random"),
            Partitioner::Crc32 => Some("consistent_random"),
            Partitioner::Unchecked => None,
        }
    }
}

/// Why a producer whose librdkafka `partitioner` setting is `setting` (`None`: librdkafka's
/// default) puts events where `expected` does not look for them; `None` when it places keys
/// the same way (the `_random` variants differ only for records without a key).
pub fn producer_mismatch(setting: Option<&str>, expected: Partitioner) -> Option<String> {
    let places = match setting.unwrap_or("consistent_random") {
        "murmur2" | "murmur2_random" => Partitioner::Murmur2,
        "consistent" | "consistent_random" => Partitioner::Crc32,
        _ => Partitioner::Unchecked,
    };
    (expected != Partitioner::Unchecked && places != expected).then(|| {
        format!(
            "partitioner={} places keys differently from events_partitioner = {expected}: the \
             processor dead-letters the events it puts on other partitions",
            setting.unwrap_or("consistent_random (librdkafka's default)")
        )
    })
}

impl fmt::Display for Partitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Partitioner::Murmur2 => "murmur2",
            Partitioner::Crc32 => "crc32",
            Partitioner::Unchecked => "unchecked",
        })
    }
}

impl FromStr for Partitioner {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "murmur2" => Ok(Partitioner::Murmur2),
            "crc32" => Ok(Partitioner::Crc32),
            "unchecked" => Ok(Partitioner::Unchecked),
            other => Err(format!(
                "events_partitioner {other:?} is not one of murmur2 (Java clients' default), \
                 crc32 (librdkafka's default) or unchecked"
            )),
        }
    }
}

impl serde::Serialize for Partitioner {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Partitioner {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What committed offsets' metadata starts with when the processor wrote it.
const METADATA_PREFIX: &str = "hirestate placement ";

/// The digest of the policy a committed offset's batch was folded under, if the processor
/// wrote it (versions before it recorded none).
pub fn policy_of_offset_metadata(metadata: &str) -> Option<&str> {
    metadata
        .strip_prefix(METADATA_PREFIX)?
        .split_whitespace()
        .find_map(|pair| pair.strip_prefix("policy_digest="))
        .filter(|d| !d.is_empty())
}

/// The event log's placement rule: a partitioner and the log's partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub partitioner: Partitioner,
    pub partitions: usize,
}

impl Placement {
    /// No check (the in-process paths that read no partitioned log).
    pub const UNCHECKED: Placement = Placement {
        partitioner: Partitioner::Unchecked,
        partitions: 1,
    };

    /// `Ok` when a record keyed `key` may be folded on `partition`; otherwise why not.
    ///
    /// # Errors
    /// The message for the DLQ's error header: where the record is, where it belongs, and
    /// what to do.
    pub fn check(&self, key: &[u8], partition: i32) -> Result<(), String> {
        match self.partitioner.partition_of(key, self.partitions) {
            Some(p) if p != partition => Err(format!(
                "the record is on partition {partition}, but {} (events_partitioner) places key \
                 {:?} on partition {p} of {}: its producer partitions differently from the \
                 rest of the log (librdkafka-based clients default to crc32, Java clients to \
                 murmur2), and folding it here would split the candidate's history over two \
                 partitions. Produce it again with partitioner={}",
                self.partitioner,
                String::from_utf8_lossy(key),
                self.partitions,
                self.partitioner.librdkafka_name().unwrap_or_default(),
            )),
            _ => Ok(()),
        }
    }

    /// The metadata of every offset the processor commits: its placement, and the digest of
    /// the policy the batch was folded under.
    pub fn offset_metadata(&self, policy_digest: &str) -> String {
        format!(
            "{METADATA_PREFIX}partitioner={} partitions={} policy_digest={policy_digest}",
            self.partitioner, self.partitions
        )
    }

    /// The placement a committed offset's `metadata` records, if the processor wrote it (an
    /// older version, or another tool, wrote none).
    pub fn from_offset_metadata(metadata: &str) -> Option<Placement> {
        let mut partitioner = None;
        let mut partitions = None;
        for pair in metadata.strip_prefix(METADATA_PREFIX)?.split_whitespace() {
            match pair.split_once('=')? {
                ("partitioner", v) => partitioner = v.parse().ok(),
                ("partitions", v) => partitions = v.parse().ok(),
                _ => {}
            }
        }
        Some(Placement {
            partitioner: partitioner?,
            partitions: partitions?,
        })
    }

    /// Why this placement must not fold `topic` on from offsets committed under `committed`,
    /// if it differs.
    pub fn changed_from(&self, committed: &Placement, topic: &str) -> Option<String> {
        if committed.partitions != self.partitions {
            return Some(crate::topics::repartitioned(
                topic,
                committed.partitions,
                self.partitions,
            ));
        }
        (committed.partitioner != self.partitioner).then(|| {
            format!(
                "{topic} was folded with events_partitioner = {}, but this processor runs with \
                 {}: each dead-letters other records, so the state folded so far does not \
                 follow from this setting. Set events_partitioner = {} again, or fold the log \
                 anew under the new setting: a new HIRESTATE_GROUP_ID with a fresh state \
                 directory (command ids are derived from the events, so a sink that \
                 deduplicates by them sees commands it applied as duplicates)",
                committed.partitioner, self.partitioner, committed.partitioner
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `org.apache.kafka.common.utils.Utils.murmur2` of these keys and the Java producer's
    /// partition (`toPositive(hash) % n`), computed with kafka-clients 4.1.1 in `jshell`.
    const JAVA: [(&str, i32, i32, i32); 6] = [
        ("21", -973_932_308, 0, 3),
        ("foobar", -790_332_482, 2, 0),
        ("cand-000001", 1_903_111_590, 2, 2),
        ("cand-000003", -1_125_214_506, 2, 6),
        ("a-little-bit-long-string", -985_981_536, 0, 1),
        ("abc", 479_470_107, 3, 4),
    ];

    #[test]
    fn murmur2_places_keys_as_the_java_producer_does() {
        for (key, hash, p4, p7) in JAVA {
            let raw = murmur2::murmur2(key.as_bytes(), murmur2::KAFKA_SEED);
            assert_eq!(raw.cast_signed(), hash, "{key}");
            assert_eq!(
                Partitioner::Murmur2.partition_of(key.as_bytes(), 4),
                Some(p4)
            );
            assert_eq!(
                Partitioner::Murmur2.partition_of(key.as_bytes(), 7),
                Some(p7)
            );
        }
    }

    /// librdkafka itself is the oracle: records produced to the mock cluster with each
    /// partitioner land where [`Partitioner::partition_of`] says.
    #[test]
    fn both_partitioners_place_keys_as_librdkafka_does() {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        use rdkafka::ClientConfig;

        let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("t", 7, 1).expect("topic");
        for (name, ours) in [
            ("murmur2_random", Partitioner::Murmur2),
            ("consistent_random", Partitioner::Crc32),
        ] {
            let landed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let producer: BaseProducer<Recorder> = ClientConfig::new()
                .set("bootstrap.servers", cluster.bootstrap_servers())
                .set("partitioner", name)
                .create_with_context(Recorder(landed.clone()))
                .expect("producer");
            let keys: Vec<String> = (0..200).map(|i| format!("cand-{i:06}")).collect();
            for k in &keys {
                producer
                    .send(BaseRecord::to("t").key(k).payload("x"))
                    .expect("send");
            }
            producer
                .flush(std::time::Duration::from_secs(30))
                .expect("flush");
            let landed = landed.lock().expect("lock").clone();
            assert_eq!(landed.len(), keys.len(), "{name}: every record delivered");
            let spread: std::collections::BTreeSet<i32> = landed.iter().map(|(_, p)| *p).collect();
            assert_eq!(spread.len(), 7, "{name}: the keys reach every partition");
            for (key, partition) in landed {
                assert_eq!(
                    ours.partition_of(key.as_bytes(), 7),
                    Some(partition),
                    "{name}: key {key}"
                );
            }
        }
    }

    /// Collects (key, partition) of each delivered record.
    struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<(String, i32)>>>);

    impl rdkafka::ClientContext for Recorder {}

    impl rdkafka::producer::ProducerContext for Recorder {
        type DeliveryOpaque = ();

        fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {
            use rdkafka::Message;
            let m = result.as_ref().expect("delivered");
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            self.0.lock().expect("lock").push((key, m.partition()));
        }
    }

    #[test]
    fn the_check_names_where_a_record_belongs_and_unchecked_takes_any() {
        let placement = Placement {
            partitioner: Partitioner::Murmur2,
            partitions: 4,
        };
        assert_eq!(placement.check(b"foobar", 2), Ok(()));
        let err = placement.check(b"foobar", 1).expect_err("misplaced");
        for part in [
            "on partition 1",
            "places key \"foobar\" on partition 2 of 4",
            "partitioner=murmur2_random",
        ] {
            assert!(err.contains(part), "{part:?} not in {err}");
        }
        for p in 0..4 {
            assert_eq!(Placement::UNCHECKED.check(b"foobar", p), Ok(()));
        }
    }

    #[test]
    fn a_producer_placing_keys_otherwise_is_named() {
        use Partitioner::*;
        for (setting, expected) in [
            (Some("murmur2_random"), Murmur2),
            (Some("murmur2"), Murmur2),
            (Some("consistent_random"), Crc32),
            (None, Crc32),
            (Some("fnv1a"), Unchecked),
        ] {
            assert_eq!(producer_mismatch(setting, expected), None, "{setting:?}");
        }
        let err = producer_mismatch(None, Murmur2).expect("crc32 is not murmur2");
        assert!(
            err.contains("consistent_random (librdkafka's default)"),
            "{err}"
        );
        assert!(err.contains("events_partitioner = murmur2"), "{err}");
        assert!(producer_mismatch(Some("fnv1a"), Crc32).is_some());
        assert!(producer_mismatch(Some("murmur2_random"), Crc32).is_some());
    }

    #[test]
    fn offsets_carry_the_placement_and_a_change_is_named() {
        let at = |partitioner, partitions| Placement {
            partitioner,
            partitions,
        };
        let now = at(Partitioner::Murmur2, 4);
        let meta = now.offset_metadata("8fab08d1");
        assert_eq!(Placement::from_offset_metadata(&meta), Some(now));
        assert_eq!(policy_of_offset_metadata(&meta), Some("8fab08d1"));
        // As the versions before the digest wrote it: the placement still reads.
        let older = "hirestate placement partitioner=murmur2 partitions=4";
        assert_eq!(Placement::from_offset_metadata(older), Some(now));
        assert_eq!(policy_of_offset_metadata(older), None);
        for other in [
            "",
            "checkpoint 7",
            "hirestate placement partitions=4",
            "hirestate placement x",
        ] {
            assert_eq!(Placement::from_offset_metadata(other), None, "{other:?}");
            assert_eq!(policy_of_offset_metadata(other), None, "{other:?}");
        }
        assert_eq!(policy_of_offset_metadata("policy_digest=ab"), None);
        assert_eq!(now.changed_from(&now, "ev"), None);
        let grown = now
            .changed_from(&at(Partitioner::Murmur2, 2), "ev")
            .expect("grown");
        assert!(
            grown.contains("ev has 4 partitions") && grown.contains("built from 2"),
            "{grown}"
        );
        let switched = now
            .changed_from(&at(Partitioner::Crc32, 4), "ev")
            .expect("switched");
        assert!(
            switched.contains("events_partitioner = crc32, but this processor runs with murmur2"),
            "{switched}"
        );
    }

    #[test]
    fn names_parse_and_print_back() {
        for p in [
            Partitioner::Murmur2,
            Partitioner::Crc32,
            Partitioner::Unchecked,
        ] {
            assert_eq!(p.to_string().parse::<Partitioner>(), Ok(p));
        }
        let err = "java".parse::<Partitioner>().expect_err("unknown");
        assert!(err.contains("\"java\"") && err.contains("murmur2"), "{err}");
    }
}
