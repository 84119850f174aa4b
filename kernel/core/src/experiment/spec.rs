//! The experiment spec: one typed value that every front end deserializes into (Lua tables,
//! Python dicts, manifests). Every table rejects unknown keys; every default is written once,
//! here. `check` then verifies what types cannot say (ranges, arm names, paths) before any
//! compute.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{LoadOptions, NewOptions};
use crate::oversight::{Overseer, LABEL_METHODS};
use crate::train::loss::AuxSchedule;
use crate::train::{ScheduleKind, TrainConfig};
use crate::{Error, Result};

const OP: &str = "experiment";

fn one_seed() -> Vec<u64> {
    vec![1]
}
fn level() -> f64 {
    0.95
}

/// A sandwiching / weak-to-strong experiment.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub task: TaskSpec,
    /// A tokenizer directory for models built from scratch (default: a word-level tokenizer of
    /// the task's words, built in a temporary directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    pub strong: Side,
    pub weak: Side,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overseers: Option<Overseers>,
    /// Arm names, in the order tables and charts show them: built-in arms and custom arms
    /// (whose supervisors the front end registers by name).
    pub arms: Vec<String>,
    /// A Lua file returning `{name = function(ctx) ... end, ...}`: custom arms as code that
    /// travels with a manifest (a sweep's tasks load it), unlike functions in `arms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arms_file: Option<String>,
    #[serde(default = "one_seed")]
    pub seeds: Vec<u64>,
    #[serde(default)]
    pub split: Split,
    #[serde(default)]
    pub aux: Aux,
    #[serde(default)]
    pub assistance: Assistance,
    /// Confidence level of every interval (PGR, differences).
    #[serde(default = "level")]
    pub level: f64,
    /// How each arm's classification head starts.
    #[serde(default)]
    pub head_init: HeadInit,
}

/// The task: a built-in one (`builtin`, `n`, `seed`), or a DataFrame the front end passes
/// beside the spec (recorded by its content hash and height).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataframe_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
}

/// The weak or the strong side: how its model is made and trained.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Side {
    pub model: ModelSpec,
    #[serde(default)]
    pub train: TrainSpec,
    /// This side's head initialisation (default: the spec's `head_init`), e.g. a weak model
    /// from scratch (`hf`) beside a pretrained strong one (`zeros`, the reference's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_init: Option<HeadInit>,
}

/// A model from scratch (`sw.model.new` options; `arch` defaults to `bert`) or a checkpoint
/// directory (`path` plus `sw.model.load` options). The experiment sets the head, the number
/// of labels, the seed and (from scratch) the tokenizer itself.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSpec {
    New(NewOptions),
    Load { path: String, options: LoadOptions },
}

/// Keys of a model table the experiment owns.
const OWNED: &[&str] = &["head", "num_labels", "seed", "tokenizer"];

impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let Value::Object(mut map) = Value::deserialize(d)? else {
            return Err(D::Error::custom(
                "expected a table of sw.model.new options, or {path = checkpoint directory, ...sw.model.load options}",
            ));
        };
        if let Some(key) = OWNED.iter().find(|k| map.contains_key(**k)) {
            return Err(D::Error::custom(format!(
                "'{key}' is set by the experiment for every arm and seed; leave it out"
            )));
        }
        match map.remove("path") {
            Some(Value::String(path)) => {
                let options =
                    serde_json::from_value(Value::Object(map)).map_err(D::Error::custom)?;
                Ok(ModelSpec::Load { path, options })
            }
            Some(other) => Err(D::Error::custom(format!(
                "'path' must be a checkpoint directory (a string), got {other}"
            ))),
            None => {
                map.entry("arch").or_insert_with(|| Value::from("bert"));
                Ok(ModelSpec::New(
                    serde_json::from_value(Value::Object(map)).map_err(D::Error::custom)?,
                ))
            }
        }
    }
}

impl Serialize for ModelSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let value = match self {
            ModelSpec::New(o) => serde_json::to_value(o),
            ModelSpec::Load { path, options } => serde_json::to_value(options).map(|mut v| {
                v["path"] = Value::from(path.as_str());
                v
            }),
        }
        .map_err(S::Error::custom)?;
        // The keys the experiment owns are not the user's: left out, as they were given.
        let mut value = value;
        if let Some(map) = value.as_object_mut() {
            for key in OWNED {
                map.remove(*key);
            }
        }
        value.serialize(s)
    }
}

