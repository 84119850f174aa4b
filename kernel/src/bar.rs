//! The progress bar `sandwich run` draws on stderr for long jobs (training, generation).
//!
//! Drawn only when stderr is a terminal (a log file gets no carriage-return noise), redrawn at
//! most ten times a second, and always once at the end.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sandwich_core::Progress;

/// One job's progress, shared by the terminal bar and the notebook's (`jupyter/progress.rs`).
pub struct State {
    pub job: String,
    pub total: usize,
    pub started: Instant,
    pub last_draw: Option<Instant>,
    pub done: usize,
    pub info: String,
}

impl State {
    pub fn new(job: &str, total: usize) -> Self {
        Self {
            job: job.to_string(),
            total,
            started: Instant::now(),
            last_draw: None,
            done: 0,
            info: String::new(),
        }
    }

    /// Whether a redraw is due: at most ten a second.
    pub fn due(&mut self) -> bool {
        let due = self
            .last_draw
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if due {
            self.last_draw = Some(Instant::now());
        }
        due
    }

    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            (self.done as f64 / self.total as f64).min(1.0)
        }
    }

    /// `job [####......] done/total rate/s info`.
    pub fn text(&self) -> String {
        let filled = ((self.fraction() * WIDTH as f64).round() as usize).min(WIDTH);
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        };
        format!(
            "{} [{}{}] {}/{} {:.1}/s {}",
            self.job,
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            self.done,
            self.total,
            rate,
            self.info
        )
    }
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
    format!("\r{}\x1b[K", s.text())
}

impl Progress for StderrBar {
    fn start(&self, job: &str, total: usize) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(State::new(job, total));
    }

    fn update(&self, done: usize, info: &str) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(s) = guard.as_mut() else { return };
        s.done = done;
        s.info = info.to_string();
        if self.tty && s.due() {
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
