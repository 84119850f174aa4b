//! `sw.train.sft`, `sw.train.classify`, `sw.train.reward` and `sw.train.dpo`.

use crate::guard::GuardedLua;
use std::cell::RefCell;

use mlua::{AnyUserData, Function, Lua, Table, Value};
use polars::prelude::DataFrame;
use sandwich_core::train::{
    self, classify_dataset, sft_dataset, train_dpo, train_reward, DpoConfig, Hooks, Labels,
    PairColumns, StepReport, TrainConfig,
};

use crate::args::{frame, options, type_name};
use crate::error::{CoreResultExt, Error};
use crate::frame::LuaDataFrame;
use crate::model::{interrupt, model_arg, progress, take, LuaModel};

fn string(function: &str, argument: &str, v: Value, default: &str) -> mlua::Result<String> {
    match v {
        Value::Nil => Ok(default.to_string()),
        Value::String(s) => Ok(s.to_str()?.to_string()),
        other => {
            Err(Error::argument(function, argument, "a column name", type_name(&other)).into())
        }
    }
}

fn integer(function: &str, argument: &str, v: Value, default: usize) -> mlua::Result<usize> {
    match crate::args::integer(function, argument, &v)? {
        None => Ok(default),
        Some(i) if i > 0 => Ok(i as usize),
        Some(i) => {
            Err(Error::argument(function, argument, "a positive integer", i.to_string()).into())
        }
    }
}

/// A step report as the Lua table hooks receive: {step, total, epoch, loss, lr, grad_norm,
/// eval_loss, eval_accuracy}.
pub(crate) fn step_table(lua: &Lua, r: &StepReport) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("step", r.step)?;
    t.set("total", r.total)?;
    t.set("epoch", r.epoch)?;
    t.set("loss", r.loss)?;
    t.set("lr", r.lr)?;
    t.set("grad_norm", r.grad_norm)?;
    t.set("eval_loss", r.eval_loss)?;
    t.set("eval_accuracy", r.eval_accuracy)?;
    Ok(t)
}

/// Runs a job with the session's progress sink and interrupt flag, calling `on_step` (a Lua
/// function of a table {step, total, epoch, loss, lr, grad_norm, eval_loss, eval_accuracy})
/// after every optimizer step.
pub(crate) fn run(
    lua: &Lua,
    function: &'static str,
    on_step: Option<Function>,
    job: impl FnOnce(Hooks) -> sandwich_core::Result<DataFrame>,
) -> mlua::Result<LuaDataFrame> {
    let p = progress(lua);
    let i = interrupt(lua);
    // The Lua error itself (with its traceback) is kept and re-raised, not its text.
    let failed: RefCell<Option<mlua::Error>> = RefCell::new(None);
    let call = |r: &StepReport| -> sandwich_core::Result<()> {
        let Some(f) = &on_step else { return Ok(()) };
        let report = step_table(lua, r).and_then(|t| f.call::<()>(t));
        report.map_err(|e| {
            let message = e.to_string();
            *failed.borrow_mut() = Some(e);
            sandwich_core::Error::Hook {
                op: function,
                hook: "on_step",
                message,
            }
        })
    };
    let hooks = Hooks {
        progress: p.as_ref(),
        interrupt: i.as_ref(),
        on_step: Some(&call),
    };
    let out = job(hooks);
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    out.lua().map(LuaDataFrame)
}

/// The pair columns of a preference trainer's options: `prompt, chosen, rejected` and, for a
/// reward model, `margin` and `tie`.
fn pair_columns(function: &str, a: &Table, reward: bool) -> mlua::Result<PairColumns> {
    let d = PairColumns::default();
    let optional = |key: &str| -> mlua::Result<Option<String>> {
        // DPO has no margin or tie: read them without `take`, which would list them among its
        // valid keys in an unknown-key error.
        let v = if reward { take(a, key)? } else { a.get(key)? };
        match v {
            Value::Nil => Ok(None),
            v if reward => string(function, key, v, "").map(Some),
            _ => Err(Error::argument(
                function,
                key,
                "no such option (margin and tie belong to sw.train.reward)",
                "a value",
            )
            .into()),
        }
    };
    Ok(PairColumns {
        prompt: string(function, "prompt", take(a, "prompt")?, &d.prompt)?,
        chosen: string(function, "chosen", take(a, "chosen")?, &d.chosen)?,
        rejected: string(function, "rejected", take(a, "rejected")?, &d.rejected)?,
        margin: optional("margin")?,
        tie: optional("tie")?,
    })
}

/// The `max_length` option: a positive integer, by default the model's positions up to 512.
fn max_length(
    function: &str,
    a: &Table,
    model: &sandwich_core::model::Model,
) -> mlua::Result<usize> {
    let default = model.arch().max_positions().min(512);
    integer(function, "max_length", take(a, "max_length")?, default)
}

/// Moves `keys` of `a` into a new table (for an option struct of their own).
fn split(lua: &Lua, a: &Table, keys: &[&str]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for k in keys {
        t.set(*k, take(a, k)?)?;
    }
    Ok(t)
}

/// The optional `on_step` function of a trainer's options.
pub(crate) fn on_step(function: &str, a: &Table) -> mlua::Result<Option<Function>> {
    match take(a, "on_step")? {
        Value::Nil => Ok(None),
        Value::Function(f) => Ok(Some(f)),
        other => Err(Error::argument(
            function,
            "on_step",
            "a function called after every step",
            type_name(&other),
        )
        .into()),
    }
}

