//! The lab filter's control device `\Device\RxLab`: opens, a write that injects one frame
//! (first byte 0: Tx, 1: Rx; the rest is the frame) and completes when its NBL comes back,
//! reads that queue with a cancel routine until `complete_reads` or cleanup, and one IOCTL that
//! echoes its input. Device faults (D rules) and the seed's wait-for-send-complete are switched
//! by the lab's `Fault`.

use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use ndis_sys::*;

use super::{DRIVER_HANDLE, Fault, is, module};

/// The echo IOCTL (METHOD_BUFFERED).
pub const IOCTL_LAB_ECHO: u32 = 0x8D52_0000 | (0x900 << 2);
pub const DEVICE_NAME: &str = "\\Device\\RxLab";
pub const USER_PATH: &str = "\\\\.\\RxLab";

static DEVICE: AtomicPtr<DEVICE_OBJECT> = AtomicPtr::new(ptr::null_mut());
static DEVICE_HANDLE: AtomicPtr<std::ffi::c_void> = AtomicPtr::new(ptr::null_mut());
/// Read IRPs waiting (addresses).
static READS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// IRP_MJ_CLEANUP and IRP_MJ_CLOSE calls since the lab started.
static CLEANUPS: AtomicUsize = AtomicUsize::new(0);
static CLOSES: AtomicUsize = AtomicUsize::new(0);

/// (cleanups, closes) the device had seen when its last IOCTL was dispatched.
pub static SEEN_AT_IOCTL: Mutex<Option<(usize, usize)>> = Mutex::new(None);

/// (cleanups, closes) the device has seen since the lab started.
#[allow(dead_code)]
pub fn cleanups_and_closes() -> (usize, usize) {
    (CLEANUPS.load(Ordering::SeqCst), CLOSES.load(Ordering::SeqCst))
}

pub(super) fn reset_counts() {
    CLEANUPS.store(0, Ordering::SeqCst);
    CLOSES.store(0, Ordering::SeqCst);
    *SEEN_AT_IOCTL.lock().unwrap() = None;
}

fn wide(s: &str) -> &'static [u16] {
    Box::leak(s.encode_utf16().collect::<Vec<u16>>().into_boxed_slice())
}

pub(super) fn register() {
    let name = wide(DEVICE_NAME);
    let link = wide("\\DosDevices\\RxLab");
    let sddl = wide(if is(Fault::OpenSddl) {
        "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GRGW;;;WD)"
    } else {
        "D:P(A;;GA;;;SY)(A;;GA;;;BA)"
    });
    let mut name_s = ndis_sys::wstr::unicode_string(name);
    let mut link_s = ndis_sys::wstr::unicode_string(link);
    let sddl_s = ndis_sys::wstr::unicode_string(sddl);
    let mut table: [PDRIVER_DISPATCH; IRP_MJ_COUNT] = [None; IRP_MJ_COUNT];
    table[usize::from(IRP_MJ_CREATE)] = Some(create);
    table[usize::from(IRP_MJ_CLOSE)] = Some(close);
    table[usize::from(IRP_MJ_CLEANUP)] = Some(cleanup);
    table[usize::from(IRP_MJ_READ)] = Some(read);
    table[usize::from(IRP_MJ_WRITE)] = Some(write);
    table[usize::from(IRP_MJ_DEVICE_CONTROL)] = Some(device_control);
    let mut attrs = NDIS_DEVICE_OBJECT_ATTRIBUTES {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES,
            NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1,
            NDIS_SIZEOF_DEVICE_OBJECT_ATTRIBUTES_REVISION_1,
        ),
        DeviceName: &mut name_s,
        SymbolicName: &mut link_s,
        MajorFunctions: table.as_mut_ptr(),
        ExtensionSize: 16,
        DefaultSDDLString: &sddl_s,
        DeviceClassGuid: ptr::null(),
    };
    let mut dev = ptr::null_mut();
    let mut h = ptr::null_mut();
    let st = unsafe {
        NdisRegisterDeviceEx(
            DRIVER_HANDLE.load(Ordering::Acquire),
            &mut attrs,
            &mut dev,
            &mut h,
        )
    };
    assert_eq!(st, NDIS_STATUS_SUCCESS, "lab device registration");
    if direct_io() {
        unsafe { (*dev).Flags |= DO_DIRECT_IO };
    } else if !is(Fault::NoBufferedIo) {
        unsafe { (*dev).Flags |= DO_BUFFERED_IO };
    }
    // The driver's own per-device state belongs in the reserved extension.
    let ext = unsafe { NdisGetDeviceReservedExtension(dev) };
    assert!(!ext.is_null());
    unsafe { ext.cast::<u64>().write(0x1AB) };
    if is(Fault::WriteDeviceExtension) {
        unsafe { (*dev).DeviceExtension.cast::<u64>().write(0x1AB) };
    }
    DEVICE.store(dev, Ordering::Release);
    DEVICE_HANDLE.store(h, Ordering::Release);
    READS.lock().unwrap().clear();
}

