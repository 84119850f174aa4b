//! Aggregation speed against crowd-kit on the same data, in the same run: majority vote and
//! Dawid-Skene on 1M labels (100k tasks × 10 of 50 workers, 5 classes) and Bradley-Terry on 1M
//! comparisons over 1,000 items. Checks that the answers agree and prints ours / crowd-kit.
//!
//!     cargo bench --workspace --bench oversight
//!
//! The peer is `tests/bench/oversight_crowdkit.py` (crowd-kit 1.4.2); without it the bench
//! prints our figures alone. crowd-kit's BradleyTerry stops after two iterations whatever
//! `n_iter` (see `sw.aggregate.bradley_terry`), so the like-for-like BT timing runs ours with
//! `n_iter = 2` (same answer); the converged fit is timed separately.

use std::process::Command;
use std::time::Instant;

use polars::prelude::*;
use sandwich_core::oversight::{self, Comparisons, Crowd, IterOptions};
use sandwich_core::{read_csv, write_csv, CsvReadOptions, CsvWriteOptions, Rng};

// As the `sandwich` binary (kernel/src/alloc.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn crowd_frame() -> DataFrame {
    let mut rng = Rng::new(1);
    let accuracy: Vec<f64> = (0..50).map(|_| 0.35 + 0.6 * rng.uniform()).collect();
    let (mut task, mut worker, mut label) = (vec![], vec![], vec![]);
    for t in 0..100_000i64 {
        let truth = rng.below(5) as i64;
        let mut who: Vec<usize> = (0..50).collect();
        rng.shuffle(&mut who);
        for &w in &who[..10] {
            let l = if rng.uniform() < accuracy[w] {
                truth
            } else {
                (truth + 1 + rng.below(4) as i64) % 5
            };
            task.push(t);
            worker.push(format!("w{w:02}"));
            label.push(l);
        }
    }
    df!("task" => task, "worker" => worker, "label" => label).unwrap()
}

fn pairs_frame() -> DataFrame {
    let mut rng = Rng::new(2);
    let strength: Vec<f64> = (0..1000).map(|_| (rng.normal()).exp()).collect();
    let (mut left, mut right, mut label) = (vec![], vec![], vec![]);
    for _ in 0..1_000_000 {
        let i = rng.below(1000);
        let mut j = rng.below(999);
        if j >= i {
            j += 1;
        }
        let win = if rng.uniform() < strength[i] / (strength[i] + strength[j]) {
            i
        } else {
            j
        };
        left.push(format!("m{i:03}"));
        right.push(format!("m{j:03}"));
        label.push(format!("m{win:03}"));
    }
    let worker = vec!["w"; left.len()];
    df!("worker" => worker, "left" => left, "right" => right, "label" => label).unwrap()
}

/// The result and the median time of five runs after one warm-up (the peer also reports a
/// median of warm runs).
fn time<T>(f: impl Fn() -> T) -> (T, f64) {
    let mut secs = Vec::new();
    let mut out = Some(f());
    for _ in 0..5 {
        let t = Instant::now();
        out = Some(f());
        secs.push(t.elapsed().as_secs_f64());
    }
    secs.sort_by(f64::total_cmp);
    (out.expect("ran"), secs[2])
}

