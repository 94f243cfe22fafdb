//! Constants from `ndis.h`, `wdm.h` and `dpfilter.h` (values as documented for NDIS 6.x on
//! x64; `tests/constants.rs` compares them with `windows-sys`).

use crate::types::*;

// ---- NDIS_OBJECT_HEADER types ----------------------------------------------------------
pub const NDIS_OBJECT_TYPE_DEFAULT: u8 = 0x80;
pub const NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES: u8 = 0x85;
pub const NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS: u8 = 0x8B;
pub const NDIS_OBJECT_TYPE_FILTER_PARTIAL_CHARACTERISTICS: u8 = 0x8C;
pub const NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES: u8 = 0x8D;
pub const NDIS_OBJECT_TYPE_OID_REQUEST: u8 = 0x96;
pub const NDIS_OBJECT_TYPE_STATUS_INDICATION: u8 = 0x98;
pub const NDIS_OBJECT_TYPE_FILTER_ATTACH_PARAMETERS: u8 = 0x99;
pub const NDIS_OBJECT_TYPE_FILTER_PAUSE_PARAMETERS: u8 = 0x9A;
pub const NDIS_OBJECT_TYPE_FILTER_RESTART_PARAMETERS: u8 = 0x9B;
pub const NDIS_OBJECT_TYPE_RESTART_GENERAL_ATTRIBUTES: u8 = 0xA2;

// ---- Revisions and the sizes that go with them -------------------------------------------
pub const NDIS_FILTER_CHARACTERISTICS_REVISION_1: u8 = 1;
pub const NDIS_FILTER_CHARACTERISTICS_REVISION_2: u8 = 2;
/// `RTL_SIZEOF_THROUGH_FIELD(NDIS_FILTER_DRIVER_CHARACTERISTICS, StatusHandler)`.
pub const NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_1: u16 = 200;
/// Through `CancelDirectOidRequestHandler` (NDIS 6.1 to 6.7x).
pub const NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2: u16 = 224;

pub const NDIS_FILTER_ATTRIBUTES_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_FILTER_ATTRIBUTES_REVISION_1: u16 = 8;

pub const NDIS_FILTER_ATTACH_PARAMETERS_REVISION_1: u8 = 1;
pub const NDIS_FILTER_ATTACH_PARAMETERS_REVISION_4: u8 = 4;
/// Through `Flags`.
pub const NDIS_SIZEOF_FILTER_ATTACH_PARAMETERS_REVISION_1: u16 = 164;
/// Through `NicSwitchArray` (NDIS 6.30).
pub const NDIS_SIZEOF_FILTER_ATTACH_PARAMETERS_REVISION_4: u16 = 224;

pub const NDIS_FILTER_PAUSE_PARAMETERS_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_FILTER_PAUSE_PARAMETERS_REVISION_1: u16 = 12;
pub const NDIS_FILTER_RESTART_PARAMETERS_REVISION_1: u8 = 1;
/// `RTL_SIZEOF_THROUGH_FIELD(NDIS_FILTER_RESTART_PARAMETERS, Flags)`; the WDK spells the name
/// with two underscores.
pub const NDIS_SIZEOF__FILTER_RESTART_PARAMETERS_REVISION_1: u16 = 44;
pub const NDIS_RESTART_GENERAL_ATTRIBUTES_REVISION_1: u8 = 1;
pub const NDIS_RESTART_GENERAL_ATTRIBUTES_REVISION_2: u8 = 2;
/// Through `SupportedOidListLength`.
pub const NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_1: u16 = 84;
/// Through `MaxLookaheadSizeAccessed` (NDIS 6.20).
pub const NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_2: u16 = 88;

pub const NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1: u16 = 16;

pub const NDIS_OID_REQUEST_REVISION_1: u8 = 1;
pub const NDIS_OID_REQUEST_REVISION_2: u8 = 2;
/// Through `Reserved2`.
pub const NDIS_SIZEOF_OID_REQUEST_REVISION_1: u16 = 236;
/// Through `Flags` (NDIS 6.50).
pub const NDIS_SIZEOF_OID_REQUEST_REVISION_2: u16 = 248;

pub const NDIS_STATUS_INDICATION_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_STATUS_INDICATION_REVISION_1: u16 = 112;

