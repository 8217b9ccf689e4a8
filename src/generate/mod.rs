//! A deterministic generator of realistic hiring-event streams, for the demo, benchmarks and
//! tests: happy paths and drop-outs, plus the things the product exists to catch — forbidden
//! jumps, an ATS asserting a move the policy forbids, duplicates, late screening results, field
//! conflicts, sink acks (confirmed, failed, rejected).
//!
//! Randomness is injected: the same [`Spec`] (seed included) gives the same events, always.

use std::collections::BTreeMap;

use crate::fold;
use crate::model::{
    AckStatus, CandidateState, Event, EventKind, FieldValue, SourceSystem, Timestamp,
};
use crate::policy::Policy;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    pub seed: u64,
    pub candidates: usize,
    /// Event time of the first event.
    pub start: Timestamp,
    /// Emit `writeback_acked` events for the commands the stream causes.
    pub acks: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            seed: 7,
            candidates: 100,
            // 2026-11-02T09:00:00Z
            start: Timestamp(1_793_610_000_000_000),
            acks: true,
        }
    }
}

/// splitmix64: small, fast, and good enough to vary a synthetic stream (and the demo's
/// simulated sink).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.unit() <= p
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const HOUR: i64 = 3_600;

/// Generates the stream, merged across candidates in event-time order (ties keep
/// per-candidate order). `policy` is used to know which commands the acks answer.
pub fn stream(spec: &Spec, policy: &Policy) -> Vec<Event> {
    let mut rng = Rng(spec.seed);
    let mut all: Vec<(Timestamp, usize, usize, Event)> = Vec::new();
    for c in 0..spec.candidates {
        let offset = rng.below(30 * 24) as i64 * HOUR;
        let events = candidate(&mut rng, c, spec.start.plus_secs(offset), spec.acks, policy);
        for (i, e) in events.into_iter().enumerate() {
            all.push((e.occurred_at, c, i, e));
        }
    }
    all.sort_by_key(|a| (a.0, a.1, a.2));
    all.into_iter().map(|(_, _, _, e)| e).collect()
}

struct Builder<'r> {
    rng: &'r mut Rng,
    candidate: String,
    application: String,
    at: Timestamp,
    n: usize,
    events: Vec<Event>,
}

impl Builder<'_> {
    fn push(&mut self, source: SourceSystem, principal: &str, kind: EventKind) {
        self.at = self.at.plus_secs(HOUR + self.rng.below(48) as i64 * HOUR);
        self.n += 1;
        self.events.push(Event {
            event_id: format!("{}-e{}", self.application, self.n),
            candidate_id: self.candidate.clone(),
            application_id: self.application.clone(),
            source_system: source,
            source_principal: principal.to_owned(),
            occurred_at: self.at,
            signature: None,
            kind,
        });
    }
    fn stage(&mut self, source: SourceSystem, to: &str) {
        let principal = if source == SourceSystem::Ats {
            "ats-main"
        } else {
            "vendor-triage"
        };
        self.push(
            source,
            principal,
            EventKind::StageChanged {
                to_stage: to.to_owned(),
                reason: None,
            },
        );
    }
    fn screening(&mut self, emea: bool) {
        let score = self.rng.below(101) as f64;
        let rec = ["advance", "hold", "not_recommended"][self.rng.below(3) as usize];
        let id = self.application.clone();
        let reviewer = format!("rev-{}", self.rng.below(40));
        self.push(
            SourceSystem::ScreeningVendor,
            "vendor-interviews",
            EventKind::ScreeningCompleted {
                score,
                recommendation: rec.to_owned(),
                rubric_version: "rubric-2026.3".to_owned(),
                reviewer_ids: vec![reviewer],
                media_url: Some(format!("https://media.vendor.example/{id}.mp4")),
                transcript_url: (!emea).then(|| format!("https://media.vendor.example/{id}.txt")),
            },
        );
    }
}

