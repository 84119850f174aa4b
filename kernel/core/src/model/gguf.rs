//! Llama-family checkpoints in llama.cpp's GGUF format: the metadata becomes an HF
//! `config.json`, the tensors are dequantised (candle's GGML kernels) and renamed to HF's names,
//! Q and K are taken back from llama.cpp's rotary layout to HF's, and the byte-level BPE
//! tokenizer (vocabulary, merges, special tokens, chat template) is rebuilt from the metadata.
//! What comes out trains, adapts and saves like any HF checkpoint.
//!
//! `kernel/core/tests/gguf.rs` checks token ids and logits against HF transformers' own GGUF
//! loader (`tests/parity/make_gguf_fixtures.py`).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value as Meta};
use candle_core::Tensor;
use serde_json::{json, Value};
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper};

use super::{Arch, Head, Model, Placement, Tokenizer};
use crate::{Error, Result};

const OP: &str = "model.load";

fn bad(what: impl Into<String>, got: impl std::fmt::Display) -> Error {
    Error::invalid(OP, "gguf", what.into(), got)
}

struct Gguf {
    content: Content,
    file: Tracked,
}

/// A buffered file that knows its own position. candle's GGUF reader asks for the position
/// before every string of the metadata (bounds checks); `BufReader` answers with an `lseek`
/// system call, ~100,000 of them for SmolLM2's vocabulary: 1.5 s of a 2 s load.
struct Tracked {
    inner: BufReader<File>,
    pos: u64,
}

impl std::io::Read for Tracked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for Tracked {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        if to == std::io::SeekFrom::Current(0) {
            return Ok(self.pos);
        }
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

impl Gguf {
    fn meta(&self, key: &str) -> Result<&Meta> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| bad(format!("the metadata key '{key}'"), "none"))
    }

    fn usize(&self, key: &str) -> Result<usize> {
        let v = self.meta(key)?;
        v.to_u64()
            .or_else(|_| v.to_u32().map(u64::from))
            .or_else(|_| v.to_i32().map(|x| x.max(0) as u64))
            .map(|x| x as usize)
            .map_err(|e| bad(format!("an integer at '{key}'"), e))
    }

    fn f64(&self, key: &str) -> Result<f64> {
        let v = self.meta(key)?;
        v.to_f32()
            .map(f64::from)
            .or_else(|_| v.to_f64())
            .map_err(|e| bad(format!("a number at '{key}'"), e))
    }

    fn string(&self, key: &str) -> Result<&str> {
        self.meta(key)?
            .to_string()
            .map(String::as_str)
            .map_err(|e| bad(format!("a string at '{key}'"), e))
    }

    fn strings(&self, key: &str) -> Result<Vec<String>> {
        self.meta(key)?
            .to_vec()
            .map_err(|e| bad(format!("a list at '{key}'"), e))?
            .iter()
            .map(|v| v.to_string().cloned())
            .collect::<candle_core::Result<_>>()
            .map_err(|e| bad(format!("strings at '{key}'"), e))
    }

    fn optional_id(&self, key: &str) -> Option<u32> {
        self.content.metadata.get(key).and_then(|v| v.to_u32().ok())
    }
}

/// The HF name of a GGUF tensor, and whether it is llama.cpp-permuted (Q or K).
fn hf_name(gguf: &str) -> Option<(String, bool)> {
    let top = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(t) = top {
        return Some((t.to_string(), false));
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, name) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (hf, permuted) = match name {
        "attn_norm.weight" => ("input_layernorm.weight", false),
        "ffn_norm.weight" => ("post_attention_layernorm.weight", false),
        "attn_q.weight" => ("self_attn.q_proj.weight", true),
        "attn_k.weight" => ("self_attn.k_proj.weight", true),
        "attn_v.weight" => ("self_attn.v_proj.weight", false),
        "attn_output.weight" => ("self_attn.o_proj.weight", false),
        "ffn_gate.weight" => ("mlp.gate_proj.weight", false),
        "ffn_up.weight" => ("mlp.up_proj.weight", false),
        "ffn_down.weight" => ("mlp.down_proj.weight", false),
        _ => return None,
    };
    Some((format!("model.layers.{layer}.{hf}"), permuted))
}