/// What both trainers take: the remaining option table (a copy, so taking keys out leaves the
/// caller's alone), the model, the training data and the optional eval data.
fn common(
    lua: &Lua,
    function: &str,
    args: Value,
) -> mlua::Result<(Table, AnyUserData, DataFrame, Option<DataFrame>)> {
    let Value::Table(args) = args else {
        return Err(Error::argument(function, "options", "a table", type_name(&args)).into());
    };
    let a: Table = crate::args::options_copy(lua, &args)?;
    let m = take(&a, "model")?;
    let ud = model_arg(function, &m)?.clone();
    let data = frame(function, "data", &take(&a, "data")?)?;
    let eval = match take(&a, "eval")? {
        Value::Nil => None,
        v => Some(frame(function, "eval", &v)?),
    };
    Ok((a, ud, data, eval))
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    let t = lua.create_table()?;
    t.set(
        "sft",
        lua.guarded_function(|lua, args: Value| {
            const F: &str = "sw.train.sft";
            let (a, ud, data, eval) = common(lua, F, args)?;
            let prompt = string(F, "prompt", take(&a, "prompt")?, "prompt")?;
            let completion = string(F, "completion", take(&a, "completion")?, "completion")?;
            let packing = match take(&a, "packing")? {
                Value::Nil => false,
                Value::Boolean(b) => b,
                other => {
                    return Err(
                        Error::argument(F, "packing", "a boolean", type_name(&other)).into(),
                    )
                }
            };
            let model = ud.borrow::<LuaModel>()?;
            let max_length = max_length(F, &a, &model.0)?;
            let step_hook = on_step(F, &a)?;
            let cfg: TrainConfig = options(lua, F, Some(Value::Table(a)))?;
            let ds =
                sft_dataset(&model.0, &data, &prompt, &completion, max_length, packing).lua()?;
            let ev = eval
                .map(|e| sft_dataset(&model.0, &e, &prompt, &completion, max_length, false))
                .transpose()
                .lua()?;
            run(lua, F, step_hook, |h| {
                train::train(F, &model.0, &ds, ev.as_ref(), &cfg, h)
            })
        })?,
    )?;
    t.set(
        "classify",
        lua.guarded_function(|lua, args: Value| {
            const F: &str = "sw.train.classify";
            let (a, ud, data, eval) = common(lua, F, args)?;
            let text = string(F, "text", take(&a, "text")?, "text")?;
            let labels = match (take(&a, "label")?, take(&a, "probs")?) {
                (Value::Nil, Value::Table(t)) => {
                    Labels::Probs(t.sequence_values::<String>().collect::<mlua::Result<_>>()?)
                }
                (label, Value::Nil) => Labels::Column(string(F, "label", label, "label")?),
                (_, Value::Table(_)) => {
                    return Err(Error::argument(
                        F,
                        "probs",
                        "either label or probs, not both",
                        "both",
                    )
                    .into())
                }
                (_, other) => {
                    return Err(Error::argument(
                        F,
                        "probs",
                        "a list of probability columns",
                        type_name(&other),
                    )
                    .into())
                }
            };
            let model = ud.borrow::<LuaModel>()?;
            let max_length = max_length(F, &a, &model.0)?;
            let step_hook = on_step(F, &a)?;
            let cfg: TrainConfig = options(lua, F, Some(Value::Table(a)))?;
            let ds = classify_dataset(&model.0, &data, &text, &labels, max_length).lua()?;
            let ev = eval
                .map(|e| classify_dataset(&model.0, &e, &text, &labels, max_length))
                .transpose()
                .lua()?;
            run(lua, F, step_hook, |h| {
                train::train(F, &model.0, &ds, ev.as_ref(), &cfg, h)
            })
        })?,
    )?;
    t.set(
        "reward",
        lua.guarded_function(|lua, args: Value| {
            const F: &str = "sw.train.reward";
            let (a, ud, data, eval) = common(lua, F, args)?;
            let cols = pair_columns(F, &a, true)?;
            let model = ud.borrow::<LuaModel>()?;
            let max_length = max_length(F, &a, &model.0)?;
            let step_hook = on_step(F, &a)?;
            let cfg: TrainConfig = options(lua, F, Some(Value::Table(a)))?;
            run(lua, F, step_hook, |h| {
                train_reward(&model.0, &data, eval.as_ref(), &cols, max_length, &cfg, h)
            })
        })?,
    )?;
    t.set(
        "dpo",
        lua.guarded_function(|lua, args: Value| {
            const F: &str = "sw.train.dpo";
            let (a, ud, data, eval) = common(lua, F, args)?;
            let cols = pair_columns(F, &a, false)?;
            let reference = match take(&a, "ref")? {
                Value::Nil => None,
                v => Some(
                    model_arg(F, &v)
                        .map_err(|_| {
                            Error::argument(
                                F,
                                "ref",
                                "a Model (the reference policy)",
                                type_name(&v),
                            )
                        })?
                        .clone(),
                ),
            };
            let dpo: DpoConfig = options(
                lua,
                F,
                Some(Value::Table(split(
                    lua,
                    &a,
                    &["beta", "loss", "label_smoothing"],
                )?)),
            )?;
            let model = ud.borrow::<LuaModel>()?;
            let max_length = max_length(F, &a, &model.0)?;
            let step_hook = on_step(F, &a)?;
            let cfg: TrainConfig = options(lua, F, Some(Value::Table(a)))?;
            // Shared borrows: the reference may be the policy itself.
            let ref_guard = reference
                .as_ref()
                .map(|r| r.borrow::<LuaModel>())
                .transpose()?;
            run(lua, F, step_hook, |h| {
                train_dpo(
                    &model.0,
                    ref_guard.as_ref().map(|r| &r.0),
                    &data,
                    eval.as_ref(),
                    &cols,
                    max_length,
                    &dpo,
                    &cfg,
                    h,
                )
            })
        })?,
    )?;
    sw.set("train", t)?;
    Ok(())
}
