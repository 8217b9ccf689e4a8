//! Per-file parsing: each policy file → a draft of its part of the [`Policy`], with the
//! locations the cross-file checks ([`super::validate`]) need for their messages.
//!
//! Checks here are the ones one file can decide alone: unknown keys, missing keys, wrong types,
//! names of systems/classes/types, duration strings, ranges. A draft keeps every *declared* name
//! (even of an entry with a bad attribute) so that one typo does not cascade into "unknown
//! stage" problems elsewhere. A file that failed to parse yields `None`, and the checks that
//! depend on it are skipped for the same reason.

use std::collections::BTreeMap;
use std::path::Path;

use crate::model::{SourceSystem, TargetSystem};

use super::duration::parse_duration;
use super::error::{Loc, PolicyErrorKind as K, Problems};
use super::source::{At, Section, SourceFile};
use super::types::{
    ConflictRule, FieldClass, FieldSpec, FieldType, Retention, Stage, WritebackSettings,
};

/// The file holding the approval, lifecycle and write-back settings.
pub const POLICY_FILE: &str = "policy.toml";
pub const STAGES_FILE: &str = "stages.toml";
pub const TRANSITIONS_FILE: &str = "transitions.toml";
pub const FIELDS_FILE: &str = "fields.toml";
pub const TARGETS_FILE: &str = "targets.toml";
pub const REGIONS_FILE: &str = "regions.toml";

/// `[approval]` as written; missing keys are decided later (signing may supply them).
#[derive(Debug, Default)]
pub struct ApprovalDraft {
    /// The `[approval]` header, or line 1 when the block is absent.
    pub loc: Option<Loc>,
    pub version: Option<At<String>>,
    pub approvers: Option<At<Vec<At<String>>>>,
    pub date: Option<At<String>>,
    pub digest: Option<At<String>>,
}

/// `[lifecycle]`.
#[derive(Debug)]
pub struct LifecycleDraft {
    pub initial_stage: Option<At<String>>,
    pub screening_stage: Option<At<String>>,
    pub hired_stage: Option<At<String>>,
    pub application_created_authority: Option<Vec<SourceSystem>>,
}

/// `policy.toml`.
#[derive(Debug)]
pub struct PolicyFileDraft {
    pub path: std::path::PathBuf,
    pub approval: ApprovalDraft,
    pub lifecycle: Option<LifecycleDraft>,
    pub writeback: Option<WritebackSettings>,
}

/// `stages.toml`: every declared name with its line, and the stages that are fully valid.
#[derive(Debug, Default)]
pub struct StagesDraft {
    pub declared: BTreeMap<String, Loc>,
    pub valid: BTreeMap<String, Stage>,
}

/// One `[[transition]]` before expansion of its `from` list.
#[derive(Debug)]
pub struct TransitionDraft {
    pub from: Vec<At<String>>,
    pub to: At<String>,
    /// `None` when invalid (already reported); the edge still counts for reachability.
    pub authority: Option<Vec<SourceSystem>>,
    pub owner: Option<String>,
}

/// `fields.toml`.
#[derive(Debug, Default)]
pub struct FieldsDraft {
    pub declared: BTreeMap<String, Loc>,
    pub valid: BTreeMap<String, FieldSpec>,
}

/// One `[target.<name>]`.
#[derive(Debug)]
pub struct TargetDraft {
    pub loc: Loc,
    pub system: Option<TargetSystem>,
    pub stage_names: Vec<(At<String>, At<String>)>,
    pub field_keys: Vec<(At<String>, At<String>)>,
}

/// One `[region.<name>]`.
#[derive(Debug)]
pub struct RegionDraft {
    pub ats: Option<At<String>>,
    pub hris: Option<At<String>>,
    pub withhold: Vec<At<String>>,
    pub retention: Option<Retention>,
}

/// Every file's draft; `None` where the file could not be read or parsed.
#[derive(Debug)]
pub struct Drafts {
    pub policy: Option<PolicyFileDraft>,
    pub stages: Option<StagesDraft>,
    pub transitions: Option<Vec<TransitionDraft>>,
    pub fields: Option<FieldsDraft>,
    pub targets: Option<BTreeMap<String, TargetDraft>>,
    pub regions: Option<BTreeMap<String, RegionDraft>>,
    /// Where `[[transition]]`s, targets and regions live, for "none declared" problems.
    pub paths: BTreeMap<&'static str, std::path::PathBuf>,
}