/// Undoes llama.cpp's `permute` of a Q or K weight (out, in): it stored each head's rows as
/// interleaved rotary pairs (reshape to (heads, 2, d/2) then swap the last two); HF rotates
/// halves. The inverse reshapes to (heads, d/2, 2) and swaps back.
fn unpermute(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (out, cols) = w.dims2()?;
    let half = out / heads / 2;
    Ok(w.reshape((heads, half, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, cols))?)
}

/// The HF `config.json` the GGUF metadata describes.
fn config_of(g: &Gguf, vocab: usize, tied: bool) -> Result<Value> {
    let arch = g.string("general.architecture")?;
    if arch != "llama" {
        return Err(bad(
            "a llama-architecture GGUF (Llama, SmolLM, Mistral)",
            arch,
        ));
    }
    let key = |k: &str| format!("llama.{k}");
    let heads = g.usize(&key("attention.head_count"))?;
    let hidden = g.usize(&key("embedding_length"))?;
    let head_dim = g
        .usize(&key("rope.dimension_count"))
        .unwrap_or(hidden / heads.max(1));
    let mut config = json!({
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": g.usize(&key("feed_forward_length"))?,
        "num_hidden_layers": g.usize(&key("block_count"))?,
        "num_attention_heads": heads,
        "num_key_value_heads": g.usize(&key("attention.head_count_kv")).unwrap_or(heads),
        "head_dim": head_dim,
        "rms_norm_eps": g.f64(&key("attention.layer_norm_rms_epsilon"))?,
        "rope_theta": g.f64(&key("rope.freq_base")).unwrap_or(10_000.0),
        "max_position_embeddings": g.usize(&key("context_length"))?,
        "tie_word_embeddings": tied,
        "hidden_act": "silu",
    });
    for (gguf_key, hf_key) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token_id"),
    ] {
        if let Some(id) = g.optional_id(gguf_key) {
            config[hf_key] = json!(id);
        }
    }
    Ok(config)
}

/// The byte-level BPE of the metadata, with the pre-tokenizer its `tokenizer.ggml.pre` names
/// (llama.cpp's list; SmolLM's splits digits one by one before GPT-2's byte-level split).
fn tokenizer_of(g: &Gguf, config: &Value) -> Result<Tokenizer> {
    let model = g.string("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(bad(
            "a byte-level BPE tokenizer (tokenizer.ggml.model = 'gpt2')",
            model,
        ));
    }
    let tokens = g.strings("tokenizer.ggml.tokens")?;
    let merges: Vec<(String, String)> = g
        .strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| bad("merges of two tokens separated by a space", &m))
        })
        .collect::<Result<_>>()?;
    let types: Vec<i64> = match g.content.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(|e| bad("a list of token types", e))?
            .iter()
            .map(|t| t.to_i32().map(i64::from))
            .collect::<candle_core::Result<_>>()
            .map_err(|e| bad("integer token types", e))?,
        None => vec![1; tokens.len()],
    };
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| bad("a valid BPE vocabulary and merges", e))?;
    let mut inner = tokenizers::Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    let pre = g.string("tokenizer.ggml.pre").unwrap_or("default");
    match pre {
        "smollm" => {
            inner.with_pre_tokenizer(Some(Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                PreTokenizerWrapper::ByteLevel(byte_level),
            ])));
        }
        "gpt2" | "default" => {
            inner.with_pre_tokenizer(Some(byte_level));
        }
        other => {
            return Err(bad(
                "a pre-tokenizer this loader knows ('smollm', 'gpt2', 'default')",
                other,
            ))
        }
    }
    inner.with_decoder(Some(ByteLevel::default()));
    // Control tokens (type 3) are special: never split, skipped when decoding on request.
    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, &t)| t == 3)
        .map(|(t, _)| AddedToken::from(t.clone(), true))
        .collect();
    inner
        .add_special_tokens(special)
        .map_err(|e| bad("special tokens the vocabulary holds", e))?;
    let name = |key: &str| {
        g.optional_id(key)
            .and_then(|i| tokens.get(i as usize).cloned())
    };
    let mut tok_config = json!({"tokenizer_class": "GPT2Tokenizer"});
    for (key, field) in [
        ("tokenizer.ggml.bos_token_id", "bos_token"),
        ("tokenizer.ggml.eos_token_id", "eos_token"),
        ("tokenizer.ggml.padding_token_id", "pad_token"),
    ] {
        if let Some(t) = name(key) {
            tok_config[field] = json!(t);
        }
    }
    if let Ok(template) = g.string("tokenizer.chat_template") {
        tok_config["chat_template"] = json!(template);
    }
    Ok(Tokenizer::from_parts(inner, config, Some(tok_config)))
}

