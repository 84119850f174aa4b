//! `sw.aggregate.*`, `sw.agreement.*`, `sw.metrics.*` and `sw.overseers.simulate`.

use crate::guard::GuardedLua;
use std::collections::HashMap;

use mlua::{Function, Lua, Table, Value};
use polars::prelude::*;
use sandwich_core::oversight::{
    self, Aggregation, BtOptions, Comparisons, Crowd, IterOptions, KappaWeights, Level,
    NoisyBtOptions, SimulateOptions,
};
use sandwich_core::{column_as_strings, column_floats};
use serde::Deserialize;

use crate::args::{frame, options, required_options, type_name};
use crate::error::{CoreResultExt, Error};
use crate::frame::LuaDataFrame;
use crate::model::{copy, take};

/// An aggregation as a Lua table of DataFrames (crowd-kit's `labels_`, `probas_`, ...).
fn result(lua: &Lua, a: &Aggregation) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("labels", LuaDataFrame(a.labels_frame().lua()?))?;
    t.set("probas", LuaDataFrame(a.probas_frame().lua()?))?;
    if let Some(s) = a.skills_frame().lua()? {
        t.set("skills", LuaDataFrame(s))?;
    }
    if let Some(e) = a.errors_frame().lua()? {
        t.set("errors", LuaDataFrame(e))?;
    }
    if let Some(p) = &a.priors {
        let pt = lua.create_table()?;
        for (l, v) in p.iter().enumerate() {
            pt.set(a.crowd.labels.name(l), *v)?;
        }
        t.set("priors", pt)?;
    }
    t.set("iterations", a.iterations)?;
    t.set("converged", a.converged)?;
    Ok(t)
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct NoOpts {}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct KappaOpts {
    a: String,
    b: String,
    weights: KappaWeights,
}

