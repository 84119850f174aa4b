//! `sw._methods(value)`: the method names of a `sw` userdata, for completion and the docs test.

use mlua::{Lua, Value};

use crate::expr::{LuaExpr, LuaStrNamespace, LuaWhen, EXPR_METHODS, STR_METHODS, WHEN_METHODS};
use crate::frame::LuaDataFrame;
use crate::lazy::{LuaGroupBy, LuaLazyFrame};

/// Method names of a value's type, sorted; empty for values that are not `sw` userdata.
pub(crate) fn methods(value: &Value) -> Vec<&'static str> {
    let Value::UserData(ud) = value else {
        return vec![];
    };
    let mut names: Vec<&'static str> = if ud.is::<LuaDataFrame>() {
        [crate::verbs::VERBS, crate::frame::METHODS].concat()
    } else if ud.is::<LuaLazyFrame>() {
        [crate::verbs::VERBS, crate::lazy::METHODS].concat()
    } else if ud.is::<LuaExpr>() {
        EXPR_METHODS.to_vec()
    } else if ud.is::<LuaStrNamespace>() {
        STR_METHODS.to_vec()
    } else if ud.is::<LuaWhen>() {
        WHEN_METHODS.to_vec()
    } else if ud.is::<crate::model::LuaModel>() {
        crate::model::METHODS.to_vec()
    } else if ud.is::<LuaGroupBy>() {
        vec!["agg"]
    } else {
        vec![]
    };
    names.sort_unstable();
    names
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    sw.set(
        "_methods",
        lua.create_function(|_, v: Value| Ok(methods(&v)))?,
    )?;
    Ok(())
}
