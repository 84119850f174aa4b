//! Values across the boundary. Lua → Python: nil, booleans, numbers and strings as themselves,
//! sequences as lists, other tables as dicts, DataFrames as `sandwich.DataFrame`, anything else
//! (models, charts, functions, module tables) as a `LuaObject` handle. Python → Lua: the same in
//! reverse, plus anything exporting `__arrow_c_stream__` (polars, pyarrow, pandas) as a
//! DataFrame and Python callables as Lua functions (hooks such as `on_step`).

use std::sync::Arc;

use mlua::{Lua, MultiValue, Value};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use sandwich_lua::{GuardedLua, LuaDataFrame, MimeBundle, Session};

use crate::error::to_py;
use crate::frame::{extract_frame, PyDataFrame};
use crate::object::LuaObject;

/// Whether a table is a sequence 1..n with nothing else in it.
fn is_sequence(t: &mlua::Table) -> bool {
    let n = t.raw_len();
    n > 0 && t.pairs::<Value, Value>().count() == n
}

pub fn to_python(
    py: Python<'_>,
    session: &Arc<Session>,
    value: Value,
    path: Option<String>,
) -> PyResult<Py<PyAny>> {
    Ok(match value {
        Value::Nil => py.None(),
        Value::Boolean(b) => PyBool::new(py, b).to_owned().into_any().unbind(),
        Value::Integer(i) => i.into_pyobject(py)?.into_any().unbind(),
        Value::Number(x) => PyFloat::new(py, x).into_any().unbind(),
        Value::String(s) => PyString::new(py, &s.to_str().map_err(lua_err)?)
            .into_any()
            .unbind(),
        Value::UserData(ud) if ud.is::<LuaDataFrame>() => {
            let df = ud.borrow::<LuaDataFrame>().map_err(lua_err)?.0.clone();
            Py::new(py, PyDataFrame { df })?.into_any()
        }
        Value::Table(t) if path.is_none() && is_plain(&t, 0) => {
            if is_sequence(&t) {
                let items = t
                    .sequence_values::<Value>()
                    .map(|v| to_python(py, session, v.map_err(lua_err)?, None))
                    .collect::<PyResult<Vec<_>>>()?;
                PyList::new(py, items)?.into_any().unbind()
            } else {
                let d = PyDict::new(py);
                for pair in t.pairs::<Value, Value>() {
                    let (k, v) = pair.map_err(lua_err)?;
                    d.set_item(
                        to_python(py, session, k, None)?,
                        to_python(py, session, v, None)?,
                    )?;
                }
                d.into_any().unbind()
            }
        }
        other => Py::new(
            py,
            LuaObject::new(session.clone(), other, path).map_err(lua_err)?,
        )?
        .into_any(),
    })
}

/// Data tables (plain values all the way down) become lists and dicts; a table holding
/// functions or metatables (a module, an object) stays a handle.
fn is_plain(t: &mlua::Table, depth: usize) -> bool {
    if depth > 32 || t.metatable().is_some() {
        return false;
    }
    t.pairs::<Value, Value>().all(|p| match p {
        Ok((_, Value::Table(inner))) => is_plain(&inner, depth + 1),
        Ok((_, Value::UserData(ud))) => ud.is::<LuaDataFrame>(),
        Ok((_, Value::Function(_))) | Ok((_, Value::Thread(_))) => false,
        Ok(_) => true,
        Err(_) => false,
    })
}

