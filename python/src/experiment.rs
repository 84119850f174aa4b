//! `sandwich.experiment` straight over `sandwich_core::experiment`, without Lua: the spec (a
//! dict, typed in Python by `sandwich._spec`) arrives as JSON and becomes the core's `Spec`;
//! a task DataFrame, custom arms' `supervise` callables and hooks arrive beside it. Custom arms
//! run through one adapter ([`PyArm`]), as Lua's do through theirs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use polars::prelude::DataFrame;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sandwich_core::experiment::{
    self as core, Build, Context, Experiment, RunHooks, Spec, Supervision, Supervisor,
};
use sandwich_core::train::StepReport;
use sandwich_core::Interrupt;

use crate::error::{core_to_py, ConfigError};
use crate::frame::{extract_frame, PyDataFrame};
use crate::session::PyProgress;

/// The Python exception that stopped a run (a hook's, a custom arm's), re-raised as itself.
type Failed = Arc<Mutex<Option<PyErr>>>;

fn keep(failed: &Failed, e: PyErr) -> String {
    let message = Python::attach(|py| e.value(py).to_string());
    *failed.lock().expect("not poisoned") = Some(e);
    message
}

fn frame(py: Python<'_>, df: &DataFrame) -> PyResult<Py<PyDataFrame>> {
    Py::new(py, PyDataFrame { df: df.clone() })
}

/// A custom arm: `supervise(ctx)` returns B's `id, label` or `id, p0 …` as any frame with
/// `__arrow_c_stream__` (polars, pyarrow, pandas, a sandwich DataFrame).
struct PyArm {
    name: String,
    supervise: Py<PyAny>,
    failed: Failed,
}

impl Supervisor for PyArm {
    fn supervise(&self, ctx: &Context) -> sandwich_core::Result<Supervision> {
        let novices = ctx.services.novices().ok();
        let out = Python::attach(|py| -> PyResult<(DataFrame, bool)> {
            let d = PyDict::new(py);
            d.set_item("seed", ctx.seed)?;
            d.set_item("classes", ctx.classes)?;
            d.set_item("a", frame(py, ctx.a)?)?;
            d.set_item("b", frame(py, ctx.b)?)?;
            d.set_item("weak_predictions", frame(py, ctx.weak_predictions)?)?;
            if let Some(n) = &novices {
                d.set_item("novices", frame(py, n)?)?;
            }
            let value = self.supervise.call1(py, (d,))?;
            // A frame, or {"data": frame, "aux": True} to train with the auxiliary loss.
            let value = value.bind(py);
            if let Ok(d) = value.cast::<PyDict>() {
                let aux = d
                    .get_item("aux")?
                    .map(|a| a.extract::<bool>())
                    .transpose()?;
                let data = d.get_item("data")?.ok_or_else(|| {
                    ConfigError::new_err(
                        "a custom arm's dict needs 'data' (a frame) and may have 'aux'",
                    )
                })?;
                return Ok((extract_frame(&data)?, aux.unwrap_or(false)));
            }
            Ok((extract_frame(value)?, false))
        });
        let (df, aux) = out.map_err(|e| sandwich_core::Error::Hook {
            op: "experiment",
            hook: "supervise",
            message: format!("custom arm '{}': {}", self.name, keep(&self.failed, e)),
        })?;
        Ok(Supervision::from_custom(df, aux, ctx))
    }
}

/// The spec from JSON, with the path of a bad field in the error (`spec.aux.warmup`).
fn parse_spec(json: &str) -> PyResult<Spec> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            "spec".to_string()
        } else {
            format!("spec.{path}")
        };
        ConfigError::new_err(format!(
            "sandwich.experiment: bad spec field '{at}': {}",
            e.into_inner()
        ))
    })
}

fn arms(
    supervise: HashMap<String, Py<PyAny>>,
    failed: &Failed,
) -> HashMap<String, Box<dyn Supervisor>> {
    supervise
        .into_iter()
        .map(|(name, f)| {
            let arm = PyArm {
                name: name.clone(),
                supervise: f,
                failed: failed.clone(),
            };
            (name, Box::new(arm) as Box<dyn Supervisor>)
        })
        .collect()
}

