//! Introspection for front ends: `sw._methods(value)` (method names of a `sw` userdata), name
//! completion, inspection (a function's doc page) and whether a cell is complete.

use crate::guard::GuardedLua;
use mlua::{AnyUserData, Lua, Table, Value};

use crate::expr::{LuaExpr, LuaStrNamespace, LuaWhen, EXPR_METHODS, STR_METHODS, WHEN_METHODS};
use crate::frame::LuaDataFrame;
use crate::lazy::{LuaGroupBy, LuaLazyFrame};

/// Every `sw` userdata type: its documented name and its method names. The one list behind
/// `sw._methods`, inspection and the type names in error messages.
pub(crate) fn userdata_type(ud: &AnyUserData) -> Option<(&'static str, Vec<&'static str>)> {
    Some(if ud.is::<LuaDataFrame>() {
        (
            "DataFrame",
            [crate::verbs::VERBS, crate::frame::METHODS].concat(),
        )
    } else if ud.is::<LuaLazyFrame>() {
        (
            "LazyFrame",
            [crate::verbs::VERBS, crate::lazy::METHODS].concat(),
        )
    } else if ud.is::<LuaExpr>() {
        ("Expr", EXPR_METHODS.to_vec())
    } else if ud.is::<LuaStrNamespace>() {
        ("Expr.str", STR_METHODS.to_vec())
    } else if ud.is::<LuaWhen>() {
        ("When", WHEN_METHODS.to_vec())
    } else if ud.is::<crate::model::LuaModel>() {
        ("Model", crate::model::METHODS.to_vec())
    } else if ud.is::<LuaGroupBy>() {
        ("GroupBy", vec!["agg"])
    } else if ud.is::<crate::chart::LuaChart>() {
        ("Chart", crate::chart::METHODS.to_vec())
    } else if ud.is::<crate::experiment::LuaExperiment>() {
        ("Experiment", crate::experiment::METHODS.to_vec())
    } else if ud.is::<crate::feedback::LuaCampaign>() {
        ("Campaign", crate::feedback::METHODS.to_vec())
    } else {
        return None;
    })
}

/// Method names of a value's type, sorted; empty for values that are not `sw` userdata.
pub(crate) fn methods(value: &Value) -> Vec<&'static str> {
    let Value::UserData(ud) = value else {
        return vec![];
    };
    let mut names = userdata_type(ud).map(|t| t.1).unwrap_or_default();
    names.sort_unstable();
    names
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    sw.set(
        "_methods",
        lua.guarded_function(|_, v: Value| Ok(methods(&v)))?,
    )?;
    Ok(())
}

// ---- Completion, inspection and completeness: what a notebook front end asks while typing. ----

include!(concat!(env!("OUT_DIR"), "/docs.rs"));

const KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// Completions of the name before the cursor; positions count characters (Unicode code points,
/// as Jupyter's `cursor_pos` does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub matches: Vec<String>,
    pub cursor_start: usize,
    pub cursor_end: usize,
}

/// Whether a cell is ready to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completeness {
    Complete,
    /// An unclosed block, string or expression: more lines are coming.
    Incomplete,
    Invalid,
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The dotted name ending at `end` (chars), e.g. `sw.agg` or `df:he`, and where it starts.
fn name_before(chars: &[char], end: usize) -> (usize, String) {
    let mut start = end;
    while start > 0 && (is_name_char(chars[start - 1]) || matches!(chars[start - 1], '.' | ':')) {
        start -= 1;
    }
    (start, chars[start..end].iter().collect())
}

/// Resolves `a.b.c` through plain table lookups (never a metamethod, never running code).
fn resolve(lua: &Lua, path: &str) -> Option<Value> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut value: Value = lua.globals().raw_get(first).ok()?;
    for part in parts {
        value = match &value {
            Value::Table(t) => t.raw_get(part).ok()?,
            _ => return None,
        };
    }
    (!value.is_nil()).then_some(value)
}

fn table_keys(t: &Table, functions_only: bool) -> Vec<String> {
    let mut keys = Vec::new();
    let mut add = |t: &Table| {
        for (k, v) in t.pairs::<Value, Value>().flatten() {
            if let Value::String(s) = k {
                if !functions_only || matches!(v, Value::Function(_)) {
                    keys.push(s.to_string_lossy());
                }
            }
        }
    };
    add(t);
    // Tables that delegate to a class (`setmetatable(obj, {__index = Class})`).
    if let Some(Ok(Value::Table(index))) = t.metatable().map(|m| m.raw_get::<Value>("__index")) {
        add(&index);
    }
    keys
}

