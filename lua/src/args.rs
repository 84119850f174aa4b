//! Turning Lua arguments into Rust values, with errors that name the function and argument.

use mlua::{AnyUserData, Lua, Table, Value, Variadic};
use polars::prelude::*;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::Error;
use crate::expr::LuaExpr;

/// A DataFrame argument (a cheap clone: polars shares the buffers).
pub(crate) fn frame(function: &str, argument: &str, v: &Value) -> mlua::Result<DataFrame> {
    match v {
        Value::UserData(ud) if ud.is::<crate::frame::LuaDataFrame>() => {
            Ok(ud.borrow::<crate::frame::LuaDataFrame>()?.0.clone())
        }
        other => Err(Error::argument(function, argument, "a DataFrame", type_name(other)).into()),
    }
}

/// What a Lua value is, for error messages: userdata show their `sw` type name.
pub(crate) fn type_name(value: &Value) -> String {
    match value {
        Value::UserData(ud) => userdata_name(ud),
        Value::LightUserData(p) if p.0.is_null() => "sw.null".into(),
        other => other.type_name().into(),
    }
}

fn userdata_name(ud: &AnyUserData) -> String {
    crate::introspect::userdata_type(ud)
        .map_or("userdata", |t| t.0)
        .into()
}

/// Deserializes an option table; `nil` gives the defaults. Unknown keys are errors that list
/// the valid ones (the option structs deny unknown fields).
pub(crate) fn options<T: DeserializeOwned + Default>(
    lua: &Lua,
    function: &str,
    value: Option<Value>,
) -> mlua::Result<T> {
    match value {
        None | Some(Value::Nil) => Ok(T::default()),
        some => required_options(lua, function, some),
    }
}

