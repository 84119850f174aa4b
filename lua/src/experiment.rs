//! `sw.experiment`: call syntax over `sandwich_core::experiment`. The spec table becomes the
//! core's typed `Spec` (unknown keys anywhere are errors naming their path); a task DataFrame,
//! custom arms' `supervise` functions and hooks are taken out first and handed over as what
//! they are. Custom arms run through one adapter ([`LuaArm`]).

use crate::guard::{GuardedLua, GuardedMethods};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use mlua::{Function, Lua, LuaSerdeExt, Table, UserData, UserDataMethods, Value};
use polars::prelude::DataFrame;
use sandwich_core::experiment::{
    self as core, Build, Context, Experiment, RunHooks, Spec, Supervision, Supervisor,
};
use sandwich_core::train::StepReport;

use crate::args::{frame, option_error, options, type_name};
use crate::error::{CoreResultExt, Error};
use crate::frame::LuaDataFrame;
use crate::model::{interrupt, progress};

const F: &str = "sw.experiment";

/// The Lua error that stopped a run (a hook's, a custom arm's), re-raised as itself.
pub(crate) type Failed = Arc<Mutex<Option<mlua::Error>>>;

fn keep_error(failed: &Failed, e: mlua::Error) -> String {
    let message = e.to_string();
    *failed.lock().expect("not poisoned") = Some(e);
    message
}

/// Method names of Experiment, for `sw._methods` and the docs test.
pub(crate) const METHODS: &[&str] = &[
    "accuracy",
    "compare",
    "curves",
    "items",
    "manifest",
    "pgr",
    "report",
    "results",
    "run",
    "save",
    "supervision",
    "write_report",
];

/// An experiment held by Lua, with its Lua hooks.
pub(crate) struct LuaExperiment {
    exp: Experiment,
    /// Custom arms given as functions in the spec (not from `spec.arms_file`): they run only
    /// in this process.
    inline_arms: Vec<String>,
    on_step: Option<Function>,
    on_arm_done: Option<Function>,
    failed: Failed,
}

/// A custom arm: `supervise(ctx)` in Lua returns B's `id, label` or `id, p0 …`.
struct LuaArm {
    name: String,
    lua: Lua,
    supervise: Function,
    /// The Lua error that stopped it, re-raised as itself (with its traceback).
    failed: Failed,
}

impl Supervisor for LuaArm {
    fn supervise(&self, ctx: &Context) -> sandwich_core::Result<Supervision> {
        let call = || -> mlua::Result<Value> {
            let t = self.lua.create_table()?;
            t.set("seed", ctx.seed)?;
            t.set("classes", ctx.classes)?;
            t.set("a", LuaDataFrame(ctx.a.clone()))?;
            t.set("b", LuaDataFrame(ctx.b.clone()))?;
            t.set(
                "weak_predictions",
                LuaDataFrame(ctx.weak_predictions.clone()),
            )?;
            // The crowd is cheap to simulate and Lua functions must be 'static: it is made
            // up front (when the spec has novices) and handed over as a function for
            // compatibility with `ctx.novices()`.
            if let Ok(crowd) = ctx.services.novices() {
                let crowd = LuaDataFrame(crowd);
                let f = self
                    .lua
                    .guarded_function(move |_, ()| Ok(LuaDataFrame(crowd.0.clone())))?;
                t.set("novices", f)?;
            }
            self.supervise.call::<Value>(t)
        };
        let hook_error = |message: String| sandwich_core::Error::Hook {
            op: "experiment",
            hook: "supervise",
            message: format!("custom arm '{}': {message}", self.name),
        };
        let value = call().map_err(|e| hook_error(keep_error(&self.failed, e)))?;
        // A DataFrame, or {data = DataFrame, aux = true} to train with the auxiliary loss.
        let (value, aux) = match &value {
            Value::Table(t) => {
                let aux = t
                    .get::<Option<bool>>("aux")
                    .map_err(|e| hook_error(e.to_string()))?;
                let data = t
                    .get::<Value>("data")
                    .map_err(|e| hook_error(e.to_string()))?;
                (data, aux.unwrap_or(false))
            }
            other => (other.clone(), false),
        };
        let df = match &value {
            Value::UserData(ud) if ud.is::<LuaDataFrame>() => ud
                .borrow::<LuaDataFrame>()
                .map_err(|e| hook_error(e.to_string()))?
                .0
                .clone(),
            other => {
                return Err(sandwich_core::Error::invalid(
                    "experiment.supervise",
                    "supervision",
                    format!(
                        "arm '{}' to return a DataFrame (id, label) or (id, p0, ...), or {{data = DataFrame, aux = true}}",
                        self.name
                    ),
                    type_name(other),
                ))
            }
        };
        Ok(Supervision::from_custom(df, aux, ctx))
    }
}

