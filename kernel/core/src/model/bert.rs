//! The BERT family encoder: absolute positions, token types, post-LN blocks, padding mask only.

use candle_core::Tensor;

use super::config::BertConfig;
use super::inputs::Inputs;
use super::{LinearKind, Model};
use crate::nn::{attention, layer_norm};
use crate::Result;

/// Final hidden states (batch, len, hidden). Token types are all 0 (single-segment inputs).
pub(super) fn forward(m: &Model, c: &BertConfig, x: &Inputs, train: bool) -> Result<Tensor> {
    let p = "bert.";
    let dev = m.device();
    let ln = |h: &Tensor, name: &str| -> Result<Tensor> {
        let w = m.params().get(&format!("{name}.weight"))?;
        let b = m.params().get(&format!("{name}.bias"))?;
        layer_norm(h, &w, Some(&b), c.eps)
    };
    let e = format!("{p}embeddings.");
    let ids = x.ids_tensor(dev)?.flatten_all()?;
    let pos = x.positions_tensor(dev)?.flatten_all()?;
    let word = m
        .params()
        .get(&format!("{e}word_embeddings.weight"))?
        .embedding(&ids)?;
    let posn = m
        .params()
        .get(&format!("{e}position_embeddings.weight"))?
        .embedding(&pos)?;
    let types = m
        .params()
        .get(&format!("{e}token_type_embeddings.weight"))?
        .narrow(0, 0, 1)?;
    let h = (word + posn)?.broadcast_add(&types)?;
    let mut h = ln(&h, &format!("{e}LayerNorm"))?.reshape((x.batch, x.len, c.hidden))?;
    let mask = x.additive_mask(false, m.dtype(), dev)?;
    let (nh, hd) = (c.heads, c.hidden / c.heads);
    let heads =
        |t: Tensor| -> Result<Tensor> { Ok(t.reshape((x.batch, x.len, nh, hd))?.transpose(1, 2)?) };
    for l in 0..c.layers {
        let b = format!("{p}encoder.layer.{l}.");
        let lin =
            |t: &Tensor, name: &str| m.linear(t, &format!("{b}{name}"), LinearKind::Linear, train);
        let q = heads(lin(&h, "attention.self.query")?)?;
        let k = heads(lin(&h, "attention.self.key")?)?;
        let v = heads(lin(&h, "attention.self.value")?)?;
        let y = attention(&q, &k, &v, Some(&mask))?
            .transpose(1, 2)?
            .reshape((x.batch, x.len, c.hidden))?;
        let a = ln(
            &(lin(&y, "attention.output.dense")? + &h)?,
            &format!("{b}attention.output.LayerNorm"),
        )?;
        let f = c.act.apply(&lin(&a, "intermediate.dense")?)?;
        h = ln(
            &(lin(&f, "output.dense")? + &a)?,
            &format!("{b}output.LayerNorm"),
        )?;
    }
    Ok(h)
}
