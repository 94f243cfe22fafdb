//! NDIS 6 structures and callback types (x64 layouts; see `layout.rs` for the checks).

use core::ffi::c_void;

use crate::consts::*;
use crate::status::NDIS_STATUS;
use crate::types::*;
use crate::wdm::{DEVICE_OBJECT, KEVENT, MDL, NDIS_STRING, PDRIVER_DISPATCH, UNICODE_STRING};

/// `NDIS_OBJECT_HEADER`: type, revision and size of a versioned NDIS structure.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NDIS_OBJECT_HEADER {
    pub Type: u8,
    pub Revision: u8,
    pub Size: u16,
}

impl NDIS_OBJECT_HEADER {
    /// A header with the given fields.
    pub const fn new(Type: u8, Revision: u8, Size: u16) -> Self {
        NDIS_OBJECT_HEADER { Type, Revision, Size }
    }
}

/// `GUID`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GUID {
    pub Data1: u32,
    pub Data2: u16,
    pub Data3: u16,
    pub Data4: [u8; 8],
}

// ---- NET_BUFFER_LIST / NET_BUFFER ----------------------------------------------------------

/// `NET_BUFFER_LIST_CONTEXT` header; the context data follows at a 16-byte boundary.
#[repr(C, align(16))]
#[derive(Debug)]
pub struct NET_BUFFER_LIST_CONTEXT {
    pub Next: *mut NET_BUFFER_LIST_CONTEXT,
    pub Size: u16,
    pub Offset: u16,
    pub ContextData: Align16Tail,
}

/// A zero-sized marker for a `DECLSPEC_ALIGN(16)` trailing byte array: its address is the
/// start of the variable-length data that follows a header.
#[repr(C, align(16))]
#[derive(Debug)]
pub struct Align16Tail([u8; 0]);

impl Align16Tail {
    /// Address of the trailing data.
    pub fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
}

/// `NET_BUFFER_LIST`. The leading union (`Next`/`FirstNetBuffer` or an `SLIST_HEADER`) gives
/// the structure 16-byte alignment, and the reserved areas are `DECLSPEC_ALIGN(16)`; the
/// explicit `_pad*` fields reproduce that alignment.
#[repr(C, align(16))]
pub struct NET_BUFFER_LIST {
    pub Next: *mut NET_BUFFER_LIST,
    pub FirstNetBuffer: *mut NET_BUFFER,
    pub Context: *mut NET_BUFFER_LIST_CONTEXT,
    pub ParentNetBufferList: *mut NET_BUFFER_LIST,
    pub NdisPoolHandle: NDIS_HANDLE,
    pub _pad0: u64,
    pub NdisReserved: [PVOID; 2],
    pub ProtocolReserved: [PVOID; 4],
    pub MiniportReserved: [PVOID; 2],
    pub Scratch: PVOID,
    pub SourceHandle: NDIS_HANDLE,
    pub NblFlags: u32,
    pub ChildRefCount: i32,
    pub Flags: u32,
    /// `Status` (union with `NdisReserved2`).
    pub Status: NDIS_STATUS,
    pub NetBufferListInfo: [PVOID; MaxNetBufferListInfo],
}

/// `NET_BUFFER_DATA_LENGTH`: `ULONG DataLength` overlaid with `SIZE_T stDataLength`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NET_BUFFER_DATA_LENGTH {
    pub DataLength: u32,
    pub stDataLength: usize,
}

impl NET_BUFFER_DATA_LENGTH {
    /// The length as `NET_BUFFER_DATA_LENGTH(nb)` reads it (the `ULONG` view).
    pub fn get(&self) -> u32 {
        // SAFETY: both views are plain integers over initialised memory; every bit
        // pattern is a valid `u32`, and the `ULONG` view is what NDIS macros read.
        unsafe { self.DataLength }
    }

    /// Sets the length through the `SIZE_T` view, so both views agree.
    pub fn set(&mut self, length: u32) {
        self.stDataLength = length as usize;
    }

