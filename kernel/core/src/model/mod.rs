//! Transformers that train: GPT-2, the Llama family and BERT, loaded from and saved to Hugging
//! Face checkpoint directories, with an LM, scalar or classification head and optional LoRA.
//!
//! Every layer is built from [`crate::nn`], whose backward passes are checked against PyTorch;
//! whole-model logits, losses and per-parameter gradients are checked against HF transformers in
//! `kernel/core/tests/model_parity.rs`.

mod bert;
mod build;
mod config;
mod generate;
mod gguf;
mod gpt2;
mod inputs;
pub(crate) mod io;
mod kv_cache;
mod llama;
mod lora;
mod params;
mod tokenizer;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use serde_json::{json, Value};

pub use build::{argmax, head_of, hf_config, softmax, LoadOptions, NewOptions};
pub use config::{Activation, Arch, BertConfig, Gpt2Config, LlamaConfig, RopeScaling};
pub use generate::{generations_frame, logprobs_frame, GenerateOptions, Generation};
pub use inputs::{Inputs, Padding};
pub use kv_cache::KvCache;
pub use lora::{LoraConfig, LoraOptions};
pub use params::{Init, Params, Spec};
pub use tokenizer::Tokenizer;

use crate::{Error, Result, Rng};

/// What sits on top of the transformer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// Hidden states only (embeddings).
    None,
    /// Next-token logits.
    Lm,
    /// One number per sequence (reward or value model).
    Scalar,
    /// `n` class logits per sequence.
    Classify(usize),
}

impl Head {
    pub fn outputs(self) -> usize {
        match self {
            Head::None | Head::Lm => 0,
            Head::Scalar => 1,
            Head::Classify(n) => n,
        }
    }

    /// Parses `none`, `lm`, `scalar` or `classify` (with `num_labels`).
    pub fn parse(name: &str, num_labels: Option<usize>) -> Result<Self> {
        Ok(match (name, num_labels) {
            ("none", None) => Head::None,
            ("lm", None) => Head::Lm,
            ("scalar", None) => Head::Scalar,
            ("classify", Some(n)) if n >= 2 => Head::Classify(n),
            ("classify", None) => Head::Classify(2),
            ("classify", Some(n)) => {
                return Err(Error::invalid(
                    "model",
                    "num_labels",
                    "at least 2 classes",
                    n,
                ))
            }
            (h @ ("none" | "lm" | "scalar"), Some(_)) => {
                return Err(Error::invalid(
                    "model",
                    "num_labels",
                    format!("no num_labels with head '{h}'"),
                    "a number",
                ))
            }
            (other, _) => {
                return Err(Error::invalid(
                    "model",
                    "head",
                    "'none', 'lm', 'scalar' or 'classify'",
                    format!("'{other}'"),
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Head::None => "none",
            Head::Lm => "lm",
            Head::Scalar => "scalar",
            Head::Classify(_) => "classify",
        }
    }
}

/// How GPT-2's Conv1D and ordinary linear layers store their weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinearKind {
    /// weight (out, in)
    Linear,
    /// weight (in, out)
    Conv1D,
}

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    let ordinal = match spec {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => Some(0),
        s => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok()),
    };
    let Some(n) = ordinal else {
        return Err(Error::invalid(
            "model",
            "device",
            "'cpu', 'cuda' or 'cuda:N'",
            format!("'{spec}'"),
        ));
    };
    if !cfg!(feature = "cuda") {
        return Err(Error::invalid(
            "model",
            "device",
            "'cpu' (this build has no CUDA: rebuild with `--features cuda`)",
            format!("'{spec}'"),
        ));
    }
    Ok(Device::new_cuda(n)?)
}

/// Parses `f32`, `bf16` or `f16`.
pub fn parse_dtype(spec: &str) -> Result<DType> {
    match spec {
        "f32" | "float32" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" => Ok(DType::F16),
        other => Err(Error::invalid(
            "model",
            "dtype",
            "'f32', 'bf16' or 'f16'",
            format!("'{other}'"),
        )),
    }
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        _ => "float32",
    }
}

/// Where and how to put a model.
#[derive(Clone, Debug)]
pub struct Placement {
    pub device: Device,
    pub dtype: DType,
    /// Seeds the initialisation of fresh tensors (a new model, a new head).
    pub seed: u64,
}

