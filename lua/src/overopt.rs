//! `sw.overopt`: reward-model over-optimisation analysis (Gao et al. 2022's fits).

use mlua::{Lua, Table, Value};
use sandwich_core::column_floats;
use sandwich_core::overopt::{fit_gao, GaoForm};
use serde::Deserialize;

use crate::args::{frame, required_options};
use crate::error::CoreResultExt;
use crate::guard::GuardedLua;
use crate::model::take;

const FIT: &str = "sw.overopt.fit";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FitOpts {
    #[serde(default = "d_column")]
    d: String,
    reward: String,
    form: String,
    #[serde(default = "level")]
    level: f64,
}

fn d_column() -> String {
    "d".into()
}

fn level() -> f64 {
    0.95
}

fn fit(lua: &Lua, args: Value) -> mlua::Result<Table> {
    let Value::Table(args) = args else {
        return Err(crate::error::Error::argument(
            FIT,
            "options",
            "a table",
            crate::args::type_name(&args),
        )
        .into());
    };
    let a = crate::args::options_copy(lua, &args)?;
    let df = frame(FIT, "data", &take(&a, "data")?)?;
    let o: FitOpts = required_options(lua, FIT, Some(Value::Table(a)))?;
    let form = GaoForm::parse(&o.form).lua()?;
    let d = column_floats(FIT, &df, &o.d).lua()?;
    let r = column_floats(FIT, &df, &o.reward).lua()?;
    let f = fit_gao(&d, &r, form, o.level).lua()?;
    let t = lua.create_table()?;
    t.set("form", o.form)?;
    t.set("alpha", f.alpha)?;
    t.set("beta", f.beta)?;
    t.set("alpha_se", f.alpha_se)?;
    t.set("beta_se", f.beta_se)?;
    t.set("alpha_lower", f.alpha_ci.0)?;
    t.set("alpha_upper", f.alpha_ci.1)?;
    t.set("beta_lower", f.beta_ci.0)?;
    t.set("beta_upper", f.beta_ci.1)?;
    t.set("level", f.level)?;
    t.set("n", f.n)?;
    t.set("rss", f.rss)?;
    t.set("peak", f.peak())?;
    Ok(t)
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    let overopt = lua.create_table()?;
    overopt.set("fit", lua.guarded_function(fit)?)?;
    sw.set("overopt", overopt)?;
    Ok(())
}
