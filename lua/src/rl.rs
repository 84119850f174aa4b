//! `sw.train.ppo`, `sw.train.grpo`, `sw.train.rloo` and `sw.best_of_n`: policies sampled and scored by reward
//! functions written in Lua, reward models, or both.

use std::cell::RefCell;

use mlua::{AnyUserData, Function, Lua, Table, Value};
use sandwich_core::model::{GenerateOptions, Model};
use sandwich_core::train::{
    best_of_n, train_group, train_ppo, GroupConfig, GroupLoss, PpoConfig, RewardFn,
};

use crate::args::{options, type_name};
use crate::error::Error;
use crate::frame::LuaDataFrame;
use crate::guard::GuardedLua;
use crate::model::{model_arg, take, texts, LuaModel};
use crate::train::{on_step, run};

/// One reward as given in Lua: a function of (prompts, completions), or a reward model.
pub(crate) enum Source {
    Function(Function),
    Model(AnyUserData),
}

/// A reward given in Lua as the option `arg`: a function of (prompts, completions), or a
/// reward Model.
pub(crate) fn source(function: &str, arg: &str, v: Value) -> mlua::Result<Source> {
    match v {
        Value::Function(f) => Ok(Source::Function(f)),
        Value::UserData(ud) if ud.is::<LuaModel>() => Ok(Source::Model(ud)),
        other => Err(Error::argument(
            function,
            arg,
            "a function(prompts, completions) returning numbers, or a reward Model",
            type_name(&other),
        )
        .into()),
    }
}

/// The `reward` option: a function, a Model, or a list of them; with `reward_names` and
/// `reward_weights` (lists of the same length).
fn sources(function: &str, a: &Table) -> mlua::Result<Vec<(String, f64, Source)>> {
    let one = |v: Value| -> mlua::Result<Source> {
        let got = type_name(&v).to_string();
        source(function, "reward", v).map_err(|_| {
            Error::argument(
                function,
                "reward",
                "a function(prompts, completions) returning numbers, a reward Model, or a list of them",
                got,
            )
            .into()
        })
    };
    let list: Vec<Source> = match take(a, "reward")? {
        Value::Table(t) => t
            .sequence_values::<Value>()
            .map(|v| one(v?))
            .collect::<mlua::Result<_>>()?,
        Value::Nil => {
            return Err(
                Error::argument(function, "reward", "a reward function or model", "nil").into(),
            )
        }
        v => vec![one(v)?],
    };
    let names: Vec<String> = match take(a, "reward_names")? {
        Value::Nil if list.len() == 1 => vec!["reward".into()],
        Value::Nil => (1..=list.len()).map(|i| format!("reward_{i}")).collect(),
        Value::Table(t) => t.sequence_values::<String>().collect::<mlua::Result<_>>()?,
        other => {
            return Err(Error::argument(
                function,
                "reward_names",
                "a list of names",
                type_name(&other),
            )
            .into())
        }
    };
    let weights: Vec<f64> = match take(a, "reward_weights")? {
        Value::Nil => vec![1.0; list.len()],
        Value::Table(t) => t.sequence_values::<f64>().collect::<mlua::Result<_>>()?,
        other => {
            return Err(Error::argument(
                function,
                "reward_weights",
                "a list of numbers",
                type_name(&other),
            )
            .into())
        }
    };
    for (arg, n) in [
        ("reward_names", names.len()),
        ("reward_weights", weights.len()),
    ] {
        if n != list.len() {
            return Err(Error::argument(
                function,
                arg,
                &format!("{} entries (one per reward)", list.len()),
                n.to_string(),
            )
            .into());
        }
    }
    Ok(names
        .into_iter()
        .zip(weights)
        .zip(list)
        .map(|((n, w), s)| (n, w, s))
        .collect())
}

