//! `%%rust` cells: Rust evaluated by evcxr (its `CommandContext`: items persist between cells,
//! a trailing expression is displayed, `:dep` lines work against the local crate cache, as
//! cargo runs offline). evcxr compiles each cell into a shared object and runs it in a child
//! process — this binary again, caught by `evcxr::runtime_hook()` at the top of `main` — so a
//! Rust cell that crashes or is interrupted takes the child down, never the kernel.
//!
//! Each cell is linked against the `sandwich` crate (`kernel/cells`, compiled with the binary:
//! its library sits in `deps/` beside the executable) through `--extern`, so a cell sees
//! `sandwich::get/set/export`, `sandwich::sandwich_core` and `sandwich::polars` without
//! building polars again (a `:dep` on sandwich-core would compile it and polars from scratch,
//! about fifteen minutes on two cores, in every new kernel's temporary target).

#[cfg(feature = "rust-cells")]
use std::path::{Path, PathBuf};
#[cfg(feature = "rust-cells")]
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(feature = "rust-cells")]
use std::sync::{Arc, Mutex};
#[cfg(feature = "rust-cells")]
use std::time::{Duration, Instant};

#[cfg(feature = "rust-cells")]
use sandwich_core::Interrupt;

#[cfg(feature = "rust-cells")]
/// Where a Rust cell's printed lines go (`"stdout"` or `"stderr"`, the text with its newline).
pub type Sink = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// What a Rust cell gave back: MIME type → content (empty when it has no trailing value).
pub type Bundle = Vec<(String, String)>;

/// A failed Rust cell, as Jupyter's `ename`, `evalue` and traceback lines.
pub struct Failure {
    pub ename: String,
    pub evalue: String,
    pub traceback: Vec<String>,
}

pub fn failure(ename: &str, evalue: impl Into<String>) -> Failure {
    let evalue = evalue.into();
    Failure {
        ename: ename.into(),
        traceback: evalue.lines().map(|l| format!("{ename}: {l}")).collect(),
        evalue,
    }
}

/// The code of a Rust cell (its first line is `%%rust`), or `None` for a Lua cell.
pub fn rust_code(cell: &str) -> Option<&str> {
    let start = cell.len() - cell.trim_start().len();
    let rest = cell[start..].strip_prefix("%%rust")?;
    match rest.chars().next() {
        None | Some('\n') | Some('\r') | Some(' ') | Some('\t') => Some(rest),
        _ => None,
    }
}

#[cfg(feature = "rust-cells")]
/// The `%%rust` line (and anything before it) blanked, so that evcxr's line numbers are the
/// cell's: `%%rust` is line 1, the first line of Rust is line 2.
fn as_evcxr_source(cell: &str) -> String {
    let code = rust_code(cell).unwrap_or(cell);
    let skipped = &cell[..cell.len() - code.len()];
    let rest = code.split_once('\n').map_or("", |(_, rest)| rest);
    "\n".repeat(skipped.matches('\n').count() + 1) + rest
}

#[cfg(feature = "rust-cells")]
/// The `sandwich` crate's compiled library: `$SANDWICH_CELLS_RLIB`, or the newest
/// `libsandwich_cells-*.rlib` in `deps/` beside this executable (cargo's layout).
fn cells_library() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SANDWICH_CELLS_RLIB") {
        return Some(PathBuf::from(p));
    }
    let deps = std::env::current_exe().ok()?.parent()?.join("deps");
    std::fs::read_dir(deps)
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.starts_with("libsandwich_cells-") && name.ends_with(".rlib")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

#[cfg(feature = "rust-cells")]
/// The flags of every cell's compilation: evcxr's own (`-Cprefer-dynamic`, the linker), then
/// the `sandwich` crate and the directory its dependencies' libraries are in. As
/// `CARGO_ENCODED_RUSTFLAGS` (one flag per field), so that paths may hold spaces.
fn cell_flags(library: &Path, linker: &str) -> String {
    let deps = library.parent().unwrap_or(Path::new("."));
    let mut flags = vec!["-Cprefer-dynamic".to_string()];
    if linker == "lld" {
        flags.push("-Clink-arg=-fuse-ld=lld".into());
    }
    flags.push("-L".into());
    flags.push(format!("dependency={}", deps.display()));
    flags.push("--extern".into());
    flags.push(format!("sandwich={}", library.display()));
    flags.join("\x1f")
}