impl Model {
    /// Loads a llama-family GGUF file (any quantisation candle dequantises: F32, F16, BF16,
    /// Q4_0/1, Q5_0/1, Q8_0, K-quants), in the placement's dtype.
    pub fn load_gguf(path: &Path, head: Option<Head>, place: &Placement) -> Result<Self> {
        let file = File::open(path).map_err(Error::io(OP, path))?;
        let mut file = Tracked {
            inner: BufReader::new(file),
            pos: 0,
        };
        let content = Content::read(&mut file).map_err(|e| {
            Error::invalid(
                OP,
                "path",
                "a GGUF file",
                format!("'{}': {e}", path.display()),
            )
        })?;
        let mut g = Gguf { content, file };
        let vocab = g
            .usize("llama.vocab_size")
            .or_else(|_| g.strings("tokenizer.ggml.tokens").map(|t| t.len()))?;
        let tied = !g.content.tensor_infos.contains_key("output.weight");
        let config = config_of(&g, vocab, tied)?;
        let arch = Arch::from_json(&config)?;
        let Arch::Llama(c) = &arch else {
            unreachable!("config_of writes a llama config")
        };
        let (heads, kv_heads) = (c.heads, c.kv_heads);
        let head = head.unwrap_or(Head::Lm);
        let mut names: HashMap<String, (String, bool)> = HashMap::new();
        let mut shapes = Vec::new();
        let mut unknown = Vec::new();
        for (name, info) in &g.content.tensor_infos {
            match hf_name(name) {
                Some((hf, permuted)) => {
                    shapes.push((hf.clone(), info.shape.dims().to_vec()));
                    names.insert(hf, (name.clone(), permuted));
                }
                // llama.cpp writes precomputed rotary frequencies for some models; ours come
                // from the config.
                None if name == "rope_freqs.weight" => {}
                None => unknown.push(name.clone()),
            }
        }
        if let Some(name) = unknown.first() {
            return Err(bad(
                "only llama tensors",
                format!("'{name}' ({} unknown)", unknown.len()),
            ));
        }
        shapes.sort();
        let tokenizer = tokenizer_of(&g, &config)?;
        let (params, dropped) = Self::params_from(
            OP,
            &arch,
            head,
            shapes,
            |hf| {
                let (name, permuted) = &names[hf];
                let q = g
                    .content
                    .tensor(&mut g.file, name, &place.device)
                    .map_err(|e| bad(format!("a readable tensor '{name}'"), e))?;
                let w = q.dequantize(&place.device)?;
                if *permuted {
                    let h = if hf.contains("k_proj") {
                        kv_heads
                    } else {
                        heads
                    };
                    unpermute(&w, h)
                } else {
                    Ok(w)
                }
            },
            place,
        )?;
        Self::assemble(
            arch,
            head,
            params,
            Some(tokenizer),
            config,
            place,
            dropped,
            OP,
        )
    }
}
