//! The preference-learning formulas (Bradley-Terry, DPO/IPO/hinge, KL estimators, PPO's policy
//! and value losses, GAE, whitening, RLOO/GRPO advantages, the adaptive KL controller) and the
//! gradients of the differentiable ones, against TRL's formulas evaluated with PyTorch.
//!
//! Reference: `tests/parity/make_preference_fixtures.py` (float64; inputs float32).

mod common;

use std::collections::HashMap;

use candle_core::{DType, Tensor, Var};
use sandwich_core::train::pref_loss::{
    bradley_terry_loss, dpo_loss, gae, grpo_advantages, kl_estimate, ppo_policy_loss,
    ppo_value_loss, rloo_advantages, whiten, DpoLoss, KlController, KlEstimator,
};

fn fx() -> HashMap<String, Tensor> {
    common::fixture("preference")
}

fn v64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn var(fx: &HashMap<String, Tensor>, name: &str) -> Var {
    Var::from_tensor(&fx[name].to_dtype(DType::F32).unwrap()).unwrap()
}

fn f32t(fx: &HashMap<String, Tensor>, name: &str) -> Tensor {
    fx[name].to_dtype(DType::F32).unwrap()
}

#[track_caller]
fn close(ours: &[f64], theirs: &[f64], tol: f64, what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let err = (a - b).abs() / b.abs().max(1.0);
        assert!(
            err <= tol,
            "{what}[{i}]: ours {a}, torch {b} (rel. error {err:.2e})"
        );
    }
}

fn scalar(t: &Tensor) -> f64 {
    v64(t)[0]
}

#[test]
fn bradley_terry_loss_and_gradients() {
    let fx = fx();
    for (case, margin, target) in [
        ("plain", None, None),
        (
            "full",
            Some(f32t(&fx, "bt.margin")),
            Some(f32t(&fx, "bt.target")),
        ),
    ] {
        let (c, r) = (var(&fx, "bt.rc"), var(&fx, "bt.rr"));
        let loss = bradley_terry_loss(&c, &r, margin.as_ref(), target.as_ref()).unwrap();
        close(
            &[scalar(&loss)],
            &v64(&fx[&format!("bt.{case}.loss")]),
            1e-6,
            case,
        );
        let g = loss.backward().unwrap();
        close(
            &v64(g.get(&c).unwrap()),
            &v64(&fx[&format!("bt.{case}.grad_rc")]),
            1e-5,
            case,
        );
        close(
            &v64(g.get(&r).unwrap()),
            &v64(&fx[&format!("bt.{case}.grad_rr")]),
            1e-5,
            case,
        );
    }
}

#[test]
fn dpo_losses_rewards_and_gradients() {
    let fx = fx();
    for (case, kind, beta, ls) in [
        ("sigmoid", DpoLoss::Sigmoid, 0.1, 0.0),
        ("sigmoid_ls", DpoLoss::Sigmoid, 0.1, 0.1),
        ("ipo", DpoLoss::Ipo, 0.5, 0.0),
        ("hinge", DpoLoss::Hinge, 0.1, 0.0),
    ] {
        let (pc, pr) = (var(&fx, "dpo.pc"), var(&fx, "dpo.pr"));
        let out = dpo_loss(
            &pc,
            &pr,
            &f32t(&fx, "dpo.rc"),
            &f32t(&fx, "dpo.rr"),
            beta,
            kind,
            ls,
        )
        .unwrap();
        let key = |k: &str| v64(&fx[&format!("dpo.{case}.{k}")]);
        close(&[scalar(&out.loss)], &key("loss"), 1e-5, case);
        let ours: Vec<f64> = out.chosen_rewards.iter().map(|&v| v as f64).collect();
        close(&ours, &key("chosen_rewards"), 1e-5, case);
        let ours: Vec<f64> = out.rejected_rewards.iter().map(|&v| v as f64).collect();
        close(&ours, &key("rejected_rewards"), 1e-5, case);
        let g = out.loss.backward().unwrap();
        close(&v64(g.get(&pc).unwrap()), &key("grad_pc"), 1e-4, case);
        close(&v64(g.get(&pr).unwrap()), &key("grad_pr"), 1e-4, case);
    }
}