/// Where in an options table deserialization failed, written as Lua code would reach it:
/// `options.overseers[1].accuracy` (Lua's sequences count from 1, serde's from 0).
fn lua_path(root: &str, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = root.to_string();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{}]", index + 1)),
            Segment::Map { key } => {
                out.push('.');
                out.push_str(key);
            }
            Segment::Enum { variant } => {
                out.push('.');
                out.push_str(variant);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// The error for an option table that does not deserialize: it names the option (its Lua path)
/// and says what was wrong there.
pub(crate) fn option_error(
    function: &str,
    path: &serde_path_to_error::Path,
    detail: String,
) -> Error {
    let argument = lua_path("options", path);
    let detail = plain_words(&detail);
    let expected = if detail.starts_with("unknown field") {
        "a known option key"
    } else if argument == "options" {
        "a valid option table"
    } else {
        "a valid value"
    };
    Error::argument(function, &argument, expected, detail)
}

/// serde's message in the words of a Lua user: Rust's type names (`usize`, `f64`, ...) say
/// nothing to someone who wrote `{n_iter = -1}`.
fn plain_words(detail: &str) -> String {
    let mut out = detail.to_string();
    for (rust, plain) in [
        ("expected usize", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u8", "expected a non-negative integer below 256"),
        ("expected i64", "expected an integer"),
        ("expected i32", "expected an integer"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a boolean", "expected true or false"),
        ("invalid type: ", ""),
        ("invalid value: ", ""),
        ("floating point `", "the number `"),
    ] {
        out = out.replace(rust, plain);
    }
    out
}

/// Like [`options`], for option tables that must be given (they have required keys).
pub(crate) fn required_options<T: DeserializeOwned>(
    // Unused since deserialization goes through `serde_path_to_error`; kept because every
    // argument helper takes the state and ~50 callers (and their own helpers) pass it.
    _lua: &Lua,
    function: &str,
    value: Option<Value>,
) -> mlua::Result<T> {
    match value {
        Some(v @ Value::Table(_)) => {
            let taken = taken_keys(&v)?;
            table_shape(function, &v, "options", 0)?;
            // The path names the option whose value is wrong (`options.n_iter`), not only
            // the table: serde's own message says what was expected there.
            let de = mlua::serde::Deserializer::new(v);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().clone();
                let mut detail = match e.into_inner() {
                    mlua::Error::DeserializeError(msg) => msg,
                    other => other.to_string(),
                };
                if path.iter().count() <= 1 && detail.starts_with("unknown field") {
                    for key in &taken {
                        detail.push_str(&format!(", `{key}`"));
                    }
                }
                option_error(function, &path, detail).into()
            })
        }
        Some(other) => {
            Err(Error::argument(function, "options", "a table", type_name(&other)).into())
        }
        None => Err(Error::argument(function, "options", "a table", "nothing").into()),
    }
}

/// Where a binding records the keys it took out of an options table before handing the rest to
/// serde: an unknown key's error then lists them beside the config struct's own.
const TAKEN: &str = "__sandwich_taken";

/// A copy of a trainer's options table (the binding takes keys out of it) that records the
/// keys taken, for [`TAKEN`].
pub(crate) fn options_copy(lua: &Lua, t: &Table) -> mlua::Result<Table> {
    let out = crate::model::copy(lua, t)?;
    out.raw_set(TAKEN, "")?;
    Ok(out)
}

/// Records that `key` is one of the binding's own options (see [`TAKEN`]), in a table made by
/// [`options_copy`]; other tables are left alone.
pub(crate) fn note_taken(t: &Table, key: &str) -> mlua::Result<()> {
    let Some(mut keys) = t.raw_get::<Option<String>>(TAKEN)? else {
        return Ok(());
    };
    if !keys.split(',').any(|k| k == key) {
        if !keys.is_empty() {
            keys.push(',');
        }
        keys.push_str(key);
    }
    t.raw_set(TAKEN, keys)
}

/// The keys [`note_taken`] recorded, removed from the table so serde does not see them.
fn taken_keys(v: &Value) -> mlua::Result<Vec<String>> {
    let Value::Table(t) = v else {
        return Ok(Vec::new());
    };
    let keys: Option<String> = t.raw_get(TAKEN)?;
    t.raw_set(TAKEN, Value::Nil)?;
    Ok(keys
        .map(|k| {
            k.split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

/// A string or a list of strings, in option tables.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(x) => vec![x],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A value as an expression where a bare string names a column (`select("a")`).
pub(crate) fn column_expr(function: &str, argument: &str, value: &Value) -> mlua::Result<Expr> {
    match value {
        Value::String(s) => Ok(col(s.to_str()?.as_ref())),
        _ => value_expr(function, argument, value),
    }
}

/// A value as an expression where a bare string is a literal (`col("a"):eq("x")`).
pub(crate) fn value_expr(function: &str, argument: &str, value: &Value) -> mlua::Result<Expr> {
    Ok(match value {
        Value::UserData(ud) if ud.is::<LuaExpr>() => ud.borrow::<LuaExpr>()?.0.clone(),
        Value::Integer(i) => lit(*i),
        Value::Number(n) => lit(*n),
        Value::Boolean(b) => lit(*b),
        Value::String(s) => lit(s.to_str()?.to_string()),
        Value::LightUserData(p) if p.0.is_null() => lit(Null {}),
        other => {
            return Err(Error::argument(
                function,
                argument,
                "an Expr, a number, a string or a boolean",
                type_name(other),
            )
            .into())
        }
    })
}

/// Expressions from variadic arguments, each a column name, an Expr or a list of them.
pub(crate) fn column_exprs(
    function: &str,
    argument: &str,
    values: &[Value],
) -> mlua::Result<Vec<Expr>> {
    let mut out = Vec::new();
    for value in values {
        match value {
            Value::Table(t) => {
                for item in t.sequence_values::<Value>() {
                    out.push(column_expr(function, argument, &item?)?);
                }
            }
            other => out.push(column_expr(function, argument, other)?),
        }
    }
    Ok(out)
}

/// Rejects a plain Lua boolean where a condition (an Expr) is expected. A boolean is
/// rejected, because `sw.col("a") == 1` is one: Lua compares a userdata and a number without
/// calling any metamethod and gives `false`, which would silently filter every row out.
pub(crate) fn no_bare_boolean(function: &str, argument: &str, value: &Value) -> mlua::Result<()> {
    if let Value::Boolean(b) = value {
        return Err(Error::argument(
            function,
            argument,
            "an Expr (Lua's ==, ~=, <, <=, >, >= between an Expr and a value give a plain \
             boolean: write sw.col(\"a\"):eq(1), :ne, :lt, :le, :gt, :ge)",
            format!("the boolean {b}"),
        )
        .into());
    }
    Ok(())
}

/// A predicate (of `filter`, `when`): a boolean Expr or a column's name. A plain boolean is
/// the trap `no_bare_boolean` explains; a number can be no predicate.
pub(crate) fn predicate(function: &str, argument: &str, value: &Value) -> mlua::Result<()> {
    no_bare_boolean(function, argument, value)?;
    if let Value::Integer(_) | Value::Number(_) = value {
        return Err(Error::argument(
            function,
            argument,
            "a boolean Expr (e.g. sw.col(\"a\"):gt(1)) or a boolean column's name",
            type_name(value),
        )
        .into());
    }
    Ok(())
}

/// Expressions from `Variadic` arguments, rejecting an empty list.
pub(crate) fn nonempty_exprs(
    function: &str,
    argument: &str,
    values: &Variadic<Value>,
) -> mlua::Result<Vec<Expr>> {
    let exprs = column_exprs(function, argument, values)?;
    if exprs.is_empty() {
        return Err(Error::argument(
            function,
            argument,
            "at least one column name or Expr",
            "nothing",
        )
        .into());
    }
    Ok(exprs)
}

/// Column names: a string or a list of strings.
pub(crate) fn names(function: &str, argument: &str, value: &Value) -> mlua::Result<Vec<String>> {
    let bad = |got: &Value| {
        mlua::Error::from(Error::argument(
            function,
            argument,
            "a column name or a list of column names",
            type_name(got),
        ))
    };
    match value {
        Value::String(s) => Ok(vec![s.to_str()?.to_string()]),
        Value::Table(t) => crate::convert::list_values(function, argument, t)?
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.to_str()?.to_string()),
                other => Err(bad(&other)),
            })
            .collect(),
        other => Err(bad(other)),
    }
}

/// Parses a dtype name such as `"int64"` or `"str"`.
pub(crate) fn dtype(function: &str, name: &str) -> mlua::Result<DataType> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "int8" | "i8" => DataType::Int8,
        "int16" | "i16" => DataType::Int16,
        "int32" | "i32" => DataType::Int32,
        "int64" | "i64" | "int" | "integer" => DataType::Int64,
        "uint8" | "u8" => DataType::UInt8,
        "uint16" | "u16" => DataType::UInt16,
        "uint32" | "u32" => DataType::UInt32,
        "uint64" | "u64" => DataType::UInt64,
        "float32" | "f32" => DataType::Float32,
        "float64" | "f64" | "float" | "number" => DataType::Float64,
        "bool" | "boolean" => DataType::Boolean,
        "str" | "string" | "utf8" => DataType::String,
        "date" => DataType::Date,
        _ => {
            return Err(Error::argument(
                function,
                "dtype",
                "one of int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, \
                 float64, bool, str, date",
                format!("{name:?}"),
            )
            .into())
        }
    })
}

