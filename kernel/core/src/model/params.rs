//! The tensors of a model: which ones an architecture needs (names as HF writes them, shapes,
//! initialisation), and the store that holds them as trainable `Var`s.

use std::collections::{BTreeMap, BTreeSet};

use candle_core::{DType, Device, Tensor, Var};

use super::config::Arch;
use super::Head;
use crate::{Error, Result, Rng};

/// How a freshly created tensor is filled (HF's `_init_weights`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Normal(f64),
    Zeros,
    Ones,
}

/// One tensor an architecture expects.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    /// Part of the head (missing from a base checkpoint ⇒ freshly initialised, not an error).
    pub head: bool,
}

const STD: f64 = 0.02;

fn push(out: &mut Vec<Spec>, name: String, shape: &[usize], init: Init) {
    out.push(Spec {
        name,
        shape: shape.to_vec(),
        init,
        head: false,
    });
}

/// Every tensor of `arch` with `head`, in a stable order.
pub fn specs(arch: &Arch, head: Head) -> Result<Vec<Spec>> {
    let mut s = Vec::new();
    let p = arch.prefix();
    match arch {
        Arch::Gpt2(c) => {
            let (h, i) = (c.hidden, c.inner);
            let proj_std = STD / (2.0 * c.layers as f64).sqrt();
            push(
                &mut s,
                format!("{p}wte.weight"),
                &[c.vocab_size, h],
                Init::Normal(STD),
            );
            push(
                &mut s,
                format!("{p}wpe.weight"),
                &[c.n_positions, h],
                Init::Normal(STD),
            );
            for l in 0..c.layers {
                let b = format!("{p}h.{l}.");
                for ln in ["ln_1", "ln_2"] {
                    push(&mut s, format!("{b}{ln}.weight"), &[h], Init::Ones);
                    push(&mut s, format!("{b}{ln}.bias"), &[h], Init::Zeros);
                }
                // GPT-2 stores its projections as Conv1D: weight (in, out).
                let convs = [
                    ("attn.c_attn", h, 3 * h, STD),
                    ("attn.c_proj", h, h, proj_std),
                    ("mlp.c_fc", h, i, STD),
                    ("mlp.c_proj", i, h, proj_std),
                ];
                for (m, fan_in, fan_out, std) in convs {
                    push(
                        &mut s,
                        format!("{b}{m}.weight"),
                        &[fan_in, fan_out],
                        Init::Normal(std),
                    );
                    push(&mut s, format!("{b}{m}.bias"), &[fan_out], Init::Zeros);
                }
            }
            push(&mut s, format!("{p}ln_f.weight"), &[h], Init::Ones);
            push(&mut s, format!("{p}ln_f.bias"), &[h], Init::Zeros);
        }
        Arch::Llama(c) => {
            let (h, d) = (c.hidden, c.head_dim);
            push(
                &mut s,
                format!("{p}embed_tokens.weight"),
                &[c.vocab_size, h],
                Init::Normal(STD),
            );
            for l in 0..c.layers {
                let b = format!("{p}layers.{l}.");
                let linears = [
                    ("self_attn.q_proj", h, c.heads * d, c.qkv_bias),
                    ("self_attn.k_proj", h, c.kv_heads * d, c.qkv_bias),
                    ("self_attn.v_proj", h, c.kv_heads * d, c.qkv_bias),
                    ("self_attn.o_proj", c.heads * d, h, c.o_bias),
                    ("mlp.gate_proj", h, c.intermediate, c.mlp_bias),
                    ("mlp.up_proj", h, c.intermediate, c.mlp_bias),
                    ("mlp.down_proj", c.intermediate, h, c.mlp_bias),
                ];
                for (m, fan_in, fan_out, bias) in linears {
                    push(
                        &mut s,
                        format!("{b}{m}.weight"),
                        &[fan_out, fan_in],
                        Init::Normal(STD),
                    );
                    if bias {
                        push(&mut s, format!("{b}{m}.bias"), &[fan_out], Init::Zeros);
                    }
                }
                for n in ["input_layernorm", "post_attention_layernorm"] {
                    push(&mut s, format!("{b}{n}.weight"), &[h], Init::Ones);
                }
            }
            push(&mut s, format!("{p}norm.weight"), &[h], Init::Ones);
        }
        Arch::Bert(c) => {
            let (h, i) = (c.hidden, c.intermediate);
            let e = format!("{p}embeddings.");
            push(
                &mut s,
                format!("{e}word_embeddings.weight"),
                &[c.vocab_size, h],
                Init::Normal(STD),
            );
            push(
                &mut s,
                format!("{e}position_embeddings.weight"),
                &[c.max_positions, h],
                Init::Normal(STD),
            );
            push(
                &mut s,
                format!("{e}token_type_embeddings.weight"),
                &[c.type_vocab_size, h],
                Init::Normal(STD),
            );
            push(&mut s, format!("{e}LayerNorm.weight"), &[h], Init::Ones);
            push(&mut s, format!("{e}LayerNorm.bias"), &[h], Init::Zeros);
            for l in 0..c.layers {
                let b = format!("{p}encoder.layer.{l}.");
                let linears = [
                    ("attention.self.query", h, h),
                    ("attention.self.key", h, h),
                    ("attention.self.value", h, h),
                    ("attention.output.dense", h, h),
                    ("intermediate.dense", h, i),
                    ("output.dense", i, h),
                ];
                for (m, fan_in, fan_out) in linears {
                    push(
                        &mut s,
                        format!("{b}{m}.weight"),
                        &[fan_out, fan_in],
                        Init::Normal(STD),
                    );
                    push(&mut s, format!("{b}{m}.bias"), &[fan_out], Init::Zeros);
                }
                for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
                    push(&mut s, format!("{b}{n}.weight"), &[h], Init::Ones);
                    push(&mut s, format!("{b}{n}.bias"), &[h], Init::Zeros);
                }
            }
        }
    }
    let start = s.len();
    let hidden = arch.hidden_size();
    match (arch, head) {
        (_, Head::None) => {}
        (Arch::Gpt2(_), Head::Lm) => {} // tied to wte
        (Arch::Llama(c), Head::Lm) => {
            if !c.tie_embeddings {
                push(
                    &mut s,
                    "lm_head.weight".into(),
                    &[c.vocab_size, hidden],
                    Init::Normal(STD),
                );
            }
        }
        (Arch::Bert(_), Head::Lm) => {
            return Err(Error::InvalidArgument {
                op: "model",
                arg: "head",
                expected: "'none', 'scalar' or 'classify' for a BERT encoder".into(),
                got: "'lm'".into(),
            })
        }
        (Arch::Bert(_), Head::Scalar | Head::Classify(_)) => {
            let n = head.outputs();
            push(
                &mut s,
                format!("{p}pooler.dense.weight"),
                &[hidden, hidden],
                Init::Normal(STD),
            );
            push(
                &mut s,
                format!("{p}pooler.dense.bias"),
                &[hidden],
                Init::Zeros,
            );
            push(
                &mut s,
                "classifier.weight".into(),
                &[n, hidden],
                Init::Normal(STD),
            );
            push(&mut s, "classifier.bias".into(), &[n], Init::Zeros);
        }
        (_, Head::Scalar | Head::Classify(_)) => {
            push(
                &mut s,
                "score.weight".into(),
                &[head.outputs(), hidden],
                Init::Normal(STD),
            );
        }
    }
    for spec in &mut s[start..] {
        spec.head = true;
    }
    Ok(s)
}

