//! Fused CPU kernels with their own backward, for the hottest composed op of training: the
//! cross-entropy over the vocabulary (a (tokens × 50k) matrix for GPT-2, where the composed
//! log-softmax makes about fifteen passes over hundreds of megabytes per step). Checked against
//! the composed version and PyTorch by the same parity tests.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

pub(super) fn last_dim<'a>(
    op: &str,
    s: &'a CpuStorage,
    l: &Layout,
) -> candle_core::Result<(&'a [f32], usize)> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok((&v[a..b], *l.dims().last().unwrap_or(&1))),
        _ => candle_core::bail!("{op}: expected a contiguous f32 tensor"),
    }
}

fn targets<'a>(op: &str, s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [i64]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::I64(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{op}: expected contiguous i64 targets"),
    }
}

/// Applies `f(row index, output row)` to every row, on rayon's pool when there is enough work.
///
/// Work stays on the calling thread below [`PARALLEL_MIN`] elements: while sampling, each op
/// sees one row per sequence, and handing a few hundred floats to another thread costs more than
/// computing them (this used to spawn threads per call — a fresh 2 MB stack, page-faulted and
/// zeroed, every time: an eighth of a decoding step).
pub(super) fn par_rows(
    n: usize,
    width: usize,
    out: &mut [f32],
    f: impl Fn(usize, &mut [f32]) + Sync,
) {
    use rayon::prelude::*;
    let width = width.max(1);
    if n * width < PARALLEL_MIN {
        for (i, o) in out.chunks_mut(width).enumerate() {
            f(i, o);
        }
        return;
    }
    let per = n.div_ceil(rayon::current_num_threads()).max(1);
    out.par_chunks_mut(per * width)
        .enumerate()
        .for_each(|(chunk_no, chunk)| {
            for (i, o) in chunk.chunks_mut(width).enumerate() {
                f(chunk_no * per + i, o);
            }
        });
}

/// Elements below which a row-wise kernel runs on one thread.
pub(super) const PARALLEL_MIN: usize = 1 << 15;

fn logsumexp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max + row.iter().map(|&v| (v - max).exp()).sum::<f32>().ln()
}

/// Per-row negative log-likelihood `logsumexp(z) − z[t]` (0 where `t == ignore`).
pub(crate) struct RowNll {
    pub ignore: i64,
}

impl CustomOp2 for RowNll {
    fn name(&self) -> &'static str {
        "row-nll"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (z, c) = last_dim(self.name(), s1, l1)?;
        let t = targets(self.name(), s2, l2)?;
        let n = t.len();
        let mut out = vec![0f32; n];
        par_rows(n, 1, &mut out, |i, o| {
            if t[i] != self.ignore {
                let row = &z[i * c..(i + 1) * c];
                o[0] = logsumexp(row) - row[t[i] as usize];
            }
        });
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = logits.apply_op2_no_bwd(
            targets,
            &RowNllGrad {
                ignore: self.ignore,
            },
        )?;
        Ok((Some(g.broadcast_mul(&grad.unsqueeze(1)?)?), None))
    }
}

/// `softmax(z) − onehot(t)` per row (a zero row where `t == ignore`).
struct RowNllGrad {
    ignore: i64,
}

impl CustomOp2 for RowNllGrad {
    fn name(&self) -> &'static str {
        "row-nll-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (z, c) = last_dim(self.name(), s1, l1)?;
        let t = targets(self.name(), s2, l2)?;
        let n = t.len();
        let mut out = vec![0f32; n * c];
        par_rows(n, c, &mut out, |i, o| {
            if t[i] == self.ignore {
                return;
            }
            let row = &z[i * c..(i + 1) * c];
            let lse = logsumexp(row);
            for (o, &v) in o.iter_mut().zip(row) {
                *o = (v - lse).exp();
            }
            o[t[i] as usize] -= 1.0;
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c))))
    }
}

/// Softmax over the last dimension, one pass per row; backward `y ⊙ (g − Σ g⊙y)`.
pub(crate) struct Softmax;

impl candle_core::CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, c) = last_dim(self.name(), s, l)?;
        let n = x.len() / c.max(1);
        let mut out = vec![0f32; x.len()];
        par_rows(n, c, &mut out, |i, o| {
            let row = &x[i * c..(i + 1) * c];
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for (o, &v) in o.iter_mut().zip(row) {
                // exp is exactly 0 below −104 (under f32's smallest subnormal); saying so skips
                // libm's slow underflow path for every masked attention score.
                let z = v - max;
                *o = if z < -104.0 { 0.0 } else { z.exp() };
                sum += *o;
            }
            o.iter_mut().for_each(|v| *v /= sum);
        });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(
            res.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad)?,
        ))
    }
}

