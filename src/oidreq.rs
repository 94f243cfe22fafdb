//! OID requests from user mode (`IOCTL_RXINJECT_OID_REQUEST`): a query or an allowed set,
//! run on the handle's adapter as a request of the driver's own (`NdisFOidRequest`).
//!
//! **One at a time.** A handle has at most one request outstanding (a second gets
//! `STATUS_DEVICE_BUSY`), and a module at most one of its own at the miniport (rule O4):
//! the others wait in the module's queue, in order. Each request holds a datapath reference
//! (a pause waits for it, and `FilterPause` cancels what is in flight) and a reference on its
//! handle.
//!
//! **Completion.** The IRP pends with a cancel routine. Whoever takes the cancel routine (the
//! exchange of `IoSetCancelRoutine`) completes the IRP: the miniport's answer, the cancel
//! routine or cleanup (`STATUS_CANCELLED`), or the read timer once the timeout passed
//! (`STATUS_IO_TIMEOUT`). A request cancelled or timed out while at the miniport is detached
//! from its IRP and cancelled with `NdisFCancelOidRequest`; it is freed when the miniport
//! gives it back, so the IRP never waits for a hung device.
//!
//! **Telling ours from clones.** A clone of a protocol's request carries its original in
//! `SourceReserved[0]`; our own carry null there and their own address in
//! `SourceReserved[1]` (`FilterOidRequestComplete` in `oid.rs` sorts them).

use core::cell::Cell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use ndis_sys::*;
use rxinject_abi::{self as abi, OidRequest, OidResult, tags::TAG_OID};

use crate::device::{OpenHandle, complete_irp};
use crate::driver::{GLOBALS, Handle};
use crate::filter::{self, FilterModule};
use crate::mem::{ndis_delete, ndis_new};

/// Own requests with a deadline, across all modules (the read timer ticks while any wait).
pub static TIMED_OIDS: AtomicU32 = AtomicU32::new(0);

/// Where a request is (changed under its module's queue lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Queued,
    InFlight,
    /// Back from the miniport while its cancel routine runs: the routine completes the IRP
    /// and frees the request.
    Done,
}

/// A request of the driver's own, with its information buffer.
#[repr(C)]
pub struct OwnRequest {
    /// First: the address NDIS hands back is the record's.
    request: NDIS_OID_REQUEST,
    module: *const FilterModule,
    /// The handle that asked (a reference held); none for the driver's own packet filter
    /// updates.
    handle: Option<NonNull<OpenHandle>>,
    /// A packet filter set (`pfilter.rs`): its value is the union, made when it goes down.
    packet_filter: Cell<PfStage>,
    /// Counted in [`TIMED_OIDS`].
    timed: bool,
    /// The IOCTL IRP; null once completed (or detached by a cancel or a timeout). Written
    /// under the module's queue lock; cleanup reads it under the handle's slot lock.
    irp: AtomicPtr<IRP>,
    state: Cell<State>,
    next: Cell<*mut OwnRequest>,
    /// Interrupt time after which the request is abandoned.
    deadline: u64,
    /// `NdisFCancelOidRequest` was called for it.
    cancel_sent: Cell<bool>,
    kind: u32,
    data: [u8; abi::MAX_OID_DATA as usize],
}

/// A module's own requests: the one at the miniport and those waiting behind it.
pub struct OwnQueue {
    in_flight: *mut OwnRequest,
    head: *mut OwnRequest,
    tail: *mut OwnRequest,
}

// SAFETY: the records are reached only under the queue's spin lock.
unsafe impl Send for OwnQueue {}

impl OwnQueue {
    pub const fn new() -> Self {
        OwnQueue {
            in_flight: ptr::null_mut(),
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
        }
    }

    fn push(&mut self, r: *mut OwnRequest) {
        if self.tail.is_null() {
            self.head = r;
        } else {
            // SAFETY: the tail is a live queued record (under the lock).
            unsafe { (*self.tail).next.set(r) };
        }
        self.tail = r;
    }

    fn pop(&mut self) -> *mut OwnRequest {
        let r = self.head;
        if !r.is_null() {
            // SAFETY: a live queued record (under the lock).
            self.head = unsafe { (*r).next.replace(ptr::null_mut()) };
            if self.head.is_null() {
                self.tail = ptr::null_mut();
            }
        }
        r
    }