// ---- The NDIS version this driver registers for ------------------------------------------
/// NDIS 6.50 (Windows 10): characteristics revision 2.
pub const NDIS_FILTER_MAJOR_VERSION: u8 = 6;
pub const NDIS_FILTER_MINOR_VERSION: u8 = 50;

// ---- Media ---------------------------------------------------------------------------------
pub const NdisMedium802_3: NDIS_MEDIUM = 0;
pub const NdisMedium802_5: NDIS_MEDIUM = 1;
pub const NdisMediumWan: NDIS_MEDIUM = 3;
pub const NdisMediumNative802_11: NDIS_MEDIUM = 16;
pub const NdisMediumIP: NDIS_MEDIUM = 19;
pub const NdisPhysicalMediumUnspecified: NDIS_PHYSICAL_MEDIUM = 0;
pub const NdisPhysicalMedium802_3: NDIS_PHYSICAL_MEDIUM = 14;
pub const MediaConnectStateUnknown: NDIS_MEDIA_CONNECT_STATE = 0;
pub const MediaConnectStateConnected: NDIS_MEDIA_CONNECT_STATE = 1;
pub const MediaConnectStateDisconnected: NDIS_MEDIA_CONNECT_STATE = 2;
pub const MediaDuplexStateFull: NET_IF_MEDIA_DUPLEX_STATE = 2;
/// `NDIS_MAX_PHYS_ADDRESS_LENGTH`.
pub const NDIS_MAX_PHYS_ADDRESS_LENGTH: usize = 32;

// ---- Send / receive / return / complete flags (each family is its own set: rule S7) --------
pub const NDIS_SEND_FLAGS_DISPATCH_LEVEL: u32 = 0x0000_0001;
pub const NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK: u32 = 0x0000_0002;
pub const NDIS_SEND_FLAGS_SINGLE_QUEUE: u32 = 0x0000_0004;
pub const NDIS_SEND_FLAGS_SWITCH_DESTINATION_GROUP: u32 = 0x0000_0010;
pub const NDIS_SEND_FLAGS_SWITCH_SINGLE_SOURCE: u32 = 0x0000_0020;

pub const NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL: u32 = 0x0000_0001;
pub const NDIS_SEND_COMPLETE_FLAGS_SINGLE_QUEUE: u32 = 0x0000_0002;
pub const NDIS_SEND_COMPLETE_FLAGS_SWITCH_SINGLE_SOURCE: u32 = 0x0000_0004;

pub const NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL: u32 = 0x0000_0001;
pub const NDIS_RECEIVE_FLAGS_RESOURCES: u32 = 0x0000_0002;
pub const NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE: u32 = 0x0000_0100;
pub const NDIS_RECEIVE_FLAGS_SINGLE_VLAN: u32 = 0x0000_0200;
pub const NDIS_RECEIVE_FLAGS_PERFECT_FILTERED: u32 = 0x0000_0400;
pub const NDIS_RECEIVE_FLAGS_SINGLE_QUEUE: u32 = 0x0000_0800;
pub const NDIS_RECEIVE_FLAGS_SHARED_MEMORY_INFO_VALID: u32 = 0x0000_1000;
pub const NDIS_RECEIVE_FLAGS_MORE_NBLS: u32 = 0x0000_2000;

pub const NDIS_RETURN_FLAGS_DISPATCH_LEVEL: u32 = 0x0000_0001;
pub const NDIS_RETURN_FLAGS_SINGLE_QUEUE: u32 = 0x0000_0002;
pub const NDIS_RETURN_FLAGS_SWITCH_SINGLE_SOURCE: u32 = 0x0000_0004;

/// `NDIS_DEFAULT_PORT_NUMBER`.
pub const NDIS_DEFAULT_PORT_NUMBER: NDIS_PORT_NUMBER = 0;

// ---- OID requests ----------------------------------------------------------------------------
pub const NdisRequestQueryInformation: NDIS_REQUEST_TYPE = 0;
pub const NdisRequestSetInformation: NDIS_REQUEST_TYPE = 1;
pub const NdisRequestQueryStatistics: NDIS_REQUEST_TYPE = 2;
pub const NdisRequestMethod: NDIS_REQUEST_TYPE = 12;

