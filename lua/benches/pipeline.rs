//! Benchmark: the same join + group-by + aggregate pipeline over 10 million rows, through the Lua
//! API and directly through polars in Rust, in one run. Prints both times and the ratio
//! Lua / native (target ≤ 1.05).
//!
//! Run: `cargo bench --workspace --bench pipeline` (ROWS=... to change the size).

use std::time::{Duration, Instant};

use polars::prelude::*;
use sandwich_lua::Session;

const REPEATS: usize = 7;

fn data(rows: usize) -> (DataFrame, DataFrame) {
    let tasks = (rows / 10).max(1);
    // A fixed linear congruential stream: the data are the same on every run and machine.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let mut task = Vec::with_capacity(rows);
    let mut worker = Vec::with_capacity(rows);
    let mut label = Vec::with_capacity(rows);
    let mut score = Vec::with_capacity(rows);
    for _ in 0..rows {
        let r = next();
        task.push((r % tasks as u64) as i64);
        worker.push(((r >> 7) % 1000) as i64);
        label.push(((r >> 17) % 4) as i64);
        score.push((r % 10_007) as f64 / 10_007.0);
    }
    let judgments =
        df!("task" => task, "worker" => worker, "label" => label, "score" => score).unwrap();
    let gold = df!(
        "task" => (0..tasks as i64).collect::<Vec<_>>(),
        "true_label" => (0..tasks as i64).map(|t| t % 4).collect::<Vec<_>>()
    )
    .unwrap();
    (judgments, gold)
}

fn native(judgments: &DataFrame, gold: &DataFrame) -> DataFrame {
    judgments
        .clone()
        .lazy()
        .join(
            gold.clone().lazy(),
            [col("task")],
            [col("task")],
            JoinArgs::new(JoinType::Inner),
        )
        .with_columns([col("label")
            .eq(col("true_label"))
            .cast(DataType::Float64)
            .alias("correct")])
        .group_by([col("worker")])
        .agg([
            col("correct").mean().alias("accuracy"),
            col("score").mean().alias("mean_score"),
            len().alias("n"),
        ])
        .sort_by_exprs([col("worker")], SortMultipleOptions::default())
        .collect()
        .unwrap()
}

const LUA_PIPELINE: &str = r#"
result = judgments
  :join(gold, {on = "task"})
  :with_columns(sw.col("label"):eq(sw.col("true_label")):cast("float64"):alias("correct"))
  :group_by("worker")
  :agg{sw.col("correct"):mean():alias("accuracy"), sw.col("score"):mean():alias("mean_score"), sw.len():alias("n")}
  :sort("worker");
"#;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10_000_000);
    let (judgments, gold) = data(rows);
    let session = Session::new().unwrap();
    session.set_frame("judgments", judgments.clone()).unwrap();
    session.set_frame("gold", gold.clone()).unwrap();

    // Same answer both ways, or the timing means nothing.
    let expected = native(&judgments, &gold);
    session.eval(LUA_PIPELINE, "bench").unwrap();
    assert!(
        session.get_frame("result").unwrap().equals(&expected),
        "Lua and native results differ"
    );

    let (mut lua_times, mut native_times) = (Vec::new(), Vec::new());
    for i in 0..REPEATS {
        // Interleaved, and in alternating order, so that drift in the machine's speed and the
        // allocator's state after the previous run hit both sides alike.
        let run_native = |times: &mut Vec<Duration>| {
            let t = Instant::now();
            std::hint::black_box(native(&judgments, &gold));
            times.push(t.elapsed());
        };
        let run_lua = |times: &mut Vec<Duration>| {
            let t = Instant::now();
            session.eval(LUA_PIPELINE, "bench").unwrap();
            times.push(t.elapsed());
        };
        if i % 2 == 0 {
            run_native(&mut native_times);
            run_lua(&mut lua_times);
        } else {
            run_lua(&mut lua_times);
            run_native(&mut native_times);
        }
    }
    let (lua, native) = (median(lua_times), median(native_times));
    println!("pipeline over {rows} rows (join + with_columns + group_by/agg + sort), median of {REPEATS}");
    println!("  native polars: {:>9.1} ms", native.as_secs_f64() * 1e3);
    println!("  Lua API:       {:>9.1} ms", lua.as_secs_f64() * 1e3);
    println!(
        "  ratio Lua / native: {:.3} (target <= 1.05)",
        lua.as_secs_f64() / native.as_secs_f64()
    );
}
