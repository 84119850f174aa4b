//! The Jupyter kernel: a thin adapter from the messaging protocol to the Lua [`Session`], like
//! evcxr_jupyter over evcxr. The sockets live on a small tokio runtime in a background thread
//! (`sockets.rs`); the session runs on the main thread and handles one shell request at a time
//! (`handler.rs`). Interrupts and shutdown arrive on the control socket, which never waits for
//! the session.

mod handler;
mod history;
pub mod install;
mod progress;
mod rust_cells;
mod sockets;
mod wire;

use std::path::Path;

use serde::Deserialize;

/// The connection file Jupyter writes for a kernel it starts.
#[derive(Debug, Deserialize)]
pub struct Connection {
    pub ip: String,
    pub transport: String,
    pub shell_port: u16,
    pub iopub_port: u16,
    pub stdin_port: u16,
    pub control_port: u16,
    pub hb_port: u16,
    #[serde(default)]
    pub key: String,
    #[serde(default = "default_scheme")]
    pub signature_scheme: String,
}

fn default_scheme() -> String {
    "hmac-sha256".into()
}

impl Connection {
    pub fn endpoint(&self, port: u16) -> String {
        format!("{}://{}:{}", self.transport, self.ip, port)
    }
}

/// Runs the kernel until a shutdown request (or until its client goes away for good).
pub fn run(connection_file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(connection_file).map_err(|e| {
        anyhow::anyhow!(
            "kernel: cannot read the connection file {}: {e}",
            connection_file.display()
        )
    })?;
    let conn: Connection = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "kernel: {} is not a Jupyter connection file: {e}",
            connection_file.display()
        )
    })?;
    anyhow::ensure!(
        conn.transport == "tcp",
        "kernel: transport '{}' is not supported (expected 'tcp')",
        conn.transport
    );
    let signer = wire::Signer::new(&conn.signature_scheme, &conn.key)?;
    handler::serve(conn, signer)
}
