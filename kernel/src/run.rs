//! `sandwich run`: one session, Ctrl-C wired to its interrupt flag, errors with tracebacks.

use std::path::PathBuf;
use std::process::ExitCode;

use sandwich_lua::{Error, Session};

/// Exit status of a script stopped by Ctrl-C, as shells report SIGINT.
const INTERRUPTED: u8 = 130;
/// Exit status of an internal error (a Rust panic: a bug in Sandwich, not in the script), as
/// sysexits.h's EX_SOFTWARE, so that a wrapper can tell it from an ordinary error (1).
const INTERNAL: u8 = 70;

pub fn run(code: Option<String>, file: Option<PathBuf>, args: Vec<String>) -> ExitCode {
    let session = match Session::new() {
        Ok(s) => s,
        Err(e) => return report(&e),
    };
    session.set_progress(crate::bar::StderrBar::new());
    let interrupt = session.interrupt_handle();
    // First Ctrl-C asks the script to stop (the Lua hook and long Rust loops see the flag);
    // a second one, for code that never checks, ends the process.
    let handler = ctrlc::set_handler(move || {
        if interrupt.is_requested() {
            std::process::exit(INTERRUPTED.into());
        }
        interrupt.request();
    });
    if let Err(e) = handler {
        eprintln!("warning: Ctrl-C will not interrupt scripts: {e}");
    }
    let result = match (code, file) {
        (Some(code), _) => session.eval(&code, "(command line)").map(|out| {
            if let Some(bundle) = out {
                println!("{}", bundle.text());
            }
        }),
        (None, Some(file)) => session.run_file(&file, &args),
        (None, None) => unreachable!("clap requires a file or -e"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

fn report(e: &Error) -> ExitCode {
    match e {
        Error::Interrupted => {
            eprintln!("interrupted");
            ExitCode::from(INTERRUPTED)
        }
        Error::Panic(message) => {
            eprintln!("error: internal error (a bug in Sandwich; please report it): {message}");
            ExitCode::from(INTERNAL)
        }
        Error::Script {
            message,
            traceback,
            causes,
            kind,
        } => {
            // A panic caught inside a `sw` function and not caught by the script: its message
            // says it is an internal error; the status tells a wrapper.
            let internal = *kind == sandwich_lua::ErrorKind::Internal;
            eprintln!("error: {message}");
            for cause in causes {
                eprintln!("caused by: {cause}");
            }
            if !traceback.is_empty() {
                eprintln!("{traceback}");
            }
            if internal {
                ExitCode::from(INTERNAL)
            } else {
                ExitCode::FAILURE
            }
        }
        other => {
            eprintln!("error: {other}");
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                eprintln!("caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}
