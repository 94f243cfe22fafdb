//! Read IRPs: pended in a FIFO per handle, completed with whole records merged from the
//! processors' rings when enough wait, when their timeout passes, at once in non-blocking
//! mode, or with `STATUS_CANCELLED` by their cancel routine or by cleanup. Completions are
//! collected under the locks and done after releasing them (L5).

use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering;

use ndis_sys::*;
use rxinject_abi::capture::{self as cap, Settings};

use super::Capture;
use super::ring::RingSet;
use super::timer::{TIMED_READS, arm_timer, interrupt_time};
use crate::device::{OpenHandle, complete_irp};

/// A FIFO of pended read IRPs, linked through `Tail.Overlay.DriverContext[0]`; each IRP's
/// deadline (interrupt time, 0 for none) is in `DriverContext[1]`.
pub struct ReadQueue {
    head: *mut IRP,
    tail: *mut IRP,
    pub len: u32,
}

pub(crate) fn irp_context(irp: *mut IRP) -> *mut [PVOID; 4] {
    // SAFETY: a valid IRP; taking a field's address reads nothing.
    unsafe { ptr::addr_of_mut!((*irp).Tail.DriverContext) }
}

fn next_of(irp: *mut IRP) -> *mut IRP {
    // SAFETY: a queued IRP of ours: DriverContext is ours while it is pending.
    unsafe { (*irp_context(irp))[0].cast() }
}

fn set_next(irp: *mut IRP, next: *mut IRP) {
    // SAFETY: as above.
    unsafe { (*irp_context(irp))[0] = next.cast() };
}

fn deadline_of(irp: *mut IRP) -> u64 {
    // SAFETY: as above.
    unsafe { (*irp_context(irp))[1] as u64 }
}

impl ReadQueue {
    pub const EMPTY: ReadQueue = ReadQueue {
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
        len: 0,
    };

    fn push(&mut self, irp: *mut IRP) {
        set_next(irp, ptr::null_mut());
        if self.tail.is_null() {
            self.head = irp;
        } else {
            set_next(self.tail, irp);
        }
        self.tail = irp;
        self.len += 1;
    }

    fn pop(&mut self) -> Option<*mut IRP> {
        let irp = NonNull::new(self.head)?.as_ptr();
        self.head = next_of(irp);
        if self.head.is_null() {
            self.tail = ptr::null_mut();
        }
        self.len -= 1;
        Some(irp)
    }

    /// Removes `irp` if it is queued.
    fn remove(&mut self, irp: *mut IRP) -> bool {
        let mut prev: *mut IRP = ptr::null_mut();
        let mut cur = self.head;
        while !cur.is_null() {
            let next = next_of(cur);
            if cur == irp {
                if prev.is_null() {
                    self.head = next;
                } else {
                    set_next(prev, next);
                }
                if self.tail == irp {
                    self.tail = prev;
                }
                self.len -= 1;
                return true;
            }
            prev = cur;
            cur = next;
        }
        false
    }
}

/// IRPs to complete once the locks are released.
pub struct Completions {
    items: [(*mut IRP, NTSTATUS, usize); 16],
    len: usize,
}

impl Completions {
    pub fn new() -> Self {
        Completions {
            items: [(ptr::null_mut(), STATUS_SUCCESS, 0); 16],
            len: 0,
        }
    }

    pub fn is_full(&self) -> bool {
        self.len == self.items.len()
    }

    pub fn push(&mut self, irp: *mut IRP, status: NTSTATUS, information: usize) {
        debug_assert!(!self.is_full());
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = (irp, status, information);
            self.len += 1;
        }
    }

    /// Completes them all. No lock may be held.
    pub fn complete_all(&mut self) {
        for &(irp, status, information) in &self.items[..self.len] {
            // SAFETY: each IRP was taken off its queue with its cancel routine cleared, so it
            // is ours to complete, once; no lock is held (caller's duty).
            unsafe { complete_irp(irp, status, information) };
        }
        self.len = 0;
    }
}

/// The part of a capture its lock guards: the reader's side.
pub struct Inner {
    pub adapter_gone: bool,
    pub settings: Settings,
    pub reads: ReadQueue,
    pub reads_completed: u64,
    /// The generation of the installed filter (ring.rs).
    pub filter_generation: u16,
    /// A filter with instructions is installed.
    pub filtered: bool,
}

