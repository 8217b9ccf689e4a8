//! A broker outage longer than the group session timeout must not stop the processor.
//!
//! When no heartbeat gets an answer for `session.timeout.ms`, librdkafka drops the assignment
//! as lost, forgets its member id and rejoins. A static member (the processor always sets
//! `group.instance.id`) can then be answered `FENCED_INSTANCE_ID`: the coordinator still holds
//! the member's earlier membership (a broker restarted within the session loads the group back
//! with it), and librdkafka's heartbeat with the forgotten id is refused as coming from another
//! instance (librdkafka #3437). librdkafka makes that error fatal for the consumer. Run by hand
//! on the test broker (725 k events, the broker stopped for ~80 s mid-run), the processor then
//! stopped with "consumer fenced: another instance joined group … with this instance's id", on
//! a cluster where no other instance ran.
//!
//! This test plays that on librdkafka's mock cluster: the broker goes down for longer than the
//! session timeout, and when it comes back the coordinator answers the first heartbeat with
//! `FENCED_INSTANCE_ID`, as the real broker did. The processor must rejoin with a new consumer
//! and go on: events produced after the outage are folded, and the run ends without error. The
//! mock neither hides aborted records nor stores transactional offsets, so this checks the
//! handling only. A fence with no lost session before it is a genuine second instance with the
//! same id: the processor must still stop, naming the id (the second test here;
//! `processor_fenced` plays it with two instances on the real broker).

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use hirestate::app::{self, RunOptions, RunReport, Status};
use hirestate::codec::Framing;
use hirestate::config::Config;
use hirestate::generate::{stream, Spec};
use hirestate::model::Event;
use hirestate::topics::Topics;

/// A processor running in-process on a one-broker mock cluster, over a generated stream of
/// which the first half is produced before it starts.
struct Harness {
    cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    config: Config,
    topics: Topics,
    events: Vec<hirestate::model::Event>,
    status: Arc<Status>,
    ended: mpsc::Receiver<anyhow::Result<RunReport>>,
    rt: tokio::runtime::Runtime,
    _state: tempfile::TempDir,
}

impl Harness {
    fn start(group: &str) -> Harness {
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
            rt: tokio::runtime::Runtime::new().expect("runtime"),
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

    fn half(&self) -> usize {
        self.events.len() / 2
    }

    fn produce(&self, part: impl std::slice::SliceIndex<[Event], Output = [Event]>) {
        let mut lines = Vec::new();
        for e in &self.events[part] {
            serde_json::to_writer(&mut lines, e).expect("json");
            lines.push(b'\n');
        }
        self.rt
            .block_on(hirestate::tools::produce::produce(
                &self.config,
                &lines[..],
                &self.topics.events,
                Framing::SingleObject,
                &mut std::io::stderr(),
            ))
            .expect("produce");
    }

    /// Events of committed batches, from the processor's own `/metrics` text.
    fn folded(&self) -> usize {
        self.status
            .metrics
            .render()
            .lines()
            .filter(|l| l.starts_with("hirestate_events_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as usize
    }

    /// Waits until `events` are folded; panics if the processor stops first.
    fn wait_for(&self, what: &str, limit: Duration, events: usize) {
        let start = Instant::now();
        while self.folded() < events {
            if let Ok(result) = self.ended.try_recv() {
                panic!("the processor stopped while waiting for {what}: {result:?}");
            }
            assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The coordinator refuses the next heartbeat as from a fenced static member.
    fn fence_next_heartbeat(&self) {
        self.cluster.request_errors(
            RDKafkaApiKey::Heartbeat,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID],
        );
    }
}

#[test]
fn a_session_lost_in_a_broker_outage_is_rejoined_not_fatal() {
    let h = Harness::start("session-lost");
    // The outage: longer than the session timeout, so librdkafka's session times out.
    h.cluster.broker_down(1).expect("broker down");
    thread::sleep(Duration::from_millis(h.config.session_timeout_ms + 3_000));
    // The coordinator still holds the earlier membership and refuses the heartbeat that
    // follows the rejoin, as the real broker did after its restart.
    h.fence_next_heartbeat();
    h.cluster.broker_up(1).expect("broker up");

    h.produce(h.half()..);
    h.wait_for(
        "the second half folded",
        Duration::from_secs(120),
        h.events.len(),
    );
    h.status.shutdown.store(true, Ordering::Relaxed);
    let report = h
        .ended
        .recv_timeout(Duration::from_secs(60))
        .expect("the processor stops on shutdown")
        .expect("the processor stops without error");
    assert_eq!(report.rejoined, 1, "{report:?}");
}

#[test]
fn a_fence_with_no_session_lost_before_it_still_stops_the_processor() {
    let h = Harness::start("fenced-in-session");
    h.fence_next_heartbeat();
    let stopped = h
        .ended
        .recv_timeout(Duration::from_secs(60))
        .expect("the fenced processor stops");
    let err = format!(
        "{:#}",
        stopped.expect_err("the fenced processor stops with an error")
    );
    for needle in ["fenced", "fenced-in-session", "HIRESTATE_INSTANCE_ID"] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
}
