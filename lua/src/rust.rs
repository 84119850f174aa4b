//! `sw.rust`: data and functions shared with the kernel's Rust cells (`%%rust`, evaluated by
//! evcxr in a child process). Frames cross as Arrow IPC files in the session's exchange
//! directory; calls to exported Rust functions go over a Unix socket (`sandwich_core::cells`).
//! The kernel names the directory (`Session::set_rust_exchange`); elsewhere a session makes its
//! own on first use, so frames round-trip even where no Rust cell runs.

use std::path::PathBuf;
use std::sync::Arc;

use mlua::{Function, Lua, LuaSerdeExt, MultiValue, Value};
use sandwich_core::cells::{self, Arg, Client};

use crate::args::type_name;
use crate::error::{CoreResultExt, Error};
use crate::frame::LuaDataFrame;
use crate::guard::GuardedLua;

/// The session's exchange directory (set by the kernel, or made on first use and removed with
/// the session).
#[derive(Clone)]
pub(crate) struct Exchange(pub Arc<ExchangeDir>);

pub(crate) enum ExchangeDir {
    Given(PathBuf),
    Own(tempfile::TempDir),
}

impl ExchangeDir {
    fn path(&self) -> PathBuf {
        match self {
            ExchangeDir::Given(p) => p.clone(),
            ExchangeDir::Own(t) => t.path().to_path_buf(),
        }
    }
}

fn exchange(lua: &Lua, function: &str) -> mlua::Result<PathBuf> {
    if let Some(e) = lua.app_data_ref::<Exchange>() {
        return Ok(e.0.path());
    }
    let dir = tempfile::Builder::new()
        .prefix("sandwich-rust-")
        .tempdir()
        .map_err(|e| {
            Error::argument(function, "exchange", "a temporary directory", e.to_string())
        })?;
    let path = dir.path().to_path_buf();
    lua.set_app_data(Exchange(Arc::new(ExchangeDir::Own(dir))));
    Ok(path)
}

fn name_arg(function: &str, value: &Value) -> mlua::Result<String> {
    match value {
        Value::String(s) => Ok(s.to_str()?.to_string()),
        other => Err(Error::argument(function, "name", "a string", type_name(other)).into()),
    }
}

fn to_arg(lua: &Lua, function: &str, i: usize, value: Value) -> mlua::Result<Arg> {
    if let Value::UserData(ud) = &value {
        if ud.is::<LuaDataFrame>() {
            return Ok(Arg::Frame(ud.borrow::<LuaDataFrame>()?.0.clone()));
        }
    }
    crate::args::table_shape(function, &value, "argument", 0)?;
    lua.from_value::<serde_json::Value>(value)
        .map(Arg::Json)
        .map_err(|e| {
            Error::argument(
                function,
                &format!("argument {i}"),
                "a DataFrame or a value with a JSON form (number, string, boolean, table)",
                e.to_string(),
            )
            .into()
        })
}

fn from_arg(lua: &Lua, arg: Arg) -> mlua::Result<Value> {
    match arg {
        Arg::Json(v) => lua.to_value(&v),
        Arg::Frame(df) => lua.create_userdata(LuaDataFrame(df)).map(Value::UserData),
    }
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    let rust = lua.create_table()?;
    rust.set(
        "set",
        lua.guarded_function(|lua, (name, frame): (Value, Value)| {
            const F: &str = "sw.rust.set";
            let name = name_arg(F, &name)?;
            let df = match &frame {
                Value::UserData(ud) if ud.is::<LuaDataFrame>() => {
                    ud.borrow::<LuaDataFrame>()?.0.clone()
                }
                other => {
                    return Err(Error::argument(F, "frame", "a DataFrame", type_name(other)).into())
                }
            };
            cells::write_frame(F, &exchange(lua, F)?, &name, &df).lua()
        })?,
    )?;
    rust.set(
        "get",
        lua.guarded_function(|lua, name: Value| {
            const F: &str = "sw.rust.get";
            let name = name_arg(F, &name)?;
            let df = cells::read_frame(F, &exchange(lua, F)?, &name).lua()?;
            Ok(LuaDataFrame(df))
        })?,
    )?;
    rust.set(
        "names",
        lua.guarded_function(|lua, ()| {
            const F: &str = "sw.rust.names";
            let dir = exchange(lua, F)?;
            let t = lua.create_table()?;
            t.set("frames", cells::frame_names(&dir))?;
            t.set("functions", cells::function_names(&dir))?;
            Ok(t)
        })?,
    )?;
    rust.set(
        "fn",
        lua.guarded_function(|lua, name: Value| {
            const F: &str = "sw.rust.fn";
            let name = name_arg(F, &name)?;
            let dir = exchange(lua, F)?;
            // Connect now: a name no cell exported is an error here, not at the first call.
            let client = std::sync::Mutex::new(Some(Client::connect(F, &dir, &name).lua()?));
            let interrupt = crate::model::interrupt(lua);
            let call: Function = lua.guarded_function(move |lua, args: MultiValue| {
                const C: &str = "sw.rust.fn";
                let args: Vec<Arg> = args
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| to_arg(lua, C, i + 1, v))
                    .collect::<mlua::Result<_>>()?;
                let mut slot = client.lock().unwrap_or_else(|p| p.into_inner());
                // A connection is reused; after a failure (an interrupted call, a restarted
                // process) the next call connects again.
                let mut c = match slot.take() {
                    Some(c) => c,
                    None => Client::connect(C, &dir, &name).lua()?,
                };
                let interrupted = || interrupt.as_ref().is_some_and(|i| i.is_requested());
                let out = c.call(C, &args, &interrupted).lua()?;
                *slot = Some(c);
                drop(slot);
                from_arg(lua, out)
            })?;
            Ok(call)
        })?,
    )?;
    sw.set("rust", rust)?;
    Ok(())
}
