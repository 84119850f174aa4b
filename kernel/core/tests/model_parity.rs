//! Whole models against HF transformers: logits, loss and the gradient of every parameter.
//!
//! Reference: `tests/parity/make_model_fixtures.py` saves small random GPT-2, Llama (GQA), Qwen2
//! (tied embeddings, q/k/v biases), BERT and GPT-2 classification models with `save_pretrained`,
//! and their float32 outputs and gradients on a batch whose second row is right-padded. We load
//! the saved directory with `Model::load` and require ‖ours − ref‖ / ‖ref‖ ≤ 1e-4 per tensor.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::Tensor;
use sandwich_core::model::{Head, Inputs, Model, Padding, Placement};
use sandwich_core::train::loss::{class_loss, lm_loss};

const TOL: f64 = 1e-4;

fn dir(case: &str) -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../tests/parity/fixtures/models")
        .join(case)
}

fn rel_err(ours: &Tensor, reference: &Tensor) -> f64 {
    let d = (ours - reference)
        .unwrap()
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
    let n = reference
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
    (d / n.max(1e-30)).sqrt()
}

struct Case {
    model: Model,
    reference: HashMap<String, Tensor>,
    inputs: Inputs,
    mask: Vec<Vec<i64>>,
}

fn load(case: &str) -> Case {
    let model = Model::load(&dir(case), None, &Placement::default()).unwrap();
    let reference = common::fixture(&format!("models/{case}/ref"));
    let ids: Vec<Vec<i64>> = reference["input_ids"].to_vec2().unwrap();
    let mask: Vec<Vec<i64>> = reference["attention_mask"].to_vec2().unwrap();
    let seqs: Vec<Vec<u32>> = ids
        .iter()
        .zip(&mask)
        .map(|(r, m)| {
            r.iter()
                .zip(m)
                .filter(|(_, &m)| m == 1)
                .map(|(&i, _)| i as u32)
                .collect()
        })
        .collect();
    let inputs = Inputs::pad(&seqs, 0, Padding::Right).unwrap();
    Case {
        model,
        reference,
        inputs,
        mask,
    }
}

fn check_grads(case: &str, c: &Case, loss: &Tensor) {
    let grads = loss.backward().unwrap();
    let mut checked = 0;
    for (name, var) in c.model.params().iter() {
        let reference = c
            .reference
            .get(&format!("grad.{name}"))
            .unwrap_or_else(|| panic!("{case}: no reference gradient for {name}"));
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{case}: no gradient for {name}"));
        let ref_norm = reference
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .sqrt();
        if ref_norm < 1e-6 {
            // A gradient that is zero in exact arithmetic (BERT's key bias: adding a constant to
            // every key shifts each query's scores uniformly, which softmax ignores). Both sides
            // are rounding noise; a relative error is meaningless, so require ours to be tiny.
            let ours = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                .sqrt();
            assert!(
                ours < 1e-5,
                "{case}: gradient of {name} should vanish, has norm {ours:.2e}"
            );
        } else {
            let e = rel_err(g, reference);
            assert!(
                e <= TOL,
                "{case}: gradient of {name}: relative error {e:.2e}"
            );
        }
        checked += 1;
    }
    let expected = c
        .reference
        .keys()
        .filter(|k| k.starts_with("grad."))
        .count();
    assert_eq!(
        checked, expected,
        "{case}: every HF parameter has a counterpart"
    );
}

fn lm_case(case: &str) {
    let c = load(case);
    let hidden = c.model.hidden(&c.inputs, None, false).unwrap();
    let logits = c.model.lm_logits(&hidden).unwrap();
    // Logits at padding positions are not defined the same way by both; compare real tokens.
    let reference = &c.reference["logits"];
    for (b, row) in c.mask.iter().enumerate() {
        let n = row.iter().filter(|&&m| m == 1).count();
        let ours = logits.get(b).unwrap().narrow(0, 0, n).unwrap();
        let theirs = reference.get(b).unwrap().narrow(0, 0, n).unwrap();
        let e = rel_err(&ours, &theirs);
        assert!(
            e <= TOL,
            "{case}: logits of row {b}: relative error {e:.2e}"
        );
    }
    let labels: Vec<i64> = c.reference["labels"]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let loss = lm_loss(&logits, &labels).unwrap();
    let e = rel_err(&loss.reshape(1).unwrap(), &c.reference["loss"]);
    assert!(e <= TOL, "{case}: loss relative error {e:.2e}");
    check_grads(case, &c, &loss);
}

fn cls_case(case: &str) {
    let c = load(case);
    assert!(matches!(c.model.head(), Head::Classify(3)));
    let hidden = c.model.hidden(&c.inputs, None, false).unwrap();
    let logits = c.model.head_logits(&hidden, &c.inputs).unwrap();
    let e = rel_err(&logits, &c.reference["logits"]);
    assert!(e <= TOL, "{case}: logits relative error {e:.2e}");
    let labels: Vec<u32> = c.reference["labels"]
        .to_vec1::<i64>()
        .unwrap()
        .iter()
        .map(|&l| l as u32)
        .collect();
    let loss = class_loss(&logits, &labels).unwrap();
    let e = rel_err(&loss.reshape(1).unwrap(), &c.reference["loss"]);
    assert!(e <= TOL, "{case}: loss relative error {e:.2e}");
    check_grads(case, &c, &loss);
}

#[test]
fn gpt2_lm_matches_transformers() {
    lm_case("gpt2_lm");
}

#[test]
fn llama_gqa_lm_matches_transformers() {
    lm_case("llama_lm");
}

#[test]
fn llama3_rope_scaling_tied_smollm_shape_matches_transformers() {
    lm_case("llama3_rope_lm");
}

#[test]
fn qwen2_tied_biased_lm_matches_transformers() {
    lm_case("qwen2_lm");
}

#[test]
fn gpt2_classifier_matches_transformers() {
    cls_case("gpt2_cls");
}

#[test]
fn bert_classifier_matches_transformers() {
    cls_case("bert_cls");
}
