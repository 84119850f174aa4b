//! LoRA: a low-rank update `B·A·(alpha/r)` beside chosen linear layers, the base frozen.
//! Adapters are saved and loaded in PEFT's layout (`adapter_config.json`,
//! `adapter_model.safetensors` with `base_model.model.<module>.lora_{A,B}.weight`).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;

use candle_core::{DType, Tensor};
use serde_json::{json, Value};

use super::{io, Arch, LinearKind, Model};
use crate::{Error, Result, Rng};

/// What `add_lora` is asked for: PEFT's options, with its defaults.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraOptions {
    /// The adapter's rank r (≥ 1).
    pub rank: usize,
    /// The update's scale is alpha / r; default 2r (> 0).
    pub alpha: Option<f64>,
    /// Dropout on the adapter's input, a probability in [0, 1).
    pub dropout: f64,
    /// Module names (or their last components, as PEFT matches them), at least one; default:
    /// the architecture's attention query and value projections.
    pub targets: Option<Vec<String>>,
    /// Seed of A's initialisation and of the dropout masks.
    pub seed: u64,
}

impl Default for LoraOptions {
    fn default() -> Self {
        LoraOptions {
            rank: 8,
            alpha: None,
            dropout: 0.0,
            targets: None,
            seed: 0,
        }
    }
}

impl crate::Options for LoraOptions {
    fn check(&self, op: &'static str) -> Result<()> {
        crate::validate::positive_count(op, "rank", self.rank)?;
        crate::validate::positive_opt(op, "alpha", self.alpha)?;
        crate::validate::within(op, "dropout", self.dropout, 0.0, 1.0, true)?;
        if self.targets.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::invalid(
                op,
                "targets",
                "at least one module name (leave targets out for the architecture's default)",
                "an empty list",
            ));
        }
        Ok(())
    }
}

/// The adapter as attached: its shape and where it went (the options with defaults resolved).
#[derive(Clone, Debug)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f64,
    /// Module names (or their last components, as PEFT matches them).
    pub targets: Vec<String>,
    pub seed: u64,
}

pub(crate) struct Lora {
    config: LoraConfig,
    modules: BTreeSet<String>,
    /// Dropout masks; behind a mutex because the forward pass takes `&Model`.
    rng: Mutex<Rng>,
}

pub(crate) fn is_adapter(name: &str) -> bool {
    name.contains(".lora_A.") || name.contains(".lora_B.")
}

fn default_targets(arch: &Arch) -> Vec<String> {
    let t: &[&str] = match arch {
        Arch::Gpt2(_) => &["c_attn"],
        Arch::Llama(_) => &["q_proj", "v_proj"],
        Arch::Bert(_) => &["query", "value"],
    };
    t.iter().map(|s| s.to_string()).collect()
}

/// (fan_in, fan_out, kind) of each linear module of the base model.
fn linear_modules(m: &Model) -> Vec<(String, usize, usize, LinearKind)> {
    let conv1d = matches!(m.arch, Arch::Gpt2(_));
    m.params
        .iter()
        .filter(|(n, v)| n.ends_with(".weight") && v.rank() == 2 && !is_adapter(n))
        .filter(|(n, _)| {
            !n.contains("embed") && !n.ends_with("wte.weight") && !n.ends_with("wpe.weight")
        })
        .filter(|(n, _)| {
            !n.starts_with("lm_head") && !n.starts_with("score") && !n.starts_with("classifier")
        })
        .map(|(n, v)| {
            let module = n.trim_end_matches(".weight").to_string();
            let (a, b) = v.dims2().expect("rank 2");
            if conv1d {
                (module, a, b, LinearKind::Conv1D)
            } else {
                (module, b, a, LinearKind::Linear)
            }
        })
        .collect()
}

fn matches(module: &str, target: &str) -> bool {
    module == target || module.ends_with(&format!(".{target}"))
}

