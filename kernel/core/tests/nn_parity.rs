//! Outputs and gradients of `sandwich_core::nn` against PyTorch.
//!
//! Reference: `tests/parity/make_nn_fixtures.py` (torch, float64, stored as float32). For each
//! layer the loss is `(output * upstream).sum()`; every input and parameter gradient must match
//! to a relative error ‖ours − ref‖ / ‖ref‖ ≤ 1e-4.

mod common;

use std::collections::HashMap;

use candle_core::{Tensor, Var};
use sandwich_core::nn;

const TOL: f64 = 1e-4;

fn fixtures() -> HashMap<String, Tensor> {
    common::fixture("nn")
}

fn rel_err(ours: &Tensor, reference: &Tensor) -> f64 {
    let diff = (ours - reference)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap();
    let norm = reference.sqr().unwrap().sum_all().unwrap();
    let d = diff.to_scalar::<f32>().unwrap() as f64;
    let n = norm.to_scalar::<f32>().unwrap() as f64;
    (d / n.max(1e-30)).sqrt()
}

fn check(name: &str, inputs: &[&str], f: impl Fn(&[Tensor]) -> Tensor) {
    let fx = fixtures();
    let vars: Vec<Var> = inputs
        .iter()
        .map(|i| Var::from_tensor(&fx[&format!("{name}.input.{i}")]).unwrap())
        .collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&tensors);
    let out_err = rel_err(&y, &fx[&format!("{name}.output")]);
    assert!(out_err <= TOL, "{name}: output rel err {out_err:e}");
    let loss = match fx.get(&format!("{name}.upstream")) {
        Some(g) => (&y * g).unwrap().sum_all().unwrap(),
        None => y.sum_all().unwrap(),
    };
    let grads = loss.backward().unwrap();
    for (input, var) in inputs.iter().zip(&vars) {
        let key = format!("{name}.grad.{input}");
        let reference = &fx[&key];
        let ours = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{key}: no gradient reached this input"));
        let err = rel_err(ours, reference);
        assert!(err <= TOL, "{key}: rel err {err:e}");
    }
}

#[test]
fn softmax_matches_torch() {
    check("softmax", &["x"], |t| nn::softmax_last_dim(&t[0]).unwrap());
}

#[test]
fn log_softmax_matches_torch() {
    check("log_softmax", &["x"], |t| {
        nn::log_softmax_last_dim(&t[0]).unwrap()
    });
}

#[test]
fn layer_norm_matches_torch() {
    check("layer_norm", &["x", "w", "b"], |t| {
        nn::layer_norm(&t[0], &t[1], Some(&t[2]), 1e-5).unwrap()
    });
}

#[test]
fn rms_norm_matches_torch() {
    check("rms_norm", &["x", "w"], |t| {
        nn::rms_norm(&t[0], &t[1], 1e-6).unwrap()
    });
}

#[test]
fn rope_matches_torch() {
    let fx = fixtures();
    let (cos, sin) = (fx["rope.cos"].clone(), fx["rope.sin"].clone());
    check("rope", &["x"], move |t| {
        nn::rope(&t[0], &cos, &sin).unwrap()
    });
}

#[test]
fn causal_attention_matches_torch() {
    check("attention", &["q", "k", "v"], |t| {
        let mask = nn::causal_mask(t[0].dim(2).unwrap(), t[0].dtype(), t[0].device()).unwrap();
        nn::attention(&t[0], &t[1], &t[2], Some(&mask)).unwrap()
    });
}

#[test]
fn cross_entropy_with_ignore_index_matches_torch() {
    let targets = fixtures()["cross_entropy.targets"].clone();
    check("cross_entropy", &["logits"], move |t| {
        nn::cross_entropy(&t[0], &targets, Some(-100))
            .unwrap()
            .reshape(1)
            .unwrap()
    });
}
