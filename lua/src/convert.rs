//! Lua tables ⇄ polars columns.
//!
//! Lua has no null inside arrays (a `nil` ends a sequence), so missing values are written
//! `sw.null` going in and come back as `sw.null` from `df:column()`; `df:to_records()` leaves
//! the key out instead, which is how Lua tables say "absent".

use mlua::{Lua, Table, Value};
use polars::prelude::*;

use crate::args::type_name;
use crate::error::{Error, PolarsContext};

/// How often long conversion loops look at the interrupt flag.
const CHECK_EVERY: usize = 1 << 16;

pub(crate) fn check_interrupt(lua: &Lua, i: usize) -> mlua::Result<()> {
    if i.is_multiple_of(CHECK_EVERY) {
        if let Some(flag) = lua.app_data_ref::<sandwich_core::Interrupt>() {
            if flag.is_requested() {
                return Err(Error::Interrupted.into());
            }
        }
    }
    Ok(())
}

fn is_null(v: &Value) -> bool {
    matches!(v, Value::Nil) || matches!(v, Value::LightUserData(p) if p.0.is_null())
}

/// The kind of a column being built from Lua values; widens integers to floats.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Unknown,
    Int,
    Float,
    Str,
    Bool,
}

fn kind_of(v: &Value) -> Option<Kind> {
    match v {
        Value::Integer(_) => Some(Kind::Int),
        Value::Number(_) => Some(Kind::Float),
        Value::String(_) => Some(Kind::Str),
        Value::Boolean(_) => Some(Kind::Bool),
        _ => None,
    }
}

