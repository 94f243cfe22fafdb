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

/// `DEVICE_OBJECT`, opaque: the driver only passes pointers to it.
#[repr(C)]
pub struct DEVICE_OBJECT {
    _opaque: [u8; 0],
}

/// `DRIVER_EXTENSION`, opaque.
#[repr(C)]
pub struct DRIVER_EXTENSION {
    _opaque: [u8; 0],
}

/// `IRP`, opaque until the control device needs its fields.
#[repr(C)]
pub struct IRP {
    _opaque: [u8; 0],
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
