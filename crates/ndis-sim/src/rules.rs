//! The rules the simulator enforces (`../shared/ndis-rules.md`), violations, and the
//! strictness settings for the rules marked ⚠ there.

use std::fmt;

/// How the documentation words a rule, which decides what breaking it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// A documented *must* (or *cannot*, *never*, or a function's contract, such as the
    /// structures it takes): breaking it is a **violation**, as a bug check would be.
    Must,
    /// A documented *should*: a **warning**.
    Should,
    /// Our inference where the documentation is unclear or silent: a **warning**.
    Inferred,
    /// A choice of ours for our own driver (for example, who may open its device): a
    /// **warning** for any other driver.
    Policy,
}

impl Severity {
    /// Whether breaking a rule of this severity is a violation (not a warning).
    pub const fn is_violation(self) -> bool {
        matches!(self, Severity::Must)
    }

    /// `must`, `should`, `inferred` or `policy`.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Must => "must",
            Severity::Should => "should",
            Severity::Inferred => "inferred",
            Severity::Policy => "policy",
        }
    }
}

/// Where every cited page lives: paths below are relative to it.
pub const DOCS: &str = "https://learn.microsoft.com/windows-hardware/drivers/";

macro_rules! rules {
    ($( $id:ident: $sev:ident, $page:literal, $quote:literal => $summary:literal; )*) => {
        /// A rule of the catalogue: what a filter must (or should) do, the Microsoft page and
        /// sentence it comes from, and its severity. `Debug` and `Display` print the id (`R6`).
        /// The catalogue supersedes `../shared/ndis-rules.md` where the two differ.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Rule { $( $id, )* }

        impl Rule {
            /// Every rule.
            pub const ALL: &'static [Rule] = &[ $( Rule::$id, )* ];

            /// The rule's id, e.g. `"R6"`.
            pub const fn id(self) -> &'static str {
                match self { $( Rule::$id => stringify!($id), )* }
            }

            /// One line saying what the rule demands.
            pub const fn summary(self) -> &'static str {
                match self { $( Rule::$id => $summary, )* }
            }

            /// How the documentation words it: a `Must` is a violation, anything else a
            /// warning.
            pub const fn severity(self) -> Severity {
                match self { $( Rule::$id => Severity::$sev, )* }
            }

            /// The learn.microsoft.com page the rule comes from, below [`DOCS`]
            /// (`ddi/ndis/nf-ndis-ndisfreturnnetbufferlists`).
            pub const fn page(self) -> &'static str {
                match self { $( Rule::$id => $page, )* }
            }

            /// The sentence of that page the rule rests on (for an inference or a policy, the
            /// sentence it starts from).
            pub const fn quote(self) -> &'static str {
                match self { $( Rule::$id => $quote, )* }
            }
        }
    };
}

impl Rule {
    /// The full address of [`Rule::page`].
    pub fn url(self) -> String {
        format!("{DOCS}{}", self.page())
    }
}

