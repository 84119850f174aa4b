//! The exchange between a session and its Rust cells (the kernel's `%%rust` cells, evaluated by
//! evcxr in a child process): frames as Arrow IPC files in a shared directory, and calls from
//! the session to Rust functions that a cell exported, over Unix sockets.
//!
//! Layout of the exchange directory (the kernel names it in [`EXCHANGE_ENV`] for the child):
//!
//! ```text
//! frames/NAME.arrow      a frame handed over by `sw.rust.set` or `sandwich::set`
//! functions/NAME         the socket path of the process copy that exported NAME
//! sockets/PID-N-T.sock   one listening socket per exporting copy of the cell library
//! ```
//!
//! Why a socket per copy: evcxr links the cell library statically into every cell's shared
//! object, so each cell that exports has its own statics (its own registry and server thread).
//! The `functions/` files say which copy answers for a name; a later export of the same name
//! points it at the newer copy. Nothing is shared in memory between copies.
//!
//! A message (either way) is a little-endian `u32` length and that much JSON, then, for each
//! frame the JSON refers to, a `u64` length and an Arrow IPC file of that many bytes.
//! A request is `{"fn": NAME, "args": [ARG, ...]}` where ARG is `{"json": VALUE}` or
//! `{"frame": I}`; a reply is `{"ok": ARG}` or `{"error": MESSAGE}`.

use std::io::{Cursor, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use polars::prelude::*;
use serde_json::{json, Value};

use crate::{Error, Result};

/// The environment variable naming the exchange directory in the Rust cells' process.
pub const EXCHANGE_ENV: &str = "SANDWICH_RUST_EXCHANGE";

/// An argument or result crossing between the session and a Rust function.
#[derive(Debug, Clone)]
pub enum Arg {
    /// Numbers, strings, booleans, lists and maps (Lua tables), as JSON.
    Json(Value),
    /// A frame, as Arrow IPC.
    Frame(DataFrame),
}

fn invalid(op: &'static str, arg: &'static str, expected: &str, got: impl Into<String>) -> Error {
    Error::InvalidArgument {
        op,
        arg,
        expected: expected.to_string(),
        got: got.into(),
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

/// A frame's or function's name: letters, digits, `_`, `-` and `.`, not starting with `.`
/// (it becomes a file name).
pub fn check_name(op: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            op,
            "name",
            "a name of letters, digits, '_', '-' and '.' (not starting with '.')",
            format!("'{name}'"),
        ))
    }
}

fn subdir(op: &'static str, dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).map_err(io(op, &path))?;
    Ok(path)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees half.
fn write_atomically(op: &'static str, path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&tmp, bytes).map_err(io(op, &tmp))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(op, path)(e)
    })
}

fn frame_to_ipc(op: &'static str, df: &DataFrame) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut df = df.clone();
    IpcWriter::new(&mut bytes)
        .finish(&mut df)
        .map_err(Error::polars(
            op,
            "encoding the frame as Arrow IPC".to_string(),
        ))?;
    Ok(bytes)
}

fn frame_from_ipc(op: &'static str, bytes: Vec<u8>) -> Result<DataFrame> {
    IpcReader::new(Cursor::new(bytes))
        .finish()
        .map_err(Error::polars(op, "decoding an Arrow IPC frame".to_string()))
}

/// Hands `df` over as `name` (replacing a frame of that name).
pub fn write_frame(op: &'static str, dir: &Path, name: &str, df: &DataFrame) -> Result<()> {
    check_name(op, name)?;
    let path = subdir(op, dir, "frames")?.join(format!("{name}.arrow"));
    write_atomically(op, &path, &frame_to_ipc(op, df)?)
}

/// The frame handed over as `name`; an error lists the names there are.
pub fn read_frame(op: &'static str, dir: &Path, name: &str) -> Result<DataFrame> {
    check_name(op, name)?;
    let path = dir.join("frames").join(format!("{name}.arrow"));
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let names = frame_names(dir);
            let have = if names.is_empty() {
                "none has been set".to_string()
            } else {
                format!("set: {}", names.join(", "))
            };
            return Err(invalid(
                op,
                "name",
                &format!("the name of a frame set with sw.rust.set or sandwich::set ({have})"),
                format!("'{name}'"),
            ));
        }
        Err(e) => return Err(io(op, &path)(e)),
    };
    frame_from_ipc(op, bytes)
}

