//! Sends and receives: the miniport below and the protocol above, and the `NdisF*`
//! datapath functions the filter calls, with the ownership rules (R, S, N families) checked
//! on every handoff.

use ndis_sys::*;

use crate::nbl::{self, MAX_CHAIN, Origin, Owner, STATUS_NEVER_SET};
use crate::rules::Rule;
use crate::tls;
use crate::world::{Adapter, FrameOrigin, ModState, RxFrame, TxCompletion, WireFrame, World, lock};

const SEND_FLAGS_KNOWN: u32 = NDIS_SEND_FLAGS_DISPATCH_LEVEL
    | NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK
    | NDIS_SEND_FLAGS_SINGLE_QUEUE
    | NDIS_SEND_FLAGS_SWITCH_DESTINATION_GROUP
    | NDIS_SEND_FLAGS_SWITCH_SINGLE_SOURCE;
const SEND_COMPLETE_FLAGS_KNOWN: u32 = NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL
    | NDIS_SEND_COMPLETE_FLAGS_SINGLE_QUEUE
    | NDIS_SEND_COMPLETE_FLAGS_SWITCH_SINGLE_SOURCE;
const RECEIVE_FLAGS_KNOWN: u32 = NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL
    | NDIS_RECEIVE_FLAGS_RESOURCES
    | NDIS_RECEIVE_FLAGS_SINGLE_ETHER_TYPE
    | NDIS_RECEIVE_FLAGS_SINGLE_VLAN
    | NDIS_RECEIVE_FLAGS_PERFECT_FILTERED
    | NDIS_RECEIVE_FLAGS_SINGLE_QUEUE
    | NDIS_RECEIVE_FLAGS_SHARED_MEMORY_INFO_VALID
    | NDIS_RECEIVE_FLAGS_MORE_NBLS;
const RETURN_FLAGS_KNOWN: u32 = NDIS_RETURN_FLAGS_DISPATCH_LEVEL
    | NDIS_RETURN_FLAGS_SINGLE_QUEUE
    | NDIS_RETURN_FLAGS_SWITCH_SINGLE_SOURCE;

/// The Hyper-V extensible switch's bits of each family (S14): the simulated adapters are
/// not switch ports, so nothing that passes them came from a switch source port.
const SEND_FLAGS_SWITCH: u32 =
    NDIS_SEND_FLAGS_SWITCH_DESTINATION_GROUP | NDIS_SEND_FLAGS_SWITCH_SINGLE_SOURCE;
const SEND_COMPLETE_FLAGS_SWITCH: u32 = NDIS_SEND_COMPLETE_FLAGS_SWITCH_SINGLE_SOURCE;
const RETURN_FLAGS_SWITCH: u32 = NDIS_RETURN_FLAGS_SWITCH_SINGLE_SOURCE;

/// The flag bit that says "called at DISPATCH_LEVEL" (bit 0 in every family).
const DISPATCH_BIT: u32 = 1;

fn dispatch_flag(irql: KIRQL) -> u32 {
    if irql == DISPATCH_LEVEL { DISPATCH_BIT } else { 0 }
}

/// One flags argument: only bits of its own family (S13), none of the extensible switch's
/// (`switch`, S14), and the DISPATCH bit set exactly when the caller runs at DISPATCH_LEVEL
/// (S7).
fn check_flags(w: &World, function: &str, family: &str, flags: u32, known: u32, switch: u32) {
    if flags & switch != 0 {
        w.violate(
            Rule::S14,
            format!(
                "{function}: {family} flags {flags:#x} carry the extensible switch's bits {:#x}, \
                 but this adapter is not a Hyper-V switch port (nothing came from a switch \
                 source port)",
                flags & switch
            ),
        );
    }
    if flags & !known != 0 {
        w.violate(
            Rule::S13,
            format!(
                "{function}: flags {flags:#x} carry bits {:#x} that are not {family} flags",
                flags & !known
            ),
        );
    }
    let at_dispatch = tls::at_dispatch();
    if (flags & DISPATCH_BIT != 0) != at_dispatch {
        w.violate(
            Rule::S7,
            format!(
                "{function}: the DISPATCH_LEVEL flag is {} but the caller runs at IRQL {}",
                if flags & DISPATCH_BIT != 0 { "set" } else { "clear" },
                tls::irql()
            ),
        );
    }
}

/// Walks a chain handed to an NDIS function, reporting unknown NBLs (N1).
fn walk_reported(w: &World, objs: &nbl::Objects, head: *mut NET_BUFFER_LIST, function: &str) -> Vec<usize> {
    match nbl::walk(objs, head) {
        Ok(v) => {
            check_beyond_slots(w, objs, function, &v);
            v
        }
        Err((v, bad)) => {
            match objs.freed.get(&bad) {
                _ if v.len() >= MAX_CHAIN => w.violate(Rule::N1, format!("{function}: the chain does not end (a loop?)")),
                Some((Origin::Miniport, id)) => w.violate(
                    Rule::R1,
                    format!("{function}: receive NBL #{id} ({bad:#x}) was already returned to the miniport (double return)"),
                ),
                Some((Origin::Protocol, id)) => w.violate(
                    Rule::S1,
                    format!("{function}: send NBL #{id} ({bad:#x}) was already completed to the protocol (double completion)"),
                ),
                Some((Origin::Filter { .. }, _)) => {
                    w.violate(Rule::N7, format!("{function}: own NBL {bad:#x} was already freed (use after free)"))
                }
                None => w.violate(Rule::N1, format!("{function}: NBL {bad:#x} was not allocated by NDIS")),
            }
            v
        }
    }
}

/// N11: the info slots beyond the driver's NDIS version are as NDIS filled them, on every NBL
/// the filter hands to NDIS.
pub(crate) fn check_beyond_slots(w: &World, objs: &nbl::Objects, function: &str, nbls: &[usize]) {
    for &n in nbls {
        // SAFETY: a live NBL the simulator allocated (walk found its record).
        let touched = unsafe { nbl::touched_beyond_slot(n as *const NET_BUFFER_LIST, objs.info_slots) };
        if let Some((slot, value)) = touched {
            w.violate(
                Rule::N11,
                format!(
                    "{function}: NetBufferListInfo[{slot}] of NBL {n:#x} is {value:#x}: the filter registered NDIS 6.{}, whose NET_BUFFER_LIST has {} info slots; the slots after them belong to NDIS",
                    objs.registered_minor, objs.info_slots
                ),
            );
        }
    }
}

