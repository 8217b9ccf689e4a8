//! One generic picture, drawn with plotters' SVG backend: stacked bars over named categories,
//! vertical or horizontal, each bar labelled with a caller-given total. Every KPI chart of the
//! report is one of these.
//!
//! Both axes are `f64` (categories sit at 0, 1, …), and the category labels and the legend are
//! drawn by hand rather than by plotters' mesh: plotters' discrete axes misplace a single
//! category and may thin out labels, and a legend inside the plot can cover the bars. Text goes
//! through the SVG backend, which escapes it.

use std::io;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Category labels longer than this are cut in the picture (the tables keep them whole).
const MAX_LABEL_CHARS: usize = 36;
/// Rough width of one label character at the label font size, for sizing the label area.
const CHAR_PX: u32 = 7;
const LEGEND_H: u32 = 26;
pub(super) const FONT: FontFamily<'static> = FontFamily::SansSerif;
pub(super) const INK: RGBColor = RGBColor(30, 41, 59);

/// Which way the bars grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Orientation {
    /// Categories along the bottom, values up (the latency histogram).
    Vertical,
    /// Categories down the left, values to the right (long names: targets, fields, stages).
    Horizontal,
}

/// One stacked layer: a value per category.
pub(super) struct Series {
    pub name: String,
    pub color: RGBColor,
    pub values: Vec<f64>,
}

/// What to draw. `series[k].values` and `totals` are indexed like `categories`; a missing
/// value counts as 0.
pub(super) struct BarChart {
    pub orientation: Orientation,
    pub categories: Vec<String>,
    /// Stacked in this order, from the axis outwards.
    pub series: Vec<Series>,
    /// The label at the end of each bar.
    pub totals: Vec<String>,
    /// The value axis' description.
    pub value_axis: String,
    /// A fixed end of the value axis (100 for percentages); `None`: fit the data.
    pub value_max: Option<f64>,
}

