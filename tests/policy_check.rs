//! The policy files as a product: the shipped default is DESIGN.md's, it is signed, and every
//! kind of mistake recruiting-ops can make is reported with the right file, line and words.
//!
//! Broken policies are real files: each test copies `schemas/policy/` into its own temp dir and
//! edits one line (or a few), so the tests run in parallel and stay in step with the shipped
//! files. Expected lines are found by searching the edited text, not by asking the loader.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use hirestate::model::{SourceSystem, TargetSystem};
use hirestate::policy::{
    self, compute_digest, diagram, DiagramFormat, FieldClass, FieldType, PolicyErrorKind as K,
    PolicyErrors,
};
use tempfile::TempDir;

const FILES: [&str; 6] = [
    "policy.toml",
    "stages.toml",
    "transitions.toml",
    "fields.toml",
    "targets.toml",
    "regions.toml",
];

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/policy")
}

/// A private copy of the shipped policy.
fn copy() -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for f in FILES {
        fs::copy(shipped().join(f), dir.path().join(f)).expect("copy policy file");
    }
    dir
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).expect("read policy file")
}

/// Replaces the one occurrence of `from` in `file` with `to`; returns the 1-based line it is on.
fn edit(dir: &Path, file: &str, from: &str, to: &str) -> usize {
    let text = read(dir, file);
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur once in {file}"
    );
    let line = line_in(&text, from);
    fs::write(dir.join(file), text.replacen(from, to, 1)).expect("write");
    line
}

/// Like [`edit`], for the first occurrence after `anchor`.
fn edit_after(dir: &Path, file: &str, anchor: &str, from: &str, to: &str) -> usize {
    let text = read(dir, file);
    let start = text.find(anchor).expect("anchor present");
    let at = start + text[start..].find(from).expect("text after anchor");
    let line = text[..at].matches('\n').count() + 1;
    let edited = format!("{}{}{}", &text[..at], to, &text[at + from.len()..]);
    fs::write(dir.join(file), edited).expect("write");
    line
}

/// Appends `extra` to `file`; returns the line its first line lands on.
fn append(dir: &Path, file: &str, extra: &str) -> usize {
    let mut text = read(dir, file);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let line = text.matches('\n').count() + 1;
    text.push_str(extra);
    fs::write(dir.join(file), text).expect("write");
    line
}

fn line_in(text: &str, needle: &str) -> usize {
    let at = text.find(needle).expect("needle present");
    text[..at].matches('\n').count() + 1
}

fn line_of(dir: &Path, file: &str, needle: &str) -> usize {
    line_in(&read(dir, file), needle)
}

fn errors(dir: &Path) -> PolicyErrors {
    match policy::load(dir) {
        Ok(_) => panic!("the policy in {} should not load", dir.display()),
        Err(e) => e,
    }
}

/// Asserts one problem of `kind` in `file` at `line` whose message has every word of `says`.
fn assert_problem(errs: &PolicyErrors, kind: K, file: &str, line: usize, says: &[&str]) {
    let found = errs.errors.iter().any(|e| {
        e.kind == kind
            && e.path.file_name().is_some_and(|n| n == file)
            && e.line == line
            && says.iter().all(|s| e.message.contains(s))
    });
    assert!(
        found,
        "expected {kind:?} at {file}:{line} saying {says:?}; got:\n{errs}"
    );
}

// ---------------------------------------------------------------------------------------------
// The shipped policy

