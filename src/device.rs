//! The control device `\Device\RxInject` (`\DosDevices\RxInject`): registration, the
//! per-handle context, and the IRP dispatch routines. Writes inject (`inject.rs`), device
//! controls configure (`ioctl.rs`), reads are reserved for capture.
//!
//! Rules kept here: D1 (registered with NdisRegisterDeviceEx, our state is not in the I/O
//! manager's `DeviceExtension`), D2 (deregistered at unload), D3/D4 (every IRP completed once;
//! a pended IRP is marked pending first; a synchronous return equals `IoStatus.Status`), D8
//! (`DO_DIRECT_IO`: reads and writes reach the caller's own pages, through an MDL, with no
//! user-sized kernel copy; `Information` never above the length), D9 (SYSTEM and
//! Administrators only; named opens refused).

use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use ndis_sys::*;
use rxinject_abi::{self as abi, HandleCounters, tags::TAG_HANDLE};

use crate::capture::{self, Capture};
use crate::driver::{GLOBALS, Handle};
use crate::filter;
use crate::inject::{self, Written};
use crate::lock::SpinLock;
use crate::mem::{ndis_delete, ndis_new};
use crate::trace::trace;
use crate::writes::{self, WriteList};

utf16_static!(static DEVICE_NAME_W = abi::DEVICE_NAME;);
utf16_static!(static SYMBOLIC_NAME_W = abi::SYMBOLIC_NAME;);
utf16_static!(static SDDL_W = abi::DEVICE_SDDL;);

/// Creates the control device. PASSIVE_LEVEL (DriverEntry).
pub fn register(filter_driver: Handle) -> NDIS_STATUS {
    let mut name = wstr::unicode_string(&DEVICE_NAME_W);
    let mut symbolic = wstr::unicode_string(&SYMBOLIC_NAME_W);
    let sddl = wstr::unicode_string(&SDDL_W);
    let mut dispatch: [PDRIVER_DISPATCH; IRP_MJ_COUNT] = [None; IRP_MJ_COUNT];
    dispatch[usize::from(IRP_MJ_CREATE)] = Some(dispatch_create);
    dispatch[usize::from(IRP_MJ_CLOSE)] = Some(dispatch_close);
    dispatch[usize::from(IRP_MJ_CLEANUP)] = Some(dispatch_cleanup);
    dispatch[usize::from(IRP_MJ_READ)] = Some(dispatch_read);
    dispatch[usize::from(IRP_MJ_WRITE)] = Some(dispatch_write);
    dispatch[usize::from(IRP_MJ_DEVICE_CONTROL)] = Some(dispatch_device_control);
    let mut attributes = NDIS_DEVICE_OBJECT_ATTRIBUTES {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES,
            NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1,
            NDIS_SIZEOF_DEVICE_OBJECT_ATTRIBUTES_REVISION_1,
        ),
        DeviceName: &mut name,
        SymbolicName: &mut symbolic,
        MajorFunctions: dispatch.as_mut_ptr(),
        ExtensionSize: 0,
        DefaultSDDLString: &sddl,
        DeviceClassGuid: ptr::null(),
    };
    let mut device: *mut DEVICE_OBJECT = ptr::null_mut();
    let mut handle: NDIS_HANDLE = ptr::null_mut();
    // SAFETY: valid attributes (NDIS copies the names and the dispatch table) and out
    // parameters; our filter driver handle.
    let status =
        unsafe { NdisRegisterDeviceEx(filter_driver.get(), &mut attributes, &mut device, &mut handle) };
    if status != NDIS_STATUS_SUCCESS {
        trace!(ERROR, "NdisRegisterDeviceEx failed: {status:?}");
        return status;
    }
    // SAFETY: the device object NDIS just created for us; no IRP can arrive before
    // DriverEntry returns, so setting the buffering mode now is race-free. Direct I/O: the
    // I/O manager locks the caller's buffer instead of copying a write of any size into
    // non-paged pool before we could refuse it, or allocating one for a read.
    unsafe { (*device).Flags |= DO_DIRECT_IO };
    GLOBALS.set_device(device, handle);
    NDIS_STATUS_SUCCESS
}

/// Deletes the control device. PASSIVE_LEVEL (unload).
pub fn deregister() {
    let (_, handle) = GLOBALS.device();
    if !handle.is_null() {
        // SAFETY: the handle from our registration.
        unsafe { NdisDeregisterDeviceEx(handle) };
        GLOBALS.set_device(ptr::null_mut(), ptr::null_mut());
    }
}

