//! Registration and the filter module life cycle (ST rules): attach, restart, pause, detach,
//! deregistration, and the leak checks at detach and unload.

use std::mem::{offset_of, size_of};
use std::ptr;

use ndis_sys::*;

use crate::datapath;
use crate::mem::{AllocKind, Block, tag_str};
use crate::nbl::{Origin, Owner};
use crate::rules::Rule;
use crate::tls;
use crate::world::{Adapter, Chars, DriverReg, HandleKind, ModState, World, lock};

/// The minor versions of NDIS 6 a filter may declare (`MinorNdisVersion` of
/// NDIS_FILTER_DRIVER_CHARACTERISTICS, and the `NDIS6xx` versions of the WDK's ndis.h; 6.1 is
/// "Implementing an NDIS 6.1 Driver"). Windows accepts those up to its own version
/// ([`crate::SimConfig::ndis_version`]).
pub const NDIS_MINOR_VERSIONS: &[u8] = &[
    0, 1, 20, 30, 40, 50, 51, 60, 70, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89,
];

/// The `NetBufferListInfo` slots a driver built for NDIS 6.`minor` sees on x64:
/// `MaxNetBufferListInfo` of the WDK's NDIS_NET_BUFFER_LIST_INFO, whose later entries are
/// under `NDIS_SUPPORT_NDIS6xx` (computed from the WDK 10.0.22621 headers).
pub fn nbl_info_slots(minor: u8) -> usize {
    match minor {
        0 => 11,
        1..=19 => 13,
        20..=29 => 18,
        30..=49 => 24,
        50..=79 => 26,
        _ => 27,
    }
}

/// Revision 3 (NDIS 6.80) adds `SynchronousOidRequestHandler` and
/// `SynchronousOidRequestCompleteHandler` after the revision-2 members ndis-sys declares
/// (synchronous OIDs are not issued by the simulator).
const NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_3: u16 =
    size_of::<NDIS_FILTER_DRIVER_CHARACTERISTICS>() as u16 + 16;

