//! Learning-rate schedules, as the multipliers of HF transformers' `get_*_schedule_with_warmup`.

use serde::{Deserialize, Serialize};

/// The shape of the schedule after warm-up.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    Constant,
    Linear,
    Cosine,
}

/// A learning rate that rises linearly for `warmup_steps`, then follows `kind` to zero at
/// `total_steps` (constant stays at the peak).
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub peak_lr: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl Schedule {
    /// The learning rate used for optimizer step `step` (0-based), as the `LambdaLR` that HF
    /// builds: the multiplier is evaluated at the number of steps taken before this one.
    pub fn lr(&self, step: usize) -> f64 {
        let s = step as f64;
        let warmup = self.warmup_steps as f64;
        if step < self.warmup_steps {
            return self.peak_lr * s / warmup.max(1.0);
        }
        let decay_steps = (self.total_steps.saturating_sub(self.warmup_steps)).max(1) as f64;
        let progress = ((s - warmup) / decay_steps).clamp(0.0, 1.0);
        let factor = match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => 1.0 - progress,
            ScheduleKind::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        };
        self.peak_lr * factor
    }
}