impl ModelSpec {
    pub fn device(&self) -> &str {
        match self {
            ModelSpec::New(o) => &o.device,
            ModelSpec::Load { options, .. } => &options.device,
        }
    }
}

/// The training options of a side (those of `sw.train.classify` an experiment lets vary; the
/// seed and the auxiliary loss are the experiment's). `None`: [`TrainConfig`]'s default.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_accum: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_steps: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_grad_norm: Option<f64>,
    /// Tokens per text (default: the model's positions, at most 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
}

impl TrainSpec {
    /// The trainer's configuration for one run.
    pub fn config(&self, seed: u64) -> TrainConfig {
        let d = TrainConfig::default();
        TrainConfig {
            epochs: self.epochs.unwrap_or(d.epochs),
            max_steps: self.max_steps.or(d.max_steps),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            grad_accum: self.grad_accum.unwrap_or(d.grad_accum),
            lr: self.lr.unwrap_or(d.lr),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            schedule: self.schedule.unwrap_or(d.schedule),
            warmup_steps: self.warmup_steps.unwrap_or(d.warmup_steps),
            max_grad_norm: self.max_grad_norm.or(d.max_grad_norm),
            seed,
            ..d
        }
    }
}

/// The novices of the crowd arms.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Overseers {
    pub novices: Novices,
}

/// Simulated novices (`sw.overseers.simulate`): who they are and how many label each item.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Novices {
    pub overseers: Vec<Overseer>,
    pub k: usize,
}

fn test_frac() -> f64 {
    0.2
}

/// How each seed splits the task: a test share, then two halves A (the weak model's) and B
/// (the strong arms'), as openai/weak-to-strong.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Split {
    #[serde(default = "test_frac")]
    pub test: f64,
}

impl Default for Split {
    fn default() -> Self {
        Split { test: test_frac() }
    }
}

fn half() -> f64 {
    0.5
}
fn tenth() -> f64 {
    0.1
}

/// The auxiliary confidence loss of `aux_w2s` (openai/weak-to-strong's `logconf`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Aux {
    #[serde(default = "half")]
    pub aux_coef: f64,
    #[serde(default = "tenth")]
    pub warmup_frac: f64,
    #[serde(default)]
    pub schedule: AuxSchedule,
}

impl Default for Aux {
    fn default() -> Self {
        Aux {
            aux_coef: half(),
            warmup_frac: tenth(),
            schedule: AuxSchedule::default(),
        }
    }
}

fn trust() -> f64 {
    0.7
}
fn calibration() -> f64 {
    1.0
}

/// How assisted novices use the assistant's answer (see `arms::adoption`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Assistance {
    /// The probability of adopting a fully confident answer.
    #[serde(default = "trust")]
    pub trust: f64,
    /// How much adoption follows the assistant's confidence: 0 ignores it; larger values
    /// adopt unconfident answers less and less.
    #[serde(default = "calibration")]
    pub calibration: f64,
}

impl Default for Assistance {
    fn default() -> Self {
        Assistance {
            trust: trust(),
            calibration: calibration(),
        }
    }
}

/// How a classification head starts.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HeadInit {
    /// Zeros, as openai/weak-to-strong's head.
    #[default]
    Zeros,
    /// HF's random initialisation (normal, std 0.02).
    Hf,
}

/// What a built-in arm name means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArmKind {
    Weak,
    Ceiling,
    NaiveW2s,
    AuxW2s,
    Crowd(String),
    UnassistedNovices,
    AssistedNovices,
    Custom,
}

/// The kind of a built-in arm name; `None` for any other name (a custom arm's).
pub fn builtin_arm(name: &str) -> Option<ArmKind> {
    Some(match name {
        "weak" => ArmKind::Weak,
        "ceiling" => ArmKind::Ceiling,
        "naive_w2s" => ArmKind::NaiveW2s,
        "aux_w2s" => ArmKind::AuxW2s,
        "unassisted_novices" => ArmKind::UnassistedNovices,
        "assisted_novices" => ArmKind::AssistedNovices,
        other => ArmKind::Crowd(other.strip_prefix("crowd_")?.to_string()),
    })
}