/// An experiment run from Python.
#[pyclass(name = "Experiment", module = "sandwich")]
pub struct PyExperiment {
    exp: Experiment,
    /// Custom arms given as Python callables: they run only in this process.
    inline_arms: Vec<String>,
    on_step: Option<Py<PyAny>>,
    on_arm_done: Option<Py<PyAny>>,
    failed: Failed,
}

/// Runs `f` without the GIL, with a progress bar and Ctrl-C, calling the Python hooks; an
/// exception a hook or custom arm raised is re-raised as itself.
fn with_hooks<T: Send>(
    py: Python<'_>,
    on_step: Option<&Py<PyAny>>,
    on_arm_done: Option<&Py<PyAny>>,
    failed: &Failed,
    f: impl FnOnce(RunHooks) -> sandwich_core::Result<T> + Send,
) -> PyResult<T> {
    let interrupt = Interrupt::new();
    let progress = PyProgress {
        interrupt: interrupt.clone(),
    };
    let step = |arm: &str, seed: u64, r: &StepReport| -> sandwich_core::Result<()> {
        let Some(h) = on_step else { return Ok(()) };
        Python::attach(|py| -> PyResult<()> {
            let d = PyDict::new(py);
            d.set_item("step", r.step)?;
            d.set_item("total", r.total)?;
            d.set_item("epoch", r.epoch)?;
            d.set_item("loss", r.loss)?;
            d.set_item("lr", r.lr)?;
            d.set_item("grad_norm", r.grad_norm)?;
            // As Lua's hook table: None where the step did not evaluate.
            d.set_item("eval_loss", r.eval_loss)?;
            d.set_item("eval_accuracy", r.eval_accuracy)?;
            h.call1(py, (arm, seed, d)).map(drop)
        })
        .map_err(|e| sandwich_core::Error::Hook {
            op: "experiment",
            hook: "on_step",
            message: keep(failed, e),
        })
    };
    let done = |arm: &str, seed: u64, acc: f64| -> sandwich_core::Result<()> {
        let Some(h) = on_arm_done else { return Ok(()) };
        Python::attach(|py| h.call1(py, (arm, seed, acc)).map(drop)).map_err(|e| {
            sandwich_core::Error::Hook {
                op: "experiment",
                hook: "on_arm_done",
                message: keep(failed, e),
            }
        })
    };
    let out = py.detach(|| {
        f(RunHooks {
            progress: &progress,
            interrupt: Some(&interrupt),
            on_step: Some(&step),
            on_arm_done: Some(&done),
        })
    });
    if let Some(e) = failed.lock().expect("not poisoned").take() {
        return Err(e);
    }
    out.map_err(core_to_py)
}

fn build() -> Build {
    // The Lua crate's: its build script records the git revision (this crate has none).
    sandwich_lua::sweep::build()
}

fn ran(exp: &Experiment, method: &str) -> PyResult<()> {
    if exp.results.is_none() {
        return Err(ConfigError::new_err(format!(
            "Experiment.{method}: the experiment has not run yet: call run() first"
        )));
    }
    Ok(())
}

fn out(py: Python<'_>, r: sandwich_core::Result<DataFrame>) -> PyResult<Py<PyDataFrame>> {
    frame(py, &r.map_err(core_to_py)?)
}

#[pymethods]
impl PyExperiment {
    fn __repr__(&self) -> String {
        format!(
            "Experiment '{}' ({} arms, {} seeds)",
            self.exp.name,
            self.exp.spec.arms.len(),
            self.exp.spec.seeds.len()
        )
    }

