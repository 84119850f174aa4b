//! The DataFrame userdata, `sw.frame` and `sw.concat`.

use crate::guard::{GuardedLua, GuardedMethods};
use mlua::{Lua, MetaMethod, Table, UserData, UserDataMethods, Value};
use polars::prelude::*;
use serde::Deserialize;

use crate::args::{options, type_name};
use crate::convert::{column_to_table, frame_from_table, records};
use crate::error::{CoreResultExt, Error, PolarsContext};
use crate::lazy::LuaLazyFrame;
use crate::verbs::{add_verbs, lazy_arg, Frame};

/// A polars DataFrame held by Lua.
#[derive(Clone)]
pub struct LuaDataFrame(pub DataFrame);

impl Frame for LuaDataFrame {
    const EAGER: bool = true;
    fn to_lazy(&self) -> LazyFrame {
        self.0.clone().lazy()
    }
    fn from_lazy(lf: LazyFrame, function: &'static str) -> mlua::Result<Self> {
        lf.collect().ctx(function).map(LuaDataFrame)
    }
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FrameOpts {
    /// Column order (Lua tables have none); must name every column.
    columns: Option<Vec<String>>,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SampleOpts {
    n: Option<usize>,
    fraction: Option<f64>,
    seed: Option<u64>,
    with_replacement: bool,
    /// Shuffle the sampled rows (otherwise they keep their order).
    shuffle: Option<bool>,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConcatOpts {
    how: String,
}

impl Default for ConcatOpts {
    fn default() -> Self {
        Self {
            how: "vertical".into(),
        }
    }
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    sw.set(
        "frame",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            let Value::Table(t) = data else {
                return Err(Error::argument(
                    "sw.frame",
                    "data",
                    "a table of columns or a list of records",
                    type_name(&data),
                )
                .into());
            };
            let o: FrameOpts = options(lua, "sw.frame", opts)?;
            Ok(LuaDataFrame(frame_from_table(
                lua, "sw.frame", &t, o.columns,
            )?))
        })?,
    )?;
    sw.set(
        "concat",
        lua.guarded_function(|lua, (frames, opts): (Value, Option<Value>)| {
            const F: &str = "sw.concat";
            let Value::Table(t) = frames else {
                return Err(
                    Error::argument(F, "frames", "a list of frames", type_name(&frames)).into(),
                );
            };
            let o: ConcatOpts = options(lua, F, opts)?;
            let items = crate::convert::list_values(F, "frames", &t)?;
            if items.is_empty() {
                return Err(
                    Error::argument(F, "frames", "at least one frame", "an empty list").into(),
                );
            }
            let is_lazy = |v: &Value| matches!(v, Value::UserData(ud) if ud.is::<LuaLazyFrame>());
            let all_lazy = items.iter().all(is_lazy);
            // A mix would silently collect the lazy ones (or make the eager ones lazy): say so.
            if !all_lazy && items.iter().any(is_lazy) {
                return Err(Error::argument(
                    F,
                    "frames",
                    "all DataFrames or all LazyFrames (:lazy() or :collect() the others)",
                    "a mix of both",
                )
                .into());
            }
            let lfs = items
                .iter()
                .map(|v| lazy_arg(F, "frames", v))
                .collect::<mlua::Result<Vec<_>>>()?;
            let lf = match o.how.as_str() {
                "vertical" => concat(lfs, UnionArgs::default()).ctx(F)?,
                "horizontal" => concat_lf_horizontal(lfs, HConcatOptions::default()).ctx(F)?,
                other => {
                    return Err(Error::argument(
                        F,
                        "how",
                        "vertical or horizontal",
                        format!("{other:?}"),
                    )
                    .into())
                }
            };
            if all_lazy {
                lua.create_userdata(LuaLazyFrame(lf))
            } else {
                lua.create_userdata(LuaDataFrame::from_lazy(lf, F)?)
            }
        })?,
    )?;
    Ok(())
}

fn column<'a>(df: &'a DataFrame, function: &str, name: &str) -> mlua::Result<&'a Column> {
    df.column(name).map_err(|_| {
        Error::argument(
            function,
            "name",
            &format!("one of the columns {:?}", df.get_column_names()),
            format!("{name:?}"),
        )
        .into()
    })
}

