//! Reward-model over-optimisation (Gao, Schulman & Hilton 2022, "Scaling laws for reward model
//! overoptimization"): how the gold reward of a policy rises and falls as it is optimised harder
//! against a proxy, measured by the distance d = √KL from where it started.

mod fit;
mod sweep;
pub mod task;

pub use fit::{fit_gao, GaoFit, GaoForm};
pub use sweep::{best_of_n_curve, best_of_n_expectation, best_of_n_sweep, best_of_n_weights};
