//! The I/O manager: control devices registered with `NdisRegisterDeviceEx`, opens, IRPs with
//! system buffers, dispatch, completion, cancellation, cleanup and close, checking the D rules
//! the way Driver Verifier's I/O verification does.

use std::mem::size_of;

use ndis_sys::*;

use crate::mem::Block;
use crate::rules::Rule;
use crate::tls;
use crate::world::{World, lock};

/// A pattern the simulated NDIS keeps in its own device extension (`DeviceObject->
/// DeviceExtension`); a driver that writes there instead of its reserved extension breaks D1.
const NDIS_EXTENSION_PATTERN: u8 = 0xA5;
const NDIS_EXTENSION_LEN: usize = 64;
const IO_TYPE_DEVICE: i16 = 3;
const IO_TYPE_FILE: i16 = 5;
const IO_TYPE_IRP: i16 = 6;
/// `IoStatus.Status` of a fresh IRP: lets D4 see a dispatch routine that never set it.
const STATUS_NOT_SET: NTSTATUS = NTSTATUS(0x5A5A_5A5Au32 as i32);

pub(crate) struct DeviceRec {
    pub handle: usize,
    pub object: Block,
    pub ndis_extension: Block,
    pub reserved_extension: Option<Block>,
    pub dispatch: [PDRIVER_DISPATCH; IRP_MJ_COUNT],
    pub name: String,
    pub symbolic: String,
    pub sddl: String,
}

struct FileRec {
    /// The FILE_OBJECT's memory.
    #[allow(dead_code)]
    block: Block,
    device: usize,
    /// Which open this is (a file object's address may be reused by a later open).
    id: u64,
    /// The client's handle is open (from the create's success): once it is closed (by whichever thread of the
    /// process, or by the process's exit) the handle is invalid, and nothing more reaches the
    /// driver through it but the cleanup and the close.
    handle_open: bool,
    /// Requests through the handle that have looked it up but are not dispatched yet: each
    /// holds a reference on the file object, as the I/O manager's does from the system
    /// call's handle lookup on, so the close waits for them too ("IRP_MJ_CLOSE": all
    /// outstanding requests have completed first).
    issuing: u32,
}

/// What kind of request an IRP carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrpKind {
    Create,
    Cleanup,
    Close,
    Read,
    Write,
    DeviceControl,
}

impl IrpKind {
    fn major(self) -> u8 {
        match self {
            IrpKind::Create => IRP_MJ_CREATE,
            IrpKind::Cleanup => IRP_MJ_CLEANUP,
            IrpKind::Close => IRP_MJ_CLOSE,
            IrpKind::Read => IRP_MJ_READ,
            IrpKind::Write => IRP_MJ_WRITE,
            IrpKind::DeviceControl => IRP_MJ_DEVICE_CONTROL,
        }
    }

    fn dispatch_name(self) -> &'static str {
        match self {
            IrpKind::Create => "DispatchCreate",
            IrpKind::Cleanup => "DispatchCleanup",
            IrpKind::Close => "DispatchClose",
            IrpKind::Read => "DispatchRead",
            IrpKind::Write => "DispatchWrite",
            IrpKind::DeviceControl => "DispatchDeviceControl",
        }
    }
}

/// How an IRP ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoResult {
    pub status: NTSTATUS,
    pub information: usize,
    /// For reads and device controls: the `information` bytes the driver returned.
    pub output: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum IrpState {
    Dispatching,
    Pending,
    Completed(IoResult),
}

struct IrpRec {
    id: u64,
    kind: IrpKind,
    file: usize,
    /// The IRP and its stack location.
    block: Block,
    system_buffer: Option<Block>,
    /// A read or write to a DO_DIRECT_IO device: the caller's buffer (the same memory the
    /// caller's other threads can write while the driver reads it) and the locked MDL
    /// describing it (`Irp->MdlAddress`).
    direct: Option<Direct>,
    /// A read or write to a device with neither buffering flag: the caller's buffer, at
    /// `Irp->UserBuffer` (the driver must probe and lock it itself, D12).
    neither_buffer: Option<Block>,
    /// Read/write length, or the IOCTL's output length.
    length: usize,
    /// The IOCTL's transfer method (device controls only).
    method: u32,
    /// A read or write to a device with neither DO_BUFFERED_IO nor DO_DIRECT_IO (D12).
    neither_io: bool,
    state: IrpState,
    completions: u32,
    cancel_requested: bool,
    cancel_routine_ran: bool,
    /// A wait for it was already reported as a hang (D3), once.
    hung: bool,
}

/// The user buffer of a direct-I/O request and its MDL.
struct Direct {
    user: Block,
    mdl: Block,
}

impl Direct {
    /// Locks `user` for a transfer of `length` (> 0) bytes, as the I/O manager does for a
    /// DO_DIRECT_IO device ("Using Direct I/O"): one MDL of the probed and locked pages, not
    /// mapped into system space (the driver maps it: `MmGetSystemAddressForMdlSafe`).
    fn new(user: Block, length: usize, read: bool) -> Direct {
        let va = user.addr();
        let pages = ((va & 0xFFF) + length).div_ceil(0x1000);
        let mdl = Block::new(size_of::<MDL>() + pages * size_of::<u64>(), 0);
        let m = mdl.ptr::<MDL>();
        // SAFETY: a zeroed block holding an MDL and its page array.
        unsafe {
            (*m).Size = (size_of::<MDL>() + pages * size_of::<u64>()) as i16;
            (*m).MdlFlags = MDL_PAGES_LOCKED | if read { MDL_WRITE_OPERATION } else { 0 };
            (*m).StartVa = (va & !0xFFF) as PVOID;
            (*m).ByteOffset = (va & 0xFFF) as u32;
            (*m).ByteCount = length as u32;
        }
        Direct { user, mdl }
    }
}

