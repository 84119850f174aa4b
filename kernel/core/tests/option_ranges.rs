//! Property tests over every option struct: any value outside an option's documented range is
//! an error that names the operation and the option; values inside it pass. The ranges below
//! are the ones the doc pages state (`lua/docs/...`), and the structs' `Options::check` is what
//! every public function taking them calls first.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sandwich_core::experiment::Spec;
use sandwich_core::model::{GenerateOptions, LoadOptions, LoraOptions, NewOptions};
use sandwich_core::oversight::{
    BtOptions, IterOptions, MaceOptions, NoisyBtOptions, SimulateOptions,
};
use sandwich_core::train::TrainConfig;
use sandwich_core::{CsvReadOptions, CsvWriteOptions, Options};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// The documented ranges of numeric options.
#[derive(Clone, Copy, Debug)]
enum Range {
    /// A finite number > 0.
    Positive,
    /// A finite number ≥ 0.
    NonNegative,
    /// [0, 1].
    Probability,
    /// [0, 1).
    Unit,
    /// (0, 1].
    OpenUnit,
    /// (0, 1).
    OpenBoth,
}

fn outside(r: Range) -> BoxedStrategy<f64> {
    let special = prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)];
    let below_zero = -1e12..-1e-12f64;
    let above_one = prop_oneof![Just(1.0 + 1e-9), (1.0 + 1e-9)..1e12f64];
    match r {
        Range::Positive => prop_oneof![special, Just(0.0), below_zero].boxed(),
        Range::NonNegative => prop_oneof![special, below_zero].boxed(),
        Range::Probability => prop_oneof![special, below_zero, above_one].boxed(),
        Range::Unit => prop_oneof![special, below_zero, Just(1.0), above_one].boxed(),
        Range::OpenUnit => prop_oneof![special, Just(0.0), below_zero, above_one].boxed(),
        Range::OpenBoth => {
            prop_oneof![special, Just(0.0), below_zero, Just(1.0), above_one].boxed()
        }
    }
}

fn inside(r: Range) -> BoxedStrategy<f64> {
    match r {
        Range::Positive => prop_oneof![1e-9..1e9f64, Just(f64::MIN_POSITIVE)].boxed(),
        Range::NonNegative => prop_oneof![Just(0.0), 0.0..1e9f64].boxed(),
        Range::Probability => prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64].boxed(),
        Range::Unit => prop_oneof![Just(0.0), 0.0..1.0f64].boxed(),
        Range::OpenUnit => prop_oneof![Just(1.0), 1e-12..=1.0f64].boxed(),
        Range::OpenBoth => (1e-9..1.0f64).boxed(),
    }
}

/// How a doc page says a range (in the option's row).
fn phrase(r: Range) -> &'static str {
    match r {
        Range::Positive => "> 0",
        Range::NonNegative => "≥ 0",
        Range::Probability => "[0, 1]",
        Range::Unit => "[0, 1)",
        Range::OpenUnit => "(0, 1]",
        Range::OpenBoth => "(0, 1)",
    }
}

/// The doc pages of an operation's options.
fn pages(op: &str) -> &'static [&'static str] {
    match op {
        "train" => &["sw.train.classify.md", "sw.train.sft.md"],
        "generate" => &["Model.generate.md"],
        "aggregate.mace" => &["sw.aggregate.mace.md"],
        "aggregate.zero_based_skill" => &["sw.aggregate.zero_based_skill.md"],
        "aggregate.dawid_skene" => &[
            "sw.aggregate.dawid_skene.md",
            "sw.aggregate.one_coin_dawid_skene.md",
            "sw.aggregate.glad.md",
        ],
        "aggregate.bradley_terry" => &["sw.aggregate.bradley_terry.md"],
        "aggregate.noisy_bradley_terry" => &["sw.aggregate.noisy_bradley_terry.md"],
        "overseers.simulate" => &["sw.overseers.simulate.md"],
        "model.new" => &["sw.model.new.md"],
        "model.load" => &["sw.model.load.md"],
        "lora" => &["sw.lora.md"],
        "read_csv" => &["sw.read_csv.md"],
        "write_csv" => &["DataFrame.write_csv.md"],
        other => panic!("no doc page listed for {other}"),
    }
}

