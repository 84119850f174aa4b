//! Differentiable building blocks, each written with ops that have a backward in candle.

use candle_core::{DType, Device, Tensor, D};

use crate::Result;

/// `softmax` over the last dimension. On the CPU in f32 one fused pass per row with its own
/// backward (`fused.rs`); elsewhere composed, the max subtracted for stability and detached
/// (the result does not depend on the shift, so the gradient is exact).
/// GELU's tanh approximation (HF's `gelu_new`), fused on the CPU in f32.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        return Ok(x.contiguous()?.apply_op1(super::fused::GeluTanh)?);
    }
    Ok(x.gelu()?)
}

pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        return Ok(x.contiguous()?.apply_op1(super::fused::Softmax)?);
    }
    composed_softmax_last_dim(x)
}

fn composed_softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?;
    let e = shifted.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// `log_softmax` over the last dimension (log-sum-exp with a detached max).
pub fn log_softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(shifted.broadcast_sub(&lse)?)
}

/// Layer normalisation over the last dimension, as `torch.nn.LayerNorm` (biased variance).
/// On the CPU in f32 the normalisation is one fused pass with its own backward.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, eps: f64) -> Result<Tensor> {
    let normed = if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.contiguous()?
            .apply_op1(super::fused::Normalize { eps, center: true })?
    } else {
        let centered = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?; // (..., C)
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?; // (..., 1)
        centered.broadcast_div(&(var + eps)?.sqrt()?)?
    };
    super::scale_shift(&normed, weight, bias)
}

/// RMS normalisation over the last dimension, as Llama's `LlamaRMSNorm`. On the CPU in f32 the
/// normalisation is one fused pass with its own backward.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        let normed = x
            .contiguous()?
            .apply_op1(super::fused::Normalize { eps, center: false })?;
        return super::scale_shift(&normed, weight, None);
    }
    let rms = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?; // (..., 1)
    Ok(x.broadcast_div(&rms)?.broadcast_mul(weight)?)
}

/// `cat(-x2, x1)` over the halves of the last dimension (HF's `rotate_half`).
pub fn rotate_half(x: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    Ok(Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?)
}

/// Rotary position embedding in HF's layout: `x` is (B, H, T, D), `cos`/`sin` are (T, D).
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    Ok((x.broadcast_mul(cos)? + rotate_half(x)?.broadcast_mul(sin)?)?)
}

/// An additive causal mask (T, T): 0 on and below the diagonal, -inf above.
pub fn causal_mask(t: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(mask, (t, t), device)?.to_dtype(dtype)?)
}

/// Scaled dot-product attention: q (B, H, Tq, D), k and v (B, H, Tk, D), an additive mask
/// broadcastable to (B, H, Tq, Tk).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let scale = 1.0 / (q.dim(D::Minus1)? as f64).sqrt();
    let scores = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? * scale)?; // (B, H, Tq, Tk)
    let scores = match mask {
        Some(m) => scores.broadcast_add(m)?,
        None => scores,
    };
    let probs = softmax_last_dim(&scores)?;
    Ok(probs.matmul(&v.contiguous()?)?) // (B, H, Tq, D)
}

/// Mean cross-entropy of logits (N, C) against class indices (N,), skipping targets equal to
/// `ignore_index` (as `torch.nn.functional.cross_entropy`). On the CPU in f32 this is one fused
/// pass per row with its own backward (`fused.rs`); elsewhere it is composed of primitives.
pub fn cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    ignore_index: Option<i64>,
) -> Result<Tensor> {
    let (per_row, count) = row_nll(logits, targets, ignore_index)?;
    Ok((per_row.sum_all()? / count.max(1) as f64)?)
}