#[test]
fn shipped_policy_loads_and_its_digest_verifies() {
    let p = match policy::load(&shipped()) {
        Ok(p) => p,
        Err(e) => panic!("shipped policy must load:\n{e}"),
    };
    assert_eq!(p.digest().len(), 64);
    assert!(p
        .digest()
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(compute_digest(&p), p.digest());
    assert!(!p.version().is_empty());
    assert!(!p.approval.approvers.is_empty());
    assert_eq!(policy::check(&shipped()).map(|c| c == p), Ok(true));
}

#[test]
fn shipped_policy_is_the_design_default() {
    let p = policy::load(&shipped()).expect("shipped policy loads");
    let rank = |s: &str| p.stages[s].rank;
    let expected_ranks = [
        ("applied", Some(0)),
        ("triage", Some(1)),
        ("screening", Some(2)),
        ("screened", Some(3)),
        ("interview", Some(4)),
        ("offer", Some(5)),
        ("hired", Some(6)),
        ("rejected", None),
        ("withdrawn", None),
    ];
    assert_eq!(p.stages.len(), expected_ranks.len());
    for (s, r) in expected_ranks {
        assert_eq!(rank(s), r, "rank of {s}");
    }
    let terminal: BTreeSet<&str> = p
        .stages
        .values()
        .filter(|s| s.terminal)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(terminal, BTreeSet::from(["hired", "rejected", "withdrawn"]));
    let day = 86_400;
    for (s, days) in [
        ("applied", 2),
        ("triage", 3),
        ("screening", 7),
        ("screened", 5),
        ("interview", 10),
        ("offer", 14),
    ] {
        assert_eq!(
            p.stages[s].dwell_sla_secs,
            Some(days * day),
            "dwell SLA of {s}"
        );
    }
    for s in ["hired", "rejected", "withdrawn"] {
        assert_eq!(p.stages[s].dwell_sla_secs, None);
    }

    use SourceSystem::{Ats, Hris, ScreeningVendor as Sv};
    let mut expected: Vec<(&str, &str, Vec<SourceSystem>, &str)> = vec![
        ("applied", "triage", vec![Ats, Sv], "recruiter"),
        ("applied", "screening", vec![Sv], "recruiter"),
        ("triage", "screening", vec![Ats, Sv], "recruiter"),
        ("screening", "screened", vec![Sv], "screening vendor"),
        ("screened", "interview", vec![Ats], "hiring manager"),
        ("interview", "offer", vec![Ats], "hiring manager"),
        ("offer", "hired", vec![Ats, Hris], "recruiter"),
        ("rejected", "triage", vec![Ats], "recruiter"),
        ("withdrawn", "triage", vec![Ats], "recruiter"),
    ];
    for from in [
        "applied",
        "triage",
        "screening",
        "screened",
        "interview",
        "offer",
    ] {
        expected.push((from, "rejected", vec![Ats], "recruiter"));
        expected.push((from, "withdrawn", vec![Ats, Sv], "recruiter"));
    }
    let mut got: Vec<(&str, &str, Vec<SourceSystem>, &str)> = p
        .transitions
        .iter()
        .map(|t| {
            (
                t.from.as_str(),
                &*t.to,
                t.authority.clone(),
                t.owner.as_str(),
            )
        })
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);

    assert_eq!(&*p.initial_stage, "applied");
    assert_eq!(p.screening_stage, "screened");
    assert_eq!(p.hired_stage, "hired");
    assert_eq!(p.application_created_authority, vec![Ats]);

    let golden = |f: &str| p.fields[f].golden_source;
    for f in [
        "screening.score",
        "screening.recommendation",
        "screening.rubric_version",
        "screening.reviewer_ids",
        "screening.media_url",
        "screening.transcript_url",
    ] {
        assert_eq!(golden(f), Sv, "golden source of {f}");
        assert_eq!(
            p.fields[f].writeback,
            Some(TargetSystem::Ats),
            "writeback of {f}"
        );
    }
    for f in ["candidate.name", "candidate.email", "offer.start_date"] {
        assert_eq!(golden(f), Ats, "golden source of {f}");
    }
    assert_eq!(golden("worker.employee_id"), Hris);
    assert_eq!(p.fields.len(), 10);
    assert_eq!(
        p.fields["screening.score"].ty,
        FieldType::Number {
            min: 0.0,
            max: 100.0
        }
    );
    assert_eq!(
        p.fields["screening.recommendation"].ty,
        FieldType::Enum {
            values: vec!["advance".into(), "hold".into(), "not_recommended".into()]
        }
    );
    assert_eq!(
        p.fields["screening.reviewer_ids"].ty,
        FieldType::ListOfString
    );
    assert_eq!(p.fields["screening.media_url"].ty, FieldType::HttpsUrl);
    assert_eq!(p.fields["screening.media_url"].class, FieldClass::Sensitive);
    assert_eq!(p.fields["offer.start_date"].ty, FieldType::Date);
    assert_eq!(
        p.fields["offer.start_date"].writeback,
        Some(TargetSystem::Hris)
    );
    assert_eq!(p.fields["candidate.email"].class, FieldClass::Personal);
    assert_eq!(p.fields["candidate.name"].writeback, None);
    assert_eq!(p.fields["worker.employee_id"].writeback, None);

    assert_eq!(p.regions["na"].ats_target, "greenhouse");
    assert_eq!(p.regions["emea"].ats_target, "lever");
    assert_eq!(p.regions["na"].hris_target, "workday");
    assert_eq!(p.regions["emea"].hris_target, "workday");
    assert!(p.regions["na"].withhold.is_empty());
    assert_eq!(
        p.regions["emea"].withhold,
        vec![
            "screening.media_url".to_string(),
            "screening.transcript_url".to_string()
        ]
    );
    assert_eq!(p.regions["na"].retention.sensitive_days, 180);
    assert_eq!(p.regions["emea"].retention.sensitive_days, 90);
    assert_eq!(p.regions["na"].retention.personal_days, 730);
    assert_eq!(p.regions["emea"].retention.personal_days, 730);

    assert_eq!(p.targets["greenhouse"].system, TargetSystem::Ats);
    assert_eq!(p.targets["lever"].system, TargetSystem::Ats);
    assert_eq!(p.targets["workday"].system, TargetSystem::Hris);
    assert_eq!(
        p.targets["workday"].field_keys["offer.start_date"],
        "hireDate"
    );
    assert_eq!(
        p.targets["greenhouse"].field_keys["screening.score"],
        "screening_score"
    );
    assert_eq!(
        p.targets["lever"].field_keys["screening.score"],
        "hs_screening_score"
    );

    assert_eq!(p.writeback.sla_secs, 15 * 60);
    assert_eq!(p.writeback.max_attempts, 5);
    assert_eq!(p.writeback.backoff_initial_secs, 30);
    assert_eq!(p.writeback.backoff_max_secs, 15 * 60);
}

