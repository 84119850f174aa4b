//! Sandwiching and weak-to-strong experiments: built-in tasks, the task schema, and content
//! hashes for manifests. The experiment DSL and its runner are in Lua (`lua/sandwich/`), over
//! the same core functions the rest of `sw` exposes.

mod schema;
mod tasks;
mod vocab;

pub use schema::{check_task, frame_hash};
pub use tasks::{builtin_task, BUILTIN};
pub use vocab::word_tokenizer;