// SAFETY: the IRP pointers are followed only under the capture's lock.
unsafe impl Send for Inner {}

impl Inner {
    pub const fn new() -> Self {
        Inner {
            adapter_gone: false,
            settings: Settings {
                ring_bytes: 0,
                snaplen: cap::MAX_SNAPLEN,
                directions: cap::CAPTURE_IN | cap::CAPTURE_OUT,
                flags: 0,
                min_bytes: 1,
                timeout_ms: 0,
            },
            reads: ReadQueue::EMPTY,
            reads_completed: 0,
            filter_generation: 0,
            filtered: false,
        }
    }

    /// The bytes a read of `read_len` bytes waits for.
    fn threshold(&self, read_len: usize) -> usize {
        let s = &self.settings;
        if s.flags & cap::CAPTURE_IMMEDIATE != 0 {
            1
        } else {
            (s.min_bytes as usize).min(read_len).max(1)
        }
    }

    /// The longest record the settings allow: a ring with less room than this is full.
    pub fn max_record(&self) -> usize {
        cap::record_len(self.settings.snaplen as usize)
    }
}

impl Capture {
    /// The rings (consumer side: they are replaced only under the capture's lock).
    pub(super) fn rings(&self) -> Option<&RingSet> {
        // SAFETY: published rings live until retired, which happens under the capture's lock
        // the caller holds.
        unsafe { self.rings.load(Ordering::Acquire).as_ref() }
    }

    /// Whether a read of `read_len` bytes may complete now: enough bytes wait, or a ring is
    /// full (whatever the minimum, the reader must drain it).
    fn ready(&self, g: &Inner, read_len: usize) -> bool {
        let Some(rings) = self.rings() else {
            return false;
        };
        let b = rings.backlog(g.max_record());
        b.bytes > 0 && (b.bytes >= g.threshold(read_len) || b.full)
    }

    /// Whether a read must not wait (nothing will ever come, or the handle asked so).
    fn must_not_wait(&self, g: &Inner) -> bool {
        g.settings.flags & cap::CAPTURE_NONBLOCK != 0
            || !self.capturing.load(Ordering::Acquire)
            || g.adapter_gone
    }

    /// The status of a read that completes with `n` bytes now.
    fn read_status(&self, g: &Inner, n: usize) -> NTSTATUS {
        if n > 0 || (self.capturing.load(Ordering::Acquire) && !g.adapter_gone) {
            STATUS_SUCCESS
        } else if g.adapter_gone {
            STATUS_NO_SUCH_DEVICE
        } else {
            STATUS_INVALID_DEVICE_STATE
        }
    }

    /// Tells the taps about the queue: how many reads wait, and the bytes the oldest waits
    /// for. Under the lock, after every change to the queue.
    fn publish_waiting(&self, g: &Inner) {
        let wake_at =
            NonNull::new(g.reads.head).map_or(usize::MAX, |irp| g.threshold(read_buffer(irp.as_ptr()).1));
        self.wake_at.store(wake_at, Ordering::Relaxed);
        // SeqCst: pairs with the producer's publish (ring.rs).
        self.waiting.store(g.reads.len, Ordering::SeqCst);
    }

    /// Whether a tap that just published should look for a read to complete (no lock).
    pub(super) fn may_wake(&self, rings: &RingSet, max_record: usize) -> bool {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let b = rings.backlog(max_record);
        b.bytes >= self.wake_at.load(Ordering::Relaxed) || b.full
    }

    fn fill(&self, irp: *mut IRP) -> usize {
        let (buf, len) = read_buffer(irp);
        match self.rings() {
            // SAFETY: the read's mapped buffer holds `len` bytes until the IRP is completed,
            // and the driver only writes it.
            Some(r) if !buf.is_null() => r.pop_into(unsafe { core::slice::from_raw_parts_mut(buf, len) }),
            _ => 0,
        }
    }