// ---------------------------------------------------------------------------------------------
// One test per kind of mistake

#[test]
fn toml_syntax_error_is_located() {
    let d = copy();
    let line = edit(d.path(), "stages.toml", "rank = 3", "rank = = 3");
    assert_problem(
        &errors(d.path()),
        K::Syntax,
        "stages.toml",
        line,
        &["invalid TOML"],
    );
}

#[test]
fn unknown_key_is_named() {
    let d = copy();
    let line = edit(d.path(), "stages.toml", "rank = 2", "rnak = 2");
    assert_problem(
        &errors(d.path()),
        K::UnknownKey,
        "stages.toml",
        line,
        &["stage `screening`", "unknown key `rnak`"],
    );
}

#[test]
fn wrong_type_is_named() {
    let d = copy();
    let line = edit(
        d.path(),
        "policy.toml",
        "max_attempts = 5",
        "max_attempts = \"five\"",
    );
    assert_problem(
        &errors(d.path()),
        K::InvalidValue,
        "policy.toml",
        line,
        &["`max_attempts` must be an integer, found a string"],
    );
}

#[test]
fn unknown_stage_in_a_transition() {
    let d = copy();
    let line = edit(
        d.path(),
        "transitions.toml",
        "to = \"screened\"",
        "to = \"screend\"",
    );
    assert_problem(
        &errors(d.path()),
        K::UnknownStage,
        "transitions.toml",
        line,
        &["unknown stage `screend`"],
    );
}

#[test]
fn unreachable_stage() {
    let d = copy();
    let line = append(
        d.path(),
        "stages.toml",
        "\n[stage.sourced]\nrank = 7\ndwell_sla = \"1d\"\nowner = \"sourcer\"\n",
    ) + 1;
    append(
        d.path(),
        "transitions.toml",
        "\n[[transition]]\nfrom = \"sourced\"\nto = \"rejected\"\nauthority = [\"ats\"]\nowner = \"sourcer\"\n",
    );
    let errs = errors(d.path());
    assert_problem(
        &errs,
        K::UnreachableStage,
        "stages.toml",
        line,
        &["stage `sourced` is unreachable", "initial stage `applied`"],
    );
    assert_eq!(
        errs.len(),
        1,
        "only the unreachable stage is wrong:\n{errs}"
    );
}

