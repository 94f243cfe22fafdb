/*
 * passthru.c: a pass-through NDIS 6.50 lightweight filter written the way WDK-built filters
 * are: NdisXxxSpinLock calls that ndis.h's NDIS_WDM macros make Ke calls, a filter list under
 * a global lock, configuration read from the registry, an NDIS event a pause waits on, and a
 * control device whose writes inject a frame up the receive path (as a frame-injection
 * driver's do). ndis-verify checks it with `cargo xtask verify-samples`.
 *
 * Each SAMPLE_* macro below switches on one mistake; the build makes one image per variant,
 * and each must be caught with the rules `samples/expected.txt` lists for it:
 *   SAMPLE_WAIT_FOR_SEND_COMPLETE  the seed's writer: waits for a send completion after a
 *                                  receive injection, which never comes (the write hangs)
 *   SAMPLE_RETURN_OWN_TO_NDIS      own NBLs handed to NdisFReturnNetBufferLists
 *   SAMPLE_RETURN_TWICE            a chain of foreign receives returned twice
 *   SAMPLE_CLASSIFY_BY_FIRST       a return chain judged by its first NBL's SourceHandle
 *   SAMPLE_UNINITIALIZED_LOCK      the module's spin lock never initialized
 *   SAMPLE_PAUSE_NEVER_COMPLETES   FilterPause pends and never calls NdisFPauseComplete
 *   SAMPLE_KEEP_RECEIVE_PAST_PAUSE foreign receives kept in a queue through a pause
 *   SAMPLE_ACCEPT_NAMED_OPEN       opens into the device's namespace accepted (a warning only)
 *
 * Written for this project; it is not Microsoft's sample and contains none of it.
 */
#include "lwf_sample.h"

#define SAMPLE_TAG 0x706d6153u /* 'Samp' */
#define SAMPLE_MAX_FRAME 1514
#define SAMPLE_MIN_FRAME 14
#define IOCTL_SAMPLE_COUNTERS CTL_CODE(FILE_DEVICE_NETWORK, 0x800, METHOD_BUFFERED, FILE_READ_ACCESS)

typedef enum _FILTER_STATE { FilterPaused, FilterRunning, FilterPausing } FILTER_STATE;

typedef struct _FILTER_CONTEXT {
    struct _FILTER_CONTEXT *Next;
    NDIS_HANDLE FilterHandle;
    NDIS_SPIN_LOCK Lock;
    FILTER_STATE State;
    NDIS_HANDLE NblPool;
    /* Own receive indications not yet back through FilterReturnNetBufferLists. */
    LONG OwnIndicated;
    /* Set when OwnIndicated drops to zero while pausing. */
    NDIS_EVENT OwnDrained;
    /* Set by FilterSendNetBufferListsComplete (the seed's writer waits for it). */
    NDIS_EVENT SendDone;
    /* SAMPLE_KEEP_RECEIVE_PAST_PAUSE: foreign receives held back. */
    PNET_BUFFER_LIST Held;
    ULONG64 Received;
    ULONG64 Sent;
    ULONG64 Injected;
} FILTER_CONTEXT, *PFILTER_CONTEXT;

typedef struct _SAMPLE_COUNTERS {
    ULONG64 Received;
    ULONG64 Sent;
    ULONG64 Injected;
} SAMPLE_COUNTERS;

static NDIS_HANDLE g_FilterDriverHandle;
static NDIS_HANDLE g_DeviceHandle;
static PDEVICE_OBJECT g_DeviceObject;
static NDIS_SPIN_LOCK g_ListLock;
static PFILTER_CONTEXT g_Filters;
static ULONG g_AllowInjection = 1;

static void debug(PCSTR what, NDIS_STATUS status) { DbgPrint("passthru: %s: 0x%08x\n", what, (ULONG)status); }

/* ---- attach, detach, restart, pause ------------------------------------------------------ */

