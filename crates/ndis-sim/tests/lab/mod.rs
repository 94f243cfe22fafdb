//! The lab filter: a small, test-only NDIS filter that passes traffic through and can inject
//! its own NBLs, with switchable faults. With `Fault::None` it is correct (the simulator must
//! stay silent); each fault breaks one rule on purpose (the simulator must name it).
//!
//! It is written against the same `ndis-sys` declarations as rxinject, so it links to the
//! simulator exactly as the real driver does.

#![allow(
    dead_code,
    clippy::missing_safety_doc,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

pub mod device;

use std::collections::HashMap;
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use ndis_sim::{Sim, SimConfig, TestFrames};
use ndis_sys::*;

/// One deliberate mistake (or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Fault {
    None = 0,
    // Receive path
    DoubleReturn,
    ReturnOwnViaNdis,
    ClassifyByFirst,
    QueueReceivesPastPause,
    ReturnResourcesNbls,
    BreakResourcesChain,
    ForwardResourcesWithoutFlag,
    WrongIndicateCount,
    IndicateWhilePaused,
    InjectDuringRestart,
    /// Indicates own frames up from FilterPause (the module is Pausing).
    InjectRxWhilePausing,
    /// Sends own frames down from FilterPause.
    InjectTxWhilePausing,
    OwnWithoutSourceHandle,
    NoReturnHandler,
    // Send path
    CompleteTwice,
    CompleteOwnUp,
    NoStatusOnRefuse,
    WrongDispatchFlag,
    SendFlagsAsCompleteFlags,
    SendWhilePaused,
    DropSendsWhilePaused,
    DropLoopbackFlag,
    OverwriteLowerStatus,
    ModifyForeignNb,
    NoSendCompleteHandler,
    // Life cycle
    SkipSetAttributes,
    PauseCompleteTwice,
    NeverCompletePause,
    /// FilterRestart passes up a smaller MTU (allowed: the drivers above see it).
    ShrinkRestartMtu,
    /// FilterRestart unlinks the general restart attributes (ST12).
    DropGeneralRestartAttributes,
    LeakPoolAtDetach,
    IndicateDuringAttach,
    NoDeregister,
    // NBL structure
    BadPoolParams,
    FreeForeignNbl,
    FreePoolWithNbls,
    NoMdlWithLength,
    SplitMacHeader,
    OffloadInfoOnInjected,
    FreeOwnWhileUp,
    /// Writes `NetBufferListInfo[26]` of a receive: past the 26 slots of NDIS 6.50.
    WriteInfoSlotBeyondVersion,
    // IRQL and locks
    HoldLockAcrossSend,
    ReturnHoldingLock,
    DprAcquireAtPassive,
    UseUnallocatedLock,
    ReleaseNotHeld,
    NoFreeSpinLock,
    // OIDs
    ForwardOriginal,
    CompleteOidTwice,
    NoCountCopy,
    CompleteBeforeFreeClone,
    // Memory
    DoubleFreeContext,
    LeakAtUnload,
    /// A timer object allocated and never freed.
    LeakTimerAtUnload,
    // Control device and IRPs
    WriteDeviceExtension,
    NoDeregisterDevice,
    CompleteWriteTwice,
    PendWithoutMark,
    ReturnStatusMismatch,
    CompleteWithCancelRoutine,
    CleanupLeavesReads,
    OverlongIoctlInformation,
    AcceptMethodNeither,
    NoBufferedIo,
    WriteInformationTooLarge,
    OpenSddl,
    AcceptNamedOpen,
    /// Not a mistake: the device uses DO_DIRECT_IO, reading writes and filling reads through
    /// `Irp->MdlAddress` mapped with `MmMapLockedPagesSpecifyCache` (and checking it).
    DirectIo,
    /// Direct I/O, with the buffers mapped by `MmMapLockedPagesSpecifyCache` with
    /// BugCheckOnFailure TRUE.
    MapBugCheckOnFailure,
    // The seed's mistakes (../shared/seed/README.md)
    /// The write completes only in send-complete, which never comes for an Rx indication.
    SeedWaitForSendComplete,
    /// The return handler frees own NBLs and returns foreign ones one by one, then returns the
    /// whole original chain again.
    SeedReturnChainTwice,
}

static FAULT: AtomicU32 = AtomicU32::new(0);

fn fault() -> Fault {
    // SAFETY: FAULT only ever holds values written from a `Fault`.
    unsafe { std::mem::transmute::<u32, Fault>(FAULT.load(Ordering::Relaxed)) }
}

fn is(f: Fault) -> bool {
    fault() == f
}

const TAG: u32 = u32::from_le_bytes(*b"Lab ");