/// The rows of `page` documenting `key` (in the table whose header starts with `table`, when
/// given): a row's first cell lists one or more keys, e.g. "`beta1, beta2, eps`".
fn doc_rows(page: &str, table: Option<&str>, key: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../lua/docs")
        .join(page);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut in_table = table.is_none();
    let mut rows = vec![];
    for line in text.lines() {
        let Some(first) = line.strip_prefix('|').and_then(|l| l.split('|').next()) else {
            continue;
        };
        let first = first.trim();
        if let Some(t) = table {
            if first.ends_with(" key") || first == "option" || first == "arm" {
                in_table = first.starts_with(t);
                continue;
            }
        }
        let keys = first.replace('`', "");
        if in_table && keys.split(',').any(|k| k.trim() == key) {
            rows.push(line.to_string());
        }
    }
    rows
}

thread_local! {
    /// What the pages fail to say, gathered over one test (each test runs on its own thread).
    static UNDOCUMENTED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The option's row on its page states the range the check enforces.
fn documented(op: &str, field: &str, phrase: &str) {
    let rows: Vec<String> = pages(op)
        .iter()
        .flat_map(|p| doc_rows(p, None, field))
        .collect();
    let mut missing = vec![];
    if rows.is_empty() {
        missing.push(format!("{op}: no row for '{field}' on {:?}", pages(op)));
    }
    for row in rows.into_iter().filter(|r| !r.contains(phrase)) {
        missing.push(format!(
            "{op}.{field}: the row does not say {phrase:?}: {row}"
        ));
    }
    UNDOCUMENTED.with(|u| u.borrow_mut().extend(missing));
}

/// Fails the test with every option whose page row does not state its range.
fn all_documented() {
    let missing = UNDOCUMENTED.with(|u| std::mem::take(&mut *u.borrow_mut()));
    assert!(missing.is_empty(), "\n{}", missing.join("\n"));
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    })
}

fn base<T: DeserializeOwned>(json: &Value) -> T {
    serde_json::from_value(json.clone()).expect("the base options are valid")
}

/// The options with `set(value)` applied to the base, and what `check` says of them.
fn checked<T: Options + DeserializeOwned, V>(
    op: &'static str,
    json: &Value,
    set: fn(&mut T, V),
    v: V,
) -> sandwich_core::Result<()> {
    let mut o: T = base(json);
    set(&mut o, v);
    o.check(op)
}

/// Every value drawn is refused with an error naming `op` and `field`.
fn refuses<T: Options + DeserializeOwned, V: Clone + std::fmt::Debug>(
    op: &'static str,
    json: &Value,
    field: &str,
    values: impl Strategy<Value = V>,
    set: fn(&mut T, V),
) {
    runner()
        .run(&values, |v| {
            let msg = checked(op, json, set, v.clone())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            prop_assert!(
                msg.contains(op) && msg.contains(&format!("'{field}'")),
                "{op}.{field} = {v:?}: {msg:?}"
            );
            Ok(())
        })
        .unwrap();
}

/// Every value drawn passes.
fn accepts<T: Options + DeserializeOwned, V: Clone + std::fmt::Debug>(
    op: &'static str,
    json: &Value,
    field: &str,
    values: impl Strategy<Value = V>,
    set: fn(&mut T, V),
) {
    runner()
        .run(&values, |v| {
            let r = checked(op, json, set, v.clone());
            prop_assert!(r.is_ok(), "{op}.{field} = {v:?} refused: {r:?}");
            Ok(())
        })
        .unwrap();
}

/// A number option: outside its range an error naming `op` and `field`; inside it, no error.
fn number<T: Options + DeserializeOwned>(
    op: &'static str,
    json: Value,
    field: &str,
    range: Range,
    set: fn(&mut T, f64),
) {
    refuses(op, &json, field, outside(range), set);
    accepts(op, &json, field, inside(range), set);
    documented(op, field, phrase(range));
}

/// A count option (≥ 1): 0 is an error naming it; positive counts pass unless `free` is
/// false (a count tied to another option, such as heads dividing hidden_size).
fn count<T: Options + DeserializeOwned>(
    op: &'static str,
    json: Value,
    field: &str,
    free: bool,
    set: fn(&mut T, usize),
) {
    refuses(op, &json, field, Just(0usize), set);
    documented(op, field, "≥ 1");
    if free {
        accepts(op, &json, field, 1usize..100_000, set);
    }
}

