//! Training checkpoints: the model (or its LoRA adapters), the optimizer's master weights and
//! moments, the step, the LoRA dropout generator and the metrics so far. A checkpoint is written
//! into a temporary directory that is renamed into place, so a run killed at any moment leaves
//! only complete checkpoints behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::metrics::Row;
use super::optim::AdamW;
use crate::model::{io, Model};
use crate::{Error, Result, Rng};

const PREFIX: &str = "checkpoint-";

/// What must agree between the run that wrote a checkpoint and the one resuming from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub examples: usize,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub seed: u64,
    pub total_steps: usize,
    pub trainable: usize,
}

#[derive(Serialize, Deserialize)]
pub struct State {
    pub step: usize,
    pub fingerprint: Fingerprint,
    pub lora_rng: Option<Rng>,
    pub metrics: Vec<Row>,
    /// The KL coefficient of an RL run (the adaptive controller moves it).
    #[serde(default)]
    pub kl_coef: Option<f64>,
    /// The LoRA dropout generator of a second trained model (PPO's value model).
    #[serde(default)]
    pub value_lora_rng: Option<Rng>,
    /// The optimizer's own step count (AdamW's bias correction), written by `save`: PPO and
    /// GRPO with several updates per batch take more optimizer steps than trainer steps.
    #[serde(default)]
    pub optimizer_steps: Option<usize>,
}

/// Writes `dir/checkpoint-<step>` and removes all but the newest `keep` checkpoints.
pub fn save(
    dir: &Path,
    model: &Model,
    opt: &AdamW,
    names: &[String],
    state: &State,
    keep: usize,
) -> Result<PathBuf> {
    save_with(dir, model, &[], opt, names, state, keep)
}

/// As [`save`], with more trained models written into subdirectories (`also`: name, model).
/// The optimizer file holds every trained tensor, which is all resumption needs; the models'
/// own files are for the user.
pub fn save_with(
    dir: &Path,
    model: &Model,
    also: &[(&str, &Model)],
    opt: &AdamW,
    names: &[String],
    state: &State,
    keep: usize,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(Error::io("checkpoint", dir))?;
    let final_dir = dir.join(format!("{PREFIX}{}", state.step));
    let tmp = dir.join(format!(".{PREFIX}{}.tmp", state.step));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(Error::io("checkpoint", &tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(Error::io("checkpoint", &tmp))?;
    let write = |m: &Model, to: &Path| -> Result<()> {
        if m.lora_config().is_some() {
            m.save_adapter(to)
        } else {
            m.save(to)
        }
    };
    write(model, &tmp)?;
    for (sub, m) in also {
        let to = tmp.join(sub);
        std::fs::create_dir_all(&to).map_err(Error::io("checkpoint", &to))?;
        write(m, &to)?;
    }
    let (optimizer_steps, slots) = opt.state();
    let mut tensors = HashMap::new();
    for (name, [master, m, v]) in names.iter().zip(slots) {
        tensors.insert(format!("{name}.master"), master);
        tensors.insert(format!("{name}.m"), m);
        tensors.insert(format!("{name}.v"), v);
    }
    io::save_tensors(&tmp.join("optimizer.safetensors"), &tensors)?;
    let mut json = serde_json::to_value(state).expect("the state serialises");
    json["optimizer_steps"] = optimizer_steps.into();
    io::write_json(&tmp.join("trainer_state.json"), &json)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(Error::io("checkpoint", &final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(Error::io("checkpoint", &final_dir))?;
    // Make the rename durable before older checkpoints go.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    let mut all = list(dir)?;
    while all.len() > keep.max(1) {
        let (step, old) = all.remove(0);
        // Hidden first (one rename), then deleted: a kill during the deletion leaves a hidden
        // directory, never a visible checkpoint with files missing.
        let doomed = dir.join(format!(".{PREFIX}{step}.old"));
        if doomed.exists() {
            std::fs::remove_dir_all(&doomed).map_err(Error::io("checkpoint", &doomed))?;
        }
        std::fs::rename(&old, &doomed).map_err(Error::io("checkpoint", &old))?;
        std::fs::remove_dir_all(&doomed).map_err(Error::io("checkpoint", &doomed))?;
    }
    Ok(final_dir)
}

/// Complete checkpoints in `dir`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(step) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|s| s.parse().ok())
        else {
            continue;
        };
        if e.path().join("trainer_state.json").is_file() {
            out.push((step, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Restores the optimizer (and through it the trainable weights) and the LoRA generator from
/// `path`; returns the saved state.
pub fn restore(
    path: &Path,
    model: &Model,
    opt: &mut AdamW,
    names: &[String],
    expected: &Fingerprint,
) -> Result<State> {
    const OP: &str = "resume";
    let state: State = serde_json::from_value(io::read_json(OP, &path.join("trainer_state.json"))?)
        .map_err(|e| {
            Error::invalid(
                OP,
                "checkpoint",
                "a trainer_state.json written by sandwich",
                e,
            )
        })?;
    if &state.fingerprint != expected {
        return Err(Error::invalid(
            OP,
            "checkpoint",
            format!("a checkpoint of the same run ({expected:?})"),
            format!("{:?} in {}", state.fingerprint, path.display()),
        ));
    }
    let weights = io::Weights::open(OP, &[path.join("optimizer.safetensors")])?;
    let mut slots = Vec::with_capacity(names.len());
    for name in names {
        let get = |part: &str| weights.load(&format!("{name}.{part}"), model.device());
        slots.push([get("master")?, get("m")?, get("v")?]);
    }
    opt.set_state(state.optimizer_steps.unwrap_or(state.step), slots)?;
    if let (Some(lora), Some(rng)) = (model.lora_state(), &state.lora_rng) {
        lora.set_rng_state(rng.clone());
    }
    Ok(state)
}