pub const OID_GEN_MEDIA_SUPPORTED: NDIS_OID = 0x0001_0103;
pub const OID_GEN_MAXIMUM_FRAME_SIZE: NDIS_OID = 0x0001_0106;
pub const OID_GEN_CURRENT_PACKET_FILTER: NDIS_OID = 0x0001_010E;
pub const OID_GEN_LINK_STATE: NDIS_OID = 0x0001_0207;
pub const OID_GEN_MINIPORT_RESTART_ATTRIBUTES: NDIS_OID = 0x0001_021D;
pub const OID_GEN_XMIT_OK: NDIS_OID = 0x0002_0101;
pub const OID_GEN_STATISTICS: NDIS_OID = 0x0002_0106;
pub const OID_GEN_HARDWARE_STATUS: NDIS_OID = 0x0001_0102;
pub const OID_GEN_MEDIA_IN_USE: NDIS_OID = 0x0001_0104;
pub const OID_GEN_MAXIMUM_LOOKAHEAD: NDIS_OID = 0x0001_0105;
/// In units of 100 bit/s.
pub const OID_GEN_LINK_SPEED: NDIS_OID = 0x0001_0107;
pub const OID_GEN_VENDOR_DESCRIPTION: NDIS_OID = 0x0001_010D;
pub const OID_GEN_CURRENT_LOOKAHEAD: NDIS_OID = 0x0001_010F;
pub const OID_GEN_MAXIMUM_TOTAL_SIZE: NDIS_OID = 0x0001_0111;
pub const OID_GEN_MEDIA_CONNECT_STATUS: NDIS_OID = 0x0001_0114;
pub const OID_GEN_PHYSICAL_MEDIUM: NDIS_OID = 0x0001_0202;
pub const OID_GEN_PHYSICAL_MEDIUM_EX: NDIS_OID = 0x0001_0213;
pub const OID_802_3_MULTICAST_LIST: NDIS_OID = 0x0101_0103;
pub const OID_802_3_MAXIMUM_LIST_SIZE: NDIS_OID = 0x0101_0104;
pub const OID_802_3_PERMANENT_ADDRESS: NDIS_OID = 0x0101_0101;
pub const OID_802_3_CURRENT_ADDRESS: NDIS_OID = 0x0101_0102;

// ---- Pause reasons -------------------------------------------------------------------------------
pub const NDIS_PAUSE_NDIS_INTERNAL: u32 = 0x0000_0001;
pub const NDIS_PAUSE_LOW_POWER: u32 = 0x0000_0002;
pub const NDIS_PAUSE_BIND_PROTOCOL: u32 = 0x0000_0004;
pub const NDIS_PAUSE_UNBIND_PROTOCOL: u32 = 0x0000_0008;
pub const NDIS_PAUSE_ATTACH_FILTER: u32 = 0x0000_0010;
pub const NDIS_PAUSE_DETACH_FILTER: u32 = 0x0000_0020;
pub const NDIS_PAUSE_FILTER_RESTART_STACK: u32 = 0x0000_0040;
pub const NDIS_PAUSE_MINIPORT_DEVICE_REMOVE: u32 = 0x0000_0080;

// ---- Net buffer list info slots (`NDIS_NET_BUFFER_LIST_INFO`) ---------------------------------
pub const TcpIpChecksumNetBufferListInfo: usize = 0;
pub const IPsecOffloadV1NetBufferListInfo: usize = 1;
pub const TcpLargeSendNetBufferListInfo: usize = 2;
pub const ClassificationHandleNetBufferListInfo: usize = 3;
pub const Ieee8021QNetBufferListInfo: usize = 4;
pub const NetBufferListCancelId: usize = 5;
pub const MediaSpecificInformation: usize = 6;
pub const NetBufferListFrameType: usize = 7;
pub const NetBufferListHashValue: usize = 8;
pub const NetBufferListHashInfo: usize = 9;
pub const WfpNetBufferListInfo: usize = 10;
/// Number of `NetBufferListInfo` slots the WDK's `ndis.h` declares for an NDIS 6.50 driver
/// on x64 (`MaxNetBufferListInfo` of `NDIS_NET_BUFFER_LIST_INFO`, whose later entries are
/// under `NDIS_SUPPORT_NDIS6xx`), so the x64 `NET_BUFFER_LIST` is 0x160 bytes, as a
/// WDK-built 6.50 filter sees it. NDIS allocates every NBL with the slots of the Windows it
/// runs (29 inside `ndis.sys` since Windows 10 1903); a filter may use only the slots of its
/// own version, so a larger NBL is always compatible.
pub const MaxNetBufferListInfo: usize = 26;

