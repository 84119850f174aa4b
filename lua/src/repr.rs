//! `text/plain` for Lua values: what a REPL shows for the value of an expression.

use mlua::{Table, Value};

const MAX_DEPTH: usize = 3;
const MAX_ITEMS: usize = 50;

/// A value as a REPL shows it: strings as they are, tables as `{1, 2, x = "y"}`.
pub(crate) fn repr(value: &Value) -> mlua::Result<String> {
    match value {
        Value::String(s) => Ok(s.to_string_lossy()),
        Value::Table(t) => table(t, 0),
        other => scalar(other),
    }
}

fn scalar(value: &Value) -> mlua::Result<String> {
    match value {
        Value::String(s) => Ok(format!("{:?}", s.to_string_lossy())),
        Value::LightUserData(p) if p.0.is_null() => Ok("sw.null".into()),
        // Lua's own tostring (honours __tostring; formats floats the Lua way).
        other => other.to_string(),
    }
}

fn table(t: &Table, depth: usize) -> mlua::Result<String> {
    if depth >= MAX_DEPTH {
        return Ok("{...}".into());
    }
    let item = |v: &Value| match v {
        Value::Table(inner) => table(inner, depth + 1),
        other => scalar(other),
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
            other => format!("[{}]", scalar(other)?),
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