/// Per-handle counters.
#[derive(Default)]
pub struct HandleCounterCells {
    writes: AtomicU64,
    writes_succeeded: AtomicU64,
    writes_failed: AtomicU64,
    frames_accepted: AtomicU64,
    bytes_accepted: AtomicU64,
    tx_frames: AtomicU64,
    rx_frames: AtomicU64,
    writes_pending: AtomicU64,
    writes_cancelled: AtomicU64,
}

impl HandleCounterCells {
    pub fn write_received(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.writes_pending.fetch_add(1, Ordering::Relaxed);
    }

    pub fn write_accepted(&self, rx: u64, tx: u64, bytes: u64) {
        self.frames_accepted.fetch_add(rx + tx, Ordering::Relaxed);
        self.rx_frames.fetch_add(rx, Ordering::Relaxed);
        self.tx_frames.fetch_add(tx, Ordering::Relaxed);
        self.bytes_accepted.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn write_done(&self, ok: bool) {
        if ok {
            self.writes_succeeded.fetch_add(1, Ordering::Relaxed);
        } else {
            self.writes_failed.fetch_add(1, Ordering::Relaxed);
        }
        self.writes_pending.fetch_sub(1, Ordering::Relaxed);
    }

    /// A write completed with STATUS_CANCELLED (cancel or cleanup).
    pub fn write_cancelled(&self) {
        self.writes_cancelled.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes completed with STATUS_CANCELLED.
    pub fn cancelled(&self) -> u64 {
        self.writes_cancelled.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> HandleCounters {
        HandleCounters {
            writes: self.writes.load(Ordering::Relaxed),
            writes_succeeded: self.writes_succeeded.load(Ordering::Relaxed),
            writes_failed: self.writes_failed.load(Ordering::Relaxed),
            frames_accepted: self.frames_accepted.load(Ordering::Relaxed),
            bytes_accepted: self.bytes_accepted.load(Ordering::Relaxed),
            tx_frames: self.tx_frames.load(Ordering::Relaxed),
            rx_frames: self.rx_frames.load(Ordering::Relaxed),
            writes_pending: self.writes_pending.load(Ordering::Relaxed),
        }
    }
}

/// The context of one open handle (`FileObject->FsContext`), from IRP_MJ_CREATE to
/// IRP_MJ_CLOSE.
pub struct OpenHandle {
    /// Id of the bound module (0: unbound). Modules are looked up by id under the list lock,
    /// so a handle never holds a pointer to a module that may be detached.
    binding: AtomicU64,
    if_index: AtomicU32,
    rx_default: AtomicBool,
    pub counters: HandleCounterCells,
    /// The capture state (`capture/`), once the handle asked for one; retired at close (freed
    /// once no tap can hold it).
    capture: AtomicPtr<Capture>,
    /// Set while a request that changes the handle's binding or capture runs: such requests
    /// of one handle never run concurrently (a second one gets STATUS_DEVICE_BUSY).
    control: AtomicBool,
    /// IRP_MJ_CLEANUP has begun: no read is queued after it (`capture::read`).
    cleaned_up: AtomicBool,
    /// Pending writes (`writes.rs`).
    pub writes: SpinLock<WriteList>,
    /// An idle write record kept for the next write (`writes.rs`).
    pub spare_write: AtomicPtr<crate::writes::WriteRecord>,
    /// References: the file object's (until IRP_MJ_CLOSE), one per write record, one per
    /// OID request.
    refs: AtomicUsize,
    /// The handle's OID request, if one is outstanding (`oidreq.rs`).
    pub oid: SpinLock<crate::oidreq::Slot>,
    /// The packet filter types the handle asked for, and on which module (`pfilter.rs`).
    pub packet_filter: SpinLock<crate::pfilter::HandleFilter>,
}

/// Marks a handle's control request as running; clears the mark when dropped.
pub struct ControlGuard<'a>(&'a AtomicBool);

impl Drop for ControlGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl OpenHandle {
    fn new() -> Self {
        OpenHandle {
            binding: AtomicU64::new(0),
            if_index: AtomicU32::new(0),
            rx_default: AtomicBool::new(false),
            counters: HandleCounterCells::default(),
            capture: AtomicPtr::new(ptr::null_mut()),
            control: AtomicBool::new(false),
            cleaned_up: AtomicBool::new(false),
            writes: SpinLock::new(WriteList::new()),
            spare_write: AtomicPtr::new(ptr::null_mut()),
            refs: AtomicUsize::new(1),
            oid: SpinLock::new(crate::oidreq::Slot(ptr::null_mut())),
            packet_filter: SpinLock::new(crate::pfilter::HandleFilter::default()),
        }
    }

    /// Whether IRP_MJ_CLEANUP has begun for this handle.
    pub fn is_cleaned_up(&self) -> bool {
        self.cleaned_up.load(Ordering::SeqCst)
    }

    /// Takes a reference (a write record's).
    pub fn add_ref(&self) {
        self.refs.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops a reference; the last frees the handle (its write lock and record cache
    /// included). IRQL <= DISPATCH_LEVEL.
    ///
    /// # Safety
    /// The caller owns one reference on the live handle `h`, and does not use it after.
    pub unsafe fn release(h: ptr::NonNull<OpenHandle>) {
        // SAFETY: caller's contract.
        if unsafe { h.as_ref() }.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // SAFETY: the last reference: nothing else can reach the handle.
        let handle = unsafe { h.as_ref() };
        {
            let mut g = handle.writes.lock();
            let spare = handle.spare_write.swap(ptr::null_mut(), Ordering::AcqRel);
            // SAFETY: nothing refers to the records any more.
            unsafe { crate::writes::free_cache(&mut g, spare) };
        }
        // SAFETY: initialised at create, idle now.
        unsafe { handle.writes.free() };
        // SAFETY: as above.
        unsafe { handle.oid.free() };
        // SAFETY: as above.
        unsafe { handle.packet_filter.free() };
        // SAFETY: allocated by dispatch_create, referenced by nothing now.
        unsafe { ndis_delete(h) };
    }

    /// Starts a control request, unless one of this handle is running.
    pub fn begin_control(&self) -> Option<ControlGuard<'_>> {
        (!self.control.swap(true, Ordering::AcqRel)).then_some(ControlGuard(&self.control))
    }

    /// The handle's capture, if it has one.
    pub fn capture(&self) -> Option<&Capture> {
        // SAFETY: a non-null pointer was installed by `install_capture` and stays valid until
        // `take_capture` at IRP_MJ_CLOSE, after every other IRP of the handle.
        unsafe { self.capture.load(Ordering::Acquire).as_ref() }
    }

    /// Installs `c` as the handle's capture; fails (returning the installed one) if another
    /// request installed one first.
    pub fn install_capture(&self, c: *mut Capture) -> Result<(), *mut Capture> {
        self.capture
            .compare_exchange(ptr::null_mut(), c, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }

    /// Removes the handle's capture (IRP_MJ_CLOSE), for the caller to free.
    pub fn take_capture(&self) -> Option<ptr::NonNull<Capture>> {
        ptr::NonNull::new(self.capture.swap(ptr::null_mut(), Ordering::AcqRel))
    }

    /// Binds to module `id` (adapter `if_index`).
    pub fn bind(&self, id: u64, if_index: u32) {
        self.if_index.store(if_index, Ordering::Relaxed);
        self.binding.store(id, Ordering::Release);
    }

    /// The bound module's id and if_index, if bound.
    pub fn binding(&self) -> Option<(u64, u32)> {
        let id = self.binding.load(Ordering::Acquire);
        (id != 0).then(|| (id, self.if_index.load(Ordering::Relaxed)))
    }

    fn unbind(&self) {
        self.binding.store(0, Ordering::Release);
    }

    pub fn set_rx_default(&self, rx: bool) {
        self.rx_default.store(rx, Ordering::Relaxed);
    }

    pub fn direction_is_rx(&self) -> bool {
        self.rx_default.load(Ordering::Relaxed)
    }
}

/// The handle context of an IRP's file object, if any.
///
/// # Safety
/// `sl` is the current stack location of an IRP for our device.
pub unsafe fn handle_of<'a>(sl: *mut IO_STACK_LOCATION) -> Option<&'a OpenHandle> {
    // SAFETY: caller's contract.
    let fo = unsafe { (*sl).FileObject };
    if fo.is_null() {
        return None;
    }
    // SAFETY: a file object of our device; FsContext is ours (set at create, null before).
    let ctx = unsafe { (*fo).FsContext };
    // SAFETY: a non-null FsContext was set by dispatch_create to a live OpenHandle, which
    // lives until IRP_MJ_CLOSE (after every other IRP of the file object).
    (!ctx.is_null()).then(|| unsafe { &*ctx.cast::<OpenHandle>() })
}

/// Sets the IRP's status and information and completes it (`IoCompleteRequest`). Returns the
/// status, which a dispatch routine completing synchronously returns (D4).
///
/// # Safety
/// `irp` is ours to complete, exactly once; no spin lock is held. IRQL <= DISPATCH_LEVEL.
pub unsafe fn complete_irp(irp: *mut IRP, status: NTSTATUS, information: usize) -> NTSTATUS {
    // SAFETY: caller's contract.
    let io_status = unsafe { &mut (*irp).IoStatus };
    io_status.Status = status;
    io_status.Information = information;
    // SAFETY: as above.
    unsafe { IofCompleteRequest(irp, IO_NO_INCREMENT) };
    status
}

/// IRP_MJ_CREATE: opens of the bare device only (D9); allocates the handle context.
unsafe extern "win64" fn dispatch_create(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: an IRP the I/O manager sent to our dispatch routine.
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: as above.
    let fo = unsafe { (*sl).FileObject };
    // SAFETY: a create IRP carries its file object.
    if fo.is_null() || unsafe { (*fo).FileName.Length } != 0 {
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, STATUS_OBJECT_NAME_INVALID, 0) };
    }
    let Some(h) = ndis_new(
        Handle::new(GLOBALS.filter_driver()),
        TAG_HANDLE,
        OpenHandle::new(),
    ) else {
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, STATUS_INSUFFICIENT_RESOURCES, 0) };
    };
    // SAFETY: a fresh handle context, not yet shared.
    let fresh = unsafe { h.as_ref() };
    // SAFETY: its lock, initialised once, before any use; the context does not move until
    // freed.
    unsafe { fresh.writes.init() };
    // SAFETY: as above.
    unsafe { fresh.oid.init() };
    // SAFETY: as above.
    unsafe { fresh.packet_filter.init() };
    // SAFETY: the file object of this open; FsContext is ours.
    unsafe { (*fo).FsContext = h.as_ptr().cast() };
    // SAFETY: completing the IRP once.
    unsafe { complete_irp(irp, STATUS_SUCCESS, 0) }
}

