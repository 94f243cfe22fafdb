/*
 * lwf_sample.h: what the C sample filters use beyond ndis_lwf.h (crates/ndis-sys/c): the
 * I/O manager's structures a control device touches, kernel events, configuration, the
 * prototypes of the imported functions, and ndis.h's NDIS_WDM spin-lock macros, which turn
 * the NdisXxxSpinLock calls into the Ke functions as a WDK build does. Written for this
 * project from Microsoft's reference pages (learn.microsoft.com, windows-hardware/drivers/
 * ddi/wdm, ddi/ndis, ddi/nblapi); the layouts equal ndis-sys's, which are checked against the
 * WDK (static asserts below). It is not the WDK's header and contains none of it.
 */
#ifndef RXINJECT_LWF_SAMPLE_H
#define RXINJECT_LWF_SAMPLE_H

#include "ndis_lwf.h"

#define NTAPI
#define DECLSPEC_IMPORT __declspec(dllimport)
#define NDIS_API DECLSPEC_IMPORT
#define TRUE 1
#define FALSE 0
#define NULL ((void *)0)
#define ASSERT_SIZE(t, n) _Static_assert(sizeof(t) == (n), "sizeof(" #t ") != " #n)
#define ASSERT_OFFSET(t, f, n) _Static_assert(__builtin_offsetof(t, f) == (n), #t "." #f " != " #n)

typedef unsigned char *PUCHAR8;
typedef const WCHAR *PCWSTR;
typedef const char *PCSTR;
typedef char CHAR, CCHAR, *PCHAR;
typedef ULONG *PULONG;
typedef LONG *PLONG;
typedef KIRQL *PKIRQL;
typedef KSPIN_LOCK *PKSPIN_LOCK;
typedef NDIS_STATUS *PNDIS_STATUS;
typedef NDIS_HANDLE *PNDIS_HANDLE;

/* ---- NT status values (ntstatus.h; ndis-sys status.rs) --------------------------------- */
#define STATUS_SUCCESS ((NTSTATUS)0x00000000L)
#define STATUS_PENDING ((NTSTATUS)0x00000103L)
#define STATUS_TIMEOUT ((NTSTATUS)0x00000102L)
#define STATUS_UNSUCCESSFUL ((NTSTATUS)0xC0000001L)
#define STATUS_INVALID_PARAMETER ((NTSTATUS)0xC000000DL)
#define STATUS_ACCESS_DENIED ((NTSTATUS)0xC0000022L)
#define STATUS_INVALID_DEVICE_REQUEST ((NTSTATUS)0xC0000010L)
#define STATUS_BUFFER_TOO_SMALL ((NTSTATUS)0xC0000023L)
#define STATUS_INSUFFICIENT_RESOURCES ((NTSTATUS)0xC000009AL)
#define STATUS_DEVICE_NOT_READY ((NTSTATUS)0xC00000A3L)
#define NT_SUCCESS(s) (((NTSTATUS)(s)) >= 0)

#define NDIS_STATUS_SUCCESS ((NDIS_STATUS)STATUS_SUCCESS)
#define NDIS_STATUS_PENDING ((NDIS_STATUS)STATUS_PENDING)
#define NDIS_STATUS_FAILURE ((NDIS_STATUS)STATUS_UNSUCCESSFUL)
#define NDIS_STATUS_RESOURCES ((NDIS_STATUS)STATUS_INSUFFICIENT_RESOURCES)
#define NDIS_STATUS_PAUSED ((NDIS_STATUS)0xC023002AL)
#define NDIS_STATUS_UNSUPPORTED_MEDIA ((NDIS_STATUS)0xC0010019L)

/* ---- IRQL, pool ------------------------------------------------------------------------- */
#define PASSIVE_LEVEL 0
#define APC_LEVEL 1
#define DISPATCH_LEVEL 2
typedef enum _EX_POOL_PRIORITY { LowPoolPriority = 0, NormalPoolPriority = 16, HighPoolPriority = 32 } EX_POOL_PRIORITY;
#define NonPagedPoolNx 512
typedef ULONG64 POOL_FLAGS;
#define POOL_FLAG_NON_PAGED 0x0000000000000040ULL

