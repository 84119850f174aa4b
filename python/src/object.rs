//! `LuaObject`: a handle on a Lua value that has no Python equivalent — a model, a chart, a
//! function, a module table such as `sw.aggregate`. Attributes are the value's fields; methods
//! of userdata come back bound (`model.predict(df, column="text")` is `model:predict(df, {...})`);
//! calling a function handle calls it, keyword arguments becoming the trailing options table.

use std::sync::Arc;

use mlua::{Lua, RegistryKey, Value};
use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use sandwich_lua::Session;

use crate::convert::{bundle_dict, call_args, lua_err, returned};
use crate::error::{guard, to_py};

/// A small Lua helper, compiled once per session and kept in the registry (attribute access
/// and calls are frequent; compiling a chunk each time would be wasted work).
fn helper(lua: &Lua, name: &str, code: &str) -> PyResult<mlua::Function> {
    let key = format!("sandwich.python.{name}");
    if let Ok(f) = lua.named_registry_value::<mlua::Function>(&key) {
        return Ok(f);
    }
    let f = lua.load(code).into_function().map_err(lua_err)?;
    lua.set_named_registry_value(&key, &f).map_err(lua_err)?;
    Ok(f)
}

#[pyclass(name = "LuaObject", module = "sandwich", frozen)]
pub struct LuaObject {
    session: Arc<Session>,
    key: RegistryKey,
    /// The Lua name this handle was reached by (`sw.aggregate.dawid_skene`), for its docs.
    path: Option<String>,
}

impl LuaObject {
    pub fn new(session: Arc<Session>, value: Value, path: Option<String>) -> mlua::Result<Self> {
        let key = session.lua().create_registry_value(value)?;
        Ok(Self { session, key, path })
    }

    pub fn value(&self, lua: &Lua) -> PyResult<Value> {
        lua.registry_value(&self.key).map_err(lua_err)
    }
}

#[pymethods]
impl LuaObject {
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let lua = self.session.lua();
        let f = match self.value(lua)? {
            Value::Function(f) => f,
            // A callable table (`sw.experiment`) or userdata: call it through Lua.
            other => helper(
                lua,
                "call",
                "local f = ...; return function(...) return f(...) end",
            )?
            .call::<mlua::Function>(other)
            .map_err(lua_err)?,
        };
        let a = call_args(lua, args, kwargs)?;
        let session = self.session.clone();
        let out = py.detach(|| session.call_function(f, a)).map_err(to_py)?;
        returned(py, &self.session, out)
    }

    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        let lua = self.session.lua();
        let me = self.value(lua)?;
        let bind = |method: Value| -> PyResult<Value> {
            let bind = helper(
                lua,
                "bind",
                "local f, o = ...; return function(...) return f(o, ...) end",
            )?;
            bind.call((method, me.clone())).map_err(lua_err)
        };
        let field: Value = match &me {
            // An object (a table with a metatable, e.g. an Experiment): a field found through
            // `__index` that is a function is a method, bound to the object; raw fields (a
            // module's functions) are not.
            Value::Table(t) => {
                let raw: Value = t.raw_get(name).map_err(lua_err)?;
                let found: Value = t.get(name).map_err(lua_err)?;
                match (raw, found) {
                    (Value::Nil, f @ Value::Function(_)) if t.metatable().is_some() => bind(f)?,
                    (_, found) => found,
                }
            }
            Value::UserData(ud) => {
                // Methods are found through the userdata's `__index`.
                let index = helper(lua, "index", "local o, k = ...; return o[k]")?;
                let f: Value = index.call((ud.clone(), name)).unwrap_or(Value::Nil);
                if let Value::Function(_) = f {
                    bind(f)?
                } else {
                    f
                }
            }
            _ => Value::Nil,
        };
        if field.is_nil() {
            return Err(PyAttributeError::new_err(format!(
                "{} has no field '{name}'",
                self.path.as_deref().unwrap_or("this Lua value")
            )));
        }
        let path = self.path.as_ref().map(|p| format!("{p}.{name}"));
        crate::convert::to_python(
            py,
            &self.session,
            field,
            path.or_else(|| Some(name.to_string())),
        )
    }

    /// The reference page of the Lua function or module this handle names.
    #[getter]
    fn __doc__(&self) -> Option<String> {
        let path = self.path.as_deref()?;
        self.session.inspect(path, path.chars().count())
    }

    fn __dir__(&self) -> PyResult<Vec<String>> {
        let lua = self.session.lua();
        Ok(match self.value(lua)? {
            Value::Table(t) => t
                .pairs::<Value, Value>()
                .filter_map(|p| match p {
                    Ok((Value::String(k), _)) => k.to_str().ok().map(|s| s.to_string()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
    }

    fn __repr__(&self) -> PyResult<String> {
        let lua = self.session.lua();
        let v = self.value(lua)?;
        let tostring: mlua::Function = lua.globals().get("tostring").map_err(lua_err)?;
        let s: String = tostring.call(v).map_err(lua_err)?;
        Ok(match &self.path {
            Some(p) => format!("<Lua {p}: {s}>"),
            None => format!("<Lua {s}>"),
        })
    }

    /// The MIME bundle a notebook shows for this value (charts as vega-lite, ...).
    fn _repr_mimebundle_(
        &self,
        py: Python<'_>,
        include: Option<Py<PyAny>>,
        exclude: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let _ = (include, exclude);
        let lua = self.session.lua();
        let mut values = mlua::MultiValue::new();
        values.push_back(self.value(lua)?);
        let d = match guard(|| self.session.render(values).map_err(to_py))? {
            Some(b) => bundle_dict(py, &b)?,
            None => PyDict::new(py),
        };
        Ok(d.into_any().unbind())
    }
}
