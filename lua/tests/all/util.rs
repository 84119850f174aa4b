use std::sync::{Arc, Mutex};

use sandwich_lua::{Session, Stream};

/// A session whose printed output is captured.
pub struct Captured {
    pub session: Session,
    out: Arc<Mutex<String>>,
}

impl Captured {
    pub fn new() -> Self {
        let session = Session::new().expect("session");
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        session.set_output(move |stream, text| {
            let mut s = sink.lock().unwrap();
            if stream == Stream::Stderr {
                s.push_str("[stderr] ");
            }
            s.push_str(text);
        });
        // Input is typed by the harness (never the terminal): the prompt is echoed, then "yes".
        let echo = out.clone();
        session.set_input(move |prompt, _| {
            echo.lock().unwrap().push_str(prompt);
            Ok("yes".into())
        });
        Captured { session, out }
    }

    /// Everything printed so far, and clears it.
    pub fn take(&self) -> String {
        std::mem::take(&mut *self.out.lock().unwrap())
    }

    /// Evaluates and returns the text of the result ("" for none); panics on error.
    pub fn eval(&self, code: &str) -> String {
        match self.session.eval(code, "test") {
            Ok(Some(b)) => b.text().to_string(),
            Ok(None) => String::new(),
            Err(e) => panic!("eval failed: {e}\ncode: {code}\n{e:?}"),
        }
    }

    /// The full error text (message, causes and traceback) of code that must fail.
    pub fn error(&self, code: &str) -> String {
        match self.session.eval(code, "test") {
            Ok(v) => panic!("expected an error from {code:?}, got {v:?}"),
            Err(sandwich_lua::Error::Script {
                message,
                causes,
                traceback,
                ..
            }) => format!("{message}\n{}\n{traceback}", causes.join("\n")),
            Err(e) => e.to_string(),
        }
    }
}

/// Lua source for a string literal.
pub fn lua_str(s: &str) -> String {
    format!("{s:?}")
}
