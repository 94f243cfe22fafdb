//! A spin lock over `NDIS_SPIN_LOCK` that guards data and releases on drop.
//!
//! House rule (L5): never call an NDIS function that leaves the driver (sends, indications,
//! completions) or `IoCompleteRequest` while a guard is alive; collect the work under the
//! lock, drop the guard, then act.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

use ndis_sys::{
    NDIS_SPIN_LOCK, NdisAcquireSpinLock, NdisAllocateSpinLock, NdisDprAcquireSpinLock,
    NdisDprReleaseSpinLock, NdisFreeSpinLock, NdisReleaseSpinLock,
};

/// See the module documentation.
pub struct SpinLock<T> {
    raw: UnsafeCell<NDIS_SPIN_LOCK>,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by the NDIS spin lock; `T: Send` is what may move
// between the CPUs that take the lock.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: as above; the raw lock is plain data until initialised.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A lock that still needs [`init`](Self::init) before use.
    pub const fn new(data: T) -> Self {
        SpinLock {
            raw: UnsafeCell::new(NDIS_SPIN_LOCK::ZERO),
            data: UnsafeCell::new(data),
        }
    }

    /// `NdisAllocateSpinLock`. IRQL <= DISPATCH_LEVEL.
    ///
    /// # Safety
    /// Called once, before any other use, on a lock that will not move until [`free`](Self::free).
    pub unsafe fn init(&self) {
        // SAFETY: `raw` is a valid NDIS_SPIN_LOCK; the caller guarantees first use.
        unsafe { NdisAllocateSpinLock(self.raw.get()) };
    }

    /// `NdisFreeSpinLock`.
    ///
    /// # Safety
    /// The lock is initialised, not held, and not used again until re-initialised.
    pub unsafe fn free(&self) {
        // SAFETY: the caller guarantees the lock is idle.
        unsafe { NdisFreeSpinLock(self.raw.get()) };
    }

    /// Acquires the lock (raises to DISPATCH_LEVEL). IRQL <= DISPATCH_LEVEL.
    ///
    /// The lock must have been initialised (an invariant of every owner in this crate: the
    /// global lock in `DriverEntry`, before registration).
    pub fn lock(&self) -> SpinGuard<'_, T> {
        // SAFETY: initialised (see above); the guard releases it exactly once.
        unsafe { NdisAcquireSpinLock(self.raw.get()) };
        SpinGuard {
            lock: self,
            at_dispatch: false,
        }
    }

    /// Acquires the lock from code already running at DISPATCH_LEVEL (cheaper).
    ///
    /// # Safety
    /// The current IRQL is DISPATCH_LEVEL (e.g. a datapath callback whose flags say so).
    pub unsafe fn lock_at_dispatch(&self) -> SpinGuard<'_, T> {
        // SAFETY: initialised; the caller guarantees DISPATCH_LEVEL.
        unsafe { NdisDprAcquireSpinLock(self.raw.get()) };
        SpinGuard {
            lock: self,
            at_dispatch: true,
        }
    }
}

/// Access to the data of a held [`SpinLock`]; releases on drop.
pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    at_dispatch: bool,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held for the guard's lifetime.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held for the guard's lifetime, and the guard is unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        if self.at_dispatch {
            // SAFETY: acquired with the Dpr variant by this guard.
            unsafe { NdisDprReleaseSpinLock(self.lock.raw.get()) };
        } else {
            // SAFETY: acquired with NdisAcquireSpinLock by this guard.
            unsafe { NdisReleaseSpinLock(self.lock.raw.get()) };
        }
    }
}