#[derive(Default)]
pub(crate) struct IoTable {
    pub devices: Vec<DeviceRec>,
    files: crate::AddrMap<FileRec>,
    irps: crate::AddrMap<IrpRec>,
    next_id: u64,
    next_file: u64,
    /// Thread token holding the cancel spin lock, and the IRQL to restore.
    cancel_lock: Option<(std::thread::ThreadId, KIRQL)>,
    pub irps_completed: u64,
    /// IRPs a cancel reached while they were pending or dispatching, ever.
    pub irps_cancelled: u64,
    /// Memory of IRPs whose results were collected, kept mapped for a while (a driver that
    /// touches a completed IRP corrupts nothing real).
    retired: Option<crate::mem::Quarantine>,
}

/// An IRP a test issued (pending or completed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irp {
    pub(crate) addr: usize,
    pub(crate) id: u64,
}

/// An open handle of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileRef {
    pub(crate) addr: usize,
    pub(crate) id: u64,
}

// ---- registration ---------------------------------------------------------------------------

/// SIDs the default SDDL may grant: SYSTEM and built-in Administrators (rule D9).
const ALLOWED_SIDS: &[&str] = &["SY", "BA"];

/// Checks an SDDL string: a protected DACL whose ACEs allow only SYSTEM and Administrators.
fn check_sddl(sddl: &str) -> Result<(), String> {
    let dacl = sddl
        .strip_prefix("D:")
        .ok_or_else(|| format!("\"{sddl}\" has no DACL"))?;
    let aces = dacl.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let mut count = 0;
    for ace in aces.split(')').filter(|a| !a.is_empty()) {
        let fields: Vec<&str> = ace.trim_start_matches('(').split(';').collect();
        if fields.len() != 6 {
            return Err(format!("malformed ACE \"{ace}\" in \"{sddl}\""));
        }
        if fields[0] == "A" && !ALLOWED_SIDS.contains(&fields[5]) {
            return Err(format!("\"{sddl}\" grants access to {}", fields[5]));
        }
        count += 1;
    }
    if count == 0 {
        return Err(format!("\"{sddl}\" grants nobody access"));
    }
    Ok(())
}