    /// Takes the oldest pending read that is ready (or whose time is up at `now`, if given):
    /// fills it from the rings and returns it with its status and byte count. A read whose
    /// cancel routine already ran is dropped from the queue and left to that routine.
    pub(super) fn take_ready_read(
        &self,
        g: &mut Inner,
        now: Option<u64>,
    ) -> Option<(*mut IRP, NTSTATUS, usize)> {
        loop {
            let irp = NonNull::new(g.reads.head)?.as_ptr();
            let (_, len) = read_buffer(irp);
            let expired = now.is_some_and(|t| deadline_of(irp) != 0 && deadline_of(irp) <= t);
            if !self.ready(g, len) && !expired && !self.must_not_wait(g) {
                return None;
            }
            let _ = g.reads.pop();
            self.publish_waiting(g);
            if deadline_of(irp) != 0 {
                TIMED_READS.fetch_sub(1, Ordering::AcqRel);
            }
            // SAFETY: our pending IRP; clearing the routine decides who completes it.
            if unsafe { IoSetCancelRoutine(irp, None) }.is_none() {
                continue; // its cancel routine is running and will complete it
            }
            let n = self.fill(irp);
            g.reads_completed += 1;
            return Some((irp, self.read_status(g, n), n));
        }
    }

    /// Takes every pending read (cleanup, stop, detach), completing each with what the rings
    /// hold (`fill`) and `empty_status` if nothing.
    pub(super) fn take_any_read(
        &self,
        g: &mut Inner,
        empty_status: NTSTATUS,
        fill: bool,
    ) -> Option<(*mut IRP, NTSTATUS, usize)> {
        loop {
            let irp = g.reads.pop()?;
            self.publish_waiting(g);
            if deadline_of(irp) != 0 {
                TIMED_READS.fetch_sub(1, Ordering::AcqRel);
            }
            // SAFETY: as in `take_ready_read`.
            if unsafe { IoSetCancelRoutine(irp, None) }.is_none() {
                continue;
            }
            let n = if fill { self.fill(irp) } else { 0 };
            g.reads_completed += 1;
            return Some((irp, if n > 0 { STATUS_SUCCESS } else { empty_status }, n));
        }
    }

    /// Collects into `done` the reads that may complete now (none beyond its room).
    pub(super) fn collect_ready(&self, g: &mut Inner, now: Option<u64>, done: &mut Completions) {
        while !done.is_full() {
            match self.take_ready_read(g, now) {
                Some((irp, status, n)) => done.push(irp, status, n),
                None => break,
            }
        }
    }