/// The lab filter's module context.
struct Lab {
    handle: NDIS_HANDLE,
    pool: NDIS_HANDLE,
    running: AtomicBool,
    pausing: AtomicBool,
    own_outstanding: AtomicUsize,
    queued: Mutex<Vec<usize>>,
    /// Own NBL -> (data buffer, MDL).
    buffers: Mutex<HashMap<usize, (usize, usize)>>,
    /// Own NBL -> (write IRP, Rx) for frames injected by a write.
    irps: Mutex<HashMap<usize, (usize, bool)>>,
    lock: std::cell::UnsafeCell<NDIS_SPIN_LOCK>,
    spare: AtomicPtr<NET_BUFFER_LIST>,
}

// SAFETY: test code; the spin lock is only touched through NDIS.
unsafe impl Sync for Lab {}

static MODULE: AtomicPtr<Lab> = AtomicPtr::new(ptr::null_mut());
static DRIVER_HANDLE: AtomicPtr<std::ffi::c_void> = AtomicPtr::new(ptr::null_mut());
static LEAKED: AtomicPtr<std::ffi::c_void> = AtomicPtr::new(ptr::null_mut());

fn lab<'a>(ctx: NDIS_HANDLE) -> &'a Lab {
    unsafe { &*(ctx as *const Lab) }
}

fn module<'a>() -> &'a Lab {
    let p = MODULE.load(Ordering::Acquire);
    assert!(!p.is_null(), "the lab filter is not attached");
    unsafe { &*p }
}

fn complete_pause_if_drained(m: &Lab) {
    if m.pausing.load(Ordering::Acquire)
        && m.own_outstanding.load(Ordering::Acquire) == 0
        && m.pausing.swap(false, Ordering::AcqRel)
    {
        unsafe { NdisFPauseComplete(m.handle) };
        if is(Fault::PauseCompleteTwice) {
            unsafe { NdisFPauseComplete(m.handle) };
        }
    }
}

/// Frees an own NBL and its data; returns the write it belonged to, if any.
unsafe fn free_own(m: &Lab, nbl: *mut NET_BUFFER_LIST) -> Option<(usize, bool)> {
    let irp = m.irps.lock().unwrap().remove(&(nbl as usize));
    let bufs = m.buffers.lock().unwrap().remove(&(nbl as usize));
    unsafe { NdisFreeNetBufferList(nbl) };
    if let Some((buf, mdl)) = bufs {
        unsafe {
            NdisFreeMdl(mdl as *mut MDL);
            NdisFreeMemory(buf as PVOID, 0, 0);
        }
    }
    m.own_outstanding.fetch_sub(1, Ordering::AcqRel);
    irp
}

/// Splits a chain by SourceHandle (correctly) into (own, foreign) vectors.
unsafe fn split(
    m: &Lab,
    mut n: *mut NET_BUFFER_LIST,
) -> (Vec<*mut NET_BUFFER_LIST>, Vec<*mut NET_BUFFER_LIST>) {
    let (mut own, mut foreign) = (Vec::new(), Vec::new());
    while !n.is_null() {
        let next = unsafe { (*n).Next };
        unsafe { (*n).Next = ptr::null_mut() };
        if unsafe { (*n).SourceHandle } == m.handle {
            own.push(n)
        } else {
            foreign.push(n)
        }
        n = next;
    }
    (own, foreign)
}

fn relink(v: &[*mut NET_BUFFER_LIST]) -> *mut NET_BUFFER_LIST {
    for w in v.windows(2) {
        unsafe { (*w[0]).Next = w[1] };
    }
    if let Some(l) = v.last() {
        unsafe { (**l).Next = ptr::null_mut() };
    }
    v.first().copied().unwrap_or(ptr::null_mut())
}

// ---- callbacks ------------------------------------------------------------------------------

unsafe extern "win64" fn attach(
    h: NDIS_HANDLE,
    _ctx: NDIS_HANDLE,
    _p: *mut NDIS_FILTER_ATTACH_PARAMETERS,
) -> NDIS_STATUS {
    let mut params = NET_BUFFER_LIST_POOL_PARAMETERS {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_DEFAULT,
            NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
            NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
        ),
        ProtocolId: 0,
        fAllocateNetBuffer: TRUE,
        ContextSize: 0,
        PoolTag: TAG,
        DataSize: 0,
    };
    if is(Fault::BadPoolParams) {
        params.DataSize = 128;
        params.fAllocateNetBuffer = FALSE;
    }
    let pool = unsafe { NdisAllocateNetBufferListPool(h, &mut params) };
    let mem = unsafe {
        NdisAllocateMemoryWithTagPriority(h, std::mem::size_of::<Lab>() as u32, TAG, NormalPoolPriority)
    };
    if mem.is_null() {
        return NDIS_STATUS_RESOURCES;
    }
    let m = mem.cast::<Lab>();
    unsafe {
        m.write(Lab {
            handle: h,
            pool,
            running: AtomicBool::new(false),
            pausing: AtomicBool::new(false),
            own_outstanding: AtomicUsize::new(0),
            queued: Mutex::new(Vec::new()),
            buffers: Mutex::new(HashMap::new()),
            irps: Mutex::new(HashMap::new()),
            lock: std::cell::UnsafeCell::new(NDIS_SPIN_LOCK::ZERO),
            spare: AtomicPtr::new(ptr::null_mut()),
        });
    }
    if !is(Fault::UseUnallocatedLock) {
        unsafe { NdisAllocateSpinLock((*m).lock.get()) };
    }
    if is(Fault::FreePoolWithNbls) && !pool.is_null() {
        let spare = unsafe { NdisAllocateNetBufferAndNetBufferList(pool, 0, 0, ptr::null_mut(), 0, 0) };
        unsafe { (*m).spare.store(spare, Ordering::Relaxed) };
    }
    if is(Fault::IndicateDuringAttach) {
        unsafe { inject(&*m, 1, true) };
    }
    if !is(Fault::SkipSetAttributes) {
        let mut attrs = NDIS_FILTER_ATTRIBUTES {
            Header: NDIS_OBJECT_HEADER::new(
                NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES,
                NDIS_FILTER_ATTRIBUTES_REVISION_1,
                NDIS_SIZEOF_FILTER_ATTRIBUTES_REVISION_1,
            ),
            Flags: 0,
        };
        let st = unsafe { NdisFSetAttributes(h, m.cast(), &mut attrs) };
        if st != NDIS_STATUS_SUCCESS {
            return st;
        }
    }
    MODULE.store(m, Ordering::Release);
    NDIS_STATUS_SUCCESS
}