/// `NdisRegisterDeviceEx`.
pub(crate) fn register_device(
    w: &World,
    ndis_handle: NDIS_HANDLE,
    attrs: *mut NDIS_DEVICE_OBJECT_ATTRIBUTES,
    out_device: *mut *mut DEVICE_OBJECT,
    out_handle: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const F: &str = "NdisRegisterDeviceEx";
    w.require_passive(F);
    w.require_no_locks(F);
    let driver_handle = lock(&w.driver).as_ref().map(|d| d.handle);
    if driver_handle != Some(ndis_handle as usize) {
        w.violate(
            Rule::D1,
            format!("{F}: {:#x} is not the filter driver handle", ndis_handle as usize),
        );
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    if attrs.is_null() || out_device.is_null() || out_handle.is_null() {
        w.violate(Rule::D1, format!("{F}: NULL argument"));
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the driver's attributes, valid for the call.
    let a = unsafe { &*attrs };
    if a.Header.Type != NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES
        || a.Header.Revision != NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1
        || a.Header.Size < NDIS_SIZEOF_DEVICE_OBJECT_ATTRIBUTES_REVISION_1
    {
        w.violate(Rule::D1, format!("{F}: bad attributes header {:?}", a.Header));
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    let read = |s: *mut NDIS_STRING| -> String {
        if s.is_null() {
            String::new()
        } else {
            // SAFETY: a valid NDIS_STRING of the driver.
            unsafe { crate::lifecycle::read_unicode(&*s) }
        }
    };
    let name = read(a.DeviceName);
    let symbolic = read(a.SymbolicName);
    let sddl = read(a.DefaultSDDLString.cast_mut());
    if name.is_empty() || a.MajorFunctions.is_null() {
        w.violate(
            Rule::D1,
            format!("{F}: a device name and a dispatch table are required"),
        );
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    if sddl.is_empty() {
        w.violate(
            Rule::D9,
            format!("{F}: no DefaultSDDLString: the device would be open to everyone"),
        );
    } else if let Err(e) = check_sddl(&sddl) {
        w.violate(Rule::D9, format!("{F}: {e}"));
    }
    let mut dispatch: [PDRIVER_DISPATCH; IRP_MJ_COUNT] = [None; IRP_MJ_COUNT];
    // SAFETY: the driver passes IRP_MJ_COUNT entries.
    dispatch.copy_from_slice(unsafe { std::slice::from_raw_parts(a.MajorFunctions, IRP_MJ_COUNT) });
    let object = Block::new(size_of::<DEVICE_OBJECT>(), 0);
    let ndis_extension = Block::new(NDIS_EXTENSION_LEN, NDIS_EXTENSION_PATTERN);
    let reserved_extension = (a.ExtensionSize > 0).then(|| Block::new(a.ExtensionSize as usize, 0));
    let driver_object = lock(&w.driver_object).unwrap_or(0);
    let d = object.ptr::<DEVICE_OBJECT>();
    // SAFETY: a zeroed block of DEVICE_OBJECT size.
    unsafe {
        (*d).Type = IO_TYPE_DEVICE;
        (*d).Size = size_of::<DEVICE_OBJECT>() as u16;
        (*d).DriverObject = driver_object as *mut DRIVER_OBJECT;
        (*d).DeviceExtension = ndis_extension.ptr();
        (*d).DeviceType = FILE_DEVICE_NETWORK;
        (*d).StackSize = 1;
    }
    let handle = lock(&w.objs).new_handle(crate::world::HandleKind::Device);
    // SAFETY: valid out parameters.
    unsafe {
        *out_device = d;
        *out_handle = handle as NDIS_HANDLE;
    }
    lock(&w.io).devices.push(DeviceRec {
        handle,
        object,
        ndis_extension,
        reserved_extension,
        dispatch,
        name,
        symbolic,
        sddl,
    });
    NDIS_STATUS_SUCCESS
}

/// `NdisDeregisterDeviceEx`.
pub(crate) fn deregister_device(w: &World, handle: NDIS_HANDLE) {
    const F: &str = "NdisDeregisterDeviceEx";
    w.require_passive(F);
    w.require_no_locks(F);
    let mut io = lock(&w.io);
    let Some(pos) = io.devices.iter().position(|d| d.handle == handle as usize) else {
        drop(io);
        w.violate(
            Rule::D2,
            format!("{F}({:#x}): not a registered device", handle as usize),
        );
        return;
    };
    let dev = io.devices.remove(pos);
    drop(io);
    // SAFETY: the extension block is ours and NDIS_EXTENSION_LEN bytes long.
    let ext = unsafe { std::slice::from_raw_parts(dev.ndis_extension.ptr::<u8>(), NDIS_EXTENSION_LEN) };
    if ext.iter().any(|&b| b != NDIS_EXTENSION_PATTERN) {
        w.violate(
            Rule::D1,
            "the driver wrote into DeviceObject->DeviceExtension, which belongs to NDIS (use NdisGetDeviceReservedExtension)",
        );
    }
    lock(&w.objs).kill_handle(handle as usize);
}

/// `NdisGetDeviceReservedExtension`.
pub(crate) fn reserved_extension(w: &World, device: *mut DEVICE_OBJECT) -> PVOID {
    let io = lock(&w.io);
    io.devices
        .iter()
        .find(|d| d.object.addr() == device as usize)
        .and_then(|d| d.reserved_extension.as_ref().map(|b| b.ptr()))
        .unwrap_or(std::ptr::null_mut())
}

// ---- IRPs -------------------------------------------------------------------------------------

/// What a dispatch routine is given.
pub(crate) struct Request<'a> {
    pub kind: IrpKind,
    /// Write data, or IOCTL input.
    pub input: &'a [u8],
    /// Read length, or IOCTL output length.
    pub output_len: usize,
    pub ioctl_code: u32,
}

impl Request<'_> {
    /// A request with no data: create, cleanup, close.
    pub fn bare(kind: IrpKind) -> Request<'static> {
        Request {
            kind,
            input: &[],
            output_len: 0,
            ioctl_code: 0,
        }
    }
}

fn device_of(
    w: &World,
    file: FileRef,
    kind: IrpKind,
) -> Option<(usize, [PDRIVER_DISPATCH; IRP_MJ_COUNT], u32)> {
    let mut io = lock(&w.io);
    let rec = io.files.get(&file.addr).filter(|f| f.id == file.id)?;
    // Before the handle exists only the create reaches the driver; after it is closed only
    // the cleanup and the close.
    if !rec.handle_open && through_handle(kind) {
        return None;
    }
    let dev = rec.device;
    let d = io.devices.iter().find(|d| d.object.addr() == dev)?;
    // SAFETY: our device object block.
    let flags = unsafe { (*d.object.ptr::<DEVICE_OBJECT>()).Flags };
    let dispatch = d.dispatch;
    // From here the request references the file object, as the I/O manager's does from the
    // system call's handle lookup: a close on another thread now waits for it
    // (`unreference` once its IRP is in the table, where the close finds it).
    if through_handle(kind)
        && let Some(f) = io.files.get_mut(&file.addr)
    {
        f.issuing += 1;
    }
    Some((dev, dispatch, flags))
}

/// Whether a request of `kind` comes through the client's handle (the create makes the
/// handle; the cleanup and the close come from its closing).
fn through_handle(kind: IrpKind) -> bool {
    !matches!(kind, IrpKind::Create | IrpKind::Cleanup | IrpKind::Close)
}

/// The end of `device_of`'s reference on `file`: the IRP is in the table now.
fn unreference(io: &mut IoTable, file: usize, kind: IrpKind) {
    if through_handle(kind)
        && let Some(f) = io.files.get_mut(&file)
    {
        f.issuing = f.issuing.saturating_sub(1);
    }
}

/// Builds an IRP for `file`, calls the driver's dispatch routine, and checks the result
/// (D4, D8). Returns the IRP and what the dispatch routine returned; `None` when the request
/// cannot reach the driver (the handle is closed, or the device is gone).
pub(crate) fn issue(w: &World, fref: FileRef, req: &Request<'_>) -> Option<(Irp, NTSTATUS)> {
    let _busy = w.busy();
    let (dev, dispatch, flags) = device_of(w, fref, req.kind)?;
    let file = fref.addr;
    let at = w.cfg.hostile.close_at_lookup;
    if at != 0
        && through_handle(req.kind)
        && w.lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == at
        && let Some(arc) = crate::world::current()
    {
        // The client's other thread closes the handle now: this request holds the file
        // object, so the close must wait for it (`close`), which it does on that thread.
        crate::world::on_another_processor(&arc, |w2| crate::world::close_every_handle(w2));
    }
    // The I/O manager's own routine answers for a driver without one.
    let routine = dispatch[usize::from(req.kind.major())].unwrap_or(invalid_device_request);
    let method = req.ioctl_code & 3;
    let block = Block::new(size_of::<IRP>() + size_of::<IO_STACK_LOCATION>(), 0);
    let irp = block.ptr::<IRP>();
    let sl = (block.addr() + size_of::<IRP>()) as *mut IO_STACK_LOCATION;
    let mut system_buffer = None;
    let mut direct = None;
    let mut neither_buffer = None;
    let mut length = 0usize;
    match req.kind {
        IrpKind::Read | IrpKind::Write => {
            length = if req.kind == IrpKind::Write {
                req.input.len()
            } else {
                req.output_len
            };
            // The caller's buffer (buffered I/O: the I/O manager's copy of it).
            let b = Block::new(length, 0);
            if req.kind == IrpKind::Write {
                // SAFETY: the block holds `length` bytes.
                unsafe { std::ptr::copy_nonoverlapping(req.input.as_ptr(), b.ptr::<u8>(), length) };
            }
            if flags & DO_BUFFERED_IO != 0 {
                system_buffer = Some(b);
            } else if flags & DO_DIRECT_IO != 0 && length > 0 {
                // No MDL for a zero-length transfer: `MdlAddress` stays NULL ("Errors in
                // Direct I/O").
                let d = Direct::new(b, length, req.kind == IrpKind::Read);
                lock(&w.objs).mdls.insert(
                    d.mdl.addr(),
                    crate::nbl::MdlRec {
                        block: None,
                        by_filter: false,
                    },
                );
                direct = Some(d);
            } else if flags & DO_DIRECT_IO == 0 {
                neither_buffer = Some(b);
            }
        }
        IrpKind::DeviceControl => {
            length = req.output_len;
            if method == METHOD_BUFFERED {
                let b = Block::new(req.input.len().max(req.output_len), 0);
                // SAFETY: the block holds at least the input.
                unsafe { std::ptr::copy_nonoverlapping(req.input.as_ptr(), b.ptr::<u8>(), req.input.len()) };
                system_buffer = Some(b);
            }
        }
        _ => {}
    }
    let id = {
        let mut io = lock(&w.io);
        io.next_id += 1;
        io.next_id
    };
    // SAFETY: a zeroed block holding an IRP and one stack location.
    unsafe {
        (*irp).Type = IO_TYPE_IRP;
        (*irp).Size = (size_of::<IRP>() + size_of::<IO_STACK_LOCATION>()) as u16;
        (*irp).StackCount = 1;
        (*irp).CurrentLocation = 1;
        (*irp).IoStatus.Status = STATUS_NOT_SET;
        (*irp).SystemBuffer = system_buffer.as_ref().map_or(std::ptr::null_mut(), |b| b.ptr());
        (*irp).MdlAddress = direct.as_ref().map_or(std::ptr::null_mut(), |d| d.mdl.ptr());
        (*irp).UserBuffer = neither_buffer.as_ref().map_or(std::ptr::null_mut(), |b| b.ptr());
        (*irp).Tail.CurrentStackLocation = sl;
        (*irp).Tail.OriginalFileObject = file as *mut FILE_OBJECT;
        (*sl).MajorFunction = req.kind.major();
        (*sl).DeviceObject = dev as *mut DEVICE_OBJECT;
        (*sl).FileObject = file as *mut FILE_OBJECT;
        match req.kind {
            IrpKind::Read | IrpKind::Write => {
                (*sl).Parameters.Write = IO_READ_WRITE_PARAMETERS {
                    Length: length as u32,
                    _Pad0: 0,
                    Key: 0,
                    Flags: 0,
                    ByteOffset: 0,
                };
            }
            IrpKind::DeviceControl => {
                (*sl).Parameters.DeviceIoControl = IO_DEVICE_CONTROL_PARAMETERS {
                    OutputBufferLength: req.output_len as u32,
                    _Pad0: 0,
                    InputBufferLength: req.input.len() as u32,
                    _Pad1: 0,
                    IoControlCode: req.ioctl_code,
                    _Pad2: 0,
                    Type3InputBuffer: req.input.as_ptr().cast_mut().cast(),
                };
            }
            _ => {}
        }
    }
    let addr = irp as usize;
    let mut io = lock(&w.io);
    // In the table, where a close looks for what it waits for: the reference of the handle
    // lookup passes to the IRP.
    unreference(&mut io, file, req.kind);
    io.irps.insert(
        addr,
        IrpRec {
            id,
            kind: req.kind,
            file,
            block,
            system_buffer,
            direct,
            neither_buffer,
            length,
            method,
            neither_io: matches!(req.kind, IrpKind::Read | IrpKind::Write)
                && flags & (DO_BUFFERED_IO | DO_DIRECT_IO) == 0,
            state: IrpState::Dispatching,
            completions: 0,
            cancel_requested: false,
            cancel_routine_ran: false,
            hung: false,
        },
    );
    drop(io);
    let returned = w.call_driver(req.kind.dispatch_name(), PASSIVE_LEVEL, || {
        // SAFETY: the driver's dispatch routine with its device and a valid IRP.
        unsafe { routine(dev as *mut DEVICE_OBJECT, irp) }
    });
    // SAFETY: our IRP's stack location.
    let marked = unsafe { (*sl).Control } & SL_PENDING_RETURNED != 0;
    let mut io = lock(&w.io);
    let Some(rec) = io.irps.get_mut(&addr) else {
        // Completed inside the dispatch routine and already collected by a close on another
        // thread (the file's last reference went with the completion): nothing left to check.
        return Some((Irp { addr, id }, returned));
    };
    let what = format!("{:?} IRP #{}", req.kind, rec.id);
    let mut problems = Vec::new();
    match &rec.state {
        IrpState::Completed(r) => {
            if returned == STATUS_PENDING && !marked {
                problems.push(format!(
                    "{what}: the dispatch routine returned STATUS_PENDING without IoMarkIrpPending"
                ));
            } else if returned != STATUS_PENDING && returned != r.status {
                problems.push(format!(
                    "{what}: the dispatch routine returned {returned:?} but completed the IRP with {:?}",
                    r.status
                ));
            }
            if returned != STATUS_PENDING && marked {
                problems.push(format!(
                    "{what}: marked pending but the dispatch routine returned {returned:?}"
                ));
            }
        }
        IrpState::Dispatching => {
            if returned != STATUS_PENDING {
                problems.push(format!(
                    "{what}: the dispatch routine returned {returned:?} without completing the IRP"
                ));
            } else if !marked {
                problems.push(format!(
                    "{what}: returned STATUS_PENDING without IoMarkIrpPending"
                ));
            }
            rec.state = IrpState::Pending;
        }
        IrpState::Pending => {}
    }
    drop(io);
    for p in problems {
        w.violate(Rule::D4, p);
    }
    Some((Irp { addr, id }, returned))
}

/// `NT_ERROR(status)`: 0xC0000000 and above. A warning (0x80000000-0xBFFFFFFF, such as
/// STATUS_BUFFER_OVERFLOW) still carries output ("Using NTSTATUS Values").
fn is_error(status: NTSTATUS) -> bool {
    status.code() >= 0xC000_0000
}

/// An IRP the I/O manager failed itself before any driver saw it (the handle is closed, or
/// the device is gone).
pub(crate) fn failed(w: &World, file: usize, kind: IrpKind, status: NTSTATUS) -> Irp {
    let block = Block::new(size_of::<IRP>(), 0);
    let addr = block.addr();
    let mut io = lock(&w.io);
    io.next_id += 1;
    let id = io.next_id;
    io.irps.insert(
        addr,
        IrpRec {
            id,
            kind,
            file,
            block,
            system_buffer: None,
            direct: None,
            neither_buffer: None,
            length: 0,
            method: 0,
            neither_io: false,
            state: IrpState::Completed(IoResult {
                status,
                information: 0,
                output: Vec::new(),
            }),
            completions: 1,
            cancel_requested: false,
            cancel_routine_ran: false,
            hung: false,
        },
    );
    Irp { addr, id }
}

/// The I/O manager's dispatch routine for the major functions a driver leaves empty.
unsafe extern "win64" fn invalid_device_request(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the IRP being dispatched.
    unsafe {
        (*irp).IoStatus.Status = STATUS_INVALID_DEVICE_REQUEST;
        (*irp).IoStatus.Information = 0;
    }
    complete(&crate::world::world(), irp);
    STATUS_INVALID_DEVICE_REQUEST
}

/// `IofCompleteRequest`.
pub(crate) fn complete(w: &World, irp: *mut IRP) {
    const F: &str = "IoCompleteRequest";
    let irql = tls::irql();
    if irql > DISPATCH_LEVEL {
        w.violate(Rule::D3, format!("{F} at IRQL {irql} (> DISPATCH_LEVEL)"));
    }
    w.require_no_locks_for(F, Rule::L6);
    let addr = irp as usize;
    let mut io = lock(&w.io);
    let Some(rec) = io.irps.get_mut(&addr) else {
        drop(io);
        w.violate(
            Rule::D3,
            format!("{F}({addr:#x}): not an IRP the I/O manager issued (or long completed)"),
        );
        return;
    };
    rec.completions += 1;
    let what = format!("{:?} IRP #{}", rec.kind, rec.id);
    if rec.completions > 1 {
        drop(io);
        w.violate(
            Rule::D3,
            format!("{F}: {what} completed twice (bug check 0x44, MULTIPLE_IRP_COMPLETE_REQUESTS)"),
        );
        return;
    }
    let mut problems: Vec<(Rule, String)> = Vec::new();
    // SAFETY: our live IRP.
    let (status, information, cancel_routine) = unsafe {
        (
            (*irp).IoStatus.Status,
            (*irp).IoStatus.Information,
            (*irp).CancelRoutine,
        )
    };
    if status == STATUS_PENDING {
        problems.push((Rule::D4, format!("{what} completed with STATUS_PENDING")));
    }
    if status == STATUS_NOT_SET {
        problems.push((
            Rule::D4,
            format!("{what} completed without setting IoStatus.Status"),
        ));
    }
    if cancel_routine.is_some() {
        problems.push((Rule::D5, format!("{what} completed with its cancel routine still set (clear it with IoSetCancelRoutine(NULL) first)")));
    }
    // With an error status the I/O manager copies nothing back, and Information means
    // nothing; with a success or a warning status (STATUS_BUFFER_OVERFLOW) it copies
    // Information bytes (D7, D8).
    let error = is_error(status);
    match rec.kind {
        IrpKind::Read | IrpKind::Write if rec.neither_io && status.is_success() => problems.push((
            Rule::D12,
            format!("{what} succeeded on a device with neither DO_BUFFERED_IO nor DO_DIRECT_IO: the driver itself must probe and lock the user buffer"),
        )),
        _ => {}
    }
    match rec.kind {
        IrpKind::Read | IrpKind::Write if !error && information > rec.length => problems.push((
            Rule::D8,
            format!("{what}: Information {information} exceeds the request's length {}", rec.length),
        )),
        IrpKind::DeviceControl if rec.method == METHOD_NEITHER && status.is_success() => problems.push((
            Rule::D11,
            format!("{what}: a METHOD_NEITHER IOCTL succeeded (its buffers are raw user addresses; use METHOD_BUFFERED or DIRECT)"),
        )),
        IrpKind::DeviceControl if !error && information > rec.length => problems.push((
            Rule::D7,
            format!("{what}: Information {information} exceeds the output buffer's {} bytes", rec.length),
        )),
        _ => {}
    }
    if rec.cancel_routine_ran && status != STATUS_CANCELLED {
        problems.push((
            Rule::D5,
            format!("{what} was cancelled by its cancel routine but completed with {status:?}"),
        ));
    }
    let caller_buffer = rec
        .direct
        .as_ref()
        .map(|d| &d.user)
        .or(rec.neither_buffer.as_ref())
        .or(rec.system_buffer.as_ref());
    let output = match (rec.kind, caller_buffer) {
        _ if error => Vec::new(),
        (IrpKind::Read | IrpKind::DeviceControl, Some(b)) => {
            let n = information.min(rec.length).min(b.size());
            // SAFETY: the system buffer block holds at least `n` bytes.
            unsafe { std::slice::from_raw_parts(b.ptr::<u8>(), n) }.to_vec()
        }
        _ => Vec::new(),
    };
    rec.state = IrpState::Completed(IoResult {
        status,
        information,
        output,
    });
    io.irps_completed += 1;
    drop(io);
    for (r, p) in problems {
        w.violate(r, p);
    }
}

/// Removes the IRP at `addr` from the table and quarantines its memory (the IRP, its system
/// buffer, its MDL and user buffer); returns the state it ended in, and the MDL the caller
/// must forget (outside the I/O lock).
fn retire(io: &mut IoTable, addr: usize) -> (IrpState, Option<usize>) {
    let IrpRec {
        block,
        system_buffer,
        direct,
        neither_buffer,
        state,
        ..
    } = io.irps.remove(&addr).expect("present");
    let q = io
        .retired
        .get_or_insert_with(|| crate::mem::Quarantine::new(1024));
    q.put(block);
    for b in [system_buffer, neither_buffer].into_iter().flatten() {
        q.put(b);
    }
    // The I/O manager unmaps, unlocks and frees the MDL of a completed request.
    let mdl = direct.map(|d| {
        let addr = d.mdl.addr();
        q.put(d.mdl);
        q.put(d.user);
        addr
    });
    (state, mdl)
}

/// Collects the result of a completed IRP and retires it (its memory goes to quarantine; a
/// later completion of it is reported as completing an unknown IRP, D3).
pub(crate) fn collect(w: &World, irp: Irp) -> Option<IoResult> {
    let mut io = lock(&w.io);
    let done = io
        .irps
        .get(&irp.addr)
        .filter(|r| r.id == irp.id)
        .is_some_and(|r| matches!(r.state, IrpState::Completed(_)));
    if !done {
        return None;
    }
    let (state, mdl) = retire(&mut io, irp.addr);
    drop(io);
    if let Some(m) = mdl {
        lock(&w.objs).mdls.remove(&m);
    }
    match state {
        IrpState::Completed(r) => Some(r),
        _ => None,
    }
}

/// The result of an IRP, once completed.
pub(crate) fn result(w: &World, irp: Irp) -> Option<IoResult> {
    let io = lock(&w.io);
    match io
        .irps
        .get(&irp.addr)
        .filter(|r| r.id == irp.id)
        .map(|r| &r.state)
    {
        Some(IrpState::Completed(r)) => Some(r.clone()),
        _ => None,
    }
}

/// Runs the machine until `irp` completes. An IRP still pending when nothing is left in the
/// machine that could complete it is the seed's hang (D3).
pub(crate) fn wait(w: &World, irp: Irp) -> Option<IoResult> {
    if wait_done(w, irp) {
        // (None if another thread collected it meanwhile.)
        return result(w, irp);
    }
    None
}

/// Whether `irp` has completed (or was collected already, by another thread).
fn done(w: &World, irp: Irp) -> bool {
    let io = lock(&w.io);
    io.irps
        .get(&irp.addr)
        .filter(|r| r.id == irp.id)
        .is_none_or(|r| matches!(r.state, IrpState::Completed(_)))
}

/// Runs the machine until `irp` is done; false (and D3, once) if it never is.
fn wait_done(w: &World, irp: Irp) -> bool {
    if w.settle(|| done(w, irp)) {
        return true;
    }
    let (kind, reported) = {
        let mut io = lock(&w.io);
        match io.irps.get_mut(&irp.addr) {
            Some(r) => (Some(r.kind), std::mem::replace(&mut r.hung, true)),
            None => (None, false),
        }
    };
    if !reported {
        let kind = kind.map_or_else(|| "An".to_string(), |k| format!("{k:?}"));
        w.violate(
            Rule::D3,
            format!(
                "{kind} IRP #{} was never completed, and nothing is left in the machine that could complete it: the thread waiting for it hangs (and the process cannot exit)",
                irp.id
            ),
        );
    }
    false
}

/// The racing writer ([`crate::Hostile::scribble_at`]): overwrites the user buffer of every
/// direct-I/O write not yet completed with random bytes from the machine's seed.
pub(crate) fn scribble(w: &World) {
    let mut rng = crate::Rng::new(w.cfg.seed ^ 0x5C81_B61E);
    let io = lock(&w.io);
    for r in io.irps.values() {
        let Some(d) = r.direct.as_ref().filter(|_| r.kind == IrpKind::Write) else {
            continue;
        };
        if matches!(r.state, IrpState::Completed(_)) {
            continue;
        }
        // SAFETY: the user buffer block holds `length` bytes; the driver may be reading it
        // (through its own mapping) on this very thread, between two of its calls.
        let bytes = unsafe { std::slice::from_raw_parts_mut(d.user.ptr::<u8>(), r.length) };
        match lock(&w.racing_writer).as_ref() {
            Some(rewrite) => rewrite(bytes),
            None => bytes.iter_mut().for_each(|b| *b = rng.next() as u8),
        }
        w.scribbled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if std::env::var_os("RXSIM_TRACE").is_some() {
            eprintln!(
                "ndis-sim: racing writer: {} bytes of write IRP #{} overwritten",
                r.length, r.id
            );
        }
    }
}

/// Requests cancellation of an IRP, as `IoCancelIrp` does.
pub(crate) fn cancel(w: &World, irp: Irp) {
    let _busy = w.busy();
    let (routine, dev) = {
        let mut io = lock(&w.io);
        let Some(rec) = io.irps.get_mut(&irp.addr).filter(|r| r.id == irp.id) else {
            return;
        };
        // An IRP still in its dispatch routine can be cancelled too (another thread's
        // CancelIoEx): the flag is set, and a cancel routine already set is called.
        if !matches!(rec.state, IrpState::Pending | IrpState::Dispatching) {
            return;
        }
        rec.cancel_requested = true;
        let p = irp.addr as *mut IRP;
        // SAFETY: our live IRP.
        unsafe { (*p).Cancel = TRUE };
        // SAFETY: as above; the swap is what IoCancelIrp does.
        let routine = unsafe { IoSetCancelRoutine(p, None) };
        if routine.is_some() {
            rec.cancel_routine_ran = true;
        }
        io.irps_cancelled += 1;
        // SAFETY: our IRP's stack location.
        let dev = unsafe { (*(*p).Tail.CurrentStackLocation).DeviceObject };
        (routine, dev)
    };
    let Some(routine) = routine else { return };
    // The cancel routine runs holding the cancel spin lock, at DISPATCH_LEVEL.
    let previous = tls::irql();
    lock(&w.io).cancel_lock = Some((std::thread::current().id(), previous));
    // SAFETY: our IRP.
    unsafe { (*(irp.addr as *mut IRP)).CancelIrql = previous };
    w.call_driver_returning("CancelRoutine", DISPATCH_LEVEL, previous, || {
        // SAFETY: the driver's cancel routine with its device and IRP.
        unsafe { routine(dev, irp.addr as *mut IRP) }
    });
    let held = lock(&w.io).cancel_lock.take();
    if held.is_some() {
        w.violate(
            Rule::D5,
            "the cancel routine returned without releasing the cancel spin lock (IoReleaseCancelSpinLock)",
        );
    }
}

/// `IoAcquireCancelSpinLock`.
pub(crate) fn acquire_cancel_lock(w: &World, out: *mut KIRQL) {
    w.require_max_dispatch("IoAcquireCancelSpinLock");
    let me = std::thread::current().id();
    let previous = tls::irql();
    // Raised before spinning, as the real acquire does: the spinner holds its processor, and
    // a thread waiting for a processor holds nothing (see locks.rs).
    tls::set_irql(previous.max(DISPATCH_LEVEL));
    loop {
        let mut io = lock(&w.io);
        match io.cancel_lock {
            Some((t, _)) if t == me => {
                drop(io);
                w.violate(Rule::L4, "IoAcquireCancelSpinLock: recursive acquire");
                return;
            }
            Some(_) => {}
            None => {
                io.cancel_lock = Some((me, previous));
                drop(io);
                if !out.is_null() {
                    // SAFETY: the driver's out parameter.
                    unsafe { *out = previous };
                }
                return;
            }
        }
        drop(io);
        std::thread::yield_now();
    }
}

/// `IoReleaseCancelSpinLock`.
pub(crate) fn release_cancel_lock(w: &World, irql: KIRQL) {
    let me = std::thread::current().id();
    let mut io = lock(&w.io);
    match io.cancel_lock {
        Some((t, _)) if t == me => {
            io.cancel_lock = None;
            drop(io);
            tls::set_irql(irql);
        }
        _ => {
            drop(io);
            w.violate(
                Rule::L4,
                "IoReleaseCancelSpinLock by a thread that does not hold it",
            );
        }
    }
}

// ---- files ------------------------------------------------------------------------------------

/// Opens the device named `device` (`\Device\...` or its symbolic name), with an optional
/// trailing file name. Returns the file or the status the open failed with.
pub(crate) fn open(w: &World, device: &str, file_name: &str) -> Result<FileRef, NTSTATUS> {
    let _busy = w.busy();
    let dev = {
        let io = lock(&w.io);
        io.devices
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(device) || d.symbolic.eq_ignore_ascii_case(device))
            .map(|d| d.object.addr())
    };
    let Some(dev) = dev else {
        return Err(STATUS_NO_SUCH_DEVICE);
    };
    let block = Block::new(size_of::<FILE_OBJECT>(), 0);
    let fo = block.ptr::<FILE_OBJECT>();
    let name: Vec<u16> = file_name.encode_utf16().collect();
    let name_block = Block::new(name.len() * 2, 0);
    // SAFETY: a zeroed FILE_OBJECT block and a name block of the right size.
    unsafe {
        std::ptr::copy_nonoverlapping(name.as_ptr(), name_block.ptr::<u16>(), name.len());
        (*fo).Type = IO_TYPE_FILE;
        (*fo).Size = size_of::<FILE_OBJECT>() as i16;
        (*fo).DeviceObject = dev as *mut DEVICE_OBJECT;
        (*fo).FileName = UNICODE_STRING {
            Length: (name.len() * 2) as u16,
            MaximumLength: (name.len() * 2) as u16,
            Buffer: if name.is_empty() {
                std::ptr::null_mut()
            } else {
                name_block.ptr()
            },
        };
    }
    let addr = fo as usize;
    let file = {
        let mut io = lock(&w.io);
        io.next_file += 1;
        let id = io.next_file;
        io.files.insert(
            addr,
            FileRec {
                block,
                device: dev,
                id,
                handle_open: false,
                issuing: 0,
            },
        );
        FileRef { addr, id }
    };
    lock(&w.objs).kept.push(name_block);
    let req = Request::bare(IrpKind::Create);
    let status = match issue(w, file, &req) {
        Some((irp, _)) => wait(w, irp).map_or(STATUS_UNSUCCESSFUL, |r| r.status),
        None => STATUS_SUCCESS,
    };
    if !file_name.is_empty() && status.is_success() {
        // NdisRegisterDeviceEx documents no device characteristics, so the simulated device
        // does not have FILE_DEVICE_SECURE_OPEN: its security descriptor does not cover opens
        // into its namespace ("Controlling Device Namespace Access").
        w.violate(
            Rule::D10,
            format!("the open of \"{device}{file_name}\" succeeded: the device's ACL does not cover names after the device (no FILE_DEVICE_SECURE_OPEN); refuse such opens"),
        );
    }
    if status.is_success() {
        if let Some(rec) = lock(&w.io).files.get_mut(&addr) {
            rec.handle_open = true;
        }
        Ok(file)
    } else {
        lock(&w.io).files.remove(&addr);
        Err(status)
    }
}

