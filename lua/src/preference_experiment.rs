//! `sw.experiment.preference "name" {spec}`: the sandwich of preferences on the experiment
//! engine (`sandwich_core::experiment::PreferenceExperiment`), held by Lua.

use mlua::{Lua, UserData, UserDataMethods, Value};
use sandwich_core::experiment::{PreferenceExperiment, PreferenceSpec};

use crate::args::type_name;
use crate::error::{CoreResultExt, Error};
use crate::frame::LuaDataFrame;
use crate::guard::{GuardedLua, GuardedMethods};

const F: &str = "sw.experiment.preference";

pub(crate) struct LuaPreference(PreferenceExperiment);

fn ran(e: &PreferenceExperiment, f: &str) -> mlua::Result<()> {
    match e.results {
        Some(_) => Ok(()),
        None => {
            Err(Error::argument(f, "self", "a run experiment (call run first)", "not run").into())
        }
    }
}

impl UserData for LuaPreference {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.guarded_meta_method(mlua::MetaMethod::ToString, |_, this, ()| {
            Ok(format!(
                "PreferenceExperiment '{}' ({} arms, {} seeds)",
                this.0.name,
                this.0.spec.arms.len(),
                this.0.spec.seeds.len()
            ))
        });
        m.guarded_method_mut("run", |_, this, ()| {
            this.0.run().lua()?;
            Ok(this.0.results.clone().map(LuaDataFrame))
        });
        m.guarded_method("results", |_, this, ()| {
            ran(&this.0, "PreferenceExperiment.results")?;
            Ok(this.0.results.clone().map(LuaDataFrame))
        });
        m.guarded_method("curves", |_, this, ()| {
            ran(&this.0, "PreferenceExperiment.curves")?;
            Ok(this.0.curves.clone().map(LuaDataFrame))
        });
        m.guarded_method("write_campaign", |lua, this, opts: Option<Value>| {
            const G: &str = "PreferenceExperiment.write_campaign";
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Opts {
                path: String,
                #[serde(default = "twelve")]
                raters: usize,
                #[serde(default = "three")]
                overlap: usize,
            }
            fn twelve() -> usize {
                12
            }
            fn three() -> usize {
                3
            }
            let o: Opts = crate::args::required_options(lua, G, opts)?;
            this.0.write_campaign(&o.path, o.raters, o.overlap).lua()
        });
        m.guarded_method("pgr", |lua, this, opts: Option<Value>| {
            const G: &str = "PreferenceExperiment.pgr";
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Opts {
                #[serde(default = "bon")]
                metric: String,
            }
            fn bon() -> String {
                "bon_gold".into()
            }
            impl Default for Opts {
                fn default() -> Self {
                    Opts { metric: bon() }
                }
            }
            let o: Opts = crate::args::options(lua, G, opts)?;
            ran(&this.0, G)?;
            this.0.pgr(&o.metric).lua().map(LuaDataFrame)
        });
    }
}

/// The `sw.experiment.preference` function: `"name"` then the spec table.
pub(crate) fn constructor(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.guarded_function(|lua, name: Value| {
        let Value::String(name) = name else {
            return Err(Error::argument(F, "name", "a string", type_name(&name)).into());
        };
        let name = name.to_str()?.to_string();
        lua.guarded_function(move |lua, spec: Value| {
            if !matches!(spec, Value::Table(_)) {
                return Err(Error::argument(F, "spec", "a table", type_name(&spec)).into());
            }
            let spec: PreferenceSpec = crate::args::required_options(lua, F, Some(spec))?;
            PreferenceExperiment::new(&name, spec)
                .lua()
                .map(LuaPreference)
        })
    })
}
