//! W3C Trace Context (`traceparent`, `tracestate`) carried in Kafka record headers, so a trace a
//! vendor started when it published an event continues through hirestate into every record the
//! event causes (commands, rejections, alerts), and on through the sink connectors.
//!
//! Parsing follows Trace Context Level 1: `version-traceid-parentid-flags`, lowercase hex only,
//! version `ff` and all-zero ids invalid, version `00` exactly 55 characters, a higher version
//! read by its first four fields (and refused when the 56th character is not `-`). A value that
//! fails any rule is ignored — the record is treated as carrying no trace context — and never
//! refuses the record: tracing must not cost a hiring event. Surrounding whitespace is trimmed
//! (HTTP's optional whitespace, as forwarded by HTTP-to-Kafka bridges). More than one
//! `traceparent` header on a record is ambiguous and ignored; several `tracestate` headers are
//! joined with commas, as HTTP combines them. `tracestate` is kept only with a valid
//! `traceparent`, at most [`MAX_TRACESTATE_LEN`] characters, and is forwarded unchanged
//! (hirestate adds no list member of its own).
//!
//! # Deterministic ids
//!
//! hirestate re-emits a batch's outputs after a crash or an aborted transaction, and the
//! outputs are built to be byte-identical each time. Its span ids are therefore not random:
//! each output's span id is the first 8 bytes of SHA-256 over the trace id and a key naming the
//! output (for a command: its `command_id` and attempt; for a rejection: the event id; for an
//! alert: its `alert_id`), so a re-emission carries the same `traceparent`, and two outputs of
//! one event never share a span id. An event without a (valid) `traceparent` starts a trace
//! whose id is the first 16 bytes of SHA-256 over `"hirestate.trace" 0x1f event_id`: every
//! output of that event, and any re-emission of it, lands in the same trace. Such traces are
//! marked sampled (flags `01`); an inbound trace keeps its sampled bit (other flag bits are
//! not forwarded, as Level 1 requires for flags it does not know). The rare all-zero result
//! of a hash is replaced by setting its last bit, so derived ids are always valid.

use std::fmt;

use rdkafka::message::Headers;
use sha2::{Digest, Sha256};

/// Header name of the W3C `traceparent`.
pub const TRACEPARENT: &str = "traceparent";
/// Header name of the W3C `tracestate`.
pub const TRACESTATE: &str = "tracestate";
/// Longest `tracestate` forwarded (the Level 1 limit for a propagated list).
pub const MAX_TRACESTATE_LEN: usize = 512;

const FLAG_SAMPLED: u8 = 0x01;
/// Length of a version `00` `traceparent`.
const LEN_V00: usize = 55;

/// The trace an inbound record belongs to, as read from its headers (or started for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The span of the sender that produced the record; `None` for a trace hirestate started.
    pub parent_id: Option<[u8; 8]>,
    /// Only the sampled bit is kept.
    pub flags: u8,
    pub tracestate: Option<String>,
}

fn lower_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// SHA-256 over `parts` separated by 0x1f, truncated to `N` bytes, never all zero.
fn derive<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0x1f]);
        }
        h.update(p);
    }
    let digest = h.finalize();
    let mut out = [0u8; N];
    out.copy_from_slice(&digest[..N]);
    if out.iter().all(|b| *b == 0) {
        out[N - 1] = 1;
    }
    out
}

