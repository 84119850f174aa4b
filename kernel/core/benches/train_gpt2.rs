//! Training throughput of a GPT-2 124M (transformers' default config) against PyTorch +
//! transformers on the same shape, in the same run: tokens/s of full training steps (forward,
//! backward, clipping, AdamW) in f32 on random tokens, and the peak resident memory of each
//! process. Prints the ratio ours / theirs.
//!
//!     cargo bench --workspace --bench train_gpt2 -- [--batch 4] [--seq 256] [--steps 3]
//!         [--device cpu|cuda:0] [--dtype f32|bf16]
//!
//! Our bf16 keeps bf16 weights with f32 master weights and moments; the peer uses bf16 autocast
//! over f32 weights (the usual PyTorch recipe), so the two differ in memory, not in the math the
//! matmuls do.
//!
//! The peer is `tests/bench/train_gpt2_torch.py` (needs torch and transformers); without them the
//! bench prints our figure alone and says why. Figures: README, "Benchmarks".

use std::process::Command;

// As the `sandwich` binary (kernel/src/alloc.rs): mimalloc, keeping freed pages.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Instant;

use sandwich_core::model::{parse_device, Head, Model, Placement};
use sandwich_core::train::{self, Dataset, Example, Hooks, Target, TrainConfig};
use sandwich_core::{Rng, Silent};
use serde_json::json;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    // SAFETY: sets a global option (15 = mi_option_purge_delay; -1 = never purge).
    unsafe { libmimalloc_sys::mi_option_set(15, -1) };
    let batch: usize = arg("--batch", "4").parse().unwrap();
    let seq: usize = arg("--seq", "256").parse().unwrap();
    let steps: usize = arg("--steps", "3").parse().unwrap();
    let device = arg("--device", "cpu");
    let dtype = arg("--dtype", "f32");
    let config = json!({"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768,
                        "n_layer": 12, "n_head": 12});
    let place = Placement {
        device: parse_device(&device).unwrap(),
        dtype: sandwich_core::model::parse_dtype(&dtype).unwrap(),
        ..Placement::default()
    };
    let model = Model::from_config(config, Head::Lm, &place, None).unwrap();
    let mut rng = Rng::new(0);
    let examples: Vec<Example> = (0..batch * (steps + 1))
        .map(|_| {
            let ids: Vec<u32> = (0..seq).map(|_| rng.below(50257) as u32).collect();
            Example {
                target: Target::Tokens(ids.iter().map(|&i| i as i64).collect()),
                ids,
            }
        })
        .collect();
    let data = Dataset {
        tokens: examples.len() * (seq - 1),
        examples,
    };
    let cfg = TrainConfig {
        max_steps: Some(steps + 1),
        batch_size: batch,
        lr: 1e-4,
        shuffle: false,
        ..Default::default()
    };
    let t0 = Instant::now();
    let metrics = train::train(
        "bench",
        &model,
        &data,
        None,
        &cfg,
        Hooks {
            progress: &Silent,
            interrupt: None,
            on_step: None,
        },
    )
    .unwrap();
    let total = t0.elapsed().as_secs_f64();
    // Step 1 is the warm-up; tokens/s over the others, counting every input position as
    // PyTorch's figure does (batch × seq per step).
    let secs: Vec<f64> = metrics
        .column("elapsed_s")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let timed = secs[steps] - secs[0];
    let ours = (batch * seq * steps) as f64 / timed;
    let ours_rss = peak_rss_mib();
    println!("shape: GPT-2 124M, batch {batch} x seq {seq}, {dtype} on {device}, {steps} timed steps after 1 warm-up (total {total:.1} s)");
    println!("ours:    {ours:>9.1} tokens/s   peak RSS {ours_rss:>7.0} MiB");
    let script = format!(
        "{}/../../tests/bench/train_gpt2_torch.py",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
    );
    let peer = Command::new("python3")
        .args([
            script.as_str(),
            "--batch",
            &batch.to_string(),
            "--seq",
            &seq.to_string(),
            "--steps",
            &steps.to_string(),
            "--device",
            &device,
            "--dtype",
            &dtype,
        ])
        .output();
    match peer {
        Ok(out) if out.status.success() => {
            let line = String::from_utf8_lossy(&out.stdout);
            let v: serde_json::Value =
                serde_json::from_str(line.lines().last().unwrap_or("{}")).unwrap();
            let theirs = v["tokens_per_s"].as_f64().unwrap();
            println!(
                "pytorch: {theirs:>9.1} tokens/s   peak RSS {:>7.0} MiB ({} threads)",
                v["peak_rss_mib"].as_f64().unwrap(),
                v["threads"]
            );
            println!("ratio ours/pytorch: {:.2}x tokens/s", ours / theirs);
        }
        Ok(out) => println!(
            "pytorch peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("pytorch peer not run: {e}"),
    }
}