fn candidate(rng: &mut Rng, c: usize, start: Timestamp, acks: bool, policy: &Policy) -> Vec<Event> {
    let emea = rng.chance(0.3);
    let mut b = Builder {
        rng,
        candidate: format!("cand-{c:06}"),
        application: format!("app-{c:06}"),
        at: start,
        n: 0,
        events: Vec::new(),
    };
    use SourceSystem::{Ats, Hris, ScreeningVendor as Vendor};
    if b.rng.chance(0.01) {
        // A vendor that skipped the ATS: unknown application.
        b.stage(Vendor, "triage");
    }
    let requisition_id = format!("req-{}", b.rng.below(50));
    b.push(
        Ats,
        "ats-main",
        EventKind::ApplicationCreated {
            requisition_id,
            region: if emea { "emea" } else { "na" }.to_owned(),
        },
    );
    let mut fields = BTreeMap::new();
    fields.insert(
        "candidate.name".to_owned(),
        FieldValue::Text(format!("Candidate {c}")),
    );
    fields.insert(
        "candidate.email".to_owned(),
        FieldValue::Text(format!("c{c}@mail.example")),
    );
    b.push(Ats, "ats-main", EventKind::FieldsAsserted { fields });

    let path: &[(SourceSystem, &str)] = &[(Vendor, "triage"), (Vendor, "screening")];
    for (src, to) in path {
        if b.rng.chance(0.04) {
            b.stage(*src, "interview"); // forbidden jump
        }
        b.stage(*src, to);
    }
    if b.rng.chance(0.08) {
        b.stage(Ats, "withdrawn");
        return finish(b, acks, policy);
    }
    let late = b.rng.chance(0.1);
    if !late {
        b.screening(emea);
    }
    if b.rng.chance(0.05) {
        // The ATS re-keys a score: not its field.
        let mut f = BTreeMap::new();
        f.insert("screening.score".to_owned(), FieldValue::Number(50.0));
        b.push(Ats, "ats-main", EventKind::FieldsAsserted { fields: f });
    }
    if b.rng.chance(0.2) {
        b.stage(Ats, "rejected");
        if b.rng.chance(0.3) {
            b.stage(Ats, "triage"); // reopened
        }
        return finish(b, acks, policy);
    }
    if late {
        b.stage(Ats, "interview"); // forbidden from screening: a divergence
        b.screening(emea);
    }
    b.stage(Ats, "interview");
    if late {
        b.screening(emea); // arrives after the interview: stale, fields still written back
    }
    if b.rng.chance(0.05) {
        b.stage(Vendor, "offer"); // not the vendor's call
    }
    if b.rng.chance(0.5) {
        b.stage(Ats, "rejected");
        return finish(b, acks, policy);
    }
    b.stage(Ats, "offer");
    let mut f = BTreeMap::new();
    f.insert(
        "offer.start_date".to_owned(),
        FieldValue::Text("2027-01-04".to_owned()),
    );
    b.push(Ats, "ats-main", EventKind::FieldsAsserted { fields: f });
    if b.rng.chance(0.7) {
        let src = if b.rng.chance(0.8) { Ats } else { Hris };
        b.stage(src, "hired");
    }
    finish(b, acks, policy)
}

/// Sprinkles duplicates and appends the sink acks the stream's commands would receive.
fn finish(mut b: Builder<'_>, acks: bool, policy: &Policy) -> Vec<Event> {
    if !b.events.is_empty() && b.rng.chance(0.05) {
        let i = b.rng.below(b.events.len() as u64) as usize;
        let mut dup = b.events[i].clone();
        dup.occurred_at = b.at.plus_secs(60);
        b.events.push(dup);
    }
    if !acks {
        return b.events;
    }
    let mut state = CandidateState::default();
    let mut acked = Vec::new();
    for e in &b.events {
        for cmd in fold::apply(&mut state, e, policy).commands {
            let latency = 5 + b.rng.below(20 * 60) as i64;
            let roll = b.rng.below(100);
            let (status, retryable, error) = match roll {
                0..=89 => (AckStatus::Confirmed, false, None),
                90..=94 => (
                    AckStatus::Failed,
                    true,
                    Some("503 from remote API".to_owned()),
                ),
                _ => (
                    AckStatus::Rejected,
                    false,
                    Some("remote validation failed".to_owned()),
                ),
            };
            if b.rng.chance(0.03) {
                continue; // never acked: stays pending
            }
            let sink = match cmd.system {
                crate::model::TargetSystem::Ats => SourceSystem::AtsSink,
                crate::model::TargetSystem::Hris => SourceSystem::HrisSink,
            };
            acked.push(Event {
                event_id: format!("ack-{}-{}", cmd.command_id, cmd.attempt),
                candidate_id: cmd.candidate_id.clone(),
                application_id: cmd.application_id.to_string(),
                source_system: sink,
                source_principal: format!("{}-connector", cmd.target),
                occurred_at: cmd.occurred_at.plus_secs(latency),
                signature: None,
                kind: EventKind::WritebackAcked {
                    command_id: cmd.command_id.to_string(),
                    status,
                    remote_ref: (status == AckStatus::Confirmed)
                        .then(|| format!("r-{}", &cmd.command_id[..8])),
                    error,
                    retryable,
                },
            });
        }
    }
    // An ack must come after its command's cause in the log; keep per-candidate time order.
    let mut events = b.events;
    events.extend(acked);
    events.sort_by_key(|e| e.occurred_at);
    events
}
