//! `sw.display(...)`, `sw.display.html/markdown/json/image/vegalite/clear` and `sw.input`: rich
//! output and input through whichever front end runs the session. The front end installs the
//! hooks (the kernel sends `display_data` and `input_request`); without one, displays print their
//! `text/plain` form and input reads a line from the process's stdin.

use crate::guard::GuardedLua;
use std::sync::Arc;

use base64::Engine;
use mlua::{Lua, LuaSerdeExt, MultiValue, Table, Value};
use serde::Deserialize;

use crate::args::{options, type_name};
use crate::error::Error;
use crate::session::MimeBundle;

/// What a display call asks the front end to do.
#[derive(Clone, Debug, PartialEq)]
pub enum DisplayEvent {
    /// Show a bundle; with an `id`, later displays with `update = true` replace it in place.
    Show {
        bundle: MimeBundle,
        id: Option<String>,
        update: bool,
    },
    /// Clear the cell's output (`wait`: when the next output arrives).
    Clear { wait: bool },
}

pub type DisplayHook = Arc<dyn Fn(DisplayEvent) + Send + Sync>;
/// Reads one line of input: `(prompt, password)` → the text, or why there is none.
pub type InputHook = Arc<dyn Fn(&str, bool) -> Result<String, String> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Display(pub DisplayHook);
#[derive(Clone)]
pub(crate) struct Input(pub InputHook);

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ShowOpts {
    /// Names the output so that a later display with `update = true` replaces it.
    id: Option<String>,
    update: bool,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ImageOpts {
    id: Option<String>,
    update: bool,
    /// `png`, `jpeg` or `svg`; by default from the file's extension.
    format: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct InputOpts {
    password: bool,
}

pub(crate) fn emit(lua: &Lua, event: DisplayEvent) -> mlua::Result<()> {
    let hook = lua
        .app_data_ref::<Display>()
        .map(|d| d.0.clone())
        .ok_or_else(|| mlua::Error::runtime("sw.display: no display hook installed"))?;
    hook(event);
    Ok(())
}

fn show(lua: &Lua, function: &str, bundle: MimeBundle, opts: Option<Value>) -> mlua::Result<()> {
    let o: ShowOpts = options(lua, function, opts)?;
    show_as(lua, function, bundle, o.id, o.update)
}

/// Shows a bundle, as a new output or (`update`) replacing the one named `id`.
fn show_as(
    lua: &Lua,
    function: &str,
    bundle: MimeBundle,
    id: Option<String>,
    update: bool,
) -> mlua::Result<()> {
    if update && id.is_none() {
        return Err(Error::argument(function, "update", "an `id` to update", "no id").into());
    }
    emit(lua, DisplayEvent::Show { bundle, id, update })
}

fn text_arg(function: &str, argument: &str, v: &Value) -> mlua::Result<String> {
    match v {
        Value::String(s) => Ok(s.to_str()?.to_string()),
        other => Err(Error::argument(function, argument, "a string", type_name(other)).into()),
    }
}

/// A vega-lite spec as a bundle: the JSON, and a one-line text fallback.
pub(crate) fn vegalite_bundle(mut spec: serde_json::Value) -> MimeBundle {
    if let Some(obj) = spec.as_object_mut() {
        obj.entry("$schema")
            .or_insert_with(|| "https://vega.github.io/schema/vega-lite/v5.json".into());
    }
    let mark = match &spec["mark"] {
        serde_json::Value::String(m) => m.clone(),
        serde_json::Value::Object(m) => m
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("layered")
            .to_string(),
        _ => "layered".into(),
    };
    let title = spec["title"]
        .as_str()
        .map(|t| format!(" \"{t}\""))
        .unwrap_or_default();
    let points = spec["data"]["values"].as_array().map_or(0, Vec::len);
    let mut b = MimeBundle::plain(format!("<chart{title}: {mark}, {points} data points>"));
    b.insert("application/vnd.vegalite.v5+json", spec.to_string());
    b
}

fn image_bundle(data: &Value, o: &ImageOpts) -> mlua::Result<MimeBundle> {
    const F: &str = "sw.display.image";
    let arg = match data {
        Value::String(s) => s.as_bytes().to_vec(),
        other => {
            return Err(Error::argument(
                F,
                "image",
                "a file path or the image's bytes",
                type_name(other),
            )
            .into())
        }
    };
    // A short string naming an existing file is a path; anything else is the image itself.
    let as_path = std::str::from_utf8(&arg)
        .ok()
        .filter(|p| p.len() < 4096 && std::path::Path::new(p).is_file())
        .map(std::path::PathBuf::from);
    let (bytes, ext) = match &as_path {
        Some(p) => (
            std::fs::read(p)
                .map_err(|e| Error::argument(F, "image", "a readable file", e.to_string()))?,
            p.extension()
                .and_then(|e| e.to_str())
                .map(str::to_lowercase),
        ),
        None => (arg, None),
    };
    let format = o.format.clone().or(ext).or_else(|| {
        // Sniff the magic numbers of raw bytes.
        if bytes.starts_with(b"\x89PNG") {
            Some("png".into())
        } else if bytes.starts_with(b"\xff\xd8") {
            Some("jpeg".into())
        } else if bytes.starts_with(b"<svg") || bytes.starts_with(b"<?xml") {
            Some("svg".into())
        } else {
            None
        }
    });
    let (mime, data) = match format.as_deref() {
        Some("png") => (
            "image/png",
            base64::engine::general_purpose::STANDARD.encode(&bytes),
        ),
        Some("jpg" | "jpeg") => (
            "image/jpeg",
            base64::engine::general_purpose::STANDARD.encode(&bytes),
        ),
        Some("svg") => (
            "image/svg+xml",
            String::from_utf8(bytes)
                .map_err(|_| Error::argument(F, "image", "SVG text", "invalid UTF-8"))?,
        ),
        other => {
            return Err(Error::argument(
                F,
                "format",
                "png, jpeg or svg",
                other.unwrap_or("an unknown format"),
            )
            .into())
        }
    };
    let mut b = MimeBundle::plain(format!("<image: {mime}>"));
    b.insert(mime, data);
    Ok(b)
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    let display = lua.create_table()?;
    display.set(
        "html",
        lua.guarded_function(|lua, (html, opts): (Value, Option<Value>)| {
            const F: &str = "sw.display.html";
            let html = text_arg(F, "html", &html)?;
            let mut b = MimeBundle::plain("<HTML>".into());
            b.insert("text/html", html);
            show(lua, F, b, opts)
        })?,
    )?;
    display.set(
        "markdown",
        lua.guarded_function(|lua, (md, opts): (Value, Option<Value>)| {
            const F: &str = "sw.display.markdown";
            let md = text_arg(F, "markdown", &md)?;
            let mut b = MimeBundle::plain(md.clone());
            b.insert("text/markdown", md);
            show(lua, F, b, opts)
        })?,
    )?;
    display.set(
        "json",
        lua.guarded_function(|lua, (value, opts): (Value, Option<Value>)| {
            const F: &str = "sw.display.json";
            let json: serde_json::Value = lua.from_value(value).map_err(|e| {
                Error::argument(F, "value", "a table of JSON values", e.to_string())
            })?;
            let mut b = MimeBundle::plain(serde_json::to_string_pretty(&json).unwrap_or_default());
            b.insert("application/json", json.to_string());
            show(lua, F, b, opts)
        })?,
    )?;
    display.set(
        "vegalite",
        lua.guarded_function(|lua, (spec, opts): (Value, Option<Value>)| {
            const F: &str = "sw.display.vegalite";
            let spec: serde_json::Value = match &spec {
                Value::String(s) => serde_json::from_slice(&s.as_bytes()).map_err(|e| {
                    Error::argument(F, "spec", "a vega-lite JSON spec", e.to_string())
                })?,
                Value::Table(_) => lua.from_value(spec).map_err(|e| {
                    Error::argument(F, "spec", "a vega-lite spec table", e.to_string())
                })?,
                other => {
                    return Err(Error::argument(
                        F,
                        "spec",
                        "a table or JSON string",
                        type_name(other),
                    )
                    .into())
                }
            };
            if !spec.is_object() {
                return Err(
                    Error::argument(F, "spec", "a JSON object", "another JSON value").into(),
                );
            }
            show(lua, F, vegalite_bundle(spec), opts)
        })?,
    )?;
    display.set(
        "image",
        lua.guarded_function(|lua, (data, opts): (Value, Option<Value>)| {
            const F: &str = "sw.display.image";
            let o: ImageOpts = options(lua, F, opts)?;
            let bundle = image_bundle(&data, &o)?;
            show_as(lua, F, bundle, o.id, o.update)
        })?,
    )?;
    display.set(
        "clear",
        lua.guarded_function(|lua, wait: Option<bool>| {
            emit(
                lua,
                DisplayEvent::Clear {
                    wait: wait.unwrap_or(false),
                },
            )
        })?,
    )?;
    let meta = lua.create_table()?;
    meta.set(
        "__call",
        lua.guarded_function(|lua, (_, value, opts): (Table, Value, Option<Value>)| {
            const F: &str = "sw.display";
            let mut values = MultiValue::new();
            values.push_back(value);
            match crate::session::render(lua, values)? {
                Some(bundle) => show(lua, F, bundle, opts),
                None => Ok(()),
            }
        })?,
    )?;
    display.set_metatable(Some(meta))?;
    sw.set("display", display)?;

    sw.set(
        "input",
        lua.guarded_function(|lua, (prompt, opts): (Option<String>, Option<Value>)| {
            let o: InputOpts = options(lua, "sw.input", opts)?;
            read_line(lua, "sw.input", prompt.as_deref().unwrap_or(""), o.password)
        })?,
    )?;
    // `io.read` through the same hook: lines and numbers (the formats a notebook can answer).
    let io: Table = lua.globals().get("io")?;
    io.set(
        "read",
        lua.guarded_function(|lua, format: Option<Value>| {
            let format = match &format {
                None => "l".to_string(),
                Some(Value::String(s)) => s.to_str()?.trim_start_matches('*').to_string(),
                Some(other) => {
                    return Err(Error::argument(
                        "io.read",
                        "format",
                        "\"l\", \"L\" or \"n\"",
                        type_name(other),
                    )
                    .into())
                }
            };
            let line = read_line(lua, "io.read", "", false)?;
            match format.as_str() {
                "l" => Ok(Value::String(lua.create_string(&line)?)),
                "L" => Ok(Value::String(lua.create_string(format!("{line}\n"))?)),
                "n" => Ok(line
                    .trim()
                    .parse::<f64>()
                    .map(Value::Number)
                    .unwrap_or(Value::Nil)),
                other => {
                    Err(Error::argument("io.read", "format", "\"l\", \"L\" or \"n\"", other).into())
                }
            }
        })?,
    )?;
    Ok(())
}

fn read_line(lua: &Lua, function: &str, prompt: &str, password: bool) -> mlua::Result<String> {
    let hook = lua
        .app_data_ref::<Input>()
        .map(|i| i.0.clone())
        .ok_or_else(|| mlua::Error::runtime(format!("{function}: no input hook installed")))?;
    hook(prompt, password)
        .map_err(|why| mlua::Error::runtime(format!("{function}: no input ({why})")))
}

/// Reads a line from the process's stdin (the command line's input).
pub(crate) fn stdin_line(prompt: &str, _password: bool) -> Result<String, String> {
    use std::io::{BufRead, Write};
    if !prompt.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(prompt.as_bytes()).and_then(|_| out.flush());
    }
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) => Err("end of input".into()),
        Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_string()),
        Err(e) => Err(e.to_string()),
    }
}
