//! `sw.json.encode/decode` and `sw.about()`: what manifests are written with, and what they
//! record about the build.

use crate::guard::GuardedLua;
use mlua::{Lua, LuaSerdeExt, Value};
use serde::Deserialize;

use crate::args::{options, type_name};
use crate::error::Error;

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EncodeOpts {
    pretty: bool,
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    let json = lua.create_table()?;
    json.set(
        "encode",
        lua.guarded_function(|lua, (value, opts): (Value, Option<Value>)| {
            const F: &str = "sw.json.encode";
            let o: EncodeOpts = options(lua, F, opts)?;
            crate::args::table_shape(F, &value, "value", 0)?;
            let v: serde_json::Value = lua.from_value(value).map_err(|e| {
                Error::argument(F, "value", "a value with a JSON form", e.to_string())
            })?;
            let text = if o.pretty {
                serde_json::to_string_pretty(&v)
            } else {
                serde_json::to_string(&v)
            };
            text.map_err(|e| {
                Error::argument(F, "value", "a value with a JSON form", e.to_string()).into()
            })
        })?,
    )?;
    json.set(
        "decode",
        lua.guarded_function(|lua, text: Value| {
            const F: &str = "sw.json.decode";
            let bytes = match &text {
                Value::String(s) => s.as_bytes().to_vec(),
                other => {
                    return Err(
                        Error::argument(F, "text", "a JSON string", type_name(other)).into(),
                    )
                }
            };
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| Error::argument(F, "text", "valid JSON", e.to_string()))?;
            lua.to_value(&v)
        })?,
    )?;
    json.set(
        "write",
        lua.guarded_function(|lua, (path, value): (Value, Value)| {
            const F: &str = "sw.json.write";
            let path = match &path {
                Value::String(s) => std::path::PathBuf::from(s.to_str()?.to_string()),
                other => {
                    return Err(Error::argument(F, "path", "a file path", type_name(other)).into())
                }
            };
            let v: serde_json::Value = lua.from_value(value).map_err(|e| {
                Error::argument(F, "value", "a value with a JSON form", e.to_string())
            })?;
            let text = serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
            // Parent directories are created: a manifest is often the first file of a run's folder.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::argument(F, "path", "a writable location", e.to_string())
                })?;
            }
            std::fs::write(&path, text).map_err(|e| {
                Error::argument(F, "path", "a writable location", e.to_string()).into()
            })
        })?,
    )?;
    sw.set("json", json)?;
    sw.set(
        "about",
        lua.guarded_function(|lua, ()| {
            let t = lua.create_table()?;
            t.set("version", env!("CARGO_PKG_VERSION"))?;
            t.set(
                "git_revision",
                option_env!("SANDWICH_GIT_REVISION").unwrap_or("unknown"),
            )?;
            t.set("lua", "5.4")?;
            t.set("cuda", cfg!(feature = "cuda"))?;
            Ok(t)
        })?,
    )?;
    Ok(())
}
