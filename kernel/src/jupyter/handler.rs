//! Shell requests, handled on the main thread where the Lua session lives: execute (streams,
//! displays, results, errors, stdin), complete, inspect, is_complete, history, comms, kernel info.
//! Every request is wrapped in `busy` … `idle` on iopub; nothing is published for a request after
//! its `idle`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sandwich_lua::{Completeness, DisplayEvent, Error, MimeBundle, Session, Stream};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::history::History;
use super::rust_cells::{self, Failure};
use super::sockets::{self, Inbound, Links};
use super::wire::{Message, Signer, PROTOCOL_VERSION};
use super::Connection;

/// The request being handled: where its outputs go and whether they are wanted.
#[derive(Clone, Default)]
struct Current {
    header: Value,
    identities: Vec<Bytes>,
    silent: bool,
    allow_stdin: bool,
}

/// Publishes on iopub on behalf of the current request (shared with the session's hooks).
#[derive(Clone)]
struct Publisher {
    session: String,
    iopub: UnboundedSender<Message>,
    current: Arc<Mutex<Current>>,
}

impl Publisher {
    fn current(&self) -> Current {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn send(&self, msg_type: &str, content: Value) {
        let header = self.current().header;
        let _ = self.iopub.send(Message::child(
            &header,
            vec![Bytes::from(msg_type.to_string())],
            &self.session,
            msg_type,
            content,
        ));
    }

    /// Output of the running cell (dropped for `silent` requests, as the protocol asks).
    fn output(&self, msg_type: &str, content: Value) {
        if !self.current().silent {
            self.send(msg_type, content);
        }
    }
}

/// A bundle as Jupyter `data`: JSON MIME types as JSON, the rest as strings.
fn mime_data(bundle: &MimeBundle) -> Value {
    let mut data = Map::new();
    for (mime, text) in bundle.iter() {
        let value = if mime == "application/json" || mime.ends_with("+json") {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
        } else {
            Value::String(text.to_string())
        };
        data.insert(mime.to_string(), value);
    }
    Value::Object(data)
}

pub fn kernel_info() -> Value {
    json!({
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": "sandwich",
        "implementation_version": env!("CARGO_PKG_VERSION"),
        "language_info": {
            "name": "lua",
            "version": "5.4",
            "mimetype": "text/x-lua",
            "file_extension": ".lua",
            "codemirror_mode": "lua",
            "pygments_lexer": "lua",
        },
        "banner": format!(
            "Sandwich {} — Lua 5.4 cells over the Sandwich workbench (`sw`). `name?` shows a function's page.",
            env!("CARGO_PKG_VERSION")
        ),
        "help_links": [
            {"text": "Sandwich Lua reference", "url": "https://example.invalid/sandwich/lua/docs/README.md"},
            {"text": "Lua 5.4 manual", "url": "https://www.lua.org/manual/5.4/"},
        ],
        "debugger": false,
    })
}

struct Kernel {
    session: Session,
    inbound: std::sync::mpsc::Receiver<Inbound>,
    iopub: UnboundedSender<Message>,
    shell: UnboundedSender<Message>,
    id: String,
    publisher: Publisher,
    count: u64,
    history: History,
    #[cfg(feature = "rust-cells")]
    rust: rust_cells::RustCells,
    /// The directory `sw.rust` and the Rust cells share (removed when the kernel stops).
    _exchange: tempfile::TempDir,
}

pub fn serve(conn: Connection, signer: Signer) -> anyhow::Result<()> {
    let session = Session::new()?;
    let id = uuid::Uuid::new_v4().to_string();
    let links = sockets::start(
        &conn,
        signer,
        id.clone(),
        session.interrupt_handle(),
        kernel_info(),
    )?;
    let Links {
        inbound,
        iopub,
        shell,
        stdin,
        input,
    } = links;
    let publisher = Publisher {
        session: id.clone(),
        iopub: iopub.clone(),
        current: Arc::new(Mutex::new(Current::default())),
    };
    install_hooks(&session, &publisher);
    install_input(&session, &publisher, stdin, input);
    let exchange = tempfile::Builder::new()
        .prefix("sandwich-kernel-")
        .tempdir()
        .map_err(|e| anyhow::anyhow!("kernel: cannot make a temporary directory: {e}"))?;
    session.set_rust_exchange(exchange.path().to_path_buf());
    #[cfg(feature = "rust-cells")]
    let rust = {
        let p = publisher.clone();
        rust_cells::RustCells::new(
            exchange.path().to_path_buf(),
            Arc::new(move |stream: &str, text: &str| {
                p.output("stream", json!({"name": stream, "text": text}))
            }),
        )
    };
    let mut kernel = Kernel {
        session,
        inbound,
        iopub,
        shell,
        id,
        publisher,
        count: 0,
        history: History::open(),
        #[cfg(feature = "rust-cells")]
        rust,
        _exchange: exchange,
    };
    while let Ok(inbound) = kernel.inbound.recv() {
        match inbound {
            Inbound::Shell(msg) => {
                if kernel.handle(msg) {
                    break;
                }
            }
            Inbound::Shutdown => break,
        }
    }
    // Let the socket thread flush the last replies.
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}

/// Sends a display event to the current request's front end.
fn show(p: &Publisher, event: DisplayEvent) {
    match event {
        DisplayEvent::Show { bundle, id, update } => {
            let transient = match &id {
                Some(id) => json!({"display_id": id}),
                None => json!({}),
            };
            let kind = if update {
                "update_display_data"
            } else {
                "display_data"
            };
            p.output(
                kind,
                json!({"data": mime_data(&bundle), "metadata": {}, "transient": transient}),
            );
        }
        DisplayEvent::Clear { wait } => p.output("clear_output", json!({"wait": wait})),
    }
}

fn install_hooks(session: &Session, publisher: &Publisher) {
    let p = publisher.clone();
    session.set_output(move |stream, text| {
        let name = match stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        };
        p.output("stream", json!({"name": name, "text": text}));
    });
    let p = publisher.clone();
    session.set_display(move |event| show(&p, event));
    let p = publisher.clone();
    session.set_progress(super::progress::NotebookBar::new(move |event| {
        show(&p, event)
    }));
}