unsafe extern "win64" fn detach(ctx: NDIS_HANDLE) {
    let m = lab(ctx);
    MODULE.store(ptr::null_mut(), Ordering::Release);
    if !is(Fault::LeakPoolAtDetach) && !m.pool.is_null() {
        unsafe { NdisFreeNetBufferListPool(m.pool) };
    }
    if !is(Fault::NoFreeSpinLock) && !is(Fault::UseUnallocatedLock) {
        unsafe { NdisFreeSpinLock(m.lock.get()) };
    }
    unsafe { ptr::drop_in_place(ctx as *mut Lab) };
    unsafe { NdisFreeMemory(ctx, 0, 0) };
    if is(Fault::DoubleFreeContext) {
        unsafe { NdisFreeMemory(ctx, 0, 0) };
    }
}

unsafe extern "win64" fn restart(ctx: NDIS_HANDLE, p: *mut NDIS_FILTER_RESTART_PARAMETERS) -> NDIS_STATUS {
    let m = lab(ctx);
    if is(Fault::ShrinkRestartMtu) {
        unsafe {
            let attr = (*p).RestartAttributes;
            let g = attr
                .cast::<u8>()
                .add(std::mem::offset_of!(NDIS_RESTART_ATTRIBUTES, Data))
                .cast::<NDIS_RESTART_GENERAL_ATTRIBUTES>();
            (*g).MtuSize = 1400;
        }
    }
    if is(Fault::DropGeneralRestartAttributes) {
        unsafe { (*(*p).RestartAttributes).Oid = 0 };
    }
    if is(Fault::DprAcquireAtPassive) {
        unsafe {
            NdisDprAcquireSpinLock(m.lock.get());
            NdisDprReleaseSpinLock(m.lock.get());
        }
    }
    if is(Fault::UseUnallocatedLock) {
        unsafe {
            NdisAcquireSpinLock(m.lock.get());
            NdisReleaseSpinLock(m.lock.get());
        }
    }
    if is(Fault::ReleaseNotHeld) {
        unsafe { NdisReleaseSpinLock(m.lock.get()) };
    }
    if is(Fault::InjectDuringRestart) {
        unsafe { inject(m, 1, true) };
    }
    m.running.store(true, Ordering::Release);
    NDIS_STATUS_SUCCESS
}

unsafe extern "win64" fn pause(ctx: NDIS_HANDLE, _p: *mut NDIS_FILTER_PAUSE_PARAMETERS) -> NDIS_STATUS {
    let m = lab(ctx);
    m.running.store(false, Ordering::Release);
    if is(Fault::InjectRxWhilePausing) || is(Fault::InjectTxWhilePausing) {
        unsafe { inject(m, 1, is(Fault::InjectRxWhilePausing)) };
    }
    if is(Fault::NeverCompletePause) {
        return NDIS_STATUS_PENDING;
    }
    if m.own_outstanding.load(Ordering::Acquire) == 0 && !is(Fault::PauseCompleteTwice) {
        return NDIS_STATUS_SUCCESS;
    }
    m.pausing.store(true, Ordering::Release);
    complete_pause_if_drained(m);
    NDIS_STATUS_PENDING
}

