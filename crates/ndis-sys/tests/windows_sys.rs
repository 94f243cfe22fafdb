//! Our hand-written constants and WDM/NDIS layouts against `windows-sys`, which Microsoft
//! generates from the real Windows SDK/WDK headers (win32metadata). An independent source:
//! a typo in either place fails here.

use std::mem::{offset_of, size_of};

use windows_sys::Wdk::Foundation as wf;
use windows_sys::Wdk::NetworkManagement::Ndis as wn;
use windows_sys::Wdk::System::SystemServices as wss;
use windows_sys::Win32::Foundation as w32;

macro_rules! same_value {
    ($($ours:expr => $theirs:expr),* $(,)?) => {{
        let mut bad = Vec::new();
        $(
            if ($ours) as i64 != ($theirs) as i64 {
                bad.push(format!("{} = {:#x}, but {} = {:#x}", stringify!($ours), ($ours) as i64, stringify!($theirs), ($theirs) as i64));
            }
        )*
        assert!(bad.is_empty(), "constants differ from windows-sys:\n{}", bad.join("\n"));
    }};
}

#[test]
fn ndis_constants_match_the_sdk_metadata() {
    use ndis_sys::*;
    same_value! {
        NDIS_OBJECT_TYPE_DEFAULT => wn::NDIS_OBJECT_TYPE_DEFAULT,
        NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES => wn::NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES,
        NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS => wn::NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS,
        NDIS_OBJECT_TYPE_FILTER_PARTIAL_CHARACTERISTICS => wn::NDIS_OBJECT_TYPE_FILTER_PARTIAL_CHARACTERISTICS,
        NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES => wn::NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES,
        NDIS_OBJECT_TYPE_OID_REQUEST => wn::NDIS_OBJECT_TYPE_OID_REQUEST,
        NDIS_OBJECT_TYPE_STATUS_INDICATION => wn::NDIS_OBJECT_TYPE_STATUS_INDICATION,
        NDIS_OBJECT_TYPE_FILTER_ATTACH_PARAMETERS => wn::NDIS_OBJECT_TYPE_FILTER_ATTACH_PARAMETERS,
        NDIS_OBJECT_TYPE_FILTER_PAUSE_PARAMETERS => wn::NDIS_OBJECT_TYPE_FILTER_PAUSE_PARAMETERS,
        NDIS_OBJECT_TYPE_FILTER_RESTART_PARAMETERS => wn::NDIS_OBJECT_TYPE_FILTER_RESTART_PARAMETERS,
        NDIS_OBJECT_TYPE_RESTART_GENERAL_ATTRIBUTES => wn::NDIS_OBJECT_TYPE_RESTART_GENERAL_ATTRIBUTES,
        NDIS_FILTER_CHARACTERISTICS_REVISION_2 => wn::NDIS_FILTER_CHARACTERISTICS_REVISION_2,
        NDIS_OID_REQUEST_REVISION_2 => wn::NDIS_OID_REQUEST_REVISION_2,
        NDIS_FILTER_ATTACH_PARAMETERS_REVISION_4 => wn::NDIS_FILTER_ATTACH_PARAMETERS_REVISION_4,
        NDIS_PROTOCOL_ID_DEFAULT => wn::NDIS_PROTOCOL_ID_DEFAULT,
        NdisMedium802_3 => wn::NdisMedium802_3,
        NdisMediumWan => wn::NdisMediumWan,
        NdisMediumNative802_11 => wn::NdisMediumNative802_11,
        NdisMediumIP => wn::NdisMediumIP,
        NdisPhysicalMedium802_3 => wn::NdisPhysicalMedium802_3,
        MediaConnectStateConnected => windows_sys::Win32::NetworkManagement::Ndis::MediaConnectStateConnected,
        NdisRequestQueryInformation => wn::NdisRequestQueryInformation,
        NdisRequestSetInformation => wn::NdisRequestSetInformation,
        NDIS_PAUSE_NDIS_INTERNAL => wn::NDIS_PAUSE_NDIS_INTERNAL,
        NDIS_PAUSE_DETACH_FILTER => wn::NDIS_PAUSE_DETACH_FILTER,
        NDIS_SEND_FLAGS_DISPATCH_LEVEL => wn::NDIS_SEND_FLAGS_DISPATCH_LEVEL,
        NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK => wn::NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK,
        NDIS_SEND_FLAGS_SINGLE_QUEUE => wn::NDIS_SEND_FLAGS_SINGLE_QUEUE,
        NDIS_SEND_FLAGS_SWITCH_DESTINATION_GROUP => wn::NDIS_SEND_FLAGS_SWITCH_DESTINATION_GROUP,
        NDIS_SEND_FLAGS_SWITCH_SINGLE_SOURCE => wn::NDIS_SEND_FLAGS_SWITCH_SINGLE_SOURCE,
        NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL => wn::NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL,
        NDIS_SEND_COMPLETE_FLAGS_SINGLE_QUEUE => wn::NDIS_SEND_COMPLETE_FLAGS_SINGLE_QUEUE,
        NDIS_SEND_COMPLETE_FLAGS_SWITCH_SINGLE_SOURCE => wn::NDIS_SEND_COMPLETE_FLAGS_SWITCH_SINGLE_SOURCE,
        NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL => wn::NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL,
        NDIS_RECEIVE_FLAGS_RESOURCES => wn::NDIS_RECEIVE_FLAGS_RESOURCES,
        NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE => wn::NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE,
        NDIS_RECEIVE_FLAGS_SINGLE_VLAN => wn::NDIS_RECEIVE_FLAGS_SINGLE_VLAN,
        NDIS_RECEIVE_FLAGS_PERFECT_FILTERED => wn::NDIS_RECEIVE_FLAGS_PERFECT_FILTERED,
        NDIS_RECEIVE_FLAGS_SINGLE_QUEUE => wn::NDIS_RECEIVE_FLAGS_SINGLE_QUEUE,
        NDIS_RECEIVE_FLAGS_SHARED_MEMORY_INFO_VALID => wn::NDIS_RECEIVE_FLAGS_SHARED_MEMORY_INFO_VALID,
        NDIS_RECEIVE_FLAGS_MORE_NBLS => wn::NDIS_RECEIVE_FLAGS_MORE_NBLS,
        NDIS_RETURN_FLAGS_DISPATCH_LEVEL => wn::NDIS_RETURN_FLAGS_DISPATCH_LEVEL,
        NDIS_RETURN_FLAGS_SINGLE_QUEUE => wn::NDIS_RETURN_FLAGS_SINGLE_QUEUE,
        NDIS_RETURN_FLAGS_SWITCH_SINGLE_SOURCE => wn::NDIS_RETURN_FLAGS_SWITCH_SINGLE_SOURCE,
        OID_GEN_MEDIA_SUPPORTED => wn::OID_GEN_MEDIA_SUPPORTED,
        OID_GEN_MAXIMUM_FRAME_SIZE => wn::OID_GEN_MAXIMUM_FRAME_SIZE,
        OID_GEN_CURRENT_PACKET_FILTER => wn::OID_GEN_CURRENT_PACKET_FILTER,
        OID_GEN_LINK_STATE => wn::OID_GEN_LINK_STATE,
        OID_GEN_MINIPORT_RESTART_ATTRIBUTES => wn::OID_GEN_MINIPORT_RESTART_ATTRIBUTES,
        OID_GEN_XMIT_OK => wn::OID_GEN_XMIT_OK,
        OID_GEN_STATISTICS => wn::OID_GEN_STATISTICS,
        OID_802_3_PERMANENT_ADDRESS => wn::OID_802_3_PERMANENT_ADDRESS,
        OID_802_3_CURRENT_ADDRESS => wn::OID_802_3_CURRENT_ADDRESS,
        OID_GEN_HARDWARE_STATUS => wn::OID_GEN_HARDWARE_STATUS,
        OID_GEN_MEDIA_IN_USE => wn::OID_GEN_MEDIA_IN_USE,
        OID_GEN_MAXIMUM_LOOKAHEAD => wn::OID_GEN_MAXIMUM_LOOKAHEAD,
        OID_GEN_LINK_SPEED => wn::OID_GEN_LINK_SPEED,
        OID_GEN_VENDOR_DESCRIPTION => wn::OID_GEN_VENDOR_DESCRIPTION,
        OID_GEN_CURRENT_LOOKAHEAD => wn::OID_GEN_CURRENT_LOOKAHEAD,
        OID_GEN_MAXIMUM_TOTAL_SIZE => wn::OID_GEN_MAXIMUM_TOTAL_SIZE,
        OID_GEN_MEDIA_CONNECT_STATUS => wn::OID_GEN_MEDIA_CONNECT_STATUS,
        OID_GEN_PHYSICAL_MEDIUM => wn::OID_GEN_PHYSICAL_MEDIUM,
        OID_GEN_PHYSICAL_MEDIUM_EX => wn::OID_GEN_PHYSICAL_MEDIUM_EX,
        OID_802_3_MULTICAST_LIST => wn::OID_802_3_MULTICAST_LIST,
        OID_802_3_MAXIMUM_LIST_SIZE => wn::OID_802_3_MAXIMUM_LIST_SIZE,
        NDIS_PACKET_TYPE_DIRECTED => wn::NDIS_PACKET_TYPE_DIRECTED,
        NDIS_PACKET_TYPE_MULTICAST => wn::NDIS_PACKET_TYPE_MULTICAST,
        NDIS_PACKET_TYPE_ALL_MULTICAST => wn::NDIS_PACKET_TYPE_ALL_MULTICAST,
        NDIS_PACKET_TYPE_BROADCAST => wn::NDIS_PACKET_TYPE_BROADCAST,
        NDIS_PACKET_TYPE_PROMISCUOUS => wn::NDIS_PACKET_TYPE_PROMISCUOUS,
        NDIS_PACKET_TYPE_ALL_LOCAL => wn::NDIS_PACKET_TYPE_ALL_LOCAL,
        NdisHardwareStatusReady => windows_sys::Win32::NetworkManagement::Ndis::NdisHardwareStatusReady,
        NdisMediaStateConnected => windows_sys::Win32::NetworkManagement::Ndis::NdisMediaStateConnected,
        NDIS_LINK_STATE_REVISION_1 => wn::NDIS_LINK_STATE_REVISION_1,
        NormalPoolPriority => wss::NormalPoolPriority,
        IO_TYPE_DRIVER => wss::IO_TYPE_DRIVER,
        IRP_MJ_COUNT => wss::IRP_MJ_MAXIMUM_FUNCTION + 1,
    }
}