    /// Unlinks `r` if it is queued; whether it was.
    fn remove(&mut self, r: *mut OwnRequest) -> bool {
        let (mut prev, mut cur) = (ptr::null_mut::<OwnRequest>(), self.head);
        while !cur.is_null() {
            // SAFETY: live queued records (under the lock).
            let next = unsafe { (*cur).next.get() };
            if cur == r {
                if prev.is_null() {
                    self.head = next;
                } else {
                    // SAFETY: as above.
                    unsafe { (*prev).next.set(next) };
                }
                if self.tail == r {
                    self.tail = prev;
                }
                // SAFETY: as above.
                unsafe { (*r).next.set(ptr::null_mut()) };
                return true;
            }
            prev = cur;
            cur = next;
        }
        false
    }
}

impl Default for OwnQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a packet filter request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PfStage {
    /// Not a packet filter request.
    No,
    /// To be made when it goes down: a query first if the protocols' filter is not known,
    /// else the set of the union.
    Pending,
    /// The query of the miniport's current filter is out.
    Query,
    /// The set of this union is out.
    Set(u32),
}

/// Ids for own requests (`RequestId`), unique within a driver load.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A new record for module `m`: its NDIS request's header, id and `SourceReserved` set
/// (the rest is the caller's), queued state, no deadline unless `deadline` says.
fn new_record(
    m: &FilterModule,
    handle: Option<NonNull<OpenHandle>>,
    irp: *mut IRP,
    packet_filter: PfStage,
    deadline: Option<u64>,
    kind: u32,
) -> Option<NonNull<OwnRequest>> {
    let r = ndis_new(
        Handle::new(GLOBALS.filter_driver()),
        TAG_OID,
        OwnRequest {
            // SAFETY: an all-zero NDIS_OID_REQUEST is a valid value (integers and pointers).
            request: unsafe { core::mem::zeroed() },
            module: m,
            handle,
            packet_filter: Cell::new(packet_filter),
            timed: deadline.is_some(),
            irp: AtomicPtr::new(irp),
            state: Cell::new(State::Queued),
            next: Cell::new(ptr::null_mut()),
            deadline: deadline.unwrap_or(u64::MAX),
            cancel_sent: Cell::new(false),
            kind,
            data: [0; abi::MAX_OID_DATA as usize],
        },
    )?;
    let rp = r.as_ptr();
    // SAFETY: our fresh record, not shared yet.
    let q = unsafe { &mut (*rp).request };
    q.Header = NDIS_OBJECT_HEADER::new(
        NDIS_OBJECT_TYPE_OID_REQUEST,
        NDIS_OID_REQUEST_REVISION_1,
        NDIS_SIZEOF_OID_REQUEST_REVISION_1,
    );
    q.RequestId = NEXT_ID.fetch_add(1, Ordering::Relaxed) as usize as PVOID;
    q.SourceReserved = [ptr::null_mut(), rp.cast()];
    Some(r)
}

/// Queues `r` on `m`, and sends it down if it is the module's only request.
///
/// # Safety
/// `r` is a fresh record of `m`'s, in no queue.
unsafe fn enqueue(m: &FilterModule, r: *mut OwnRequest) {
    let send = {
        let mut g = m.own.lock();
        if g.in_flight.is_null() {
            g.in_flight = r;
            // SAFETY: caller's contract: ours, under the lock now.
            unsafe { (*r).state.set(State::InFlight) };
            true
        } else {
            g.push(r);
            false
        }
    };
    if send {
        // SAFETY: the module's request at the miniport now, alive until it comes back.
        unsafe { issue(m, r) };
    }
}