impl Default for KappaOpts {
    fn default() -> Self {
        Self {
            a: "a".into(),
            b: "b".into(),
            weights: KappaWeights::None,
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct AlphaOpts {
    level: Level,
}

impl Default for AlphaOpts {
    fn default() -> Self {
        Self {
            level: Level::Nominal,
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ScoreOpts {
    truth: String,
    score: String,
}

impl Default for ScoreOpts {
    fn default() -> Self {
        Self {
            truth: "truth".into(),
            score: "score".into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EceOpts {
    truth: String,
    score: String,
    bins: usize,
}

impl Default for EceOpts {
    fn default() -> Self {
        Self {
            truth: "truth".into(),
            score: "score".into(),
            bins: 10,
        }
    }
}

/// The options of the EM methods: only what they use (the rest of [`IterOptions`] belongs to
/// zero-based skill), so a zero-based-skill option given to Dawid-Skene is an error.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EmOpts {
    n_iter: usize,
    tol: f64,
}

impl Default for EmOpts {
    fn default() -> Self {
        let d = IterOptions::default();
        Self {
            n_iter: d.n_iter,
            tol: d.tol,
        }
    }
}

impl From<EmOpts> for IterOptions {
    fn from(o: EmOpts) -> Self {
        IterOptions {
            n_iter: o.n_iter,
            tol: o.tol,
            ..IterOptions::default()
        }
    }
}

/// Zero-based skill's options (it has no stopping tolerance).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ZbsOpts {
    n_iter: usize,
    lr_init: f64,
    lr_steps_to_reduce: usize,
    lr_reduce_factor: f64,
    eps: f64,
}

impl Default for ZbsOpts {
    fn default() -> Self {
        let d = IterOptions::default();
        Self {
            n_iter: d.n_iter,
            lr_init: d.lr_init,
            lr_steps_to_reduce: d.lr_steps_to_reduce,
            lr_reduce_factor: d.lr_reduce_factor,
            eps: d.eps,
        }
    }
}

impl From<ZbsOpts> for IterOptions {
    fn from(o: ZbsOpts) -> Self {
        IterOptions {
            n_iter: o.n_iter,
            lr_init: o.lr_init,
            lr_steps_to_reduce: o.lr_steps_to_reduce,
            lr_reduce_factor: o.lr_reduce_factor,
            eps: o.eps,
            ..IterOptions::default()
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ClassOpts {
    truth: String,
    pred: String,
}

impl Default for ClassOpts {
    fn default() -> Self {
        Self {
            truth: "truth".into(),
            pred: "pred".into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct BootOpts {
    n_boot: usize,
    level: f64,
    seed: u64,
    /// A column whose values group the rows (runs, seeds): resampled first, then rows within.
    group: Option<String>,
}

impl BootOpts {
    /// Each row's group as a dense index, when a `group` column is named.
    fn groups(&self, function: &'static str, df: &DataFrame) -> mlua::Result<Option<Vec<usize>>> {
        let Some(col) = &self.group else {
            return Ok(None);
        };
        let (_, codes) = oversight::factorize(function, df, col).lua()?;
        Ok(Some(codes.into_iter().map(|c| c as usize).collect()))
    }
}

impl Default for BootOpts {
    fn default() -> Self {
        Self {
            n_boot: 1000,
            level: 0.95,
            seed: 0,
            group: None,
        }
    }
}

fn crowd(function: &'static str, v: &Value) -> mlua::Result<Crowd> {
    Crowd::from_frame(function, &frame(function, "data", v)?).lua()
}

fn interval(lua: &Lua, name: &str, i: &oversight::Interval) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(name, i.estimate)?;
    t.set("lower", i.lower)?;
    t.set("upper", i.upper)?;
    t.set("skipped", i.skipped)?;
    Ok(t)
}

fn aggregate(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    macro_rules! plain {
        ($name:literal, $f:path) => {
            t.set(
                $name,
                lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
                    const F: &str = concat!("sw.aggregate.", $name);
                    let _: NoOpts = options(lua, F, opts)?;
                    result(lua, &$f(&crowd(F, &data)?))
                })?,
            )?;
        };
    }
    macro_rules! iterative {
        ($name:literal, $f:path, $opts:ty) => {
            t.set(
                $name,
                lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
                    const F: &str = concat!("sw.aggregate.", $name);
                    let o: $opts = options(lua, F, opts)?;
                    result(lua, &$f(&crowd(F, &data)?, &IterOptions::from(o)).lua()?)
                })?,
            )?;
        };
    }
    plain!("majority_vote", oversight::majority_vote);
    plain!("wawa", oversight::wawa);
    iterative!("zero_based_skill", oversight::zero_based_skill, ZbsOpts);
    iterative!("dawid_skene", oversight::dawid_skene, EmOpts);
    iterative!(
        "one_coin_dawid_skene",
        oversight::one_coin_dawid_skene,
        EmOpts
    );
    iterative!("glad", oversight::glad, EmOpts);
    t.set(
        "mace",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            const F: &str = "sw.aggregate.mace";
            let o: oversight::MaceOptions = options(lua, F, opts)?;
            let m = oversight::mace(&crowd(F, &data)?, &o).lua()?;
            let t = result(lua, &m.aggregation)?;
            t.set("spamming", LuaDataFrame(m.spamming_frame().lua()?))?;
            t.set("strategies", LuaDataFrame(m.strategies_frame().lua()?))?;
            t.set("log_likelihood", m.log_likelihood)?;
            Ok(t)
        })?,
    )?;
    t.set(
        "gold_majority_vote",
        lua.guarded_function(|lua, (data, gold): (Value, Value)| {
            const F: &str = "sw.aggregate.gold_majority_vote";
            let c = crowd(F, &data)?;
            let gold = c.gold_from_frame(F, &frame(F, "gold", &gold)?).lua()?;
            result(lua, &oversight::gold_majority_vote(&c, &gold).lua()?)
        })?,
    )?;
    t.set(
        "bradley_terry",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            const F: &str = "sw.aggregate.bradley_terry";
            let o: BtOptions = options(lua, F, opts)?;
            let c = Comparisons::from_frame(F, &frame(F, "data", &data)?).lua()?;
            let out = lua.create_table()?;
            out.set(
                "scores",
                LuaDataFrame(oversight::bradley_terry(&c, &o).lua()?),
            )?;
            Ok(out)
        })?,
    )?;
    t.set(
        "noisy_bradley_terry",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            const F: &str = "sw.aggregate.noisy_bradley_terry";
            let o: NoisyBtOptions = options(lua, F, opts)?;
            let fit = oversight::noisy_bradley_terry(&frame(F, "data", &data)?, &o).lua()?;
            let out = lua.create_table()?;
            out.set("scores", LuaDataFrame(fit.scores))?;
            out.set("skills", LuaDataFrame(fit.skills))?;
            out.set("biases", LuaDataFrame(fit.biases))?;
            out.set("iterations", fit.iterations)?;
            Ok(out)
        })?,
    )?;
    Ok(t)
}

fn agreement(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "cohen_kappa",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            const F: &str = "sw.agreement.cohen_kappa";
            let o: KappaOpts = options(lua, F, opts)?;
            let df = frame(F, "data", &data)?;
            let as_strings = |c: &str| column_as_strings(F, &df, c).lua();
            oversight::cohen_kappa(&as_strings(&o.a)?, &as_strings(&o.b)?, o.weights).lua()
        })?,
    )?;
    t.set(
        "fleiss_kappa",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            const F: &str = "sw.agreement.fleiss_kappa";
            let _: NoOpts = options(lua, F, opts)?;
            oversight::fleiss_kappa(&crowd(F, &data)?).lua()
        })?,
    )?;
    t.set(
        "percent",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            const F: &str = "sw.agreement.percent";
            let _: NoOpts = options(lua, F, opts)?;
            oversight::percent_agreement(&crowd(F, &data)?).lua()
        })?,
    )?;
    t.set(
        "krippendorff_alpha",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            const F: &str = "sw.agreement.krippendorff_alpha";
            let o: AlphaOpts = options(lua, F, opts)?;
            oversight::krippendorff_alpha(&frame(F, "data", &data)?, o.level).lua()
        })?,
    )?;
    t.set(
        "worker_accuracy",
        lua.guarded_function(|_, (data, gold): (Value, Value)| {
            const F: &str = "sw.agreement.worker_accuracy";
            let out =
                oversight::worker_accuracy(&frame(F, "data", &data)?, &frame(F, "gold", &gold)?)
                    .lua()?;
            Ok(LuaDataFrame(out))
        })?,
    )?;
    Ok(t)
}

