//! The auxiliary confidence loss of weak-to-strong training against openai/weak-to-strong's
//! `logconf_loss_fn` in PyTorch (`tests/parity/make_logconf_fixtures.py`): loss and gradient.

use candle_core::{Device, Tensor, Var};
use sandwich_core::train::loss::{logconf_coef, logconf_target, soft_class_loss};
use serde_json::Value;

#[test]
fn logconf_loss_and_gradient_match_the_reference() {
    let path = format!(
        "{}/../../tests/parity/fixtures/logconf.json",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
    );
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (aux, warmup) = (
        fx["aux_coef"].as_f64().unwrap(),
        fx["warmup_frac"].as_f64().unwrap(),
    );
    let rows = |v: &Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
            })
            .collect()
    };
    for case in fx["cases"].as_array().unwrap() {
        let logits = rows(&case["logits"]);
        let labels = rows(&case["labels"]);
        let b = logits.len() / 2;
        let coef = logconf_coef(aux, warmup, case["step_frac"].as_f64().unwrap());
        let x = Var::from_tensor(&Tensor::from_vec(logits.clone(), (b, 2), &Device::Cpu).unwrap())
            .unwrap();
        let probs: Vec<f32> = candle_core::Tensor::flatten_all(
            &sandwich_core::nn::softmax_last_dim(x.as_tensor()).unwrap(),
        )
        .unwrap()
        .to_vec1()
        .unwrap();
        let target = logconf_target(&probs, &labels, 2, coef, None);
        let target = Tensor::from_vec(target, (b, 2), &Device::Cpu).unwrap();
        let loss = soft_class_loss(x.as_tensor(), &target).unwrap();
        let value = loss.to_scalar::<f32>().unwrap() as f64;
        let want = case["loss"].as_f64().unwrap();
        assert!((value - want).abs() < 1e-5, "loss {value} vs {want}");
        let grad = loss
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (g, w) in grad.iter().zip(rows(&case["grad"])) {
            assert!((g - w).abs() < 1e-6, "gradient {g} vs {w}");
        }
    }
}