pub(super) fn deregister() {
    let h = DEVICE_HANDLE.swap(ptr::null_mut(), Ordering::AcqRel);
    if !h.is_null() && !is(Fault::NoDeregisterDevice) {
        unsafe { NdisDeregisterDeviceEx(h) };
    }
}

/// What the lab's last direct-I/O request looked like in its dispatch routine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectSeen {
    pub system_buffer_null: bool,
    pub mdl_null: bool,
    pub mdl_flags: i16,
    pub byte_count: u32,
}

pub static DIRECT_SEEN: Mutex<Option<DirectSeen>> = Mutex::new(None);

/// The request's buffer: the system buffer, or (DO_DIRECT_IO) its MDL mapped into system
/// space, or (neither I/O) the caller's address; null if there is none or the mapping
/// failed.
unsafe fn buffer_of(irp: *mut IRP) -> *mut u8 {
    if is(Fault::NoBufferedIo) {
        // Neither I/O: the caller's address, unprobed (the fault).
        return unsafe { (*irp).UserBuffer }.cast();
    }
    if !direct_io() {
        return unsafe { (*irp).SystemBuffer }.cast();
    }
    let mdl = unsafe { (*irp).MdlAddress };
    *DIRECT_SEEN.lock().unwrap() = Some(DirectSeen {
        system_buffer_null: unsafe { (*irp).SystemBuffer }.is_null(),
        mdl_null: mdl.is_null(),
        mdl_flags: if mdl.is_null() {
            0
        } else {
            unsafe { (*mdl).MdlFlags }
        },
        byte_count: if mdl.is_null() {
            0
        } else {
            unsafe { (*mdl).ByteCount }
        },
    });
    if mdl.is_null() {
        return ptr::null_mut();
    }
    if unsafe { (*mdl).MdlFlags } & MDL_MAPPED_TO_SYSTEM_VA != 0 {
        return unsafe { (*mdl).MappedSystemVa }.cast();
    }
    unsafe {
        MmMapLockedPagesSpecifyCache(
            mdl,
            KernelMode,
            MmCached,
            ptr::null_mut(),
            u32::from(is(Fault::MapBugCheckOnFailure)),
            NormalPagePriority | MdlMappingNoExecute,
        )
    }
    .cast()
}

fn direct_io() -> bool {
    is(Fault::DirectIo) || is(Fault::MapBugCheckOnFailure)
}

/// Completes `irp` with `status` and `info`.
unsafe fn finish(irp: *mut IRP, status: NTSTATUS, info: usize) -> NTSTATUS {
    unsafe {
        (*irp).IoStatus.Status = status;
        (*irp).IoStatus.Information = info;
        IofCompleteRequest(irp, IO_NO_INCREMENT);
    }
    status
}

unsafe extern "win64" fn create(_d: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    let named = unsafe { (*(*sl).FileObject).FileName.Length } != 0;
    if named && !is(Fault::AcceptNamedOpen) {
        return unsafe { finish(irp, STATUS_OBJECT_NAME_INVALID, 0) };
    }
    unsafe { finish(irp, STATUS_SUCCESS, 0) }
}

unsafe extern "win64" fn close(_d: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    CLOSES.fetch_add(1, Ordering::SeqCst);
    unsafe { finish(irp, STATUS_SUCCESS, 0) }
}

unsafe extern "win64" fn cleanup(_d: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    CLEANUPS.fetch_add(1, Ordering::SeqCst);
    if !is(Fault::CleanupLeavesReads) {
        let reads: Vec<usize> = std::mem::take(&mut *READS.lock().unwrap());
        for r in reads {
            let r = r as *mut IRP;
            // If the cancel routine already took it, it completes it.
            if unsafe { IoSetCancelRoutine(r, None) }.is_some() {
                unsafe { finish(r, STATUS_CANCELLED, 0) };
            }
        }
    }
    unsafe { finish(irp, STATUS_SUCCESS, 0) }
}

