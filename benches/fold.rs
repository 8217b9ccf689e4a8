//! Fold throughput, side by side with the JSON work around it, so one run gives the ratios:
//!
//! - `fold/apply`: the pure fold over a realistic generated stream (2 000 candidates), events
//!   already decoded, with the replay's in-memory projection;
//! - `fold/replay_jsonl`: `replay::run` end to end over the same stream as JSON lines, from an
//!   in-memory buffer to `io::sink()` (parse + fold + render);
//! - `fold/parse_json`: parsing those lines alone;
//! - `fold/apply_in_cache`: `fold/apply` over a stream of 200 candidates, whose states and
//!   events fit in the cache. A diagnostic, not the target: side by side with `fold/apply` it
//!   shows how much of the fold's time is waiting for memory rather than computing.
//!
//! All four count throughput in events, so criterion reports events/s directly. Each bench is
//! kept short (10 samples, ~3 s) so `make bench` finishes in a few minutes on two cores.

use std::hint::black_box;
use std::io;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hirestate::generate::{stream, Spec};
use hirestate::policy::Policy;
use hirestate::replay::{self, parse_line, Format, Replayer};

const CANDIDATES: usize = 2_000;
/// Few enough candidates for the states and the events to stay in the cache.
const CANDIDATES_IN_CACHE: usize = 200;

/// The shipped policy.
fn policy() -> Policy {
    hirestate::policy::load(&hirestate::policy::default_dir()).expect("the shipped policy loads")
}

fn fold_benches(c: &mut Criterion) {
    let policy = policy();
    let events = stream(
        &Spec {
            candidates: CANDIDATES,
            ..Spec::default()
        },
        &policy,
    );
    let mut jsonl = Vec::new();
    for e in &events {
        serde_json::to_writer(&mut jsonl, e).expect("serialise event");
        jsonl.push(b'\n');
    }
    let lines: Vec<&str> = std::str::from_utf8(&jsonl)
        .expect("utf-8")
        .lines()
        .collect();
    let n = events.len() as u64;
    eprintln!(
        "fold bench input: {CANDIDATES} candidates, {n} events, {} bytes of JSON lines",
        jsonl.len()
    );

    let mut g = c.benchmark_group("fold");
    g.throughput(Throughput::Elements(n));

    // The projection is returned so that freeing it (a quarter of the time when it was
    // measured) stays out of the fold's figure; `replay_jsonl` still pays it.
    let fold_all = |events: &[hirestate::model::Event]| {
        let mut r = Replayer::new(&policy);
        for e in events {
            black_box(r.fold(e));
        }
        r
    };
    g.bench_function("apply", |b| b.iter_with_large_drop(|| fold_all(&events)));

    g.bench_function("replay_jsonl", |b| {
        b.iter(|| {
            let summary = replay::run(
                &jsonl[..],
                &policy,
                Format::Jsonl,
                &mut io::sink(),
                &mut io::sink(),
            )
            .expect("replay to a sink");
            assert_eq!(summary.malformed, 0);
            summary.events
        })
    });

    g.bench_function("parse_json", |b| {
        b.iter(|| {
            for (i, line) in lines.iter().enumerate() {
                black_box(parse_line(line, i + 1).expect("generated lines parse"));
            }
        })
    });

    g.finish();

    let small = stream(
        &Spec {
            candidates: CANDIDATES_IN_CACHE,
            ..Spec::default()
        },
        &policy,
    );
    let mut g = c.benchmark_group("fold");
    g.throughput(Throughput::Elements(small.len() as u64));
    g.bench_function("apply_in_cache", |b| {
        b.iter_with_large_drop(|| fold_all(&small))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = fold_benches
}
criterion_main!(benches);