#[cfg(feature = "rust-cells")]
/// The Rust side of a kernel: evcxr, started at the first Rust cell.
pub struct RustCells {
    exchange: PathBuf,
    sink: Sink,
    running: Option<Running>,
}

#[cfg(feature = "rust-cells")]
struct Running {
    ctx: evcxr::CommandContext,
    /// Held by a forwarding thread while it publishes a line: taking it after a cell means the
    /// lines it printed have all gone out before the reply.
    forwarding: Arc<Mutex<()>>,
    /// The child's stdout and stderr lines (evcxr's channels; the forwarding thread reads
    /// them too).
    streams: [(&'static str, crossbeam_channel::Receiver<String>); 2],
    /// When the forwarding thread last published a line.
    last_line: Arc<Mutex<Instant>>,
}

#[cfg(feature = "rust-cells")]
impl Running {
    /// Publishes what the cell printed before its reply goes out. evcxr has every stdout line
    /// by the time the cell returns, but reads stderr on a thread of its own, out of step with
    /// stdout: wait until stderr has been quiet for 30 ms (at most half a second), then drain
    /// both channels here, under the forwarding lock.
    fn flush(&self, sink: &Sink) {
        let started = Instant::now();
        loop {
            let last = *self.last_line.lock().unwrap_or_else(|p| p.into_inner());
            let quiet = last.elapsed() >= Duration::from_millis(30)
                && self.streams.iter().all(|(_, rx)| rx.is_empty());
            if quiet || started.elapsed() >= Duration::from_millis(500) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _guard = self.forwarding.lock().unwrap_or_else(|p| p.into_inner());
        for (name, rx) in &self.streams {
            while let Ok(line) = rx.try_recv() {
                sink(name, &format!("{line}\n"));
            }
        }
    }

    /// evcxr notices a dead child (an exported function that crashed it, an interrupt that
    /// landed after a cell finished) only by failing the next cell it was asked to run; restart
    /// it first, so that the next cell runs.
    fn revive(&mut self) {
        let exited = {
            let handle = self.ctx.process_handle();
            let mut child = handle.lock().unwrap_or_else(|p| p.into_inner());
            !matches!(child.try_wait(), Ok(None))
        };
        if exited {
            // Code that must run (an empty cell would not reach the process): it fails with
            // SubprocessTerminated, and evcxr has started a new process.
            let _ = self.ctx.execute("let _ = ();");
        }
    }
}

#[cfg(feature = "rust-cells")]
impl RustCells {
    /// `exchange` is the session's directory for `sw.rust` (the child process is told it too).
    pub fn new(exchange: PathBuf, sink: Sink) -> RustCells {
        RustCells {
            exchange,
            sink,
            running: None,
        }
    }

    fn start(&mut self) -> Result<&mut Running, Failure> {
        if self.running.is_none() {
            let exe = std::env::current_exe().map_err(|e| {
                failure("RustCellError", format!("cannot find this executable: {e}"))
            })?;
            let mut command = std::process::Command::new(exe);
            command.env(sandwich_core::cells::EXCHANGE_ENV, &self.exchange);
            let (mut ctx, outputs) =
                evcxr::EvalContext::with_subprocess_command(command).map_err(|e| {
                    failure(
                        "RustCellError",
                        format!("could not start evcxr (it needs cargo and rustc on PATH): {e}"),
                    )
                })?;
            let mut state = ctx.state();
            state.set_offline_mode(true);
            match cells_library() {
                Some(library) => {
                    let flags = cell_flags(&library, state.linker());
                    state.set_build_env("CARGO_ENCODED_RUSTFLAGS", &flags);
                }
                None => (self.sink)(
                    "stderr",
                    "Rust cells: the `sandwich` crate's library (libsandwich_cells-*.rlib) is not \
                     in deps/ beside this executable, so `sandwich::` is unavailable in Rust \
                     cells; run the binary from the cargo target directory it was built in, or \
                     set SANDWICH_CELLS_RLIB to the library's path\n",
                ),
            }
            ctx.eval_with_state("", state)
                .map_err(|e| failure("RustCellError", format!("could not configure evcxr: {e}")))?;
            let forwarding = Arc::new(Mutex::new(()));
            let streams = [
                ("stdout", outputs.stdout.clone()),
                ("stderr", outputs.stderr.clone()),
            ];
            let last_line = Arc::new(Mutex::new(Instant::now()));
            {
                let (sink, lock, last_line) =
                    (self.sink.clone(), forwarding.clone(), last_line.clone());
                let streams = streams.clone();
                std::thread::Builder::new()
                    .name("rust-cells-output".into())
                    .spawn(move || {
                        let mut select = crossbeam_channel::Select::new();
                        for (_, rx) in &streams {
                            select.recv(rx);
                        }
                        // Wait for a line without taking it, then take and publish it under
                        // the lock: a line is never held outside the channel unpublished
                        // while the main thread holds the lock.
                        loop {
                            let ready = select.ready();
                            let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                            let (name, rx) = &streams[ready];
                            match rx.try_recv() {
                                Ok(line) => {
                                    *last_line.lock().unwrap_or_else(|p| p.into_inner()) =
                                        Instant::now();
                                    sink(name, &format!("{line}\n"));
                                }
                                Err(crossbeam_channel::TryRecvError::Empty) => {}
                                Err(crossbeam_channel::TryRecvError::Disconnected) => return,
                            }
                        }
                    })
                    .map_err(|e| failure("RustCellError", e.to_string()))?;
            }
            self.running = Some(Running {
                ctx: evcxr::CommandContext::with_eval_context(ctx),
                forwarding,
                streams,
                last_line,
            });
        }
        Ok(self.running.as_mut().expect("started above"))
    }

    /// Runs a `%%rust` cell. An interrupt (the kernel's flag) kills the child process: the cell
    /// stops and evcxr starts a fresh process (items persist, variables are lost). A compile in
    /// progress is not stopped: the kill lands on the process that runs cells.
    pub fn eval(&mut self, cell: &str, interrupt: &Interrupt) -> Result<Bundle, Failure> {
        interrupt.clear();
        let source = as_evcxr_source(cell);
        let sink = self.sink.clone();
        let running = self.start()?;
        running.revive();
        let process = running.ctx.process_handle();
        let done = Arc::new(AtomicBool::new(false));
        let killed = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (done, killed, interrupt) = (done.clone(), killed.clone(), interrupt.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    if interrupt.is_requested() {
                        let _ = process.lock().unwrap_or_else(|p| p.into_inner()).kill();
                        killed.store(true, Ordering::Release);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let result = running.ctx.execute(&source);
        done.store(true, Ordering::Release);
        let _ = watcher.join();
        running.flush(&sink);
        interrupt.clear();
        match result {
            Ok(outputs) => {
                let mut bundle: Bundle = outputs.content_by_mime_type.into_iter().collect();
                bundle.sort();
                Ok(bundle)
            }
            Err(_) if killed.load(Ordering::Acquire) => Err(failure(
                "Interrupted",
                "the Rust cell was stopped: its process ended, so the Rust variables are lost \
                 (items — fn, struct, use — persist; the next Rust cell starts a new process)",
            )),
            Err(evcxr::Error::CompilationErrors(errors)) => Err(compile_failure(&source, &errors)),
            Err(evcxr::Error::SubprocessTerminated(message)) => Err(failure(
                "RustProcessEnded",
                format!(
                    "{message}; the Rust variables are lost (items persist; the next Rust cell \
                     starts a new process)"
                ),
            )),
            Err(other) => {
                let mut message = other.to_string();
                if message.contains("explicit type") {
                    message.push_str(TYPE_HINT);
                }
                Err(failure("RustError", message))
            }
        }
    }
}

#[cfg(feature = "rust-cells")]
/// evcxr keeps a cell's top-level variables for later cells, which needs their types; it
/// infers them with rust-analyzer, which reads the cell's Cargo.toml and so does not see the
/// `sandwich` crate handed to rustc directly (it may then guess `!`, or give up).
#[cfg(feature = "rust-cells")]
const TYPE_HINT: &str = "\n(evcxr cannot infer types that come from the `sandwich` crate: write \
     the type of a top-level `let`, as in `let df: DataFrame = sandwich::get(\"x\")?;`, or keep \
     the value inside a block `{ ... }`)";

#[cfg(feature = "rust-cells")]
/// Compile errors as one message that names the cell's line (the first error's), and a
/// traceback with each error, its line of the cell and a caret under the span.
fn compile_failure(source: &str, errors: &[evcxr::CompilationError]) -> Failure {
    let lines: Vec<&str> = source.lines().collect();
    let mut traceback = Vec::new();
    let mut evalue = None;
    for e in errors
        .iter()
        .filter(|e| e.level() == "error" || errors.len() == 1)
    {
        let code = e.code().map(|c| format!("[{c}]")).unwrap_or_default();
        let span = e
            .primary_spanned_message()
            .and_then(|m| m.span.map(|s| (s, m)));
        match span {
            Some((s, m)) => {
                let head = format!("error{code} on line {}: {}", s.start_line, e.message());
                evalue.get_or_insert_with(|| head.clone());
                traceback.push(head);
                if let Some(text) = lines.get(s.start_line.saturating_sub(1)) {
                    traceback.push(format!("{:>4} | {text}", s.start_line));
                    let width = if s.end_line == s.start_line {
                        s.end_column.saturating_sub(s.start_column).max(1)
                    } else {
                        text.chars()
                            .count()
                            .saturating_sub(s.start_column - 1)
                            .max(1)
                    };
                    traceback.push(format!(
                        "     | {}{} {}",
                        " ".repeat(s.start_column.saturating_sub(1)),
                        "^".repeat(width),
                        m.label
                    ));
                }
            }
            None => {
                let head = format!("error{code}: {}", e.message());
                evalue.get_or_insert_with(|| head.clone());
                traceback.push(head);
                traceback.extend(e.rendered().lines().map(|l| format!("     | {l}")));
            }
        }
        traceback.extend(e.help().into_iter().map(|h| format!("     = help: {h}")));
    }
    if errors.iter().any(|e| e.is_from_generated_code()) {
        traceback.push(TYPE_HINT.trim_start().to_string());
    }
    Failure {
        ename: "CompileError".into(),
        evalue: evalue.unwrap_or_else(|| "the Rust cell does not compile".into()),
        traceback,
    }
}

#[cfg(feature = "rust-cells")]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_cell_keeps_its_line_numbers() {
        assert_eq!(as_evcxr_source("%%rust\nlet x = 1;\nx"), "\nlet x = 1;\nx");
        assert_eq!(as_evcxr_source("\n%%rust\n1"), "\n\n1");
        assert_eq!(as_evcxr_source("%%rust"), "\n");
    }

    #[test]
    fn the_cell_flags_name_the_library_and_its_dependencies() {
        let flags = cell_flags(
            Path::new("/t d/release/deps/libsandwich_cells-1.rlib"),
            "system",
        );
        let parts: Vec<&str> = flags.split('\x1f').collect();
        assert_eq!(
            parts,
            [
                "-Cprefer-dynamic",
                "-L",
                "dependency=/t d/release/deps",
                "--extern",
                "sandwich=/t d/release/deps/libsandwich_cells-1.rlib"
            ]
        );
    }
}

#[cfg(test)]
mod recognition {
    use super::rust_code;

    #[test]
    fn a_rust_cell_is_recognised_by_its_first_line() {
        assert!(rust_code("%%rust\nlet x = 1;").is_some());
        assert!(rust_code("  \n%%rust\n1").is_some());
        assert!(rust_code("%%rust").is_some());
        assert!(rust_code("%%rusty\n1").is_none());
        assert!(rust_code("print(1)\n%%rust").is_none());
    }
}