/// Calls a Lua reward function; its error (with traceback) is kept to be re-raised.
fn call_lua(
    lua: &Lua,
    function: &'static str,
    name: &str,
    f: &Function,
    prompts: &[String],
    completions: &[String],
    failed: &RefCell<Option<mlua::Error>>,
) -> sandwich_core::Result<Vec<f64>> {
    let result = (|| -> mlua::Result<Vec<f64>> {
        let p = lua.create_sequence_from(prompts.iter().map(String::as_str))?;
        let c = lua.create_sequence_from(completions.iter().map(String::as_str))?;
        let out: Value = f.call((p, c))?;
        match out {
            Value::Table(t) => t.sequence_values::<f64>().collect(),
            other => Err(Error::argument(
                function,
                "reward",
                &format!("'{name}' to return a list of numbers"),
                type_name(&other),
            )
            .into()),
        }
    })();
    result.map_err(|e| {
        let message = e.to_string();
        *failed.borrow_mut() = Some(e);
        sandwich_core::Error::Hook {
            op: function,
            hook: "reward",
            message,
        }
    })
}

/// Runs `job` with the rewards built from their sources (models borrowed for the call).
pub(crate) fn with_rewards<T>(
    lua: &Lua,
    function: &'static str,
    sources: &[(String, f64, Source)],
    job: impl FnOnce(&[RewardFn]) -> mlua::Result<T>,
) -> mlua::Result<T> {
    let failed: RefCell<Option<mlua::Error>> = RefCell::new(None);
    let guards = sources
        .iter()
        .map(|(_, _, s)| match s {
            Source::Model(ud) => ud.borrow::<LuaModel>().map(Some),
            Source::Function(_) => Ok(None),
        })
        .collect::<mlua::Result<Vec<_>>>()?;
    let rewards: Vec<RewardFn> = sources
        .iter()
        .zip(&guards)
        .map(|((name, weight, s), g)| match (s, g) {
            (_, Some(m)) => RewardFn {
                weight: *weight,
                ..RewardFn::model(name.clone(), &m.0)
            },
            (Source::Function(f), None) => {
                let (f, name2, failed) = (f.clone(), name.clone(), &failed);
                RewardFn {
                    name: name.clone(),
                    weight: *weight,
                    f: Box::new(move |p, c| call_lua(lua, function, &name2, &f, p, c, failed)),
                }
            }
            (Source::Model(_), None) => unreachable!("borrowed above"),
        })
        .collect();
    let out = job(&rewards);
    drop(rewards);
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    out
}

pub(crate) fn prompts_of(function: &'static str, a: &Table) -> mlua::Result<Vec<String>> {
    let v = take(a, "prompts")?;
    let column = match take(a, "prompt")? {
        Value::Nil => "prompt".to_string(),
        Value::String(s) => s.to_str()?.to_string(),
        other => {
            return Err(
                Error::argument(function, "prompt", "a column name", type_name(&other)).into(),
            )
        }
    };
    Ok(texts(function, "prompts", &v, &column)?.0)
}

fn options_table(lua: &Lua, function: &str, args: Value) -> mlua::Result<Table> {
    let Value::Table(args) = args else {
        return Err(Error::argument(function, "options", "a table", type_name(&args)).into());
    };
    crate::args::options_copy(lua, &args)
}

fn group(
    lua: &Lua,
    function: &'static str,
    loss: GroupLoss,
    args: Value,
) -> mlua::Result<LuaDataFrame> {
    let a = options_table(lua, function, args)?;
    let ud = model_arg(function, &take(&a, "model")?)?.clone();
    let prompts = prompts_of(function, &a)?;
    let sources = sources(function, &a)?;
    let reference = reference_arg(function, &a, &ud)?;
    let step_hook = on_step(function, &a)?;
    let cfg: GroupConfig = options(lua, function, Some(Value::Table(a)))?;
    let model = ud.borrow::<LuaModel>()?;
    let ref_guard = reference
        .as_ref()
        .map(|r| r.borrow::<LuaModel>())
        .transpose()?;
    with_rewards(lua, function, &sources, |rewards| {
        run(lua, function, step_hook, |h| {
            train_group(
                function,
                &model.0,
                ref_guard.as_ref().map(|r| &r.0 as &Model),
                &prompts,
                rewards,
                loss,
                &cfg,
                h,
            )
        })
    })
}