    /// A length of `length` bytes.
    pub const fn new(length: u32) -> Self {
        NET_BUFFER_DATA_LENGTH {
            stDataLength: length as usize,
        }
    }
}

/// `NET_BUFFER`: one frame's data, described by an MDL chain.
#[repr(C, align(16))]
pub struct NET_BUFFER {
    pub Next: *mut NET_BUFFER,
    pub CurrentMdl: *mut MDL,
    pub CurrentMdlOffset: u32,
    pub _pad0: u32,
    pub DataLength: NET_BUFFER_DATA_LENGTH,
    pub MdlChain: *mut MDL,
    pub DataOffset: u32,
    pub _pad1: u32,
    pub ChecksumBias: u16,
    pub Reserved: u16,
    pub _pad2: u32,
    pub NdisPoolHandle: NDIS_HANDLE,
    pub NdisReserved: [PVOID; 2],
    pub ProtocolReserved: [PVOID; 6],
    pub MiniportReserved: [PVOID; 4],
    pub DataPhysicalAddress: i64,
    /// `SharedMemoryInfo` / `ScatterGatherList` union.
    pub SharedMemoryInfo: PVOID,
}

/// `NET_BUFFER_LIST_POOL_PARAMETERS`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_BUFFER_LIST_POOL_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub ProtocolId: u8,
    pub fAllocateNetBuffer: BOOLEAN,
    pub ContextSize: u16,
    pub PoolTag: u32,
    pub DataSize: u32,
}

/// `NDIS_PROTOCOL_ID_DEFAULT`.
pub const NDIS_PROTOCOL_ID_DEFAULT: u8 = 0;

/// `NDIS_SPIN_LOCK`.
#[repr(C)]
#[derive(Debug)]
pub struct NDIS_SPIN_LOCK {
    pub SpinLock: KSPIN_LOCK,
    pub OldIrql: KIRQL,
}

impl NDIS_SPIN_LOCK {
    /// A zeroed lock (still to be passed to `NdisAllocateSpinLock`).
    pub const ZERO: NDIS_SPIN_LOCK = NDIS_SPIN_LOCK {
        SpinLock: 0,
        OldIrql: 0,
    };
}

// ---- Filter driver registration --------------------------------------------------------------

/// Opaque `NET_PNP_EVENT_NOTIFICATION`: a filter forwards it untouched.
#[repr(C)]
pub struct NET_PNP_EVENT_NOTIFICATION {
    _opaque: [u8; 0],
}

/// Opaque `NET_DEVICE_PNP_EVENT`: a filter forwards it untouched.
#[repr(C)]
pub struct NET_DEVICE_PNP_EVENT {
    _opaque: [u8; 0],
}

pub type SET_OPTIONS_HANDLER = Option<
    unsafe extern "win64" fn(NdisDriverHandle: NDIS_HANDLE, DriverContext: NDIS_HANDLE) -> NDIS_STATUS,
>;
pub type FILTER_SET_FILTER_MODULE_OPTIONS_HANDLER =
    Option<unsafe extern "win64" fn(FilterModuleContext: NDIS_HANDLE) -> NDIS_STATUS>;
pub type FILTER_ATTACH_HANDLER = Option<
    unsafe extern "win64" fn(
        NdisFilterHandle: NDIS_HANDLE,
        FilterDriverContext: NDIS_HANDLE,
        AttachParameters: *mut NDIS_FILTER_ATTACH_PARAMETERS,
    ) -> NDIS_STATUS,
>;
pub type FILTER_DETACH_HANDLER = Option<unsafe extern "win64" fn(FilterModuleContext: NDIS_HANDLE)>;
pub type FILTER_RESTART_HANDLER = Option<
    unsafe extern "win64" fn(
        FilterModuleContext: NDIS_HANDLE,
        RestartParameters: *mut NDIS_FILTER_RESTART_PARAMETERS,
    ) -> NDIS_STATUS,
