//! WDM structures the driver touches (x64 layouts from `wdm.h`; cross-checked against
//! Wine's ABI-compatible `ddk/wdm.h` by `tests/wine_layout.rs`).

use core::ffi::c_void;

use crate::consts::IRP_MJ_COUNT;
use crate::status::NTSTATUS;
use crate::types::*;

/// `UNICODE_STRING`: counted UTF-16, lengths in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UNICODE_STRING {
    pub Length: u16,
    pub MaximumLength: u16,
    pub Buffer: *mut u16,
}

/// `NDIS_STRING` is a `UNICODE_STRING`.
pub type NDIS_STRING = UNICODE_STRING;

impl UNICODE_STRING {
    /// An empty string (`Buffer` null).
    pub const EMPTY: UNICODE_STRING = UNICODE_STRING {
        Length: 0,
        MaximumLength: 0,
        Buffer: core::ptr::null_mut(),
    };
}

/// `PROCESSOR_NUMBER`: a processor's group and its number in the group.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PROCESSOR_NUMBER {
    pub Group: u16,
    pub Number: u8,
    pub Reserved: u8,
}

/// `KeQueryMaximumProcessorCountEx`'s group number for "every group" (ntdef.h).
pub const ALL_PROCESSOR_GROUPS: u16 = 0xffff;

/// `LIST_ENTRY`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LIST_ENTRY {
    pub Flink: *mut LIST_ENTRY,
    pub Blink: *mut LIST_ENTRY,
}

/// `MDL`: describes the pages of a buffer. Drivers treat it as read-only apart from the
/// documented macros; the mapped address is `MappedSystemVa` when
/// `MDL_MAPPED_TO_SYSTEM_VA` or `MDL_SOURCE_IS_NONPAGED_POOL` is set.
#[repr(C)]
#[derive(Debug)]
pub struct MDL {
    pub Next: *mut MDL,
    pub Size: i16,
    pub MdlFlags: i16,
    pub Process: *mut c_void,
    pub MappedSystemVa: *mut c_void,
    pub StartVa: *mut c_void,
    pub ByteCount: u32,
    pub ByteOffset: u32,
}

/// `DEVICE_OBJECT`: the fields a driver reads or sets; the rest of the structure is opaque.
/// The WDK declares it `DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT)`, so its 0x148 bytes of
/// members make a 0x150-byte, 16-byte aligned structure on x64.
#[repr(C, align(16))]
pub struct DEVICE_OBJECT {
    pub Type: i16,
    pub Size: u16,
    pub ReferenceCount: i32,
    pub DriverObject: *mut DRIVER_OBJECT,
    pub NextDevice: *mut DEVICE_OBJECT,
    pub AttachedDevice: *mut DEVICE_OBJECT,
    pub CurrentIrp: *mut IRP,
    pub Timer: PVOID,
    /// `DO_*` flags; a driver sets `DO_BUFFERED_IO` or `DO_DIRECT_IO` here.
    pub Flags: u32,
    pub Characteristics: u32,
    pub Vpb: PVOID,
    /// The I/O manager's extension; an NDIS driver uses `NdisGetDeviceReservedExtension`.
    pub DeviceExtension: PVOID,
    pub DeviceType: u32,
    pub StackSize: i8,
    pub _Rest: [u8; 0x148 - 77],
}

/// `DRIVER_EXTENSION`, opaque.
#[repr(C)]
pub struct DRIVER_EXTENSION {
    _opaque: [u8; 0],
}

/// `IO_STATUS_BLOCK` (`Status` shares its 8 bytes with `Pointer`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STATUS_BLOCK {
    pub Status: NTSTATUS,
    pub _StatusHigh: u32,
    pub Information: usize,
}

/// `FILE_OBJECT`: the fields a driver reads or sets; the rest (up to the x64 size of 0xD8)
/// is opaque.
#[repr(C)]
pub struct FILE_OBJECT {
    pub Type: i16,
    pub Size: i16,
    pub _Pad0: u32,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub Vpb: PVOID,
    /// The driver's per-open context.
    pub FsContext: PVOID,
    pub FsContext2: PVOID,
    pub SectionObjectPointer: PVOID,
    pub PrivateCacheMap: PVOID,
    pub FinalStatus: NTSTATUS,
    pub _Pad1: u32,
    pub RelatedFileObject: *mut FILE_OBJECT,
    pub LockOperation: u8,
    pub DeletePending: u8,
    pub ReadAccess: u8,
    pub WriteAccess: u8,
    pub DeleteAccess: u8,
    pub SharedRead: u8,
    pub SharedWrite: u8,
    pub SharedDelete: u8,
    pub Flags: u32,
    pub _Pad2: u32,
    /// The name after the device name in the open (`\\.\RxInject\name`); empty for a plain
    /// open of the device.
    pub FileName: UNICODE_STRING,
    pub CurrentByteOffset: i64,
    pub _Rest: [u8; 0xD8 - 112],
}

