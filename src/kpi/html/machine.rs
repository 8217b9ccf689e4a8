//! The policy's state machine as an SVG picture, drawn with plotters' primitives: every stage a
//! box, every transition an arrow, terminal stages with a double border, a dot marking the
//! initial stage.
//!
//! Layout (a pure function of the policy, like `hirestate policy diagram`): ranked stages in
//! rank order on the top row, unranked ones (by name) spread along a row below. An arrow
//! between neighbours on a row is straight, one that skips stages arcs above its row (below,
//! for the lower row), one between rows is straight; a pair of opposite arrows is drawn side by
//! side. Arrows down to the lower row are light, arrows back (up a row, or to a lower rank) are
//! dashed. Names go through the SVG backend, which escapes them.

use std::collections::BTreeMap;
use std::io;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::policy::{format_duration, Policy, Stage};

use super::bars::{cut, FONT, INK};

const BOX_H: i32 = 48;
const GAP_X: i32 = 46;
/// Vertical room between the two rows, for the fan of arrows.
const ROW_GAP: i32 = 150;
/// Left of the first box: room for the initial-stage marker.
const LEFT: i32 = 64;
const LEGEND_H: i32 = 44;
const MAX_NAME_CHARS: usize = 28;

const FORWARD: RGBColor = RGBColor(30, 41, 59);
const DOWN: RGBColor = RGBColor(148, 163, 184);
const BACK: RGBColor = RGBColor(194, 65, 12);
const STAGE_FILL: RGBColor = RGBColor(238, 242, 255);
const TERMINAL_FILL: RGBColor = RGBColor(241, 245, 249);

/// Where one stage's box is: its centre and half sizes.
#[derive(Clone, Copy)]
struct Node {
    x: i32,
    y: i32,
    half_w: i32,
    row: usize,
    col: usize,
}