    /// Completes the handle's reads that may complete now (`all`: every one).
    pub(super) fn complete_reads(&self, all: bool) {
        loop {
            let mut done = Completions::new();
            {
                let mut g = self.inner.lock();
                while !done.is_full() {
                    let next = if all {
                        let empty = self.read_status(&g, 0);
                        self.take_any_read(&mut g, empty, true)
                    } else {
                        self.take_ready_read(&mut g, None)
                    };
                    match next {
                        Some((irp, status, n)) => done.push(irp, status, n),
                        None => break,
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

    /// Cancels every waiting read (cleanup).
    pub(super) fn cancel_reads(&self) {
        loop {
            let mut done = Completions::new();
            {
                let mut g = self.inner.lock();
                while !done.is_full() {
                    match self.take_any_read(&mut g, STATUS_CANCELLED, false) {
                        Some((irp, _, _)) => done.push(irp, STATUS_CANCELLED, 0),
                        None => break,
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
}

/// The buffer and length of a read IRP: the reader's pages, mapped into system space
/// (direct I/O; mapped once, in the dispatch routine, so later calls find the mapping). Null
/// when the read has no buffer, or its pages cannot be mapped. The driver only writes the
/// buffer: what the reader's other threads do to it meanwhile is never read back.
fn read_buffer(irp: *mut IRP) -> (*mut u8, usize) {
    // SAFETY: a read IRP of ours (pending or being dispatched): its current stack location
    // and MDL are valid until it is completed.
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: as above.
    let params = unsafe { &(*sl).Parameters };
    // SAFETY: a read IRP: the Read view of the parameters is live.
    let len = unsafe { params.Read.Length } as usize;
    // SAFETY: as above.
    let mdl = unsafe { (*irp).MdlAddress };
    // SAFETY: the I/O manager's MDL of the read's locked pages, covering `len` bytes.
    if len == 0 || mdl.is_null() || (unsafe { (*mdl).ByteCount } as usize) < len {
        return (ptr::null_mut(), len);
    }
    // SAFETY: as above.
    let buf = unsafe { crate::frame::mdl_address(mdl) }.cast_mut();
    (buf, len)
}

/// IRP_MJ_READ: records, now or later; refused (STATUS_CANCELLED) once the handle's cleanup
/// has begun. PASSIVE_LEVEL (dispatch).
///
/// # Safety
/// `irp` is a read IRP of ours, not yet pended, for handle `h`.
pub unsafe fn read(h: &OpenHandle, irp: *mut IRP) -> NTSTATUS {
    let Some(c) = h.capture() else {
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, STATUS_INVALID_DEVICE_STATE, 0) };
    };
    let (buf, len) = read_buffer(irp);
    let mut g = c.inner.lock();
    let refuse = if h.is_cleaned_up() {
        // The handle is closing: cleanup has cancelled (or is cancelling) the queued reads,
        // and would never see this one.
        Some(STATUS_CANCELLED)
    } else if c.rings().is_none() {
        Some(STATUS_INVALID_DEVICE_STATE)
    } else if len < cap::min_read_len(g.settings.snaplen) {
        Some(STATUS_INVALID_BUFFER_SIZE)
    } else if buf.is_null() {
        // Low resources: the pages could not be mapped now.
        Some(STATUS_INSUFFICIENT_RESOURCES)
    } else {
        None
    };
    if let Some(status) = refuse {
        drop(g);
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, status, 0) };
    }
    if g.reads.len == 0 && (c.ready(&g, len) || c.must_not_wait(&g)) {
        let n = c.fill(irp);
        let status = c.read_status(&g, n);
        g.reads_completed += 1;
        drop(g);
        // SAFETY: as above.
        return unsafe { complete_irp(irp, status, n) };
    }
    // Wait: pended first (the cancel routine may complete it before we return).
    // SAFETY: our IRP, about to be pended.
    unsafe { IoMarkIrpPending(irp) };
    let timeout = u64::from(g.settings.timeout_ms);
    let deadline = if timeout == 0 {
        0
    } else {
        interrupt_time().saturating_add(timeout * 10_000).max(1)
    };
    // SAFETY: DriverContext is ours while the IRP is pending.
    unsafe { (*irp_context(irp))[1] = deadline as PVOID };
    // SAFETY: as above.
    unsafe { IoSetCancelRoutine(irp, Some(cancel_read)) };
    // SAFETY: as above.
    if unsafe { (*irp).Cancel } != 0 && unsafe { IoSetCancelRoutine(irp, None) }.is_some() {
        // Cancelled before it was queued, and the routine was not taken: ours to complete.
        g.reads_completed += 1;
        drop(g);
        // SAFETY: pended above, completed once here.
        unsafe { complete_irp(irp, STATUS_CANCELLED, 0) };
        return STATUS_PENDING;
    }
    if deadline != 0 {
        TIMED_READS.fetch_add(1, Ordering::AcqRel);
    }
    // Queued even if the cancel routine already took the routine: it will find (and
    // remove) it, or not, and complete it either way.
    g.reads.push(irp);
    c.publish_waiting(&g);
    // A tap that published before it saw the read waiting left it to us.
    let mut done = Completions::new();
    c.collect_ready(&mut g, None, &mut done);
    drop(g);
    done.complete_all();
    if deadline != 0 {
        arm_timer();
    }
    STATUS_PENDING
}

/// The cancel routine of pending reads: called holding the cancel spin lock.
unsafe extern "win64" fn cancel_read(_device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: the IRP the I/O manager is cancelling.
    let irql = unsafe { (*irp).CancelIrql };
    // SAFETY: the I/O manager calls us holding the cancel spin lock; `irql` is what to restore.
    unsafe { IoReleaseCancelSpinLock(irql) };
    // SAFETY: a read IRP of our device: its stack location names its file object.
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: as above.
    if let Some(h) = unsafe { crate::device::handle_of(sl) }
        && let Some(c) = h.capture()
    {
        let mut g = c.inner.lock();
        if g.reads.remove(irp) {
            c.publish_waiting(&g);
            if deadline_of(irp) != 0 {
                TIMED_READS.fetch_sub(1, Ordering::AcqRel);
            }
        }
        g.reads_completed += 1;
    }
    // SAFETY: the cancel routine owns the IRP now; completed once.
    unsafe { complete_irp(irp, STATUS_CANCELLED, 0) };
}
