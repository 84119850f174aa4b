//! The crate a `%%rust` cell of the Sandwich kernel sees as `sandwich`.
//!
//! ```ignore
//! %%rust
//! use sandwich::prelude::*;
//! let crowd: DataFrame = sandwich::get("crowd")?;        // a frame Lua handed over
//! let per_item: DataFrame =
//!     crowd.lazy().group_by([col("item")]).agg([col("label").mean()]).collect()?;
//! sandwich::set("per_item", &per_item)?;                  // Lua: sw.rust.get("per_item")
//! sandwich::export("spread", |args| {                     // Lua: sw.rust.fn("spread")(df)
//!     let df = args.frame(0)?;
//!     let x = df.column("x")?.f64()?;
//!     Ok(x.max().unwrap_or(f64::NAN) - x.min().unwrap_or(f64::NAN))
//! })?;
//! ```
//!
//! `sandwich::sandwich_core` is the engine the Lua session runs on (aggregation, agreement,
//! metrics), and `sandwich::polars` the polars its frames are made of: use these rather than a
//! `:dep polars` of another version, whose `DataFrame` would be a different type.
//!
//! The kernel links this crate's compiled library into each cell (it is not rebuilt per
//! session), so each cell has its own copy of its statics: exports of one cell are served by
//! that cell's copy (see `sandwich_core::cells`).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use polars::prelude::DataFrame;
use sandwich_core::cells::{self, Arg, Server};
use serde::de::DeserializeOwned;

pub use polars;
pub use sandwich_core;

/// What a cell usually wants in scope: polars' prelude and this crate's functions.
pub mod prelude {
    pub use crate::{export, get, set, Args, Error, Value};
    pub use polars::prelude::*;
}

/// An error of a Rust cell or an exported function: a message. Any `std::error::Error` (polars',
/// I/O, parsing) converts into it, so `?` works in both.
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn msg(message: impl Into<String>) -> Error {
        Error(message.into())
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        Error(e.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn exchange(op: &str) -> Result<PathBuf, Error> {
    std::env::var_os(cells::EXCHANGE_ENV)
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error(format!(
                "{op}: not in a Sandwich kernel's Rust cell ({} is not set)",
                cells::EXCHANGE_ENV
            ))
        })
}

/// The frame Lua handed over with `sw.rust.set(name, df)` (or a cell with [`set`]).
pub fn get(name: &str) -> Result<DataFrame, Error> {
    const OP: &str = "sandwich::get";
    Ok(cells::read_frame(OP, &exchange(OP)?, name)?)
}

/// Hands `df` over as `name`, for Lua's `sw.rust.get(name)` (replacing a frame of that name).
pub fn set(name: &str, df: &DataFrame) -> Result<(), Error> {
    const OP: &str = "sandwich::set";
    Ok(cells::write_frame(OP, &exchange(OP)?, name, df)?)
}

/// The frames handed over so far, by either side.
pub fn names() -> Result<Vec<String>, Error> {
    Ok(cells::frame_names(&exchange("sandwich::names")?))
}

/// A value crossing to Lua: numbers, strings, booleans, lists and maps as JSON (Lua numbers,
/// strings, booleans and tables), or a frame (a Lua DataFrame).
pub enum Value {
    Json(serde_json::Value),
    Frame(DataFrame),
}

impl Value {
    /// Any serializable value (a struct, a map), as JSON.
    pub fn json(value: impl serde::Serialize) -> Result<Value, Error> {
        Ok(Value::Json(serde_json::to_value(value)?))
    }
}

impl From<DataFrame> for Value {
    fn from(df: DataFrame) -> Self {
        Value::Frame(df)
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        Value::Json(v)
    }
}

macro_rules! json_values {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Json(serde_json::json!(v))
            }
        }
    )*};
}
json_values!(
    f64, f32, i64, i32, u32, u64, usize, bool, String, &str, (), Option<f64>, Option<i64>,
    Option<String>, Vec<f64>, Vec<i64>, Vec<String>, Vec<bool>, HashMap<String, f64>
);

/// The arguments of a call from Lua, in order (Lua's first argument is index 0).
pub struct Args {
    name: String,
    values: Vec<Arg>,
}

impl Args {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn at(&self, i: usize) -> Result<&Arg, Error> {
        self.values.get(i).ok_or_else(|| {
            Error(format!(
                "{}: argument {} is missing (the call has {})",
                self.name,
                i + 1,
                self.values.len()
            ))
        })
    }

    fn wrong(&self, i: usize, expected: &str, got: &Arg) -> Error {
        let got = match got {
            Arg::Frame(_) => "a DataFrame".to_string(),
            Arg::Json(v) => v.to_string(),
        };
        Error(format!(
            "{}: argument {} should be {expected}, got {got}",
            self.name,
            i + 1
        ))
    }

    /// Argument `i` as a frame (a Lua DataFrame).
    pub fn frame(&self, i: usize) -> Result<&DataFrame, Error> {
        match self.at(i)? {
            Arg::Frame(df) => Ok(df),
            other => Err(self.wrong(i, "a DataFrame", other)),
        }
    }