/// How an arrow is drawn.
#[derive(Clone, Copy)]
enum Kind {
    Forward,
    Down,
    Back,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Renders `policy`'s stages and transitions as one `<svg>` element.
///
/// # Errors
/// A drawing error of plotters (none is expected when drawing into a string).
pub(super) fn render(policy: &Policy) -> io::Result<String> {
    let mut svg = String::new();
    draw(policy, &mut svg)
        .map_err(|e| io::Error::other(format!("drawing the state machine: {e}")))?;
    Ok(svg)
}

fn draw(policy: &Policy, svg: &mut String) -> DrawResult {
    let mut stages: Vec<&Stage> = policy.stages.values().collect();
    stages.sort_by(|a, b| {
        (a.rank.unwrap_or(u32::MAX), &a.name).cmp(&(b.rank.unwrap_or(u32::MAX), &b.name))
    });
    let (ranked, unranked): (Vec<&Stage>, Vec<&Stage>) =
        stages.into_iter().partition(|s| s.rank.is_some());
    let rows: Vec<Vec<&Stage>> = [ranked, unranked]
        .into_iter()
        .filter(|r| !r.is_empty())
        .collect();
    let widest_row = rows.iter().map(Vec::len).max().unwrap_or(0).max(1) as i32;
    let longest_name = policy
        .stages
        .keys()
        .map(|n| n.chars().count().min(MAX_NAME_CHARS))
        .max()
        .unwrap_or(0) as i32;
    let box_w = (longest_name * 9 + 28).max(104);
    let content_w = widest_row * (box_w + GAP_X) - GAP_X;

    // Arcs over stages they skip need headroom above the top row (and below the lower one).
    let arc_room = |row: usize| {
        let cols: BTreeMap<&str, usize> = rows[row]
            .iter()
            .enumerate()
            .map(|(c, s)| (s.name.as_str(), c))
            .collect();
        policy
            .transitions
            .iter()
            .filter_map(|t| Some(cols.get(t.from.as_str())?.abs_diff(*cols.get(&*t.to)?)))
            .filter(|&span| span >= 2)
            .map(|span| arc_height(span) + 14)
            .max()
            .unwrap_or(0)
    };
    let top = 24 + if rows.is_empty() { 0 } else { arc_room(0) };
    let below = if rows.len() > 1 { arc_room(1) } else { 0 };

    let mut nodes: BTreeMap<&str, Node> = BTreeMap::new();
    for (r, row) in rows.iter().enumerate() {
        let y = top + BOX_H / 2 + r as i32 * (BOX_H + ROW_GAP);
        for (c, s) in row.iter().enumerate() {
            let x = if row.len() as i32 == widest_row {
                LEFT + c as i32 * (box_w + GAP_X) + box_w / 2
            } else {
                LEFT + content_w * (c as i32 + 1) / (row.len() as i32 + 1)
            };
            let node = Node {
                x,
                y,
                half_w: box_w / 2,
                row: r,
                col: c,
            };
            nodes.insert(s.name.as_str(), node);
        }
    }
    let width = (LEFT + content_w + 32).max(560);
    let rows_h = rows.len() as i32 * BOX_H + (rows.len() as i32 - 1).max(0) * ROW_GAP;
    let height = top + rows_h + below + 16 + LEGEND_H;

    let root = SVGBackend::with_string(svg, (width as u32, height as u32)).into_drawing_area();
    root.fill(&WHITE)?;

    for t in &policy.transitions {
        let (Some(&from), Some(&to)) = (nodes.get(t.from.as_str()), nodes.get(&*t.to)) else {
            continue;
        };
        let two_way = policy.transition(&t.to, &t.from).is_some() && *t.from != *t.to;
        arrow(&root, from, to, two_way, rows.len() == 1)?;
    }
    for s in policy.stages.values() {
        if let Some(&node) = nodes.get(s.name.as_str()) {
            stage_box(&root, s, node)?;
        }
    }
    if let Some(&init) = nodes.get(&*policy.initial_stage) {
        start_marker(&root, init)?;
    }
    legend(&root, height - LEGEND_H + 8)?;
    root.present()?;
    Ok(())
}

fn arc_height(span: usize) -> i32 {
    18 + 12 * (span as i32 - 2)
}

fn kind(from: Node, to: Node) -> Kind {
    if to.row > from.row {
        Kind::Down
    } else if to.row < from.row || to.col < from.col {
        Kind::Back
    } else {
        Kind::Forward
    }
}

/// One transition: a path from `from`'s box to `to`'s, ending in an arrowhead.
fn arrow(root: &Area<'_>, from: Node, to: Node, two_way: bool, single_row: bool) -> DrawResult {
    let kind = kind(from, to);
    let top_of = |n: Node| n.y - BOX_H / 2;
    let bottom_of = |n: Node| n.y + BOX_H / 2;
    let points: Vec<(i32, i32)> = if from.x == to.x && from.y == to.y {
        // A stage that may move to itself: a small loop on its top-right corner.
        let (x, y) = (from.x + from.half_w, top_of(from));
        vec![
            (x - 24, y),
            (x - 24, y - 16),
            (x + 14, y - 16),
            (x + 14, from.y - 8),
            (x, from.y - 8),
        ]
    } else if from.row == to.row && from.col.abs_diff(to.col) >= 2 {
        let dir = if to.col > from.col { 1 } else { -1 };
        let up = from.row == 0 || single_row;
        let back = if dir < 0 { 6 } else { 0 };
        let (edge, lift) = if up {
            (
                top_of(from),
                -(arc_height(from.col.abs_diff(to.col)) + back),
            )
        } else {
            (
                bottom_of(from),
                arc_height(from.col.abs_diff(to.col)) + back,
            )
        };
        let (x0, x1) = (from.x + 10 * dir, to.x - 10 * dir);
        vec![(x0, edge), (x0, edge + lift), (x1, edge + lift), (x1, edge)]
    } else {
        // Straight, centre to centre, moved aside when the opposite arrow exists too, then cut
        // at both boxes' borders.
        let (dx, dy) = ((to.x - from.x) as f64, (to.y - from.y) as f64);
        let len = dx.hypot(dy).max(1.0);
        let shift = if two_way { 5.0 } else { 0.0 };
        let (ox, oy) = (-dy / len * shift, dx / len * shift);
        let a = (from.x as f64 + ox, from.y as f64 + oy);
        let b = (to.x as f64 + ox, to.y as f64 + oy);
        vec![
            border_point(a, b, from.half_w),
            border_point(b, a, to.half_w),
        ]
    };

    let (color, width) = match kind {
        Kind::Forward => (FORWARD, 2),
        Kind::Down => (DOWN, 1),
        Kind::Back => (BACK, 2),
    };
    let style = color.stroke_width(width);
    match kind {
        Kind::Back => root.draw(&DashedPathElement::new(points.clone(), 7, 4, style))?,
        _ => root.draw(&PathElement::new(points.clone(), style))?,
    }
    let n = points.len();
    arrowhead(root, points[n - 2], points[n - 1], color)
}

/// Where the segment from `a` (a box centre) towards `b` leaves a box of half width `half_w`.
fn border_point(a: (f64, f64), b: (f64, f64), half_w: i32) -> (i32, i32) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let tx = if dx == 0.0 {
        f64::INFINITY
    } else {
        half_w as f64 / dx.abs()
    };
    let ty = if dy == 0.0 {
        f64::INFINITY
    } else {
        (BOX_H / 2) as f64 / dy.abs()
    };
    let t = tx.min(ty).min(1.0);
    ((a.0 + dx * t).round() as i32, (a.1 + dy * t).round() as i32)
}

