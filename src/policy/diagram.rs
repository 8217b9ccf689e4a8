//! The state machine as a picture for recruiting-ops: Mermaid (renders in GitHub and most
//! wikis) or Graphviz DOT. Nodes carry rank, owner and dwell SLA; edges carry the authorities
//! and the owner of the transition.
//!
//! Invariant: the output is a pure function of the policy: stages in rank order (unranked
//! ones after, by name), edges in the policy's canonical transition order, so a diff of two
//! diagrams shows exactly the policy change.

use std::fmt::Write as _;

use super::duration::format_duration;
use super::types::{Policy, Stage, Transition};

/// The diagram languages [`diagram`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagramFormat {
    Mermaid,
    Dot,
}

impl DiagramFormat {
    /// `mermaid` / `dot`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiagramFormat::Mermaid => "mermaid",
            DiagramFormat::Dot => "dot",
        }
    }

    /// The inverse of [`DiagramFormat::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mermaid" => Some(DiagramFormat::Mermaid),
            "dot" => Some(DiagramFormat::Dot),
            _ => None,
        }
    }
}

/// Renders `policy`'s state machine in `format`.
pub fn diagram(policy: &Policy, format: DiagramFormat) -> String {
    let mut stages: Vec<&Stage> = policy.stages.values().collect();
    stages.sort_by(|a, b| {
        (a.rank.unwrap_or(u32::MAX), &a.name).cmp(&(b.rank.unwrap_or(u32::MAX), &b.name))
    });
    match format {
        DiagramFormat::Mermaid => mermaid(policy, &stages),
        DiagramFormat::Dot => dot(policy, &stages),
    }
}

fn stage_facts(s: &Stage) -> Vec<String> {
    let mut facts = Vec::new();
    if let Some(rank) = s.rank {
        facts.push(format!("rank {rank}"));
    }
    facts.push(format!("owner {}", s.owner));
    match s.dwell_sla_secs {
        Some(secs) => facts.push(format!("dwell SLA {}", format_duration(secs))),
        None if s.terminal => facts.push("terminal".into()),
        None => {}
    }
    facts
}

fn authorities(t: &Transition) -> String {
    t.authority
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Mermaid breaks on `:` and `;` inside labels; policy text is free-form, so neutralise them.
fn mermaid_text(s: &str) -> String {
    s.replace([':', ';'], " ").replace('"', "'")
}

fn mermaid(policy: &Policy, stages: &[&Stage]) -> String {
    let mut out = String::from("stateDiagram-v2\n");
    let _ = writeln!(
        out,
        "    %% hirestate policy {} ({})",
        mermaid_text(policy.version()),
        policy.digest()
    );
    for s in stages {
        let _ = writeln!(
            out,
            "    {} : {}",
            s.name,
            mermaid_text(&stage_facts(s).join(" · "))
        );
    }
    let _ = writeln!(out, "    [*] --> {}", policy.initial_stage);
    for t in &policy.transitions {
        let _ = writeln!(
            out,
            "    {} --> {} : {} · owner {}",
            t.from,
            t.to,
            authorities(t),
            mermaid_text(&t.owner)
        );
    }
    for s in stages.iter().filter(|s| s.terminal) {
        let _ = writeln!(out, "    {} --> [*]", s.name);
    }
    out
}

fn dot_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn dot(policy: &Policy, stages: &[&Stage]) -> String {
    let mut out = String::from("digraph hirestate_policy {\n");
    let _ = writeln!(
        out,
        "    label=\"hirestate policy {} ({})\";",
        dot_text(policy.version()),
        policy.digest()
    );
    out.push_str("    rankdir=LR;\n    node [shape=box, style=rounded];\n");
    let _ = writeln!(out, "    \"__start\" [shape=point, label=\"\"];");
    for s in stages {
        let shape = if s.terminal { ", peripheries=2" } else { "" };
        let mut label = dot_text(&s.name);
        for fact in stage_facts(s) {
            label.push_str("\\n");
            label.push_str(&dot_text(&fact));
        }
        let _ = writeln!(
            out,
            "    \"{}\" [label=\"{label}\"{shape}];",
            dot_text(&s.name)
        );
    }
    let _ = writeln!(
        out,
        "    \"__start\" -> \"{}\";",
        dot_text(&policy.initial_stage)
    );
    for t in &policy.transitions {
        let _ = writeln!(
            out,
            "    \"{}\" -> \"{}\" [label=\"{}\\nowner {}\"];",
            dot_text(&t.from),
            dot_text(&t.to),
            dot_text(&authorities(t)),
            dot_text(&t.owner)
        );
    }
    out.push_str("}\n");
    out
}
