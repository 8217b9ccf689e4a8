//! The tools as live watchers, against the test broker: `hirestate tail --topic T` without
//! `--until-end` follows the topic, and what it reads is on its standard output as soon as it is
//! read, not when 8 KiB of it have piled up; an interrupt (Ctrl-C, SIGINT) or a SIGTERM ends it
//! with what it read written out, its count on standard error and status 0. Before, a record
//! produced while it followed stayed in its buffer, and an interrupt dropped the buffer and the
//! count with the process.

#[path = "support/processor.rs"]
mod processor;
mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

/// How long a line the tail is expected to write may take to arrive (a wait, not a figure).
const ARRIVAL: Duration = Duration::from_secs(60);

#[test]
fn tail_follows_a_topic_live_and_an_interrupt_ends_it_with_everything_written() {
    let Some(bs) = support::bootstrap(
        "tail_follows_a_topic_live_and_an_interrupt_ends_it_with_everything_written",
    ) else {
        return;
    };
    let setup = processor::Setup::new(&bs, "tail-follow", 2);
    let first = setup.generate("first.jsonl", 4, 3);
    setup.produce(&first);
    let generated = std::fs::read_to_string(&first)
        .expect("the events")
        .lines()
        .count();
    let events = setup.topic("hiring.events.v1");

    // Each round adds one record to the log.
    for (round, signal) in ["INT", "TERM"].into_iter().enumerate() {
        let produced = generated + round;
        let mut child = setup
            .command(&["tail", "--topic", &events, "--from-beginning"], &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning tail");
        let stdout = child.stdout.take().expect("its stdout");
        let (lines, arrived) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if lines.send(line.expect("a line")).is_err() {
                    break;
                }
            }
        });
        let mut read = Vec::new();
        let mut wait_for = |n: usize, what: &str| {
            while read.len() < n {
                match arrived.recv_timeout(ARRIVAL) {
                    Ok(line) => read.push(line),
                    Err(e) => panic!(
                        "SIG{signal}: {what}: {} of {n} lines on tail's output after {ARRIVAL:?} \
                         ({e})",
                        read.len()
                    ),
                }
            }
        };
        // The log so far, then an event produced while it follows.
        wait_for(produced, "the log so far");
        let one = setup.dir.path().join(format!("one-{signal}.jsonl"));
        let line = std::fs::read_to_string(&first)
            .expect("the events")
            .lines()
            .next()
            .expect("an event")
            .to_owned();
        std::fs::write(&one, format!("{line}\n")).expect("writing one event");
        setup.produce(&one);
        wait_for(produced + 1, "the event produced while it followed");
        let row: serde_json::Value = serde_json::from_str(&read[produced]).expect("a JSON row");
        assert_eq!(
            row["value"]["event_id"],
            serde_json::from_str::<serde_json::Value>(&line).expect("the event")["event_id"]
        );

        let kill = std::process::Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(kill.success());
        let out = child.wait_with_output().expect("tail's exit");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "SIG{signal}: {} {err}", out.status);
        assert!(
            err.contains(&format!("{} records, 0 undecodable", produced + 1)),
            "SIG{signal}: {err}"
        );
    }
}