fn number(function: &str, t: &Table, key: &str) -> mlua::Result<f64> {
    match t.get::<Value>(key)? {
        Value::Integer(i) => Ok(i as f64),
        Value::Number(n) => Ok(n),
        other => Err(Error::argument(function, key, "a number", type_name(&other)).into()),
    }
}

fn metrics(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pgr",
        lua.guarded_function(|lua, args: Value| {
            const F: &str = "sw.metrics.pgr";
            let Value::Table(args) = args else {
                return Err(Error::argument(
                    F,
                    "options",
                    "a table {weak = , strong = , ceiling = }",
                    type_name(&args),
                )
                .into());
            };
            let a = copy(lua, &args)?;
            match take(&a, "data")? {
                Value::Nil => {
                    let (w, s, c) = (
                        number(F, &a, "weak")?,
                        number(F, &a, "strong")?,
                        number(F, &a, "ceiling")?,
                    );
                    for key in ["weak", "strong", "ceiling"] {
                        a.set(key, Value::Nil)?;
                    }
                    if let Some(Ok((k, _))) = a.pairs::<String, Value>().next() {
                        return Err(Error::argument(
                            F,
                            "options",
                            "only weak, strong and ceiling (or data with column names)",
                            format!("unknown field `{k}`"),
                        )
                        .into());
                    }
                    Ok(Value::Number(oversight::pgr(w, s, c).lua()?))
                }
                data => {
                    let df = frame(F, "data", &data)?;
                    let names: Vec<String> = ["weak", "strong", "ceiling"]
                        .iter()
                        .map(|k| match take(&a, k)? {
                            Value::String(s) => Ok(s.to_str()?.to_string()),
                            other => Err(Error::argument(
                                F,
                                k,
                                "a column name (with data)",
                                type_name(&other),
                            )
                            .into()),
                        })
                        .collect::<mlua::Result<_>>()?;
                    let o: BootOpts = options(lua, F, Some(Value::Table(a)))?;
                    let cols: Vec<Vec<f64>> = names
                        .iter()
                        .map(|n| column_floats(F, &df, n))
                        .collect::<Result<_, _>>()
                        .lua()?;
                    let groups = o.groups(F, &df)?;
                    let i = oversight::pgr_bootstrap(
                        &cols[0],
                        &cols[1],
                        &cols[2],
                        o.n_boot,
                        o.level,
                        o.seed,
                        groups.as_deref(),
                    )
                    .lua()?;
                    Ok(Value::Table(interval(lua, "pgr", &i)?))
                }
            }
        })?,
    )?;
    t.set(
        "bootstrap",
        lua.guarded_function(|lua, args: Value| {
            const F: &str = "sw.metrics.bootstrap";
            let Value::Table(args) = args else {
                return Err(Error::argument(
                    F,
                    "options",
                    "a table {data = , column = | statistic = }",
                    type_name(&args),
                )
                .into());
            };
            let a = copy(lua, &args)?;
            let df = frame(F, "data", &take(&a, "data")?)?;
            let column = take(&a, "column")?;
            let statistic = take(&a, "statistic")?;
            let o: BootOpts = options(lua, F, Some(Value::Table(a)))?;
            match (column, statistic) {
                (Value::String(c), Value::Nil) => {
                    let x = column_floats(F, &df, &c.to_str()?).lua()?;
                    let groups = o.groups(F, &df)?;
                    let i = oversight::bootstrap(
                        x.len(),
                        o.n_boot,
                        o.level,
                        o.seed,
                        groups.as_deref(),
                        |idx| Some(idx.iter().map(|&j| x[j]).sum::<f64>() / idx.len() as f64),
                    )
                    .lua()?;
                    interval(lua, "estimate", &i)
                }
                (Value::Nil, Value::Function(f)) => bootstrap_lua(lua, F, &df, &f, &o),
                _ => Err(Error::argument(
                    F,
                    "column/statistic",
                    "either a column name (its mean is bootstrapped) or a statistic function",
                    "both or neither",
                )
                .into()),
            }
        })?,
    )?;
    t.set(
        "bt_ratings",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            const F: &str = "sw.metrics.bt_ratings";
            let o: BootOpts = options(lua, F, opts)?;
            let c = Comparisons::from_frame(F, &frame(F, "data", &data)?).lua()?;
            oversight::bt_ratings(&c, o.n_boot, o.level, o.seed)
                .lua()
                .map(LuaDataFrame)
        })?,
    )?;
    t.set(
        "win_rates",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            const F: &str = "sw.metrics.win_rates";
            let _: NoOpts = options(lua, F, opts)?;
            let c = Comparisons::from_frame(F, &frame(F, "data", &data)?).lua()?;
            oversight::win_rates(&c).lua().map(LuaDataFrame)
        })?,
    )?;
    macro_rules! scored {
        ($name:literal, $opts:ty, $f:expr) => {
            t.set(
                $name,
                lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
                    const F: &str = concat!("sw.metrics.", $name);
                    let o: $opts = options(lua, F, opts)?;
                    let df = frame(F, "data", &data)?;
                    let truth = column_floats(F, &df, &o.truth).lua()?;
                    let score = column_floats(F, &df, &o.score).lua()?;
                    #[allow(clippy::redundant_closure_call)]
                    ($f)(&truth, &score, &o).lua()
                })?,
            )?;
        };
    }
    scored!("auroc", ScoreOpts, |t: &[f64], s: &[f64], _: &ScoreOpts| {
        oversight::auroc(t, s)
    });
    scored!("brier", ScoreOpts, |t: &[f64], s: &[f64], _: &ScoreOpts| {
        oversight::brier(t, s)
    });
    scored!("ece", EceOpts, |t: &[f64], s: &[f64], o: &EceOpts| {
        oversight::ece(t, s, o.bins)
    });
    t.set(
        "classification",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            const F: &str = "sw.metrics.classification";
            let o: ClassOpts = options(lua, F, opts)?;
            let df = frame(F, "data", &data)?;
            let s = |c: &str| column_as_strings(F, &df, c).lua();
            let (acc, f1) = oversight::accuracy_f1(&s(&o.truth)?, &s(&o.pred)?).lua()?;
            let out = lua.create_table()?;
            out.set("accuracy", acc)?;
            out.set("f1", f1)?;
            Ok(out)
        })?,
    )?;
    Ok(t)
}

