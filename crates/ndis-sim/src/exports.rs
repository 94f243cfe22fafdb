//! The NDIS and kernel functions the driver imports, implemented for the simulation with the
//! Windows x64 calling convention. Each definition is checked at compile time against the
//! driver's own declaration (`ndis_sys::signatures`), and [`exports`] lists them by module
//! and name, for a loader of the shipped `.sys`.

#![allow(non_snake_case, clippy::missing_safety_doc)]

use std::ffi::CStr;

use ndis_sys::{
    BOOLEAN, DEVICE_OBJECT, DRIVER_OBJECT, EX_POOL_PRIORITY, IRP, KIRQL, MDL, MDL_MAPPED_TO_SYSTEM_VA,
    MDL_SOURCE_IS_NONPAGED_POOL, MEMORY_ALLOCATION_ALIGNMENT, NDIS_DEVICE_OBJECT_ATTRIBUTES,
    NDIS_FILTER_ATTRIBUTES, NDIS_FILTER_DRIVER_CHARACTERISTICS, NDIS_HANDLE, NDIS_OBJECT_TYPE_DEFAULT,
    NDIS_OID_REQUEST, NDIS_PORT_NUMBER, NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
    NDIS_SPIN_LOCK, NDIS_STATUS, NDIS_STATUS_INDICATION, NDIS_TIMER_CHARACTERISTICS, NET_BUFFER_LIST,
    NET_BUFFER_LIST_POOL_PARAMETERS, NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1, NET_DEVICE_PNP_EVENT,
    NET_PNP_EVENT_NOTIFICATION, NTSTATUS, POOL_FLAG_NON_PAGED, POOL_FLAG_UNINITIALIZED, POOL_FLAGS, PVOID,
    STATUS_SUCCESS,
};

use crate::mem::{AllocKind, Block, tag_str};
use crate::nbl::{self, MdlRec, Origin, Owner, PoolRec};
use crate::rules::Rule;
use crate::world::{HandleKind, World, lock, world};
use crate::{datapath, io, lifecycle, locks, oid, timer, tls};

macro_rules! export {
    (fn $name:ident ( $( $a:ident : $t:ty ),* $(,)? ) $( -> $r:ty )? $body:block) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "win64" fn $name( $( $a : $t ),* ) $( -> $r )? $body
        const _: ndis_sys::signatures::$name = $name;
    };
}

/// Every export: (module, name, address).
pub fn exports() -> Vec<(&'static str, &'static str, usize)> {
    let mut all = own_exports();
    all.extend(crate::kernel::exports());
    all
}

/// The exports rxinject imports.
fn own_exports() -> Vec<(&'static str, &'static str, usize)> {
    macro_rules! list {
        ($( $dll:literal: [ $( $f:ident ),* $(,)? ] )*) => {
            vec![ $( $( ($dll, stringify!($f), $f as *const () as usize), )* )* ]
        };
    }
    list! {
        "ndis.sys": [
            NdisFRegisterFilterDriver, NdisFDeregisterFilterDriver, NdisFSetAttributes,
            NdisFRestartComplete, NdisFPauseComplete, NdisFSendNetBufferLists,
            NdisFSendNetBufferListsComplete, NdisFCancelSendNetBufferLists,
            NdisFIndicateReceiveNetBufferLists, NdisFReturnNetBufferLists, NdisFOidRequest,
            NdisFOidRequestComplete, NdisFCancelOidRequest, NdisAllocateCloneOidRequest,
            NdisFreeCloneOidRequest, NdisFIndicateStatus, NdisFNetPnPEvent,
            NdisFDevicePnPEventNotify, NdisAllocateMemoryWithTagPriority, NdisFreeMemory,
            NdisAllocateSpinLock, NdisFreeSpinLock, NdisAcquireSpinLock, NdisReleaseSpinLock,
            NdisDprAcquireSpinLock, NdisDprReleaseSpinLock, NdisAllocateNetBufferListPool,
            NdisFreeNetBufferListPool, NdisAllocateNetBufferAndNetBufferList,
            NdisFreeNetBufferList, NdisAllocateMdl, NdisFreeMdl, NdisRegisterDeviceEx,
            NdisDeregisterDeviceEx, NdisGetDeviceReservedExtension, NdisAllocateTimerObject,
            NdisSetTimerObject, NdisCancelTimerObject, NdisFreeTimerObject,
        ]
        "ntoskrnl.exe": [
            ExAllocatePool2, ExFreePoolWithTag, DbgPrintEx, KeBugCheckEx, IofCompleteRequest,
            IoAcquireCancelSpinLock, IoReleaseCancelSpinLock, KeQuerySystemTimePrecise,
            KeQueryInterruptTimePrecise, KeFlushQueuedDpcs, MmMapLockedPagesSpecifyCache,
            KfRaiseIrql, KeLowerIrql, KeGetCurrentProcessorNumberEx,
            KeQueryMaximumProcessorCountEx,
        ]
    }
}

