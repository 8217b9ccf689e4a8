//! The two codecs of the processor's hot path, the Avro ones side by side with the path they
//! fall back to in the same run, so what to read are RATIOS (absolute times on shared 2-core machines are noise):
//!
//! - `state/encode`, `state/decode`: `project::state_codec` over the states the generated stream
//!   folds to (what `Store::commit` writes and restore reads back);
//! - `event/decode_local`: `Codec::decode_local::<Event>` of Avro single-object events (the
//!   direct reader), against `event/value_path`, the `Value` path it falls back to;
//! - `encode_event`, `encode_command`, `encode_snapshot`: `Codec::encode_local` in single-object
//!   framing, `direct` (the direct writers) against `value_path` (`to_avro` → `Value` → bytes).
//!
//! Throughput is in states, events or commands, so criterion reports them per second directly.
//! Each pair is also printed as one ratio, the best of 41 runs of each taken alternately: the
//! figure to quote, as it survives other processes taking the two cores for a while.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hirestate::codec::{Codec, Framing, Record};
use hirestate::fold;
use hirestate::generate::{stream, Spec};
use hirestate::model::{CandidateState, Command, Event};
use hirestate::project::state_codec;

const CANDIDATES: usize = 1_000;

fn inputs() -> (Vec<Event>, Vec<CandidateState>) {
    let policy = hirestate::policy::load(&hirestate::policy::default_dir())
        .expect("the shipped policy loads");
    let spec = Spec {
        candidates: CANDIDATES,
        ..Spec::default()
    };
    let events = stream(&spec, &policy);
    let mut states: HashMap<String, CandidateState> = HashMap::new();
    for e in &events {
        let state = states.entry(e.candidate_id.clone()).or_default();
        black_box(fold::apply(state, e, &policy));
    }
    let mut states: Vec<CandidateState> = states.into_values().collect();
    states.sort_by(|a, b| a.candidate_id.cmp(&b.candidate_id));
    (events, states)
}

fn state_benches(c: &mut Criterion, states: &[CandidateState]) {
    let encoded: Vec<Vec<u8>> = states
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            state_codec::encode(s, &mut out);
            out
        })
        .collect();
    let bytes: usize = encoded.iter().map(Vec::len).sum();
    eprintln!(
        "state bench input: {} states, {:.0} bytes each on average",
        states.len(),
        bytes as f64 / states.len() as f64
    );
    let mut g = c.benchmark_group("state");
    g.throughput(Throughput::Elements(states.len() as u64));
    let mut buf = Vec::new();
    g.bench_function("encode", |b| {
        b.iter(|| {
            for s in states {
                buf.clear();
                state_codec::encode(s, &mut buf);
                black_box(&buf);
            }
        })
    });
    g.bench_function("decode", |b| {
        b.iter_with_large_drop(|| {
            encoded
                .iter()
                .map(|e| state_codec::decode(e).expect("decodes"))
                .collect::<Vec<_>>()
        })
    });
    g.finish();
}

/// Prints the ratio of `a`'s time to `b`'s, the two run alternately 41 times each and the best
/// run of each taken: on a shared machine a side-by-side ratio of minimums is what survives
/// other processes taking the cores for a while.
fn paired(what: &str, mut a: impl FnMut(), mut b: impl FnMut()) {
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let (mut best_a, mut best_b) = (Duration::MAX, Duration::MAX);
    for _ in 0..41 {
        best_a = best_a.min(time(&mut a));
        best_b = best_b.min(time(&mut b));
    }
    eprintln!(
        "{what}: {:.3} ({best_a:?} / {best_b:?}, best of 41 alternating runs)",
        best_a.as_secs_f64() / best_b.as_secs_f64()
    );
}

fn event_benches(c: &mut Criterion, events: &[Event]) {
    let codec = Codec::embedded().expect("embedded codec");
    let encoded: Vec<Vec<u8>> = events
        .iter()
        .map(|e| {
            codec
                .encode_local(e, Framing::SingleObject)
                .expect("encodes")
        })
        .collect();
    let generic = codec.clone().value_path_only();
    paired(
        "event decode_local, direct / value path",
        || {
            for bytes in &encoded {
                black_box(codec.decode_local::<Event>(bytes).expect("decodes"));
            }
        },
        || {
            for bytes in &encoded {
                black_box(generic.decode_local::<Event>(bytes).expect("decodes"));
            }
        },
    );
    let mut g = c.benchmark_group("event");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("decode_local", |b| {
        b.iter(|| {
            for bytes in &encoded {
                black_box(codec.decode_local::<Event>(bytes).expect("decodes"));
            }
        })
    });
    g.bench_function("value_path", |b| {
        b.iter(|| {
            for bytes in &encoded {
                black_box(generic.decode_local::<Event>(bytes).expect("decodes"));
            }
        })
    });
    g.finish();
}

/// `name/direct` against `name/value_path`: encoding every record of `records`.
fn encode_pair<R: Record>(c: &mut Criterion, name: &str, records: &[R]) {
    let codec = Codec::embedded().expect("embedded codec");
    let generic = codec.clone().value_path_only();
    let encode_all = |codec: &Codec| {
        for r in records {
            black_box(
                codec
                    .encode_local(r, Framing::SingleObject)
                    .expect("encodes"),
            );
        }
    };
    paired(
        &format!("{name}, direct / value path"),
        || encode_all(&codec),
        || encode_all(&generic),
    );
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(records.len() as u64));
    for (path, codec) in [("direct", &codec), ("value_path", &generic)] {
        g.bench_function(path, |b| {
            b.iter(|| {
                for r in records {
                    black_box(
                        codec
                            .encode_local(r, Framing::SingleObject)
                            .expect("encodes"),
                    );
                }
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let (events, states) = inputs();
    state_benches(c, &states);
    event_benches(c, &events);
    encode_pair(c, "encode_event", &events);
    let commands: Vec<Command> = states
        .iter()
        .flat_map(|s| s.commands.values())
        .filter_map(|c| c.resend.as_deref().cloned())
        .collect();
    encode_pair(c, "encode_command", &commands);
    encode_pair(c, "encode_snapshot", &states);
}

criterion_group! {
    name = codec;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(codec);
