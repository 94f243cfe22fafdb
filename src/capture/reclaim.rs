//! What the taps read without a lock, and how it is freed: per-processor tap sections and
//! deferred reclamation (read-copy-update, in the small).
//!
//! A tap runs its whole chain inside a *section* on its processor ([`enter`]): it raises to
//! DISPATCH_LEVEL, so it stays on that processor and nothing else runs there until it
//! leaves, and marks the processor's word odd. Inside, it reads the module's capture array,
//! each capture's settings, filter and rings with plain atomic loads; no lock.
//!
//! Writers (SET_CAPTURE, SET_FILTER, close, detach; PASSIVE_LEVEL) never wait for the taps.
//! They unpublish an object (swap a pointer, clear an array slot) and [`retire`] it. It is
//! freed once every processor that was inside a section when it was retired has left that
//! section: a snapshot of the processors' words, compared later ([`poll`]). Writers poll
//! after retiring, and the read timer polls while something waits, so an object retired
//! while a tap runs elsewhere is freed a tick later; at unload nothing runs any more and
//! everything left is freed ([`stop`]).
//!
//! Ordering: a writer unpublishes, then (SeqCst fence) reads the words; a tap marks its
//! word, then (SeqCst fence) reads the pointers. So either the writer sees the tap inside,
//! and waits for it, or the tap sees the object unpublished.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};

use ndis_sys::*;
use rxinject_abi::tags::TAG_CAPTURE;

use crate::lock::SpinLock;

/// What a retired object is, to free it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A capture ([`super::Capture`]), with everything it owns.
    Capture,
    /// A ring set ([`super::ring::RingSet`]).
    Rings,
    /// A filter program ([`super::bpf_filter::Program`]).
    Program,
    /// A module's capture array ([`super::CaptureArray`]).
    Array,
}

/// The header of every object that may be retired: its first field.
#[repr(C)]
pub struct Retired {
    next: *mut Retired,
    kind: Kind,
}

impl Retired {
    pub const fn new(kind: Kind) -> Self {
        Retired {
            next: ptr::null_mut(),
            kind,
        }
    }
}

/// One processor's word: odd while a tap is inside a section there. 128 bytes apart.
#[repr(C)]
struct Section {
    word: AtomicU64,
    _line: [u64; 15],
}

/// The sections, one per processor (allocated by [`start`]).
static SECTIONS: AtomicPtr<Section> = AtomicPtr::new(ptr::null_mut());
static PROCESSORS: AtomicUsize = AtomicUsize::new(0);
/// Retired objects not freed yet (the timer polls while there are some).
static WAITING: AtomicUsize = AtomicUsize::new(0);

struct Lists {
    /// Retired since the current grace period began.
    pending: *mut Retired,
    /// Retired before it: freed when it ends.
    current: *mut Retired,
    /// The processors' words when the current grace period began.
    snapshot: *mut u64,
}

// SAFETY: the lists are followed only under the lock.
unsafe impl Send for Lists {}

static LISTS: SpinLock<Lists> = SpinLock::new(Lists {
    pending: ptr::null_mut(),
    current: ptr::null_mut(),
    snapshot: ptr::null_mut(),
});

/// The processor count the per-processor structures are sized for
/// (`KeQueryMaximumProcessorCountEx`, constant while Windows runs).
pub fn processors() -> usize {
    PROCESSORS.load(Ordering::Relaxed)
}

fn sections() -> &'static [Section] {
    let p = SECTIONS.load(Ordering::Acquire);
    if p.is_null() {
        return &[];
    }
    // SAFETY: `start` allocated `processors()` sections, freed only by `stop` at unload.
    unsafe { core::slice::from_raw_parts(p, processors()) }
}

/// Allocates the sections. PASSIVE_LEVEL (DriverEntry). False if memory ran out.
pub fn start() -> bool {
    // SAFETY: no argument to get wrong.
    let n = unsafe { KeQueryMaximumProcessorCountEx(ALL_PROCESSOR_GROUPS) } as usize;
    let n = n.max(1);
    let sections = super::alloc_bytes(n * core::mem::size_of::<Section>(), TAG_CAPTURE).cast::<Section>();
    let snapshot = super::alloc_bytes(n * 8, TAG_CAPTURE).cast::<u64>();
    if sections.is_null() || snapshot.is_null() {
        super::free_bytes(sections.cast());
        super::free_bytes(snapshot.cast());
        return false;
    }
    for i in 0..n {
        // SAFETY: section `i` of the `n` just allocated (16-aligned pool memory).
        unsafe {
            sections.wrapping_add(i).write(Section {
                word: AtomicU64::new(0),
                _line: [0; 15],
            })
        };
        // SAFETY: as above, word `i` of the snapshot.
        unsafe { snapshot.wrapping_add(i).write(0) };
    }
    // SAFETY: first use of the lock in this load of the driver.
    unsafe { LISTS.init() };
    LISTS.lock().snapshot = snapshot;
    PROCESSORS.store(n, Ordering::Relaxed);
    WAITING.store(0, Ordering::Relaxed);
    SECTIONS.store(sections, Ordering::Release);
    true
}

