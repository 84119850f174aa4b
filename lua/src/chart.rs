//! `sw.chart.line/bar/scatter`: the plots this field draws — curves over training steps, bars
//! with error bars (PGR with its interval), scatters — as vega-lite specs. A chart is a value:
//! a cell that ends with one shows it (vega-lite in JupyterLab, a one-line summary as text), and
//! `chart:spec()` gives the JSON for reports.

use crate::guard::{GuardedLua, GuardedMethods};
use mlua::{Lua, UserData, UserDataMethods, Value};
use polars::prelude::*;
use serde::Deserialize;
use serde_json::{json, Map};

use crate::args::{frame, required_options};
use crate::error::Error;

/// A vega-lite spec.
#[derive(Clone, Debug)]
pub struct LuaChart(pub serde_json::Value);

impl UserData for LuaChart {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.guarded_method("spec", |_, this, ()| Ok(this.0.to_string()));
        methods.guarded_meta_method("__tostring", |_, this, ()| {
            Ok(crate::display::vegalite_bundle(this.0.clone())
                .text()
                .to_string())
        });
    }
}

pub(crate) const METHODS: &[&str] = &["spec"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChartOpts {
    x: String,
    y: String,
    /// A column whose values get one color (and one line) each.
    color: Option<String>,
    title: Option<String>,
    /// Bars: columns holding each bar's interval, drawn as error bars.
    lower: Option<String>,
    upper: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
}

/// The rows of `df` as JSON records (only the columns the chart uses).
fn records(
    function: &str,
    df: &DataFrame,
    columns: &[&str],
) -> mlua::Result<Vec<serde_json::Value>> {
    let mut cols = Vec::new();
    for name in columns {
        let c = df.column(name).map_err(|_| {
            Error::argument(
                function,
                "options",
                &format!("a column '{name}'"),
                format!("columns {:?}", df.get_column_names()),
            )
        })?;
        cols.push((*name, c));
    }
    let mut rows = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let mut row = Map::new();
        for (name, c) in &cols {
            let v = c
                .get(i)
                .map_err(|e| mlua::Error::runtime(format!("{function}: {e}")))?;
            let json = match v {
                AnyValue::Null => serde_json::Value::Null,
                AnyValue::Boolean(b) => b.into(),
                AnyValue::String(s) => s.into(),
                AnyValue::StringOwned(s) => s.as_str().into(),
                other => match other.extract::<f64>() {
                    Some(x) if x.is_finite() => json!(x),
                    Some(_) => serde_json::Value::Null,
                    None => other.to_string().into(),
                },
            };
            row.insert(name.to_string(), json);
        }
        rows.push(serde_json::Value::Object(row));
    }
    Ok(rows)
}

fn field_type(df: &DataFrame, name: &str) -> &'static str {
    match df.column(name).map(|c| c.dtype().clone()) {
        Ok(dt) if dt.is_primitive_numeric() => "quantitative",
        Ok(dt) if dt.is_temporal() => "temporal",
        _ => "nominal",
    }
}

fn build(
    lua: &Lua,
    function: &'static str,
    mark: &str,
    data: Value,
    opts: Option<Value>,
) -> mlua::Result<LuaChart> {
    let df = frame(function, "data", &data)?;
    let o: ChartOpts = required_options(lua, function, opts)?;
    if mark != "bar" && (o.lower.is_some() || o.upper.is_some()) {
        return Err(Error::argument(
            function,
            "options",
            "`lower`/`upper` only on bar charts",
            "an interval",
        )
        .into());
    }
    if o.lower.is_some() != o.upper.is_some() {
        return Err(
            Error::argument(function, "options", "both `lower` and `upper`", "only one").into(),
        );
    }
    let mut used: Vec<&str> = vec![&o.x, &o.y];
    used.extend(o.color.as_deref());
    used.extend(o.lower.as_deref());
    used.extend(o.upper.as_deref());
    used.dedup();
    let values = records(function, &df, &used)?;
    let mut encoding = json!({
        "x": {"field": o.x, "type": field_type(&df, &o.x)},
        "y": {"field": o.y, "type": field_type(&df, &o.y)},
    });
    if let Some(c) = &o.color {
        encoding["color"] = json!({"field": c, "type": "nominal"});
    }
    if mark == "line" {
        encoding["x"]["type"] = json!("quantitative");
    }
    let mut spec = json!({
        "data": {"values": values},
        "width": o.width.unwrap_or(400),
        "height": o.height.unwrap_or(250),
    });
    if let Some(t) = &o.title {
        spec["title"] = json!(t);
    }
    let mark_spec = match mark {
        "line" => json!({"type": "line", "point": true}),
        "scatter" => json!({"type": "point", "filled": true}),
        _ => json!({"type": "bar"}),
    };
    if let (Some(lo), Some(hi)) = (&o.lower, &o.upper) {
        spec["layer"] = json!([
            {"mark": mark_spec, "encoding": encoding},
            {"mark": {"type": "rule"}, "encoding": {
                "x": encoding["x"],
                "y": {"field": lo, "type": "quantitative"},
                "y2": {"field": hi},
            }},
        ]);
    } else {
        spec["mark"] = mark_spec;
        spec["encoding"] = encoding;
    }
    Ok(LuaChart(spec))
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    let chart = lua.create_table()?;
    for (name, mark, function) in [
        ("line", "line", "sw.chart.line"),
        ("bar", "bar", "sw.chart.bar"),
        ("scatter", "scatter", "sw.chart.scatter"),
    ] {
        chart.set(
            name,
            lua.guarded_function(move |lua, (data, opts): (Value, Option<Value>)| {
                build(lua, function, mark, data, opts)
            })?,
        )?;
    }
    sw.set("chart", chart)?;
    Ok(())
}