impl Lora {
    /// The low-rank update for `x2` (rows, in) through `module`, if it has an adapter.
    pub(crate) fn delta(
        &self,
        m: &Model,
        x2: &Tensor,
        module: &str,
        train: bool,
    ) -> Result<Option<Tensor>> {
        if !self.modules.contains(module) {
            return Ok(None);
        }
        let a = m.params.get(&format!("{module}.lora_A.weight"))?;
        let b = m.params.get(&format!("{module}.lora_B.weight"))?;
        let p = self.config.dropout;
        let x = if train && p > 0.0 {
            let n = x2.elem_count();
            let keep: Vec<f32> = {
                let mut rng = self.rng.lock().expect("the LoRA rng is never poisoned");
                (0..n)
                    .map(|_| {
                        if rng.uniform() < p {
                            0.0
                        } else {
                            (1.0 / (1.0 - p)) as f32
                        }
                    })
                    .collect()
            };
            let mask = Tensor::from_vec(keep, x2.dims(), x2.device())?.to_dtype(x2.dtype())?;
            (x2 * mask)?
        } else {
            x2.clone()
        };
        let scale = self.config.alpha / self.config.rank as f64;
        Ok(Some((x.matmul(&a.t()?)?.matmul(&b.t()?)? * scale)?))
    }

    pub(crate) fn rng_state(&self) -> Rng {
        self.rng.lock().expect("never poisoned").clone()
    }

    pub(crate) fn set_rng_state(&self, rng: Rng) {
        *self.rng.lock().expect("never poisoned") = rng;
    }
}

