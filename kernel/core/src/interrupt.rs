//! A cloneable stop flag shared by every front end and every long Rust loop.
//!
//! The Lua count hook, Ctrl-C handlers, the Jupyter `interrupt_request` and long loops in the
//! core all look at the same atomic, so that one request stops whichever of them is running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::{Error, Result};

/// A shared interrupt request. Cloning shares the flag.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks whatever runs now to stop at its next check.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Forgets a pending request; front ends call this before they start new work.
    pub fn clear(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Error::Interrupted)` when a stop was requested: call it in long loops.
    pub fn check(&self) -> Result<()> {
        if self.is_requested() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}
