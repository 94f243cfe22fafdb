/*
 * ndis_lwf.h: the NDIS 6.50 lightweight-filter subset of ndis.h and wdm.h that rxinject's
 * bindings (crates/ndis-sys) declare, written for this project from Microsoft's reference
 * pages on learn.microsoft.com (windows-hardware/drivers/ddi/ndis/ and .../ddi/wdm/), with
 * the names, member order and types those pages and the WDK give. It is not the WDK's
 * header and contains none of it.
 *
 * Uses:
 *   - the layout probe (build.rs, `--features layout-probe`): bindgen reads this file the
 *     way the eWDK build reads the WDK's ndis.h, and src/wdk_layout.rs compares ndis-sys
 *     with the result, so a member named there that the WDK does not have fails on Linux;
 *   - C test filters built with clang --target=x86_64-pc-windows-msvc.
 *
 * The x64 Windows ABI (LLP64: `long` is 32 bits) is assumed: compile for
 * x86_64-pc-windows-msvc, with -fms-extensions.
 */
#ifndef RXINJECT_NDIS_LWF_H
#define RXINJECT_NDIS_LWF_H

#if !defined(_WIN64) || !defined(_AMD64_)
#error "ndis_lwf.h describes x64 Windows: define _WIN64 and _AMD64_"
#endif

#define MEMORY_ALLOCATION_ALIGNMENT 16
#define DECLSPEC_ALIGN(x) __declspec(align(x))

/* ---- Base types (Windows Data Types; wdm.h) ------------------------------------------- */

typedef unsigned char UCHAR, *PUCHAR;
typedef UCHAR BOOLEAN;
typedef short CSHORT;
typedef unsigned short USHORT;
typedef unsigned short WCHAR, *PWCH;
typedef int INT;
typedef unsigned int UINT;
typedef long LONG;
typedef unsigned long ULONG, *PULONG;
typedef long long LONGLONG;
typedef unsigned long long ULONGLONG, ULONG64;
typedef unsigned long long ULONG_PTR, SIZE_T;
typedef void *PVOID;
typedef UCHAR KIRQL;
typedef ULONG_PTR KSPIN_LOCK;