#[test]
fn duplicate_transition() {
    let d = copy();
    let first = line_of(d.path(), "transitions.toml", "from = \"offer\"");
    let line = append(
        d.path(),
        "transitions.toml",
        "\n[[transition]]\nfrom = \"offer\"\nto = \"hired\"\nauthority = [\"hris\"]\nowner = \"hris owner\"\n",
    ) + 2;
    assert_problem(
        &errors(d.path()),
        K::Duplicate,
        "transitions.toml",
        line,
        &[
            "duplicate transition offer → hired",
            &format!("line {first}"),
        ],
    );
}

#[test]
fn duplicate_inside_a_from_list() {
    let d = copy();
    let line = edit(
        d.path(),
        "transitions.toml",
        "from = [\"rejected\", \"withdrawn\"]",
        "from = [\"rejected\", \"withdrawn\", \"rejected\"]",
    );
    assert_problem(
        &errors(d.path()),
        K::Duplicate,
        "transitions.toml",
        line,
        &["duplicate transition rejected → triage"],
    );
}

#[test]
fn authority_naming_an_unknown_system() {
    let d = copy();
    let line = edit(
        d.path(),
        "transitions.toml",
        "[\"ats\", \"hris\"]",
        "[\"ats\", \"hrs\"]",
    );
    assert_problem(
        &errors(d.path()),
        K::UnknownSystem,
        "transitions.toml",
        line,
        &["offer → hired", "unknown source system `hrs`"],
    );
}

#[test]
fn field_with_unknown_golden_source() {
    let d = copy();
    let line = edit(
        d.path(),
        "fields.toml",
        "golden_source = \"hris\"",
        "golden_source = \"payroll\"",
    );
    assert_problem(
        &errors(d.path()),
        K::UnknownSystem,
        "fields.toml",
        line,
        &[
            "field `worker.employee_id`",
            "unknown golden source `payroll`",
        ],
    );
}

#[test]
fn unknown_field_type() {
    let d = copy();
    let line = edit(
        d.path(),
        "fields.toml",
        "type = \"date\"",
        "type = \"datetime\"",
    );
    assert_problem(
        &errors(d.path()),
        K::BadFieldType,
        "fields.toml",
        line,
        &["field `offer.start_date`", "unknown field type `datetime`"],
    );
}

#[test]
fn bad_number_range() {
    let d = copy();
    edit(d.path(), "fields.toml", "max = 100", "max = -1");
    let line = line_of(d.path(), "fields.toml", "min = 0");
    assert_problem(
        &errors(d.path()),
        K::BadFieldType,
        "fields.toml",
        line,
        &["field `screening.score`", "bad range", "greater than `max`"],
    );
}

#[test]
fn range_on_a_type_without_one() {
    let d = copy();
    let line = edit_after(
        d.path(),
        "fields.toml",
        "[field.\"screening.rubric_version\"]",
        "type = \"string\"",
        "type = \"string\"\nmax = 3",
    ) + 1;
    assert_problem(
        &errors(d.path()),
        K::BadFieldType,
        "fields.toml",
        line,
        &["`max` only applies to type `number`"],
    );
}

#[test]
fn mapping_naming_an_unknown_stage() {
    let d = copy();
    let line = edit(
        d.path(),
        "targets.toml",
        "screened = \"Screen Complete\"",
        "screend = \"Screen Complete\"",
    );
    let errs = errors(d.path());
    assert_problem(
        &errs,
        K::UnknownStage,
        "targets.toml",
        line,
        &["target `greenhouse`", "unknown stage `screend`"],
    );
    let header = line_of(d.path(), "targets.toml", "[target.greenhouse]");
    assert_problem(
        &errs,
        K::Incomplete,
        "targets.toml",
        header,
        &["no remote stage name for `screened`"],
    );
}

#[test]
fn mapping_naming_an_unknown_field() {
    let d = copy();
    let line = edit(
        d.path(),
        "targets.toml",
        "\"screening.score\" = \"screening_score\"",
        "\"screening.scor\" = \"screening_score\"",
    );
    assert_problem(
        &errors(d.path()),
        K::UnknownField,
        "targets.toml",
        line,
        &["target `greenhouse`", "unknown field `screening.scor`"],
    );
}

#[test]
fn mapping_missing_a_written_back_field() {
    let d = copy();
    edit(
        d.path(),
        "targets.toml",
        "\"offer.start_date\" = \"hireDate\"\n",
        "",
    );
    let header = line_of(d.path(), "targets.toml", "[target.workday]");
    assert_problem(
        &errors(d.path()),
        K::Incomplete,
        "targets.toml",
        header,
        &["target `workday`", "no field key for `offer.start_date`"],
    );
}