static NDIS_STATUS FilterAttach(NDIS_HANDLE NdisFilterHandle, NDIS_HANDLE FilterDriverContext,
                                PNDIS_FILTER_ATTACH_PARAMETERS AttachParameters) {
    PFILTER_CONTEXT f;
    NDIS_FILTER_ATTRIBUTES attributes;
    NET_BUFFER_LIST_POOL_PARAMETERS pool;
    NDIS_STATUS status;

    ASSERT(FilterDriverContext == (NDIS_HANDLE)&g_FilterDriverHandle);
    if (AttachParameters->MiniportMediaType != NdisMedium802_3) {
        return NDIS_STATUS_UNSUPPORTED_MEDIA;
    }
    f = (PFILTER_CONTEXT)NdisAllocateMemoryWithTagPriority(NdisFilterHandle, sizeof(*f), SAMPLE_TAG,
                                                           LowPoolPriority);
    if (f == NULL) {
        return NDIS_STATUS_RESOURCES;
    }
    NdisZeroMemory(f, sizeof(*f));
    f->FilterHandle = NdisFilterHandle;
#ifndef SAMPLE_UNINITIALIZED_LOCK
    NdisAllocateSpinLock(&f->Lock);
#endif
    NdisInitializeEvent(&f->OwnDrained);
    NdisInitializeEvent(&f->SendDone);

    NdisZeroMemory(&pool, sizeof(pool));
    pool.Header.Type = NDIS_OBJECT_TYPE_DEFAULT;
    pool.Header.Revision = NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1;
    pool.Header.Size = NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1;
    pool.ProtocolId = NDIS_PROTOCOL_ID_DEFAULT;
    pool.fAllocateNetBuffer = TRUE;
    pool.PoolTag = SAMPLE_TAG;
    f->NblPool = NdisAllocateNetBufferListPool(NdisFilterHandle, &pool);
    if (f->NblPool == NULL) {
        NdisFreeMemory(f, 0, 0);
        return NDIS_STATUS_RESOURCES;
    }

    NdisZeroMemory(&attributes, sizeof(attributes));
    attributes.Header.Type = NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES;
    attributes.Header.Revision = NDIS_FILTER_ATTRIBUTES_REVISION_1;
    attributes.Header.Size = NDIS_SIZEOF_FILTER_ATTRIBUTES_REVISION_1;
    status = NdisFSetAttributes(NdisFilterHandle, f, &attributes);
    if (status != NDIS_STATUS_SUCCESS) {
        debug("NdisFSetAttributes", status);
        NdisFreeNetBufferListPool(f->NblPool);
        NdisFreeMemory(f, 0, 0);
        return status;
    }
    f->State = FilterPaused;

    NdisAcquireSpinLock(&g_ListLock);
    f->Next = g_Filters;
    g_Filters = f;
    NdisReleaseSpinLock(&g_ListLock);
    return NDIS_STATUS_SUCCESS;
}

static void FilterDetach(NDIS_HANDLE FilterModuleContext) {
    PFILTER_CONTEXT f = (PFILTER_CONTEXT)FilterModuleContext;
    PFILTER_CONTEXT *link;

    ASSERT(f->State == FilterPaused);
#ifdef SAMPLE_KEEP_RECEIVE_PAST_PAUSE
    if (f->Held != NULL) {
        NdisFReturnNetBufferLists(f->FilterHandle, f->Held, 0);
        f->Held = NULL;
    }
#endif
    NdisAcquireSpinLock(&g_ListLock);
    for (link = &g_Filters; *link != NULL; link = &(*link)->Next) {
        if (*link == f) {
            *link = f->Next;
            break;
        }
    }
    NdisReleaseSpinLock(&g_ListLock);
    NdisFreeNetBufferListPool(f->NblPool);
    NdisFreeSpinLock(&f->Lock);
    NdisFreeMemory(f, 0, 0);
}

static NDIS_STATUS FilterRestart(NDIS_HANDLE FilterModuleContext, PNDIS_FILTER_RESTART_PARAMETERS RestartParameters) {
    PFILTER_CONTEXT f = (PFILTER_CONTEXT)FilterModuleContext;
    (void)RestartParameters;
    NdisAcquireSpinLock(&f->Lock);
    f->State = FilterRunning;
    NdisReleaseSpinLock(&f->Lock);
    return NDIS_STATUS_SUCCESS;
}

