//! Training: the optimizer, schedules, losses, datasets, the loop with checkpoints.

mod checkpoint;
mod data;
pub mod loss;
mod metrics;
mod optim;
mod schedule;
mod trainer;

pub use checkpoint::{list as list_checkpoints, Fingerprint};
pub use data::{
    batch_loss, class_probs, classify_dataset, sft_dataset, AuxLoss, BatchOutput, Dataset, Example,
    Labels, Target,
};
pub use metrics::{frame as metrics_frame, Row};
pub use optim::{clip_grad_norm, decays, AdamW, AdamWConfig};
pub use schedule::{Schedule, ScheduleKind};
pub use trainer::{evaluate, train, Hooks, StepHook, StepReport, TrainConfig};
