//! Filter modules: attach, detach, restart and pause (the `FilterXxx` control callbacks), the
//! per-module context, and the global list of attached modules.

use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use ndis_sys::*;
use rxinject_abi::tags::TAG_FILTER_MODULE;

use crate::driver::{GLOBALS, Handle};
use crate::inject::{self, SlotPool};
use crate::list::{Linked, List};
use crate::lock::SpinLock;
use crate::mem::{ndis_delete, ndis_new};
use crate::pool;
use crate::rundown::Rundown;
use crate::state::{FilterState, StateCell};
use crate::trace::trace;

/// A UTF-16 name copied out of a `NDIS_STRING` NDIS lent us, truncated to `N` units.
pub struct WideName<const N: usize> {
    units: [u16; N],
    len: usize,
}

impl<const N: usize> WideName<N> {
    const EMPTY: Self = WideName {
        units: [0; N],
        len: 0,
    };

    /// Copies `s` (which may be null or malformed: then the name is empty).
    ///
    /// # Safety
    /// If non-null, `s` points to a `UNICODE_STRING` whose buffer holds `Length` bytes.
    unsafe fn copy_from(s: *const NDIS_STRING) -> Self {
        let mut name = Self::EMPTY;
        if s.is_null() {
            return name;
        }
        // SAFETY: non-null and valid per the caller.
        let s = unsafe { &*s };
        if s.Buffer.is_null() {
            return name;
        }
        let n = (usize::from(s.Length) / 2).min(N);
        // SAFETY: the buffer holds `Length` bytes, of which we read at most `Length`.
        let src = unsafe { core::slice::from_raw_parts(s.Buffer, n) };
        name.units[..n].copy_from_slice(src);
        name.len = n;
        name
    }

    /// The copied units.
    pub fn as_slice(&self) -> &[u16] {
        &self.units[..self.len]
    }
}

/// What NDIS told us about the adapter below the module.
pub struct AdapterInfo {
    pub if_index: u32,
    pub media: NDIS_MEDIUM,
    pub mac_len: u16,
    pub mac: [u8; NDIS_MAX_PHYS_ADDRESS_LENGTH],
    /// `FilterModuleGuidName`: identifies the module (and the adapter) to user mode.
    pub module_name: WideName<96>,
    /// `BaseMiniportInstanceName`: the adapter's friendly name.
    pub friendly_name: WideName<128>,
}

/// Counters of one adapter (rare events and per-chain/per-write figures only: nothing per
/// frame on the pass-through path).
#[derive(Default)]
pub struct Counters {
    pub rx_injected: AtomicU64,
    pub tx_injected: AtomicU64,
    pub rx_returned: AtomicU64,
    pub tx_completed: AtomicU64,
    pub tx_failed: AtomicU64,
    /// Slots (NBL + buffer) in the injection pool.
    pub nbls_allocated: AtomicU64,
    pub writes_out_of_nbls: AtomicU64,
    pub writes_not_running: AtomicU64,
    /// Receive chains returned (or dropped, with `RESOURCES`) because the module was not
    /// running.
    pub rx_refused_not_running: AtomicU64,
    /// Send chains completed with `NDIS_STATUS_PAUSED` because the module was not running.
    pub tx_refused_not_running: AtomicU64,
    /// OID requests forwarded.
    pub oid_requests: AtomicU64,
}

