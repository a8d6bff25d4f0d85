//! A per-request work budget: a cancellation flag and a deadline, checked by
//! the engine between stages and between frames.
//!
//! The bound it gives: once the flag is set or the deadline passes, the
//! engine finishes at most the stage it is in (one model call: the longest,
//! `fr_feature` or `fr_pose`, about 5 ms on one thread of the AMD EPYC in
//! BENCHMARKS.md; or one frame's decode, itself bounded by the pixel limit
//! checked from the header before decoding) and returns
//! [`VisionError::Stopped`]. A request's CPU time is therefore at most its
//! deadline plus one stage. The host sets the deadline (e.g. 2 s for an
//! 8-frame challenge, which costs about 0.2 s of CPU on a quiet core) and
//! cancels when the client goes away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::VisionError;

/// Cancellation and deadline for one request. Cheap to clone (the flag is
/// shared): keep one clone where the client connection lives and call
/// [`Budget::cancel`] when it goes away (e.g. from a drop guard in the
/// request's future), and hand the other to the engine.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    cancelled: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl Budget {
    /// No deadline, not cancelled (until [`Budget::cancel`]).
    pub fn unlimited() -> Budget {
        Budget::default()
    }

    /// A budget that runs out `limit` from now.
    pub fn within(limit: Duration) -> Budget {
        Budget {
            cancelled: Arc::default(),
            deadline: Some(Instant::now() + limit),
        }
    }

    /// Stops the work at the engine's next check.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`Budget::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// `Err(Stopped)` when cancelled or past the deadline; the engine calls
    /// this between stages and frames.
    pub fn check(&self) -> Result<(), VisionError> {
        if self.is_cancelled() {
            return Err(VisionError::Stopped("the request was cancelled".into()));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(VisionError::Stopped(
                "the request ran past its time budget".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_and_deadline_stop() {
        let b = Budget::unlimited();
        assert!(b.check().is_ok());
        let other = b.clone();
        other.cancel();
        assert!(matches!(b.check(), Err(VisionError::Stopped(_))));
        let d = Budget::within(Duration::ZERO);
        assert!(matches!(d.check(), Err(VisionError::Stopped(_))));
        assert!(Budget::within(Duration::from_secs(60)).check().is_ok());
    }
}
