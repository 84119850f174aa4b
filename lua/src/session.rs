//! The evaluator every front end shares: one Lua state, the `sandwich` module, MIME output.

use crate::guard::GuardedLua;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};

use mlua::{
    Function, HookTriggers, Lua, LuaOptions, MultiValue, RegistryKey, StdLib, Table, Value, VmState,
};
use sandwich_core::Interrupt;

use crate::error::{Error, ErrorKind, Result};
use crate::frame::LuaDataFrame;
use crate::{html, repr};

/// How many VM instructions run between two looks at the interrupt flag: often enough to stop
/// within milliseconds, rarely enough to cost nothing measurable.
const HOOK_EVERY: u32 = 1000;

/// Where printed text goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

type Sink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// A value rendered for display, keyed by MIME type (`text/plain` is always there).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MimeBundle(BTreeMap<String, String>);

impl MimeBundle {
    /// A bundle with its `text/plain` form.
    pub fn plain(text: String) -> Self {
        let mut b = Self::default();
        b.0.insert("text/plain".into(), text);
        b
    }

    /// Adds (or replaces) the rendering for `mime`. JSON types (`application/json`,
    /// `application/vnd.vegalite.v5+json`) hold serialized JSON.
    pub fn insert(&mut self, mime: &str, data: String) {
        self.0.insert(mime.to_string(), data);
    }

    /// The `text/plain` rendering.
    pub fn text(&self) -> &str {
        self.0.get("text/plain").map(String::as_str).unwrap_or("")
    }

    /// The rendering for one MIME type, if there is one.
    pub fn get(&self, mime: &str) -> Option<&str> {
        self.0.get(mime).map(String::as_str)
    }

    /// Every (MIME type, data) pair, in MIME-type order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// One Lua state with `sw` loaded. Globals persist from one `eval` to the next.
pub struct Session {
    lua: Lua,
    interrupt: Interrupt,
    sink: Arc<Mutex<Sink>>,
    xpcall: RegistryKey,
    handler: RegistryKey,
}

fn stdout_sink() -> Sink {
    Arc::new(|stream, text| {
        use std::io::Write;
        // Flushing every write keeps `io.write` progress lines visible and in order with
        // `print`; scripts print little compared with what they compute.
        let _ = match stream {
            Stream::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes()).and_then(|_| out.flush())
            }
            Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
        };
    })
}

