//! Capture: taps on the four paths, per-processor rings of records per handle, BPF filters,
//! and read IRPs.
//!
//! - `taps`: the taps, which take no lock (a section per processor, `reclaim`).
//! - `ring`: each capture's rings, one per processor, single producer (the taps on that
//!   processor) and single consumer (the reader); reads merge them by time stamp.
//! - `bpf_filter`: `SET_FILTER`'s programs, validated and pre-decoded.
//! - `reads`: read IRPs, pended, completed, cancelled.
//! - `timer`: the read timer.
//! - `reclaim`: what the taps read is freed only once no tap can hold it.
//!
//! **Registration.** A capturing handle's [`Capture`] is in its module's [`CaptureList`]
//! (for the writers and the timer, under the list lock) and in its [`CaptureArray`] (for the
//! taps, read without a lock). Lock order: module list (`GLOBALS.modules`) → a module's
//! capture list → a capture → the reclaim lists.
//!
//! **Rings.** Records ([`rxinject_abi::capture`]) are a 24-byte header and the frame's first
//! bytes, padded to 8. The datapath never waits: a frame that does not fit its processor's
//! ring is counted as dropped, per processor, and the counts are summed for the stats.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use ndis_sys::*;
use rxinject_abi::capture::{self as cap, CaptureConfig, CaptureStats};
use rxinject_abi::tags::TAG_CAPTURE;

use crate::device::OpenHandle;
use crate::driver::{GLOBALS, Handle};
use crate::filter::{self, FilterModule};
use crate::list::{Linked, List};
use crate::lock::SpinLock;

mod bpf_filter;
mod reads;
mod reclaim;
mod ring;
mod taps;
mod timer;

pub use bpf_filter::{check_filter, set_filter};
pub(crate) use reads::irp_context;
pub use reads::read;
pub use taps::tap;
pub(crate) use timer::{arm_timer, interrupt_time};

use bpf_filter::Program;
use reads::{Completions, Inner};
use reclaim::{Kind, Retired};
use ring::RingSet;

/// Which way a tapped chain goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Up to the host: receives from below, frames injected up.
    Inbound,
    /// Down to the wire: sends from above, frames injected down.
    Outbound,
}

/// One processor's counts for one capture: written only by the taps on that processor
/// (plain loads and stores: one writer), summed by `stats`. 128 bytes apart.
#[repr(C)]
struct CpuCounters {
    seen: AtomicU64,
    accepted: AtomicU64,
    captured: AtomicU64,
    dropped: AtomicU64,
    _line: [u64; 12],
}

impl CpuCounters {
    fn add(&self, seen: u64, accepted: u64, captured: u64, dropped: u64) {
        let bump = |a: &AtomicU64, n: u64| {
            if n > 0 {
                a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
            }
        };
        bump(&self.seen, seen);
        bump(&self.accepted, accepted);
        bump(&self.captured, captured);
        bump(&self.dropped, dropped);
    }
}

/// The capture state of one handle, from its first capture IOCTL until it is freed, after
/// the handle's close, once no tap can hold it.
#[repr(C)]
pub struct Capture {
    retired: Retired,
    inner: SpinLock<Inner>,
    /// The handle this capture belongs to (identity only, for "leave out my injections").
    owner: *const OpenHandle,
    /// The module this capture is linked into (0: none). Written under that module's
    /// capture-list lock.
    registered: AtomicU64,
    /// Link in the module's capture list (guarded by the list lock).
    next: AtomicPtr<Capture>,
    // What the taps read (written under `inner`, read without it).
    capturing: AtomicBool,
    directions: AtomicU32,
    flags: AtomicU32,
    snaplen: AtomicU32,
    program: AtomicPtr<Program>,
    rings: AtomicPtr<RingSet>,
    /// One per processor (`reclaim::processors`).
    counters: *mut CpuCounters,
    /// Reads pended, and the bytes the oldest waits for (`reads.rs`).
    waiting: AtomicU32,
    wake_at: AtomicUsize,
    /// The ring bytes this capture holds of the driver-wide budget (written under `inner`).
    budget: AtomicUsize,
}