/// `IOCTL_RXINJECT_OID_REQUEST` for handle `h`. PASSIVE_LEVEL (the dispatch routine).
/// Returns what the dispatch routine returns.
///
/// # Safety
/// `irp` is a METHOD_BUFFERED device-control IRP of `h`, not yet completed, with input and
/// output lengths `in_len` and `out_len`.
pub unsafe fn request(h: &OpenHandle, irp: *mut IRP, in_len: usize, out_len: usize) -> NTSTATUS {
    // SAFETY: our IRP (caller's contract).
    let sys = unsafe { (*irp).SystemBuffer }.cast::<u8>();
    let hdr = size_of::<OidRequest>();
    if sys.is_null() || in_len < hdr || out_len < size_of::<OidResult>() {
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, STATUS_INVALID_PARAMETER, 0) };
    }
    // The input, read once: the header, then the data of a set into the record.
    // SAFETY: the system buffer holds at least `in_len` >= `hdr` bytes.
    let req = unsafe { sys.cast::<OidRequest>().read_unaligned() };
    let set = match req.kind {
        abi::OID_QUERY => false,
        abi::OID_SET => true,
        // SAFETY: completing the IRP once.
        _ => return unsafe { complete_irp(irp, STATUS_INVALID_PARAMETER, 0) },
    };
    let len = req.length as usize;
    let fits = len <= abi::MAX_OID_DATA as usize
        && if set {
            in_len == hdr + len
        } else {
            out_len >= size_of::<OidResult>() + len
        };
    if !fits {
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, STATUS_INVALID_BUFFER_SIZE, 0) };
    }
    if set && !abi::OID_SETS_ALLOWED.contains(&req.oid) {
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, STATUS_ACCESS_DENIED, 0) };
    }
    // A handle's packet filter: its value, checked before anything is taken.
    let packet_filter = if set && req.oid == OID_GEN_CURRENT_PACKET_FILTER {
        if len != 4 {
            // SAFETY: completing the IRP once.
            return unsafe { complete_irp(irp, STATUS_INVALID_BUFFER_SIZE, 0) };
        }
        // SAFETY: the system buffer holds `hdr` + 4 bytes.
        let data = unsafe { sys.add(hdr) };
        // SAFETY: the 4 bytes of data after the header.
        let value = unsafe { data.cast::<u32>().read_unaligned() };
        match crate::pfilter::normalize(value) {
            Some(v) => Some(v),
            // SAFETY: completing the IRP once.
            None => return unsafe { complete_irp(irp, STATUS_NOT_SUPPORTED, 0) },
        }
    } else {
        None
    };
    let Some((id, _)) = h.binding() else {
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, STATUS_INVALID_DEVICE_STATE, 0) };
    };
    let m = match filter::acquire_module(id) {
        filter::Acquired::Module(m) => m,
        // SAFETY: completing the IRP once.
        filter::Acquired::NotRunning => return unsafe { complete_irp(irp, NDIS_STATUS_PAUSED.into(), 0) },
        // SAFETY: completing the IRP once.
        filter::Acquired::Gone => return unsafe { complete_irp(irp, STATUS_NO_SUCH_DEVICE, 0) },
    };
    let timeout = u64::from(if req.timeout_ms == 0 {
        abi::OID_DEFAULT_TIMEOUT_MS
    } else {
        req.timeout_ms
    });
    let stage = if packet_filter.is_some() {
        PfStage::Pending
    } else {
        PfStage::No
    };
    let deadline = crate::capture::interrupt_time().saturating_add(timeout * 10_000);
    let Some(r) = new_record(m, Some(NonNull::from(h)), irp, stage, Some(deadline), req.kind) else {
        m.leave_datapath();
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, STATUS_INSUFFICIENT_RESOURCES, 0) };
    };
    let rp = r.as_ptr();
    // The handle's one request: taken before anything can complete it.
    {
        let mut slot = h.oid.lock();
        if !slot.0.is_null() {
            drop(slot);
            // SAFETY: ours, never shared.
            unsafe { ndis_delete(r) };
            m.leave_datapath();
            // SAFETY: completing the IRP once.
            return unsafe { complete_irp(irp, STATUS_DEVICE_BUSY, 0) };
        }
        slot.0 = rp;
    }
    h.add_ref();
    if let Some(bits) = packet_filter {
        crate::pfilter::set_handle(m, h, bits);
    }
    // SAFETY: our fresh record.
    let rec = unsafe { &mut *rp };
    if set {
        // SAFETY: the system buffer holds `in_len` = `hdr` + `len` bytes.
        let data = unsafe { sys.add(hdr) };
        // SAFETY: `len` bytes of input there; the record's buffer holds MAX_OID_DATA >= len.
        unsafe { ptr::copy_nonoverlapping(data, rec.data.as_mut_ptr(), len) };
    }
    let q = &mut rec.request;
    q.RequestType = if set {
        NdisRequestSetInformation
    } else {
        NdisRequestQueryInformation
    };
    // The query and set views share Oid, InformationBuffer and InformationBufferLength.
    q.DATA.QUERY_INFORMATION.Oid = req.oid;
    q.DATA.QUERY_INFORMATION.InformationBuffer = rec.data.as_mut_ptr().cast();
    q.DATA.QUERY_INFORMATION.InformationBufferLength = req.length;
    TIMED_OIDS.fetch_add(1, Ordering::AcqRel);

    // Pended before anything can complete it.
    // SAFETY: our IRP, about to be pended.
    unsafe { IoMarkIrpPending(irp) };
    // SAFETY: DriverContext is ours while the IRP is pending.
    unsafe { (*crate::capture::irp_context(irp))[0] = rp.cast() };
    // Cancellable and queued under the queue lock, which the cancel routine takes first: a
    // routine that runs at once finds the record queued (or in flight), never half made.
    // Cleanup marks the handle before it looks for the request, so one of the two sees the
    // other.
    let (send, refused) = {
        let mut g = m.own.lock();
        // SAFETY: as above.
        unsafe { IoSetCancelRoutine(irp, Some(cancel_oid)) };
        // SAFETY: as above.
        let cancelled = unsafe { (*irp).Cancel } != 0 || h.is_cleaned_up();
        // SAFETY: as above: taking the routine back makes the IRP ours to finish.
        if cancelled && unsafe { IoSetCancelRoutine(irp, None) }.is_some() {
            (false, true)
        } else if g.in_flight.is_null() {
            g.in_flight = rp;
            rec.state.set(State::InFlight);
            (true, false)
        } else {
            g.push(rp);
            (false, false)
        }
    };
    if refused {
        rec.irp.store(ptr::null_mut(), Ordering::Release);
        // SAFETY: completing the IRP once (pended above).
        unsafe { complete_irp(irp, STATUS_CANCELLED, 0) };
        // SAFETY: never queued: nothing else refers to the record.
        unsafe { free(rp) };
        return STATUS_PENDING;
    }
    crate::capture::arm_timer();
    if send {
        // SAFETY: the module's request at the miniport now, alive until it comes back.
        unsafe { issue(m, rp) };
    }
    STATUS_PENDING
}