/// A spec table taken apart: the typed spec, and what is not data (a task DataFrame, custom
/// arms' functions by name, the hooks table).
struct Parts {
    spec: Spec,
    task: Option<DataFrame>,
    custom: Vec<(String, Function)>,
    hooks: Table,
}

fn spec_from(lua: &Lua, function: &str, spec: Value) -> mlua::Result<Parts> {
    let Value::Table(spec) = spec else {
        return Err(Error::argument(function, "spec", "a table", type_name(&spec)).into());
    };
    crate::args::table_shape(function, &Value::Table(spec.clone()), "spec", 0)?;
    let copy = crate::model::copy(lua, &spec)?;
    let task = match copy.get::<Value>("task")? {
        Value::UserData(ud) if ud.is::<LuaDataFrame>() => {
            copy.set("task", lua.create_table()?)?;
            Some(ud.borrow::<LuaDataFrame>()?.0.clone())
        }
        Value::UserData(ud) => {
            return Err(Error::argument(
                function,
                "spec.task",
                "a task DataFrame or {builtin = name, n = , seed = }",
                type_name(&Value::UserData(ud)),
            )
            .into())
        }
        _ => None,
    };
    let hooks = match copy.get::<Value>("hooks")? {
        Value::Nil => lua.create_table()?,
        Value::Table(h) => {
            for pair in h.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let key = k.to_string()?;
                if key != "on_step" && key != "on_arm_done" {
                    return Err(Error::argument(
                        function,
                        &format!("spec.hooks.{key}"),
                        "one of on_arm_done, on_step",
                        "an unknown key",
                    )
                    .into());
                }
                if !matches!(v, Value::Function(_)) {
                    return Err(Error::argument(
                        function,
                        &format!("spec.hooks.{key}"),
                        "a function",
                        type_name(&v),
                    )
                    .into());
                }
            }
            h
        }
        other => {
            return Err(Error::argument(
                function,
                "spec.hooks",
                "a table {on_step = , on_arm_done = }",
                type_name(&other),
            )
            .into())
        }
    };
    copy.set("hooks", Value::Nil)?;
    let mut custom = Vec::new();
    if let Value::Table(arms) = copy.get::<Value>("arms")? {
        let names = lua.create_table()?;
        for (i, arm) in arms.sequence_values::<Value>().enumerate() {
            let arm = arm?;
            let at = format!("spec.arms[{}]", i + 1);
            match arm {
                Value::Table(t) => {
                    for pair in t.pairs::<String, Value>() {
                        let (k, _) = pair?;
                        if k != "name" && k != "supervise" {
                            return Err(Error::argument(
                                function,
                                &format!("{at}.{k}"),
                                "one of name, supervise",
                                "an unknown key",
                            )
                            .into());
                        }
                    }
                    let name: Value = t.get("name")?;
                    let Value::String(name) = name else {
                        return Err(Error::argument(
                            function,
                            &format!("{at}.name"),
                            "a string that is not a built-in arm's name",
                            type_name(&name),
                        )
                        .into());
                    };
                    let name = name.to_str()?.to_string();
                    let Value::Function(f) = t.get::<Value>("supervise")? else {
                        return Err(Error::argument(
                            function,
                            &format!("{at}.supervise"),
                            "a function(ctx) returning B's labels (id, label) or probabilities (id, p0, p1, ...)",
                            type_name(&t.get::<Value>("supervise")?),
                        )
                        .into());
                    };
                    names.push(name.clone())?;
                    custom.push((name, f));
                }
                other => names.push(other)?,
            }
        }
        copy.set("arms", names)?;
    }
    let de = mlua::serde::Deserializer::new(Value::Table(copy));
    let spec: Spec = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().clone();
        let detail = match e.into_inner() {
            mlua::Error::DeserializeError(msg) => msg,
            other => other.to_string(),
        };
        let mut err = option_error(function, &path, detail);
        if let Error::Argument { argument, .. } = &mut err {
            *argument = argument.replacen("options", "spec", 1);
        }
        mlua::Error::from(err)
    })?;
    Ok(Parts {
        spec,
        task,
        custom,
        hooks,
    })
}