/// A filled triangle with its tip at `tip`, pointing away from `from`.
fn arrowhead(root: &Area<'_>, from: (i32, i32), tip: (i32, i32), color: RGBColor) -> DrawResult {
    let (dx, dy) = ((tip.0 - from.0) as f64, (tip.1 - from.1) as f64);
    let len = dx.hypot(dy).max(1.0);
    let (ux, uy) = (dx / len, dy / len);
    let base = (tip.0 as f64 - ux * 11.0, tip.1 as f64 - uy * 11.0);
    let corner = |side: f64| {
        (
            (base.0 - uy * 5.0 * side).round() as i32,
            (base.1 + ux * 5.0 * side).round() as i32,
        )
    };
    root.draw(&Polygon::new(
        vec![tip, corner(1.0), corner(-1.0)],
        color.filled(),
    ))?;
    Ok(())
}

fn stage_box(root: &Area<'_>, s: &Stage, n: Node) -> DrawResult {
    let (x0, y0, x1, y1) = (
        n.x - n.half_w,
        n.y - BOX_H / 2,
        n.x + n.half_w,
        n.y + BOX_H / 2,
    );
    let fill = if s.terminal {
        TERMINAL_FILL
    } else {
        STAGE_FILL
    };
    root.draw(&Rectangle::new([(x0, y0), (x1, y1)], fill.filled()))?;
    root.draw(&Rectangle::new(
        [(x0, y0), (x1, y1)],
        FORWARD.stroke_width(2),
    ))?;
    if s.terminal {
        root.draw(&Rectangle::new(
            [(x0 + 4, y0 + 4), (x1 - 4, y1 - 4)],
            FORWARD.stroke_width(1),
        ))?;
    }
    let name = TextStyle::from((FONT, 16, FontStyle::Bold).into_font())
        .color(&INK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(
        cut(&s.name, MAX_NAME_CHARS),
        (n.x, n.y - 8),
        name,
    ))?;
    let mut facts = Vec::new();
    if let Some(rank) = s.rank {
        facts.push(format!("rank {rank}"));
    }
    if let Some(sla) = s.dwell_sla_secs {
        facts.push(format!("SLA {}", format_duration(sla)));
    }
    if s.terminal {
        facts.push("terminal".to_owned());
    }
    let small = TextStyle::from((FONT, 13).into_font())
        .color(&INK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(facts.join(" · "), (n.x, n.y + 11), small))?;
    Ok(())
}

/// A dot with an arrow into the initial stage: from the left when nothing is there, else from
/// above.
fn start_marker(root: &Area<'_>, n: Node) -> DrawResult {
    let (dot, tip) = if n.col == 0 {
        let x = n.x - n.half_w;
        ((x - 34, n.y), (x, n.y))
    } else {
        let y = n.y - BOX_H / 2;
        ((n.x, y - 30), (n.x, y))
    };
    root.draw(&Circle::new(dot, 6, FORWARD.filled()))?;
    root.draw(&PathElement::new(vec![dot, tip], FORWARD.stroke_width(2)))?;
    arrowhead(root, dot, tip, FORWARD)
}

/// What the line styles and the double border mean.
fn legend(root: &Area<'_>, y: i32) -> DrawResult {
    let text = TextStyle::from((FONT, 14).into_font())
        .color(&INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let mut x = 16;
    for (label, kind) in [
        ("forward", Kind::Forward),
        ("to a stage of the lower row", Kind::Down),
        ("back (reopen)", Kind::Back),
    ] {
        let line = vec![(x, y), (x + 28, y)];
        match kind {
            Kind::Forward => root.draw(&PathElement::new(line, FORWARD.stroke_width(2)))?,
            Kind::Down => root.draw(&PathElement::new(line, DOWN.stroke_width(1)))?,
            Kind::Back => root.draw(&DashedPathElement::new(line, 7, 4, BACK.stroke_width(2)))?,
        }
        root.draw(&Text::new(label, (x + 36, y), text.clone()))?;
        x += 60 + 7 * label.len() as i32;
    }
    root.draw(&Rectangle::new(
        [(x, y - 8), (x + 22, y + 8)],
        FORWARD.stroke_width(2),
    ))?;
    root.draw(&Rectangle::new(
        [(x + 3, y - 5), (x + 19, y + 5)],
        FORWARD.stroke_width(1),
    ))?;
    root.draw(&Text::new("terminal", (x + 30, y), text))?;
    Ok(())
}
