//! AdamW + clipping + warm-up/cosine schedule against `torch.optim.AdamW`.
//!
//! Reference: `tests/parity/make_optim_fixtures.py` (torch, float64 → stored as float32).

mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor, Var};
use sandwich_core::train::{clip_grad_norm, AdamW, AdamWConfig, Schedule, ScheduleKind};

fn fixtures() -> HashMap<String, Tensor> {
    common::fixture("optim")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn adamw_follows_torch_step_by_step() {
    let fx = fixtures();
    let w = Var::from_tensor(&fx["w.init"]).unwrap();
    let b = Var::from_tensor(&fx["b.init"]).unwrap();
    let config = AdamWConfig {
        lr: 1e-2,
        weight_decay: 0.1,
        ..Default::default()
    };
    // `w` takes weight decay, `b` (a bias) does not: the two parameter groups of the reference.
    let mut opt = AdamW::new(vec![(w.clone(), true), (b.clone(), false)], config).unwrap();
    let schedule = Schedule {
        kind: ScheduleKind::Cosine,
        peak_lr: 1e-2,
        warmup_steps: 2,
        total_steps: 6,
    };
    let lrs: Vec<f32> = fx["lr"].to_vec1().unwrap();
    let norms: Vec<f32> = fx["grad_norm"].to_vec1().unwrap();
    for t in 0..6 {
        // A loss whose gradient is exactly the recorded one: sum(w * gw) + sum(b * gb).
        let loss = ((w.as_tensor() * &fx[&format!("w.grad.{t}")])
            .unwrap()
            .sum_all()
            .unwrap()
            + (b.as_tensor() * &fx[&format!("b.grad.{t}")])
                .unwrap()
                .sum_all()
                .unwrap())
        .unwrap();
        let mut grads = loss.backward().unwrap();
        let norm = clip_grad_norm(&mut grads, &[w.clone(), b.clone()], 1.0).unwrap();
        assert!(
            (norm as f32 - norms[t]).abs() < 1e-5,
            "step {t}: norm {norm} vs {}",
            norms[t]
        );
        let lr = schedule.lr(t);
        assert!(
            (lr as f32 - lrs[t]).abs() < 1e-9,
            "step {t}: lr {lr} vs {}",
            lrs[t]
        );
        opt.set_lr(lr);
        opt.step(&grads).unwrap();
        let dw = max_abs_diff(w.as_tensor(), &fx[&format!("w.after.{t}")]);
        let db = max_abs_diff(b.as_tensor(), &fx[&format!("b.after.{t}")]);
        assert!(dw < 1e-6 && db < 1e-6, "step {t}: |Δw| {dw:e}, |Δb| {db:e}");
    }
    assert_eq!(opt.steps(), 6);
}

#[test]
fn bf16_parameters_keep_f32_master_weights() {
    // An update far below bf16's resolution at 1.0 (2^-8) must accumulate in the master copy
    // instead of vanishing: 100 steps of lr 1e-4 move the master by about 1e-2.
    let p = Var::from_tensor(&Tensor::ones(4, candle_core::DType::BF16, &Device::Cpu).unwrap())
        .unwrap();
    let config = AdamWConfig {
        lr: 1e-4,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut opt = AdamW::new(vec![(p.clone(), true)], config).unwrap();
    for _ in 0..100 {
        let loss = p
            .as_tensor()
            .to_dtype(candle_core::DType::F32)
            .unwrap()
            .sum_all()
            .unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
    }
    let v: Vec<f32> = p
        .as_tensor()
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert!(v.iter().all(|x| (x - 0.99).abs() < 4e-3), "{v:?}");
}

#[test]
fn schedules_match_hf_multipliers() {
    let s = |kind| Schedule {
        kind,
        peak_lr: 1.0,
        warmup_steps: 10,
        total_steps: 110,
    };
    assert_eq!(s(ScheduleKind::Cosine).lr(0), 0.0);
    assert_eq!(s(ScheduleKind::Cosine).lr(5), 0.5);
    assert_eq!(s(ScheduleKind::Cosine).lr(10), 1.0);
    assert!((s(ScheduleKind::Cosine).lr(60) - 0.5).abs() < 1e-12);
    assert!((s(ScheduleKind::Linear).lr(60) - 0.5).abs() < 1e-12);
    assert_eq!(s(ScheduleKind::Linear).lr(110), 0.0);
    assert_eq!(s(ScheduleKind::Constant).lr(100), 1.0);
}