/// IRP_MJ_CLEANUP: the last handle closed. Waiting reads and pending writes are cancelled
/// (D6): a write's frames still with NDIS come back later to its record, not to the IRP.
unsafe extern "win64" fn dispatch_cleanup(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: an IRP for our device.
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: as above.
    if let Some(h) = unsafe { handle_of(sl) } {
        // First the mark, then the queues: a read that takes the capture lock after
        // cleanup has drained it sees the mark and is refused (`capture::read`).
        h.cleaned_up.store(true, Ordering::SeqCst);
        writes::cleanup(h);
        capture::cleanup(h);
        crate::oidreq::cleanup(h);
        crate::pfilter::remove_handle(h);
    }
    // SAFETY: completing the IRP once.
    unsafe { complete_irp(irp, STATUS_SUCCESS, 0) }
}

/// IRP_MJ_CLOSE: the file object goes away (no IRP of it is pending): free its context.
unsafe extern "win64" fn dispatch_close(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: an IRP for our device.
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: as above.
    let fo = unsafe { (*sl).FileObject };
    if !fo.is_null() {
        // SAFETY: the file object of this handle.
        let ctx = unsafe { (*fo).FsContext };
        if let Some(h) = ptr::NonNull::new(ctx.cast::<OpenHandle>()) {
            // SAFETY: the handle context is live until freed below.
            capture::close(unsafe { h.as_ref() });
            // SAFETY: as above.
            unsafe { (*fo).FsContext = ptr::null_mut() };
            // SAFETY: the file object's reference; no IRP of it remains (write records that
            // still wait for frames keep the handle until they are done).
            unsafe { OpenHandle::release(h) };
        }
    }
    // SAFETY: completing the IRP once.
    unsafe { complete_irp(irp, STATUS_SUCCESS, 0) }
}