/* LARGE_INTEGER: a 64-bit signed integer with its two halves. */
typedef union _LARGE_INTEGER {
    struct {
        ULONG LowPart;
        LONG HighPart;
    };
    struct {
        ULONG LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER;
typedef LARGE_INTEGER PHYSICAL_ADDRESS;

/* GUID */
typedef struct _GUID {
    ULONG Data1;
    USHORT Data2;
    USHORT Data3;
    UCHAR Data4[8];
} GUID;

/* SLIST_HEADER on x64: 16 bytes, 16-byte aligned (the head of an interlocked list). */
typedef union DECLSPEC_ALIGN(16) _SLIST_HEADER {
    struct {
        ULONGLONG Alignment;
        ULONGLONG Region;
    };
    struct {
        ULONGLONG Depth : 16;
        ULONGLONG Sequence : 48;
        ULONGLONG Reserved : 4;
        ULONGLONG NextEntry : 60;
    } HeaderX64;
} SLIST_HEADER;

/* ---- WDM: UNICODE_STRING, MDL, DRIVER_OBJECT ----------------------------------------- */

/* ns-wudfwdm-_unicode_string */
typedef struct _UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    PWCH Buffer;
} UNICODE_STRING, *PUNICODE_STRING;

/* KeGetCurrentProcessorNumberEx's out parameter: a group and the number in it. */
typedef struct _PROCESSOR_NUMBER {
    USHORT Group;
    UCHAR Number;
    UCHAR Reserved;
} PROCESSOR_NUMBER, *PPROCESSOR_NUMBER;

struct _EPROCESS;

/* ns-wdm-_mdl: the documented header of a memory descriptor list; the page array follows. */
typedef struct _MDL {
    struct _MDL *Next;
    CSHORT Size;
    CSHORT MdlFlags;
    struct _EPROCESS *Process;
    PVOID MappedSystemVa;
    PVOID StartVa;
    ULONG ByteCount;
    ULONG ByteOffset;
} MDL, *PMDL;

typedef struct _DEVICE_OBJECT DEVICE_OBJECT, *PDEVICE_OBJECT;
typedef struct _DRIVER_EXTENSION *PDRIVER_EXTENSION;
typedef struct _FAST_IO_DISPATCH *PFAST_IO_DISPATCH;
typedef struct _IRP IRP, *PIRP;
typedef struct _DRIVER_OBJECT DRIVER_OBJECT, *PDRIVER_OBJECT;
typedef LONG NTSTATUS;

typedef NTSTATUS (*PDRIVER_INITIALIZE)(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath);
typedef void (*PDRIVER_STARTIO)(PDEVICE_OBJECT DeviceObject, PIRP Irp);
typedef void (*PDRIVER_UNLOAD)(PDRIVER_OBJECT DriverObject);
typedef NTSTATUS (*PDRIVER_DISPATCH)(PDEVICE_OBJECT DeviceObject, PIRP Irp);

#define IRP_MJ_MAXIMUM_FUNCTION 0x1b

/* ns-wdm-_driver_object */
struct _DRIVER_OBJECT {
    CSHORT Type;
    CSHORT Size;
    PDEVICE_OBJECT DeviceObject;
    ULONG Flags;
    PVOID DriverStart;
    ULONG DriverSize;
    PVOID DriverSection;
    PDRIVER_EXTENSION DriverExtension;
    UNICODE_STRING DriverName;
    PUNICODE_STRING HardwareDatabase;
    PFAST_IO_DISPATCH FastIoDispatch;
    PDRIVER_INITIALIZE DriverInit;
    PDRIVER_STARTIO DriverStartIo;
    PDRIVER_UNLOAD DriverUnload;
    PDRIVER_DISPATCH MajorFunction[IRP_MJ_MAXIMUM_FUNCTION + 1];
};

/* ---- NDIS basics ---------------------------------------------------------------------- */

typedef int NDIS_STATUS;
typedef PVOID NDIS_HANDLE;
typedef ULONG NDIS_OID, *PNDIS_OID;
typedef ULONG NDIS_PORT_NUMBER;
typedef ULONG NET_IFINDEX;
typedef UNICODE_STRING NDIS_STRING, *PNDIS_STRING;

#define NDIS_MAX_PHYS_ADDRESS_LENGTH 32

/* ns-ifdef-_net_luid_lh: a 64-bit locally unique interface identifier. */
typedef union _NET_LUID_LH {
    ULONG64 Value;
    struct {
        ULONG64 Reserved : 24;
        ULONG64 NetLuidIndex : 24;
        ULONG64 IfType : 16;
    } Info;
} NET_LUID_LH;
typedef NET_LUID_LH NET_LUID;

/* ns-objectheader-ndis_object_header */
typedef struct _NDIS_OBJECT_HEADER {
    UCHAR Type;
    UCHAR Revision;
    USHORT Size;
} NDIS_OBJECT_HEADER;

/* The enumerations the filter structures carry (each a 32-bit enum); their values are in
 * ndis-sys (consts.rs). */
typedef enum _NDIS_MEDIUM { NdisMedium802_3 = 0, NdisMediumMax = 20 } NDIS_MEDIUM;
typedef enum _NDIS_PHYSICAL_MEDIUM {
    NdisPhysicalMediumUnspecified = 0,
    NdisPhysicalMedium802_3 = 14,
    NdisPhysicalMediumMax = 21
} NDIS_PHYSICAL_MEDIUM;
typedef enum _NDIS_MEDIA_CONNECT_STATE {
    MediaConnectStateUnknown,
    MediaConnectStateConnected,
    MediaConnectStateDisconnected
} NDIS_MEDIA_CONNECT_STATE;
typedef enum _NET_IF_MEDIA_DUPLEX_STATE {
    MediaDuplexStateUnknown,
    MediaDuplexStateHalf,
    MediaDuplexStateFull
} NET_IF_MEDIA_DUPLEX_STATE;
typedef enum _NET_IF_ACCESS_TYPE {
    NET_IF_ACCESS_LOOPBACK = 1,
    NET_IF_ACCESS_BROADCAST = 2,
    NET_IF_ACCESS_POINT_TO_POINT = 3,
    NET_IF_ACCESS_POINT_TO_MULTI_POINT = 4,
    NET_IF_ACCESS_MAXIMUM = 5
} NET_IF_ACCESS_TYPE;
typedef enum _NET_IF_CONNECTION_TYPE {
    NET_IF_CONNECTION_DEDICATED = 1,
    NET_IF_CONNECTION_PASSIVE = 2,
    NET_IF_CONNECTION_DEMAND = 3,
    NET_IF_CONNECTION_MAXIMUM = 4
} NET_IF_CONNECTION_TYPE;
typedef enum _NDIS_REQUEST_TYPE {
    NdisRequestQueryInformation,
    NdisRequestSetInformation,
    NdisRequestQueryStatistics,
    NdisRequestOpen,
    NdisRequestClose,
    NdisRequestSend,
    NdisRequestTransferData,
    NdisRequestReset,
    NdisRequestGeneric1,
    NdisRequestGeneric2,
    NdisRequestGeneric3,
    NdisRequestGeneric4,
    NdisRequestMethod = 12
} NDIS_REQUEST_TYPE;

/* ns-ndis-_ndis_spin_lock */
typedef struct _NDIS_SPIN_LOCK {
    KSPIN_LOCK SpinLock;
    KIRQL OldIrql;
} NDIS_SPIN_LOCK;

/* ---- NET_BUFFER, NET_BUFFER_LIST ----------------------------------------------------- */

typedef struct _NET_BUFFER NET_BUFFER, *PNET_BUFFER;
typedef struct _NET_BUFFER_LIST NET_BUFFER_LIST, *PNET_BUFFER_LIST;
typedef struct _NET_BUFFER_LIST_CONTEXT NET_BUFFER_LIST_CONTEXT, *PNET_BUFFER_LIST_CONTEXT;
typedef struct _SCATTER_GATHER_LIST SCATTER_GATHER_LIST;

/* ns-nbl-net_buffer_shared_memory (NDIS 6.20) */
typedef struct _NET_BUFFER_SHARED_MEMORY NET_BUFFER_SHARED_MEMORY;
struct _NET_BUFFER_SHARED_MEMORY {
    NET_BUFFER_SHARED_MEMORY *NextSharedMemorySegment;
    ULONG SharedMemoryFlags;
    NDIS_HANDLE SharedMemoryHandle;
    ULONG SharedMemoryOffset;
    ULONG SharedMemoryLength;
};

/* ns-nbl-net_buffer: the first members share a union with an SLIST_HEADER, and DataLength
 * one with its SIZE_T view. */
struct _NET_BUFFER {
    union {
        struct {
            NET_BUFFER *Next;
            MDL *CurrentMdl;
            ULONG CurrentMdlOffset;
            union {
                ULONG DataLength;
                SIZE_T stDataLength;
            };
            MDL *MdlChain;
            ULONG DataOffset;
        };
        SLIST_HEADER Link;
    };
    USHORT ChecksumBias;
    USHORT Reserved;
    NDIS_HANDLE NdisPoolHandle;
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) PVOID NdisReserved[2];
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) PVOID ProtocolReserved[6];
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) PVOID MiniportReserved[4];
    PHYSICAL_ADDRESS DataPhysicalAddress;
    union {
        NET_BUFFER_SHARED_MEMORY *SharedMemoryInfo;
        SCATTER_GATHER_LIST *ScatterGatherList;
    };
};

