//! `sw.overopt`: reward-model over-optimisation — the built-in task with a hidden gold reward,
//! best-of-n and RL sweeps scored by proxy and gold, and Gao et al. (2022)'s fits.

use mlua::{ErrorContext, Function, Lua, Table, Value};
use polars::prelude::*;
use sandwich_core::column_floats;
use sandwich_core::model::GenerateOptions;
use sandwich_core::overopt::{best_of_n_sweep, fit_gao, task, GaoForm};
use serde::Deserialize;

use crate::args::{frame, options, required_options, type_name};
use crate::error::{CoreResultExt, Error};
use crate::frame::LuaDataFrame;
use crate::guard::GuardedLua;
use crate::model::{model_arg, take, LuaModel};
use crate::rl::{prompts_of, source, with_rewards};

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskOpts {
    #[serde(default = "task_n")]
    n: usize,
    #[serde(default)]
    seed: u64,
}

impl Default for TaskOpts {
    fn default() -> Self {
        TaskOpts {
            n: task_n(),
            seed: 0,
        }
    }
}

fn task_n() -> usize {
    2000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairsOpts {
    #[serde(default = "pairs_n")]
    n: usize,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    reviews: Option<usize>,
}

impl Default for PairsOpts {
    fn default() -> Self {
        PairsOpts {
            n: pairs_n(),
            seed: 0,
            reviews: None,
        }
    }
}

fn pairs_n() -> usize {
    1000
}

fn gold(_: &Lua, (prompts, completions): (Value, Value)) -> mlua::Result<Vec<f64>> {
    const F: &str = "sw.overopt.gold";
    // With one argument, it is the completions.
    let completions = if completions.is_nil() {
        prompts
    } else {
        if !matches!(prompts, Value::Table(_)) {
            return Err(
                Error::argument(F, "prompts", "a list of strings", type_name(&prompts)).into(),
            );
        }
        completions
    };
    let (c, _) = crate::model::texts(F, "completions", &completions, "completion")?;
    Ok(task::gold_rewards(&c))
}

/// The sweep's `n`: a list of sample counts, or N for 1, 2, 4, … up to N (and N itself).
fn ns_arg(function: &str, v: &Value) -> mlua::Result<Option<Vec<usize>>> {
    let bad = |got: String| -> mlua::Error {
        Error::argument(
            function,
            "n",
            "a positive integer N (1, 2, 4, … N) or a list of positive integers",
            got,
        )
        .into()
    };
    match v {
        Value::Nil => Ok(None),
        Value::Table(t) => {
            let mut out = Vec::new();
            for x in t.sequence_values::<Value>() {
                let x = x?;
                match crate::args::integer(function, "n", &x) {
                    Ok(Some(i)) if i >= 1 => out.push(i as usize),
                    _ => return Err(bad(format!("a list holding {}", type_name(&x)))),
                }
            }
            Ok(Some(out))
        }
        other => match crate::args::integer(function, "n", other) {
            Ok(Some(i)) if i >= 1 => {
                let top = i as usize;
                let mut out: Vec<usize> = std::iter::successors(Some(1usize), |n| n.checked_mul(2))
                    .take_while(|&n| n < top)
                    .collect();
                out.push(top);
                Ok(Some(out))
            }
            _ => Err(bad(type_name(other))),
        },
    }
}

fn best_of_n(lua: &Lua, args: Value) -> mlua::Result<LuaDataFrame> {
    const F: &str = "sw.overopt.best_of_n";
    let Value::Table(args) = args else {
        return Err(Error::argument(F, "options", "a table", type_name(&args)).into());
    };
    let a = crate::args::options_copy(lua, &args)?;
    let ud = model_arg(F, &take(&a, "model")?)?.clone();
    let prompts = prompts_of(F, &a)?;
    let proxy = source(F, "proxy", take(&a, "proxy")?)?;
    let gold = source(F, "gold", take(&a, "gold")?)?;
    let ns = ns_arg(F, &take(&a, "n")?)?.unwrap_or_else(|| vec![1, 2, 4, 8, 16]);
    let top = ns.iter().copied().max().unwrap_or(1);
    let pool = match crate::args::integer(F, "pool", &take(&a, "pool")?)? {
        None => top,
        Some(p) if p >= top as i64 => p as usize,
        Some(p) => {
            return Err(Error::argument(
                F,
                "pool",
                &format!("at least the largest n ({top})"),
                p.to_string(),
            )
            .into())
        }
    };
    let g: GenerateOptions = options(lua, F, Some(Value::Table(a)))?;
    let model = ud.borrow::<LuaModel>()?;
    let sources = vec![
        ("proxy".to_string(), 1.0, proxy),
        ("gold".to_string(), 0.0, gold),
    ];
    with_rewards(lua, F, &sources, |rewards| {
        crate::train::run(lua, F, None, |h| {
            best_of_n_sweep(
                &model.0,
                &prompts,
                &rewards[0],
                &rewards[1],
                &ns,
                pool,
                &g,
                h,
            )
        })
    })
}

/// `sw.overopt.rl{method = ..., proxy = ..., gold = ..., ...}`: the trainer `sw.train.<method>`
/// maximising `proxy` with `gold` logged beside it (weight 0), and the curve's columns added.
fn rl(lua: &Lua, args: Value) -> mlua::Result<LuaDataFrame> {
    const F: &str = "sw.overopt.rl";
    let Value::Table(args) = args else {
        return Err(Error::argument(F, "options", "a table", type_name(&args)).into());
    };
    let a = crate::model::copy(lua, &args)?;
    for own in ["reward", "reward_names", "reward_weights"] {
        if !a.get::<Value>(own)?.is_nil() {
            return Err(Error::argument(
                F,
                own,
                "no such option: the rewards are `proxy` (optimised) and `gold` (logged)",
                "a value",
            )
            .into());
        }
    }
    let method = match take(&a, "method")? {
        Value::Nil => "grpo".to_string(),
        Value::String(s) if ["grpo", "rloo", "ppo"].contains(&&*s.to_str()?) => {
            s.to_str()?.to_string()
        }
        other => {
            return Err(Error::argument(
                F,
                "method",
                "'grpo', 'rloo' or 'ppo'",
                match &other {
                    Value::String(s) => format!("'{}'", s.to_string_lossy()),
                    v => type_name(v),
                },
            )
            .into())
        }
    };
    if method != "ppo" && a.get::<Value>("ref")?.is_nil() && no_leash(&a)? {
        // GRPO and RLOO build no reference without a KL term, so there is no KL to measure.
        return Err(Error::argument(
            F,
            "beta",
            "a KL term (beta > 0 or kl = {...}) or a `ref`: d = √KL needs a reference policy",
            "beta = 0 without a ref",
        )
        .into());
    }
    let (proxy, gold) = (take(&a, "proxy")?, take(&a, "gold")?);
    for (arg, v) in [("proxy", &proxy), ("gold", &gold)] {
        source(F, arg, v.clone())?;
    }
    a.set("reward", lua.create_sequence_from([proxy, gold])?)?;
    a.set("reward_names", lua.create_sequence_from(["proxy", "gold"])?)?;
    a.set("reward_weights", lua.create_sequence_from([1.0, 0.0])?)?;
    let train: Table = crate::module(lua)?.get("train")?;
    let trainer: Function = train.get(method.as_str())?;
    let metrics: mlua::AnyUserData = trainer
        .call(a)
        .with_context(|_| format!("{F} (method '{method}')"))?;
    let metrics = metrics.borrow::<LuaDataFrame>()?;
    let kl = if method == "ppo" {
        "objective/kl"
    } else {
        "kl"
    };
    rl_curve(&metrics.0, kl).lua().map(LuaDataFrame)
}

/// Whether the options set a zero KL coefficient and no adaptive controller.
fn no_leash(a: &Table) -> mlua::Result<bool> {
    let zero =
        |v: Value| matches!(v, Value::Integer(0)) || matches!(v, Value::Number(x) if x == 0.0);
    Ok(match a.get::<Value>("kl")? {
        Value::Nil => zero(a.get("beta")?),
        Value::Table(k) => k.get::<Value>("adaptive")?.is_nil() && zero(k.get("coef")?),
        _ => false,
    })
}

/// The metrics with `d = √max(kl, 0)`, `proxy`, `gold` and their gains over the first step
/// appended.
fn rl_curve(metrics: &DataFrame, kl: &str) -> sandwich_core::Result<DataFrame> {
    const OP: &str = "overopt.rl";
    let kl = column_floats(OP, metrics, kl)?;
    let proxy = column_floats(OP, metrics, "rewards/proxy")?;
    let gold = column_floats(OP, metrics, "rewards/gold")?;
    let d: Vec<f64> = kl.iter().map(|k| k.max(0.0).sqrt()).collect();
    let gain = |v: &[f64]| -> Vec<f64> { v.iter().map(|x| x - v[0]).collect() };
    let mut out = metrics.clone();
    for (name, values) in [
        ("d", d),
        ("proxy_gain", gain(&proxy)),
        ("gold_gain", gain(&gold)),
        ("proxy", proxy),
        ("gold", gold),
    ] {
        out.with_column(Column::new(name.into(), values))
            .map_err(sandwich_core::Error::polars(OP, "adding the curve"))?;
    }
    Ok(out)
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    let overopt = lua.create_table()?;
    overopt.set("fit", lua.guarded_function(fit)?)?;
    overopt.set("gold", lua.guarded_function(gold)?)?;
    overopt.set(
        "task",
        lua.guarded_function(|lua, opts: Option<Value>| {
            const F: &str = "sw.overopt.task";
            let o: TaskOpts = options(lua, F, opts)?;
            task::corpus(o.n, o.seed).lua().map(LuaDataFrame)
        })?,
    )?;
    overopt.set(
        "pairs",
        lua.guarded_function(|lua, opts: Option<Value>| {
            const F: &str = "sw.overopt.pairs";
            let o: PairsOpts = options(lua, F, opts)?;
            task::pairs(o.n, o.seed, o.reviews).lua().map(LuaDataFrame)
        })?,
    )?;
    overopt.set(
        "tokenizer",
        lua.guarded_function(|_, dir: Value| {
            const F: &str = "sw.overopt.tokenizer";
            let dir = crate::args::path(F, &dir)?;
            task::write_tokenizer(std::path::Path::new(&dir)).lua()?;
            Ok(dir)
        })?,
    )?;
    overopt.set("best_of_n", lua.guarded_function(best_of_n)?)?;
    overopt.set("rl", lua.guarded_function(rl)?)?;
    sw.set("overopt", overopt)?;
    Ok(())
}
