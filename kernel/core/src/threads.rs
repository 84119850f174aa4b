//! How many threads the CPU kernels use, decided once per process.
//!
//! candle asks for its thread count on every matrix product (`utils::get_num_threads`), and
//! without `RAYON_NUM_THREADS` that re-reads `/proc/cpuinfo` to count physical cores: measured
//! while sampling SmolLM2 at batch 1, 18,000 reads of the file for 64 tokens, 6% of the time.
//! Setting the variable to the same count candle would pick makes the question free.

use std::sync::Once;

/// Sets `RAYON_NUM_THREADS` to candle's own default (physical cores) unless the user set it.
///
/// Call it first thing in a process (the `sandwich` binary's `main`, the Python module's import),
/// before other threads exist: it changes the process environment.
pub fn pin_thread_count() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RAYON_NUM_THREADS").is_some() {
            return;
        }
        let n = candle_core::utils::get_num_threads();
        // Edition 2021: `set_var` is safe to call; the caveat is other threads reading the
        // environment at the same moment. The binary calls this before any thread exists; the
        // Python module at import, when threads of other extensions (polars) may exist but do
        // not read the environment while the import holds the GIL — a small, accepted risk
        // against candle reading /proc/cpuinfo on every product.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    });
}
