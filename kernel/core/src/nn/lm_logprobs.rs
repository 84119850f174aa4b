//! `log softmax(scale · h Wᵀ)[t]` for rows `h` and one target token each, without a logits
//! tensor in the autograd graph: the log-probabilities of DPO, the reward of a sequence.
//!
//! Composed, the LM head's logits are a (tokens × vocabulary) matrix — 145 MB for 720 GPT-2
//! tokens — that candle then narrows, reshapes, differentiates through a log-softmax, scales by
//! the upstream gradient and accumulates into a zero-filled buffer: about ten passes over it,
//! each a fresh allocation, a third of a DPO step on two cores. Here, on the CPU in f32, one
//! custom op makes the logits with one matrix product, turns each row into probabilities in
//! place and keeps that buffer for its backward, which overwrites it with the gradient of the
//! logits and finishes with the two products (`dh = dz W`, `dW = dzᵀ h`). Elsewhere (GPU,
//! bf16) the same function composes candle ops. The caller passes only the rows that count
//! (completion tokens), so prompt and padding positions cost nothing in the head.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Shape, Tensor};

use super::fastmath::{exp_scale, log_sum_exp};
use super::fused::last_dim;
use crate::{Error, Result};

/// Multiply-adds below which the products run on the calling thread.
const PARALLEL_MIN: usize = 1 << 18;

/// Log-probability of `targets[i]` under `softmax(scale · hidden[i] · wᵀ)` for each row of
/// `hidden` (N, H) against the head `w` (V, H): a tensor (N,), differentiable in `hidden` and
/// `w`. `scale` is 1/temperature.
pub fn lm_logprobs(hidden: &Tensor, w: &Tensor, targets: &[u32], scale: f64) -> Result<Tensor> {
    const OP: &str = "lm_logprobs";
    let (n, h) = hidden.dims2()?;
    let (v, h2) = w.dims2()?;
    if h != h2 {
        return Err(Error::invalid(
            OP,
            "w",
            format!("{h} columns like hidden"),
            h2,
        ));
    }
    if targets.len() != n {
        return Err(Error::invalid(
            OP,
            "targets",
            format!("{n}, one per row"),
            targets.len(),
        ));
    }
    if let Some(&t) = targets.iter().find(|&&t| t as usize >= v) {
        return Err(Error::invalid(
            OP,
            "targets",
            format!("token ids below {v}"),
            t,
        ));
    }
    if n == 0 {
        return Ok(Tensor::zeros(0, DType::F32, hidden.device())?);
    }
    let fused = hidden.device().is_cpu() && hidden.dtype() == DType::F32 && w.dtype() == DType::F32;
    if fused {
        let op = LmLogprobs {
            targets: targets.to_vec(),
            scale: scale as f32,
            keep: hidden.track_op() || w.track_op(),
            saved: Mutex::new(None),
        };
        return Ok(hidden.contiguous()?.apply_op2(&w.contiguous()?, op)?);
    }
    let logits = (super::linear_t(hidden, w)?.to_dtype(DType::F32)? * scale)?;
    let t: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
    let t = Tensor::from_vec(t, n, hidden.device())?;
    Ok(super::row_nll(&logits, &t, None)?.0.neg()?)
}

struct LmLogprobs {
    targets: Vec<u32>,
    scale: f32,
    /// Whether the forward pass keeps its probabilities for a backward pass.
    keep: bool,
    /// The probabilities (N × V) from the forward pass, taken by the backward pass.
    saved: Mutex<Option<Vec<f32>>>,
}

/// `dst (m × n) = beta · lhs · rhs`, each operand given by its (row, column) strides.
#[allow(clippy::too_many_arguments)]
fn product(
    (m, n, k): (usize, usize, usize),
    dst: &mut Vec<f32>,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    beta: f32,
) {
    assert!(dst.capacity() >= m * n, "product: destination too small");
    assert!(m == 0 || k == 0 || (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len());
    assert!(n == 0 || k == 0 || (k - 1) * rhs_rs + (n - 1) * rhs_cs < rhs.len());
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 && m * n * k >= PARALLEL_MIN {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assertions above keep every read inside `lhs` and `rhs` and every write
    // inside `dst`'s capacity; with `read_dst = false` gemm writes all m × n outputs without
    // reading them, so they are initialised when the length is set.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            beta,
            false,
            false,
            false,
            parallelism,
        );
        dst.set_len(m * n);
    }
}

impl LmLogprobs {
    /// The log-probabilities, and the row-wise probabilities when `keep_probs`.
    fn forward(
        &self,
        hs: &[f32],
        ws: &[f32],
        (n, v, h): (usize, usize, usize),
        keep_probs: bool,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        use rayon::prelude::*;
        let mut z = Vec::with_capacity(n * v);
        // z = scale · hs (n × h) · wsᵀ (h × v); ws is (v × h) row-major.
        product((n, v, h), &mut z, hs, (h, 1), ws, (1, h), self.scale);
        let mut logp = vec![0f32; n];
        let row = |(i, (zr, lp)): (usize, (&mut [f32], &mut f32))| {
            let lse = log_sum_exp(zr);
            *lp = zr[self.targets[i] as usize] - lse;
            if keep_probs {
                exp_scale(zr, lse, 1.0);
            }
        };
        if n * v >= super::fused::PARALLEL_MIN {
            z.par_chunks_mut(v)
                .zip(logp.par_iter_mut())
                .enumerate()
                .for_each(row);
        } else {
            z.chunks_mut(v)
                .zip(logp.iter_mut())
                .enumerate()
                .for_each(row);
        }
        (logp, keep_probs.then_some(z))
    }
}