pub(crate) fn arms_of(
    lua: &Lua,
    custom: Vec<(String, Function)>,
    failed: &Failed,
) -> HashMap<String, Box<dyn Supervisor>> {
    custom
        .into_iter()
        .map(|(name, supervise)| {
            let arm = LuaArm {
                name: name.clone(),
                lua: lua.clone(),
                supervise,
                failed: failed.clone(),
            };
            (name, Box::new(arm) as Box<dyn Supervisor>)
        })
        .collect()
}

/// Runs `f` with the session's progress, interrupt and the Lua hooks; an error a Lua hook or
/// custom arm raised is re-raised as itself.
fn with_hooks<T>(
    lua: &Lua,
    on_step: Option<&Function>,
    on_arm_done: Option<&Function>,
    failed: &Failed,
    f: impl FnOnce(RunHooks) -> sandwich_core::Result<T>,
) -> mlua::Result<T> {
    let p = progress(lua);
    let i = interrupt(lua);
    let keep = |e: mlua::Error, hook: &'static str| sandwich_core::Error::Hook {
        op: "experiment",
        hook,
        message: keep_error(failed, e),
    };
    let step = |arm: &str, seed: u64, r: &StepReport| -> sandwich_core::Result<()> {
        let Some(h) = on_step else { return Ok(()) };
        crate::train::step_table(lua, r)
            .and_then(|t| h.call::<()>((arm, seed, t)))
            .map_err(|e| keep(e, "on_step"))
    };
    let done = |arm: &str, seed: u64, acc: f64| -> sandwich_core::Result<()> {
        let Some(h) = on_arm_done else { return Ok(()) };
        h.call::<()>((arm, seed, acc))
            .map_err(|e| keep(e, "on_arm_done"))
    };
    let hooks = RunHooks {
        progress: p.as_ref(),
        interrupt: i.as_ref(),
        on_step: Some(&step),
        on_arm_done: Some(&done),
    };
    let out = f(hooks);
    if let Some(e) = failed.lock().expect("not poisoned").take() {
        return Err(e);
    }
    out.lua()
}

pub(crate) fn build() -> Build {
    Build::current(option_env!("SANDWICH_GIT_REVISION").unwrap_or("unknown"))
}

/// Shows the report through the display hook: the core's HTML (the same renderer as the HTML
/// file: titled tables with rounded numbers, SVG charts) in a notebook, its text form on the
/// command line. Returns the PGR table.
fn display_report(lua: &Lua, exp: &Experiment) -> mlua::Result<LuaDataFrame> {
    let report = core::render(exp).lua()?;
    let mut bundle = crate::MimeBundle::plain(report.text);
    bundle.insert("text/html", report.html);
    crate::display::emit(
        lua,
        crate::display::DisplayEvent::Show {
            bundle,
            id: None,
            update: false,
        },
    )?;
    Ok(LuaDataFrame(exp.pgr(None).lua()?))
}

