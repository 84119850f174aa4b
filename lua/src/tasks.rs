//! `sw.tasks.builtin/list/from`: the tasks experiments run on.

use crate::guard::GuardedLua;
use mlua::{Lua, Value};
use polars::prelude::*;
use sandwich_core::experiment::{
    builtin_task, check_task, frame_hash, load_ratings, load_task, word_tokenizer, BUILTIN,
    DEFAULT_ITEMS,
};
use serde::Deserialize;

use crate::args::{frame, options, required_options, type_name};
use crate::error::{CoreResultExt, Error};
use crate::frame::LuaDataFrame;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct BuiltinOpts {
    n: usize,
    seed: u64,
}

impl Default for BuiltinOpts {
    fn default() -> Self {
        Self {
            n: DEFAULT_ITEMS,
            seed: 0,
        }
    }
}

/// Which of the user's columns hold the schema's fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FromOpts {
    #[serde(default = "id")]
    id: String,
    #[serde(default = "input")]
    input: String,
    #[serde(default = "label")]
    label: String,
    choices: Option<String>,
    difficulty: Option<String>,
}

fn id() -> String {
    "id".into()
}
fn input() -> String {
    "input".into()
}
fn label() -> String {
    "label".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LoadOpts {
    dir: Option<String>,
    n: Option<usize>,
    #[serde(default)]
    seed: u64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RatingsOpts {
    dir: Option<String>,
}

fn name_arg(function: &str, v: &Value) -> mlua::Result<String> {
    match v {
        Value::String(s) => Ok(s.to_str()?.to_string()),
        other => Err(Error::argument(function, "name", "a task name", type_name(other)).into()),
    }
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    let t = lua.create_table()?;
    t.set(
        "load",
        lua.guarded_function(|lua, (name, opts): (Value, Option<Value>)| {
            const F: &str = "sw.tasks.load";
            let name = name_arg(F, &name)?;
            let o: LoadOpts = options(lua, F, opts)?;
            load_task(
                &name,
                o.dir.as_deref().map(std::path::Path::new),
                o.n,
                o.seed,
            )
            .lua()
            .map(LuaDataFrame)
        })?,
    )?;
    t.set(
        "ratings",
        lua.guarded_function(|lua, (name, opts): (Value, Option<Value>)| {
            const F: &str = "sw.tasks.ratings";
            let name = name_arg(F, &name)?;
            let o: RatingsOpts = options(lua, F, opts)?;
            load_ratings(&name, o.dir.as_deref().map(std::path::Path::new))
                .lua()
                .map(LuaDataFrame)
        })?,
    )?;
    t.set(
        "builtin",
        lua.guarded_function(|lua, (name, opts): (Value, Option<Value>)| {
            const F: &str = "sw.tasks.builtin";
            let name = match &name {
                Value::String(s) => s.to_str()?.to_string(),
                other => {
                    return Err(Error::argument(F, "name", "a task name", type_name(other)).into())
                }
            };
            let o: BuiltinOpts = options(lua, F, opts)?;
            Ok(LuaDataFrame(builtin_task(&name, o.n, o.seed).lua()?))
        })?,
    )?;
    t.set(
        "list",
        lua.guarded_function(|_, ()| {
            let df = df!(
                "name" => BUILTIN.iter().map(|t| t.0).collect::<Vec<_>>(),
                "classes" => BUILTIN.iter().map(|t| t.1 as i64).collect::<Vec<_>>(),
                "description" => BUILTIN.iter().map(|t| t.2).collect::<Vec<_>>(),
            )
            .map_err(|e| mlua::Error::runtime(format!("sw.tasks.list: {e}")))?;
            Ok(LuaDataFrame(df))
        })?,
    )?;
    t.set(
        "from",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            const F: &str = "sw.tasks.from";
            let df = frame(F, "data", &data)?;
            let o: FromOpts = match opts {
                None | Some(Value::Nil) => {
                    required_options(lua, F, Some(Value::Table(lua.create_table()?)))?
                }
                some => required_options(lua, F, some)?,
            };
            let mut cols = Vec::new();
            let mut pairs = vec![("id", o.id), ("input", o.input), ("label", o.label)];
            pairs.extend(o.choices.map(|c| ("choices", c)));
            pairs.extend(o.difficulty.map(|c| ("difficulty", c)));
            for (field, name) in pairs {
                let c = df.column(&name).map_err(|_| {
                    Error::argument(
                        F,
                        field,
                        &format!("a column '{name}'"),
                        format!("columns {:?}", df.get_column_names()),
                    )
                })?;
                cols.push(c.clone().with_name(field.into()));
            }
            let task = DataFrame::new_infer_height(cols)
                .map_err(|e| mlua::Error::runtime(format!("{F}: {e}")))?;
            check_task(F, &task).lua()?;
            Ok(LuaDataFrame(task))
        })?,
    )?;
    t.set(
        "tokenizer",
        lua.guarded_function(|_, (data, dir): (Value, Value)| {
            const F: &str = "sw.tasks.tokenizer";
            let df = frame(F, "task", &data)?;
            let dir = match &dir {
                Value::String(s) => s.to_str()?.to_string(),
                other => {
                    return Err(
                        Error::argument(F, "dir", "a directory path", type_name(other)).into(),
                    )
                }
            };
            let mut columns = vec!["input"];
            if df.column("choices").is_ok() {
                columns.push("choices");
            }
            word_tokenizer(&df, &columns, std::path::Path::new(&dir)).lua()
        })?,
    )?;
    t.set(
        "hash",
        lua.guarded_function(|_, data: Value| {
            const F: &str = "sw.tasks.hash";
            frame_hash(&frame(F, "data", &data)?).lua()
        })?,
    )?;
    sw.set("tasks", t)?;
    Ok(())
}