#[test]
fn train_config() {
    let j = json!({});
    let op = "train";
    number::<TrainConfig>(op, j.clone(), "lr", Range::NonNegative, |o, v| o.lr = v);
    number::<TrainConfig>(op, j.clone(), "weight_decay", Range::NonNegative, |o, v| {
        o.weight_decay = v
    });
    number::<TrainConfig>(op, j.clone(), "beta1", Range::Unit, |o, v| o.beta1 = v);
    number::<TrainConfig>(op, j.clone(), "beta2", Range::Unit, |o, v| o.beta2 = v);
    number::<TrainConfig>(op, j.clone(), "eps", Range::Positive, |o, v| o.eps = v);
    number::<TrainConfig>(op, j.clone(), "max_grad_norm", Range::Positive, |o, v| {
        o.max_grad_norm = Some(v)
    });
    number::<TrainConfig>(op, j.clone(), "aux_coef", Range::Probability, |o, v| {
        o.aux_coef = v
    });
    number::<TrainConfig>(
        op,
        j.clone(),
        "aux_warmup_frac",
        Range::Probability,
        |o, v| o.aux_warmup_frac = v,
    );
    count::<TrainConfig>(op, j.clone(), "batch_size", true, |o, v| o.batch_size = v);
    count::<TrainConfig>(op, j.clone(), "grad_accum", true, |o, v| o.grad_accum = v);
    count::<TrainConfig>(op, j.clone(), "epochs", true, |o, v| o.epochs = v);
    count::<TrainConfig>(op, j.clone(), "keep_checkpoints", true, |o, v| {
        o.keep_checkpoints = v
    });
    count::<TrainConfig>(op, j.clone(), "max_steps", true, |o, v| {
        o.max_steps = Some(v)
    });
    count::<TrainConfig>(op, j.clone(), "eval_every", true, |o, v| {
        o.eval_every = Some(v)
    });
    // Checkpointing needs a directory beside it, so only its zero is free of other options.
    count::<TrainConfig>(op, j, "checkpoint_every", false, |o, v| {
        o.checkpoint_every = Some(v)
    });
    all_documented();
}

#[test]
fn generate_options() {
    let (op, j) = ("generate", json!({}));
    number::<GenerateOptions>(op, j.clone(), "temperature", Range::NonNegative, |o, v| {
        o.temperature = v
    });
    number::<GenerateOptions>(op, j.clone(), "top_p", Range::OpenUnit, |o, v| {
        o.top_p = Some(v)
    });
    count::<GenerateOptions>(op, j.clone(), "max_new_tokens", true, |o, v| {
        o.max_new_tokens = v
    });
    count::<GenerateOptions>(op, j.clone(), "batch_size", true, |o, v| o.batch_size = v);
    count::<GenerateOptions>(op, j, "top_k", true, |o, v| o.top_k = Some(v));
    all_documented();
}

#[test]
fn aggregator_options() {
    let (op, j) = ("aggregate.mace", json!({}));
    for (field, set) in [
        (
            "tol",
            (|o: &mut MaceOptions, v| o.tol = v) as fn(&mut MaceOptions, f64),
        ),
        ("default_noise", |o, v| o.default_noise = v),
    ] {
        number::<MaceOptions>(op, j.clone(), field, Range::NonNegative, set);
    }
    for (field, set) in [
        (
            "smoothing",
            (|o: &mut MaceOptions, v| o.smoothing = Some(v)) as fn(&mut MaceOptions, f64),
        ),
        ("alpha", |o, v| o.alpha = v),
        ("beta", |o, v| o.beta = v),
    ] {
        number::<MaceOptions>(op, j.clone(), field, Range::Positive, set);
    }
    count::<MaceOptions>(op, j.clone(), "n_restarts", true, |o, v| o.n_restarts = v);
    count::<MaceOptions>(op, j, "n_iter", true, |o, v| o.n_iter = v);

    // The EM methods take n_iter and tol of the iterative options; zero-based skill the rest.
    let (op, j) = ("aggregate.dawid_skene", json!({}));
    number::<IterOptions>(op, j.clone(), "tol", Range::NonNegative, |o, v| o.tol = v);
    count::<IterOptions>(op, j, "n_iter", true, |o, v| o.n_iter = v);
    let (op, j) = ("aggregate.zero_based_skill", json!({}));
    number::<IterOptions>(op, j.clone(), "eps", Range::NonNegative, |o, v| o.eps = v);
    number::<IterOptions>(op, j.clone(), "lr_init", Range::Positive, |o, v| {
        o.lr_init = v
    });
    number::<IterOptions>(
        op,
        j.clone(),
        "lr_reduce_factor",
        Range::Probability,
        |o, v| o.lr_reduce_factor = v,
    );
    count::<IterOptions>(op, j.clone(), "n_iter", true, |o, v| o.n_iter = v);
    count::<IterOptions>(op, j, "lr_steps_to_reduce", true, |o, v| {
        o.lr_steps_to_reduce = v
    });

    let (op, j) = ("aggregate.bradley_terry", json!({}));
    number::<BtOptions>(op, j.clone(), "tol", Range::NonNegative, |o, v| o.tol = v);
    count::<BtOptions>(op, j, "n_iter", true, |o, v| o.n_iter = v);
    let (op, j) = ("aggregate.noisy_bradley_terry", json!({}));
    number::<NoisyBtOptions>(
        op,
        j.clone(),
        "regularization_ratio",
        Range::NonNegative,
        |o, v| o.regularization_ratio = v,
    );
    count::<NoisyBtOptions>(op, j, "n_iter", true, |o, v| o.n_iter = v);
    all_documented();
}

