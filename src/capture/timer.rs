//! The read timer: one driver-wide NDIS timer, ticking every 10 ms while a read or an OID
//! request with a deadline waits, or retired capture memory waits to be freed.

use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};

use ndis_sys::*;
use rxinject_abi::capture as cap;
use rxinject_abi::tags::TAG_TIMER;

use super::reads::Completions;
use super::reclaim;
use crate::driver::Handle;
use crate::filter;
use crate::lock::SpinLock;

/// Pending reads with a timeout, across all handles.
pub(crate) static TIMED_READS: AtomicU32 = AtomicU32::new(0);

/// Whether the timer has work: reads or OID requests with a deadline
/// (`oidreq::TIMED_OIDS`), or retired capture memory a tap elsewhere may still hold.
fn timed_work() -> bool {
    TIMED_READS.load(Ordering::Acquire) > 0
        || crate::oidreq::TIMED_OIDS.load(Ordering::Acquire) > 0
        || reclaim::waiting()
}

struct TimerState {
    object: NDIS_HANDLE,
    armed: bool,
    stopping: bool,
}

// SAFETY: the timer object is an opaque NDIS handle.
unsafe impl Send for TimerState {}

static TIMER: SpinLock<TimerState> = SpinLock::new(TimerState {
    object: ptr::null_mut(),
    armed: false,
    stopping: false,
});

/// The timer's period: the resolution of read timeouts.
const TICK_100NS: i64 = cap::TIMEOUT_RESOLUTION_MS as i64 * 10_000;

/// Allocates the read timer. PASSIVE_LEVEL (DriverEntry).
pub fn start(filter_driver: Handle) -> NDIS_STATUS {
    // SAFETY: first use of the lock in this load of the driver.
    unsafe { TIMER.init() };
    TIMED_READS.store(0, Ordering::Relaxed);
    let mut chars = NDIS_TIMER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_TIMER_CHARACTERISTICS,
            NDIS_TIMER_CHARACTERISTICS_REVISION_1,
            NDIS_SIZEOF_TIMER_CHARACTERISTICS_REVISION_1,
        ),
        AllocationTag: TAG_TIMER,
        TimerFunction: Some(read_timer),
        FunctionContext: ptr::null_mut(),
    };
    let mut object: NDIS_HANDLE = ptr::null_mut();
    // SAFETY: valid characteristics and out parameter; our filter driver handle.
    let status = unsafe { NdisAllocateTimerObject(filter_driver.get(), &mut chars, &mut object) };
    if status != NDIS_STATUS_SUCCESS {
        // SAFETY: nobody uses the lock yet.
        unsafe { TIMER.free() };
        return status;
    }
    let mut t = TIMER.lock();
    *t = TimerState {
        object,
        armed: false,
        stopping: false,
    };
    NDIS_STATUS_SUCCESS
}

/// Stops and frees the read timer. PASSIVE_LEVEL (unload, after the device is gone, so no
/// read is pending and none can come).
pub fn stop() {
    let object = {
        let mut t = TIMER.lock();
        t.stopping = true;
        t.object
    };
    if object.is_null() {
        return;
    }
    // SAFETY: our timer object. A callback already running may re-arm it before it sees
    // `stopping`; flushing the DPC queue waits for it, and the second cancel catches a re-arm.
    unsafe { NdisCancelTimerObject(object) };
    // SAFETY: PASSIVE_LEVEL.
    unsafe { KeFlushQueuedDpcs() };
    // SAFETY: as above.
    unsafe { NdisCancelTimerObject(object) };
    // SAFETY: not queued and not running any more.
    unsafe { NdisFreeTimerObject(object) };
    TIMER.lock().object = ptr::null_mut();
    // SAFETY: nothing uses the timer lock after this.
    unsafe { TIMER.free() };
}

/// Arms the timer if a timed read waits and it is not armed. No lock held.
pub(crate) fn arm_timer() {
    let object = {
        let mut t = TIMER.lock();
        if t.armed || t.stopping || t.object.is_null() || !timed_work() {
            return;
        }
        t.armed = true;
        t.object
    };
    // SAFETY: our timer object, one-shot, relative due time.
    unsafe { NdisSetTimerObject(object, -TICK_100NS, 0, ptr::null_mut()) };
}

pub(crate) fn interrupt_time() -> u64 {
    let mut qpc = 0u64;
    // SAFETY: an out parameter on our stack.
    unsafe { KeQueryInterruptTimePrecise(&mut qpc) }
}

/// The read timer (DISPATCH_LEVEL): completes expired reads and abandons expired OID requests
/// on every module, frees retired capture memory no tap holds any more, and ticks again while
/// any of them waits.
unsafe extern "win64" fn read_timer(_s1: PVOID, _ctx: PVOID, _s2: PVOID, _s3: PVOID) {
    let now = interrupt_time();
    reclaim::poll();
    // Module ids first (the module list lock is not held while completing IRPs).
    let mut ids = [0u64; 32];
    let mut start_after = 0usize;
    loop {
        let mut n = 0usize;
        let mut seen = 0usize;
        filter::for_each_module(|m| {
            if seen >= start_after && n < ids.len() {
                ids[n] = m.id;
                n += 1;
            }
            seen += 1;
        });
        for &id in &ids[..n] {
            expire_reads(id, now);
            crate::oidreq::expire(id, now);
        }
        start_after += n;
        if n < ids.len() {
            break;
        }
    }
    let rearm = {
        let mut t = TIMER.lock();
        t.armed = !t.stopping && timed_work();
        t.armed.then_some(t.object)
    };
    if let Some(object) = rearm {
        // SAFETY: our timer object.
        unsafe { NdisSetTimerObject(object, -TICK_100NS, 0, ptr::null_mut()) };
    }
}

/// Completes the expired reads of module `id`, in rounds.
fn expire_reads(id: u64, now: u64) {
    loop {
        let mut done = Completions::new();
        let found = filter::with_module(id, |m| {
            let list = m.capture.list.lock();
            for c in list.items.iter() {
                let mut g = c.inner.lock();
                c.collect_ready(&mut g, Some(now), &mut done);
                if done.is_full() {
                    break;
                }
            }
        });
        let full = done.is_full();
        done.complete_all();
        if found.is_none() || !full {
            return;
        }
    }
}
