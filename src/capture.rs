//! Capture: taps on the four paths, a ring of records per handle, BPF filters, and read IRPs.
//!
//! **Taps.** Receives from below and sends from above (`recv.rs`, `send.rs`) and our own
//! injections (`inject.rs`) call [`tap`] with a whole chain before handing it on. With no
//! capturing handle on the adapter that is one load and one well-predicted branch.
//!
//! **Registration.** A capturing handle's [`Capture`] is linked into its module's
//! [`CaptureList`]; the list lock is what keeps a `Capture` alive for the taps and the read
//! timer (a handle unlinks its capture under that lock before freeing it, and detach unlinks
//! every capture of its module). Lock order: module list (`GLOBALS.modules`) → a module's
//! capture list → a capture.
//!
//! **Ring.** Each capture owns a byte ring of records ([`rxinject_abi::capture`]): a 24-byte
//! header and the frame's first bytes, padded to 8. The datapath never waits: a frame that does
//! not fit is counted as dropped.
//!
//! **Reads** are completed with as many whole records as fit when enough bytes wait, when their
//! timeout passes (one driver-wide timer ticks every 10 ms while a read with a timeout waits),
//! at once in non-blocking mode, or with `STATUS_CANCELLED` by their cancel routine or by
//! cleanup. Completions are collected under the locks and done after releasing them (L5).

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use ndis_sys::*;
use rxinject_abi::Pod;
use rxinject_abi::capture::{
    self as cap, CaptureConfig, CaptureStats, FilterVerdict, RECORD_HEADER_LEN, RecordHeader, Settings,
};
use rxinject_abi::tags::{TAG_BPF, TAG_CAPTURE, TAG_TIMER};
use rxinject_bpf::{self as bpf, Compiled, Insn, Packet};

use crate::device::{OpenHandle, complete_irp};
use crate::driver::{GLOBALS, Handle};
use crate::filter::{self, FilterModule};
use crate::frame::FrameView;
use crate::list::{Linked, List};
use crate::lock::SpinLock;
use crate::mem::{ndis_delete, ndis_new};
use crate::nbl;

/// Which way a tapped chain goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Up to the host: receives from below, frames injected up.
    Inbound,
    /// Down to the wire: sends from above, frames injected down.
    Outbound,
}

// ---- the ring ---------------------------------------------------------------------------------

/// A byte ring of whole records (sizes multiples of 8).
struct Ring {
    buf: *mut u8,
    size: usize,
    /// Offset of the oldest record.
    head: usize,
    used: usize,
    records: u32,
}

impl Ring {
    const EMPTY: Ring = Ring {
        buf: ptr::null_mut(),
        size: 0,
        head: 0,
        used: 0,
        records: 0,
    };

    fn is_allocated(&self) -> bool {
        !self.buf.is_null()
    }

    /// Discards every waiting record (the memory stays).
    fn clear(&mut self) {
        self.head = 0;
        self.used = 0;
        self.records = 0;
    }

    fn free_bytes(&self) -> usize {
        self.size - self.used
    }

    /// The ring's memory from `at` (mod size) for `len` bytes, as at most two slices.
    fn segments(&mut self, at: usize, len: usize) -> (&mut [u8], &mut [u8]) {
        debug_assert!(len <= self.size);
        let at = at % self.size;
        let first = len.min(self.size - at);
        let start = self.buf.wrapping_add(at);
        // SAFETY: `buf` holds `size` bytes owned by this ring (allocated by `set_capture`);
        // [at, at+first) is inside it.
        let a = unsafe { core::slice::from_raw_parts_mut(start, first) };
        // SAFETY: as above: [0, len-first) is inside it, and disjoint from the first range
        // because len <= size.
        let b = unsafe { core::slice::from_raw_parts_mut(self.buf, len - first) };
        (a, b)
    }