/// Reads and parses every policy file in `dir`, recording each file's own problems.
pub fn parse_all(dir: &Path, p: &mut Problems) -> Drafts {
    let paths = [
        POLICY_FILE,
        STAGES_FILE,
        TRANSITIONS_FILE,
        FIELDS_FILE,
        TARGETS_FILE,
        REGIONS_FILE,
    ]
    .into_iter()
    .map(|f| (f, dir.join(f)))
    .collect();
    let read = |name: &str, p: &mut Problems| SourceFile::read(dir, name, p);
    Drafts {
        policy: read(POLICY_FILE, p).map(|f| parse_policy_file(&f, p)),
        stages: read(STAGES_FILE, p).map(|f| parse_stages(&f, p)),
        transitions: read(TRANSITIONS_FILE, p).map(|f| parse_transitions(&f, p)),
        fields: read(FIELDS_FILE, p).map(|f| parse_fields(&f, p)),
        targets: read(TARGETS_FILE, p).map(|f| parse_targets(&f, p)),
        regions: read(REGIONS_FILE, p).map(|f| parse_regions(&f, p)),
        paths,
    }
}

/// Names that end up in topic names, diagram ids and remote mappings: keep them plain.
/// Stage names are also diagram node ids, so they may not contain `-`; target and region
/// names end up in topic names, where `-` is fine.
fn check_name(kind: &str, name: &At<String>, hyphen_ok: bool, p: &mut Problems) -> bool {
    let ok = !name.value.is_empty()
        && name.value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || (hyphen_ok && b == b'-')
        });
    if !ok {
        let allowed = if hyphen_ok {
            "lowercase letters, digits, `_` or `-`"
        } else {
            "lowercase letters, digits or `_`"
        };
        p.push(
            K::InvalidValue,
            &name.loc,
            format!("{kind} name `{}` must be non-empty {allowed}", name.value),
        );
    }
    ok
}

fn non_empty(
    sec: &Section<'_>,
    key: &str,
    v: Option<At<String>>,
    p: &mut Problems,
) -> Option<At<String>> {
    let v = v?;
    if v.value.trim().is_empty() {
        let prefix = if sec.what().is_empty() {
            String::new()
        } else {
            format!("{}: ", sec.what())
        };
        p.push(
            K::InvalidValue,
            &v.loc,
            format!("{prefix}`{key}` must not be empty"),
        );
        return None;
    }
    Some(v)
}

