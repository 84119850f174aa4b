//! The one error type of `sandwich-lua`, and its conversion to Lua errors.

pub use sandwich_core::ErrorKind;

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
    /// A chunk failed: the message, the Lua traceback, the chain of Rust causes and the kind
    /// of the error that started it (a string raised by Lua code is [`ErrorKind::Other`]).
    #[error("{message}")]
    Script {
        message: String,
        traceback: String,
        causes: Vec<String>,
        kind: ErrorKind,
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
    /// The [`ErrorKind`] of this error, carried up from where it was raised.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Core(e) => e.kind(),
            Error::Argument { .. } | Error::Usage { .. } | Error::Syntax(_) => ErrorKind::Config,
            Error::Script { kind, .. } => *kind,
            Error::Interrupted => ErrorKind::Interrupted,
            Error::Panic(_) => ErrorKind::Internal,
            Error::Lua(e) => kind_of(e),
        }
    }

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

/// The kind of a Lua error: that of the first error of ours found along its chain of causes
/// (through callbacks, contexts and external errors). A Lua value passed the wrong type is a
/// bad argument; an error raised by Lua code itself (`error("...")`) is [`ErrorKind::Other`].
pub(crate) fn kind_of(e: &mlua::Error) -> ErrorKind {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(ours) = err.downcast_ref::<Error>() {
            if !matches!(ours, Error::Lua(_)) {
                return ours.kind();
            }
        }
        if let Some(core) = err.downcast_ref::<sandwich_core::Error>() {
            return core.kind();
        }
        if let Some(lua) = err.downcast_ref::<mlua::Error>() {
            match lua {
                mlua::Error::ExternalError(inner) => {
                    current = Some(inner.as_ref());
                    continue;
                }
                mlua::Error::CallbackError { cause, .. }
                | mlua::Error::WithContext { cause, .. } => {
                    current = Some(cause.as_ref());
                    continue;
                }
                mlua::Error::BadArgument { cause, .. } => {
                    // A conversion of ours inside the argument keeps its own kind.
                    return match kind_of(cause) {
                        ErrorKind::Other => ErrorKind::Config,
                        k => k,
                    };
                }
                mlua::Error::FromLuaConversionError { .. } | mlua::Error::SyntaxError { .. } => {
                    return ErrorKind::Config
                }
                _ => {}
            }
        }
        current = err.source();
    }
    ErrorKind::Other
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
        let text = error.with_causes();
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