    /// Runs every arm for every seed; `arm, seed, split, metric, value`. `options` is the
    /// JSON of `exp:run{...}`'s table (backend, dir, workers, Slurm's options); with Slurm and
    /// `wait = false`, the sweep's task table after submission.
    #[pyo3(signature = (options = None))]
    fn run(&mut self, py: Python<'_>, options: Option<&str>) -> PyResult<Py<PyDataFrame>> {
        let o: core::sweep::RunOptions = match options {
            None => Default::default(),
            Some(text) => {
                let de = &mut serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize(de).map_err(|e| {
                    let path = e.path().to_string();
                    ConfigError::new_err(format!(
                        "Experiment.run: bad option '{path}': {}",
                        e.into_inner()
                    ))
                })?
            }
        };
        let failed = self.failed.clone();
        let (on_step, on_arm_done) = (
            self.on_step.as_ref().map(|h| h.clone_ref(py)),
            self.on_arm_done.as_ref().map(|h| h.clone_ref(py)),
        );
        let has_hooks = on_step.is_some() || on_arm_done.is_some();
        let inline_arms = self.inline_arms.clone();
        let exp = &mut self.exp;
        let r = with_hooks(py, on_step.as_ref(), on_arm_done.as_ref(), &failed, |h| {
            core::sweep::run_with(
                exp,
                &o,
                has_hooks,
                &inline_arms,
                sandwich_lua::sweep::worker(),
                &build(),
                h,
            )
        })?;
        match r {
            core::sweep::Ran::Results(df) | core::sweep::Ran::Submitted(df) => frame(py, &df),
        }
    }

    fn results(&self, py: Python<'_>) -> PyResult<Py<PyDataFrame>> {
        ran(&self.exp, "results")?;
        frame(py, self.exp.results.as_ref().expect("ran"))
    }

    fn items(&self, py: Python<'_>) -> PyResult<Option<Py<PyDataFrame>>> {
        ran(&self.exp, "items")?;
        self.exp.items.as_ref().map(|d| frame(py, d)).transpose()
    }

    fn curves(&self, py: Python<'_>) -> PyResult<Option<Py<PyDataFrame>>> {
        ran(&self.exp, "curves")?;
        self.exp.curves.as_ref().map(|d| frame(py, d)).transpose()
    }

    fn accuracy(&self, py: Python<'_>) -> PyResult<Py<PyDataFrame>> {
        out(py, self.exp.accuracy())
    }

    #[pyo3(signature = (baseline = None))]
    fn pgr(&self, py: Python<'_>, baseline: Option<String>) -> PyResult<Py<PyDataFrame>> {
        out(py, self.exp.pgr(baseline.as_deref()))
    }

    fn compare(&self, py: Python<'_>, a: &str, b: &str) -> PyResult<Py<PyDataFrame>> {
        out(py, self.exp.compare(a, b))
    }

    fn supervision(&self, py: Python<'_>) -> PyResult<Py<PyDataFrame>> {
        out(py, self.exp.supervision())
    }

    /// The report as `(html, text)`: the HTML fragment a notebook shows (the file wraps it) and
    /// the same titled tables as text.
    fn report(&self) -> PyResult<(String, String)> {
        ran(&self.exp, "report")?;
        let r = core::render(&self.exp).map_err(core_to_py)?;
        Ok((r.html, r.text))
    }

    fn write_report(&self, path: PathBuf) -> PyResult<String> {
        ran(&self.exp, "write_report")?;
        self.exp.write_report(&path).map_err(core_to_py)?;
        Ok(path.display().to_string())
    }

    /// The manifest as JSON text.
    fn manifest_json(&self) -> PyResult<String> {
        let m = self.exp.manifest(&build()).map_err(core_to_py)?;
        serde_json::to_string(&m).map_err(|e| ConfigError::new_err(e.to_string()))
    }

    fn save(&self, dir: PathBuf) -> PyResult<String> {
        ran(&self.exp, "save")?;
        self.exp.save(&dir, &build()).map_err(core_to_py)?;
        Ok(dir.display().to_string())
    }
}