/// The driver's own set of the packet filter (a handle that asked for filter types went
/// away): queued like a handle's request, with no IRP. Takes over the caller's datapath
/// reference on `m`. IRQL <= DISPATCH_LEVEL.
pub fn sync_packet_filter(m: &FilterModule) {
    let Some(r) = new_record(m, None, ptr::null_mut(), PfStage::Pending, None, abi::OID_SET) else {
        // No memory now: the miniport keeps the larger filter until the next set.
        m.leave_datapath();
        return;
    };
    // SAFETY: our fresh record, in no queue.
    unsafe { enqueue(m, r.as_ptr()) };
}

/// Makes a packet filter request's NDIS request as it goes down: the query of the
/// miniport's filter while the protocols' is unknown, else the set of the union. Returns
/// false when the miniport already has the union (nothing to send).
///
/// # Safety
/// `r` is `m`'s in-flight packet filter request.
unsafe fn prepare_packet_filter(m: &FilterModule, r: *mut OwnRequest) -> bool {
    // SAFETY: caller's contract: in flight, ours until it goes down.
    let rec = unsafe { &mut *r };
    let (desired, applied) = {
        let pf = m.pf.lock();
        (pf.desired(), pf.applied())
    };
    let q = &mut rec.request;
    q.DATA.QUERY_INFORMATION.Oid = OID_GEN_CURRENT_PACKET_FILTER;
    q.DATA.QUERY_INFORMATION.InformationBuffer = rec.data.as_mut_ptr().cast();
    q.DATA.QUERY_INFORMATION.InformationBufferLength = 4;
    match desired {
        None => {
            q.RequestType = NdisRequestQueryInformation;
            rec.packet_filter.set(PfStage::Query);
            true
        }
        Some(d) => {
            q.RequestType = NdisRequestSetInformation;
            q.DATA.SET_INFORMATION.BytesRead = 4;
            rec.data[..4].copy_from_slice(&d.to_le_bytes());
            rec.packet_filter.set(PfStage::Set(d));
            applied != Some(d)
        }
    }
}

