//! `sw.model.load`, `sw.model.new`, `sw.lora` and the Model userdata.

use crate::guard::{GuardedLua, GuardedMethods};
use std::path::Path;
use std::sync::Arc;

use mlua::{AnyUserData, Lua, MetaMethod, Table, UserData, UserDataMethods, Value};
use polars::prelude::*;
use sandwich_core::model::{
    generations_frame, logprobs_frame, Arch, GenerateOptions, Head, LoadOptions, LoraOptions,
    Model, NewOptions,
};
use sandwich_core::{Interrupt, Progress, Silent};
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::args::{self, options, type_name};
use crate::error::{CoreResultExt, Error, PolarsContext};
use crate::frame::LuaDataFrame;

/// A model held by Lua.
pub(crate) struct LuaModel(pub Model);

/// Method names of Model, for `sw._methods` and the docs test.
pub(crate) const METHODS: &[&str] = &[
    "embed",
    "generate",
    "info",
    "load_adapter",
    "logprobs",
    "merge_lora",
    "predict",
    "save",
    "save_adapter",
    "score",
];

/// Where long jobs report (set by the front end; silent by default).
#[derive(Clone)]
pub(crate) struct ProgressSink(pub Arc<dyn Progress>);

pub(crate) fn progress(lua: &Lua) -> Arc<dyn Progress> {
    lua.app_data_ref::<ProgressSink>()
        .map(|p| p.0.clone())
        .unwrap_or_else(|| Arc::new(Silent))
}

pub(crate) fn interrupt(lua: &Lua) -> Option<Interrupt> {
    lua.app_data_ref::<Interrupt>().map(|i| i.clone())
}

/// The strings of `column` when `value` is a DataFrame, or of a Lua list of strings.
pub(crate) fn texts(
    function: &'static str,
    argument: &str,
    value: &Value,
    column: &str,
) -> mlua::Result<(Vec<String>, Option<DataFrame>)> {
    match value {
        Value::Table(t) => {
            let mut out = Vec::new();
            for v in t.sequence_values::<Value>() {
                match v? {
                    Value::String(s) => out.push(s.to_str()?.to_string()),
                    other => {
                        return Err(Error::argument(
                            function,
                            argument,
                            "a list of strings",
                            format!("a list holding a {}", type_name(&other)),
                        )
                        .into())
                    }
                }
            }
            if out.is_empty() {
                return Err(Error::argument(
                    function,
                    argument,
                    "a non-empty list of strings",
                    "an empty table",
                )
                .into());
            }
            Ok((out, None))
        }
        Value::UserData(ud) if ud.is::<LuaDataFrame>() => {
            let df = ud.borrow::<LuaDataFrame>()?.0.clone();
            Ok((
                sandwich_core::column_strings(function, &df, column).lua()?,
                Some(df),
            ))
        }
        other => Err(Error::argument(
            function,
            argument,
            "a list of strings or a DataFrame",
            type_name(other),
        )
        .into()),
    }
}

/// `input`'s columns (except those the result has) followed by the result's.
fn beside(
    function: &'static str,
    input: Option<DataFrame>,
    result: DataFrame,
) -> mlua::Result<DataFrame> {
    let Some(input) = input else {
        return Ok(result);
    };
    let names = result.get_column_names_owned();
    let keep: Vec<Column> = input
        .columns()
        .iter()
        .filter(|c| !names.contains(c.name()))
        .cloned()
        .collect();
    let mut columns = keep;
    columns.extend(result.columns().iter().cloned());
    DataFrame::new_infer_height(columns).ctx(function)
}

/// `column` plus [`GenerateOptions`], which rejects unknown keys itself (serde cannot combine
/// `flatten` with `deny_unknown_fields`).
#[derive(Deserialize)]
struct LuaGenerateOpts {
    #[serde(default = "prompt_col")]
    column: String,
    #[serde(flatten)]
    inner: Json,
}