/// `NdisFRegisterFilterDriver`, as its reference page returns: `INVALID_PARAMETER` for a NULL
/// parameter, `BAD_VERSION` for an NDIS version this Windows does not have, and
/// `BAD_CHARACTERISTICS` for an invalid member (header, a required handler, the names).
pub(crate) fn register(
    w: &World,
    driver_object: *mut DRIVER_OBJECT,
    context: NDIS_HANDLE,
    chars: *const NDIS_FILTER_DRIVER_CHARACTERISTICS,
    out: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    const F: &str = "NdisFRegisterFilterDriver";
    w.require_passive(F);
    w.require_no_locks(F);
    if driver_object.is_null() || chars.is_null() || out.is_null() {
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    // The caller's structure is as long as its revision: only the header is read first, then
    // as many bytes as `Size` says (at most what ndis-sys declares).
    // SAFETY: every revision starts with the header.
    let header = unsafe { ptr::read_unaligned(chars.cast::<NDIS_OBJECT_HEADER>()) };
    if header.Type != NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS {
        return NDIS_STATUS_BAD_CHARACTERISTICS;
    }
    let needed = match header.Revision {
        NDIS_FILTER_CHARACTERISTICS_REVISION_1 => NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_1,
        NDIS_FILTER_CHARACTERISTICS_REVISION_2 => NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2,
        3 => NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_3,
        _ => return NDIS_STATUS_BAD_CHARACTERISTICS,
    };
    if header.Size < needed {
        return NDIS_STATUS_BAD_CHARACTERISTICS;
    }
    let mut c = std::mem::MaybeUninit::<NDIS_FILTER_DRIVER_CHARACTERISTICS>::zeroed();
    let len = usize::from(needed).min(size_of::<NDIS_FILTER_DRIVER_CHARACTERISTICS>());
    // SAFETY: the caller declared (Size) at least `needed` >= `len` bytes; an all-zero
    // characteristics structure is valid (NULL handlers and empty names).
    let c = unsafe {
        ptr::copy_nonoverlapping(chars.cast::<u8>(), c.as_mut_ptr().cast::<u8>(), len);
        c.assume_init()
    };
    let (os_major, os_minor) = w.cfg.ndis_version;
    if c.MajorNdisVersion != os_major
        || !NDIS_MINOR_VERSIONS.contains(&c.MinorNdisVersion)
        || c.MinorNdisVersion > os_minor
    {
        return NDIS_STATUS_BAD_VERSION;
    }
    // "Implementing an NDIS 6.1 Driver": a filter of NDIS 6.1 or later sets revision 2 (or
    // later); a 6.80 filter may keep revision 2, as Microsoft's sample does.
    if c.MinorNdisVersion >= 1 && header.Revision < NDIS_FILTER_CHARACTERISTICS_REVISION_2 {
        return NDIS_STATUS_BAD_CHARACTERISTICS;
    }
    // FilterAttach, FilterDetach, FilterRestart and FilterPause are required.
    if c.AttachHandler.is_none()
        || c.DetachHandler.is_none()
        || c.RestartHandler.is_none()
        || c.PauseHandler.is_none()
    {
        return NDIS_STATUS_BAD_CHARACTERISTICS;
    }
    if c.ServiceName.Length == 0 || c.UniqueName.Length == 0 {
        return NDIS_STATUS_BAD_CHARACTERISTICS;
    }
    // ST11: the handlers the references pair.
    let pairs = [
        (
            c.ReceiveNetBufferListsHandler.is_some() && c.StatusHandler.is_none(),
            "FilterReceiveNetBufferLists without FilterStatus",
        ),
        (
            c.ReturnNetBufferListsHandler.is_some() && c.StatusHandler.is_none(),
            "FilterReturnNetBufferLists without FilterStatus",
        ),
        (
            c.OidRequestCompleteHandler.is_some() && c.OidRequestHandler.is_none(),
            "FilterOidRequestComplete without FilterOidRequest",
        ),
        (
            c.OidRequestHandler.is_some() && c.OidRequestCompleteHandler.is_none(),
            "FilterOidRequest without FilterOidRequestComplete",
        ),
    ];
    for (missing, what) in pairs {
        if missing {
            w.violate(Rule::ST11, format!("{F}: {what}"));
        }
    }
    let names = [&c.FriendlyName, &c.UniqueName, &c.ServiceName].map(|s| {
        // SAFETY: NDIS_STRINGs of valid characteristics.
        unsafe { read_unicode(s) }
    });
    let chars = Chars {
        set_options: c.SetOptionsHandler,
        set_module_options: c.SetFilterModuleOptionsHandler,
        attach: c.AttachHandler,
        detach: c.DetachHandler,
        restart: c.RestartHandler,
        pause: c.PauseHandler,
        send: c.SendNetBufferListsHandler,
        send_complete: c.SendNetBufferListsCompleteHandler,
        cancel_send: c.CancelSendNetBufferListsHandler,
        receive: c.ReceiveNetBufferListsHandler,
        return_nbls: c.ReturnNetBufferListsHandler,
        oid_request: c.OidRequestHandler,
        oid_complete: c.OidRequestCompleteHandler,
        cancel_oid: c.CancelOidRequestHandler,
        device_pnp: c.DevicePnPEventNotifyHandler,
        net_pnp: c.NetPnPEventHandler,
        status: c.StatusHandler,
    };
    let handle = {
        let mut d = lock(&w.driver);
        if d.is_some() {
            return NDIS_STATUS_FAILURE;
        }
        let handle = {
            let mut objs = lock(&w.objs);
            objs.info_slots = nbl_info_slots(c.MinorNdisVersion);
            objs.registered_minor = c.MinorNdisVersion;
            objs.new_handle(HandleKind::FilterDriver)
        };
        *d = Some(DriverReg {
            handle,
            context: context as usize,
            chars,
            names,
            version: (c.MajorNdisVersion, c.MinorNdisVersion),
        });
        handle
    };
    // SAFETY: valid out parameter. NDIS writes it first: FilterSetOptions and FilterAttach
    // may need it (Microsoft's LWF sample asserts, in FilterSetOptions, that the handle it is
    // given is the one already stored).
    unsafe { *out = handle as NDIS_HANDLE };
    // FilterSetOptions is called "within the context of" the registration, with the handle
    // NDIS returns; a failure fails the registration.
    if let Some(set_options) = chars.set_options {
        let status = w.call_driver("FilterSetOptions", PASSIVE_LEVEL, || {
            // SAFETY: the filter's handler, with its driver handle and context.
            unsafe { set_options(handle as NDIS_HANDLE, context) }
        });
        if status != NDIS_STATUS_SUCCESS {
            *lock(&w.driver) = None;
            lock(&w.objs).kill_handle(handle);
            return status;
        }
    }
    if w.cfg.attach_on_register {
        // ST8: modules attach (and start) before registration returns.
        for a in &w.adapters {
            if attach(w, a).is_ok() {
                let _ = restart(w, a);
            }
        }
    }
    NDIS_STATUS_SUCCESS
}

/// Reads a UNICODE_STRING into a Rust string (lossy).
///
/// # Safety
/// `s` holds `Length` valid bytes at `Buffer` (or is empty).
pub(crate) unsafe fn read_unicode(s: &UNICODE_STRING) -> String {
    if s.Buffer.is_null() || s.Length == 0 {
        return String::new();
    }
    // SAFETY: caller's contract.
    let units = unsafe { std::slice::from_raw_parts(s.Buffer, usize::from(s.Length) / 2) };
    String::from_utf16_lossy(units)
}

/// `NdisFDeregisterFilterDriver`: pauses and detaches every module, then checks that the
/// driver holds nothing (ST9).
pub(crate) fn deregister(w: &World, handle: NDIS_HANDLE) {
    const F: &str = "NdisFDeregisterFilterDriver";
    w.require_passive(F);
    w.require_no_locks(F);
    let registered = lock(&w.driver).as_ref().map(|d| d.handle);
    if registered != Some(handle as usize) {
        w.violate(
            Rule::ST9,
            format!(
                "{F}({:#x}): not the handle NdisFRegisterFilterDriver returned",
                handle as usize
            ),
        );
        return;
    }
    for a in &w.adapters {
        detach_module(w, a);
    }
    let objs = lock(&w.objs);
    let held: Vec<String> = objs
        .nbls
        .iter()
        .filter(|(_, r)| r.owner == Owner::Filter && !r.origin.is_own())
        .map(|(n, r)| format!("#{} ({n:#x})", r.id))
        .take(8)
        .collect();
    drop(objs);
    if !held.is_empty() {
        w.violate(
            Rule::ST9,
            format!("{F}: the filter still holds foreign NBLs {}", held.join(", ")),
        );
    }
    *lock(&w.driver) = None;
    lock(&w.objs).kill_handle(handle as usize);
}

/// Attaches the filter to adapter `a` (FilterAttach). Ok if the module is now Paused.
pub(crate) fn attach(w: &World, a: &Adapter) -> Result<(), NDIS_STATUS> {
    let _busy = w.busy();
    let Some(chars) = w.chars() else {
        return Err(NDIS_STATUS_FAILURE);
    };
    let Some(attach_fn) = chars.attach else {
        return Err(NDIS_STATUS_FAILURE);
    };
    let context = lock(&w.driver).as_ref().map_or(0, |d| d.context);
    let handle = {
        let mut m = lock(&a.module);
        if m.state != ModState::Detached {
            return Err(NDIS_STATUS_FAILURE);
        }
        let h = lock(&w.objs).new_handle(HandleKind::Module(a.idx));
        m.state = ModState::Attaching;
        m.handle = h;
        m.ctx = 0;
        m.attributes_set = false;
        m.attaches += 1;
        h
    };
    let mut module_guid = unicode(&a.names.module_guid);
    let mut instance = unicode(&a.names.instance);
    let mut miniport = unicode(&a.names.miniport);
    let params_block = Block::new(size_of::<NDIS_FILTER_ATTACH_PARAMETERS>(), 0);
    let p = params_block.ptr::<NDIS_FILTER_ATTACH_PARAMETERS>();
    // SAFETY: a zeroed block of the right size and alignment.
    unsafe {
        (*p).Header = NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_FILTER_ATTACH_PARAMETERS,
            NDIS_FILTER_ATTACH_PARAMETERS_REVISION_4,
            NDIS_SIZEOF_FILTER_ATTACH_PARAMETERS_REVISION_4,
        );
        (*p).IfIndex = 100 + a.cfg.if_index;
        (*p).NetLuid = u64::from(a.cfg.if_index) << 24;
        (*p).FilterModuleGuidName = &mut module_guid;
        (*p).BaseMiniportIfIndex = a.cfg.if_index;
        (*p).BaseMiniportInstanceName = &mut instance;
        (*p).BaseMiniportName = &mut miniport;
        (*p).MediaConnectState = MediaConnectStateConnected;
        (*p).MediaDuplexState = MediaDuplexStateFull;
        (*p).XmitLinkSpeed = 1_000_000_000;
        (*p).RcvLinkSpeed = 1_000_000_000;
        (*p).MiniportMediaType = a.cfg.medium;
        (*p).MiniportPhysicalMediaType = NdisPhysicalMedium802_3;
        (*p).MacAddressLength = 6;
        (&mut (*p).CurrentMacAddress)[..6].copy_from_slice(&a.cfg.mac);
        (*p).BaseMiniportNetLuid = u64::from(a.cfg.if_index) << 24;
        (*p).LowerIfIndex = a.cfg.if_index;
        (*p).BaseMiniportIfConnectorPresent = TRUE;
    }
    let status = w.call_driver("FilterAttach", PASSIVE_LEVEL, || {
        // SAFETY: the filter's handler with valid arguments.
        unsafe { attach_fn(handle as NDIS_HANDLE, context as NDIS_HANDLE, p) }
    });
    drop(params_block);
    let mut m = lock(&a.module);
    if status == NDIS_STATUS_SUCCESS && !m.attributes_set {
        drop(m);
        // Without a module context NDIS cannot call the module: the attach fails.
        w.violate(
            Rule::ST2,
            "FilterAttach returned NDIS_STATUS_SUCCESS without calling NdisFSetAttributes",
        );
        let mut m = lock(&a.module);
        m.state = ModState::Detached;
        m.handle = 0;
        drop(m);
        lock(&w.objs).kill_handle(handle);
        Err(NDIS_STATUS_FAILURE)
    } else if status == NDIS_STATUS_SUCCESS {
        m.state = ModState::Paused;
        Ok(())
    } else {
        m.state = ModState::Detached;
        m.handle = 0;
        drop(m);
        leaks_of_module(w, a, handle, Rule::ST2, "FilterAttach failed and left");
        lock(&w.objs).kill_handle(handle);
        Err(status)
    }
}