/// Builds a column from Lua values (all one kind, integers and floats mixing into floats).
pub(crate) fn series_from_values(
    lua: &Lua,
    function: &str,
    name: &str,
    values: &[Value],
) -> mlua::Result<Series> {
    let mut kind = Kind::Unknown;
    for (i, v) in values.iter().enumerate() {
        check_interrupt(lua, i)?;
        if is_null(v) {
            continue;
        }
        let Some(k) = kind_of(v) else {
            return Err(Error::argument(
                function,
                name,
                "numbers, strings, booleans or sw.null",
                format!("a {} at position {}", type_name(v), i + 1),
            )
            .into());
        };
        kind = match (kind, k) {
            (Kind::Unknown, k) => k,
            (a, b) if a == b => a,
            (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
            (a, b) => {
                return Err(Error::argument(
                    function,
                    name,
                    "values of one type",
                    format!("{a:?} and {b:?} values mixed (position {})", i + 1).to_lowercase(),
                )
                .into())
            }
        };
    }
    let name = PlSmallStr::from(name);
    Ok(match kind {
        Kind::Int => Series::new(
            name,
            values
                .iter()
                .map(|v| match v {
                    Value::Integer(i) => Some(*i),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Kind::Float => Series::new(
            name,
            values
                .iter()
                .map(|v| match v {
                    Value::Integer(i) => Some(*i as f64),
                    Value::Number(n) => Some(*n),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Kind::Str => Series::new(
            name,
            values
                .iter()
                .map(|v| match v {
                    Value::String(s) => Some(s.to_string_lossy()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Kind::Bool => Series::new(
            name,
            values
                .iter()
                .map(|v| match v {
                    Value::Boolean(b) => Some(*b),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        // Only nulls (or nothing): a null column, as polars does.
        Kind::Unknown => Series::full_null(name, values.len(), &DataType::Null),
    })
}

/// One value of a column as Lua sees it; `None` for null.
pub(crate) fn any_to_lua(lua: &Lua, value: AnyValue) -> mlua::Result<Option<Value>> {
    Ok(Some(match value {
        AnyValue::Null => return Ok(None),
        AnyValue::Boolean(b) => Value::Boolean(b),
        AnyValue::Int8(v) => Value::Integer(v.into()),
        AnyValue::Int16(v) => Value::Integer(v.into()),
        AnyValue::Int32(v) => Value::Integer(v.into()),
        AnyValue::Int64(v) => Value::Integer(v),
        AnyValue::UInt8(v) => Value::Integer(v.into()),
        AnyValue::UInt16(v) => Value::Integer(v.into()),
        AnyValue::UInt32(v) => Value::Integer(v.into()),
        // Lua integers are i64: larger values become floats rather than wrapping.
        AnyValue::UInt64(v) => match i64::try_from(v) {
            Ok(i) => Value::Integer(i),
            Err(_) => Value::Number(v as f64),
        },
        AnyValue::Float32(v) => Value::Number(v.into()),
        AnyValue::Float64(v) => Value::Number(v),
        AnyValue::String(s) => Value::String(lua.create_string(s)?),
        AnyValue::StringOwned(s) => Value::String(lua.create_string(s.as_str())?),
        AnyValue::List(series) => {
            let t = lua.create_table_with_capacity(series.len(), 0)?;
            for v in series.iter() {
                t.push(any_to_lua(lua, v)?.unwrap_or(Value::NULL))?;
            }
            Value::Table(t)
        }
        other => Value::String(lua.create_string(other.to_string())?),
    }))
}

/// A column as a Lua array; nulls are `sw.null`.
pub(crate) fn column_to_table(lua: &Lua, column: &Column) -> mlua::Result<Table> {
    let series = column.as_materialized_series();
    let table = lua.create_table_with_capacity(series.len(), 0)?;
    for (i, v) in series.iter().enumerate() {
        check_interrupt(lua, i)?;
        table.raw_set(i + 1, any_to_lua(lua, v)?.unwrap_or(Value::NULL))?;
    }
    Ok(table)
}

/// Rows as Lua tables keyed by column name; nulls are left out.
pub(crate) fn records(lua: &Lua, df: &DataFrame) -> mlua::Result<Table> {
    let names: Vec<mlua::LuaString> = df
        .get_column_names()
        .iter()
        .map(|n| lua.create_string(n.as_str()))
        .collect::<mlua::Result<_>>()?;
    let rows = lua.create_table_with_capacity(df.height(), 0)?;
    for _ in 0..df.height() {
        rows.raw_push(lua.create_table_with_capacity(0, names.len())?)?;
    }
    for (column, name) in df.columns().iter().zip(&names) {
        let series = column.as_materialized_series();
        for (i, v) in series.iter().enumerate() {
            check_interrupt(lua, i)?;
            if let Some(v) = any_to_lua(lua, v)? {
                rows.raw_get::<Table>(i + 1)?.raw_set(name, v)?;
            }
        }
    }
    Ok(rows)
}

/// The values of a Lua list, in order. A key that is not 1..n (a hole left by `nil`, or a
/// named key) is an error: `ipairs` would stop at the hole and silently drop the rest.
pub(crate) fn list_values(function: &str, argument: &str, t: &Table) -> mlua::Result<Vec<Value>> {
    let mut entries: Vec<(i64, Value)> = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        match k {
            Value::Integer(i) if i >= 1 => entries.push((i, v)),
            other => {
                return Err(Error::argument(
                    function,
                    argument,
                    "a list (keys 1, 2, ..., n)",
                    match &other {
                        Value::String(k) => {
                            format!("a table with the key '{}'", k.to_string_lossy())
                        }
                        Value::Integer(i) => format!("a table with the key {i}"),
                        k => format!("a table with a {} key", type_name(k)),
                    },
                )
                .into())
            }
        }
    }
    entries.sort_by_key(|e| e.0);
    if let Some((pos, _)) = entries
        .iter()
        .enumerate()
        .find(|(i, e)| e.0 != *i as i64 + 1)
    {
        return Err(Error::argument(
            function,
            argument,
            "a list without holes (write sw.null for a missing value; nil ends a Lua list)",
            format!("nothing at position {}", pos + 1),
        )
        .into());
    }
    Ok(entries.into_iter().map(|e| e.1).collect())
}

/// A frame from a Lua table: either columns (`{a = {...}, b = {...}}`) or records
/// (`{{a = 1, b = 2}, ...}`). Lua tables have no key order, so columns come sorted by name
/// unless `order` lists them; a key missing from `order` is an error, never dropped.
pub(crate) fn frame_from_table(
    lua: &Lua,
    function: &str,
    table: &Table,
    order: Option<Vec<String>>,
) -> mlua::Result<DataFrame> {
    let mut columns: Vec<(String, Vec<Value>)> = Vec::new();
    let is_records = table.raw_len() > 0 && matches!(table.raw_get::<Value>(1)?, Value::Table(_));
    if is_records {
        let n = table.raw_len();
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        for (row, record) in table.sequence_values::<Value>().enumerate() {
            check_interrupt(lua, row)?;
            let Value::Table(record) = record? else {
                return Err(Error::argument(
                    function,
                    "records",
                    "a list of tables",
                    format!("a non-table at position {}", row + 1),
                )
                .into());
            };
            for pair in record.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let Value::String(k) = k else {
                    return Err(Error::argument(
                        function,
                        "records",
                        "tables with string keys",
                        format!("a {} key in record {}", type_name(&k), row + 1),
                    )
                    .into());
                };
                let key = k.to_str()?.to_string();
                let slot = *index.entry(key.clone()).or_insert_with(|| {
                    columns.push((key, vec![Value::Nil; n]));
                    columns.len() - 1
                });
                columns[slot].1[row] = v;
            }
        }
    } else {
        for pair in table.pairs::<Value, Value>() {
            let (k, v) = pair?;
            let Value::String(k) = k else {
                return Err(Error::argument(
                    function,
                    "columns",
                    "a table of columns keyed by name, or a list of records",
                    format!("a {} key", type_name(&k)),
                )
                .into());
            };
            let Value::Table(values) = v else {
                return Err(Error::argument(
                    function,
                    &k.to_str()?,
                    "a list of values",
                    type_name(&v),
                )
                .into());
            };
            let name = k.to_str()?.to_string();
            let values = list_values(function, &name, &values)?;
            columns.push((name, values));
        }
    }
    let columns = arrange(function, columns, order)?;
    let series: Vec<Column> = columns
        .iter()
        .map(|(name, values)| series_from_values(lua, function, name, values).map(Column::from))
        .collect::<mlua::Result<_>>()?;
    DataFrame::new_infer_height(series).ctx("sw.frame")
}

fn arrange(
    function: &str,
    mut columns: Vec<(String, Vec<Value>)>,
    order: Option<Vec<String>>,
) -> mlua::Result<Vec<(String, Vec<Value>)>> {
    let Some(order) = order else {
        columns.sort_by(|a, b| a.0.cmp(&b.0));
        return Ok(columns);
    };
    let mut arranged = Vec::with_capacity(order.len());
    for name in &order {
        let Some(pos) = columns.iter().position(|(n, _)| n == name) else {
            return Err(Error::argument(
                function,
                "columns",
                "names of columns present in the data",
                format!("{name:?}, which is not there"),
            )
            .into());
        };
        arranged.push(columns.swap_remove(pos));
    }
    if let Some((extra, _)) = columns.first() {
        return Err(Error::argument(
            function,
            "columns",
            "every column of the data (a column left out would be lost)",
            format!("a list without {extra:?}"),
        )
        .into());
    }
    Ok(arranged)
}