#[test]
fn simulate_options() {
    let op = "overseers.simulate";
    let j = json!({"overseers": [{"id": "a", "accuracy": 0.8, "bias": "pos"}]});
    number::<SimulateOptions>(op, j.clone(), "accuracy", Range::Probability, |o, v| {
        o.overseers[0].accuracy = Some(v)
    });
    number::<SimulateOptions>(op, j.clone(), "flip", Range::Probability, |o, v| {
        o.overseers[0].flip = v
    });
    number::<SimulateOptions>(
        op,
        j.clone(),
        "bias_strength",
        Range::Probability,
        |o, v| o.overseers[0].bias_strength = v,
    );
    number::<SimulateOptions>(
        op,
        j.clone(),
        "confidence_noise",
        Range::NonNegative,
        |o, v| o.confidence_noise = v,
    );
    count::<SimulateOptions>(op, j.clone(), "k", true, |o, v| o.k = v);
    let mut o: SimulateOptions = base(&j);
    o.overseers.clear();
    assert!(o.check(op).unwrap_err().to_string().contains("'overseers'"));
    all_documented();
}

#[test]
fn model_options() {
    let (op, j) = ("model.new", json!({"arch": "bert"}));
    number::<NewOptions>(op, j.clone(), "rope_theta", Range::Positive, |o, v| {
        o.rope_theta = v
    });
    count::<NewOptions>(op, j.clone(), "hidden_size", false, |o, v| {
        o.hidden_size = v
    });
    count::<NewOptions>(op, j.clone(), "heads", false, |o, v| o.heads = v);
    count::<NewOptions>(op, j.clone(), "kv_heads", false, |o, v| {
        o.kv_heads = Some(v)
    });
    count::<NewOptions>(op, j.clone(), "layers", true, |o, v| o.layers = v);
    count::<NewOptions>(op, j.clone(), "max_positions", true, |o, v| {
        o.max_positions = v
    });
    count::<NewOptions>(op, j.clone(), "intermediate_size", true, |o, v| {
        o.intermediate_size = Some(v)
    });
    count::<NewOptions>(op, j.clone(), "vocab_size", true, |o, v| {
        o.vocab_size = Some(v)
    });
    // heads must divide hidden_size; kv_heads must divide heads.
    runner()
        .run(&(1usize..64, 1usize..64), |(hidden, heads)| {
            let mut o: NewOptions = base(&j);
            (o.hidden_size, o.heads) = (hidden, heads);
            let r = o.check(op);
            prop_assert_eq!(
                r.is_ok(),
                hidden % heads == 0,
                "{} {} {:?}",
                hidden,
                heads,
                r
            );
            Ok(())
        })
        .unwrap();
    for bad in [0, 1] {
        for (op, json) in [
            ("model.new", json!({"arch": "bert"})),
            ("model.load", json!({})),
        ] {
            let mut j = json;
            j["num_labels"] = json!(bad);
            let msg = if op == "model.new" {
                base::<NewOptions>(&j).check(op).unwrap_err().to_string()
            } else {
                base::<LoadOptions>(&j).check(op).unwrap_err().to_string()
            };
            assert!(
                msg.contains("'num_labels'") && msg.contains("2 classes"),
                "{msg}"
            );
            documented(op, "num_labels", "≥ 2");
        }
    }

    let (op, j) = ("lora", json!({}));
    number::<LoraOptions>(op, j.clone(), "alpha", Range::Positive, |o, v| {
        o.alpha = Some(v)
    });
    number::<LoraOptions>(op, j.clone(), "dropout", Range::Unit, |o, v| o.dropout = v);
    count::<LoraOptions>(op, j.clone(), "rank", true, |o, v| o.rank = v);
    let mut o: LoraOptions = base(&j);
    o.targets = Some(vec![]);
    assert!(o.check(op).unwrap_err().to_string().contains("'targets'"));
    all_documented();
}