fn prompt_col() -> String {
    "prompt".into()
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LogprobOpts {
    prompt: String,
    completion: String,
    batch_size: usize,
}

impl Default for LogprobOpts {
    fn default() -> Self {
        Self {
            prompt: "prompt".into(),
            completion: "completion".into(),
            batch_size: 8,
        }
    }
}

/// `m:score`'s options; `ensemble` (other reward models scored with this one) is taken out
/// before these are read.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ScoreOpts {
    prompt: String,
    completion: String,
    max_length: Option<usize>,
    batch_size: usize,
}

impl Default for ScoreOpts {
    fn default() -> Self {
        Self {
            prompt: "prompt".into(),
            completion: "completion".into(),
            max_length: None,
            batch_size: 8,
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EmbedOpts {
    column: String,
    normalize: bool,
    batch_size: usize,
}

impl Default for EmbedOpts {
    fn default() -> Self {
        Self {
            column: "text".into(),
            normalize: true,
            batch_size: 32,
        }
    }
}

/// Takes `key` out of an argument table (for the keys that are userdata, not options).
pub(crate) fn take(t: &Table, key: &str) -> mlua::Result<Value> {
    let v: Value = t.get(key)?;
    t.set(key, Value::Nil)?;
    crate::args::note_taken(t, key)?;
    Ok(v)
}

/// A shallow copy of a table, so that taking keys out does not change the caller's.
pub(crate) fn copy(lua: &Lua, t: &Table) -> mlua::Result<Table> {
    let out = lua.create_table()?;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        out.set(k, v)?;
    }
    Ok(out)
}

pub(crate) fn model_arg<'a>(function: &str, value: &'a Value) -> mlua::Result<&'a AnyUserData> {
    match value {
        Value::UserData(ud) if ud.is::<LuaModel>() => Ok(ud),
        other => Err(Error::argument(
            function,
            "model",
            "a Model (sw.model.load or sw.model.new)",
            type_name(other),
        )
        .into()),
    }
}

fn info(lua: &Lua, m: &Model) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let arch = m.arch();
    t.set("arch", arch.family())?;
    t.set(
        "model_type",
        m.config()
            .get("model_type")
            .and_then(Json::as_str)
            .unwrap_or(arch.family()),
    )?;
    t.set("head", m.head().name())?;
    if let Head::Classify(n) = m.head() {
        t.set("num_labels", n)?;
    }
    let (all, trainable) = m.counts();
    t.set("parameters", all)?;
    t.set("trainable", trainable)?;
    t.set("vocab_size", arch.vocab_size())?;
    t.set("hidden_size", arch.hidden_size())?;
    t.set(
        "layers",
        match arch {
            Arch::Gpt2(c) => c.layers,
            Arch::Llama(c) => c.layers,
            Arch::Bert(c) => c.layers,
        },
    )?;
    t.set("max_positions", arch.max_positions())?;
    t.set("dtype", format!("{:?}", m.dtype()).to_lowercase())?;
    t.set(
        "device",
        if m.device().is_cpu() {
            "cpu".to_string()
        } else {
            format!("{:?}", m.device().location())
        },
    )?;
    t.set("tokenizer", m.tokenizer().is_some())?;
    if let Some(l) = m.lora_config() {
        let lt = lua.create_table()?;
        lt.set("rank", l.rank)?;
        lt.set("alpha", l.alpha)?;
        lt.set("dropout", l.dropout)?;
        lt.set("targets", l.targets.clone())?;
        t.set("lora", lt)?;
    }
    if !m.dropped().is_empty() {
        t.set("dropped", m.dropped().to_vec())?;
    }
    Ok(t)
}