#[test]
fn status_codes_match_the_sdk_metadata() {
    use ndis_sys::*;
    same_value! {
        NDIS_STATUS_SUCCESS.0 => w32::STATUS_SUCCESS,
        NDIS_STATUS_PENDING.0 => w32::STATUS_PENDING,
        NDIS_STATUS_FAILURE.0 => w32::STATUS_UNSUCCESSFUL,
        NDIS_STATUS_INVALID_PARAMETER.0 => w32::STATUS_INVALID_PARAMETER,
        NDIS_STATUS_RESOURCES.0 => w32::STATUS_INSUFFICIENT_RESOURCES,
        NDIS_STATUS_NOT_SUPPORTED.0 => w32::STATUS_NOT_SUPPORTED,
        NDIS_STATUS_INDICATION_REQUIRED.0 => w32::STATUS_NDIS_INDICATION_REQUIRED,
        // ndis.h: NDIS_STATUS_SEND_ABORTED is (NDIS_STATUS)STATUS_NDIS_REQUEST_ABORTED.
        NDIS_STATUS_SEND_ABORTED.0 => w32::STATUS_NDIS_REQUEST_ABORTED,
        NDIS_STATUS_MEDIA_DISCONNECTED.0 => w32::STATUS_NDIS_MEDIA_DISCONNECTED,
        NDIS_STATUS_PAUSED.0 => w32::STATUS_NDIS_PAUSED,
        NDIS_STATUS_LOW_POWER_STATE.0 => w32::STATUS_NDIS_LOW_POWER_STATE,
        STATUS_CANCELLED.0 => w32::STATUS_CANCELLED,
        STATUS_INVALID_DEVICE_REQUEST.0 => w32::STATUS_INVALID_DEVICE_REQUEST,
        STATUS_ACCESS_DENIED.0 => w32::STATUS_ACCESS_DENIED,
        STATUS_IO_TIMEOUT.0 => w32::STATUS_IO_TIMEOUT,
        STATUS_BUFFER_TOO_SMALL.0 => w32::STATUS_BUFFER_TOO_SMALL,
        STATUS_DEVICE_NOT_READY.0 => w32::STATUS_DEVICE_NOT_READY,
        STATUS_REVISION_MISMATCH.0 => w32::STATUS_REVISION_MISMATCH,
        STATUS_NOT_IMPLEMENTED.0 => w32::STATUS_NOT_IMPLEMENTED,
    }
}