/// Frees everything retired, then the sections. PASSIVE_LEVEL (unload: no module is
/// attached, no tap runs, no handle is open).
pub fn stop() {
    let sections = SECTIONS.swap(ptr::null_mut(), Ordering::AcqRel);
    if sections.is_null() {
        return;
    }
    let (pending, current, snapshot) = {
        let mut l = LISTS.lock();
        let taken = (l.pending, l.current, l.snapshot);
        *l = Lists {
            pending: ptr::null_mut(),
            current: ptr::null_mut(),
            snapshot: ptr::null_mut(),
        };
        taken
    };
    free_list(pending);
    free_list(current);
    super::free_bytes(snapshot.cast());
    super::free_bytes(sections.cast());
    PROCESSORS.store(0, Ordering::Relaxed);
    // SAFETY: nothing uses the lock after this.
    unsafe { LISTS.free() };
}

/// A tap's section on its processor; see the module documentation.
pub struct Inside {
    cpu: usize,
    word: u64,
    irql: KIRQL,
}

/// Enters a section on the current processor (raising to DISPATCH_LEVEL). None only if the
/// sections are not allocated (the driver is not loaded) or the processor is beyond the count,
/// which Windows rules out.
#[inline]
pub fn enter() -> Option<Inside> {
    // SAFETY: taps run at IRQL <= DISPATCH_LEVEL; raising to DISPATCH_LEVEL from there is
    // allowed (from DISPATCH_LEVEL itself it changes nothing).
    let irql = unsafe { KfRaiseIrql(DISPATCH_LEVEL) };
    // SAFETY: no argument (the processor number structure is optional).
    let cpu = unsafe { KeGetCurrentProcessorNumberEx(ptr::null_mut()) } as usize;
    let Some(s) = sections().get(cpu) else {
        // SAFETY: back to the IRQL KfRaiseIrql returned.
        unsafe { KeLowerIrql(irql) };
        return None;
    };
    // Only this processor writes its word, and nothing else runs here until we leave.
    let word = s.word.load(Ordering::Relaxed);
    s.word.store(word | 1, Ordering::Relaxed);
    fence(Ordering::SeqCst);
    Some(Inside { cpu, word, irql })
}

impl Inside {
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// Leaves the section and lowers the IRQL back.
    #[inline]
    pub fn leave(self) {
        if let Some(s) = sections().get(self.cpu) {
            s.word.store((self.word | 1).wrapping_add(1), Ordering::Release);
        }
        // SAFETY: back to the IRQL KfRaiseIrql returned in `enter`.
        unsafe { KeLowerIrql(self.irql) };
    }
}

/// Hands `obj`, unpublished already (no tap can find it any more), to be freed once no tap
/// that might still hold it runs. IRQL <= DISPATCH_LEVEL, no lock held.
///
/// # Safety
/// `obj` is the header of a live object of its kind, allocated with `alloc_bytes` (or
/// `ndis_new`), retired once, referenced by nothing but taps already inside a section.
pub unsafe fn retire(obj: *mut Retired) {
    WAITING.fetch_add(1, Ordering::AcqRel);
    {
        let mut l = LISTS.lock();
        // SAFETY: the caller's object; its header is ours from now on.
        unsafe { (*obj).next = l.pending };
        l.pending = obj;
    }
    if poll() {
        // A tap elsewhere may still hold it: the timer looks again.
        super::timer::arm_timer();
    }
}

/// Whether retired objects wait to be freed.
pub fn waiting() -> bool {
    WAITING.load(Ordering::Acquire) > 0
}

/// Frees what no tap can hold any more; returns whether something still waits.
/// IRQL <= DISPATCH_LEVEL (writers after retiring, the read timer).
pub fn poll() -> bool {
    let mut free = ptr::null_mut::<Retired>();
    {
        let mut l = LISTS.lock();
        loop {
            if !l.current.is_null() {
                if !grace_over(&l) {
                    break;
                }
                free = append(free, l.current);
                l.current = ptr::null_mut();
            }
            if l.pending.is_null() {
                break;
            }
            // A new grace period for everything retired so far.
            l.current = l.pending;
            l.pending = ptr::null_mut();
            fence(Ordering::SeqCst);
            let s = sections();
            for (i, sec) in s.iter().enumerate() {
                // SAFETY: the snapshot holds one word per processor (`start`).
                unsafe { *l.snapshot.wrapping_add(i) = sec.word.load(Ordering::SeqCst) };
            }
        }
    }
    free_list(free);
    waiting()
}

/// Whether every processor inside a section at the snapshot has left it.
fn grace_over(l: &Lists) -> bool {
    fence(Ordering::SeqCst);
    sections().iter().enumerate().all(|(i, sec)| {
        // SAFETY: as in `poll`.
        let then = unsafe { *l.snapshot.wrapping_add(i) };
        then & 1 == 0 || sec.word.load(Ordering::SeqCst) != then
    })
}

/// `a` followed by `b`.
fn append(a: *mut Retired, b: *mut Retired) -> *mut Retired {
    if a.is_null() {
        return b;
    }
    let mut last = a;
    loop {
        // SAFETY: retired objects, ours (taken off the lists under the lock).
        let next = unsafe { (*last).next };
        if next.is_null() {
            break;
        }
        last = next;
    }
    // SAFETY: as above.
    unsafe { (*last).next = b };
    a
}

fn free_list(mut p: *mut Retired) {
    while !p.is_null() {
        // SAFETY: a retired object taken off the lists: nothing else references it.
        let header = unsafe { &*p };
        let (next, kind) = (header.next, header.kind);
        // SAFETY: as above; freed once, by its kind.
        unsafe { super::free_retired(p, kind) };
        WAITING.fetch_sub(1, Ordering::AcqRel);
        p = next;
    }
}
