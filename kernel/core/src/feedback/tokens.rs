//! Rater and admin tokens. Each is an HMAC-SHA256 of its purpose (`rater:<id>`, `admin`) under
//! the campaign's secret key: 32 bytes from the operating system's CSPRNG, kept in a file of
//! its own beside the campaign (`c.db.key`, readable by its owner only). The campaign file
//! stores only SHA-256 hashes of the tokens, so a copy of it (shared for analysis) lets nobody
//! in; the key file is the credential, and `c:links()` can give the same links again after a
//! restart.

use std::path::Path;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

pub(crate) struct Secret([u8; 32]);

impl Secret {
    /// Draws a new key and writes it to `path` (which must not exist).
    pub fn create(path: &Path) -> Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| {
            Error::invalid(
                "feedback.campaign",
                "path",
                "a working system random source",
                e,
            )
        })?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(path)
            .map_err(Error::io("feedback.campaign", path))?;
        std::io::Write::write_all(&mut f, hex.as_bytes())
            .map_err(Error::io("feedback.campaign", path))?;
        f.sync_all().map_err(Error::io("feedback.campaign", path))?;
        Ok(Self(key))
    }

    /// Reads the key written by [`Secret::create`].
    pub fn open(path: &Path) -> Result<Self> {
        const OP: &str = "feedback.open";
        let text = std::fs::read_to_string(path).map_err(Error::io(OP, path))?;
        let text = text.trim();
        let mut key = [0u8; 32];
        let ok = text.len() == 64
            && key.iter_mut().enumerate().all(|(i, b)| {
                u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                    .map(|v| *b = v)
                    .is_ok()
            });
        if !ok {
            return Err(Error::invalid(
                OP,
                "path",
                "a key file of 64 hex digits beside the campaign",
                path.display(),
            ));
        }
        Ok(Self(key))
    }

    /// A rater's token.
    pub fn rater(&self, id: &str) -> String {
        self.token(&format!("rater:{id}"))
    }

    /// The token for `purpose`: 43 URL-safe characters (256 bits).
    pub fn token(&self, purpose: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(purpose.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// What the campaign file stores of a token.
pub(crate) fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two tokens in time independent of where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