impl Session {
    /// A session that prints to the process's stdout and stderr.
    pub fn new() -> Result<Self> {
        // Our functions catch their own panics (`guard`): Lua sees a plain error. A panic that
        // escapes them (in mlua's argument conversion, say) stays uncatchable by `pcall` with
        // `catch_rust_panics(false)`: it travels up as a Lua error and is resumed only once back
        // in Rust (see `call`), never unwinding through Lua's C frames. (With `true`, our
        // top-level `xpcall` handler meets mlua's wrapped panic and overflows the C stack.)
        let lua = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::new().catch_rust_panics(false))?;
        let interrupt = Interrupt::new();
        lua.set_app_data(interrupt.clone());
        let flag = interrupt.clone();
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                if flag.is_requested() {
                    Err(Error::Interrupted.into())
                } else {
                    Ok(VmState::Continue)
                }
            },
        )?;
        let sink = Arc::new(Mutex::new(stdout_sink()));
        for (_, register) in crate::MODULES {
            register(&lua)?;
        }
        let sw = crate::module(&lua)?;
        lua.globals().set("sw", &sw)?;
        install_output(&lua, &sink)?;
        let display_sink = sink.clone();
        lua.set_app_data(crate::display::Display(Arc::new(move |event| {
            // Without a rich front end a display shows as text, where `print` writes.
            if let crate::display::DisplayEvent::Show { bundle, .. } = event {
                let f = display_sink
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                f(Stream::Stdout, &format!("{}\n", bundle.text()));
            }
        })));
        lua.set_app_data(crate::display::Input(Arc::new(crate::display::stdin_line)));
        // Kept aside so that a script redefining `xpcall` cannot break error reporting.
        let xpcall: Function = lua.globals().get("xpcall")?;
        install_interrupt_guards(&lua, &interrupt)?;
        let handler = lua.guarded_function(|lua, err: Value| {
            let t = lua.create_table()?;
            t.set("error", err)?;
            t.set("traceback", lua.traceback(None, 1)?)?;
            Ok(t)
        })?;
        Ok(Session {
            xpcall: lua.create_registry_value(xpcall)?,
            handler: lua.create_registry_value(handler)?,
            lua,
            interrupt,
            sink,
        })
    }

    /// Sends `print`, `io.write` and `io.stderr:write` to `sink` instead of the process's streams.
    pub fn set_output(&self, sink: impl Fn(Stream, &str) + Send + Sync + 'static) {
        *self.sink.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(sink);
    }

    /// The flag that stops running code; `request()` it from another thread (Ctrl-C, a kernel
    /// interrupt). Each `eval` clears it first.
    pub fn interrupt_handle(&self) -> Interrupt {
        self.interrupt.clone()
    }

    /// Sends the progress of long jobs (training, generation) to `progress`; silent by default.
    pub fn set_progress(&self, progress: impl sandwich_core::Progress + 'static) {
        self.lua
            .set_app_data(crate::model::ProgressSink(std::sync::Arc::new(progress)));
    }

    /// Sends `sw.display(...)` calls to `hook` (the kernel turns them into `display_data`).
    pub fn set_display(&self, hook: impl Fn(crate::DisplayEvent) + Send + Sync + 'static) {
        self.lua
            .set_app_data(crate::display::Display(Arc::new(hook)));
    }

    /// Answers `io.read()` and `sw.input(prompt)` with `hook(prompt, password)`.
    pub fn set_input(
        &self,
        hook: impl Fn(&str, bool) -> std::result::Result<String, String> + Send + Sync + 'static,
    ) {
        self.lua.set_app_data(crate::display::Input(Arc::new(hook)));
    }

    /// Completions of the name before `cursor` (in characters).
    pub fn complete(&self, code: &str, cursor: usize) -> crate::Completion {
        crate::introspect::complete(&self.lua, code, cursor)
    }

    /// The doc page, or the type and value, of the name at `cursor` (in characters).
    pub fn inspect(&self, code: &str, cursor: usize) -> Option<String> {
        crate::introspect::inspect(&self.lua, code, cursor)
    }

    /// Whether `code` parses, needs more lines, or cannot parse.
    pub fn is_complete(&self, code: &str) -> crate::Completeness {
        crate::introspect::is_complete(&self.lua, code)
    }

    /// The Lua state, for front ends that add their own functions.
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// Names the directory shared with the kernel's Rust cells (`sw.rust`): the kernel makes
    /// it and tells the cells' process too. Without it, `sw.rust` uses a directory of its own.
    pub fn set_rust_exchange(&self, dir: std::path::PathBuf) {
        self.lua.set_app_data(crate::rust::Exchange(Arc::new(
            crate::rust::ExchangeDir::Given(dir),
        )));
    }

    /// Binds a DataFrame to a global, as a `sw` DataFrame (front ends hand data in this way).
    pub fn set_frame(&self, name: &str, df: polars::prelude::DataFrame) -> Result<()> {
        Ok(self.lua.globals().set(name, LuaDataFrame(df))?)
    }

    /// The DataFrame held by a global (a cheap clone: polars shares the buffers).
    pub fn get_frame(&self, name: &str) -> Result<polars::prelude::DataFrame> {
        let value: Value = self.lua.globals().get(name)?;
        match &value {
            Value::UserData(ud) if ud.is::<LuaDataFrame>() => {
                Ok(ud.borrow::<LuaDataFrame>()?.0.clone())
            }
            other => Err(Error::argument(
                "Session::get_frame",
                name,
                "a global holding a DataFrame",
                crate::args::type_name(other),
            )),
        }
    }

    /// Runs `code` and returns the value of its last expression, if it has one. A trailing `;`
    /// suppresses the value. `name` names the chunk in tracebacks (`In [3]`, a file name).
    pub fn eval(&self, code: &str, name: &str) -> Result<Option<MimeBundle>> {
        let (code, silent) = match code.trim_end().strip_suffix(';') {
            Some(rest) => (rest, true),
            None => (code, false),
        };
        let function = self.compile(code, &chunk_name(name))?;
        let values = self.call(function, MultiValue::new())?;
        if silent {
            return Ok(None);
        }
        render(&self.lua, values)
    }

    /// Runs `code` as `eval` does and returns the Lua values of its last expression rather than
    /// their rendering: front ends that convert values themselves (the Python module) use it.
    pub fn eval_values(&self, code: &str, name: &str) -> Result<MultiValue> {
        let function = self.compile(code, &chunk_name(name))?;
        self.call(function, MultiValue::new())
    }

    /// Calls a Lua function with the session's error handling: tracebacks, interrupts.
    pub fn call_function(&self, function: Function, args: MultiValue) -> Result<MultiValue> {
        self.call(function, args)
    }

    /// How `eval` shows `values` (a DataFrame as an HTML table, a chart as vega-lite, ...).
    pub fn render(&self, values: MultiValue) -> Result<Option<MimeBundle>> {
        render(&self.lua, values)
    }

    /// Runs a script file with `arg` set as the standalone `lua` sets it (`arg[0]` the script,
    /// `arg[1..]` its arguments, also passed as `...`).
    pub fn run_file(&self, path: &Path, args: &[String]) -> Result<()> {
        let code = std::fs::read_to_string(path).map_err(|source| {
            Error::Core(sandwich_core::Error::Io {
                op: "run",
                path: path.to_path_buf(),
                source,
            })
        })?;
        // A `#!` line is not Lua; keep the line count so tracebacks stay right.
        let code = match code.strip_prefix("#!") {
            Some(rest) => format!("--{rest}"),
            None => code,
        };
        let arg = self.lua.create_table()?;
        arg.raw_set(0, path.to_string_lossy().as_ref())?;
        for (i, a) in args.iter().enumerate() {
            arg.raw_set(i + 1, a.as_str())?;
        }
        self.lua.globals().set("arg", arg)?;
        let function = self
            .lua
            .load(code)
            .set_name(format!("@{}", path.display()))
            .into_function()
            .map_err(syntax_error)?;
        let args: MultiValue = args
            .iter()
            .map(|a| self.lua.create_string(a).map(Value::String))
            .collect::<mlua::Result<_>>()?;
        self.call(function, args).map(drop)
    }

    /// Compiles a chunk the way a REPL reads it: as one expression, then as statements whose
    /// last line (or what follows the last `;`) is an expression, then as plain statements. The expression is passed through
    /// an identity function rather than returned directly, so that a call in it is not a tail
    /// call and keeps its line in tracebacks.
    fn compile(&self, code: &str, name: &str) -> Result<Function> {
        const PASS: &str = "return (function(...) return ... end)(";
        let load = |src: String| self.lua.load(src).set_name(name).into_function();
        if let Ok(f) = load(format!("{PASS}{code}\n)")) {
            return Ok(f);
        }
        let trimmed = code.trim_end();
        if let Some(pos) = trimmed.rfind('\n') {
            let (body, last) = trimmed.split_at(pos + 1);
            if !last.trim().is_empty() {
                if let Ok(f) = load(format!("{body}{PASS}{last}\n)")) {
                    return Ok(f);
                }
            }
        }
        // `print(1); 5`: statements and an expression on one line, split at a `;` (one inside
        // a string or a comment does not compile when split, so it is skipped).
        for (pos, _) in trimmed.rmatch_indices(';') {
            let (body, last) = (&trimmed[..=pos], &trimmed[pos + 1..]);
            if last.trim().is_empty() || last.contains('\n') {
                continue;
            }
            if let Ok(f) = load(format!("{body}{PASS}{last}\n)")) {
                return Ok(f);
            }
        }
        load(code.to_string()).map_err(syntax_error)
    }

    /// Calls through `xpcall` so that failures carry a Lua traceback, and turns a Rust panic
    /// inside a callback into an error instead of an abort.
    fn call(&self, function: Function, args: MultiValue) -> Result<MultiValue> {
        self.interrupt.clear();
        let xpcall: Function = self.lua.registry_value(&self.xpcall)?;
        let handler: Function = self.lua.registry_value(&self.handler)?;
        let mut call_args = MultiValue::new();
        call_args.push_back(Value::Function(function));
        call_args.push_back(Value::Function(handler));
        call_args.extend(args);
        let outcome = catch_unwind(AssertUnwindSafe(|| xpcall.call::<MultiValue>(call_args)));
        let mut values = match outcome {
            Ok(result) => result?,
            Err(panic) => return Err(Error::Panic(sandwich_core::panic_message(&*panic))),
        };
        match values.pop_front() {
            Some(Value::Boolean(true)) => Ok(values),
            _ => Err(script_error(values.pop_front().unwrap_or(Value::Nil))),
        }
    }
}

