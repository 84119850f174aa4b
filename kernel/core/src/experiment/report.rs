//! The experiment's HTML report, one self-contained file: titled tables (arms in the spec's
//! order, numbers rounded for reading), the PGR chart with its intervals, the assistance
//! comparison and the training curves (smoothed, the raw trace faint), drawn as inline SVG so
//! that it opens anywhere without a network or a script.

use std::fmt::Write;

use polars::prelude::*;

use super::runner::Experiment;
use crate::{column_floats, column_strings, Error, Result};

const PALETTE: [&str; 10] = [
    "#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6",
    "#9d755d", "#bab0ac",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A number for reading: 3 decimals, ±∞, "—" for NaN.
pub fn fmt_number(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v == f64::INFINITY {
        "∞".into()
    } else if v == f64::NEG_INFINITY {
        "−∞".into()
    } else {
        format!("{v:.3}")
    }
}

/// A DataFrame as an HTML table with a title; floats rounded.
fn table(title: &str, df: &DataFrame) -> Result<String> {
    let mut out = format!("<h2>{}</h2><table><tr>", escape(title));
    for c in df.get_column_names() {
        write!(out, "<th>{}</th>", escape(c)).expect("a String");
    }
    out.push_str("</tr>");
    let cols: Vec<Vec<String>> = df
        .columns()
        .iter()
        .map(|c| {
            if c.dtype().is_float() {
                column_floats("report", df, c.name())
                    .map(|v| v.into_iter().map(fmt_number).collect())
            } else {
                let s = c
                    .cast(&DataType::String)
                    .map_err(Error::polars("report", "formatting a column"))?;
                Ok(s.str()
                    .expect("cast to strings")
                    .iter()
                    .map(|v| v.unwrap_or("").to_string())
                    .collect())
            }
        })
        .collect::<Result<_>>()?;
    for r in 0..df.height() {
        out.push_str("<tr>");
        for c in &cols {
            write!(out, "<td>{}</td>", escape(&c[r])).expect("a String");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    Ok(out)
}

/// Horizontal PGR bars with their intervals: arm names on the left never overlap however many
/// arms there are. Unbounded intervals are drawn to the edge with an arrow.
fn pgr_chart(pgr: &DataFrame) -> Result<String> {
    let arms = column_strings("report", pgr, "arm")?;
    let v = column_floats("report", pgr, "pgr")?;
    let lo = column_floats("report", pgr, "lower")?;
    let hi = column_floats("report", pgr, "upper")?;
    let finite = |x: &f64| x.is_finite();
    let (mut xmin, mut xmax) = (0.0f64, 1.0f64);
    for x in v.iter().chain(&lo).chain(&hi).filter(|x| finite(x)) {
        xmin = xmin.min(*x);
        xmax = xmax.max(*x);
    }
    let (xmin, xmax) = (xmin - 0.05 * (xmax - xmin), xmax + 0.05 * (xmax - xmin));
    let (left, width, row) = (170.0, 420.0, 28.0);
    let height = 30.0 + row * arms.len() as f64 + 30.0;
    let x = |t: f64| left + width * (t.clamp(xmin, xmax) - xmin) / (xmax - xmin);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="12">"#,
        left + width + 20.0
    );
    for t in [0.0, 0.5, 1.0] {
        if t >= xmin && t <= xmax {
            write!(
                s,
                r##"<line x1="{0:.1}" y1="20" x2="{0:.1}" y2="{1:.1}" stroke="{2}" stroke-dasharray="{3}"/><text x="{0:.1}" y="{4:.1}" text-anchor="middle">{5}</text>"##,
                x(t),
                height - 25.0,
                if t == 0.0 { "#333" } else { "#bbb" },
                if t == 0.0 { "" } else { "3,3" },
                height - 10.0,
                if t == 0.0 { "0 (weak)" } else if t == 1.0 { "1 (ceiling)" } else { "0.5" }
            )
            .expect("a String");
        }
    }
    for (i, arm) in arms.iter().enumerate() {
        let y = 25.0 + row * i as f64;
        write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + row / 2.0,
            escape(arm)
        )
        .expect("a String");
        if v[i].is_finite() {
            let (a, b) = (x(0.0).min(x(v[i])), x(0.0).max(x(v[i])));
            write!(
                s,
                r##"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#4c78a8"/>"##,
                y + 5.0,
                (b - a).max(1.0),
                row - 12.0
            )
            .expect("a String");
        }
        if !lo[i].is_nan() && !hi[i].is_nan() {
            let mid = y + row / 2.0 - 1.0;
            write!(
                s,
                r##"<line x1="{:.1}" y1="{mid:.1}" x2="{:.1}" y2="{mid:.1}" stroke="#000" stroke-width="1.5"/>"##,
                x(lo[i]),
                x(hi[i])
            )
            .expect("a String");
            for (end, open) in [(lo[i], lo[i].is_infinite()), (hi[i], hi[i].is_infinite())] {
                let mark = match (open, end > 0.0) {
                    (false, _) => '|',
                    (true, false) => '◂',
                    (true, true) => '▸',
                };
                write!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{mark}</text>"#,
                    x(end),
                    mid + 4.0
                )
                .expect("a String");
            }
        }
    }
    s.push_str("</svg>");
    Ok(s)
}