fn in_unit(arg: &'static str, v: f64, open: bool) -> Result<()> {
    let ok = if open {
        v > 0.0 && v < 1.0
    } else {
        (0.0..=1.0).contains(&v)
    };
    if ok {
        Ok(())
    } else {
        let range = if open { "(0, 1)" } else { "[0, 1]" };
        Err(Error::invalid(OP, arg, format!("a number in {range}"), v))
    }
}

/// A side's option error said as the spec's key (`weak.train`, `strong.model`), the option
/// named in what was expected.
fn on_side(key: &'static str, e: Error) -> Error {
    match e {
        Error::InvalidArgument {
            arg, expected, got, ..
        } => Error::invalid(OP, key, format!("{expected} for '{arg}'"), got),
        other => other,
    }
}

impl Spec {
    /// The kind of each arm, in order; `custom` names the arms the front end supplies.
    pub fn arm_kinds(&self, custom: &[String]) -> Result<Vec<ArmKind>> {
        let mut seen = std::collections::HashSet::new();
        let mut kinds = Vec::new();
        for (i, arm) in self.arms.iter().enumerate() {
            if !seen.insert(arm.as_str()) {
                return Err(Error::invalid(
                    OP,
                    "arms",
                    "each arm once",
                    format!("'{arm}' again (arms[{}])", i + 1),
                ));
            }
            let kind = if custom.contains(arm) {
                if builtin_arm(arm).is_some() {
                    return Err(Error::invalid(
                        OP,
                        "arms",
                        "custom arm names that are not built-in arm names",
                        format!("'{arm}'"),
                    ));
                }
                ArmKind::Custom
            } else {
                builtin_arm(arm).ok_or_else(|| {
                    Error::invalid(
                        OP,
                        "arms",
                        "weak, ceiling, naive_w2s, aux_w2s, crowd_<method>, unassisted_novices, assisted_novices or a custom arm {name, supervise}",
                        format!("'{arm}' (arms[{}])", i + 1),
                    )
                })?
            };
            if let ArmKind::Crowd(method) = &kind {
                if !LABEL_METHODS.contains(&method.as_str()) {
                    return Err(Error::invalid(
                        OP,
                        "arms",
                        format!(
                            "crowd_<method> with a method among {}",
                            LABEL_METHODS.join(", ")
                        ),
                        format!("'{arm}'"),
                    ));
                }
            }
            kinds.push(kind);
        }
        Ok(kinds)
    }