>;
pub type FILTER_PAUSE_HANDLER = Option<
    unsafe extern "win64" fn(
        FilterModuleContext: NDIS_HANDLE,
        PauseParameters: *mut NDIS_FILTER_PAUSE_PARAMETERS,
    ) -> NDIS_STATUS,
>;
pub type FILTER_SEND_NET_BUFFER_LISTS_HANDLER = Option<
    unsafe extern "win64" fn(
        FilterModuleContext: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        SendFlags: u32,
    ),
>;
pub type FILTER_SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER = Option<
    unsafe extern "win64" fn(
        FilterModuleContext: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        SendCompleteFlags: u32,
    ),
>;
pub type FILTER_CANCEL_SEND_HANDLER =
    Option<unsafe extern "win64" fn(FilterModuleContext: NDIS_HANDLE, CancelId: PVOID)>;
pub type FILTER_RECEIVE_NET_BUFFER_LISTS_HANDLER = Option<
    unsafe extern "win64" fn(
        FilterModuleContext: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        NumberOfNetBufferLists: u32,
        ReceiveFlags: u32,
    ),
>;
pub type FILTER_RETURN_NET_BUFFER_LISTS_HANDLER = Option<
    unsafe extern "win64" fn(
        FilterModuleContext: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        ReturnFlags: u32,
    ),
>;
pub type FILTER_OID_REQUEST_HANDLER = Option<
    unsafe extern "win64" fn(
        FilterModuleContext: NDIS_HANDLE,
        OidRequest: *mut NDIS_OID_REQUEST,
    ) -> NDIS_STATUS,
>;
pub type FILTER_OID_REQUEST_COMPLETE_HANDLER = Option<
    unsafe extern "win64" fn(
        FilterModuleContext: NDIS_HANDLE,
        OidRequest: *mut NDIS_OID_REQUEST,
        Status: NDIS_STATUS,
    ),
>;
pub type FILTER_CANCEL_OID_REQUEST_HANDLER =
    Option<unsafe extern "win64" fn(FilterModuleContext: NDIS_HANDLE, RequestId: PVOID)>;
pub type FILTER_DEVICE_PNP_EVENT_NOTIFY_HANDLER = Option<
    unsafe extern "win64" fn(FilterModuleContext: NDIS_HANDLE, NetDevicePnPEvent: *mut NET_DEVICE_PNP_EVENT),
>;
pub type FILTER_NET_PNP_EVENT_HANDLER = Option<
    unsafe extern "win64" fn(
        FilterModuleContext: NDIS_HANDLE,
        NetPnPEventNotification: *mut NET_PNP_EVENT_NOTIFICATION,
    ) -> NDIS_STATUS,
>;
pub type FILTER_STATUS_HANDLER = Option<
    unsafe extern "win64" fn(FilterModuleContext: NDIS_HANDLE, StatusIndication: *mut NDIS_STATUS_INDICATION),
>;