/// `Parameters.Create` of an `IO_STACK_LOCATION`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IO_CREATE_PARAMETERS {
    pub SecurityContext: PVOID,
    pub Options: u32,
    pub _Pad0: u32,
    pub FileAttributes: u16,
    pub ShareAccess: u16,
    pub _Pad1: u32,
    pub EaLength: u32,
    pub _Pad2: u32,
}

/// `Parameters.Read` / `Parameters.Write` of an `IO_STACK_LOCATION`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IO_READ_WRITE_PARAMETERS {
    pub Length: u32,
    pub _Pad0: u32,
    pub Key: u32,
    pub Flags: u32,
    pub ByteOffset: i64,
}

/// `Parameters.DeviceIoControl` of an `IO_STACK_LOCATION`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IO_DEVICE_CONTROL_PARAMETERS {
    pub OutputBufferLength: u32,
    pub _Pad0: u32,
    pub InputBufferLength: u32,
    pub _Pad1: u32,
    pub IoControlCode: u32,
    pub _Pad2: u32,
    pub Type3InputBuffer: PVOID,
}

/// The `Parameters` union of an `IO_STACK_LOCATION`; `MajorFunction` says which view is live.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STACK_PARAMETERS {
    pub Create: IO_CREATE_PARAMETERS,
    pub Read: IO_READ_WRITE_PARAMETERS,
    pub Write: IO_READ_WRITE_PARAMETERS,
    pub DeviceIoControl: IO_DEVICE_CONTROL_PARAMETERS,
    pub Others: [PVOID; 4],
}

/// `IO_STACK_LOCATION`.
#[repr(C)]
pub struct IO_STACK_LOCATION {
    pub MajorFunction: u8,
    pub MinorFunction: u8,
    pub Flags: u8,
    /// `SL_PENDING_RETURNED` is set here by `IoMarkIrpPending`.
    pub Control: u8,
    pub _Pad0: u32,
    pub Parameters: IO_STACK_PARAMETERS,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub FileObject: *mut FILE_OBJECT,
    pub CompletionRoutine: PVOID,
    pub Context: PVOID,
}

/// `Tail.Overlay` of an `IRP` (with the size of the `Tail` union).
#[repr(C)]
pub struct IRP_TAIL_OVERLAY {
    /// Free for the driver that currently owns the IRP.
    pub DriverContext: [PVOID; 4],
    pub Thread: PVOID,
    pub AuxiliaryBuffer: PVOID,
    /// Free for the driver that currently owns the IRP, to queue it.
    pub ListEntry: LIST_ENTRY,
    pub CurrentStackLocation: *mut IO_STACK_LOCATION,
    pub OriginalFileObject: *mut FILE_OBJECT,
    pub _Apc: [u8; 8],
}

/// `DRIVER_CANCEL` callback.
pub type PDRIVER_CANCEL = Option<unsafe extern "win64" fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP)>;

/// `IRP`, `DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT)` as the WDK declares it.
#[repr(C, align(16))]
pub struct IRP {
    pub Type: i16,
    pub Size: u16,
    pub _Reserved0: u32,
    pub MdlAddress: *mut MDL,
    pub Flags: u32,
    pub _Pad0: u32,
    /// `AssociatedIrp.SystemBuffer` (union with `MasterIrp` and `IrpCount`).
    pub SystemBuffer: PVOID,
    pub ThreadListEntry: LIST_ENTRY,
    pub IoStatus: IO_STATUS_BLOCK,
    pub RequestorMode: i8,
    pub PendingReturned: u8,
    pub StackCount: i8,
    pub CurrentLocation: i8,
    /// Set (1) when the IRP is being cancelled.
    pub Cancel: u8,
    pub CancelIrql: KIRQL,
    pub ApcEnvironment: i8,
    pub AllocationFlags: u8,
    pub UserIosb: *mut IO_STATUS_BLOCK,
    pub UserEvent: PVOID,
    pub Overlay: [usize; 2],
    /// Set with `IoSetCancelRoutine` (an atomic exchange).
    pub CancelRoutine: PDRIVER_CANCEL,
    pub UserBuffer: PVOID,
    pub Tail: IRP_TAIL_OVERLAY,
}