/// A bootstrap whose statistic is a Lua function of the resampled DataFrame (sequential: one
/// Lua state).
fn bootstrap_lua(
    lua: &Lua,
    function: &'static str,
    df: &DataFrame,
    f: &Function,
    o: &BootOpts,
) -> mlua::Result<Table> {
    let n = df.height();
    let call = |idx: &[usize]| -> mlua::Result<Option<f64>> {
        let take = IdxCa::from_vec("idx".into(), idx.iter().map(|&i| i as IdxSize).collect());
        let sample = df.take(&take).map_err(|e| {
            Error::argument(
                function,
                "data",
                "a frame that can be resampled",
                e.to_string(),
            )
        })?;
        match f.call::<Value>(LuaDataFrame(sample))? {
            Value::Integer(i) => Ok(Some(i as f64)),
            Value::Number(x) => Ok(Some(x)),
            Value::Nil => Ok(None),
            other => Err(Error::argument(
                function,
                "statistic",
                "a function returning a number (or nil to skip a resample)",
                type_name(&other),
            )
            .into()),
        }
    };
    oversight::check_bootstrap(function, n, o.n_boot, o.level).lua()?;
    let all: Vec<usize> = (0..n).collect();
    let estimate = call(&all)?.ok_or_else(|| {
        Error::argument(function, "statistic", "a number on the full data", "nil")
    })?;
    // A Lua statistic runs once per resample, one at a time: slow enough to show progress.
    struct Finish(std::sync::Arc<dyn sandwich_core::Progress>);
    impl Drop for Finish {
        fn drop(&mut self) {
            self.0.finish();
        }
    }
    let progress = Finish(crate::model::progress(lua));
    progress.0.start(function, o.n_boot);
    let resampler = oversight::Resampler::new(n, o.groups(function, df)?.as_deref()).lua()?;
    let mut draws = Vec::with_capacity(o.n_boot);
    for b in 0..o.n_boot {
        crate::convert::check_interrupt(lua, b)?;
        draws.push(call(&resampler.draw(o.seed, b))?);
        progress.0.update(b + 1, "");
    }
    let i = oversight::Interval::percentile(estimate, &draws, o.level);
    interval(lua, "estimate", &i)
}