/// IRP_MJ_READ: capture records (see `capture/`).
unsafe extern "win64" fn dispatch_read(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: an IRP for our device.
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: as above.
    let Some(h) = (unsafe { handle_of(sl) }) else {
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, STATUS_INVALID_DEVICE_REQUEST, 0) };
    };
    // SAFETY: a read IRP of ours, not yet pended, for handle `h`.
    unsafe { capture::read(h, irp) }
}

/// IRP_MJ_WRITE: inject (see `inject.rs`).
unsafe extern "win64" fn dispatch_write(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: an IRP for our device.
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: as above.
    let Some(h) = (unsafe { handle_of(sl) }) else {
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, STATUS_INVALID_DEVICE_REQUEST, 0) };
    };
    h.counters.write_received();
    // SAFETY: the current stack location of our IRP.
    let params = unsafe { &(*sl).Parameters };
    // SAFETY: a write IRP: the Write view of the parameters is live.
    let len = unsafe { params.Write.Length } as usize;
    // SAFETY: a write IRP of ours, in its dispatch routine.
    let buf = match unsafe { user_buffer(irp, len) } {
        Ok(b) => b,
        // SAFETY: completing the IRP once.
        Err(status) => return unsafe { finish_write(h, irp, status) },
    };
    let Some((id, _)) = h.binding() else {
        // SAFETY: completing the IRP once.
        return unsafe { finish_write(h, irp, STATUS_INVALID_DEVICE_STATE) };
    };
    let m = match filter::acquire_module_for_write(id) {
        filter::Acquired::Module(m) => m,
        filter::Acquired::NotRunning => {
            // SAFETY: completing the IRP once.
            return unsafe { finish_write(h, irp, NDIS_STATUS_PAUSED.into()) };
        }
        filter::Acquired::Gone => {
            h.unbind();
            // SAFETY: completing the IRP once.
            return unsafe { finish_write(h, irp, STATUS_NO_SUCH_DEVICE) };
        }
    };
    // SAFETY: the module is kept alive by the datapath reference `acquire_module_for_write` took, which
    // `inject::write` takes over; the IRP is ours and not yet pended.
    match unsafe { inject::write(m, h, irp, &buf) } {
        Written::Pended => STATUS_PENDING,
        // SAFETY: not pended: completed once here.
        Written::Empty => unsafe { finish_write(h, irp, STATUS_SUCCESS) },
        // SAFETY: as above.
        Written::Refused(r) => unsafe { finish_write(h, irp, r.status()) },
    }
}

