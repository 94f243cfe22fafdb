//! Compile-time layout checks against documented x64 values.
//!
//! Sources: the `ndis.h`/`wdm.h` reference pages on learn.microsoft.com (field order and
//! types; offsets follow from the x64 ABI), the `RTL_SIZEOF_THROUGH_FIELD` revision sizes
//! named there, and public symbol dumps of `ndis.sys` (`SourceHandle` of `NET_BUFFER_LIST`
//! at 0x78; `NET_BUFFER` 0xB0 bytes). `NET_BUFFER_LIST` is 0x160 bytes, its size in the WDK's
//! `ndis.h` for NDIS 6.50 (26 info slots; `ndis.sys` itself has 29, see
//! [`MaxNetBufferListInfo`]). A mismatch fails the build on every
//! target, including the Linux host the simulator runs on.

use core::mem::{align_of, offset_of, size_of};

use crate::consts::*;
use crate::ndis::*;
use crate::wdm::*;

macro_rules! check {
    ($ty:ty, size = $size:expr $(, align = $align:expr)? ; $( $field:ident @ $off:expr ),* $(,)?) => {
        const _: () = assert!(size_of::<$ty>() == $size, concat!("size of ", stringify!($ty)));
        $( const _: () = assert!(align_of::<$ty>() == $align, concat!("align of ", stringify!($ty))); )?
        $( const _: () = assert!(
            offset_of!($ty, $field) == $off,
            concat!("offset of ", stringify!($ty), ".", stringify!($field))
        ); )*
    };
}

// ---- WDM ----
check!(UNICODE_STRING, size = 16; Length @ 0, MaximumLength @ 2, Buffer @ 8);
check!(LIST_ENTRY, size = 16; Flink @ 0, Blink @ 8);
check!(MDL, size = 48;
    Next @ 0, Size @ 8, MdlFlags @ 10, Process @ 16, MappedSystemVa @ 24, StartVa @ 32,
    ByteCount @ 40, ByteOffset @ 44);
check!(DRIVER_OBJECT, size = 0x150;
    Type @ 0, Size @ 2, DeviceObject @ 8, Flags @ 16, DriverStart @ 24, DriverSize @ 32,
    DriverSection @ 40, DriverExtension @ 48, DriverName @ 56, HardwareDatabase @ 72,
    FastIoDispatch @ 80, DriverInit @ 88, DriverStartIo @ 96, DriverUnload @ 104,
    MajorFunction @ 112);

// ---- NDIS ----
check!(NDIS_OBJECT_HEADER, size = 4; Type @ 0, Revision @ 1, Size @ 2);
check!(GUID, size = 16, align = 4; Data1 @ 0, Data2 @ 4, Data3 @ 6, Data4 @ 8);
check!(NET_BUFFER_LIST, size = 0x160, align = 16;
    Next @ 0x00, FirstNetBuffer @ 0x08, Context @ 0x10, ParentNetBufferList @ 0x18,
    NdisPoolHandle @ 0x20, NdisReserved @ 0x30, ProtocolReserved @ 0x40,
    MiniportReserved @ 0x60, Scratch @ 0x70, SourceHandle @ 0x78, NblFlags @ 0x80,
    ChildRefCount @ 0x84, Flags @ 0x88, Status @ 0x8C, NetBufferListInfo @ 0x90);
check!(NET_BUFFER, size = 0xB0, align = 16;
    Next @ 0x00, CurrentMdl @ 0x08, CurrentMdlOffset @ 0x10, DataLength @ 0x18,
    MdlChain @ 0x20, DataOffset @ 0x28, ChecksumBias @ 0x30, Reserved @ 0x32,
    NdisPoolHandle @ 0x38, NdisReserved @ 0x40, ProtocolReserved @ 0x50,
    MiniportReserved @ 0x80, DataPhysicalAddress @ 0xA0, SharedMemoryInfo @ 0xA8);
