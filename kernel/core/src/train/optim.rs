//! AdamW with fp32 master weights and fp32 moments, whatever the parameters' dtype.
//!
//! candle-nn's `AdamW` keeps its moments in the parameter dtype, so bf16 parameters get bf16
//! moments and small updates vanish. Here every parameter has an f32 master copy and f32
//! moments; the parameter itself is overwritten with the master cast to its dtype after each
//! step. The update is `torch.optim.AdamW`'s (decoupled weight decay, bias-corrected moments,
//! `eps` added after the square root), checked against it in `tests/optim_parity.rs`.

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Tensor, Var};

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
    /// `master` is the parameter's own storage (f32 on the CPU): updated in place, no copy.
    shared: bool,
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
                // Detached: the optimizer's tensors must never hold autograd history. An f32
                // parameter on the CPU is its own master (the update runs in place on its
                // storage); any other gets an f32 copy.
                let shared = var.dtype() == DType::F32 && var.device().is_cpu();
                let master = if shared {
                    var.as_tensor().detach()
                } else {
                    var.as_tensor().detach().to_dtype(DType::F32)?.copy()?
                };
                Ok(Slot {
                    m: master.zeros_like()?,
                    v: master.zeros_like()?,
                    master,
                    var,
                    decay,
                    shared,
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
            let g = g.detach().to_dtype(DType::F32)?.contiguous()?;
            let decay = if slot.decay {
                1.0 - c.lr * c.weight_decay
            } else {
                1.0
            };
            if slot.master.device().is_cpu() {
                // One pass per tensor, in place: the op-by-op version allocates (and page-faults)
                // five parameter-sized buffers per step, which dominated CPU training time.
                slot.m.inplace_op2(
                    &g,
                    &Ema {
                        beta: c.beta1,
                        square: false,
                    },
                )?;
                slot.v.inplace_op2(
                    &g,
                    &Ema {
                        beta: c.beta2,
                        square: true,
                    },
                )?;
                let update = Update {
                    decay,
                    step_size: c.lr / bc1,
                    bc2_sqrt,
                    eps: c.eps,
                };
                slot.master.inplace_op3(&slot.m, &slot.v, &update)?;
            } else {
                slot.master = slot.master.affine(decay, 0.0)?;
                slot.m = ((&slot.m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
                slot.v = ((&slot.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
                let denom = ((slot.v.sqrt()? / bc2_sqrt)? + c.eps)?;
                let update = (slot.m.div(&denom)? * (c.lr / bc1))?;
                slot.master = (&slot.master - update)?;
            }
            if !slot.shared {
                slot.var.set(&slot.master.to_dtype(slot.var.dtype())?)?;
            }
        }
        Ok(())
    }
}

fn f32_slices<'a>(op: &str, s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{op}: expected a contiguous f32 tensor"),
    }
}

/// `dst = beta·dst + (1 − beta)·g` (or `g²`): an Adam moment, in place.
struct Ema {
    beta: f64,
    square: bool,
}

impl InplaceOp2 for Ema {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        g: &CpuStorage,
        gl: &Layout,
    ) -> candle_core::Result<()> {
        let g = f32_slices(self.name(), g, gl)?;
        let (a, b) = dst_l
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("adamw-moment: non-contiguous".into()))?;
        let CpuStorage::F32(d) = dst else {
            candle_core::bail!("adamw-moment: expected f32 moments")
        };
        let (beta, one_minus) = (self.beta as f32, (1.0 - self.beta) as f32);
        for (d, &g) in d[a..b].iter_mut().zip(g) {
            let x = if self.square { g * g } else { g };
            *d = *d * beta + x * one_minus;
        }
        Ok(())
    }
}

/// `master = master·decay − step_size · m / (√v / bc2_sqrt + eps)`, in place.
struct Update {
    decay: f64,
    step_size: f64,
    bc2_sqrt: f64,
    eps: f64,
}

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        m: &CpuStorage,
        ml: &Layout,
        v: &CpuStorage,
        vl: &Layout,
    ) -> candle_core::Result<()> {
        let m = f32_slices(self.name(), m, ml)?;
        let v = f32_slices(self.name(), v, vl)?;
        let (a, b) = dst_l
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("adamw-update: non-contiguous".into()))?;
        let CpuStorage::F32(p) = dst else {
            candle_core::bail!("adamw-update: expected f32 master weights")
        };
        let (decay, step, bc2, eps) = (
            self.decay as f32,
            self.step_size as f32,
            self.bc2_sqrt as f32,
            self.eps as f32,
        );
        for ((p, &m), &v) in p[a..b].iter_mut().zip(m).zip(v) {
            *p = *p * decay - step * (m / (v.sqrt() / bc2 + eps));
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
            if !slot.shared {
                slot.master = master; // (a shared master already holds the restored values)
            }
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