struct SoftmaxGrad;

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "softmax-last-dim-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, c) = last_dim(self.name(), s1, l1)?;
        let (g, _) = last_dim(self.name(), s2, l2)?;
        let n = y.len() / c.max(1);
        let mut out = vec![0f32; y.len()];
        par_rows(n, c, &mut out, |i, o| {
            let (yr, gr) = (&y[i * c..(i + 1) * c], &g[i * c..(i + 1) * c]);
            let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
            for ((o, &yv), &gv) in o.iter_mut().zip(yr).zip(gr) {
                *o = yv * (gv - dot);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Row normalisation without the affine part: `(x − mean)/sqrt(var + eps)` (layer norm) or
/// `x / sqrt(mean(x²) + eps)` (RMS norm), one pass per row; the weight and bias are applied
/// outside with ordinary ops so their gradients come from candle.
pub(crate) struct Normalize {
    pub eps: f64,
    pub center: bool,
}

fn row_stats(row: &[f32], center: bool, eps: f64) -> (f32, f32) {
    let n = row.len() as f64;
    let mean = if center {
        row.iter().map(|&v| v as f64).sum::<f64>() / n
    } else {
        0.0
    };
    let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, (1.0 / (var + eps).sqrt()) as f32)
}

impl candle_core::CustomOp1 for Normalize {
    fn name(&self) -> &'static str {
        "normalize-rows"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, c) = last_dim(self.name(), s, l)?;
        let n = x.len() / c.max(1);
        let mut out = vec![0f32; x.len()];
        par_rows(n, c, &mut out, |i, o| {
            let row = &x[i * c..(i + 1) * c];
            let (mean, inv) = row_stats(row, self.center, self.eps);
            for (o, &v) in o.iter_mut().zip(row) {
                *o = (v - mean) * inv;
            }
        });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let op = NormalizeGrad {
            eps: self.eps,
            center: self.center,
        };
        let g = grad.contiguous()?;
        Ok(Some(arg.contiguous()?.apply_op3_no_bwd(res, &g, &op)?))
    }
}

/// dx = inv·(g − [mean(g)] − x̂·mean(g·x̂)), the bracket only when centering.
struct NormalizeGrad {
    eps: f64,
    center: bool,
}

impl candle_core::CustomOp3 for NormalizeGrad {
    fn name(&self) -> &'static str {
        "normalize-rows-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, c) = last_dim(self.name(), s1, l1)?;
        let (xh, _) = last_dim(self.name(), s2, l2)?;
        let (g, _) = last_dim(self.name(), s3, l3)?;
        let n = x.len() / c.max(1);
        let mut out = vec![0f32; x.len()];
        par_rows(n, c, &mut out, |i, o| {
            let r = i * c..(i + 1) * c;
            let (_, inv) = row_stats(&x[r.clone()], self.center, self.eps);
            let (xh, g) = (&xh[r.clone()], &g[r]);
            let cf = c as f32;
            let mean_g = if self.center {
                g.iter().sum::<f32>() / cf
            } else {
                0.0
            };
            let mean_gx = g.iter().zip(xh).map(|(a, b)| a * b).sum::<f32>() / cf;
            for ((o, &gv), &xv) in o.iter_mut().zip(g).zip(xh) {
                *o = inv * (gv - mean_g - xv * mean_gx);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// GELU's tanh approximation (`gelu_new`), `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`, in one pass;
/// its backward in one pass too. Candle's own backward composes two `powf`s, a `tanh` and
/// eight temporaries per element, a fifth of a small GPT-2's training step. The element-wise
/// math is vectorised (`fastmath.rs`).
pub(crate) struct GeluTanh;

/// Elements per chunk of [`par_map`].
const CHUNK: usize = 1 << 14;

/// Applies `f(chunk index, output chunk)` to `x` in chunks of [`CHUNK`] on all cores.
fn par_map(x: &[f32], f: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let chunks = x.len().div_ceil(CHUNK);
    par_rows(chunks, CHUNK, &mut out, f);
    out
}

impl candle_core::CustomOp1 for GeluTanh {
    fn name(&self) -> &'static str {
        "gelu-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, _) = last_dim(self.name(), s, l)?;
        let out = par_map(x, |chunk, o| {
            let start = chunk * CHUNK;
            super::fastmath::gelu_tanh(&x[start..start + o.len()], o);
        });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(
            arg.apply_op2_no_bwd(&grad.contiguous()?, &GeluTanhGrad)?,
        ))
    }
}

struct GeluTanhGrad;

impl CustomOp2 for GeluTanhGrad {
    fn name(&self) -> &'static str {
        "gelu-tanh-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, _) = last_dim(self.name(), s1, l1)?;
        let (g, _) = last_dim(self.name(), s2, l2)?;
        if x.len() != g.len() {
            candle_core::bail!("gelu-tanh-grad: gradient of another shape");
        }
        let out = par_map(x, |chunk, o| {
            let start = chunk * CHUNK;
            let end = start + o.len();
            super::fastmath::gelu_tanh_grad(&x[start..end], &g[start..end], o);
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
