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

#[path = "support/mock_processor.rs"]
mod mock_processor;

use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use mock_processor::Harness;

/// The coordinator refuses the next heartbeat as from a fenced static member.
fn fence_next_heartbeat(h: &Harness) {
    h.cluster.request_errors(
        RDKafkaApiKey::Heartbeat,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID],
    );
}

#[test]
fn a_session_lost_in_a_broker_outage_is_rejoined_not_fatal() {
    let h = Harness::start("session-lost");
    // The outage: longer than the session timeout, so librdkafka's session times out.
    h.cluster.broker_down(1).expect("broker down");
    thread::sleep(Duration::from_millis(h.config.session_timeout_ms + 3_000));
    // The coordinator still holds the earlier membership and refuses the heartbeat that
    // follows the rejoin, as the real broker did after its restart.
    fence_next_heartbeat(&h);
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
    fence_next_heartbeat(&h);
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