/// The NDIS_STATUS codes ndis.h defines as literals of NDIS's own 0xC001xxxx group, not as
/// NT status values. windows-sys has no NDIS_STATUS constants, so they are compared like with
/// like: each carries the code number of the `STATUS_NDIS_*` NTSTATUS of the same name, in
/// NDIS's group, and is not that NTSTATUS.
#[test]
fn ndis_own_status_codes_are_the_0xc001_group_not_the_ntstatus_of_the_same_name() {
    use ndis_sys::*;
    let pairs = [
        (
            NDIS_STATUS_BAD_VERSION,
            w32::STATUS_NDIS_BAD_VERSION,
            "BAD_VERSION",
        ),
        (
            NDIS_STATUS_BAD_CHARACTERISTICS,
            w32::STATUS_NDIS_BAD_CHARACTERISTICS,
            "BAD_CHARACTERISTICS",
        ),
        (
            NDIS_STATUS_DEVICE_FAILED,
            w32::STATUS_NDIS_DEVICE_FAILED,
            "DEVICE_FAILED",
        ),
        (
            NDIS_STATUS_REQUEST_ABORTED,
            w32::STATUS_NDIS_REQUEST_ABORTED,
            "REQUEST_ABORTED",
        ),
        (
            NDIS_STATUS_INVALID_LENGTH,
            w32::STATUS_NDIS_INVALID_LENGTH,
            "INVALID_LENGTH",
        ),
        (
            NDIS_STATUS_INVALID_DATA,
            w32::STATUS_NDIS_INVALID_DATA,
            "INVALID_DATA",
        ),
        (
            NDIS_STATUS_BUFFER_TOO_SHORT,
            w32::STATUS_NDIS_BUFFER_TOO_SHORT,
            "BUFFER_TOO_SHORT",
        ),
        (
            NDIS_STATUS_INVALID_OID,
            w32::STATUS_NDIS_INVALID_OID,
            "INVALID_OID",
        ),
        (
            NDIS_STATUS_UNSUPPORTED_MEDIA,
            w32::STATUS_NDIS_UNSUPPORTED_MEDIA,
            "UNSUPPORTED_MEDIA",
        ),
    ];
    for (ours, nt, name) in pairs {
        let nt = nt as u32;
        assert_eq!(
            nt & 0xFFFF_0000,
            0xC023_0000,
            "STATUS_NDIS_{name} is an NTSTATUS of facility 0x23"
        );
        assert_eq!(ours.code(), 0xC001_0000 | (nt & 0xFFFF), "NDIS_STATUS_{name}");
        assert_ne!(ours.code(), nt, "NDIS_STATUS_{name} is not STATUS_NDIS_{name}");
    }
    // The one pair of the same number that are two codes.
    assert_ne!(NDIS_STATUS_REQUEST_ABORTED, NDIS_STATUS_SEND_ABORTED);
}