static NDIS_STATUS FilterPause(NDIS_HANDLE FilterModuleContext, PNDIS_FILTER_PAUSE_PARAMETERS PauseParameters) {
    PFILTER_CONTEXT f = (PFILTER_CONTEXT)FilterModuleContext;
    LONG outstanding;
    (void)PauseParameters;

    NdisAcquireSpinLock(&f->Lock);
    f->State = FilterPausing;
    NdisResetEvent(&f->OwnDrained);
    outstanding = f->OwnIndicated;
    NdisReleaseSpinLock(&f->Lock);
#ifdef SAMPLE_PAUSE_NEVER_COMPLETES
    (void)outstanding;
    return NDIS_STATUS_PENDING;
#else
    /* Own indications come back through FilterReturnNetBufferLists. */
    if (outstanding > 0) {
        NdisWaitEvent(&f->OwnDrained, 0);
    }
    NdisAcquireSpinLock(&f->Lock);
    f->State = FilterPaused;
    NdisReleaseSpinLock(&f->Lock);
    return NDIS_STATUS_SUCCESS;
#endif
}

/* ---- the send path ----------------------------------------------------------------------- */

static void FilterSendNetBufferLists(NDIS_HANDLE FilterModuleContext, PNET_BUFFER_LIST NetBufferLists,
                                     NDIS_PORT_NUMBER PortNumber, ULONG SendFlags) {
    PFILTER_CONTEXT f = (PFILTER_CONTEXT)FilterModuleContext;
    BOOLEAN dispatch = NDIS_TEST_SEND_AT_DISPATCH_LEVEL(SendFlags);
    FILTER_STATE state;
    PNET_BUFFER_LIST n;

    ASSERT(KeGetCurrentIrql() <= DISPATCH_LEVEL);
    if (dispatch) {
        NdisDprAcquireSpinLock(&f->Lock);
    } else {
        NdisAcquireSpinLock(&f->Lock);
    }
    state = f->State;
    f->Sent++;
    if (dispatch) {
        NdisDprReleaseSpinLock(&f->Lock);
    } else {
        NdisReleaseSpinLock(&f->Lock);
    }
    if (state == FilterRunning) {
        NdisFSendNetBufferLists(f->FilterHandle, NetBufferLists, PortNumber, SendFlags);
        return;
    }
    for (n = NetBufferLists; n != NULL; n = NET_BUFFER_LIST_NEXT_NBL(n)) {
        n->Status = NDIS_STATUS_PAUSED;
    }
    NdisFSendNetBufferListsComplete(f->FilterHandle, NetBufferLists,
                                    dispatch ? NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL : 0);
}

static void FilterSendNetBufferListsComplete(NDIS_HANDLE FilterModuleContext, PNET_BUFFER_LIST NetBufferLists,
                                             ULONG SendCompleteFlags) {
    PFILTER_CONTEXT f = (PFILTER_CONTEXT)FilterModuleContext;
    /* This filter sends nothing of its own: every NBL here is the protocol's. */
    NdisFSendNetBufferListsComplete(f->FilterHandle, NetBufferLists, SendCompleteFlags);
    NdisSetEvent(&f->SendDone);
}

/* ---- the receive path -------------------------------------------------------------------- */

static ULONG chain_length(PNET_BUFFER_LIST n) {
    ULONG count = 0;
    for (; n != NULL; n = NET_BUFFER_LIST_NEXT_NBL(n)) {
        count++;
    }
    return count;
}

