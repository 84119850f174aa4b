//! The one error type of `sandwich-lua`, and its conversion to Lua errors.

/// Errors of the Lua layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error of the core, raised by a `sw` function.
    #[error(transparent)]
    Core(#[from] sandwich_core::Error),
    /// A `sw` function got an argument it cannot use.
    #[error("{function}: bad argument '{argument}': expected {expected}, got {got}")]
    Argument {
        function: String,
        argument: String,
        expected: String,
        got: String,
    },
    /// A Lua operation that the API forbids on purpose, with what to do instead.
    #[error("{function}: {message}")]
    Usage { function: String, message: String },
    /// A chunk failed: the message, the Lua traceback and the chain of Rust causes.
    #[error("{message}")]
    Script {
        message: String,
        traceback: String,
        causes: Vec<String>,
    },
    /// Code does not compile.
    #[error("{0}")]
    Syntax(String),
    /// The running chunk was interrupted.
    #[error("interrupted")]
    Interrupted,
    /// Rust code panicked while Lua was calling it; the session is still usable.
    #[error("internal error (a Rust panic): {0}")]
    Panic(String),
    /// Any other error of the Lua runtime.
    #[error(transparent)]
    Lua(#[from] mlua::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn argument(
        function: &str,
        argument: &str,
        expected: &str,
        got: impl Into<String>,
    ) -> Self {
        Error::Argument {
            function: function.into(),
            argument: argument.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }
}

impl From<Error> for mlua::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Lua(e) => e,
            Error::Core(e) => mlua::Error::external(WithCauses::new(e)),
            other => mlua::Error::external(other),
        }
    }
}

/// A core error as Lua sees it: its message carries its causes (the missing column, the
/// height mismatch, the IO error), so that `pcall` and `tostring` show what the command line
/// shows. The error itself stays reachable as the source (interrupts are found through it).
#[derive(Debug)]
struct WithCauses {
    error: sandwich_core::Error,
    text: String,
}

impl WithCauses {
    fn new(error: sandwich_core::Error) -> Self {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(s) = source {
            let cause = s.to_string();
            // polars repeats a cause inside its context's message; say each thing once.
            if !text.contains(&cause) {
                text.push_str("\ncaused by: ");
                text.push_str(&cause);
            }
            source = s.source();
        }
        WithCauses { error, text }
    }
}

impl std::fmt::Display for WithCauses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for WithCauses {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Converts core results inside Lua callbacks: `sandwich_core::read_csv(..).lua()?`.
pub(crate) trait CoreResultExt<T> {
    fn lua(self) -> mlua::Result<T>;
}

impl<T> CoreResultExt<T> for sandwich_core::Result<T> {
    fn lua(self) -> mlua::Result<T> {
        self.map_err(|e| Error::Core(e).into())
    }
}

/// Names the `sw` function in a polars error: `lf.collect().ctx("DataFrame.filter")?`.
pub(crate) trait PolarsContext<T> {
    fn ctx(self, function: &'static str) -> mlua::Result<T>;
}

impl<T> PolarsContext<T> for polars::prelude::PolarsResult<T> {
    fn ctx(self, function: &'static str) -> mlua::Result<T> {
        self.map_err(|source| {
            Error::Core(sandwich_core::Error::Polars {
                op: function,
                context: "polars rejected the operation".into(),
                source,
            })
            .into()
        })
    }
}
