//! `sandwich._native`: the workbench's core and Lua session as a Python extension module.
//! The Python package (`python/python/sandwich/`) is a thin layer over it: one implementation,
//! the Lua names mirrored, DataFrames through the Arrow PyCapsule interface without copying.

use pyo3::prelude::*;

// The extension's own Rust allocations go through mimalloc with purging off, as in the binary
// (the same file): with the system allocator every large tensor buffer of a training step was
// returned to the OS and page-faulted back in: the DPO benchmark (tests/bench/preference_trl.py)
// went from 0.76 to 1.59 steps/s over the whole call. Python's own objects keep Python's allocator;
// memory handed to Python (Arrow buffers) is freed by its release callback, inside this module.
#[path = "../../kernel/src/alloc.rs"]
mod alloc;
mod convert;
mod error;
mod experiment;
mod frame;
mod object;
mod session;

pub use frame::{from_batches, to_batches};

/// The Lua reference pages: (function name, page), the docstrings of the Python functions.
#[pyfunction]
fn docs() -> Vec<(String, String)> {
    sandwich_lua::docs()
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_string()))
        .collect()
}

/// Panics inside `error::guard`, so that a test can check that no panic reaches Python as a
/// `PanicException` (there is no other way to make the core panic: that would be a bug).
#[pyfunction]
fn _panic_for_tests(message: &str) -> PyResult<()> {
    error::guard(|| panic!("{message}"))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    sandwich_core::pin_thread_count();
    // Python calls the core from the thread that imported it (the main thread, in scripts,
    // pytest and IPython kernels): that thread joins rayon's pool.
    sandwich_core::compute_on_this_thread();
    alloc::keep_freed_memory();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<session::PySession>()?;
    m.add_class::<frame::PyDataFrame>()?;
    m.add_class::<object::LuaObject>()?;
    m.add_class::<experiment::PyExperiment>()?;
    m.add_function(wrap_pyfunction!(experiment::experiment, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::rerun, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::spec_fields, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::sweep_collect, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::sweep_status, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::sweep_main, m)?)?;
    // A sweep's tasks started from Python run in this interpreter's `python -m sandwich`.
    let executable: String = m.py().import("sys")?.getattr("executable")?.extract()?;
    sandwich_lua::sweep::set_worker(vec![
        executable,
        "-m".into(),
        "sandwich".into(),
        "sweep".into(),
        "run-task".into(),
    ]);
    m.add_function(wrap_pyfunction!(docs, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    error::register(m)?;
    Ok(())
}