/// `IoGetCurrentIrpStackLocation`.
///
/// # Safety
/// `irp` is a valid IRP the caller owns.
pub unsafe fn IoGetCurrentIrpStackLocation(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: caller's contract.
    unsafe { (*irp).Tail.CurrentStackLocation }
}

/// `IoMarkIrpPending`: the dispatch routine will return `STATUS_PENDING`.
///
/// # Safety
/// `irp` is a valid IRP the caller owns, with a current stack location.
pub unsafe fn IoMarkIrpPending(irp: *mut IRP) {
    // SAFETY: caller's contract.
    let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: the current stack location of a valid IRP.
    unsafe { (*sl).Control |= crate::consts::SL_PENDING_RETURNED };
}

/// `IoSetCancelRoutine`: an atomic exchange of `Irp->CancelRoutine`; returns the previous
/// routine (`None` if the I/O manager already took it to cancel the IRP).
///
/// # Safety
/// `irp` is a valid IRP the caller owns.
pub unsafe fn IoSetCancelRoutine(irp: *mut IRP, routine: PDRIVER_CANCEL) -> PDRIVER_CANCEL {
    use core::sync::atomic::{AtomicPtr, Ordering};
    let new = routine.map_or(core::ptr::null_mut(), |f| f as *mut core::ffi::c_void);
    // SAFETY: `irp` is valid (caller's contract); taking a field's address reads nothing.
    let addr = unsafe { core::ptr::addr_of_mut!((*irp).CancelRoutine) };
    // SAFETY: `CancelRoutine` is a pointer-sized, pointer-aligned field of a valid IRP; the
    // kernel only ever accesses it atomically.
    let field = unsafe { &*addr.cast::<AtomicPtr<core::ffi::c_void>>() };
    let old = field.swap(new, Ordering::AcqRel);
    // SAFETY: the field only ever holds null or a DRIVER_CANCEL function pointer.
    unsafe { core::mem::transmute::<*mut core::ffi::c_void, PDRIVER_CANCEL>(old) }
}

/// `DRIVER_UNLOAD` callback.
pub type PDRIVER_UNLOAD = Option<unsafe extern "win64" fn(DriverObject: *mut DRIVER_OBJECT)>;
/// `DRIVER_DISPATCH` callback.
pub type PDRIVER_DISPATCH =
    Option<unsafe extern "win64" fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP) -> NTSTATUS>;
/// `DRIVER_INITIALIZE`: the signature of `DriverEntry`.
pub type PDRIVER_INITIALIZE = Option<DriverInitialize>;
/// Non-optional form of [`PDRIVER_INITIALIZE`].
pub type DriverInitialize =
    unsafe extern "win64" fn(DriverObject: *mut DRIVER_OBJECT, RegistryPath: *mut UNICODE_STRING) -> NTSTATUS;

/// `DRIVER_OBJECT`.
#[repr(C)]
pub struct DRIVER_OBJECT {
    pub Type: i16,
    pub Size: i16,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub Flags: u32,
    pub DriverStart: PVOID,
    pub DriverSize: u32,
    pub DriverSection: PVOID,
    pub DriverExtension: *mut DRIVER_EXTENSION,
    pub DriverName: UNICODE_STRING,
    pub HardwareDatabase: *mut UNICODE_STRING,
    pub FastIoDispatch: PVOID,
    pub DriverInit: PDRIVER_INITIALIZE,
    pub DriverStartIo: PVOID,
    pub DriverUnload: PDRIVER_UNLOAD,
    pub MajorFunction: [PDRIVER_DISPATCH; IRP_MJ_COUNT],
}

/// `IO_TYPE_DRIVER`, the `Type` of a driver object.
pub const IO_TYPE_DRIVER: i16 = 4;

// ---- kernel events (what a WDK-built filter uses; rxinject does not) --------------------------

/// `DISPATCHER_HEADER`, the head of every waitable kernel object (24 bytes on x64): the
/// object type, its signal state and its wait list.
#[repr(C)]
pub struct DISPATCHER_HEADER {
    pub Type: u8,
    pub Signalling: u8,
    pub Size: u8,
    pub Reserved1: u8,
    pub SignalState: i32,
    pub WaitListHead: LIST_ENTRY,
}

/// `KEVENT`.
#[repr(C)]
pub struct KEVENT {
    pub Header: DISPATCHER_HEADER,
}

/// `EVENT_TYPE`: `NotificationEvent` stays signaled until reset; `SynchronizationEvent`
/// releases one waiter and resets itself.
pub type EVENT_TYPE = u32;
pub const NotificationEvent: EVENT_TYPE = 0;
pub const SynchronizationEvent: EVENT_TYPE = 1;