fn main() {
    // SAFETY: sets a global option (15 = mi_option_purge_delay; -1 = never purge).
    unsafe { libmimalloc_sys::mi_option_set(15, -1) };
    let dir = tempfile::tempdir().unwrap();
    let labels = crowd_frame();
    let pairs = pairs_frame();
    write_csv(
        &labels,
        dir.path().join("labels.csv"),
        &CsvWriteOptions::default(),
    )
    .unwrap();
    write_csv(
        &pairs,
        dir.path().join("pairs.csv"),
        &CsvWriteOptions::default(),
    )
    .unwrap();

    let (crowd, encode_s) = time(|| Crowd::from_frame("bench", &labels).unwrap());
    let (_, mv_s) = time(|| oversight::majority_vote(&crowd));
    let (ds, ds_s) = time(|| oversight::dawid_skene(&crowd, &IterOptions::default()).unwrap());
    let (cmp, cmp_encode_s) = time(|| Comparisons::from_frame("bench", &pairs).unwrap());
    let rows: Vec<usize> = (0..cmp.left.len()).collect();
    let (bt2, bt2_s) = time(|| oversight::bt_scores(&cmp, &rows, false, 2, 0.0));
    let (_, bt_conv_s) = time(|| oversight::bt_scores(&cmp, &rows, false, 100, 1e-5));
    println!(
        "1M labels (100k tasks x 10 of 50 workers, 5 classes); 1M comparisons over 1,000 items"
    );
    println!("ours: encode {encode_s:.3} s, majority vote {mv_s:.3} s, Dawid-Skene {ds_s:.3} s ({} iterations)", ds.iterations);
    println!("ours: encode pairs {cmp_encode_s:.3} s, Bradley-Terry 2 iterations {bt2_s:.3} s, to convergence (n_iter 100) {bt_conv_s:.3} s");

    let script = format!(
        "{}/../../tests/bench/oversight_crowdkit.py",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
    );
    let out = Command::new("python3").arg(script).arg(dir.path()).output();
    let Ok(out) = out.map_err(|e| println!("crowd-kit peer not run: {e}")) else {
        return;
    };
    if !out.status.success() {
        println!(
            "crowd-kit peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return;
    }
    let v: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("{}"),
    )
    .unwrap();
    let f = |k: &str| v[k].as_f64().unwrap();
    // Same answers: Dawid-Skene posteriors and BT scores.
    let theirs = read_csv(
        dir.path().join("ck_ds_probas.csv"),
        &CsvReadOptions::default(),
    )
    .unwrap();
    let k = crowd.n_labels();
    let mut max_diff = 0f64;
    let tasks = theirs.column("task").unwrap().i64().unwrap().clone();
    for l in 0..k {
        let col = theirs
            .column(&crowd.labels.name(l))
            .unwrap()
            .f64()
            .unwrap()
            .clone();
        for (row, t) in tasks.iter().enumerate() {
            let t = t.unwrap() as usize; // tasks are 0..n, factorized in order
            max_diff = max_diff.max((ds.probas[t * k + l] - col.get(row).unwrap()).abs());
        }
    }
    let ck_bt = read_csv(
        dir.path().join("ck_bt_scores.csv"),
        &CsvReadOptions::default(),
    )
    .unwrap();
    let bt_theirs = ck_bt.column("score").unwrap().f64().unwrap().clone();
    let bt_diff = bt2
        .iter()
        .zip(bt_theirs.iter())
        .map(|(a, b)| (a - b.unwrap()).abs())
        .fold(0.0, f64::max);
    println!(
        "crowd-kit: majority vote {:.3} s, Dawid-Skene {:.3} s ({} iterations), Bradley-Terry {:.3} s",
        f("majority_vote_s"), f("dawid_skene_s"), v["dawid_skene_iterations"], f("bradley_terry_s")
    );
    println!("same answers: Dawid-Skene max |Δ posterior| {max_diff:.2e}; Bradley-Terry max |Δ score| {bt_diff:.2e}");
    println!(
        "speed-up (crowd-kit / ours, target ≥ 20x), method only: majority vote {:.0}x, Dawid-Skene {:.0}x, Bradley-Terry {:.0}x (converged BT vs their 2 iterations: {:.1}x)",
        f("majority_vote_s") / mv_s, f("dawid_skene_s") / ds_s, f("bradley_terry_s") / bt2_s, f("bradley_terry_s") / bt_conv_s
    );
    println!(
        "speed-up including our encoding of the table: majority vote {:.0}x, Dawid-Skene {:.0}x, Bradley-Terry {:.0}x",
        f("majority_vote_s") / (encode_s + mv_s), f("dawid_skene_s") / (encode_s + ds_s), f("bradley_terry_s") / (cmp_encode_s + bt2_s)
    );
}