/// A value as a MIME bundle: DataFrames as text and HTML, charts as vega-lite, the rest as text.
pub(crate) fn render(lua: &Lua, values: MultiValue) -> Result<Option<MimeBundle>> {
    if values.iter().all(|v| v.is_nil()) {
        return Ok(None);
    }
    if values.len() == 1 {
        if let Some(Value::UserData(ud)) = values.front() {
            if let Ok(df) = ud.borrow::<LuaDataFrame>() {
                let mut b = MimeBundle::plain(format!("{}", df.0));
                b.0.insert("text/html".into(), html::frame_html(&df.0));
                return Ok(Some(b));
            }
            if let Ok(chart) = ud.borrow::<crate::chart::LuaChart>() {
                return Ok(Some(crate::display::vegalite_bundle(chart.0.clone())));
            }
        }
    }
    let parts: Vec<String> = values
        .iter()
        .map(|v| repr::repr(lua, v))
        .collect::<mlua::Result<_>>()?;
    Ok(Some(MimeBundle::plain(parts.join("\t"))))
}

fn chunk_name(name: &str) -> String {
    if name.starts_with('@') || name.starts_with('=') {
        name.to_string()
    } else {
        format!("={name}")
    }
}

fn syntax_error(e: mlua::Error) -> Error {
    match e {
        mlua::Error::SyntaxError { message, .. } => Error::Syntax(message),
        other => Error::Lua(other),
    }
}