fn unicode(units: &[u16]) -> UNICODE_STRING {
    UNICODE_STRING {
        Length: (units.len() * 2) as u16,
        MaximumLength: (units.len() * 2) as u16,
        Buffer: units.as_ptr().cast_mut(),
    }
}

/// `NdisFSetAttributes`.
pub(crate) fn set_attributes(
    w: &World,
    handle: NDIS_HANDLE,
    ctx: NDIS_HANDLE,
    attrs: *mut NDIS_FILTER_ATTRIBUTES,
) -> NDIS_STATUS {
    const F: &str = "NdisFSetAttributes";
    w.require_passive(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return NDIS_STATUS_INVALID_PARAMETER;
    };
    if attrs.is_null() {
        w.violate(Rule::ST2, format!("{F}: FilterAttributes is NULL"));
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the driver's attributes, valid for the call.
    let h = unsafe { (*attrs).Header };
    if h.Type != NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES
        || h.Revision != NDIS_FILTER_ATTRIBUTES_REVISION_1
        || h.Size < NDIS_SIZEOF_FILTER_ATTRIBUTES_REVISION_1
    {
        w.violate(Rule::ST2, format!("{F}: bad attributes header {h:?}"));
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    let mut m = lock(&a.module);
    if m.state != ModState::Attaching {
        drop(m);
        w.violate(Rule::ST2, format!("{F} outside FilterAttach"));
        return NDIS_STATUS_FAILURE;
    }
    if ctx.is_null() {
        drop(m);
        w.violate(Rule::ST2, format!("{F}: FilterModuleContext is NULL"));
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    m.ctx = ctx as usize;
    m.attributes_set = true;
    NDIS_STATUS_SUCCESS
}

/// The restart attributes block NDIS passes to FilterRestart: one general-attributes entry.
fn restart_block(a: &Adapter) -> Block {
    let data_off = offset_of!(NDIS_RESTART_ATTRIBUTES, Data);
    let b = Block::new(
        size_of::<NDIS_FILTER_RESTART_PARAMETERS>()
            + 16
            + data_off
            + size_of::<NDIS_RESTART_GENERAL_ATTRIBUTES>(),
        0,
    );
    let params = b.ptr::<NDIS_FILTER_RESTART_PARAMETERS>();
    let attr_addr = (b.addr() + size_of::<NDIS_FILTER_RESTART_PARAMETERS>() + 15) & !15;
    let attr = attr_addr as *mut NDIS_RESTART_ATTRIBUTES;
    let general = (attr_addr + data_off) as *mut NDIS_RESTART_GENERAL_ATTRIBUTES;
    // SAFETY: all three lie inside the zeroed block, suitably aligned.
    unsafe {
        (*general).Header = NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_RESTART_GENERAL_ATTRIBUTES,
            NDIS_RESTART_GENERAL_ATTRIBUTES_REVISION_2,
            NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_2,
        );
        (*general).MtuSize = a.mtu.load(std::sync::atomic::Ordering::SeqCst);
        (*general).MaxXmitLinkSpeed = 1_000_000_000;
        (*general).MaxRcvLinkSpeed = 1_000_000_000;
        (*general).LookaheadSize = (*general).MtuSize;
        (*attr).Next = ptr::null_mut();
        (*attr).Oid = OID_GEN_MINIPORT_RESTART_ATTRIBUTES;
        (*attr).DataLength = size_of::<NDIS_RESTART_GENERAL_ATTRIBUTES>() as u32;
        (*params).Header = NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_FILTER_RESTART_PARAMETERS,
            NDIS_FILTER_RESTART_PARAMETERS_REVISION_1,
            NDIS_SIZEOF__FILTER_RESTART_PARAMETERS_REVISION_1,
        );
        (*params).MiniportMediaType = a.cfg.medium;
        (*params).MiniportPhysicalMediaType = NdisPhysicalMedium802_3;
        (*params).RestartAttributes = attr;
        (*params).LowerIfIndex = a.cfg.if_index;
    }
    b
}

/// What the drivers above a filter learn from the restart attributes it passes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartSeen {
    pub mtu: u32,
    pub lookahead: u32,
    pub max_xmit_link_speed: u64,
    pub max_rcv_link_speed: u64,
}