/// An NBL as messages name it, formatted only when a message is written (the datapath checks
/// every NBL it is handed; formatting eagerly cost more than the checks).
#[derive(Clone, Copy)]
struct Described {
    own: bool,
    receive: bool,
    id: u64,
    addr: usize,
}

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addr = self.addr;
        match (self.own, self.receive) {
            (true, _) => write!(f, "own NBL {addr:#x}"),
            (false, true) => write!(f, "receive NBL #{} ({addr:#x})", self.id),
            (false, false) => write!(f, "send NBL #{} ({addr:#x})", self.id),
        }
    }
}

fn describe(rec: &nbl::NblRec, addr: usize) -> Described {
    Described {
        own: matches!(rec.origin, Origin::Filter { .. }),
        receive: matches!(rec.origin, Origin::Miniport),
        id: rec.id,
        addr,
    }
}

// ---------------------------------------------------------------------------------------------
// Receive path
// ---------------------------------------------------------------------------------------------

/// The miniport indicates `frames` (one NBL each, one chain). Returns their sequence ids.
pub(crate) fn miniport_indicate(w: &World, a: &Adapter, frames: &[Vec<u8>], resources: bool) -> Vec<u64> {
    let _busy = w.busy();
    if frames.is_empty() {
        return Vec::new();
    }
    // A paused miniport (the stack paused to detach or attach a filter) indicates nothing:
    // what arrives meanwhile is lost, as on a wire.
    let Some(_inside) = a.edges.enter() else {
        lock(&a.miniport).dropped_while_paused += frames.len() as u64;
        return Vec::new();
    };
    // The NIC's packet filter (an Ethernet NIC's): what it does not accept never becomes an
    // NBL.
    let filter = (a.cfg.honour_packet_filter && a.cfg.medium == NdisMedium802_3).then(|| {
        let mp = lock(&a.miniport);
        (mp.packet_filter, mp.multicast.clone())
    });
    let accepts = |f: &Vec<u8>| match &filter {
        Some((pf, multicast)) => crate::world::packet_filter_accepts(*pf, &a.cfg.mac, multicast, f),
        None => true,
    };
    let passed = frames.iter().filter(|f| accepts(f)).count();
    if passed < frames.len() {
        lock(&a.miniport).dropped_by_packet_filter += (frames.len() - passed) as u64;
        if passed == 0 {
            return Vec::new();
        }
    }
    let mut objs = lock(&w.objs);
    let mut nbls = Vec::with_capacity(passed);
    let mut ids = Vec::with_capacity(passed);
    for f in frames.iter().filter(|f| accepts(f)) {
        let id = objs.next_id();
        let nbl = nbl::build_foreign(
            &mut objs,
            f,
            w.cfg.mdl_split,
            a.miniport_handle,
            a.idx,
            Origin::Miniport,
            id,
        );
        let rec = objs.nbls.get_mut(&nbl).expect("just built");
        rec.rx_resources = resources;
        rec.owner = Owner::Filter;
        nbls.push(nbl);
        ids.push(id);
    }
    let head = nbl::link(&nbls);
    let tokens = objs.enter_callback(&nbls);
    drop(objs);

    let (state, ctx) = {
        let m = lock(&a.module);
        (m.state, m.ctx)
    };
    let handler = w.chars().and_then(|c| c.receive);
    let irql = w.datapath_irql();
    let flags = dispatch_flag(irql)
        | if resources {
            NDIS_RECEIVE_FLAGS_RESOURCES
        } else {
            0
        };

    if !resources {
        lock(&a.miniport).rx_outstanding += nbls.len();
    }
    match (state, handler) {
        (ModState::Detached, _) | (_, None) => {
            // No filter in the path: NDIS indicates straight to the protocol.
            let prev = tls::irql();
            tls::set_irql(irql);
            deliver_up(w, a, &nbls, resources);
            tls::set_irql(prev);
            if resources {
                let mut objs = lock(&w.objs);
                for n in &nbls {
                    objs.release_nbl(*n);
                }
            }
        }
        (_, Some(receive)) => {
            let order = if resources { Some(nbls.clone()) } else { None };
            w.call_driver("FilterReceiveNetBufferLists", irql, || {
                // SAFETY: calling the filter's handler with its context and a chain we own.
                unsafe {
                    receive(
                        ctx as NDIS_HANDLE,
                        head,
                        NDIS_DEFAULT_PORT_NUMBER,
                        nbls.len() as u32,
                        flags,
                    )
                }
            });
            if let Some(order) = order {
                resources_returned(w, a, &order);
            }
        }
    }
    lock(&w.objs).leave_callback(&tokens);
    ids
}

/// After a RESOURCES indication: the chain must be intact (R3), every NBL back with the
/// filter (R4), and then the miniport owns them again.
fn resources_returned(w: &World, a: &Adapter, order: &[usize]) {
    let mut objs = lock(&w.objs);
    // R3: same NBLs, same order, same links.
    for (i, &n) in order.iter().enumerate() {
        if !objs.nbls.contains_key(&n) {
            continue;
        }
        // SAFETY: registered NBL.
        let next = unsafe { (*(n as *const NET_BUFFER_LIST)).Next } as usize;
        let expected = order.get(i + 1).copied().unwrap_or(0);
        if next != expected {
            w.violate(
                Rule::R3,
                format!(
                    "RESOURCES indication: NBL {} of {} ({n:#x}) links to {next:#x} instead of {expected:#x} when FilterReceiveNetBufferLists returned",
                    i + 1,
                    order.len()
                ),
            );
            break;
        }
    }
    let mut release = Vec::new();
    for &n in order {
        let Some(rec) = objs.nbls.get(&n) else { continue };
        match rec.owner {
            Owner::Filter => release.push(n),
            Owner::Above => {
                w.violate(
                    Rule::R4,
                    format!("{} was indicated up without RESOURCES and not back when FilterReceiveNetBufferLists returned", describe(rec, n)),
                );
                // The protocol keeps it; it will return it, and then the miniport frees it.
            }
            Owner::Miniport => release.push(n), // already reported by NdisFReturnNetBufferLists (R2)
            other => {
                w.violate(
                    Rule::R2,
                    format!(
                        "{} is {:?} after the RESOURCES indication returned",
                        describe(rec, n),
                        other
                    ),
                );
            }
        }
    }
    for n in release {
        objs.release_nbl(n);
    }
    let _ = a;
}

