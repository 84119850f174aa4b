//! Random and truncated bytes fed to every reader (CSV, Parquet, IPC, JSON lines,
//! safetensors, config.json, tokenizer.json) give errors, never panics: a corrupt file must
//! not kill a script (issue 15). Deterministic: the corruptions come from a seeded generator.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use polars::prelude::df;
use sandwich_core::model::{LoadOptions, Model, NewOptions};
use sandwich_core::{
    read_csv, read_ipc, read_json, read_parquet, write_csv, write_ipc, write_json, write_parquet,
    CsvReadOptions, CsvWriteOptions, IpcReadOptions, IpcWriteOptions, JsonReadOptions,
    JsonWriteOptions, ParquetReadOptions, ParquetWriteOptions, Rng,
};

/// Truncations at eleven points and 150 copies with 1–8 random bytes overwritten.
fn corruptions(bytes: &[u8], seed: u64) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (0..=10)
        .map(|i| bytes[..bytes.len() * i / 10].to_vec())
        .collect();
    let mut rng = Rng::new(seed);
    for _ in 0..150 {
        let mut b = bytes.to_vec();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(b.len());
            b[at] = rng.below(256) as u8;
        }
        out.push(b);
    }
    out
}

/// Writes each corruption of `file` in place and calls `read`; returns the panics.
fn fuzz(file: &Path, seed: u64, read: impl Fn() -> bool) -> Vec<String> {
    let original = std::fs::read(file).unwrap();
    let mut panics = Vec::new();
    for (i, bytes) in corruptions(&original, seed).into_iter().enumerate() {
        std::fs::write(file, &bytes).unwrap();
        if let Err(p) = catch_unwind(AssertUnwindSafe(&read)) {
            let what = sandwich_core::panic_message(&*p);
            panics.push(format!("{} corruption {i}: {what}", file.display()));
        }
    }
    std::fs::write(file, &original).unwrap();
    panics
}

#[test]
fn corrupt_files_are_errors_not_panics() {
    std::panic::set_hook(Box::new(|_| {})); // the panics are collected, not printed
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { dir.path().join(n) };
    let df = df!("a" => [1i64, 2, 3, 4], "b" => ["w", "x", "y", "z"], "c" => [0.5, 1.5, 2.5, 3.5])
        .unwrap();
    write_csv(&df, p("t.csv"), &CsvWriteOptions::default()).unwrap();
    write_parquet(&df, p("t.parquet"), &ParquetWriteOptions::default()).unwrap();
    write_ipc(&df, p("t.arrow"), &IpcWriteOptions::default()).unwrap();
    write_json(&df, p("t.jsonl"), &JsonWriteOptions::default()).unwrap();
    let tokenizer = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workbooks/tokenizer");
    let o: NewOptions = serde_json::from_value(serde_json::json!({
        "arch": "bert", "tokenizer": tokenizer, "hidden_size": 8, "layers": 1, "heads": 2,
        "num_labels": 2,
    }))
    .unwrap();
    let ckpt = p("ckpt");
    Model::new_from(&o).unwrap().save(&ckpt).unwrap();
    let lo: LoadOptions = serde_json::from_value(serde_json::json!({})).unwrap();
    let load = || Model::load_with(&ckpt, &lo).is_ok();

    let mut panics = Vec::new();
    panics.extend(fuzz(&p("t.csv"), 1, || {
        read_csv(p("t.csv"), &CsvReadOptions::default()).is_ok()
    }));
    panics.extend(fuzz(&p("t.parquet"), 2, || {
        read_parquet(p("t.parquet"), &ParquetReadOptions::default()).is_ok()
    }));
    panics.extend(fuzz(&p("t.arrow"), 3, || {
        read_ipc(p("t.arrow"), &IpcReadOptions::default()).is_ok()
    }));
    panics.extend(fuzz(&p("t.jsonl"), 4, || {
        read_json(p("t.jsonl"), &JsonReadOptions::default()).is_ok()
    }));
    for (i, f) in ["model.safetensors", "config.json", "tokenizer.json"]
        .iter()
        .enumerate()
    {
        panics.extend(fuzz(&ckpt.join(f), 10 + i as u64, load));
    }
    let _ = std::panic::take_hook();
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics.join("\n")
    );
}