/// A fresh tensor for `spec`, drawn from `rng` in f32 and cast.
pub fn init_tensor(spec: &Spec, rng: &mut Rng, dtype: DType, device: &Device) -> Result<Tensor> {
    let n: usize = spec.shape.iter().product();
    let data: Vec<f32> = match spec.init {
        Init::Normal(std) => (0..n).map(|_| (rng.normal() * std) as f32).collect(),
        Init::Zeros => vec![0.0; n],
        Init::Ones => vec![1.0; n],
    };
    Ok(Tensor::from_vec(data, spec.shape.as_slice(), device)?.to_dtype(dtype)?)
}

/// Named trainable tensors. Frozen names are handed out detached, so no gradient is computed for
/// them (and the optimizer never sees them).
#[derive(Clone, Default)]
pub struct Params {
    vars: BTreeMap<String, Var>,
    frozen: BTreeSet<String>,
}

impl Params {
    pub fn insert(&mut self, name: String, tensor: Tensor) -> Result<()> {
        self.vars.insert(name, Var::from_tensor(&tensor)?);
        Ok(())
    }

    /// The tensor called `name`, tracked for gradients unless frozen.
    pub fn get(&self, name: &str) -> Result<Tensor> {
        let var = self.vars.get(name).ok_or_else(|| Error::InvalidArgument {
            op: "model",
            arg: "parameters",
            expected: format!("a tensor named '{name}'"),
            got: "none".into(),
        })?;
        Ok(if self.frozen.contains(name) {
            var.as_tensor().detach()
        } else {
            var.as_tensor().clone()
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    pub fn len(&self) -> usize {
        self.vars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// All tensors, by name (frozen ones included).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    /// The tensors the optimizer updates.
    pub fn trainable(&self) -> Vec<(String, Var)> {
        self.vars
            .iter()
            .filter(|(n, _)| !self.frozen.contains(*n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    pub fn freeze_all(&mut self) {
        self.frozen = self.vars.keys().cloned().collect();
    }

    pub fn freeze(&mut self, name: &str) {
        self.frozen.insert(name.to_string());
    }

    pub fn unfreeze_all(&mut self) {
        self.frozen.clear();
    }

    pub fn is_frozen(&self, name: &str) -> bool {
        self.frozen.contains(name)
    }

    pub fn remove(&mut self, name: &str) -> Option<Var> {
        self.frozen.remove(name);
        self.vars.remove(name)
    }

    /// Overwrites the value of an existing tensor in place (shapes and dtypes must agree).
    pub fn set(&self, name: &str, value: &Tensor) -> Result<()> {
        let var = self.vars.get(name).ok_or_else(|| Error::InvalidArgument {
            op: "model",
            arg: "parameters",
            expected: format!("a tensor named '{name}'"),
            got: "none".into(),
        })?;
        var.set(&value.to_dtype(var.dtype())?)?;
        Ok(())
    }

    /// Number of scalars, all and trainable.
    pub fn counts(&self) -> (usize, usize) {
        let mut all = 0;
        let mut trainable = 0;
        for (n, v) in &self.vars {
            all += v.elem_count();
            if !self.frozen.contains(n) {
                trainable += v.elem_count();
            }
        }
        (all, trainable)
    }
}