    /// Appends a record: `header`, then `caplen` bytes of `frame`, then padding. False if it
    /// does not fit or the frame cannot be read (nothing is appended then).
    fn push(&mut self, header: &RecordHeader, frame: &FrameView, caplen: usize) -> bool {
        let len = cap::record_len(caplen);
        if !self.is_allocated() || len > self.free_bytes() {
            return false;
        }
        let tail = (self.head + self.used) % self.size;
        let mut h = [0u8; RECORD_HEADER_LEN];
        let _ = header.write_to(&mut h);
        // Each piece is one segment unless it wraps around the end of the ring (the second
        // segment is then non-empty): copies of nothing are skipped, they cost a call each.
        let (a, b) = self.segments(tail, RECORD_HEADER_LEN);
        let n = a.len();
        a.copy_from_slice(&h[..n]);
        if !b.is_empty() {
            b.copy_from_slice(&h[n..]);
        }
        let (a, b) = self.segments(tail + RECORD_HEADER_LEN, caplen);
        let n = a.len();
        if !frame.read(0, a) || (!b.is_empty() && !frame.read(n, b)) {
            return false;
        }
        let pad = len - RECORD_HEADER_LEN - caplen;
        if pad > 0 {
            let (a, b) = self.segments(tail + RECORD_HEADER_LEN + caplen, pad);
            a.fill(0);
            b.fill(0);
        }
        self.used += len;
        self.records += 1;
        true
    }

    /// The length of the oldest record, if any.
    fn first_len(&mut self) -> Option<usize> {
        if self.used == 0 {
            return None;
        }
        let mut h = [0u8; RECORD_HEADER_LEN];
        let (a, b) = self.segments(self.head, RECORD_HEADER_LEN);
        let n = a.len();
        h[..n].copy_from_slice(a);
        if !b.is_empty() {
            h[n..].copy_from_slice(b);
        }
        let header = RecordHeader::read_from(&h)?;
        Some(cap::record_len(header.caplen as usize))
    }

    /// Moves as many whole records as fit into `out`; returns the bytes written.
    fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let mut written = 0;
        while let Some(len) = self.first_len() {
            if len > out.len() - written || len > self.used {
                break;
            }
            let head = self.head;
            let (a, b) = self.segments(head, len);
            let n = a.len();
            out[written..written + n].copy_from_slice(a);
            if !b.is_empty() {
                out[written + n..written + len].copy_from_slice(b);
            }
            written += len;
            self.head = (self.head + len) % self.size;
            self.used -= len;
            self.records -= 1;
        }
        if self.used == 0 {
            self.head = 0;
        }
        written
    }
}

// ---- pending reads ----------------------------------------------------------------------------