/* ---- I/O manager (wdm.h): what a control device's dispatch routines touch ------------------ */
typedef struct _LIST_ENTRY {
    struct _LIST_ENTRY *Flink;
    struct _LIST_ENTRY *Blink;
} LIST_ENTRY, *PLIST_ENTRY;

typedef struct _IO_STATUS_BLOCK {
    union {
        NTSTATUS Status;
        PVOID Pointer;
    };
    ULONG_PTR Information;
} IO_STATUS_BLOCK, *PIO_STATUS_BLOCK;

/* ns-wdm-_file_object: the members before FileName, as the documentation lists them. */
typedef struct _FILE_OBJECT {
    CSHORT Type;
    CSHORT Size;
    PDEVICE_OBJECT DeviceObject;
    PVOID Vpb;
    PVOID FsContext;
    PVOID FsContext2;
    PVOID SectionObjectPointer;
    PVOID PrivateCacheMap;
    NTSTATUS FinalStatus;
    struct _FILE_OBJECT *RelatedFileObject;
    BOOLEAN LockOperation, DeletePending, ReadAccess, WriteAccess, DeleteAccess, SharedRead,
        SharedWrite, SharedDelete;
    ULONG Flags;
    UNICODE_STRING FileName;
} FILE_OBJECT, *PFILE_OBJECT;
ASSERT_OFFSET(FILE_OBJECT, FileName, 88);
typedef void (*PDRIVER_CANCEL)(PDEVICE_OBJECT DeviceObject, PIRP Irp);

/* ns-wdm-_io_stack_location: the Parameters a control device uses (POINTER_ALIGNMENT puts
 * the later ULONGs on 8-byte boundaries on x64). */
typedef struct _IO_STACK_LOCATION {
    UCHAR MajorFunction;
    UCHAR MinorFunction;
    UCHAR Flags;
    UCHAR Control;
    union {
        struct {
            ULONG Length;
            __declspec(align(8)) ULONG Key;
            ULONG Flags;
            LARGE_INTEGER ByteOffset;
        } Read;
        struct {
            ULONG Length;
            __declspec(align(8)) ULONG Key;
            ULONG Flags;
            LARGE_INTEGER ByteOffset;
        } Write;
        struct {
            ULONG OutputBufferLength;
            __declspec(align(8)) ULONG InputBufferLength;
            __declspec(align(8)) ULONG IoControlCode;
            PVOID Type3InputBuffer;
        } DeviceIoControl;
        struct {
            PVOID Argument1, Argument2, Argument3, Argument4;
        } Others;
    } Parameters;
    PDEVICE_OBJECT DeviceObject;
    PFILE_OBJECT FileObject;
    PVOID CompletionRoutine;
    PVOID Context;
} IO_STACK_LOCATION, *PIO_STACK_LOCATION;
ASSERT_SIZE(IO_STACK_LOCATION, 72);
ASSERT_OFFSET(IO_STACK_LOCATION, Parameters.DeviceIoControl.IoControlCode, 24);
ASSERT_OFFSET(IO_STACK_LOCATION, FileObject, 48);