/// An integer argument, strictly: a number with an integral value (mlua would also turn the
/// string "3" into 3), or nothing.
pub(crate) fn integer(function: &str, argument: &str, v: &Value) -> mlua::Result<Option<i64>> {
    match v {
        Value::Nil => Ok(None),
        Value::Integer(i) => Ok(Some(*i)),
        Value::Number(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Ok(Some(*x as i64)),
        other => Err(Error::argument(
            function,
            argument,
            "an integer",
            match other {
                Value::Number(x) => x.to_string(),
                o => type_name(o).to_string(),
            },
        )
        .into()),
    }
}

/// A string argument, strictly: a number is not turned into its digits (mlua would), and a
/// wrong type is said in Lua's words.
pub(crate) fn string(function: &str, argument: &str, v: &Value) -> mlua::Result<String> {
    match v {
        Value::String(s) => Ok(s.to_str()?.to_string()),
        other => Err(Error::argument(function, argument, "a string", type_name(other)).into()),
    }
}

/// A file path argument.
pub(crate) fn path(function: &str, value: &Value) -> mlua::Result<String> {
    match value {
        // An empty path is no place: writing "" would do nothing, or write somewhere unsaid.
        Value::String(s) if s.as_bytes().is_empty() => {
            Err(Error::argument(function, "path", "a non-empty file path", "\"\"").into())
        }
        Value::String(s) => Ok(s.to_str()?.to_string()),
        other => {
            Err(Error::argument(function, "path", "a file path (string)", type_name(other)).into())
        }
    }
}

/// A table is either a list (keys 1..n, no holes) or a map (string keys), at every depth:
/// mlua's serde conversion would read `{1, 2, x = 3}` as `[1, 2]` (losing `x`) and `{1, nil,
/// 3}` as `[1]` (losing 3). Option tables and JSON values are checked with it.
pub(crate) fn table_shape(function: &str, v: &Value, at: &str, depth: usize) -> mlua::Result<()> {
    let Value::Table(t) = v else {
        return Ok(());
    };
    if depth > 200 {
        return Err(Error::argument(
            function,
            at,
            "a table without cycles",
            "a table nested too deep (a cycle?)",
        )
        .into());
    }
    let (mut ints, mut strings) = (0usize, 0usize);
    for pair in t.pairs::<Value, Value>() {
        let (k, val) = pair?;
        let here = match &k {
            Value::Integer(i) => {
                ints += 1;
                format!("{at}[{i}]")
            }
            Value::String(s) => {
                strings += 1;
                format!("{at}.{}", s.to_string_lossy())
            }
            other => {
                return Err(Error::argument(
                    function,
                    at,
                    "a table with string keys or a list",
                    format!("a {} key", crate::args::type_name(other)),
                )
                .into())
            }
        };
        if let Value::Number(x) = val {
            // JSON has no NaN or infinity: serde would turn one into null, i.e. the default.
            if !x.is_finite() {
                return Err(
                    Error::argument(function, &here, "a finite number", x.to_string()).into(),
                );
            }
        }
        table_shape(function, &val, &here, depth + 1)?;
    }
    if ints > 0 && strings > 0 {
        return Err(Error::argument(
            function,
            at,
            "a list (keys 1..n) or an object (string keys), not both",
            format!("{ints} list entries and {strings} named keys"),
        )
        .into());
    }
    if ints > 0 {
        crate::convert::list_values(function, at, t)?;
    }
    Ok(())
}