/// Exponential moving average (weight `alpha` on the newest value), as TensorBoard smooths.
fn smooth(v: &[f64], alpha: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len());
    let mut m = f64::NAN;
    for &x in v {
        m = if m.is_nan() {
            x
        } else {
            alpha * x + (1.0 - alpha) * m
        };
        out.push(m);
    }
    out
}

/// Training loss against the step, one colour per arm (the spec's order), the smoothed curve
/// over the faint raw trace.
fn curves_chart(curves: &DataFrame, arms: &[String], seed: i64) -> Result<String> {
    let arm_col = column_strings("report", curves, "arm")?;
    let seeds = column_floats("report", curves, "seed")?;
    let steps = column_floats("report", curves, "step")?;
    let loss = column_floats("report", curves, "loss")?;
    let series: Vec<(String, Vec<(f64, f64)>)> = arms
        .iter()
        .map(|a| {
            let pts = (0..arm_col.len())
                .filter(|&i| &arm_col[i] == a && seeds[i] as i64 == seed && loss[i].is_finite())
                .map(|i| (steps[i], loss[i]))
                .collect();
            (a.clone(), pts)
        })
        .filter(|(_, p): &(String, Vec<(f64, f64)>)| !p.is_empty())
        .collect();
    if series.is_empty() {
        return Ok(String::new());
    }
    let all = || series.iter().flat_map(|(_, p)| p.iter());
    let xmax = all().map(|p| p.0).fold(1.0, f64::max);
    let ymin = all().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let mut ymax = all().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if ymax <= ymin {
        ymax = ymin + 1.0;
    }
    let (w, h, left, right, top, bottom) = (720.0, 300.0, 55.0, 170.0, 10.0, 35.0);
    let x = |v: f64| left + (w - left - right) * v / xmax;
    let y = |v: f64| top + (h - top - bottom) * (ymax - v) / (ymax - ymin);
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><line x1="{left}" y1="{0}" x2="{1}" y2="{0}" stroke="#333"/><line x1="{left}" y1="{top}" x2="{left}" y2="{0}" stroke="#333"/>"##,
        h - bottom,
        w - right
    );
    for t in [ymin, (ymin + ymax) / 2.0, ymax] {
        write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{t:.3}</text>"#,
            left - 5.0,
            y(t) + 4.0
        )
        .expect("a String");
    }
    write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">optimizer step (of {xmax})</text>"#,
        (left + w - right) / 2.0,
        h - 8.0
    )
    .expect("a String");
    for (k, (arm, pts)) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let line = |ys: &[f64]| {
            pts.iter()
                .zip(ys)
                .map(|(p, v)| format!("{:.1},{:.1}", x(p.0), y(*v)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let raw: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let alpha = (10.0 / raw.len() as f64).clamp(0.05, 1.0);
        write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-opacity="0.25" stroke-width="1" points="{}"/><polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            line(&raw),
            line(&smooth(&raw, alpha))
        )
        .expect("a String");
        let ly = top + 18.0 * k as f64;
        write!(
            s,
            r#"<rect x="{:.1}" y="{ly:.1}" width="12" height="12" fill="{color}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            w - right + 12.0,
            w - right + 30.0,
            ly + 10.0,
            escape(arm)
        )
        .expect("a String");
    }
    s.push_str("</svg>");
    Ok(s)
}

