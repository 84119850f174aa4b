//! `sandwich.Session`: one Lua state with `sw`, the same session `sandwich run` and the Jupyter
//! kernel use. Long calls run with the GIL released; Lua's `print` goes to Python's `sys.stdout`
//! (so notebooks capture it); training progress goes to `sandwich._progress` (tqdm when it is
//! installed); `sw.display` goes to IPython's display (`sandwich._display`); Ctrl-C stops a Lua
//! loop or a training run and raises `sandwich.Interrupted`.

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use mlua::{HookTriggers, Lua, VmState};
use pyo3::prelude::*;
use sandwich_core::{Interrupt, Progress};
use sandwich_lua::{DisplayEvent, Session, Stream};

use crate::convert::{bundle_dict, lua_err, returned, to_lua, to_python};
use crate::error::to_py;

/// The session a Lua state belongs to, for callbacks into Python that convert values.
struct Owner(Weak<Session>);

pub fn current(lua: &Lua) -> Arc<Session> {
    lua.app_data_ref::<Owner>()
        .and_then(|o| o.0.upgrade())
        .expect("a Lua state made by sandwich.Session")
}

/// How many Lua instructions run between two looks at Python's pending signals.
const SIGNAL_EVERY: u32 = 200_000;

/// Asks Python whether Ctrl-C was pressed (runs its signal handlers on the main thread).
fn ctrl_c_pressed() -> bool {
    Python::attach(|py| py.check_signals().is_err())
}

/// Calls `sandwich.<module>.<function>` from a callback of the core: a failure is printed, never
/// fatal, and Ctrl-C pressed while that Python code ran (it arrives as its error) is kept as an
/// interrupt request.
fn call_python(
    interrupt: &Interrupt,
    f: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>>,
) {
    Python::attach(|py| {
        if let Err(e) = f(py) {
            if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
                interrupt.request();
            } else {
                e.print(py);
            }
        }
    });
}

/// Training progress to `sandwich._progress` (a tqdm bar or a plain text bar).
pub(crate) struct PyProgress {
    pub(crate) interrupt: Interrupt,
}

impl PyProgress {
    /// Calls `sandwich._progress.<method>`; a failing bar is reported, never fatal. Python's
    /// pending signals are looked at on the way (training runs with the GIL released).
    fn call(&self, f: impl for<'py> FnOnce(&Bound<'py, PyModule>) -> PyResult<Bound<'py, PyAny>>) {
        call_python(&self.interrupt, |py| {
            if py.check_signals().is_err() {
                self.interrupt.request();
            }
            f(&py.import("sandwich._progress")?)
        });
    }
}

impl Progress for PyProgress {
    fn start(&self, job: &str, total: usize) {
        self.call(|m| m.call_method1("start", (job, total)));
    }
    fn update(&self, done: usize, info: &str) {
        self.call(|m| m.call_method1("update", (done, info)));
    }
    fn finish(&self) {
        self.call(|m| m.call_method0("finish"));
    }
}

#[pyclass(name = "Session", module = "sandwich", frozen)]
pub struct PySession {
    pub inner: Arc<Session>,
}

#[pymethods]
impl PySession {
    /// A fresh Lua session with the `sw` module loaded.
    #[new]
    fn new() -> PyResult<Self> {
        let session = Arc::new(Session::new().map_err(to_py)?);
        session.lua().set_app_data(Owner(Arc::downgrade(&session)));
        let interrupt = session.interrupt_handle();
        let on_write = interrupt.clone();
        session.set_output(move |stream, text| {
            let name = if stream == Stream::Stderr {
                "stderr"
            } else {
                "stdout"
            };
            call_python(&on_write, |py| {
                py.import("sys")?
                    .getattr(name)?
                    .call_method1("write", (text,))
            });
        });
        // `sw.display` (an experiment's report, charts) through IPython's display machinery
        // when it runs, else as text on stdout: `sandwich/_display.py`.
        let on_display = interrupt.clone();
        session.set_display(move |event| {
            call_python(&on_display, |py| {
                let m = py.import("sandwich._display")?;
                match event {
                    DisplayEvent::Show { bundle, id, update } => {
                        m.call_method1("show", (bundle_dict(py, &bundle)?, id, update))
                    }
                    DisplayEvent::Clear { wait } => m.call_method1("clear", (wait,)),
                }
            })
        });
        session.set_progress(PyProgress {
            interrupt: interrupt.clone(),
        });
        // Replaces the session's instruction hook with one that also looks at Python's
        // signals: Python only learns of Ctrl-C when asked, and the GIL is released here.
        let flag = interrupt.clone();
        let count = std::sync::atomic::AtomicU32::new(0);
        session
            .lua()
            .set_global_hook(
                HookTriggers::new().every_nth_instruction(10_000),
                move |_, _| {
                    use std::sync::atomic::Ordering::Relaxed;
                    if count.fetch_add(10_000, Relaxed) + 10_000 >= SIGNAL_EVERY {
                        count.store(0, Relaxed);
                        if ctrl_c_pressed() {
                            flag.request();
                        }
                    }
                    if flag.is_requested() {
                        Err(sandwich_lua::Error::Interrupted.into())
                    } else {
                        Ok(VmState::Continue)
                    }
                },
            )
            .map_err(lua_err)?;
        Ok(Self { inner: session })
    }

    /// Runs Lua code and returns the value of its last expression (a tuple for several) as a Python value (a
    /// `DataFrame`, a number, a dict, ...) or, for a value Python has no equivalent of (a chart,
    /// a model), a `LuaObject` that shows in notebooks through its MIME bundle.
    fn eval(&self, py: Python<'_>, code: &str) -> PyResult<Py<PyAny>> {
        let session = self.inner.clone();
        let values = py
            .detach(|| session.eval_values(code, "python"))
            .map_err(to_py)?;
        returned(py, &self.inner, values)
    }

    /// Runs a Lua script (`arg` and `...` are `args`, as `sandwich run` sets them).
    #[pyo3(signature = (path, args = Vec::new()))]
    fn run_file(&self, py: Python<'_>, path: PathBuf, args: Vec<String>) -> PyResult<()> {
        let session = self.inner.clone();
        py.detach(|| session.run_file(&path, &args)).map_err(to_py)
    }

    /// A global's value (see `eval` for the conversion).
    fn get(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        let v: mlua::Value = self.inner.lua().globals().get(name).map_err(lua_err)?;
        to_python(py, &self.inner, v, None)
    }

    /// Sets a global: None, bools, numbers, strings, lists, dicts, DataFrames (anything with
    /// `__arrow_c_stream__`: polars, pyarrow, pandas ≥ 2.2) and callables.
    fn set(&self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let lua = self.inner.lua();
        let v = to_lua(lua, value)?;
        lua.globals().set(name, v).map_err(lua_err)
    }

    /// The `sw` module as a handle: `session.sw.aggregate.dawid_skene(crowd)`.
    #[getter]
    fn sw(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v: mlua::Value = self.inner.lua().globals().get("sw").map_err(lua_err)?;
        to_python(py, &self.inner, v, Some("sw".to_string()))
    }

    /// Stops the running call from another thread (as Ctrl-C does).
    fn interrupt(&self) {
        self.inner.interrupt_handle().request();
    }
}
