//! Per-thread execution context: the current IRQL, the spin locks this thread holds (in
//! acquisition order), and the driver callback it is executing (for violation messages).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex};

use ndis_sys::{DISPATCH_LEVEL, KIRQL, PASSIVE_LEVEL};

// ---- processors ---------------------------------------------------------------------------------
//
// A thread at DISPATCH_LEVEL or above runs on one simulated processor, which no other thread
// has until it drops below DISPATCH_LEVEL: on Windows, code at DISPATCH_LEVEL is not
// preempted by the scheduler and stays on its processor ("Managing Hardware Priorities",
// "Always Preemptible and Always Interruptible"), which is what lets a driver keep data per
// processor without a lock. So at most `count` threads are at DISPATCH_LEVEL at once; one more
// waits for a processor to come free, as a thread waits to be scheduled. Below
// DISPATCH_LEVEL a thread may run anywhere and move at any time: each question about its
// processor gets the next one round the machine.

/// The simulated processors (one `Sim` at a time per process, see `Slot`).
struct Processors {
    count: u32,
    /// Bit n: processor n runs a thread at DISPATCH_LEVEL or above.
    busy: u64,
}

/// The most processors the simulator models (one processor group).
pub const MAX_PROCESSORS: u32 = 64;

static PROCESSORS: Mutex<Processors> = Mutex::new(Processors { count: 1, busy: 0 });
static PROCESSOR_FREE: Condvar = Condvar::new();
/// Where the next thread below DISPATCH_LEVEL is said to run.
static WANDER: AtomicU32 = AtomicU32::new(0);

fn processors() -> std::sync::MutexGuard<'static, Processors> {
    PROCESSORS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets the machine's processor count (a new simulation; no thread is at DISPATCH_LEVEL).
pub(crate) fn set_processor_count(n: u32) {
    let mut p = processors();
    p.count = n.clamp(1, MAX_PROCESSORS);
    p.busy = 0;
    WANDER.store(0, Ordering::Relaxed);
}

/// The machine's processor count.
pub(crate) fn processor_count() -> u32 {
    processors().count
}

/// A processor for this thread, which is raising to DISPATCH_LEVEL: `preferred` if given
/// (waiting for it), else the lowest free one (waiting for any).
fn take_processor(preferred: Option<u32>) -> u32 {
    let mut p = processors();
    loop {
        let count = p.count;
        let pick = match preferred {
            Some(n) => Some(n % count).filter(|&n| p.busy & (1u64 << n) == 0),
            None => (0..count).find(|&n| p.busy & (1u64 << n) == 0),
        };
        if let Some(n) = pick {
            p.busy |= 1u64 << n;
            return n;
        }
        p = PROCESSOR_FREE.wait(p).unwrap_or_else(|e| e.into_inner());
    }
}

fn give_processor(n: u32) {
    processors().busy &= !(1u64 << n);
    PROCESSOR_FREE.notify_all();
}

/// Sets `c.irql`, taking a processor on the way up to DISPATCH_LEVEL and giving it back on
/// the way down.
fn change_irql(c: &mut Ctx, irql: KIRQL) {
    if c.irql < DISPATCH_LEVEL && irql >= DISPATCH_LEVEL {
        c.processor = Some(take_processor(c.preferred));
    } else if c.irql >= DISPATCH_LEVEL
        && irql < DISPATCH_LEVEL
        && let Some(n) = c.processor.take()
    {
        give_processor(n);
    }
    c.irql = irql;
}

/// `KeGetCurrentProcessorNumberEx`: this thread's processor at DISPATCH_LEVEL and above;
/// below it, wherever the scheduler happens to run it now.
pub(crate) fn current_processor() -> u32 {
    if let Some(n) = CTX.with(|c| c.borrow().processor) {
        return n;
    }
    let count = processor_count();
    WANDER.fetch_add(1, Ordering::Relaxed) % count
}

/// Makes this thread run at DISPATCH_LEVEL on processor `n` (mod the count) from now on, or
/// on any free one (`None`); returns the previous choice. A test's way to put two threads'
/// work on chosen processors.
pub(crate) fn set_preferred_processor(n: Option<u32>) -> Option<u32> {
    CTX.with(|c| std::mem::replace(&mut c.borrow_mut().preferred, n))
}

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
    /// The processor this thread runs on while at DISPATCH_LEVEL or above.
    processor: Option<u32>,
    /// The processor a test asked this thread to run on (`Sim::on_processor`).
    preferred: Option<u32>,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // A thread that ends (or unwinds) at DISPATCH_LEVEL frees its processor.
        if let Some(n) = self.processor.take() {
            give_processor(n);
        }
    }
}

thread_local! {
    static CTX: RefCell<Ctx> = RefCell::new({
        let mut c = Ctx::default();
        c.irql = PASSIVE_LEVEL;
        c
    });
}

/// The current IRQL of this thread.
pub(crate) fn irql() -> KIRQL {
    CTX.with(|c| c.borrow().irql)
}

pub(crate) fn set_irql(irql: KIRQL) {
    CTX.with(|c| change_irql(&mut c.borrow_mut(), irql));
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
        change_irql(&mut c, irql);
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
        change_irql(&mut c, frame.irql);
        Leftovers {
            callback,
            irql_now,
            irql_expected: entered_at,
            locks,
        }
    })
}