/// The `ref` option: a Model, or none. The policy as its own reference would train along
/// with it: a frozen copy is meant, as when it is left out.
fn reference_arg(
    function: &'static str,
    a: &Table,
    policy: &AnyUserData,
) -> mlua::Result<Option<AnyUserData>> {
    let reference = match take(a, "ref")? {
        Value::Nil => None,
        v => Some(
            model_arg(function, &v)
                .map_err(|_| {
                    Error::argument(
                        function,
                        "ref",
                        "a Model (the reference policy)",
                        type_name(&v),
                    )
                })?
                .clone(),
        ),
    };
    Ok(reference.filter(|r| r.to_pointer() != policy.to_pointer()))
}

fn ppo(lua: &Lua, args: Value) -> mlua::Result<LuaDataFrame> {
    const F: &str = "sw.train.ppo";
    let a = options_table(lua, F, args)?;
    let ud = model_arg(F, &take(&a, "model")?)?.clone();
    let prompts = prompts_of(F, &a)?;
    let sources = sources(F, &a)?;
    let reference = reference_arg(F, &a, &ud)?;
    let value = match take(&a, "value")? {
        Value::Nil => None,
        v => {
            let m = model_arg(F, &v)
                .map_err(|_| {
                    Error::argument(
                        F,
                        "value",
                        "a Model with a 'scalar' head (the value model)",
                        type_name(&v),
                    )
                })?
                .clone();
            if m.to_pointer() == ud.to_pointer() {
                return Err(Error::argument(
                    F,
                    "value",
                    "a value model other than the policy (leave it out for a value head)",
                    "the policy",
                )
                .into());
            }
            Some(m)
        }
    };
    let step_hook = on_step(F, &a)?;
    let cfg: PpoConfig = options(lua, F, Some(Value::Table(a)))?;
    let model = ud.borrow::<LuaModel>()?;
    let ref_guard = reference
        .as_ref()
        .map(|r| r.borrow::<LuaModel>())
        .transpose()?;
    let value_guard = value.as_ref().map(|v| v.borrow::<LuaModel>()).transpose()?;
    with_rewards(lua, F, &sources, |rewards| {
        run(lua, F, step_hook, |h| {
            train_ppo(
                F,
                &model.0,
                value_guard.as_ref().map(|v| &v.0 as &Model),
                ref_guard.as_ref().map(|r| &r.0 as &Model),
                &prompts,
                rewards,
                &cfg,
                h,
            )
        })
    })
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    let train: Table = sw.get("train")?;
    train.set("ppo", lua.guarded_function(ppo)?)?;
    train.set(
        "grpo",
        lua.guarded_function(|lua, args: Value| {
            group(lua, "sw.train.grpo", GroupLoss::Grpo, args)
        })?,
    )?;
    train.set(
        "rloo",
        lua.guarded_function(|lua, args: Value| {
            group(lua, "sw.train.rloo", GroupLoss::Rloo, args)
        })?,
    )?;
    sw.set(
        "best_of_n",
        lua.guarded_function(|lua, args: Value| {
            const F: &str = "sw.best_of_n";
            let a = options_table(lua, F, args)?;
            let ud = model_arg(F, &take(&a, "model")?)?.clone();
            let prompts = prompts_of(F, &a)?;
            let sources = sources(F, &a)?;
            let n = crate::args::integer(F, "n", &take(&a, "n")?)?.unwrap_or(4);
            let pool = crate::args::integer(F, "kl_pool", &take(&a, "kl_pool")?)?.unwrap_or(0);
            if n < 1 || pool < 0 {
                return Err(Error::argument(
                    F,
                    "n",
                    "n ≥ 1 and kl_pool ≥ 0",
                    format!("n = {n}, kl_pool = {pool}"),
                )
                .into());
            }
            let g: GenerateOptions = options(lua, F, Some(Value::Table(a)))?;
            let model = ud.borrow::<LuaModel>()?;
            with_rewards(lua, F, &sources, |rewards| {
                run(lua, F, None, |h| {
                    best_of_n(
                        &model.0,
                        &prompts,
                        rewards,
                        n as usize,
                        pool as usize,
                        &g,
                        h,
                    )
                })
            })
        })?,
    )?;
    Ok(())
}