/// `io.read()` and `sw.input()`: an `input_request` to the front end of the running request,
/// then a wait for its `input_reply` (an interrupt ends the wait).
fn install_input(
    session: &Session,
    publisher: &Publisher,
    stdin: UnboundedSender<Message>,
    replies: std::sync::mpsc::Receiver<Message>,
) {
    let p = publisher.clone();
    let replies = Mutex::new(replies);
    let interrupt = session.interrupt_handle();
    session.set_input(move |prompt, password| {
        let cur = p.current();
        if !cur.allow_stdin {
            return Err("this front end does not accept input (allow_stdin is false)".into());
        }
        let replies = replies.lock().unwrap_or_else(|e| e.into_inner());
        // A reply left over from an abandoned request is not an answer to this one.
        while replies.try_recv().is_ok() {}
        let request = Message::child(
            &cur.header,
            cur.identities.clone(),
            &p.session,
            "input_request",
            json!({"prompt": prompt, "password": password}),
        );
        stdin
            .send(request)
            .map_err(|_| "the stdin socket is closed".to_string())?;
        loop {
            match replies.recv_timeout(Duration::from_millis(20)) {
                Ok(m) => return Ok(m.content["value"].as_str().unwrap_or("").to_string()),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if interrupt.is_requested() {
                        return Err("interrupted".into());
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("the stdin socket is closed".into())
                }
            }
        }
    });
}