unsafe extern "win64" fn send(
    ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    port: NDIS_PORT_NUMBER,
    flags: u32,
) {
    let m = lab(ctx);
    if m.running.load(Ordering::Acquire) || is(Fault::SendWhilePaused) {
        let mut flags = flags;
        if is(Fault::DropLoopbackFlag) {
            flags &= !NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK;
        }
        if is(Fault::ModifyForeignNb) {
            unsafe { (*(*nbls).FirstNetBuffer).DataOffset += 1 };
        }
        if is(Fault::HoldLockAcrossSend) {
            unsafe { NdisAcquireSpinLock(m.lock.get()) };
            unsafe { NdisFSendNetBufferLists(m.handle, nbls, port, flags) };
            unsafe { NdisReleaseSpinLock(m.lock.get()) };
            return;
        }
        unsafe { NdisFSendNetBufferLists(m.handle, nbls, port, flags) };
        return;
    }
    if is(Fault::DropSendsWhilePaused) {
        return;
    }
    let mut n = nbls;
    while !n.is_null() {
        if !is(Fault::NoStatusOnRefuse) {
            unsafe { (*n).Status = NDIS_STATUS_PAUSED };
        }
        n = unsafe { (*n).Next };
    }
    let mut cflags = if flags & NDIS_SEND_FLAGS_DISPATCH_LEVEL != 0 {
        NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL
    } else {
        0
    };
    if is(Fault::WrongDispatchFlag) {
        cflags ^= NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL;
    }
    if is(Fault::SendFlagsAsCompleteFlags) {
        cflags = flags;
    }
    unsafe { NdisFSendNetBufferListsComplete(m.handle, nbls, cflags) };
}

unsafe extern "win64" fn send_complete(ctx: NDIS_HANDLE, nbls: *mut NET_BUFFER_LIST, flags: u32) {
    let m = lab(ctx);
    let (own, foreign) = unsafe { split(m, nbls) };
    if is(Fault::CompleteOwnUp) && !own.is_empty() {
        unsafe { NdisFSendNetBufferListsComplete(m.handle, relink(&own), flags) };
    } else {
        for n in &own {
            if let Some((irp, rx)) = unsafe { free_own(m, *n) } {
                unsafe { device::frame_back(irp, rx, true) };
            }
        }
    }
    if !foreign.is_empty() {
        if is(Fault::ModifyForeignNb) {
            // Forgets to undo the change made when sending.
        }
        if is(Fault::OverwriteLowerStatus) {
            for n in &foreign {
                unsafe { (**n).Status = NDIS_STATUS_PAUSED };
            }
        }
        unsafe { NdisFSendNetBufferListsComplete(m.handle, relink(&foreign), flags) };
        if is(Fault::CompleteTwice) {
            unsafe { NdisFSendNetBufferListsComplete(m.handle, relink(&foreign[..1]), flags) };
        }
    }
    complete_pause_if_drained(m);
}

unsafe extern "win64" fn receive(
    ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    port: NDIS_PORT_NUMBER,
    count: u32,
    flags: u32,
) {
    let m = lab(ctx);
    let resources = flags & NDIS_RECEIVE_FLAGS_RESOURCES != 0;
    let rflags = if flags & NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL != 0 {
        NDIS_RETURN_FLAGS_DISPATCH_LEVEL
    } else {
        0
    };
    if is(Fault::ReturnHoldingLock) {
        unsafe { NdisAcquireSpinLock(m.lock.get()) };
    }
    if is(Fault::WriteInfoSlotBeyondVersion) {
        // The slot after the last one ndis.h declares for NDIS 6.50 (an NBL NDIS allocated
        // is longer, so this lands in NDIS's memory, not past the allocation).
        let slots = unsafe { ptr::addr_of_mut!((*nbls).NetBufferListInfo) }.cast::<PVOID>();
        unsafe { slots.add(MaxNetBufferListInfo).write(1 as PVOID) };
    }
    if is(Fault::QueueReceivesPastPause) && !resources {
        let mut n = nbls;
        let mut q = m.queued.lock().unwrap();
        while !n.is_null() {
            q.push(n as usize);
            n = unsafe { (*n).Next };
        }
        return;
    }
    if is(Fault::ReturnResourcesNbls) && resources {
        unsafe { NdisFReturnNetBufferLists(m.handle, nbls, rflags) };
        return;
    }
    if !m.running.load(Ordering::Acquire) && !is(Fault::IndicateWhilePaused) {
        if !resources {
            unsafe { NdisFReturnNetBufferLists(m.handle, nbls, rflags) };
        }
        return;
    }
    let mut up_flags = flags;
    if is(Fault::ForwardResourcesWithoutFlag) {
        up_flags &= !NDIS_RECEIVE_FLAGS_RESOURCES;
    }
    let n = if is(Fault::WrongIndicateCount) {
        count + 1
    } else {
        count
    };
    unsafe { NdisFIndicateReceiveNetBufferLists(m.handle, nbls, port, n, up_flags) };
    if is(Fault::BreakResourcesChain) && resources && !unsafe { (*nbls).Next }.is_null() {
        unsafe { (*nbls).Next = ptr::null_mut() };
    }
}