/// Reads back the restart attributes the filter leaves in `params` after FilterRestart, as
/// NDIS does to pass them up: the list must still hold a general attributes entry (ST12).
fn read_back_attributes(w: &World, a: &Adapter, params: *const NDIS_FILTER_RESTART_PARAMETERS) {
    // SAFETY: the parameters block this restart passed; the filter may have relinked the
    // list, to entries of its own memory.
    let mut entry = unsafe { (*params).RestartAttributes };
    let mut seen = None;
    let mut n = 0;
    while !entry.is_null() && n < 64 {
        // SAFETY: an entry of the list (ours, or the filter's).
        let e = unsafe { &*entry };
        if e.Oid == OID_GEN_MINIPORT_RESTART_ATTRIBUTES {
            let data = (entry as usize + offset_of!(NDIS_RESTART_ATTRIBUTES, Data))
                as *const NDIS_RESTART_GENERAL_ATTRIBUTES;
            // SAFETY: the entry's data, DataLength bytes (checked against the structure's
            // first fields before the rest is read).
            let g = unsafe { &*data };
            let size_ok =
                e.DataLength as usize >= usize::from(NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_1);
            if !size_ok
                || g.Header.Type != NDIS_OBJECT_TYPE_RESTART_GENERAL_ATTRIBUTES
                || g.Header.Size < NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_1
            {
                w.violate(
                    Rule::ST12,
                    format!(
                        "FilterRestart left a general attributes entry with DataLength {} and header {:?}",
                        e.DataLength, g.Header
                    ),
                );
                return;
            }
            seen = Some(RestartSeen {
                mtu: g.MtuSize,
                lookahead: g.LookaheadSize,
                max_xmit_link_speed: g.MaxXmitLinkSpeed,
                max_rcv_link_speed: g.MaxRcvLinkSpeed,
            });
            break;
        }
        entry = e.Next;
        n += 1;
    }
    if seen.is_none() {
        w.violate(
            Rule::ST12,
            "FilterRestart left restart attributes without an NDIS_RESTART_GENERAL_ATTRIBUTES entry (OID_GEN_MINIPORT_RESTART_ATTRIBUTES)",
        );
    }
    lock(&a.module).restart_seen = seen;
}

