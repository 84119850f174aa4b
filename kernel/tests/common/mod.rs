//! What the integration tests that talk to `sandwich serve` share: a minimal HTTP/1.1 client
//! over a raw socket (no client crate: the tests see exactly the bytes a browser would get) and
//! the server started as a separate process.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::Value;

pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading all of an oversize body.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Bodies here are small and sent whole; drop chunked framing if any.
    let body = if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.split("\r\n")
            .skip(1)
            .step_by(2)
            .collect::<Vec<_>>()
            .join("")
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers: headers.to_string(),
        body,
    }
}

pub fn auth(token: &str) -> String {
    format!("Bearer {token}")
}

/// Starts `BIN serve PATH --port 0` (`BIN` the `sandwich` binary); returns the child, its
/// address and the first `raters` raters' tokens.
pub fn start_server(
    bin: &str,
    path: &std::path::Path,
    raters: usize,
) -> (std::process::Child, SocketAddr, Vec<(String, String)>) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin)
        .args(["serve", path.to_str().unwrap(), "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .split(" at ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let mut tokens = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let (rater, link) = line.split_once('\t').unwrap();
        tokens.push((
            rater.to_string(),
            link.rsplit('/').next().unwrap().to_string(),
        ));
        if tokens.len() == raters {
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr, tokens)
}
