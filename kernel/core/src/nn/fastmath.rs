//! Element-wise kernels the compiler can vectorise: GELU (tanh form) and its derivative, and the
//! exponentials of a softmax over the vocabulary (`lm_logprobs.rs`).
//!
//! libm's `tanhf` is a scalar call per element (it goes through `expm1f`); in a small GPT-2's
//! training step it was a fifth of the time, while PyTorch evaluates the same GELU with
//! vectorised (Sleef) math. Here `tanh` is built from a branch-free `exp` — a degree-7
//! polynomial after reduction by ln 2 and a power of two put together from its bits — so the
//! loops below compile to SIMD code, 8 lanes wide when the CPU has AVX2 (checked at run time,
//! like `skinny.rs`). Only plain IEEE operations are used (no fused multiply-add), so the
//! vector and scalar paths give the same bits and results do not depend on the machine.

/// `tanh(x)` with an absolute error below 2·10⁻⁷ (a unit test checks it against `f64::tanh`
/// on a dense grid).
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    tanh_sech2(x).0
}

/// `(tanh(x), 1 − tanh²(x))`. The second is computed as `4e/(1 + e)²` with `e = exp(−2|x|)`
/// rather than from the rounded tanh, so it keeps its relative precision where tanh rounds to
/// ±1 (GELU's derivative needs it there).
#[inline(always)]
fn tanh_sech2(x: f32) -> (f32, f32) {
    let a = x.abs();
    // Clamped where exp(−2|x|) is still a normal f32; a comparison, so NaN stays NaN.
    let a = if a > 40.0 { 40.0 } else { a };
    // Small |x|: the odd Taylor series (its first omitted term is below 10⁻⁹ here), because
    // (1 − e)/(1 + e) loses relative precision to cancellation near 0.
    let a2 = a * a;
    let series = a * (1.0 + a2 * (-1.0 / 3.0 + a2 * (2.0 / 15.0 + a2 * (-17.0 / 315.0))));
    let e = exp_neg(-2.0 * a);
    let ratio = (1.0 - e) / (1.0 + e);
    let small = a < 0.1;
    let t = if small { series } else { ratio };
    let sech2 = if small {
        1.0 - series * series
    } else if a >= 40.0 {
        0.0 // below f32's smallest normal: 4e/(1+e)² of the clamped |x| would not be
    } else {
        4.0 * e / ((1.0 + e) * (1.0 + e))
    };
    (t.copysign(x), sech2)
}

/// `exp(x)` for x in [−80, 0] (what `tanh` needs), without branches or library calls.
#[inline(always)]
fn exp_neg(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for the n that occur here.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer without a rounding
    // instruction (SSE2 has none).
    const ROUND: f32 = 12_582_912.0;
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO; // |r| ≤ ln2/2
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// `exp(x)` for x ≤ 0; below −87 it returns exp(−87) ≈ 1.6·10⁻³⁸ (a normal f32) instead of
/// the exact value, which no sum of probabilities can tell from 0.
#[inline(always)]
fn exp_nonpos(x: f32) -> f32 {
    exp_neg(if x < -87.0 { -87.0 } else { x })
}

/// Lanes of the manual reductions below: eight independent sums let the compiler keep them in
/// one vector register (a single running sum cannot be reordered, so it would stay scalar).
const LANES: usize = 8;

#[inline(always)]
fn max_loop(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    let mut m = tail.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for a in acc {
        m = m.max(a);
    }
    m
}

#[inline(always)]
fn sum_exp_loop(row: &[f32], shift: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += exp_nonpos(c[l] - shift);
        }
    }
    let mut s: f32 = tail.iter().map(|&v| exp_nonpos(v - shift)).sum();
    for a in acc {
        s += a;
    }
    s
}

#[inline(always)]
fn exp_scale_loop(row: &mut [f32], shift: f32, mul: f32) {
    for v in row.iter_mut() {
        *v = exp_nonpos(*v - shift) * mul;
    }
}

#[inline(always)]
fn log_sum_exp_loop(row: &[f32]) -> f32 {
    let m = max_loop(row);
    m + sum_exp_loop(row, m).ln()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn log_sum_exp_avx2(row: &[f32]) -> f32 {
    log_sum_exp_loop(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn exp_scale_avx2(row: &mut [f32], shift: f32, mul: f32) {
    exp_scale_loop(row, shift, mul)
}

/// `log Σ exp(row)` for a row with a finite maximum (NaN propagates).
pub(crate) fn log_sum_exp(row: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { log_sum_exp_avx2(row) };
    }
    log_sum_exp_loop(row)
}

/// `row ← exp(row − shift) · mul`, for `shift` at least the row's maximum (a log-sum-exp).
pub(crate) fn exp_scale(row: &mut [f32], shift: f32, mul: f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { exp_scale_avx2(row, shift, mul) };
    }
    exp_scale_loop(row, shift, mul)
}

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_C: f32 = 0.044_715;

#[inline(always)]
fn gelu_fwd_loop(x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        let t = tanh(SQRT_2_OVER_PI * v * (1.0 + GELU_C * v * v));
        *o = 0.5 * v * (1.0 + t);
    }
}