/* ns-wdm-_irp: the documented members, with the rest of each union as the WDK sizes it. */
struct DECLSPEC_ALIGN(16) _IRP {
    CSHORT Type;
    USHORT Size;
    PMDL MdlAddress;
    ULONG Flags;
    union {
        struct _IRP *MasterIrp;
        LONG IrpCount;
        PVOID SystemBuffer;
    } AssociatedIrp;
    LIST_ENTRY ThreadListEntry;
    IO_STATUS_BLOCK IoStatus;
    CCHAR RequestorMode;
    BOOLEAN PendingReturned;
    CHAR StackCount;
    CHAR CurrentLocation;
    BOOLEAN Cancel;
    KIRQL CancelIrql;
    CCHAR ApcEnvironment;
    UCHAR AllocationFlags;
    PIO_STATUS_BLOCK UserIosb;
    PVOID UserEvent;
    union {
        struct {
            PVOID UserApcRoutine;
            PVOID UserApcContext;
        } AsynchronousParameters;
        LARGE_INTEGER AllocationSize;
    } Overlay;
    volatile PDRIVER_CANCEL CancelRoutine;
    PVOID UserBuffer;
    union {
        struct {
            PVOID DriverContext[4];
            PVOID Thread;
            PCHAR AuxiliaryBuffer;
            LIST_ENTRY ListEntry;
            PIO_STACK_LOCATION CurrentStackLocation;
            PFILE_OBJECT OriginalFileObject;
        } Overlay;
        UCHAR Apc[88];
    } Tail;
};
ASSERT_SIZE(IRP, 0xD0);
ASSERT_OFFSET(IRP, AssociatedIrp.SystemBuffer, 24);
ASSERT_OFFSET(IRP, IoStatus, 48);
ASSERT_OFFSET(IRP, CancelRoutine, 104);
ASSERT_OFFSET(IRP, Tail.Overlay.CurrentStackLocation, 184);

#define IRP_MJ_CREATE 0x00
#define IRP_MJ_CLOSE 0x02
#define IRP_MJ_READ 0x03
#define IRP_MJ_WRITE 0x04
#define IRP_MJ_DEVICE_CONTROL 0x0e
#define IRP_MJ_CLEANUP 0x12
#define IO_NO_INCREMENT 0
#define SL_PENDING_RETURNED 0x01
#define METHOD_BUFFERED 0
#define FILE_ANY_ACCESS 0
#define FILE_READ_ACCESS 0x0001
#define FILE_DEVICE_NETWORK 0x00000012
#define CTL_CODE(t, f, m, a) (((t) << 16) | ((a) << 14) | ((f) << 2) | (m))

/* DRIVER_OBJECT is ndis_lwf.h's. */
ASSERT_SIZE(DRIVER_OBJECT, 0x150);
ASSERT_OFFSET(DRIVER_OBJECT, DriverUnload, 104);

/* ns-wdm-_device_object: the members before Flags, as the documentation lists them; the
 * rest is the I/O manager's. */
struct DECLSPEC_ALIGN(16) _DEVICE_OBJECT {
    CSHORT Type;
    USHORT Size;
    LONG ReferenceCount;
    PDRIVER_OBJECT DriverObject;
    PDEVICE_OBJECT NextDevice;
    PDEVICE_OBJECT AttachedDevice;
    PIRP CurrentIrp;
    PVOID Timer;
    ULONG Flags;
    ULONG Characteristics;
    UCHAR Opaque[0x150 - 56];
};
ASSERT_SIZE(DEVICE_OBJECT, 0x150);
ASSERT_OFFSET(DEVICE_OBJECT, Flags, 48);
#define DO_BUFFERED_IO 0x00000004
#define DO_DEVICE_INITIALIZING 0x00000080

static inline PIO_STACK_LOCATION IoGetCurrentIrpStackLocation(PIRP Irp) {
    return Irp->Tail.Overlay.CurrentStackLocation;
}
static inline void IoMarkIrpPending(PIRP Irp) {
    IoGetCurrentIrpStackLocation(Irp)->Control |= SL_PENDING_RETURNED;
}
static inline PDRIVER_CANCEL IoSetCancelRoutine(PIRP Irp, PDRIVER_CANCEL Routine) {
    return (PDRIVER_CANCEL)__atomic_exchange_n((void **)&Irp->CancelRoutine, (void *)Routine,
                                               __ATOMIC_SEQ_CST);
}