static void FilterReceiveNetBufferLists(NDIS_HANDLE FilterModuleContext, PNET_BUFFER_LIST NetBufferLists,
                                        NDIS_PORT_NUMBER PortNumber, ULONG NumberOfNetBufferLists,
                                        ULONG ReceiveFlags) {
    PFILTER_CONTEXT f = (PFILTER_CONTEXT)FilterModuleContext;
    BOOLEAN dispatch = NDIS_TEST_RECEIVE_AT_DISPATCH_LEVEL(ReceiveFlags);
    FILTER_STATE state;

    if (dispatch) {
        NdisDprAcquireSpinLock(&f->Lock);
    } else {
        NdisAcquireSpinLock(&f->Lock);
    }
    state = f->State;
    f->Received += NumberOfNetBufferLists;
    if (dispatch) {
        NdisDprReleaseSpinLock(&f->Lock);
    } else {
        NdisReleaseSpinLock(&f->Lock);
    }
    if (state != FilterRunning) {
        /* Paused or pausing: new receives go straight back. */
        if (!NDIS_TEST_RECEIVE_CANNOT_PEND(ReceiveFlags)) {
            NdisFReturnNetBufferLists(f->FilterHandle, NetBufferLists,
                                      dispatch ? NDIS_RETURN_FLAGS_DISPATCH_LEVEL : 0);
        }
        return;
    }
#ifdef SAMPLE_KEEP_RECEIVE_PAST_PAUSE
    if (!NDIS_TEST_RECEIVE_CANNOT_PEND(ReceiveFlags)) {
        /* Held back, to be passed up with the next indication: across a pause too. */
        PNET_BUFFER_LIST last = NetBufferLists;
        PNET_BUFFER_LIST held;
        while (NET_BUFFER_LIST_NEXT_NBL(last) != NULL) {
            last = NET_BUFFER_LIST_NEXT_NBL(last);
        }
        held = f->Held;
        f->Held = NetBufferLists;
        if (held == NULL) {
            return;
        }
        NetBufferLists = held;
        NumberOfNetBufferLists = chain_length(held);
        (void)last;
    }
#endif
    NdisFIndicateReceiveNetBufferLists(f->FilterHandle, NetBufferLists, PortNumber, NumberOfNetBufferLists,
                                       ReceiveFlags);
}

/* Frees one of this filter's own NBLs: its MDL, the frame copy, the NBL. */
static void free_own(PNET_BUFFER_LIST n) {
    PMDL mdl = NET_BUFFER_LIST_FIRST_NB(n)->MdlChain;
    PVOID data = mdl->MappedSystemVa;
    NdisFreeMdl(mdl);
    NdisFreeMemory(data, 0, 0);
    NdisFreeNetBufferList(n);
}

static void own_returned(PFILTER_CONTEXT f, LONG count, BOOLEAN dispatch) {
    if (dispatch) {
        NdisDprAcquireSpinLock(&f->Lock);
    } else {
        NdisAcquireSpinLock(&f->Lock);
    }
    f->OwnIndicated -= count;
    if (f->OwnIndicated == 0 && f->State == FilterPausing) {
        NdisSetEvent(&f->OwnDrained);
    }
    if (dispatch) {
        NdisDprReleaseSpinLock(&f->Lock);
    } else {
        NdisReleaseSpinLock(&f->Lock);
    }
}

static void FilterReturnNetBufferLists(NDIS_HANDLE FilterModuleContext, PNET_BUFFER_LIST NetBufferLists,
                                       ULONG ReturnFlags) {
    PFILTER_CONTEXT f = (PFILTER_CONTEXT)FilterModuleContext;
    BOOLEAN dispatch = NDIS_TEST_RETURN_AT_DISPATCH_LEVEL(ReturnFlags);
#if defined(SAMPLE_RETURN_OWN_TO_NDIS)
    /* The seed's mistake: everything goes back to NDIS, own NBLs too. */
    NdisFReturnNetBufferLists(f->FilterHandle, NetBufferLists, ReturnFlags);
    (void)dispatch;
#elif defined(SAMPLE_CLASSIFY_BY_FIRST)
    /* The seed's mistake: the first NBL decides for the whole chain. */
    if (NetBufferLists->SourceHandle == f->FilterHandle) {
        LONG own = 0;
        PNET_BUFFER_LIST n = NetBufferLists;
        while (n != NULL) {
            PNET_BUFFER_LIST next = NET_BUFFER_LIST_NEXT_NBL(n);
            NET_BUFFER_LIST_NEXT_NBL(n) = NULL;
            free_own(n);
            own++;
            n = next;
        }
        own_returned(f, own, dispatch);
    } else {
        NdisFReturnNetBufferLists(f->FilterHandle, NetBufferLists, ReturnFlags);
    }
#else
    /* A return chain may mix this filter's NBLs with the miniport's: split it by SourceHandle. */
    PNET_BUFFER_LIST foreign = NULL;
    PNET_BUFFER_LIST *tail = &foreign;
    LONG own = 0;
    PNET_BUFFER_LIST n = NetBufferLists;
    while (n != NULL) {
        PNET_BUFFER_LIST next = NET_BUFFER_LIST_NEXT_NBL(n);
        NET_BUFFER_LIST_NEXT_NBL(n) = NULL;
        if (n->SourceHandle == f->FilterHandle) {
            free_own(n);
            own++;
        } else {
            *tail = n;
            tail = &NET_BUFFER_LIST_NEXT_NBL(n);
        }
        n = next;
    }
    if (foreign != NULL) {
        NdisFReturnNetBufferLists(f->FilterHandle, foreign, ReturnFlags);
#ifdef SAMPLE_RETURN_TWICE
        NdisFReturnNetBufferLists(f->FilterHandle, foreign, ReturnFlags);
#endif
    }
    if (own > 0) {
        own_returned(f, own, dispatch);
    }
#endif
}