pub(crate) fn complete(lua: &Lua, code: &str, cursor: usize) -> Completion {
    let chars: Vec<char> = code.chars().collect();
    let cursor = cursor.min(chars.len());
    let (start, token) = name_before(&chars, cursor);
    let split = token.rfind(['.', ':']);
    let (candidates, partial, offset) = match split {
        None => {
            let mut c: Vec<String> = KEYWORDS.iter().map(|k| k.to_string()).collect();
            c.extend(table_keys(&lua.globals(), false));
            (c, token.clone(), 0)
        }
        Some(at) => {
            let (path, sep, partial) = (&token[..at], &token[at..at + 1], &token[at + 1..]);
            let candidates = match (resolve(lua, path), sep) {
                (Some(Value::Table(t)), ".") => table_keys(&t, false),
                (Some(Value::Table(t)), _) => table_keys(&t, true),
                (Some(v @ Value::UserData(_)), ":") => {
                    methods(&v).into_iter().map(str::to_string).collect()
                }
                _ => Vec::new(),
            };
            (candidates, partial.to_string(), path.chars().count() + 1)
        }
    };
    let mut matches: Vec<String> = candidates
        .into_iter()
        .filter(|c| c.starts_with(&partial) && (partial.starts_with('_') || !c.starts_with('_')))
        .collect();
    matches.sort();
    matches.dedup();
    Completion {
        matches,
        cursor_start: start + offset,
        cursor_end: cursor,
    }
}

pub(crate) fn is_complete(lua: &Lua, code: &str) -> Completeness {
    match lua.load(code).into_function() {
        Ok(_) => Completeness::Complete,
        Err(e) => {
            // A bare expression is a complete cell too: its value is shown.
            if lua
                .load(format!("return ({code}\n)"))
                .into_function()
                .is_ok()
            {
                return Completeness::Complete;
            }
            match e {
                mlua::Error::SyntaxError {
                    incomplete_input: true,
                    ..
                } => Completeness::Incomplete,
                // A quoted string still open on the last line: the user is typing it.
                mlua::Error::SyntaxError { message, .. }
                    if message.contains("unfinished string")
                        && message.contains(&format!(":{}:", code.lines().count().max(1))) =>
                {
                    Completeness::Incomplete
                }
                _ => Completeness::Invalid,
            }
        }
    }
}

/// Every embedded reference page: (function name, page), sorted by name.
pub fn docs() -> &'static [(&'static str, &'static str)] {
    DOCS
}

/// The documented type name of a `sw` value (`DataFrame`, `Model`, ...), for method pages.
fn type_label(value: &Value) -> Option<&'static str> {
    let Value::UserData(ud) = value else {
        return None;
    };
    userdata_type(ud).map(|t| t.0)
}

/// The doc page of a function, by its documented name (`sw.read_csv`, `DataFrame.head`).
pub fn doc_page(name: &str) -> Option<&'static str> {
    DOCS.binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| DOCS[i].1)
}

/// What to show for the name at the cursor: its doc page, or else its type and value.
pub(crate) fn inspect(lua: &Lua, code: &str, cursor: usize) -> Option<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut end = cursor.min(chars.len());
    while end < chars.len() && is_name_char(chars[end]) {
        end += 1;
    }
    let (_, token) = name_before(&chars, end);
    let token = token.trim_matches(['.', ':']).to_string();
    if token.is_empty() {
        return None;
    }
    if let Some(page) = doc_page(&token) {
        return Some(page.to_string());
    }
    // `df:head` → the page of DataFrame.head, by the receiver's type.
    if let Some(at) = token.rfind([':', '.']) {
        let (path, method) = (&token[..at], &token[at + 1..]);
        if let Some(label) = resolve(lua, path).as_ref().and_then(type_label) {
            if let Some(page) = doc_page(&format!("{label}.{method}")) {
                return Some(page.to_string());
            }
        }
    }
    let value = resolve(lua, &token)?;
    let kind = type_label(&value).unwrap_or(value.type_name());
    let shown = crate::repr::repr(lua, &value).unwrap_or_default();
    Some(format!("{token}: {kind}\n\n{shown}"))
}