#[test]
fn kl_estimators_and_the_k3_gradient() {
    let fx = fx();
    let logp = var(&fx, "kl.logp");
    let r = f32t(&fx, "kl.ref");
    let k1 = kl_estimate(&logp, &r, KlEstimator::K1).unwrap();
    close(&v64(&k1), &v64(&fx["kl.k1"]), 1e-5, "k1");
    let k3 = kl_estimate(&logp, &r, KlEstimator::K3).unwrap();
    close(&v64(&k3), &v64(&fx["kl.k3"]), 1e-5, "k3");
    assert!(v64(&k3).iter().all(|&v| v >= 0.0), "k3 is never negative");
    let g = k3.mean_all().unwrap().backward().unwrap();
    close(
        &v64(g.get(&logp).unwrap()),
        &v64(&fx["kl.k3_mean_grad"]),
        1e-4,
        "k3 grad",
    );
}

#[test]
fn ppo_policy_and_value_losses() {
    let fx = fx();
    let mask = f32t(&fx, "ppo.mask");
    let new = var(&fx, "ppo.new");
    let p = ppo_policy_loss(
        &new,
        &f32t(&fx, "ppo.old"),
        &f32t(&fx, "ppo.adv"),
        &mask,
        0.2,
    )
    .unwrap();
    close(
        &[scalar(&p.loss)],
        &v64(&fx["ppo.policy.loss"]),
        1e-5,
        "policy loss",
    );
    close(
        &[p.clipfrac],
        &v64(&fx["ppo.policy.clipfrac"]),
        1e-6,
        "clipfrac",
    );
    close(
        &[p.approxkl],
        &v64(&fx["ppo.policy.approxkl"]),
        1e-5,
        "approxkl",
    );
    close(&[p.ratio], &v64(&fx["ppo.policy.ratio"]), 1e-5, "ratio");
    let g = p.loss.backward().unwrap();
    close(
        &v64(g.get(&new).unwrap()),
        &v64(&fx["ppo.policy.grad"]),
        1e-4,
        "policy grad",
    );

    let v = var(&fx, "ppo.vpred");
    let (loss, frac) = ppo_value_loss(
        &v,
        &f32t(&fx, "ppo.vold"),
        &f32t(&fx, "ppo.ret"),
        &mask,
        0.2,
    )
    .unwrap();
    close(
        &[scalar(&loss)],
        &v64(&fx["ppo.value.loss"]),
        1e-5,
        "value loss",
    );
    close(
        &[frac],
        &v64(&fx["ppo.value.clipfrac"]),
        1e-6,
        "value clipfrac",
    );
    let g = loss.backward().unwrap();
    close(
        &v64(g.get(&v).unwrap()),
        &v64(&fx["ppo.value.grad"]),
        1e-4,
        "value grad",
    );
}

#[test]
fn gae_whitening_and_group_advantages() {
    let fx = fx();
    let (adv, ret) = gae(&v64(&fx["gae.rewards"]), &v64(&fx["gae.values"]), 1.0, 0.95);
    close(&adv, &v64(&fx["gae.advantages"]), 1e-9, "gae advantages");
    close(&ret, &v64(&fx["gae.returns"]), 1e-9, "gae returns");
    for (shift, key) in [(true, "whiten.shifted"), (false, "whiten.unshifted")] {
        let mut x = v64(&fx["whiten.x"]);
        whiten(&mut x, shift);
        close(&x, &v64(&fx[key]), 1e-9, key);
    }
    let r = v64(&fx["group.rewards"]);
    close(
        &rloo_advantages(&r, 4).unwrap(),
        &v64(&fx["group.rloo"]),
        1e-9,
        "rloo",
    );
    close(
        &grpo_advantages(&r, 4, true).unwrap(),
        &v64(&fx["group.grpo"]),
        1e-9,
        "grpo",
    );
}

#[test]
fn adaptive_kl_controller_follows_its_formula() {
    let fx = fx();
    let mut k = KlController::adaptive(0.2, 6.0, 10_000.0);
    let betas: Vec<f64> = v64(&fx["klctl.kls"])
        .into_iter()
        .map(|kl| {
            k.update(kl, 256);
            k.value
        })
        .collect();
    close(&betas, &v64(&fx["klctl.betas"]), 1e-12, "beta");
}
