//! Training: the optimizer, learning-rate schedules and gradient clipping.

mod optim;
mod schedule;

pub use optim::{clip_grad_norm, decays, AdamW, AdamWConfig};
pub use schedule::{Schedule, ScheduleKind};