pub fn to_lua(lua: &Lua, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Nil);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Boolean(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(Value::Integer(obj.extract::<i64>()?));
    }
    if let Ok(x) = obj.cast::<PyFloat>() {
        return Ok(Value::Number(x.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(
            lua.create_string(s.to_cow()?.as_ref()).map_err(lua_err)?,
        ));
    }
    // A path (pathlib.Path, ...) as its string: Lua functions take paths as strings.
    if obj.hasattr("__fspath__")? {
        let path = py_fspath(obj)?;
        return to_lua(lua, &path);
    }
    if let Ok(f) = obj.cast::<PyDataFrame>() {
        return lua_frame(lua, f.get().df.clone());
    }
    if let Ok(o) = obj.cast::<LuaObject>() {
        return o.get().value(lua);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let t = lua.create_table().map_err(lua_err)?;
        for (k, v) in d.iter() {
            t.set(to_lua(lua, &k)?, to_lua(lua, &v)?).map_err(lua_err)?;
        }
        return Ok(Value::Table(t));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let t = lua.create_table().map_err(lua_err)?;
        for (i, item) in obj.try_iter()?.enumerate() {
            t.raw_set(i + 1, to_lua(lua, &item?)?).map_err(lua_err)?;
        }
        return Ok(Value::Table(t));
    }
    if obj.hasattr("__arrow_c_stream__")? || obj.hasattr("__arrow_c_array__")? {
        return lua_frame(lua, extract_frame(obj)?);
    }
    if obj.is_callable() {
        let f = obj.clone().unbind();
        let func = lua
            .guarded_function(move |lua, args: MultiValue| {
                Python::attach(|py| {
                    let session = crate::session::current(lua);
                    let py_args = args
                        .into_iter()
                        .map(|v| to_python(py, &session, v, None))
                        .collect::<PyResult<Vec<_>>>()
                        .map_err(py_err)?;
                    let out = f
                        .bind(py)
                        .call1(PyTuple::new(py, py_args).map_err(py_err)?)
                        .map_err(py_err)?;
                    to_lua(lua, &out).map_err(py_err)
                })
            })
            .map_err(lua_err)?;
        return Ok(Value::Function(func));
    }
    Err(PyTypeError::new_err(format!(
        "sandwich: cannot pass a {} to Lua (expected None, bool, int, float, str, list, tuple, dict, \
         a DataFrame or anything with __arrow_c_stream__, or a callable)",
        obj.get_type().name()?
    )))
}

fn py_fspath<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    obj.py().import("os")?.call_method1("fspath", (obj,))
}

fn lua_frame(lua: &Lua, df: polars::prelude::DataFrame) -> PyResult<Value> {
    Ok(Value::UserData(
        lua.create_userdata(LuaDataFrame(df)).map_err(lua_err)?,
    ))
}

pub fn lua_err(e: mlua::Error) -> PyErr {
    to_py(sandwich_lua::Error::Lua(e))
}

/// A Python exception raised inside a callback, carried through Lua as its error.
fn py_err(e: PyErr) -> mlua::Error {
    mlua::Error::external(e.to_string())
}

/// Converts call arguments: positional ones in order, then keyword ones as one trailing table —
/// the Lua convention of an options table (`f(df, {column = "x"})` is `f(df, column="x")`).
pub fn call_args(
    lua: &Lua,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<MultiValue> {
    let mut out = MultiValue::new();
    for a in args.iter() {
        out.push_back(to_lua(lua, &a)?);
    }
    if let Some(kw) = kwargs {
        if !kw.is_empty() {
            out.push_back(to_lua(lua, kw.as_any())?);
        }
    }
    Ok(out)
}

/// What a Lua call returned: None, the value, or a tuple of several (`sw.experiment.rerun`
/// returns results, identical, experiment).
pub fn returned(py: Python<'_>, session: &Arc<Session>, values: MultiValue) -> PyResult<Py<PyAny>> {
    let mut items = values
        .into_iter()
        .map(|v| to_python(py, session, v, None))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(match items.len() {
        0 => py.None(),
        1 => items.remove(0),
        _ => PyTuple::new(py, items)?.into_any().unbind(),
    })
}

/// A MIME bundle as the dict IPython displays: JSON types (vega-lite, application/json) parsed,
/// text types as strings.
pub fn bundle_dict<'py>(py: Python<'py>, bundle: &MimeBundle) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (mime, data) in bundle.iter() {
        if mime.ends_with("json") {
            let json = py.import("json")?.call_method1("loads", (data,))?;
            d.set_item(mime, json)?;
        } else {
            d.set_item(mime, data)?;
        }
    }
    Ok(d)
}