/* ns-nbl-net_buffer_list_context: the context data follows the header. */
struct _NET_BUFFER_LIST_CONTEXT {
    NET_BUFFER_LIST_CONTEXT *Next;
    USHORT Size;
    USHORT Offset;
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) UCHAR ContextData[];
};

/* ne-nblinfo-ndis_net_buffer_list_info: the info slots of an NDIS 6.50 driver on x64 (the
 * enumeration grows with the NDIS version; ndis-sys consts.rs names the ones it uses). */
#define MaxNetBufferListInfo 26

/* ns-nbl-net_buffer_list */
struct _NET_BUFFER_LIST {
    union {
        struct {
            NET_BUFFER_LIST *Next;
            NET_BUFFER *FirstNetBuffer;
        };
        SLIST_HEADER Link;
    };
    NET_BUFFER_LIST_CONTEXT *Context;
    NET_BUFFER_LIST *ParentNetBufferList;
    NDIS_HANDLE NdisPoolHandle;
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) PVOID NdisReserved[2];
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) PVOID ProtocolReserved[4];
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) PVOID MiniportReserved[2];
    PVOID Scratch;
    NDIS_HANDLE SourceHandle;
    ULONG NblFlags;
    LONG ChildRefCount;
    ULONG Flags;
    union {
        NDIS_STATUS Status;
        ULONG NdisReserved2;
    };
    PVOID NetBufferListInfo[MaxNetBufferListInfo];
};

