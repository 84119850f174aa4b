//! Where long jobs report how far they are. The CLI draws a bar on stderr, the Jupyter kernel
//! updates a display in place; the core only calls these methods.

/// A receiver of progress reports. Implementations throttle their own drawing.
pub trait Progress: Send + Sync {
    /// A job of `total` units (steps, batches) starts.
    fn start(&self, job: &str, total: usize);
    /// `done` of the units are finished; `info` is a short status ("loss 2.31").
    fn update(&self, done: usize, info: &str);
    /// The job ended (finished, failed or interrupted).
    fn finish(&self);
}

/// Reports nowhere.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: usize) {}
    fn update(&self, _: usize, _: &str) {}
    fn finish(&self) {}
}
