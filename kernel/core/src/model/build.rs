//! Models from option tables — a fresh one from architecture options (`sw.model.new`) or a
//! checkpoint with placement options (`sw.model.load`) — and the head's outputs as a table.
//! Every front end and the experiment engine deserialize their options into these types, so
//! the defaults and the checks live here once.

use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{parse_device, parse_dtype, Head, Model, Placement, Tokenizer};
use crate::{Error, Result};

fn f32_name() -> String {
    "f32".into()
}
fn cpu() -> String {
    "cpu".into()
}
fn d64() -> usize {
    64
}
fn d2() -> usize {
    2
}
fn d4() -> usize {
    4
}
fn d512() -> usize {
    512
}
fn theta() -> f64 {
    10_000.0
}

/// Where and in which dtype to put a model, and the seed of any fresh tensor (a new head).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoadOptions {
    /// `lm`, `scalar`, `classify` or `none` (default: the checkpoint's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// Classes of a `classify` head (implies `head = "classify"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_labels: Option<usize>,
    #[serde(default = "f32_name")]
    pub dtype: String,
    #[serde(default = "cpu")]
    pub device: String,
    #[serde(default)]
    pub seed: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        serde_json::from_value(json!({})).expect("every field has a default")
    }
}

/// The options of a model built from scratch (HF's initialisation).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NewOptions {
    /// `gpt2`, `llama`, `qwen2` or `bert`.
    pub arch: String,
    /// Default: the tokenizer's vocabulary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    #[serde(default = "d64")]
    pub hidden_size: usize,
    #[serde(default = "d2")]
    pub layers: usize,
    #[serde(default = "d4")]
    pub heads: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_heads: Option<usize>,
    /// Default: 4 × hidden_size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate_size: Option<usize>,
    #[serde(default = "d512")]
    pub max_positions: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_labels: Option<usize>,
    /// A tokenizer directory (HF `tokenizer.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "f32_name")]
    pub dtype: String,
    #[serde(default = "cpu")]
    pub device: String,
    #[serde(default = "theta")]
    pub rope_theta: f64,
    #[serde(default)]
    pub tie_embeddings: bool,
}

fn placement(dtype: &str, device: &str, seed: u64) -> Result<Placement> {
    Ok(Placement {
        device: parse_device(device)?,
        dtype: parse_dtype(dtype)?,
        seed,
    })
}

/// The head named by `head`/`num_labels`, else `fallback`.
pub fn head_of(
    head: Option<&str>,
    num_labels: Option<usize>,
    fallback: Option<Head>,
) -> Result<Option<Head>> {
    match head {
        Some(h) => Ok(Some(Head::parse(h, num_labels)?)),
        None if num_labels.is_some() => Ok(Some(Head::parse("classify", num_labels)?)),
        None => Ok(fallback),
    }
}

/// The sizes' ranges; the vocabulary's, which may come from the tokenizer, is checked where it
/// is known ([`hf_config`]).
impl crate::Options for NewOptions {
    fn check(&self, op: &'static str) -> Result<()> {
        use crate::validate::{positive, positive_count, positive_count_opt};
        positive_count_opt(op, "vocab_size", self.vocab_size)?;
        positive_count(op, "hidden_size", self.hidden_size)?;
        positive_count(op, "layers", self.layers)?;
        positive_count(op, "heads", self.heads)?;
        positive_count(op, "max_positions", self.max_positions)?;
        positive_count_opt(op, "intermediate_size", self.intermediate_size)?;
        classes(op, self.num_labels)?;
        positive(op, "rope_theta", self.rope_theta)?;
        if !self.hidden_size.is_multiple_of(self.heads) {
            return Err(Error::invalid(
                op,
                "heads",
                format!("a divisor of hidden_size ({})", self.hidden_size),
                self.heads,
            ));
        }
        if let Some(kv) = self.kv_heads {
            if kv == 0 || !self.heads.is_multiple_of(kv) {
                return Err(Error::invalid(
                    op,
                    "kv_heads",
                    format!("a positive divisor of heads ({})", self.heads),
                    kv,
                ));
            }
        }
        Ok(())
    }
}

impl crate::Options for LoadOptions {
    fn check(&self, op: &'static str) -> Result<()> {
        classes(op, self.num_labels)
    }
}

/// `num_labels`, when given: a classifier needs at least two classes.
fn classes(op: &'static str, num_labels: Option<usize>) -> Result<()> {
    match num_labels {
        Some(n) if n < 2 => Err(Error::invalid(op, "num_labels", "at least 2 classes", n)),
        _ => Ok(()),
    }
}

