//! The LazyFrame and GroupBy userdata (LazyFrames come from `df:lazy()` and `sw.scan_*`).

use crate::guard::GuardedMethods;
use mlua::{Lua, MetaMethod, UserData, UserDataMethods, Value, Variadic};
use polars::prelude::*;
use serde::Deserialize;

use crate::args::options;
use crate::error::PolarsContext;
use crate::frame::{schema_table, LuaDataFrame};
use crate::verbs::{add_verbs, aggregate, Frame};

/// A polars LazyFrame held by Lua: a query that runs on `collect()`.
#[derive(Clone)]
pub(crate) struct LuaLazyFrame(pub LazyFrame);

/// `df:group_by(keys)` waiting for its aggregations.
#[derive(Clone)]
pub(crate) struct LuaGroupBy {
    pub lf: LazyFrame,
    pub keys: Vec<Expr>,
    pub maintain_order: bool,
    /// Whether `agg` returns a DataFrame (from a DataFrame) or a LazyFrame.
    pub eager: bool,
}

impl Frame for LuaLazyFrame {
    const EAGER: bool = false;
    fn to_lazy(&self) -> LazyFrame {
        self.0.clone()
    }
    fn from_lazy(lf: LazyFrame, _function: &'static str) -> mlua::Result<Self> {
        Ok(LuaLazyFrame(lf))
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ExplainOpts {
    optimized: bool,
}

impl Default for ExplainOpts {
    fn default() -> Self {
        Self { optimized: true }
    }
}

pub(crate) fn register(_lua: &Lua) -> mlua::Result<()> {
    // LazyFrames are made by `df:lazy()` and `sw.scan_*`; nothing to put in `sw`.
    Ok(())
}

impl UserData for LuaLazyFrame {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        add_verbs::<Self, M>(m);
        m.guarded_method("collect", |_, this, ()| {
            LuaDataFrame::from_lazy(this.0.clone(), "LazyFrame.collect")
        });
        m.guarded_method("explain", |lua, this, opts: Option<Value>| {
            let o: ExplainOpts = options(lua, "LazyFrame.explain", opts)?;
            this.0.explain(o.optimized).ctx("LazyFrame.explain")
        });
        m.guarded_method("columns", |lua, this, ()| {
            let schema = this.0.clone().collect_schema().ctx("LazyFrame.columns")?;
            lua.create_sequence_from(schema.iter_names().map(|n| n.to_string()))
        });
        m.guarded_method("schema", |lua, this, ()| {
            let schema = this.0.clone().collect_schema().ctx("LazyFrame.schema")?;
            schema_table(lua, &schema)
        });
        m.guarded_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!(
                "LazyFrame (call :collect() to run it)\n{}",
                this.0
                    .explain(false)
                    .unwrap_or_else(|e| format!("invalid plan: {e}"))
            ))
        });
    }
}

impl UserData for LuaGroupBy {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.guarded_method("agg", |lua, this, args: Variadic<Value>| {
            aggregate(lua, this, &args)
        });
    }
}

/// LazyFrame-only methods (besides the shared verbs), for introspection.
pub(crate) const METHODS: &[&str] = &["collect", "explain", "columns", "schema"];