#[test]
fn region_without_an_ats_target() {
    let d = copy();
    edit(d.path(), "regions.toml", "ats = \"greenhouse\"\n", "");
    let header = line_of(d.path(), "regions.toml", "[region.na]");
    assert_problem(
        &errors(d.path()),
        K::MissingKey,
        "regions.toml",
        header,
        &["region `na`", "missing required key `ats`"],
    );
}

#[test]
fn region_naming_an_unknown_target() {
    let d = copy();
    let line = edit(
        d.path(),
        "regions.toml",
        "ats = \"lever\"",
        "ats = \"leverr\"",
    );
    assert_problem(
        &errors(d.path()),
        K::UnknownTarget,
        "regions.toml",
        line,
        &["region `emea`", "unknown target `leverr`"],
    );
}

#[test]
fn region_naming_a_target_of_the_wrong_system() {
    let d = copy();
    let line = edit_after(
        d.path(),
        "regions.toml",
        "[region.na]",
        "hris = \"workday\"",
        "hris = \"greenhouse\"",
    );
    assert_problem(
        &errors(d.path()),
        K::UnknownTarget,
        "regions.toml",
        line,
        &["region `na`", "`greenhouse`, which is not an hris target"],
    );
}

#[test]
fn withhold_naming_an_unknown_field() {
    let d = copy();
    let line = edit(
        d.path(),
        "regions.toml",
        "\"screening.transcript_url\"]",
        "\"screening.transcript\"]",
    );
    assert_problem(
        &errors(d.path()),
        K::UnknownField,
        "regions.toml",
        line,
        &["region `emea`", "unknown field `screening.transcript`"],
    );
}

#[test]
fn duration_that_does_not_parse() {
    let d = copy();
    let line = edit(
        d.path(),
        "stages.toml",
        "dwell_sla = \"10d\"",
        "dwell_sla = \"10 days\"",
    );
    assert_problem(
        &errors(d.path()),
        K::BadDuration,
        "stages.toml",
        line,
        &["stage `interview`", "`dwell_sla`", "\"10 days\""],
    );
    let d = copy();
    let line = edit(d.path(), "policy.toml", "sla = \"15m\"", "sla = \"15min\"");
    assert_problem(
        &errors(d.path()),
        K::BadDuration,
        "policy.toml",
        line,
        &["[writeback]", "`sla`"],
    );
}

#[test]
fn tampered_policy_is_refused() {
    let d = copy();
    edit(
        d.path(),
        "stages.toml",
        "dwell_sla = \"14d\"",
        "dwell_sla = \"15d\"",
    );
    let line = line_of(d.path(), "policy.toml", "digest = ");
    let errs = errors(d.path());
    assert_problem(
        &errs,
        K::DigestMismatch,
        "policy.toml",
        line,
        &["does not match the policy content"],
    );
    assert_eq!(errs.len(), 1);
}

#[test]
fn unsigned_policy_is_refused() {
    let d = copy();
    let text = read(d.path(), "policy.toml");
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("digest ="))
        .collect();
    fs::write(d.path().join("policy.toml"), kept.join("\n") + "\n").expect("write");
    let header = line_of(d.path(), "policy.toml", "[approval]");
    assert_problem(
        &errors(d.path()),
        K::Unsigned,
        "policy.toml",
        header,
        &["unsigned", "no `digest`"],
    );
}

