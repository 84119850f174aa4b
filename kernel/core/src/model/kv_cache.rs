//! Keys and values of earlier positions for generation, and attention over them.
//!
//! On the CPU in f32 the cache is a growable buffer per layer, (batch, kv_heads, capacity,
//! head_dim), that each decoding step appends to in place; attention reads it directly, each
//! query head from its key/value group. Concatenating the cache every step, then repeating the
//! key/value heads for grouped-query attention and transposing the keys (the composed path)
//! copied the whole cache three to four times per layer and token: at batch 16 on
//! SmolLM2-135M that and the page faults of the fresh buffers were a third of sampling time.
//! Elsewhere (GPU, bf16) the cache is a pair of tensors concatenated per step.

use candle_core::{DType, Tensor};

use crate::nn::attention;
use crate::{Error, Result};

/// The cache of a model's layers. Detached: a cache serves generation only, and a cached tensor
/// that kept its autograd history would keep every earlier step's activations alive.
#[derive(Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<Entry>>,
}

#[derive(Clone)]
enum Entry {
    Tensors(Tensor, Tensor),
    Buffers(Buffers),
}

impl KvCache {
    pub fn new(layers: usize) -> Self {
        Self {
            layers: vec![None; layers],
        }
    }

    /// Appends this step's keys and values (batch, kv_heads, new, head_dim) to layer `layer`'s
    /// cache and returns the attention of the queries `q` (batch, heads, new, head_dim) over the
    /// whole sequence, under the additive `mask` (batch, 1, new, past + new). Each group of
    /// `heads / kv_heads` query heads shares one key/value head.
    pub fn attend(
        &mut self,
        layer: usize,
        q: &Tensor,
        k: Tensor,
        v: Tensor,
        mask: &Tensor,
    ) -> Result<Tensor> {
        let (k, v) = (k.detach(), v.detach());
        let fast = [q, &k, &v, mask]
            .iter()
            .all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
        let (entry, y) = match self.layers[layer].take() {
            Some(Entry::Buffers(mut b)) if fast => {
                b.push(&k, &v)?;
                let y = if q.dim(2)? > 1 {
                    let (k, v) = b.tensors()?;
                    composed(q, k, v, mask)?
                } else {
                    b.attend(q, mask)?
                };
                (Entry::Buffers(b), y)
            }
            Some(Entry::Buffers(_)) => {
                return Err(shape_error(
                    "KV cache: a CPU f32 cache continued on another device or dtype".into(),
                ));
            }
            None if fast => {
                let mut b = Buffers::new(&k)?;
                b.push(&k, &v)?;
                // A prompt (several queries) is products of matrices, which candle's gemm does
                // faster than per-head dot products; single decoding steps read the buffers.
                let y = if q.dim(2)? > 1 {
                    composed(q, k, v, mask)?
                } else {
                    b.attend(q, mask)?
                };
                (Entry::Buffers(b), y)
            }
            entry => {
                let (k, v) = match entry {
                    Some(Entry::Tensors(pk, pv)) => {
                        (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?)
                    }
                    _ => (k, v),
                };
                let y = composed(q, k.clone(), v.clone(), mask)?;
                (Entry::Tensors(k, v), y)
            }
        };
        self.layers[layer] = Some(entry);
        Ok(y)
    }
}

/// Attention composed of candle ops, the key/value heads repeated for grouped queries.
fn composed(q: &Tensor, k: Tensor, v: Tensor, mask: &Tensor) -> Result<Tensor> {
    let n_rep = q.dim(1)? / k.dim(1)?;
    attention(q, &repeat_kv(k, n_rep)?, &repeat_kv(v, n_rep)?, Some(mask))
}

fn shape_error(message: String) -> Error {
    Error::Tensor(candle_core::Error::Msg(message))
}

/// Repeats each key/value head `n_rep` times along the head dimension (HF's `repeat_kv`).
pub(super) fn repeat_kv(t: Tensor, n_rep: usize) -> Result<Tensor> {
    if n_rep == 1 {
        return Ok(t);
    }
    let (b, h, len, d) = t.dims4()?;
    Ok(t.unsqueeze(2)?
        .broadcast_as((b, h, n_rep, len, d))?
        .reshape((b, h * n_rep, len, d))?)
}

