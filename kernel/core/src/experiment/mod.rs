//! Sandwiching and weak-to-strong experiments: the typed spec, the arms (one trait), the
//! runner, intervals over seeds, manifests and reruns, the HTML report, built-in tasks, the
//! task schema and content hashes. The front ends (`sw.experiment` in Lua, `sandwich.experiment`
//! in Python) only convert their values and adapt custom arms to [`Supervisor`].

mod arms;
mod manifest;
mod preference;
mod real;
mod report;
mod runner;
mod schema;
mod seeds;
mod spec;
pub mod sweep;
mod tasks;
mod vocab;

pub use arms::{
    adoption, assist, Context, CrowdArm, Novices, Services, Supervision, Supervisor, Target,
    WeakLabels,
};
pub use manifest::{read_manifest, rerun, Build, Manifest, MANIFEST_FORMAT};
pub use preference::{
    BestOfN, PairTask, PreferenceExperiment, PreferenceSpec, RlSpec, PREFERENCE_ARMS,
};
pub use real::{data_dir, load_ratings, load_task, REAL};
pub use report::{assistance_table, fmt_number, render, render_html, Rendered};
pub use runner::{ArmDoneHook, ArmStepHook, Experiment, RunHooks, Shard, Unit};
pub use schema::{check_task, frame_hash};
pub use seeds::{pgr_table, PgrOptions};
pub use spec::{
    builtin_arm, fields, ArmKind, Assistance, Aux, HeadInit, ModelSpec, Novices as NoviceSpec,
    Overseers, Side, Spec, Split, TaskSpec, TrainSpec,
};
pub use tasks::{builtin_task, BUILTIN, DEFAULT_ITEMS};
pub use vocab::word_tokenizer;
pub(crate) use vocab::write_word_level;