/// The negative log-likelihood of each row's target, `logsumexp(z) − z[t]` (N,), 0 where the
/// target is `ignore_index`, and the number of rows counted: what a sequence's log-probability
/// (DPO, PPO) sums, with the same fused CPU kernel as [`cross_entropy`].
pub fn row_nll(
    logits: &Tensor,
    targets: &Tensor,
    ignore_index: Option<i64>,
) -> Result<(Tensor, usize)> {
    let targets = targets.to_dtype(DType::I64)?;
    let c = logits.dim(1)? as i64;
    let host: Vec<i64> = targets.to_vec1()?;
    let ignore = ignore_index.unwrap_or(i64::MIN);
    if let Some(bad) = host.iter().find(|&&t| t != ignore && !(0..c).contains(&t)) {
        return Err(crate::Error::invalid(
            "cross_entropy",
            "targets",
            format!("class indices in 0..{c}"),
            bad,
        ));
    }
    let count = host.iter().filter(|&&t| t != ignore).count();
    if logits.device().is_cpu() && logits.dtype() == DType::F32 {
        let per_row = logits
            .contiguous()?
            .apply_op2(&targets, super::fused::RowNll { ignore })?;
        return Ok((per_row, count));
    }
    let logp = log_softmax_last_dim(logits)?; // (N, C)
    let keep = match ignore_index {
        Some(ix) => targets.ne(ix)?,
        None => targets.ones_like()?.to_dtype(DType::U8)?,
    };
    // Ignored positions gather class 0, then are zeroed by the mask.
    let safe = keep.where_cond(&targets, &targets.zeros_like()?)?;
    let picked = logp
        .gather(&safe.unsqueeze(1)?.to_dtype(DType::U32)?, 1)?
        .squeeze(1)?; // (N,)
    let keep_f = keep.to_dtype(logits.dtype())?;
    Ok(((picked * &keep_f)?.neg()?, count))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    /// The fused CPU kernel (f32) and the composed path (used on GPUs; f64 takes it on the
    /// CPU) give the same loss and the same gradient.
    #[test]
    fn fused_and_composed_cross_entropy_agree() {
        let z: Vec<f32> = (0..5 * 7)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0)
            .collect();
        let t = Tensor::new(&[3i64, -100, 0, 6, 2], &Device::Cpu).unwrap();
        let run = |dtype| {
            let v = Var::from_tensor(
                &Tensor::from_vec(z.clone(), (5, 7), &Device::Cpu)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap(),
            )
            .unwrap();
            let loss = super::cross_entropy(v.as_tensor(), &t, Some(-100)).unwrap();
            let g = loss.backward().unwrap();
            let grad: Vec<f64> = g
                .get(v.as_tensor())
                .unwrap()
                .to_dtype(candle_core::DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            (
                loss.to_dtype(candle_core::DType::F64)
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap(),
                grad,
            )
        };
        let (fused, gf) = run(candle_core::DType::F32);
        let (composed, gc) = run(candle_core::DType::F64);
        assert!((fused - composed).abs() < 1e-6, "{fused} vs {composed}");
        for (a, b) in gf.iter().zip(&gc) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert!(
            gf[7..14].iter().all(|&g| g == 0.0),
            "the ignored row gets no gradient"
        );
    }

    /// The fused GELU (f32, CPU) against candle's composed `gelu` and its backward in f64,
    /// over more than one parallel chunk and a non-contiguous input.
    #[test]
    fn fused_and_composed_gelu_agree() {
        let n = 40_000;
        let x: Vec<f64> = (0..n)
            .map(|i| ((i * 7919 % 2001) as f64 - 1000.0) / 150.0)
            .collect();
        let up: Vec<f64> = (0..n).map(|i| ((i % 9) as f64 - 4.0) / 3.0).collect();
        let run = |dtype| {
            let v = Var::from_tensor(
                &Tensor::from_vec(x.clone(), (n / 8, 8), &Device::Cpu)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap(),
            )
            .unwrap();
            let xt = v.as_tensor().t().unwrap();
            let y = if dtype == candle_core::DType::F32 {
                super::gelu_tanh(&xt).unwrap()
            } else {
                xt.gelu().unwrap()
            };
            let u = Tensor::from_vec(up.clone(), (8, n / 8), &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let g = (y.clone() * u)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let flat = |t: &Tensor| -> Vec<f64> {
                t.to_dtype(candle_core::DType::F64)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap()
            };
            (flat(&y), flat(g.get(v.as_tensor()).unwrap()))
        };
        let (yf, gf) = run(candle_core::DType::F32);
        let (yc, gc) = run(candle_core::DType::F64);
        for (a, b) in yf.iter().zip(&yc).chain(gf.iter().zip(&gc)) {
            assert!((a - b).abs() < 2e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn fused_and_composed_softmax_agree() {
        let x: Vec<f32> = (0..4 * 6)
            .map(|i| ((i * 13 % 7) as f32 - 3.0) / 2.0)
            .collect();
        let up: Vec<f32> = (0..24).map(|i| (i % 5) as f32 - 2.0).collect();
        let up = Tensor::from_vec(up, (4, 6), &Device::Cpu).unwrap();
        let run = |fused: bool| {
            let v = Var::from_tensor(&Tensor::from_vec(x.clone(), (4, 6), &Device::Cpu).unwrap())
                .unwrap();
            let y = if fused {
                super::softmax_last_dim(v.as_tensor())
            } else {
                super::composed_softmax_last_dim(v.as_tensor())
            }
            .unwrap();
            let g = (y.clone() * &up)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
            let g: Vec<f32> = g
                .get(v.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            (y, g)
        };
        let ((y1, g1), (y2, g2)) = (run(true), run(false));
        for (a, b) in y1.iter().zip(&y2).chain(g1.iter().zip(&g2)) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    /// The fused CPU norms (f32) and the composed ones (other devices; f64 on the CPU) agree in
    /// value and in the input's and weight's gradients.
    #[test]
    fn fused_and_composed_norms_agree() {
        use candle_core::DType;
        let x: Vec<f32> = (0..3 * 8)
            .map(|i| ((i * 29 % 13) as f32 - 6.0) / 4.0)
            .collect();
        let w: Vec<f32> = (0..8).map(|i| 0.5 + i as f32 / 8.0).collect();
        for rms in [false, true] {
            let run = |dtype: DType| {
                let xv = Var::from_tensor(
                    &Tensor::from_vec(x.clone(), (3, 8), &Device::Cpu)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap(),
                )
                .unwrap();
                let wv = Var::from_tensor(
                    &Tensor::from_vec(w.clone(), 8, &Device::Cpu)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap(),
                )
                .unwrap();
                let y = if rms {
                    super::rms_norm(xv.as_tensor(), wv.as_tensor(), 1e-5)
                } else {
                    super::layer_norm(xv.as_tensor(), wv.as_tensor(), None, 1e-5)
                }
                .unwrap();
                let up = Tensor::arange(0f32, 24., &Device::Cpu)
                    .unwrap()
                    .reshape((3, 8))
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap();
                let g = (y.clone() * up)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let v = |t: &Tensor| -> Vec<f64> {
                    t.to_dtype(DType::F64)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1()
                        .unwrap()
                };
                (
                    v(&y),
                    v(g.get(xv.as_tensor()).unwrap()),
                    v(g.get(wv.as_tensor()).unwrap()),
                )
            };
            let (a, b) = (run(DType::F32), run(DType::F64));
            for (p, q) in
                a.0.iter()
                    .zip(&b.0)
                    .chain(a.1.iter().zip(&b.1))
                    .chain(a.2.iter().zip(&b.2))
            {
                assert!((p - q).abs() < 1e-4, "rms = {rms}: {p} vs {q}");
            }
        }
    }
}