/// Renders `chart` as one `<svg>` element.
///
/// # Errors
/// A drawing error of plotters (none is expected when drawing into a string).
pub(super) fn render(chart: &BarChart) -> io::Result<String> {
    let mut svg = String::new();
    draw(chart, &mut svg).map_err(|e| io::Error::other(format!("drawing a chart: {e}")))?;
    Ok(svg)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(c: &BarChart, svg: &mut String) -> DrawResult {
    let n = c.categories.len();
    let labels: Vec<String> = c
        .categories
        .iter()
        .map(|s| cut(s, MAX_LABEL_CHARS))
        .collect();
    let longest = labels
        .iter()
        .map(|s| s.chars().count() as u32)
        .max()
        .unwrap_or(0);
    let width = match c.orientation {
        Orientation::Vertical => (90 + 64 * n as u32).max(760),
        Orientation::Horizontal => 760,
    };
    let keys = legend_layout(&c.series, width as i32);
    let legend_h = keys.last().map_or(0, |&(_, y)| y as u32 + LEGEND_H / 2);
    let height = match c.orientation {
        Orientation::Vertical => 340 + legend_h,
        Orientation::Horizontal => 90 + 30 * n as u32 + legend_h,
    };

    let stack = |i: usize| -> f64 {
        c.series
            .iter()
            .map(|s| s.values.get(i).copied().unwrap_or(0.0))
            .sum()
    };
    let highest = (0..n).map(stack).fold(0.0, f64::max);
    // Headroom for the total written past the end of the longest bar.
    let value_max = c
        .value_max
        .unwrap_or_else(|| (highest * 1.15).ceil())
        .max(1.0);

    let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    legend(&root, &c.series, &keys)?;

    let orientation = c.orientation;
    let last = n.max(1) as f64 - 1.0;
    // (category index, value) → (x, y); horizontal charts list the categories top to bottom.
    let at = move |cat: f64, value: f64| match orientation {
        Orientation::Vertical => (cat, value),
        Orientation::Horizontal => (value, last - cat),
    };
    let categories = -0.5..last + 0.5;
    let values = 0.0..value_max;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(12).margin_top(12 + legend_h);
    let mut chart = match orientation {
        Orientation::Vertical => builder
            .x_label_area_size(34)
            .y_label_area_size(64)
            .build_cartesian_2d(categories, values)?,
        Orientation::Horizontal => builder
            .margin_right(110)
            .x_label_area_size(44)
            .y_label_area_size(20 + CHAR_PX * longest)
            .build_cartesian_2d(values, categories)?,
    };

    let tick = |v: &f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            String::new()
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.label_style((FONT, 14).into_font().color(&INK))
        .axis_desc_style((FONT, 14).into_font().color(&INK))
        .light_line_style(RGBColor(241, 245, 249))
        .max_light_lines(1);
    match orientation {
        Orientation::Vertical => mesh
            .x_labels(0)
            .disable_x_mesh()
            .y_label_formatter(&tick)
            .y_desc(c.value_axis.as_str()),
        Orientation::Horizontal => mesh
            .y_labels(0)
            .disable_y_mesh()
            .x_label_formatter(&tick)
            .x_desc(c.value_axis.as_str()),
    };
    mesh.draw()?;

    let mut base = vec![0.0; n];
    for s in &c.series {
        let value = |i: usize| s.values.get(i).copied().unwrap_or(0.0);
        chart.draw_series((0..n).filter(|&i| value(i) > 0.0).map(|i| {
            let cat = i as f64;
            Rectangle::new(
                [at(cat - 0.35, base[i]), at(cat + 0.35, base[i] + value(i))],
                s.color.filled(),
            )
        }))?;
        for (i, b) in base.iter_mut().enumerate() {
            *b += value(i);
        }
    }

    let label = TextStyle::from((FONT, 14).into_font()).color(&INK);
    for (i, name) in labels.iter().enumerate() {
        let (x, y) = chart.backend_coord(&at(i as f64, 0.0));
        let (pos, xy) = match orientation {
            Orientation::Vertical => (Pos::new(HPos::Center, VPos::Top), (x, y + 8)),
            Orientation::Horizontal => (Pos::new(HPos::Right, VPos::Center), (x - 8, y)),
        };
        root.draw(&Text::new(name.clone(), xy, label.pos(pos)))?;
        let Some(total) = c.totals.get(i) else {
            continue;
        };
        let (x, y) = chart.backend_coord(&at(i as f64, stack(i).min(value_max)));
        let (pos, xy) = match orientation {
            Orientation::Vertical => (Pos::new(HPos::Center, VPos::Bottom), (x, y - 4)),
            Orientation::Horizontal => (Pos::new(HPos::Left, VPos::Center), (x + 6, y)),
        };
        root.draw(&Text::new(total.clone(), xy, label.pos(pos)))?;
    }
    root.present()?;
    Ok(())
}

/// Where each series' key goes (the centre-left of its swatch): rows of swatches and names
/// above the plot, wrapped at `width`; none for a single series.
fn legend_layout(series: &[Series], width: i32) -> Vec<(i32, i32)> {
    if series.len() < 2 {
        return Vec::new();
    }
    let (mut x, mut y) = (16, LEGEND_H as i32 / 2);
    let mut keys = Vec::with_capacity(series.len());
    for s in series {
        let w = 40 + CHAR_PX as i32 * cut(&s.name, MAX_LABEL_CHARS).chars().count() as i32;
        if x > 16 && x + w > width {
            (x, y) = (16, y + LEGEND_H as i32);
        }
        keys.push((x, y));
        x += w;
    }
    keys
}

fn legend(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    series: &[Series],
    keys: &[(i32, i32)],
) -> DrawResult {
    let style = TextStyle::from((FONT, 14).into_font())
        .color(&INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (s, &(x, y)) in series.iter().zip(keys) {
        root.draw(&Rectangle::new(
            [(x, y - 6), (x + 12, y + 6)],
            s.color.filled(),
        ))?;
        let name = cut(&s.name, MAX_LABEL_CHARS);
        root.draw(&Text::new(name, (x + 18, y), style.clone()))?;
    }
    Ok(())
}

/// `s`, cut to `max` characters with an ellipsis.
pub(super) fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}
