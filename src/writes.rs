//! Pending writes: a cancellable write IRP and the record its frames point at.
//!
//! On Windows the layer above decides when injected receive NBLs come back (IP reassembly
//! holds fragments until a timeout, a vSwitch until the guest returns them), so a write may
//! be pending for an unbounded time. "Introduction to Cancel Routines": a driver that can
//! hold an IRP for an indefinite interval must be able to cancel it. So:
//!
//! - **The record.** Each write has a [`WriteRecord`], and its NBLs point at the record, not
//!   at the IRP. The record counts the NBLs still out (+1 while the write is being issued)
//!   and is referenced twice: by those NBLs (dropped when the last comes back) and by the
//!   IRP (dropped when the IRP is completed, by whichever path). A frame that comes back
//!   after its write was cancelled only drops a count; reclaim never touches a completed IRP.
//! - **Who completes the IRP.** Once issued, the write is queued on its handle's list with a
//!   cancel routine (`IoSetCancelRoutine`). Exactly one of three paths completes it, decided
//!   under the handle's write lock by the atomic exchange of the cancel routine: the last
//!   frame coming back (with the write's status), the cancel routine (STATUS_CANCELLED, or the
//!   write's status if its frames were all back already), or `IRP_MJ_CLEANUP`
//!   (STATUS_CANCELLED). A cancelled write reports the frames it handed to NDIS in
//!   `Information`.
//! - **The handle outlives its records.** A record holds a reference on its `OpenHandle`, so a
//!   frame coming back after IRP_MJ_CLOSE still finds the lock and the record cache; the
//!   handle is freed with its last reference.
//! - **No allocation per write in steady state.** Records are cached per handle: one spare
//!   taken and given back without a lock, more in a list under the write lock.
//!
//! Lock order: the handle's write lock is a leaf (nothing else is taken under it, and no
//! IRP is completed under it: L5).

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use ndis_sys::*;
use rxinject_abi::tags::TAG_HANDLE;

use crate::device::{OpenHandle, complete_irp};
use crate::driver::{GLOBALS, Handle};
use crate::mem::{ndis_delete, ndis_new};

/// Where a write stands (under the handle's write lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Being issued by its dispatch routine: not on the handle's list, no cancel routine.
    Issuing,
    /// On the list, cancellable.
    Queued,
    /// Every frame came back, but the cancel routine had already been taken: it completes the
    /// IRP, with the write's status.
    AwaitingCancel,
    /// The IRP is completed (or being completed by the path that took it off the list).
    Completed,
}

/// One write in flight (see the module documentation).
pub struct WriteRecord {
    /// NBLs still out, +1 while the write is being issued.
    out: AtomicUsize,
    /// References: the NBLs' (one for all of them) and the IRP's.
    refs: AtomicU32,
    /// The first failing status (0 while none).
    failure: AtomicU32,
    /// Frames handed to NDIS.
    accepted: AtomicUsize,
    /// The handle (referenced by the record).
    handle: *const OpenHandle,
    /// The IRP (followed only while it is not completed).
    irp: *mut IRP,
    // Under the handle's write lock (cells: every path reaches the record through shared
    // references, and the lock serialises them):
    state: Cell<State>,
    prev: Cell<*mut WriteRecord>,
    next: Cell<*mut WriteRecord>,
}

