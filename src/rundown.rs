//! The datapath rundown: a reference count that starts closed, opens in `FilterRestart`
//! and is drained by `FilterPause` (the pattern of win-net-test's LWF and of
//! `EX_RUNDOWN_REF`).
//!
//! Every datapath operation that may call down or up (a pass-through send, a receive
//! indication, and later every injected NBL until it comes back) holds one reference.
//! Closing refuses new references; the release that brings a closed rundown to zero is
//! told so, exactly once, and that caller completes the pause. This is what makes rule
//! ST4 hold without a waiting thread.

use core::sync::atomic::{AtomicUsize, Ordering};

const CLOSED: usize = 1;
const ONE: usize = 2;

/// See the module documentation.
pub struct Rundown {
    /// Bit 0: closed. Bits 1..: references.
    state: AtomicUsize,
}

impl Rundown {
    /// A rundown that is closed and drained (the state of a paused module).
    pub const fn new_closed() -> Self {
        Rundown {
            state: AtomicUsize::new(CLOSED),
        }
    }

    /// Takes a reference unless the rundown is closed.
    #[inline]
    pub fn try_acquire(&self) -> bool {
        self.try_acquire_many(1)
    }

    /// Takes `n` references at once (a batch) unless the rundown is closed.
    #[inline]
    pub fn try_acquire_many(&self, n: usize) -> bool {
        let Some(add) = n.checked_mul(ONE) else {
            return false;
        };
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            if current & CLOSED != 0 {
                return false;
            }
            let Some(next) = current.checked_add(add) else {
                return false;
            };
            match self
                .state
                .compare_exchange_weak(current, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    /// Drops one reference. Returns `true` when this release drained a closed rundown: the
    /// caller must then finish the pause (exactly one caller ever sees `true` per close).
    #[inline]
    #[must_use = "the caller that drains a closed rundown must complete the pause"]
    pub fn release(&self) -> bool {
        self.release_many(1)
    }

    /// Drops `n` references at once; see [`release`](Self::release).
    #[inline]
    #[must_use = "the caller that drains a closed rundown must complete the pause"]
    pub fn release_many(&self, n: usize) -> bool {
        let sub = n * ONE;
        let previous = self.state.fetch_sub(sub, Ordering::AcqRel);
        debug_assert!(previous >= sub, "rundown released more than acquired");
        previous == CLOSED + sub
    }

    /// Closes the rundown. Returns `true` if nothing was outstanding (the pause may complete
    /// synchronously); otherwise the last [`release`](Self::release) returns `true`.
    #[must_use = "a drained close means the pause completes now"]
    pub fn close(&self) -> bool {
        let previous = self.state.fetch_or(CLOSED, Ordering::AcqRel);
        debug_assert!(previous & CLOSED == 0, "rundown closed twice");
        previous == 0
    }

    /// Reopens a closed, drained rundown (restart). Returns `false`, and leaves it closed,
    /// if references are still outstanding.
    pub fn reopen(&self) -> bool {
        self.state
            .compare_exchange(CLOSED, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Outstanding references (diagnostics).
    pub fn outstanding(&self) -> usize {
        self.state.load(Ordering::Acquire) / ONE
    }

    /// Whether the rundown is closed.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize as Counter;
    use std::thread;

    #[test]
    fn starts_closed_and_refuses_references() {
        let r = Rundown::new_closed();
        assert!(r.is_closed());
        assert!(!r.try_acquire());
        assert!(r.reopen());
        assert!(r.try_acquire());
        assert_eq!(r.outstanding(), 1);
        assert!(!r.release(), "an open rundown never reports a drain");
    }

    #[test]
    fn close_with_nothing_outstanding_completes_at_once() {
        let r = Rundown::new_closed();
        assert!(r.reopen());
        assert!(r.close());
        assert!(!r.try_acquire());
    }

    #[test]
    fn the_last_release_after_close_is_told_to_complete() {
        let r = Rundown::new_closed();
        assert!(r.reopen());
        assert!(r.try_acquire_many(3));
        assert!(!r.close());
        assert!(!r.release());
        assert!(!r.release());
        assert!(r.release(), "third release drains");
        assert_eq!(r.outstanding(), 0);
        assert!(r.reopen());
    }

    #[test]
    fn reopen_refuses_while_references_remain() {
        let r = Rundown::new_closed();
        assert!(r.reopen());
        assert!(r.try_acquire());
        assert!(!r.close());
        assert!(!r.reopen());
        assert!(r.release());
        assert!(r.reopen());
    }

    #[test]
    fn exactly_one_completer_under_contention() {
        for _ in 0..200 {
            let r = Arc::new(Rundown::new_closed());
            assert!(r.reopen());
            let completions = Arc::new(Counter::new(0));
            let workers: std::vec::Vec<_> = (0..4)
                .map(|_| {
                    let r = Arc::clone(&r);
                    let c = Arc::clone(&completions);
                    thread::spawn(move || {
                        for _ in 0..100 {
                            if r.try_acquire() && r.release() {
                                c.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    })
                })
                .collect();
            if r.close() {
                completions.fetch_add(1, Ordering::SeqCst);
            }
            for w in workers {
                w.join().unwrap();
            }
            assert_eq!(completions.load(Ordering::SeqCst), 1);
            assert_eq!(r.outstanding(), 0);
        }
    }
}