/// The assistance comparison, when both novice arms ran: the same novices on the same items
/// with and without the assistant — their labels' accuracy, the strong model trained on each,
/// and the assisted arm's PGR against the unassisted crowd.
pub fn assistance_table(exp: &Experiment) -> Result<Option<DataFrame>> {
    let arms = exp.arms();
    if !(arms.iter().any(|a| a == "assisted_novices")
        && arms.iter().any(|a| a == "unassisted_novices"))
    {
        return Ok(None);
    }
    let sup = exp.supervision()?;
    let acc = exp.accuracy()?;
    let lookup = |df: &DataFrame, arm: &str, col: &str, metric: Option<&str>| -> Result<f64> {
        let a = column_strings("report", df, "arm")?;
        let v = column_floats("report", df, col)?;
        let m = match metric {
            Some(_) => column_strings("report", df, "metric")?,
            None => vec![String::new(); a.len()],
        };
        Ok((0..a.len())
            .find(|&i| a[i] == arm && metric.is_none_or(|x| m[i] == x))
            .map_or(f64::NAN, |i| v[i]))
    };
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    for (what, col, metric, table) in [
        ("label accuracy on B", "mean", Some("label_accuracy"), &sup),
        (
            "test accuracy of the strong model trained on them",
            "accuracy",
            None,
            &acc,
        ),
    ] {
        rows.push((
            what.to_string(),
            lookup(table, "unassisted_novices", col, metric)?,
            lookup(table, "assisted_novices", col, metric)?,
        ));
    }
    let pgr = exp.pgr(Some("unassisted_novices"))?;
    let p = lookup(&pgr, "assisted_novices", "pgr", None)?;
    rows.push((
        "PGR of assisted against the unassisted crowd".into(),
        0.0,
        p,
    ));
    df!(
        "measure" => rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        "unassisted" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "assisted" => rows.iter().map(|r| r.2).collect::<Vec<_>>()
    )
    .map(Some)
    .map_err(Error::polars("report", "building the assistance table"))
}

/// One part of the report, rendered as HTML (a notebook, the file) or text (a terminal).
enum Section {
    /// A paragraph.
    Text(String),
    /// A titled table; floats rounded for reading (the DataFrames keep full precision).
    Table(String, DataFrame),
    /// A titled chart: inline SVG, and what a terminal shows instead.
    Chart(String, String),
}