    /// Argument `i` converted from its JSON form (`f64`, `String`, `Vec<f64>`, a struct, ...).
    pub fn get<T: DeserializeOwned>(&self, i: usize) -> Result<T, Error> {
        match self.at(i)? {
            Arg::Json(v) => serde_json::from_value(v.clone()).map_err(|e| {
                Error(format!(
                    "{}: argument {} should be a {}: {e}",
                    self.name,
                    i + 1,
                    std::any::type_name::<T>()
                ))
            }),
            other => Err(self.wrong(i, std::any::type_name::<T>(), other)),
        }
    }

    /// Argument `i` as a number.
    pub fn f64(&self, i: usize) -> Result<f64, Error> {
        self.get(i)
    }

    /// Argument `i` as a string.
    pub fn str(&self, i: usize) -> Result<String, Error> {
        self.get(i)
    }
}

type Exported = Arc<dyn Fn(&Args) -> Result<Value, Error> + Send + Sync>;

/// This copy's exports and the socket that serves them (one per cell that exports).
struct Exports {
    functions: Mutex<HashMap<String, Exported>>,
    server: Server,
}

fn exports(dir: &std::path::Path) -> Result<&'static Exports, Error> {
    static EXPORTS: OnceLock<Exports> = OnceLock::new();
    static STARTING: Mutex<()> = Mutex::new(());
    if let Some(e) = EXPORTS.get() {
        return Ok(e);
    }
    // One server per copy, even when two threads export at once.
    let _starting = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = EXPORTS.get() {
        return Ok(e);
    }
    let handler: cells::Handler = Arc::new(|name, values| {
        let f = EXPORTS
            .get()
            .and_then(|e| e.functions.lock().ok()?.get(name).cloned())
            .ok_or_else(|| format!("no function '{name}' in this cell's exports"))?;
        let args = Args {
            name: name.to_string(),
            values,
        };
        // A panic in the user's function is its error, not the end of the server thread.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&args))) {
            Ok(Ok(Value::Json(v))) => Ok(Arg::Json(v)),
            Ok(Ok(Value::Frame(df))) => Ok(Arg::Frame(df)),
            Ok(Err(e)) => Err(e.0),
            Err(payload) => Err(format!(
                "panicked: {}",
                sandwich_core::panic_message(payload.as_ref())
            )),
        }
    });
    let server = Server::start("sandwich::export", dir, handler)?;
    Ok(EXPORTS.get_or_init(|| Exports {
        functions: Mutex::new(HashMap::new()),
        server,
    }))
}

/// Makes `f` callable from Lua as `sw.rust.fn(name)`: its arguments arrive as [`Args`], and what
/// it returns (anything that converts into [`Value`]) comes back as a Lua value. Exporting a
/// name again (from a later cell) replaces the function. Print from it with `eprintln!`: evcxr
/// reads the process's stdout only while a Rust cell runs, so `println!` output waits for the
/// next Rust cell (and enough of it, ~64 KiB, blocks the function until then).
pub fn export<F, R>(name: &str, f: F) -> Result<(), Error>
where
    F: Fn(&Args) -> Result<R, Error> + Send + Sync + 'static,
    R: Into<Value>,
{
    const OP: &str = "sandwich::export";
    cells::check_name(OP, name)?;
    let dir = exchange(OP)?;
    let e = exports(&dir)?;
    let f: Exported = Arc::new(move |args| f(args).map(Into::into));
    e.functions
        .lock()
        .map_err(|_| Error::msg("sandwich::export: the registry is poisoned"))?
        .insert(name.to_string(), f);
    e.server.publish(OP, &dir, name)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;
    use sandwich_core::cells::Client;

    /// The whole path a cell and Lua take, in one process: set/get, and an exported function
    /// called through the socket with a frame and a number.
    #[test]
    fn frames_and_exported_functions_reach_the_session_side() {
        let dir = tempfile::tempdir().unwrap();
        // The kernel sets this for the cells' process; this test process is that process.
        std::env::set_var(cells::EXCHANGE_ENV, dir.path());
        let df = df!("x" => [1.0f64, 5.0, 2.0]).unwrap();
        set("numbers", &df).unwrap();
        assert!(get("numbers").unwrap().equals(&df));
        assert!(get("nope")
            .unwrap_err()
            .to_string()
            .contains("set: numbers"));

        export("spread", |args| {
            let x = args.frame(0)?.column("x")?.f64()?.clone();
            let scale = args.f64(1)?;
            Ok(scale * (x.max().unwrap() - x.min().unwrap()))
        })
        .unwrap();
        export("fails", |args| -> Result<f64, Error> {
            args.frame(0).cloned().map(|_| 1.0)
        })
        .unwrap();
        export("panics", |_| -> Result<f64, Error> { panic!("boom") }).unwrap();

        let never = || false;
        let mut c = Client::connect("t", dir.path(), "spread").unwrap();
        let out = c
            .call(
                "t",
                &[Arg::Frame(df.clone()), Arg::Json(serde_json::json!(2.0))],
                &never,
            )
            .unwrap();
        assert!(matches!(out, Arg::Json(v) if v == serde_json::json!(8.0)));
        let mut c = Client::connect("t", dir.path(), "fails").unwrap();
        let e = c
            .call("t", &[Arg::Json(serde_json::json!(3))], &never)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("fails: argument 1 should be a DataFrame, got 3"),
            "{e}"
        );
        let mut c = Client::connect("t", dir.path(), "panics").unwrap();
        let e = c.call("t", &[], &never).unwrap_err();
        assert!(e.to_string().contains("panicked: boom"), "{e}");
        assert!(export("../x", |_| Ok(1.0)).is_err());
    }
}