static void FilterStatus(NDIS_HANDLE FilterModuleContext, PNDIS_STATUS_INDICATION StatusIndication) {
    PFILTER_CONTEXT f = (PFILTER_CONTEXT)FilterModuleContext;
    NdisFIndicateStatus(f->FilterHandle, StatusIndication);
}

/* ---- the control device ------------------------------------------------------------------ */

static NTSTATUS complete(PIRP Irp, NTSTATUS status, ULONG_PTR information) {
    Irp->IoStatus.Status = status;
    Irp->IoStatus.Information = information;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
}

/* The first running module. */
static PFILTER_CONTEXT running_filter(void) {
    PFILTER_CONTEXT f;
    NdisAcquireSpinLock(&g_ListLock);
    for (f = g_Filters; f != NULL && f->State != FilterRunning; f = f->Next) {
    }
    NdisReleaseSpinLock(&g_ListLock);
    return f;
}

/* A write: one Ethernet frame, indicated up the receive path as if it had arrived. */
static NTSTATUS inject_up(PIRP Irp, ULONG length) {
    PFILTER_CONTEXT f = running_filter();
    PVOID copy;
    PMDL mdl;
    PNET_BUFFER_LIST nbl;

    if (!g_AllowInjection) {
        return complete(Irp, STATUS_INVALID_DEVICE_REQUEST, 0);
    }
    if (length < SAMPLE_MIN_FRAME || length > SAMPLE_MAX_FRAME || Irp->AssociatedIrp.SystemBuffer == NULL) {
        return complete(Irp, STATUS_INVALID_PARAMETER, 0);
    }
    if (f == NULL) {
        return complete(Irp, STATUS_DEVICE_NOT_READY, 0);
    }
    copy = NdisAllocateMemoryWithTagPriority(f->FilterHandle, length, SAMPLE_TAG, NormalPoolPriority);
    if (copy == NULL) {
        return complete(Irp, STATUS_INSUFFICIENT_RESOURCES, 0);
    }
    NdisMoveMemory(copy, Irp->AssociatedIrp.SystemBuffer, length);
    mdl = NdisAllocateMdl(f->FilterHandle, copy, length);
    nbl = mdl == NULL ? NULL : NdisAllocateNetBufferAndNetBufferList(f->NblPool, 0, 0, mdl, 0, length);
    if (nbl == NULL) {
        if (mdl != NULL) {
            NdisFreeMdl(mdl);
        }
        NdisFreeMemory(copy, 0, 0);
        return complete(Irp, STATUS_INSUFFICIENT_RESOURCES, 0);
    }
    nbl->SourceHandle = f->FilterHandle;

    NdisAcquireSpinLock(&f->Lock);
    if (f->State != FilterRunning) {
        NdisReleaseSpinLock(&f->Lock);
        free_own(nbl);
        return complete(Irp, STATUS_DEVICE_NOT_READY, 0);
    }
    f->OwnIndicated++;
    f->Injected++;
    NdisResetEvent(&f->SendDone);
    NdisReleaseSpinLock(&f->Lock);
    NdisFIndicateReceiveNetBufferLists(f->FilterHandle, nbl, NDIS_DEFAULT_PORT_NUMBER, 1, 0);
#ifdef SAMPLE_WAIT_FOR_SEND_COMPLETE
    /* The seed's writer: waits for a send completion, which a receive indication never gets. */
    NdisWaitEvent(&f->SendDone, 0);
#endif
    return complete(Irp, STATUS_SUCCESS, length);
}

