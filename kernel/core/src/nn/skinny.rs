//! `x @ Wᵀ` for a few rows of `x`: the products of sampling, one row per sequence per step.
//!
//! A general matrix product (candle calls the `gemm` crate) packs both operands into blocks
//! before it multiplies; with one to sixteen rows there is nothing to amortise that over, and
//! packing the weight matrix reads and writes it once more than the product needs. Here each
//! output is a dot product of a weight row (contiguous: weights are stored `(out, in)`) with the
//! input rows, so the weights stream through once, which is all a batch-1 decoding step can be
//! (bound by memory bandwidth). Measured in `tests/bench/preference_trl.py`'s sampling rows.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

/// Rows of `x` up to which [`linear_t`] uses the dot-product kernel.
pub(crate) const MAX_ROWS: usize = 16;

/// Multiply-adds below which the product stays on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

/// `x (m, k) @ wᵀ` for `w (n, k)`: the skinny kernel for a contiguous f32 CPU `w` and at most
/// [`MAX_ROWS`] rows, candle's matmul otherwise. Differentiable either way.
pub fn linear_t(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let skinny = x.device().is_cpu()
        && x.dtype() == candle_core::DType::F32
        && w.dtype() == candle_core::DType::F32
        && x.rank() == 2
        && w.rank() == 2
        && x.dim(0)? <= MAX_ROWS
        && w.is_contiguous();
    if skinny {
        x.contiguous()?.apply_op2(w, Skinny)
    } else {
        x.matmul(&w.t()?)
    }
}

struct Skinny;

impl CustomOp2 for Skinny {
    fn name(&self) -> &'static str {
        "skinny-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, k) = l1.shape().dims2()?;
        let (n, k2) = l2.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("skinny-matmul: x has {k} columns but w has {k2}");
        }
        // `fused::last_dim` checks contiguity and dtype; the widths were read above.
        let (x, w) = (
            super::fused::last_dim(self.name(), s1, l1)?.0,
            super::fused::last_dim(self.name(), s2, l2)?.0,
        );
        // Computed transposed, (n, m): each worker owns whole output columns.
        let mut out_t = vec![0f32; n * m];
        let block = block_fn();
        if m * n * k < PARALLEL_MIN || m == 0 {
            block(x, w, m, k, 0..n, &mut out_t);
        } else {
            use rayon::prelude::*;
            let per = n.div_ceil(4 * rayon::current_num_threads()).max(1);
            out_t
                .par_chunks_mut(per * m)
                .enumerate()
                .for_each(|(c, ys)| {
                    let o0 = c * per;
                    block(x, w, m, k, o0..o0 + ys.len() / m, ys);
                });
        }
        if m == 1 {
            return Ok((CpuStorage::F32(out_t), Shape::from((m, n))));
        }
        let mut out = vec![0f32; m * n];
        for (o, col) in out_t.chunks(m.max(1)).enumerate() {
            for (r, &v) in col.iter().enumerate() {
                out[r * n + o] = v;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.matmul(w)?), Some(grad.t()?.matmul(x)?)))
    }
}

/// Computes `out_t[(o − o0) · m + r] = x[r, :] · w[o, :]` for the outputs `o` in `o0..o1`
/// (`x` is `m` rows of `k`, `w` all rows of `k`).
type Block = fn(&[f32], &[f32], usize, usize, std::ops::Range<usize>, &mut [f32]);

fn block_fn() -> Block {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return |x, w, m, k, o, out| {
                // SAFETY: the CPU has AVX-512F (checked just above).
                unsafe { avx512::block(x, w, m, k, o, out) }
            };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return |x, w, m, k, o, out| {
                // SAFETY: the CPU has AVX2 and FMA (checked just above).
                unsafe { avx2::block(x, w, m, k, o, out) }
            };
        }
    }
    block_portable
}

fn block_portable(
    x: &[f32],
    w: &[f32],
    m: usize,
    k: usize,
    outs: std::ops::Range<usize>,
    out: &mut [f32],
) {
    let o0 = outs.start;
    for o in outs {
        let wr = &w[o * k..(o + 1) * k];
        for r in 0..m {
            let row = &x[r * k..(r + 1) * k];
            // Eight independent sums: the compiler vectorises them and the additions don't
            // wait on each other.
            let mut acc = [0f32; 8];
            let mut a = row.chunks_exact(8);
            let mut b = wr.chunks_exact(8);
            for (a, b) in (&mut a).zip(&mut b) {
                for j in 0..8 {
                    acc[j] += a[j] * b[j];
                }
            }
            let tail: f32 = a
                .remainder()
                .iter()
                .zip(b.remainder())
                .map(|(a, b)| a * b)
                .sum();
            out[(o - o0) * m + r] = acc.iter().sum::<f32>() + tail;
        }
    }
}