fn ran(exp: &Experiment, function: &str) -> mlua::Result<()> {
    if exp.results.is_none() {
        return Err(Error::argument(
            function,
            "experiment",
            "an experiment that has run",
            "exp:run() first",
        )
        .into());
    }
    Ok(())
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PgrOpts {
    baseline: Option<String>,
}

impl UserData for LuaExperiment {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.guarded_meta_method(mlua::MetaMethod::ToString, |_, this, ()| {
            Ok(format!(
                "Experiment '{}' ({} arms, {} seeds)",
                this.exp.name,
                this.exp.spec.arms.len(),
                this.exp.spec.seeds.len()
            ))
        });
        m.guarded_method_mut("run", |lua, this, opts: Option<Value>| {
            const G: &str = "Experiment.run";
            let o: core::sweep::RunOptions = options(lua, G, opts)?;
            let failed = this.failed.clone();
            let (on_step, on_arm_done) = (this.on_step.clone(), this.on_arm_done.clone());
            let has_hooks = on_step.is_some() || on_arm_done.is_some();
            let inline_arms = this.inline_arms.clone();
            let exp = &mut this.exp;
            let ran = with_hooks(lua, on_step.as_ref(), on_arm_done.as_ref(), &failed, |h| {
                core::sweep::run_with(
                    exp,
                    &o,
                    has_hooks,
                    &inline_arms,
                    crate::sweep::worker(),
                    &build(),
                    h,
                )
            })?;
            Ok(LuaDataFrame(match ran {
                core::sweep::Ran::Results(df) | core::sweep::Ran::Submitted(df) => df,
            }))
        });
        m.guarded_method("results", |_, this, ()| {
            ran(&this.exp, "Experiment.results")?;
            Ok(this.exp.results.clone().map(LuaDataFrame))
        });
        m.guarded_method("items", |_, this, ()| {
            ran(&this.exp, "Experiment.items")?;
            Ok(this.exp.items.clone().map(LuaDataFrame))
        });
        m.guarded_method("curves", |_, this, ()| {
            ran(&this.exp, "Experiment.curves")?;
            Ok(this.exp.curves.clone().map(LuaDataFrame))
        });
        m.guarded_method("accuracy", |_, this, ()| {
            this.exp.accuracy().lua().map(LuaDataFrame)
        });
        m.guarded_method("pgr", |lua, this, opts: Option<Value>| {
            let o: PgrOpts = options(lua, "Experiment.pgr", opts)?;
            this.exp.pgr(o.baseline.as_deref()).lua().map(LuaDataFrame)
        });
        m.guarded_method("compare", |_, this, (a, b): (Value, Value)| {
            let a = crate::args::string("Experiment.compare", "a", &a)?;
            let b = crate::args::string("Experiment.compare", "b", &b)?;
            this.exp.compare(&a, &b).lua().map(LuaDataFrame)
        });
        m.guarded_method("supervision", |_, this, ()| {
            this.exp.supervision().lua().map(LuaDataFrame)
        });
        m.guarded_method("report", |lua, this, path: Value| {
            ran(&this.exp, "Experiment.report")?;
            let path = match path {
                Value::Nil => None,
                p => Some(crate::args::path("Experiment.report", &p)?),
            };
            if let Some(p) = &path {
                this.exp.write_report(Path::new(p)).lua()?;
            }
            display_report(lua, &this.exp)
        });
        m.guarded_method("write_report", |_, this, path: Value| {
            let path = crate::args::path("Experiment.write_report", &path)?;
            ran(&this.exp, "Experiment.write_report")?;
            this.exp.write_report(Path::new(&path)).lua()?;
            Ok(path)
        });
        m.guarded_method("manifest", |lua, this, ()| {
            let m = this.exp.manifest(&build()).lua()?;
            lua.to_value(&m)
        });
        m.guarded_method("save", |_, this, dir: Value| {
            let dir = crate::args::path("Experiment.save", &dir)?;
            ran(&this.exp, "Experiment.save")?;
            this.exp.save(Path::new(&dir), &build()).lua()?;
            Ok(dir)
        });
    }
}

#[derive(Default)]
struct RerunOpts {
    task: Option<DataFrame>,
    supervise: Vec<(String, Function)>,
}