rules! {
    // ---- Receive path -------------------------------------------------------------------
    R1: Must, "ddi/ndis/nf-ndis-ndisfreturnnetbufferlists",
        "If the NDIS_RECEIVE_FLAGS_RESOURCES flag in the ReceiveFlags parameter that NDIS passed to the FilterReceiveNetBufferLists function was not set, the filter driver must call the NdisFReturnNetBufferLists function to return the NET_BUFFER_LIST structures and associated data."
        => "every foreign receive NBL reaches NdisFReturnNetBufferLists exactly once, and none is held at pause/detach";
    R2: Must, "ddi/ndis/nc-ndis-filter_receive_net_buffer_lists",
        "If the NDIS_RECEIVE_FLAGS_RESOURCES flag in the ReceiveFlags parameter is set, the filter driver cannot keep the NET_BUFFER_LIST structure and associated underlying-driver-allocated resources."
        => "with RESOURCES, ownership ends when the callback returns: no return, no queuing";
    R3: Must, "ddi/ndis/nc-ndis-filter_receive_net_buffer_lists",
        "If the NDIS_RECEIVE_FLAGS_RESOURCES flag is set, the filter driver must retain the original set of NET_BUFFER_LIST structures in the linked list."
        => "with RESOURCES, the chain is restored (same NBLs, order, links) before returning";
    R4: Must, "ddi/ndis/nc-ndis-filter_receive_net_buffer_lists",
        "If the NDIS_RECEIVE_FLAGS_RESOURCES flag in the ReceiveFlags parameter is set, the filter driver cannot keep the NET_BUFFER_LIST structure and associated underlying-driver-allocated resources."
        => "a RESOURCES indication passed up without the flag must be back before the callback returns";
    R5: Must, "ddi/ndis/nf-ndis-ndisfindicatereceivenetbufferlists",
        "Instead, NDIS returns the NET_BUFFER_LIST structures to the filter driver upon return from NdisFIndicateReceiveNetBufferLists."
        => "a filter that sets RESOURCES owns the NBLs again when the indication returns";
    R6: Must, "ddi/ndis/nf-ndis-ndisfindicatereceivenetbufferlists",
        "In this case, the filter driver must not reclaim the NET_BUFFER_LIST structures until NDIS returns the NET_BUFFER_LIST structures to FilterReturnNetBufferLists."
        => "own NBLs indicated without RESOURCES come back only through FilterReturnNetBufferLists";
    R7: Must, "ddi/ndis/nf-ndis-ndisfindicatereceivenetbufferlists",
        "In this case, NDIS does not call the filter driver's FilterReturnNetBufferLists function to return the NET_BUFFER_LIST structures."
        => "own NBLs indicated with RESOURCES never come back through FilterReturnNetBufferLists";
    R8: Must, "ddi/ndis/nc-ndis-filter_return_net_buffer_lists",
        "If an underlying driver initiated the receive indication, the filter driver should call the NdisFReturnNetBufferLists function to complete the receive indication. If the filter driver originated the receive indication, FilterReturnNetBufferLists can either release the NET_BUFFER_LIST structures and associated data or prepare them for reuse."
        => "a mixed return chain is split by each NBL's SourceHandle, not by its first NBL";
    R9: Must, "ddi/ndis/nf-ndis-ndisfindicatereceivenetbufferlists",
        "NumberOfNetBufferLists: The number of NET_BUFFER_LIST structures that are in the linked list of structures at NetBufferLists."
        => "NumberOfNetBufferLists equals the chain length";
    R10: Must, "network/indicating-received-ethernet-frames",
        "The Ethernet miniport must assign exactly one NET_BUFFER structure to a NET_BUFFER_LIST structure when indicating received data."
        => "receive-path NBLs on Ethernet carry exactly one NET_BUFFER";
    R11: Must, "ddi/ndis/nf-ndis-ndisfindicatereceivenetbufferlists",
        "A filter driver must set the SourceHandle member of each NET_BUFFER_LIST structure that it originates to the same value as the NdisFilterHandle parameter. The filter driver must not modify the SourceHandle member in any NET_BUFFER_LIST structures that it did not originate."
        => "SourceHandle is the filter handle on own NBLs and unchanged on foreign ones";
    R12: Must, "ddi/ndis/nc-ndis-filter_pause",
        "In the Pausing or Paused states ... The driver can pass on calls to its FilterReceiveNetBufferLists function. However, the driver cannot pass any buffers that it created. The driver must not originate any receive indications or send requests."
        => "no own receive indications while Pausing or Paused (nor Attaching or Detached)";
    R13: Must, "ddi/ndis/nc-ndis-filter_return_net_buffer_lists",
        "A filter driver that does not provide a FilterReturnNetBufferLists function cannot call the NdisFIndicateReceiveNetBufferLists function to initiate a receive indication."
        => "a filter without a return handler originates no receive indications";
    R14: Should, "network/pausing-a-filter-module",
        "Should return new receive indications that underlying drivers originate to NDIS immediately by calling the NdisFReturnNetBufferLists function."
        => "while Pausing or Paused, new foreign receives are returned, not passed up";
    // ---- Send path ----------------------------------------------------------------------
    S1: Must, "ddi/ndis/nc-ndis-filter_pause",
        "Must call the NdisFSendNetBufferListsComplete function for any queued send buffers that an overlying driver created."
        => "each NBL from FilterSendNetBufferLists ends in exactly one NdisFSendNetBufferListsComplete";
    S2: Must, "ddi/ndis/nf-ndis-ndisfsendnetbufferlistscomplete",
        "NetBufferList: A pointer to a linked list of NET_BUFFER_LIST structures. The filter driver received the NET_BUFFER_LIST structures in previous calls to the FilterSendNetBufferLists function."
        => "only NBLs received in FilterSendNetBufferLists are completed up";
    S3: Must, "ddi/ndis/nc-ndis-filter_send_net_buffer_lists_complete",
        "If the filter driver originated the send request, FilterSendNetBufferListsComplete can either release the NET_BUFFER_LIST structures and associated data or prepare them for reuse in a subsequent call to NdisFSendNetBufferLists."
        => "own sends come back in FilterSendNetBufferListsComplete and are never completed up";
    S4: Must, "ddi/ndis/nf-ndis-ndisfsendnetbufferlists",
        "As soon as a filter driver calls the NdisFSendNetBufferLists function, it relinquishes ownership of the NET_BUFFER_LIST structures and all associated resources."
        => "after NdisFSendNetBufferLists the filter does not touch those NBLs until they complete";
    S5: Must, "ddi/ndis/nf-ndis-ndisfsendnetbufferlistscomplete",
        "However, the filter driver must not modify the list of NET_BUFFER structures that are associated with a NET_BUFFER_LIST structure."
        => "changes to a foreign NBL are undone before completing it; NB and MDL links are never altered";
    S6: Should, "network/pausing-a-filter-module",
        "The filter driver should set the Status member in each NET_BUFFER_LIST structure to NDIS_STATUS_PAUSED."
        => "NET_BUFFER_LIST_STATUS is set on every NBL the filter completes itself, and kept on those the miniport completed";
    S7: Should, "network/dispatch-irql-tracking",
        "If the known current IRQL is DISPATCH_LEVEL, the caller should set this flag. If the current IRQL is unknown, or the caller is not running at DISPATCH_LEVEL, the caller should clear this flag."
        => "DISPATCH_LEVEL flags match the IRQL";
    S8: Inferred, "ddi/ndis/nf-ndis-ndisfsendnetbufferlists",
        "By default, NDIS does not loop back data to the driver that submitted the send request. An overlying driver can override this behavior by setting this flag."
        => "NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK is preserved when passing a send down";
    S9: Must, "ddi/ndis/nc-ndis-filter_pause",
        "In the Paused state, the filter module must not generate send requests or receive indications."
        => "no own sends while Pausing or Paused (nor Attaching or Detached)";
    S10: Must, "ddi/ndis/nc-ndis-filter_send_net_buffer_lists",
        "If a filter driver specifies a FilterSendNetBufferLists function and it queues send requests, it must also specify a FilterCancelSendNetBufferLists function."
        => "a filter that queues sends handles cancellation";
    S11: Must, "ddi/ndis/nc-ndis-filter_send_net_buffer_lists_complete",
        "A filter driver that does not provide a FilterSendNetBufferListsComplete function cannot call the NdisFSendNetBufferLists function."
        => "a filter without a send-complete handler may not call NdisFSendNetBufferLists";
    S12: Should, "ddi/ndis/nc-ndis-filter_pause",
        "In the Pausing or Paused states, a filter driver should continue to handle OID requests or status indications. The driver should reject calls to its FilterSendNetBufferLists function."
        => "while Pausing or Paused, new sends are completed with NDIS_STATUS_PAUSED, not passed down";
    S13: Must, "ddi/ndis/nf-ndis-ndisfsendnetbufferlistscomplete",
        "SendCompleteFlags: NDIS flags that can be combined with an OR operation. To clear all the flags, set this member to zero. This function supports the following flags:"
        => "send, send-complete, receive and return flags are only those each function supports";
    S14: Must, "network/hyper-v-extensible-switch-send-and-receive-flags",
        "If this flag is set, all packets in a linked list of NET_BUFFER_LIST structures originated from the same Hyper-V extensible switch source port."
        => "the extensible switch's SWITCH_* flags only for packets of a Hyper-V switch (never on an adapter that is not a switch port), so a flag of one family is not passed on as the same bits of another";
    // ---- Filter module states -------------------------------------------------------------
    ST1: Must, "network/filter-module-states-and-operations",
        "A filter driver must support the following operational states for each filter module (instance of a filter driver) that the driver manages:"
        => "module states follow Detached-Attaching-Paused-Restarting-Running-Pausing-Paused-Detached";
    ST2: Must, "ddi/ndis/nc-ndis-filter_attach",
        "If the preceding operations failed, the filter driver must release any resources that it allocated in the FilterAttach function and return the filter module to the Detached state."
        => "FilterAttach calls NdisFSetAttributes, and frees everything it allocated if it fails";
    ST3: Must, "network/pausing-a-filter-module",
        "If the driver returns NDIS_STATUS_PENDING, it must call the NdisFPauseComplete function after it completes the pause operation."
        => "a pended pause is completed exactly once, within 10 s";
    ST4: Must, "ddi/ndis/nc-ndis-filter_pause",
        "Must wait for NDIS to return all outstanding send requests that the driver originated to the FilterSendNetBufferListsComplete function. Must wait for NDIS to return all outstanding receive indications that the driver originated to the FilterReturnNetBufferLists function."
        => "pause completes only when queued and originated NBLs are all back";
    ST5: Must, "ddi/ndis/nc-ndis-filter_restart",
        "NDIS_STATUS_PENDING: The filter driver will complete the request asynchronously with a call to the NdisFRestartComplete function."
        => "a pended restart is completed once, at PASSIVE_LEVEL";
    ST6: Must, "network/filter-module-states-and-operations",
        "A driver can handle OID requests in the Running, Restarting, Paused, and Pausing states."
        => "OID requests and status indications only in Paused, Restarting, Running or Pausing";
    ST7: Must, "ddi/ndis/nc-ndis-filter_detach",
        "FilterDetach frees the driver's context areas and other resources (such as buffer pools) for the affected filter module."
        => "FilterDetach only when Paused; it frees pools and contexts; the handle is dead afterwards";
    ST8: Must, "ddi/ndis/nf-ndis-ndisfregisterfilterdriver",
        "Drivers that call NdisFRegisterFilterDriver must be prepared for an immediate call to any of their FilterXxx functions."
        => "the filter is ready for callbacks as soon as NdisFRegisterFilterDriver is called";
    ST9: Must, "ddi/ndis/nf-ndis-ndisfderegisterfilterdriver",
        "A filter driver must call NdisFDeregisterFilterDriver from its FilterDriverUnload routine."
        => "unload deregisters the filter driver, holding no NBLs";
    ST10: Should, "ddi/ndis/nc-ndis-filter_attach",
        "A filter driver should not make send requests, indicate received data, make OID requests, or make status indications from the Attaching state."
        => "no sends, indications, OID requests or status indications while Attaching";
    ST11: Must, "ddi/ndis/nc-ndis-filter_receive_net_buffer_lists",
        "A filter driver that does provide a FilterReceiveNetBufferLists function must provide a FilterStatus function."
        => "handlers come in the documented pairs: receive or return needs status, an OID complete handler needs the OID handler and back";
    ST12: Must, "ddi/ndis/ns-ndis-_ndis_restart_attributes",
        "If the restart attributes pointer is not NULL, the linked list of NDIS_RESTART_ATTRIBUTES structures has at least one entry that contains an NDIS_RESTART_GENERAL_ATTRIBUTES structure."
        => "the restart attributes a filter passes up keep an NDIS_RESTART_GENERAL_ATTRIBUTES entry with its documented header";
    // ---- NBL, NET_BUFFER and MDL structure --------------------------------------------------
    N1: Must, "ddi/nblapi/nf-nblapi-ndisallocatenetbufferandnetbufferlist",
        "NET_BUFFER_LIST structures must be allocated from an NDIS buffer pool. A driver must not allocate and initialize a NET_BUFFER_LIST or NET_BUFFER structure from its private memory pool or from the stack."
        => "NBLs and NBs come from NDIS pools";
    N2: Must, "ddi/nblapi/nf-nblapi-ndisallocatenetbufferandnetbufferlist",
        "ContextSize must be a multiple of the value defined by MEMORY_ALLOCATION_ALIGNMENT."
        => "NdisAllocateNetBufferAndNetBufferList: NB pool, DataSize 0, aligned context, empty MDL means no data";
    N3: Must, "ddi/nblapi/ns-nblapi-net_buffer_list_pool_parameters",
        "If DataSize is not zero, fAllocateNetBuffer must be set to TRUE."
        => "pool parameters carry a valid header, ProtocolId 0, DataSize only with fAllocateNetBuffer";
    N4: Must, "network/sending-ethernet-frames",
        "All NET_BUFFER structures that are associated with a NET_BUFFER_LIST structure must have the same Ethernet frame type and IP protocol version (IPv4 or IPv6). ... Do not split the MAC header of the transmit Ethernet frame across multiple MDLs."
        => "send NBLs have at least one NB, one frame each, with an unsplit MAC header";
    N5: Inferred, "ddi/nbl/ns-nbl-net_buffer",
        "DataOffset: The offset, in bytes, from the beginning of the MDL chain to the start of the used data space in the MDL chain."
        => "NET_BUFFER offsets and lengths are consistent with its MDL chain";
    N6: Must, "ddi/nblapi/nf-nblapi-ndisadvancenetbufferdatastart",
        "If NDIS allocated memory to satisfy a corresponding call to the NdisRetreatNetBufferDataStart function, then NdisAdvanceNetBufferDataStart frees the memory that NdisRetreatNetBufferDataStart allocated."
        => "headroom changes only through NdisRetreat/AdvanceNetBufferDataStart";
    N7: Must, "ddi/nblapi/nf-nblapi-ndisfreenetbufferlistpool",
        "Before freeing a NET_BUFFER_LIST structure pool, you must free all the NET_BUFFER_LIST structures in the pool."
        => "NdisFreeNetBufferList only on own NBLs held now; a pool is freed only when empty";
    N8: Must, "ddi/nblapi/nf-nblapi-ndisfreenetbufferlist",
        "If you allocated context space for a NET_BUFFER_LIST structure with the NdisAllocateNetBufferListContext function, you must free such context space before you free the NET_BUFFER_LIST structure."
        => "NBL contexts are freed before the NBL";
    N9: Inferred, "ddi/nbl/ns-nbl-net_buffer_list",
        "ChildRefCount: If this NET_BUFFER_LIST structure has clones (is a parent), this member specifies the number of outstanding clones. Otherwise, this member is zero."
        => "a parent NBL is not released while children exist";
    N10: Inferred, "network/sending-ethernet-frames",
        "The NetBufferListInfo member in each NET_BUFFER_LIST structure must include the out-of-band (OOB) data that is required for the particular use."
        => "injected frames carry no offload information unless requested";
    N11: Must, "ddi/nbl/ns-nbl-net_buffer_list",
        "NetBufferListInfo: An array of values containing information that is common to all NET_BUFFER structures in the list. Use the NDIS_NET_BUFFER_LIST_INFO enumeration values with the NET_BUFFER_LIST_INFO macro to set and get values in the NetBufferListInfo array."
        => "NetBufferListInfo slots beyond the driver's NDIS version are never touched";
    // ---- IRQL and locks -----------------------------------------------------------------------
    L1: Must, "ddi/ndis/nf-ndis-ndisfsendnetbufferlists",
        "Requirements, IRQL: <= DISPATCH_LEVEL (each function's reference page states its own)"
        => "datapath and allocation calls at IRQL <= DISPATCH_LEVEL";
    L2: Must, "ddi/ndis/nf-ndis-ndisfregisterfilterdriver",
        "Requirements, IRQL: PASSIVE_LEVEL (each function's reference page states its own)"
        => "registration, attributes, restart completion and device registration at PASSIVE_LEVEL";
    L3: Must, "ddi/ndis/nf-ndis-ndisacquirespinlock",
        "The driver must initialize a variable of type NDIS_SPIN_LOCK with NdisAllocateSpinLock before it calls any other NdisXxxSpinLock function."
        => "spin locks are allocated before use; Dpr variants only at DISPATCH_LEVEL and paired";
    L4: Must, "ddi/ndis/nf-ndis-ndisreleasespinlock",
        "A driver must call NdisAcquireSpinLock to acquire the spin lock before it can call NdisReleaseSpinLock. Each call to NdisAcquireSpinLock requires a reciprocal call to NdisReleaseSpinLock before the driver can call NdisAcquireSpinLock again."
        => "no recursive acquire, no release without acquire, every lock released before returning";
    L5: Should, "network/synchronization-and-notification-in-network-drivers",
        "To avoid a possible deadlock, an NDIS driver should release all NDIS spin locks before calling an NDIS function other than an NdisXxxSpinlock function."
        => "no spin lock held while calling into NDIS; locks released in LIFO order";
    L6: Must, "ddi/wdm/nf-wdm-iocompleterequest",
        "Never call IoCompleteRequest while holding a spin lock. Attempting to complete an IRP while holding a spin lock can cause deadlocks."
        => "no spin lock held while completing an IRP";
    L7: Policy, "ddi/ndis/nf-ndis-ndisfreespinlock",
        "Usually, this function is not called until a driver is unloading."
        => "every spin lock allocated is freed (NdisFreeSpinLock has no effect on Windows)";
    L8: Must, "ddi/wdm/nf-wdm-kelowerirql",
        "It is a fatal error to call KeLowerIrql using an input NewIrql that was not returned by the immediately preceding call to KeRaiseIrql or KeRaiseIrqlToDpcLevel."
        => "KeRaiseIrql never lowers and KeLowerIrql never raises the IRQL, nor drops below DISPATCH_LEVEL with a spin lock held";
    // ---- Control device and IRPs --------------------------------------------------------------
    D1: Must, "ddi/ndis/nf-ndis-ndisregisterdeviceex",
        "NDIS drivers must not modify the DeviceExtension member of the DEVICE_OBJECT structure that NdisRegisterDeviceEx created."
        => "NdisRegisterDeviceEx at PASSIVE with valid attributes; the I/O manager's DeviceExtension is not the driver's";
    D2: Must, "ddi/ndis/nf-ndis-ndisregisterdeviceex",
        "The driver must subsequently call the NdisDeregisterDeviceEx function when the device is no longer needed."
        => "unload deregisters every device";
    D3: Must, "kernel/completing-irps",
        "When all drivers have completed the IRP, the I/O manager returns status to the original requester of the operation. (IoCompleteRequest: IRQL <= DISPATCH_LEVEL.)"
        => "every IRP is completed exactly once, at <= DISPATCH_LEVEL";
    D4: Must, "ddi/wdm/nf-wdm-iomarkirppending",
        "After calling IoMarkIrpPending, the dispatch routine must return STATUS_PENDING, even if some routine completes the IRP (by calling IoCompleteRequest) before the dispatch routine that called IoMarkIrpPending returns."
        => "IoMarkIrpPending if and only if STATUS_PENDING is returned";
    D5: Must, "kernel/implementing-a-cancel-routine",
        "Set the I/O status block's Status member to STATUS_CANCELLED, and set its Information member to zero."
        => "cancel routines follow the documented protocol";
    D6: Must, "kernel/irp-mj-cleanup",
        "Otherwise, the driver must cancel and complete only the currently queued IRPs that are associated with the file object handle that is being released."
        => "IRP_MJ_CLEANUP completes every queued IRP of its file object";
    D7: Must, "kernel/buffer-descriptions-for-i-o-control-codes",
        "The size of the space that the system allocates for the single input/output buffer is the larger of the two length values."
        => "IOCTL buffers and lengths are respected; with a success or warning status Information <= the output length";
    D8: Must, "kernel/irp-mj-read",
        "The device driver sets the Information field of the I/O status block to the number of bytes transferred when it completes the IRP."
        => "a read or write completes with Information <= Length";
    D9: Policy, "kernel/sddl-for-device-objects",
        "Security Descriptor Definition Language (SDDL) is used to represent security descriptors."
        => "the device has a DefaultSDDLString for SYSTEM and Administrators only";
    D10: Inferred, "kernel/controlling-device-namespace-access",
        "Most drivers do not implement support for open operations into the device's namespace, but all drivers must provide security checks to prevent unauthorized access to the device's namespace."
        => "opens into the device's namespace (a file name after the device name) are refused unless the device has FILE_DEVICE_SECURE_OPEN";
    D11: Policy, "kernel/buffer-descriptions-for-i-o-control-codes",
        "The IRP supplies the user-mode virtual addresses of the input and output buffers that were specified to DeviceIoControl or IoBuildDeviceIoControlRequest, without validating or mapping them."
        => "METHOD_NEITHER IOCTLs are refused";
    D12: Policy, "kernel/initializing-a-device-object",
        "Highest-level drivers of logical or virtual devices can avoid setting Flags for either buffered or direct I/O if the driver writer decides the additional work involved will pay off in better driver performance."
        => "a device that serves reads or writes declares DO_BUFFERED_IO or DO_DIRECT_IO";
    D13: Must, "ddi/wdm/nf-wdm-mmmaplockedpagesspecifycache",
        "If TRUE, the system issues a bug check. If FALSE, the routine returns NULL. Drivers must set this parameter to FALSE."
        => "an MDL (a direct-I/O buffer, a stack's unmapped data) is mapped with BugCheckOnFailure FALSE, as MmGetSystemAddressForMdlSafe does, and a NULL mapping is an answer";
    // ---- OID requests ---------------------------------------------------------------------------
    O1: Must, "ddi/ndis/nc-ndis-filter_oid_request",
        "Before the driver calls NdisFOidRequest, the driver must allocate an NDIS_OID_REQUEST structure and transfer the request information to the new structure by calling NdisAllocateCloneOidRequest. ... If the driver returns NDIS_STATUS_PENDING, it must call the NdisFOidRequestComplete function to inform NDIS that the request is complete."
        => "FilterOidRequest completes synchronously or pends and completes once; forwarding uses a clone";
    O2: Must, "ddi/ndis/nc-ndis-filter_oid_request_complete",
        "The filter driver must call NdisFreeCloneOidRequest, to free the NDIS_OID_REQUEST structure, before it calls NdisFOidRequestComplete."
        => "on completion: copy the counts back, free the clone, then complete the original";
    O3: Must, "network/security-issues-for-network-drivers",
        "Always write a correct and minimal value to BytesWritten."
        => "BytesWritten within the buffer";
    O4: Inferred, "ddi/ndis/nc-ndis-filter_oid_request",
        "Like miniport drivers, filter drivers can receive only one request at a time. NDIS serializes requests that it sends to a filter driver."
        => "one OID request of its own at a time per module";
    // ---- Kernel pool ----------------------------------------------------------------------------
    K1: Must, "ddi/wdm/nf-wdm-exfreepoolwithtag",
        "Tag: Specifies the tag value passed to ExAllocatePoolWithTag or ExAllocatePoolWithQuotaTag when the block of memory was originally allocated."
        => "pool memory is freed once, with its tag, and nothing is leaked at unload (bug check 0xC2/0xC4)";
    K2: Must, "ddi/wdm/nf-wdm-assertmsg",
        "If Expression evaluates to FALSE, a message is displayed in the Debugger Command window."
        => "no ASSERT of the driver fails (RtlAssert is called only when one does)";
    K3: Must, "ddi/wdm/nf-wdm-kewaitforsingleobject",
        "If a NULL pointer is supplied for Timeout, the calling thread remains in a wait state until the Object is signaled."
        => "every wait is satisfied: nothing waits forever for an event no completion, return, timer or work item will set";
    K4: Must, "ddi/ndis/nf-ndis-ndisallocateioworkitem",
        "In general, a driver must free the work item before the driver unloads."
        => "I/O work items: allocated with a driver or device handle, queued once at a time, not freed while queued, freed before unload";
    K5: Must, "ddi/ndis/nf-ndis-ndiswaitevent",
        "Event: A pointer to an initialized event object for which the caller provides the storage."
        => "events are initialized (KeInitializeEvent, NdisInitializeEvent) before they are set, reset or waited on";
    // ---- Configuration --------------------------------------------------------------------------
    C1: Must, "ddi/ndis/ns-ndis-_ndis_configuration_object",
        "Set the Type member of the structure that Header specifies to NDIS_OBJECT_TYPE_CONFIGURATION_OBJECT, the Revision member to NDIS_CONFIGURATION_OBJECT_REVISION_1, and the Size member to NDIS_SIZEOF_CONFIGURATION_OBJECT_REVISION_1."
        => "configuration objects carry their documented header and a driver or module handle; only open configuration handles are read or closed";
    C2: Inferred, "ddi/ndis/nf-ndis-ndisreadconfiguration",
        "The memory it allocates for the NDIS_CONFIGURATION_PARAMETER structure is freed when the driver releases the ConfigurationHandle with the NdisCloseConfiguration function."
        => "every configuration handle is closed";
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One broken rule: what, where (the driver callback or sim operation in progress), and a
/// precise message.
#[derive(Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub context: String,
    pub message: String,
    /// Where in a loaded driver image the call that broke the rule came from (the return
    /// address into the image, relative to its base), when the driver runs from a `.sys`.
    pub rva: Option<u32>,
}

