//! Input history, kept across kernel restarts in a JSON-lines file (one `{session, line, input}`
//! per executed cell): `$SANDWICH_HISTORY`, else `$XDG_DATA_HOME/sandwich/history.jsonl`, else
//! `~/.local/share/sandwich/history.jsonl`. Each kernel start is a new session number.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    session: u64,
    line: u64,
    input: String,
    /// The `text/plain` of the cell's result, if it had one.
    #[serde(default)]
    output: Option<String>,
}

pub struct History {
    path: Option<PathBuf>,
    entries: Vec<Entry>,
    pub session: u64,
}

fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SANDWICH_HISTORY") {
        return Some(PathBuf::from(p));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("sandwich").join("history.jsonl"))
}

/// `*` and `?` glob matching, as IPython's history search does.
fn glob(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some(('?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

impl History {
    /// Loads the file (a missing or unreadable one is an empty history; a line that does not
    /// parse is skipped, so one bad write never loses the rest).
    pub fn open() -> Self {
        let path = default_path();
        let entries: Vec<Entry> = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| {
                text.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default();
        let session = entries.iter().map(|e| e.session).max().unwrap_or(0) + 1;
        Self {
            path,
            entries,
            session,
        }
    }

    pub fn record(&mut self, line: u64, input: &str, output: Option<String>) {
        let e = Entry {
            session: self.session,
            line,
            input: input.to_string(),
            output,
        };
        if let Some(path) = &self.path {
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|_| {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?;
                    writeln!(f, "{}", serde_json::to_string(&e).unwrap_or_default())
                });
            if let Err(err) = written {
                eprintln!("kernel: history not saved to {}: {err}", path.display());
            }
        }
        self.entries.push(e);
    }

    /// Answers a `history_request`: rows `[session, line, input]`, or `[session, line, [input,
    /// output]]` when outputs are asked for.
    pub fn request(&self, content: &Value) -> Value {
        let with_output = content["output"].as_bool().unwrap_or(false);
        let row = |e: &Entry| {
            if with_output {
                json!([e.session, e.line, [e.input, e.output]])
            } else {
                json!([e.session, e.line, e.input])
            }
        };
        let n = content["n"].as_u64().map(|n| n as usize);
        let rows: Vec<Value> = match content["hist_access_type"].as_str().unwrap_or("tail") {
            "range" => {
                // session 0 is this one, a negative session counts back from it.
                let s = content["session"].as_i64().unwrap_or(0);
                let session = if s <= 0 { self.session as i64 + s } else { s } as u64;
                let start = content["start"].as_u64().unwrap_or(0);
                let stop = content["stop"].as_u64();
                self.entries
                    .iter()
                    .filter(|e| {
                        e.session == session && e.line >= start && stop.is_none_or(|s| e.line < s)
                    })
                    .map(row)
                    .collect()
            }
            "search" => {
                let pattern: Vec<char> =
                    content["pattern"].as_str().unwrap_or("*").chars().collect();
                let unique = content["unique"].as_bool().unwrap_or(false);
                let mut seen = std::collections::HashSet::new();
                let mut hits: Vec<&Entry> = self
                    .entries
                    .iter()
                    .rev()
                    .filter(|e| glob(&pattern, &e.input.chars().collect::<Vec<_>>()))
                    .filter(|e| !unique || seen.insert(e.input.clone()))
                    .collect();
                if let Some(n) = n {
                    hits.truncate(n);
                }
                hits.reverse();
                hits.into_iter().map(row).collect()
            }
            _ => {
                let n = n.unwrap_or(10);
                let skip = self.entries.len().saturating_sub(n);
                self.entries[skip..].iter().map(row).collect()
            }
        };
        json!({"status": "ok", "history": rows})
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_like_ipython() {
        let g = |p: &str, t: &str| {
            glob(
                &p.chars().collect::<Vec<_>>(),
                &t.chars().collect::<Vec<_>>(),
            )
        };
        assert!(g("*print*", "x = 1; print(x)"));
        assert!(g("pr?nt", "print"));
        assert!(!g("print", "print(1)"));
    }
}
