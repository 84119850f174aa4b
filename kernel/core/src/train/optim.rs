//! AdamW with fp32 master weights and fp32 moments, whatever the parameters' dtype.
//!
//! candle-nn's `AdamW` keeps its moments in the parameter dtype, so bf16 parameters get bf16
//! moments and small updates vanish. Here every parameter has an f32 master copy and f32
//! moments; the parameter itself is overwritten with the master cast to its dtype after each
//! step. The update is `torch.optim.AdamW`'s (decoupled weight decay, bias-corrected moments,
//! `eps` added after the square root), checked against it in `tests/optim_parity.rs`.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use crate::{Error, Result};

/// Hyper-parameters of [`AdamW`]; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// Whether a parameter takes weight decay: not norms, not biases (the usual GPT/BERT recipe).
pub fn decays(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    !(n.ends_with("bias") || n.contains("norm") || n.contains("ln_") || n.contains(".ln"))
}

struct Slot {
    var: Var,
    master: Tensor,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

/// The optimizer. Parameters are given with a flag saying whether they take weight decay.
pub struct AdamW {
    slots: Vec<Slot>,
    config: AdamWConfig,
    step: usize,
}

impl AdamW {
    pub fn new(params: Vec<(Var, bool)>, config: AdamWConfig) -> Result<Self> {
        let slots = params
            .into_iter()
            .map(|(var, decay)| {
                let master = var.as_tensor().to_dtype(DType::F32)?.copy()?;
                Ok(Slot {
                    m: master.zeros_like()?,
                    v: master.zeros_like()?,
                    master,
                    var,
                    decay,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            slots,
            config,
            step: 0,
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.step
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    pub fn lr(&self) -> f64 {
        self.config.lr
    }

    /// One update from the gradients in `grads`; parameters without a gradient are left as
    /// they are (PyTorch skips parameters whose `.grad` is None).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_with(|var| grads.get(var.as_tensor()).cloned())
    }

    /// One update with the gradient of each parameter given by `grad_of`.
    pub fn step_with(&mut self, grad_of: impl Fn(&Var) -> Option<Tensor>) -> Result<()> {
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        for slot in &mut self.slots {
            let Some(g) = grad_of(&slot.var) else {
                continue;
            };
            let g = g.to_dtype(DType::F32)?;
            if slot.decay && c.weight_decay != 0.0 {
                slot.master = slot.master.affine(1.0 - c.lr * c.weight_decay, 0.0)?;
            }
            slot.m = ((&slot.m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            slot.v = ((&slot.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let denom = ((slot.v.sqrt()? / bc2_sqrt)? + c.eps)?;
            let update = (slot.m.div(&denom)? * (c.lr / bc1))?;
            slot.master = (&slot.master - update)?;
            slot.var.set(&slot.master.to_dtype(slot.var.dtype())?)?;
        }
        Ok(())
    }
}

impl AdamW {
    /// The step count and each parameter's (master, first moment, second moment), in the order
    /// the parameters were given: what a checkpoint must store to resume exactly.
    pub fn state(&self) -> (usize, Vec<[Tensor; 3]>) {
        let slots = self
            .slots
            .iter()
            .map(|s| [s.master.clone(), s.m.clone(), s.v.clone()])
            .collect();
        (self.step, slots)
    }

    /// Restores a [`AdamW::state`]; the parameters are set from the restored masters.
    pub fn set_state(&mut self, step: usize, slots: Vec<[Tensor; 3]>) -> Result<()> {
        if slots.len() != self.slots.len() {
            return Err(Error::invalid(
                "AdamW.set_state",
                "slots",
                format!("{} parameters", self.slots.len()),
                slots.len(),
            ));
        }
        for (slot, [master, m, v]) in self.slots.iter_mut().zip(slots) {
            if master.shape() != slot.master.shape() {
                return Err(Error::invalid(
                    "AdamW.set_state",
                    "slots",
                    format!("a tensor of shape {:?}", slot.master.dims()),
                    format!("{:?}", master.dims()),
                ));
            }
            slot.var.set(&master.to_dtype(slot.var.dtype())?)?;
            slot.master = master;
            slot.m = m;
            slot.v = v;
        }
        self.step = step;
        Ok(())
    }
}

/// Scales `grads` in place so that their global L2 norm is at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_` does (`coef = max_norm / (norm + 1e-6)`, at most 1).
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut total = 0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            total += g
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
    }
    let norm = total.sqrt();
    if !norm.is_finite() {
        return Err(Error::InvalidArgument {
            op: "clip_grad_norm",
            arg: "grads",
            expected: "finite gradients".into(),
            got: format!("a gradient norm of {norm}"),
        });
    }
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for var in vars {
            if let Some(g) = grads.remove(var.as_tensor()) {
                grads.insert(var.as_tensor(), (g * coef)?);
            }
        }
    }
    Ok(norm)
}