/// The register-tiled driver, one per instruction set: tiles of `R` input rows × `C` weight
/// rows keep `R·C` vector accumulators in registers, so each loaded vector feeds several
/// multiply-adds (a dot product alone needs two loads per multiply-add and runs at a fraction
/// of the machine's peak once there are several rows).
#[cfg(target_arch = "x86_64")]
macro_rules! tiled {
    ($feature:literal, $lanes:literal, $c:literal, $zero:ident, $load:ident, $fma:ident,
     $sum:ident) => {
        use std::arch::x86_64::*;

        /// One tile; the `k % lanes` tail is added in scalar code.
        #[target_feature(enable = $feature)]
        unsafe fn tile<const R: usize, const C: usize>(
            x: *const f32,
            w: *const f32,
            k: usize,
            m: usize,
            out: *mut f32,
        ) {
            let mut acc = [[$zero(); R]; C];
            let body = k - k % $lanes;
            let mut i = 0;
            while i < body {
                let mut wv = [$zero(); C];
                for (c, v) in wv.iter_mut().enumerate() {
                    *v = $load(w.add(c * k + i));
                }
                for r in 0..R {
                    let xv = $load(x.add(r * k + i));
                    for c in 0..C {
                        acc[c][r] = $fma(xv, wv[c], acc[c][r]);
                    }
                }
                i += $lanes;
            }
            for c in 0..C {
                for r in 0..R {
                    let mut s = $sum(acc[c][r]);
                    for j in body..k {
                        s += *x.add(r * k + j) * *w.add(c * k + j);
                    }
                    *out.add(c * m + r) = s;
                }
            }
        }

        /// # Safety
        /// The CPU must have the module's instruction set; `x` holds `m` rows of `k`, `w` the
        /// rows `outs`, `out` `outs.len() · m` values.
        #[target_feature(enable = $feature)]
        pub(super) unsafe fn block(
            x: &[f32],
            w: &[f32],
            m: usize,
            k: usize,
            outs: std::ops::Range<usize>,
            out: &mut [f32],
        ) {
            assert!(
                x.len() >= m * k && w.len() >= outs.end * k && out.len() >= outs.len() * m,
                "skinny-matmul: operand sizes"
            );
            let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
            let mut o = outs.start;
            while o < outs.end {
                let c = (outs.end - o).min($c);
                let wp = w.as_ptr().add(o * k);
                let dst = op.add((o - outs.start) * m);
                let mut r = 0;
                while r < m {
                    let rows = (m - r).min(4);
                    let (xr, d) = (xp.add(r * k), dst.add(r));
                    match (rows, c == $c) {
                        (4, true) => tile::<4, $c>(xr, wp, k, m, d),
                        (4, false) => {
                            for j in 0..c {
                                tile::<4, 1>(xr, wp.add(j * k), k, m, d.add(j * m));
                            }
                        }
                        (_, true) => {
                            for j in 0..rows {
                                tile::<1, $c>(xr.add(j * k), wp, k, m, d.add(j));
                            }
                        }
                        (_, false) => {
                            for i in 0..rows {
                                for j in 0..c {
                                    tile::<1, 1>(
                                        xr.add(i * k),
                                        wp.add(j * k),
                                        k,
                                        m,
                                        d.add(j * m + i),
                                    );
                                }
                            }
                        }
                    }
                    r += rows;
                }
                o += c;
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    tiled!(
        "avx512f",
        16,
        4,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_fmadd_ps,
        _mm512_reduce_add_ps
    );
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    /// Sum of the eight lanes.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: std::arch::x86_64::__m256) -> f32 {
        use std::arch::x86_64::*;
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    tiled!(
        "avx2,fma",
        8,
        2,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_fmadd_ps,
        hsum
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn close(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn matches_candle_matmul_and_its_gradients_for_every_row_count_and_odd_widths() {
        let dev = Device::Cpu;
        for (m, k, n) in [
            (1, 576, 192),
            (3, 37, 5),
            (4, 8, 1),
            (7, 100, 300),
            (16, 257, 70),
        ] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1., (m, k), &dev).unwrap()).unwrap();
            let w = Var::from_tensor(&Tensor::randn(0f32, 1., (n, k), &dev).unwrap()).unwrap();
            let g = Tensor::randn(0f32, 1., (m, n), &dev).unwrap();
            let ours = linear_t(x.as_tensor(), w.as_tensor()).unwrap();
            let theirs = x.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap();
            assert!(close(&ours, &theirs) < 1e-3, "forward ({m},{k},{n})");
            let go = (&ours * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let gt = (&theirs * &g)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &w] {
                let (a, b) = (go.get(v).unwrap(), gt.get(v).unwrap());
                assert!(close(a, b) < 1e-3, "gradient ({m},{k},{n})");
            }
        }
    }

    #[test]
    fn the_portable_kernel_agrees_with_the_dispatched_one() {
        let (m, k) = (6, 45);
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let w: Vec<f32> = (0..k).map(|i| ((i * 31) % 5) as f32 * 0.5).collect();
        let (mut a, mut b) = (vec![0f32; m], vec![0f32; m]);
        block_portable(&x, &w, m, k, 0..1, &mut a);
        block_fn()(&x, &w, m, k, 0..1, &mut b);
        assert_eq!(a, b, "integer-valued inputs: both sums are exact");
    }
}