/* ---- kernel events (ns-wdm-_kevent is opaque to drivers: a DISPATCHER_HEADER) -------------- */
typedef struct _DISPATCHER_HEADER {
    UCHAR Type;
    UCHAR Signalling;
    UCHAR Size;
    UCHAR Reserved1;
    LONG SignalState;
    LIST_ENTRY WaitListHead;
} DISPATCHER_HEADER;
typedef struct _KEVENT {
    DISPATCHER_HEADER Header;
} KEVENT, *PKEVENT, *PRKEVENT;
ASSERT_SIZE(KEVENT, 24);
typedef enum _EVENT_TYPE { NotificationEvent, SynchronizationEvent } EVENT_TYPE;
typedef enum _KWAIT_REASON { Executive = 0 } KWAIT_REASON;
typedef enum _MODE { KernelMode, UserMode } MODE;
typedef struct _NDIS_EVENT {
    KEVENT Event;
} NDIS_EVENT, *PNDIS_EVENT;

/* ---- NDIS: devices, configuration, NET_BUFFER pools, work items ----------------------------- */
#define NDIS_OBJECT_TYPE_DEFAULT 0x80
#define NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES 0x85
#define NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS 0x8B
#define NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES 0x8D
#define NDIS_OBJECT_TYPE_CONFIGURATION_OBJECT 0xA9
#define NDIS_FILTER_CHARACTERISTICS_REVISION_2 2
#define NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2 224
#define NDIS_FILTER_ATTRIBUTES_REVISION_1 1
#define NDIS_SIZEOF_FILTER_ATTRIBUTES_REVISION_1 8
#define NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1 1
#define NDIS_SIZEOF_DEVICE_OBJECT_ATTRIBUTES_REVISION_1 56
#define NDIS_CONFIGURATION_OBJECT_REVISION_1 1
#define NDIS_SIZEOF_CONFIGURATION_OBJECT_REVISION_1 20
#define NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 1
#define NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 16
#define NDIS_PROTOCOL_ID_DEFAULT 0x00
#define NDIS_DEFAULT_PORT_NUMBER 0
#define NDIS_SEND_FLAGS_DISPATCH_LEVEL 0x00000001
#define NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL 0x00000001
#define NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL 0x00000001
#define NDIS_RECEIVE_FLAGS_RESOURCES 0x00000002
#define NDIS_RETURN_FLAGS_DISPATCH_LEVEL 0x00000001
#define NDIS_TEST_SEND_AT_DISPATCH_LEVEL(f) (((f) & NDIS_SEND_FLAGS_DISPATCH_LEVEL) != 0)
#define NDIS_TEST_RECEIVE_AT_DISPATCH_LEVEL(f) (((f) & NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL) != 0)
#define NDIS_TEST_RECEIVE_CANNOT_PEND(f) (((f) & NDIS_RECEIVE_FLAGS_RESOURCES) != 0)
#define NDIS_TEST_SEND_COMPLETE_AT_DISPATCH_LEVEL(f) (((f) & NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL) != 0)
#define NDIS_TEST_RETURN_AT_DISPATCH_LEVEL(f) (((f) & NDIS_RETURN_FLAGS_DISPATCH_LEVEL) != 0)
#define NET_BUFFER_LIST_NEXT_NBL(n) ((n)->Next)
#define NET_BUFFER_LIST_FIRST_NB(n) ((n)->FirstNetBuffer)
#define NET_BUFFER_DATA_LENGTH(b) ((b)->DataLength)

typedef struct _NDIS_DEVICE_OBJECT_ATTRIBUTES {
    NDIS_OBJECT_HEADER Header;
    PNDIS_STRING DeviceName;
    PNDIS_STRING SymbolicName;
    PDRIVER_DISPATCH *MajorFunctions;
    ULONG ExtensionSize;
    const UNICODE_STRING *DefaultSDDLString;
    const GUID *DeviceClassGuid;
} NDIS_DEVICE_OBJECT_ATTRIBUTES;
ASSERT_SIZE(NDIS_DEVICE_OBJECT_ATTRIBUTES, 56);

