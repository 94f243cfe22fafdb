//! Time: a virtual clock, the kernel's time queries, and NDIS timer objects.
//!
//! The clock counts 100 ns units since the simulated boot. It moves forward a microsecond at
//! every call into the driver, and jumps to the next timer's due time when the machine has
//! nothing else to do (`pump`), so a test that waits for a 500 ms read timeout takes no real
//! time and every run is the same. Timer callbacks run at DISPATCH_LEVEL, from the pump, as
//! NDIS calls them from a DPC.

use std::sync::atomic::Ordering;

use ndis_sys::*;

use crate::mem::tag_str;
use crate::rules::Rule;
use crate::world::{HandleKind, World, lock};

/// The system time at boot: 2026-11-24 00:00:00 UTC, in 100 ns units since 1601.
pub(crate) const BOOT_SYSTEM_TIME: i64 = 134_399_520_000_000_000;
/// How far the clock moves at each call into the driver (1 µs).
pub(crate) const TICK: u64 = 10;

pub(crate) struct TimerRec {
    function: unsafe extern "win64" fn(PVOID, PVOID, PVOID, PVOID),
    /// The context from the characteristics, replaced by the one `NdisSetTimerObject` passes
    /// when that one is not NULL.
    context: usize,
    set_context: usize,
    /// When it fires (clock units), while queued.
    due: Option<u64>,
    period: u64,
    tag: u32,
}

#[derive(Default)]
pub(crate) struct TimerTable {
    timers: crate::AddrMap<TimerRec>,
    next: usize,
    pub fired: u64,
    /// Calls of `KeQuerySystemTimePrecise`.
    pub time_queries: u64,
}

/// The clock now.
pub(crate) fn now(w: &World) -> u64 {
    w.clock.load(Ordering::SeqCst)
}

/// `KeQuerySystemTimePrecise`.
pub(crate) fn system_time(w: &World) -> i64 {
    lock(&w.timers).time_queries += 1;
    BOOT_SYSTEM_TIME + now(w) as i64
}