/// The context of one filter module (one adapter), allocated in `FilterAttach` with the
/// module's own NDIS handle and freed in `FilterDetach`.
pub struct FilterModule {
    /// `NdisFilterHandle`: every NBL the driver allocates carries it as `SourceHandle`.
    pub handle: Handle,
    /// Unique per attach (handles bind to it; ids are never reused within a driver load).
    pub id: u64,
    pub state: StateCell,
    /// Datapath rundown: open only while Running (see `rundown.rs`).
    pub datapath: Rundown,
    /// Own NBLs indicated up (Rx) and sent down (Tx) and not reclaimed yet. Raised before
    /// NDIS has them, lowered only after they are reclaimed: while one is 0, a chain coming
    /// back that way holds none of ours, and passes on without a walk.
    pub own_rx_out: AtomicUsize,
    pub own_tx_out: AtomicUsize,
    /// The module's NBL pool (`pool.rs`).
    pub nbl_pool: Handle,
    pub adapter: AdapterInfo,
    /// MTU from the restart attributes (0 until the first restart).
    pub mtu: AtomicU32,
    pub counters: Counters,
    /// Injection slots (`inject.rs`).
    pub slots: SpinLock<SlotPool>,
    /// Capturing handles (`capture/`).
    pub capture: crate::capture::ModuleCapture,
    /// The driver's own OID requests: the one at the miniport and those waiting
    /// (`oidreq.rs`).
    pub own: SpinLock<crate::oidreq::OwnQueue>,
    /// The packet filter: the protocols' and the handles' (`pfilter.rs`).
    pub pf: SpinLock<crate::pfilter::PacketFilters>,
    /// What the receive path reads without the lock: the filter types handles asked for
    /// that the protocols did not (0: every receive goes up, the usual case), and the
    /// protocols' own filter.
    pub rx_extra: AtomicU32,
    pub rx_higher: AtomicU32,
    /// Next module in the global list (guarded by the list lock).
    next: AtomicPtr<FilterModule>,
}

impl FilterModule {
    /// The module behind a `FilterModuleContext` NDIS passes to a callback.
    ///
    /// # Safety
    /// `ctx` is the context this driver gave `NdisFSetAttributes`, and the module is not
    /// detached (NDIS guarantees both for every callback it makes).
    pub unsafe fn from_context<'a>(ctx: NDIS_HANDLE) -> &'a FilterModule {
        // SAFETY: see the contract above.
        unsafe { &*ctx.cast::<FilterModule>() }
    }

    /// Leaves the datapath: drops one rundown reference, and completes a pending pause if
    /// this was the last one.
    #[inline]
    pub fn leave_datapath(&self) {
        if self.datapath.release() {
            self.complete_pause();
        }
    }

    /// Drops `n` rundown references (a reclaimed batch of own NBLs).
    #[inline]
    pub fn leave_datapath_many(&self, n: usize) {
        if n != 0 && self.datapath.release_many(n) {
            self.complete_pause();
        }
    }

    /// The largest untagged frame the adapter carries: MTU plus the Ethernet header.
    pub fn max_frame_size(&self) -> u32 {
        let mtu = self.mtu.load(Ordering::Relaxed);
        (if mtu == 0 { 1500 } else { mtu }).saturating_add(14)
    }

    /// The adapter as `IOCTL_RXINJECT_LIST_ADAPTERS` shows it.
    pub fn describe(&self) -> rxinject_abi::AdapterEntry {
        use rxinject_abi as abi;
        let a = &self.adapter;
        let mut e = abi::AdapterEntry::ZERO;
        e.if_index = a.if_index;
        e.state = match self.state.get() {
            FilterState::Running => abi::ADAPTER_STATE_RUNNING,
            FilterState::Restarting => abi::ADAPTER_STATE_RESTARTING,
            FilterState::Pausing => abi::ADAPTER_STATE_PAUSING,
            _ => abi::ADAPTER_STATE_PAUSED,
        };
        e.mtu = self.mtu.load(Ordering::Relaxed);
        e.max_frame_size = self.max_frame_size();
        let mac_len = usize::from(a.mac_len).min(6);
        e.mac[..mac_len].copy_from_slice(&a.mac[..mac_len]);
        e.mac_len = mac_len as u8;
        let name = a.module_name.as_slice();
        e.module_name[..name.len()].copy_from_slice(name);
        e.module_name_len = name.len() as u16;
        let friendly = a.friendly_name.as_slice();
        e.friendly_name[..friendly.len()].copy_from_slice(friendly);
        e.friendly_name_len = friendly.len() as u16;
        e
    }

    /// The adapter's counters (`IOCTL_RXINJECT_GET_COUNTERS`).
    pub fn counters_snapshot(&self) -> rxinject_abi::AdapterCounters {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        rxinject_abi::AdapterCounters {
            rx_injected: get(&c.rx_injected),
            tx_injected: get(&c.tx_injected),
            rx_returned: get(&c.rx_returned),
            tx_completed: get(&c.tx_completed),
            tx_failed: get(&c.tx_failed),
            nbls_allocated: get(&c.nbls_allocated),
            nbls_in_flight: u64::from(self.slots.lock().in_use()),
            writes_out_of_nbls: get(&c.writes_out_of_nbls),
            writes_not_running: get(&c.writes_not_running),
            rx_refused_not_running: get(&c.rx_refused_not_running),
            tx_refused_not_running: get(&c.tx_refused_not_running),
            oid_requests: get(&c.oid_requests),
        }
    }