/// The buffer of direct-I/O request `irp` of `len` bytes, mapped into system space: no MDL
/// for a zero-length transfer ("Errors in Direct I/O"), `STATUS_INSUFFICIENT_RESOURCES` when
/// the pages cannot be mapped now (`MmGetSystemAddressForMdlSafe` fails under low resources),
/// `STATUS_INVALID_PARAMETER` if the MDL describes fewer bytes than the request.
///
/// # Safety
/// `irp` is a read or write IRP of ours, not yet completed; the mapping lives until it is.
pub(crate) unsafe fn user_buffer(irp: *mut IRP, len: usize) -> Result<inject::UserBuffer, NTSTATUS> {
    if len == 0 {
        return Ok(inject::UserBuffer::EMPTY);
    }
    // SAFETY: our IRP.
    let mdl = unsafe { (*irp).MdlAddress };
    if mdl.is_null() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    // SAFETY: the I/O manager's MDL of the request's locked pages.
    if (unsafe { (*mdl).ByteCount } as usize) < len {
        return Err(STATUS_INVALID_PARAMETER);
    }
    // SAFETY: as above: a locked MDL, mapped (or mapped now) into system space.
    let va = unsafe { crate::frame::mdl_address(mdl) };
    if va.is_null() {
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    }
    // SAFETY: the mapping holds the request's `len` bytes until the IRP is completed.
    Ok(unsafe { inject::UserBuffer::new(va, len) })
}

/// Completes a write that sent nothing.
///
/// # Safety
/// As for [`complete_irp`].
unsafe fn finish_write(h: &OpenHandle, irp: *mut IRP, status: NTSTATUS) -> NTSTATUS {
    h.counters.write_done(status.is_success());
    // SAFETY: caller's contract.
    unsafe { complete_irp(irp, status, 0) }
}

/// IRP_MJ_DEVICE_CONTROL: see `ioctl.rs`.
unsafe extern "win64" fn dispatch_device_control(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: an IRP for our device.
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: as above.
    let Some(h) = (unsafe { handle_of(sl) }) else {
        // SAFETY: completing the IRP once.
        return unsafe { complete_irp(irp, STATUS_INVALID_DEVICE_REQUEST, 0) };
    };
    // SAFETY: the current stack location of our IRP.
    let params = unsafe { &(*sl).Parameters };
    // SAFETY: a device-control IRP: the DeviceIoControl view is live.
    let p = unsafe { params.DeviceIoControl };
    if p.IoControlCode == abi::IOCTL_RXINJECT_OID_REQUEST {
        // SAFETY: a METHOD_BUFFERED device-control IRP of `h` with these lengths.
        return unsafe {
            crate::oidreq::request(
                h,
                irp,
                p.InputBufferLength as usize,
                p.OutputBufferLength as usize,
            )
        };
    }
    // SAFETY: a device-control IRP of ours.
    let (status, information) = unsafe { crate::ioctl::handle(h, irp, sl) };
    // SAFETY: completing the IRP once.
    unsafe { complete_irp(irp, status, information) }
}
