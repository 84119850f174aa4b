//! Layers for training whose backward pass exists and is checked against PyTorch.
//!
//! candle-nn's fused kernels (`ops::softmax_last_dim`, `ops::rms_norm`, `ops::layer_norm`,
//! `rotary_emb::rope*`, `ops::sdpa`, and `RmsNorm`/`LayerNorm::forward` on contiguous input)
//! have no backward: gradient flow stops there silently and the parameters behind them never
//! train while the loss still falls (candle issues #2168, #3568, #3569, #3752). Everything here
//! is composed of primitive tensor ops that candle differentiates, except CPU kernels with a
//! hand-written backward (`fused.rs`: softmax, layer/RMS normalisation, GELU and the vocabulary
//! cross-entropy, the hottest element-wise work of a training step, with `fastmath.rs`'s
//! vectorised tanh; `lm_logprobs.rs`: target-token log-probabilities through the LM head
//! without a logits tensor in the graph; `affine.rs`: per-feature bias and scale with one-pass column sums), and
//! `kernel/core/tests/nn_parity.rs` checks outputs and gradients against PyTorch fixtures.

mod affine;
mod fastmath;
mod functional;
mod fused;
mod lm_logprobs;
mod skinny;

pub use affine::{add_bias, scale_shift};
pub use functional::{
    attention, causal_mask, cross_entropy, gelu_tanh, layer_norm, log_softmax_last_dim, rms_norm,
    rope, rotate_half, row_nll, softmax_last_dim,
};
pub use lm_logprobs::lm_logprobs;
pub use skinny::linear_t;
