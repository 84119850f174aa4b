//! The five ZeroMQ sockets on a tokio runtime in a background thread. Shell requests go to the
//! main thread in arrival order; replies and iopub messages come back through channels, each
//! socket's in the order they were sent. Control is answered here, so that an interrupt or a
//! shutdown reaches a kernel whose main thread is busy running a cell.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use bytes::Bytes;
use sandwich_core::Interrupt;
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use zeromq::{PubSocket, RepSocket, RouterSocket, Socket, SocketRecv, SocketSend};

use super::wire::{Message, Signer};
use super::Connection;

/// What the sockets hand the main thread.
pub enum Inbound {
    Shell(Message),
    /// The kernel is shutting down (a restart is the front end starting a new process).
    Shutdown,
}

/// The main thread's ends of the channels.
pub struct Links {
    pub inbound: std_mpsc::Receiver<Inbound>,
    pub iopub: UnboundedSender<Message>,
    pub shell: UnboundedSender<Message>,
    pub stdin: UnboundedSender<Message>,
    /// `input_reply` messages from the stdin socket.
    pub input: std_mpsc::Receiver<Message>,
}

/// Binds every socket (returning once they listen) and serves them from a background thread.
pub fn start(
    conn: &Connection,
    signer: Signer,
    session: String,
    interrupt: Interrupt,
    kernel_info: Value,
) -> anyhow::Result<Links> {
    let (inbound_tx, inbound) = std_mpsc::channel();
    let (input_tx, input) = std_mpsc::channel();
    let (iopub, iopub_rx) = unbounded_channel();
    let (shell, shell_rx) = unbounded_channel();
    let (stdin, stdin_rx) = unbounded_channel();
    let endpoints = [
        conn.endpoint(conn.shell_port),
        conn.endpoint(conn.control_port),
        conn.endpoint(conn.iopub_port),
        conn.endpoint(conn.stdin_port),
        conn.endpoint(conn.hb_port),
    ];
    let (ready_tx, ready) = std_mpsc::channel::<anyhow::Result<()>>();
    let control_iopub = iopub.clone();
    std::thread::Builder::new()
        .name("jupyter-sockets".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            runtime.block_on(async move {
                let [shell_ep, control_ep, iopub_ep, stdin_ep, hb_ep] = endpoints;
                let bound = async {
                    let mut shell_socket = RouterSocket::new();
                    shell_socket.bind(&shell_ep).await?;
                    let mut control = RouterSocket::new();
                    control.bind(&control_ep).await?;
                    let mut iopub_socket = PubSocket::new();
                    iopub_socket.bind(&iopub_ep).await?;
                    let mut stdin_socket = RouterSocket::new();
                    stdin_socket.bind(&stdin_ep).await?;
                    let mut hb = RepSocket::new();
                    hb.bind(&hb_ep).await?;
                    Ok::<_, zeromq::ZmqError>((
                        shell_socket,
                        control,
                        iopub_socket,
                        stdin_socket,
                        hb,
                    ))
                }
                .await;
                let (shell_socket, control, iopub_socket, stdin_socket, hb) = match bound {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow::anyhow!("kernel: cannot bind: {e}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                tokio::spawn(heartbeat(hb));
                tokio::spawn(forward(iopub_socket, iopub_rx, signer.clone(), "iopub"));
                tokio::spawn(serve_stdin(
                    stdin_socket,
                    stdin_rx,
                    input_tx,
                    signer.clone(),
                ));
                tokio::spawn(serve_control(
                    control,
                    signer.clone(),
                    session,
                    interrupt,
                    kernel_info,
                    control_iopub,
                    inbound_tx.clone(),
                ));
                serve_shell(shell_socket, shell_rx, inbound_tx, signer).await;
            });
        })?;
    ready
        .recv()
        .map_err(|_| anyhow::anyhow!("kernel: the socket thread stopped before binding"))??;
    Ok(Links {
        inbound,
        iopub,
        shell,
        stdin,
        input,
    })
}

fn frames(m: zeromq::ZmqMessage) -> Vec<Bytes> {
    m.into_vec()
}

async fn heartbeat(mut hb: RepSocket) {
    while let Ok(ping) = hb.recv().await {
        if hb.send(ping).await.is_err() {
            break;
        }
    }
}

/// Sends every message of `rx` on a socket's send half, in order.
async fn forward(
    mut send: impl SocketSend,
    mut rx: UnboundedReceiver<Message>,
    signer: Signer,
    name: &'static str,
) {
    while let Some(m) = rx.recv().await {
        if let Err(e) = send.send(m.to_zmq(&signer)).await {
            eprintln!("kernel: {name} send failed: {e}");
        }
    }
}

async fn serve_shell(
    socket: RouterSocket,
    replies: UnboundedReceiver<Message>,
    inbound: std_mpsc::Sender<Inbound>,
    signer: Signer,
) {
    let (send, mut recv) = socket.split();
    tokio::spawn(forward(send, replies, signer.clone(), "shell"));
    loop {
        match recv.recv().await {
            Ok(m) => match Message::parse(frames(m), &signer) {
                Ok(msg) => {
                    if inbound.send(Inbound::Shell(msg)).is_err() {
                        break;
                    }
                }
                // Never act on a message that fails verification: drop it and say so.
                Err(why) => eprintln!("kernel: dropped a shell message: {why}"),
            },
            Err(e) => {
                eprintln!("kernel: shell receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve_stdin(
    socket: RouterSocket,
    requests: UnboundedReceiver<Message>,
    replies: std_mpsc::Sender<Message>,
    signer: Signer,
) {
    let (send, mut recv) = socket.split();
    tokio::spawn(forward(send, requests, signer.clone(), "stdin"));
    while let Ok(m) = recv.recv().await {
        match Message::parse(frames(m), &signer) {
            Ok(msg) if msg.msg_type() == "input_reply" => {
                let _ = replies.send(msg);
            }
            Ok(msg) => eprintln!("kernel: ignored '{}' on stdin", msg.msg_type()),
            Err(why) => eprintln!("kernel: dropped a stdin message: {why}"),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_control(
    mut socket: RouterSocket,
    signer: Signer,
    session: String,
    interrupt: Interrupt,
    kernel_info: Value,
    iopub: UnboundedSender<Message>,
    inbound: std_mpsc::Sender<Inbound>,
) {
    while let Ok(m) = socket.recv().await {
        let msg = match Message::parse(frames(m), &signer) {
            Ok(msg) => msg,
            Err(why) => {
                eprintln!("kernel: dropped a control message: {why}");
                continue;
            }
        };
        let status = |state: &str| Message::status(&msg.header, &session, state);
        let _ = iopub.send(status("busy"));
        let (reply, shutdown) = match msg.msg_type() {
            "interrupt_request" => {
                interrupt.request();
                (
                    Some(msg.reply(&session, "interrupt_reply", json!({"status": "ok"}))),
                    None,
                )
            }
            "shutdown_request" => {
                let restart = msg.content["restart"].as_bool().unwrap_or(false);
                (
                    Some(msg.reply(
                        &session,
                        "shutdown_reply",
                        json!({"status": "ok", "restart": restart}),
                    )),
                    Some(restart),
                )
            }
            "kernel_info_request" => (
                Some(msg.reply(&session, "kernel_info_reply", kernel_info.clone())),
                None,
            ),
            other => {
                eprintln!("kernel: unsupported control message '{other}'");
                (None, None)
            }
        };
        if let Some(r) = reply {
            if let Err(e) = socket.send(r.to_zmq(&signer)).await {
                eprintln!("kernel: control send failed: {e}");
            }
        }
        let _ = iopub.send(status("idle"));
        if shutdown.is_some() {
            // Stop a running cell, let the main thread finish, and make sure the process ends
            // even if the cell ignores the interrupt inside native code.
            interrupt.request();
            let _ = inbound.send(Inbound::Shutdown);
            tokio::time::sleep(Duration::from_millis(200)).await;
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_secs(3));
                std::process::exit(0);
            });
        }
    }
}
