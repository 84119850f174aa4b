//! Jupyter messages on the wire (messaging protocol 5.3): identities, the `<IDS|MSG>` delimiter,
//! an HMAC signature over header, parent header, metadata and content, then binary buffers.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use zeromq::ZmqMessage;

pub const PROTOCOL_VERSION: &str = "5.3";
const DELIMITER: &[u8] = b"<IDS|MSG>";

/// Signs and verifies messages with the connection's key (no key: no signatures, as the
/// protocol allows).
#[derive(Clone)]
pub struct Signer {
    mac: Option<Hmac<Sha256>>,
}

impl Signer {
    pub fn new(scheme: &str, key: &str) -> anyhow::Result<Self> {
        if key.is_empty() {
            return Ok(Self { mac: None });
        }
        anyhow::ensure!(
            scheme == "hmac-sha256",
            "kernel: signature_scheme '{scheme}' is not supported (expected 'hmac-sha256')"
        );
        let mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
            .map_err(|e| anyhow::anyhow!("kernel: bad key: {e}"))?;
        Ok(Self { mac: Some(mac) })
    }

    fn mac_of(&self, parts: &[&[u8]]) -> Option<Hmac<Sha256>> {
        let mut mac = self.mac.clone()?;
        for p in parts {
            mac.update(p);
        }
        Some(mac)
    }

    fn sign(&self, parts: &[&[u8]]) -> String {
        match self.mac_of(parts) {
            Some(mac) => hex(&mac.finalize().into_bytes()),
            None => String::new(),
        }
    }

    /// Constant-time check of a hex signature.
    fn verify(&self, signature: &[u8], parts: &[&[u8]]) -> bool {
        let Some(mac) = self.mac_of(parts) else {
            return true;
        };
        match unhex(signature) {
            Some(sig) => mac.verify_slice(&sig).is_ok(),
            None => false,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
        .collect()
}

/// One message; `identities` route it (ROUTER peers, or the topic on iopub).
#[derive(Clone, Debug)]
pub struct Message {
    pub identities: Vec<Bytes>,
    pub header: Value,
    pub parent_header: Value,
    pub metadata: Value,
    pub content: Value,
    pub buffers: Vec<Bytes>,
}

impl Message {
    pub fn msg_type(&self) -> &str {
        self.header["msg_type"].as_str().unwrap_or("")
    }

    /// Parses and verifies frames as a ROUTER receives them. A bad signature is an error: the
    /// caller drops the message and logs it, never acts on it.
    pub fn parse(frames: Vec<Bytes>, signer: &Signer) -> Result<Self, String> {
        let at = frames
            .iter()
            .position(|f| f.as_ref() == DELIMITER)
            .ok_or("no <IDS|MSG> delimiter")?;
        let rest = &frames[at + 1..];
        if rest.len() < 5 {
            return Err(format!(
                "{} frames after the delimiter, expected ≥ 5",
                rest.len()
            ));
        }
        let parts: Vec<&[u8]> = rest[1..5].iter().map(|b| b.as_ref()).collect();
        if !signer.verify(&rest[0], &parts) {
            return Err("bad signature".into());
        }
        let json = |b: &Bytes, what: &str| -> Result<Value, String> {
            serde_json::from_slice(b).map_err(|e| format!("{what} is not JSON: {e}"))
        };
        Ok(Self {
            identities: frames[..at].to_vec(),
            header: json(&rest[1], "header")?,
            parent_header: json(&rest[2], "parent_header")?,
            metadata: json(&rest[3], "metadata")?,
            content: json(&rest[4], "content")?,
            buffers: rest[5..].to_vec(),
        })
    }

    pub fn to_zmq(&self, signer: &Signer) -> ZmqMessage {
        let enc = |v: &Value| Bytes::from(serde_json::to_vec(v).expect("JSON values serialize"));
        let (h, p, m, c) = (
            enc(&self.header),
            enc(&self.parent_header),
            enc(&self.metadata),
            enc(&self.content),
        );
        let signature = signer.sign(&[&h, &p, &m, &c]);
        let mut frames: Vec<Bytes> = self.identities.clone();
        frames.push(Bytes::from_static(DELIMITER));
        frames.push(Bytes::from(signature));
        frames.extend([h, p, m, c]);
        frames.extend(self.buffers.iter().cloned());
        ZmqMessage::try_from(frames).expect("a message has frames")
    }

    /// A new message of `msg_type` in reply to (or caused by) `parent`, routed like it.
    pub fn child(
        parent: &Value,
        identities: Vec<Bytes>,
        session: &str,
        msg_type: &str,
        content: Value,
    ) -> Self {
        Self {
            identities,
            header: header(session, msg_type),
            parent_header: parent.clone(),
            metadata: json!({}),
            content,
            buffers: Vec::new(),
        }
    }

    /// An iopub `status` (`busy`, `idle`) on behalf of the request `parent`.
    pub fn status(parent: &Value, session: &str, state: &str) -> Self {
        Self::child(
            parent,
            vec![Bytes::from_static(b"status")],
            session,
            "status",
            json!({ "execution_state": state }),
        )
    }

    /// The reply to this request, to the same peer.
    pub fn reply(&self, session: &str, msg_type: &str, content: Value) -> Self {
        Self::child(
            &self.header,
            self.identities.clone(),
            session,
            msg_type,
            content,
        )
    }
}

pub fn header(session: &str, msg_type: &str) -> Value {
    json!({
        "msg_id": uuid::Uuid::new_v4().to_string(),
        "session": session,
        "username": "sandwich",
        "date": now_iso8601(),
        "msg_type": msg_type,
        "version": PROTOCOL_VERSION,
    })
}

/// UTC now as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn now_iso8601() -> String {
    sandwich_core::utc_now_iso8601(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_messages_round_trip_and_tampering_is_caught() {
        let signer = Signer::new("hmac-sha256", "secret").unwrap();
        let m = Message::child(
            &json!({}),
            vec![Bytes::from_static(b"peer")],
            "s",
            "status",
            json!({"execution_state": "idle"}),
        );
        let frames = m.to_zmq(&signer).into_vec();
        let back = Message::parse(frames.clone(), &signer).unwrap();
        assert_eq!(back.content, m.content);
        assert_eq!(back.identities, vec![Bytes::from_static(b"peer")]);
        let mut tampered = frames;
        let n = tampered.len();
        tampered[n - 1] = Bytes::from_static(br#"{"execution_state": "busy"}"#);
        assert!(Message::parse(tampered, &signer)
            .unwrap_err()
            .contains("signature"));
    }

    #[test]
    fn dates_are_iso8601() {
        let d = now_iso8601();
        assert_eq!(d.len(), 27, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'));
    }
}
