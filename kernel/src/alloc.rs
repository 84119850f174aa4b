//! The allocator of the `sandwich` binary and of the Python extension (which includes this file):
//! mimalloc, told to keep freed memory.
//!
//! Training on the CPU allocates and frees buffers of hundreds of megabytes every step (candle
//! allocates each op's output). glibc returns every block above 32 MiB to the OS and page-faults
//! it back in on the next step; measured on GPT-2 124M that was a fifth of the step time.
//! mimalloc with purging off reuses the pages instead.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's option enum (mimalloc.h; 15 in both v2 and v3, which
/// libmimalloc-sys builds); -1 = never purge.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

pub fn keep_freed_memory() {
    // SAFETY: sets a global option; mimalloc reads it on each purge decision.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}