typedef struct _NDIS_CONFIGURATION_OBJECT {
    NDIS_OBJECT_HEADER Header;
    NDIS_HANDLE NdisHandle;
    ULONG Flags;
} NDIS_CONFIGURATION_OBJECT;
typedef enum _NDIS_PARAMETER_TYPE {
    NdisParameterInteger,
    NdisParameterHexInteger,
    NdisParameterString,
    NdisParameterMultiString,
    NdisParameterBinary
} NDIS_PARAMETER_TYPE;
typedef struct _NDIS_CONFIGURATION_PARAMETER {
    NDIS_PARAMETER_TYPE ParameterType;
    union {
        ULONG IntegerData;
        NDIS_STRING StringData;
        struct {
            USHORT Length;
            PVOID Buffer;
        } BinaryData;
    } ParameterData;
} NDIS_CONFIGURATION_PARAMETER, *PNDIS_CONFIGURATION_PARAMETER;
ASSERT_SIZE(NDIS_CONFIGURATION_PARAMETER, 24);

typedef void (*NDIS_IO_WORKITEM_ROUTINE)(PVOID WorkItemContext, NDIS_HANDLE NdisIoWorkItemHandle);

/* ---- the imports -------------------------------------------------------------------------- */
/* ntoskrnl.exe */
DECLSPEC_IMPORT void KeInitializeSpinLock(PKSPIN_LOCK SpinLock);
DECLSPEC_IMPORT KIRQL KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock);
DECLSPEC_IMPORT void KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql);
DECLSPEC_IMPORT void KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock);
DECLSPEC_IMPORT void KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock);
DECLSPEC_IMPORT KIRQL KeGetCurrentIrql(void);
DECLSPEC_IMPORT void RtlInitUnicodeString(PUNICODE_STRING DestinationString, PCWSTR SourceString);
DECLSPEC_IMPORT ULONG DbgPrint(PCSTR Format, ...);
DECLSPEC_IMPORT void RtlAssert(PVOID FailedAssertion, PVOID FileName, ULONG LineNumber, PCHAR Message);
DECLSPEC_IMPORT PVOID ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);
DECLSPEC_IMPORT void ExFreePoolWithTag(PVOID P, ULONG Tag);
DECLSPEC_IMPORT void IofCompleteRequest(PIRP Irp, CCHAR PriorityBoost);
DECLSPEC_IMPORT void KeInitializeEvent(PRKEVENT Event, EVENT_TYPE Type, BOOLEAN State);
DECLSPEC_IMPORT LONG KeSetEvent(PRKEVENT Event, LONG Increment, BOOLEAN Wait);
DECLSPEC_IMPORT NTSTATUS KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason, MODE WaitMode,
                                               BOOLEAN Alertable, LARGE_INTEGER *Timeout);
#define IoCompleteRequest(a, b) IofCompleteRequest(a, b)

/* ndis.sys */
NDIS_API NDIS_STATUS NdisFRegisterFilterDriver(PDRIVER_OBJECT DriverObject, NDIS_HANDLE FilterDriverContext,
                                               NDIS_FILTER_DRIVER_CHARACTERISTICS *FilterDriverCharacteristics,
                                               PNDIS_HANDLE NdisFilterDriverHandle);
NDIS_API void NdisFDeregisterFilterDriver(NDIS_HANDLE NdisFilterDriverHandle);
NDIS_API NDIS_STATUS NdisFSetAttributes(NDIS_HANDLE NdisFilterHandle, NDIS_HANDLE FilterModuleContext,
                                        NDIS_FILTER_ATTRIBUTES *FilterAttributes);
NDIS_API void NdisFPauseComplete(NDIS_HANDLE NdisFilterHandle);
NDIS_API void NdisFRestartComplete(NDIS_HANDLE NdisFilterHandle, NDIS_STATUS Status);
NDIS_API NDIS_STATUS NdisFRestartFilter(NDIS_HANDLE NdisFilterHandle);
NDIS_API void NdisFSendNetBufferLists(NDIS_HANDLE NdisFilterHandle, PNET_BUFFER_LIST NetBufferLists,
                                      NDIS_PORT_NUMBER PortNumber, ULONG SendFlags);