/// An HF `config.json` for `o`, with the tokenizer's special ids when there is one.
pub fn hf_config(o: &NewOptions, vocab: usize, tok: Option<&Tokenizer>) -> Result<Value> {
    const OP: &str = "model.new";
    crate::Options::check(o, OP)?;
    crate::validate::positive_count(OP, "vocab_size", vocab)?;
    let inter = o.intermediate_size.unwrap_or(4 * o.hidden_size);
    let mut c = match o.arch.as_str() {
        "gpt2" => json!({
            "model_type": "gpt2", "vocab_size": vocab, "n_positions": o.max_positions,
            "n_embd": o.hidden_size, "n_layer": o.layers, "n_head": o.heads, "n_inner": inter,
        }),
        "llama" | "qwen2" => json!({
            "model_type": o.arch, "vocab_size": vocab, "hidden_size": o.hidden_size,
            "intermediate_size": inter, "num_hidden_layers": o.layers,
            "num_attention_heads": o.heads, "num_key_value_heads": o.kv_heads.unwrap_or(o.heads),
            "max_position_embeddings": o.max_positions, "rope_theta": o.rope_theta,
            "tie_word_embeddings": o.tie_embeddings, "rms_norm_eps": 1e-6, "hidden_act": "silu",
        }),
        "bert" => json!({
            "model_type": "bert", "vocab_size": vocab, "hidden_size": o.hidden_size,
            "num_hidden_layers": o.layers, "num_attention_heads": o.heads,
            "intermediate_size": inter, "max_position_embeddings": o.max_positions,
        }),
        other => {
            return Err(Error::invalid(
                OP,
                "arch",
                "'gpt2', 'llama', 'qwen2' or 'bert'",
                format!("'{other}'"),
            ))
        }
    };
    if o.arch != "llama" && o.arch != "qwen2" {
        for (key, given) in [
            ("kv_heads", o.kv_heads.is_some()),
            ("tie_embeddings", o.tie_embeddings),
        ] {
            if given {
                return Err(Error::invalid(
                    OP,
                    key,
                    "no such option for this arch (Llama/Qwen2 only)",
                    &o.arch,
                ));
            }
        }
    }
    if let Some(t) = tok {
        if let Some(eos) = t.eos {
            c["eos_token_id"] = json!(eos);
            c["bos_token_id"] = json!(eos);
        }
        c["pad_token_id"] = json!(t.pad);
    }
    Ok(c)
}

impl Model {
    /// A fresh model from `o` (`sw.model.new`): the config from the options, the vocabulary
    /// from the tokenizer unless given, an LM head for decoders and none for BERT by default.
    pub fn new_from(o: &NewOptions) -> Result<Model> {
        const OP: &str = "model.new";
        crate::Options::check(o, OP)?;
        let tok = match &o.tokenizer {
            Some(dir) => Some(Tokenizer::load(Path::new(dir), &json!({}))?),
            None => None,
        };
        let vocab = match (o.vocab_size, &tok) {
            (Some(v), _) => v,
            (None, Some(t)) => t.vocab_size(),
            (None, None) => {
                return Err(Error::invalid(
                    OP,
                    "vocab_size",
                    "a vocabulary size (or a tokenizer to take it from)",
                    "neither",
                ))
            }
        };
        // The config takes its special ids from the tokenizer, so the two agree as loaded.
        let config = hf_config(o, vocab, tok.as_ref())?;
        let fallback = if o.arch == "bert" {
            Head::None
        } else {
            Head::Lm
        };
        let head =
            head_of(o.head.as_deref(), o.num_labels, Some(fallback))?.expect("has a fallback");
        Model::from_config(config, head, &placement(&o.dtype, &o.device, o.seed)?, tok)
    }

    /// A checkpoint directory, or a llama.cpp `.gguf` file, with the placement and head of `o`
    /// (`sw.model.load`).
    pub fn load_with(path: &Path, o: &LoadOptions) -> Result<Model> {
        crate::Options::check(o, "model.load")?;
        let head = head_of(o.head.as_deref(), o.num_labels, None)?;
        let place = placement(&o.dtype, &o.device, o.seed)?;
        if path.is_file() && path.extension().is_some_and(|e| e == "gguf") {
            return Model::load_gguf(path, head, &place);
        }
        Model::load(path, head, &place)
    }

    /// Sets the last layer of a `classify` or `scalar` head to zeros, as openai/weak-to-strong
    /// initialises its classification head (`normal_(std=0.0)`, no bias): every class starts
    /// equally likely, so early training is not steered by a random head.
    pub fn zero_head(&mut self) -> Result<()> {
        const OP: &str = "model.zero_head";
        if !matches!(self.head(), Head::Classify(_) | Head::Scalar) {
            return Err(Error::invalid(
                OP,
                "model",
                "a model with a 'classify' or 'scalar' head",
                format!("head '{}'", self.head().name()),
            ));
        }
        for name in ["classifier.weight", "classifier.bias", "score.weight"] {
            if let Some(v) = self.params().var(name) {
                let zeros = v.as_tensor().zeros_like()?;
                self.params().set(name, &zeros)?;
            }
        }
        Ok(())
    }

    /// The head's outputs for `texts` as a table: `score` for a scalar head; else `pred` (the
    /// most likely class, the first on ties) and `p0 … p<C−1>` (softmax in f64).
    pub fn predict_frame(&self, texts: &[String], batch_size: usize) -> Result<DataFrame> {
        let rows = self.predict(texts, batch_size)?;
        let mut cols = Vec::new();
        if self.head() == Head::Scalar {
            cols.push(Column::new(
                "score".into(),
                rows.iter().map(|r| f64::from(r[0])).collect::<Vec<_>>(),
            ));
        } else {
            let probs: Vec<Vec<f64>> = rows.iter().map(|r| softmax(r)).collect();
            let pred: Vec<i64> = probs.iter().map(|p| argmax(p) as i64).collect();
            cols.push(Column::new("pred".into(), pred));
            for k in 0..rows.first().map_or(0, Vec::len) {
                cols.push(Column::new(
                    format!("p{k}").into(),
                    probs.iter().map(|p| p[k]).collect::<Vec<_>>(),
                ));
            }
        }
        DataFrame::new_infer_height(cols).map_err(Error::polars("predict", "building the table"))
    }
}

/// Softmax of logits in f64, stable for large ones.
pub fn softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = row.iter().map(|&v| (f64::from(v) - max).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

/// Index of the largest value, the first on ties.
pub fn argmax(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |b, (i, &v)| if v > b.1 { (i, v) } else { b },
        )
        .0
}