// ---- IRQL and processors ---------------------------------------------------------------------

export! { fn KfRaiseIrql(NewIrql: KIRQL) -> KIRQL { crate::kernel::raise_irql(NewIrql) } }
export! { fn KeLowerIrql(NewIrql: KIRQL) { crate::kernel::lower_irql(NewIrql) } }

export! {
    fn KeGetCurrentProcessorNumberEx(ProcNumber: *mut ndis_sys::PROCESSOR_NUMBER) -> u32 {
        let _ = world();
        let n = tls::current_processor();
        if !ProcNumber.is_null() {
            // SAFETY: the caller's PROCESSOR_NUMBER (one group: the group-relative number is
            // the index).
            unsafe {
                *ProcNumber = ndis_sys::PROCESSOR_NUMBER {
                    Group: 0,
                    Number: n as u8,
                    Reserved: 0,
                }
            };
        }
        n
    }
}

export! {
    fn KeQueryMaximumProcessorCountEx(GroupNumber: u16) -> u32 {
        let _ = world();
        // One group, group 0, holds every processor.
        if GroupNumber == ndis_sys::ALL_PROCESSOR_GROUPS || GroupNumber == 0 {
            tls::processor_count()
        } else {
            0
        }
    }
}

// ---- registration and life cycle ------------------------------------------------------------

