//! What every trainer does around its loss: an AdamW over the model's trainable parameters, and
//! gradients accumulated over micro-batches (in f32), clipped to a global norm and applied.

use std::collections::HashMap;

use candle_core::{DType, Tensor, TensorId, Var};

use super::optim::{decays, AdamW, AdamWConfig};
use crate::model::Model;
use crate::{Error, Result};

/// The trainable parameters' names and an AdamW over them (no decay on norms and biases); an
/// error for a fully frozen model.
pub(crate) fn optimizer(
    op: &'static str,
    model: &Model,
    config: AdamWConfig,
) -> Result<(Vec<String>, Grads, AdamW)> {
    optimizer_over(op, model.params().trainable(), config)
}

/// An AdamW over named variables (several models' together, as PPO trains a policy and its
/// value function with one optimizer and one gradient norm).
pub(crate) fn optimizer_over(
    op: &'static str,
    trainable: Vec<(String, Var)>,
    config: AdamWConfig,
) -> Result<(Vec<String>, Grads, AdamW)> {
    if trainable.is_empty() {
        return Err(Error::invalid(
            op,
            "model",
            "a model with trainable parameters",
            "a fully frozen model",
        ));
    }
    let names = trainable.iter().map(|(n, _)| n.clone()).collect();
    let opt = AdamW::new(
        trainable
            .iter()
            .map(|(n, v)| (v.clone(), decays(n)))
            .collect(),
        config,
    )?;
    let grads = Grads {
        vars: trainable.into_iter().map(|(_, v)| v).collect(),
        sums: HashMap::new(),
    };
    Ok((names, grads, opt))
}

/// Gradients summed over the micro-batches of one optimizer step.
pub(crate) struct Grads {
    vars: Vec<Var>,
    sums: HashMap<TensorId, Tensor>,
}

impl Grads {
    /// Back-propagates `loss` and adds its gradients to the step's.
    pub(crate) fn add(&mut self, loss: &Tensor) -> Result<()> {
        let store = loss.backward()?;
        for v in &self.vars {
            if let Some(g) = store.get(v.as_tensor()) {
                let g = g.to_dtype(DType::F32)?;
                let acc = match self.sums.remove(&v.id()) {
                    Some(prev) => (prev + g)?,
                    None => g,
                };
                self.sums.insert(v.id(), acc);
            }
        }
        Ok(())
    }

    /// Clips the summed gradients to `max_norm` (as PyTorch's `clip_grad_norm_`), applies them
    /// and starts the next step; returns the norm before clipping.
    pub(crate) fn step(&mut self, opt: &mut AdamW, max_norm: Option<f64>) -> Result<f64> {
        let mut total = 0.0;
        for g in self.sums.values() {
            total += g
                .sqr()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
        }
        let norm = total.sqrt();
        if let Some(max) = max_norm {
            let coef = max / (norm + 1e-6);
            if coef < 1.0 {
                for g in self.sums.values_mut() {
                    *g = (&*g * coef)?;
                }
            }
        }
        opt.step_with(|v| self.sums.get(&v.id()).cloned())?;
        self.sums.clear();
        Ok(norm)
    }
}
