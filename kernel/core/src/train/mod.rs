//! Training: the optimizer, schedules, losses, datasets, the loop with checkpoints.

mod checkpoint;
mod data;
mod dpo;
mod grads;
pub mod loss;
mod metrics;
mod optim;
mod pairs;
mod ppo;
pub mod pref_loss;
mod reward;
mod rl;
mod schedule;
mod trainer;

pub use checkpoint::{list as list_checkpoints, Fingerprint};
pub use data::{
    batch_loss, class_probs, classify_dataset, sft_dataset, AuxLoss, BatchOutput, Dataset, Example,
    Labels, Target,
};
pub use dpo::{train_dpo, DpoConfig, DpoObjective};
pub use metrics::{frame as metrics_frame, Row};
pub use optim::{clip_grad_norm, decays, AdamW, AdamWConfig};
pub use pairs::{encode_completion, pair_dataset, sequence_logps, PairColumns, Pairs};
pub use ppo::{train_ppo, PpoConfig};
pub use reward::{score, score_frame, train_reward, RewardObjective};
pub use rl::{best_of_n, train_group, GroupConfig, GroupLoss, KlOptions, RewardFn};
pub(crate) use rl::{require_policy, score_all};
pub use schedule::{Schedule, ScheduleKind};
pub use trainer::{
    evaluate, evaluate_objective, train, train_objective, Hooks, Objective, StepHook, StepReport,
    Supervised, TrainConfig,
};