unsafe extern "win64" fn return_nbls(ctx: NDIS_HANDLE, nbls: *mut NET_BUFFER_LIST, flags: u32) {
    let m = lab(ctx);
    if is(Fault::ClassifyByFirst) {
        // The seed's mistake: decide for the whole chain from its first NBL.
        if unsafe { (*nbls).SourceHandle } == m.handle {
            let mut n = nbls;
            while !n.is_null() {
                let next = unsafe { (*n).Next };
                unsafe { NdisFreeNetBufferList(n) };
                n = next;
            }
        } else {
            unsafe { NdisFReturnNetBufferLists(m.handle, nbls, flags) };
        }
        return;
    }
    if is(Fault::SeedReturnChainTwice) {
        // The seed's return handler: one NBL at a time (own freed, foreign returned alone),
        // then the whole original chain returned again.
        let mut all = Vec::new();
        let mut n = nbls;
        while !n.is_null() {
            all.push(n);
            n = unsafe { (*n).Next };
        }
        for &n in &all {
            unsafe { (*n).Next = ptr::null_mut() };
            if unsafe { (*n).SourceHandle } == m.handle {
                if let Some((irp, rx)) = unsafe { free_own(m, n) } {
                    unsafe { device::frame_back(irp, rx, false) };
                }
            } else {
                unsafe { NdisFReturnNetBufferLists(m.handle, n, flags) };
            }
        }
        unsafe { NdisFReturnNetBufferLists(m.handle, relink(&all), flags) };
        complete_pause_if_drained(m);
        return;
    }
    let (own, foreign) = unsafe { split(m, nbls) };
    if is(Fault::ReturnOwnViaNdis) && !own.is_empty() {
        unsafe { NdisFReturnNetBufferLists(m.handle, relink(&own), flags) };
    } else {
        for n in &own {
            if let Some((irp, rx)) = unsafe { free_own(m, *n) } {
                unsafe { device::frame_back(irp, rx, false) };
            }
        }
    }
    if !foreign.is_empty() {
        if is(Fault::FreeForeignNbl) {
            unsafe { NdisFreeNetBufferList(foreign[0]) };
            if foreign.len() > 1 {
                unsafe { NdisFReturnNetBufferLists(m.handle, relink(&foreign[1..]), flags) };
            }
        } else {
            unsafe { NdisFReturnNetBufferLists(m.handle, relink(&foreign), flags) };
            if is(Fault::DoubleReturn) {
                unsafe { NdisFReturnNetBufferLists(m.handle, relink(&foreign[..1]), flags) };
            }
        }
    }
    complete_pause_if_drained(m);
}

unsafe extern "win64" fn oid_request(ctx: NDIS_HANDLE, req: *mut NDIS_OID_REQUEST) -> NDIS_STATUS {
    let m = lab(ctx);
    if is(Fault::ForwardOriginal) {
        return unsafe { NdisFOidRequest(m.handle, req) };
    }
    let mut clone = ptr::null_mut();
    let st = unsafe { NdisAllocateCloneOidRequest(m.handle, req, TAG, &mut clone) };
    if st != NDIS_STATUS_SUCCESS {
        return st;
    }
    unsafe { (*clone).SourceReserved[0] = req.cast() };
    let st = unsafe { NdisFOidRequest(m.handle, clone) };
    if st != NDIS_STATUS_PENDING {
        unsafe { oid_complete(ctx, clone, st) };
    }
    NDIS_STATUS_PENDING
}

/// The lab's own OID requests: (request address, completion status once completed).
static OWN_OIDS: std::sync::Mutex<Vec<(usize, Option<NDIS_STATUS>)>> = std::sync::Mutex::new(Vec::new());

/// The lab filter originates a query of `oid` (a request in its own memory, `RequestId`
/// `id`). Returns what `NdisFOidRequest` returned and the request (for [`own_oid_result`]).
#[allow(dead_code)]
pub fn originate_query(oid: NDIS_OID, len: u32, id: usize) -> (NDIS_STATUS, usize) {
    let m = module();
    let buf: &'static mut [u8] = Box::leak(vec![0u8; len as usize].into_boxed_slice());
    let req: &'static mut NDIS_OID_REQUEST = Box::leak(Box::new(unsafe { std::mem::zeroed() }));
    req.Header = NDIS_OBJECT_HEADER::new(
        NDIS_OBJECT_TYPE_OID_REQUEST,
        NDIS_OID_REQUEST_REVISION_1,
        NDIS_SIZEOF_OID_REQUEST_REVISION_1,
    );
    req.RequestType = NdisRequestQueryInformation;
    req.RequestId = id as PVOID;
    req.DATA.QUERY_INFORMATION.Oid = oid;
    req.DATA.QUERY_INFORMATION.InformationBuffer = buf.as_mut_ptr().cast();
    req.DATA.QUERY_INFORMATION.InformationBufferLength = len;
    let addr = req as *mut NDIS_OID_REQUEST as usize;
    OWN_OIDS.lock().unwrap().push((addr, None));
    let st = unsafe { NdisFOidRequest(m.handle, req) };
    if st != NDIS_STATUS_PENDING {
        OWN_OIDS.lock().unwrap().retain(|(a, _)| *a != addr);
    }
    (st, addr)
}