export! {
    fn NdisFRegisterFilterDriver(
        DriverObject: *mut DRIVER_OBJECT,
        FilterDriverContext: NDIS_HANDLE,
        FilterDriverCharacteristics: *const NDIS_FILTER_DRIVER_CHARACTERISTICS,
        NdisFilterDriverHandle: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS {
        lifecycle::register(&world(), DriverObject, FilterDriverContext, FilterDriverCharacteristics, NdisFilterDriverHandle)
    }
}

export! {
    fn NdisFDeregisterFilterDriver(NdisFilterDriverHandle: NDIS_HANDLE) {
        lifecycle::deregister(&world(), NdisFilterDriverHandle)
    }
}

export! {
    fn NdisFSetAttributes(
        NdisFilterHandle: NDIS_HANDLE,
        FilterModuleContext: NDIS_HANDLE,
        FilterAttributes: *mut NDIS_FILTER_ATTRIBUTES,
    ) -> NDIS_STATUS {
        lifecycle::set_attributes(&world(), NdisFilterHandle, FilterModuleContext, FilterAttributes)
    }
}

export! {
    fn NdisFRestartComplete(NdisFilterHandle: NDIS_HANDLE, Status: NDIS_STATUS) {
        lifecycle::restart_complete(&world(), NdisFilterHandle, Status)
    }
}

export! {
    fn NdisFPauseComplete(NdisFilterHandle: NDIS_HANDLE) {
        lifecycle::pause_complete(&world(), NdisFilterHandle)
    }
}

// ---- datapath --------------------------------------------------------------------------------

export! {
    fn NdisFSendNetBufferLists(
        NdisFilterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        SendFlags: u32,
    ) {
        let _ = PortNumber;
        datapath::f_send(&world(), NdisFilterHandle, NetBufferLists, SendFlags)
    }
}

export! {
    fn NdisFSendNetBufferListsComplete(
        NdisFilterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        SendCompleteFlags: u32,
    ) {
        datapath::f_send_complete(&world(), NdisFilterHandle, NetBufferLists, SendCompleteFlags)
    }
}

export! {
    fn NdisFCancelSendNetBufferLists(NdisFilterHandle: NDIS_HANDLE, CancelId: PVOID) {
        let w = world();
        w.require_max_dispatch("NdisFCancelSendNetBufferLists");
        if let Some(a) = w.module_adapter(NdisFilterHandle, "NdisFCancelSendNetBufferLists") {
            lock(&a.miniport).cancels.push(CancelId as usize);
        }
    }
}

export! {
    fn NdisFIndicateReceiveNetBufferLists(
        NdisFilterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        NumberOfNetBufferLists: u32,
        ReceiveFlags: u32,
    ) {
        let _ = PortNumber;
        datapath::f_indicate(&world(), NdisFilterHandle, NetBufferLists, NumberOfNetBufferLists, ReceiveFlags)
    }
}

export! {
    fn NdisFReturnNetBufferLists(NdisFilterHandle: NDIS_HANDLE, NetBufferLists: *mut NET_BUFFER_LIST, ReturnFlags: u32) {
        datapath::f_return(&world(), NdisFilterHandle, NetBufferLists, ReturnFlags)
    }
}

// ---- OID, status, PnP ------------------------------------------------------------------------

export! {
    fn NdisFOidRequest(NdisFilterHandle: NDIS_HANDLE, OidRequest: *mut NDIS_OID_REQUEST) -> NDIS_STATUS {
        oid::f_oid_request(&world(), NdisFilterHandle, OidRequest)
    }
}

export! {
    fn NdisFOidRequestComplete(NdisFilterHandle: NDIS_HANDLE, OidRequest: *mut NDIS_OID_REQUEST, Status: NDIS_STATUS) {
        oid::f_oid_complete(&world(), NdisFilterHandle, OidRequest, Status)
    }
}

export! {
    fn NdisFCancelOidRequest(NdisFilterHandle: NDIS_HANDLE, RequestId: PVOID) {
        let w = world();
        w.require_max_dispatch("NdisFCancelOidRequest");
        if let Some(a) = w.module_adapter(NdisFilterHandle, "NdisFCancelOidRequest") {
            oid::cancel_request(&w, a, RequestId as usize);
        }
    }
}

export! {
    fn NdisAllocateCloneOidRequest(
        SourceHandle: NDIS_HANDLE,
        OidRequest: *mut NDIS_OID_REQUEST,
        PoolTag: u32,
        CloneOidRequest: *mut *mut NDIS_OID_REQUEST,
    ) -> NDIS_STATUS {
        let _ = PoolTag;
        oid::clone_request(&world(), SourceHandle, OidRequest, CloneOidRequest)
    }
}

export! {
    fn NdisFreeCloneOidRequest(SourceHandle: NDIS_HANDLE, Request: *mut NDIS_OID_REQUEST) {
        oid::free_clone(&world(), SourceHandle, Request)
    }
}

export! {
    fn NdisFIndicateStatus(NdisFilterHandle: NDIS_HANDLE, StatusIndication: *mut NDIS_STATUS_INDICATION) {
        oid::f_indicate_status(&world(), NdisFilterHandle, StatusIndication)
    }
}

export! {
    fn NdisFNetPnPEvent(NdisFilterHandle: NDIS_HANDLE, NetPnPEventNotification: *mut NET_PNP_EVENT_NOTIFICATION) -> NDIS_STATUS {
        let _ = NetPnPEventNotification;
        oid::f_net_pnp(&world(), NdisFilterHandle)
    }
}

export! {
    fn NdisFDevicePnPEventNotify(NdisFilterHandle: NDIS_HANDLE, NetDevicePnPEvent: *mut NET_DEVICE_PNP_EVENT) {
        let _ = NetDevicePnPEvent;
        oid::f_device_pnp(&world(), NdisFilterHandle)
    }
}

// ---- memory ----------------------------------------------------------------------------------

/// What `h` stands for, if it is a live handle.
pub(crate) fn handle_kind(w: &World, h: NDIS_HANDLE) -> Option<HandleKind> {
    lock(&w.objs).handles.get(&(h as usize)).copied()
}

export! {
    fn NdisAllocateMemoryWithTagPriority(NdisHandle: NDIS_HANDLE, Length: u32, Tag: u32, Priority: EX_POOL_PRIORITY) -> PVOID {
        let _ = Priority;
        let w = world();
        w.require_max_dispatch("NdisAllocateMemoryWithTagPriority");
        match handle_kind(&w, NdisHandle) {
            Some(HandleKind::FilterDriver | HandleKind::Module(_)) => {}
            _ => w.violate(Rule::K1, format!("NdisAllocateMemoryWithTagPriority with {:#x}, not a driver or module handle", NdisHandle as usize)),
        }
        if Length == 0 || w.fail_allocation("NdisAllocateMemoryWithTagPriority") {
            return std::ptr::null_mut();
        }
        let addr = lock(&w.mem).allocate(Length as usize, Tag, AllocKind::Ndis { handle: NdisHandle as usize }, false);
        addr as PVOID
    }
}

export! {
    fn NdisFreeMemory(VirtualAddress: PVOID, Length: u32, MemoryFlags: u32) {
        let _ = (Length, MemoryFlags);
        let w = world();
        w.require_max_dispatch("NdisFreeMemory");
        match lock(&w.mem).free(VirtualAddress as usize) {
            Some((_, AllocKind::Ndis { .. })) => {}
            Some((tag, AllocKind::Ex)) => w.violate(Rule::K1, format!("NdisFreeMemory on ExAllocatePool2 memory (tag {})", tag_str(tag))),
            None => w.violate(Rule::K1, format!("NdisFreeMemory({:#x}): not a live allocation (double free?)", VirtualAddress as usize)),
        }
    }
}

export! {
    fn ExAllocatePool2(Flags: POOL_FLAGS, NumberOfBytes: usize, Tag: u32) -> PVOID {
        let w = world();
        w.require_max_dispatch("ExAllocatePool2");
        if Flags & POOL_FLAG_NON_PAGED == 0 && tls::irql() > ndis_sys::APC_LEVEL {
            w.violate(Rule::L1, "ExAllocatePool2 of paged pool at DISPATCH_LEVEL");
        }
        if Tag == 0 {
            w.violate(Rule::K1, "ExAllocatePool2 with a zero tag");
        }
        if NumberOfBytes == 0 || w.fail_allocation("ExAllocatePool2") {
            return std::ptr::null_mut();
        }
        let zeroed = Flags & POOL_FLAG_UNINITIALIZED == 0;
        lock(&w.mem).allocate(NumberOfBytes, Tag, AllocKind::Ex, zeroed) as PVOID
    }
}

export! {
    fn ExFreePoolWithTag(P: PVOID, Tag: u32) {
        let w = world();
        w.require_max_dispatch("ExFreePoolWithTag");
        let mut mem = lock(&w.mem);
        let Some(a) = mem.live.get(&(P as usize)) else {
            drop(mem);
            w.violate(Rule::K1, format!("ExFreePoolWithTag({:#x}): not a live allocation (double free?)", P as usize));
            return;
        };
        if a.kind != AllocKind::Ex || a.tag != Tag {
            let (kind, tag) = (a.kind, a.tag);
            drop(mem);
            w.violate(Rule::K1, format!("ExFreePoolWithTag(tag {}) on {kind:?} memory tagged {} (bug check 0xC2)", tag_str(Tag), tag_str(tag)));
            return;
        }
        mem.free(P as usize);
    }
}

// ---- spin locks ------------------------------------------------------------------------------

export! { fn NdisAllocateSpinLock(SpinLock: *mut NDIS_SPIN_LOCK) { locks::allocate(&world(), SpinLock) } }
export! { fn NdisFreeSpinLock(SpinLock: *mut NDIS_SPIN_LOCK) { locks::free(&world(), SpinLock) } }
export! { fn NdisAcquireSpinLock(SpinLock: *mut NDIS_SPIN_LOCK) { locks::acquire(&world(), SpinLock, false) } }
export! { fn NdisReleaseSpinLock(SpinLock: *mut NDIS_SPIN_LOCK) { locks::release(&world(), SpinLock, false) } }
export! { fn NdisDprAcquireSpinLock(SpinLock: *mut NDIS_SPIN_LOCK) { locks::acquire(&world(), SpinLock, true) } }
export! { fn NdisDprReleaseSpinLock(SpinLock: *mut NDIS_SPIN_LOCK) { locks::release(&world(), SpinLock, true) } }

// ---- pools, NBLs, MDLs -----------------------------------------------------------------------

export! {
    fn NdisAllocateNetBufferListPool(NdisHandle: NDIS_HANDLE, Parameters: *mut NET_BUFFER_LIST_POOL_PARAMETERS) -> NDIS_HANDLE {
        const F: &str = "NdisAllocateNetBufferListPool";
        let w = world();
        w.require_max_dispatch(F);
        let kind = match handle_kind(&w, NdisHandle) {
            Some(k @ (HandleKind::FilterDriver | HandleKind::Module(_))) => k,
            _ => {
                w.violate(Rule::N3, format!("{F} with {:#x}, not a driver or module handle", NdisHandle as usize));
                return std::ptr::null_mut();
            }
        };
        if Parameters.is_null() {
            w.violate(Rule::N3, format!("{F}(Parameters = NULL)"));
            return std::ptr::null_mut();
        }
        // SAFETY: the driver's parameters, valid for the call.
        let p = unsafe { *Parameters };
        let mut bad = Vec::new();
        if p.Header.Type != NDIS_OBJECT_TYPE_DEFAULT
            || p.Header.Revision != NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1
            || p.Header.Size < NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1
        {
            bad.push((Rule::N3, format!("header {:?} is not DEFAULT/revision 1/size 16", p.Header)));
        }
        if p.ProtocolId != 0 {
            bad.push((Rule::N3, format!("ProtocolId {} (filters use NDIS_PROTOCOL_ID_DEFAULT)", p.ProtocolId)));
        }
        if p.DataSize != 0 && p.fAllocateNetBuffer == 0 {
            bad.push((Rule::N3, format!("DataSize {} without fAllocateNetBuffer", p.DataSize)));
        }
        if usize::from(p.ContextSize) % MEMORY_ALLOCATION_ALIGNMENT != 0 {
            bad.push((Rule::N2, format!("ContextSize {} is not a multiple of MEMORY_ALLOCATION_ALIGNMENT", p.ContextSize)));
        }
        if !bad.is_empty() {
            for (r, m) in bad {
                w.violate(r, format!("{F}: {m}"));
            }
            return std::ptr::null_mut();
        }
        if w.fail_allocation(F) {
            return std::ptr::null_mut();
        }
        let mut objs = lock(&w.objs);
        let h = objs.new_handle(HandleKind::Pool);
        objs.pools.insert(h, PoolRec { owner_handle: NdisHandle as usize, owner_kind: kind, params: p, live: 0 });
        h as NDIS_HANDLE
    }
}

export! {
    fn NdisFreeNetBufferListPool(PoolHandle: NDIS_HANDLE) {
        const F: &str = "NdisFreeNetBufferListPool";
        let w = world();
        w.require_max_dispatch(F);
        let mut objs = lock(&w.objs);
        match objs.pools.get(&(PoolHandle as usize)) {
            None => {
                drop(objs);
                w.violate(Rule::N7, format!("{F}({:#x}): not a live pool", PoolHandle as usize));
            }
            Some(p) if p.live > 0 => {
                let live = p.live;
                drop(objs);
                w.violate(Rule::N7, format!("{F}: the pool still has {live} NBL(s) allocated"));
            }
            Some(_) => {
                objs.pools.remove(&(PoolHandle as usize));
                objs.kill_handle(PoolHandle as usize);
            }
        }
    }
}

export! {
    fn NdisAllocateNetBufferAndNetBufferList(
        PoolHandle: NDIS_HANDLE,
        ContextSize: u16,
        ContextBackFill: u16,
        MdlChain: *mut MDL,
        DataOffset: u32,
        DataLength: usize,
    ) -> *mut NET_BUFFER_LIST {
        const F: &str = "NdisAllocateNetBufferAndNetBufferList";
        let w = world();
        w.require_max_dispatch(F);
        if w.fail_allocation(F) {
            return std::ptr::null_mut();
        }
        let mut objs = lock(&w.objs);
        let Some(pool) = objs.pools.get(&(PoolHandle as usize)) else {
            drop(objs);
            w.violate(Rule::N2, format!("{F}({:#x}): not a live pool", PoolHandle as usize));
            return std::ptr::null_mut();
        };
        let mut bad = Vec::new();
        if pool.params.fAllocateNetBuffer == 0 || pool.params.DataSize != 0 {
            bad.push("the pool must have fAllocateNetBuffer = TRUE and DataSize = 0".to_string());
        }
        if usize::from(ContextSize) % MEMORY_ALLOCATION_ALIGNMENT != 0 || usize::from(ContextBackFill) % MEMORY_ALLOCATION_ALIGNMENT != 0 {
            bad.push(format!("context size {ContextSize}/backfill {ContextBackFill} not multiples of MEMORY_ALLOCATION_ALIGNMENT"));
        }
        if MdlChain.is_null() && (DataOffset != 0 || DataLength != 0) {
            bad.push(format!("no MDL chain but DataOffset {DataOffset} / DataLength {DataLength}"));
        }
        let mut total = 0usize;
        let mut m = MdlChain;
        while !m.is_null() {
            if !objs.mdls.contains_key(&(m as usize)) {
                bad.push(format!("MDL {:#x} was not allocated through NDIS", m as usize));
                break;
            }
            // SAFETY: a registered MDL.
            let md = unsafe { &*m };
            total += md.ByteCount as usize;
            m = md.Next;
        }
        if !MdlChain.is_null() && DataOffset as usize + DataLength > total {
            bad.push(format!("DataOffset {DataOffset} + DataLength {DataLength} exceed the {total} bytes of the MDL chain"));
        }
        if !bad.is_empty() {
            drop(objs);
            for b in bad {
                w.violate(Rule::N2, format!("{F}: {b}"));
            }
            return std::ptr::null_mut();
        }
        let ctx = usize::from(pool.params.ContextSize) + usize::from(ContextSize) + usize::from(ContextBackFill);
        let adapter = match pool.owner_kind { HandleKind::Module(i) => i, _ => usize::MAX };
        let n = nbl::build_own(&mut objs, PoolHandle as usize, ctx, MdlChain, DataOffset, DataLength);
        objs.nbls.get_mut(&n).expect("just built").adapter = adapter;
        objs.pools.get_mut(&(PoolHandle as usize)).expect("checked").live += 1;
        n as *mut NET_BUFFER_LIST
    }
}

export! {
    fn NdisFreeNetBufferList(NetBufferList: *mut NET_BUFFER_LIST) {
        const F: &str = "NdisFreeNetBufferList";
        let w = world();
        w.require_max_dispatch(F);
        let mut objs = lock(&w.objs);
        let addr = NetBufferList as usize;
        let Some(rec) = objs.nbls.get(&addr) else {
            drop(objs);
            w.violate(Rule::N7, format!("{F}({addr:#x}): not a live NBL (double free?)"));
            return;
        };
        let pool = match rec.origin {
            Origin::Filter { pool } => pool,
            _ => {
                let (id, mixed) = (rec.id, rec.mixed_return);
                drop(objs);
                if mixed {
                    w.violate(Rule::R8, format!("{F}: NBL #{id} ({addr:#x}) belongs to another driver; it came back in a return chain mixing own and foreign NBLs, which must be split by each NBL's SourceHandle"));
                } else {
                    w.violate(Rule::N7, format!("{F}: NBL #{id} ({addr:#x}) belongs to another driver"));
                }
                return;
            }
        };
        match rec.owner {
            Owner::Filter => datapath::check_beyond_slots(&w, &objs, F, &[addr]),
            Owner::Above => {
                drop(objs);
                w.violate(Rule::R6, format!("{F}({addr:#x}) while it is indicated up: own NBLs are freed only after FilterReturnNetBufferLists"));
                return;
            }
            other => {
                drop(objs);
                w.violate(Rule::S4, format!("{F}({addr:#x}) while it is {other:?}"));
                return;
            }
        }
        objs.release_nbl(addr);
        objs.filter_nbl_frees += 1;
        if let Some(p) = objs.pools.get_mut(&pool) {
            p.live -= 1;
        }
    }
}

export! {
    fn NdisAllocateMdl(NdisHandle: NDIS_HANDLE, VirtualAddress: PVOID, Length: u32) -> *mut MDL {
        let w = world();
        w.require_max_dispatch("NdisAllocateMdl");
        let _ = NdisHandle;
        if w.fail_allocation("NdisAllocateMdl") {
            return std::ptr::null_mut();
        }
        let b = Block::new(std::mem::size_of::<MDL>(), 0);
        let m = b.ptr::<MDL>();
        let va = VirtualAddress as usize;
        // SAFETY: a zeroed block of MDL size.
        unsafe {
            (*m).Size = std::mem::size_of::<MDL>() as i16;
            (*m).MdlFlags = MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA;
            (*m).StartVa = (va & !0xFFF) as PVOID;
            (*m).ByteOffset = (va & 0xFFF) as u32;
            (*m).ByteCount = Length;
            (*m).MappedSystemVa = VirtualAddress;
        }
        lock(&w.objs).mdls.insert(m as usize, MdlRec { block: Some(b), by_filter: true });
        m
    }
}

export! {
    fn NdisFreeMdl(Mdl: *mut MDL) {
        let w = world();
        w.require_max_dispatch("NdisFreeMdl");
        let mut objs = lock(&w.objs);
        match objs.mdls.remove(&(Mdl as usize)) {
            Some(MdlRec { block: Some(b), by_filter: true }) => {
                let _ = objs.quarantine.put(b);
            }
            Some(other) => {
                objs.mdls.insert(Mdl as usize, other);
                drop(objs);
                w.violate(Rule::K1, format!("NdisFreeMdl({:#x}): the MDL was not allocated with NdisAllocateMdl", Mdl as usize));
            }
            None => {
                drop(objs);
                w.violate(Rule::K1, format!("NdisFreeMdl({:#x}): not a live MDL (double free?)", Mdl as usize));
            }
        }
    }
}

// ---- control devices and IRPs ----------------------------------------------------------------

export! {
    fn NdisRegisterDeviceEx(
        NdisObjectHandle: NDIS_HANDLE,
        DeviceObjectAttributes: *mut NDIS_DEVICE_OBJECT_ATTRIBUTES,
        pDeviceObject: *mut *mut DEVICE_OBJECT,
        NdisDeviceHandle: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS {
        io::register_device(&world(), NdisObjectHandle, DeviceObjectAttributes, pDeviceObject, NdisDeviceHandle)
    }
}

export! { fn NdisDeregisterDeviceEx(NdisDeviceHandle: NDIS_HANDLE) { io::deregister_device(&world(), NdisDeviceHandle) } }

export! {
    fn NdisGetDeviceReservedExtension(DeviceObject: *mut DEVICE_OBJECT) -> PVOID {
        io::reserved_extension(&world(), DeviceObject)
    }
}

export! { fn IofCompleteRequest(Irp: *mut IRP, PriorityBoost: i8) { let _ = PriorityBoost; io::complete(&world(), Irp) } }
export! { fn IoAcquireCancelSpinLock(Irql: *mut KIRQL) { io::acquire_cancel_lock(&world(), Irql) } }
export! { fn IoReleaseCancelSpinLock(Irql: KIRQL) { io::release_cancel_lock(&world(), Irql) } }

// ---- timers and time ---------------------------------------------------------------------------

export! {
    fn NdisAllocateTimerObject(
        NdisHandle: NDIS_HANDLE,
        TimerCharacteristics: *mut NDIS_TIMER_CHARACTERISTICS,
        pTimerObject: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS {
        timer::allocate(&world(), NdisHandle, TimerCharacteristics, pTimerObject)
    }
}

export! {
    fn NdisSetTimerObject(TimerObject: NDIS_HANDLE, DueTime: i64, MillisecondsPeriod: u32, FunctionContext: PVOID) -> BOOLEAN {
        timer::set(&world(), TimerObject, DueTime, MillisecondsPeriod, FunctionContext)
    }
}

export! { fn NdisCancelTimerObject(TimerObject: NDIS_HANDLE) -> BOOLEAN { timer::cancel(&world(), TimerObject) } }
export! { fn NdisFreeTimerObject(TimerObject: NDIS_HANDLE) { timer::free(&world(), TimerObject) } }

export! {
    fn KeQuerySystemTimePrecise(CurrentTime: *mut i64) {
        let t = timer::system_time(&world());
        if !CurrentTime.is_null() {
            // SAFETY: the driver's out parameter.
            unsafe { *CurrentTime = t };
        }
    }
}

export! {
    fn KeQueryInterruptTimePrecise(QpcTimeStamp: *mut u64) -> u64 {
        let t = timer::now(&world());
        if !QpcTimeStamp.is_null() {
            // SAFETY: the driver's out parameter.
            unsafe { *QpcTimeStamp = t };
        }
        t
    }
}

export! {
    fn KeFlushQueuedDpcs() {
        // Timer callbacks run inside the simulator's pump, never concurrently with a caller
        // of this function: nothing is queued to wait for.
        world().require_passive("KeFlushQueuedDpcs");
    }
}

export! {
    fn MmMapLockedPagesSpecifyCache(
        MemoryDescriptorList: *mut MDL,
        AccessMode: i8,
        CacheType: i32,
        RequestedAddress: PVOID,
        BugCheckOnFailure: u32,
        Priority: u32,
    ) -> PVOID {
        let _ = (CacheType, RequestedAddress);
        timer::map_mdl(&world(), MemoryDescriptorList, AccessMode, BugCheckOnFailure != 0, Priority)
    }
}

// ---- debugging ---------------------------------------------------------------------------------

/// `DbgPrintEx(ComponentId, Level, Format, ...)`: rxinject passes `"%s"` and one string,
/// a WDK-built driver any format. This shim stores the fourth register argument in its home
/// slot, where the stack arguments follow it, and passes that address (the Windows x64
/// `va_list` of the variadic arguments) to [`dbg_vprint_ex`].
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "win64" fn DbgPrintEx(
    ComponentId: u32,
    Level: u32,
    Format: *const u8,
    Text: *const u8,
) -> NTSTATUS {
    std::arch::naked_asm!(
        "mov [rsp + 32], r9",
        // 40 bytes: the callee's home area and the alignment to 16.
        "sub rsp, 40",
        "lea r9, [rsp + 72]",
        "call {f}",
        "add rsp, 40",
        "ret",
        f = sym dbg_vprint_ex,
    )
}
const _: ndis_sys::signatures::DbgPrintEx = DbgPrintEx;

unsafe extern "win64" fn dbg_vprint_ex(
    component: u32,
    level: u32,
    format: *const u8,
    args: *const u64,
) -> NTSTATUS {
    let _ = component;
    let w = world();
    if !format.is_null() {
        // SAFETY: the driver passes a NUL-terminated format.
        let fmt = unsafe { CStr::from_ptr(format.cast()) }.to_bytes();
        // SAFETY: the arguments follow the format (see `kernel::format_va`).
        let msg = unsafe { crate::kernel::format_va(fmt, args) };
        crate::kernel::debug_print(&w, Some(level), &msg);
    }
    STATUS_SUCCESS
}

/// `KeBugCheckEx`: the machine stops. Prints the code, the parameters and the violations
/// recorded so far, then aborts the process (a bug check cannot return).
#[unsafe(no_mangle)]
pub unsafe extern "win64" fn KeBugCheckEx(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> ! {
    let name: String = code
        .to_be_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
        .collect();
    eprintln!(
        "*** BUG CHECK {code:#010X} ({name}) ({p1:#x}, {p2:#x}, {p3:#x}, {p4:#x}) in {}",
        tls::context_name()
    );
    if code == u32::from_be_bytes(*b"RXPN") && p1 != 0 && p2 < 4096 {
        // SAFETY: rxinject's panic bug check passes the file name as (pointer, length).
        let file = unsafe { std::slice::from_raw_parts(p1 as *const u8, p2) };
        eprintln!("    panic at {}:{p3}", String::from_utf8_lossy(file));
    }
    eprintln!("    thread: {:?}", std::thread::current().name());
    std::process::abort()
}
const _: ndis_sys::KeBugCheckExFn = KeBugCheckEx;