fn overseers(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "simulate",
        lua.guarded_function(|lua, args: Value| {
            const F: &str = "sw.overseers.simulate";
            let Value::Table(args) = args else {
                return Err(Error::argument(
                    F,
                    "options",
                    "a table {gold = , overseers = {...}}",
                    type_name(&args),
                )
                .into());
            };
            let a = copy(lua, &args)?;
            let gold = frame(F, "gold", &take(&a, "gold")?)?;
            // Model overseers carry a DataFrame of predictions, which serde cannot read: take
            // them out first.
            let mut predictions: HashMap<usize, HashMap<String, String>> = HashMap::new();
            if let Value::Table(list) = a.get::<Value>("overseers")? {
                let list = copy(lua, &list)?;
                for (i, item) in list.clone().sequence_values::<Value>().enumerate() {
                    if let Value::Table(o) = item? {
                        let o = copy(lua, &o)?;
                        if let v @ Value::UserData(_) = take(&o, "predictions")? {
                            let df = frame(F, "predictions", &v)?;
                            let s = |c: &str| column_as_strings(F, &df, c).lua();
                            predictions
                                .insert(i, s("task")?.into_iter().zip(s("label")?).collect());
                        }
                        list.set(i + 1, o)?;
                    }
                }
                a.set("overseers", list)?;
            }
            let mut o: SimulateOptions = required_options(lua, F, Some(Value::Table(a)))?;
            for (i, p) in predictions {
                o.overseers[i].predictions = Some(p);
            }
            oversight::simulate(&gold, &o).lua().map(LuaDataFrame)
        })?,
    )?;
    t.set(
        "simulate_pairwise",
        lua.guarded_function(|lua, args: Value| {
            const F: &str = "sw.overseers.simulate_pairwise";
            let Value::Table(args) = args else {
                return Err(Error::argument(
                    F,
                    "options",
                    "a table {pairs = , overseers = {...}}",
                    type_name(&args),
                )
                .into());
            };
            let a = copy(lua, &args)?;
            let pairs = frame(F, "pairs", &take(&a, "pairs")?)?;
            let o: SimulateOptions = required_options(lua, F, Some(Value::Table(a)))?;
            oversight::simulate_pairwise(&pairs, &o)
                .lua()
                .map(LuaDataFrame)
        })?,
    )?;
    Ok(t)
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    sw.set("aggregate", aggregate(lua)?)?;
    sw.set("agreement", agreement(lua)?)?;
    sw.set("metrics", metrics(lua)?)?;
    sw.set("overseers", overseers(lua)?)?;
    Ok(())
}