/// Closes a file as the I/O manager does when the last handle goes: IRP_MJ_CLEANUP (after
/// which nothing of the file may stay queued: D6), then, once every IRP of the file has
/// completed, IRP_MJ_CLOSE. Another thread of the process may still be inside a dispatch
/// routine for the file (cleanup runs meanwhile; close waits for it). A handle closed
/// already closes nothing (`CloseHandle` fails with STATUS_INVALID_HANDLE).
pub(crate) fn close(w: &World, file: FileRef) {
    let _busy = w.busy();
    {
        let mut io = lock(&w.io);
        match io.files.get_mut(&file.addr).filter(|f| f.id == file.id) {
            Some(rec) if rec.handle_open => rec.handle_open = false,
            _ => return,
        }
    }
    let cleanup = Request::bare(IrpKind::Cleanup);
    if let Some((irp, _)) = issue(w, file, &cleanup) {
        let _ = wait(w, irp);
    }
    let queued: Vec<(u64, IrpKind)> = {
        let io = lock(&w.io);
        io.irps
            .values()
            .filter(|r| {
                r.file == file.addr && matches!(r.state, IrpState::Pending) && r.kind != IrpKind::Cleanup
            })
            .filter(|r| {
                let p = r.block.ptr::<IRP>();
                // SAFETY: our live IRP.
                unsafe { (*p).CancelRoutine }.is_some()
            })
            .map(|r| (r.id, r.kind))
            .collect()
    };
    for (id, kind) in queued {
        w.violate(
            Rule::D6,
            format!(
                "IRP_MJ_CLEANUP completed while {kind:?} IRP #{id} of the handle is still queued (cancelable)"
            ),
        );
    }
    // The file object is referenced by every pending IRP, by one another thread is still
    // dispatching, and by a request another thread has begun (its handle looked up before
    // this close marked it closed) but not yet dispatched: close comes after the last one
    // ("IRP_MJ_CLOSE": all outstanding I/O requests have been completed or canceled). If one
    // never completes, neither does the close (the handle leaks with its process).
    let issued = w.settle(|| {
        lock(&w.io)
            .files
            .get(&file.addr)
            .is_none_or(|f| f.id != file.id || f.issuing == 0)
    });
    if !issued {
        return;
    }
    let pending: Vec<Irp> = {
        let io = lock(&w.io);
        io.irps
            .iter()
            .filter(|(_, r)| {
                r.file == file.addr && matches!(r.state, IrpState::Pending | IrpState::Dispatching)
            })
            .map(|(a, r)| Irp { addr: *a, id: r.id })
            .collect()
    };
    for irp in pending {
        if !wait_done(w, irp) {
            return;
        }
    }
    let req = Request::bare(IrpKind::Close);
    if let Some((irp, _)) = issue(w, file, &req) {
        let _ = wait(w, irp);
    }
    let mut io = lock(&w.io);
    io.files.remove(&file.addr);
    // The client's own requests completed to its threads (their results stay for them to
    // collect, as in an OVERLAPPED); the I/O manager's cleanup and close go.
    let done: Vec<usize> = io
        .irps
        .iter()
        .filter(|(_, r)| r.file == file.addr && matches!(r.kind, IrpKind::Cleanup | IrpKind::Close))
        .map(|(a, _)| *a)
        .collect();
    for addr in done {
        // (Cleanup and close carry no buffer.)
        let _ = retire(&mut io, addr);
    }
}