/// A FIFO of pended read IRPs, linked through `Tail.Overlay.DriverContext[0]`; each IRP's
/// deadline (interrupt time, 0 for none) is in `DriverContext[1]`.
struct ReadQueue {
    head: *mut IRP,
    tail: *mut IRP,
    len: u32,
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
    const EMPTY: ReadQueue = ReadQueue {
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
struct Completions {
    items: [(*mut IRP, NTSTATUS, usize); 16],
    len: usize,
}

impl Completions {
    fn new() -> Self {
        Completions {
            items: [(ptr::null_mut(), STATUS_SUCCESS, 0); 16],
            len: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.len == self.items.len()
    }

    fn push(&mut self, irp: *mut IRP, status: NTSTATUS, information: usize) {
        debug_assert!(!self.is_full());
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = (irp, status, information);
            self.len += 1;
        }
    }

    /// Completes them all. No lock may be held.
    fn complete_all(&mut self) {
        for &(irp, status, information) in &self.items[..self.len] {
            // SAFETY: each IRP was taken off its queue with its cancel routine cleared, so it
            // is ours to complete, once; no lock is held (caller's duty).
            unsafe { complete_irp(irp, status, information) };
        }
        self.len = 0;
    }
}

// ---- the capture of one handle ----------------------------------------------------------------

/// A validated BPF program in pool memory.
/// A validated program in its pre-decoded form (`bpf::compile`), in pool memory.
struct Program {
    code: *mut Compiled,
    len: usize,
}

impl Program {
    fn as_slice(&self) -> &[Compiled] {
        // SAFETY: `code` holds `len` instructions `bpf::compile` wrote when the program was
        // made, and nothing writes them since.
        unsafe { core::slice::from_raw_parts(self.code, self.len) }
    }
}

struct Inner {
    capturing: bool,
    adapter_gone: bool,
    settings: Settings,
    ring: Ring,
    filter: Option<Program>,
    reads: ReadQueue,
    seen: u64,
    accepted: u64,
    captured: u64,
    dropped: u64,
    reads_completed: u64,
}

// SAFETY: the raw pointers (ring, program, IRPs) are owned by the capture and only followed
// under its lock.
unsafe impl Send for Inner {}

/// The capture state of one handle, from its first capture IOCTL to its close.
pub struct Capture {
    inner: SpinLock<Inner>,
    /// The handle this capture belongs to (identity only, for "leave out my injections").
    owner: *const OpenHandle,
    /// The module this capture is linked into (0: none). Written under that module's
    /// capture-list lock.
    registered: AtomicU64,
    /// Link in the module's capture list (guarded by the list lock).
    next: AtomicPtr<Capture>,
}

// SAFETY: `owner` is an identity, never dereferenced; everything else is atomic or locked.
unsafe impl Send for Capture {}
// SAFETY: as above.
unsafe impl Sync for Capture {}

impl Inner {
    /// Whether a read of `read_len` bytes may complete now.
    fn ready(&self, read_len: usize) -> bool {
        if self.ring.used == 0 {
            return false;
        }
        let s = &self.settings;
        let threshold = if s.flags & cap::CAPTURE_IMMEDIATE != 0 {
            1
        } else {
            (s.min_bytes as usize).min(read_len).min(self.ring.size)
        };
        self.ring.used >= threshold
    }

    /// Whether a read must not wait (nothing will ever come, or the handle asked so).
    fn must_not_wait(&self) -> bool {
        self.settings.flags & cap::CAPTURE_NONBLOCK != 0 || !self.capturing || self.adapter_gone
    }

    /// The status of a read that completes with `n` bytes now.
    fn read_status(&self, n: usize) -> NTSTATUS {
        if n > 0 || (self.capturing && !self.adapter_gone) {
            STATUS_SUCCESS
        } else if self.adapter_gone {
            STATUS_NO_SUCH_DEVICE
        } else {
            STATUS_INVALID_DEVICE_STATE
        }
    }

    /// Takes the oldest pending read that is ready (or whose time is up at `now`, if given):
    /// fills it from the ring and returns it with its status and byte count. A read whose
    /// cancel routine already ran is dropped from the queue and left to that routine.
    fn take_ready_read(&mut self, now: Option<u64>) -> Option<(*mut IRP, NTSTATUS, usize)> {
        loop {
            let irp = NonNull::new(self.reads.head)?.as_ptr();
            let (buf, len) = read_buffer(irp);
            let expired = now.is_some_and(|t| deadline_of(irp) != 0 && deadline_of(irp) <= t);
            if !self.ready(len) && !expired && !self.must_not_wait() {
                return None;
            }
            let _ = self.reads.pop();
            if deadline_of(irp) != 0 {
                TIMED_READS.fetch_sub(1, Ordering::AcqRel);
            }
            // SAFETY: our pending IRP; clearing the routine decides who completes it.
            if unsafe { IoSetCancelRoutine(irp, None) }.is_none() {
                continue; // its cancel routine is running and will complete it
            }
            let n = if buf.is_null() {
                0
            } else {
                // SAFETY: the read's mapped buffer holds `len` bytes until the IRP is
                // completed, and the driver only writes it.
                self.ring
                    .pop_into(unsafe { core::slice::from_raw_parts_mut(buf, len) })
            };
            self.reads_completed += 1;
            return Some((irp, self.read_status(n), n));
        }
    }

    /// Takes every pending read (cleanup, stop, detach), completing each with what the ring
    /// holds and `empty_status` if nothing.
    fn take_any_read(&mut self, empty_status: NTSTATUS, fill: bool) -> Option<(*mut IRP, NTSTATUS, usize)> {
        loop {
            let irp = self.reads.pop()?;
            if deadline_of(irp) != 0 {
                TIMED_READS.fetch_sub(1, Ordering::AcqRel);
            }
            // SAFETY: as in `take_ready_read`.
            if unsafe { IoSetCancelRoutine(irp, None) }.is_none() {
                continue;
            }
            let (buf, len) = read_buffer(irp);
            let n = if fill && !buf.is_null() {
                // SAFETY: as in `take_ready_read`.
                self.ring
                    .pop_into(unsafe { core::slice::from_raw_parts_mut(buf, len) })
            } else {
                0
            };
            self.reads_completed += 1;
            return Some((irp, if n > 0 { STATUS_SUCCESS } else { empty_status }, n));
        }
    }

    /// Offers one frame; returns whether it was captured.
    fn offer(
        &mut self,
        frame: &FrameView,
        direction: Direction,
        injected_by: *const OpenHandle,
        owner: *const OpenHandle,
        timestamp: i64,
        if_index: u32,
    ) {
        self.seen += 1;
        let s = &self.settings;
        let dir_bit = match direction {
            Direction::Inbound => cap::CAPTURE_IN,
            Direction::Outbound => cap::CAPTURE_OUT,
        };
        if s.directions & dir_bit == 0 {
            return;
        }
        let injected = !injected_by.is_null();
        if injected
            && (s.flags & cap::CAPTURE_EXCLUDE_INJECTED != 0
                || (injected_by == owner && s.flags & cap::CAPTURE_EXCLUDE_OWN != 0))
        {
            return;
        }
        let keep = match &self.filter {
            Some(p) => bpf::run_compiled(p.as_slice(), frame),
            None => u32::MAX,
        };
        if keep == 0 {
            return;
        }
        self.accepted += 1;
        let len = frame.len();
        let caplen = len.min(s.snaplen as usize).min(keep as usize);
        let mut flags = match direction {
            Direction::Inbound => cap::RECORD_INBOUND,
            Direction::Outbound => cap::RECORD_OUTBOUND,
        };
        if injected {
            flags |= cap::RECORD_INJECTED;
        }
        if frame.tag_restored() {
            flags |= cap::RECORD_VLAN_RESTORED;
        }
        let header = RecordHeader {
            timestamp,
            caplen: caplen as u32,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            if_index,
            flags,
            header_len: RECORD_HEADER_LEN as u16,
        };
        if self.ring.push(&header, frame, caplen) {
            self.captured += 1;
        } else {
            self.dropped += 1;
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

// ---- a module's capture list --------------------------------------------------------------------

/// The captures of one module (guarded by the module's capture lock).
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

impl Linked for Capture {
    fn link(&self) -> &AtomicPtr<Self> {
        &self.next
    }
}

/// The capture part of a module: the list and the count the taps check.
pub struct ModuleCapture {
    pub list: SpinLock<CaptureList>,
    /// Number of captures in the list (read without the lock by the taps).
    pub active: AtomicU32,
}

impl ModuleCapture {
    pub const fn new() -> Self {
        ModuleCapture {
            list: SpinLock::new(CaptureList::new()),
            active: AtomicU32::new(0),
        }
    }
}

impl Default for ModuleCapture {
    fn default() -> Self {
        Self::new()
    }
}

// ---- taps -------------------------------------------------------------------------------------

/// Offers every frame of `chain` to the module's capturing handles. `injected_by` is the
/// handle whose write injected the chain (null for other drivers' traffic). The caller holds
/// the chain (it has not handed it on yet). IRQL <= DISPATCH_LEVEL.
#[inline]
pub fn tap(
    m: &FilterModule,
    chain: *mut NET_BUFFER_LIST,
    direction: Direction,
    injected_by: *const OpenHandle,
) {
    if m.capture.active.load(Ordering::Relaxed) == 0 {
        return;
    }
    tap_slow(m, chain, direction, injected_by);
}

#[inline(never)]
fn tap_slow(
    m: &FilterModule,
    chain: *mut NET_BUFFER_LIST,
    direction: Direction,
    injected_by: *const OpenHandle,
) {
    let mut timestamp = 0i64;
    // SAFETY: an out parameter on our stack.
    unsafe { KeQuerySystemTimePrecise(&mut timestamp) };
    let mut done = Completions::new();
    let mut more = false;
    {
        let list = m.capture.list.lock();
        for c in list.items.iter() {
            let mut g = c.inner.lock();
            if !g.capturing {
                continue;
            }
            // SAFETY: the caller holds the chain; `iter` reads links before yielding.
            for n in unsafe { nbl::iter(chain) } {
                // SAFETY: an NBL of the held chain.
                let nbl_ref = unsafe { &*n };
                let (mut nb, info) = (
                    nbl_ref.FirstNetBuffer,
                    nbl_ref.NetBufferListInfo[Ieee8021QNetBufferListInfo] as usize,
                );
                while !nb.is_null() {
                    // SAFETY: an NB of a held NBL, valid for this call.
                    let frame = unsafe { FrameView::new(nb, info) };
                    g.offer(
                        &frame,
                        direction,
                        injected_by,
                        c.owner,
                        timestamp,
                        m.adapter.if_index,
                    );
                    // SAFETY: as above.
                    nb = unsafe { (*nb).Next };
                }
            }
            while !done.is_full() {
                match g.take_ready_read(None) {
                    Some((irp, status, n)) => done.push(irp, status, n),
                    None => break,
                }
            }
            more |= done.is_full();
        }
    }
    done.complete_all();
    if more {
        complete_ready_reads(m, None);
    }
}

/// Completes, in rounds of at most 16, every pending read of the module's captures that is
/// ready (or expired at `now`). IRQL <= DISPATCH_LEVEL; no lock held.
fn complete_ready_reads(m: &FilterModule, now: Option<u64>) {
    loop {
        let mut done = Completions::new();
        {
            let list = m.capture.list.lock();
            'captures: for c in list.items.iter() {
                let mut g = c.inner.lock();
                while !done.is_full() {
                    match g.take_ready_read(now) {
                        Some((irp, status, n)) => done.push(irp, status, n),
                        None => continue 'captures,
                    }
                }
                break;
            }
        }
        let full = done.is_full();
        done.complete_all();
        if !full {
            return;
        }
    }
}

// ---- the read timer ---------------------------------------------------------------------------

/// Pending reads with a timeout, across all handles.
static TIMED_READS: AtomicU32 = AtomicU32::new(0);

/// Whether the timer has work: reads or OID requests with a deadline
/// (`oidreq::TIMED_OIDS`).
fn timed_work() -> bool {
    TIMED_READS.load(Ordering::Acquire) > 0 || crate::oidreq::TIMED_OIDS.load(Ordering::Acquire) > 0
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
/// on every module, and ticks again while either waits.
unsafe extern "win64" fn read_timer(_s1: PVOID, _ctx: PVOID, _s2: PVOID, _s3: PVOID) {
    let now = interrupt_time();
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
            'captures: for c in list.items.iter() {
                let mut g = c.inner.lock();
                while !done.is_full() {
                    match g.take_ready_read(Some(now)) {
                        Some((irp, status, n)) => done.push(irp, status, n),
                        None => continue 'captures,
                    }
                }
                break;
            }
        });
        let full = done.is_full();
        done.complete_all();
        if found.is_none() || !full {
            return;
        }
    }
}

// ---- the handle side --------------------------------------------------------------------------

impl Capture {
    fn new(owner: &OpenHandle) -> Self {
        Capture {
            inner: SpinLock::new(Inner {
                capturing: false,
                adapter_gone: false,
                settings: Settings {
                    ring_bytes: 0,
                    snaplen: cap::MAX_SNAPLEN,
                    directions: cap::CAPTURE_IN | cap::CAPTURE_OUT,
                    flags: 0,
                    min_bytes: 1,
                    timeout_ms: 0,
                },
                ring: Ring::EMPTY,
                filter: None,
                reads: ReadQueue::EMPTY,
                seen: 0,
                accepted: 0,
                captured: 0,
                dropped: 0,
                reads_completed: 0,
            }),
            owner: ptr::from_ref(owner),
            registered: AtomicU64::new(0),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

/// The handle's capture, created on first use. PASSIVE_LEVEL. None if memory ran out.
fn capture_of(h: &OpenHandle) -> Option<&Capture> {
    if let Some(c) = h.capture() {
        return Some(c);
    }
    let fresh = ndis_new(Handle::new(GLOBALS.filter_driver()), TAG_CAPTURE, Capture::new(h))?;
    // SAFETY: just written, not shared yet.
    let fresh_ref = unsafe { fresh.as_ref() };
    // SAFETY: the lock is at its final address, used by nobody yet.
    unsafe { fresh_ref.inner.init() };
    match h.install_capture(fresh.as_ptr()) {
        Ok(()) => h.capture(),
        Err(existing) => {
            // Another request of the same handle won the race: use its capture.
            // SAFETY: ours alone; its lock is idle.
            unsafe { fresh_ref.inner.free() };
            // SAFETY: allocated above, never shared.
            unsafe { ndis_delete(fresh) };
            // SAFETY: the installed capture lives until the handle's close.
            Some(unsafe { &*existing })
        }
    }
}

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

/// Links `c` into module `id`'s list (unlinking it from another module first). Returns false
/// if the module is gone or detaching.
fn register(c: &Capture, id: u64) -> bool {
    let old = c.registered.load(Ordering::Acquire);
    if old == id {
        return true;
    }
    if old != 0 {
        unregister(c);
    }
    filter::with_module(id, |m| {
        let mut list = m.capture.list.lock();
        if list.closed {
            return false;
        }
        if !list.items.contains(c) {
            list.items.push(c);
        }
        c.registered.store(id, Ordering::Release);
        c.inner.lock().adapter_gone = false;
        m.capture.active.store(list.count(), Ordering::Relaxed);
        true
    })
    .unwrap_or(false)
}

/// Unlinks `c` from its module's list, if it is in one.
fn unregister(c: &Capture) {
    let id = c.registered.load(Ordering::Acquire);
    if id == 0 {
        return;
    }
    filter::with_module(id, |m| {
        let mut list = m.capture.list.lock();
        list.items.remove(c);
        c.registered.store(0, Ordering::Release);
        m.capture.active.store(list.count(), Ordering::Relaxed);
    });
    // If the module was gone, detach already unlinked it.
    c.registered.store(0, Ordering::Release);
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
    // A ring of the new size, allocated before taking the lock (if the size changes), within
    // the driver-wide budget.
    let size = settings.ring_bytes as usize;
    let current = c.inner.lock().ring.size;
    let fresh = if current == size {
        ptr::null_mut()
    } else {
        // The budget counts each handle's ring size: it grows (or shrinks, below) by the
        // difference (for a moment both rings exist, as the old one is freed after).
        if !RING_BUDGET.take(size.saturating_sub(current)) {
            return STATUS_QUOTA_EXCEEDED;
        }
        let p = alloc_bytes(size, TAG_CAPTURE);
        if p.is_null() {
            RING_BUDGET.give_back(size.saturating_sub(current));
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        p
    };
    let old = {
        let mut g = c.inner.lock();
        let old = if fresh.is_null() {
            ptr::null_mut()
        } else {
            let old = g.ring.buf;
            g.ring = Ring {
                buf: fresh,
                size,
                ..Ring::EMPTY
            };
            old
        };
        g.settings = settings;
        g.capturing = true;
        old
    };
    if !fresh.is_null() {
        RING_BUDGET.give_back(current.saturating_sub(size));
    }
    free_bytes(old);
    if !register(c, id) {
        c.inner.lock().capturing = false;
        return STATUS_NO_SUCH_DEVICE;
    }
    // New settings may make waiting reads ready.
    complete_handle_reads(c, false);
    STATUS_SUCCESS
}

/// Completes the handle's reads that may complete now (`all`: every one).
fn complete_handle_reads(c: &Capture, all: bool) {
    loop {
        let mut done = Completions::new();
        {
            let mut g = c.inner.lock();
            while !done.is_full() {
                let next = if all {
                    let empty = g.read_status(0);
                    g.take_any_read(empty, true)
                } else {
                    g.take_ready_read(None)
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

/// `IOCTL_RXINJECT_STOP_CAPTURE`: no more frames; waiting reads complete with what is there.
/// PASSIVE_LEVEL.
pub fn stop_capture(h: &OpenHandle) -> NTSTATUS {
    let Some(c) = h.capture() else {
        return STATUS_INVALID_DEVICE_STATE;
    };
    unregister(c);
    c.inner.lock().capturing = false;
    complete_handle_reads(c, true);
    STATUS_SUCCESS
}

/// `IOCTL_RXINJECT_SET_FILTER`: validates and installs (or, with no instruction, removes) a
/// BPF program. Returns the status and the verdict to report. PASSIVE_LEVEL.
pub fn set_filter(h: &OpenHandle, input: &[u8]) -> (NTSTATUS, FilterVerdict) {
    let Some(c) = capture_of(h) else {
        return (STATUS_INSUFFICIENT_RESOURCES, FilterVerdict::default());
    };
    let program = match load_program(input) {
        Ok(p) => p,
        Err(e) => return e,
    };
    // The records waiting were accepted by the old program: they go with it, as BPF's
    // BIOCSETF and Npcap's reset the buffer (a reader asking for `icmp` must not then read
    // an ARP frame the previous filter let in; libpcap does not filter again).
    let old = {
        let mut g = c.inner.lock();
        g.ring.clear();
        core::mem::replace(&mut g.filter, program)
    };
    if let Some(p) = old {
        free_bytes(p.code.cast());
    }
    (STATUS_SUCCESS, FilterVerdict::default())
}

/// `IOCTL_RXINJECT_CHECK_FILTER`: the verdict `SET_FILTER` would give `input`, installing
/// nothing. `None` when there is no memory to validate in. PASSIVE_LEVEL.
pub fn check_filter(input: &[u8]) -> Option<FilterVerdict> {
    match load_program(input) {
        Ok(p) => {
            if let Some(p) = p {
                free_bytes(p.code.cast());
            }
            Some(FilterVerdict::default())
        }
        Err((STATUS_INSUFFICIENT_RESOURCES, _)) => None,
        Err((_, verdict)) => Some(verdict),
    }
}

/// A program from an IOCTL input (8-byte `struct bpf_insn` records; none: no filter),
/// copied into pool memory and validated; or the status and verdict of its refusal.
fn load_program(input: &[u8]) -> Result<Option<Program>, (NTSTATUS, FilterVerdict)> {
    let bad = |error: u32, at: Option<usize>| FilterVerdict {
        error,
        instruction: at.map_or(u32::MAX, |a| a as u32),
    };
    if !input.len().is_multiple_of(8) || input.len() > bpf::MAX_INSNS * 8 {
        return Err((STATUS_INVALID_PARAMETER, bad(cap::FILTER_BAD_LENGTH, None)));
    }
    if input.is_empty() {
        return Ok(None);
    }
    let n = input.len() / 8;
    let insns = alloc_bytes(input.len(), TAG_BPF).cast::<Insn>();
    if insns.is_null() {
        return Err((STATUS_INSUFFICIENT_RESOURCES, FilterVerdict::default()));
    }
    for (i, chunk) in input.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        let slot = insns.wrapping_add(i);
        // SAFETY: `insns` holds `n` instructions (8 bytes each, 16-aligned pool memory) and
        // `i < n`.
        unsafe { slot.write(Insn::from_bytes(b)) };
    }
    // The pre-decoded program, validated as it is decoded (linear in the program; nothing
    // on the stack grows with it).
    let code = alloc_bytes(n * core::mem::size_of::<Compiled>(), TAG_BPF).cast::<Compiled>();
    if code.is_null() {
        free_bytes(insns.cast());
        return Err((STATUS_INSUFFICIENT_RESOURCES, FilterVerdict::default()));
    }
    for i in 0..n {
        // SAFETY: `code` holds `n` pre-decoded instructions (12 bytes each, 16-aligned pool
        // memory) and `i < n`.
        unsafe { code.wrapping_add(i).write(Compiled::default()) };
    }
    // SAFETY: `insns` holds the `n` instructions written above; ours alone.
    let source = unsafe { core::slice::from_raw_parts(insns, n) };
    // SAFETY: `code` holds `n` initialised instructions; ours alone.
    let out = unsafe { core::slice::from_raw_parts_mut(code, n) };
    let verdict = bpf::compile(source, out);
    free_bytes(insns.cast());
    if let Err(e) = verdict {
        free_bytes(code.cast());
        return Err((STATUS_INVALID_PARAMETER, bad(e.code(), e.at())));
    }
    Ok(Some(Program { code, len: n }))
}

/// `IOCTL_RXINJECT_GET_CAPTURE_STATS`.
pub fn stats(h: &OpenHandle) -> CaptureStats {
    let Some(c) = h.capture() else {
        return CaptureStats::default();
    };
    let g = c.inner.lock();
    let mut flags = 0;
    if g.capturing {
        flags |= cap::STATS_CAPTURING;
    }
    if g.filter.is_some() {
        flags |= cap::STATS_FILTERED;
    }
    if g.adapter_gone {
        flags |= cap::STATS_ADAPTER_GONE;
    }
    CaptureStats {
        seen: g.seen,
        accepted: g.accepted,
        captured: g.captured,
        dropped: g.dropped,
        reads_completed: g.reads_completed,
        ring_bytes: g.ring.size as u32,
        ring_used: g.ring.used as u32,
        records_queued: g.ring.records,
        reads_pending: g.reads.len,
        flags,
        snaplen: g.settings.snaplen,
    }
}

/// The handle was bound to another adapter: its capture follows. PASSIVE_LEVEL.
pub fn rebind(h: &OpenHandle, id: u64) {
    if let Some(c) = h.capture()
        && c.inner.lock().capturing
    {
        register(c, id);
    }
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
    if h.is_cleaned_up() {
        // The handle is closing: cleanup has cancelled (or is cancelling) the queued reads,
        // and would never see this one.
        drop(g);
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, STATUS_CANCELLED, 0) };
    }
    if !g.ring.is_allocated() {
        drop(g);
        // SAFETY: as above.
        return unsafe { complete_irp(irp, STATUS_INVALID_DEVICE_STATE, 0) };
    }
    if len < cap::min_read_len(g.settings.snaplen) {
        drop(g);
        // SAFETY: as above.
        return unsafe { complete_irp(irp, STATUS_INVALID_BUFFER_SIZE, 0) };
    }
    if buf.is_null() {
        // Low resources: the pages could not be mapped now.
        drop(g);
        // SAFETY: as above.
        return unsafe { complete_irp(irp, STATUS_INSUFFICIENT_RESOURCES, 0) };
    }
    if g.reads.len == 0 && (g.ready(len) || g.must_not_wait()) {
        // SAFETY: the mapped buffer holds `len` bytes, and the driver only writes it.
        let n = g
            .ring
            .pop_into(unsafe { core::slice::from_raw_parts_mut(buf, len) });
        let status = g.read_status(n);
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
    drop(g);
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
        if g.reads.remove(irp) && deadline_of(irp) != 0 {
            TIMED_READS.fetch_sub(1, Ordering::AcqRel);
        }
        g.reads_completed += 1;
    }
    // SAFETY: the cancel routine owns the IRP now; completed once.
    unsafe { complete_irp(irp, STATUS_CANCELLED, 0) };
}

/// IRP_MJ_CLEANUP: every waiting read is cancelled (D6). PASSIVE_LEVEL.
pub fn cleanup(h: &OpenHandle) {
    let Some(c) = h.capture() else { return };
    loop {
        let mut done = Completions::new();
        {
            let mut g = c.inner.lock();
            while !done.is_full() {
                match g.take_any_read(STATUS_CANCELLED, false) {
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

/// IRP_MJ_CLOSE: unlinks and frees the handle's capture (no IRP of the handle is left).
/// PASSIVE_LEVEL.
pub fn close(h: &OpenHandle) {
    let Some(p) = h.take_capture() else { return };
    // SAFETY: the capture stays allocated until freed below; only this close frees it.
    let c = unsafe { p.as_ref() };
    unregister(c);
    let (ring, filter) = {
        let mut g = c.inner.lock();
        debug_assert_eq!(g.reads.len, 0, "reads pending at close");
        let ring = core::mem::replace(&mut g.ring, Ring::EMPTY);
        (ring, g.filter.take())
    };
    if !ring.buf.is_null() {
        RING_BUDGET.give_back(ring.size);
    }
    free_bytes(ring.buf);
    if let Some(f) = filter {
        free_bytes(f.code.cast());
    }
    // SAFETY: unlinked from every list, so no tap or timer can reach it; its lock is idle.
    unsafe { c.inner.free() };
    // SAFETY: allocated by `capture_of`, referenced by nothing now.
    unsafe { ndis_delete(p) };
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
                        match g.take_any_read(STATUS_NO_SUCH_DEVICE, true) {
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

/// Frees the module's capture lock (the list is empty after [`detach`]).
///
/// # Safety
/// After [`detach`], when nothing can reach the module any more.
pub unsafe fn free_module_lock(m: &FilterModule) {
    // SAFETY: caller's contract.
    unsafe { m.capture.list.free() };
}

#[cfg(test)]
mod tests {
    use super::*;

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
