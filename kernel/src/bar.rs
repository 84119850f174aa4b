//! The progress bar `sandwich run` draws on stderr for long jobs (training, generation).
//!
//! Drawn only when stderr is a terminal (a log file gets no carriage-return noise), redrawn at
//! most ten times a second, and always once at the end.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sandwich_core::Progress;

struct State {
    job: String,
    total: usize,
    started: Instant,
    last_draw: Option<Instant>,
    done: usize,
    info: String,
}

pub struct StderrBar {
    state: Mutex<Option<State>>,
    tty: bool,
}

impl StderrBar {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(None),
            tty: std::io::stderr().is_terminal(),
        }
    }
}

const WIDTH: usize = 30;

fn line(s: &State) -> String {
    let frac = if s.total == 0 {
        1.0
    } else {
        s.done as f64 / s.total as f64
    };
    let filled = ((frac * WIDTH as f64).round() as usize).min(WIDTH);
    let secs = s.started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 {
        s.done as f64 / secs
    } else {
        0.0
    };
    format!(
        "\r{} [{}{}] {}/{} {:.1}/s {}\x1b[K",
        s.job,
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        s.done,
        s.total,
        rate,
        s.info
    )
}

impl Progress for StderrBar {
    fn start(&self, job: &str, total: usize) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(State {
            job: job.to_string(),
            total,
            started: Instant::now(),
            last_draw: None,
            done: 0,
            info: String::new(),
        });
    }

    fn update(&self, done: usize, info: &str) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(s) = guard.as_mut() else { return };
        s.done = done;
        s.info = info.to_string();
        let due = s
            .last_draw
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if self.tty && due {
            s.last_draw = Some(Instant::now());
            let _ = std::io::stderr().lock().write_all(line(s).as_bytes());
        }
    }

    fn finish(&self) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(s), true) = (guard.take(), self.tty) {
            let _ = writeln!(std::io::stderr().lock(), "{}", line(&s));
        }
    }
}