fn rerun_opts(opts: Option<Value>) -> mlua::Result<RerunOpts> {
    const G: &str = "sw.experiment.rerun";
    let mut o = RerunOpts::default();
    let t = match opts {
        None | Some(Value::Nil) => return Ok(o),
        Some(Value::Table(t)) => t,
        Some(other) => {
            return Err(Error::argument(G, "options", "a table", type_name(&other)).into())
        }
    };
    for pair in t.pairs::<String, Value>() {
        let (k, v) = pair?;
        match k.as_str() {
            "task" => o.task = Some(frame(G, "task", &v)?),
            "supervise" => {
                let Value::Table(s) = v else {
                    return Err(Error::argument(
                        G,
                        "supervise",
                        "a table of functions by arm name",
                        type_name(&v),
                    )
                    .into());
                };
                for pair in s.pairs::<String, Value>() {
                    let (name, f) = pair?;
                    let Value::Function(f) = f else {
                        return Err(Error::argument(
                            G,
                            &format!("supervise.{name}"),
                            "a function",
                            type_name(&f),
                        )
                        .into());
                    };
                    o.supervise.push((name, f));
                }
            }
            other => {
                return Err(Error::argument(
                    G,
                    &format!("rerun.{other}"),
                    "one of supervise, task",
                    "an unknown key",
                )
                .into())
            }
        }
    }
    Ok(o)
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    let t = lua.create_table()?;
    t.set(
        "rerun",
        lua.guarded_function(|lua, (dir, opts): (Value, Option<Value>)| {
            let dir = crate::args::path("sw.experiment.rerun", &dir)?;
            let o = rerun_opts(opts)?;
            let failed = Default::default();
            let custom_names: Vec<String> = o.supervise.iter().map(|(n, _)| n.clone()).collect();
            let mut custom = arms_of(lua, o.supervise, &failed);
            // Custom arms not given as functions come from the manifest's arms file.
            let m = core::read_manifest(Path::new(&dir)).lua()?;
            crate::sweep::add_file_arms_in(
                lua,
                "sw.experiment.rerun",
                &m.spec,
                &mut custom,
                &failed,
            )?;
            let (exp, identical) = with_hooks(lua, None, None, &failed, |h| {
                core::rerun(Path::new(&dir), o.task, custom, h)
            })?;
            let results = exp.results.clone().map(LuaDataFrame);
            let ud = lua.create_userdata(LuaExperiment {
                exp,
                inline_arms: custom_names,
                on_step: None,
                on_arm_done: None,
                failed,
            })?;
            Ok((results, identical, ud))
        })?,
    )?;
    t.set(
        "collect",
        lua.guarded_function(|lua, dir: Value| {
            let dir = crate::args::path("sw.experiment.collect", &dir)?;
            let exp = crate::sweep::collect(Path::new(&dir)).lua()?;
            lua.create_userdata(LuaExperiment {
                exp,
                inline_arms: Vec::new(),
                on_step: None,
                on_arm_done: None,
                failed: Default::default(),
            })
        })?,
    )?;
    t.set(
        "status",
        lua.guarded_function(|_, dir: Value| {
            let dir = crate::args::path("sw.experiment.status", &dir)?;
            crate::sweep::status(Path::new(&dir))
                .lua()
                .map(LuaDataFrame)
        })?,
    )?;
    t.set(
        "pgr",
        lua.guarded_function(|lua, (results, opts): (Value, Option<Value>)| {
            const G: &str = "sw.experiment.pgr";
            let df = crate::args::frame(G, "results", &results)?;
            let o: core::PgrOptions = crate::args::required_options(lua, G, opts)?;
            core::pgr_table(&df, &o).lua().map(LuaDataFrame)
        })?,
    )?;
    t.set(
        "preference",
        crate::preference_experiment::constructor(lua)?,
    )?;
    let meta = lua.create_table()?;
    meta.set(
        "__call",
        lua.guarded_function(|lua, (_, name): (Value, Value)| {
            let Value::String(name) = name else {
                return Err(Error::argument(F, "name", "a string", type_name(&name)).into());
            };
            let name = name.to_str()?.to_string();
            lua.guarded_function(move |lua, spec: Value| {
                let Parts {
                    spec,
                    task,
                    custom,
                    hooks,
                } = spec_from(lua, F, spec)?;
                let failed = Default::default();
                let inline_arms: Vec<String> = custom.iter().map(|(n, _)| n.clone()).collect();
                let mut arms = arms_of(lua, custom, &failed);
                crate::sweep::add_file_arms_in(lua, F, &spec, &mut arms, &failed)?;
                let exp = Experiment::new(&name, spec, task, arms).lua()?;
                Ok(LuaExperiment {
                    exp,
                    inline_arms,
                    on_step: hooks.get("on_step")?,
                    on_arm_done: hooks.get("on_arm_done")?,
                    failed,
                })
            })
        })?,
    )?;
    t.set_metatable(Some(meta))?;
    sw.set("experiment", t)?;
    Ok(())
}