#[test]
fn missing_file_is_reported() {
    let d = copy();
    fs::remove_file(d.path().join("regions.toml")).expect("remove");
    assert_problem(
        &errors(d.path()),
        K::Io,
        "regions.toml",
        1,
        &["cannot read policy file"],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let d = copy();
    let syntax = edit(d.path(), "fields.toml", "max = 100", "max = ");
    let stage = edit(
        d.path(),
        "transitions.toml",
        "to = \"offer\"",
        "to = \"ofer\"",
    );
    let target = edit(
        d.path(),
        "regions.toml",
        "ats = \"lever\"",
        "ats = \"leverr\"",
    );
    let dur = edit(
        d.path(),
        "policy.toml",
        "backoff_initial = \"30s\"",
        "backoff_initial = \"30\"",
    );
    let key = edit(
        d.path(),
        "stages.toml",
        "owner = \"screening vendor\"",
        "ownr = \"screening vendor\"",
    );
    let errs = errors(d.path());
    assert_problem(&errs, K::Syntax, "fields.toml", syntax, &["invalid TOML"]);
    assert_problem(
        &errs,
        K::UnknownStage,
        "transitions.toml",
        stage,
        &["`ofer`"],
    );
    assert_problem(
        &errs,
        K::UnknownTarget,
        "regions.toml",
        target,
        &["`leverr`"],
    );
    assert_problem(
        &errs,
        K::BadDuration,
        "policy.toml",
        dur,
        &["`backoff_initial`"],
    );
    assert_problem(&errs, K::UnknownKey, "stages.toml", key, &["`ownr`"]);
    // One line per problem, each `path:line: message`.
    let shown = errs.to_string();
    assert_eq!(shown.lines().count(), errs.len());
    let expected_prefix = format!("{}:{stage}: ", d.path().join("transitions.toml").display());
    assert!(
        shown.lines().any(|l| l.starts_with(&expected_prefix)),
        "{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// Signing and the digest

#[test]
fn sign_then_load_round_trips_and_keeps_comments() {
    let d = copy();
    edit(
        d.path(),
        "stages.toml",
        "dwell_sla = \"14d\"",
        "dwell_sla = \"21d\"",
    );
    assert!(errors(d.path()).has(K::DigestMismatch));
    let digest = policy::sign(
        d.path(),
        Some("2024.2"),
        Some(vec!["vp-talent".into(), "hris-owner".into()]),
        Some("2024-07-01"),
    )
    .expect("sign");
    let p = policy::load(d.path()).expect("signed policy loads");
    assert_eq!(p.digest(), digest);
    assert_eq!(p.version(), "2024.2");
    assert_eq!(
        p.approval.approvers,
        vec!["vp-talent".to_string(), "hris-owner".to_string()]
    );
    assert_eq!(p.approval.date, "2024-07-01");
    assert_eq!(p.stages["offer"].dwell_sla_secs, Some(21 * 86_400));

    // Only the approval values changed: every comment line and the other blocks are intact.
    let before = read(&shipped(), "policy.toml");
    let after = read(d.path(), "policy.toml");
    let comments = |t: &str| {
        t.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(comments(&before), comments(&after));
    assert_eq!(before.lines().count(), after.lines().count());
    assert!(after.contains(&format!("digest = \"{digest}\"")));

    // Signing again without changes is a no-op.
    let again = policy::sign(d.path(), None, None, None).expect("re-sign");
    assert_eq!(again, digest);
    assert_eq!(read(d.path(), "policy.toml"), after);
}

#[test]
fn sign_refuses_an_invalid_policy_and_writes_nothing() {
    let d = copy();
    let line = edit(
        d.path(),
        "transitions.toml",
        "to = \"screened\"",
        "to = \"screend\"",
    );
    let before = read(d.path(), "policy.toml");
    let errs = policy::sign(d.path(), Some("x"), None, None).expect_err("invalid policy");
    assert_problem(
        &errs,
        K::UnknownStage,
        "transitions.toml",
        line,
        &["`screend`"],
    );
    assert_eq!(read(d.path(), "policy.toml"), before);
}

#[test]
fn sign_rejects_a_bad_approval_date() {
    let d = copy();
    let errs = policy::sign(d.path(), None, None, Some("03/06/2024")).expect_err("bad date");
    assert!(errs.has(K::InvalidValue), "{errs}");
    assert!(errs.to_string().contains("YYYY-MM-DD"), "{errs}");
}

#[test]
fn comments_layout_and_order_do_not_change_the_digest() {
    let d = copy();
    // A comment, blank lines, a reordered key, a reordered transition and another quoting style.
    edit(
        d.path(),
        "stages.toml",
        "[stage.applied]\nrank = 0\ndwell_sla = \"2d\"",
        "\n\n# new hires land here\n[stage.applied]\ndwell_sla = '2d'   # two days\nrank = 0",
    );
    let first = "[[transition]]\nfrom = \"applied\"\nto = \"triage\"\nauthority = [\"ats\", \"screening_vendor\"]\nowner = \"recruiter\"\n";
    edit(d.path(), "transitions.toml", first, "");
    append(
        d.path(),
        "transitions.toml",
        &first.replace(
            "[\"ats\", \"screening_vendor\"]",
            "[\"screening_vendor\", \"ats\"]",
        ),
    );
    edit(
        d.path(),
        "regions.toml",
        "[\"screening.media_url\", \"screening.transcript_url\"]",
        "[\n  \"screening.transcript_url\",\n  \"screening.media_url\",\n]",
    );
    let p = match policy::load(d.path()) {
        Ok(p) => p,
        Err(e) => panic!("a cosmetic change must keep the digest valid:\n{e}"),
    };
    let shipped = policy::load(&shipped()).expect("shipped");
    assert_eq!(p, shipped);
}

#[test]
fn any_semantic_change_changes_the_digest() {
    let shipped = policy::load(&shipped()).expect("shipped");
    let changes: [(&str, &str, &str); 5] = [
        (
            "stages.toml",
            "owner = \"hiring manager\"\n\n[stage.interview]",
            "owner = \"hiring mgr\"\n\n[stage.interview]",
        ),
        ("transitions.toml", "[\"ats\", \"hris\"]", "[\"hris\"]"),
        ("fields.toml", "max = 100", "max = 99"),
        ("targets.toml", "\"hireDate\"", "\"startDate\""),
        ("policy.toml", "max_attempts = 5", "max_attempts = 6"),
    ];
    for (file, from, to) in changes {
        let d = copy();
        edit(d.path(), file, from, to);
        let errs = errors(d.path());
        assert!(
            errs.has(K::DigestMismatch) && errs.len() == 1,
            "{file}: {errs}"
        );
        let resigned = policy::sign(d.path(), None, None, None).expect("sign");
        assert_ne!(resigned, shipped.digest(), "{file}: {from} → {to}");
    }
    // The approval itself is covered too.
    let d = copy();
    let resigned = policy::sign(d.path(), Some("2099.1"), None, None).expect("sign");
    assert_ne!(resigned, shipped.digest());
}

// ---------------------------------------------------------------------------------------------
// Diagrams

#[test]
fn diagrams_show_every_transition_with_its_authority() {
    let p = policy::load(&shipped()).expect("shipped");
    let mermaid = diagram(&p, DiagramFormat::Mermaid);
    let dot = diagram(&p, DiagramFormat::Dot);
    assert!(mermaid.starts_with("stateDiagram-v2\n"));
    assert!(dot.starts_with("digraph "));
    assert_eq!(p.transitions.len(), 21);
    for t in &p.transitions {
        let auth: Vec<&str> = t.authority.iter().map(|a| a.as_str()).collect();
        let auth = auth.join(", ");
        assert!(
            mermaid.contains(&format!(
                "    {} --> {} : {auth} · owner {}\n",
                t.from, t.to, t.owner
            )),
            "mermaid lacks {} → {}:\n{mermaid}",
            t.from,
            t.to
        );
        assert!(
            dot.contains(&format!(
                "\"{}\" -> \"{}\" [label=\"{auth}\\nowner {}\"]",
                t.from, t.to, t.owner
            )),
            "dot lacks {} → {}:\n{dot}",
            t.from,
            t.to
        );
    }
    assert!(mermaid.contains("    [*] --> applied\n"));
    assert!(mermaid.contains("    offer : rank 5 · owner recruiter · dwell SLA 14d\n"));
    assert!(dot.contains(
        "\"screening\" [label=\"screening\\nrank 2\\nowner screening vendor\\ndwell SLA 7d\"]"
    ));
    assert_eq!(
        mermaid,
        diagram(&p, DiagramFormat::Mermaid),
        "deterministic"
    );
    assert_eq!(DiagramFormat::parse("dot"), Some(DiagramFormat::Dot));
    assert_eq!(DiagramFormat::parse("svg"), None);
}

/// Re-signs the shipped policy in place (keeping version, approvers and date), the same as
/// `hirestate policy sign`: `cargo test --test policy_check -- --ignored resign_shipped_policy`.
#[test]
#[ignore = "writes schemas/policy/policy.toml"]
fn resign_shipped_policy() {
    match policy::sign(&shipped(), None, None, None) {
        Ok(d) => println!("signed: {d}"),
        Err(e) => panic!("cannot sign:\n{e}"),
    }
}
