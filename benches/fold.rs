//! Fold throughput, side by side with the JSON work around it, so one run gives the ratios:
//!
//! - `fold/apply`: the pure fold over a realistic generated stream (2 000 candidates), events
//!   already decoded, with the replay's in-memory projection. The events are laid out in
//!   memory as a decoder leaves them: each allocated in stream order (see [`decoded`]);
//! - `fold/replay_jsonl`: `replay::run` end to end over the same stream as JSON lines, from an
//!   in-memory buffer to `io::sink()` (parse + fold + render);
//! - `fold/parse_json`: parsing those lines alone;
//! - `fold/apply_in_cache`: `fold/apply` over a stream of 200 candidates, whose states and
//!   events fit in the cache. A diagnostic, not the target: side by side with `fold/apply` it
//!   shows how much of the fold's time is waiting for memory rather than computing;
//! - `fold/apply_generator_layout`: `fold/apply` over the events as the generator leaves them
//!   (see [`decoded`]). A diagnostic, not the target: no path of the product folds events laid
//!   out so.
//!
//! All five count throughput in events, so criterion reports events/s directly. Each bench is
//! kept short (10 samples, ~3 s) so `make bench` finishes in a few minutes on two cores.

use std::hint::black_box;
use std::io;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hirestate::generate::{stream, Spec};
use hirestate::model::Event;
use hirestate::policy::Policy;
use hirestate::replay::{self, parse_line, Format, Replayer};

const CANDIDATES: usize = 2_000;
/// Few enough candidates for the states and the events to stay in the cache.
const CANDIDATES_IN_CACHE: usize = 200;

/// `events` as a decoder leaves them: each event's strings allocated in stream order, one event
/// after the other. `generate::stream` builds each candidate's events in turn and only then
/// merges them by time, so there one event's strings sit beside that candidate's other events',
/// thousands of events away from its neighbours in the stream: folding in stream order then
/// misses the cache on each event's own ids, which no real path does (live and `replay` fold
/// each event right after decoding it). Measured side by side in one run: ~0.89 M events/s
/// over the generator's layout, ~1.23 M over this one (medians of 25 rounds each).
fn decoded(events: &[Event]) -> Vec<Event> {
    events.to_vec()
}

/// The shipped policy.
fn policy() -> Policy {
    hirestate::policy::load(&hirestate::policy::default_dir()).expect("the shipped policy loads")
}

fn fold_benches(c: &mut Criterion) {
    let policy = policy();
    let generated = stream(
        &Spec {
            candidates: CANDIDATES,
            ..Spec::default()
        },
        &policy,
    );
    let events = decoded(&generated);
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

    // Each iteration's projection is freed after its time is taken: freeing it (a quarter of
    // the time when it was measured) stays out of the fold's figure (`replay_jsonl` still pays
    // it). It is freed before the next iteration, not kept to the end of the sample as
    // `iter_with_large_drop` keeps it: up to 20 projections of ~10 MB alive at once had every
    // iteration fold into memory never touched before (page faults, cold cache), which no
    // long-running fold does.
    let fold_all = |events: &[Event], iters: u64| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            let mut r = Replayer::new(&policy);
            for e in events {
                black_box(r.fold(e));
            }
            total += start.elapsed();
            drop(black_box(r));
        }
        total
    };
    g.bench_function("apply", |b| b.iter_custom(|n| fold_all(&events, n)));
    g.bench_function("apply_generator_layout", |b| {
        b.iter_custom(|n| fold_all(&generated, n))
    });

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

    let small = decoded(&stream(
        &Spec {
            candidates: CANDIDATES_IN_CACHE,
            ..Spec::default()
        },
        &policy,
    ));
    let mut g = c.benchmark_group("fold");
    g.throughput(Throughput::Elements(small.len() as u64));
    g.bench_function("apply_in_cache", |b| b.iter_custom(|n| fold_all(&small, n)));
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
