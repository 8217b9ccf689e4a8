//! Topic names (DESIGN.md "Data flow"), with the configured prefix, and `hirestate topics
//! ensure`: create what is missing, check what exists.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

use crate::config::Config;
use crate::model::TargetSystem;
use crate::policy::Policy;

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

impl Topics {
    /// The names under `prefix` (empty: no prefix).
    pub fn new(prefix: &str) -> Topics {
        let name = |n: &str| {
            if prefix.is_empty() {
                n.to_owned()
            } else {
                format!("{prefix}.{n}")
            }
        };
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
        let n = format!("{}.commands.{target}.v1", system.as_str());
        if self.prefix.is_empty() {
            n
        } else {
            format!("{}.{n}", self.prefix)
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
                BTreeMap::from([("cleanup.policy", "compact")]),
            ),
            (self.rejections.clone(), BTreeMap::new()),
            (self.alerts.clone(), BTreeMap::new()),
            (self.dlq.clone(), BTreeMap::new()),
        ];
        v.extend(
            self.all_commands(policy)
                .into_iter()
                .map(|t| (t, BTreeMap::new())),
        );
        v
    }
}

/// What `ensure` did, topic by topic.
#[derive(Debug, Default)]
pub struct EnsureReport {
    pub created: Vec<String>,
    pub existing: Vec<String>,
    pub problems: Vec<String>,
}

/// Creates missing topics and checks existing ones: the event log and the snapshots must have
/// the same partition count (a candidate's snapshot lives on the partition of its events).
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
            Err((t, e)) => report.problems.push(format!("{t}: {e}")),
        }
    }
    let counts = partition_counts(config, &[&topics.events, &topics.snapshots])?;
    if let (Some(e), Some(s)) = (
        counts.first().copied().flatten(),
        counts.get(1).copied().flatten(),
    ) {
        if e != s {
            report.problems.push(format!(
                "{} has {e} partitions but {} has {s}: they must match",
                topics.events, topics.snapshots
            ));
        }
    }
    Ok(report)
}

/// Partition count per topic (`None` when the topic does not exist).
///
/// # Errors
/// A metadata request that fails.
pub fn partition_counts(config: &Config, topics: &[&str]) -> anyhow::Result<Vec<Option<usize>>> {
    let c: BaseConsumer = config.consumer_config().create()?;
    topics
        .iter()
        .map(|t| {
            let md = c.fetch_metadata(Some(t), Duration::from_secs(10))?;
            Ok(md
                .topics()
                .first()
                .filter(|m| m.error().is_none())
                .map(|m| m.partitions().len()))
        })
        .collect()
}