macro_rules! same_offsets {
    ($ours:ty, $theirs:ty; $($f:ident),* $(,)?) => {
        $( assert_eq!(
            offset_of!($ours, $f), offset_of!($theirs, $f),
            "offset of {}.{}", stringify!($ours), stringify!($f)
        ); )*
    };
}

macro_rules! same_layout {
    ($ours:ty, $theirs:ty; $($f:ident),* $(,)?) => {
        assert_eq!(size_of::<$ours>(), size_of::<$theirs>(), "size of {}", stringify!($ours));
        same_offsets!($ours, $theirs; $($f),*);
    };
}

#[test]
fn layouts_match_the_sdk_metadata() {
    same_layout!(ndis_sys::DRIVER_OBJECT, wf::DRIVER_OBJECT;
        Type, Size, DeviceObject, Flags, DriverStart, DriverSize, DriverSection, DriverExtension,
        DriverName, HardwareDatabase, FastIoDispatch, DriverInit, DriverStartIo, DriverUnload,
        MajorFunction);
    same_layout!(ndis_sys::MDL, wf::MDL;
        Next, Size, MdlFlags, Process, MappedSystemVa, StartVa, ByteCount, ByteOffset);
    same_layout!(ndis_sys::UNICODE_STRING, w32::UNICODE_STRING; Length, MaximumLength, Buffer);
    same_layout!(ndis_sys::NDIS_SPIN_LOCK, wn::NDIS_SPIN_LOCK; SpinLock, OldIrql);
    same_layout!(ndis_sys::NDIS_OBJECT_HEADER, wn::NDIS_OBJECT_HEADER; Type, Revision, Size);
    // win32metadata drops DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT): windows-sys's
    // DEVICE_OBJECT has the WDK's members (0x148 bytes) but not its 16-byte alignment, which
    // makes the WDK's structure 0x150 bytes. The members are compared, and the size after
    // that alignment.
    same_offsets!(ndis_sys::DEVICE_OBJECT, wf::DEVICE_OBJECT;
        Type, Size, ReferenceCount, DriverObject, NextDevice, AttachedDevice, CurrentIrp, Timer,
        Flags, Characteristics, Vpb, DeviceExtension, DeviceType, StackSize);
    assert_eq!(size_of::<wf::DEVICE_OBJECT>(), 0x148);
    assert_eq!(
        size_of::<ndis_sys::DEVICE_OBJECT>(),
        size_of::<wf::DEVICE_OBJECT>().next_multiple_of(16)
    );
    assert_eq!(std::mem::align_of::<ndis_sys::DEVICE_OBJECT>(), 16);
    assert_eq!(std::mem::align_of::<ndis_sys::IRP>(), 16);
    same_layout!(ndis_sys::FILE_OBJECT, wf::FILE_OBJECT;
        Type, Size, DeviceObject, Vpb, FsContext, FsContext2, SectionObjectPointer,
        PrivateCacheMap, FinalStatus, RelatedFileObject, LockOperation, DeletePending,
        ReadAccess, WriteAccess, DeleteAccess, SharedRead, SharedWrite, SharedDelete, Flags,
        FileName, CurrentByteOffset);
    same_layout!(ndis_sys::IRP, wf::IRP;
        Type, Size, MdlAddress, Flags, ThreadListEntry, IoStatus, RequestorMode, PendingReturned,
        StackCount, CurrentLocation, Cancel, CancelIrql, ApcEnvironment, AllocationFlags,
        UserEvent, Overlay, CancelRoutine, UserBuffer, Tail);
    assert_eq!(
        offset_of!(ndis_sys::IRP, SystemBuffer),
        offset_of!(wf::IRP, AssociatedIrp)
    );
    assert_eq!(
        offset_of!(ndis_sys::IRP, UserIosb),
        offset_of!(wf::IRP, Anonymous)
    );
    same_layout!(ndis_sys::IO_STACK_LOCATION, wf::IO_STACK_LOCATION;
        MajorFunction, MinorFunction, Flags, Control, Parameters, DeviceObject, FileObject,
        CompletionRoutine, Context);
    same_layout!(ndis_sys::IO_STATUS_BLOCK, windows_sys::Win32::System::IO::IO_STATUS_BLOCK; Information);
}

