//! Step 5 of the decision order: may the application move from one stage to another, on whose
//! authority? The ordering of the checks is DESIGN.md's and matters: `stale` before
//! `terminal_state` before `forbidden_transition` before `unauthorized_source`.

use crate::model::{RejectReason, SourceSystem};
use crate::policy::{Policy, Transition};

/// What a stage request amounts to.
#[derive(Debug, Clone, PartialEq)]
pub enum StageStep<'p> {
    /// A listed transition, asserted by one of its authorities.
    Move(&'p Transition),
    /// Both stages ranked and the target not above the current one.
    Stale,
    /// Refused; `owner` is whom a divergence alert goes to (the transition's owner when the
    /// transition is listed, else the owner of the current stage).
    Refuse {
        reason: RejectReason,
        detail: String,
        owner: String,
    },
}

/// Classifies the request `from` → `to` asserted by `source`. Both stages must be in `policy`.
pub fn stage_step<'p>(
    from: &str,
    to: &str,
    source: SourceSystem,
    policy: &'p Policy,
) -> StageStep<'p> {
    let (Some(f), Some(t)) = (policy.stages.get(from), policy.stages.get(to)) else {
        return StageStep::Refuse {
            reason: RejectReason::UnknownStage,
            detail: format!("stage {from:?} or {to:?} is not in the policy"),
            owner: String::new(),
        };
    };
    if let (Some(rf), Some(rt)) = (f.rank, t.rank) {
        if rt <= rf {
            return StageStep::Stale;
        }
    }
    let listed = policy.transition(from, to);
    let refuse = |reason, detail: String, owner: &str| StageStep::Refuse {
        reason,
        detail,
        owner: owner.to_owned(),
    };
    match listed {
        None if f.terminal => refuse(
            RejectReason::TerminalState,
            format!("{from} is terminal; {from} -> {to} is not one of its exits"),
            &f.owner,
        ),
        None => refuse(
            RejectReason::ForbiddenTransition,
            format!("{from} -> {to} is not a transition of the policy"),
            &f.owner,
        ),
        Some(tr) if !tr.authority.contains(&source) => refuse(
            RejectReason::UnauthorizedSource,
            format!(
                "{from} -> {to} may only be asserted by {}, not {source}",
                tr.authority
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("/")
            ),
            &tr.owner,
        ),
        Some(tr) => StageStep::Move(tr),
    }
}