/// `NDIS_FILTER_DRIVER_CHARACTERISTICS`, revision 2 (NDIS 6.1 to 6.7x).
#[repr(C)]
pub struct NDIS_FILTER_DRIVER_CHARACTERISTICS {
    pub Header: NDIS_OBJECT_HEADER,
    pub MajorNdisVersion: u8,
    pub MinorNdisVersion: u8,
    pub MajorDriverVersion: u8,
    pub MinorDriverVersion: u8,
    pub Flags: u32,
    pub FriendlyName: NDIS_STRING,
    pub UniqueName: NDIS_STRING,
    pub ServiceName: NDIS_STRING,
    pub SetOptionsHandler: SET_OPTIONS_HANDLER,
    pub SetFilterModuleOptionsHandler: FILTER_SET_FILTER_MODULE_OPTIONS_HANDLER,
    pub AttachHandler: FILTER_ATTACH_HANDLER,
    pub DetachHandler: FILTER_DETACH_HANDLER,
    pub RestartHandler: FILTER_RESTART_HANDLER,
    pub PauseHandler: FILTER_PAUSE_HANDLER,
    pub SendNetBufferListsHandler: FILTER_SEND_NET_BUFFER_LISTS_HANDLER,
    pub SendNetBufferListsCompleteHandler: FILTER_SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER,
    pub CancelSendNetBufferListsHandler: FILTER_CANCEL_SEND_HANDLER,
    pub ReceiveNetBufferListsHandler: FILTER_RECEIVE_NET_BUFFER_LISTS_HANDLER,
    pub ReturnNetBufferListsHandler: FILTER_RETURN_NET_BUFFER_LISTS_HANDLER,
    pub OidRequestHandler: FILTER_OID_REQUEST_HANDLER,
    pub OidRequestCompleteHandler: FILTER_OID_REQUEST_COMPLETE_HANDLER,
    pub CancelOidRequestHandler: FILTER_CANCEL_OID_REQUEST_HANDLER,
    pub DevicePnPEventNotifyHandler: FILTER_DEVICE_PNP_EVENT_NOTIFY_HANDLER,
    pub NetPnPEventHandler: FILTER_NET_PNP_EVENT_HANDLER,
    pub StatusHandler: FILTER_STATUS_HANDLER,
    pub DirectOidRequestHandler: FILTER_OID_REQUEST_HANDLER,
    pub DirectOidRequestCompleteHandler: FILTER_OID_REQUEST_COMPLETE_HANDLER,
    pub CancelDirectOidRequestHandler: FILTER_CANCEL_OID_REQUEST_HANDLER,
}

/// `NDIS_FILTER_ATTRIBUTES`, passed to `NdisFSetAttributes`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_FILTER_ATTRIBUTES {
    pub Header: NDIS_OBJECT_HEADER,
    pub Flags: u32,
}

/// `NDIS_FILTER_ATTACH_PARAMETERS`, revision 4 (NDIS 6.30).
#[repr(C)]
pub struct NDIS_FILTER_ATTACH_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub IfIndex: NET_IFINDEX,
    pub NetLuid: NET_LUID,
    pub FilterModuleGuidName: *mut NDIS_STRING,
    pub BaseMiniportIfIndex: NET_IFINDEX,
    pub BaseMiniportInstanceName: *mut NDIS_STRING,
    pub BaseMiniportName: *mut NDIS_STRING,
    pub MediaConnectState: NDIS_MEDIA_CONNECT_STATE,
    pub MediaDuplexState: NET_IF_MEDIA_DUPLEX_STATE,
    pub XmitLinkSpeed: u64,
    pub RcvLinkSpeed: u64,
    pub MiniportMediaType: NDIS_MEDIUM,
    pub MiniportPhysicalMediaType: NDIS_PHYSICAL_MEDIUM,
    pub MiniportMediaSpecificAttributes: NDIS_HANDLE,
    pub DefaultOffloadConfiguration: PVOID,
    pub MacAddressLength: u16,
    pub CurrentMacAddress: [u8; NDIS_MAX_PHYS_ADDRESS_LENGTH],
    pub BaseMiniportNetLuid: NET_LUID,
    pub LowerIfIndex: NET_IFINDEX,
    pub LowerIfNetLuid: NET_LUID,
    pub Flags: u32,
    pub HDSplitCurrentConfig: PVOID,
    pub ReceiveFilterCapabilities: PVOID,
    pub MiniportPhysicalDeviceObject: *mut DEVICE_OBJECT,
    pub NicSwitchCapabilities: PVOID,
    pub BaseMiniportIfConnectorPresent: BOOLEAN,
    pub SriovCapabilities: PVOID,
    pub NicSwitchArray: PVOID,
}

/// `NDIS_FILTER_PAUSE_PARAMETERS`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_FILTER_PAUSE_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub Flags: u32,
    pub PauseReason: u32,
}