/* ns-ndis-_net_buffer_list_pool_parameters */
typedef struct _NET_BUFFER_LIST_POOL_PARAMETERS {
    NDIS_OBJECT_HEADER Header;
    UCHAR ProtocolId;
    BOOLEAN fAllocateNetBuffer;
    USHORT ContextSize;
    ULONG PoolTag;
    ULONG DataSize;
} NET_BUFFER_LIST_POOL_PARAMETERS;

/* ---- OID requests and status indications ---------------------------------------------- */

/* ns-oidrequest-ndis_oid_request (revision 2, NDIS 6.50) */
typedef struct _NDIS_OID_REQUEST {
    NDIS_OBJECT_HEADER Header;
    NDIS_REQUEST_TYPE RequestType;
    NDIS_PORT_NUMBER PortNumber;
    UINT Timeout;
    PVOID RequestId;
    NDIS_HANDLE RequestHandle;
    union _REQUEST_DATA {
        NDIS_OID Oid;
        struct _QUERY {
            NDIS_OID Oid;
            PVOID InformationBuffer;
            UINT InformationBufferLength;
            UINT BytesWritten;
            UINT BytesNeeded;
        } QUERY_INFORMATION;
        struct _SET {
            NDIS_OID Oid;
            PVOID InformationBuffer;
            UINT InformationBufferLength;
            UINT BytesRead;
            UINT BytesNeeded;
        } SET_INFORMATION;
        struct _METHOD {
            NDIS_OID Oid;
            PVOID InformationBuffer;
            ULONG InputBufferLength;
            ULONG OutputBufferLength;
            ULONG MethodId;
            UINT BytesWritten;
            UINT BytesRead;
            UINT BytesNeeded;
        } METHOD_INFORMATION;
    } DATA;
    UCHAR NdisReserved[16 * sizeof(PVOID)];
    UCHAR MiniportReserved[2 * sizeof(PVOID)];
    UCHAR SourceReserved[2 * sizeof(PVOID)];
    UCHAR SupportedRevision;
    UCHAR Reserved1;
    USHORT Reserved2;
    ULONG SwitchId;
    ULONG VPortId;
    ULONG Flags;
} NDIS_OID_REQUEST, *PNDIS_OID_REQUEST;

/* ns-ndis-_ndis_status_indication */
typedef struct _NDIS_STATUS_INDICATION {
    NDIS_OBJECT_HEADER Header;
    NDIS_HANDLE SourceHandle;
    NDIS_PORT_NUMBER PortNumber;
    NDIS_STATUS StatusCode;
    ULONG Flags;
    NDIS_HANDLE DestinationHandle;
    PVOID RequestId;
    PVOID StatusBuffer;
    ULONG StatusBufferSize;
    GUID Guid;
    PVOID NdisReserved[4];
} NDIS_STATUS_INDICATION, *PNDIS_STATUS_INDICATION;

/* ---- Filter attach, restart, pause ---------------------------------------------------- */