/// The report's sections, in order: the one source of the HTML file, the notebook display and
/// the terminal text.
fn sections(exp: &Experiment) -> Result<Vec<Section>> {
    let pgr = exp.pgr(None)?;
    let spec = &exp.spec;
    let level = (spec.level * 100.0).round();
    let mut out = vec![
        Section::Text(format!(
            "{} items, {} classes; seeds {:?}; each seed: {:.0}% test, then halves A (weak) and B (strong arms). Intervals: {level}% over seeds (Fieller's for PGR, Student's t for differences). Head initialisation: {:?}.",
            exp.task.height(),
            exp.classes,
            spec.seeds,
            spec.split.test * 100.0,
            spec.head_init
        )),
        Section::Table(
            "Test accuracy by arm (mean and sd over seeds)".into(),
            exp.accuracy()?,
        ),
    ];
    let chart = (pgr.height() > 0).then(|| pgr_chart(&pgr)).transpose()?;
    out.push(Section::Table(
        format!("Performance gap recovered against the weak model ({level}% interval over seeds)"),
        pgr,
    ));
    if let Some(svg) = chart {
        out.push(Section::Chart(
            "PGR by arm: the estimate, and its interval as a whisker (arms in the spec's order)"
                .into(),
            svg,
        ));
    }
    if let Some(a) = assistance_table(exp)? {
        out.push(Section::Table(
            "Assistance: the same novices on the same items, with and without the model".into(),
            a,
        ));
    }
    let sup = exp.supervision()?;
    if sup.height() > 0 {
        out.push(Section::Table(
            "Quality of each arm's supervision on B (mean over seeds)".into(),
            sup,
        ));
    }
    if let Some(curves) = &exp.curves {
        let first = spec.seeds[0] as i64;
        out.push(Section::Chart(
            format!("Training loss per step (seed {first}; smoothed, raw trace faint)"),
            curves_chart(curves, &exp.all_arms(), first)?,
        ));
    }
    Ok(out)
}

/// Styles scoped to the report's element, so that a notebook's page keeps its own.
const STYLE: &str = ".sandwich-report{font-family:sans-serif;max-width:60em}.sandwich-report table{border-collapse:collapse;margin-bottom:1em}.sandwich-report td,.sandwich-report th{border:1px solid #ccc;padding:4px 8px;text-align:right}.sandwich-report td:first-child,.sandwich-report th:first-child{text-align:left}";

/// The report rendered from one computation of its sections: an HTML fragment (one `div`,
/// styles scoped to it, charts as inline SVG, no script) — what a notebook shows and the body
/// of the HTML file — and text for a terminal (the same titled tables, rounded as in the HTML;
/// charts named, since they are drawn in a notebook and in the file).
pub struct Rendered {
    pub html: String,
    pub text: String,
}

/// The report, rendered (see [`Rendered`]).
pub fn render(exp: &Experiment) -> Result<Rendered> {
    let mut html = format!(
        "<div class=\"sandwich-report\"><style>{STYLE}</style><h1>{}</h1>",
        escape(&exp.name)
    );
    let mut text = format!("{}\n", exp.name);
    for s in sections(exp)? {
        match s {
            Section::Text(t) => {
                write!(html, "<p>{}</p>", escape(&t)).expect("a String");
                writeln!(text, "{t}\n").expect("a String");
            }
            Section::Table(title, df) => {
                html.push_str(&table(&title, &df)?);
                writeln!(text, "{title}\n{}\n", rounded(&df)?).expect("a String");
            }
            Section::Chart(title, svg) => {
                write!(html, "<h2>{}</h2>{svg}", escape(&title)).expect("a String");
                writeln!(
                    text,
                    "[chart: {title} (in a notebook or the HTML report)]\n"
                )
                .expect("a String");
            }
        }
    }
    html.push_str("</div>");
    Ok(Rendered { html, text })
}

/// The whole report as one self-contained HTML document.
pub fn render_html(exp: &Experiment) -> Result<String> {
    Ok(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body style=\"margin:2em\">{}</body></html>\n",
        escape(&exp.name),
        render(exp)?.html
    ))
}

/// Float columns rounded to 3 decimals, for reading.
fn rounded(df: &DataFrame) -> Result<DataFrame> {
    let floats: Vec<Expr> = df
        .columns()
        .iter()
        .filter(|c| c.dtype().is_float())
        .map(|c| col(c.name().clone()).round(3, RoundMode::HalfToEven))
        .collect();
    df.clone()
        .lazy()
        .with_columns(floats)
        .collect()
        .map_err(Error::polars("report", "rounding a table"))
}