/// `NDIS_RESTART_ATTRIBUTES`: one entry of the restart attribute list. `Data` is declared as
/// C declares it, `DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) UCHAR Data[1]`: it starts at
/// the 16-byte boundary after the header and the structure is 32 bytes. Its real length is
/// `DataLength`; read it through a raw pointer to `Data`.
#[repr(C, align(16))]
pub struct NDIS_RESTART_ATTRIBUTES {
    pub Next: *mut NDIS_RESTART_ATTRIBUTES,
    pub Oid: NDIS_OID,
    pub DataLength: u32,
    pub Data: [u8; 1],
}

/// `NDIS_RESTART_GENERAL_ATTRIBUTES`, revision 2.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_RESTART_GENERAL_ATTRIBUTES {
    pub Header: NDIS_OBJECT_HEADER,
    pub MtuSize: u32,
    pub MaxXmitLinkSpeed: u64,
    pub MaxRcvLinkSpeed: u64,
    pub LookaheadSize: u32,
    pub MacOptions: u32,
    pub SupportedPacketFilters: u32,
    pub MaxMulticastListSize: u32,
    pub RecvScaleCapabilities: PVOID,
    pub AccessType: u32,
    pub Flags: u32,
    pub ConnectionType: u32,
    pub SupportedStatistics: u32,
    pub DataBackFillSize: u32,
    pub ContextBackFillSize: u32,
    pub SupportedOidList: *mut NDIS_OID,
    pub SupportedOidListLength: u32,
    pub MaxLookaheadSizeAccessed: u32,
}

/// `NDIS_FILTER_RESTART_PARAMETERS`.
#[repr(C)]
pub struct NDIS_FILTER_RESTART_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub MiniportMediaType: NDIS_MEDIUM,
    pub MiniportPhysicalMediaType: NDIS_PHYSICAL_MEDIUM,
    pub RestartAttributes: *mut NDIS_RESTART_ATTRIBUTES,
    pub LowerIfIndex: NET_IFINDEX,
    pub LowerIfNetLuid: NET_LUID,
    pub Flags: u32,
}

// ---- OID requests --------------------------------------------------------------------------------

/// `DATA.QUERY_INFORMATION` of `NDIS_OID_REQUEST`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_OID_QUERY_INFORMATION {
    pub Oid: NDIS_OID,
    pub InformationBuffer: PVOID,
    pub InformationBufferLength: u32,
    pub BytesWritten: u32,
    pub BytesNeeded: u32,
}

/// `DATA.SET_INFORMATION` of `NDIS_OID_REQUEST`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_OID_SET_INFORMATION {
    pub Oid: NDIS_OID,
    pub InformationBuffer: PVOID,
    pub InformationBufferLength: u32,
    pub BytesRead: u32,
    pub BytesNeeded: u32,
}

/// `DATA.METHOD_INFORMATION` of `NDIS_OID_REQUEST`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_OID_METHOD_INFORMATION {
    pub Oid: NDIS_OID,
    pub InformationBuffer: PVOID,
    pub InputBufferLength: u32,
    pub OutputBufferLength: u32,
    pub MethodId: u32,
    pub BytesWritten: u32,
    pub BytesRead: u32,
    pub BytesNeeded: u32,
}

/// The `DATA` union of `NDIS_OID_REQUEST`; `RequestType` says which view is live.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NDIS_OID_REQUEST_DATA {
    pub QUERY_INFORMATION: NDIS_OID_QUERY_INFORMATION,
    pub SET_INFORMATION: NDIS_OID_SET_INFORMATION,
    pub METHOD_INFORMATION: NDIS_OID_METHOD_INFORMATION,
}

/// `NDIS_OID_REQUEST`, revision 2 (NDIS 6.50).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NDIS_OID_REQUEST {
    pub Header: NDIS_OBJECT_HEADER,
    pub RequestType: NDIS_REQUEST_TYPE,
    pub PortNumber: NDIS_PORT_NUMBER,
    pub Timeout: u32,
    pub RequestId: PVOID,
    pub RequestHandle: NDIS_HANDLE,
    pub DATA: NDIS_OID_REQUEST_DATA,
    pub NdisReserved: [PVOID; 16],
    pub MiniportReserved: [PVOID; 2],
    pub SourceReserved: [PVOID; 2],
    pub SupportedRevision: u8,
    pub Reserved1: u8,
    pub Reserved2: u16,
    pub SwitchId: u32,
    pub VPortId: u32,
    pub Flags: u32,
}