/// `pcall`, `xpcall` and `coroutine.resume` re-raise a pending interrupt instead of catching
/// it: otherwise `while true do pcall(f) end` could never be stopped.
fn install_interrupt_guards(lua: &Lua, interrupt: &Interrupt) -> mlua::Result<()> {
    let flag = interrupt.clone();
    let interrupted = lua.guarded_function(move |_, ()| Ok(flag.is_requested()))?;
    let coroutine: Table = lua.globals().get("coroutine")?;
    lua.load(
        r#"
        local raw_pcall, raw_xpcall, raw_resume, interrupted = ...
        local function check(ok, ...)
          if not ok and interrupted() then error((...), 0) end
          return ok, ...
        end
        pcall = function(f, ...) return check(raw_pcall(f, ...)) end
        xpcall = function(f, h, ...) return check(raw_xpcall(f, h, ...)) end
        coroutine.resume = function(co, ...) return check(raw_resume(co, ...)) end
        "#,
    )
    .set_name("=sandwich.interrupt_guards")
    .call::<()>((
        lua.globals().get::<Function>("pcall")?,
        lua.globals().get::<Function>("xpcall")?,
        coroutine.get::<Function>("resume")?,
        interrupted,
    ))
}

/// Replaces `print`, `io.write` and `io.stderr` so that every front end decides where text goes.
fn install_output(lua: &Lua, sink: &Arc<Mutex<Sink>>) -> mlua::Result<()> {
    let emit = |sink: Arc<Mutex<Sink>>, stream: Stream| {
        move |text: &str| {
            let f = sink.lock().unwrap_or_else(|p| p.into_inner()).clone();
            f(stream, text)
        }
    };
    let out = emit(sink.clone(), Stream::Stdout);
    lua.globals().set(
        "print",
        lua.guarded_function(move |lua, args: MultiValue| {
            let parts: Vec<String> = args
                .iter()
                .map(|v| repr::tostring(lua, v))
                .collect::<mlua::Result<_>>()?;
            out(&(parts.join("\t") + "\n"));
            Ok(())
        })?,
    )?;
    let io: Table = lua.globals().get("io")?;
    let out = emit(sink.clone(), Stream::Stdout);
    io.set(
        "write",
        lua.guarded_function(move |lua, args: MultiValue| {
            out(&concat_writes(lua, "io.write", &args)?);
            Ok(())
        })?,
    )?;
    let err = emit(sink.clone(), Stream::Stderr);
    let stderr = lua.create_table()?;
    stderr.set(
        "write",
        lua.guarded_function(move |lua, args: MultiValue| {
            // Called as a method: the first argument is the stream table itself.
            let text: MultiValue = args.into_iter().skip(1).collect();
            err(&concat_writes(lua, "io.stderr:write", &text)?);
            Ok(())
        })?,
    )?;
    io.set("stderr", stderr)?;
    Ok(())
}

