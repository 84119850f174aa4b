//! Progress of long jobs in a notebook: one display per job, updated in place with
//! `update_display_data` (same `display_id`) at most ten times a second, and once at the end.

use std::sync::Mutex;

use sandwich_core::Progress;
use sandwich_lua::{DisplayEvent, MimeBundle};

use crate::bar::State;

pub struct NotebookBar<F: Fn(DisplayEvent) + Send + Sync> {
    show: F,
    state: Mutex<Option<(String, State)>>,
}

impl<F: Fn(DisplayEvent) + Send + Sync> NotebookBar<F> {
    pub fn new(show: F) -> Self {
        Self {
            show,
            state: Mutex::new(None),
        }
    }

    fn draw(&self, id: &str, s: &State, update: bool) {
        let text = s.text();
        let mut bundle = MimeBundle::plain(text.clone());
        let escaped = text.replace('&', "&amp;").replace('<', "&lt;");
        bundle.insert(
            "text/html",
            format!(
                "<div><progress value=\"{:.4}\" max=\"1\" style=\"width: 20em\"></progress> <code>{escaped}</code></div>",
                s.fraction()
            ),
        );
        (self.show)(DisplayEvent::Show {
            bundle,
            id: Some(id.to_string()),
            update,
        });
    }
}

impl<F: Fn(DisplayEvent) + Send + Sync> Progress for NotebookBar<F> {
    fn start(&self, job: &str, total: usize) {
        let id = format!("sandwich-progress-{}", uuid::Uuid::new_v4());
        let mut state = State::new(job, total);
        state.due();
        self.draw(&id, &state, false);
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some((id, state));
    }

    fn update(&self, done: usize, info: &str) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some((id, s)) = guard.as_mut() else {
            return;
        };
        s.done = done;
        s.info = info.to_string();
        if s.due() {
            self.draw(id, s, true);
        }
    }

    fn finish(&self) {
        let taken = self.state.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((id, s)) = taken {
            self.draw(&id, &s, true);
        }
    }
}
