//! The exception hierarchy: `SandwichError` and, under it, `ConfigError` (a bad argument or
//! option), `DataError` (a missing column, an unreadable file, a frame that cannot cross the
//! boundary) and `ModelError` (loading, training, generation). An interrupt is `Interrupted`, a
//! `KeyboardInterrupt`, so that Ctrl-C behaves as Python users expect. No Rust panic reaches
//! Python as one: the Lua session's calls turn a panic (a bug) into `Error::Panic`, mapped to
//! `SandwichError` here, and `guard` does the same for the calls that bypass them.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::prelude::*;

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
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        Err(SandwichError::new_err(format!(
            "sandwich: internal error (a bug; please report it): {what}"
        )))
    })
}

/// The exception class for an error of the core, from its kind (never from its words): a bad
/// argument or spec is a `ConfigError`, unreadable or missing data a `DataError`, a tensor
/// operation a `ModelError`, an interrupt `Interrupted`. The message keeps the cause chain.
pub fn core_to_py(e: sandwich_core::Error) -> PyErr {
    use sandwich_core::Error as E;
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(&format!("\ncaused by: {s}"));
        source = s.source();
    }
    match e {
        E::InvalidArgument { .. } => ConfigError::new_err(message),
        E::Io { .. } | E::Polars { .. } => DataError::new_err(message),
        E::Tensor(_) => ModelError::new_err(message),
        E::Interrupted => Interrupted::new_err(message),
        E::Hook { .. } => SandwichError::new_err(message),
    }
}

pub fn data_error(message: String) -> PyErr {
    DataError::new_err(message)
}

/// The exception class for an error of the Lua session, from what failed: the function or
/// operation an error names comes first in its message (`sw.train.classify: bad argument ...`).
pub fn to_py(e: sandwich_lua::Error) -> PyErr {
    match &e {
        sandwich_lua::Error::Interrupted => return Interrupted::new_err("interrupted"),
        // A panic the session caught is a bug, whatever words its message happens to hold.
        sandwich_lua::Error::Panic(_) => return SandwichError::new_err(e.to_string()),
        _ => {}
    }
    let message = match &e {
        // A traceback with frames (an error in Lua code) helps; a bare header (an error raised
        // by a function called straight from Python) is noise.
        sandwich_lua::Error::Script {
            message, traceback, ..
        } if traceback.lines().skip(1).any(|l| !l.trim().is_empty()) => {
            format!("{message}\n{traceback}")
        }
        sandwich_lua::Error::Script { message, .. } => message.clone(),
        other => other.to_string(),
    };
    let head = message.lines().next().unwrap_or("").to_string();
    if head.contains("interrupted") && head.len() < 40 {
        return Interrupted::new_err(message);
    }
    let subject = head.split(':').next().unwrap_or("");
    let model = ["model", "Model", "train", "generate", "lora"]
        .iter()
        .any(|k| subject.contains(k));
    let config = [
        "bad argument",
        "bad field",
        "invalid argument",
        "unknown field",
    ]
    .iter()
    .any(|k| head.contains(k));
    let data = [
        "read_",
        "write_",
        "cannot access",
        "column",
        "DataFrame",
        "scan_",
    ]
    .iter()
    .any(|k| head.contains(k));
    if model {
        ModelError::new_err(message)
    } else if config {
        ConfigError::new_err(message)
    } else if data {
        DataError::new_err(message)
    } else {
        SandwichError::new_err(message)
    }
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
