//! Per-thread execution context: the current IRQL, the spin locks this thread holds (in
//! acquisition order), and the driver callback it is executing (for violation messages).

use std::cell::RefCell;

use ndis_sys::{DISPATCH_LEVEL, KIRQL, PASSIVE_LEVEL};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeldLock {
    pub addr: usize,
    pub dpr: bool,
}

#[derive(Default)]
struct Ctx {
    irql: KIRQL,
    held: Vec<HeldLock>,
    callbacks: Vec<&'static str>,
    /// Simulation epoch at which the outermost driver callback on this thread began.
    entry_epoch: Option<u64>,
    /// Simulated time the outermost callback has spent in NdisMSleep.
    slept: u64,
    /// Counted as waiting by the world (see `World::waiting_here`).
    waiting: bool,
    /// Counted as busy by the world (see `World::busy`).
    counted: bool,
    /// An actor of the test (see `Sim::actor`).
    actor: bool,
    /// Counted as busy until the interleaving explorer's other processor is joined (see
    /// `World::pin_busy`).
    pinned: bool,
    /// The world's epoch when this thread entered its latest call into NDIS or the kernel,
    /// and its call before that.
    call_epoch: u64,
    previous_call_epoch: u64,
}

thread_local! {
    static CTX: RefCell<Ctx> = RefCell::new(Ctx { irql: PASSIVE_LEVEL, ..Ctx::default() });
}

/// The current IRQL of this thread.
pub(crate) fn irql() -> KIRQL {
    CTX.with(|c| c.borrow().irql)
}

pub(crate) fn set_irql(irql: KIRQL) {
    CTX.with(|c| c.borrow_mut().irql = irql);
}

pub(crate) fn at_dispatch() -> bool {
    irql() == DISPATCH_LEVEL
}

/// The innermost driver callback running on this thread, or `"driver"`.
pub(crate) fn context_name() -> &'static str {
    CTX.with(|c| c.borrow().callbacks.last().copied().unwrap_or("driver"))
}

pub(crate) fn held_locks() -> Vec<HeldLock> {
    CTX.with(|c| c.borrow().held.clone())
}

pub(crate) fn push_lock(l: HeldLock) {
    CTX.with(|c| c.borrow_mut().held.push(l));
}

/// Removes `addr` from the held list; returns its entry and whether it was the most recent
/// acquisition (LIFO).
pub(crate) fn pop_lock(addr: usize) -> Option<(HeldLock, bool)> {
    CTX.with(|c| {
        let mut c = c.borrow_mut();
        let pos = c.held.iter().rposition(|h| h.addr == addr)?;
        let lifo = pos + 1 == c.held.len();
        Some((c.held.remove(pos), lifo))
    })
}

pub(crate) fn holds(addr: usize) -> bool {
    CTX.with(|c| c.borrow().held.iter().any(|h| h.addr == addr))
}

/// Whether this thread holds `addr` exactly once (a real acquisition, not a recursive one
/// the simulator only recorded).
pub(crate) fn holds_once(addr: usize) -> bool {
    CTX.with(|c| c.borrow().held.iter().filter(|h| h.addr == addr).count() == 1)
}

/// Marks this thread as busy (or not); returns the previous mark.
pub(crate) fn set_counted(on: bool) -> bool {
    CTX.with(|c| std::mem::replace(&mut c.borrow_mut().counted, on))
}

/// Notes the epoch at which this thread enters a call into NDIS or the kernel.
pub(crate) fn enter_call(epoch: u64) {
    CTX.with(|c| {
        let mut c = c.borrow_mut();
        c.previous_call_epoch = c.call_epoch;
        c.call_epoch = epoch;
    });
}

/// The epoch at which this thread entered the call into NDIS before its current one (the
/// driver's code since then ran after it).
pub(crate) fn previous_call_epoch() -> u64 {
    CTX.with(|c| c.borrow().previous_call_epoch)
}

/// Marks this thread as pinned busy (or not); returns the previous mark.
pub(crate) fn set_pinned(on: bool) -> bool {
    CTX.with(|c| std::mem::replace(&mut c.borrow_mut().pinned, on))
}

/// Whether this thread is pinned busy.
pub(crate) fn pinned() -> bool {
    CTX.with(|c| c.borrow().pinned)
}

/// Marks this thread as an actor (or not); returns the previous mark.
pub(crate) fn set_actor(on: bool) -> bool {
    CTX.with(|c| std::mem::replace(&mut c.borrow_mut().actor, on))
}

/// Whether this thread is an actor.
pub(crate) fn is_actor() -> bool {
    CTX.with(|c| c.borrow().actor)
}

/// Whether this thread is counted as busy.
pub(crate) fn counted() -> bool {
    CTX.with(|c| c.borrow().counted)
}

/// Marks this thread as waiting (or not); returns the previous mark.
pub(crate) fn set_waiting(on: bool) -> bool {
    CTX.with(|c| std::mem::replace(&mut c.borrow_mut().waiting, on))
}

/// Adds `t` (100 ns units) to the time this thread's outermost callback slept; returns the
/// total.
pub(crate) fn add_sleep(t: u64) -> u64 {
    CTX.with(|c| {
        let mut c = c.borrow_mut();
        c.slept = c.slept.saturating_add(t);
        c.slept
    })
}

/// Saved state around a call into the driver.
pub(crate) struct Frame {
    irql: KIRQL,
    held: usize,
}

/// The epoch at which the outermost driver callback running on this thread began (None
/// outside any callback).
pub(crate) fn entry_epoch() -> Option<u64> {
    CTX.with(|c| c.borrow().entry_epoch)
}

/// Enters a driver callback at `irql`; `epoch` is the simulation's clock now.
pub(crate) fn enter(callback: &'static str, irql: KIRQL, epoch: u64) -> Frame {
    CTX.with(|c| {
        let mut c = c.borrow_mut();
        if c.callbacks.is_empty() {
            c.entry_epoch = Some(epoch);
            c.slept = 0;
        }
        let frame = Frame {
            irql: c.irql,
            held: c.held.len(),
        };
        c.irql = irql;
        c.callbacks.push(callback);
        frame
    })
}

/// What a callback left behind that it should not have.
pub(crate) struct Leftovers {
    pub callback: &'static str,
    pub irql_now: KIRQL,
    pub irql_expected: KIRQL,
    pub locks: Vec<HeldLock>,
}

/// Leaves a driver callback: restores the caller's IRQL and drops locks the callback kept
/// (after reporting them), so that one broken callback does not cascade.
pub(crate) fn leave(frame: Frame, entered_at: KIRQL) -> Leftovers {
    CTX.with(|c| {
        let mut c = c.borrow_mut();
        let callback = c.callbacks.pop().unwrap_or("driver");
        if c.callbacks.is_empty() {
            c.entry_epoch = None;
        }
        let keep = frame.held.min(c.held.len());
        let locks = c.held.split_off(keep);
        let irql_now = c.irql;
        c.irql = frame.irql;
        Leftovers {
            callback,
            irql_now,
            irql_expected: entered_at,
            locks,
        }
    })
}