impl TraceContext {
    /// Parses a `traceparent` value (and the `tracestate` that came with it); `None` when the
    /// `traceparent` is invalid by any rule of the module doc.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let tp = traceparent.trim_matches(|c: char| c == ' ' || c == '\t');
        if !tp.is_ascii() {
            return None; // and byte offsets below are character offsets
        }
        let version = lower_hex::<1>(tp.get(..2)?)?[0];
        if version == 0xff {
            return None;
        }
        if (version == 0 && tp.len() != LEN_V00) || tp.len() < LEN_V00 {
            return None;
        }
        if tp.len() > LEN_V00 && tp.as_bytes()[LEN_V00] != b'-' {
            return None;
        }
        let b = tp.as_bytes();
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let trace_id = lower_hex::<16>(&tp[3..35])?;
        let parent_id = lower_hex::<8>(&tp[36..52])?;
        let flags = lower_hex::<1>(&tp[53..55])?[0];
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        let tracestate = tracestate
            .map(|s| s.trim_matches(|c: char| c == ' ' || c == '\t'))
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= MAX_TRACESTATE_LEN
                    && s.bytes().all(|b| (0x20..0x7f).contains(&b))
            })
            .map(str::to_owned);
        Some(TraceContext {
            trace_id,
            parent_id: Some(parent_id),
            flags: flags & FLAG_SAMPLED,
            tracestate,
        })
    }

    /// Reads the trace context of a record's headers; `None` when there is no valid one.
    pub fn from_headers(headers: &impl Headers) -> Option<TraceContext> {
        let mut traceparent = None;
        let mut parents = 0;
        let mut states: Vec<&str> = Vec::new();
        for h in headers.iter() {
            let value = h.value.and_then(|v| std::str::from_utf8(v).ok());
            if h.key.eq_ignore_ascii_case(TRACEPARENT) {
                parents += 1;
                traceparent = value;
            } else if h.key.eq_ignore_ascii_case(TRACESTATE) {
                states.extend(value);
            }
        }
        if parents != 1 {
            return None;
        }
        let state = (!states.is_empty()).then(|| states.join(","));
        TraceContext::parse(traceparent?, state.as_deref())
    }

    /// The trace of the event `event_id`: `inbound` when the record carried one, else a trace
    /// started for the event, with an id derived from `event_id` (module doc).
    pub fn for_event(inbound: Option<&TraceContext>, event_id: &str) -> TraceContext {
        match inbound {
            Some(t) => t.clone(),
            None => TraceContext::started(&[b"hirestate.trace", event_id.as_bytes()]),
        }
    }

    /// A trace hirestate starts, its id derived from `key` (e.g. for records that have no
    /// event: DLQ records without a trace context, snapshots).
    pub fn started(key: &[&[u8]]) -> TraceContext {
        TraceContext {
            trace_id: derive(key),
            parent_id: None,
            flags: FLAG_SAMPLED,
            tracestate: None,
        }
    }

    /// The span id of hirestate's span that emits the output named by `key` in this trace.
    pub fn span_id(&self, key: &[&str]) -> [u8; 8] {
        let mut parts: Vec<&[u8]> = vec![b"hirestate.span", &self.trace_id];
        parts.extend(key.iter().map(|k| k.as_bytes()));
        derive(&parts)
    }

    /// The `traceparent` to write on the output named by `key`: this trace, hirestate's span.
    pub fn child_traceparent(&self, key: &[&str]) -> String {
        format_traceparent(&self.trace_id, &self.span_id(key), self.flags)
    }

    /// Lowercase hex of the trace id (for logs and span fields).
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The sampled flag.
    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// Whether a trace-id-ratio sampler at `ratio` (0.0–1.0) keeps this trace: the decision
    /// depends on the trace id only (its last 8 bytes against `ratio`·2⁶⁴), so every
    /// instance, and a replay, decides the same way for the same trace.
    pub fn within_ratio(&self, ratio: f64) -> bool {
        if ratio >= 1.0 {
            return true;
        }
        if ratio.is_nan() || ratio <= 0.0 {
            return false;
        }
        let mut low = [0u8; 8];
        low.copy_from_slice(&self.trace_id[8..]);
        // 2^64 · ratio as a bound; the cast saturates, and ratio < 1 keeps it below u64::MAX.
        let bound = (ratio * 18_446_744_073_709_551_616.0) as u64;
        u64::from_be_bytes(low) < bound
    }
}

/// `00-<trace id>-<span id>-<flags>`, lowercase.
pub fn format_traceparent(trace_id: &[u8; 16], span_id: &[u8; 8], flags: u8) -> String {
    format!(
        "00-{}-{}-{:02x}",
        hex::encode(trace_id),
        hex::encode(span_id),
        flags
    )
}

impl fmt::Display for TraceContext {
    /// The trace id and, when known, the parent span: `<trace>/<parent>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.trace_id_hex())?;
        if let Some(p) = self.parent_id {
            write!(f, "/{}", hex::encode(p))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders};

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_a_valid_traceparent() {
        let t = TraceContext::parse(VALID, Some("congo=t61rcWkgMzE")).expect("valid");
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            t.parent_id,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert!(t.sampled());
        assert_eq!(t.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        let unsampled = TraceContext::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            None,
        )
        .expect("valid");
        assert!(!unsampled.sampled());
        // Optional whitespace around the value.
        assert!(TraceContext::parse(&format!(" {VALID}\t"), None).is_some());
    }

