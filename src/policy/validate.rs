//! Cross-file checks and assembly: drafts → [`Policy`].
//!
//! Invariants of the result (what the fold and derive rely on): every transition names declared
//! stages, no `from → to` pair is listed twice, every stage is reachable from the initial stage
//! and every non-terminal stage has a way out; every mapping names declared stages, fields and
//! targets, every ATS target names each stage a transition moves into, every target has a key
//! for each field written back to its system; every region names one ATS and one HRIS target of
//! the right system and withholds only dictionary fields. Transitions are in a canonical order
//! (by rank of `from`, then of `to`, then names) so the file order never matters.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::model::TargetSystem;

use super::error::{Loc, PolicyErrorKind as K, Problems};
use super::parse::{Drafts, StagesDraft, TransitionDraft, REGIONS_FILE, TARGETS_FILE};
use super::source::At;
use super::types::{Approval, Policy, Region, Target, Transition};

fn stage_list(stages: &StagesDraft) -> String {
    stages
        .declared
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `name` is a declared stage; records an `UnknownStage` problem otherwise.
fn known_stage(stages: &StagesDraft, what: &str, name: &At<String>, p: &mut Problems) -> bool {
    if stages.declared.contains_key(&name.value) {
        return true;
    }
    p.push(
        K::UnknownStage,
        &name.loc,
        format!(
            "{what}: unknown stage `{}` (declared stages: {})",
            name.value,
            stage_list(stages)
        ),
    );
    false
}

/// Checks everything across files and assembles the policy; `None` if any part is missing or
/// any problem was recorded (here or while parsing).
pub fn assemble(d: Drafts, approval: Option<Approval>, p: &mut Problems) -> Option<Policy> {
    let lifecycle_stages = check_lifecycle(&d, p);
    let transitions = check_transitions(&d, lifecycle_stages.as_ref().map(|l| l.0.as_str()), p);
    let targets = check_targets(&d, p);
    let regions = check_regions(&d, p);

    let policy_file = d.policy?;
    let lifecycle = policy_file.lifecycle?;
    let stages = d.stages?;
    let fields = d.fields?;
    let (initial_stage, screening_stage, hired_stage) = lifecycle_stages?;
    let policy = Policy {
        approval: approval?,
        stages: stages.valid.into_iter().collect(),
        transitions: transitions?.into_iter().collect(),
        application_created_authority: lifecycle.application_created_authority?,
        screening_stage,
        initial_stage: initial_stage.into(),
        hired_stage,
        fields: fields.valid.into_iter().collect(),
        targets: targets?.into_iter().collect(),
        regions: regions?.into_iter().collect(),
        writeback: policy_file.writeback?,
    };
    p.is_empty().then_some(policy)
}

/// The `[lifecycle]` stages exist and have the right terminality: (initial, screening, hired).
fn check_lifecycle(d: &Drafts, p: &mut Problems) -> Option<(String, String, String)> {
    let lifecycle = d.policy.as_ref()?.lifecycle.as_ref()?;
    let stages = d.stages.as_ref()?;
    let check = |key: &str, name: &Option<At<String>>, terminal: Option<bool>, p: &mut Problems| {
        let name = name.as_ref()?;
        if !known_stage(stages, &format!("[lifecycle] `{key}`"), name, p) {
            return None;
        }
        let stage = stages.valid.get(&name.value)?;
        match terminal {
            Some(true) if !stage.terminal => {
                p.push(
                    K::InvalidValue,
                    &name.loc,
                    format!(
                        "[lifecycle] `{key}`: stage `{}` must be terminal",
                        name.value
                    ),
                );
                None
            }
            Some(false) if stage.terminal => {
                p.push(
                    K::InvalidValue,
                    &name.loc,
                    format!(
                        "[lifecycle] `{key}`: stage `{}` must not be terminal",
                        name.value
                    ),
                );
                None
            }
            _ => Some(name.value.clone()),
        }
    };
    let initial = check("initial_stage", &lifecycle.initial_stage, Some(false), p);
    let screening = check("screening_stage", &lifecycle.screening_stage, None, p);
    let hired = check("hired_stage", &lifecycle.hired_stage, Some(true), p);
    Some((initial?, screening?, hired?))
}

/// Stage names, duplicates, reachability and dead ends; the expanded, ordered transitions.
fn check_transitions(
    d: &Drafts,
    initial: Option<&str>,
    p: &mut Problems,
) -> Option<Vec<Transition>> {
    let drafts = d.transitions.as_ref()?;
    let stages = d.stages.as_ref()?;
    let mut seen: BTreeMap<(String, String), Loc> = BTreeMap::new();
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut out = Vec::new();
    let mut complete = true;
    let mut all_known = true;
    for t in drafts {
        let what = format!("transition {} → {}", joined(&t.from), t.to.value);
        let to_ok = known_stage(stages, &what, &t.to, p);
        for from in &t.from {
            if !known_stage(stages, &what, from, p) || !to_ok {
                complete = false;
                all_known = false;
                continue;
            }
            if from.value == t.to.value {
                complete = false;
                p.push(
                    K::InvalidValue,
                    &from.loc,
                    format!("{what}: a stage cannot move to itself (`{}`)", from.value),
                );
                continue;
            }
            let key = (from.value.clone(), t.to.value.clone());
            if let Some(first) = seen.get(&key) {
                complete = false;
                p.push(
                    K::Duplicate,
                    &from.loc,
                    format!(
                        "duplicate transition {} → {}: already listed at line {}",
                        from.value, t.to.value, first.line
                    ),
                );
                continue;
            }
            seen.insert(key, from.loc.clone());
            edges
                .entry(from.value.as_str())
                .or_default()
                .insert(t.to.value.as_str());
            out.extend(expand(t, from));
        }
        complete &= t.authority.is_some() && t.owner.is_some();
    }
    // With a misspelt stage the graph is incomplete: reachability problems would only echo it.
    if !all_known {
        return None;
    }
    if let Some(initial) = initial {
        check_reachable(stages, initial, &edges, p);
    }
    for (name, stage) in &stages.valid {
        if !stage.terminal && !edges.contains_key(name.as_str()) {
            if let Some(loc) = stages.declared.get(name) {
                p.push(
                    K::Incomplete,
                    loc,
                    format!("stage `{name}` is not terminal but no transition leaves it"),
                );
            }
        }
    }
    let rank = |s: &str| {
        stages
            .valid
            .get(s)
            .and_then(|st| st.rank)
            .unwrap_or(u32::MAX)
    };
    out.sort_by(|a, b| {
        (rank(&a.from), &a.from, rank(&a.to), &a.to).cmp(&(
            rank(&b.from),
            &b.from,
            rank(&b.to),
            &b.to,
        ))
    });
    complete.then_some(out)
}

fn joined(list: &[At<String>]) -> String {
    list.iter()
        .map(|s| s.value.as_str())
        .collect::<Vec<_>>()
        .join("|")
}

fn expand(t: &TransitionDraft, from: &At<String>) -> Option<Transition> {
    Some(Transition {
        from: from.value.clone(),
        to: t.to.value.as_str().into(),
        authority: t.authority.clone()?,
        owner: t.owner.clone()?,
    })
}

fn check_reachable(
    stages: &StagesDraft,
    initial: &str,
    edges: &BTreeMap<&str, BTreeSet<&str>>,
    p: &mut Problems,
) {
    let mut reached = BTreeSet::from([initial]);
    let mut queue = VecDeque::from([initial]);
    while let Some(s) = queue.pop_front() {
        for next in edges.get(s).into_iter().flatten() {
            if reached.insert(next) {
                queue.push_back(next);
            }
        }
    }
    for (name, loc) in &stages.declared {
        if !reached.contains(name.as_str()) {
            p.push(
                K::UnreachableStage,
                loc,
                format!("stage `{name}` is unreachable: no sequence of transitions leads to it from the initial stage `{initial}`"),
            );
        }
    }
}

/// Mappings name declared stages/fields and cover what derive needs; the assembled targets.
fn check_targets(d: &Drafts, p: &mut Problems) -> Option<BTreeMap<String, Target>> {
    let drafts = d.targets.as_ref()?;
    if drafts.is_empty() {
        if let Some(path) = d.paths.get(TARGETS_FILE) {
            p.push(
                K::Incomplete,
                &Loc::new(path, 1),
                "no targets declared: commands would have nowhere to go",
            );
        }
    }
    let stages = d.stages.as_ref();
    let fields = d.fields.as_ref();
    // Stages some transition moves into: an ATS must be able to name each of them.
    let moved_into: BTreeSet<&str> = d
        .transitions
        .iter()
        .flatten()
        .map(|t| t.to.value.as_str())
        .filter(|s| stages.is_none_or(|st| st.declared.contains_key(*s)))
        .collect();
    let mut out = BTreeMap::new();
    let mut complete = true;
    for (name, t) in drafts {
        let what = format!("target `{name}`");
        let Some(system) = t.system else {
            complete = false;
            continue;
        };
        let mut stage_names = BTreeMap::new();
        for (stage, remote) in &t.stage_names {
            if let Some(stages) = stages {
                complete &= known_stage(stages, &format!("{what} stage names"), stage, p);
            }
            complete &= non_empty_remote(&what, stage, remote, p);
            stage_names.insert(stage.value.clone(), remote.value.clone());
        }
        if system == TargetSystem::Ats {
            for stage in &moved_into {
                if !stage_names.contains_key(*stage) {
                    complete = false;
                    p.push(
                        K::Incomplete,
                        &t.loc,
                        format!("{what} (ats) has no remote stage name for `{stage}`, which a transition moves into"),
                    );
                }
            }
        }
        let mut field_keys = BTreeMap::new();
        let mut remote_keys: BTreeMap<&str, &At<String>> = BTreeMap::new();
        for (field, key) in &t.field_keys {
            complete &= non_empty_remote(&what, field, key, p);
            if let Some(first) = remote_keys.insert(key.value.as_str(), field) {
                complete = false;
                p.push(
                    K::Duplicate,
                    &key.loc,
                    format!(
                        "{what}: remote field key `{}` is used for both `{}` (line {}) and `{}`",
                        key.value, first.value, first.loc.line, field.value
                    ),
                );
            }
            if let Some(fields) = fields {
                if !fields.declared.contains_key(&field.value) {
                    complete = false;
                    p.push(
                        K::UnknownField,
                        &field.loc,
                        format!(
                            "{what} field keys: unknown field `{}` (not in the field dictionary)",
                            field.value
                        ),
                    );
                } else if let Some(spec) = fields.valid.get(&field.value) {
                    if spec.writeback != Some(system) {
                        complete = false;
                        p.push(
                            K::InvalidValue,
                            &field.loc,
                            format!(
                                "{what} field keys: `{}` is not written back to {} (its writeback is {})",
                                field.value,
                                system.as_str(),
                                spec.writeback.map_or("none", TargetSystem::as_str)
                            ),
                        );
                    }
                }
            }
            field_keys.insert(field.value.clone(), key.value.clone());
        }
        for spec in fields.iter().flat_map(|f| f.valid.values()) {
            if spec.writeback == Some(system) && !field_keys.contains_key(&spec.name) {
                complete = false;
                p.push(
                    K::Incomplete,
                    &t.loc,
                    format!(
                        "{what} ({}) has no field key for `{}`, which is written back to {}",
                        system.as_str(),
                        spec.name,
                        system.as_str()
                    ),
                );
            }
        }
        out.insert(
            name.clone(),
            Target {
                name: name.as_str().into(),
                system,
                stage_names: stage_names.into_iter().collect(),
                field_keys: field_keys.into_iter().collect(),
            },
        );
    }
    complete.then_some(out)
}

fn non_empty_remote(what: &str, local: &At<String>, remote: &At<String>, p: &mut Problems) -> bool {
    if remote.value.trim().is_empty() {
        p.push(
            K::InvalidValue,
            &remote.loc,
            format!("{what}: the remote name for `{}` is empty", local.value),
        );
        return false;
    }
    true
}

/// Regions name targets of the right system and withhold dictionary fields.
fn check_regions(d: &Drafts, p: &mut Problems) -> Option<BTreeMap<String, Region>> {
    let drafts = d.regions.as_ref()?;
    if drafts.is_empty() {
        if let Some(path) = d.paths.get(REGIONS_FILE) {
            p.push(
                K::Incomplete,
                &Loc::new(path, 1),
                "no regions declared: no application could be routed",
            );
        }
    }
    let declared_targets = d.targets.as_ref();
    let fields = d.fields.as_ref();
    let mut out = BTreeMap::new();
    let mut complete = true;
    for (name, r) in drafts {
        let what = format!("region `{name}`");
        let target = |key: &str, t: &Option<At<String>>, system: TargetSystem, p: &mut Problems| {
            let t = t.as_ref()?;
            let declared = declared_targets?;
            match declared.get(&t.value) {
                None => {
                    p.push(
                        K::UnknownTarget,
                        &t.loc,
                        format!(
                            "{what}: `{key}` names unknown target `{}` (declared targets: {})",
                            t.value,
                            declared.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                    None
                }
                Some(td) if td.system.is_some_and(|s| s != system) => {
                    p.push(
                        K::UnknownTarget,
                        &t.loc,
                        format!(
                            "{what}: `{key}` names target `{}`, which is not an {} target",
                            t.value,
                            system.as_str()
                        ),
                    );
                    None
                }
                Some(_) => Some(t.value.clone()),
            }
        };
        let ats = target("ats", &r.ats, TargetSystem::Ats, p);
        let hris = target("hris", &r.hris, TargetSystem::Hris, p);
        let mut withhold = Vec::new();
        for w in &r.withhold {
            if fields.is_some_and(|f| !f.declared.contains_key(&w.value)) {
                complete = false;
                p.push(
                    K::UnknownField,
                    &w.loc,
                    format!(
                        "{what}: `withhold` names unknown field `{}` (not in the field dictionary)",
                        w.value
                    ),
                );
            }
            withhold.push(w.value.clone());
        }
        withhold.sort();
        withhold.dedup();
        let (Some(ats_target), Some(hris_target), Some(retention)) =
            (ats, hris, r.retention.clone())
        else {
            complete = false;
            continue;
        };
        out.insert(
            name.clone(),
            Region {
                name: name.clone(),
                ats_target,
                hris_target,
                withhold,
                retention,
            },
        );
    }
    complete.then_some(out)
}