/// Restarts module `a` (Paused -> Restarting -> Running). Returns the final status.
pub(crate) fn restart(w: &World, a: &Adapter) -> NDIS_STATUS {
    let _busy = w.busy();
    let st = restart_module(w, a);
    if st == NDIS_STATUS_SUCCESS {
        // The stack restarts bottom-up: the protocol last.
        datapath::protocol_restart(w, a);
    }
    st
}

/// Restarts the filter module of `a` (Paused -> Restarting -> Running).
fn restart_module(w: &World, a: &Adapter) -> NDIS_STATUS {
    let Some(restart_fn) = w.chars().and_then(|c| c.restart) else {
        return NDIS_STATUS_FAILURE;
    };
    // "If FilterSetModuleOptions is defined, NDIS calls FilterSetModuleOptions before it
    // calls the FilterRestart function": in the Paused state, at PASSIVE_LEVEL. A failure
    // leaves the module Paused.
    if let Some(set_module_options) = w.chars().and_then(|c| c.set_module_options) {
        let ctx = {
            let m = lock(&a.module);
            if m.state != ModState::Paused {
                return NDIS_STATUS_FAILURE;
            }
            m.ctx
        };
        let status = w.call_driver("FilterSetModuleOptions", PASSIVE_LEVEL, || {
            // SAFETY: the filter's handler with its module context.
            unsafe { set_module_options(ctx as NDIS_HANDLE) }
        });
        if status != NDIS_STATUS_SUCCESS {
            return status;
        }
    }
    let ctx = {
        let mut m = lock(&a.module);
        if m.state != ModState::Paused {
            return NDIS_STATUS_FAILURE;
        }
        m.state = ModState::Restarting;
        m.restarts += 1;
        m.restart = Default::default();
        m.restart.in_call = true;
        m.restart.active = true;
        m.ctx
    };
    let block = restart_block(a);
    let status = w.call_driver("FilterRestart", PASSIVE_LEVEL, || {
        // SAFETY: the filter's handler with valid arguments.
        unsafe { restart_fn(ctx as NDIS_HANDLE, block.ptr()) }
    });
    {
        let mut m = lock(&a.module);
        m.restart.in_call = false;
        if status == NDIS_STATUS_PENDING {
            // Completed below, or already by NdisFRestartComplete.
        } else {
            if m.restart.completions > 0 {
                drop(m);
                w.violate(
                    Rule::ST5,
                    format!("FilterRestart returned {status:?} after calling NdisFRestartComplete"),
                );
                m = lock(&a.module);
            }
            drop(m);
            return finish_restart(w, a, status, &block);
        }
    }
    // Pended: the machine runs until the filter completes the restart.
    if !w.settle(|| lock(&a.module).restart.completions > 0) {
        w.violate(
            Rule::ST5,
            "FilterRestart pended and NdisFRestartComplete was never called (nothing left in the machine could complete it)",
        );
        let mut m = lock(&a.module);
        m.restart.active = false;
        m.state = ModState::Paused;
        return NDIS_STATUS_FAILURE;
    }
    let st = lock(&a.module).restart.status.unwrap_or(NDIS_STATUS_FAILURE);
    finish_restart(w, a, st, &block)
}