impl UserData for LuaDataFrame {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        add_verbs::<Self, M>(m);
        m.guarded_method("shape", |lua, this, ()| {
            lua.create_sequence_from([this.0.height(), this.0.width()])
        });
        m.guarded_method("height", |_, this, ()| Ok(this.0.height()));
        m.guarded_method("width", |_, this, ()| Ok(this.0.width()));
        m.guarded_method("columns", |lua, this, ()| {
            lua.create_sequence_from(this.0.get_column_names().into_iter().map(|n| n.to_string()))
        });
        m.guarded_method("schema", |lua, this, ()| schema_table(lua, this.0.schema()));
        m.guarded_method("lazy", |_, this, ()| {
            Ok(LuaLazyFrame(this.0.clone().lazy()))
        });
        m.guarded_method("describe", |_, this, ()| {
            sandwich_core::describe(&this.0).lua().map(LuaDataFrame)
        });
        m.guarded_method("to_records", |lua, this, ()| records(lua, &this.0));
        m.guarded_method("column", |lua, this, name: Value| {
            let name = crate::args::string("DataFrame.column", "name", &name)?;
            column_to_table(lua, column(&this.0, "DataFrame.column", &name)?)
        });
        m.guarded_method("vstack", |_, this, other: Value| {
            let Value::UserData(ud) = &other else {
                return Err(Error::argument(
                    "DataFrame.vstack",
                    "other",
                    "a DataFrame",
                    type_name(&other),
                )
                .into());
            };
            let other = ud.borrow::<LuaDataFrame>().map_err(|_| {
                Error::argument(
                    "DataFrame.vstack",
                    "other",
                    "a DataFrame",
                    type_name(&other),
                )
            })?;
            let mut df = this.0.clone();
            df.vstack_mut(&other.0).ctx("DataFrame.vstack")?;
            Ok(LuaDataFrame(df))
        });
        m.guarded_method("sample", |lua, this, arg: Option<Value>| {
            const F: &str = "DataFrame.sample";
            let o = match arg {
                Some(Value::Integer(n)) => SampleOpts {
                    n: Some(usize::try_from(n).map_err(|_| {
                        Error::argument(F, "n", "a non-negative integer", n.to_string())
                    })?),
                    ..Default::default()
                },
                other => options::<SampleOpts>(lua, F, other)?,
            };
            let shuffle = Some(o.shuffle.unwrap_or(true));
            let df = match (o.n, o.fraction) {
                (Some(n), None) => this
                    .0
                    .sample_n_literal(n, o.with_replacement, shuffle, o.seed),
                (None, Some(frac)) => {
                    if !(frac >= 0.0 && (o.with_replacement || frac <= 1.0)) {
                        return Err(Error::argument(
                            F,
                            "fraction",
                            "a number in [0, 1] (larger only with replacement)",
                            frac.to_string(),
                        )
                        .into());
                    }
                    let n = (frac * this.0.height() as f64) as usize;
                    this.0
                        .sample_n_literal(n, o.with_replacement, shuffle, o.seed)
                }
                (None, None) => this
                    .0
                    .sample_n_literal(1, o.with_replacement, shuffle, o.seed),
                (Some(_), Some(_)) => {
                    return Err(
                        Error::argument(F, "options", "either 'n' or 'fraction'", "both").into(),
                    )
                }
            };
            df.ctx(F).map(LuaDataFrame)
        });
        m.guarded_method(
            "write_csv",
            |lua, this, (path, opts): (Value, Option<Value>)| {
                let path = crate::args::path("DataFrame.write_csv", &path)?;
                let o = options(lua, "DataFrame.write_csv", opts)?;
                sandwich_core::write_csv(&this.0, path, &o).lua()
            },
        );
        m.guarded_method(
            "write_parquet",
            |lua, this, (path, opts): (Value, Option<Value>)| {
                let path = crate::args::path("DataFrame.write_parquet", &path)?;
                let o = options(lua, "DataFrame.write_parquet", opts)?;
                sandwich_core::write_parquet(&this.0, path, &o).lua()
            },
        );
        m.guarded_method(
            "write_ipc",
            |lua, this, (path, opts): (Value, Option<Value>)| {
                let path = crate::args::path("DataFrame.write_ipc", &path)?;
                let o = options(lua, "DataFrame.write_ipc", opts)?;
                sandwich_core::write_ipc(&this.0, path, &o).lua()
            },
        );
        m.guarded_method(
            "write_json",
            |lua, this, (path, opts): (Value, Option<Value>)| {
                let path = crate::args::path("DataFrame.write_json", &path)?;
                let o = options(lua, "DataFrame.write_json", opts)?;
                sandwich_core::write_json(&this.0, path, &o).lua()
            },
        );
        m.guarded_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("{}", this.0))
        });
        m.guarded_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.0.height()));
    }
}

/// A schema as a Lua table `{name = "dtype"}`.
pub(crate) fn schema_table(lua: &Lua, schema: &Schema) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (name, dtype) in schema.iter() {
        t.set(name.as_str(), dtype.to_string())?;
    }
    Ok(t)
}

/// DataFrame-only methods (besides the shared verbs), for introspection.
pub(crate) const METHODS: &[&str] = &[
    "shape",
    "height",
    "width",
    "columns",
    "schema",
    "lazy",
    "describe",
    "to_records",
    "column",
    "vstack",
    "sample",
    "write_csv",
    "write_parquet",
    "write_ipc",
    "write_json",
];
