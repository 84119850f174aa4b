//! Per-feature bias and scale on the CPU, with a backward that sums columns in one pass.
//!
//! `x.broadcast_add(b)` for `x` (rows, C) and `b` (C) backpropagates through candle's generic
//! reduction, which for a sum over the leading dimensions does an integer division and a modulo
//! per element on one thread: a tenth of a small GPT-2's training step went to the biases' and
//! layer norms' gradients. These ops do the same arithmetic (checked against the composed ops
//! and against PyTorch by the parity tests) with a vectorisable column sum. The sum runs over
//! fixed blocks of rows added in order, so its bits do not depend on the number of threads.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use super::fused::last_dim;

/// Rows per block of a column sum: the blocks are summed in parallel, then added in order.
const BLOCK_ROWS: usize = 64;

/// Column sums of `g` (rows × c), or of `g ⊙ x` when `x` is given.
fn column_sums(g: &[f32], x: Option<&[f32]>, c: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let block = BLOCK_ROWS * c;
    let partial = |b: usize| {
        let mut acc = vec![0f32; c];
        let rows = g[b * block..((b + 1) * block).min(g.len())].chunks_exact(c);
        match x {
            None => rows.for_each(|r| acc.iter_mut().zip(r).for_each(|(a, v)| *a += v)),
            Some(x) => {
                let xs = x[b * block..((b + 1) * block).min(x.len())].chunks_exact(c);
                for (r, xr) in rows.zip(xs) {
                    for ((a, v), w) in acc.iter_mut().zip(r).zip(xr) {
                        *a += v * w;
                    }
                }
            }
        }
        acc
    };
    let blocks = g.len().div_ceil(block.max(1));
    let parts: Vec<Vec<f32>> = if g.len() < super::fused::PARALLEL_MIN {
        (0..blocks).map(partial).collect()
    } else {
        (0..blocks).into_par_iter().map(partial).collect()
    };
    let mut out = vec![0f32; c];
    for p in parts {
        out.iter_mut().zip(&p).for_each(|(o, v)| *o += v);
    }
    out
}

/// `x ⊙ w + b` row by row (either part optional), in parallel over rows.
fn scale_shift_rows(x: &[f32], w: Option<&[f32]>, b: Option<&[f32]>, c: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    super::fused::par_rows(x.len() / c.max(1), c, &mut out, |i, o| {
        let row = &x[i * c..(i + 1) * c];
        match (w, b) {
            (Some(w), Some(b)) => {
                for (((o, &v), &w), &b) in o.iter_mut().zip(row).zip(w).zip(b) {
                    *o = v * w + b;
                }
            }
            (Some(w), None) => o
                .iter_mut()
                .zip(row)
                .zip(w)
                .for_each(|((o, v), w)| *o = v * w),
            (None, Some(b)) => o
                .iter_mut()
                .zip(row)
                .zip(b)
                .for_each(|((o, v), b)| *o = v + b),
            (None, None) => o.copy_from_slice(row),
        }
    });
    out
}

fn feature_vector<'a>(
    op: &str,
    s: &'a CpuStorage,
    l: &Layout,
    c: usize,
) -> candle_core::Result<&'a [f32]> {
    let (v, _) = last_dim(op, s, l)?;
    if v.len() != c {
        candle_core::bail!("{op}: expected {c} per-feature values, got {}", v.len());
    }
    Ok(v)
}

/// The column sums of a gradient as a tensor of shape (c), or `None` when `p` needs none.
fn sum_for(p: &Tensor, g: &Tensor, x: Option<&Tensor>) -> candle_core::Result<Option<Tensor>> {
    if !p.track_op() {
        return Ok(None);
    }
    let sum = match x {
        None => g.apply_op1_no_bwd(&ColumnSums)?,
        Some(x) => g.apply_op2_no_bwd(x, &ColumnSums)?,
    };
    Ok(Some(sum.reshape(p.shape())?))
}

/// `x + b` for `x` (…, C) and `b` (C).
pub(crate) struct AddBias;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, c) = last_dim(self.name(), s1, l1)?;
        let b = feature_vector(self.name(), s2, l2, c)?;
        let out = scale_shift_rows(x, None, Some(b), c);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let gb = sum_for(b, &g, None)?;
        Ok((Some(g), gb))
    }
}

/// `x ⊙ w` for `x` (…, C) and `w` (C).
pub(crate) struct Scale;

impl CustomOp2 for Scale {
    fn name(&self) -> &'static str {
        "scale-features"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, c) = last_dim(self.name(), s1, l1)?;
        let w = feature_vector(self.name(), s2, l2, c)?;
        let out = scale_shift_rows(x, Some(w), None, c);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let gx = g.apply_op2_no_bwd(w, &Scale)?;
        let gw = sum_for(w, &g, Some(&x.contiguous()?))?;
        Ok((Some(gx), gw))
    }
}

/// `x ⊙ w + b` for `x` (…, C) and `w`, `b` (C): a layer norm's affine part.
pub(crate) struct ScaleShift;

