//! The exception hierarchy: `SandwichError` and, under it, `ConfigError` (a bad argument or
//! option), `DataError` (a missing column, an unreadable file, a frame that cannot cross the
//! boundary) and `ModelError` (loading, training, generation). An interrupt is `Interrupted`, a
//! `KeyboardInterrupt`, so that Ctrl-C behaves as Python users expect. No Rust panic reaches
//! Python as one: the Lua session's calls turn a panic (a bug) into `Error::Panic`, mapped to
//! `SandwichError` here, and `guard` does the same for the calls that bypass them.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::prelude::*;
use sandwich_core::ErrorKind;

create_exception!(
    sandwich,
    SandwichError,
    PyException,
    "Any error of the Sandwich workbench."
);
create_exception!(
    sandwich,
    ConfigError,
    SandwichError,
    "A bad argument, option or experiment spec."
);
create_exception!(
    sandwich,
    DataError,
    SandwichError,
    "Data that cannot be read, found or converted."
);
create_exception!(
    sandwich,
    ModelError,
    SandwichError,
    "A model that cannot be loaded, trained or run."
);
create_exception!(
    sandwich,
    Interrupted,
    PyKeyboardInterrupt,
    "The running job was interrupted (Ctrl-C)."
);

/// Runs a call into the core that does not go through the Lua session's own call (which already
/// turns a panic into `Error::Panic`): rendering, frame conversion. A Rust panic in it (a bug)
/// becomes a `SandwichError` that says so, instead of pyo3's `PanicException` (a
/// `BaseException` that `except Exception` misses).
pub fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(SandwichError::new_err(format!(
            "sandwich: internal error (a bug; please report it): {}",
            sandwich_core::panic_message(&*payload)
        )))
    })
}

/// The exception class for an error kind: a bad argument or spec is a `ConfigError`,
/// unreadable or missing data a `DataError`, a model that cannot be built or run a
/// `ModelError`, an interrupt `Interrupted`.
fn class_of(kind: ErrorKind, message: String) -> PyErr {
    match kind {
        ErrorKind::Config => ConfigError::new_err(message),
        ErrorKind::Data => DataError::new_err(message),
        ErrorKind::Model => ModelError::new_err(message),
        ErrorKind::Interrupted => Interrupted::new_err(message),
        ErrorKind::Other => SandwichError::new_err(message),
        // Its message already says it is an internal error (a caught Rust panic).
        ErrorKind::Internal => SandwichError::new_err(message),
    }
}

/// An error of the core as a Python exception of its kind; the message keeps the cause chain.
pub fn core_to_py(e: sandwich_core::Error) -> PyErr {
    class_of(e.kind(), e.with_causes())
}

pub fn data_error(message: String) -> PyErr {
    DataError::new_err(message)
}

/// An error of the Lua session as a Python exception of the kind carried up with it (from the
/// core or the binding that raised it), never guessed from the words of its message.
pub fn to_py(e: sandwich_lua::Error) -> PyErr {
    // A caught panic (a bug) is of kind Internal: a SandwichError, whatever its words.
    let message = match &e {
        sandwich_lua::Error::Core(core) => core.with_causes(),
        // A traceback with frames (an error in Lua code) helps; a bare header (an error raised
        // by a function called straight from Python) is noise.
        sandwich_lua::Error::Script {
            message,
            traceback,
            causes,
            ..
        } => {
            let mut text = message.clone();
            for c in causes {
                text.push_str(&format!("\ncaused by: {c}"));
            }
            if traceback.lines().skip(1).any(|l| !l.trim().is_empty()) {
                text.push('\n');
                text.push_str(traceback);
            }
            text
        }
        other => other.to_string(),
    };
    class_of(e.kind(), message)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SandwichError", py.get_type::<SandwichError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("Interrupted", py.get_type::<Interrupted>())?;
    Ok(())
}