check!(NET_BUFFER_DATA_LENGTH, size = 8;);
check!(NET_BUFFER_LIST_CONTEXT, size = 16, align = 16; Next @ 0, Size @ 8, Offset @ 10, ContextData @ 16);
check!(NET_BUFFER_LIST_POOL_PARAMETERS, size = 16;
    Header @ 0, ProtocolId @ 4, fAllocateNetBuffer @ 5, ContextSize @ 6, PoolTag @ 8, DataSize @ 12);
const _: () = assert!(
    size_of::<NET_BUFFER_LIST_POOL_PARAMETERS>()
        == NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 as usize
);
check!(NDIS_SPIN_LOCK, size = 16; SpinLock @ 0, OldIrql @ 8);

check!(NDIS_FILTER_DRIVER_CHARACTERISTICS, size = 224;
    Header @ 0, MajorNdisVersion @ 4, MinorNdisVersion @ 5, MajorDriverVersion @ 6,
    MinorDriverVersion @ 7, Flags @ 8, FriendlyName @ 16, UniqueName @ 32, ServiceName @ 48,
    SetOptionsHandler @ 64, SetFilterModuleOptionsHandler @ 72, AttachHandler @ 80,
    DetachHandler @ 88, RestartHandler @ 96, PauseHandler @ 104,
    SendNetBufferListsHandler @ 112, SendNetBufferListsCompleteHandler @ 120,
    CancelSendNetBufferListsHandler @ 128, ReceiveNetBufferListsHandler @ 136,
    ReturnNetBufferListsHandler @ 144, OidRequestHandler @ 152,
    OidRequestCompleteHandler @ 160, CancelOidRequestHandler @ 168,
    DevicePnPEventNotifyHandler @ 176, NetPnPEventHandler @ 184, StatusHandler @ 192,
    DirectOidRequestHandler @ 200, DirectOidRequestCompleteHandler @ 208,
    CancelDirectOidRequestHandler @ 216);
const _: () = assert!(
    offset_of!(NDIS_FILTER_DRIVER_CHARACTERISTICS, DirectOidRequestHandler)
        == NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_1 as usize
);
const _: () = assert!(
    size_of::<NDIS_FILTER_DRIVER_CHARACTERISTICS>()
        == NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2 as usize
);

check!(NDIS_FILTER_ATTRIBUTES, size = 8; Header @ 0, Flags @ 4);
check!(NDIS_FILTER_ATTACH_PARAMETERS, size = 224;
    Header @ 0, IfIndex @ 4, NetLuid @ 8, FilterModuleGuidName @ 16, BaseMiniportIfIndex @ 24,
    BaseMiniportInstanceName @ 32, BaseMiniportName @ 40, MediaConnectState @ 48,
    MediaDuplexState @ 52, XmitLinkSpeed @ 56, RcvLinkSpeed @ 64, MiniportMediaType @ 72,
    MiniportPhysicalMediaType @ 76, MiniportMediaSpecificAttributes @ 80,
    DefaultOffloadConfiguration @ 88, MacAddressLength @ 96, CurrentMacAddress @ 98,
    BaseMiniportNetLuid @ 136, LowerIfIndex @ 144, LowerIfNetLuid @ 152, Flags @ 160,
    HDSplitCurrentConfig @ 168, ReceiveFilterCapabilities @ 176,
    MiniportPhysicalDeviceObject @ 184, NicSwitchCapabilities @ 192,
    BaseMiniportIfConnectorPresent @ 200, SriovCapabilities @ 208, NicSwitchArray @ 216);
const _: () = assert!(
    offset_of!(NDIS_FILTER_ATTACH_PARAMETERS, Flags) + 4
        == NDIS_SIZEOF_FILTER_ATTACH_PARAMETERS_REVISION_1 as usize
);
check!(NDIS_FILTER_PAUSE_PARAMETERS, size = 12; Header @ 0, Flags @ 4, PauseReason @ 8);
check!(NDIS_FILTER_RESTART_PARAMETERS, size = 48;
    Header @ 0, MiniportMediaType @ 4, MiniportPhysicalMediaType @ 8, RestartAttributes @ 16,
    LowerIfIndex @ 24, LowerIfNetLuid @ 32, Flags @ 40);
