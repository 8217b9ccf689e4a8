//! Topic names (DESIGN.md "Data flow"), with the configured prefix, and `hirestate topics
//! ensure`: create what is missing, check what exists. Reaching the cluster at all (and telling
//! refused credentials from a cluster that does not answer) is [`reach`].

pub mod reach;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;

use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaRespErr;

use crate::config::Config;
use crate::model::TargetSystem;
use crate::policy::Policy;

/// `max.message.bytes` of the snapshot (and DLQ) topic `ensure` creates, and
/// `message.max.bytes` of the processor's producer (`publish`): 17 MiB, a snapshot of up to
/// 16 MiB (~450 000 UUID event ids) with 1 MiB to spare for its record batch. A candidate's
/// state grows with its history (the duplicate check keeps every event id it has had), and
/// past Kafka's default of ~1 MB a record is refused.
pub const SNAPSHOT_TOPIC_MAX_MESSAGE_BYTES: &str = "17825792";

/// How often, and how far apart, [`ensure`] asks the metadata again for a topic not shown yet.
const METADATA_TRIES: u32 = 40;
const METADATA_PAUSE: Duration = Duration::from_millis(250);

/// Every topic hirestate reads or writes, for one prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Topics {
    prefix: String,
    pub events: String,
    pub snapshots: String,
    pub rejections: String,
    pub alerts: String,
    pub dlq: String,
}