/// `NdisAllocateTimerObject`.
pub(crate) fn allocate(
    w: &World,
    handle: NDIS_HANDLE,
    chars: *mut NDIS_TIMER_CHARACTERISTICS,
    out: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const F: &str = "NdisAllocateTimerObject";
    w.require_max_dispatch(F);
    let kind = lock(&w.objs).handles.get(&(handle as usize)).copied();
    if !matches!(kind, Some(HandleKind::FilterDriver | HandleKind::Module(_))) {
        w.violate(
            Rule::K1,
            format!("{F} with {:#x}, not a driver or module handle", handle as usize),
        );
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    if chars.is_null() || out.is_null() {
        w.violate(Rule::K1, format!("{F} with a NULL argument"));
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the driver's characteristics, valid for the call.
    let c = unsafe { &*chars };
    if c.Header.Type != NDIS_OBJECT_TYPE_TIMER_CHARACTERISTICS
        || c.Header.Revision != NDIS_TIMER_CHARACTERISTICS_REVISION_1
        || c.Header.Size < NDIS_SIZEOF_TIMER_CHARACTERISTICS_REVISION_1
    {
        w.violate(
            Rule::K1,
            format!("{F}: bad characteristics header {:?}", c.Header),
        );
        return NDIS_STATUS_BAD_CHARACTERISTICS;
    }
    let Some(function) = c.TimerFunction else {
        w.violate(Rule::K1, format!("{F}: no TimerFunction"));
        return NDIS_STATUS_BAD_CHARACTERISTICS;
    };
    if c.AllocationTag == 0 {
        w.violate(Rule::K1, format!("{F}: a zero AllocationTag"));
    }
    if w.fail_allocation(F) {
        return NDIS_STATUS_RESOURCES;
    }
    let mut t = lock(&w.timers);
    t.next += 1;
    let id = 0x7100_0000 + t.next * 16;
    t.timers.insert(
        id,
        TimerRec {
            function,
            context: c.FunctionContext as usize,
            set_context: 0,
            due: None,
            period: 0,
            tag: c.AllocationTag,
        },
    );
    // SAFETY: the driver's out parameter.
    unsafe { *out = id as NDIS_HANDLE };
    NDIS_STATUS_SUCCESS
}

fn unknown(w: &World, f: &str, timer: NDIS_HANDLE) {
    w.violate(
        Rule::K1,
        format!(
            "{f}({:#x}): not a live timer object (freed, or never allocated)",
            timer as usize
        ),
    );
}

/// `NdisSetTimerObject`.
pub(crate) fn set(w: &World, timer: NDIS_HANDLE, due_time: i64, period_ms: u32, context: PVOID) -> BOOLEAN {
    const F: &str = "NdisSetTimerObject";
    w.require_max_dispatch(F);
    let now = now(w);
    let mut t = lock(&w.timers);
    let Some(rec) = t.timers.get_mut(&(timer as usize)) else {
        drop(t);
        unknown(w, F, timer);
        return FALSE;
    };
    let due = if due_time < 0 {
        now.saturating_add(due_time.unsigned_abs())
    } else {
        (due_time - BOOT_SYSTEM_TIME).max(0) as u64
    };
    let was_queued = rec.due.is_some();
    rec.due = Some(due.max(now));
    rec.period = u64::from(period_ms) * 10_000;
    rec.set_context = context as usize;
    if was_queued { TRUE } else { FALSE }
}

/// `NdisCancelTimerObject`.
pub(crate) fn cancel(w: &World, timer: NDIS_HANDLE) -> BOOLEAN {
    const F: &str = "NdisCancelTimerObject";
    let mut t = lock(&w.timers);
    let Some(rec) = t.timers.get_mut(&(timer as usize)) else {
        drop(t);
        unknown(w, F, timer);
        return FALSE;
    };
    let periodic = rec.period != 0;
    let was_queued = rec.due.take().is_some();
    drop(t);
    if periodic {
        w.require_passive("NdisCancelTimerObject of a periodic timer");
    } else {
        w.require_max_dispatch(F);
    }
    if was_queued { TRUE } else { FALSE }
}

/// `NdisFreeTimerObject`.
pub(crate) fn free(w: &World, timer: NDIS_HANDLE) {
    const F: &str = "NdisFreeTimerObject";
    w.require_max_dispatch(F);
    let rec = lock(&w.timers).timers.remove(&(timer as usize));
    match rec {
        Some(rec) => {
            if rec.due.is_some() {
                w.violate(
                    Rule::K1,
                    format!(
                        "{F}: the timer (tag {}) is still set: cancel it first",
                        tag_str(rec.tag)
                    ),
                );
            }
        }
        None => unknown(w, F, timer),
    }
}

/// Fires every timer due by now, earliest first. Returns how many fired.
pub(crate) fn fire_due(w: &World) -> usize {
    let mut fired = 0;
    loop {
        let now = now(w);
        let next = {
            let mut t = lock(&w.timers);
            let due = t
                .timers
                .iter()
                .filter_map(|(id, r)| r.due.filter(|&d| d <= now).map(|d| (d, *id)))
                .min();
            match due {
                None => None,
                Some((_, id)) => {
                    let rec = t.timers.get_mut(&id).expect("present");
                    rec.due = if rec.period != 0 {
                        Some(now + rec.period)
                    } else {
                        None
                    };
                    let ctx = if rec.set_context != 0 {
                        rec.set_context
                    } else {
                        rec.context
                    };
                    let function = rec.function;
                    t.fired += 1;
                    Some((function, ctx))
                }
            }
        };
        let Some((function, ctx)) = next else { return fired };
        w.call_driver("NetTimerCallback", DISPATCH_LEVEL, || {
            // SAFETY: the driver's timer function with its context, as NDIS calls it.
            unsafe {
                function(
                    std::ptr::null_mut(),
                    ctx as PVOID,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            }
        });
        fired += 1;
    }
}

/// The earliest due time of a queued timer.
pub(crate) fn next_due(w: &World) -> Option<u64> {
    lock(&w.timers).timers.values().filter_map(|r| r.due).min()
}

/// Moves the clock forward by `by` units, firing timers at their due times on the way.
pub(crate) fn advance(w: &World, by: u64) {
    let target = now(w).saturating_add(by);
    loop {
        let next = lock(&w.timers)
            .timers
            .values()
            .filter_map(|r| r.due)
            .filter(|&d| d <= target)
            .min();
        match next {
            Some(due) => {
                w.clock.fetch_max(due, Ordering::SeqCst);
                fire_due(w);
            }
            None => break,
        }
    }
    w.clock.fetch_max(target, Ordering::SeqCst);
}

/// At unload: timer objects still allocated are leaks (K1).
pub(crate) fn check_unload(w: &World) {
    let tags: Vec<u32> = lock(&w.timers).timers.values().map(|r| r.tag).collect();
    for tag in tags {
        w.violate(
            Rule::K1,
            format!(
                "leak at unload: a timer object (tag {}) was never freed (NdisFreeTimerObject)",
                tag_str(tag)
            ),
        );
    }
}

/// `MmMapLockedPagesSpecifyCache` for an MDL of the simulation: maps it (sets
/// `MappedSystemVa` and `MDL_MAPPED_TO_SYSTEM_VA`) and returns the address of its data.
pub(crate) fn map_mdl(w: &World, mdl: *mut MDL, mode: i8, bugcheck_on_failure: bool, priority: u32) -> PVOID {
    const F: &str = "MmMapLockedPagesSpecifyCache";
    if mode == KernelMode {
        w.require_max_dispatch(F);
    } else {
        w.violate(Rule::L1, format!("{F} with UserMode from a driver callback"));
    }
    if bugcheck_on_failure {
        w.violate(
            Rule::D13,
            format!("{F} with BugCheckOnFailure TRUE: under low resources the machine bug-checks instead of returning NULL (use MmGetSystemAddressForMdlSafe)"),
        );
    }
    let _ = priority;
    if !lock(&w.objs).mdls.contains_key(&(mdl as usize)) {
        w.violate(
            Rule::N5,
            format!("{F}({:#x}): not an MDL of this machine", mdl as usize),
        );
        return std::ptr::null_mut();
    }
    // SAFETY: a live MDL the simulator registered.
    let m = unsafe { &mut *mdl };
    if m.MdlFlags & MDL_MAPPED_TO_SYSTEM_VA == 0 && w.fail_allocation(F) {
        // Low resources: no system PTEs now ("Low Resources Simulation" fails this call).
        return std::ptr::null_mut();
    }
    let va = (m.StartVa as usize + m.ByteOffset as usize) as PVOID;
    m.MappedSystemVa = va;
    m.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
    va
}
