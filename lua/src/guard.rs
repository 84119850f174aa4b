//! Every Rust function that Lua can call is made here, so that a panic inside one (a bug of
//! ours, or of polars or candle on an input we failed to check) becomes an ordinary Lua error
//! that `pcall` catches and whose kind is [`ErrorKind::Internal`](crate::ErrorKind), instead of
//! an unwinding that no Lua code can stop.
//!
//! mlua can catch a panic itself (`LuaOptions::catch_rust_panics`), but it hands Lua an opaque
//! value that resumes the panic as soon as it comes back to Rust — through our `print`, our
//! error handler or any `sw` function given the error — so a script could not even print what
//! it caught. Catching at our own entry points gives Lua a plain error with a message.
//!
//! A test (`lua/tests/all/bad_input.rs`) checks that no file of this crate registers a function
//! any other way.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mlua::{
    FromLuaMulti, Function, IntoLua, IntoLuaMulti, Lua, UserData, UserDataFields, UserDataMethods,
};

use crate::Error;

/// Runs `f`, turning a panic into [`Error::Panic`].
fn catching<R>(f: impl FnOnce() -> mlua::Result<R>) -> mlua::Result<R> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(Error::Panic(sandwich_core::panic_message(&*payload)).into()))
}

/// `Lua::create_function`, guarded.
pub trait GuardedLua {
    fn guarded_function<A, R, F>(&self, f: F) -> mlua::Result<Function>
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, A) -> mlua::Result<R> + Send + 'static;
}

impl GuardedLua for Lua {
    fn guarded_function<A, R, F>(&self, f: F) -> mlua::Result<Function>
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, A) -> mlua::Result<R> + Send + 'static,
    {
        self.create_function(move |lua, args: A| catching(|| f(lua, args)))
    }
}

/// The `add_*` registrations of [`UserDataMethods`], guarded.
pub(crate) trait GuardedMethods<T: UserData + 'static> {
    fn guarded_method<A, R, F>(&mut self, name: impl Into<String>, f: F)
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, &T, A) -> mlua::Result<R> + Send + 'static;

    fn guarded_method_mut<A, R, F>(&mut self, name: impl Into<String>, f: F)
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: FnMut(&Lua, &mut T, A) -> mlua::Result<R> + Send + 'static;

    fn guarded_meta_method<A, R, F>(&mut self, name: impl Into<String>, f: F)
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, &T, A) -> mlua::Result<R> + Send + 'static;

    fn guarded_meta_function<A, R, F>(&mut self, name: impl Into<String>, f: F)
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, A) -> mlua::Result<R> + Send + 'static;
}

impl<T: UserData + 'static, M: UserDataMethods<T>> GuardedMethods<T> for M {
    fn guarded_method<A, R, F>(&mut self, name: impl Into<String>, f: F)
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, &T, A) -> mlua::Result<R> + Send + 'static,
    {
        self.add_method(name, move |lua, this, args: A| {
            catching(|| f(lua, this, args))
        });
    }

    fn guarded_method_mut<A, R, F>(&mut self, name: impl Into<String>, mut f: F)
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: FnMut(&Lua, &mut T, A) -> mlua::Result<R> + Send + 'static,
    {
        self.add_method_mut(name, move |lua, this, args: A| {
            catching(|| f(lua, this, args))
        });
    }

    fn guarded_meta_method<A, R, F>(&mut self, name: impl Into<String>, f: F)
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, &T, A) -> mlua::Result<R> + Send + 'static,
    {
        self.add_meta_method(name, move |lua, this, args: A| {
            catching(|| f(lua, this, args))
        });
    }

    fn guarded_meta_function<A, R, F>(&mut self, name: impl Into<String>, f: F)
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, A) -> mlua::Result<R> + Send + 'static,
    {
        self.add_meta_function(name, move |lua, args: A| catching(|| f(lua, args)));
    }
}

/// `UserDataFields::add_field_method_get`, guarded.
pub(crate) trait GuardedFields<T: UserData + 'static> {
    fn guarded_field_get<R, F>(&mut self, name: impl Into<String>, f: F)
    where
        R: IntoLua,
        F: Fn(&Lua, &T) -> mlua::Result<R> + Send + 'static;
}

impl<T: UserData + 'static, U: UserDataFields<T>> GuardedFields<T> for U {
    fn guarded_field_get<R, F>(&mut self, name: impl Into<String>, f: F)
    where
        R: IntoLua,
        F: Fn(&Lua, &T) -> mlua::Result<R> + Send + 'static,
    {
        self.add_field_method_get(name, move |lua, this| catching(|| f(lua, this)));
    }
}
