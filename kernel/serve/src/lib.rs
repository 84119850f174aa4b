//! The rater web app: a feedback campaign's rater pages and their JSON API, and an admin API,
//! on axum over tokio. Every judgment goes through [`Campaign::submit`], which answers only after
//! its SQLite transaction has committed; the HTTP reply follows, so a judgment the browser saw
//! acknowledged is on disk.
//!
//! A library rather than part of the `sandwich` binary so that a Lua session (`c:serve{}` in a
//! notebook or a script) and the Python package start the same server in-process, on its own
//! threads, and return at once.
//!
//! ```no_run
//! use std::sync::Arc;
//! use sandwich_core::feedback::Campaign;
//! use sandwich_serve::{serve, ServeOptions};
//! # fn main() -> Result<(), sandwich_serve::Error> {
//! let c = Arc::new(Campaign::open("c.db")?);
//! let server = serve(c, &ServeOptions::default())?;
//! println!("rater pages under {}/r/<token>", server.url());
//! server.stop();
//! # Ok(()) }
//! ```

mod page;
mod routes;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sandwich_core::feedback::Campaign;
use serde::Deserialize;

/// Errors of the server crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("serve: cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("serve: invalid argument '{arg}': expected {expected}, got {got}")]
    InvalidArgument {
        arg: &'static str,
        expected: String,
        got: String,
    },
    #[error(transparent)]
    Core(#[from] sandwich_core::Error),
}

/// Where to listen.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeOptions {
    /// The address to bind: loopback unless asked otherwise (put a TLS proxy in front of
    /// anything else; README, "Collecting real feedback").
    pub host: String,
    /// 0: any free port.
    pub port: u16,
    /// The URL raters reach the server at, when it is not `http://host:port` (behind a proxy).
    pub public_url: Option<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            public_url: None,
        }
    }
}

/// A running server; dropping it (or [`Server::stop`]) shuts it down.
pub struct Server {
    url: String,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// The base URL of the rater pages (`{url}/r/{token}`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets requests in flight finish, and returns.
    pub fn stop(mut self) {
        self.shut();
    }

    /// Blocks until the server stops (the command line's `sandwich serve`).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn shut(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Starts serving `campaign` on its own threads and returns once it listens.
pub fn serve(campaign: Arc<Campaign>, opts: &ServeOptions) -> Result<Server, Error> {
    let ip: IpAddr = opts.host.parse().map_err(|_| Error::InvalidArgument {
        arg: "host",
        expected: "an IP address such as 127.0.0.1 or 0.0.0.0".into(),
        got: format!("'{}'", opts.host),
    })?;
    let addr = SocketAddr::new(ip, opts.port);
    let listener = std::net::TcpListener::bind(addr).map_err(|source| Error::Bind {
        addr: addr.to_string(),
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| Error::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let url = opts
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("http://{addr}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = routes::router(campaign, opts.public_url.as_deref());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), std::io::Error>>();
    let thread = std::thread::Builder::new()
        .name("sandwich-serve".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("sandwich-serve-worker")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        })
        .map_err(|source| Error::Bind {
            addr: addr.to_string(),
            source,
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(source)) => {
            return Err(Error::Bind {
                addr: addr.to_string(),
                source,
            })
        }
        Err(_) => {
            return Err(Error::Bind {
                addr: addr.to_string(),
                source: std::io::Error::other("the server thread stopped before listening"),
            })
        }
    }
    Ok(Server {
        url,
        addr,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}
