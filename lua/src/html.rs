//! `text/html` for DataFrames: a table with its shape and dtypes, cut in the middle when long.

use polars::prelude::*;

const MAX_ROWS: usize = 20;
const MAX_COLS: usize = 30;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Row and column positions to show, with `None` where the cut goes.
fn visible(n: usize, max: usize) -> Vec<Option<usize>> {
    if n <= max {
        return (0..n).map(Some).collect();
    }
    let head = max / 2;
    let tail = max - head;
    (0..head)
        .map(Some)
        .chain(std::iter::once(None))
        .chain((n - tail..n).map(Some))
        .collect()
}

fn cell(column: &Column, row: usize) -> String {
    match column.get(row) {
        Ok(AnyValue::Null) => "null".into(),
        Ok(AnyValue::String(s)) => escape(s),
        Ok(v) => escape(&v.to_string()),
        Err(_) => String::new(),
    }
}

/// The HTML table for a DataFrame.
pub(crate) fn frame_html(df: &DataFrame) -> String {
    let (h, w) = df.shape();
    let cols = visible(w, MAX_COLS);
    let rows = visible(h, MAX_ROWS);
    let mut s = String::from("<div class=\"sandwich-frame\"><small>shape: (");
    s += &format!("{h}, {w})</small><table class=\"dataframe\">\n<thead><tr>");
    for c in &cols {
        match c {
            Some(i) => s += &format!("<th>{}</th>", escape(df.columns()[*i].name())),
            None => s += "<th>…</th>",
        }
    }
    s += "</tr>\n<tr>";
    for c in &cols {
        match c {
            Some(i) => {
                s += &format!(
                    "<td><i>{}</i></td>",
                    escape(&df.columns()[*i].dtype().to_string())
                )
            }
            None => s += "<td></td>",
        }
    }
    s += "</tr></thead>\n<tbody>\n";
    for r in &rows {
        s += "<tr>";
        for c in &cols {
            match (r, c) {
                (Some(r), Some(c)) => s += &format!("<td>{}</td>", cell(&df.columns()[*c], *r)),
                _ => s += "<td>…</td>",
            }
        }
        s += "</tr>\n";
    }
    s += "</tbody></table></div>";
    s
}
