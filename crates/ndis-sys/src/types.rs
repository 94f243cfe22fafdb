//! Scalar types of the Windows kernel and NDIS, with their x64 widths.

use core::ffi::c_void;

/// `PVOID`.
pub type PVOID = *mut c_void;
/// `NDIS_HANDLE`: an opaque pointer-sized handle.
pub type NDIS_HANDLE = *mut c_void;
/// `NDIS_PORT_NUMBER` (`ULONG`).
pub type NDIS_PORT_NUMBER = u32;
/// `NDIS_OID` (`ULONG`).
pub type NDIS_OID = u32;
/// `NET_IFINDEX` (`ULONG`).
pub type NET_IFINDEX = u32;
/// `NET_LUID` (a 64-bit union; only its value is used here).
pub type NET_LUID = u64;
/// `KIRQL` (`UCHAR`).
pub type KIRQL = u8;
/// `KSPIN_LOCK` (`ULONG_PTR`).
pub type KSPIN_LOCK = usize;
/// `BOOLEAN` (`UCHAR`).
pub type BOOLEAN = u8;
/// `NDIS_MEDIUM` (a C enum: 32 bits).
pub type NDIS_MEDIUM = u32;
/// `NDIS_PHYSICAL_MEDIUM` (a C enum).
pub type NDIS_PHYSICAL_MEDIUM = u32;
/// `NDIS_REQUEST_TYPE` (a C enum).
pub type NDIS_REQUEST_TYPE = u32;
/// `EX_POOL_PRIORITY` (a C enum).
pub type EX_POOL_PRIORITY = u32;
/// `POOL_FLAGS` (`ULONG64`).
pub type POOL_FLAGS = u64;
/// `NDIS_MEDIA_CONNECT_STATE` / `NET_IF_MEDIA_CONNECT_STATE` (a C enum).
pub type NDIS_MEDIA_CONNECT_STATE = u32;
/// `NET_IF_MEDIA_DUPLEX_STATE` (a C enum).
pub type NET_IF_MEDIA_DUPLEX_STATE = u32;

/// `TRUE` as a `BOOLEAN`.
pub const TRUE: BOOLEAN = 1;
/// `FALSE` as a `BOOLEAN`.
pub const FALSE: BOOLEAN = 0;

/// `PASSIVE_LEVEL`.
pub const PASSIVE_LEVEL: KIRQL = 0;
/// `APC_LEVEL`.
pub const APC_LEVEL: KIRQL = 1;
/// `DISPATCH_LEVEL`.
pub const DISPATCH_LEVEL: KIRQL = 2;

/// `MEMORY_ALLOCATION_ALIGNMENT` on x64.
pub const MEMORY_ALLOCATION_ALIGNMENT: usize = 16;