impl CustomOp3 for ScaleShift {
    fn name(&self) -> &'static str {
        "scale-shift-features"
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
        let w = feature_vector(self.name(), s2, l2, c)?;
        let b = feature_vector(self.name(), s3, l3, c)?;
        let out = scale_shift_rows(x, Some(w), Some(b), c);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let gx = g.apply_op2_no_bwd(w, &Scale)?;
        let gw = sum_for(w, &g, Some(&x.contiguous()?))?;
        let gb = sum_for(b, &g, None)?;
        Ok((Some(gx), gw, gb))
    }
}

/// Column sums of a (…, C) tensor, or of the product of two, as a (C) tensor. No backward.
struct ColumnSums;

impl candle_core::CustomOp1 for ColumnSums {
    fn name(&self) -> &'static str {
        "column-sums"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, c) = last_dim("column-sums", s, l)?;
        Ok((CpuStorage::F32(column_sums(g, None, c)), Shape::from(c)))
    }
}

impl CustomOp2 for ColumnSums {
    fn name(&self) -> &'static str {
        "column-sums-of-product"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let op = "column-sums-of-product";
        let (g, c) = last_dim(op, s1, l1)?;
        let (x, _) = last_dim(op, s2, l2)?;
        if x.len() != g.len() {
            candle_core::bail!("column-sums-of-product: operands of different sizes");
        }
        Ok((CpuStorage::F32(column_sums(g, Some(x), c)), Shape::from(c)))
    }
}

/// Whether the CPU kernels apply: every operand an f32 tensor on the CPU.
fn on_cpu(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.device().is_cpu() && t.dtype() == candle_core::DType::F32)
}

/// `x + b` over the last dimension (`x.broadcast_add(b)` with a faster backward on the CPU).
pub fn add_bias(x: &Tensor, b: &Tensor) -> crate::Result<Tensor> {
    Ok(if on_cpu(&[x, b]) {
        x.contiguous()?.apply_op2(&b.contiguous()?, AddBias)?
    } else {
        x.broadcast_add(b)?
    })
}

/// `x ⊙ w (+ b)` over the last dimension, a normalisation's affine part.
pub fn scale_shift(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> crate::Result<Tensor> {
    let fast = on_cpu(&[x, w]) && b.is_none_or(|b| on_cpu(&[b]));
    Ok(match (fast, b) {
        (true, Some(b)) => {
            x.contiguous()?
                .apply_op3(&w.contiguous()?, &b.contiguous()?, ScaleShift)?
        }
        (true, None) => x.contiguous()?.apply_op2(&w.contiguous()?, Scale)?,
        (false, Some(b)) => x.broadcast_mul(w)?.broadcast_add(b)?,
        (false, None) => x.broadcast_mul(w)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn close(a: &Tensor, b: &Tensor) {
        let d = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-4, "max difference {d}");
    }

    #[test]
    fn ops_and_gradients_match_the_composed_broadcasts() {
        let dev = Device::Cpu;
        // 300 rows: more than one block of rows, and a last block that is partly filled.
        let x = Var::randn(0f32, 1.0, (3, 100, 7), &dev).unwrap();
        let w = Var::randn(0f32, 1.0, 7, &dev).unwrap();
        let b = Var::randn(0f32, 1.0, 7, &dev).unwrap();
        let up = Tensor::randn(0f32, 1.0, (3, 100, 7), &dev).unwrap();
        let grads = |y: Tensor| (y * &up).unwrap().sum_all().unwrap().backward().unwrap();

        let fast = x.apply_op3(&w, &b, ScaleShift).unwrap();
        let slow = x.broadcast_mul(&w).unwrap().broadcast_add(&b).unwrap();
        close(&fast, &slow);
        let (gf, gs) = (grads(fast), grads(slow));
        for v in [&x, &w, &b] {
            close(gf.get(v).unwrap(), gs.get(v).unwrap());
        }

        let (gf, gs) = (
            grads(x.apply_op2(&b, AddBias).unwrap()),
            grads(x.broadcast_add(&b).unwrap()),
        );
        for v in [&x, &b] {
            close(gf.get(v).unwrap(), gs.get(v).unwrap());
        }

        let (gf, gs) = (
            grads(x.apply_op2(&w, Scale).unwrap()),
            grads(x.broadcast_mul(&w).unwrap()),
        );
        for v in [&x, &w] {
            close(gf.get(v).unwrap(), gs.get(v).unwrap());
        }
    }

    #[test]
    fn frozen_parameters_get_no_gradient_and_wrong_sizes_are_errors() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (4, 3), &dev).unwrap();
        let b = Tensor::ones(3, candle_core::DType::F32, &dev).unwrap();
        let g = x
            .apply_op2(&b, AddBias)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(g.get(&b).is_none());
        assert!(g.get(&x).is_some());
        let wrong = Tensor::ones(2, candle_core::DType::F32, &dev).unwrap();
        let err = x.apply_op2(&wrong, AddBias).unwrap_err().to_string();
        assert!(
            err.contains("add-bias: expected 3 per-feature values, got 2"),
            "{err}"
        );
    }

    #[test]
    fn column_sums_do_not_depend_on_the_thread_count() {
        let g: Vec<f32> = (0..200_000)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3)
            .collect();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let a = one.install(|| column_sums(&g, None, 100));
        let b = column_sums(&g, None, 100);
        assert_eq!(a, b);
    }
}