const _: () = assert!(
    offset_of!(NDIS_FILTER_RESTART_PARAMETERS, Flags) + 4
        == NDIS_SIZEOF__FILTER_RESTART_PARAMETERS_REVISION_1 as usize
);
check!(NDIS_RESTART_ATTRIBUTES, size = 32, align = 16; Next @ 0, Oid @ 8, DataLength @ 12, Data @ 16);
check!(NDIS_RESTART_GENERAL_ATTRIBUTES, size = 88;
    Header @ 0, MtuSize @ 4, MaxXmitLinkSpeed @ 8, MaxRcvLinkSpeed @ 16, LookaheadSize @ 24,
    MacOptions @ 28, SupportedPacketFilters @ 32, MaxMulticastListSize @ 36,
    RecvScaleCapabilities @ 40, AccessType @ 48, Flags @ 52, ConnectionType @ 56,
    SupportedStatistics @ 60, DataBackFillSize @ 64, ContextBackFillSize @ 68,
    SupportedOidList @ 72, SupportedOidListLength @ 80, MaxLookaheadSizeAccessed @ 84);

check!(NDIS_OID_QUERY_INFORMATION, size = 32;
    Oid @ 0, InformationBuffer @ 8, InformationBufferLength @ 16, BytesWritten @ 20, BytesNeeded @ 24);
check!(NDIS_OID_SET_INFORMATION, size = 32;
    Oid @ 0, InformationBuffer @ 8, InformationBufferLength @ 16, BytesRead @ 20, BytesNeeded @ 24);
check!(NDIS_OID_METHOD_INFORMATION, size = 40;
    Oid @ 0, InformationBuffer @ 8, InputBufferLength @ 16, OutputBufferLength @ 20,
    MethodId @ 24, BytesWritten @ 28, BytesRead @ 32, BytesNeeded @ 36);
check!(NDIS_OID_REQUEST_DATA, size = 40;);
check!(NDIS_OID_REQUEST, size = 248;
    Header @ 0x00, RequestType @ 0x04, PortNumber @ 0x08, Timeout @ 0x0C, RequestId @ 0x10,
    RequestHandle @ 0x18, DATA @ 0x20, NdisReserved @ 0x48, MiniportReserved @ 0xC8,
    SourceReserved @ 0xD8, SupportedRevision @ 0xE8, Reserved1 @ 0xE9, Reserved2 @ 0xEA,
    SwitchId @ 0xEC, VPortId @ 0xF0, Flags @ 0xF4);
const _: () = assert!(offset_of!(NDIS_OID_REQUEST, SwitchId) == NDIS_SIZEOF_OID_REQUEST_REVISION_1 as usize);
const _: () = assert!(size_of::<NDIS_OID_REQUEST>() == NDIS_SIZEOF_OID_REQUEST_REVISION_2 as usize);

check!(NDIS_STATUS_INDICATION, size = 112;
    Header @ 0, SourceHandle @ 8, PortNumber @ 16, StatusCode @ 20, Flags @ 24,
    DestinationHandle @ 32, RequestId @ 40, StatusBuffer @ 48, StatusBufferSize @ 56, Guid @ 60,
    NdisReserved @ 80);
const _: () =
    assert!(size_of::<NDIS_STATUS_INDICATION>() == NDIS_SIZEOF_STATUS_INDICATION_REVISION_1 as usize);

// ---- I/O manager structures (WDK x64 sizes; offsets cross-checked against Wine) ----
check!(DEVICE_OBJECT, size = 0x150, align = 16;
    Type @ 0, Size @ 2, ReferenceCount @ 4, DriverObject @ 8, NextDevice @ 16,
    AttachedDevice @ 24, CurrentIrp @ 32, Timer @ 40, Flags @ 48, Characteristics @ 52,
    Vpb @ 56, DeviceExtension @ 64, DeviceType @ 72, StackSize @ 76);
check!(FILE_OBJECT, size = 0xD8;
    Type @ 0, Size @ 2, DeviceObject @ 8, Vpb @ 16, FsContext @ 24, FsContext2 @ 32,
    SectionObjectPointer @ 40, PrivateCacheMap @ 48, FinalStatus @ 56, RelatedFileObject @ 64,
    LockOperation @ 72, SharedDelete @ 79, Flags @ 80, FileName @ 88, CurrentByteOffset @ 104);
