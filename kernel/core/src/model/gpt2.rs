//! GPT-2: learned positions, pre-LN blocks, fused QKV stored as Conv1D (weight is (in, out)).

use candle_core::Tensor;

use super::config::Gpt2Config;
use super::inputs::Inputs;
use super::kv_cache::KvCache;
use super::{LinearKind, Model};
use crate::nn::{attention, layer_norm};
use crate::Result;

/// Final hidden states (batch, len, hidden).
pub(super) fn forward(
    m: &Model,
    c: &Gpt2Config,
    x: &Inputs,
    mut cache: Option<&mut KvCache>,
    train: bool,
) -> Result<Tensor> {
    let p = "transformer.";
    let dev = m.device();
    let ln = |h: &Tensor, name: &str| -> Result<Tensor> {
        let w = m.params().get(&format!("{p}{name}.weight"))?;
        let b = m.params().get(&format!("{p}{name}.bias"))?;
        layer_norm(h, &w, Some(&b), c.eps)
    };
    let wte = m.params().get(&format!("{p}wte.weight"))?;
    let wpe = m.params().get(&format!("{p}wpe.weight"))?;
    let ids = x.ids_tensor(dev)?.flatten_all()?;
    let pos = x.positions_tensor(dev)?.flatten_all()?;
    let mut h =
        (wte.embedding(&ids)? + wpe.embedding(&pos)?)?.reshape((x.batch, x.len, c.hidden))?;
    let mask = x.additive_mask(true, m.dtype(), dev)?;
    let (nh, hd) = (c.heads, c.hidden / c.heads);
    let split =
        |t: Tensor| -> Result<Tensor> { Ok(t.reshape((x.batch, x.len, nh, hd))?.transpose(1, 2)?) };
    for l in 0..c.layers {
        let b = format!("{p}h.{l}.");
        let a = ln(&h, &format!("h.{l}.ln_1"))?;
        let qkv = m.linear(&a, &format!("{b}attn.c_attn"), LinearKind::Conv1D, train)?;
        let q = split(qkv.narrow(2, 0, c.hidden)?)?;
        let k = split(qkv.narrow(2, c.hidden, c.hidden)?)?;
        let v = split(qkv.narrow(2, 2 * c.hidden, c.hidden)?)?;
        let y = match cache.as_deref_mut() {
            Some(cache) => cache.attend(l, &q, k.contiguous()?, v.contiguous()?, &mask)?,
            None => attention(&q, &k, &v, Some(&mask))?,
        }
        .transpose(1, 2)?
        .reshape((x.batch, x.len, c.hidden))?;
        h = (h + m.linear(&y, &format!("{b}attn.c_proj"), LinearKind::Conv1D, train)?)?;
        let f = ln(&h, &format!("h.{l}.ln_2"))?;
        let f = m.linear(&f, &format!("{b}mlp.c_fc"), LinearKind::Conv1D, train)?;
        let f = c.act.apply(&f)?;
        h = (h + m.linear(&f, &format!("{b}mlp.c_proj"), LinearKind::Conv1D, train)?)?;
    }
    ln(&h, "ln_f")
}