fn concat_writes(lua: &Lua, function: &str, args: &MultiValue) -> mlua::Result<String> {
    let mut s = String::new();
    for (i, v) in args.iter().enumerate() {
        match v {
            Value::String(x) => s.push_str(&x.to_string_lossy()),
            Value::Integer(_) | Value::Number(_) => s.push_str(&repr::tostring(lua, v)?),
            other => {
                return Err(Error::argument(
                    function,
                    &format!("#{}", i + 1),
                    "a string or a number",
                    crate::args::type_name(other),
                )
                .into())
            }
        }
    }
    Ok(s)
}

/// Turns what the `xpcall` handler returned into an [`Error`].
fn script_error(value: Value) -> Error {
    let (error, traceback) = match &value {
        Value::Table(t) => (
            t.get::<Value>("error").unwrap_or(Value::Nil),
            t.get::<String>("traceback").unwrap_or_default(),
        ),
        other => (other.clone(), String::new()),
    };
    let traceback = clean_traceback(&traceback);
    let (message, causes, kind) = match &error {
        Value::Error(e) => {
            let kind = crate::error::kind_of(e);
            if kind == ErrorKind::Interrupted {
                return Error::Interrupted;
            }
            let (message, causes) = describe(e);
            (message, causes, kind)
        }
        Value::String(s) => (s.to_string_lossy(), vec![], ErrorKind::Other),
        other => (
            other
                .to_string()
                .unwrap_or_else(|_| "(error object)".into()),
            vec![],
            ErrorKind::Other,
        ),
    };
    Error::Script {
        message,
        traceback,
        causes,
        kind,
    }
}

/// Drops the frames that say nothing to a user: anonymous C frames (`[C]: in ?`, the error
/// machinery itself) and our own `xpcall` wrapper.
fn clean_traceback(tb: &str) -> String {
    tb.lines()
        .filter(|line| {
            let l = line.trim();
            l != "[C]: in ?" && !l.contains("in function 'xpcall'")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The message of an error raised in Rust, and the messages of its causes, outermost first.
fn describe(e: &mlua::Error) -> (String, Vec<String>) {
    match e {
        mlua::Error::CallbackError { cause, .. } => describe(cause),
        mlua::Error::WithContext { context, cause } => {
            let (m, mut c) = describe(cause);
            c.insert(0, m);
            (context.clone(), c)
        }
        mlua::Error::ExternalError(inner) => {
            let message = inner.to_string();
            let mut causes: Vec<String> = Vec::new();
            let mut source = inner.source();
            while let Some(s) = source {
                let text = s.to_string();
                // polars repeats a cause inside its context's message; say each thing once.
                let known = message.contains(&text) || causes.iter().any(|c| c.contains(&text));
                if !known {
                    causes.push(text);
                }
                source = s.source();
            }
            (message, causes)
        }
        mlua::Error::BadArgument {
            to,
            pos,
            name,
            cause,
        } => {
            let (m, c) = describe(cause);
            let arg = name.clone().unwrap_or_else(|| format!("#{pos}"));
            let to = to.clone().unwrap_or_else(|| "a function".into());
            (format!("{to}: bad argument {arg}: {m}"), c)
        }
        other => (other.to_string(), vec![]),
    }
}