fn names_in(dir: &Path, strip: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let base = name.strip_suffix(strip)?;
            (!base.is_empty() && !name.contains(".tmp-")).then(|| base.to_string())
        })
        .collect();
    names.sort();
    names
}

/// The frames handed over so far, sorted.
pub fn frame_names(dir: &Path) -> Vec<String> {
    names_in(&dir.join("frames"), ".arrow")
}

/// The functions exported so far (by any copy, live or not), sorted.
pub fn function_names(dir: &Path) -> Vec<String> {
    names_in(&dir.join("functions"), "")
}

fn write_message(
    stream: &mut impl Write,
    header: &Value,
    frames: &[Vec<u8>],
) -> std::io::Result<()> {
    let text = serde_json::to_vec(header)?;
    let mut out =
        Vec::with_capacity(4 + text.len() + frames.iter().map(|f| 8 + f.len()).sum::<usize>());
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(&text);
    for f in frames {
        out.extend_from_slice(&(f.len() as u64).to_le_bytes());
        out.extend_from_slice(f);
    }
    stream.write_all(&out)?;
    stream.flush()
}

/// Reads a message's JSON header and raw frames. The number of frames is the count of
/// `{"frame": I}` references in the header.
fn read_message(stream: &mut impl Read) -> std::io::Result<(Value, Vec<Vec<u8>>)> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut text = vec![0u8; u32::from_le_bytes(len) as usize];
    stream.read_exact(&mut text)?;
    let header: Value = serde_json::from_slice(&text)?;
    let mut frames = Vec::new();
    for _ in 0..count_frames(&header) {
        let mut len = [0u8; 8];
        stream.read_exact(&mut len)?;
        let n = u64::from_le_bytes(len);
        let mut bytes = Vec::new();
        stream.by_ref().take(n).read_to_end(&mut bytes)?;
        if bytes.len() as u64 != n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        frames.push(bytes);
    }
    Ok((header, frames))
}

fn count_frames(header: &Value) -> usize {
    let arg_frames = |a: &Value| usize::from(a.get("frame").is_some());
    header["args"]
        .as_array()
        .map_or(0, |args| args.iter().map(arg_frames).sum())
        + header.get("ok").map_or(0, arg_frames)
}

/// Encodes arguments as JSON references plus IPC bytes.
fn encode(op: &'static str, args: &[Arg]) -> Result<(Vec<Value>, Vec<Vec<u8>>)> {
    let mut frames = Vec::new();
    let mut refs = Vec::with_capacity(args.len());
    for a in args {
        match a {
            Arg::Json(v) => refs.push(json!({ "json": v })),
            Arg::Frame(df) => {
                refs.push(json!({ "frame": frames.len() }));
                frames.push(frame_to_ipc(op, df)?);
            }
        }
    }
    Ok((refs, frames))
}

fn decode(op: &'static str, reference: &Value, frames: &mut [Option<Vec<u8>>]) -> Result<Arg> {
    if let Some(v) = reference.get("json") {
        return Ok(Arg::Json(v.clone()));
    }
    let bytes = reference
        .get("frame")
        .and_then(Value::as_u64)
        .and_then(|i| frames.get_mut(i as usize))
        .and_then(Option::take)
        .ok_or_else(|| {
            invalid(
                op,
                "message",
                "a json or frame argument",
                reference.to_string(),
            )
        })?;
    frame_from_ipc(op, bytes).map(Arg::Frame)
}

/// A connection to the copy that exported a function.
pub struct Client {
    stream: UnixStream,
    name: String,
}

/// The error for a function whose process is gone (the Rust cells' process restarted).
fn gone(op: &'static str, name: &str) -> Error {
    Error::Hook {
        op,
        hook: "Rust function",
        message: format!(
            "'{name}' is gone: the Rust cells' process that exported it has stopped (an \
             interrupt or a restart ends it); run the cell that exports it again"
        ),
    }
}