impl Default for Placement {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            dtype: DType::F32,
            seed: 0,
        }
    }
}

/// A transformer with its head, parameters, optional LoRA adapters and tokenizer.
pub struct Model {
    arch: Arch,
    head: Head,
    params: Params,
    lora: Option<lora::Lora>,
    tokenizer: Option<Tokenizer>,
    /// `config.json` as read (or built), written back on save with the keys we own updated.
    config: Value,
    device: Device,
    dtype: DType,
    /// Tensors of the checkpoint that this head does not use (another head's, buffers).
    dropped: Vec<String>,
}

/// The head a checkpoint was saved with, from `architectures` and `num_labels`.
fn head_of_config(config: &Value, arch: &Arch) -> Head {
    let class = config
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .unwrap_or("");
    if class.ends_with("ForSequenceClassification") {
        let n = config
            .get("num_labels")
            .and_then(Value::as_u64)
            .or_else(|| {
                config
                    .get("id2label")
                    .and_then(Value::as_object)
                    .map(|m| m.len() as u64)
            })
            .unwrap_or(2) as usize;
        return if n == 1 {
            Head::Scalar
        } else {
            Head::Classify(n)
        };
    }
    if class.ends_with("LMHeadModel") || class.ends_with("ForCausalLM") {
        return Head::Lm;
    }
    if class.is_empty() && arch.is_causal() {
        return Head::Lm;
    }
    Head::None
}

/// Tensors a checkpoint may hold that no head of ours uses; dropped rather than rejected.
fn droppable(name: &str) -> bool {
    let heads = [
        "lm_head.",
        "score.",
        "classifier.",
        "cls.",
        "qa_outputs.",
        "pooler.",
    ];
    heads
        .iter()
        .any(|h| name.starts_with(h) || name.contains(&format!(".{h}")))
        || name.ends_with(".attn.bias")
        || name.ends_with(".attn.masked_bias")
        || name.ends_with("rotary_emb.inv_freq")
        || name.ends_with("position_ids")
}

impl Model {
    /// A randomly initialised model from a `config.json`-shaped value (HF's initialisation:
    /// normal(0, 0.02) weights, GPT-2's scaled residual projections, zero biases, unit norms).
    pub fn from_config(
        config: Value,
        head: Head,
        place: &Placement,
        tokenizer: Option<Tokenizer>,
    ) -> Result<Self> {
        let arch = Arch::from_json(&config)?;
        let mut rng = Rng::derived(place.seed, 1);
        let mut params = Params::default();
        for spec in params::specs(&arch, head)? {
            let t = params::init_tensor(&spec, &mut rng, place.dtype, &place.device)?;
            params.insert(spec.name, t)?;
        }
        Self::assemble(
            arch,
            head,
            params,
            tokenizer,
            config,
            place,
            Vec::new(),
            "model.new",
        )
    }

    /// Loads a Hugging Face checkpoint directory. `head` overrides the checkpoint's own; a head
    /// the checkpoint lacks is freshly initialised. Missing base tensors, wrong shapes and
    /// unknown tensors are errors before anything is computed.
    pub fn load(dir: &Path, head: Option<Head>, place: &Placement) -> Result<Self> {
        const OP: &str = "model.load";
        if !dir.is_dir() {
            return Err(Error::invalid(
                OP,
                "path",
                "a checkpoint directory",
                format!("'{}' (not a directory)", dir.display()),
            ));
        }
        let config = io::read_json(OP, &dir.join("config.json"))?;
        let arch = Arch::from_json(&config)?;
        let head = head.unwrap_or_else(|| head_of_config(&config, &arch));
        let weights = io::Weights::open(OP, &io::weight_files(OP, dir)?)?;
        let (params, dropped) = Self::params_from(
            OP,
            &arch,
            head,
            weights.shapes(),
            |name| weights.load(name, &place.device),
            place,
        )?;
        let tokenizer = if dir.join("tokenizer.json").is_file() {
            Some(Tokenizer::load(dir, &config)?)
        } else {
            None
        };
        Self::assemble(arch, head, params, tokenizer, config, place, dropped, OP)
    }