/// The restart ended with `status`: Running on success (with the restart attributes read
/// back), Paused otherwise.
fn finish_restart(w: &World, a: &Adapter, status: NDIS_STATUS, block: &Block) -> NDIS_STATUS {
    {
        let mut m = lock(&a.module);
        m.restart.active = false;
        m.state = if status == NDIS_STATUS_SUCCESS {
            ModState::Running
        } else {
            ModState::Paused
        };
    }
    if status == NDIS_STATUS_SUCCESS {
        read_back_attributes(w, a, block.ptr());
    }
    status
}

/// `NdisFRestartComplete`.
pub(crate) fn restart_complete(w: &World, handle: NDIS_HANDLE, status: NDIS_STATUS) {
    const F: &str = "NdisFRestartComplete";
    if tls::irql() != PASSIVE_LEVEL {
        w.violate(
            Rule::ST5,
            format!("{F} at IRQL {} (requires PASSIVE_LEVEL)", tls::irql()),
        );
    }
    w.require_no_locks(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return;
    };
    let mut m = lock(&a.module);
    if !m.restart.active || m.state != ModState::Restarting {
        drop(m);
        w.violate(Rule::ST5, format!("{F} without a pended restart"));
        return;
    }
    m.restart.completions += 1;
    if m.restart.completions > 1 {
        drop(m);
        w.violate(Rule::ST5, format!("{F} called twice"));
        return;
    }
    m.restart.status = Some(status);
}

/// Pauses module `a` (Running -> Pausing -> Paused), pumping completions while the filter
/// waits for its NBLs.
pub(crate) fn pause(w: &World, a: &Adapter) {
    let _busy = w.busy();
    if w.cfg.pause_protocol_first && w.module_state(a) == ModState::Running {
        // NDIS pauses top-down: the protocol returns what it holds, waits for its sends and
        // sends nothing more until the stack restarts.
        quiesce_protocol(w, a);
        lock(&a.protocol).paused = true;
    }
    pause_module(w, a);
}

/// Pauses the filter module of `a` alone (`NdisFRestartFilter`: the stack above keeps
/// running, and its sends reach the paused filter, which completes them with
/// NDIS_STATUS_PAUSED).
pub(crate) fn pause_module(w: &World, a: &Adapter) {
    let _busy = w.busy();
    let Some(pause_fn) = w.chars().and_then(|c| c.pause) else {
        return;
    };
    let ctx = {
        let mut m = lock(&a.module);
        if m.state != ModState::Running {
            return;
        }
        m.state = ModState::Pausing;
        // Until FilterPause returns, the filter may still be closing its gate: traffic it
        // passes on meanwhile is in flight, not new (see `World::began_before_pause`).
        m.pause_epoch = u64::MAX;
        m.pause = Default::default();
        m.pause.in_call = true;
        m.pause.active = true;
        m.ctx
    };
    let mut params = NDIS_FILTER_PAUSE_PARAMETERS {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_FILTER_PAUSE_PARAMETERS,
            NDIS_FILTER_PAUSE_PARAMETERS_REVISION_1,
            NDIS_SIZEOF_FILTER_PAUSE_PARAMETERS_REVISION_1,
        ),
        Flags: 0,
        PauseReason: NDIS_PAUSE_NDIS_INTERNAL,
    };
    let status = w.call_driver("FilterPause", PASSIVE_LEVEL, || {
        // SAFETY: the filter's handler with valid arguments.
        unsafe { pause_fn(ctx as NDIS_HANDLE, &mut params) }
    });
    let completions = {
        let mut m = lock(&a.module);
        m.pause.in_call = false;
        m.pause_epoch = w.tick();
        m.pause.completions
    };
    if status == NDIS_STATUS_SUCCESS {
        if completions > 0 {
            w.violate(
                Rule::ST3,
                "FilterPause returned NDIS_STATUS_SUCCESS after calling NdisFPauseComplete (completed twice)",
            );
        } else {
            datapath::check_quiescent(w, a, "FilterPause returned NDIS_STATUS_SUCCESS");
        }
        let mut m = lock(&a.module);
        m.pause.active = false;
        m.state = ModState::Paused;
        return;
    }
    if status != NDIS_STATUS_PENDING {
        w.violate(
            Rule::ST3,
            format!("FilterPause returned {status:?}: only SUCCESS or PENDING are allowed"),
        );
        let mut m = lock(&a.module);
        m.pause.active = false;
        m.state = ModState::Paused;
        return;
    }
    // Pended: the filter waits for its NBLs; keep the machine running until it completes.
    lock(&a.module).pauses_pended += 1;
    let done = || {
        let mut m = lock(&a.module);
        if m.pause.completions > 0 {
            m.pause.active = false;
        }
        m.pause.completions > 0
    };
    if !w.settle(done) {
        w.violate(
            Rule::ST3,
            "FilterPause pended and NdisFPauseComplete never came (nothing left in the machine could complete it): on Windows this hangs the stack (bug check 0x7C/0x25)",
        );
        let mut m = lock(&a.module);
        m.pause.active = false;
        m.state = ModState::Paused;
    }
}