    #[cold]
    fn complete_pause(&self) {
        if let Err(e) = self.state.transition(FilterState::Pausing, FilterState::Paused) {
            state_violation("pause completion", e);
        }
        trace!(INFO, "module {:p} paused (pended pause completed)", self);
        // SAFETY: our filter handle; the pause was pended by FilterPause (the rundown only
        // drains through a release after `close` returned false).
        unsafe { NdisFPauseComplete(self.handle.get()) };
    }

    /// Checks that the module is in one of `states` on entry to `callback`. A mismatch means
    /// NDIS and the driver disagree about the module: it is logged, and a debug build bug
    /// checks so that it cannot go unnoticed.
    #[inline]
    pub fn expect_state(&self, states: &[FilterState], callback: &str) -> bool {
        if self.state.is_one_of(states) {
            return true;
        }
        unexpected_state(self, callback);
        false
    }

    /// [`expect_state`](Self::expect_state) in debug builds only: the datapath's check.
    #[inline(always)]
    pub fn debug_check_state(&self, states: &[FilterState], callback: &str) {
        #[cfg(debug_assertions)]
        self.expect_state(states, callback);
        #[cfg(not(debug_assertions))]
        let _ = (states, callback);
    }
}

/// States in which NDIS may call the datapath handlers (the filter must refuse traffic in
/// all but Running).
pub const DATAPATH_STATES: &[FilterState] = &[
    FilterState::Running,
    FilterState::Pausing,
    FilterState::Paused,
    FilterState::Restarting,
];

#[cold]
fn unexpected_state(m: &FilterModule, callback: &str) {
    trace!(
        ERROR,
        "{callback}: module {:p} in unexpected state {:?}",
        m,
        m.state.get()
    );
    #[cfg(debug_assertions)]
    crate::bugcheck(
        crate::BUGCHECK_STATE,
        m as *const _ as usize,
        m.state.get() as usize,
    );
}

#[cold]
fn state_violation(what: &str, e: crate::state::BadTransition) {
    trace!(ERROR, "{what}: {e}");
    #[cfg(debug_assertions)]
    crate::bugcheck(crate::BUGCHECK_STATE, e.found as usize, e.to as usize);
}

/// The list of attached modules (for the control device to enumerate adapters).
pub type ModuleList = List<FilterModule>;

impl Linked for FilterModule {
    fn link(&self) -> &AtomicPtr<Self> {
        &self.next
    }
}