NDIS_API void NdisFSendNetBufferListsComplete(NDIS_HANDLE NdisFilterHandle, PNET_BUFFER_LIST NetBufferLists,
                                              ULONG SendCompleteFlags);
NDIS_API void NdisFCancelSendNetBufferLists(NDIS_HANDLE NdisFilterHandle, PVOID CancelId);
NDIS_API void NdisFIndicateReceiveNetBufferLists(NDIS_HANDLE NdisFilterHandle, PNET_BUFFER_LIST NetBufferLists,
                                                 NDIS_PORT_NUMBER PortNumber, ULONG NumberOfNetBufferLists,
                                                 ULONG ReceiveFlags);
NDIS_API void NdisFReturnNetBufferLists(NDIS_HANDLE NdisFilterHandle, PNET_BUFFER_LIST NetBufferLists,
                                        ULONG ReturnFlags);
NDIS_API NDIS_STATUS NdisFOidRequest(NDIS_HANDLE NdisFilterHandle, PNDIS_OID_REQUEST OidRequest);
NDIS_API void NdisFOidRequestComplete(NDIS_HANDLE NdisFilterHandle, PNDIS_OID_REQUEST OidRequest,
                                      NDIS_STATUS Status);
NDIS_API void NdisFCancelOidRequest(NDIS_HANDLE NdisFilterHandle, PVOID RequestId);
NDIS_API NDIS_STATUS NdisAllocateCloneOidRequest(NDIS_HANDLE SourceHandle, PNDIS_OID_REQUEST OidRequest,
                                                 UINT PoolTag, PNDIS_OID_REQUEST *CloneOidRequest);
NDIS_API void NdisFreeCloneOidRequest(NDIS_HANDLE SourceHandle, PNDIS_OID_REQUEST Request);
NDIS_API void NdisFIndicateStatus(NDIS_HANDLE NdisFilterHandle, PNDIS_STATUS_INDICATION StatusIndication);
NDIS_API NDIS_STATUS NdisFNetPnPEvent(NDIS_HANDLE NdisFilterHandle,
                                      PNET_PNP_EVENT_NOTIFICATION NetPnPEventNotification);
NDIS_API void NdisFDevicePnPEventNotify(NDIS_HANDLE NdisFilterHandle, PNET_DEVICE_PNP_EVENT NetDevicePnPEvent);
NDIS_API PVOID NdisAllocateMemoryWithTagPriority(NDIS_HANDLE NdisHandle, UINT Length, ULONG Tag,
                                                 EX_POOL_PRIORITY Priority);
NDIS_API void NdisFreeMemory(PVOID VirtualAddress, UINT Length, UINT MemoryFlags);
NDIS_API NDIS_HANDLE NdisAllocateNetBufferListPool(NDIS_HANDLE NdisHandle,
                                                   NET_BUFFER_LIST_POOL_PARAMETERS *Parameters);
NDIS_API void NdisFreeNetBufferListPool(NDIS_HANDLE PoolHandle);
NDIS_API PNET_BUFFER_LIST NdisAllocateNetBufferAndNetBufferList(NDIS_HANDLE PoolHandle, USHORT ContextSize,
                                                                USHORT ContextBackFill, PMDL MdlChain,
                                                                ULONG DataOffset, SIZE_T DataLength);
NDIS_API void NdisFreeNetBufferList(PNET_BUFFER_LIST NetBufferList);
NDIS_API PMDL NdisAllocateMdl(NDIS_HANDLE NdisHandle, PVOID VirtualAddress, UINT Length);
NDIS_API void NdisFreeMdl(PMDL Mdl);
NDIS_API PVOID NdisGetDataBuffer(PNET_BUFFER NetBuffer, ULONG BytesNeeded, PVOID Storage, UINT AlignMultiple,
                                 UINT AlignOffset);