impl Client {
    /// Connects to the process copy that exported `name`.
    pub fn connect(op: &'static str, dir: &Path, name: &str) -> Result<Client> {
        check_name(op, name)?;
        let entry = dir.join("functions").join(name);
        let socket = match std::fs::read_to_string(&entry) {
            Ok(s) => PathBuf::from(s.trim()),
            Err(_) => {
                let names = function_names(dir);
                let have = if names.is_empty() {
                    "none has been exported in this session: a %%rust cell exports one with sandwich::export".to_string()
                } else {
                    format!("exported: {}", names.join(", "))
                };
                return Err(invalid(
                    op,
                    "name",
                    &format!("the name of a function a Rust cell exported ({have})"),
                    format!("'{name}'"),
                ));
            }
        };
        let stream = UnixStream::connect(&socket).map_err(|_| gone(op, name))?;
        Ok(Client {
            stream,
            name: name.to_string(),
        })
    }

    /// Calls the function; `interrupted` is polled while waiting (every 50 ms), and a `true`
    /// abandons the call with [`Error::Interrupted`] (the function runs on to its end in its
    /// process; its answer is dropped with this connection).
    pub fn call(
        &mut self,
        op: &'static str,
        args: &[Arg],
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Arg> {
        let (refs, frames) = encode(op, args)?;
        let header = json!({ "fn": self.name, "args": refs });
        write_message(&mut self.stream, &header, &frames).map_err(|_| gone(op, &self.name))?;
        self.stream
            .set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .map_err(|_| gone(op, &self.name))?;
        // Wait for the first byte with a timeout (to poll the interrupt), then read the rest.
        let mut first = [0u8; 1];
        loop {
            match self.stream.read(&mut first) {
                Ok(0) => return Err(gone(op, &self.name)),
                Ok(_) => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if interrupted() {
                        return Err(Error::Interrupted);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(gone(op, &self.name)),
            }
        }
        self.stream
            .set_read_timeout(None)
            .map_err(|_| gone(op, &self.name))?;
        let mut rest = Cursor::new(first).chain(&mut self.stream);
        let (reply, frames) = read_message(&mut rest).map_err(|_| gone(op, &self.name))?;
        if let Some(message) = reply.get("error").and_then(Value::as_str) {
            return Err(Error::Hook {
                op,
                hook: "Rust function",
                message: format!("'{}' failed: {message}", self.name),
            });
        }
        let mut frames: Vec<Option<Vec<u8>>> = frames.into_iter().map(Some).collect();
        decode(op, &reply["ok"], &mut frames)
    }
}

/// A Rust function as the server calls it: arguments in, a result or an error message out.
pub type Handler = Arc<dyn Fn(&str, Vec<Arg>) -> std::result::Result<Arg, String> + Send + Sync>;

/// A listening socket of one exporting copy, serving calls on a thread per connection.
pub struct Server {
    socket: PathBuf,
}

impl Server {
    /// Binds a fresh socket in `dir/sockets/` and serves `handler` from a background thread.
    pub fn start(op: &'static str, dir: &Path, handler: Handler) -> Result<Server> {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let sockets = subdir(op, dir, "sockets")?;
        // Several copies live in one process: the serial keeps their sockets apart, the time
        // keeps a restarted process (same pid in a container) off a dead copy's file.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let socket = sockets.join(format!(
            "{}-{}-{}.sock",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed),
            nanos
        ));
        let listener = UnixListener::bind(&socket).map_err(io(op, &socket))?;
        std::thread::Builder::new()
            .name("sandwich-rust-fns".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let handler = handler.clone();
                    let _ = std::thread::Builder::new()
                        .name("sandwich-rust-call".into())
                        .spawn(move || serve_connection(stream, handler));
                }
            })
            .map_err(io(op, &socket))?;
        Ok(Server { socket })
    }

    /// Points `name` at this copy: calls to it come here from now on.
    pub fn publish(&self, op: &'static str, dir: &Path, name: &str) -> Result<()> {
        check_name(op, name)?;
        let entry = subdir(op, dir, "functions")?.join(name);
        write_atomically(op, &entry, self.socket.to_string_lossy().as_bytes())
    }
}