impl Kernel {
    /// Handles one shell request; true when the kernel should stop.
    fn handle(&mut self, msg: Message) -> bool {
        {
            let mut c = self
                .publisher
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *c = Current {
                header: msg.header.clone(),
                identities: msg.identities.clone(),
                silent: false,
                allow_stdin: false,
            };
        }
        self.publisher
            .send("status", json!({"execution_state": "busy"}));
        let mut stop = false;
        let reply = match msg.msg_type() {
            "kernel_info_request" => Some(("kernel_info_reply", kernel_info())),
            "execute_request" => Some(("execute_reply", self.execute(&msg))),
            "complete_request" => Some(("complete_reply", self.complete(&msg.content))),
            "inspect_request" => Some(("inspect_reply", self.inspect(&msg.content))),
            "is_complete_request" => Some(("is_complete_reply", self.is_complete(&msg.content))),
            "history_request" => Some(("history_reply", self.history.request(&msg.content))),
            "comm_info_request" => Some(("comm_info_reply", json!({"status": "ok", "comms": {}}))),
            "comm_open" => {
                // No comm targets exist: close it at once, as ipykernel does for unknown targets.
                self.publisher.send(
                    "comm_close",
                    json!({"comm_id": msg.content["comm_id"], "data": {}}),
                );
                None
            }
            "comm_msg" | "comm_close" => None,
            "shutdown_request" => {
                stop = true;
                let restart = msg.content["restart"].as_bool().unwrap_or(false);
                Some((
                    "shutdown_reply",
                    json!({"status": "ok", "restart": restart}),
                ))
            }
            other => {
                eprintln!("kernel: unsupported shell message '{other}'");
                None
            }
        };
        if let Some((kind, content)) = reply {
            let _ = self.shell.send(msg.reply(&self.id, kind, content));
        }
        self.publisher
            .send("status", json!({"execution_state": "idle"}));
        stop
    }

    fn execute(&mut self, msg: &Message) -> Value {
        let c = &msg.content;
        let code = c["code"].as_str().unwrap_or("").to_string();
        let silent = c["silent"].as_bool().unwrap_or(false);
        let store = c["store_history"].as_bool().unwrap_or(true) && !silent;
        {
            let mut cur = self
                .publisher
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            cur.silent = silent;
            cur.allow_stdin = c["allow_stdin"].as_bool().unwrap_or(true);
        }
        if store {
            self.count += 1;
        }
        let count = self.count;
        let reply = self.run_cell(&code, c, count, silent);
        if store {
            let output = reply.1;
            self.history.record(count, &code, output);
        }
        reply.0
    }

    /// Runs a cell; returns the reply content and the result's text (for the history).
    fn run_cell(
        &mut self,
        code: &str,
        c: &Value,
        count: u64,
        silent: bool,
    ) -> (Value, Option<String>) {
        if !silent {
            self.publisher.send(
                "execute_input",
                json!({"code": code, "execution_count": count}),
            );
        }
        if rust_cells::rust_code(code).is_some() {
            return self.run_rust_cell(code, c, count, silent);
        }
        // `name?` (or `name??`) shows the name's page in the pager instead of running.
        let trimmed = code.trim();
        if let Some(name) = trimmed.strip_suffix('?').map(|n| n.trim_end_matches('?')) {
            if !name.is_empty() && !name.contains(char::is_whitespace) {
                let page = self
                    .session
                    .inspect(name, name.chars().count())
                    .unwrap_or_else(|| format!("no documentation or value found for '{name}'"));
                let reply = json!({
                    "status": "ok",
                    "execution_count": count,
                    "payload": [{"source": "page", "data": {"text/plain": page, "text/markdown": page}, "start": 0}],
                    "user_expressions": {},
                });
                return (reply, None);
            }
        }
        let name = format!("In [{count}]");
        match self.session.eval(code, &name) {
            Ok(value) => {
                let text = value.as_ref().map(|b| b.text().to_string());
                if let Some(bundle) = value.filter(|_| !silent) {
                    self.publisher.send(
                        "execute_result",
                        json!({"execution_count": count, "data": mime_data(&bundle), "metadata": {}}),
                    );
                }
                let expressions = self.user_expressions(&c["user_expressions"]);
                let reply = json!({
                    "status": "ok",
                    "execution_count": count,
                    "payload": [],
                    "user_expressions": expressions,
                });
                (reply, text)
            }
            Err(e) => {
                let (ename, evalue, traceback) = describe(&e);
                (self.fail(c, count, ename, evalue, traceback), None)
            }
        }
    }