/// One layer's keys and values, (batch, heads, cap, d) each, the first `len` positions filled.
#[derive(Clone)]
struct Buffers {
    k: Vec<f32>,
    v: Vec<f32>,
    batch: usize,
    heads: usize,
    d: usize,
    len: usize,
    cap: usize,
}

/// Work (multiply-adds) below which attention stays on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

impl Buffers {
    fn new(k: &Tensor) -> Result<Self> {
        let (batch, heads, _, d) = k.dims4()?;
        Ok(Self {
            k: Vec::new(),
            v: Vec::new(),
            batch,
            heads,
            d,
            len: 0,
            cap: 0,
        })
    }

    fn push(&mut self, k: &Tensor, v: &Tensor) -> Result<()> {
        let (b, h, new, d) = k.dims4()?;
        if (b, h, d) != (self.batch, self.heads, self.d) || v.dims4()? != (b, h, new, d) {
            return Err(shape_error(format!(
                "KV cache: keys {:?} and values {:?} do not continue a cache of batch {}, {} heads of {}",
                k.dims(),
                v.dims(),
                self.batch,
                self.heads,
                self.d
            )));
        }
        if self.len + new > self.cap {
            self.grow((self.len + new).max(2 * self.cap).max(64));
        }
        let k = k.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let v = v.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let row = new * d;
        for bh in 0..b * h {
            let dst = (bh * self.cap + self.len) * d;
            self.k[dst..dst + row].copy_from_slice(&k[bh * row..(bh + 1) * row]);
            self.v[dst..dst + row].copy_from_slice(&v[bh * row..(bh + 1) * row]);
        }
        self.len += new;
        Ok(())
    }

    /// The filled positions as (batch, heads, len, d) tensors.
    fn tensors(&self) -> Result<(Tensor, Tensor)> {
        let (d, len, cap) = (self.d, self.len, self.cap);
        let filled = |buf: &[f32]| -> Result<Tensor> {
            let mut out = Vec::with_capacity(self.batch * self.heads * len * d);
            for bh in 0..self.batch * self.heads {
                out.extend_from_slice(&buf[bh * cap * d..(bh * cap + len) * d]);
            }
            let dims = (self.batch, self.heads, len, d);
            Ok(Tensor::from_vec(out, dims, &candle_core::Device::Cpu)?)
        };
        Ok((filled(&self.k)?, filled(&self.v)?))
    }

    /// Moves the filled positions into buffers of capacity `cap`.
    fn grow(&mut self, cap: usize) {
        let (d, len) = (self.d, self.len);
        let move_into = |old: &[f32]| {
            let mut new = vec![0f32; self.batch * self.heads * cap * d];
            for bh in 0..self.batch * self.heads {
                new[bh * cap * d..(bh * cap + len) * d]
                    .copy_from_slice(&old[bh * self.cap * d..(bh * self.cap + len) * d]);
            }
            new
        };
        let (k, v) = (move_into(&self.k), move_into(&self.v));
        (self.k, self.v, self.cap) = (k, v, cap);
    }