// SAFETY: `owner` is an identity, never dereferenced; the counters are atomics; everything
// else is atomic or locked.
unsafe impl Send for Capture {}
// SAFETY: as above.
unsafe impl Sync for Capture {}

impl Capture {
    fn counters(&self, cpu: usize) -> Option<&CpuCounters> {
        // (Never null: `capture_of` fails without them.)
        if cpu >= reclaim::processors() {
            return None;
        }
        // SAFETY: `capture_of` allocated one counter block per processor; they live with the
        // capture.
        Some(unsafe { &*self.counters.wrapping_add(cpu) })
    }

    fn sum(&self, f: impl Fn(&CpuCounters) -> &AtomicU64) -> u64 {
        (0..reclaim::processors())
            .filter_map(|cpu| self.counters(cpu))
            .map(|c| f(c).load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }
}

impl Linked for Capture {
    fn link(&self) -> &AtomicPtr<Self> {
        &self.next
    }
}

// ---- a module's captures ----------------------------------------------------------------------

/// The captures of one module, for writers and the timer (guarded by the module's capture
/// lock).
#[derive(Default)]
pub struct CaptureList {
    items: List<Capture>,
    /// Set by detach: nothing may register any more.
    closed: bool,
}

impl CaptureList {
    pub const fn new() -> Self {
        CaptureList {
            items: List::new(),
            closed: false,
        }
    }

    fn count(&self) -> u32 {
        self.items.len() as u32
    }
}

/// The captures of one module, for the taps: a published array of slots (null: free),
/// replaced by a larger one when full. Written under the module's capture lock.
#[repr(C)]
pub struct CaptureArray {
    retired: Retired,
    len: usize,
}

const SLOTS_AT: usize = core::mem::size_of::<CaptureArray>();

impl CaptureArray {
    fn slots(&self) -> &[AtomicPtr<Capture>] {
        let first = ptr::from_ref(self)
            .cast::<u8>()
            .wrapping_add(SLOTS_AT)
            .cast::<AtomicPtr<Capture>>();
        // SAFETY: `alloc` made `len` slots right after the header; they live with it.
        unsafe { core::slice::from_raw_parts(first, self.len) }
    }

    /// An array of `len` free slots, or null.
    fn alloc(len: usize) -> *mut CaptureArray {
        let bytes = SLOTS_AT + len * core::mem::size_of::<AtomicPtr<Capture>>();
        let a = alloc_bytes(bytes, TAG_CAPTURE).cast::<CaptureArray>();
        if a.is_null() {
            return a;
        }
        // SAFETY: fresh pool memory for the header and `len` slots.
        unsafe {
            a.write(CaptureArray {
                retired: Retired::new(Kind::Array),
                len,
            })
        };
        let slots = a.cast::<u8>().wrapping_add(SLOTS_AT).cast::<AtomicPtr<Capture>>();
        for i in 0..len {
            // SAFETY: slot `i` of the `len` allocated.
            unsafe { slots.wrapping_add(i).write(AtomicPtr::new(ptr::null_mut())) };
        }
        a
    }
}

/// The capture part of a module: the list, the array and the count the taps check.
pub struct ModuleCapture {
    pub list: SpinLock<CaptureList>,
    array: AtomicPtr<CaptureArray>,
    /// Number of captures in the list (read without the lock by the taps).
    pub active: AtomicU32,
}

impl ModuleCapture {
    pub const fn new() -> Self {
        ModuleCapture {
            list: SpinLock::new(CaptureList::new()),
            array: AtomicPtr::new(ptr::null_mut()),
            active: AtomicU32::new(0),
        }
    }

