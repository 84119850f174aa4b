//! `text/plain` for Lua values: what a REPL shows for the value of an expression.

use mlua::{Lua, Table, Value};

const MAX_DEPTH: usize = 3;
const MAX_ITEMS: usize = 50;

/// A value as a REPL shows it: strings as they are, tables as `{1, 2, x = "y"}`.
pub(crate) fn repr(lua: &Lua, value: &Value) -> mlua::Result<String> {
    match value {
        Value::String(s) => Ok(s.to_string_lossy()),
        Value::Table(t) => table(lua, t, 0),
        other => tostring(lua, other),
    }
}

/// What Lua's `tostring` gives: floats keep their `.0` (`4.0`, not `4`), `__tostring` is used.
pub(crate) fn tostring(lua: &Lua, value: &Value) -> mlua::Result<String> {
    match value {
        Value::Number(_) | Value::Integer(_) => match lua.coerce_string(value.clone())? {
            Some(s) => Ok(s.to_string_lossy()),
            None => value.to_string(),
        },
        Value::LightUserData(p) if p.0.is_null() => Ok("sw.null".into()),
        other => other.to_string(),
    }
}

fn scalar(lua: &Lua, value: &Value) -> mlua::Result<String> {
    match value {
        Value::String(s) => Ok(format!("{:?}", s.to_string_lossy())),
        other => tostring(lua, other),
    }
}

fn table(lua: &Lua, t: &Table, depth: usize) -> mlua::Result<String> {
    if depth >= MAX_DEPTH {
        return Ok("{...}".into());
    }
    let item = |v: &Value| match v {
        Value::Table(inner) => table(lua, inner, depth + 1),
        other => scalar(lua, other),
    };
    let n = t.raw_len();
    let mut parts = Vec::new();
    for i in 1..=n.min(MAX_ITEMS) {
        parts.push(item(&t.raw_get::<Value>(i)?)?);
    }
    let mut keyed = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        if let Value::Integer(i) = k {
            if i >= 1 && (i as usize) <= n {
                continue;
            }
        }
        let key = match &k {
            Value::String(s) if is_identifier(&s.to_string_lossy()) => s.to_string_lossy(),
            other => format!("[{}]", scalar(lua, other)?),
        };
        keyed.push(format!("{key} = {}", item(&v)?));
    }
    keyed.sort();
    let extra = n.saturating_sub(MAX_ITEMS) + keyed.len().saturating_sub(MAX_ITEMS);
    parts.extend(keyed.into_iter().take(MAX_ITEMS));
    if extra > 0 {
        parts.push(format!("... ({extra} more)"));
    }
    Ok(format!("{{{}}}", parts.join(", ")))
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