typedef struct _NDIS_OFFLOAD *PNDIS_OFFLOAD;
typedef struct _NDIS_HD_SPLIT_CURRENT_CONFIG *PNDIS_HD_SPLIT_CURRENT_CONFIG;
typedef struct _NDIS_RECEIVE_FILTER_CAPABILITIES *PNDIS_RECEIVE_FILTER_CAPABILITIES;
typedef struct _NDIS_NIC_SWITCH_CAPABILITIES *PNDIS_NIC_SWITCH_CAPABILITIES;
typedef struct _NDIS_SRIOV_CAPABILITIES *PNDIS_SRIOV_CAPABILITIES;
typedef struct _NDIS_NIC_SWITCH_INFO_ARRAY *PNDIS_NIC_SWITCH_INFO_ARRAY;
typedef struct _NDIS_RECEIVE_SCALE_CAPABILITIES *PNDIS_RECEIVE_SCALE_CAPABILITIES;

/* ns-ndis-_ndis_filter_attach_parameters (revision 4, NDIS 6.30 and later) */
typedef struct _NDIS_FILTER_ATTACH_PARAMETERS {
    NDIS_OBJECT_HEADER Header;
    NET_IFINDEX IfIndex;
    NET_LUID NetLuid;
    PNDIS_STRING FilterModuleGuidName;
    NET_IFINDEX BaseMiniportIfIndex;
    PNDIS_STRING BaseMiniportInstanceName;
    PNDIS_STRING BaseMiniportName;
    NDIS_MEDIA_CONNECT_STATE MediaConnectState;
    NET_IF_MEDIA_DUPLEX_STATE MediaDuplexState;
    ULONG64 XmitLinkSpeed;
    ULONG64 RcvLinkSpeed;
    NDIS_MEDIUM MiniportMediaType;
    NDIS_PHYSICAL_MEDIUM MiniportPhysicalMediaType;
    NDIS_HANDLE MiniportMediaSpecificAttributes;
    PNDIS_OFFLOAD DefaultOffloadConfiguration;
    USHORT MacAddressLength;
    UCHAR CurrentMacAddress[NDIS_MAX_PHYS_ADDRESS_LENGTH];
    NET_LUID BaseMiniportNetLuid;
    NET_IFINDEX LowerIfIndex;
    NET_LUID LowerIfNetLuid;
    ULONG Flags;
    PNDIS_HD_SPLIT_CURRENT_CONFIG HDSplitCurrentConfig;
    PNDIS_RECEIVE_FILTER_CAPABILITIES ReceiveFilterCapabilities;
    PDEVICE_OBJECT MiniportPhysicalDeviceObject;
    PNDIS_NIC_SWITCH_CAPABILITIES NicSwitchCapabilities;
    BOOLEAN BaseMiniportIfConnectorPresent;
    PNDIS_SRIOV_CAPABILITIES SriovCapabilities;
    PNDIS_NIC_SWITCH_INFO_ARRAY NicSwitchArray;
} NDIS_FILTER_ATTACH_PARAMETERS, *PNDIS_FILTER_ATTACH_PARAMETERS;

/* ns-ndis-_ndis_restart_attributes: Data holds DataLength bytes. */
typedef struct _NDIS_RESTART_ATTRIBUTES NDIS_RESTART_ATTRIBUTES, *PNDIS_RESTART_ATTRIBUTES;
struct _NDIS_RESTART_ATTRIBUTES {
    PNDIS_RESTART_ATTRIBUTES Next;
    NDIS_OID Oid;
    ULONG DataLength;
    DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) UCHAR Data[1];
};

/* ns-ndis-_ndis_restart_general_attributes (revision 2) */
typedef struct _NDIS_RESTART_GENERAL_ATTRIBUTES {
    NDIS_OBJECT_HEADER Header;
    ULONG MtuSize;
    ULONG64 MaxXmitLinkSpeed;
    ULONG64 MaxRcvLinkSpeed;
    ULONG LookaheadSize;
    ULONG MacOptions;
    ULONG SupportedPacketFilters;
    ULONG MaxMulticastListSize;
    PNDIS_RECEIVE_SCALE_CAPABILITIES RecvScaleCapabilities;
    NET_IF_ACCESS_TYPE AccessType;
    ULONG Flags;
    NET_IF_CONNECTION_TYPE ConnectionType;
    ULONG SupportedStatistics;
    ULONG DataBackFillSize;
    ULONG ContextBackFillSize;
    PNDIS_OID SupportedOidList;
    ULONG SupportedOidListLength;
    ULONG MaxLookaheadSizeAccessed;
} NDIS_RESTART_GENERAL_ATTRIBUTES;