/// The completion status of an own request that pended, once FilterOidRequestComplete saw it.
#[allow(dead_code)]
pub fn own_oid_result(req: usize) -> Option<NDIS_STATUS> {
    OWN_OIDS
        .lock()
        .unwrap()
        .iter()
        .find(|(a, _)| *a == req)
        .and_then(|r| r.1)
}

/// The lab filter cancels its requests with `RequestId` `id`.
#[allow(dead_code)]
pub fn cancel_own(id: usize) {
    unsafe { NdisFCancelOidRequest(module().handle, id as PVOID) };
}

unsafe extern "win64" fn oid_complete(ctx: NDIS_HANDLE, clone: *mut NDIS_OID_REQUEST, status: NDIS_STATUS) {
    let m = lab(ctx);
    // One of its own: record the status, complete nothing.
    if let Some(r) = OWN_OIDS
        .lock()
        .unwrap()
        .iter_mut()
        .find(|(a, _)| *a == clone as usize)
    {
        r.1 = Some(status);
        return;
    }
    let orig = unsafe { (*clone).SourceReserved[0] }.cast::<NDIS_OID_REQUEST>();
    if !is(Fault::NoCountCopy) {
        unsafe {
            (*orig).DATA.QUERY_INFORMATION.BytesWritten = (*clone).DATA.QUERY_INFORMATION.BytesWritten;
            (*orig).DATA.QUERY_INFORMATION.BytesNeeded = (*clone).DATA.QUERY_INFORMATION.BytesNeeded;
        }
    }
    if is(Fault::CompleteBeforeFreeClone) {
        unsafe { NdisFOidRequestComplete(m.handle, orig, status) };
        unsafe { NdisFreeCloneOidRequest(m.handle, clone) };
        return;
    }
    unsafe { NdisFreeCloneOidRequest(m.handle, clone) };
    unsafe { NdisFOidRequestComplete(m.handle, orig, status) };
    if is(Fault::CompleteOidTwice) {
        unsafe { NdisFOidRequestComplete(m.handle, orig, status) };
    }
}

unsafe extern "win64" fn status(ctx: NDIS_HANDLE, ind: *mut NDIS_STATUS_INDICATION) {
    unsafe { NdisFIndicateStatus(lab(ctx).handle, ind) };
}

unsafe extern "win64" fn net_pnp(ctx: NDIS_HANDLE, ev: *mut NET_PNP_EVENT_NOTIFICATION) -> NDIS_STATUS {
    unsafe { NdisFNetPnPEvent(lab(ctx).handle, ev) }
}

unsafe extern "win64" fn unload(_d: *mut DRIVER_OBJECT) {
    device::deregister();
    if !is(Fault::NoDeregister) {
        unsafe { NdisFDeregisterFilterDriver(DRIVER_HANDLE.load(Ordering::Acquire)) };
    }
}

/// The lab filter's `DriverEntry`.
pub unsafe extern "win64" fn driver_entry(d: *mut DRIVER_OBJECT, _path: *mut UNICODE_STRING) -> NTSTATUS {
    static FRIENDLY: [u16; 3] = [b'L' as u16, b'a' as u16, b'b' as u16];
    let s = ndis_sys::wstr::unicode_string(&FRIENDLY);
    let mut chars = NDIS_FILTER_DRIVER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS,
            NDIS_FILTER_CHARACTERISTICS_REVISION_2,
            NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2,
        ),
        MajorNdisVersion: 6,
        MinorNdisVersion: 50,
        MajorDriverVersion: 1,
        MinorDriverVersion: 0,
        Flags: 0,
        FriendlyName: s,
        UniqueName: s,
        ServiceName: s,
        SetOptionsHandler: None,
        SetFilterModuleOptionsHandler: None,
        AttachHandler: Some(attach),
        DetachHandler: Some(detach),
        RestartHandler: Some(restart),
        PauseHandler: Some(pause),
        SendNetBufferListsHandler: Some(send),
        SendNetBufferListsCompleteHandler: Some(send_complete),
        CancelSendNetBufferListsHandler: None,
        ReceiveNetBufferListsHandler: Some(receive),
        ReturnNetBufferListsHandler: Some(return_nbls),
        OidRequestHandler: Some(oid_request),
        OidRequestCompleteHandler: Some(oid_complete),
        CancelOidRequestHandler: None,
        DevicePnPEventNotifyHandler: None,
        NetPnPEventHandler: Some(net_pnp),
        StatusHandler: Some(status),
        DirectOidRequestHandler: None,
        DirectOidRequestCompleteHandler: None,
        CancelDirectOidRequestHandler: None,
    };
    if is(Fault::NoReturnHandler) {
        chars.ReturnNetBufferListsHandler = None;
    }
    if is(Fault::NoSendCompleteHandler) {
        chars.SendNetBufferListsCompleteHandler = None;
    }
    unsafe { (*d).DriverUnload = Some(unload) };
    let mut h = ptr::null_mut();
    let st = unsafe { NdisFRegisterFilterDriver(d, d.cast(), &chars, &mut h) };
    DRIVER_HANDLE.store(h, Ordering::Release);
    if st == NDIS_STATUS_SUCCESS {
        device::register();
    }
    if is(Fault::LeakTimerAtUnload) {
        unsafe extern "win64" fn tick(_a: PVOID, _b: PVOID, _c: PVOID, _d: PVOID) {}
        let mut chars = NDIS_TIMER_CHARACTERISTICS {
            Header: NDIS_OBJECT_HEADER::new(
                NDIS_OBJECT_TYPE_TIMER_CHARACTERISTICS,
                NDIS_TIMER_CHARACTERISTICS_REVISION_1,
                NDIS_SIZEOF_TIMER_CHARACTERISTICS_REVISION_1,
            ),
            AllocationTag: TAG,
            TimerFunction: Some(tick),
            FunctionContext: ptr::null_mut(),
        };
        let mut timer = ptr::null_mut();
        unsafe { NdisAllocateTimerObject(h, &mut chars, &mut timer) };
        unsafe { NdisSetTimerObject(timer, -10_000, 0, ptr::null_mut()) };
    }
    if is(Fault::LeakAtUnload) {
        let p = unsafe { NdisAllocateMemoryWithTagPriority(h, 64, TAG, NormalPoolPriority) };
        LEAKED.store(p, Ordering::Relaxed);
    }
    st.into()
}