    /// The parameters of `arch` + `head` from a checkpoint's tensors (HF names, with or without
    /// the architecture's prefix, and their shapes; `load` reads one): a wrong shape, an
    /// unknown tensor or a missing base tensor is an error before any is read; a head the
    /// checkpoint lacks is freshly initialised. Returns the params and the tensors left out
    /// (another head's).
    pub(crate) fn params_from(
        op: &'static str,
        arch: &Arch,
        head: Head,
        shapes: Vec<(String, Vec<usize>)>,
        mut load: impl FnMut(&str) -> Result<Tensor>,
        place: &Placement,
    ) -> Result<(Params, Vec<String>)> {
        let specs = params::specs(arch, head)?;
        let by_name: HashMap<&str, &Spec> = specs.iter().map(|s| (s.name.as_str(), s)).collect();
        let mut params = Params::default();
        let mut dropped = Vec::new();
        let mut unexpected = Vec::new();
        let mut keep = Vec::new();
        for (file_name, shape) in shapes {
            let prefixed = format!("{}{}", arch.prefix(), file_name);
            let name = if by_name.contains_key(file_name.as_str()) {
                file_name.clone()
            } else if by_name.contains_key(prefixed.as_str()) {
                prefixed
            } else {
                if droppable(&file_name) {
                    dropped.push(file_name);
                } else {
                    unexpected.push(file_name);
                }
                continue;
            };
            let spec = by_name[name.as_str()];
            if spec.shape != shape {
                return Err(Error::invalid(
                    op,
                    "checkpoint",
                    format!(
                        "tensor '{file_name}' of shape {:?} (from config.json)",
                        spec.shape
                    ),
                    format!("shape {shape:?}"),
                ));
            }
            keep.push((name, file_name));
        }
        if !unexpected.is_empty() {
            unexpected.sort();
            return Err(Error::invalid(
                op,
                "checkpoint",
                format!("only tensors of a {} model", arch.family()),
                format!(
                    "{} unknown tensors, e.g. '{}'",
                    unexpected.len(),
                    unexpected[0]
                ),
            ));
        }
        let present: std::collections::HashSet<&str> = keep
            .iter()
            .map(|(n, _): &(String, String)| n.as_str())
            .collect();
        let missing: Vec<&str> = specs
            .iter()
            .filter(|s| !s.head && !present.contains(s.name.as_str()))
            .map(|s| s.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Error::invalid(
                op,
                "checkpoint",
                "every tensor its config.json implies",
                format!("{} missing, e.g. '{}'", missing.len(), missing[0]),
            ));
        }
        for (name, file_name) in keep {
            params.insert(name, load(&file_name)?.to_dtype(place.dtype)?)?;
        }
        let mut rng = Rng::derived(place.seed, 2);
        let fresh: Vec<&Spec> = specs
            .iter()
            .filter(|s| s.head && !params.contains(&s.name))
            .collect();
        for spec in fresh {
            params.insert(
                spec.name.clone(),
                params::init_tensor(spec, &mut rng, place.dtype, &place.device)?,
            )?;
        }
        dropped.sort();
        Ok((params, dropped))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        arch: Arch,
        head: Head,
        params: Params,
        tokenizer: Option<Tokenizer>,
        config: Value,
        place: &Placement,
        dropped: Vec<String>,
        op: &'static str,
    ) -> Result<Self> {
        let model = Self {
            arch,
            head,
            params,
            lora: None,
            tokenizer,
            config,
            device: place.device.clone(),
            dtype: place.dtype,
            dropped,
        };
        model.check_tokenizer(op)?;
        Ok(model)
    }

    fn check_tokenizer(&self, op: &'static str) -> Result<()> {
        if let Some(t) = &self.tokenizer {
            if t.vocab_size() > self.arch.vocab_size() {
                return Err(Error::invalid(
                    op,
                    "tokenizer",
                    format!("at most vocab_size = {} tokens", self.arch.vocab_size()),
                    format!("{} tokens", t.vocab_size()),
                ));
            }
        }
        Ok(())
    }

    /// The HF class this model saves as.
    fn class_name(&self) -> String {
        let family = match &self.arch {
            Arch::Gpt2(_) => "GPT2",
            Arch::Bert(_) => "Bert",
            Arch::Llama(_) => match self.config.get("model_type").and_then(Value::as_str) {
                Some("qwen2") => "Qwen2",
                _ => "Llama",
            },
        };
        match (self.head, &self.arch) {
            (Head::None, _) => format!("{family}Model"),
            (Head::Lm, Arch::Gpt2(_)) => "GPT2LMHeadModel".into(),
            (Head::Lm, _) => format!("{family}ForCausalLM"),
            (Head::Scalar | Head::Classify(_), _) => format!("{family}ForSequenceClassification"),
        }
    }

    /// Writes `config.json`, `model.safetensors` and the tokenizer into `dir` (created if
    /// needed), loadable by HF's `AutoModel*.from_pretrained` and by [`Model::load`]. LoRA
    /// adapters are not part of it: merge them first or save them with `save_adapter`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(Error::io("model.save", dir))?;
        let strip = if self.head == Head::None {
            self.arch.prefix()
        } else {
            ""
        };
        let mut tensors = HashMap::new();
        for (name, var) in self.params.iter().filter(|(n, _)| !lora::is_adapter(n)) {
            let name = name.strip_prefix(strip).unwrap_or(name).to_string();
            tensors.insert(name, var.as_tensor().clone());
        }
        io::save_tensors(&dir.join("model.safetensors"), &tensors)?;
        let mut config = self.config.clone();
        let obj = config.as_object_mut().ok_or_else(|| {
            Error::invalid("model.save", "config", "a JSON object", "another value")
        })?;
        obj.insert("architectures".into(), json!([self.class_name()]));
        obj.insert("torch_dtype".into(), json!(dtype_name(self.dtype)));
        if let n @ 1.. = self.head.outputs() {
            obj.insert("num_labels".into(), json!(n));
            let id2label: serde_json::Map<String, Value> = (0..n)
                .map(|i| (i.to_string(), json!(format!("LABEL_{i}"))))
                .collect();
            let label2id: serde_json::Map<String, Value> =
                (0..n).map(|i| (format!("LABEL_{i}"), json!(i))).collect();
            obj.insert("id2label".into(), Value::Object(id2label));
            obj.insert("label2id".into(), Value::Object(label2id));
            if let Some(t) = &self.tokenizer {
                obj.entry("pad_token_id").or_insert(json!(t.pad));
            }
        }
        io::write_json(&dir.join("config.json"), &config)?;
        if let Some(t) = &self.tokenizer {
            t.save(dir)?;
        }
        Ok(())
    }

    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    pub fn head(&self) -> Head {
        self.head
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn config(&self) -> &Value {
        &self.config
    }

    pub fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_ref()
    }

    /// The tokenizer, or an error naming `op` when the model has none.
    pub fn require_tokenizer(&self, op: &'static str) -> Result<&Tokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| {
            Error::invalid(op, "model", "a model with a tokenizer (tokenizer.json next to config.json, or `tokenizer=` in sw.model.new)", "a model without one")
        })
    }

    pub fn set_tokenizer(&mut self, tokenizer: Tokenizer) -> Result<()> {
        self.tokenizer = Some(tokenizer);
        self.check_tokenizer("model")
    }

    /// Checkpoint tensors this model did not take (another head's, buffers).
    pub fn dropped(&self) -> &[String] {
        &self.dropped
    }

    /// Final hidden states (batch, len, hidden). `train` turns on LoRA dropout.
    pub fn hidden(&self, x: &Inputs, cache: Option<&mut KvCache>, train: bool) -> Result<Tensor> {
        if x.total() > self.arch.max_positions() {
            return Err(Error::invalid(
                "model",
                "inputs",
                format!("sequences of at most {} tokens", self.arch.max_positions()),
                format!("{} tokens", x.total()),
            ));
        }
        let vocab = self.arch.vocab_size() as u32;
        if let Some(bad) = x.ids.iter().find(|&&i| i >= vocab) {
            return Err(Error::invalid(
                "model",
                "inputs",
                format!("token ids below vocab_size = {vocab}"),
                bad,
            ));
        }
        match &self.arch {
            Arch::Gpt2(c) => gpt2::forward(self, c, x, cache, train),
            Arch::Llama(c) => llama::forward(self, c, x, cache, train),
            Arch::Bert(c) => {
                if cache.is_some() {
                    return Err(Error::invalid(
                        "model",
                        "cache",
                        "no KV cache for an encoder",
                        "a cache",
                    ));
                }
                bert::forward(self, c, x, train)
            }
        }
    }

    /// A frozen reference copy for a KL leash: a LoRA model's base weights (shared, as they
    /// never train; equal to the policy until its adapters do), otherwise a copy of every
    /// weight.
    pub fn frozen_reference(&self) -> Result<Model> {
        let mut params = Params::default();
        for (name, var) in self.params.iter() {
            let t = if self.lora.is_some() {
                var.as_tensor().clone()
            } else {
                var.as_tensor().copy()?
            };
            params.insert(name.clone(), t)?;
        }
        params.freeze_all();
        Ok(Model {
            arch: self.arch.clone(),
            head: self.head,
            params,
            lora: None,
            tokenizer: self.tokenizer.clone(),
            config: self.config.clone(),
            device: self.device.clone(),
            dtype: self.dtype,
            dropped: self.dropped.clone(),
        })
    }

    /// A new KV cache for generation.
    pub fn new_cache(&self) -> KvCache {
        let layers = match &self.arch {
            Arch::Gpt2(c) => c.layers,
            Arch::Llama(c) => c.layers,
            Arch::Bert(c) => c.layers,
        };
        KvCache::new(layers)
    }

    /// Next-token logits (batch, len, vocab) from hidden states.
    pub fn lm_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let w = self.lm_head()?;
        let (b, t, h) = hidden.dims3()?;
        Ok(crate::nn::linear_t(&hidden.reshape((b * t, h))?, &w)?.reshape((b, t, w.dim(0)?))?)
    }

    /// `log softmax(scale · logits)[target]` for rows of hidden states (N, H), one target token
    /// each: a tensor (N,) computed without the logits in the autograd graph
    /// ([`crate::nn::lm_logprobs`]). `scale` is 1/temperature.
    pub fn lm_logprobs(&self, rows: &Tensor, targets: &[u32], scale: f64) -> Result<Tensor> {
        crate::nn::lm_logprobs(rows, &self.lm_head()?, targets, scale)
    }

    /// The LM head's weight (vocabulary, hidden): its own or the tied token embeddings.
    fn lm_head(&self) -> Result<Tensor> {
        Ok(match (&self.arch, self.head) {
            (_, Head::Lm) if self.params.contains("lm_head.weight") => {
                self.params.get("lm_head.weight")?
            }
            (Arch::Gpt2(_), Head::Lm) => self.params.get("transformer.wte.weight")?,
            (Arch::Llama(_), Head::Lm) => self.params.get("model.embed_tokens.weight")?,
            _ => {
                return Err(Error::invalid(
                    "model",
                    "head",
                    "an 'lm' head for next-token logits",
                    format!("'{}'", self.head.name()),
                ))
            }
        })
    }

    /// Sequence-level outputs (batch, n) of a scalar or classification head: BERT pools its
    /// [CLS] token through the pooler; decoders take their last real token (as HF's
    /// `*ForSequenceClassification`).
    pub fn head_logits(&self, hidden: &Tensor, x: &Inputs) -> Result<Tensor> {
        if !matches!(self.head, Head::Scalar | Head::Classify(_)) {
            return Err(Error::invalid(
                "model",
                "head",
                "a 'scalar' or 'classify' head",
                format!("'{}'", self.head.name()),
            ));
        }
        let (b, t, h) = hidden.dims3()?;
        match &self.arch {
            Arch::Bert(_) => {
                let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
                let pooled = self
                    .linear(&cls, "bert.pooler.dense", LinearKind::Linear, false)?
                    .tanh()?;
                self.linear(&pooled, "classifier", LinearKind::Linear, false)
            }
            _ => {
                let rows: Vec<u32> = x
                    .last_positions()
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| (i * t + p) as u32)
                    .collect();
                let rows = Tensor::new(rows.as_slice(), &self.device)?;
                let last = hidden.reshape((b * t, h))?.index_select(&rows, 0)?;
                self.linear(&last, "score", LinearKind::Linear, false)
            }
        }
    }

    /// A decoder's scalar head at every position (batch, len): the per-token values of a PPO
    /// value model (TRL applies the `score` layer of an `*ForSequenceClassification` to every
    /// hidden state the same way).
    pub fn token_values(&self, hidden: &Tensor, train: bool) -> Result<Tensor> {
        if self.head != Head::Scalar || matches!(self.arch, Arch::Bert(_)) {
            return Err(Error::invalid(
                "model",
                "value",
                "a decoder (gpt2 or llama) with a 'scalar' head",
                format!("a {} with head '{}'", self.arch.family(), self.head.name()),
            ));
        }
        Ok(self
            .linear(hidden, "score", LinearKind::Linear, train)?
            .squeeze(D::Minus1)?)
    }

    /// Mean of the hidden states over real tokens (sentence-transformers' mean pooling),
    /// (batch, hidden), L2-normalised when `normalize`.
    pub fn mean_pool(&self, hidden: &Tensor, x: &Inputs, normalize: bool) -> Result<Tensor> {
        let total = x.total();
        let mask: Vec<f32> = (0..x.batch)
            .flat_map(|b| {
                x.mask[b * total + x.past..(b + 1) * total]
                    .iter()
                    .map(|&m| m as f32)
            })
            .collect();
        let mask =
            Tensor::from_vec(mask, (x.batch, x.len, 1), &self.device)?.to_dtype(hidden.dtype())?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        if !normalize {
            return Ok(mean);
        }
        let norm = mean
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norm)?)
    }

    /// `x @ W^T + b` for the linear layer `module` (GPT-2's Conv1D: `x @ W + b`), plus the LoRA
    /// update when the module has an adapter.
    pub(crate) fn linear(
        &self,
        x: &Tensor,
        module: &str,
        kind: LinearKind,
        train: bool,
    ) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let n_in = *dims
            .last()
            .expect("a linear layer's input has a feature dimension");
        let rows = x.elem_count() / n_in;
        let x2 = x.reshape((rows, n_in))?;
        let w = self.params.get(&format!("{module}.weight"))?;
        let mut y = match kind {
            LinearKind::Linear => crate::nn::linear_t(&x2, &w)?,
            LinearKind::Conv1D => x2.matmul(&w)?,
        };
        let bias = format!("{module}.bias");
        if self.params.contains(&bias) {
            y = crate::nn::add_bias(&y, &self.params.get(&bias)?)?;
        }
        if let Some(lora) = &self.lora {
            if let Some(delta) = lora.delta(self, &x2, module, train)? {
                y = (y + delta)?;
            }
        }
        let mut out = dims;
        *out.last_mut().expect("non-empty") = y.dim(1)?;
        Ok(y.reshape(out)?)
    }

    /// Tokenizes texts with the tokenizer's special tokens, truncated to `max_len`.
    pub fn encode_batch(
        &self,
        op: &'static str,
        texts: &[String],
        max_len: usize,
    ) -> Result<Vec<Vec<u32>>> {
        let tok = self.require_tokenizer(op)?;
        texts
            .iter()
            .map(|t| {
                let mut ids = tok.encode(t, true)?;
                ids.truncate(max_len);
                if ids.is_empty() {
                    return Err(Error::invalid(
                        op,
                        "texts",
                        "texts that tokenize to at least one token",
                        "an empty text",
                    ));
                }
                Ok(ids)
            })
            .collect()
    }

    /// Sentence embeddings (rows = texts), mean-pooled over real tokens.
    pub fn embed(
        &self,
        texts: &[String],
        normalize: bool,
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>> {
        crate::validate::positive_count("embed", "batch_size", batch_size)?;
        let max = self.arch.max_positions();
        let pad = self.require_tokenizer("embed")?.pad;
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch_size) {
            let ids = self.encode_batch("embed", chunk, max)?;
            let x = Inputs::pad(&ids, pad, Padding::Right)?;
            let h = self.hidden(&x, None, false)?;
            let e = self.mean_pool(&h, &x, normalize)?.to_dtype(DType::F32)?;
            out.extend(e.to_vec2::<f32>()?);
        }
        Ok(out)
    }

    /// The head's outputs for each text (rows = texts): class logits, or the scalar score.
    pub fn predict(&self, texts: &[String], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        crate::validate::positive_count("predict", "batch_size", batch_size)?;
        let max = self.arch.max_positions();
        let pad = self.require_tokenizer("predict")?.pad;
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch_size) {
            let ids = self.encode_batch("predict", chunk, max)?;
            let x = Inputs::pad(&ids, pad, Padding::Right)?;
            let h = self.hidden(&x, None, false)?;
            out.extend(
                self.head_logits(&h, &x)?
                    .to_dtype(DType::F32)?
                    .to_vec2::<f32>()?,
            );
        }
        Ok(out)
    }

    /// Parameter counts: all, trainable.
    pub fn counts(&self) -> (usize, usize) {
        self.params.counts()
    }
}
