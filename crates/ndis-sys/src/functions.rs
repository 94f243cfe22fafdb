//! The functions rxinject imports, each declared once.
//!
//! `imports!` generates, from one list:
//! - the `extern "win64"` blocks (on Windows: `raw-dylib` with `+verbatim`, so the import
//!   table names `ndis.sys`/`ntoskrnl.exe` exactly as Windows loads them);
//! - `signatures::<Name>`: the function-pointer type of each import, which the simulator
//!   uses to prove at compile time that its implementation has the same signature;
//! - [`IMPORTS`]: `(module, name)` pairs, the list a loader of the `.sys` must resolve.

#[cfg(all(target_os = "windows", feature = "kernel-crt"))]
use core::ffi::c_void;

use crate::ndis::*;
use crate::status::{NDIS_STATUS, NTSTATUS};
use crate::types::*;
use crate::wdm::*;

macro_rules! imports {
    ($(
        $dll:literal => {
            $(
                $(#[$meta:meta])*
                fn $name:ident ( $( $arg:ident : $ty:ty ),* $(,)? ) $( -> $ret:ty )? ;
            )*
        }
    )*) => {
        $(
            #[cfg_attr(
                target_os = "windows",
                link(name = $dll, kind = "raw-dylib", modifiers = "+verbatim")
            )]
            unsafe extern "win64" {
                $(
                    $(#[$meta])*
                    pub fn $name( $( $arg : $ty ),* ) $( -> $ret )?;
                )*
            }
        )*

        /// Function-pointer types of every import, named after the import.
        pub mod signatures {
            #[allow(unused_imports)]
            use super::*;
            $( $(
                pub type $name = unsafe extern "win64" fn( $( $ty ),* ) $( -> $ret )?;
            )* )*
        }

        /// `(module, function)` for every import declared here (plus `KeBugCheckEx`).
        pub const IMPORTS: &[(&str, &str)] = &[
            $( $( ($dll, stringify!($name)), )* )*
            ("ntoskrnl.exe", "KeBugCheckEx"),
        ];
    };
}