// ---- NET_BUFFER_LIST flags (ndis/nbl.h) ------------------------------------------------------
/// `NET_BUFFER_LIST::Flags` bits of the protocol (NDIS 6.30 and later: bits 0x3 too).
pub const NBL_FLAGS_PROTOCOL_RESERVED: u32 = 0xFFF0_0003;
/// `NET_BUFFER_LIST::Flags` bits of the miniport.
pub const NBL_FLAGS_MINIPORT_RESERVED: u32 = 0x0000_F000;
/// `NET_BUFFER_LIST::Flags` bits of the current owner.
pub const NBL_FLAGS_SCRATCH: u32 = 0x000F_0000;
/// `NET_BUFFER_LIST::Flags` bits NDIS keeps (NDIS 6.30 and later).
pub const NBL_FLAGS_NDIS_RESERVED: u32 = 0x0000_0FFC;
/// `NET_BUFFER_LIST::NblFlags` bits reserved for NDIS ("Bits 0x04 to 0x80 are reserved for
/// use by NDIS").
pub const NDIS_NBL_FLAGS_NDIS_RESERVED: u32 = 0x0000_00FC;

// ---- Memory --------------------------------------------------------------------------------------
/// `NormalPoolPriority`.
pub const NormalPoolPriority: EX_POOL_PRIORITY = 16;
/// `POOL_FLAG_NON_PAGED`.
pub const POOL_FLAG_NON_PAGED: POOL_FLAGS = 0x0000_0000_0000_0040;
/// `POOL_FLAG_UNINITIALIZED`.
pub const POOL_FLAG_UNINITIALIZED: POOL_FLAGS = 0x0000_0000_0000_0002;

// ---- packet filter (OID_GEN_CURRENT_PACKET_FILTER; ntddndis.h) ------------------------------------
pub const NDIS_PACKET_TYPE_DIRECTED: u32 = 0x0000_0001;
pub const NDIS_PACKET_TYPE_MULTICAST: u32 = 0x0000_0002;
pub const NDIS_PACKET_TYPE_ALL_MULTICAST: u32 = 0x0000_0004;
pub const NDIS_PACKET_TYPE_BROADCAST: u32 = 0x0000_0008;
pub const NDIS_PACKET_TYPE_PROMISCUOUS: u32 = 0x0000_0020;
/// Everything sent by local protocols and indicated by the adapter (NDIS's loopback, not
/// the miniport's).
pub const NDIS_PACKET_TYPE_ALL_LOCAL: u32 = 0x0000_0080;
/// `NdisHardwareStatusReady` (`OID_GEN_HARDWARE_STATUS`).
pub const NdisHardwareStatusReady: u32 = 0;
/// `NdisMediaStateConnected` (`OID_GEN_MEDIA_CONNECT_STATUS`).
pub const NdisMediaStateConnected: u32 = 0;
/// `NDIS_LINK_STATE_REVISION_1`.
pub const NDIS_LINK_STATE_REVISION_1: u8 = 1;
/// `NDIS_SIZEOF_LINK_STATE_REVISION_1`: through `AutoNegotiationFlags`.
pub const NDIS_SIZEOF_LINK_STATE_REVISION_1: u16 = 40;

// ---- MDL flags -----------------------------------------------------------------------------------
pub const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x0001;
/// The pages are probed and locked (the MDL of a direct-I/O request is).
pub const MDL_PAGES_LOCKED: i16 = 0x0002;
pub const MDL_SOURCE_IS_NONPAGED_POOL: i16 = 0x0004;
/// The pages were locked for writing (the MDL of a direct-I/O read).
pub const MDL_WRITE_OPERATION: i16 = 0x0080;

// ---- DbgPrintEx ----------------------------------------------------------------------------------
pub const DPFLTR_IHVNETWORK_ID: u32 = 80;
pub const DPFLTR_ERROR_LEVEL: u32 = 0;
pub const DPFLTR_WARNING_LEVEL: u32 = 1;
pub const DPFLTR_TRACE_LEVEL: u32 = 2;
pub const DPFLTR_INFO_LEVEL: u32 = 3;