#[test]
fn csv_options() {
    for field in ["separator", "quote_char"] {
        runner()
            .run(&"\\PC{0,3}", |s| {
                let mut read: CsvReadOptions = base(&json!({}));
                let mut write: CsvWriteOptions = base(&json!({}));
                if field == "separator" {
                    (read.separator, write.separator) = (s.clone(), s.clone());
                } else {
                    (read.quote_char, write.quote_char) = (s.clone(), s.clone());
                }
                let single = s.len() == 1 && s.is_ascii();
                // Reading also takes "" for "no quoting".
                let read_ok = single || (field == "quote_char" && s.is_empty());
                prop_assert_eq!(read.check("read_csv").is_ok(), read_ok, "{:?}", s);
                let w = write.check("write_csv");
                prop_assert_eq!(w.is_ok(), single, "{:?}", s);
                if let Err(e) = w {
                    let named = e.to_string().contains(&format!("'{field}'"));
                    prop_assert!(named, "{}", e);
                }
                Ok(())
            })
            .unwrap();
    }
    for (op, field) in [
        ("read_csv", "separator"),
        ("read_csv", "quote_char"),
        ("write_csv", "separator"),
        ("write_csv", "quote_char"),
    ] {
        documented(op, field, "one ASCII character");
    }
    all_documented();
}

/// The experiment spec, as the front ends pass it (JSON): every range the page states.
#[test]
fn experiment_spec() {
    let op = "experiment";
    let spec = json!({
        "task": {"builtin": "sentiment", "n": 100},
        "strong": {"model": {}},
        "weak": {"model": {}},
        "arms": ["weak", "ceiling"],
    });
    assert!(base::<Spec>(&spec).check(&[]).is_ok());
    // (the option as errors name it, its JSON path, its range, its doc table and key)
    let cases: &[(&str, &str, Range, &str, &str)] = &[
        (
            "split.test",
            "/split/test",
            Range::OpenBoth,
            "split",
            "test",
        ),
        ("level", "/level", Range::OpenBoth, "spec", "level"),
        (
            "aux.aux_coef",
            "/aux/aux_coef",
            Range::Probability,
            "aux",
            "aux_coef",
        ),
        (
            "aux.warmup_frac",
            "/aux/warmup_frac",
            Range::Probability,
            "aux",
            "warmup_frac",
        ),
        (
            "assistance.trust",
            "/assistance/trust",
            Range::Probability,
            "assistance",
            "trust",
        ),
        (
            "assistance.calibration",
            "/assistance/calibration",
            Range::NonNegative,
            "assistance",
            "calibration",
        ),
        (
            "weight_decay",
            "/strong/train/weight_decay",
            Range::NonNegative,
            "train",
            "weight_decay",
        ),
        (
            "max_grad_norm",
            "/weak/train/max_grad_norm",
            Range::Positive,
            "train",
            "max_grad_norm",
        ),
        ("lr", "/strong/train/lr", Range::Positive, "train", "lr"),
        // The model table is `sw.model.new`'s options (its page states the range).
        (
            "rope_theta",
            "/weak/model/rope_theta",
            Range::Positive,
            "",
            "",
        ),
    ];
    let set = |path: &str, v: f64| {
        let mut j = spec.clone();
        let (parent, key) = path.rsplit_once('/').unwrap();
        let mut node = &mut j;
        for part in parent.split('/').filter(|p| !p.is_empty()) {
            node = node
                .as_object_mut()
                .unwrap()
                .entry(part)
                .or_insert_with(|| json!({}));
        }
        node[key] = json!(v);
        j
    };
    for &(field, path, range, table, key) in cases {
        if !table.is_empty() {
            let rows = doc_rows("sw.experiment.md", Some(table), key);
            let said = rows.len() == 1 && rows[0].contains(phrase(range));
            if !said {
                UNDOCUMENTED.with(|u| {
                    u.borrow_mut().push(format!(
                        "sw.experiment.md, {table} key '{key}' does not say {:?}: {rows:?}",
                        phrase(range)
                    ))
                });
            }
        }
        // JSON has no NaN or infinity: the finite values outside the range.
        runner()
            .run(
                &outside(range).prop_filter("finite", |v| v.is_finite()),
                |v| {
                    let j = set(path, v);
                    let msg = match serde_json::from_value::<Spec>(j) {
                        Ok(s) => s
                            .check(&[])
                            .err()
                            .map(|e| e.to_string())
                            .unwrap_or_default(),
                        Err(e) => e.to_string(),
                    };
                    prop_assert!(
                        msg.contains(op) && msg.contains(&format!("'{field}'")),
                        "{field} = {v}: {msg:?}"
                    );
                    Ok(())
                },
            )
            .unwrap();
        runner()
            .run(&inside(range), |v| {
                let s: Spec = serde_json::from_value(set(path, v)).unwrap();
                let r = s.check(&[]);
                prop_assert!(r.is_ok(), "{field} = {v} refused: {r:?}");
                Ok(())
            })
            .unwrap();
    }
    all_documented();
}

