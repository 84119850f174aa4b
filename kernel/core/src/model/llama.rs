//! The Llama family: RMSNorm, rotary positions, grouped-query attention, SwiGLU.

use candle_core::{Device, Tensor};

use super::config::{LlamaConfig, RopeScaling};
use super::inputs::Inputs;
use super::kv_cache::{repeat_kv, KvCache};
use super::{LinearKind, Model};
use crate::nn::{attention, rms_norm, rope};
use crate::Result;

/// RoPE inverse frequencies, with HF's scaling rules.
fn inv_freq(c: &LlamaConfig) -> Vec<f64> {
    let d = c.head_dim;
    let base: Vec<f64> = (0..d / 2)
        .map(|i| 1.0 / c.rope_theta.powf((2 * i) as f64 / d as f64))
        .collect();
    match c.rope_scaling {
        RopeScaling::None => base,
        RopeScaling::Linear { factor } => base.iter().map(|f| f / factor).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old,
        } => {
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            base.iter()
                .map(|&f| {
                    let wavelen = std::f64::consts::TAU / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    }
}

/// cos and sin tables (batch, 1, len, head_dim) for the inputs' positions.
fn rope_tables(c: &LlamaConfig, x: &Inputs, m: &Model, dev: &Device) -> Result<(Tensor, Tensor)> {
    let freqs = inv_freq(c);
    let d = c.head_dim;
    let n = x.batch * x.len;
    let mut cos = Vec::with_capacity(n * d);
    let mut sin = Vec::with_capacity(n * d);
    for &p in &x.positions {
        for _ in 0..2 {
            for f in &freqs {
                let a = (p as f64 * f) as f32; // HF: f32 angles
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
    }
    let shape = (x.batch, 1, x.len, d);
    Ok((
        Tensor::from_vec(cos, shape, dev)?.to_dtype(m.dtype())?,
        Tensor::from_vec(sin, shape, dev)?.to_dtype(m.dtype())?,
    ))
}

/// Final hidden states (batch, len, hidden).
pub(super) fn forward(
    m: &Model,
    c: &LlamaConfig,
    x: &Inputs,
    mut cache: Option<&mut KvCache>,
    train: bool,
) -> Result<Tensor> {
    let p = "model.";
    let dev = m.device();
    let norm = |h: &Tensor, name: &str| -> Result<Tensor> {
        rms_norm(h, &m.params().get(&format!("{p}{name}.weight"))?, c.eps)
    };
    let emb = m.params().get(&format!("{p}embed_tokens.weight"))?;
    let ids = x.ids_tensor(dev)?.flatten_all()?;
    let mut h = emb.embedding(&ids)?.reshape((x.batch, x.len, c.hidden))?;
    let mask = x.additive_mask(true, m.dtype(), dev)?;
    let (cos, sin) = rope_tables(c, x, m, dev)?;
    let d = c.head_dim;
    let heads = |t: Tensor, n: usize| -> Result<Tensor> {
        Ok(t.reshape((x.batch, x.len, n, d))?.transpose(1, 2)?)
    };
    for l in 0..c.layers {
        let b = format!("{p}layers.{l}.");
        let a = norm(&h, &format!("layers.{l}.input_layernorm"))?;
        let lin =
            |t: &Tensor, name: &str| m.linear(t, &format!("{b}{name}"), LinearKind::Linear, train);
        let q = heads(lin(&a, "self_attn.q_proj")?, c.heads)?;
        let k = heads(lin(&a, "self_attn.k_proj")?, c.kv_heads)?;
        let v = heads(lin(&a, "self_attn.v_proj")?, c.kv_heads)?;
        let q = rope(&q.contiguous()?, &cos, &sin)?;
        let k = rope(&k.contiguous()?, &cos, &sin)?;
        let v = v.contiguous()?;
        let y = match cache.as_deref_mut() {
            Some(cache) => cache.attend(l, &q, k, v, &mask)?,
            None => {
                let n_rep = c.heads / c.kv_heads;
                attention(
                    &q,
                    &repeat_kv(k, n_rep)?,
                    &repeat_kv(v, n_rep)?,
                    Some(&mask),
                )?
            }
        }
        .transpose(1, 2)?
        .reshape((x.batch, x.len, c.heads * d))?;
        h = (h + lin(&y, "self_attn.o_proj")?)?;
        let f = norm(&h, &format!("layers.{l}.post_attention_layernorm"))?;
        let gate = c.act.apply(&lin(&f, "mlp.gate_proj")?)?;
        let up = lin(&f, "mlp.up_proj")?;
        h = (h + lin(&(gate * up)?, "mlp.down_proj")?)?;
    }
    norm(&h, "norm")
}