/* ns-ndis-_ndis_filter_restart_parameters */
typedef struct _NDIS_FILTER_RESTART_PARAMETERS {
    NDIS_OBJECT_HEADER Header;
    NDIS_MEDIUM MiniportMediaType;
    NDIS_PHYSICAL_MEDIUM MiniportPhysicalMediaType;
    PNDIS_RESTART_ATTRIBUTES RestartAttributes;
    NET_IFINDEX LowerIfIndex;
    NET_LUID LowerIfNetLuid;
    ULONG Flags;
} NDIS_FILTER_RESTART_PARAMETERS, *PNDIS_FILTER_RESTART_PARAMETERS;

/* ns-ndis-_ndis_filter_pause_parameters */
typedef struct _NDIS_FILTER_PAUSE_PARAMETERS {
    NDIS_OBJECT_HEADER Header;
    ULONG Flags;
    ULONG PauseReason;
} NDIS_FILTER_PAUSE_PARAMETERS, *PNDIS_FILTER_PAUSE_PARAMETERS;

/* ns-ndis-_ndis_filter_attributes */
typedef struct _NDIS_FILTER_ATTRIBUTES {
    NDIS_OBJECT_HEADER Header;
    ULONG Flags;
} NDIS_FILTER_ATTRIBUTES, *PNDIS_FILTER_ATTRIBUTES;

/* ---- Filter driver characteristics ---------------------------------------------------- */

typedef struct _NET_PNP_EVENT_NOTIFICATION *PNET_PNP_EVENT_NOTIFICATION;
typedef struct _NET_DEVICE_PNP_EVENT *PNET_DEVICE_PNP_EVENT;

/* The FilterXxx callbacks (nc-ndis-filter_*), as the characteristics hold them. */
typedef NDIS_STATUS (*SET_OPTIONS_HANDLER)(NDIS_HANDLE NdisDriverHandle, NDIS_HANDLE DriverContext);
typedef NDIS_STATUS (*FILTER_SET_FILTER_MODULE_OPTIONS_HANDLER)(NDIS_HANDLE FilterModuleContext);
typedef NDIS_STATUS (*FILTER_ATTACH_HANDLER)(NDIS_HANDLE NdisFilterHandle,
                                             NDIS_HANDLE FilterDriverContext,
                                             PNDIS_FILTER_ATTACH_PARAMETERS AttachParameters);
typedef void (*FILTER_DETACH_HANDLER)(NDIS_HANDLE FilterModuleContext);
typedef NDIS_STATUS (*FILTER_RESTART_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                              PNDIS_FILTER_RESTART_PARAMETERS RestartParameters);
typedef NDIS_STATUS (*FILTER_PAUSE_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                            PNDIS_FILTER_PAUSE_PARAMETERS PauseParameters);
typedef void (*FILTER_SEND_NET_BUFFER_LISTS_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                                     PNET_BUFFER_LIST NetBufferList,
                                                     NDIS_PORT_NUMBER PortNumber, ULONG SendFlags);
typedef void (*FILTER_SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                                              PNET_BUFFER_LIST NetBufferList,
                                                              ULONG SendCompleteFlags);
typedef void (*FILTER_CANCEL_SEND_HANDLER)(NDIS_HANDLE FilterModuleContext, PVOID CancelId);
typedef void (*FILTER_RECEIVE_NET_BUFFER_LISTS_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                                        PNET_BUFFER_LIST NetBufferLists,
                                                        NDIS_PORT_NUMBER PortNumber,
                                                        ULONG NumberOfNetBufferLists,
                                                        ULONG ReceiveFlags);