imports! {
    "ndis.sys" => {
        // ---- registration and module life cycle (PASSIVE_LEVEL unless noted) ----
        /// Registers the filter driver; NDIS may attach modules before this returns.
        fn NdisFRegisterFilterDriver(
            DriverObject: *mut DRIVER_OBJECT,
            FilterDriverContext: NDIS_HANDLE,
            FilterDriverCharacteristics: *const NDIS_FILTER_DRIVER_CHARACTERISTICS,
            NdisFilterDriverHandle: *mut NDIS_HANDLE,
        ) -> NDIS_STATUS;
        /// Detaches every module and releases the registration.
        fn NdisFDeregisterFilterDriver(NdisFilterDriverHandle: NDIS_HANDLE);
        /// Associates the module context with the module; called from `FilterAttach`.
        fn NdisFSetAttributes(
            NdisFilterHandle: NDIS_HANDLE,
            FilterModuleContext: NDIS_HANDLE,
            FilterAttributes: *mut NDIS_FILTER_ATTRIBUTES,
        ) -> NDIS_STATUS;
        /// Completes a pended `FilterRestart`.
        fn NdisFRestartComplete(NdisFilterHandle: NDIS_HANDLE, Status: NDIS_STATUS);
        /// Completes a pended `FilterPause` (IRQL <= DISPATCH_LEVEL).
        fn NdisFPauseComplete(NdisFilterHandle: NDIS_HANDLE);

        // ---- datapath (IRQL <= DISPATCH_LEVEL) ----
        fn NdisFSendNetBufferLists(
            NdisFilterHandle: NDIS_HANDLE,
            NetBufferLists: *mut NET_BUFFER_LIST,
            PortNumber: NDIS_PORT_NUMBER,
            SendFlags: u32,
        );
        fn NdisFSendNetBufferListsComplete(
            NdisFilterHandle: NDIS_HANDLE,
            NetBufferLists: *mut NET_BUFFER_LIST,
            SendCompleteFlags: u32,
        );
        fn NdisFCancelSendNetBufferLists(NdisFilterHandle: NDIS_HANDLE, CancelId: PVOID);
        fn NdisFIndicateReceiveNetBufferLists(
            NdisFilterHandle: NDIS_HANDLE,
            NetBufferLists: *mut NET_BUFFER_LIST,
            PortNumber: NDIS_PORT_NUMBER,
            NumberOfNetBufferLists: u32,
            ReceiveFlags: u32,
        );
        fn NdisFReturnNetBufferLists(
            NdisFilterHandle: NDIS_HANDLE,
            NetBufferLists: *mut NET_BUFFER_LIST,
            ReturnFlags: u32,
        );

        // ---- OID requests, status and PnP ----
        fn NdisFOidRequest(NdisFilterHandle: NDIS_HANDLE, OidRequest: *mut NDIS_OID_REQUEST) -> NDIS_STATUS;
        fn NdisFOidRequestComplete(
            NdisFilterHandle: NDIS_HANDLE,
            OidRequest: *mut NDIS_OID_REQUEST,
            Status: NDIS_STATUS,
        );
        fn NdisFCancelOidRequest(NdisFilterHandle: NDIS_HANDLE, RequestId: PVOID);
        fn NdisAllocateCloneOidRequest(
            SourceHandle: NDIS_HANDLE,
            OidRequest: *mut NDIS_OID_REQUEST,
            PoolTag: u32,
            CloneOidRequest: *mut *mut NDIS_OID_REQUEST,
        ) -> NDIS_STATUS;
        fn NdisFreeCloneOidRequest(SourceHandle: NDIS_HANDLE, Request: *mut NDIS_OID_REQUEST);
        fn NdisFIndicateStatus(NdisFilterHandle: NDIS_HANDLE, StatusIndication: *mut NDIS_STATUS_INDICATION);
        fn NdisFNetPnPEvent(
            NdisFilterHandle: NDIS_HANDLE,
            NetPnPEventNotification: *mut NET_PNP_EVENT_NOTIFICATION,
        ) -> NDIS_STATUS;
        fn NdisFDevicePnPEventNotify(NdisFilterHandle: NDIS_HANDLE, NetDevicePnPEvent: *mut NET_DEVICE_PNP_EVENT);

        // ---- memory, locks, pools (IRQL <= DISPATCH_LEVEL) ----
        fn NdisAllocateMemoryWithTagPriority(
            NdisHandle: NDIS_HANDLE,
            Length: u32,
            Tag: u32,
            Priority: EX_POOL_PRIORITY,
        ) -> PVOID;
        fn NdisFreeMemory(VirtualAddress: PVOID, Length: u32, MemoryFlags: u32);
        fn NdisAllocateSpinLock(SpinLock: *mut NDIS_SPIN_LOCK);
        fn NdisFreeSpinLock(SpinLock: *mut NDIS_SPIN_LOCK);
        fn NdisAcquireSpinLock(SpinLock: *mut NDIS_SPIN_LOCK);
        fn NdisReleaseSpinLock(SpinLock: *mut NDIS_SPIN_LOCK);
        fn NdisDprAcquireSpinLock(SpinLock: *mut NDIS_SPIN_LOCK);
        fn NdisDprReleaseSpinLock(SpinLock: *mut NDIS_SPIN_LOCK);
        fn NdisAllocateNetBufferListPool(
            NdisHandle: NDIS_HANDLE,
            Parameters: *mut NET_BUFFER_LIST_POOL_PARAMETERS,
        ) -> NDIS_HANDLE;
        fn NdisFreeNetBufferListPool(PoolHandle: NDIS_HANDLE);
        fn NdisAllocateNetBufferAndNetBufferList(
            PoolHandle: NDIS_HANDLE,
            ContextSize: u16,
            ContextBackFill: u16,
            MdlChain: *mut MDL,
            DataOffset: u32,
            DataLength: usize,
        ) -> *mut NET_BUFFER_LIST;
        fn NdisFreeNetBufferList(NetBufferList: *mut NET_BUFFER_LIST);
        fn NdisAllocateMdl(NdisHandle: NDIS_HANDLE, VirtualAddress: PVOID, Length: u32) -> *mut MDL;
        fn NdisFreeMdl(Mdl: *mut MDL);

        // ---- control device (PASSIVE_LEVEL) ----
        /// Creates a device object (and its symbolic link) whose IRPs NDIS routes to the
        /// given dispatch routines.
        fn NdisRegisterDeviceEx(
            NdisObjectHandle: NDIS_HANDLE,
            DeviceObjectAttributes: *mut NDIS_DEVICE_OBJECT_ATTRIBUTES,
            pDeviceObject: *mut *mut DEVICE_OBJECT,
            NdisDeviceHandle: *mut NDIS_HANDLE,
        ) -> NDIS_STATUS;
        fn NdisDeregisterDeviceEx(NdisDeviceHandle: NDIS_HANDLE);
        /// The driver's extension of a device registered with NdisRegisterDeviceEx.
        fn NdisGetDeviceReservedExtension(DeviceObject: *mut DEVICE_OBJECT) -> PVOID;

        // ---- timers ----
        /// Allocates a timer object whose function NDIS calls at DISPATCH_LEVEL. IRQL <=
        /// DISPATCH_LEVEL.
        fn NdisAllocateTimerObject(
            NdisHandle: NDIS_HANDLE,
            TimerCharacteristics: *mut NDIS_TIMER_CHARACTERISTICS,
            pTimerObject: *mut NDIS_HANDLE,
        ) -> NDIS_STATUS;
        /// Sets (or resets) a timer: `DueTime` negative is relative, in 100 ns units. Returns
        /// TRUE if the timer was already queued. IRQL <= DISPATCH_LEVEL.
        fn NdisSetTimerObject(
            TimerObject: NDIS_HANDLE,
            DueTime: i64,
            MillisecondsPeriod: u32,
            FunctionContext: PVOID,
        ) -> BOOLEAN;
        /// Dequeues a set timer; TRUE if it was queued. Does not wait for a running callback.
        fn NdisCancelTimerObject(TimerObject: NDIS_HANDLE) -> BOOLEAN;
        fn NdisFreeTimerObject(TimerObject: NDIS_HANDLE);
    }
    "ntoskrnl.exe" => {
        /// Allocates pool memory (IRQL <= DISPATCH_LEVEL for non-paged pool).
        fn ExAllocatePool2(Flags: POOL_FLAGS, NumberOfBytes: usize, Tag: u32) -> PVOID;
        fn ExFreePoolWithTag(P: PVOID, Tag: u32);
        /// Declared with exactly one variadic argument: on x64 a variadic call whose
        /// arguments all fit the four register slots is identical to this prototype.
        /// rxinject always formats its message itself and passes `"%s"` and the text.
        fn DbgPrintEx(ComponentId: u32, Level: u32, Format: *const u8, Text: *const u8) -> NTSTATUS;
        /// `IoCompleteRequest` (a macro for this export). IRQL <= DISPATCH_LEVEL.
        fn IofCompleteRequest(Irp: *mut IRP, PriorityBoost: i8);
        /// Acquires the system cancel spin lock (cancel routines are called holding it).
        fn IoAcquireCancelSpinLock(Irql: *mut KIRQL);
        fn IoReleaseCancelSpinLock(Irql: KIRQL);
        /// The system time (100 ns units since 1601-01-01 UTC), precise. Any IRQL.
        fn KeQuerySystemTimePrecise(CurrentTime: *mut i64);
        /// The interrupt time (100 ns units since boot, monotonic), precise. Any IRQL.
        fn KeQueryInterruptTimePrecise(QpcTimeStamp: *mut u64) -> u64;
        /// Waits until every queued DPC (timer callbacks included) has run. PASSIVE_LEVEL.
        fn KeFlushQueuedDpcs();
        /// Raises the IRQL to `NewIrql` (not below the current one) and returns the previous
        /// IRQL: the `KeRaiseIrql` macro on x64 for Windows 8 and later, an export there.
        fn KfRaiseIrql(NewIrql: KIRQL) -> KIRQL;
        /// Lowers the IRQL back to what `KfRaiseIrql` returned.
        fn KeLowerIrql(NewIrql: KIRQL);
        /// The system-wide index of the processor the caller runs on (stable while the caller
        /// stays at DISPATCH_LEVEL). Any IRQL. `ProcNumber` may be null.
        fn KeGetCurrentProcessorNumberEx(ProcNumber: *mut PROCESSOR_NUMBER) -> u32;
        /// The most processors the system can have, constant while it runs
        /// (`ALL_PROCESSOR_GROUPS`: in every group). Any IRQL.
        fn KeQueryMaximumProcessorCountEx(GroupNumber: u16) -> u32;
        /// Maps the pages an MDL describes into system space (what
        /// `MmGetSystemAddressForMdlSafe` does when the MDL is not mapped yet). IRQL <=
        /// DISPATCH_LEVEL for `KernelMode`.
        fn MmMapLockedPagesSpecifyCache(
            MemoryDescriptorList: *mut MDL,
            AccessMode: i8,
            CacheType: i32,
            RequestedAddress: PVOID,
            BugCheckOnFailure: u32,
            Priority: u32,
        ) -> PVOID;
    }
}

#[cfg_attr(
    target_os = "windows",
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
)]
unsafe extern "win64" {
    /// Stops the system with a bug check. Never returns.
    pub fn KeBugCheckEx(
        BugCheckCode: u32,
        BugCheckParameter1: usize,
        BugCheckParameter2: usize,
        BugCheckParameter3: usize,
        BugCheckParameter4: usize,
    ) -> !;
}

/// The function-pointer type of `KeBugCheckEx` (kept outside `imports!` because of `-> !`).
pub type KeBugCheckExFn = unsafe extern "win64" fn(u32, usize, usize, usize, usize) -> !;

// `memcpy`/`memset`/`memcmp`/`memmove` for the driver's Windows build: rustc emits calls to
// them, and `ntoskrnl.exe` exports them. On the host, and in user-mode programs (no
// `kernel-crt` feature), they come from the C library.
#[cfg(all(target_os = "windows", feature = "kernel-crt"))]
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "C" {
    pub fn memcpy(dest: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
    pub fn memmove(dest: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
    pub fn memset(dest: *mut c_void, c: i32, n: usize) -> *mut c_void;
    pub fn memcmp(a: *const c_void, b: *const c_void, n: usize) -> i32;
}