/// Sends `r` down (`NdisFOidRequest`); completes it at once if NDIS did.
///
/// # Safety
/// `r` is `m`'s in-flight request. No lock held.
unsafe fn issue(m: &FilterModule, r: *mut OwnRequest) {
    // SAFETY: caller's contract.
    if unsafe { (*r).packet_filter.get() } != PfStage::No && !unsafe { prepare_packet_filter(m, r) } {
        // The miniport has the union already: done, as a set that went through.
        // SAFETY: in flight and ours.
        unsafe { complete(m, r, NDIS_STATUS_SUCCESS) };
        return;
    }
    // SAFETY: the in-flight record, alive until it is completed; taking a field's address
    // reads nothing.
    let request = unsafe { ptr::addr_of_mut!((*r).request) };
    // SAFETY: our filter handle and our request, valid until NDIS gives it back.
    let status = unsafe { NdisFOidRequest(m.handle.get(), request) };
    if status != NDIS_STATUS_PENDING {
        // SAFETY: completed synchronously: back with us.
        unsafe { complete(m, r, status) };
    }
}

/// The request `r` of module `m` is back from the miniport with `status`
/// (`FilterOidRequestComplete`, or a synchronous return). IRQL <= DISPATCH_LEVEL.
///
/// # Safety
/// `r` is `m`'s in-flight request, back with us.
pub unsafe fn complete(m: &FilterModule, r: *mut OwnRequest, status: NDIS_STATUS) {
    // SAFETY: caller's contract.
    let rec = unsafe { &*r };
    match rec.packet_filter.get() {
        PfStage::Query if status == NDIS_STATUS_SUCCESS => {
            // The protocols' filter, before the driver changed anything; now the set.
            let current = u32::from_le_bytes([rec.data[0], rec.data[1], rec.data[2], rec.data[3]]);
            m.pf.lock().learn_higher(m, current);
            // SAFETY: still in flight: it goes down again as the set.
            unsafe { issue(m, r) };
            return;
        }
        PfStage::Set(v) if status == NDIS_STATUS_SUCCESS => m.pf.lock().set_applied(v),
        _ => {}
    }
    let (irp, next) = {
        let mut g = m.own.lock();
        let irp = rec.irp.swap(ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: the request's pending IRP, if any.
        let irp = if irp.is_null() || unsafe { IoSetCancelRoutine(irp, None) }.is_some() {
            irp
        } else {
            // Whoever took its cancel routine (the routine, cleanup, the timer, a pause)
            // completes the IRP and frees the record.
            rec.irp.store(irp, Ordering::Release);
            rec.state.set(State::Done);
            ptr::null_mut()
        };
        g.in_flight = g.pop();
        let next = g.in_flight;
        if !next.is_null() {
            // SAFETY: a live queued record.
            unsafe { (*next).state.set(State::InFlight) };
        }
        (irp, next)
    };
    if !irp.is_null() {
        // SAFETY: ours to complete (the cancel routine was taken back above).
        let info = unsafe { write_result(rec, irp, status) };
        // SAFETY: completing the IRP once.
        unsafe { complete_irp(irp, STATUS_SUCCESS, info) };
    }
    if rec.state.get() != State::Done {
        // SAFETY: back from NDIS, detached from its IRP: nothing refers to it.
        unsafe { free(r) };
    }
    if !next.is_null() {
        // SAFETY: the module's new in-flight request.
        unsafe { issue(m, next) };
    }
}

/// Writes the result (and a query's answer) into the IRP's buffer; returns the bytes.
///
/// # Safety
/// `irp` is the request's IOCTL IRP, still ours.
unsafe fn write_result(rec: &OwnRequest, irp: *mut IRP, status: NDIS_STATUS) -> usize {
    let q = &rec.request;
    // Union reads: `RequestType` selects the view, each plain integers.
    let (bytes, needed) = if rec.kind == abi::OID_SET {
        // SAFETY: see above.
        let s = unsafe { q.DATA.SET_INFORMATION };
        (s.BytesRead, s.BytesNeeded)
    } else {
        // SAFETY: see above.
        let s = unsafe { q.DATA.QUERY_INFORMATION };
        (s.BytesWritten, s.BytesNeeded)
    };
    // SAFETY: as above.
    let capacity = unsafe { q.DATA.QUERY_INFORMATION.InformationBufferLength };
    let written = if rec.kind == abi::OID_QUERY && status == NDIS_STATUS_SUCCESS {
        bytes.min(capacity) as usize
    } else {
        0
    };
    let result = OidResult {
        status: status.code(),
        bytes,
        bytes_needed: needed,
        reserved: 0,
    };
    // SAFETY: the IRP's system buffer.
    let sys = unsafe { (*irp).SystemBuffer }.cast::<u8>();
    // SAFETY: `request` checked the output holds the result and the query's buffer size.
    unsafe { sys.cast::<OidResult>().write_unaligned(result) };
    // SAFETY: the output holds the result and then the query's buffer size.
    let out = unsafe { sys.add(size_of::<OidResult>()) };
    // SAFETY: `written` <= the buffer size the output was checked for.
    unsafe { ptr::copy_nonoverlapping(rec.data.as_ptr(), out, written) };
    size_of::<OidResult>() + written
}

/// Frees a record: its handle's slot and reference, its datapath reference, its deadline.
///
/// # Safety
/// Nothing refers to `r` any more.
unsafe fn free(r: *mut OwnRequest) {
    // SAFETY: caller's contract: a live record.
    let rec = unsafe { &*r };
    // SAFETY: the record's datapath reference keeps its module alive until released below.
    let m = unsafe { &*rec.module };
    let h = rec.handle;
    if let Some(h) = h {
        // SAFETY: the record's reference keeps the handle alive until released below.
        let mut slot = unsafe { h.as_ref() }.oid.lock();
        if slot.0 == r {
            slot.0 = ptr::null_mut();
        }
    }
    if rec.timed {
        TIMED_OIDS.fetch_sub(1, Ordering::AcqRel);
    }
    // SAFETY: non-null (a live record).
    let r = unsafe { NonNull::new_unchecked(r) };
    // SAFETY: allocated by `request`, referred to by nothing.
    unsafe { ndis_delete(r) };
    if let Some(h) = h {
        // SAFETY: the record's handle reference.
        unsafe { OpenHandle::release(h) };
    }
    m.leave_datapath();
}

/// Takes request `r`'s IRP away from it (cancel, cleanup, timeout) and completes it with
/// `status`; a queued request is freed, one at the miniport is cancelled there. Whoever
/// holds the cancel routine calls this.
///
/// # Safety
/// `r` is live, and the caller owns its IRP (took the cancel routine, or is the routine).
unsafe fn abandon(r: *mut OwnRequest, status: NTSTATUS) {
    // SAFETY: caller's contract.
    let rec = unsafe { &*r };
    // SAFETY: a live record's module holds the record's datapath reference.
    let m = unsafe { &*rec.module };
    let (irp, cancel, free_now) = {
        let mut g = m.own.lock();
        let irp = rec.irp.swap(ptr::null_mut(), Ordering::AcqRel);
        match rec.state.get() {
            State::Queued => {
                let _ = g.remove(r);
                (irp, None, true)
            }
            State::InFlight => {
                let first = !rec.cancel_sent.replace(true);
                // SAFETY: the request's id (plain data).
                (irp, first.then_some(rec.request.RequestId), false)
            }
            State::Done => (irp, None, true),
        }
    };
    if !irp.is_null() {
        // SAFETY: the caller owns the IRP.
        unsafe { complete_irp(irp, status, 0) };
    }
    if let Some(id) = cancel {
        // SAFETY: our filter handle; the record is in flight (the module is alive while it
        // holds its datapath reference), its id opaque to NDIS.
        unsafe { NdisFCancelOidRequest(m.handle.get(), id) };
    }
    if free_now {
        // SAFETY: unlinked (or back from NDIS and left to us): nothing refers to it.
        unsafe { free(r) };
    }
}

/// The cancel routine of a pending OID IRP: called holding the cancel spin lock.
unsafe extern "win64" fn cancel_oid(_device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: the IRP the I/O manager is cancelling.
    let irql = unsafe { (*irp).CancelIrql };
    // SAFETY: called holding the cancel spin lock; `irql` is what to restore.
    unsafe { IoReleaseCancelSpinLock(irql) };
    // SAFETY: DriverContext[0] was set to the record before the routine, and the record
    // lives while its IRP is attached (only the routine's owner detaches it).
    let r = unsafe { (*crate::capture::irp_context(irp))[0] }.cast::<OwnRequest>();
    // SAFETY: as above; the routine owns the IRP.
    unsafe { abandon(r, STATUS_CANCELLED) };
}

/// IRP_MJ_CLEANUP: the handle's request, if any, completes with STATUS_CANCELLED.
pub fn cleanup(h: &OpenHandle) {
    let r = {
        let slot = h.oid.lock();
        let r = slot.0;
        if r.is_null() {
            return;
        }
        // SAFETY: a record in the slot is alive: `free` empties the slot (under this lock)
        // before it frees the record.
        let irp = unsafe { (*r).irp.load(Ordering::Acquire) };
        // SAFETY: the record's pending IRP; taking its cancel routine makes it ours, and
        // keeps the record alive (whoever owns the IRP frees the record).
        if irp.is_null() || unsafe { IoSetCancelRoutine(irp, None) }.is_none() {
            return;
        }
        r
    };
    // SAFETY: we took the cancel routine: the IRP is ours.
    unsafe { abandon(r, STATUS_CANCELLED) };
}

/// The read timer's tick: abandons module `id`'s requests whose deadline passed
/// (`STATUS_IO_TIMEOUT`). DISPATCH_LEVEL.
pub fn expire(id: u64, now: u64) {
    if TIMED_OIDS.load(Ordering::Acquire) == 0 {
        return;
    }
    let filter::Acquired::Module(m) = filter::acquire_module(id) else {
        return;
    };
    loop {
        // One expired request whose IRP is still attached, with its cancel routine taken.
        let found = {
            let g = m.own.lock();
            // The one at the miniport, then the queue.
            let mut r = if g.in_flight.is_null() {
                g.head
            } else {
                g.in_flight
            };
            let mut hit = ptr::null_mut();
            while !r.is_null() {
                // SAFETY: live records (under the lock).
                let rec = unsafe { &*r };
                let irp = rec.irp.load(Ordering::Acquire);
                // SAFETY: the record's pending IRP.
                if rec.deadline <= now && !irp.is_null() && unsafe { IoSetCancelRoutine(irp, None) }.is_some()
                {
                    hit = r;
                    break;
                }
                r = if r == g.in_flight { g.head } else { rec.next.get() };
            }
            hit
        };
        if found.is_null() {
            break;
        }
        // SAFETY: we took its cancel routine: the IRP is ours.
        unsafe { abandon(found, STATUS_IO_TIMEOUT) };
    }
    m.leave_datapath();
}

/// `FilterPause`: the request at the miniport is cancelled (its datapath reference would
/// hold the pause), the queued ones fail with `NDIS_STATUS_PAUSED`, and the driver's own
/// queued packet filter sets are dropped (`pfilter::restarted` redoes what is still
/// needed). IRQL <= DISPATCH.
pub fn pause(m: &FilterModule) {
    loop {
        let r = {
            let g = m.own.lock();
            let mut r = g.head;
            while !r.is_null() {
                // SAFETY: live queued records (under the lock).
                let rec = unsafe { &*r };
                let irp = rec.irp.load(Ordering::Acquire);
                // A queued record without an IRP is a packet filter set of the driver's own
                // (`restarted` makes it again if still needed); one with an IRP is ours once
                // its cancel routine is.
                // SAFETY: the record's pending IRP, if any.
                if irp.is_null() || unsafe { IoSetCancelRoutine(irp, None) }.is_some() {
                    break;
                }
                r = rec.next.get();
            }
            r
        };
        if r.is_null() {
            break;
        }
        // SAFETY: we own its IRP (or it has none): abandoning it is ours to do.
        unsafe { abandon(r, NDIS_STATUS_PAUSED.into()) };
    }
    let cancel = {
        let g = m.own.lock();
        // SAFETY: the in-flight record, if any (under the lock).
        match unsafe { g.in_flight.as_ref() } {
            Some(rec) if !rec.cancel_sent.replace(true) => Some(rec.request.RequestId),
            _ => None,
        }
    };
    if let Some(id) = cancel {
        // SAFETY: our filter handle; the id of our request at the miniport.
        unsafe { NdisFCancelOidRequest(m.handle.get(), id) };
    }
}

/// Whether `request`, back in `FilterOidRequestComplete`, is one of the driver's own.
///
/// # Safety
/// `request` is a request NDIS gave back to the driver: its own or a clone it made.
pub unsafe fn is_own(request: *mut NDIS_OID_REQUEST) -> bool {
    // SAFETY: a request NDIS gives back to us: ours or a clone we made.
    let reserved = unsafe { (*request).SourceReserved };
    reserved[0].is_null() && reserved[1] == request.cast()
}

/// A handle's request slot (`OpenHandle::oid`, under its lock): the one request of the
/// handle still alive, or null.
pub struct Slot(pub *mut OwnRequest);

// SAFETY: the pointer is reached only under the slot's spin lock.
unsafe impl Send for Slot {}