    /// Publishes a cell's error, aborts the queued cells when asked, and makes its reply.
    fn fail(
        &mut self,
        c: &Value,
        count: u64,
        ename: String,
        evalue: String,
        traceback: Vec<String>,
    ) -> Value {
        self.publisher.output(
            "error",
            json!({"ename": ename, "evalue": evalue, "traceback": traceback}),
        );
        if c["stop_on_error"].as_bool().unwrap_or(true) {
            self.abort_queued();
        }
        json!({
            "status": "error",
            "execution_count": count,
            "ename": ename,
            "evalue": evalue,
            "traceback": traceback,
        })
    }

    /// A `%%rust` cell: evcxr's trailing value is the result (`execute_result`) when it is
    /// plain text, a `display_data` when it carries richer MIME types (evcxr's
    /// `EVCXR_BEGIN_CONTENT` output).
    fn run_rust_cell(
        &mut self,
        code: &str,
        c: &Value,
        count: u64,
        silent: bool,
    ) -> (Value, Option<String>) {
        #[cfg(feature = "rust-cells")]
        let outcome = {
            let interrupt = self.session.interrupt_handle();
            self.rust.eval(code, &interrupt)
        };
        #[cfg(not(feature = "rust-cells"))]
        let outcome: Result<rust_cells::Bundle, Failure> = {
            let _ = code; // only the feature's evaluator reads it
            Err(rust_cells::failure(
                "RustCellsUnavailable",
                "this kernel was built without Rust cells: build it with \
                 `cargo build --release --features rust-cells`",
            ))
        };
        match outcome {
            Ok(bundle) => {
                let text = bundle
                    .iter()
                    .find(|(m, _)| m == "text/plain")
                    .map(|(_, t)| t.clone());
                if !bundle.is_empty() && !silent {
                    let plain_only = bundle.iter().all(|(m, _)| m == "text/plain");
                    let mut rich = MimeBundle::default();
                    for (mime, content) in bundle {
                        rich.insert(&mime, content);
                    }
                    // JSON types as JSON, like a Lua cell's outputs.
                    let data = mime_data(&rich);
                    if plain_only {
                        self.publisher.send(
                            "execute_result",
                            json!({"execution_count": count, "data": data, "metadata": {}}),
                        );
                    } else {
                        self.publisher.send(
                            "display_data",
                            json!({"data": data, "metadata": {}, "transient": {}}),
                        );
                    }
                }
                let reply = json!({
                    "status": "ok",
                    "execution_count": count,
                    "payload": [],
                    "user_expressions": {},
                });
                (reply, text)
            }
            Err(Failure {
                ename,
                evalue,
                traceback,
            }) => (self.fail(c, count, ename, evalue, traceback), None),
        }
    }