impl WriteRecord {
    /// Records `status` as the write's failure if it is the first.
    pub fn record_failure(&self, status: NTSTATUS) {
        let _ = self
            .failure
            .compare_exchange(0, status.0 as u32, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The status the write completes with when its frames are all back.
    fn status(&self) -> NTSTATUS {
        match self.failure.load(Ordering::Acquire) {
            0 => STATUS_SUCCESS,
            f => NTSTATUS(f as i32),
        }
    }

    pub fn set_accepted(&self, n: usize) {
        self.accepted.store(n, Ordering::Release);
    }
}

/// A handle's writes: the pending list, the record cache, and whether cleanup has run.
pub struct WriteList {
    head: *mut WriteRecord,
    cache: *mut WriteRecord,
    cleaned_up: bool,
}

// SAFETY: the raw pointers are only followed under the owning SpinLock.
unsafe impl Send for WriteList {}

impl WriteList {
    pub const fn new() -> Self {
        WriteList {
            head: ptr::null_mut(),
            cache: ptr::null_mut(),
            cleaned_up: false,
        }
    }

    fn link(&mut self, r: *mut WriteRecord) {
        // SAFETY: `r` is a live record of this handle, not on the list.
        let rec = unsafe { &*r };
        rec.prev.set(ptr::null_mut());
        rec.next.set(self.head);
        // SAFETY: the list's records are live (each holds its IRP's reference).
        if let Some(head) = unsafe { self.head.as_ref() } {
            head.prev.set(r);
        }
        self.head = r;
    }

    fn unlink(&mut self, r: *mut WriteRecord) {
        // SAFETY: `r` is a live record on this list.
        let rec = unsafe { &*r };
        // SAFETY: its neighbours are on the list too, and live.
        match unsafe { rec.prev.get().as_ref() } {
            Some(prev) => prev.next.set(rec.next.get()),
            None => self.head = rec.next.get(),
        }
        // SAFETY: as above.
        if let Some(next) = unsafe { rec.next.get().as_ref() } {
            next.prev.set(rec.prev.get());
        }
        rec.prev.set(ptr::null_mut());
        rec.next.set(ptr::null_mut());
    }
}

impl Default for WriteList {
    fn default() -> Self {
        Self::new()
    }
}

/// The record of write `irp` (`Tail.Overlay.DriverContext[0]`, set by [`begin`]).
fn record_of(irp: *mut IRP) -> *mut WriteRecord {
    // SAFETY: a write IRP of ours, pending: DriverContext is ours.
    unsafe { (*irp).Tail.DriverContext[0].cast() }
}

/// Starts write `irp` of `h` with `frames` frames to issue: takes a record (from the
/// handle's cache, or new) and a reference on the handle, and stores the record in the IRP.
/// Fails with STATUS_CANCELLED if the handle was cleaned up (the write is refused), or with
/// STATUS_INSUFFICIENT_RESOURCES.
///
/// # Safety
/// `irp` is a write IRP of `h`, ours (in its dispatch routine, not completed).
pub unsafe fn begin(h: &OpenHandle, irp: *mut IRP, frames: usize) -> Result<*mut WriteRecord, NTSTATUS> {
    // The handle's spare record first (no lock: the usual case, one write at a time), then
    // the cache. A handle cleaned up refuses the write (checked again when it is queued).
    let mut cached = h.spare_write.swap(ptr::null_mut(), Ordering::AcqRel);
    if cached.is_null() || h.is_cleaned_up() {
        let mut g = h.writes.lock();
        if g.cleaned_up {
            if !cached.is_null() {
                // SAFETY: an idle record of this handle, back to the cache.
                unsafe { &*cached }.next.set(g.cache);
                g.cache = cached;
            }
            return Err(STATUS_CANCELLED);
        }
        if cached.is_null() {
            cached = g.cache;
            if !cached.is_null() {
                // SAFETY: a cached record of this handle.
                g.cache = unsafe { &*cached }.next.get();
            }
        }
    }
    let fresh = WriteRecord {
        out: AtomicUsize::new(frames + 1),
        refs: AtomicU32::new(2),
        failure: AtomicU32::new(0),
        accepted: AtomicUsize::new(0),
        handle: ptr::from_ref(h),
        irp,
        state: Cell::new(State::Issuing),
        prev: Cell::new(ptr::null_mut()),
        next: Cell::new(ptr::null_mut()),
    };
    let r = if cached.is_null() {
        match ndis_new(Handle::new(GLOBALS.filter_driver()), TAG_HANDLE, fresh) {
            Some(p) => p.as_ptr(),
            None => return Err(STATUS_INSUFFICIENT_RESOURCES),
        }
    } else {
        // SAFETY: a cached record is idle memory of a WriteRecord.
        unsafe { cached.write(fresh) };
        cached
    };
    h.add_ref();
    // SAFETY: our IRP, not yet completed; DriverContext is ours.
    unsafe { (*irp).Tail.DriverContext[0] = r.cast() };
    Ok(r)
}

/// The write's issuing is over: queues it (cancellable) on its handle, unless the handle was
/// cleaned up or the IRP cancelled meanwhile (then it completes now, STATUS_CANCELLED), and
/// drops the issuing count (which completes it if every frame is already back).
///
/// # Safety
/// `r` came from [`begin`] for a pended IRP, and this is called once, after every frame of
/// the write was handed to NDIS or given back.
pub unsafe fn issued(r: *mut WriteRecord) {
    // SAFETY: the record is alive (the IRP's and the NBLs' references).
    let rec = unsafe { &*r };
    // SAFETY: the record holds a reference on its handle.
    let h = unsafe { &*rec.handle };
    let irp = rec.irp;
    let cancelled_now = {
        let mut g = h.writes.lock();
        if g.cleaned_up {
            rec.state.set(State::Completed);
            true
        } else {
            g.link(r);
            rec.state.set(State::Queued);
            // SAFETY: our pended IRP, not completed (only this path can complete it now).
            unsafe { IoSetCancelRoutine(irp, Some(cancel_write)) };
            // SAFETY: as above.
            if unsafe { (*irp).Cancel } != 0 && unsafe { IoSetCancelRoutine(irp, None) }.is_some() {
                // Cancelled while being issued, and the routine was not taken: ours.
                rec.state.set(State::Completed);
                g.unlink(r);
                true
            } else {
                false
            }
        }
    };
    if cancelled_now {
        // SAFETY: taken off (or never on) the list under the lock: ours to complete, once.
        unsafe { complete(rec, irp, STATUS_CANCELLED) };
    }
    // SAFETY: the issuing count is ours to drop.
    unsafe { frames_back(r, 1) };
}

/// `count` NBLs of the write came back (or the issuing count, for 1 from [`issued`]): the
/// last one completes the write if nobody else did, and drops the NBLs' reference.
///
/// # Safety
/// `r` is a live record with at least `count` NBLs (or the issuing count) out.
pub unsafe fn frames_back(r: *mut WriteRecord, count: usize) {
    // SAFETY: alive (caller's contract).
    if unsafe { (*r).out.fetch_sub(count, Ordering::AcqRel) } != count {
        return;
    }
    // SAFETY: the NBLs' reference keeps the record (and so its handle) alive until dropped
    // below.
    let rec = unsafe { &*r };
    // SAFETY: as above.
    let h = unsafe { &*rec.handle };
    let take = {
        let mut g = h.writes.lock();
        match rec.state.get() {
            State::Queued => {
                // SAFETY: queued: the IRP is pending and only the holder of the cancel
                // routine may complete it.
                if unsafe { IoSetCancelRoutine(rec.irp, None) }.is_some() {
                    rec.state.set(State::Completed);
                    g.unlink(r);
                    true
                } else {
                    rec.state.set(State::AwaitingCancel);
                    false
                }
            }
            // Issuing cannot be seen here (the issuing count is dropped after queueing);
            // Completed: cleanup or the cancel routine completed the IRP already.
            _ => false,
        }
    };
    if take {
        // SAFETY: taken off the list with its cancel routine: ours, completed once.
        unsafe { complete(rec, rec.irp, rec.status()) };
    }
    // SAFETY: the NBLs' reference, dropped once.
    unsafe { release(r) };
}

/// The cancel routine of pending writes: called holding the cancel spin lock.
unsafe extern "win64" fn cancel_write(_device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: the IRP the I/O manager is cancelling.
    let irql = unsafe { (*irp).CancelIrql };
    // SAFETY: called holding the cancel spin lock; `irql` is what to restore.
    unsafe { IoReleaseCancelSpinLock(irql) };
    let r = record_of(irp);
    // SAFETY: the IRP is not completed (its cancel routine is the only path left that may
    // complete it), so its reference keeps the record and the handle alive.
    let rec = unsafe { &*r };
    // SAFETY: as above.
    let h = unsafe { &*rec.handle };
    let status = {
        let mut g = h.writes.lock();
        let status = if rec.state.get() == State::AwaitingCancel {
            rec.status()
        } else {
            STATUS_CANCELLED
        };
        rec.state.set(State::Completed);
        g.unlink(r);
        status
    };
    // SAFETY: the cancel routine owns the IRP; completed once.
    unsafe { complete(rec, irp, status) };
}

/// IRP_MJ_CLEANUP: every queued write of the handle completes with STATUS_CANCELLED (D6),
/// and no write is queued after this. Writes whose cancel routine is already running are
/// left to it. PASSIVE_LEVEL.
pub fn cleanup(h: &OpenHandle) {
    loop {
        let mut taken = [ptr::null_mut::<WriteRecord>(); 16];
        let mut n = 0;
        {
            let mut g = h.writes.lock();
            g.cleaned_up = true;
            let mut r = g.head;
            while n < taken.len() {
                // SAFETY: a record on the list (alive: the IRP's reference).
                let Some(rec) = (unsafe { r.as_ref() }) else { break };
                let next = rec.next.get();
                // SAFETY: a queued IRP is pending; only the holder of its cancel routine may
                // complete it.
                if rec.state.get() == State::Queued && unsafe { IoSetCancelRoutine(rec.irp, None) }.is_some()
                {
                    rec.state.set(State::Completed);
                    g.unlink(r);
                    taken[n] = r;
                    n += 1;
                }
                r = next;
            }
        }
        for &r in &taken[..n] {
            // SAFETY: taken off the list with its cancel routine: alive (the IRP's reference).
            let rec = unsafe { &*r };
            // SAFETY: ours, completed once.
            unsafe { complete(rec, rec.irp, STATUS_CANCELLED) };
        }
        if n < taken.len() {
            return;
        }
    }
}

/// Completes the write's IRP with `status` and the frames accepted, and drops the IRP's
/// reference on the record.
///
/// # Safety
/// The caller took the IRP (state set to Completed by it); no spin lock is held.
unsafe fn complete(rec: &WriteRecord, irp: *mut IRP, status: NTSTATUS) {
    // SAFETY: the record holds a reference on its handle.
    let h = unsafe { &*rec.handle };
    h.counters.write_done(status.is_success());
    if status == STATUS_CANCELLED {
        h.counters.write_cancelled();
    }
    let accepted = rec.accepted.load(Ordering::Acquire);
    // SAFETY: caller's contract: ours, completed once.
    unsafe { complete_irp(irp, status, accepted) };
    // SAFETY: the IRP's reference, dropped once.
    unsafe { release(ptr::from_ref(rec).cast_mut()) };
}

/// Drops one reference; the last puts the record in its handle's cache and drops the
/// record's reference on the handle.
///
/// # Safety
/// `r` is live and the caller owns one of its references.
unsafe fn release(r: *mut WriteRecord) {
    // SAFETY: caller's contract.
    let rec = unsafe { &*r };
    if rec.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    // SAFETY: the record's handle reference is still held.
    let h = unsafe { &*rec.handle };
    // The record is idle now: nothing else refers to it. The handle's spare if that is free
    // (no lock), else the cache.
    if h.spare_write
        .compare_exchange(ptr::null_mut(), r, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        let mut g = h.writes.lock();
        rec.next.set(g.cache);
        g.cache = r;
    }
    // SAFETY: the record's reference on the handle, dropped once.
    unsafe { OpenHandle::release(ptr::NonNull::from(h)) };
}

/// Frees a handle's cached records and its spare (its last reference is gone).
///
/// # Safety
/// Nothing refers to the handle or its records any more.
pub unsafe fn free_cache(list: &mut WriteList, spare: *mut WriteRecord) {
    debug_assert!(list.head.is_null(), "writes still queued");
    if let Some(p) = ptr::NonNull::new(spare) {
        // SAFETY: the handle's idle spare, allocated by `begin`.
        unsafe { ndis_delete(p) };
    }
    let mut r = list.cache;
    list.cache = ptr::null_mut();
    while let Some(p) = ptr::NonNull::new(r) {
        // SAFETY: a cached record, idle.
        r = unsafe { p.as_ref() }.next.get();
        // SAFETY: allocated by `begin` with ndis_new; WriteRecord has no drop glue beyond
        // plain data.
        unsafe { ndis_delete(p) };
    }
}