/// `NdisFPauseComplete`.
pub(crate) fn pause_complete(w: &World, handle: NDIS_HANDLE) {
    const F: &str = "NdisFPauseComplete";
    w.require_max_dispatch(F);
    w.require_no_locks(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return;
    };
    {
        let mut m = lock(&a.module);
        if !m.pause.active || m.state != ModState::Pausing {
            let twice = m.pause.completions > 0;
            drop(m);
            w.violate(
                Rule::ST3,
                if twice {
                    format!("{F} called twice for one pause")
                } else {
                    format!("{F} without a pended pause")
                },
            );
            return;
        }
        // One critical section: whoever sees the completion also sees the Paused state.
        m.pause.completions += 1;
        m.state = ModState::Paused;
        if !m.pause.in_call {
            m.pause.active = false;
        }
    }
    datapath::check_quiescent(w, a, "NdisFPauseComplete");
}

/// Pauses the protocol above adapter `a`: it returns every receive it holds and waits for its
/// sends to complete.
pub(crate) fn quiesce_protocol(w: &World, a: &Adapter) {
    lock(&a.protocol).releasing = true;
    datapath::drain(w, a);
    lock(&a.protocol).releasing = false;
    // Sends the filter still holds may complete later (a timer, a work item, another
    // thread); when nothing can complete them, the pause goes on to the filter, which must
    // complete them (S1).
    let _ = w.settle(|| lock(&a.protocol).tx_outstanding == 0);
}

/// Detaches the module of `a` if attached (pausing it first), and checks ST7.
pub(crate) fn detach_module(w: &World, a: &Adapter) {
    let _busy = w.busy();
    if detach_filter(w, a) {
        // The stack restarts without the filter.
        datapath::protocol_restart(w, a);
    }
}

/// Pauses the stack of `a` and detaches its filter module, leaving the protocol paused (an
/// attach and restart may follow, as when a filter is reinstalled). Returns whether it
/// detached a module.
pub(crate) fn detach_filter(w: &World, a: &Adapter) -> bool {
    let _busy = w.busy();
    if w.module_state(a) == ModState::Detached {
        return false;
    }
    if w.module_state(a) == ModState::Running {
        pause(w, a);
    }
    let Some(detach_fn) = w.chars().and_then(|c| c.detach) else {
        return false;
    };
    let (ctx, handle, state) = {
        let m = lock(&a.module);
        (m.ctx, m.handle, m.state)
    };
    if state != ModState::Paused {
        w.violate(Rule::ST7, format!("detach of a module in state {state:?}"));
    }
    // The stack below pauses too before NDIS detaches a filter: the miniport's pause waits
    // for its receive NBLs and the protocol's for its sends, so no foreign NBL is still in a
    // callback of the filter (another processor may be finishing one) when FilterDetach
    // runs. What the filter keeps for good is reported by the checks below.
    // So is the miniport, and nothing new comes in from the edges of the stack until it
    // restarts.
    a.edges.close();
    let _ = w.settle(|| {
        let objs = lock(&w.objs);
        a.edges.idle()
            && !objs
                .nbls
                .values()
                .any(|r| r.adapter == a.idx && !r.origin.is_own() && r.callbacks > 0)
    });
    w.call_driver("FilterDetach", PASSIVE_LEVEL, || {
        // SAFETY: the filter's handler with its context.
        unsafe { detach_fn(ctx as NDIS_HANDLE) }
    });
    {
        let mut m = lock(&a.module);
        m.state = ModState::Detached;
        m.ctx = 0;
        m.handle = 0;
    }
    leaks_of_module(w, a, handle, Rule::ST7, "FilterDetach returned and left");
    lock(&w.objs).kill_handle(handle);
    true
}