/// A list of source-system names; unknown ones are problems.
fn systems(
    sec: &Section<'_>,
    key: &str,
    list: At<Vec<At<String>>>,
    p: &mut Problems,
) -> Option<Vec<SourceSystem>> {
    let prefix = if sec.what().is_empty() {
        String::new()
    } else {
        format!("{}: ", sec.what())
    };
    if list.value.is_empty() {
        p.push(
            K::InvalidValue,
            &list.loc,
            format!("{prefix}`{key}` must name at least one source system"),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for name in &list.value {
        match SourceSystem::parse(&name.value) {
            Some(s) => out.push(s),
            None => {
                ok = false;
                p.push(
                    K::UnknownSystem,
                    &name.loc,
                    format!(
                        "{prefix}`{key}` names unknown source system `{}` (known: {})",
                        name.value,
                        known_sources()
                    ),
                );
            }
        }
    }
    // Order and repetition carry no meaning: keep the canonical form.
    out.sort();
    out.dedup();
    ok.then_some(out)
}

fn known_sources() -> String {
    SourceSystem::ALL.map(SourceSystem::as_str).join(", ")
}

/// `"2d"` → seconds, or a problem at the value's line.
fn duration(sec: &Section<'_>, key: &str, p: &mut Problems) -> Option<At<i64>> {
    let s = sec.opt_str(key, p)?;
    match parse_duration(&s.value) {
        Ok(secs) => Some(At {
            value: secs,
            loc: s.loc,
        }),
        Err(msg) => {
            let prefix = if sec.what().is_empty() {
                String::new()
            } else {
                format!("{}: ", sec.what())
            };
            p.push(K::BadDuration, &s.loc, format!("{prefix}`{key}`: {msg}"));
            None
        }
    }
}

fn parse_policy_file(f: &SourceFile, p: &mut Problems) -> PolicyFileDraft {
    let root = f.root();
    root.deny_unknown(&["approval", "lifecycle", "writeback"], p);

    let mut approval = ApprovalDraft::default();
    if let Some(a) = root.opt_table("approval", "[approval]".into(), p) {
        a.deny_unknown(&["version", "approvers", "date", "digest"], p);
        approval = ApprovalDraft {
            loc: Some(a.loc.clone()),
            version: non_empty(&a, "version", a.opt_str("version", p), p),
            approvers: a.opt_strs("approvers", false, p),
            date: a.opt_str("date", p),
            digest: a.opt_str("digest", p),
        };
    }

    let lifecycle = root.table("lifecycle", "[lifecycle]".into(), p).map(|l| {
        l.deny_unknown(
            &[
                "initial_stage",
                "screening_stage",
                "hired_stage",
                "application_created_authority",
            ],
            p,
        );
        LifecycleDraft {
            initial_stage: l.str("initial_stage", p),
            screening_stage: l.str("screening_stage", p),
            hired_stage: l.str("hired_stage", p),
            application_created_authority: l
                .strs("application_created_authority", false, p)
                .and_then(|list| systems(&l, "application_created_authority", list, p)),
        }
    });

    let writeback = root
        .table("writeback", "[writeback]".into(), p)
        .and_then(|w| {
            const KEYS: [&str; 4] = ["sla", "max_attempts", "backoff_initial", "backoff_max"];
            w.deny_unknown(&KEYS, p);
            for key in ["sla", "backoff_initial", "backoff_max"] {
                if !w.has(key) {
                    w.str(key, p); // records the missing key
                }
            }
            let sla = duration(&w, "sla", p);
            let initial = duration(&w, "backoff_initial", p);
            let max = duration(&w, "backoff_max", p);
            let attempts = w
                .int("max_attempts", p)
                .and_then(|a| match u32::try_from(a.value) {
                    Ok(n) if n >= 1 => Some(n),
                    _ => {
                        p.push(
                            K::InvalidValue,
                            &a.loc,
                            "[writeback]: `max_attempts` must be at least 1",
                        );
                        None
                    }
                });
            if let (Some(i), Some(m)) = (&initial, &max) {
                if i.value > m.value {
                    p.push(
                        K::InvalidValue,
                        &i.loc,
                        "[writeback]: `backoff_initial` must not exceed `backoff_max`",
                    );
                    return None;
                }
            }
            Some(WritebackSettings {
                sla_secs: sla?.value,
                max_attempts: attempts?,
                backoff_initial_secs: initial?.value,
                backoff_max_secs: max?.value,
            })
        });

    PolicyFileDraft {
        path: f.path.clone(),
        approval,
        lifecycle,
        writeback,
    }
}

fn parse_stages(f: &SourceFile, p: &mut Problems) -> StagesDraft {
    let root = f.root();
    root.deny_unknown(&["stage"], p);
    let mut draft = StagesDraft::default();
    let Some(stages) = root.table("stage", "stages".into(), p) else {
        return draft;
    };
    let mut ranks: BTreeMap<u32, (String, Loc)> = BTreeMap::new();
    for (name, s) in stages.entries(|n| format!("stage `{n}`"), p) {
        check_name("stage", &name, false, p);
        draft.declared.insert(name.value.clone(), name.loc.clone());
        s.deny_unknown(&["rank", "terminal", "dwell_sla", "owner"], p);
        let what = s.what().to_string();
        let terminal = if s.has("terminal") {
            s.opt_bool("terminal", p).map(|b| b.value)
        } else {
            Some(false)
        };
        let rank = match s.opt_int("rank", p) {
            None if s.has("rank") => None,
            None => Some(None),
            Some(r) => {
                match u32::try_from(r.value) {
                    Ok(v) => {
                        if let Some((other, oloc)) = ranks.get(&v) {
                            p.push(
                            K::Duplicate,
                            &r.loc,
                            format!("{what}: rank {v} is already the rank of stage `{other}` (line {})", oloc.line),
                        );
                        } else {
                            ranks.insert(v, (name.value.clone(), r.loc.clone()));
                        }
                        Some(Some(v))
                    }
                    Err(_) => {
                        p.push(
                            K::InvalidValue,
                            &r.loc,
                            format!("{what}: `rank` must be 0 or more"),
                        );
                        None
                    }
                }
            }
        };
        let dwell = if s.has("dwell_sla") {
            duration(&s, "dwell_sla", p).map(|d| Some(d.value))
        } else {
            Some(None)
        };
        let owner = non_empty(&s, "owner", s.str("owner", p), p);
        let (Some(terminal), Some(rank), Some(dwell), Some(owner)) = (terminal, rank, dwell, owner)
        else {
            continue;
        };
        let mut ok = true;
        if terminal && dwell.is_some() {
            ok = false;
            p.push(
                K::InvalidValue,
                &s.key_loc("dwell_sla"),
                format!("{what}: a terminal stage has no dwell SLA"),
            );
        }
        if !terminal && dwell.is_none() {
            ok = false;
            p.push(K::MissingKey, &s.loc, format!("{what}: missing required key `dwell_sla` (every non-terminal stage has a dwell SLA, like \"3d\")"));
        }
        if !terminal && rank.is_none() {
            ok = false;
            p.push(K::MissingKey, &s.loc, format!("{what}: missing required key `rank` (every non-terminal stage is on the forward path)"));
        }
        if ok {
            draft.valid.insert(
                name.value.clone(),
                Stage {
                    name: name.value,
                    rank,
                    terminal,
                    dwell_sla_secs: dwell,
                    owner: owner.value,
                },
            );
        }
    }
    draft
}

fn parse_transitions(f: &SourceFile, p: &mut Problems) -> Vec<TransitionDraft> {
    let root = f.root();
    root.deny_unknown(&["transition"], p);
    let mut out = Vec::new();
    if !root.has("transition") {
        p.push(
            K::MissingKey,
            &root.loc,
            "no `[[transition]]` entries: every move would be forbidden",
        );
        return out;
    }
    for mut t in root.opt_array_of_tables("transition", |i| format!("transition #{}", i + 1), p) {
        // Name the entry by its edge once known: "transition applied → triage" reads better.
        let from = t.strs("from", true, p);
        let to = t.str("to", p);
        if let (Some(from), Some(to)) = (&from, &to) {
            let froms: Vec<&str> = from.value.iter().map(|f| f.value.as_str()).collect();
            t.set_what(format!("transition {} → {}", froms.join("|"), to.value));
        }
        t.deny_unknown(&["from", "to", "authority", "owner"], p);
        let authority = t
            .strs("authority", false, p)
            .and_then(|a| systems(&t, "authority", a, p));
        let owner = non_empty(&t, "owner", t.str("owner", p), p);
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        if from.value.is_empty() {
            p.push(
                K::InvalidValue,
                &from.loc,
                format!("{}: `from` must name at least one stage", t.what()),
            );
            continue;
        }
        out.push(TransitionDraft {
            from: from.value,
            to,
            authority,
            owner: owner.map(|o| o.value),
        });
    }
    out
}

const FIELD_TYPES: [&str; 6] = [
    "number",
    "enum",
    "string",
    "list_of_string",
    "https_url",
    "date",
];

fn parse_field_type(s: &Section<'_>, p: &mut Problems) -> Option<FieldType> {
    let what = s.what().to_string();
    let ty = s.str("type", p)?;
    let min = s.opt_num("min", p);
    let max = s.opt_num("max", p);
    let values = s.opt_strs("values", false, p);
    let only = |key: &str, present: bool, for_ty: &str, p: &mut Problems| {
        if present {
            p.push(
                K::BadFieldType,
                &s.key_loc(key),
                format!(
                    "{what}: `{key}` only applies to type `{for_ty}`, not `{}`",
                    ty.value
                ),
            );
        }
    };
    if ty.value != "number" {
        only("min", s.has("min"), "number", p);
        only("max", s.has("max"), "number", p);
    }
    if ty.value != "enum" {
        only("values", s.has("values"), "enum", p);
    }
    match ty.value.as_str() {
        "number" => {
            let (Some(min), Some(max)) = (min, max) else {
                if !(s.has("min") && s.has("max")) {
                    p.push(
                        K::BadFieldType,
                        &ty.loc,
                        format!("{what}: type `number` needs both `min` and `max`"),
                    );
                }
                return None;
            };
            if !min.value.is_finite() || !max.value.is_finite() {
                p.push(
                    K::BadFieldType,
                    &min.loc,
                    format!("{what}: `min` and `max` must be finite numbers"),
                );
                return None;
            }
            if min.value > max.value {
                p.push(
                    K::BadFieldType,
                    &min.loc,
                    format!(
                        "{what}: bad range: `min` ({}) is greater than `max` ({})",
                        min.value, max.value
                    ),
                );
                return None;
            }
            Some(FieldType::Number {
                min: min.value,
                max: max.value,
            })
        }
        "enum" => {
            let Some(values) = values else {
                if !s.has("values") {
                    p.push(
                        K::BadFieldType,
                        &ty.loc,
                        format!("{what}: type `enum` needs `values`"),
                    );
                }
                return None;
            };
            if values.value.is_empty() {
                p.push(
                    K::BadFieldType,
                    &values.loc,
                    format!("{what}: `values` must list at least one value"),
                );
                return None;
            }
            let mut seen: Vec<&str> = Vec::new();
            for v in &values.value {
                if seen.contains(&v.value.as_str()) {
                    p.push(
                        K::BadFieldType,
                        &v.loc,
                        format!("{what}: `values` lists `{}` twice", v.value),
                    );
                    return None;
                }
                seen.push(&v.value);
            }
            Some(FieldType::Enum {
                values: values.value.into_iter().map(|v| v.value).collect(),
            })
        }
        "string" => Some(FieldType::String),
        "list_of_string" => Some(FieldType::ListOfString),
        "https_url" => Some(FieldType::HttpsUrl),
        "date" => Some(FieldType::Date),
        other => {
            p.push(
                K::BadFieldType,
                &ty.loc,
                format!(
                    "{what}: unknown field type `{other}` (known: {})",
                    FIELD_TYPES.join(", ")
                ),
            );
            None
        }
    }
}

fn parse_fields(f: &SourceFile, p: &mut Problems) -> FieldsDraft {
    let root = f.root();
    root.deny_unknown(&["field"], p);
    let mut draft = FieldsDraft::default();
    let Some(fields) = root.table("field", "fields".into(), p) else {
        return draft;
    };
    for (name, s) in fields.entries(|n| format!("field `{n}`"), p) {
        draft.declared.insert(name.value.clone(), name.loc.clone());
        s.deny_unknown(
            &[
                "golden_source",
                "type",
                "min",
                "max",
                "values",
                "class",
                "conflict",
                "writeback",
                "owner",
            ],
            p,
        );
        let what = s.what().to_string();
        let golden = s.str("golden_source", p).and_then(|g| {
            let parsed = SourceSystem::parse(&g.value);
            if parsed.is_none() {
                p.push(
                    K::UnknownSystem,
                    &g.loc,
                    format!(
                        "{what}: unknown golden source `{}` (known: {})",
                        g.value,
                        known_sources()
                    ),
                );
            }
            parsed.map(|s| At {
                value: s,
                loc: g.loc,
            })
        });
        let ty = parse_field_type(&s, p);
        let class = s.str("class", p).and_then(|c| {
            let parsed = match c.value.as_str() {
                "internal" => Some(FieldClass::Internal),
                "personal" => Some(FieldClass::Personal),
                "sensitive" => Some(FieldClass::Sensitive),
                _ => None,
            };
            if parsed.is_none() {
                p.push(
                    K::InvalidValue,
                    &c.loc,
                    format!(
                        "{what}: unknown class `{}` (known: internal, personal, sensitive)",
                        c.value
                    ),
                );
            }
            parsed
        });
        let conflict = match s.opt_str("conflict", p) {
            None if s.has("conflict") => None,
            None => Some(ConflictRule::GoldenWins),
            Some(c) => match c.value.as_str() {
                "golden_wins" => Some(ConflictRule::GoldenWins),
                "latest_wins" => Some(ConflictRule::LatestWins),
                other => {
                    p.push(
                        K::InvalidValue,
                        &c.loc,
                        format!("{what}: unknown conflict rule `{other}` (known: golden_wins, latest_wins)"),
                    );
                    None
                }
            },
        };
        let writeback = match s.opt_str("writeback", p) {
            None if s.has("writeback") => None,
            None => Some(None),
            Some(w) => match w.value.as_str() {
                "none" => Some(None),
                "ats" => Some(Some(TargetSystem::Ats)),
                "hris" => Some(Some(TargetSystem::Hris)),
                other => {
                    p.push(
                        K::UnknownSystem,
                        &w.loc,
                        format!("{what}: `writeback` names unknown system `{other}` (known: ats, hris, none)"),
                    );
                    None
                }
            },
        };
        let owner = non_empty(&s, "owner", s.str("owner", p), p);
        let (Some(golden), Some(ty), Some(class), Some(conflict), Some(writeback), Some(owner)) =
            (golden, ty, class, conflict, writeback, owner)
        else {
            continue;
        };
        if writeback.is_some_and(|w| w.as_source() == golden.value) {
            p.push(
                K::InvalidValue,
                &s.key_loc("writeback"),
                format!(
                    "{what}: writes back to {}, which is its own golden source",
                    golden.value
                ),
            );
            continue;
        }
        draft.valid.insert(
            name.value.clone(),
            FieldSpec {
                name: name.value,
                golden_source: golden.value,
                ty,
                class,
                conflict,
                writeback,
                owner: owner.value,
            },
        );
    }
    draft
}

fn parse_targets(f: &SourceFile, p: &mut Problems) -> BTreeMap<String, TargetDraft> {
    let root = f.root();
    root.deny_unknown(&["target"], p);
    let mut out = BTreeMap::new();
    let Some(targets) = root.table("target", "targets".into(), p) else {
        return out;
    };
    for (name, s) in targets.entries(|n| format!("target `{n}`"), p) {
        check_name("target", &name, true, p);
        s.deny_unknown(&["system", "stages", "fields"], p);
        let what = s.what().to_string();
        let system = s.str("system", p).and_then(|sys| {
            let parsed = match sys.value.as_str() {
                "ats" => Some(TargetSystem::Ats),
                "hris" => Some(TargetSystem::Hris),
                _ => None,
            };
            if parsed.is_none() {
                p.push(
                    K::UnknownSystem,
                    &sys.loc,
                    format!("{what}: unknown system `{}` (known: ats, hris)", sys.value),
                );
            }
            parsed
        });
        let map = |key: &str, label: &str, p: &mut Problems| {
            s.opt_table(key, format!("{what} {label}"), p)
                .map(|t| t.string_entries(p))
                .unwrap_or_default()
        };
        let stage_names = map("stages", "stage names", p);
        let field_keys = map("fields", "field keys", p);
        out.insert(
            name.value,
            TargetDraft {
                loc: s.loc.clone(),
                system,
                stage_names,
                field_keys,
            },
        );
    }
    out
}

fn parse_regions(f: &SourceFile, p: &mut Problems) -> BTreeMap<String, RegionDraft> {
    let root = f.root();
    root.deny_unknown(&["region"], p);
    let mut out = BTreeMap::new();
    let Some(regions) = root.table("region", "regions".into(), p) else {
        return out;
    };
    for (name, s) in regions.entries(|n| format!("region `{n}`"), p) {
        check_name("region", &name, true, p);
        s.deny_unknown(&["ats", "hris", "withhold", "retention"], p);
        let what = s.what().to_string();
        let ats = s.str("ats", p);
        let hris = s.str("hris", p);
        let withhold = s
            .opt_strs("withhold", false, p)
            .map(|w| w.value)
            .unwrap_or_default();
        let retention = s
            .table("retention", format!("{what} retention"), p)
            .and_then(|r| {
                r.deny_unknown(&["sensitive_days", "personal_days"], p);
                let days = |key: &str, p: &mut Problems| {
                    let d = r.int(key, p)?;
                    match u32::try_from(d.value) {
                        Ok(v) if v > 0 => Some(v),
                        _ => {
                            p.push(
                                K::InvalidValue,
                                &d.loc,
                                format!("{}: `{key}` must be a positive number of days", r.what()),
                            );
                            None
                        }
                    }
                };
                let sensitive = days("sensitive_days", p);
                let personal = days("personal_days", p);
                Some(Retention {
                    sensitive_days: sensitive?,
                    personal_days: personal?,
                })
            });
        out.insert(
            name.value,
            RegionDraft {
                ats,
                hris,
                withhold,
                retention,
            },
        );
    }
    out
}