/// `NDIS_STATUS_INDICATION`.
#[repr(C)]
pub struct NDIS_STATUS_INDICATION {
    pub Header: NDIS_OBJECT_HEADER,
    pub SourceHandle: NDIS_HANDLE,
    pub PortNumber: NDIS_PORT_NUMBER,
    pub StatusCode: NDIS_STATUS,
    pub Flags: u32,
    pub DestinationHandle: NDIS_HANDLE,
    pub RequestId: PVOID,
    pub StatusBuffer: *mut c_void,
    pub StatusBufferSize: u32,
    pub Guid: GUID,
    pub NdisReserved: [PVOID; 4],
}

// ---- Control device ------------------------------------------------------------------------------

/// `NDIS_DEVICE_OBJECT_ATTRIBUTES`, for `NdisRegisterDeviceEx`.
#[repr(C)]
pub struct NDIS_DEVICE_OBJECT_ATTRIBUTES {
    pub Header: NDIS_OBJECT_HEADER,
    pub DeviceName: *mut NDIS_STRING,
    pub SymbolicName: *mut NDIS_STRING,
    /// `IRP_MJ_COUNT` dispatch routines (NDIS copies the table).
    pub MajorFunctions: *mut PDRIVER_DISPATCH,
    /// Bytes of the extension `NdisGetDeviceReservedExtension` returns.
    pub ExtensionSize: u32,
    pub DefaultSDDLString: *const UNICODE_STRING,
    pub DeviceClassGuid: *const GUID,
}

/// `NDIS_TIMER_FUNCTION` (`NetTimerCallback`), called at DISPATCH_LEVEL when a timer fires.
pub type PNDIS_TIMER_FUNCTION = Option<
    unsafe extern "win64" fn(
        SystemSpecific1: PVOID,
        FunctionContext: PVOID,
        SystemSpecific2: PVOID,
        SystemSpecific3: PVOID,
    ),
>;

/// `NDIS_TIMER_CHARACTERISTICS`, for `NdisAllocateTimerObject`.
#[repr(C)]
pub struct NDIS_TIMER_CHARACTERISTICS {
    pub Header: NDIS_OBJECT_HEADER,
    pub AllocationTag: u32,
    pub TimerFunction: PNDIS_TIMER_FUNCTION,
    pub FunctionContext: PVOID,
}

// ---- NBL accessors (the WDK's macros) ----------------------------------------------------------

/// `NET_BUFFER_LIST_CONTEXT_DATA_START(nbl)`: the start of the NBL's context area (the pool's
/// `ContextSize` bytes for an NBL from a pool with a context).
///
/// # Safety
/// `nbl` is a valid NBL whose `Context` is set (allocated with a non-zero context size).
pub unsafe fn NET_BUFFER_LIST_CONTEXT_DATA_START(nbl: *mut NET_BUFFER_LIST) -> *mut u8 {
    // SAFETY: caller's contract: `Context` points to a valid context header.
    let ctx = unsafe { (*nbl).Context };
    // SAFETY: as above.
    let offset = usize::from(unsafe { (*ctx).Offset });
    // The data starts after the header (`Context + 1` in C), at `Offset`.
    ctx.cast::<u8>()
        .wrapping_add(core::mem::size_of::<NET_BUFFER_LIST_CONTEXT>() + offset)
}

/// The `Ieee8021QNetBufferListInfo` value for an 802.1Q tag control word: the
/// `NDIS_NET_BUFFER_LIST_8021Q_INFO.TagHeader` bit fields (UserPriority bits 0-2,
/// CanonicalFormatId bit 3, VlanId bits 4-15).
pub const fn ieee8021q_info_from_tci(tci: u16) -> usize {
    let priority = (tci >> 13) & 0x7;
    let cfi = (tci >> 12) & 0x1;
    let vlan = tci & 0x0FFF;
    (priority as usize) | (cfi as usize) << 3 | (vlan as usize) << 4
}