    #[test]
    fn keeps_only_the_sampled_flag() {
        let t = TraceContext::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
            None,
        )
        .expect("valid");
        assert_eq!(t.flags, 0x01);
    }

    #[test]
    fn refuses_bad_versions() {
        for v in [
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // Version 00 must be exactly 55 characters.
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            // A later version may be longer, but only after a '-'.
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert_eq!(TraceContext::parse(v, None), None, "{v}");
        }
        // A later version: its first four fields are read.
        let future = TraceContext::parse(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what",
            None,
        )
        .expect("future version");
        assert_eq!(future.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn refuses_bad_lengths_and_layouts() {
        for v in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-0f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01é",
            "00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(v, None), None, "{v:?}");
        }
    }

    #[test]
    fn refuses_all_zero_ids() {
        assert_eq!(
            TraceContext::parse(
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                None
            ),
            None
        );
        assert_eq!(
            TraceContext::parse(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                None
            ),
            None
        );
    }

    #[test]
    fn refuses_uppercase_hex() {
        assert_eq!(
            TraceContext::parse(
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                None
            ),
            None
        );
        assert_eq!(
            TraceContext::parse(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
                None
            ),
            None
        );
        assert_eq!(
            TraceContext::parse(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
                None
            ),
            None
        );
    }

    #[test]
    fn tracestate_needs_a_valid_traceparent_and_a_sane_value() {
        assert_eq!(TraceContext::parse("garbage", Some("a=b")), None);
        let long = "a=".to_owned() + &"x".repeat(MAX_TRACESTATE_LEN);
        assert_eq!(
            TraceContext::parse(VALID, Some(&long)).and_then(|t| t.tracestate),
            None
        );
        assert_eq!(
            TraceContext::parse(VALID, Some("a=\u{1}")).and_then(|t| t.tracestate),
            None
        );
        assert_eq!(
            TraceContext::parse(VALID, Some("")).and_then(|t| t.tracestate),
            None
        );
    }

    fn headers(pairs: &[(&str, &str)]) -> OwnedHeaders {
        pairs.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(*v),
            })
        })
    }

    #[test]
    fn reads_headers() {
        let h = headers(&[
            ("hirestate.event_id", "e1"),
            (TRACEPARENT, VALID),
            (TRACESTATE, "a=1"),
            (TRACESTATE, "b=2"),
        ]);
        let t = TraceContext::from_headers(&h).expect("valid");
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.tracestate.as_deref(), Some("a=1,b=2"));
        assert_eq!(TraceContext::from_headers(&headers(&[("x", "y")])), None);
        let twice = headers(&[(TRACEPARENT, VALID), (TRACEPARENT, VALID)]);
        assert_eq!(TraceContext::from_headers(&twice), None);
        assert_eq!(
            TraceContext::from_headers(&headers(&[(TRACEPARENT, "00-nope")])),
            None
        );
    }

    #[test]
    fn outputs_continue_the_inbound_trace_with_distinct_stable_spans() {
        let inbound = TraceContext::parse(VALID, None).expect("valid");
        let t = TraceContext::for_event(Some(&inbound), "ev-1");
        let a = t.child_traceparent(&["command", "abc", "1"]);
        let b = t.child_traceparent(&["command", "abc", "2"]);
        assert!(a.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{a}");
        assert!(a.ends_with("-01"));
        assert_ne!(a, b, "each output has its own span");
        assert_eq!(a, t.child_traceparent(&["command", "abc", "1"]), "stable");
        let back = TraceContext::parse(&a, None).expect("what we write parses");
        assert_eq!(back.trace_id, inbound.trace_id);
        assert_ne!(back.parent_id, inbound.parent_id);
    }

    #[test]
    fn events_without_a_trace_get_one_derived_from_their_id() {
        let a = TraceContext::for_event(None, "ev-1");
        let b = TraceContext::for_event(None, "ev-1");
        let c = TraceContext::for_event(None, "ev-2");
        assert_eq!(a, b);
        assert_ne!(a.trace_id, c.trace_id);
        assert!(a.sampled());
        assert_eq!(a.parent_id, None);
        // SHA-256("hirestate.trace" 0x1f "ev-1"), first 16 bytes — computed independently.
        let mut h = Sha256::new();
        h.update(b"hirestate.trace\x1fev-1");
        assert_eq!(a.trace_id_hex(), hex::encode(&h.finalize()[..16]));
        assert!(TraceContext::parse(&a.child_traceparent(&["x"]), None).is_some());
    }

    #[test]
    fn ratio_sampling_depends_on_the_trace_id_only() {
        let t = TraceContext::for_event(None, "ev-1");
        assert!(t.within_ratio(1.0));
        assert!(!t.within_ratio(0.0));
        assert!(!t.within_ratio(f64::NAN));
        let kept = (0..1000)
            .filter(|i| TraceContext::for_event(None, &format!("ev-{i}")).within_ratio(0.25))
            .count();
        assert!((150..350).contains(&kept), "{kept} of 1000 kept at 0.25");
    }
}