    /// softmax(q·kᵀ/√d + mask)·v for every query head over its group's cached positions.
    fn attend(&self, q: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, hq, tq, d) = q.dims4()?;
        let mask_dims = mask.dims4()?;
        if b != self.batch
            || d != self.d
            || hq % self.heads != 0
            || mask_dims != (b, 1, tq, self.len)
        {
            return Err(shape_error(format!(
                "KV cache: queries {:?} and mask {:?} against a cache of batch {}, {} heads of {}, {} positions",
                q.dims(),
                mask.dims(),
                self.batch,
                self.heads,
                self.d,
                self.len
            )));
        }
        let q = q.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let mask = mask.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let n_rep = hq / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let (len, cap) = (self.len, self.cap);
        let head = |bh: usize, out: &mut [f32]| {
            let (bi, h) = (bh / hq, bh % hq);
            let kv = (bi * self.heads + h / n_rep) * cap * d;
            let (keys, vals) = (&self.k[kv..kv + len * d], &self.v[kv..kv + len * d]);
            let mut p = vec![0f32; len];
            for t in 0..tq {
                let qr = &q[(bh * tq + t) * d..(bh * tq + t + 1) * d];
                let m = &mask[(bi * tq + t) * len..(bi * tq + t + 1) * len];
                for ((p, kr), &m) in p.iter_mut().zip(keys.chunks_exact(d)).zip(m) {
                    *p = dot(qr, kr) * scale + m;
                }
                let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for p in p.iter_mut() {
                    // exp is exactly 0 below −104 (under f32's smallest subnormal); saying so
                    // skips libm's slow underflow path for every masked position.
                    let z = *p - max;
                    *p = if z < -104.0 { 0.0 } else { z.exp() };
                    sum += *p;
                }
                let o = &mut out[t * d..(t + 1) * d];
                o.fill(0.0);
                for (&w, vr) in p.iter().zip(vals.chunks_exact(d)) {
                    let w = w / sum;
                    o.iter_mut().zip(vr).for_each(|(o, v)| *o += w * v);
                }
            }
        };
        let mut out = vec![0f32; b * hq * tq * d];
        if b * hq * tq * len * d < PARALLEL_MIN {
            out.chunks_mut(tq * d)
                .enumerate()
                .for_each(|(bh, o)| head(bh, o));
        } else {
            use rayon::prelude::*;
            out.par_chunks_mut(tq * d)
                .enumerate()
                .for_each(|(bh, o)| head(bh, o));
        }
        Ok(Tensor::from_vec(
            out,
            (b, hq, tq, d),
            &candle_core::Device::Cpu,
        )?)
    }
}

/// A dot product with eight independent sums, which the compiler vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The buffered path against the composed one (cat, repeat_kv, attention), over a prompt
    /// with left padding and then single decoding steps, with grouped-query attention.
    #[test]
    fn buffered_attention_matches_the_composed_path() {
        use crate::model::{Inputs, Padding};
        let dev = Device::Cpu;
        let (heads, kv, d) = (6, 2, 8);
        let prompts = vec![vec![1u32, 2, 3, 4, 5], vec![7u32, 8]];
        let mut x = Inputs::pad(&prompts, 0, Padding::Left).unwrap();
        let mut mask = x.mask.clone();
        let (mut fast, mut slow) = (KvCache::new(1), KvCache::new(1));
        for step in 0..70 {
            let b = x.batch;
            let q = Tensor::randn(0f32, 1.0, (b, heads, x.len, d), &dev).unwrap();
            let k = Tensor::randn(0f32, 1.0, (b, kv, x.len, d), &dev).unwrap();
            let v = Tensor::randn(0f32, 1.0, (b, kv, x.len, d), &dev).unwrap();
            let m = x.additive_mask(true, DType::F32, &dev).unwrap();
            let a = fast.attend(0, &q, k.clone(), v.clone(), &m).unwrap();
            // The composed path, forced by a cache that already holds tensors.
            if step == 0 {
                slow.layers[0] = Some(Entry::Tensors(
                    Tensor::zeros((b, kv, 0, d), DType::F32, &dev).unwrap(),
                    Tensor::zeros((b, kv, 0, d), DType::F32, &dev).unwrap(),
                ));
            }
            let y = slow.attend(0, &q, k, v, &m).unwrap();
            let diff = (a - y)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-5, "step {step}: {diff}");
            let past = x.total();
            let mut grown = Vec::new();
            for r in 0..b {
                grown.extend_from_slice(&mask[r * past..(r + 1) * past]);
                grown.push(1);
            }
            mask = grown;
            x = Inputs::step(vec![9; b], mask.clone(), past);
            if step == 40 {
                // Two new positions at once on a filled cache: the composed path over the
                // buffers' contents.
                let total = past + 1;
                let mut two = Vec::new();
                for r in 0..b {
                    two.extend_from_slice(&mask[r * total..(r + 1) * total]);
                    two.push(1);
                }
                mask = two;
                x = Inputs {
                    batch: b,
                    len: 2,
                    past,
                    ids: vec![9; 2 * b],
                    mask: mask.clone(),
                    positions: vec![0; 2 * b],
                };
            }
        }
    }
}