    /// Everything the types cannot say, checked before any compute.
    pub fn check(&self, custom: &[String]) -> Result<()> {
        match (&self.task.builtin, &self.task.dataframe_hash) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(Error::invalid(
                    OP,
                    "task",
                    "a task DataFrame, or {builtin = name, n = items, seed = s}",
                    "neither or both",
                ))
            }
        }
        if self.task.builtin.is_some() && self.task.n == Some(0) {
            return Err(Error::invalid(
                OP,
                "task.n",
                "a positive number of items",
                0,
            ));
        }
        let kinds = self.arm_kinds(custom)?;
        if kinds.is_empty() {
            return Err(Error::invalid(OP, "arms", "at least one arm", "none"));
        }
        let crowd = kinds.iter().any(|k| {
            matches!(
                k,
                ArmKind::Crowd(_) | ArmKind::AssistedNovices | ArmKind::UnassistedNovices
            )
        });
        match &self.overseers {
            None if crowd => {
                return Err(Error::invalid(
                    OP,
                    "overseers.novices",
                    "{overseers = {...}, k = n} for the crowd and novice arms",
                    "none",
                ))
            }
            Some(o) if o.novices.k == 0 || o.novices.overseers.is_empty() => {
                return Err(Error::invalid(
                    OP,
                    "overseers.novices",
                    "at least one overseer and k ≥ 1",
                    format!(
                        "{} overseers, k = {}",
                        o.novices.overseers.len(),
                        o.novices.k
                    ),
                ))
            }
            _ => {}
        }
        if self.seeds.is_empty() {
            return Err(Error::invalid(
                OP,
                "seeds",
                "a non-empty list of integers",
                "an empty list",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(s) = self.seeds.iter().find(|s| !seen.insert(**s)) {
            return Err(Error::invalid(
                OP,
                "seeds",
                "distinct seeds",
                format!("{s} twice"),
            ));
        }
        in_unit("split.test", self.split.test, true)?;
        in_unit("level", self.level, true)?;
        in_unit("aux.aux_coef", self.aux.aux_coef, false)?;
        in_unit("aux.warmup_frac", self.aux.warmup_frac, false)?;
        in_unit("assistance.trust", self.assistance.trust, false)?;
        if !(self.assistance.calibration.is_finite() && self.assistance.calibration >= 0.0) {
            return Err(Error::invalid(
                OP,
                "assistance.calibration",
                "a finite number ≥ 0",
                self.assistance.calibration,
            ));
        }
        for (side, s) in [("strong", &self.strong), ("weak", &self.weak)] {
            let (model_key, train_key) = if side == "strong" {
                ("strong.model", "strong.train")
            } else {
                ("weak.model", "weak.train")
            };
            match &s.model {
                ModelSpec::New(o) => crate::Options::check(o, OP),
                ModelSpec::Load { options, .. } => crate::Options::check(options, OP),
            }
            .map_err(|e| on_side(model_key, e))?;
            if let ModelSpec::Load { path, .. } = &s.model {
                if !Path::new(path).join("config.json").is_file() {
                    return Err(Error::invalid(
                        OP,
                        if side == "strong" {
                            "strong.model.path"
                        } else {
                            "weak.model.path"
                        },
                        "a checkpoint directory with config.json",
                        format!("'{path}'"),
                    ));
                }
            }
            let cfg = s.train.config(0);
            // An arm that does not train measures nothing: lr = 0 is for `sw.train` only.
            if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
                let e = Error::invalid(OP, "lr", "a finite number > 0", cfg.lr);
                return Err(on_side(train_key, e));
            }
            if s.train.max_length == Some(0) {
                let e = Error::invalid(OP, "max_length", "a positive integer", 0);
                return Err(on_side(train_key, e));
            }
            // The trainer's own ranges (counts, decay, clipping), before any compute.
            crate::Options::check(&cfg, OP).map_err(|e| on_side(train_key, e))?;
        }
        Ok(())
    }
}