    /// The captures, for a tap inside its section.
    fn captures(&self) -> impl Iterator<Item = &Capture> {
        // SAFETY: a published array lives until retired, and a retired one until no section
        // that may have loaded it is left; the caller is inside one.
        let slots =
            unsafe { self.array.load(Ordering::Acquire).as_ref() }.map_or(&[][..], CaptureArray::slots);
        slots.iter().filter_map(|s| {
            // SAFETY: a capture in a slot lives until retired (after it left every slot);
            // as above.
            unsafe { s.load(Ordering::Acquire).as_ref() }
        })
    }

    /// Puts `c` in a free slot (under the list lock), or in a new, larger array. Err if
    /// memory ran out; Ok with the array it replaced, to retire once the lock is released.
    fn add(&self, c: &Capture) -> Result<*mut CaptureArray, ()> {
        let target = ptr::from_ref(c).cast_mut();
        let current = self.array.load(Ordering::Acquire);
        // SAFETY: the writer's own view (under the list lock): alive while published.
        let slots = unsafe { current.as_ref() }.map_or(&[][..], CaptureArray::slots);
        if slots.iter().any(|s| s.load(Ordering::Relaxed) == target) {
            return Ok(ptr::null_mut());
        }
        if let Some(free) = slots.iter().find(|s| s.load(Ordering::Relaxed).is_null()) {
            free.store(target, Ordering::SeqCst);
            return Ok(ptr::null_mut());
        }
        let fresh = CaptureArray::alloc((slots.len() * 2).max(4));
        // SAFETY: just allocated, not published.
        let Some(fresh_ref) = (unsafe { fresh.as_ref() }) else {
            return Err(());
        };
        let new_slots = fresh_ref.slots();
        for (to, from) in new_slots.iter().zip(slots) {
            to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        new_slots[slots.len()].store(target, Ordering::Relaxed);
        self.array.store(fresh, Ordering::SeqCst);
        Ok(current)
    }

    /// Frees `c`'s slot (under the list lock).
    fn remove(&self, c: &Capture) {
        let target = ptr::from_ref(c).cast_mut();
        // SAFETY: as in `add`.
        let slots =
            unsafe { self.array.load(Ordering::Acquire).as_ref() }.map_or(&[][..], CaptureArray::slots);
        for s in slots {
            if s.load(Ordering::Relaxed) == target {
                s.store(ptr::null_mut(), Ordering::SeqCst);
            }
        }
    }
}

impl Default for ModuleCapture {
    fn default() -> Self {
        Self::new()
    }
}

/// Completes, in rounds of at most 16, every pending read of the module's captures that is
/// ready (or expired at `now`). IRQL <= DISPATCH_LEVEL; no lock held.
fn complete_ready_reads(m: &FilterModule, now: Option<u64>) {
    loop {
        let mut done = Completions::new();
        {
            let list = m.capture.list.lock();
            for c in list.items.iter() {
                let mut g = c.inner.lock();
                c.collect_ready(&mut g, now, &mut done);
                if done.is_full() {
                    break;
                }
            }
        }
        let full = done.is_full();
        done.complete_all();
        if !full {
            return;
        }
    }
}

// ---- memory -----------------------------------------------------------------------------------

fn alloc_bytes(len: usize, tag: u32) -> *mut u8 {
    let Ok(len) = u32::try_from(len) else {
        return ptr::null_mut();
    };
    // SAFETY: a plain allocation with our filter driver handle.
    unsafe { NdisAllocateMemoryWithTagPriority(GLOBALS.filter_driver(), len, tag, NormalPoolPriority) }.cast()
}

fn free_bytes(p: *mut u8) {
    if !p.is_null() {
        // SAFETY: allocated by `alloc_bytes`, not referenced any more.
        unsafe { NdisFreeMemory(p.cast(), 0, 0) };
    }
}

/// Frees a retired object by its kind (`reclaim`).
///
/// # Safety
/// `p` heads an object of `kind`, retired, referenced by nothing.
unsafe fn free_retired(p: *mut Retired, kind: Kind) {
    match kind {
        Kind::Program => {
            // SAFETY: the caller's contract; the header is the program's first field.
            unsafe { bpf_filter::free(p.cast()) }
        }
        Kind::Rings => free_rings(p.cast()),
        Kind::Array => free_bytes(p.cast()),
        Kind::Capture => {
            let c = p.cast::<Capture>();
            // SAFETY: the caller's contract: a capture nothing references.
            let c_ref = unsafe { &*c };
            RING_BUDGET.give_back(c_ref.budget.load(Ordering::Acquire));
            free_rings(c_ref.rings.load(Ordering::Acquire));
            let program = c_ref.program.load(Ordering::Acquire);
            if !program.is_null() {
                // SAFETY: the capture's last program, unreachable with it.
                unsafe { bpf_filter::free(program) };
            }
            free_bytes(c_ref.counters.cast());
            // SAFETY: nothing can reach the capture, so its lock is idle.
            unsafe { c_ref.inner.free() };
            if let Some(c) = NonNull::new(c) {
                // SAFETY: allocated by `ndis_new` in `capture_of`.
                unsafe { crate::mem::ndis_delete(c) };
            }
        }
    }
}

fn free_rings(r: *mut RingSet) {
    free_bytes(r.cast());
}

/// Non-paged memory all capture rings may take together (`cap::MAX_TOTAL_RING_BYTES`).
struct RingBudget(AtomicUsize);

impl RingBudget {
    /// Takes `n` bytes of the budget, unless that would exceed it.
    fn take(&self, n: usize) -> bool {
        let max = cap::MAX_TOTAL_RING_BYTES as usize;
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&u| u <= max)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.0.fetch_sub(n, Ordering::AcqRel);
    }
}

static RING_BUDGET: RingBudget = RingBudget(AtomicUsize::new(0));

/// Each processor's share of a ring of `ring_bytes`: an equal part, but room for at least
/// one record of `snaplen` bytes (as WinPcap 4's per-processor buffers split its buffer).
fn ring_share(ring_bytes: usize, snaplen: u32, processors: usize) -> usize {
    let part = (ring_bytes / processors.max(1)) & !(cap::RECORD_ALIGN - 1);
    part.max(cap::record_len(snaplen as usize))
}

// ---- start and stop ---------------------------------------------------------------------------

/// Allocates the per-processor sections and the read timer. PASSIVE_LEVEL (DriverEntry).
pub fn start(filter_driver: Handle) -> NDIS_STATUS {
    RING_BUDGET.0.store(0, Ordering::Relaxed);
    if !reclaim::start() {
        return NDIS_STATUS_RESOURCES;
    }
    let status = timer::start(filter_driver);
    if status != NDIS_STATUS_SUCCESS {
        reclaim::stop();
    }
    status
}

/// Stops and frees the read timer. PASSIVE_LEVEL (unload, after the device is gone).
pub fn stop() {
    timer::stop();
}

/// Frees what is left of capture (after every module is detached: no tap runs any more).
/// PASSIVE_LEVEL.
pub fn finish() {
    reclaim::stop();
}

// ---- the handle side --------------------------------------------------------------------------

/// The handle's capture, created on first use. PASSIVE_LEVEL. None if memory ran out.
fn capture_of(h: &OpenHandle) -> Option<&Capture> {
    if let Some(c) = h.capture() {
        return Some(c);
    }
    let n = reclaim::processors();
    let counters = alloc_bytes(n * core::mem::size_of::<CpuCounters>(), TAG_CAPTURE).cast::<CpuCounters>();
    if counters.is_null() {
        return None;
    }
    for i in 0..n {
        // SAFETY: block `i` of the `n` just allocated.
        unsafe {
            counters.wrapping_add(i).write(CpuCounters {
                seen: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
                captured: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                _line: [0; 12],
            })
        };
    }
    let value = Capture {
        retired: Retired::new(Kind::Capture),
        inner: SpinLock::new(Inner::new()),
        owner: ptr::from_ref(h),
        registered: AtomicU64::new(0),
        next: AtomicPtr::new(ptr::null_mut()),
        capturing: AtomicBool::new(false),
        // What SET_CAPTURE asks, stored before `capturing` is set; no tap reads it before.
        directions: AtomicU32::new(0),
        flags: AtomicU32::new(0),
        snaplen: AtomicU32::new(cap::MAX_SNAPLEN),
        program: AtomicPtr::new(ptr::null_mut()),
        rings: AtomicPtr::new(ptr::null_mut()),
        counters,
        waiting: AtomicU32::new(0),
        wake_at: AtomicUsize::new(usize::MAX),
        budget: AtomicUsize::new(0),
    };
    let Some(fresh) = crate::mem::ndis_new(Handle::new(GLOBALS.filter_driver()), TAG_CAPTURE, value) else {
        free_bytes(counters.cast());
        return None;
    };
    // SAFETY: just written, not shared yet.
    let fresh_ref = unsafe { fresh.as_ref() };
    // SAFETY: the lock is at its final address, used by nobody yet.
    unsafe { fresh_ref.inner.init() };
    match h.install_capture(fresh.as_ptr()) {
        Ok(()) => h.capture(),
        Err(existing) => {
            // Another request of the same handle won the race: use its capture.
            // SAFETY: never shared: freed at once.
            unsafe { free_retired(fresh.as_ptr().cast(), Kind::Capture) };
            // SAFETY: the installed capture lives until the handle's close.
            Some(unsafe { &*existing })
        }
    }
}

/// Links `c` into module `id`'s list and array (unlinking it from another module first).
/// Returns false if the module is gone or detaching, or memory ran out.
fn register(c: &Capture, id: u64) -> bool {
    let old = c.registered.load(Ordering::Acquire);
    if old == id {
        return true;
    }
    if old != 0 {
        unregister(c);
    }
    let replaced = filter::with_module(id, |m| {
        let mut list = m.capture.list.lock();
        if list.closed {
            return None;
        }
        let replaced = m.capture.add(c).ok()?;
        if !list.items.contains(c) {
            list.items.push(c);
        }
        c.registered.store(id, Ordering::Release);
        c.inner.lock().adapter_gone = false;
        m.capture.active.store(list.count(), Ordering::Relaxed);
        Some(replaced)
    })
    .flatten();
    let Some(old) = replaced else {
        return false;
    };
    if !old.is_null() {
        // SAFETY: unpublished by `add`; only taps inside a section may hold it.
        unsafe { reclaim::retire(old.cast()) };
    }
    true
}

/// Unlinks `c` from its module, if it is in one.
fn unregister(c: &Capture) {
    let id = c.registered.load(Ordering::Acquire);
    if id == 0 {
        return;
    }
    filter::with_module(id, |m| {
        let mut list = m.capture.list.lock();
        list.items.remove(c);
        m.capture.remove(c);
        c.registered.store(0, Ordering::Release);
        m.capture.active.store(list.count(), Ordering::Relaxed);
    });
    // If the module was gone, detach already unlinked it.
    c.registered.store(0, Ordering::Release);
}

/// `IOCTL_RXINJECT_SET_CAPTURE`. PASSIVE_LEVEL.
pub fn set_capture(h: &OpenHandle, config: &CaptureConfig) -> NTSTATUS {
    let Ok(settings) = config.settings() else {
        return STATUS_INVALID_PARAMETER;
    };
    let Some((id, _)) = h.binding() else {
        return STATUS_INVALID_DEVICE_STATE;
    };
    let Some(c) = capture_of(h) else {
        return STATUS_INSUFFICIENT_RESOURCES;
    };
    // Rings of the new size, allocated before taking the lock (if the size changes), within
    // the driver-wide budget.
    let processors = reclaim::processors();
    let share = ring_share(settings.ring_bytes as usize, settings.snaplen, processors);
    let (current_share, generation) = {
        let g = c.inner.lock();
        (c.rings().map_or(0, RingSet::share), g.filter_generation)
    };
    let mut fresh = ptr::null_mut::<RingSet>();
    if current_share != share {
        let Some(bytes) = RingSet::allocation_len(processors, share) else {
            return STATUS_INVALID_PARAMETER;
        };
        // The budget counts each handle's rings: it grows (or shrinks, below) by the
        // difference (for a moment both sets exist, as the old one is freed after).
        let total = processors * share;
        let held = c.budget.load(Ordering::Acquire);
        if !RING_BUDGET.take(total.saturating_sub(held)) {
            return STATUS_QUOTA_EXCEEDED;
        }
        let mem = alloc_bytes(bytes, TAG_CAPTURE);
        if mem.is_null() {
            RING_BUDGET.give_back(total.saturating_sub(held));
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        RING_BUDGET.give_back(held.saturating_sub(total));
        c.budget.store(total, Ordering::Release);
        // SAFETY: fresh pool memory of the size the layout needs.
        fresh = unsafe { RingSet::init(mem, processors, share, generation) };
    }
    let old = {
        let mut g = c.inner.lock();
        let old = if fresh.is_null() {
            ptr::null_mut()
        } else {
            // SAFETY: ours until published here.
            unsafe { ring::RingSet::set_generation(fresh, g.filter_generation) };
            c.rings.swap(fresh, Ordering::SeqCst)
        };
        g.settings = settings;
        c.directions.store(settings.directions, Ordering::Relaxed);
        c.flags.store(settings.flags, Ordering::Relaxed);
        c.snaplen.store(settings.snaplen, Ordering::Relaxed);
        c.capturing.store(true, Ordering::Release);
        old
    };
    if !old.is_null() {
        // SAFETY: unpublished above; only taps inside a section may hold it.
        unsafe { reclaim::retire(old.cast()) };
    }
    if !register(c, id) {
        c.capturing.store(false, Ordering::Release);
        return STATUS_NO_SUCH_DEVICE;
    }
    // New settings may make waiting reads ready.
    c.complete_reads(false);
    STATUS_SUCCESS
}

/// `IOCTL_RXINJECT_STOP_CAPTURE`: no more frames; waiting reads complete with what is there.
/// PASSIVE_LEVEL.
pub fn stop_capture(h: &OpenHandle) -> NTSTATUS {
    let Some(c) = h.capture() else {
        return STATUS_INVALID_DEVICE_STATE;
    };
    unregister(c);
    c.capturing.store(false, Ordering::Release);
    c.complete_reads(true);
    STATUS_SUCCESS
}

/// `IOCTL_RXINJECT_GET_CAPTURE_STATS`.
pub fn stats(h: &OpenHandle) -> CaptureStats {
    let Some(c) = h.capture() else {
        return CaptureStats::default();
    };
    let g = c.inner.lock();
    let mut flags = 0;
    if c.capturing.load(Ordering::Acquire) {
        flags |= cap::STATS_CAPTURING;
    }
    if g.filtered {
        flags |= cap::STATS_FILTERED;
    }
    if g.adapter_gone {
        flags |= cap::STATS_ADAPTER_GONE;
    }
    let rings = c.rings();
    CaptureStats {
        seen: c.sum(|k| &k.seen),
        accepted: c.sum(|k| &k.accepted),
        captured: c.sum(|k| &k.captured),
        dropped: c.sum(|k| &k.dropped),
        reads_completed: g.reads_completed,
        ring_bytes: rings.map_or(0, |r| u32::try_from(r.total_bytes()).unwrap_or(u32::MAX)),
        ring_used: rings.map_or(0, |r| r.backlog(usize::MAX).bytes as u32),
        records_queued: rings.map_or(0, RingSet::records),
        reads_pending: g.reads.len,
        flags,
        snaplen: g.settings.snaplen,
    }
}

/// The handle was bound to another adapter: its capture follows. PASSIVE_LEVEL.
pub fn rebind(h: &OpenHandle, id: u64) {
    if let Some(c) = h.capture()
        && c.capturing.load(Ordering::Acquire)
    {
        register(c, id);
    }
}

/// IRP_MJ_CLEANUP: every waiting read is cancelled (D6). PASSIVE_LEVEL.
pub fn cleanup(h: &OpenHandle) {
    if let Some(c) = h.capture() {
        c.cancel_reads();
    }
}

/// IRP_MJ_CLOSE: unlinks the handle's capture and retires it (no IRP of the handle is left):
/// it is freed with everything it owns once no tap can hold it. PASSIVE_LEVEL.
pub fn close(h: &OpenHandle) {
    let Some(p) = h.take_capture() else { return };
    // SAFETY: the capture stays allocated until retired below; only this close retires it.
    let c = unsafe { p.as_ref() };
    unregister(c);
    c.capturing.store(false, Ordering::Release);
    debug_assert_eq!(c.inner.lock().reads.len, 0, "reads pending at close");
    // SAFETY: unlinked from its module's list and array: only taps already inside a section
    // may hold it.
    unsafe { reclaim::retire(p.as_ptr().cast()) };
}

/// Detach: unlinks every capture of the module (no new one may register), marks its adapter
/// gone, and completes its waiting reads with what is there (`STATUS_NO_SUCH_DEVICE` if
/// nothing). PASSIVE_LEVEL.
pub fn detach(m: &FilterModule) {
    loop {
        let mut done = Completions::new();
        let finished = {
            let mut list = m.capture.list.lock();
            list.closed = true;
            loop {
                let Some(c) = list.items.first().map(ptr::from_ref) else {
                    break true;
                };
                // SAFETY: a listed capture is alive while the list lock is held, which it is
                // until after it is unlinked below (the pointer only frees the list's borrow).
                let c = unsafe { &*c };
                {
                    let mut g = c.inner.lock();
                    while !done.is_full() {
                        match c.take_any_read(&mut g, STATUS_NO_SUCH_DEVICE, true) {
                            Some((irp, status, n)) => done.push(irp, status, n),
                            None => break,
                        }
                    }
                    if g.reads.len != 0 {
                        break false;
                    }
                    g.adapter_gone = true;
                }
                list.items.remove(c);
                m.capture.remove(c);
                c.registered.store(0, Ordering::Release);
            }
        };
        m.capture.active.store(0, Ordering::Relaxed);
        done.complete_all();
        if finished {
            return;
        }
    }
}

/// Frees the module's capture lock and retires its array (empty after [`detach`]).
///
/// # Safety
/// After [`detach`], when nothing can reach the module any more.
pub unsafe fn free_module_lock(m: &FilterModule) {
    let array = m.capture.array.swap(ptr::null_mut(), Ordering::SeqCst);
    if !array.is_null() {
        // SAFETY: unpublished: only a tap inside a section may still hold it.
        unsafe { reclaim::retire(array.cast()) };
    }
    // SAFETY: caller's contract.
    unsafe { m.capture.list.free() };
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxinject_bpf as bpf;

    #[test]
    fn filter_error_codes_are_the_abi_codes() {
        let cases = [
            (bpf::Error::Length { len: 0 }, cap::FILTER_BAD_LENGTH),
            (
                bpf::Error::UnknownOpcode { at: 0, code: 0 },
                cap::FILTER_UNKNOWN_OPCODE,
            ),
            (
                bpf::Error::JumpOutOfRange { at: 0 },
                cap::FILTER_JUMP_OUT_OF_RANGE,
            ),
            (
                bpf::Error::BadMemoryIndex { at: 0, k: 0 },
                cap::FILTER_BAD_MEMORY_INDEX,
            ),
            (
                bpf::Error::UninitializedMemory { at: 0, k: 0 },
                cap::FILTER_UNINITIALIZED_MEMORY,
            ),
            (bpf::Error::DivisionByZero { at: 0 }, cap::FILTER_DIVISION_BY_ZERO),
            (bpf::Error::BadShift { at: 0, k: 0 }, cap::FILTER_BAD_SHIFT),
            (bpf::Error::NoFinalReturn, cap::FILTER_NO_FINAL_RETURN),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e:?}");
        }
        assert_ne!(cap::FILTER_OK, cap::FILTER_BAD_LENGTH);
    }
}
