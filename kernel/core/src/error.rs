//! The one error type of `sandwich-core`. Variants name the operation and what was expected, so
//! that a front end can show a message a researcher can act on without reading Rust.

use std::path::PathBuf;

/// Errors of the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, created or read.
    #[error("{op}: cannot access '{path}'")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// polars rejected the operation (bad data, missing column, malformed file, ...).
    #[error("{op}: {context}")]
    Polars {
        op: &'static str,
        context: String,
        #[source]
        source: polars::error::PolarsError,
    },
    /// An argument has the right type but a value the operation cannot use.
    #[error("{op}: invalid argument '{arg}': expected {expected}, got {got}")]
    InvalidArgument {
        op: &'static str,
        arg: &'static str,
        expected: String,
        got: String,
    },
    /// A campaign's SQLite file could not be read or written.
    #[error("{op}: {context}")]
    Store {
        op: &'static str,
        context: String,
        #[source]
        source: rusqlite::Error,
    },
    /// A tensor operation failed (shapes, dtypes, devices).
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// A program the operation runs (`sbatch`, a sweep's worker) could not start or failed.
    #[error("{op}: `{program}` failed: {message}")]
    Program {
        op: &'static str,
        program: String,
        message: String,
    },
    /// The user asked the running job to stop (Ctrl-C, a kernel interrupt).
    #[error("interrupted")]
    Interrupted,
    /// A caller's hook (a per-step callback) failed; the job stopped there.
    #[error("{op}: the {hook} hook failed: {message}")]
    Hook {
        op: &'static str,
        hook: &'static str,
        message: String,
    },
}

/// `Result` with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of thing went wrong, for front ends that map errors onto their own classes
/// (Python's `ConfigError`, `DataError`, ...). Carried up from where the error was raised, so
/// no front end has to guess it from the words of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bad argument, option or spec: the caller must change what they asked for.
    Config,
    /// Data that cannot be read, found or converted.
    Data,
    /// A model that cannot be built, loaded, trained or run.
    Model,
    /// The user stopped the job.
    Interrupted,
    /// Anything else: a failing user callback, an error raised by a script.
    Other,
    /// A bug of ours: a Rust panic caught at a binding's entry point. The command line exits
    /// with status 70 for it; Python raises `SandwichError` saying so.
    Internal,
}

/// The message of a caught panic's payload (`panic!` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

impl Error {
    /// The message and its causes, one `caused by:` line each, as the command line prints
    /// them; polars repeats a cause inside its context's message, so each is said once.
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            let cause = s.to_string();
            if !text.contains(&cause) {
                text.push_str("\ncaused by: ");
                text.push_str(&cause);
            }
            source = s.source();
        }
        text
    }

    /// The [`ErrorKind`] of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument { .. } => ErrorKind::Config,
            Error::Io { .. } | Error::Polars { .. } | Error::Store { .. } => ErrorKind::Data,
            Error::Tensor(_) => ErrorKind::Model,
            Error::Interrupted => ErrorKind::Interrupted,
            Error::Hook { .. } | Error::Program { .. } => ErrorKind::Other,
        }
    }

    /// An [`Error::InvalidArgument`].
    pub fn invalid(
        op: &'static str,
        arg: &'static str,
        expected: impl Into<String>,
        got: impl std::fmt::Display,
    ) -> Error {
        Error::InvalidArgument {
            op,
            arg,
            expected: expected.into(),
            got: got.to_string(),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    /// Wraps a polars error with the operation and what it was doing.
    pub fn polars(
        op: &'static str,
        context: impl Into<String>,
    ) -> impl FnOnce(polars::error::PolarsError) -> Error {
        let context = context.into();
        move |source| Error::Polars {
            op,
            context,
            source,
        }
    }
}
