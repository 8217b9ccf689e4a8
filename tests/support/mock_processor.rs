//! A processor running in-process (`app::run` on a thread) on librdkafka's one-broker mock
//! cluster, for tests of how it handles the broker going away: the mock's broker can be taken
//! down and brought up, and its requests answered with injected errors. The mock neither hides
//! aborted records nor stores transactional offsets, so such tests check handling, not what is
//! committed.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use hirestate::app::{self, RunOptions, RunReport, Status};
use hirestate::codec::{Codec, Framing};
use hirestate::config::Config;
use hirestate::generate::{stream, Spec};
use hirestate::model::Event;
use hirestate::topics::Topics;

/// A processor running in-process on a one-broker mock cluster, over a generated stream of
/// which the first half is produced before it starts.
pub struct Harness {
    pub cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    pub config: Config,
    topics: Topics,
    pub events: Vec<Event>,
    pub status: Arc<Status>,
    pub ended: mpsc::Receiver<anyhow::Result<RunReport>>,
    _state: tempfile::TempDir,
}

impl Harness {
    pub fn start(group: &str) -> Harness {
        let policy = Arc::new(
            hirestate::policy::load(&hirestate::policy::default_dir()).expect("the shipped policy"),
        );
        let cluster = MockCluster::new(1).expect("mock cluster");
        let state = tempfile::tempdir().expect("state dir");
        let config = Config {
            bootstrap: cluster.bootstrap_servers(),
            group_id: group.to_owned(),
            instance_id: group.to_owned(),
            state_dir: state.path().to_path_buf(),
            session_timeout_ms: 6_000,
            transaction_timeout_ms: 5_000,
            ..Config::default()
        };
        let topics = Topics::new(&config.topic_prefix);
        for (t, _) in topics.all(&policy) {
            cluster
                .create_topic(&t, config.partitions, 1)
                .expect("topic");
        }
        let events = stream(
            &Spec {
                seed: 11,
                candidates: 120,
                acks: false,
                ..Spec::default()
            },
            &policy,
        );
        let status = Arc::new(Status::default());
        let (done, ended) = mpsc::channel();
        let h = Harness {
            cluster,
            config,
            topics,
            events,
            status,
            ended,
            _state: state,
        };
        h.produce(..h.half());
        let (config, status) = (h.config.clone(), h.status.clone());
        thread::spawn(move || {
            let _ = done.send(app::run(
                &config,
                policy,
                status,
                &RunOptions {
                    mock_cluster: true,
                    ..RunOptions::default()
                },
            ));
        });
        h.wait_for("the first half folded", Duration::from_secs(60), h.half());
        h
    }

    pub fn half(&self) -> usize {
        self.events.len() / 2
    }

    /// Produces `part` of the stream to the event log, Avro single-object, keyed and placed as
    /// the processor expects, with a plain (not idempotent) producer: one that needs no
    /// `InitProducerId`, so a test can make the coordinator refuse those to the processor alone.
    pub fn produce(&self, part: impl std::slice::SliceIndex<[Event], Output = [Event]>) {
        let codec = Codec::embedded().expect("codec");
        let producer: BaseProducer = self
            .config
            .producer_config()
            .set("enable.idempotence", "false")
            .create()
            .expect("producer");
        for e in &self.events[part] {
            let bytes = codec
                .encode_local(e, Framing::SingleObject)
                .expect("encode");
            producer
                .send(
                    BaseRecord::to(&self.topics.events)
                        .key(&e.candidate_id)
                        .payload(&bytes),
                )
                .map_err(|(e, _)| e)
                .expect("enqueue");
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    }

    /// Events of committed batches, from the processor's own `/metrics` text.
    pub fn folded(&self) -> usize {
        self.status
            .metrics
            .render()
            .lines()
            .filter(|l| l.starts_with("hirestate_events_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as usize
    }

    /// Waits until `events` are folded; panics if the processor stops first.
    pub fn wait_for(&self, what: &str, limit: Duration, events: usize) {
        let start = Instant::now();
        while self.folded() < events {
            if let Ok(result) = self.ended.try_recv() {
                panic!("the processor stopped while waiting for {what}: {result:?}");
            }
            assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
            thread::sleep(Duration::from_millis(50));
        }
    }
}
