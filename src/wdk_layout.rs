//! The eWDK build (`--features wdk`): our hand-written bindings checked at compile time
//! against bindgen's output for the installed WDK's `ndis.h` and `wdm.h` (see build.rs).
//! The same checks are compiled on Linux against our own header of ndis-sys
//! (`--features layout-probe`, `crates/ndis-sys/c/ndis_lwf.h`), so a field named here that
//! bindgen would not produce fails there too.
//!
//! Sizes are compared whole: ndis-sys declares what the WDK's headers declare for the NDIS
//! version the driver registers (6.50), and where the two must differ, ndis-sys says why.

#![allow(
    dead_code,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    clippy::all
)]

/// bindgen's output. Its helpers (`__BindgenBitfieldUnit`, `__IncompleteArrayField`) call
/// unsafe functions inside unsafe functions without `unsafe` blocks or `SAFETY` comments,
/// which the crate's lints deny; they are allowed here and only here. Nothing in the driver
/// uses these items: they exist to be measured.
#[allow(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]
mod wdk {
    include!(concat!(env!("OUT_DIR"), "/wdk_ndis.rs"));
}

use core::mem::{offset_of, size_of};

macro_rules! same_layout {
    ($ours:ty, $theirs:ty; $($field:ident),* $(,)?) => {
        const _: () = assert!(size_of::<$ours>() == size_of::<$theirs>(), stringify!($ours));
        $( const _: () = assert!(
            offset_of!($ours, $field) == offset_of!($theirs, $field),
            concat!(stringify!($ours), ".", stringify!($field))
        ); )*
    };
}

// Fields inside anonymous unions (Next, FirstNetBuffer, DataLength, Status, ...) have
// bindgen-generated names; they are covered by the size check and the neighbours' offsets.
same_layout!(ndis_sys::NET_BUFFER_LIST, wdk::_NET_BUFFER_LIST;
    Context, ParentNetBufferList, NdisPoolHandle, NdisReserved, ProtocolReserved,
    MiniportReserved, Scratch, SourceHandle, NblFlags, ChildRefCount, Flags, NetBufferListInfo);
same_layout!(ndis_sys::NET_BUFFER, wdk::_NET_BUFFER;
    ChecksumBias, Reserved, NdisPoolHandle, NdisReserved, ProtocolReserved, MiniportReserved,
    DataPhysicalAddress);
same_layout!(ndis_sys::NET_BUFFER_LIST_POOL_PARAMETERS, wdk::_NET_BUFFER_LIST_POOL_PARAMETERS;
    Header, ProtocolId, fAllocateNetBuffer, ContextSize, PoolTag, DataSize);
same_layout!(ndis_sys::NDIS_FILTER_DRIVER_CHARACTERISTICS, wdk::_NDIS_FILTER_DRIVER_CHARACTERISTICS;
    Header, MajorNdisVersion, Flags, FriendlyName, UniqueName, ServiceName, AttachHandler,
    DetachHandler, RestartHandler, PauseHandler, SendNetBufferListsHandler,
    SendNetBufferListsCompleteHandler, ReceiveNetBufferListsHandler,
    ReturnNetBufferListsHandler, OidRequestHandler, OidRequestCompleteHandler, StatusHandler,
    CancelDirectOidRequestHandler);
same_layout!(ndis_sys::NDIS_FILTER_ATTRIBUTES, wdk::_NDIS_FILTER_ATTRIBUTES; Header, Flags);
same_layout!(ndis_sys::NDIS_FILTER_ATTACH_PARAMETERS, wdk::_NDIS_FILTER_ATTACH_PARAMETERS;
    IfIndex, NetLuid, FilterModuleGuidName, BaseMiniportIfIndex, BaseMiniportInstanceName,
    MiniportMediaType, MacAddressLength, CurrentMacAddress, BaseMiniportNetLuid, Flags,
    BaseMiniportIfConnectorPresent, NicSwitchArray);
same_layout!(ndis_sys::NDIS_FILTER_PAUSE_PARAMETERS, wdk::_NDIS_FILTER_PAUSE_PARAMETERS;
    Header, Flags, PauseReason);
same_layout!(ndis_sys::NDIS_FILTER_RESTART_PARAMETERS, wdk::_NDIS_FILTER_RESTART_PARAMETERS;
    Header, MiniportMediaType, MiniportPhysicalMediaType, RestartAttributes, LowerIfIndex,
    LowerIfNetLuid, Flags);
same_layout!(ndis_sys::NDIS_RESTART_ATTRIBUTES, wdk::_NDIS_RESTART_ATTRIBUTES;
    Next, Oid, DataLength, Data);
same_layout!(ndis_sys::NDIS_RESTART_GENERAL_ATTRIBUTES, wdk::_NDIS_RESTART_GENERAL_ATTRIBUTES;
    MtuSize, MaxXmitLinkSpeed, SupportedOidList, MaxLookaheadSizeAccessed);
same_layout!(ndis_sys::NDIS_OID_REQUEST, wdk::_NDIS_OID_REQUEST;
    Header, RequestType, PortNumber, RequestId, RequestHandle, DATA, NdisReserved,
    MiniportReserved, SourceReserved, SupportedRevision);
same_layout!(ndis_sys::NDIS_STATUS_INDICATION, wdk::_NDIS_STATUS_INDICATION;
    SourceHandle, StatusCode, StatusBuffer, StatusBufferSize, Guid, NdisReserved);
same_layout!(ndis_sys::NDIS_SPIN_LOCK, wdk::_NDIS_SPIN_LOCK; SpinLock, OldIrql);
same_layout!(ndis_sys::MDL, wdk::_MDL;
    Next, Size, MdlFlags, MappedSystemVa, StartVa, ByteCount, ByteOffset);
same_layout!(ndis_sys::DRIVER_OBJECT, wdk::_DRIVER_OBJECT;
    DeviceObject, DriverExtension, DriverName, DriverUnload, MajorFunction);
same_layout!(ndis_sys::UNICODE_STRING, wdk::_UNICODE_STRING; Length, MaximumLength, Buffer);
same_layout!(ndis_sys::PROCESSOR_NUMBER, wdk::_PROCESSOR_NUMBER; Group, Number, Reserved);