// ---- Driver and device objects, IRPs ---------------------------------------------------------------
/// `IRP_MJ_MAXIMUM_FUNCTION + 1`.
pub const IRP_MJ_COUNT: usize = 28;
pub const IRP_MJ_CREATE: u8 = 0x00;
pub const IRP_MJ_CLOSE: u8 = 0x02;
pub const IRP_MJ_READ: u8 = 0x03;
pub const IRP_MJ_WRITE: u8 = 0x04;
pub const IRP_MJ_DEVICE_CONTROL: u8 = 0x0E;
pub const IRP_MJ_CLEANUP: u8 = 0x12;
/// `DEVICE_OBJECT.Flags`: reads and writes go through a system buffer.
pub const DO_BUFFERED_IO: u32 = 0x0000_0004;
/// `DEVICE_OBJECT.Flags`: reads and writes come with a locked MDL.
pub const DO_DIRECT_IO: u32 = 0x0000_0010;
pub const DO_DEVICE_INITIALIZING: u32 = 0x0000_0080;
/// `IO_STACK_LOCATION.Control`: set by `IoMarkIrpPending`.
pub const SL_PENDING_RETURNED: u8 = 0x01;
/// `IO_NO_INCREMENT`: the priority boost for `IoCompleteRequest`.
pub const IO_NO_INCREMENT: i8 = 0;
pub const FILE_DEVICE_NETWORK: u32 = 0x0000_0012;
pub const METHOD_BUFFERED: u32 = 0;
pub const METHOD_IN_DIRECT: u32 = 1;
pub const METHOD_OUT_DIRECT: u32 = 2;
pub const METHOD_NEITHER: u32 = 3;
pub const FILE_ANY_ACCESS: u32 = 0;
pub const FILE_READ_ACCESS: u32 = 1;
pub const FILE_WRITE_ACCESS: u32 = 2;

pub const NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1: u8 = 1;
pub const NDIS_SIZEOF_DEVICE_OBJECT_ATTRIBUTES_REVISION_1: u16 = 56;

// ---- timers, time, MDL mapping -----------------------------------------------------------------

pub const NDIS_OBJECT_TYPE_TIMER_CHARACTERISTICS: u8 = 0x97;
pub const NDIS_TIMER_CHARACTERISTICS_REVISION_1: u8 = 1;
/// Through `FunctionContext` (x64).
pub const NDIS_SIZEOF_TIMER_CHARACTERISTICS_REVISION_1: u16 = 24;
/// `KPROCESSOR_MODE` `KernelMode`.
pub const KernelMode: i8 = 0;
/// `MEMORY_CACHING_TYPE` `MmCached`.
pub const MmCached: i32 = 1;
/// `MM_PAGE_PRIORITY` `NormalPagePriority`.
pub const NormalPagePriority: u32 = 16;
/// Or'ed into the priority of `MmMapLockedPagesSpecifyCache`: map without execute rights.
pub const MdlMappingNoExecute: u32 = 0x4000_0000;

// ---- configuration, NB pools (what a WDK-built filter uses beyond rxinject) --------------------
pub const NDIS_OBJECT_TYPE_CONFIGURATION_OBJECT: u8 = 0xA9;
pub const NDIS_CONFIGURATION_OBJECT_REVISION_1: u8 = 1;
/// `RTL_SIZEOF_THROUGH_FIELD(NDIS_CONFIGURATION_OBJECT, Flags)`.
pub const NDIS_SIZEOF_CONFIGURATION_OBJECT_REVISION_1: u16 = 20;
/// `NDIS_CONFIGURATION_OBJECT::Flags`: the filter module's own configuration (the module
/// handle), not the driver's.
pub const NDIS_CONFIG_FLAG_FILTER_INSTANCE_CONFIGURATION: u32 = 0x0000_0001;
/// `NDIS_PARAMETER_TYPE`.
pub const NdisParameterInteger: u32 = 0;
pub const NdisParameterHexInteger: u32 = 1;
pub const NdisParameterString: u32 = 2;
pub const NdisParameterMultiString: u32 = 3;
pub const NdisParameterBinary: u32 = 4;
pub const NET_BUFFER_POOL_PARAMETERS_REVISION_1: u8 = 1;
/// `RTL_SIZEOF_THROUGH_FIELD(NET_BUFFER_POOL_PARAMETERS, DataSize)`.
pub const NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1: u16 = 12;
