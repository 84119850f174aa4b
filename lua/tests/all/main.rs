//! Integration tests of the Lua session, built as one binary (as ripgrep does).

mod bad_input;
mod docs;
mod errors;
mod experiment;
mod frames;
mod introspect;
mod models;
mod oversight;
mod science;
mod session;
mod util;