impl Violation {
    /// Whether this is a warning (a rule that is not a documented must).
    pub fn is_warning(&self) -> bool {
        !self.rule.severity().is_violation()
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_warning() {
            write!(
                f,
                "{} ({}) [{}] {}",
                self.rule,
                self.rule.severity().name(),
                self.context,
                self.message
            )
        } else {
            write!(f, "{} [{}] {}", self.rule, self.context, self.message)
        }
    }
}

impl fmt::Debug for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Settings for the rules whose documentation is unclear (⚠ in ndis-rules.md) or that the
/// documentation words as "should". Every default is the strict reading.
#[derive(Clone, Debug)]
pub struct Strictness {
    /// R12/S9 ⚠: may a filter pass on or originate traffic while Restarting? The rules file
    /// says Running only; the NdisFRestartComplete reference says a filter "can resume
    /// indicating received network data immediately after NDIS calls FilterRestart". The
    /// documented reading is the default (allowed); `false` enforces Running only.
    pub datapath_while_restarting: bool,
    /// ST7: memory allocated with a module's handle must be freed by FilterDetach (the
    /// handle is dead afterwards). (default: yes)
    pub module_memory_freed_at_detach: bool,
    /// Warnings (rules that are a *should*, an inference or a policy) fail a run as
    /// violations do. rxinject's own tests switch this on; `ndis-verify --strict` too.
    /// (default: warnings are reported and counted, and fail nothing)
    pub warnings_fail: bool,
}

