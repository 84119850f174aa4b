//! `sw.read_*` and `sw.scan_*`; the writers are DataFrame methods (frame.rs).

use crate::guard::GuardedLua;
use mlua::{Lua, Value};

use crate::args::{self, options};
use crate::error::CoreResultExt;
use crate::frame::LuaDataFrame;
use crate::lazy::LuaLazyFrame;

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    macro_rules! reader {
        ($name:literal, $read:path, $wrap:expr) => {
            sw.set(
                $name,
                lua.guarded_function(|lua, (path, opts): (Value, Option<Value>)| {
                    const F: &str = concat!("sw.", $name);
                    let path = args::path(F, &path)?;
                    let o = options(lua, F, opts)?;
                    $read(path, &o).lua().map($wrap)
                })?,
            )?;
        };
    }
    reader!("read_csv", sandwich_core::read_csv, LuaDataFrame);
    reader!("read_parquet", sandwich_core::read_parquet, LuaDataFrame);
    reader!("read_ipc", sandwich_core::read_ipc, LuaDataFrame);
    reader!("read_json", sandwich_core::read_json, LuaDataFrame);
    reader!("scan_csv", sandwich_core::scan_csv, LuaLazyFrame);
    reader!("scan_parquet", sandwich_core::scan_parquet, LuaLazyFrame);
    Ok(())
}