impl Model {
    /// Adds LoRA adapters to the target modules and freezes everything else. A (rank, in) is
    /// Kaiming-uniform (PEFT's default), B (out, rank) zero, so the model starts unchanged.
    pub fn add_lora(&mut self, o: LoraOptions) -> Result<()> {
        const OP: &str = "lora";
        crate::Options::check(&o, OP)?;
        if self.lora.is_some() {
            return Err(Error::invalid(
                OP,
                "model",
                "a model without adapters (merge or reload first)",
                "a model with LoRA adapters",
            ));
        }
        let config = LoraConfig {
            rank: o.rank,
            alpha: o.alpha.unwrap_or(2.0 * o.rank as f64),
            dropout: o.dropout,
            targets: o.targets.unwrap_or_else(|| default_targets(&self.arch)),
            seed: o.seed,
        };
        let linears = linear_modules(self);
        let mut modules = BTreeSet::new();
        let mut rng = Rng::derived(config.seed, 3);
        for (module, fan_in, fan_out, _) in &linears {
            if !config.targets.iter().any(|t| matches(module, t)) {
                continue;
            }
            let bound = 1.0 / (*fan_in as f64).sqrt();
            let a: Vec<f32> = (0..config.rank * fan_in)
                .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
                .collect();
            let a =
                Tensor::from_vec(a, (config.rank, *fan_in), &self.device)?.to_dtype(self.dtype)?;
            let b = Tensor::zeros((*fan_out, config.rank), self.dtype, &self.device)?;
            modules.insert(module.clone());
            self.params.insert(format!("{module}.lora_A.weight"), a)?;
            self.params.insert(format!("{module}.lora_B.weight"), b)?;
        }
        for t in &config.targets {
            if !linears.iter().any(|(m, ..)| matches(m, t)) {
                let mut names: Vec<String> = linears
                    .iter()
                    .filter_map(|(m, ..)| m.rsplit('.').next().map(str::to_string))
                    .collect();
                names.sort();
                names.dedup();
                for m in &modules {
                    self.params.remove(&format!("{m}.lora_A.weight"));
                    self.params.remove(&format!("{m}.lora_B.weight"));
                }
                return Err(Error::invalid(
                    OP,
                    "targets",
                    format!("linear modules of this model: {}", names.join(", ")),
                    format!("'{t}'"),
                ));
            }
        }
        // Freeze the base, train the adapters.
        let base: Vec<String> = self
            .params
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !is_adapter(n))
            .collect();
        for n in &base {
            self.params.freeze(n);
        }
        self.lora = Some(Lora {
            rng: Mutex::new(Rng::derived(config.seed, 4)),
            config,
            modules,
        });
        Ok(())
    }

    pub fn lora_config(&self) -> Option<&LoraConfig> {
        self.lora.as_ref().map(|l| &l.config)
    }

    pub(crate) fn lora_state(&self) -> Option<&Lora> {
        self.lora.as_ref()
    }

    /// Folds the adapters into the base weights (`W += scale·B·A`, transposed for Conv1D),
    /// removes them and unfreezes the model.
    pub fn merge_lora(&mut self) -> Result<()> {
        let Some(lora) = self.lora.take() else {
            return Err(Error::invalid(
                "merge_lora",
                "model",
                "a model with LoRA adapters",
                "a model without",
            ));
        };
        let scale = lora.config.alpha / lora.config.rank as f64;
        let conv1d = matches!(self.arch, Arch::Gpt2(_));
        for module in &lora.modules {
            let a = self
                .params
                .remove(&format!("{module}.lora_A.weight"))
                .expect("adapter A");
            let b = self
                .params
                .remove(&format!("{module}.lora_B.weight"))
                .expect("adapter B");
            let delta = (b
                .as_tensor()
                .to_dtype(DType::F32)?
                .matmul(&a.as_tensor().to_dtype(DType::F32)?)?
                * scale)?;
            let delta = if conv1d { delta.t()? } else { delta };
            let name = format!("{module}.weight");
            let w = self.params.get(&name)?.to_dtype(DType::F32)?;
            self.params.set(&name, &(w + delta)?)?;
        }
        self.params.unfreeze_all();
        Ok(())
    }

    /// Writes the adapters in PEFT's format.
    pub fn save_adapter(&self, dir: &Path) -> Result<()> {
        let Some(lora) = &self.lora else {
            return Err(Error::invalid(
                "save_adapter",
                "model",
                "a model with LoRA adapters",
                "a model without",
            ));
        };
        std::fs::create_dir_all(dir).map_err(Error::io("save_adapter", dir))?;
        let mut tensors = HashMap::new();
        for (name, var) in self.params.iter().filter(|(n, _)| is_adapter(n)) {
            tensors.insert(format!("base_model.model.{name}"), var.as_tensor().clone());
        }
        io::save_tensors(&dir.join("adapter_model.safetensors"), &tensors)?;
        let task = match self.head {
            super::Head::Lm => "CAUSAL_LM",
            super::Head::None => "FEATURE_EXTRACTION",
            _ => "SEQ_CLS",
        };
        let c = &lora.config;
        let config = json!({
            "peft_type": "LORA",
            "task_type": task,
            "r": c.rank,
            "lora_alpha": c.alpha,
            "lora_dropout": c.dropout,
            "target_modules": c.targets,
            "fan_in_fan_out": matches!(self.arch, Arch::Gpt2(_)),
            "bias": "none",
            "init_lora_weights": true,
            "sandwich_seed": c.seed,
        });
        io::write_json(&dir.join("adapter_config.json"), &config)
    }

    /// Adds the adapters saved in `dir` (PEFT format) to this model.
    pub fn load_adapter(&mut self, dir: &Path) -> Result<()> {
        const OP: &str = "load_adapter";
        let cfg = io::read_json(OP, &dir.join("adapter_config.json"))?;
        let get = |k: &str| cfg.get(k).cloned().unwrap_or(Value::Null);
        let rank = get("r")
            .as_u64()
            .ok_or_else(|| Error::invalid(OP, "adapter_config.json", "an integer 'r'", get("r")))?
            as usize;
        let targets: Vec<String> = match get("target_modules") {
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Value::String(s) => vec![s],
            other => {
                return Err(Error::invalid(
                    OP,
                    "adapter_config.json",
                    "a list 'target_modules'",
                    other,
                ))
            }
        };
        let options = LoraOptions {
            rank,
            alpha: Some(get("lora_alpha").as_f64().unwrap_or(rank as f64)),
            dropout: get("lora_dropout").as_f64().unwrap_or(0.0),
            // PEFT writes the list it matched; an empty one means the architecture's default.
            targets: (!targets.is_empty()).then_some(targets),
            seed: get("sandwich_seed").as_u64().unwrap_or(0),
        };
        self.add_lora(options)?;
        let weights = io::Weights::open(OP, &[dir.join("adapter_model.safetensors")])?;
        let mut seen = 0;
        for (file_name, _) in weights.shapes() {
            let name = file_name
                .strip_prefix("base_model.model.")
                .unwrap_or(&file_name);
            let t = weights.load(&file_name, &self.device)?;
            if !self.params.contains(name) {
                self.lora = None;
                return Err(Error::invalid(
                    OP,
                    "adapter",
                    "adapters for this model's modules",
                    format!("'{file_name}'"),
                ));
            }
            let expected = self.params.var(name).expect("checked").shape().clone();
            if t.shape() != &expected {
                return Err(Error::invalid(
                    OP,
                    "adapter",
                    format!("'{name}' of shape {expected:?}"),
                    format!("{:?}", t.dims()),
                ));
            }
            self.params.set(name, &t)?;
            seen += 1;
        }
        let expected = self.params.iter().filter(|(n, _)| is_adapter(n)).count();
        if seen != expected {
            return Err(Error::invalid(
                OP,
                "adapter",
                format!("{expected} adapter tensors"),
                seen,
            ));
        }
        Ok(())
    }
}