/// IRP counters.
pub(crate) fn stats(w: &World) -> crate::sim::IoStats {
    let io = lock(&w.io);
    crate::sim::IoStats {
        issued: io.next_id,
        completed: io.irps_completed,
        cancelled: io.irps_cancelled,
        open_handles: io.files.values().filter(|f| f.handle_open).count(),
        pending: io
            .irps
            .values()
            .filter(|r| !matches!(r.state, IrpState::Completed(_)))
            .count(),
    }
}

/// The IRPs not completed now (pending, or still in their dispatch routine).
pub(crate) fn pending_irps(w: &World) -> Vec<Irp> {
    let io = lock(&w.io);
    let mut v: Vec<Irp> = io
        .irps
        .iter()
        .filter(|(_, r)| matches!(r.state, IrpState::Pending | IrpState::Dispatching))
        .map(|(&addr, r)| Irp { addr, id: r.id })
        .collect();
    v.sort_by_key(|i| i.id);
    v
}

/// Open files (handles not closed).
pub(crate) fn open_files(w: &World) -> Vec<FileRef> {
    lock(&w.io)
        .files
        .iter()
        .filter(|(_, f)| f.handle_open)
        .map(|(&addr, f)| FileRef { addr, id: f.id })
        .collect()
}

/// Whether the client's handle of `file` is still open.
pub(crate) fn handle_open(w: &World, file: FileRef) -> bool {
    lock(&w.io)
        .files
        .get(&file.addr)
        .is_some_and(|f| f.id == file.id && f.handle_open)
}

