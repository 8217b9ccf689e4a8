//! SIGTERM while the broker is away must still stop the processor within a bounded time.
//!
//! By hand on the test broker (725 k events, the broker stopped 3 s into the run, SIGTERM 3 s
//! later): the batch's transaction failed, the producer was to be recreated, and
//! `init_transactions` was retried every minute; the process was still running 10 minutes
//! after SIGTERM. Nothing can be committed while the broker is away, so waiting for it only
//! holds the exit (and an orchestrator kills the process after its grace period anyway).
//!
//! Here, on librdkafka's mock cluster (handling only: the mock neither hides aborted records
//! nor stores transactional offsets), the coordinator ends the batch's transaction with a
//! fatal error (`PRODUCER_FENCED` on `EndTxn`), so the producer must be recreated, and then
//! answers every `InitProducerId` with `COORDINATOR_LOAD_IN_PROGRESS`, as a coordinator that
//! is not back yet does. The shutdown flag (what the SIGTERM handler sets) is raised: the run
//! must return, without error, and report the batch it could not commit as aborted; the next
//! start folds its records again, as after a crash.

#[path = "support/mock_processor.rs"]
mod mock_processor;

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use mock_processor::Harness;

#[test]
fn a_shutdown_while_the_coordinator_does_not_answer_stops_the_processor() {
    let h = Harness::start("shutdown-outage");
    h.cluster.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
    );
    h.cluster.request_errors(
        RDKafkaApiKey::InitProducerId,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 20_000],
    );
    // The rest of the stream: its first batch's commit meets the errors above.
    h.produce(h.half()..);
    thread::sleep(Duration::from_secs(3));
    let asked = Instant::now();
    h.status.shutdown.store(true, Ordering::Relaxed);
    // A liveness bound, not a speed target: before the fix the run did not return.
    let report = h
        .ended
        .recv_timeout(Duration::from_secs(120))
        .expect("the processor stops while the coordinator does not answer")
        .expect("the processor stops without error");
    eprintln!(
        "stopped {:?} after the shutdown was asked for; {report:?}",
        asked.elapsed()
    );
    // The batch met the fenced commit (else nothing here was tested), and was not committed.
    assert!(report.aborted_batches >= 1, "{report:?}");
    assert!(report.counts.consumed < h.events.len() as u64, "{report:?}");
}