impl Default for Strictness {
    fn default() -> Self {
        Strictness {
            datapath_while_restarting: true,
            module_memory_freed_at_detach: true,
            warnings_fail: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_of_the_rules_file_is_known() {
        // The families and counts of ../shared/ndis-rules.md, plus the rules the catalogue
        // split off or added (R14, S12, S13, S14, ST10, ST11, N11, L6-L8, D10-D13, O4), the kernel
        // rules K1-K5 and the configuration rules C1-C2.
        let count = |prefix: &str| {
            Rule::ALL
                .iter()
                .filter(|r| {
                    let id = r.id();
                    id.starts_with(prefix) && id[prefix.len()..].chars().all(|c| c.is_ascii_digit())
                })
                .count()
        };
        assert_eq!(count("R"), 14);
        assert_eq!(count("S"), 14);
        assert_eq!(count("ST"), 12);
        assert_eq!(count("N"), 11);
        assert_eq!(count("L"), 8);
        assert_eq!(count("D"), 13);
        assert_eq!(count("O"), 4);
        assert_eq!(count("K"), 5);
        assert_eq!(count("C"), 2);
        assert_eq!(format!("{:?}", Rule::R6), "R6");
    }

    #[test]
    fn every_rule_cites_a_microsoft_page_a_sentence_and_a_severity() {
        for r in Rule::ALL {
            let page = r.page();
            assert!(
                ["ddi/", "network/", "kernel/"]
                    .iter()
                    .any(|p| page.starts_with(p))
                    && !page.contains(' ')
                    && !page.ends_with('/'),
                "{r}: {page}"
            );
            assert!(
                r.url()
                    .starts_with("https://learn.microsoft.com/windows-hardware/drivers/")
            );
            let q = r.quote();
            assert!(
                q.len() >= 30 && (q.ends_with('.') || q.ends_with(':') || q.ends_with(')')),
                "{r}: {q}"
            );
            assert!(!r.summary().is_empty());
        }
        // What the documentation words as a must is a violation; the rest are warnings.
        assert!(Rule::R6.severity().is_violation());
        for r in [Rule::R14, Rule::S6, Rule::S7, Rule::S12, Rule::ST10, Rule::L5] {
            assert_eq!(r.severity(), Severity::Should, "{r}");
        }
        for r in [
            Rule::S8,
            Rule::N5,
            Rule::N9,
            Rule::N10,
            Rule::D10,
            Rule::O4,
            Rule::C2,
        ] {
            assert_eq!(r.severity(), Severity::Inferred, "{r}");
        }
        for r in [Rule::D9, Rule::D11, Rule::D12, Rule::L7] {
            assert_eq!(r.severity(), Severity::Policy, "{r}");
        }
        let must = Rule::ALL.iter().filter(|r| r.severity().is_violation()).count();
        assert_eq!(must + 17, Rule::ALL.len());
    }
}
