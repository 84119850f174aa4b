//! How many threads the CPU kernels use and which thread joins them, decided once per process.
//!
//! candle asks for its thread count on every matrix product (`utils::get_num_threads`), and
//! without `RAYON_NUM_THREADS` that re-reads `/proc/cpuinfo` to count physical cores: measured
//! while sampling SmolLM2 at batch 1, 18,000 reads of the file for 64 tokens, 6% of the time.
//! Setting the variable to the same count candle would pick makes the question free.
//!
//! candle's element-wise ops run on its own pool of threads, which spin 25,000 times after each
//! op before they sleep; rayon's threads (matrix products) spin too. With two cores a spinning
//! candle worker takes the core a product needs: a DPO step of a small GPT-2 got 12% faster on a
//! 2-core machine with the spin cut to 500 (2.27 against 2.03 steps/s, three runs each).
//! With two threads or fewer (candle's count: physical cores, or `RAYON_NUM_THREADS`) the limit
//! is 500 unless `CANDLE_BARRIER_POOL_SPIN_LIMIT` is set; more threads keep candle's default
//! (not measured there).

use std::sync::Once;

/// Sets `RAYON_NUM_THREADS` to candle's own default (physical cores) unless the user set it,
/// and with two threads or fewer `CANDLE_BARRIER_POOL_SPIN_LIMIT` to 500 unless the user set it.
///
/// Call it first thing in a process (the `sandwich` binary's `main`, the Python module's import),
/// before other threads exist: it changes the process environment.
pub fn pin_thread_count() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let n = candle_core::utils::get_num_threads();
        if n <= 2 && std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
            std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "500");
        }
        if std::env::var_os("RAYON_NUM_THREADS").is_some() {
            return;
        }
        // Edition 2021: `set_var` is safe to call; the caveat is other threads reading the
        // environment at the same moment. The binary calls this before any thread exists; the
        // Python module at import, when threads of other extensions (polars) may exist but do
        // not read the environment while the import holds the GIL — a small, accepted risk
        // against candle reading /proc/cpuinfo on every product.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    });
}

/// Makes the calling thread worker 0 of rayon's global pool (the pool then spawns one thread
/// fewer), so that the parallel kernels it calls — matrix products, row-wise kernels — share the
/// work with the other workers instead of handing all of it over and sleeping until it is done.
///
/// Called from a thread outside the pool, each parallel call is a cross-thread hand-off: a futex
/// wake-up for a worker and a sleep for the caller, dozens of times per training step. With two
/// cores that was about a fifth of a DPO step (3.0 → 3.6 steps/s, three runs each). Call it on
/// the thread that will do the computing, before any other use of rayon (the `sandwich` binary's
/// `main`, the Python module's import); a later call does nothing. Work started from another
/// thread still runs, on the other workers only, since this one joins in only while it is inside
/// a parallel call of its own.
pub fn compute_on_this_thread() {
    // An error means the global pool exists already: it stays as it is.
    let _ = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global();
}