/// Declares an experiment from its spec as JSON (`sandwich._spec` types it), the task frame
/// when the spec's task is one, custom arms' `supervise` callables by name, and the hooks.
#[pyfunction]
#[pyo3(name = "_experiment", signature = (name, spec, task = None, supervise = HashMap::new(), on_step = None, on_arm_done = None))]
pub fn experiment(
    name: &str,
    spec: &str,
    task: Option<&Bound<'_, PyAny>>,
    supervise: HashMap<String, Py<PyAny>>,
    on_step: Option<Py<PyAny>>,
    on_arm_done: Option<Py<PyAny>>,
) -> PyResult<PyExperiment> {
    let spec = parse_spec(spec)?;
    let task = task.map(extract_frame).transpose()?;
    let failed = Failed::default();
    let inline_arms: Vec<String> = supervise.keys().cloned().collect();
    let mut custom = arms(supervise, &failed);
    // Arms the spec lists that are neither built in nor Python callables: the Lua file's.
    sandwich_lua::sweep::add_file_arms(&spec, &mut custom).map_err(core_to_py)?;
    let exp = Experiment::new(name, spec, task, custom).map_err(core_to_py)?;
    Ok(PyExperiment {
        exp,
        inline_arms,
        on_step,
        on_arm_done,
        failed,
    })
}

/// Reruns a saved experiment: (results, identical, experiment).
#[pyfunction]
#[pyo3(name = "_rerun", signature = (dir, task = None, supervise = HashMap::new()))]
pub fn rerun(
    py: Python<'_>,
    dir: PathBuf,
    task: Option<&Bound<'_, PyAny>>,
    supervise: HashMap<String, Py<PyAny>>,
) -> PyResult<(Py<PyDataFrame>, bool, PyExperiment)> {
    let task = task.map(extract_frame).transpose()?;
    let failed = Failed::default();
    let custom_names: Vec<String> = supervise.keys().cloned().collect();
    let mut custom = arms(supervise, &failed);
    // Custom arms not given as callables come from the manifest's arms file.
    let m = core::read_manifest(&dir).map_err(core_to_py)?;
    sandwich_lua::sweep::add_file_arms(&m.spec, &mut custom).map_err(core_to_py)?;
    let (exp, identical) = with_hooks(py, None, None, &failed, |h| {
        core::rerun(&dir, task, custom, h)
    })?;
    let results = frame(py, exp.results.as_ref().expect("ran"))?;
    Ok((
        results,
        identical,
        PyExperiment {
            exp,
            inline_arms: custom_names,
            on_step: None,
            on_arm_done: None,
            failed,
        },
    ))
}

/// The keys each spec table accepts, from the core's types (checked against `sandwich._spec`).
#[pyfunction]
#[pyo3(name = "_spec_fields")]
pub fn spec_fields() -> Vec<(String, Vec<String>)> {
    core::fields()
        .into_iter()
        .map(|(t, f)| (t.to_string(), f))
        .collect()
}

/// Collects a sweep's shards (`sandwich sweep collect`): the experiment with its results.
#[pyfunction]
#[pyo3(name = "_sweep_collect")]
pub fn sweep_collect(py: Python<'_>, dir: PathBuf) -> PyResult<PyExperiment> {
    let exp = py
        .detach(|| sandwich_lua::sweep::collect(&dir))
        .map_err(core_to_py)?;
    Ok(PyExperiment {
        exp,
        inline_arms: Vec::new(),
        on_step: None,
        on_arm_done: None,
        failed: Failed::default(),
    })
}

/// The states of a sweep's tasks (`sandwich sweep status`).
#[pyfunction]
#[pyo3(name = "_sweep_status")]
pub fn sweep_status(py: Python<'_>, dir: PathBuf) -> PyResult<Py<PyDataFrame>> {
    let df = py
        .detach(|| sandwich_lua::sweep::status(&dir))
        .map_err(core_to_py)?;
    frame(py, &df)
}

/// `python -m sandwich sweep ARGS`: the `sandwich sweep` command; returns its exit status.
#[pyfunction]
#[pyo3(name = "_sweep_main")]
pub fn sweep_main(py: Python<'_>, args: Vec<String>) -> i32 {
    let interrupt = Interrupt::new();
    let progress = PyProgress {
        interrupt: interrupt.clone(),
    };
    py.detach(|| sandwich_lua::sweep::main(&args, &progress, Some(&interrupt)))
}
