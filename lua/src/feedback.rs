//! `sw.feedback.campaign`: real raters in the loop. The campaign lives in the core
//! (`sandwich_core::feedback`), its web app in `sandwich-serve`; this file is call syntax.

use std::sync::{Arc, Mutex};

use mlua::{Lua, Table, UserData, UserDataMethods, Value};
use sandwich_core::feedback::{Campaign, CampaignSpec};
use sandwich_serve::{serve, ServeOptions, Server};

use crate::args::{frame, options, path, required_options, type_name};
use crate::error::{CoreResultExt, Error};
use crate::frame::LuaDataFrame;
use crate::guard::{GuardedLua, GuardedMethods};

/// A campaign and, while it serves, its server.
pub(crate) struct LuaCampaign {
    campaign: Arc<Campaign>,
    server: Mutex<Option<Server>>,
}

pub(crate) const METHODS: &[&str] = &[
    "serve",
    "stop",
    "url",
    "links",
    "judgments",
    "quality",
    "export",
    "admin_token",
];

const OP: &str = "sw.feedback.campaign";

fn serve_error(function: &str, e: sandwich_serve::Error) -> mlua::Error {
    match e {
        sandwich_serve::Error::Core(e) => Error::Core(e).into(),
        sandwich_serve::Error::InvalidArgument { arg, expected, got } => {
            Error::argument(function, &format!("options.{arg}"), &expected, got).into()
        }
        other => {
            let cause = std::error::Error::source(&other)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            Error::Usage {
                function: function.into(),
                message: format!("{other}{cause}"),
            }
            .into()
        }
    }
}

fn campaign(lua: &Lua, spec: Value) -> mlua::Result<LuaCampaign> {
    let Value::Table(t) = &spec else {
        return Err(Error::argument(OP, "options", "a table", type_name(&spec)).into());
    };
    let file = match t.get::<Value>("path")? {
        Value::Nil => {
            return Err(
                Error::argument(OP, "options.path", "the campaign's file path", "nothing").into(),
            )
        }
        p => path(OP, &p)?,
    };
    let rest: Table = lua.create_table()?;
    let mut items = None;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        match &k {
            Value::String(s) if s.to_str()? == "path" => {}
            Value::String(s) if s.to_str()? == "items" => {
                items = Some(frame(OP, "options.items", &v)?)
            }
            _ => rest.set(k, v)?,
        }
    }
    let campaign = if items.is_none() && rest.is_empty() {
        Campaign::open(&file).lua()?
    } else {
        let Some(items) = items else {
            return Err(Error::argument(
                OP,
                "options.items",
                "a DataFrame of items (or only `path`, to continue a campaign)",
                "nothing",
            )
            .into());
        };
        let spec: CampaignSpec = required_options(lua, OP, Some(Value::Table(rest)))?;
        Campaign::create(&file, spec, &items).lua()?
    };
    Ok(LuaCampaign {
        campaign: Arc::new(campaign),
        server: Mutex::new(None),
    })
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LinkOpts {
    base: Option<String>,
}

impl UserData for LuaCampaign {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.guarded_meta_method(mlua::MetaMethod::ToString, |_, this, ()| {
            let serving = this
                .server
                .lock()
                .map(|s| s.as_ref().map(|s| s.url().to_string()))
                .unwrap_or(None);
            Ok(format!(
                "Campaign '{}' ({}, {} raters{})",
                this.campaign.spec().name,
                this.campaign.path().display(),
                this.campaign.spec().raters.len(),
                serving
                    .map(|u| format!(", serving at {u}"))
                    .unwrap_or_default()
            ))
        });
        m.guarded_method("serve", |lua, this, opts: Option<Value>| {
            const F: &str = "Campaign.serve";
            let o: ServeOptions = options(lua, F, opts)?;
            let mut slot = this.server.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = slot.as_ref() {
                return Err(Error::Usage {
                    function: F.into(),
                    message: format!("already serving at {}; c:stop() first", s.url()),
                }
                .into());
            }
            let server = serve(this.campaign.clone(), &o).map_err(|e| serve_error(F, e))?;
            let url = server.url().to_string();
            *slot = Some(server);
            Ok(url)
        });
        m.guarded_method("stop", |_, this, ()| {
            let server = this.server.lock().unwrap_or_else(|p| p.into_inner()).take();
            let was = server.is_some();
            if let Some(s) = server {
                s.stop();
            }
            Ok(was)
        });
        m.guarded_method("url", |_, this, ()| {
            Ok(this
                .server
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|s| s.url().to_string()))
        });
        m.guarded_method("links", |lua, this, opts: Option<Value>| {
            const F: &str = "Campaign.links";
            let o: LinkOpts = options(lua, F, opts)?;
            let base = match o.base {
                Some(b) => b,
                None => match this
                    .server
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                {
                    Some(s) => s.url().to_string(),
                    None => {
                        return Err(Error::argument(
                            F,
                            "options.base",
                            "the server's URL (or c:serve{} first)",
                            "nothing",
                        )
                        .into())
                    }
                },
            };
            this.campaign.links(&base).lua().map(LuaDataFrame)
        });
        m.guarded_method("judgments", |_, this, ()| {
            this.campaign.judgments().lua().map(LuaDataFrame)
        });
        m.guarded_method("quality", |_, this, ()| {
            this.campaign.quality().lua().map(LuaDataFrame)
        });
        m.guarded_method("export", |_, this, p: Value| {
            let p = path("Campaign.export", &p)?;
            this.campaign.export(&p).lua()
        });
        m.guarded_method("admin_token", |_, this, ()| Ok(this.campaign.admin_token()));
    }
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    let t = lua.create_table()?;
    t.set(
        "campaign",
        lua.guarded_function(|lua, spec: Value| campaign(lua, spec))?,
    )?;
    sw.set("feedback", t)?;
    Ok(())
}