unsafe extern "win64" fn cancel_read(_d: *mut DEVICE_OBJECT, irp: *mut IRP) {
    unsafe { IoReleaseCancelSpinLock((*irp).CancelIrql) };
    READS.lock().unwrap().retain(|&r| r != irp as usize);
    unsafe { finish(irp, STATUS_CANCELLED, 0) };
}

unsafe extern "win64" fn read(_d: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    unsafe { IoSetCancelRoutine(irp, Some(cancel_read)) };
    if unsafe { (*irp).Cancel } != 0 && unsafe { IoSetCancelRoutine(irp, None) }.is_some() {
        return unsafe { finish(irp, STATUS_CANCELLED, 0) };
    }
    unsafe { IoMarkIrpPending(irp) };
    READS.lock().unwrap().push(irp as usize);
    STATUS_PENDING
}

/// Completes every queued read with one byte (test thread).
pub fn complete_reads() {
    let reads: Vec<usize> = std::mem::take(&mut *READS.lock().unwrap());
    for r in reads {
        let r = r as *mut IRP;
        // Correct: take the cancel routine back first; if it is gone, the cancel routine
        // owns the IRP. The fault completes with the routine still set.
        let ours = is(Fault::CompleteWithCancelRoutine) || unsafe { IoSetCancelRoutine(r, None) }.is_some();
        if ours {
            let b = unsafe { buffer_of(r) };
            if b.is_null() {
                unsafe { finish(r, STATUS_INSUFFICIENT_RESOURCES, 0) };
            } else {
                unsafe { *b = 0x5A };
                unsafe { finish(r, STATUS_SUCCESS, 1) };
            }
        }
    }
}

unsafe extern "win64" fn write(_d: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    let len = unsafe { (*sl).Parameters.Write.Length } as usize;
    if len < 15 {
        return unsafe { finish(irp, STATUS_INVALID_PARAMETER, 0) };
    }
    let b = unsafe { buffer_of(irp) };
    if b.is_null() {
        return unsafe { finish(irp, STATUS_INSUFFICIENT_RESOURCES, 0) };
    }
    let buf = unsafe { std::slice::from_raw_parts(b, len) };
    let rx = buf[0] == 1;
    let m = module();
    if is(Fault::ReturnStatusMismatch) {
        unsafe { finish(irp, STATUS_SUCCESS, 0) };
        return STATUS_UNSUCCESSFUL;
    }
    if !is(Fault::PendWithoutMark) {
        unsafe { IoMarkIrpPending(irp) };
    }
    unsafe { super::inject_frame(m, &buf[1..], rx, irp) };
    if is(Fault::CompleteWriteTwice) {
        unsafe { finish(irp, STATUS_SUCCESS, 1) };
    }
    STATUS_PENDING
}

/// An own NBL of write `irp` came back (`from_send_complete`: through
/// FilterSendNetBufferListsComplete).
pub(super) unsafe fn frame_back(irp: usize, rx: bool, from_send_complete: bool) {
    if irp == 0 {
        return;
    }
    // The seed's hang: its write waited for a send-complete, which never comes for a receive
    // indication (Rx frames come back through FilterReturnNetBufferLists).
    if is(Fault::SeedWaitForSendComplete) && !from_send_complete {
        let _ = rx;
        return;
    }
    let info = if is(Fault::WriteInformationTooLarge) {
        100_000
    } else {
        1
    };
    unsafe { finish(irp as *mut IRP, STATUS_SUCCESS, info) };
}

unsafe extern "win64" fn device_control(_d: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    let p = unsafe { (*sl).Parameters.DeviceIoControl };
    let code = p.IoControlCode;
    *SEEN_AT_IOCTL.lock().unwrap() = Some(cleanups_and_closes());
    let known = code == IOCTL_LAB_ECHO || (is(Fault::AcceptMethodNeither) && code & !3 == IOCTL_LAB_ECHO);
    if !known {
        return unsafe { finish(irp, STATUS_INVALID_DEVICE_REQUEST, 0) };
    }
    // METHOD_BUFFERED: input and output share the system buffer, so the echo is in place.
    let (inl, outl) = (p.InputBufferLength as usize, p.OutputBufferLength as usize);
    let n = inl.min(outl);
    let info = if is(Fault::OverlongIoctlInformation) {
        outl + 8
    } else {
        n
    };
    unsafe { finish(irp, STATUS_SUCCESS, info) }
}
