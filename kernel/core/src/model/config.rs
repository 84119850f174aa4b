//! Architecture configurations, read from a Hugging Face `config.json`.
//!
//! HF configs carry dozens of keys this crate has no use for (generation defaults, ids of the
//! hub, ...), so unknown keys are kept (and written back on save) rather than rejected; the keys
//! that change the computation are all read, and values we cannot honour (an unsupported RoPE
//! scaling, an activation we do not have) are errors naming the key.

use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result};

/// Activation functions, by their HF names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: the exact, erf-based GELU.
    Gelu,
    /// `gelu_new` / `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    Silu,
    Relu,
}

impl Activation {
    fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "gelu" => Self::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "silu" | "swish" => Self::Silu,
            "relu" => Self::Relu,
            other => {
                return Err(config_error(
                    "hidden_act",
                    "gelu, gelu_new, silu or relu",
                    other,
                ))
            }
        })
    }

    pub fn apply(self, x: &candle_core::Tensor) -> Result<candle_core::Tensor> {
        Ok(match self {
            Self::Gelu => x.gelu_erf()?,
            Self::GeluTanh => crate::nn::gelu_tanh(x)?,
            Self::Silu => x.silu()?,
            Self::Relu => x.relu()?,
        })
    }
}

fn config_error(arg: &'static str, expected: &str, got: impl std::fmt::Display) -> Error {
    Error::InvalidArgument {
        op: "model config",
        arg,
        expected: expected.into(),
        got: got.to_string(),
    }
}

#[derive(Clone, Debug, Deserialize)]
struct RawGpt2 {
    vocab_size: usize,
    n_positions: usize,
    n_embd: usize,
    n_layer: usize,
    n_head: usize,
    n_inner: Option<usize>,
    #[serde(default = "eps_1e5")]
    layer_norm_epsilon: f64,
    #[serde(default = "gelu_new")]
    activation_function: String,
    #[serde(default = "yes")]
    scale_attn_weights: bool,
    #[serde(default)]
    scale_attn_by_inverse_layer_idx: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize)]
struct RawLlama {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "eps_1e6")]
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_parameters: Option<Value>,
    rope_scaling: Option<Value>,
    #[serde(default = "max_pos_2048")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    #[serde(default = "silu")]
    hidden_act: String,
}

#[derive(Clone, Debug, Deserialize)]
struct RawBert {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "gelu")]
    hidden_act: String,
    #[serde(default = "max_pos_512")]
    max_position_embeddings: usize,
    #[serde(default = "two")]
    type_vocab_size: usize,
    #[serde(default = "eps_1e12")]
    layer_norm_eps: f64,
    position_embedding_type: Option<String>,
}

fn eps_1e5() -> f64 {
    1e-5
}
fn eps_1e6() -> f64 {
    1e-6
}
fn eps_1e12() -> f64 {
    1e-12
}
fn gelu_new() -> String {
    "gelu_new".into()
}
fn gelu() -> String {
    "gelu".into()
}
fn silu() -> String {
    "silu".into()
}
fn max_pos_2048() -> usize {
    2048
}
fn max_pos_512() -> usize {
    512
}
fn two() -> usize {
    2
}

/// GPT-2.
#[derive(Clone, Debug)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub inner: usize,
    pub eps: f64,
    pub act: Activation,
}

/// How RoPE frequencies are scaled for long contexts.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor`.
    Linear {
        factor: f64,
    },
    /// Llama 3's frequency-dependent scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

/// The Llama family (Llama, SmolLM, Qwen2 without sliding windows).
#[derive(Clone, Debug)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_positions: usize,
    pub tie_embeddings: bool,
    /// Biases on q, k and v (Qwen2 always has them; Llama's `attention_bias` also puts one on o).
    pub qkv_bias: bool,
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub act: Activation,
}