static NTSTATUS SampleDispatch(PDEVICE_OBJECT DeviceObject, PIRP Irp) {
    PIO_STACK_LOCATION sl = IoGetCurrentIrpStackLocation(Irp);
    (void)DeviceObject;
    switch (sl->MajorFunction) {
    case IRP_MJ_CREATE:
        /* The device's ACL covers the device only, not names after it. */
#ifndef SAMPLE_ACCEPT_NAMED_OPEN
        if (sl->FileObject != NULL && sl->FileObject->FileName.Length != 0) {
#else
        if (FALSE) {
#endif
            return complete(Irp, STATUS_ACCESS_DENIED, 0);
        }
        return complete(Irp, STATUS_SUCCESS, 0);
    case IRP_MJ_CLEANUP:
    case IRP_MJ_CLOSE:
        return complete(Irp, STATUS_SUCCESS, 0);
    case IRP_MJ_WRITE:
        return inject_up(Irp, sl->Parameters.Write.Length);
    case IRP_MJ_DEVICE_CONTROL:
        if (sl->Parameters.DeviceIoControl.IoControlCode == IOCTL_SAMPLE_COUNTERS) {
            SAMPLE_COUNTERS c;
            PFILTER_CONTEXT f;
            if (sl->Parameters.DeviceIoControl.OutputBufferLength < sizeof(c)) {
                return complete(Irp, STATUS_BUFFER_TOO_SMALL, 0);
            }
            NdisZeroMemory(&c, sizeof(c));
            NdisAcquireSpinLock(&g_ListLock);
            for (f = g_Filters; f != NULL; f = f->Next) {
                c.Received += f->Received;
                c.Sent += f->Sent;
                c.Injected += f->Injected;
            }
            NdisReleaseSpinLock(&g_ListLock);
            NdisMoveMemory(Irp->AssociatedIrp.SystemBuffer, &c, sizeof(c));
            return complete(Irp, STATUS_SUCCESS, sizeof(c));
        }
        return complete(Irp, STATUS_INVALID_DEVICE_REQUEST, 0);
    default:
        return complete(Irp, STATUS_INVALID_DEVICE_REQUEST, 0);
    }
}

static PDRIVER_DISPATCH g_Dispatch[IRP_MJ_MAXIMUM_FUNCTION + 1];

static NDIS_STATUS register_device(void) {
    NDIS_DEVICE_OBJECT_ATTRIBUTES attributes;
    UNICODE_STRING name, link, sddl;
    NDIS_STATUS status;

    g_Dispatch[IRP_MJ_CREATE] = SampleDispatch;
    g_Dispatch[IRP_MJ_CLEANUP] = SampleDispatch;
    g_Dispatch[IRP_MJ_CLOSE] = SampleDispatch;
    g_Dispatch[IRP_MJ_WRITE] = SampleDispatch;
    g_Dispatch[IRP_MJ_DEVICE_CONTROL] = SampleDispatch;
    NdisInitUnicodeString(&name, L"\\Device\\PassthruSample");
    NdisInitUnicodeString(&link, L"\\DosDevices\\PassthruSample");
    NdisInitUnicodeString(&sddl, L"D:P(A;;GA;;;SY)(A;;GA;;;BA)");
    NdisZeroMemory(&attributes, sizeof(attributes));
    attributes.Header.Type = NDIS_OBJECT_TYPE_DEVICE_OBJECT_ATTRIBUTES;
    attributes.Header.Revision = NDIS_DEVICE_OBJECT_ATTRIBUTES_REVISION_1;
    attributes.Header.Size = NDIS_SIZEOF_DEVICE_OBJECT_ATTRIBUTES_REVISION_1;
    attributes.DeviceName = &name;
    attributes.SymbolicName = &link;
    attributes.MajorFunctions = g_Dispatch;
    attributes.DefaultSDDLString = &sddl;
    status = NdisRegisterDeviceEx(g_FilterDriverHandle, &attributes, &g_DeviceObject, &g_DeviceHandle);
    if (status == NDIS_STATUS_SUCCESS) {
        g_DeviceObject->Flags |= DO_BUFFERED_IO;
    }
    return status;
}

/* ---- configuration ----------------------------------------------------------------------- */

static void read_configuration(void) {
    NDIS_CONFIGURATION_OBJECT object;
    NDIS_HANDLE config;
    PNDIS_CONFIGURATION_PARAMETER value;
    NDIS_STRING keyword;
    NDIS_STATUS status;

    NdisZeroMemory(&object, sizeof(object));
    object.Header.Type = NDIS_OBJECT_TYPE_CONFIGURATION_OBJECT;
    object.Header.Revision = NDIS_CONFIGURATION_OBJECT_REVISION_1;
    object.Header.Size = NDIS_SIZEOF_CONFIGURATION_OBJECT_REVISION_1;
    object.NdisHandle = g_FilterDriverHandle;
    if (NdisOpenConfigurationEx(&object, &config) != NDIS_STATUS_SUCCESS) {
        return;
    }
    NdisInitUnicodeString(&keyword, L"AllowInjection");
    NdisReadConfiguration(&status, &value, config, &keyword, NdisParameterInteger);
    if (status == NDIS_STATUS_SUCCESS && value->ParameterType == NdisParameterInteger) {
        g_AllowInjection = value->ParameterData.IntegerData != 0;
    }
    NdisCloseConfiguration(config);
}

/* ---- the driver -------------------------------------------------------------------------- */

static void DriverUnload(PDRIVER_OBJECT DriverObject) {
    (void)DriverObject;
    if (g_DeviceHandle != NULL) {
        NdisDeregisterDeviceEx(g_DeviceHandle);
    }
    NdisFDeregisterFilterDriver(g_FilterDriverHandle);
    NdisFreeSpinLock(&g_ListLock);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath) {
    NDIS_FILTER_DRIVER_CHARACTERISTICS c;
    NDIS_STATUS status;
    (void)RegistryPath;

    NdisAllocateSpinLock(&g_ListLock);
    NdisZeroMemory(&c, sizeof(c));
    c.Header.Type = NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS;
    c.Header.Revision = NDIS_FILTER_CHARACTERISTICS_REVISION_2;
    c.Header.Size = NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2;
    c.MajorNdisVersion = 6;
    c.MinorNdisVersion = 50;
    c.MajorDriverVersion = 1;
    NdisInitUnicodeString(&c.FriendlyName, L"Pass-through sample filter");
    NdisInitUnicodeString(&c.UniqueName, L"{5cbf81bd-5055-47cd-9055-a76b2b4e3697}");
    NdisInitUnicodeString(&c.ServiceName, L"passthru");
    c.AttachHandler = FilterAttach;
    c.DetachHandler = FilterDetach;
    c.RestartHandler = FilterRestart;
    c.PauseHandler = FilterPause;
    c.SendNetBufferListsHandler = FilterSendNetBufferLists;
    c.SendNetBufferListsCompleteHandler = FilterSendNetBufferListsComplete;
    c.ReceiveNetBufferListsHandler = FilterReceiveNetBufferLists;
    c.ReturnNetBufferListsHandler = FilterReturnNetBufferLists;
    c.StatusHandler = FilterStatus;

    DriverObject->DriverUnload = DriverUnload;
    status = NdisFRegisterFilterDriver(DriverObject, (NDIS_HANDLE)&g_FilterDriverHandle, &c, &g_FilterDriverHandle);
    if (status != NDIS_STATUS_SUCCESS) {
        debug("NdisFRegisterFilterDriver", status);
        return (NTSTATUS)status;
    }
    read_configuration();
    status = register_device();
    if (status != NDIS_STATUS_SUCCESS) {
        debug("NdisRegisterDeviceEx", status);
        NdisFDeregisterFilterDriver(g_FilterDriverHandle);
        return (NTSTATUS)status;
    }
    return STATUS_SUCCESS;
}