/// The keys a spec table accepts, by table (`spec`, `task`, `side`, `train`, `model` when
/// loading a checkpoint is `load` and from scratch `new`, `overseers`, `novices`, `split`,
/// `aux`, `assistance`, `overseer`), read from the types themselves (serde lists them when it rejects an
/// unknown key). Front ends and docs are checked against this list, so no second copy of it
/// can drift.
pub fn fields() -> Vec<(&'static str, Vec<String>)> {
    fn of<T: serde::de::DeserializeOwned>() -> Vec<String> {
        let probe = serde_json::json!({"\u{1}": 0});
        let message = match serde_json::from_value::<T>(probe) {
            Err(e) => e.to_string(),
            Ok(_) => return Vec::new(),
        };
        let Some(list) = message.split("expected ").nth(1) else {
            return Vec::new();
        };
        // serde writes "`a`", "`a` or `b`" or "one of `a`, `b`, `c`".
        list.trim_start_matches("one of ")
            .replace(" or ", ", ")
            .split(", ")
            .map(|s| s.trim_matches('`').to_string())
            .collect()
    }
    vec![
        ("spec", of::<Spec>()),
        ("task", of::<TaskSpec>()),
        ("side", of::<Side>()),
        ("train", of::<TrainSpec>()),
        ("new", of::<NewOptions>()),
        ("load", of::<LoadOptions>()),
        ("overseers", of::<Overseers>()),
        ("novices", of::<Novices>()),
        ("split", of::<Split>()),
        ("aux", of::<Aux>()),
        ("assistance", of::<Assistance>()),
        ("overseer", of::<Overseer>()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_lists_come_from_the_types() {
        let f: std::collections::HashMap<_, _> = fields().into_iter().collect();
        assert_eq!(f["aux"], ["aux_coef", "warmup_frac", "schedule"]);
        assert_eq!(f["split"], ["test"]);
        assert_eq!(f["side"], ["model", "train", "head_init"]);
        assert!(f["spec"].contains(&"head_init".to_string()) && f["spec"].len() == 13);
        assert!(f["train"].contains(&"max_length".to_string()));
        assert!(f.values().all(|v| !v.is_empty()));
    }

    /// The `| <table> key | type | default | meaning |` tables of a page: table → rows of
    /// (key, default cell).
    fn page_tables(page: &str) -> std::collections::HashMap<String, Vec<(String, String)>> {
        let text = std::fs::read_to_string(format!(
            "{}/../../lua/docs/{page}.md",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut out = std::collections::HashMap::new();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = line
                .strip_prefix("| ")
                .and_then(|l| l.strip_suffix(" key | type | default | meaning |"))
            else {
                continue;
            };
            let rows = lines[i + 2..]
                .iter()
                .take_while(|l| l.starts_with('|'))
                .flat_map(|l| {
                    let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                    let default = cells[3].to_string();
                    cells[1]
                        .split(',')
                        .map(|k| (k.trim().trim_matches('`').to_string(), default.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            out.insert(name.to_string(), rows);
        }
        out
    }

    /// The pages' spec tables (from which Python's TypedDicts are generated) list exactly the
    /// keys of the core's types, and the defaults they print are the types' defaults.
    #[test]
    fn the_doc_pages_list_every_key_and_default() {
        let mut tables = page_tables("sw.experiment");
        tables.extend(page_tables("sw.overseers.simulate"));
        for (table, want) in fields() {
            if table == "new" || table == "load" {
                continue; // sw.model.new / sw.model.load options: their own pages
            }
            let rows = tables
                .get(table)
                .unwrap_or_else(|| panic!("no '{table} key' table on the pages"));
            let mut keys: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
            // Front-end keys: functions, and a DataFrame that sw.overseers.simulate converts.
            keys.retain(|k| {
                !matches!(
                    (table, k.as_str()),
                    ("spec", "hooks") | ("overseer", "predictions")
                )
            });
            let mut want = want;
            // What a manifest records for a DataFrame task (explained in the task row).
            want.retain(|k| !(table == "task" && (k == "dataframe_hash" || k == "rows")));
            keys.sort();
            want.sort();
            assert_eq!(keys, want, "the '{table} key' table");
        }
        // Printed defaults are the serialized defaults of the types.
        let default_of = |table: &str, key: &str| -> String {
            tables[table]
                .iter()
                .find(|r| r.0 == key)
                .unwrap()
                .1
                .trim_matches('`')
                .to_string()
        };
        let json = |s: String| -> serde_json::Value {
            serde_json::from_str(&s).unwrap_or_else(|e| panic!("default {s:?}: {e}"))
        };
        let check = |table: &str, value: serde_json::Value| {
            for (key, v) in value.as_object().unwrap() {
                assert_eq!(&json(default_of(table, key)), v, "{table}.{key}");
            }
        };
        check("split", serde_json::to_value(Split::default()).unwrap());
        check("aux", serde_json::to_value(Aux::default()).unwrap());
        check(
            "assistance",
            serde_json::to_value(Assistance::default()).unwrap(),
        );
        assert_eq!(
            json(default_of("spec", "split")),
            serde_json::to_value(Split::default()).unwrap()
        );
        assert_eq!(
            json(default_of("spec", "aux")),
            serde_json::to_value(Aux::default()).unwrap()
        );
        assert_eq!(
            json(default_of("spec", "assistance")),
            serde_json::to_value(Assistance::default()).unwrap()
        );
        assert_eq!(
            json(default_of("spec", "seeds")),
            serde_json::json!(one_seed())
        );
        assert_eq!(
            json(default_of("spec", "level")),
            serde_json::json!(level())
        );
        assert_eq!(
            json(default_of("spec", "head_init")),
            serde_json::to_value(HeadInit::default()).unwrap()
        );
    }
}