impl UserData for LuaModel {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.guarded_meta_method(MetaMethod::ToString, |_, this, ()| {
            let m = &this.0;
            let (all, trainable) = m.counts();
            let lora = if m.lora_config().is_some() {
                format!(", LoRA: {trainable} trainable")
            } else {
                String::new()
            };
            Ok(format!(
                "Model({}, head={}, {} parameters{lora}, {:?})",
                m.config()
                    .get("model_type")
                    .and_then(Json::as_str)
                    .unwrap_or(m.arch().family()),
                m.head().name(),
                all,
                m.dtype()
            )
            .to_lowercase()
            .replace("model(", "Model(")
            .replace("lora:", "LoRA:"))
        });
        methods.guarded_method("info", |lua, this, ()| info(lua, &this.0));
        methods.guarded_method("save", |_, this, path: Value| {
            let p = args::path("Model.save", &path)?;
            this.0.save(Path::new(&p)).lua()
        });
        methods.guarded_method("save_adapter", |_, this, path: Value| {
            let p = args::path("Model.save_adapter", &path)?;
            this.0.save_adapter(Path::new(&p)).lua()
        });
        methods.guarded_method_mut("load_adapter", |_, this, path: Value| {
            let p = args::path("Model.load_adapter", &path)?;
            this.0.load_adapter(Path::new(&p)).lua()
        });
        methods.guarded_method_mut("merge_lora", |_, this, ()| this.0.merge_lora().lua());
        methods.guarded_method(
            "generate",
            |lua, this, (input, opts): (Value, Option<Value>)| {
                const F: &str = "Model.generate";
                let o: Option<LuaGenerateOpts> = match opts {
                    None | Some(Value::Nil) => None,
                    some => Some(args::required_options(lua, F, some)?),
                };
                let (column, inner) = match o {
                    Some(o) => (o.column, o.inner),
                    None => (prompt_col(), json!({})),
                };
                let g: GenerateOptions = serde_path_to_error::deserialize(inner).map_err(|e| {
                    let path = e.path().clone();
                    // serde_json appends " at line 0 column 0" for a Value: not a place here.
                    let detail = e.inner().to_string();
                    let detail = detail.trim_end_matches(" at line 0 column 0").to_string();
                    args::option_error(F, &path, detail)
                })?;
                let (prompts, df) = texts(F, "prompts", &input, &column)?;
                let p = progress(lua);
                let i = interrupt(lua);
                let gens = this
                    .0
                    .generate(&prompts, &g, p.as_ref(), i.as_ref())
                    .lua()?;
                let out = generations_frame(&gens).lua()?;
                beside(F, df, out).map(LuaDataFrame)
            },
        );
        methods.guarded_method(
            "logprobs",
            |lua, this, (input, opts): (Value, Option<Value>)| {
                const F: &str = "Model.logprobs";
                let o: LogprobOpts = options(lua, F, opts)?;
                let (prompts, df) = texts(F, "data", &input, &o.prompt)?;
                let Some(df) = df else {
                    return Err(Error::argument(
                        F,
                        "data",
                        "a DataFrame with prompt and completion columns",
                        "a list",
                    )
                    .into());
                };
                let completions = sandwich_core::column_strings(F, &df, &o.completion).lua()?;
                let lps = this
                    .0
                    .logprobs(&prompts, &completions, o.batch_size)
                    .lua()?;
                let out = logprobs_frame(&prompts, &completions, &lps).lua()?;
                let out = out.drop_many([o.prompt.as_str(), o.completion.as_str()]);
                beside(F, Some(df), out).map(LuaDataFrame)
            },
        );
        methods.guarded_method(
            "score",
            |lua, this, (input, opts): (Value, Option<Value>)| {
                const F: &str = "Model.score";
                let Value::UserData(df) = &input else {
                    return Err(Error::argument(
                        F,
                        "data",
                        "a DataFrame with prompt and completion columns",
                        type_name(&input),
                    )
                    .into());
                };
                let df = crate::args::frame(F, "data", &Value::UserData(df.clone()))?;
                let (others, opts) = match opts {
                    Some(Value::Table(t)) => {
                        let t = copy(lua, &t)?;
                        let e = take(&t, "ensemble")?;
                        (e, Some(Value::Table(t)))
                    }
                    other => (Value::Nil, other),
                };
                let o: ScoreOpts = options(lua, F, opts)?;
                let others: Vec<AnyUserData> = match others {
                    Value::Nil => Vec::new(),
                    Value::Table(t) => t
                        .sequence_values::<Value>()
                        .map(|v| {
                            let v = v?;
                            model_arg(F, &v).cloned().map_err(|_| {
                                Error::argument(
                                    F,
                                    "ensemble",
                                    "a list of Models",
                                    format!("a list holding a {}", type_name(&v)),
                                )
                                .into()
                            })
                        })
                        .collect::<mlua::Result<_>>()?,
                    other => {
                        return Err(Error::argument(
                            F,
                            "ensemble",
                            "a list of Models",
                            type_name(&other),
                        )
                        .into())
                    }
                };
                let guards = others
                    .iter()
                    .map(|u| u.borrow::<LuaModel>())
                    .collect::<mlua::Result<Vec<_>>>()?;
                let mut models: Vec<&Model> = vec![&this.0];
                models.extend(guards.iter().map(|g| &g.0));
                let max_length = o
                    .max_length
                    .unwrap_or_else(|| this.0.arch().max_positions().min(512));
                sandwich_core::train::score_frame(
                    &models,
                    &df,
                    &o.prompt,
                    &o.completion,
                    max_length,
                    o.batch_size,
                )
                .lua()
                .map(LuaDataFrame)
            },
        );
        methods.guarded_method(
            "predict",
            |lua, this, (input, opts): (Value, Option<Value>)| {
                const F: &str = "Model.predict";
                let o: EmbedOpts = options(lua, F, opts)?;
                if !o.normalize {
                    return Err(Error::argument(
                        F,
                        "options",
                        "no 'normalize' (an embed option)",
                        "normalize = false",
                    )
                    .into());
                }
                let (texts_, df) = texts(F, "texts", &input, &o.column)?;
                let mut out = this.0.predict_frame(&texts_, o.batch_size).lua()?;
                if df.is_none() {
                    out.insert_column(0, Column::new(o.column.as_str().into(), texts_))
                        .ctx(F)?;
                }
                beside(F, df, out).map(LuaDataFrame)
            },
        );
        methods.guarded_method(
            "embed",
            |lua, this, (input, opts): (Value, Option<Value>)| {
                const F: &str = "Model.embed";
                let o: EmbedOpts = options(lua, F, opts)?;
                let (texts_, df) = texts(F, "texts", &input, &o.column)?;
                let emb = this.0.embed(&texts_, o.normalize, o.batch_size).lua()?;
                let series: Vec<Series> = emb
                    .into_iter()
                    .map(|e| {
                        Series::new("".into(), e.into_iter().map(f64::from).collect::<Vec<_>>())
                    })
                    .collect();
                let mut cols = vec![];
                if df.is_none() {
                    cols.push(Column::new(o.column.as_str().into(), texts_));
                }
                cols.push(Column::new("embedding".into(), series));
                let out = DataFrame::new_infer_height(cols).ctx(F)?;
                beside(F, df, out).map(LuaDataFrame)
            },
        );
    }
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    let model = lua.create_table()?;
    model.set(
        "load",
        lua.guarded_function(|lua, (path, opts): (Value, Option<Value>)| {
            const F: &str = "sw.model.load";
            let p = args::path(F, &path)?;
            let o: LoadOptions = options(lua, F, opts)?;
            Model::load_with(Path::new(&p), &o).lua().map(LuaModel)
        })?,
    )?;
    model.set(
        "new",
        lua.guarded_function(|lua, opts: Value| {
            const F: &str = "sw.model.new";
            let o: NewOptions = args::required_options(lua, F, Some(opts))?;
            Model::new_from(&o).lua().map(LuaModel)
        })?,
    )?;
    sw.set("model", model)?;
    sw.set(
        "lora",
        lua.guarded_function(|lua, t: Value| {
            const F: &str = "sw.lora";
            let Value::Table(t) = t else {
                return Err(Error::argument(
                    F,
                    "options",
                    "a table with model = a Model",
                    type_name(&t),
                )
                .into());
            };
            let t = copy(lua, &t)?;
            let m = take(&t, "model")?;
            let ud = model_arg(F, &m)?;
            let o: LoraOptions = options(lua, F, Some(Value::Table(t)))?;
            ud.borrow_mut::<LuaModel>()?.0.add_lora(o).lua()?;
            Ok(ud.clone())
        })?,
    )?;
    Ok(())
}