// ---- injection (test thread, PASSIVE_LEVEL) ------------------------------------------------

/// Builds one own NBL holding `frame`.
unsafe fn own_nbl(m: &Lab, frame: &[u8]) -> *mut NET_BUFFER_LIST {
    let len = frame.len() as u32;
    let buf = unsafe { NdisAllocateMemoryWithTagPriority(m.handle, len, TAG, NormalPoolPriority) };
    unsafe { ptr::copy_nonoverlapping(frame.as_ptr(), buf.cast::<u8>(), frame.len()) };
    let (mdl, head_mdl) = if is(Fault::SplitMacHeader) {
        let first = unsafe { NdisAllocateMdl(m.handle, buf, 6) };
        let rest = unsafe { NdisAllocateMdl(m.handle, buf.cast::<u8>().add(6).cast(), len - 6) };
        unsafe { (*first).Next = rest };
        (rest, first)
    } else {
        let md = unsafe { NdisAllocateMdl(m.handle, buf, len) };
        (md, md)
    };
    let nbl = if is(Fault::NoMdlWithLength) {
        unsafe { NdisAllocateNetBufferAndNetBufferList(m.pool, 0, 0, ptr::null_mut(), 0, len as usize) }
    } else {
        unsafe { NdisAllocateNetBufferAndNetBufferList(m.pool, 0, 0, head_mdl, 0, len as usize) }
    };
    if nbl.is_null() {
        return nbl;
    }
    if !is(Fault::OwnWithoutSourceHandle) {
        unsafe { (*nbl).SourceHandle = m.handle };
    }
    if is(Fault::OffloadInfoOnInjected) {
        unsafe { (*nbl).NetBufferListInfo[TcpIpChecksumNetBufferListInfo] = 1 as PVOID };
    }
    let _ = mdl;
    m.buffers
        .lock()
        .unwrap()
        .insert(nbl as usize, (buf as usize, head_mdl as usize));
    m.own_outstanding.fetch_add(1, Ordering::AcqRel);
    nbl
}

unsafe fn inject(m: &Lab, n: usize, up: bool) {
    let mut frames = TestFrames::new([2, 0, 0, 0, 0xAA, 1], [2, 0x52, 0x58, 0, 0, 1]);
    let nbls: Vec<_> = (0..n)
        .map(|_| unsafe { own_nbl(m, &frames.next_frame()) })
        .filter(|p| !p.is_null())
        .collect();
    if nbls.is_empty() {
        return;
    }
    let head = relink(&nbls);
    if up {
        unsafe { NdisFIndicateReceiveNetBufferLists(m.handle, head, 0, nbls.len() as u32, 0) };
        if is(Fault::FreeOwnWhileUp) {
            unsafe { NdisFreeNetBufferList(nbls[0]) };
        }
    } else {
        unsafe { NdisFSendNetBufferLists(m.handle, head, 0, 0) };
    }
}

/// Injects one frame for write `irp` (the IRP completes when the NBL comes back).
unsafe fn inject_frame(m: &Lab, frame: &[u8], rx: bool, irp: *mut IRP) {
    let nbl = unsafe { own_nbl(m, frame) };
    if nbl.is_null() {
        unsafe { device::frame_back(irp as usize, rx, true) };
        return;
    }
    m.irps.lock().unwrap().insert(nbl as usize, (irp as usize, rx));
    if rx {
        unsafe { NdisFIndicateReceiveNetBufferLists(m.handle, nbl, 0, 1, 0) };
    } else {
        unsafe { NdisFSendNetBufferLists(m.handle, nbl, 0, 0) };
    }
}

