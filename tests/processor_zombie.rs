//! A zombie instance: one of two processors in a group freezes (SIGSTOP — a long pause, a
//! suspended VM) in the middle of a batch, its session times out, the other instance takes
//! its partitions over and folds on, and then the frozen one wakes and carries on from the
//! very instruction where it stopped.
//!
//! Invariant (DESIGN.md "State, recovery, exactly-once"): whatever the zombie does on waking,
//! nothing is visible twice to a read_committed consumer and nothing is lost — the outputs are
//! exactly the replay set, per candidate in the replay's order — and both instances go on
//! working (the zombie rejoins; it does not stop, and does not fold on from a state its
//! partitions' new owner has moved past).
//!
//! Two places to freeze, one test each:
//! - after the batch's records and input offsets went into its transaction, before the
//!   commit. The transaction times out (8 s) before the session (10 s), the coordinator aborts
//!   it (it looks for expired ones every 10 s), and the new owner's read of the committed
//!   offsets waits for that (a read_committed consumer asks for stable offsets). The zombie's
//!   commit then fails and must be handled (the producer recreated, the batch rolled back),
//!   never half-visible; one that wakes before the abort commits, and the new owner reads the
//!   offsets after that commit. In 4 of 5 runs here the commit was refused as fenced.
//! - after the commit, before the store's write. The store may then be behind Kafka (never
//!   ahead), and a partition that comes back to the zombie later must be restored from what the
//!   other instance committed meanwhile, not folded on from the zombie's memory.
//!
//! The second half of the events is produced after the zombie woke and rejoined, so both
//! instances fold after the wake too.
//!
//! A third test freezes a lone instance the same way: nobody takes its partitions, but its
//! session and its transaction time out all the same. On waking it must rejoin the group on
//! the real broker (`processor_session_lost` plays a lost session on the mock cluster only)
//! and finish with the replay set and a projection equal to a clean replay.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::process::Child;
use std::time::{Duration, Instant};

/// Whether the process `pid` is stopped (state `T` in `/proc/PID/stat`).
fn stopped(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in parentheses and may hold spaces.
    stat.rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('T'))
}

fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
}

/// Who else is in the group while the zombie is frozen.
#[derive(PartialEq)]
enum Group {
    /// Another instance, which takes the zombie's partitions over.
    Shared,
    /// Nobody: the partitions wait for the zombie (its session and transaction time out all
    /// the same).
    Alone,
}

fn a_zombie_wakes(test: &str, failpoint: &str, group: Group) {
    let Some(bs) = support::bootstrap(test) else {
        return;
    };
    let started = Instant::now();
    let mut rng = processor::Rng(processor::seed(test));
    let setup = processor::Setup::new(&bs, failpoint, 4);
    let file = setup.generate("events.jsonl", 400, 9090);
    let expected = processor::expected(&setup, &file);
    let (head, tail) = setup.halves(&file);

    let zombie = setup.failover_instance("zombie");
    let other = (group == Group::Shared).then(|| setup.failover_instance("other"));
    let pass = 2 + rng.next_u64() % 6;
    let arm = format!("{failpoint}=stop:{pass}");
    // Both members before any event: the zombie's partitions then have work for its batches.
    let mut b = other.as_ref().map(|other| {
        let mut b = other.spawn(&setup, 30.0, &[]);
        other.await_log(&mut b, "assigned and restored", 0, "never got partitions");
        b
    });
    let mut a = zombie.spawn(&setup, 30.0, &[("HIRESTATE_FAILPOINTS", &arm)]);
    zombie.await_log(&mut a, "assigned and restored", 0, "never got partitions");
    if let (Some(other), Some(b)) = (&other, &mut b) {
        // The other instance gave partitions up to the zombie: it was assigned again.
        other.await_log(b, "assigned and restored", 1, "never shared its partitions");
    }
    setup.produce(&head);

    // The zombie freezes in its `pass`-th batch.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stopped(a.id()) {
        let exited = a.try_wait().expect("try_wait");
        if exited.is_some() || Instant::now() > deadline {
            let _ = a.kill();
            if let Some(b) = &mut b {
                let _ = b.kill();
            }
            panic!(
                "the zombie never froze at {arm} ({exited:?})\n{}",
                zombie.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let frozen = Instant::now();
    eprintln!("zombie: frozen at {arm} after {:?}", started.elapsed());
    match (&other, &mut b) {
        (Some(other), Some(b)) => {
            // Its session times out; the other instance is given every partition and folds
            // them.
            let assigned = other.log_count("assigned and restored");
            if !other.wait_for_log(
                b,
                "assigned and restored",
                assigned,
                Duration::from_secs(90),
            ) {
                signal(&a, libc::SIGCONT);
                let (_, _) = (a.kill(), b.kill());
                panic!(
                    "the other instance never took the frozen one's partitions\n{}",
                    other.log_tail()
                );
            }
            setup.await_outputs_settled(&setup.output_topics());
        }
        // Long enough for the session (10 s) to time out, and for the coordinator to abort
        // the open transaction (its 8 s timeout, checked every 10 s by default).
        _ => std::thread::sleep(Duration::from_secs(20)),
    }
    eprintln!("zombie: waking it {:?} after it froze", frozen.elapsed());

    // The zombie wakes where it stopped, rejoins, and the rest of the events comes.
    let rejoined = zombie.log_count("assigned and restored");
    signal(&a, libc::SIGCONT);
    zombie.await_log(&mut a, "assigned and restored", rejoined, "never rejoined");
    setup.produce(&tail);

    let mut running = vec![("zombie", &mut a, &zombie)];
    if let (Some(other), Some(b)) = (&other, &mut b) {
        running.push(("other", b, other));
    }
    for (name, child, instance) in running {
        let status = processor::wait_for(child, Duration::from_secs(240))
            .unwrap_or_else(|| panic!("{name}: did not finish\n{}", instance.log_tail()));
        assert!(
            status.success(),
            "{name}: exited {status}\n{}",
            instance.log_tail()
        );
    }
    let (actual, raw) = setup.read_back(&setup.output_topics());
    processor::assert_outputs_equal(&expected.outputs, &actual);
    processor::assert_command_headers(&raw);
    if other.is_none() {
        // Alone, the zombie holds every partition: its projection is the whole clean replay.
        processor::assert_states_equal(
            &zombie.state_dump(&setup),
            &processor::clean_states(&[&file]),
        );
    }
    eprintln!(
        "zombie at {arm}: {} events; the zombie recreated its producer {} time(s), discarded {} \
         batch(es) folded ahead of a rebalance; done in {:?}",
        expected.events,
        zombie.log_count("recreating the producer"),
        zombie.log_count("batch folded ahead of a rebalance discarded"),
        started.elapsed()
    );
}

#[test]
fn a_zombie_frozen_before_its_commit_commits_nothing_twice() {
    a_zombie_wakes(
        "a_zombie_frozen_before_its_commit_commits_nothing_twice",
        "after_produce_before_commit",
        Group::Shared,
    );
}

#[test]
fn a_zombie_frozen_before_its_store_write_folds_nothing_stale() {
    a_zombie_wakes(
        "a_zombie_frozen_before_its_store_write_folds_nothing_stale",
        "after_commit_before_store",
        Group::Shared,
    );
}

#[test]
fn an_instance_frozen_alone_past_its_session_rejoins_and_loses_nothing() {
    a_zombie_wakes(
        "an_instance_frozen_alone_past_its_session_rejoins_and_loses_nothing",
        "after_produce_before_commit",
        Group::Alone,
    );
}