check!(IO_STATUS_BLOCK, size = 16; Status @ 0, Information @ 8);
check!(IO_CREATE_PARAMETERS, size = 32;
    SecurityContext @ 0, Options @ 8, FileAttributes @ 16, ShareAccess @ 18, EaLength @ 24);
check!(IO_READ_WRITE_PARAMETERS, size = 24; Length @ 0, Key @ 8, Flags @ 12, ByteOffset @ 16);
check!(IO_DEVICE_CONTROL_PARAMETERS, size = 32;
    OutputBufferLength @ 0, InputBufferLength @ 8, IoControlCode @ 16, Type3InputBuffer @ 24);
check!(IO_STACK_PARAMETERS, size = 32;);
check!(IO_STACK_LOCATION, size = 72;
    MajorFunction @ 0, MinorFunction @ 1, Flags @ 2, Control @ 3, Parameters @ 8,
    DeviceObject @ 40, FileObject @ 48, CompletionRoutine @ 56, Context @ 64);
check!(IRP_TAIL_OVERLAY, size = 88;
    DriverContext @ 0, Thread @ 32, AuxiliaryBuffer @ 40, ListEntry @ 48,
    CurrentStackLocation @ 64, OriginalFileObject @ 72);
check!(IRP, size = 0xD0, align = 16;
    Type @ 0, Size @ 2, MdlAddress @ 8, Flags @ 16, SystemBuffer @ 24, ThreadListEntry @ 32,
    IoStatus @ 48, RequestorMode @ 64, PendingReturned @ 65, StackCount @ 66,
    CurrentLocation @ 67, Cancel @ 68, CancelIrql @ 69, ApcEnvironment @ 70,
    AllocationFlags @ 71, UserIosb @ 72, UserEvent @ 80, Overlay @ 88, CancelRoutine @ 104,
    UserBuffer @ 112, Tail @ 120);
check!(NDIS_TIMER_CHARACTERISTICS, size = 24;
    Header @ 0, AllocationTag @ 4, TimerFunction @ 8, FunctionContext @ 16);
const _: () =
    assert!(size_of::<NDIS_TIMER_CHARACTERISTICS>() == NDIS_SIZEOF_TIMER_CHARACTERISTICS_REVISION_1 as usize);
check!(NDIS_DEVICE_OBJECT_ATTRIBUTES, size = 56;
    Header @ 0, DeviceName @ 8, SymbolicName @ 16, MajorFunctions @ 24, ExtensionSize @ 32,
    DefaultSDDLString @ 40, DeviceClassGuid @ 48);
const _: () = assert!(
    size_of::<NDIS_DEVICE_OBJECT_ATTRIBUTES>() == NDIS_SIZEOF_DEVICE_OBJECT_ATTRIBUTES_REVISION_1 as usize
);

// ---- what WDK-built filters use beyond rxinject ----
check!(DISPATCHER_HEADER, size = 24; Type @ 0, Signalling @ 1, Size @ 2, SignalState @ 4, WaitListHead @ 8);
check!(KEVENT, size = 24; Header @ 0);
check!(NDIS_EVENT, size = 24; Event @ 0);
check!(NDIS_CONFIGURATION_OBJECT, size = 24; Header @ 0, NdisHandle @ 8, Flags @ 16);
const _: () = assert!(
    offset_of!(NDIS_CONFIGURATION_OBJECT, Flags) + 4 == NDIS_SIZEOF_CONFIGURATION_OBJECT_REVISION_1 as usize
);
check!(BINARY_DATA, size = 16; Length @ 0, Buffer @ 8);
check!(NDIS_CONFIGURATION_PARAMETER, size = 24; ParameterType @ 0, ParameterData @ 8);
check!(NET_BUFFER_POOL_PARAMETERS, size = 12; Header @ 0, PoolTag @ 4, DataSize @ 8);
const _: () = assert!(
    size_of::<NET_BUFFER_POOL_PARAMETERS>() == NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1 as usize
);