/// Indicates `n` own frames up the Rx path.
pub fn inject_rx(n: usize) {
    unsafe { inject(module(), n, true) }
}

/// Sends `n` own frames down the Tx path.
pub fn inject_tx(n: usize) {
    unsafe { inject(module(), n, false) }
}

/// Gives back NBLs queued by `QueueReceivesPastPause` (so the run can end).
pub fn flush_queued() {
    let Some(m) = (unsafe { MODULE.load(Ordering::Acquire).as_ref() }) else {
        return;
    };
    let q: Vec<usize> = std::mem::take(&mut *m.queued.lock().unwrap());
    for n in q {
        unsafe { (*(n as *mut NET_BUFFER_LIST)).Next = ptr::null_mut() };
        unsafe { NdisFReturnNetBufferLists(m.handle, n as *mut NET_BUFFER_LIST, 0) };
    }
}

// ---- scenario ---------------------------------------------------------------------------------

/// A simulator with the lab filter loaded and `f` switched on.
pub fn start(f: Fault, cfg: SimConfig) -> Sim {
    // The simulation lock serialises runs: set the (global) fault only once we hold it.
    let mut sim = Sim::new(cfg);
    FAULT.store(f as u32, Ordering::Relaxed);
    MODULE.store(ptr::null_mut(), Ordering::Release);
    device::reset_counts();
    let st = sim.load(driver_entry);
    assert!(st.is_success(), "lab DriverEntry failed: {st:?}");
    sim
}

/// Everything a filter meets: receives with and without RESOURCES, own indications, sends
/// with CHECK_FOR_LOOPBACK, own sends, OIDs, status, PnP, a pause with traffic arriving while
/// paused, and a restart.
pub fn exercise(sim: &Sim) {
    let a = sim.adapter(0);
    let mut f = TestFrames::new([2, 0, 0, 0, 0, 9], a.config().mac);
    a.indicate(&f.take(4));
    a.indicate_resources(&f.take(3));
    inject_rx(2);
    a.send_with_flags(&f.take(4), NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK);
    inject_tx(2);
    a.query_oid(OID_802_3_CURRENT_ADDRESS, 6);
    a.set_oid(OID_GEN_CURRENT_PACKET_FILTER, &1u32.to_le_bytes());
    a.indicate_status(NDIS_STATUS_LINK_STATE, &[0; 8]);
    a.net_pnp_event();
    sim.run_until_idle();
    sim.pause(0);
    a.indicate(&f.take(2));
    a.indicate_resources(&f.take(2));
    a.send(&f.take(2));
    sim.run_until_idle();
    sim.restart(0);
    a.indicate(&f.take(2));
    sim.run_until_idle();
    // The filter alone paused (as NdisFRestartFilter does): the protocol above still sends.
    sim.pause_module(0);
    a.send_with_flags(
        &f.take(2),
        NDIS_SEND_FLAGS_SINGLE_QUEUE | NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK,
    );
    a.indicate(&f.take(2));
    sim.run_until_idle();
    sim.restart(0);
    a.indicate(&f.take(2));
    sim.run_until_idle();
}

/// Everything a client does with the lab device: named open (refused), writes in both
/// directions (completing when their frames come back), an echo IOCTL, reads completed by the
/// driver, a read cancelled, and a read left for cleanup.
pub fn exercise_device(sim: &Sim) {
    let _ = sim.open(&format!("{}\\named", device::USER_PATH));
    let h = sim.open(device::USER_PATH).expect("open the lab device");
    let mut f = TestFrames::new([2, 0, 0, 0, 0, 7], sim.adapter(0).config().mac);
    for dir in [0u8, 1, 1, 0] {
        let mut buf = vec![dir];
        buf.extend(f.next_frame());
        let r = h.write(&buf);
        assert!(r.status.is_success() || r.status == STATUS_UNSUCCESSFUL, "{r:?}");
    }
    let r = h.device_io_control(device::IOCTL_LAB_ECHO, b"ping", 16);
    assert!(r.status.is_success(), "{r:?}");
    let _ = h.device_io_control(device::IOCTL_LAB_ECHO | 3, b"ping", 16);
    let read = h.start_read(64);
    device::complete_reads();
    let _ = h.poll(read);
    let cancelled = h.start_read(64);
    h.cancel(cancelled);
    let _ = h.poll(cancelled);
    let _left = h.start_read(64);
    h.close();
}

/// The config of the fault scenarios (a hang is found when nothing is left in the machine
/// that could end it, with no wall-clock timeout to shorten).
pub fn quick() -> SimConfig {
    SimConfig::default()
}