fn serve_connection(mut stream: UnixStream, handler: Handler) {
    const OP: &str = "sandwich::export";
    while let Ok((request, frames)) = read_message(&mut stream) {
        let name = request["fn"].as_str().unwrap_or_default().to_string();
        let mut frames: Vec<Option<Vec<u8>>> = frames.into_iter().map(Some).collect();
        let args: Result<Vec<Arg>> = request["args"]
            .as_array()
            .map(|a| a.iter().map(|r| decode(OP, r, &mut frames)).collect())
            .unwrap_or_else(|| Ok(Vec::new()));
        let outcome = match args {
            Ok(args) => handler(&name, args),
            Err(e) => Err(e.to_string()),
        };
        let written = match outcome {
            Ok(value) => match encode(OP, &[value]) {
                Ok((refs, frames)) => {
                    write_message(&mut stream, &json!({ "ok": refs[0] }), &frames)
                }
                Err(e) => write_message(&mut stream, &json!({ "error": e.to_string() }), &[]),
            },
            Err(message) => write_message(&mut stream, &json!({ "error": message }), &[]),
        };
        if written.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> DataFrame {
        df!("x" => [1.0f64, 2.0, 4.0], "who" => ["a", "b", "c"]).unwrap()
    }

    #[test]
    fn frames_round_trip_and_a_missing_name_lists_the_others() {
        let dir = tempfile::tempdir().unwrap();
        write_frame("t", dir.path(), "crowd", &frame()).unwrap();
        assert!(read_frame("t", dir.path(), "crowd")
            .unwrap()
            .equals(&frame()));
        assert_eq!(frame_names(dir.path()), vec!["crowd"]);
        let e = read_frame("t", dir.path(), "crow").unwrap_err().to_string();
        assert!(e.contains("'crow'") && e.contains("set: crowd"), "{e}");
        let e = write_frame("t", dir.path(), "../x", &frame())
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid argument 'name'"), "{e}");
    }

    #[test]
    fn calls_carry_json_and_frames_both_ways_and_errors_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let handler: Handler = Arc::new(|name, args| match (name, args.as_slice()) {
            ("sum", [Arg::Frame(df), Arg::Json(scale)]) => {
                let s: f64 = df.column("x").unwrap().f64().unwrap().sum().unwrap();
                Ok(Arg::Json(json!(s * scale.as_f64().unwrap())))
            }
            ("double", [Arg::Frame(df)]) => {
                let x = df.column("x").unwrap().as_materialized_series() * 2.0;
                Ok(Arg::Frame(DataFrame::new(x.len(), vec![x.into()]).unwrap()))
            }
            _ => Err(format!("no function '{name}' here")),
        });
        let server = Server::start("t", dir.path(), handler).unwrap();
        for name in ["sum", "double", "other"] {
            server.publish("t", dir.path(), name).unwrap();
        }
        let never = || false;
        let mut c = Client::connect("t", dir.path(), "sum").unwrap();
        for _ in 0..3 {
            let got = c
                .call("t", &[Arg::Frame(frame()), Arg::Json(json!(0.5))], &never)
                .unwrap();
            assert!(matches!(got, Arg::Json(v) if v == json!(3.5)));
        }
        let mut c = Client::connect("t", dir.path(), "double").unwrap();
        match c.call("t", &[Arg::Frame(frame())], &never).unwrap() {
            Arg::Frame(df) => assert_eq!(
                df.column("x").unwrap().f64().unwrap().to_vec(),
                vec![Some(2.0), Some(4.0), Some(8.0)]
            ),
            other => panic!("{other:?}"),
        }
        let mut c = Client::connect("t", dir.path(), "other").unwrap();
        let e = c.call("t", &[], &never).unwrap_err().to_string();
        assert!(
            e.contains("'other' failed: no function 'other' here"),
            "{e}"
        );
        let e = Client::connect("t", dir.path(), "nope")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("exported: double, other, sum"), "{e}");
    }

    #[test]
    fn a_dead_server_is_reported_as_gone_and_a_slow_call_can_be_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let handler: Handler = Arc::new(|_, _| {
            std::thread::sleep(std::time::Duration::from_secs(2));
            Ok(Arg::Json(Value::Null))
        });
        let server = Server::start("t", dir.path(), handler).unwrap();
        server.publish("t", dir.path(), "slow").unwrap();
        let mut c = Client::connect("t", dir.path(), "slow").unwrap();
        let start = std::time::Instant::now();
        let e = c
            .call("t", &[], &|| start.elapsed().as_millis() > 100)
            .unwrap_err();
        assert!(matches!(e, Error::Interrupted));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        // A socket file whose server is gone.
        std::fs::remove_file(&server.socket).unwrap();
        let e = Client::connect("t", dir.path(), "slow")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("'slow' is gone"), "{e}");
    }
}
