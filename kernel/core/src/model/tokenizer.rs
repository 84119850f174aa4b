//! A Hugging Face `tokenizer.json` (through the `tokenizers` crate) with the special ids the
//! trainers and the sampler need.

use std::path::Path;

use serde_json::Value;

use crate::{Error, Result};

#[derive(Clone)]
pub struct Tokenizer {
    /// As loaded: what `save` writes back.
    inner: tokenizers::Tokenizer,
    /// The same without the file's own padding and truncation settings (MiniLM's pads every
    /// text to 128 tokens): batching and truncation are the caller's.
    encoder: tokenizers::Tokenizer,
    /// Appended to SFT completions; stops generation.
    pub eos: Option<u32>,
    /// Fills batches; never attended to.
    pub pad: u32,
    /// `tokenizer_config.json`, kept to be written back on save.
    config: Option<Value>,
}

fn token_name(v: &Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("content").and_then(Value::as_str))
}

fn first_id(v: Option<&Value>) -> Option<u32> {
    let v = v?;
    v.as_u64()
        .or_else(|| v.as_array().and_then(|a| a.first()).and_then(Value::as_u64))
        .map(|x| x as u32)
}

impl Tokenizer {
    /// Loads `tokenizer.json` from `dir` (with `tokenizer_config.json` when present); the special
    /// ids come from the model's `config.json` first, then from the tokenizer's config.
    pub fn load(dir: &Path, model_config: &Value) -> Result<Self> {
        let file = dir.join("tokenizer.json");
        if !file.is_file() {
            return Err(Error::invalid(
                "model.load",
                "path",
                "a directory with tokenizer.json",
                format!("no {}", file.display()),
            ));
        }
        let inner = tokenizers::Tokenizer::from_file(&file)
            .map_err(|e| Error::invalid("model.load", "tokenizer.json", "a tokenizers file", e))?;
        let config =
            match std::fs::read_to_string(dir.join("tokenizer_config.json")) {
                Ok(text) => Some(serde_json::from_str(&text).map_err(|e| {
                    Error::invalid("model.load", "tokenizer_config.json", "JSON", e)
                })?),
                Err(_) => None,
            };
        Ok(Self::from_parts(inner, model_config, config))
    }

    pub fn from_parts(inner: tokenizers::Tokenizer, model: &Value, config: Option<Value>) -> Self {
        let by_name = |key: &str| {
            config
                .as_ref()
                .and_then(|c| c.get(key))
                .and_then(token_name)
                .and_then(|t| inner.token_to_id(t))
        };
        let eos = first_id(model.get("eos_token_id")).or_else(|| by_name("eos_token"));
        let pad = first_id(model.get("pad_token_id"))
            .or_else(|| by_name("pad_token"))
            .or(eos)
            .unwrap_or(0);
        let mut encoder = inner.clone();
        encoder.with_padding(None);
        let _ = encoder.with_truncation(None);
        Self {
            inner,
            encoder,
            eos,
            pad,
            config,
        }
    }

    /// Token ids of `text`; `special` adds the tokenizer's template (BOS, [CLS] … [SEP]).
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        let enc = self
            .encoder
            .encode(text, special)
            .map_err(|e| Error::invalid("tokenizer", "text", "encodable text", e))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.encoder
            .decode(ids, skip_special)
            .map_err(|e| Error::invalid("tokenizer", "ids", "ids of this vocabulary", e))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The Jinja chat template of `tokenizer_config.json` (or the GGUF metadata), if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.config
            .as_ref()
            .and_then(|c| c.get("chat_template"))
            .and_then(Value::as_str)
    }

    /// Renders `messages` (role, content) with the chat template as HF's
    /// `apply_chat_template(..., tokenize=False)` does: Jinja with `trim_blocks` and
    /// `lstrip_blocks`, Python's string methods, `raise_exception`, and the special tokens by
    /// name; with `add_generation_prompt`, the text ends where the assistant's answer begins.
    pub fn apply_chat(
        &self,
        messages: &[(String, String)],
        add_generation_prompt: bool,
    ) -> Result<String> {
        const OP: &str = "chat";
        let template = self.chat_template().ok_or_else(|| {
            Error::invalid(
                OP,
                "model",
                "a tokenizer with a chat template (chat_template in tokenizer_config.json)",
                "none",
            )
        })?;
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        let special = |key: &str| {
            self.config
                .as_ref()
                .and_then(|c| c.get(key))
                .and_then(token_name)
                .unwrap_or("")
                .to_string()
        };
        let messages: Vec<Value> = messages
            .iter()
            .map(|(role, content)| serde_json::json!({"role": role, "content": content}))
            .collect();
        let ctx = serde_json::json!({
            "messages": messages,
            "add_generation_prompt": add_generation_prompt,
            "bos_token": special("bos_token"),
            "eos_token": special("eos_token"),
        });
        env.render_str(template, ctx)
            .map_err(|e| Error::invalid(OP, "chat_template", "a template that renders", e))
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = self.inner.to_string(false).map_err(|e| {
            Error::invalid("model.save", "tokenizer", "a serialisable tokenizer", e)
        })?;
        super::io::write_atomic(&dir.join("tokenizer.json"), json.as_bytes())?;
        if let Some(c) = &self.config {
            let text = serde_json::to_string_pretty(c).expect("a JSON value serialises");
            super::io::write_atomic(&dir.join("tokenizer_config.json"), text.as_bytes())?;
        }
        Ok(())
    }
}
