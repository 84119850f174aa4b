//! `sandwich-lua`: the Lua 5.4 session behind every Sandwich front end.
//!
//! A [`Session`] owns one Lua state with the `sandwich` module loaded (`require("sandwich")`, and
//! the global `sw`). [`Session::eval`] runs a chunk and returns the value of its last expression as
//! a MIME bundle, so that the command line, the Jupyter kernel and Python only decide how to show
//! it. Each Lua module of `sw` lives in its own file with a `register(lua)` function, all listed
//! in [`MODULES`].
//!
//! ```
//! let session = sandwich_lua::Session::new()?;
//! let out = session.eval("sw.frame{x = {1, 2, 3}}:height()", "example")?;
//! assert_eq!(out.unwrap().text(), "3");
//! # Ok::<(), sandwich_lua::Error>(())
//! ```

mod args;
mod chart;
mod convert;
mod display;
mod error;
mod experiment;
mod expr;
mod feedback;
mod frame;
mod guard;
mod html;
mod introspect;
mod io;
mod json;
mod lazy;
mod model;
mod overopt;
mod oversight;
mod preference_experiment;
mod repr;
mod rl;
mod rust;
mod session;
pub mod sweep;
mod tasks;
mod train;
mod verbs;

use mlua::{Lua, Table};

pub use display::DisplayEvent;
pub use error::{Error, ErrorKind, Result};
pub use frame::LuaDataFrame;
pub use guard::GuardedLua;
pub use introspect::docs;
pub use introspect::{Completeness, Completion};
pub use session::{MimeBundle, Session, Stream};

/// Adds one Lua module's functions to `sw`.
pub type Register = fn(&Lua) -> mlua::Result<()>;

/// Every Lua module of `sw`, in registration order.
pub const MODULES: &[(&str, Register)] = &[
    ("io", io::register),
    ("frame", frame::register),
    ("lazy", lazy::register),
    ("expr", expr::register),
    ("model", model::register),
    ("train", train::register),
    ("rl", rl::register),
    ("oversight", oversight::register),
    ("overopt", overopt::register),
    ("introspect", introspect::register),
    ("display", display::register),
    ("chart", chart::register),
    ("tasks", tasks::register),
    ("json", json::register),
    ("experiment", experiment::register),
    ("feedback", feedback::register),
    ("rust", rust::register),
];

/// The `sandwich` module table (`package.loaded.sandwich`), created on first use.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let loaded: Table = lua
        .globals()
        .get::<Table>("package")?
        .get::<Table>("loaded")?;
    if let Ok(table) = loaded.get::<Table>("sandwich") {
        return Ok(table);
    }
    let table = lua.create_table()?;
    loaded.set("sandwich", &table)?;
    Ok(table)
}