/// At unload: devices still registered (D2) and IRPs never completed (D3).
pub(crate) fn check_unload(w: &World) {
    let io = lock(&w.io);
    let devices: Vec<String> = io.devices.iter().map(|d| d.name.clone()).collect();
    let pending: Vec<(u64, IrpKind)> = io
        .irps
        .values()
        .filter(|r| matches!(r.state, IrpState::Pending | IrpState::Dispatching) && !r.hung)
        .map(|r| (r.id, r.kind))
        .collect();
    drop(io);
    for d in devices {
        w.violate(
            Rule::D2,
            format!("unload left the device {d} registered (NdisDeregisterDeviceEx)"),
        );
    }
    for (id, kind) in pending {
        w.violate(Rule::D3, format!("{kind:?} IRP #{id} was never completed"));
    }
}

#[cfg(test)]
mod tests {
    use super::check_sddl;

    #[test]
    fn sddl_admits_only_system_and_administrators() {
        assert!(check_sddl("D:P(A;;GA;;;SY)(A;;GA;;;BA)").is_ok());
        assert!(
            check_sddl("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GR;;;WD)")
                .unwrap_err()
                .contains("WD")
        );
        assert!(check_sddl("D:P").is_err());
        assert!(check_sddl("O:BA").is_err());
    }
}