/// Why `prefix` cannot prefix Kafka topic names, if it cannot: the broker refuses a name of
/// other characters than ASCII letters, digits, `.`, `_` and `-`, or longer than 249
/// characters (it said only `InvalidTopic` for each topic).
pub fn prefix_problem(prefix: &str) -> Option<String> {
    const MAX_NAME: usize = 249;
    let bad: String = prefix
        .chars()
        .filter(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .collect();
    let longest = Topics::new(prefix)
        .fixed()
        .into_iter()
        .map(str::len)
        .max()
        .unwrap_or_default();
    if !bad.is_empty() {
        Some(format!(
            "topic_prefix {prefix:?} (HIRESTATE_TOPIC_PREFIX) makes topic names Kafka refuses: \
             only ASCII letters, digits, '.', '_' and '-' are allowed, not {bad:?}"
        ))
    } else if longest > MAX_NAME {
        Some(format!(
            "topic_prefix (HIRESTATE_TOPIC_PREFIX) of {} characters makes topic names of up to \
             {longest}, and Kafka refuses names over {MAX_NAME}",
            prefix.len()
        ))
    } else {
        None
    }
}

impl Topics {
    /// The names that do not depend on the policy's targets.
    fn fixed(&self) -> [&str; 5] {
        [
            &self.events,
            &self.snapshots,
            &self.rejections,
            &self.alerts,
            &self.dlq,
        ]
    }

    /// The names under `prefix` (empty: no prefix).
    pub fn new(prefix: &str) -> Topics {
        let name = |n: &str| prefixed(prefix, n);
        Topics {
            prefix: prefix.to_owned(),
            events: name("hiring.events.v1"),
            snapshots: name("hiring.snapshots.v1"),
            rejections: name("hiring.rejections.v1"),
            alerts: name("hiring.alerts.v1"),
            dlq: name("hiring.dlq.v1"),
        }
    }

    /// `<system>.commands.<target>.v1`, prefixed.
    pub fn commands(&self, system: TargetSystem, target: &str) -> String {
        prefixed(
            &self.prefix,
            &format!("{}.commands.{target}.v1", system.as_str()),
        )
    }

    /// "topic `topic` does not exist", with what to do about it, as a tool says it. A name that
    /// is one of hirestate's under another prefix than the configured one (or none) is shown
    /// what the configured prefix makes of it; hirestate's own name, the command that creates
    /// it.
    pub fn missing(&self, topic: &str) -> String {
        let ours = std::iter::once(topic)
            .chain(topic.match_indices('.').map(|(at, _)| &topic[at + 1..]))
            .find(|n| is_hirestate_name(n));
        match ours {
            Some(n) if prefixed(&self.prefix, n) == topic => format!(
                "topic {topic} does not exist (create hirestate's topics with `hirestate topics \
                 ensure`, same configuration)"
            ),
            Some(n) => {
                let configured = if self.prefix.is_empty() {
                    "is not set".to_owned()
                } else {
                    format!("is \"{}\"", self.prefix)
                };
                format!(
                    "topic {topic} does not exist; HIRESTATE_TOPIC_PREFIX {configured}, so \
                     hirestate's {n} is {}",
                    prefixed(&self.prefix, n)
                )
            }
            None => format!("topic {topic} does not exist"),
        }
    }

    /// Every command topic the policy's targets need.
    pub fn all_commands(&self, policy: &Policy) -> Vec<String> {
        policy
            .targets
            .values()
            .map(|t| self.commands(t.system, &t.name))
            .collect()
    }

    /// Every topic with the settings `ensure` gives it.
    pub fn all(&self, policy: &Policy) -> Vec<(String, BTreeMap<&'static str, &'static str>)> {
        let mut v = vec![
            // The source of truth: never deleted by default.
            (
                self.events.clone(),
                BTreeMap::from([("retention.ms", "-1"), ("retention.bytes", "-1")]),
            ),
            (
                self.snapshots.clone(),
                BTreeMap::from([
                    ("cleanup.policy", "compact"),
                    ("max.message.bytes", SNAPSHOT_TOPIC_MAX_MESSAGE_BYTES),
                ]),
            ),
            (self.rejections.clone(), BTreeMap::new()),
            (self.alerts.clone(), BTreeMap::new()),
            // A dead-lettered record is the event log's record plus error headers: room for
            // one the event log took at its default limit, and more.
            (
                self.dlq.clone(),
                BTreeMap::from([("max.message.bytes", SNAPSHOT_TOPIC_MAX_MESSAGE_BYTES)]),
            ),
        ];
        v.extend(
            self.all_commands(policy)
                .into_iter()
                .map(|t| (t, BTreeMap::new())),
        );
        v
    }
}

/// `name` under `prefix` (empty: no prefix).
fn prefixed(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Whether `name` is one of hirestate's topic names without a prefix: a fixed one, or
/// `<ats|hris>.commands.<target>.v1`.
fn is_hirestate_name(name: &str) -> bool {
    let fixed = Topics::new("");
    if fixed.fixed().contains(&name) {
        return true;
    }
    let parts: Vec<&str> = name.split('.').collect();
    matches!(parts[..], [system, "commands", target, "v1"]
        if [TargetSystem::Ats, TargetSystem::Hris].iter().any(|s| s.as_str() == system) && !target.is_empty())
}

/// What `ensure` did, topic by topic.
#[derive(Debug, Default)]
pub struct EnsureReport {
    pub created: Vec<String>,
    pub existing: Vec<String>,
    pub problems: Vec<String>,
}

/// Creates missing topics and checks existing ones: the event log and the snapshots must have
/// the same partition count, an event log it did not create must not be compacted, and a
/// snapshot topic it did not create must be ([`topic_problems`]).
///
/// # Errors
/// Admin requests that fail outright; per-topic problems are in the report.
pub async fn ensure(config: &Config, policy: &Policy) -> anyhow::Result<EnsureReport> {
    let topics = Topics::new(&config.topic_prefix);
    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let wanted = topics.all(policy);
    let new: Vec<NewTopic<'_>> = wanted
        .iter()
        .map(|(name, settings)| {
            settings.iter().fold(
                NewTopic::new(
                    name,
                    config.partitions,
                    TopicReplication::Fixed(config.replication_factor),
                ),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    let mut report = EnsureReport::default();
    for r in admin.create_topics(&new, &opts).await? {
        match r {
            Ok(t) => report.created.push(t),
            Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => report.existing.push(t),
            Err((t, e @ RDKafkaErrorCode::TopicAuthorizationFailed)) => {
                report.problems.push(format!(
                    "{t}: {e}: this principal may not create it; grant it CREATE on the topics \
                     (README \"Access rights\"), or have an administrator create them"
                ))
            }
            Err((t, e)) => report.problems.push(format!("{t}: {e}")),
        }
    }
    // Every topic this created or found must be in the cluster's metadata before `ensure`
    // returns. Asked at once, a topic created a moment before (here, or by hand, or by a test)
    // can come back unknown: the event log's partition check was skipped without a word
    // (`processor_startup_checks` failed so in CI), and the very next command (`hirestate
    // produce` in a script, or a test) was told the topic it had just made does not exist
    // (`processor_cold_start` failed so in CI). So the metadata is asked again until all show,
    // for a while, and one still unknown is a problem. (One whose creation failed is neither
    // created nor found: it is not waited for, its problem is reported.)
    let names: Vec<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
    let expected = |t: &str| {
        report
            .created
            .iter()
            .chain(&report.existing)
            .any(|n| n == t)
    };
    let mut asked = partition_counts(config, &names)?;
    for _ in 0..METADATA_TRIES {
        if names
            .iter()
            .zip(&asked)
            .all(|(t, n)| n.is_some() || !expected(t))
        {
            break;
        }
        tokio::time::sleep(METADATA_PAUSE).await;
        asked = partition_counts(config, &names)?;
    }
    let waited = METADATA_PAUSE * METADATA_TRIES;
    for (t, n) in names.iter().zip(&asked) {
        if n.is_none() && expected(t) {
            let why = if report.existing.iter().any(|e| e == t) {
                "its partitions and policy are unchecked"
            } else {
                "it was created, and commands may say it does not exist until it shows"
            };
            report.problems.push(format!(
                "{t}: the cluster's metadata has not shown it within {waited:?}: {why}; run \
                 `hirestate topics ensure` again"
            ));
        }
    }
    let count = |t: &str| names.iter().position(|n| *n == t).and_then(|i| asked[i]);
    let pair = [&topics.events, &topics.snapshots];
    let found = pair.map(|t| report.existing.contains(t));
    let counts = pair.map(|t| count(t));
    report
        .problems
        .extend(topic_problems(config, &topics, counts, found));
    Ok(report)
}

/// [`partition_counts`] of one topic.
///
/// # Errors
/// As [`partition_counts`].
pub fn partition_count_of(config: &Config, topic: &str) -> anyhow::Result<Option<usize>> {
    Ok(partition_counts(config, &[topic])?
        .into_iter()
        .next()
        .flatten())
}

/// Partition count per topic (`None` when the topic does not exist).
///
/// # Errors
/// A metadata request that fails, or the broker's error for a topic (other than that it does
/// not exist): e.g. one this principal may not describe, which the broker does not say exists.
pub fn partition_counts(config: &Config, topics: &[&str]) -> anyhow::Result<Vec<Option<usize>>> {
    let described = describe(config, topics, Duration::from_secs(10), None)?.topics;
    topics
        .iter()
        .zip(described)
        .map(|(t, d)| match d {
            Ok(n) => Ok(Some(n)),
            Err(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => Ok(None),
            Err(e) => Err(reach::topic_error(config, t, e)),
        })
        .collect()
}

/// What the processor checks before it starts, every problem at once: that the cluster
/// answers within the transaction timeout (the longest any of its calls waits; a cluster that
/// does not, or that refuses the credentials, is [`reach::ReachError`]), and that every
/// topic it reads or writes exists — the event log and the snapshots with one partition count,
/// the event log not compacted and the snapshots compacted (unless `describe_configs` is
/// false: a cluster that answers no `DescribeConfigs`, such as librdkafka's mock).
/// Without this a missing event log left it polling a topic that is not there, for ever, and
/// an unreachable cluster surfaced as "Transaction error: Timed out" from the producer.
/// Returns what the state store records of the log it reflects: the cluster's id and the event
/// log's partition count.
///
/// # Errors
/// Naming the cluster and each topic at fault, and the command that fixes a missing one.
pub fn check_for_run(
    config: &Config,
    policy: &Policy,
    describe_configs: bool,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<RunTarget> {
    let topics = Topics::new(&config.topic_prefix);
    let wanted = topics.all(policy);
    let names: Vec<&str> = wanted.iter().map(|(t, _)| t.as_str()).collect();
    let timeout = Duration::from_millis(config.transaction_timeout_ms);
    let Described {
        topics: described,
        cluster,
    } = describe(config, &names, timeout, Some(stop.clone()))?;
    let mut missing = Vec::new();
    let mut problems = Vec::new();
    for (name, d) in names.iter().zip(&described) {
        match d {
            Ok(_) => {}
            Err(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => missing.push(*name),
            Err(e) => problems.push(format!("topic {name}: {}", RDKafkaErrorCode::from(*e))),
        }
    }
    if !missing.is_empty() {
        problems.insert(
            0,
            format!(
                "topics missing: {} (create them with `hirestate topics ensure`, same \
                 configuration)",
                missing.join(", ")
            ),
        );
    }
    let count = |topic: &str| {
        let at = names.iter().position(|n| *n == topic)?;
        described.get(at)?.as_ref().ok().copied()
    };
    problems.extend(topic_problems(
        config,
        &topics,
        [count(&topics.events), count(&topics.snapshots)],
        [describe_configs; 2],
    ));
    if cluster.is_none() {
        problems.push("the cluster reported no cluster id".to_owned());
    }
    match (problems.is_empty(), cluster, count(&topics.events)) {
        (true, Some(cluster), Some(event_partitions)) => Ok(RunTarget {
            cluster,
            event_partitions,
        }),
        _ => anyhow::bail!(
            "the Kafka cluster at {:?} is not ready for the processor: {}",
            config.bootstrap,
            problems.join("; ")
        ),
    }
}

/// The cluster `hirestate run` checked ([`check_for_run`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RunTarget {
    /// The cluster's id.
    pub cluster: String,
    /// The event log's partition count.
    pub event_partitions: usize,
}

/// Why the processor stops on an event log that has `now` partitions when its state was built
/// from `built`, and what to do: Kafka places a candidate's events by its key's hash modulo the
/// partition count, so once partitions are added many candidates' new events land on another
/// partition than their history, and no fold per partition of that log is right.
pub fn repartitioned(events: &str, built: usize, now: usize) -> String {
    format!(
        "{events} has {now} partitions, but this processor's state was built from {built}: \
         partitions were added to the event log. Kafka places a candidate's events by the hash \
         of its id modulo the partition count, so many candidates' new events now land on \
         another partition than their history, and no fold per partition of this log is right. \
         Partitions cannot be removed: copy the events, each candidate's in their order, into a \
         new event log (another HIRESTATE_TOPIC_PREFIX, created by `hirestate topics ensure` \
         with the partitions wanted) and run a new group with a fresh state directory on it \
         (README \"Adding partitions\")"
    )
}

/// What makes the existing event log and snapshot topic unfit, every problem: a snapshot
/// partition count other than the event log's (a candidate's snapshot lives on the partition
/// of its events), and — where `describe_configs` says, per topic — an event log that is
/// compacted ([`event_log_compacted`]) or a snapshot `cleanup.policy` other than `compact`
/// ([`compaction_problem`]); a snapshot `max.message.bytes` below what the processor may write
/// is warned about ([`warn_if_small`]). `partitions`: the event log's and the snapshots'
/// counts, `None` where a topic is not there.
fn topic_problems(
    config: &Config,
    topics: &Topics,
    partitions: [Option<usize>; 2],
    describe_configs: [bool; 2],
) -> Vec<String> {
    let mut problems = Vec::new();
    if let [Some(e), Some(s)] = partitions {
        if e != s {
            problems.push(format!(
                "{} has {e} partitions but {} has {s}: they must match (a candidate's \
                 snapshot lives on the partition of its events); if partitions were added to \
                 the event log, adding them to the snapshots too does not make it usable \
                 (README \"Adding partitions\")",
                topics.events, topics.snapshots
            ));
        }
    }
    if describe_configs[0] && partitions[0].is_some() {
        let policy = topic_configs(config, &topics.events).map(|[policy, _]| policy);
        problems.extend(event_log_compacted(&topics.events, policy));
    }
    if describe_configs[1] && partitions[1].is_some() {
        let (policy, max_bytes) = match topic_configs(config, &topics.snapshots) {
            Ok([policy, max_bytes]) => (Ok(policy), max_bytes),
            Err(e) => (Err(e), None),
        };
        problems.extend(compaction_problem(&topics.snapshots, policy));
        warn_if_small(&topics.snapshots, max_bytes.as_deref());
    }
    problems
}

/// Warns when `snapshots` takes records smaller than the processor may write
/// ([`SNAPSHOT_TOPIC_MAX_MESSAGE_BYTES`]; e.g. a topic created before that, with Kafka's ~1 MB):
/// not a refusal — most deployments never write a snapshot that large — but the batch that
/// does is refused and the processor stops.
fn warn_if_small(snapshots: &str, max_message_bytes: Option<&str>) {
    let wanted: u64 = SNAPSHOT_TOPIC_MAX_MESSAGE_BYTES.parse().unwrap_or(u64::MAX);
    let Some(max) = max_message_bytes.and_then(|v| v.trim().parse::<u64>().ok()) else {
        return;
    };
    if max < wanted {
        tracing::warn!(
            topic = snapshots,
            max_message_bytes = max,
            fix = %format!(
                "kafka-configs.sh --alter --entity-type topics --entity-name {snapshots} \
                 --add-config max.message.bytes={SNAPSHOT_TOPIC_MAX_MESSAGE_BYTES}"
            ),
            "the snapshot topic's max.message.bytes is below what the processor may write: a \
             candidate whose snapshot outgrows it (its state keeps every event id it has had) \
             stops the processor"
        );
    }
}

/// The problem with an event log whose `cleanup.policy` (as [`topic_configs`] read it) compacts
/// it: compaction keeps only the newest record of each key, one event per candidate, so a
/// restore, a cold start or a new group would fold what is left of each history as if it
/// were all of it — nothing in the log says events are missing. A log whose old segments are
/// deleted (`delete`, finite retention) is not refused: a restore that needs deleted events
/// stops on the gap (`ingest::restore`).
fn event_log_compacted(events: &str, policy: anyhow::Result<Option<String>>) -> Option<String> {
    match policy {
        Ok(Some(policy)) if policy.contains("compact") => Some(format!(
            "{events} has cleanup.policy={policy}: the event log must not be compacted, or a \
             restore or a new group folds only each candidate's newest events as if they were \
             its whole history (fix: kafka-configs.sh --alter --entity-type topics \
             --entity-name {events} --add-config cleanup.policy=delete; with retention.ms=-1, \
             as `hirestate topics ensure` creates it, nothing is deleted; events compacted away \
             already are lost to restores)"
        )),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(topic = events, error = %e, "cleanup.policy not checked: the cluster did not describe the topic's configuration");
            None
        }
    }
}

/// The problem with `snapshots`' `cleanup.policy` (as [`topic_configs`] read it), if it is not
/// `compact` alone. Restore takes a candidate with no snapshot in the newest round from its
/// newest one however old (it had no event since): a policy that deletes old records would
/// lose those candidates' states. A cluster that cannot describe topic configurations
/// (librdkafka's mock cluster) is not checked: that is logged.
fn compaction_problem(snapshots: &str, policy: anyhow::Result<Option<String>>) -> Option<String> {
    match policy {
        Ok(Some(policy)) if policy.trim() == "compact" => None,
        Ok(policy) => Some(format!(
            "{snapshots} has cleanup.policy={}: it must be compact, or restore loses the \
             state of every candidate whose newest snapshot was deleted (fix: \
             kafka-configs.sh --alter --entity-type topics --entity-name {snapshots} \
             --add-config cleanup.policy=compact)",
            policy.as_deref().unwrap_or("(none)")
        )),
        Err(e) => {
            tracing::warn!(topic = snapshots, error = %e, "cleanup.policy not checked: the cluster did not describe the topic's configuration");
            None
        }
    }
}

/// `topic`'s `cleanup.policy` and `max.message.bytes` as the cluster describes them. Blocks,
/// like the metadata requests beside it (the admin client's own thread completes the request).
fn topic_configs(config: &Config, topic: &str) -> anyhow::Result<[Option<String>; 2]> {
    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let resource = ResourceSpecifier::Topic(topic);
    let described = futures::executor::block_on(admin.describe_configs([&resource], &opts))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no answer"))?
        .map_err(|code| anyhow::anyhow!("{code}"))?;
    let value = |key: &str| described.get(key).and_then(|e| e.value.clone());
    Ok([value("cleanup.policy"), value("max.message.bytes")])
}

/// Partition count per topic, or the broker's error for it (the topic does not exist, is not
/// authorised, …), one metadata request each, none auto-creating a topic (a consumer's
/// metadata requests never do, unless `allow.auto.create.topics` is set); and the cluster's
/// id, when it reported one.
///
/// # Errors
/// A metadata request that fails outright (e.g. no broker answered within `timeout`).
fn describe(
    config: &Config,
    topics: &[&str],
    timeout: Duration,
    stop: Option<Arc<AtomicBool>>,
) -> Result<Described, reach::ReachError> {
    let c = reach::Reader::new(config, timeout)?.stopping_on(stop);
    let described = topics
        .iter()
        .map(|t| loop {
            let described = partition_count(&c.metadata(Some(t))?);
            // A topic just created has no leader for a moment: it exists, ask again.
            match described {
                Err(RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE) if !c.expired() => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                d => return Ok(d),
            }
        })
        .collect::<Result<_, reach::ReachError>>()?;
    // Every answer above carried the id: this reads what librdkafka already holds.
    let cluster = c.cluster_id(timeout);
    Ok(Described {
        topics: described,
        cluster,
    })
}

/// The partition count of the one topic a metadata request asked about, or the broker's error
/// for it (`UNKNOWN_TOPIC_OR_PART` when it named none).
pub fn partition_count(md: &Metadata) -> Result<usize, RDKafkaRespErr> {
    match md.topics().first() {
        None => Err(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART),
        Some(m) => match m.error() {
            Some(e) => Err(e),
            None => Ok(m.partitions().len()),
        },
    }
}

/// What [`describe`] found.
struct Described {
    /// Per topic asked about, in order: its partition count, or the broker's error for it.
    topics: Vec<Result<usize, RDKafkaRespErr>>,
    cluster: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_topic_is_shown_what_the_configured_prefix_names() {
        let hint = "create hirestate's topics with `hirestate topics ensure`";
        let p = Topics::new("p");
        // The configured names: the command that creates them.
        for t in ["p.hiring.events.v1", "p.ats.commands.greenhouse.v1"] {
            let said = p.missing(t);
            assert!(said.contains(&format!("topic {t} does not exist")) && said.contains(hint));
        }
        // Under another prefix, or none: what the configured one makes of the name.
        assert_eq!(
            p.missing("q.r.hiring.dlq.v1"),
            "topic q.r.hiring.dlq.v1 does not exist; HIRESTATE_TOPIC_PREFIX is \"p\", so \
             hirestate's hiring.dlq.v1 is p.hiring.dlq.v1"
        );
        assert_eq!(
            Topics::new("").missing("p.hris.commands.workday.v1"),
            "topic p.hris.commands.workday.v1 does not exist; HIRESTATE_TOPIC_PREFIX is not \
             set, so hirestate's hris.commands.workday.v1 is hris.commands.workday.v1"
        );
        // Not a name of hirestate's: nothing to suggest.
        for t in [
            "orders",
            "p.crm.commands.x.v1",
            "p.ats.commands..v1",
            "hiring.events.v2",
        ] {
            assert_eq!(p.missing(t), format!("topic {t} does not exist"));
        }
    }

    #[test]
    fn the_snapshot_and_dlq_topics_take_the_largest_snapshot_with_a_mebibyte_to_spare() {
        let limit: usize = SNAPSHOT_TOPIC_MAX_MESSAGE_BYTES.parse().expect("a number");
        assert_eq!(limit, 17 << 20);
        let topics = Topics::new("p");
        let policy = crate::policy::load(&crate::policy::default_dir()).expect("shipped policy");
        let all = topics.all(&policy);
        for topic in [&topics.snapshots, &topics.dlq] {
            let (_, settings) = all
                .iter()
                .find(|(name, _)| name == topic)
                .unwrap_or_else(|| panic!("{topic} not among the topics"));
            assert_eq!(
                settings.get("max.message.bytes"),
                Some(&SNAPSHOT_TOPIC_MAX_MESSAGE_BYTES),
                "{topic}"
            );
        }
    }
}