    /// After a failed cell with `stop_on_error`, the execute requests queued behind it — those
    /// already received and those arriving within 100 ms, as a notebook's "run all" sends them
    /// back to back — are answered `aborted` without running.
    fn abort_queued(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_millis(100);
        let mut keep = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let inbound = match self.inbound.recv_timeout(left) {
                Ok(m) => m,
                Err(_) => break,
            };
            match inbound {
                Inbound::Shell(m) if m.msg_type() == "execute_request" => {
                    let status = |state: &str| Message::status(&m.header, &self.id, state);
                    let _ = self.iopub.send(status("busy"));
                    let _ = self.shell.send(m.reply(
                        &self.id,
                        "execute_reply",
                        json!({"status": "aborted", "execution_count": self.count}),
                    ));
                    let _ = self.iopub.send(status("idle"));
                }
                other => keep.push(other),
            }
        }
        for m in keep {
            match m {
                Inbound::Shell(m) => {
                    self.handle(m);
                }
                // Re-queue nothing: a shutdown during the window ends the kernel now.
                Inbound::Shutdown => std::process::exit(0),
            }
        }
    }

    fn user_expressions(&self, exprs: &Value) -> Value {
        let mut out = Map::new();
        if let Some(map) = exprs.as_object() {
            for (name, expr) in map {
                let code = expr.as_str().unwrap_or("");
                let value = match self.session.eval(code, "user_expression") {
                    Ok(b) => json!({
                        "status": "ok",
                        "data": b.map(|b| mime_data(&b)).unwrap_or_else(|| json!({"text/plain": "nil"})),
                        "metadata": {},
                    }),
                    Err(e) => {
                        let (ename, evalue, traceback) = describe(&e);
                        json!({"status": "error", "ename": ename, "evalue": evalue, "traceback": traceback})
                    }
                };
                out.insert(name.clone(), value);
            }
        }
        Value::Object(out)
    }

    fn complete(&self, c: &Value) -> Value {
        let code = c["code"].as_str().unwrap_or("");
        if rust_cells::rust_code(code).is_some() {
            // Lua completions would be noise in Rust; evcxr's are not wired in.
            let cursor = c["cursor_pos"].as_u64().unwrap_or(0);
            return json!({"status": "ok", "matches": [], "cursor_start": cursor,
                          "cursor_end": cursor, "metadata": {}});
        }
        let cursor = c["cursor_pos"]
            .as_u64()
            .map_or(code.chars().count(), |v| v as usize);
        let done = self.session.complete(code, cursor);
        json!({
            "status": "ok",
            "matches": done.matches,
            "cursor_start": done.cursor_start,
            "cursor_end": done.cursor_end,
            "metadata": {},
        })
    }

    fn inspect(&self, c: &Value) -> Value {
        let code = c["code"].as_str().unwrap_or("");
        let cursor = c["cursor_pos"]
            .as_u64()
            .map_or(code.chars().count(), |v| v as usize);
        match self.session.inspect(code, cursor) {
            Some(text) => json!({
                "status": "ok",
                "found": true,
                "data": {"text/plain": text, "text/markdown": text},
                "metadata": {},
            }),
            None => json!({"status": "ok", "found": false, "data": {}, "metadata": {}}),
        }
    }

    fn is_complete(&self, c: &Value) -> Value {
        let code = c["code"].as_str().unwrap_or("");
        if rust_cells::rust_code(code).is_some() {
            return json!({"status": "complete"});
        }
        match self.session.is_complete(code) {
            Completeness::Complete => json!({"status": "complete"}),
            Completeness::Incomplete => json!({"status": "incomplete", "indent": "  "}),
            Completeness::Invalid => json!({"status": "invalid"}),
        }
    }
}

/// An error as Jupyter's `ename`, `evalue` and traceback lines.
fn describe(e: &Error) -> (String, String, Vec<String>) {
    match e {
        Error::Interrupted => (
            "Interrupted".into(),
            "interrupted".into(),
            vec!["Interrupted: the cell was stopped".into()],
        ),
        Error::Syntax(m) => (
            "SyntaxError".into(),
            m.clone(),
            vec![format!("SyntaxError: {m}")],
        ),
        Error::Script {
            message,
            traceback,
            causes,
            ..
        } => {
            let mut lines = vec![format!("LuaError: {message}")];
            lines.extend(causes.iter().map(|c| format!("  caused by: {c}")));
            lines.extend(traceback.lines().map(str::to_string));
            ("LuaError".into(), message.clone(), lines)
        }
        other => (
            "Error".into(),
            other.to_string(),
            vec![format!("Error: {other}")],
        ),
    }
}