/// The protocol receives `nbls` (owner Above, or back to the filter at once with RESOURCES).
fn deliver_up(w: &World, a: &Adapter, nbls: &[usize], resources: bool) {
    let chain = w.chains.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let mut frames = Vec::with_capacity(nbls.len());
    let mut held = Vec::new();
    {
        let mut objs = lock(&w.objs);
        for &n in nbls {
            // SAFETY: registered NBL (checked by the caller).
            let nb = unsafe { (*(n as *const NET_BUFFER_LIST)).FirstNetBuffer };
            // SAFETY: as above.
            let bytes = unsafe { nbl::read_nb(&objs, nb) };
            let rec = objs.nbls.get_mut(&n).expect("registered");
            let origin = if rec.origin.is_own() {
                FrameOrigin::Filter
            } else {
                FrameOrigin::Foreign
            };
            // SAFETY: as above.
            let info =
                unsafe { (*(n as *const NET_BUFFER_LIST)).NetBufferListInfo[Ieee8021QNetBufferListInfo] }
                    as usize;
            match bytes {
                Ok(bytes) => frames.push(RxFrame {
                    bytes,
                    origin,
                    id: rec.id,
                    resources,
                    vlan: (info != 0).then(|| tci_from_ieee8021q_info(info)),
                    chain,
                }),
                Err(e) => {
                    let what = describe(rec, n);
                    w.violate(Rule::N5, format!("{what} indicated up: {e}"));
                }
            }
            if resources {
                // The protocol copied the data; the caller owns the NBL again on return.
                rec.owner = Owner::Filter;
            } else {
                rec.owner = Owner::Above;
                held.push(n);
            }
        }
    }
    // The host stack answers what is addressed to it (no VLAN is configured on it, so
    // tagged frames are not for it).
    let answers: Vec<Vec<u8>> = frames
        .iter()
        .filter(|f| f.vlan.is_none())
        .filter_map(|f| crate::packets::answer(a.cfg.mac, a.cfg.host_ip, &f.bytes))
        .collect();
    let mut p = lock(&a.protocol);
    p.received.extend(frames);
    p.held.extend(held);
    p.replies_queued.extend(answers);
}

/// The host stack sends the answers it queued, if the stack is up (not paused).
fn protocol_send_replies(w: &World, a: &Adapter) -> usize {
    if !matches!(w.module_state(a), ModState::Running | ModState::Detached) {
        return 0;
    }
    let replies = std::mem::take(&mut lock(&a.protocol).replies_queued);
    if replies.is_empty() {
        return 0;
    }
    let ids = protocol_send(w, a, &replies, 0);
    lock(&a.protocol).reply_ids.extend(ids);
    replies.len()
}

/// `NdisFIndicateReceiveNetBufferLists`.
pub(crate) fn f_indicate(w: &World, handle: NDIS_HANDLE, head: *mut NET_BUFFER_LIST, count: u32, flags: u32) {
    const F: &str = "NdisFIndicateReceiveNetBufferLists";
    w.require_max_dispatch(F);
    w.require_no_locks(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return;
    };
    check_flags(w, F, "receive", flags, RECEIVE_FLAGS_KNOWN, 0);
    if w.chars().is_some_and(|c| c.return_nbls.is_none()) {
        w.violate(
            Rule::R13,
            format!("{F} by a filter without a FilterReturnNetBufferLists handler"),
        );
    }
    let resources = flags & NDIS_RECEIVE_FLAGS_RESOURCES != 0;
    let state = w.module_state(a);
    let mut objs = lock(&w.objs);
    let chain = walk_reported(w, &objs, head, F);
    if chain.len() != count as usize {
        w.violate(
            Rule::R9,
            format!(
                "{F}: NumberOfNetBufferLists is {count} but the chain holds {} NBLs",
                chain.len()
            ),
        );
    }
    let mut ok = Vec::with_capacity(chain.len());
    let mut any_own = false;
    for n in chain {
        let rec = objs.nbls.get(&n).expect("walked");
        let what = describe(rec, n);
        match rec.owner {
            Owner::Filter => {}
            Owner::Above => {
                w.violate(
                    if rec.origin.is_own() { Rule::R6 } else { Rule::R1 },
                    format!("{F}: {what} is already indicated up"),
                );
                continue;
            }
            Owner::Below => {
                w.violate(
                    Rule::S4,
                    format!("{F}: {what} is still sent down (not completed)"),
                );
                continue;
            }
            Owner::Miniport | Owner::Protocol => {
                w.violate(Rule::R1, format!("{F}: {what} was already given back"));
                continue;
            }
        }
        // SAFETY: registered NBL.
        let nbs = unsafe { nbl::count_nbs(n) };
        if nbs != 1 {
            w.violate(
                Rule::R10,
                format!("{F}: {what} carries {nbs} NET_BUFFERs (Ethernet receive NBLs carry one)"),
            );
        }
        // SAFETY: registered NBL.
        let source = unsafe { (*(n as *const NET_BUFFER_LIST)).SourceHandle } as usize;
        if rec.origin.is_own() {
            any_own = true;
            if source != handle as usize {
                w.violate(
                    Rule::R11,
                    format!(
                        "{F}: {what} has SourceHandle {source:#x}, not the filter handle {:#x}",
                        handle as usize
                    ),
                );
            }
            check_no_offload(w, F, n, &what);
        } else if let Some(s) = rec.snapshot.as_ref().filter(|s| s.source_handle != source) {
            w.violate(
                Rule::R11,
                format!(
                    "{F}: {what}'s SourceHandle changed from {:#x} to {source:#x}",
                    s.source_handle
                ),
            );
        }
        ok.push(n);
    }
    let (mut own, mut stale) = (0u64, 0u64);
    for &n in &ok {
        let rec = objs.nbls.get_mut(&n).expect("walked");
        rec.owner = Owner::Above;
        if rec.origin.is_own() {
            rec.adapter = a.idx;
            rec.up_with_resources = resources;
            own += 1;
            // SAFETY: a registered NBL the filter is issuing.
            stale += u64::from(unsafe { carries_trip_state(n as *const NET_BUFFER_LIST) });
        }
    }
    drop(objs);
    count_issued_while_pausing(w, a, state, own);
    w.stale_own_nbls
        .fetch_add(stale, std::sync::atomic::Ordering::Relaxed);

    // State rules (R12, R14, ST10).
    if let Some(rule) = datapath_rule(w, a, state, any_own, Path::Receive) {
        let s = state;
        w.violate(
            rule,
            format!(
                "{F} while the module is {s:?}: {}",
                match rule {
                    Rule::R12 => "a filter originates receive indications only while Running (or Restarting)",
                    Rule::ST10 => "a filter should not indicate received data from the Attaching state",
                    _ => "new receives from below should be returned (NdisFReturnNetBufferLists), not passed up",
                }
            ),
        );
    }
    deliver_up(w, a, &ok, resources);
}