/// The BERT family (BERT, MiniLM, ...): absolute position embeddings, post-LN encoder.
#[derive(Clone, Debug)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub act: Activation,
    pub max_positions: usize,
    pub type_vocab_size: usize,
    pub eps: f64,
}

/// One of the supported architectures with its configuration.
#[derive(Clone, Debug)]
pub enum Arch {
    Gpt2(Gpt2Config),
    Llama(LlamaConfig),
    Bert(BertConfig),
}

fn parse<T: for<'de> Deserialize<'de>>(raw: &Value) -> Result<T> {
    serde_json::from_value(raw.clone())
        .map_err(|e| config_error("config.json", "a valid config", e))
}

fn f64_of(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn rope_of(raw: &RawLlama) -> Result<(f64, RopeScaling)> {
    // transformers ≥ 5 writes `rope_parameters`; older configs `rope_theta` + `rope_scaling`.
    let params = raw.rope_parameters.as_ref().or(raw.rope_scaling.as_ref());
    let theta = raw
        .rope_theta
        .or_else(|| params.and_then(|p| f64_of(p, "rope_theta")))
        .unwrap_or(10_000.0);
    let Some(p) = params.filter(|p| !p.is_null()) else {
        return Ok((theta, RopeScaling::None));
    };
    let kind = p
        .get("rope_type")
        .or_else(|| p.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let factor = f64_of(p, "factor").unwrap_or(1.0);
    let scaling = match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear { factor },
        "llama3" => RopeScaling::Llama3 {
            factor,
            low_freq_factor: f64_of(p, "low_freq_factor").unwrap_or(1.0),
            high_freq_factor: f64_of(p, "high_freq_factor").unwrap_or(4.0),
            original_max_position_embeddings: f64_of(p, "original_max_position_embeddings")
                .unwrap_or(8192.0),
        },
        other => {
            return Err(config_error(
                "rope_type",
                "default, linear or llama3 RoPE",
                other,
            ))
        }
    };
    Ok((theta, scaling))
}

impl Arch {
    /// Reads the architecture from a parsed `config.json` (its `model_type`).
    pub fn from_json(raw: &Value) -> Result<Self> {
        let model_type = raw
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| config_error("model_type", "a string", "nothing"))?;
        let arch = match model_type {
            "gpt2" => {
                let r: RawGpt2 = parse(raw)?;
                if !r.scale_attn_weights || r.scale_attn_by_inverse_layer_idx {
                    return Err(config_error(
                        "scale_attn_weights/scale_attn_by_inverse_layer_idx",
                        "GPT-2's standard 1/sqrt(d) attention scaling",
                        "a variant",
                    ));
                }
                Arch::Gpt2(Gpt2Config {
                    vocab_size: r.vocab_size,
                    n_positions: r.n_positions,
                    hidden: r.n_embd,
                    layers: r.n_layer,
                    heads: r.n_head,
                    inner: r.n_inner.unwrap_or(4 * r.n_embd),
                    eps: r.layer_norm_epsilon,
                    act: Activation::parse(&r.activation_function)?,
                })
            }
            "llama" | "qwen2" => {
                let r: RawLlama = parse(raw)?;
                if model_type != "llama"
                    && raw.get("use_sliding_window") == Some(&Value::Bool(true))
                {
                    return Err(config_error("use_sliding_window", "false", true));
                }
                let (rope_theta, rope_scaling) = rope_of(&r)?;
                let qwen = model_type == "qwen2";
                Arch::Llama(LlamaConfig {
                    vocab_size: r.vocab_size,
                    hidden: r.hidden_size,
                    intermediate: r.intermediate_size,
                    layers: r.num_hidden_layers,
                    heads: r.num_attention_heads,
                    kv_heads: r.num_key_value_heads.unwrap_or(r.num_attention_heads),
                    head_dim: r
                        .head_dim
                        .unwrap_or(r.hidden_size / r.num_attention_heads.max(1)),
                    eps: r.rms_norm_eps,
                    rope_theta,
                    rope_scaling,
                    max_positions: r.max_position_embeddings,
                    tie_embeddings: r.tie_word_embeddings,
                    qkv_bias: qwen || r.attention_bias,
                    o_bias: !qwen && r.attention_bias,
                    mlp_bias: r.mlp_bias,
                    act: Activation::parse(&r.hidden_act)?,
                })
            }
            "bert" => {
                let r: RawBert = parse(raw)?;
                if let Some(kind) = r.position_embedding_type.filter(|k| k != "absolute") {
                    return Err(config_error("position_embedding_type", "absolute", kind));
                }
                Arch::Bert(BertConfig {
                    vocab_size: r.vocab_size,
                    hidden: r.hidden_size,
                    layers: r.num_hidden_layers,
                    heads: r.num_attention_heads,
                    intermediate: r.intermediate_size,
                    act: Activation::parse(&r.hidden_act)?,
                    max_positions: r.max_position_embeddings,
                    type_vocab_size: r.type_vocab_size,
                    eps: r.layer_norm_eps,
                })
            }
            other => {
                return Err(config_error(
                    "model_type",
                    "gpt2, llama (also SmolLM), qwen2 or bert",
                    other,
                ))
            }
        };
        arch.validate()?;
        Ok(arch)
    }

    fn validate(&self) -> Result<()> {
        let (hidden, heads, layers, vocab) = match self {
            Arch::Gpt2(c) => (c.hidden, c.heads, c.layers, c.vocab_size),
            Arch::Llama(c) => {
                if c.kv_heads == 0 || c.heads % c.kv_heads != 0 {
                    return Err(config_error(
                        "num_key_value_heads",
                        format!("a divisor of num_attention_heads ({})", c.heads).as_str(),
                        c.kv_heads,
                    ));
                }
                if c.head_dim % 2 != 0 {
                    return Err(config_error(
                        "head_dim",
                        "an even number (RoPE)",
                        c.head_dim,
                    ));
                }
                (c.heads * c.head_dim, c.heads, c.layers, c.vocab_size)
            }
            Arch::Bert(c) => (c.hidden, c.heads, c.layers, c.vocab_size),
        };
        if heads == 0 || hidden % heads != 0 {
            return Err(config_error(
                "num_attention_heads",
                format!("a positive divisor of the hidden size ({hidden})").as_str(),
                heads,
            ));
        }
        if layers == 0 || vocab == 0 {
            return Err(config_error(
                "num_hidden_layers/vocab_size",
                "positive sizes",
                format!("{layers} layers, vocabulary {vocab}"),
            ));
        }
        Ok(())
    }

    /// The name of the architecture family, as `sw.model.new{arch=...}` spells it.
    pub fn family(&self) -> &'static str {
        match self {
            Arch::Gpt2(_) => "gpt2",
            Arch::Llama(_) => "llama",
            Arch::Bert(_) => "bert",
        }
    }

    pub fn hidden_size(&self) -> usize {
        match self {
            Arch::Gpt2(c) => c.hidden,
            Arch::Llama(c) => c.hidden,
            Arch::Bert(c) => c.hidden,
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Arch::Gpt2(c) => c.vocab_size,
            Arch::Llama(c) => c.vocab_size,
            Arch::Bert(c) => c.vocab_size,
        }
    }

    pub fn max_positions(&self) -> usize {
        match self {
            Arch::Gpt2(c) => c.n_positions,
            Arch::Llama(c) => c.max_positions,
            Arch::Bert(c) => c.max_positions,
        }
    }

    /// Whether the model attends causally (decoders) or both ways (encoders).
    pub fn is_causal(&self) -> bool {
        !matches!(self, Arch::Bert(_))
    }

    /// The prefix HF's task models put before the base model's tensor names.
    pub fn prefix(&self) -> &'static str {
        match self {
            Arch::Gpt2(_) => "transformer.",
            Arch::Llama(_) => "model.",
            Arch::Bert(_) => "bert.",
        }
    }
}