fn cpu_slice(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    // Only small tensors (the upstream gradient) come through here.
    t.flatten_all()?.to_vec1::<f32>()
}

impl CustomOp2 for LmLogprobs {
    fn name(&self) -> &'static str {
        "lm-logprobs"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, h) = l1.shape().dims2()?;
        let (v, _) = l2.shape().dims2()?;
        let (hs, _) = last_dim(self.name(), s1, l1)?;
        let (ws, _) = last_dim(self.name(), s2, l2)?;
        let (logp, probs) = self.forward(hs, ws, (n, v, h), self.keep);
        if let Some(p) = probs {
            *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        }
        Ok((CpuStorage::F32(logp), Shape::from(n)))
    }

    fn bwd(
        &self,
        hidden: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        use rayon::prelude::*;
        let (n, h) = hidden.dims2()?;
        let (v, _) = w.dims2()?;
        let hs = cpu_slice(hidden)?;
        let g = cpu_slice(grad)?;
        // The head is read in place (it is the size of the vocabulary), under its storage lock.
        let (storage, layout) = w.storage_and_layout();
        let candle_core::Storage::Cpu(ws) = &*storage else {
            candle_core::bail!("lm-logprobs: the head moved off the CPU");
        };
        let (ws, _) = last_dim(self.name(), ws, layout)?;
        let saved = self.saved.lock().unwrap_or_else(|e| e.into_inner()).take();
        // A second backward through the same graph recomputes the probabilities.
        let mut dz = match saved {
            Some(p) => p,
            None => self.forward(&hs, ws, (n, v, h), true).1.unwrap_or_default(),
        };
        // d logp / dz = scale · (onehot(t) − p), times the upstream gradient, in place.
        let scale = self.scale;
        let row = |(i, zr): (usize, &mut [f32])| {
            let c = -g[i] * scale;
            zr.iter_mut().for_each(|x| *x *= c);
            zr[self.targets[i] as usize] += g[i] * scale;
        };
        if n * v >= super::fused::PARALLEL_MIN {
            dz.par_chunks_mut(v).enumerate().for_each(row);
        } else {
            dz.chunks_mut(v).enumerate().for_each(row);
        }
        // dh (n × h) = dz (n × v) · ws (v × h); dw (v × h) = dzᵀ (v × n) · hs (n × h).
        let mut dh = Vec::with_capacity(n * h);
        product((n, h, v), &mut dh, &dz, (v, 1), ws, (h, 1), 1.0);
        let mut dw = Vec::with_capacity(v * h);
        product((v, h, n), &mut dw, &dz, (1, v), &hs, (h, 1), 1.0);
        drop((dz, storage));
        Ok((
            Some(Tensor::from_vec(dh, (n, h), &Device::Cpu)?),
            Some(Tensor::from_vec(dw, (v, h), &Device::Cpu)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    /// The fused op against the composed one (log-softmax of the full logits), values and both
    /// gradients, for a temperature and uneven upstream gradients; twice through one graph.
    #[test]
    fn fused_equals_composed_values_and_gradients() {
        let dev = Device::Cpu;
        let (n, h, v) = (37, 24, 1031);
        let hid = Var::from_tensor(&(Tensor::randn(0f32, 1.0, (n, h), &dev).unwrap())).unwrap();
        let w = Var::from_tensor(&(Tensor::randn(0f32, 0.5, (v, h), &dev).unwrap())).unwrap();
        let targets: Vec<u32> = (0..n as u32).map(|i| (i * 97 + 5) % v as u32).collect();
        let up = Tensor::randn(0f32, 1.0, n, &dev).unwrap();
        let scale = 1.0 / 0.7;
        let fused = super::lm_logprobs(hid.as_tensor(), w.as_tensor(), &targets, scale).unwrap();
        let logits =
            (hid.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap() * scale).unwrap();
        let logp = crate::nn::log_softmax_last_dim(&logits).unwrap();
        let idx = Tensor::from_vec(targets.clone(), (n, 1), &dev).unwrap();
        let composed = logp.gather(&idx, 1).unwrap().squeeze(1).unwrap();
        let close = |a: &Tensor, b: &Tensor, tol: f32, what: &str| {
            let (a, b) = (
                a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}: {x} vs {y}");
            }
        };
        close(&fused, &composed, 1e-5, "log-probabilities");
        let gf = (&fused * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gc = (&composed * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (x, name) in [(&hid, "d hidden"), (&w, "d head")] {
            close(gf.get(x).unwrap(), gc.get(x).unwrap(), 1e-4, name);
        }
        // A second backward through the same graph recomputes what the first one consumed.
        let again = (&fused * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        close(
            again.get(&w).unwrap(),
            gc.get(&w).unwrap(),
            1e-4,
            "second backward",
        );
    }

    #[test]
    fn bad_arguments_are_named_errors() {
        let dev = Device::Cpu;
        let hid = Tensor::zeros((2, 4), candle_core::DType::F32, &dev).unwrap();
        let w = Tensor::zeros((10, 4), candle_core::DType::F32, &dev).unwrap();
        let e = super::lm_logprobs(&hid, &w, &[1], 1.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lm_logprobs") && e.contains("targets"), "{e}");
        let e = super::lm_logprobs(&hid, &w, &[1, 10], 1.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("below 10"), "{e}");
        let w3 = Tensor::zeros((10, 3), candle_core::DType::F32, &dev).unwrap();
        let e = super::lm_logprobs(&hid, &w3, &[1, 2], 1.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 columns"), "{e}");
        let none = super::lm_logprobs(&hid.narrow(0, 0, 0).unwrap(), &w, &[], 1.0).unwrap();
        assert_eq!(none.dims(), &[0]);
    }
}
