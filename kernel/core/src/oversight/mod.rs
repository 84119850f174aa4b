//! The analysis half of an experiment: simulated overseers, label aggregation, agreement, and the
//! sandwich metrics. Inputs use Toloka crowd-kit's column names — categorical labels
//! `task, worker, label`; pairwise comparisons `worker, left, right, label` (label = the winner);
//! gold `task, true_label` — so data moves between the two unchanged.

mod aggregate;
mod agreement;
mod crowd;
mod intervals;
mod mace;
mod metrics;
mod pairwise;
mod simulate;

pub use aggregate::{
    aggregate_by_name, dawid_skene, glad, gold_majority_vote, majority_vote, one_coin_dawid_skene,
    wawa, zero_based_skill, Aggregation, IterOptions, Ties, LABEL_METHODS,
};
pub use agreement::{
    cohen_kappa, fleiss_kappa, krippendorff_alpha, percent_agreement, worker_accuracy,
    KappaWeights, Level,
};
pub use crowd::{factorize, Crowd, Keys};
pub use intervals::{mean_interval, ratio_interval, t_cdf, t_quantile, Bounds, SeedInterval};
pub use mace::{mace, mace_from, Mace, MaceMethod, MaceOptions, MaceParams};
pub use metrics::{
    accuracy_f1, auroc, bootstrap, brier, check_bootstrap, ece, pgr, pgr_bootstrap, Interval,
    Resampler,
};
pub use pairwise::{
    bradley_terry, bt_ratings, bt_scores, noisy_bradley_terry, noisy_bt, scores_frame, win_rates,
    worker_codes, BtOptions, Comparisons, NoisyBt, NoisyBtFrames, NoisyBtOptions,
};
pub use simulate::{simulate, simulate_pairwise, Overseer, SimulateOptions};