#[test]
fn the_link_state_revision_1_size_runs_through_auto_negotiation_flags() {
    // RTL_SIZEOF_THROUGH_FIELD(NDIS_LINK_STATE, AutoNegotiationFlags).
    let through = std::mem::offset_of!(wn::NDIS_LINK_STATE, AutoNegotiationFlags) + 4;
    assert_eq!(usize::from(ndis_sys::NDIS_SIZEOF_LINK_STATE_REVISION_1), through);
    assert_eq!(std::mem::offset_of!(wn::NDIS_LINK_STATE, XmitLinkSpeed), 16);
}

#[test]
fn io_constants_match_the_sdk_metadata() {
    use ndis_sys::*;
    use windows_sys::Wdk::Storage::FileSystem as wfs;
    use windows_sys::Win32::System::Ioctl as ioctl;
    same_value! {
        IRP_MJ_CREATE => wss::IRP_MJ_CREATE,
        IRP_MJ_CLOSE => wss::IRP_MJ_CLOSE,
        IRP_MJ_READ => wss::IRP_MJ_READ,
        IRP_MJ_WRITE => wss::IRP_MJ_WRITE,
        IRP_MJ_DEVICE_CONTROL => wss::IRP_MJ_DEVICE_CONTROL,
        IRP_MJ_CLEANUP => wss::IRP_MJ_CLEANUP,
        DO_BUFFERED_IO => wfs::DO_BUFFERED_IO,
        DO_DEVICE_INITIALIZING => wfs::DO_DEVICE_INITIALIZING,
        SL_PENDING_RETURNED => wss::SL_PENDING_RETURNED,
        FILE_DEVICE_NETWORK => ioctl::FILE_DEVICE_NETWORK,
        METHOD_BUFFERED => ioctl::METHOD_BUFFERED,
        METHOD_NEITHER => ioctl::METHOD_NEITHER,
        FILE_READ_ACCESS => ioctl::FILE_READ_ACCESS,
        FILE_WRITE_ACCESS => ioctl::FILE_WRITE_ACCESS,
        NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1 => wn::NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1,
        NDIS_OBJECT_TYPE_TIMER_CHARACTERISTICS => wn::NDIS_OBJECT_TYPE_TIMER_CHARACTERISTICS,
        NDIS_TIMER_CHARACTERISTICS_REVISION_1 => wn::NDIS_TIMER_CHARACTERISTICS_REVISION_1,
        MdlMappingNoExecute => wss::MdlMappingNoExecute,
        MmCached => wss::MmCached,
        NormalPagePriority => wss::NormalPagePriority,
        STATUS_BUFFER_OVERFLOW.0 => w32::STATUS_BUFFER_OVERFLOW,
        STATUS_NO_SUCH_DEVICE.0 => w32::STATUS_NO_SUCH_DEVICE,
        STATUS_INVALID_HANDLE.0 => w32::STATUS_INVALID_HANDLE,
        STATUS_QUOTA_EXCEEDED.0 => w32::STATUS_QUOTA_EXCEEDED,
        STATUS_OBJECT_NAME_INVALID.0 => w32::STATUS_OBJECT_NAME_INVALID,
        STATUS_INVALID_DEVICE_STATE.0 => w32::STATUS_INVALID_DEVICE_STATE,
        STATUS_INVALID_BUFFER_SIZE.0 => w32::STATUS_INVALID_BUFFER_SIZE,
        STATUS_NOT_FOUND.0 => w32::STATUS_NOT_FOUND,
    }
}