NDIS_API NDIS_STATUS NdisRegisterDeviceEx(NDIS_HANDLE NdisObjectHandle,
                                          NDIS_DEVICE_OBJECT_ATTRIBUTES *DeviceObjectAttributes,
                                          PDEVICE_OBJECT *pDeviceObject, PNDIS_HANDLE NdisDeviceHandle);
NDIS_API void NdisDeregisterDeviceEx(NDIS_HANDLE NdisDeviceHandle);
NDIS_API PVOID NdisGetDeviceReservedExtension(PDEVICE_OBJECT DeviceObject);
NDIS_API NDIS_STATUS NdisOpenConfigurationEx(NDIS_CONFIGURATION_OBJECT *ConfigObject,
                                             PNDIS_HANDLE ConfigurationHandle);
NDIS_API void NdisReadConfiguration(PNDIS_STATUS Status, PNDIS_CONFIGURATION_PARAMETER *ParameterValue,
                                    NDIS_HANDLE ConfigurationHandle, PNDIS_STRING Keyword,
                                    NDIS_PARAMETER_TYPE ParameterType);
NDIS_API void NdisCloseConfiguration(NDIS_HANDLE ConfigurationHandle);
NDIS_API void NdisInitializeEvent(PNDIS_EVENT Event);
NDIS_API void NdisSetEvent(PNDIS_EVENT Event);
NDIS_API void NdisResetEvent(PNDIS_EVENT Event);
NDIS_API BOOLEAN NdisWaitEvent(PNDIS_EVENT Event, UINT MsToWait);
NDIS_API void NdisMSleep(ULONG MicrosecondsToSleep);
NDIS_API NDIS_HANDLE NdisAllocateIoWorkItem(NDIS_HANDLE NdisObjectHandle);
NDIS_API void NdisQueueIoWorkItem(NDIS_HANDLE NdisIoWorkItemHandle, NDIS_IO_WORKITEM_ROUTINE Routine,
                                  PVOID WorkItemContext);
NDIS_API void NdisFreeIoWorkItem(NDIS_HANDLE NdisIoWorkItemHandle);

/* ---- ndis.h under NDIS_WDM: the spin-lock calls become the kernel's ------------------------ */
#define NdisAllocateSpinLock(l) KeInitializeSpinLock(&(l)->SpinLock)
#define NdisFreeSpinLock(l)
#define NdisAcquireSpinLock(l) ((l)->OldIrql = KeAcquireSpinLockRaiseToDpc(&(l)->SpinLock))
#define NdisReleaseSpinLock(l) KeReleaseSpinLock(&(l)->SpinLock, (l)->OldIrql)
#define NdisDprAcquireSpinLock(l) KeAcquireSpinLockAtDpcLevel(&(l)->SpinLock)
#define NdisDprReleaseSpinLock(l) KeReleaseSpinLockFromDpcLevel(&(l)->SpinLock)
#define NdisInitUnicodeString(d, s) RtlInitUnicodeString((d), (s))

/* ASSERT as a checked build has it. */
#define ASSERT(e) ((void)((e) ? 1 : (RtlAssert((PVOID) #e, (PVOID)__FILE__, __LINE__, NULL), 0)))

static inline void *sample_memset(void *d, int c, SIZE_T n) {
    volatile UCHAR *p = (volatile UCHAR *)d;
    while (n--) *p++ = (UCHAR)c;
    return d;
}
static inline void sample_memcpy(void *d, const void *s, SIZE_T n) {
    volatile UCHAR *p = (volatile UCHAR *)d;
    const UCHAR *q = (const UCHAR *)s;
    while (n--) *p++ = *q++;
}
#define NdisZeroMemory(d, n) sample_memset((d), 0, (n))
#define NdisMoveMemory(d, s, n) sample_memcpy((d), (s), (n))

#endif /* RXINJECT_LWF_SAMPLE_H */