/// What a module (handle `h`) still holds: pools and their NBLs, foreign NBLs, and (when
/// strict) memory allocated with its handle.
fn leaks_of_module(w: &World, a: &Adapter, h: usize, rule: Rule, when: &str) {
    let mut problems = Vec::new();
    {
        let objs = lock(&w.objs);
        for (p, rec) in &objs.pools {
            if rec.owner_handle == h {
                problems.push((
                    rule,
                    format!(
                        "{when} NBL pool {p:#x} (tag {}) allocated",
                        tag_str(rec.params.PoolTag)
                    ),
                ));
                if rec.live > 0 {
                    problems.push((
                        Rule::N7,
                        format!("{when} {} NBL(s) of pool {p:#x} allocated", rec.live),
                    ));
                }
            }
        }
        for (n, r) in &objs.nbls {
            if r.adapter != a.idx || r.owner != Owner::Filter {
                continue;
            }
            match r.origin {
                Origin::Miniport => problems.push((
                    Rule::R1,
                    format!("{when} the filter holding receive NBL #{} ({n:#x})", r.id),
                )),
                Origin::Protocol => problems.push((
                    Rule::S1,
                    format!(
                        "{when} the filter holding send NBL #{} ({n:#x}), never completed",
                        r.id
                    ),
                )),
                Origin::Filter { .. } => {}
            }
        }
    }
    if w.cfg.strict.module_memory_freed_at_detach || rule == Rule::ST2 {
        let mem = lock(&w.mem);
        let mut leaks: Vec<_> = mem
            .live
            .values()
            .filter(|x| x.kind == AllocKind::Ndis { handle: h })
            .map(|x| (x.seq, x.tag, x.block.size()))
            .collect();
        leaks.sort();
        for (_, tag, size) in leaks {
            problems.push((
                rule,
                format!(
                    "{when} {size} bytes of pool memory (tag {}) allocated with the module handle",
                    tag_str(tag)
                ),
            ));
        }
    }
    for (r, m) in problems.into_iter().take(16) {
        w.violate(r, m);
    }
}

/// After DriverUnload: everything the driver allocated is freed (K1, L3, N7), it is no longer
/// registered (ST9), and every module is detached.
pub(crate) fn check_unload(w: &World) {
    crate::io::check_unload(w);
    crate::timer::check_unload(w);
    crate::kernel::check_unload(w);
    if lock(&w.driver).is_some() {
        w.violate(
            Rule::ST9,
            "DriverUnload returned without calling NdisFDeregisterFilterDriver",
        );
    }
    let mut problems: Vec<(Rule, String)> = Vec::new();
    {
        let mem = lock(&w.mem);
        let mut leaks: Vec<_> = mem
            .live
            .values()
            .map(|x| (x.seq, x.tag, x.block.size(), x.kind))
            .collect();
        leaks.sort_by_key(|l| l.0);
        for (_, tag, size, kind) in leaks {
            problems.push((
                Rule::K1,
                format!(
                    "leak at unload: {size} bytes, tag {} ({})",
                    tag_str(tag),
                    match kind {
                        AllocKind::Ex => "ExAllocatePool2",
                        AllocKind::Ndis { .. } => "NdisAllocateMemoryWithTagPriority",
                    }
                ),
            ));
        }
    }
    {
        let objs = lock(&w.objs);
        for (p, rec) in &objs.pools {
            problems.push((
                Rule::N7,
                format!(
                    "leak at unload: NBL pool {p:#x} (tag {}) with {} NBL(s)",
                    tag_str(rec.params.PoolTag),
                    rec.live
                ),
            ));
        }
        let mdls = objs.mdls.values().filter(|m| m.by_filter).count();
        if mdls > 0 {
            problems.push((
                Rule::K1,
                format!("leak at unload: {mdls} MDL(s) from NdisAllocateMdl"),
            ));
        }
        for (n, r) in &objs.nbls {
            if r.owner == Owner::Filter && !r.origin.is_own() {
                problems.push((
                    Rule::ST9,
                    format!("unload with foreign NBL #{} ({n:#x}) held by the filter", r.id),
                ));
            }
        }
    }
    {
        let ndis_locks = lock(&w.locks).values().filter(|l| !l.ke).count();
        if ndis_locks > 0 {
            problems.push((
                Rule::L7,
                format!(
                    "at unload: {ndis_locks} spin lock(s) never freed (NdisFreeSpinLock; it has no effect on Windows)"
                ),
            ));
        }
    }
    let clones = crate::oid::live_clones(w);
    if clones > 0 {
        problems.push((
            Rule::O2,
            format!("leak at unload: {clones} cloned OID request(s) never freed"),
        ));
    }
    for (r, m) in problems.into_iter().take(32) {
        w.violate(r, m);
    }
}