/// What `acquire_module` found.
pub enum Acquired {
    /// The module, with one datapath reference held for the caller.
    Module(&'static FilterModule),
    /// The module exists but is not running.
    NotRunning,
    /// No module with that id (it was detached).
    Gone,
}

/// Finds module `id` and takes a datapath reference on it, under the list lock: the module
/// cannot be detached while the reference is held (detach follows a pause, and a pause waits
/// for every reference). IRQL <= DISPATCH.
pub fn acquire_module(id: u64) -> Acquired {
    acquire(id, false)
}

/// [`acquire_module`] for a write: a module not running counts the refused write.
pub fn acquire_module_for_write(id: u64) -> Acquired {
    acquire(id, true)
}

fn acquire(id: u64, write: bool) -> Acquired {
    let list = GLOBALS.modules.lock();
    let Some(m) = list.iter().find(|m| m.id == id) else {
        return Acquired::Gone;
    };
    if m.datapath.try_acquire() {
        // SAFETY: the reference keeps the module alive beyond the lock (see above); 'static
        // stands for "until the caller releases the reference".
        Acquired::Module(unsafe { &*ptr::from_ref(m) })
    } else {
        if write {
            m.counters.writes_not_running.fetch_add(1, Ordering::Relaxed);
        }
        Acquired::NotRunning
    }
}

/// Runs `f` on module `id` under the list lock (`f` must not call NDIS). IRQL <= DISPATCH.
pub fn with_module<R>(id: u64, f: impl FnOnce(&FilterModule) -> R) -> Option<R> {
    let list = GLOBALS.modules.lock();
    list.iter().find(|m| m.id == id).map(f)
}

/// Runs `f` on every attached module, under the list lock (`f` must not call NDIS).
pub fn for_each_module(mut f: impl FnMut(&FilterModule)) {
    let list = GLOBALS.modules.lock();
    list.iter().for_each(&mut f);
}

/// The id of the module attached to the adapter with `if_index`.
pub fn find_by_if_index(if_index: u32) -> Option<u64> {
    let mut found = None;
    for_each_module(|m| {
        if m.adapter.if_index == if_index {
            found = Some(m.id);
        }
    });
    found
}

/// `FilterAttach`: accepts Ethernet adapters, allocates the module context and its NBL pool,
/// and registers the context with `NdisFSetAttributes`. PASSIVE_LEVEL.
///
/// # Safety
/// Called by NDIS with valid arguments.
pub unsafe extern "win64" fn filter_attach(
    ndis_filter_handle: NDIS_HANDLE,
    driver_context: NDIS_HANDLE,
    params: *mut NDIS_FILTER_ATTACH_PARAMETERS,
) -> NDIS_STATUS {
    if driver_context != GLOBALS.driver_context() || params.is_null() {
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    // SAFETY: NDIS passes valid attach parameters for the duration of the call.
    let p = unsafe { &*params };
    if p.Header.Type != NDIS_OBJECT_TYPE_FILTER_ATTACH_PARAMETERS
        || p.Header.Size < NDIS_SIZEOF_FILTER_ATTACH_PARAMETERS_REVISION_1
    {
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    if p.MiniportMediaType != NdisMedium802_3 {
        trace!(
            INFO,
            "not attaching to ifindex {}: medium {} is not 802.3", p.BaseMiniportIfIndex, p.MiniportMediaType
        );
        return NDIS_STATUS_UNSUPPORTED_MEDIA;
    }

    let mut mac = [0u8; NDIS_MAX_PHYS_ADDRESS_LENGTH];
    let mac_len = p.MacAddressLength.min(NDIS_MAX_PHYS_ADDRESS_LENGTH as u16);
    mac[..usize::from(mac_len)].copy_from_slice(&p.CurrentMacAddress[..usize::from(mac_len)]);
    let adapter = AdapterInfo {
        if_index: p.BaseMiniportIfIndex,
        media: p.MiniportMediaType,
        mac_len,
        mac,
        // SAFETY: NDIS_STRING pointers in the attach parameters are valid or null.
        module_name: unsafe { WideName::copy_from(p.FilterModuleGuidName) },
        // SAFETY: as above.
        friendly_name: unsafe { WideName::copy_from(p.BaseMiniportInstanceName) },
    };

    let Some(pool) = pool::create(Handle::new(ndis_filter_handle)) else {
        trace!(ERROR, "attach: NBL pool allocation failed");
        return NDIS_STATUS_RESOURCES;
    };
    let module = FilterModule {
        handle: Handle::new(ndis_filter_handle),
        id: GLOBALS.next_module_id(),
        state: StateCell::new(FilterState::Attaching),
        datapath: Rundown::new_closed(),
        own_rx_out: AtomicUsize::new(0),
        own_tx_out: AtomicUsize::new(0),
        nbl_pool: pool,
        adapter,
        mtu: AtomicU32::new(0),
        counters: Counters::default(),
        slots: SpinLock::new(SlotPool::new()),
        capture: crate::capture::ModuleCapture::new(),
        own: SpinLock::new(crate::oidreq::OwnQueue::new()),
        pf: SpinLock::new(crate::pfilter::PacketFilters::new()),
        rx_extra: AtomicU32::new(0),
        rx_higher: AtomicU32::new(0),
        next: AtomicPtr::new(ptr::null_mut()),
    };
    let Some(module) = ndis_new(Handle::new(ndis_filter_handle), TAG_FILTER_MODULE, module) else {
        // SAFETY: created above and never used.
        unsafe { pool::destroy(pool) };
        trace!(ERROR, "attach: module context allocation failed");
        return NDIS_STATUS_RESOURCES;
    };
    // SAFETY: the context was just written and is not shared yet.
    let m = unsafe { module.as_ref() };
    // SAFETY: the locks are at their final address and used by nobody yet.
    unsafe { m.slots.init() };
    // SAFETY: as above.
    unsafe { m.capture.list.init() };
    // SAFETY: as above.
    unsafe { m.own.init() };
    // SAFETY: as above.
    unsafe { m.pf.init() };

    let mut attributes = NDIS_FILTER_ATTRIBUTES {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES,
            NDIS_FILTER_ATTRIBUTES_REVISION_1,
            NDIS_SIZEOF_FILTER_ATTRIBUTES_REVISION_1,
        ),
        Flags: 0,
    };
    // SAFETY: our handle, a live context and valid attributes.
    let status = unsafe {
        NdisFSetAttributes(
            ndis_filter_handle,
            module.as_ptr().cast::<c_void>(),
            &mut attributes,
        )
    };
    if status != NDIS_STATUS_SUCCESS {
        trace!(ERROR, "attach: NdisFSetAttributes failed: {status:?}");
        // SAFETY: nothing else references the module or the pool yet (rule ST2: a failed
        // attach frees everything it allocated).
        unsafe {
            free_module(module);
        }
        return status;
    }

    // SAFETY: allocated above and now owned by NDIS's module; live until detach.
    let m = unsafe { module.as_ref() };
    if let Err(e) = m.state.transition(FilterState::Attaching, FilterState::Paused) {
        state_violation("attach", e);
    }
    GLOBALS.modules.lock().push(m);
    trace!(INFO, "attached to ifindex {} ({:p})", m.adapter.if_index, m);
    NDIS_STATUS_SUCCESS
}

/// Frees a module's pool and context.
///
/// # Safety
/// No one references the module any more.
unsafe fn free_module(module: NonNull<FilterModule>) {
    // SAFETY: the caller's contract: the module is ours alone.
    let m = unsafe { module.as_ref() };
    // SAFETY: nothing is in flight: every slot is free.
    unsafe { inject::destroy_slots(m) };
    // SAFETY: the slot lock is idle from now on.
    unsafe { m.slots.free() };
    // SAFETY: no own OID request is left (each held a datapath reference, and the module was
    // paused, or never ran).
    unsafe { m.own.free() };
    // SAFETY: as above: nothing refers to the module.
    unsafe { m.pf.free() };
    // SAFETY: no capture is linked any more (detach unlinked them, or none ever was).
    unsafe { crate::capture::free_module_lock(m) };
    let pool = m.nbl_pool;
    // SAFETY: the pool belongs to this module and holds no NBL (the module is quiescent).
    unsafe { pool::destroy(pool) };
    // SAFETY: allocated by ndis_new in filter_attach.
    unsafe { ndis_delete(module) };
}

/// `FilterDetach`: the module is Paused; free everything. PASSIVE_LEVEL; cannot fail.
///
/// # Safety
/// Called by NDIS with the context given to `NdisFSetAttributes`.
pub unsafe extern "win64" fn filter_detach(ctx: NDIS_HANDLE) {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    m.expect_state(&[FilterState::Paused], "FilterDetach");
    if let Err(e) = m.state.transition(FilterState::Paused, FilterState::Detached) {
        state_violation("detach", e);
    }
    // Capturing handles first, while the module can still be found by id (a handle closing
    // now unlinks its capture under the same lock).
    crate::capture::detach(m);
    let removed = GLOBALS.modules.lock().remove(m);
    debug_assert!(removed, "detached module was not in the list");
    trace!(INFO, "detached from ifindex {}", m.adapter.if_index);
    // SAFETY: NDIS never calls back for this module after FilterDetach; the list no longer
    // references it.
    unsafe { free_module(NonNull::from(m)) };
}

/// `FilterRestart`: reads the restart attributes and opens the datapath. PASSIVE_LEVEL.
///
/// # Safety
/// Called by NDIS with the module context and valid (or null) parameters.
pub unsafe extern "win64" fn filter_restart(
    ctx: NDIS_HANDLE,
    params: *mut NDIS_FILTER_RESTART_PARAMETERS,
) -> NDIS_STATUS {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    if !m.expect_state(&[FilterState::Paused], "FilterRestart") {
        return NDIS_STATUS_FAILURE;
    }
    if let Err(e) = m.state.transition(FilterState::Paused, FilterState::Restarting) {
        state_violation("restart", e);
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: NDIS passes a valid restart parameter block (or null) for the call.
    if let Some(mtu) = unsafe { restart_mtu(params) } {
        m.mtu.store(mtu, Ordering::Relaxed);
    }
    // SAFETY: the module is paused: every injection slot is free.
    unsafe { inject::rebuild_if_too_small(m, m.max_frame_size()) };
    if !m.datapath.reopen() {
        // Something of ours is still outstanding from before the pause: impossible if the
        // pause completed, so refuse to run rather than run half-paused.
        trace!(
            ERROR,
            "restart: datapath not drained ({} outstanding)",
            m.datapath.outstanding()
        );
        let _ = m.state.transition(FilterState::Restarting, FilterState::Paused);
        return NDIS_STATUS_FAILURE;
    }
    if let Err(e) = m.state.transition(FilterState::Restarting, FilterState::Running) {
        state_violation("restart", e);
    }
    crate::pfilter::restarted(m);
    trace!(
        INFO,
        "module {:p} running, mtu {}",
        m,
        m.mtu.load(Ordering::Relaxed)
    );
    NDIS_STATUS_SUCCESS
}

/// Finds `MtuSize` in the general restart attributes, walking at most 64 entries.
///
/// # Safety
/// `params` is null or valid, and so is its attribute list.
unsafe fn restart_mtu(params: *const NDIS_FILTER_RESTART_PARAMETERS) -> Option<u32> {
    if params.is_null() {
        return None;
    }
    // SAFETY: valid per the caller.
    let mut attr = unsafe { (*params).RestartAttributes };
    for _ in 0..64 {
        if attr.is_null() {
            return None;
        }
        // The entry is read field by field through the raw pointer: an entry is only as long
        // as its `DataLength`, which can be shorter than the 32 bytes of the C declaration.
        // SAFETY: a valid list entry per the caller.
        let oid = unsafe { (*attr).Oid };
        // SAFETY: as above.
        let len = unsafe { (*attr).DataLength };
        // SAFETY: as above.
        let next = unsafe { (*attr).Next };
        if oid == OID_GEN_MINIPORT_RESTART_ATTRIBUTES
            && len as usize >= core::mem::offset_of!(NDIS_RESTART_GENERAL_ATTRIBUTES, MtuSize) + 4
        {
            // SAFETY: a place projection of the valid entry; no reference is created, so the
            // pointer may reach the whole `DataLength` bytes.
            let data = unsafe { &raw const (*attr).Data }.cast::<u8>();
            let mtu_field = data
                .wrapping_add(core::mem::offset_of!(NDIS_RESTART_GENERAL_ATTRIBUTES, MtuSize))
                .cast::<u32>();
            // SAFETY: DataLength covers MtuSize; read_unaligned tolerates any alignment.
            let mtu = unsafe { mtu_field.read_unaligned() };
            return Some(mtu);
        }
        attr = next;
    }
    None
}

/// `FilterPause`: closes the datapath; completes now if nothing of ours is outstanding,
/// otherwise returns PENDING and the last returning NBL completes it (rules ST3, ST4).
/// PASSIVE_LEVEL.
///
/// # Safety
/// Called by NDIS with the module context.
pub unsafe extern "win64" fn filter_pause(
    ctx: NDIS_HANDLE,
    _params: *mut NDIS_FILTER_PAUSE_PARAMETERS,
) -> NDIS_STATUS {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    m.expect_state(&[FilterState::Running], "FilterPause");
    if let Err(e) = m.state.transition(FilterState::Running, FilterState::Pausing) {
        state_violation("pause", e);
    }
    // Own OID requests hold datapath references: the queued ones fail, the one at the
    // miniport is cancelled (before the close, so that none of them completes the pause
    // inside this callback).
    crate::oidreq::pause(m);
    if m.datapath.close() {
        if let Err(e) = m.state.transition(FilterState::Pausing, FilterState::Paused) {
            state_violation("pause", e);
        }
        trace!(INFO, "module {:p} paused", m);
        NDIS_STATUS_SUCCESS
    } else {
        trace!(
            INFO,
            "module {:p} pausing: {} outstanding",
            m,
            m.datapath.outstanding()
        );
        NDIS_STATUS_PENDING
    }
}