typedef void (*FILTER_RETURN_NET_BUFFER_LISTS_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                                       PNET_BUFFER_LIST NetBufferLists,
                                                       ULONG ReturnFlags);
typedef NDIS_STATUS (*FILTER_OID_REQUEST_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                                  PNDIS_OID_REQUEST OidRequest);
typedef void (*FILTER_OID_REQUEST_COMPLETE_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                                    PNDIS_OID_REQUEST OidRequest,
                                                    NDIS_STATUS Status);
typedef void (*FILTER_CANCEL_OID_REQUEST_HANDLER)(NDIS_HANDLE FilterModuleContext, PVOID RequestId);
typedef void (*FILTER_DEVICE_PNP_EVENT_NOTIFY_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                                       PNET_DEVICE_PNP_EVENT NetDevicePnPEvent);
typedef NDIS_STATUS (*FILTER_NET_PNP_EVENT_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                                    PNET_PNP_EVENT_NOTIFICATION NetPnPEventNotification);
typedef void (*FILTER_STATUS_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                      PNDIS_STATUS_INDICATION StatusIndication);
typedef NDIS_STATUS (*FILTER_DIRECT_OID_REQUEST_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                                         PNDIS_OID_REQUEST OidRequest);
typedef void (*FILTER_DIRECT_OID_REQUEST_COMPLETE_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                                           PNDIS_OID_REQUEST OidRequest,
                                                           NDIS_STATUS Status);
typedef void (*FILTER_CANCEL_DIRECT_OID_REQUEST_HANDLER)(NDIS_HANDLE FilterModuleContext,
                                                         PVOID RequestId);

/* ns-ndis-_ndis_filter_driver_characteristics (revision 2, NDIS 6.1 and later) */
typedef struct _NDIS_FILTER_DRIVER_CHARACTERISTICS {
    NDIS_OBJECT_HEADER Header;
    UCHAR MajorNdisVersion;
    UCHAR MinorNdisVersion;
    UCHAR MajorDriverVersion;
    UCHAR MinorDriverVersion;
    ULONG Flags;
    NDIS_STRING FriendlyName;
    NDIS_STRING UniqueName;
    NDIS_STRING ServiceName;
    SET_OPTIONS_HANDLER SetOptionsHandler;
    FILTER_SET_FILTER_MODULE_OPTIONS_HANDLER SetFilterModuleOptionsHandler;
    FILTER_ATTACH_HANDLER AttachHandler;
    FILTER_DETACH_HANDLER DetachHandler;
    FILTER_RESTART_HANDLER RestartHandler;
    FILTER_PAUSE_HANDLER PauseHandler;
    FILTER_SEND_NET_BUFFER_LISTS_HANDLER SendNetBufferListsHandler;
    FILTER_SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER SendNetBufferListsCompleteHandler;
    FILTER_CANCEL_SEND_HANDLER CancelSendNetBufferListsHandler;
    FILTER_RECEIVE_NET_BUFFER_LISTS_HANDLER ReceiveNetBufferListsHandler;
    FILTER_RETURN_NET_BUFFER_LISTS_HANDLER ReturnNetBufferListsHandler;
    FILTER_OID_REQUEST_HANDLER OidRequestHandler;
    FILTER_OID_REQUEST_COMPLETE_HANDLER OidRequestCompleteHandler;
    FILTER_CANCEL_OID_REQUEST_HANDLER CancelOidRequestHandler;
    FILTER_DEVICE_PNP_EVENT_NOTIFY_HANDLER DevicePnPEventNotifyHandler;
    FILTER_NET_PNP_EVENT_HANDLER NetPnPEventHandler;
    FILTER_STATUS_HANDLER StatusHandler;
    FILTER_DIRECT_OID_REQUEST_HANDLER DirectOidRequestHandler;
    FILTER_DIRECT_OID_REQUEST_COMPLETE_HANDLER DirectOidRequestCompleteHandler;
    FILTER_CANCEL_DIRECT_OID_REQUEST_HANDLER CancelDirectOidRequestHandler;
} NDIS_FILTER_DRIVER_CHARACTERISTICS;

#endif /* RXINJECT_NDIS_LWF_H */