/// Counts own NBLs issued while the module is Pausing or Paused although the driver's
/// previous call into NDIS on this thread began after FilterPause returned: whatever the
/// driver checked since then, it could have seen that its pause had begun. On Windows the
/// protocol above is paused by then ([`crate::Stats::own_issued_while_pausing`]; the rules
/// let work that began before the pause finish). An issue that follows its gate check with
/// no call into NDIS between is never counted, whatever another processor does meanwhile.
fn count_issued_while_pausing(w: &World, a: &Adapter, state: ModState, own: u64) {
    if own == 0 || !matches!(state, ModState::Pausing | ModState::Paused) {
        return;
    }
    let pause_returned = lock(&a.module).pause_epoch;
    if crate::tls::previous_call_epoch() >= pause_returned {
        w.own_issued_while_pausing
            .fetch_add(own, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Where an own NBL of the filter was before it came back.
#[derive(Clone, Copy)]
enum Trip {
    /// The protocol held it (an indication).
    Above,
    /// The miniport sent it.
    Below,
}

/// What the simulated stack leaves in an NBL it hands back, as real ones do: the holder's
/// reserved `Flags` bits, an `NblFlags` bit, and an info slot (the protocol's classification
/// handle, the miniport's WFP slot).
const TRIP_MARK: usize = 0x5452_4950_0000;
const TRIP_FLAGS_ABOVE: u32 = 0x0010_0000 & NBL_FLAGS_PROTOCOL_RESERVED;
const TRIP_FLAGS_BELOW: u32 = 0x0000_1000 & NBL_FLAGS_MINIPORT_RESERVED;
/// An attribute bit outside NDIS's reserved ones.
const TRIP_NBL_FLAG: u32 = (1 << 30) & !NDIS_NBL_FLAGS_NDIS_RESERVED;

/// Leaves trip state in `nbl` (see [`TRIP_MARK`]).
///
/// # Safety
/// `nbl` is a registered NBL being handed back to the filter.
unsafe fn leave_trip_state(nbl: *mut NET_BUFFER_LIST, trip: Trip) {
    // SAFETY: caller's contract.
    let n = unsafe { &mut *nbl };
    n.NblFlags |= TRIP_NBL_FLAG;
    match trip {
        Trip::Above => {
            n.Flags |= TRIP_FLAGS_ABOVE;
            n.NetBufferListInfo[ClassificationHandleNetBufferListInfo] = TRIP_MARK as PVOID;
        }
        Trip::Below => {
            n.Flags |= TRIP_FLAGS_BELOW;
            n.NetBufferListInfo[WfpNetBufferListInfo] = TRIP_MARK as PVOID;
        }
    }
}

/// Whether `nbl` still carries trip state the stack left in it ([`crate::Stats::stale_own_nbls`]).
///
/// # Safety
/// `nbl` is a registered NBL.
unsafe fn carries_trip_state(nbl: *const NET_BUFFER_LIST) -> bool {
    // SAFETY: caller's contract.
    let n = unsafe { &*nbl };
    n.NblFlags & TRIP_NBL_FLAG != 0
        || n.Flags & (TRIP_FLAGS_ABOVE | TRIP_FLAGS_BELOW) != 0
        || n.NetBufferListInfo[ClassificationHandleNetBufferListInfo] as usize == TRIP_MARK
        || n.NetBufferListInfo[WfpNetBufferListInfo] as usize == TRIP_MARK
}

/// Which way traffic goes, for [`datapath_rule`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Receive,
    Send,
}

/// The rule the filter breaks by passing on (or, with `own`, originating) traffic in `state`,
/// if any:
/// - Running, and Restarting ("A filter driver can resume indicating received network data
///   immediately after NDIS calls FilterRestart", unless the strictness says otherwise): none;
/// - Pausing or Paused: originating is R12/S9 (FilterPause: "must not originate"); passing on
///   what arrives is allowed by FilterPause ("can pass on calls to its
///   FilterReceiveNetBufferLists") but not what "Pausing a Filter Module" says a filter
///   should do: R14/S12, warnings. Work that began before the pause may finish;
/// - Attaching: ST10 (FilterAttach: "should not make send requests, indicate received data").
fn datapath_rule(w: &World, a: &Adapter, state: ModState, own: bool, path: Path) -> Option<Rule> {
    let (originate, pass_on) = match path {
        Path::Receive => (Rule::R12, Rule::R14),
        Path::Send => (Rule::S9, Rule::S12),
    };
    match state {
        ModState::Running => None,
        ModState::Restarting if w.cfg.strict.datapath_while_restarting => None,
        ModState::Restarting => Some(originate),
        // FilterPause itself originating traffic is new work, whenever it runs.
        ModState::Pausing if own && crate::tls::context_name() == "FilterPause" => Some(originate),
        ModState::Pausing if w.began_before_pause(a) => None,
        ModState::Attaching => Some(Rule::ST10),
        ModState::Pausing | ModState::Paused | ModState::Detached => {
            Some(if own { originate } else { pass_on })
        }
    }
}

/// N10: injected frames carry no checksum or LSO offload information.
fn check_no_offload(w: &World, function: &str, nbl: usize, what: &impl std::fmt::Display) {
    let p = nbl as *const NET_BUFFER_LIST;
    // SAFETY: registered NBL.
    let (csum, lso) = unsafe {
        (
            (*p).NetBufferListInfo[TcpIpChecksumNetBufferListInfo],
            (*p).NetBufferListInfo[TcpLargeSendNetBufferListInfo],
        )
    };
    if !csum.is_null() || !lso.is_null() {
        w.violate(
            Rule::N10,
            format!("{function}: {what} carries checksum/LSO offload information"),
        );
    }
}

/// The protocol returns up to `max` of the receive NBLs it holds (from any number of
/// indications, own and foreign mixed, shuffled) in one chain. Returns how many.
pub(crate) fn protocol_return(w: &World, a: &Adapter, max: usize) -> usize {
    let _busy = w.busy();
    // Returns come from the stack's edge too: none reaches a module being detached.
    let Some(_inside) = a.edges.enter() else {
        return 0;
    };
    let mut take: Vec<usize> = {
        let mut p = lock(&a.protocol);
        let n = p.held.len().min(max);
        p.held.drain(..n).collect()
    };
    if take.is_empty() {
        return 0;
    }
    lock(&w.rng).shuffle(&mut take);
    let (state, ctx) = {
        let m = lock(&a.module);
        (m.state, m.ctx)
    };
    let handler = w.chars().and_then(|c| c.return_nbls);
    let mut objs = lock(&w.objs);
    let (mut own, mut foreign) = (0, 0);
    for n in &take {
        let rec = objs.nbls.get(n).expect("held NBLs are registered");
        if rec.origin.is_own() {
            own += 1
        } else {
            foreign += 1
        }
    }
    let mixed = own > 0 && foreign > 0;
    let bypass = state == ModState::Detached || handler.is_none();
    for n in &take {
        let rec = objs.nbls.get_mut(n).expect("registered");
        rec.owner = if bypass { Owner::Miniport } else { Owner::Filter };
        rec.mixed_return = mixed;
        if rec.origin.is_own() {
            // SAFETY: a registered NBL the protocol is handing back.
            unsafe { leave_trip_state(*n as *mut NET_BUFFER_LIST, Trip::Above) };
        }
    }
    let head = nbl::link(&take);
    let tokens = if bypass {
        Vec::new()
    } else {
        objs.enter_callback(&take)
    };
    drop(objs);
    let irql = w.datapath_irql();
    if bypass {
        miniport_returned(w, a, &take);
        return take.len();
    }
    let Some(ret) = handler else { return take.len() };
    w.call_driver("FilterReturnNetBufferLists", irql, || {
        // SAFETY: the filter's handler, its context and a chain we hand over.
        unsafe { ret(ctx as NDIS_HANDLE, head, dispatch_flag(irql)) }
    });
    lock(&w.objs).leave_callback(&tokens);
    take.len()
}

/// `NdisFReturnNetBufferLists`.
pub(crate) fn f_return(w: &World, handle: NDIS_HANDLE, head: *mut NET_BUFFER_LIST, flags: u32) {
    const F: &str = "NdisFReturnNetBufferLists";
    w.require_max_dispatch(F);
    w.require_no_locks(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return;
    };
    check_flags(w, F, "return", flags, RETURN_FLAGS_KNOWN, RETURN_FLAGS_SWITCH);
    let mut objs = lock(&w.objs);
    let chain = walk_reported(w, &objs, head, F);
    let mut back = Vec::with_capacity(chain.len());
    for n in chain {
        let rec = objs.nbls.get(&n).expect("walked");
        let what = describe(rec, n);
        match rec.origin {
            Origin::Filter { .. } => {
                if rec.mixed_return {
                    w.violate(
                        Rule::R8,
                        format!("{F}: {what} is the filter's own NBL; it came back in a return chain mixing own and foreign NBLs, which must be split by each NBL's SourceHandle (R6: own NBLs are never returned to NDIS)"),
                    );
                } else {
                    w.violate(Rule::R6, format!("{F}: {what} is the filter's own NBL: own NBLs come back through FilterReturnNetBufferLists and are never passed to NdisFReturnNetBufferLists"));
                }
                continue;
            }
            Origin::Protocol => {
                w.violate(Rule::R1, format!("{F}: {what} is a send NBL, not a receive"));
                continue;
            }
            Origin::Miniport => {}
        }
        if rec.rx_resources {
            w.violate(Rule::R2, format!("{F}: {what} was indicated with NDIS_RECEIVE_FLAGS_RESOURCES: the filter never owned it past the callback"));
            continue;
        }
        match rec.owner {
            Owner::Filter => back.push(n),
            Owner::Above => w.violate(
                Rule::R1,
                format!("{F}: {what} is still indicated up (the protocol holds it)"),
            ),
            Owner::Below => w.violate(Rule::S4, format!("{F}: {what} is sent down")),
            Owner::Miniport | Owner::Protocol => w.violate(
                Rule::R1,
                format!("{F}: {what} was already returned (double return)"),
            ),
        }
    }
    for &n in &back {
        if let Some(snap) = objs.nbls.get(&n).and_then(|r| r.snapshot.clone()) {
            // SAFETY: registered NBL.
            let now = unsafe { nbl::snapshot(n as *const NET_BUFFER_LIST) };
            if now != snap {
                w.violate(
                    Rule::S5,
                    format!(
                        "{F}: receive NBL #{} returned with its NET_BUFFER/MDL shape or SourceHandle changed",
                        objs.nbls[&n].id
                    ),
                );
            }
        }
        objs.nbls.get_mut(&n).expect("walked").owner = Owner::Miniport;
    }
    drop(objs);
    miniport_returned(w, a, &back);
}

/// The miniport takes back receive NBLs (and frees them).
fn miniport_returned(w: &World, a: &Adapter, nbls: &[usize]) {
    if nbls.is_empty() {
        return;
    }
    {
        let mut objs = lock(&w.objs);
        for n in nbls {
            objs.release_nbl(*n);
        }
    }
    let mut m = lock(&a.miniport);
    m.rx_outstanding = m.rx_outstanding.saturating_sub(nbls.len());
    m.rx_returned += nbls.len() as u64;
}

// ---------------------------------------------------------------------------------------------
// Send path
// ---------------------------------------------------------------------------------------------

/// The protocol sends `frames` (one NBL each, one chain) with `extra_flags` (e.g.
/// CHECK_FOR_LOOPBACK). Returns their sequence ids.
pub(crate) fn protocol_send(w: &World, a: &Adapter, frames: &[Vec<u8>], extra_flags: u32) -> Vec<u64> {
    assert!(
        extra_flags & SEND_FLAGS_SWITCH == 0,
        "the simulated adapter is not a Hyper-V switch port: no protocol sends switch flags on it"
    );
    let _busy = w.busy();
    if frames.is_empty() {
        return Vec::new();
    }
    let inside = a.edges.enter();
    {
        let mut p = lock(&a.protocol);
        if p.paused || inside.is_none() {
            // A paused protocol sends nothing: what the test hands it goes out when the stack
            // restarts, in order.
            let ids: Vec<u64> = {
                let mut objs = lock(&w.objs);
                frames.iter().map(|_| objs.next_id()).collect()
            };
            p.deferred.push((frames.to_vec(), extra_flags, ids.clone()));
            return ids;
        }
    }
    send_now(w, a, frames, extra_flags, None)
}

/// The protocol is restarted (after a stack pause): it sends what it was given meanwhile.
pub(crate) fn protocol_restart(w: &World, a: &Adapter) {
    // The stack runs again, bottom-up: the miniport indicates again, the protocol sends.
    a.edges.open();
    let deferred = {
        let mut p = lock(&a.protocol);
        p.paused = false;
        std::mem::take(&mut p.deferred)
    };
    for (frames, flags, ids) in deferred {
        send_now(w, a, &frames, flags, Some(&ids));
    }
}

fn send_now(w: &World, a: &Adapter, frames: &[Vec<u8>], extra_flags: u32, given: Option<&[u64]>) -> Vec<u64> {
    let (state, ctx) = {
        let m = lock(&a.module);
        (m.state, m.ctx)
    };
    let handler = w.chars().and_then(|c| c.send);
    let bypass = state == ModState::Detached || handler.is_none();
    let mut objs = lock(&w.objs);
    let mut nbls = Vec::with_capacity(frames.len());
    let mut ids = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let id = match given {
            Some(ids) => ids[i],
            None => objs.next_id(),
        };
        let n = nbl::build_foreign(
            &mut objs,
            f,
            w.cfg.mdl_split,
            a.protocol_handle,
            a.idx,
            Origin::Protocol,
            id,
        );
        let rec = objs.nbls.get_mut(&n).expect("just built");
        rec.send_flags = extra_flags | if bypass { BYPASS_MARK } else { 0 };
        rec.owner = if bypass { Owner::Below } else { Owner::Filter };
        nbls.push(n);
        ids.push(id);
    }
    let head = nbl::link(&nbls);
    let tokens = if bypass {
        Vec::new()
    } else {
        objs.enter_callback(&nbls)
    };
    drop(objs);
    lock(&a.protocol).tx_outstanding += nbls.len();
    let irql = w.datapath_irql();
    let flags = dispatch_flag(irql) | extra_flags;
    if bypass {
        let prev = tls::irql();
        tls::set_irql(irql);
        deliver_down(w, a, &nbls, extra_flags);
        tls::set_irql(prev);
    } else if let Some(send) = handler {
        w.call_driver("FilterSendNetBufferLists", irql, || {
            // SAFETY: the filter's handler, its context, and a chain we hand over.
            unsafe { send(ctx as NDIS_HANDLE, head, NDIS_DEFAULT_PORT_NUMBER, flags) }
        });
        lock(&w.objs).leave_callback(&tokens);
    }
    ids
}

/// `NdisFSendNetBufferLists`.
pub(crate) fn f_send(w: &World, handle: NDIS_HANDLE, head: *mut NET_BUFFER_LIST, flags: u32) {
    const F: &str = "NdisFSendNetBufferLists";
    w.require_max_dispatch(F);
    w.require_no_locks(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return;
    };
    if w.chars().is_some_and(|c| c.send_complete.is_none()) {
        w.violate(
            Rule::S11,
            format!("{F} by a filter without a FilterSendNetBufferListsComplete handler"),
        );
    }
    check_flags(w, F, "send", flags, SEND_FLAGS_KNOWN, SEND_FLAGS_SWITCH);
    let state = w.module_state(a);
    let mut objs = lock(&w.objs);
    let chain = walk_reported(w, &objs, head, F);
    if chain.is_empty() {
        w.violate(Rule::N4, format!("{F} with an empty chain"));
    }
    let mut ok = Vec::with_capacity(chain.len());
    let mut any_own = false;
    for n in chain {
        let rec = objs.nbls.get(&n).expect("walked");
        let what = describe(rec, n);
        match rec.owner {
            Owner::Filter => {}
            Owner::Below => {
                w.violate(
                    Rule::S4,
                    format!("{F}: {what} is already sent down and not completed"),
                );
                continue;
            }
            Owner::Above => {
                w.violate(
                    if rec.origin.is_own() { Rule::R6 } else { Rule::R1 },
                    format!("{F}: {what} is indicated up (the protocol holds it)"),
                );
                continue;
            }
            Owner::Miniport | Owner::Protocol => {
                w.violate(Rule::S1, format!("{F}: {what} was already completed or returned"));
                continue;
            }
        }
        // SAFETY: registered NBL.
        let source = unsafe { (*(n as *const NET_BUFFER_LIST)).SourceHandle } as usize;
        if rec.origin.is_own() {
            any_own = true;
            if source != handle as usize {
                w.violate(
                    Rule::R11,
                    format!(
                        "{F}: {what} has SourceHandle {source:#x}, not the filter handle {:#x}",
                        handle as usize
                    ),
                );
            }
            check_own_send_shape(w, &objs, F, n, &what);
            check_no_offload(w, F, n, &what);
        } else {
            if let Some(s) = rec.snapshot.as_ref().filter(|s| s.source_handle != source) {
                w.violate(
                    Rule::R11,
                    format!(
                        "{F}: {what}'s SourceHandle changed from {:#x} to {source:#x}",
                        s.source_handle
                    ),
                );
            }
            if rec.send_flags & NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK != 0
                && flags & NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK == 0
            {
                w.violate(
                    Rule::S8,
                    format!("{F}: {what} was sent with CHECK_FOR_LOOPBACK, which the filter dropped"),
                );
            }
        }
        ok.push(n);
    }
    let (mut own, mut stale) = (0u64, 0u64);
    for &n in &ok {
        let rec = objs.nbls.get_mut(&n).expect("walked");
        rec.owner = Owner::Below;
        if rec.origin.is_own() {
            rec.adapter = a.idx;
            own += 1;
            // SAFETY: a registered NBL the filter is issuing.
            stale += u64::from(unsafe { carries_trip_state(n as *const NET_BUFFER_LIST) });
        }
    }
    drop(objs);
    count_issued_while_pausing(w, a, state, own);
    w.stale_own_nbls
        .fetch_add(stale, std::sync::atomic::Ordering::Relaxed);

    if let Some(rule) = datapath_rule(w, a, state, any_own, Path::Send) {
        let s = state;
        w.violate(
            rule,
            format!(
                "{F} while the module is {s:?}: {}",
                match rule {
                    Rule::S9 => "a filter originates sends only while Running (or Restarting)",
                    Rule::ST10 => "a filter should not make send requests from the Attaching state",
                    _ => "new sends from above should be completed with NDIS_STATUS_PAUSED, not passed down",
                }
            ),
        );
    }
    deliver_down(w, a, &ok, flags & !DISPATCH_BIT);
}

/// N4/N5 for an own send NBL: at least one NB, each a whole Ethernet frame whose MAC header is
/// in one MDL.
fn check_own_send_shape(
    w: &World,
    objs: &nbl::Objects,
    function: &str,
    n: usize,
    what: &impl std::fmt::Display,
) {
    // SAFETY: registered NBL.
    let mut nb = unsafe { (*(n as *const NET_BUFFER_LIST)).FirstNetBuffer };
    if nb.is_null() {
        w.violate(Rule::N4, format!("{function}: {what} has no NET_BUFFER"));
        return;
    }
    let mut i = 0;
    while !nb.is_null() && i < 64 {
        // SAFETY: an NB of a registered NBL.
        match unsafe { nbl::read_nb(objs, nb) } {
            Err(e) => w.violate(Rule::N5, format!("{function}: {what} NB {i}: {e}")),
            Ok(bytes) if bytes.len() < 14 => w.violate(
                Rule::N4,
                format!(
                    "{function}: {what} NB {i} holds {} bytes, less than an Ethernet header",
                    bytes.len()
                ),
            ),
            // SAFETY: validated by read_nb.
            Ok(_) if unsafe { nbl::first_segment_len(nb) } < 14 => w.violate(
                Rule::N4,
                format!("{function}: {what} NB {i}: the MAC header is split across MDLs"),
            ),
            Ok(_) => {}
        }
        // SAFETY: as above.
        nb = unsafe { (*nb).Next };
        i += 1;
    }
}

/// The miniport takes sends (made with `send_flags`): records them on the wire and completes
/// them (now or later).
fn deliver_down(w: &World, a: &Adapter, nbls: &[usize], send_flags: u32) {
    if nbls.is_empty() {
        return;
    }
    let chain = w.chains.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let mut wire = Vec::with_capacity(nbls.len());
    {
        let objs = lock(&w.objs);
        for &n in nbls {
            let rec = &objs.nbls[&n];
            let origin = if rec.origin.is_own() {
                FrameOrigin::Filter
            } else {
                FrameOrigin::Foreign
            };
            // SAFETY: registered NBL.
            let mut nb = unsafe { (*(n as *const NET_BUFFER_LIST)).FirstNetBuffer };
            // SAFETY: as above.
            let info =
                unsafe { (*(n as *const NET_BUFFER_LIST)).NetBufferListInfo[Ieee8021QNetBufferListInfo] }
                    as usize;
            let mut i = 0;
            while !nb.is_null() && i < 64 {
                // SAFETY: NB of a registered NBL.
                match unsafe { nbl::read_nb(&objs, nb) } {
                    // The miniport inserts the out-of-band 802.1Q tag (hardware tagging).
                    Ok(mut bytes) if info != 0 && bytes.len() >= 12 => {
                        let tag = tci_from_ieee8021q_info(info);
                        let mut t = Vec::with_capacity(4);
                        t.extend_from_slice(&0x8100u16.to_be_bytes());
                        t.extend_from_slice(&tag.to_be_bytes());
                        bytes.splice(12..12, t);
                        wire.push(WireFrame {
                            bytes,
                            origin,
                            id: rec.id,
                            send_flags,
                            chain,
                        })
                    }
                    Ok(bytes) => wire.push(WireFrame {
                        bytes,
                        origin,
                        id: rec.id,
                        send_flags,
                        chain,
                    }),
                    Err(e) => w.violate(Rule::N5, format!("send of {}: {e}", describe(rec, n))),
                }
                // SAFETY: as above.
                nb = unsafe { (*nb).Next };
                i += 1;
            }
        }
    }
    let (sync, pending): (Vec<usize>, Vec<usize>) = {
        let mut rng = lock(&w.rng);
        nbls.iter().partition(|_| match w.cfg.send_completion {
            crate::Completion::Sync => true,
            crate::Completion::Async => false,
            crate::Completion::Mixed => rng.next() & 1 == 0,
        })
    };
    {
        let mut m = lock(&a.miniport);
        m.wire.extend(wire);
        m.pending_sends.extend(pending);
    }
    if !sync.is_empty() {
        complete_sends_now(w, a, sync, tls::irql());
    }
}

/// The miniport completes up to `max` pending sends, shuffled across sends, in one chain.
pub(crate) fn miniport_complete(w: &World, a: &Adapter, max: usize) -> usize {
    let _busy = w.busy();
    // As for returns: no completion reaches a module being detached.
    let Some(_inside) = a.edges.enter() else {
        return 0;
    };
    let mut take: Vec<usize> = {
        let mut m = lock(&a.miniport);
        let n = m.pending_sends.len().min(max);
        m.pending_sends.drain(..n).collect()
    };
    if take.is_empty() {
        return 0;
    }
    lock(&w.rng).shuffle(&mut take);
    let n = take.len();
    complete_sends_now(w, a, take, w.datapath_irql());
    n
}

/// Completes `nbls` (owned by the miniport) to the filter, or straight to the protocol when
/// no filter is in the path.
fn complete_sends_now(w: &World, a: &Adapter, nbls: Vec<usize>, irql: KIRQL) {
    let status = lock(&a.miniport).send_status.unwrap_or(NDIS_STATUS_SUCCESS);
    let (state, ctx) = {
        let m = lock(&a.module);
        (m.state, m.ctx)
    };
    let handler = w.chars().and_then(|c| c.send_complete);
    // Which of these went through the filter? (A send made while no filter was attached
    // completes straight to the protocol even if a filter attached meanwhile.)
    let mut to_filter = Vec::new();
    let mut to_protocol = Vec::new();
    let tokens;
    {
        let mut objs = lock(&w.objs);
        for n in nbls {
            let rec = objs.nbls.get_mut(&n).expect("pending sends are registered");
            rec.below_status = Some(status);
            // SAFETY: registered NBL, owned by the miniport now.
            unsafe { (*(n as *mut NET_BUFFER_LIST)).Status = status };
            let via_filter = match rec.origin {
                Origin::Protocol => rec.send_flags & BYPASS_MARK == 0,
                Origin::Filter { .. } | Origin::Miniport => true,
            };
            if via_filter && state != ModState::Detached && handler.is_some() {
                rec.owner = Owner::Filter;
                if rec.origin.is_own() {
                    // SAFETY: a registered NBL the miniport is handing back.
                    unsafe { leave_trip_state(n as *mut NET_BUFFER_LIST, Trip::Below) };
                }
                to_filter.push(n);
            } else {
                rec.owner = Owner::Protocol;
                to_protocol.push(n);
            }
        }
        tokens = objs.enter_callback(&to_filter);
    }
    if !to_protocol.is_empty() {
        protocol_completed(w, a, &to_protocol);
    }
    if to_filter.is_empty() {
        return;
    }
    let head = nbl::link(&to_filter);
    if let Some(complete) = handler {
        w.call_driver("FilterSendNetBufferListsComplete", irql, || {
            // SAFETY: the filter's handler, its context and a chain we hand back.
            unsafe { complete(ctx as NDIS_HANDLE, head, dispatch_flag(irql)) }
        });
    }
    lock(&w.objs).leave_callback(&tokens);
}

/// Marks (in `send_flags`, above every real flag) a send that did not go through the filter.
pub(crate) const BYPASS_MARK: u32 = 1 << 31;

/// `NdisFSendNetBufferListsComplete`.
pub(crate) fn f_send_complete(w: &World, handle: NDIS_HANDLE, head: *mut NET_BUFFER_LIST, flags: u32) {
    const F: &str = "NdisFSendNetBufferListsComplete";
    w.require_max_dispatch(F);
    w.require_no_locks(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return;
    };
    check_flags(
        w,
        F,
        "send-complete",
        flags,
        SEND_COMPLETE_FLAGS_KNOWN,
        SEND_COMPLETE_FLAGS_SWITCH,
    );
    let mut objs = lock(&w.objs);
    let chain = walk_reported(w, &objs, head, F);
    let mut done = Vec::with_capacity(chain.len());
    for n in chain {
        let rec = objs.nbls.get(&n).expect("walked");
        let what = describe(rec, n);
        match rec.origin {
            Origin::Filter { .. } => {
                w.violate(
                    Rule::S3,
                    format!(
                        "{F}: {what} is the filter's own send: own sends are reclaimed, never completed up"
                    ),
                );
                continue;
            }
            Origin::Miniport => {
                w.violate(
                    Rule::S2,
                    format!("{F}: {what} did not come from FilterSendNetBufferLists"),
                );
                continue;
            }
            Origin::Protocol => {}
        }
        match rec.owner {
            Owner::Filter => {}
            Owner::Below => {
                w.violate(Rule::S4, format!("{F}: {what} is still with the miniport"));
                continue;
            }
            Owner::Protocol | Owner::Miniport => {
                w.violate(
                    Rule::S1,
                    format!("{F}: {what} was already completed (double completion)"),
                );
                continue;
            }
            Owner::Above => {
                w.violate(Rule::S2, format!("{F}: {what} is indicated up"));
                continue;
            }
        }
        // SAFETY: registered NBL.
        let status = unsafe { (*(n as *const NET_BUFFER_LIST)).Status };
        match rec.below_status {
            Some(s) if s != status => w.violate(
                Rule::S6,
                format!("{F}: {what} completed with {status:?} but the miniport completed it with {s:?}"),
            ),
            None if status == STATUS_NEVER_SET => w.violate(
                Rule::S6,
                format!("{F}: {what} completed by the filter without setting NET_BUFFER_LIST_STATUS"),
            ),
            _ => {}
        }
        if let Some(snap) = &rec.snapshot {
            // SAFETY: registered NBL.
            let now = unsafe { nbl::snapshot(n as *const NET_BUFFER_LIST) };
            if &now != snap {
                w.violate(
                    Rule::S5,
                    format!("{F}: {what} completed with its NET_BUFFER/MDL shape or SourceHandle changed"),
                );
            }
        }
        done.push(n);
    }
    for &n in &done {
        objs.nbls.get_mut(&n).expect("walked").owner = Owner::Protocol;
    }
    drop(objs);
    protocol_completed(w, a, &done);
}

/// The protocol takes completed sends back (records their status, frees them).
fn protocol_completed(w: &World, a: &Adapter, nbls: &[usize]) {
    if nbls.is_empty() {
        return;
    }
    let mut completions = Vec::with_capacity(nbls.len());
    {
        let mut objs = lock(&w.objs);
        for &n in nbls {
            // SAFETY: registered NBL.
            let status = unsafe { (*(n as *const NET_BUFFER_LIST)).Status };
            if let Some(rec) = objs.release_nbl(n) {
                completions.push(TxCompletion { id: rec.id, status });
            }
        }
    }
    let mut p = lock(&a.protocol);
    p.tx_outstanding = p.tx_outstanding.saturating_sub(completions.len());
    p.completions.extend(completions);
}

/// Runs every pending completion and return of adapter `a` until none is left. Returns
/// whether anything happened.
pub(crate) fn drain(w: &World, a: &Adapter) -> bool {
    let _busy = w.busy();
    let mut any = false;
    loop {
        let returns = !w.cfg.hostile.hold_receives
            || lock(&a.protocol).releasing
            || w.module_state(a) != ModState::Running;
        let n = miniport_complete(w, a, usize::MAX)
            + if returns {
                protocol_return(w, a, usize::MAX)
            } else {
                0
            }
            + protocol_send_replies(w, a)
            + crate::oid::miniport_complete_oids(w, a);
        if n == 0 {
            return any;
        }
        any = true;
    }
}

/// Rule ST4 (and R1/S1): when a pause completes, the filter holds no foreign NBL of this
/// adapter (outside a callback still running) and none of its own is up or down.
pub(crate) fn check_quiescent(w: &World, a: &Adapter, when: &str) {
    let objs = lock(&w.objs);
    let mut problems: Vec<(Rule, String)> = Vec::new();
    for (&n, rec) in &objs.nbls {
        if rec.adapter != a.idx || rec.callbacks > 0 {
            continue;
        }
        match (rec.origin, rec.owner) {
            (Origin::Miniport, Owner::Filter) => problems.push((
                Rule::R1,
                format!("receive NBL #{} ({n:#x}) is still held by the filter", rec.id),
            )),
            (Origin::Protocol, Owner::Filter) => problems.push((
                Rule::S1,
                format!(
                    "send NBL #{} ({n:#x}) is still held by the filter, not completed",
                    rec.id
                ),
            )),
            (Origin::Filter { .. }, Owner::Above) => {
                problems.push((Rule::ST4, format!("own NBL {n:#x} is still indicated up")))
            }
            (Origin::Filter { .. }, Owner::Below) => {
                problems.push((Rule::ST4, format!("own NBL {n:#x} is still sent down")))
            }
            _ => {}
        }
    }
    drop(objs);
    problems.sort_by(|x, y| x.1.cmp(&y.1));
    for (rule, msg) in problems.into_iter().take(8) {
        w.violate(rule, format!("{when}: {msg}"));
    }
}
