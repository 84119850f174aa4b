//! `sw.experiment`: the experiment DSL, written in Lua (`lua/sandwich/experiment.lua`) over the
//! rest of `sw` and embedded in the binary, so that new arms can be written from the same parts.

use mlua::Lua;

const SOURCE: &str = include_str!("../sandwich/experiment.lua");

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    lua.load(SOURCE)
        .set_name("@sandwich/experiment.lua")
        .call::<mlua::Value>(sw)?;
    Ok(())
}