#[inline(always)]
fn gelu_bwd_loop(x: &[f32], g: &[f32], out: &mut [f32]) {
    for ((o, &v), &gv) in out.iter_mut().zip(x).zip(g) {
        let v2 = v * v;
        let (t, sech2) = tanh_sech2(SQRT_2_OVER_PI * v * (1.0 + GELU_C * v2));
        let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * v2);
        *o = gv * (0.5 * (1.0 + t) + 0.5 * v * sech2 * du);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gelu_fwd_avx2(x: &[f32], out: &mut [f32]) {
    gelu_fwd_loop(x, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gelu_bwd_avx2(x: &[f32], g: &[f32], out: &mut [f32]) {
    gelu_bwd_loop(x, g, out)
}

/// `out = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))`.
pub(crate) fn gelu_tanh(x: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { gelu_fwd_avx2(x, out) };
    }
    gelu_fwd_loop(x, out)
}

/// `out = g · d/dx gelu_tanh(x)`.
pub(crate) fn gelu_tanh_grad(x: &[f32], g: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { gelu_bwd_avx2(x, g, out) };
    }
    gelu_bwd_loop(x, g, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_is_within_2e_7_of_f64_tanh() {
        let mut worst = 0f64;
        for i in -2_000_000..=2_000_000 {
            let x = i as f32 * 1e-5; // [-20, 20]
            let err = (tanh(x) as f64 - (x as f64).tanh()).abs();
            worst = worst.max(err);
        }
        assert!(worst < 2e-7, "worst absolute error {worst}");
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(-30.0), -1.0);
        assert!(tanh(f32::NAN).is_nan());
    }

    #[test]
    fn small_arguments_keep_relative_precision() {
        for &x in &[1e-30f32, 1e-8, 1e-4, 0.05, 0.099, 0.1, 0.2] {
            let rel = ((tanh(x) as f64 - (x as f64).tanh()) / (x as f64).tanh()).abs();
            assert!(rel < 1e-6, "x = {x}: relative error {rel}");
        }
    }

    #[test]
    fn gelu_derivative_tends_to_one_and_zero_for_large_inputs() {
        let x = [1e4f32, 1e9, 1e13, -1e4, -1e9, -1e13];
        let mut d = [0f32; 6];
        gelu_tanh_grad(&x, &[1.0; 6], &mut d);
        assert_eq!(d[..3], [1.0, 1.0, 1.0], "{d:?}");
        assert!(d[3..].iter().all(|&v| v == 0.0), "{d:?}");
    }

    #[test]
    fn vector_and_scalar_paths_agree_bit_for_bit_and_with_libm() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.013).collect();
        let g: Vec<f32> = (0..1000).map(|i| (i as f32).sin()).collect();
        let (mut a, mut b) = (vec![0f32; 1000], vec![0f32; 1000]);
        gelu_tanh(&x, &mut a);
        gelu_fwd_loop(&x, &mut b);
        assert_eq!(a, b);
        for (&v, &y) in x.iter().zip(&b) {
            let want = 0.5 * v * (1.0 + (SQRT_2_OVER_PI * v * (1.0 + GELU_C * v * v)).tanh());
            assert!((y - want).abs() < 1e-6, "x = {v}: {y} vs {want}");
        }
        gelu_tanh_grad(&x, &g, &mut a);
        gelu_bwd_loop(&x, &g, &mut b);
        assert_eq!(a, b);
        for ((&v, &gv), &y) in x.iter().zip(&g).zip(&b) {
            // In f64, where 1 − tanh² does not cancel.
            let (v, gv) = (v as f64, gv as f64);
            let c = 0.797_884_560_802_865_4;
            let t = (c * v * (1.0 + 0.044_715 * v * v)).tanh();
            let du = c * (1.0 + 3.0 * 0.044_715 * v * v);
            let want = gv * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du);
            assert!((y as f64 - want).abs() < 1e-6, "x = {v}: {y} vs {want}");
        }
    }

    #[test]
    fn log_sum_exp_and_exp_scale_match_f64() {
        // Rows of several lengths (tails of the 8-lane loops), wide ranges and a −∞ entry.
        for (len, spread) in [(1usize, 1.0f32), (7, 3.0), (50_257, 30.0), (1000, 200.0)] {
            let mut row: Vec<f32> = (0..len)
                .map(|i| ((i as f32 * 0.618_034).fract() - 0.5) * spread)
                .collect();
            if len > 2 {
                row[1] = f32::NEG_INFINITY;
            }
            let m = row
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, |a, b| a.max(b as f64));
            let want = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
            let got = log_sum_exp(&row);
            assert_eq!(got, log_sum_exp_loop(&row), "vector = scalar");
            assert!(
                (got as f64 - want).abs() < 1e-5 * want.abs().max(1.0),
                "{got} vs {want}"
            );
            let mut p = row.clone();
            exp_scale(&mut p, got, 2.0);
            let mut q = row.clone();
            exp_scale_loop(&mut q, got, 2.0);
            assert_eq!(p, q, "vector = scalar");
            let total: f64 = p.iter().map(|&v| v as f64).sum();
            assert!(
                (total - 2.0).abs() < 1e-5,
                "probabilities ×2 sum to {total}"
            );
            for (&v, &x) in p.iter().zip(&row) {
                // Against the exponential of the same f32 difference: the kernel's own error.
                let want = 2.0 * ((x - got) as f64).exp();
                assert!(
                    (v as f64 - want).abs() <= 1e-6 * want + 1e-37,
                    "{v} vs {want}"
                );
            }
        }
        assert_eq!(log_sum_exp(&[]), f32::NEG_INFINITY);
        assert!(log_sum_exp(&[0.0, f32::NAN]).is_nan());
    }
}