/// The public functions call the check first: a bad option through each entry point (not only
/// `check` itself) is the error naming it.
#[test]
fn entry_points_check_their_options() {
    use polars::prelude::df;
    use sandwich_core::oversight::{
        bradley_terry, dawid_skene, mace, noisy_bradley_terry, simulate, zero_based_skill,
        Comparisons, Crowd,
    };
    let names = |r: sandwich_core::Result<()>, field: &str| {
        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains(&format!("'{field}'")), "{field}: {msg:?}");
    };
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("a.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    let bad_csv: CsvReadOptions = base(&json!({"separator": ";;"}));
    names(
        sandwich_core::read_csv(&csv, &bad_csv).map(drop),
        "separator",
    );
    names(
        sandwich_core::scan_csv(&csv, &bad_csv).map(drop),
        "separator",
    );
    let empty_comment: CsvReadOptions = base(&json!({"comment_prefix": ""}));
    names(
        sandwich_core::scan_csv(&csv, &empty_comment).map(drop),
        "comment_prefix",
    );
    let frame = df!("a" => [1i64, 2]).unwrap();
    let bad_write: CsvWriteOptions = base(&json!({"quote_char": "''"}));
    names(
        sandwich_core::write_csv(&frame, dir.path().join("b.csv"), &bad_write),
        "quote_char",
    );

    let labels = df!(
        "task" => ["t1", "t1", "t2", "t2"],
        "worker" => ["w1", "w2", "w1", "w2"],
        "label" => ["x", "y", "x", "x"],
    )
    .unwrap();
    let crowd = Crowd::from_frame("test", &labels).unwrap();
    let iter: IterOptions = base(&json!({"tol": -1.0}));
    names(dawid_skene(&crowd, &iter).map(drop), "tol");
    let iter: IterOptions = base(&json!({"lr_init": 0.0}));
    names(zero_based_skill(&crowd, &iter).map(drop), "lr_init");
    let m: MaceOptions = base(&json!({"alpha": -1.0}));
    names(mace(&crowd, &m).map(drop), "alpha");
    let pairs = df!(
        "worker" => ["w1", "w2"],
        "left" => ["a", "b"],
        "right" => ["b", "c"],
        "label" => ["a", "c"],
    )
    .unwrap();
    let bt: BtOptions = base(&json!({"n_iter": 0}));
    let comparisons = Comparisons::from_frame("test", &pairs).unwrap();
    names(bradley_terry(&comparisons, &bt).map(drop), "n_iter");
    let nbt: NoisyBtOptions = base(&json!({"regularization_ratio": -1.0}));
    names(
        noisy_bradley_terry(&pairs, &nbt).map(drop),
        "regularization_ratio",
    );
    let gold = df!("task" => ["t1"], "true_label" => ["x"]).unwrap();
    let sim: SimulateOptions = base(&json!({"overseers": [{"id": "a", "accuracy": 0.8}], "k": 0}));
    names(simulate(&gold, &sim).map(drop), "k");

    let new: NewOptions =
        base(&json!({"arch": "bert", "vocab_size": 16, "hidden_size": 8, "heads": 3}));
    names(
        sandwich_core::model::Model::new_from(&new).map(drop),
        "heads",
    );
    let new: NewOptions =
        base(&json!({"arch": "gpt2", "vocab_size": 16, "hidden_size": 8, "heads": 2, "layers": 1}));
    let mut model = sandwich_core::model::Model::new_from(&new).unwrap();
    let lora: LoraOptions = base(&json!({"dropout": 1.0}));
    names(model.add_lora(lora), "dropout");
    let load: LoadOptions = base(&json!({"num_labels": 1}));
    names(
        sandwich_core::model::Model::load_with(dir.path(), &load).map(drop),
        "num_labels",
    );
}