/// The 802.1Q tag control word of an `Ieee8021QNetBufferListInfo` value.
pub const fn tci_from_ieee8021q_info(info: usize) -> u16 {
    let priority = (info & 0x7) as u16;
    let cfi = ((info >> 3) & 0x1) as u16;
    let vlan = ((info >> 4) & 0x0FFF) as u16;
    priority << 13 | cfi << 12 | vlan
}

#[cfg(test)]
mod accessor_tests {
    use super::*;

    #[test]
    fn ieee8021q_info_round_trips_and_places_the_fields() {
        // Priority 5, CFI 0, VLAN 100: 0xA064.
        let info = ieee8021q_info_from_tci(0xA064);
        assert_eq!(info, 5 | 100 << 4);
        assert_eq!(tci_from_ieee8021q_info(info), 0xA064);
        for tci in [0u16, 1, 0x0FFF, 0x1000, 0xE000, 0xFFFF] {
            assert_eq!(tci_from_ieee8021q_info(ieee8021q_info_from_tci(tci)), tci);
        }
    }
}

// ---- what a WDK-built filter uses beyond rxinject ----------------------------------------------

/// `NDIS_EVENT`: a notification `KEVENT`.
#[repr(C)]
pub struct NDIS_EVENT {
    pub Event: KEVENT,
}

/// `NDIS_CONFIGURATION_OBJECT`, for `NdisOpenConfigurationEx`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NDIS_CONFIGURATION_OBJECT {
    pub Header: NDIS_OBJECT_HEADER,
    pub NdisHandle: NDIS_HANDLE,
    pub Flags: u32,
}

/// `BINARY_DATA` of an `NDIS_CONFIGURATION_PARAMETER`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BINARY_DATA {
    pub Length: u16,
    pub Buffer: PVOID,
}

/// The `ParameterData` union of `NDIS_CONFIGURATION_PARAMETER`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NDIS_CONFIGURATION_PARAMETER_DATA {
    pub IntegerData: u32,
    pub StringData: NDIS_STRING,
    pub BinaryData: BINARY_DATA,
}

/// `NDIS_CONFIGURATION_PARAMETER`: a value `NdisReadConfiguration` returns (NDIS owns it
/// until the configuration handle is closed).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NDIS_CONFIGURATION_PARAMETER {
    /// `NDIS_PARAMETER_TYPE`.
    pub ParameterType: u32,
    pub ParameterData: NDIS_CONFIGURATION_PARAMETER_DATA,
}

/// `NET_BUFFER_POOL_PARAMETERS` (revision 1), for `NdisAllocateNetBufferPool`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_BUFFER_POOL_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub PoolTag: u32,
    pub DataSize: u32,
}

/// `NET_BUFFER_ALLOCATE_MDL_HANDLER`: allocates an MDL with a buffer of at least
/// `*BufferSize` bytes for `NdisRetreatNetBufferDataStart` (and sets `*BufferSize` to its size).
pub type NET_BUFFER_ALLOCATE_MDL_HANDLER = Option<unsafe extern "win64" fn(BufferSize: *mut u32) -> *mut MDL>;
/// `NET_BUFFER_FREE_MDL_HANDLER`: frees what a `NET_BUFFER_ALLOCATE_MDL_HANDLER` allocated.
pub type NET_BUFFER_FREE_MDL_HANDLER = Option<unsafe extern "win64" fn(Mdl: *mut MDL)>;

/// `NDIS_IO_WORKITEM_ROUTINE`.
pub type NDIS_IO_WORKITEM_ROUTINE =
    Option<unsafe extern "win64" fn(WorkItemContext: PVOID, NdisIoWorkItemHandle: NDIS_HANDLE)>;
