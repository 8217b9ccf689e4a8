//! A second instance started with the same instance id (`HIRESTATE_INSTANCE_ID`, by default
//! the host name) fences the first: the broker ends the first's static group membership, and
//! the second's producer takes over the shared transactional id. The fenced instance must stop
//! with an error that names the id and the setting — not poll on as a member of nothing,
//! assigned nothing, for ever (what it did before this test). The one left running must still
//! produce exactly the replay set.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::time::{Duration, Instant};

#[test]
fn an_instance_fenced_by_one_with_its_id_stops_with_an_error_naming_the_id() {
    let Some(bs) = support::bootstrap(
        "an_instance_fenced_by_one_with_its_id_stops_with_an_error_naming_the_id",
    ) else {
        return;
    };
    let started = Instant::now();
    let setup = processor::Setup::new(&bs, "fenced", 4);
    let file = setup.generate("events.jsonl", 300, 4242);
    let expected = processor::expected(&setup, &file);
    setup.produce(&file);

    let id = "same-id";
    let first = setup.instance(id);
    // The same id, its own state directory and log (two hosts that were given one name).
    let mut second = setup.instance("same-id-second");
    second.id = id.to_owned();

    // Idle long enough that only the fence can end the first instance within the wait below.
    let mut a = first.spawn(&setup, 600.0, &[]);
    first.await_log(
        &mut a,
        "assigned and restored",
        0,
        "the first instance never got partitions",
    );
    let mut b = second.spawn(&setup, 8.0, &[]);

    let fenced = processor::wait_for(&mut a, Duration::from_secs(90)).unwrap_or_else(|| {
        panic!(
            "the fenced instance was still running 90 s after its id was taken\n{}",
            first.log_tail()
        )
    });
    assert!(!fenced.success(), "the fenced instance exited {fenced}");
    let log = std::fs::read_to_string(&first.log).expect("the first instance's log");
    let last = log.lines().last().unwrap_or_default();
    for needle in ["fenced", "same-id", "HIRESTATE_INSTANCE_ID"] {
        assert!(
            last.contains(needle),
            "the fenced instance's last line does not name {needle:?}: {last}"
        );
    }

    let status = processor::wait_for(&mut b, Duration::from_secs(180))
        .unwrap_or_else(|| panic!("the second instance did not finish\n{}", second.log_tail()));
    assert!(
        status.success(),
        "the second instance exited {status}\n{}",
        second.log_tail()
    );
    let (actual, raw) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_command_headers(&raw);
    eprintln!(
        "fenced: {} events; the first instance stopped with {last:?}; done in {:?}",
        expected.events,
        started.elapsed()
    );
}
