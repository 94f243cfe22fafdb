//! OID requests (O rules), status indications and PnP events.

use std::mem::size_of;

use ndis_sys::*;

use crate::mem::Block;
use crate::rules::Rule;
use crate::world::{Adapter, ModState, World, lock};

/// The result counts of a request (the ones a filter must copy back: rule O2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OidCounts {
    pub bytes_written: u32,
    pub bytes_read: u32,
    pub bytes_needed: u32,
}

/// What the protocol got back for an OID request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidResult {
    pub status: NDIS_STATUS,
    pub counts: OidCounts,
    /// For queries: the first `bytes_written` bytes of the information buffer.
    pub data: Vec<u8>,
}

/// A query or a set.
#[derive(Clone, Debug)]
pub enum OidKind {
    Query { buffer_len: u32 },
    Set { data: Vec<u8> },
}

struct OriginalRec {
    adapter: usize,
    /// The request memory (kept alive while outstanding).
    _block: Block,
    completions: u32,
    status: Option<NDIS_STATUS>,
    /// Counts the miniport set on the clone that carried this request.
    expected: Option<OidCounts>,
}

struct CloneRec {
    adapter: usize,
    original: usize,
    block: Block,
    at_miniport: bool,
}

/// A request the filter allocated itself and sent with `NdisFOidRequest`.
struct OwnRec {
    adapter: usize,
    request_id: usize,
}

#[derive(Default)]
pub(crate) struct OidTable {
    originals: crate::AddrMap<OriginalRec>,
    clones: crate::AddrMap<CloneRec>,
    /// The filter's own requests at the miniport.
    own: crate::AddrMap<OwnRec>,
    next_id: usize,
}

pub(crate) fn live_clones(w: &World) -> usize {
    lock(&w.oids).clones.len()
}

fn counts_of(req: &NDIS_OID_REQUEST) -> OidCounts {
    // SAFETY (union reads): RequestType selects the view; every view is plain integers.
    if req.RequestType == NdisRequestSetInformation {
        // SAFETY: see above.
        let s = unsafe { req.DATA.SET_INFORMATION };
        OidCounts {
            bytes_written: 0,
            bytes_read: s.BytesRead,
            bytes_needed: s.BytesNeeded,
        }
    } else {
        // SAFETY: see above.
        let q = unsafe { req.DATA.QUERY_INFORMATION };
        OidCounts {
            bytes_written: q.BytesWritten,
            bytes_read: 0,
            bytes_needed: q.BytesNeeded,
        }
    }
}

/// The protocol above `a` issues an OID request and waits for its completion.
pub(crate) fn protocol_oid(w: &World, a: &Adapter, oid: NDIS_OID, kind: OidKind) -> OidResult {
    let _busy = w.busy();
    let (buffer_len, set_data) = match &kind {
        OidKind::Query { buffer_len } => (*buffer_len, None),
        OidKind::Set { data } => (data.len() as u32, Some(data.clone())),
    };
    let info = Block::new(buffer_len as usize, 0);
    if let Some(d) = &set_data {
        // SAFETY: the block holds `buffer_len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), info.ptr::<u8>(), d.len()) };
    }
    let block = Block::new(size_of::<NDIS_OID_REQUEST>(), 0);
    let req = block.ptr::<NDIS_OID_REQUEST>();
    let id = {
        let mut t = lock(&w.oids);
        t.next_id += 1;
        t.next_id
    };
    // SAFETY: a zeroed block of the right size and alignment.
    unsafe {
        (*req).Header = NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_OID_REQUEST,
            NDIS_OID_REQUEST_REVISION_2,
            NDIS_SIZEOF_OID_REQUEST_REVISION_2,
        );
        (*req).RequestType = if set_data.is_some() {
            NdisRequestSetInformation
        } else {
            NdisRequestQueryInformation
        };
        (*req).RequestId = id as PVOID;
        (*req).RequestHandle = a.protocol_handle as NDIS_HANDLE;
        (*req).DATA.QUERY_INFORMATION.Oid = oid;
        (*req).DATA.QUERY_INFORMATION.InformationBuffer = info.ptr();
        (*req).DATA.QUERY_INFORMATION.InformationBufferLength = buffer_len;
    }
    let addr = req as usize;
    lock(&w.oids).originals.insert(
        addr,
        OriginalRec {
            adapter: a.idx,
            _block: block,
            completions: 0,
            status: None,
            expected: None,
        },
    );
    let (state, ctx) = {
        let m = lock(&a.module);
        (m.state, m.ctx)
    };
    let handler = w.chars().and_then(|c| c.oid_request);
    let status = match (state, handler) {
        (ModState::Detached, _) | (_, None) => {
            // SAFETY: our request.
            let (st, counts) = unsafe { miniport_process(a, &mut *req) };
            lock(&w.oids).originals.get_mut(&addr).expect("ours").expected = Some(counts);
            st
        }
        (_, Some(f)) => w.call_driver("FilterOidRequest", PASSIVE_LEVEL, || {
            // SAFETY: the filter's handler with its context and our request.
            unsafe { f(ctx as NDIS_HANDLE, req) }
        }),
    };
    let final_status = if status == NDIS_STATUS_PENDING {
        let status_of = || lock(&w.oids).originals.get(&addr).and_then(|r| r.status);
        if w.settle(|| status_of().is_some()) {
            status_of().unwrap_or(NDIS_STATUS_REQUEST_ABORTED)
        } else {
            w.violate(
                Rule::O1,
                format!("FilterOidRequest pended OID {oid:#010x} and never completed it (nothing left in the machine could complete it)"),
            );
            NDIS_STATUS_REQUEST_ABORTED
        }
    } else {
        if lock(&w.oids)
            .originals
            .get(&addr)
            .is_some_and(|r| r.completions > 0)
        {
            w.violate(Rule::O1, format!("FilterOidRequest returned {status:?} after completing the request with NdisFOidRequestComplete"));
        }
        status
    };
    // SAFETY: our request, no longer with the filter.
    let counts = counts_of(unsafe { &*req });
    if set_data.is_none() && counts.bytes_written > buffer_len {
        w.violate(
            Rule::O3,
            format!(
                "OID {oid:#010x}: BytesWritten {} exceeds the {buffer_len}-byte buffer",
                counts.bytes_written
            ),
        );
    }
    let n = (counts.bytes_written.min(buffer_len)) as usize;
    // SAFETY: the info block holds `buffer_len` bytes.
    let data = unsafe { std::slice::from_raw_parts(info.ptr::<u8>(), n) }.to_vec();
    lock(&w.oids).originals.remove(&addr);
    OidResult {
        status: final_status,
        counts,
        data,
    }
}

/// The miniport's OID handling: current address, maximum frame size, packet filter.
///
/// # Safety
/// `req` is a valid request with a valid information buffer.
unsafe fn miniport_process(a: &Adapter, req: &mut NDIS_OID_REQUEST) -> (NDIS_STATUS, OidCounts) {
    // SAFETY: the query and set views share Oid/InformationBuffer/InformationBufferLength.
    let (oid, buf, len) = unsafe {
        let q = &req.DATA.QUERY_INFORMATION;
        (q.Oid, q.InformationBuffer.cast::<u8>(), q.InformationBufferLength)
    };
    let query = req.RequestType == NdisRequestQueryInformation;
    if !query {
        // SAFETY: the buffer holds `len` bytes (the request's contract).
        let data = unsafe { std::slice::from_raw_parts(buf.cast_const(), len as usize) };
        let (status, read, needed) = miniport_set(a, oid, data);
        req.DATA.SET_INFORMATION.BytesRead = read;
        req.DATA.SET_INFORMATION.BytesNeeded = needed;
        return (
            status,
            OidCounts {
                bytes_read: read,
                bytes_needed: needed,
                ..Default::default()
            },
        );
    }
    let u32_le = |v: u32| Some(v.to_le_bytes().to_vec());
    let mtu = a.mtu.load(std::sync::atomic::Ordering::SeqCst);
    let answer: Option<Vec<u8>> = match oid {
        OID_802_3_CURRENT_ADDRESS | OID_802_3_PERMANENT_ADDRESS => Some(a.cfg.mac.to_vec()),
        OID_GEN_MAXIMUM_FRAME_SIZE | OID_GEN_MAXIMUM_LOOKAHEAD | OID_GEN_CURRENT_LOOKAHEAD => u32_le(mtu),
        OID_GEN_MAXIMUM_TOTAL_SIZE => u32_le(mtu + 14),
        OID_GEN_CURRENT_PACKET_FILTER => u32_le(lock(&a.miniport).packet_filter),
        OID_GEN_HARDWARE_STATUS => u32_le(NdisHardwareStatusReady),
        OID_GEN_MEDIA_SUPPORTED | OID_GEN_MEDIA_IN_USE => u32_le(a.cfg.medium),
        OID_GEN_PHYSICAL_MEDIUM | OID_GEN_PHYSICAL_MEDIUM_EX => u32_le(NdisPhysicalMedium802_3),
        OID_GEN_MEDIA_CONNECT_STATUS => u32_le(NdisMediaStateConnected),
        // In units of 100 bit/s.
        OID_GEN_LINK_SPEED => u32_le(u32::try_from(a.cfg.link_speed / 100).unwrap_or(u32::MAX)),
        OID_GEN_LINK_STATE => Some(link_state(a.cfg.link_speed)),
        OID_GEN_VENDOR_DESCRIPTION => Some(b"rxinject simulated Ethernet\0".to_vec()),
        OID_802_3_MAXIMUM_LIST_SIZE => u32_le(crate::world::MULTICAST_LIST_SIZE as u32),
        OID_802_3_MULTICAST_LIST => Some(lock(&a.miniport).multicast.concat()),
        _ => None,
    };
    let Some(answer) = answer else {
        return (NDIS_STATUS_NOT_SUPPORTED, OidCounts::default());
    };
    if (len as usize) < answer.len() {
        req.DATA.QUERY_INFORMATION.BytesNeeded = answer.len() as u32;
        return (
            NDIS_STATUS_BUFFER_TOO_SHORT,
            OidCounts {
                bytes_needed: answer.len() as u32,
                ..Default::default()
            },
        );
    }
    // SAFETY: the buffer holds `len` >= answer.len() bytes.
    unsafe { std::ptr::copy_nonoverlapping(answer.as_ptr(), buf, answer.len()) };
    req.DATA.QUERY_INFORMATION.BytesWritten = answer.len() as u32;
    req.DATA.QUERY_INFORMATION.BytesNeeded = 0;
    (
        NDIS_STATUS_SUCCESS,
        OidCounts {
            bytes_written: answer.len() as u32,
            ..Default::default()
        },
    )
}

/// `NDIS_LINK_STATE` (revision 1) of a connected full-duplex link of `speed` bit/s.
fn link_state(speed: u64) -> Vec<u8> {
    let mut v = vec![0u8; usize::from(NDIS_SIZEOF_LINK_STATE_REVISION_1)];
    v[0] = NDIS_OBJECT_TYPE_DEFAULT;
    v[1] = NDIS_LINK_STATE_REVISION_1;
    v[2..4].copy_from_slice(&NDIS_SIZEOF_LINK_STATE_REVISION_1.to_le_bytes());
    v[4..8].copy_from_slice(&(MediaConnectStateConnected).to_le_bytes());
    v[8..12].copy_from_slice(&(MediaDuplexStateFull).to_le_bytes());
    v[16..24].copy_from_slice(&speed.to_le_bytes());
    v[24..32].copy_from_slice(&speed.to_le_bytes());
    v
}

/// The miniport's sets: the packet filter and the multicast list. Returns the status, the
/// bytes read and the bytes needed.
fn miniport_set(a: &Adapter, oid: NDIS_OID, data: &[u8]) -> (NDIS_STATUS, u32, u32) {
    match oid {
        OID_GEN_CURRENT_PACKET_FILTER => {
            let Some(v) = data.get(..4) else {
                return (NDIS_STATUS_INVALID_LENGTH, 0, 4);
            };
            let filter = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            if filter & !(crate::world::SUPPORTED_PACKET_FILTERS | NDIS_PACKET_TYPE_ALL_LOCAL) != 0 {
                return (NDIS_STATUS_NOT_SUPPORTED, 0, 0);
            }
            lock(&a.miniport).packet_filter = filter;
            (NDIS_STATUS_SUCCESS, 4, 0)
        }
        OID_802_3_MULTICAST_LIST => {
            if !data.len().is_multiple_of(6) {
                return (NDIS_STATUS_INVALID_LENGTH, 0, (data.len() / 6 + 1) as u32 * 6);
            }
            if data.len() / 6 > crate::world::MULTICAST_LIST_SIZE {
                return (NDIS_STATUS_MULTICAST_FULL, 0, 0);
            }
            lock(&a.miniport).multicast = data
                .chunks_exact(6)
                .map(|c| [c[0], c[1], c[2], c[3], c[4], c[5]])
                .collect();
            (NDIS_STATUS_SUCCESS, data.len() as u32, 0)
        }
        OID_GEN_CURRENT_LOOKAHEAD => match data.get(..4) {
            Some(_) => (NDIS_STATUS_SUCCESS, 4, 0),
            None => (NDIS_STATUS_INVALID_LENGTH, 0, 4),
        },
        _ => (NDIS_STATUS_NOT_SUPPORTED, 0, 0),
    }
}

/// `NdisFOidRequest`.
pub(crate) fn f_oid_request(w: &World, handle: NDIS_HANDLE, req: *mut NDIS_OID_REQUEST) -> NDIS_STATUS {
    const F: &str = "NdisFOidRequest";
    w.require_max_dispatch(F);
    w.require_no_locks(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return NDIS_STATUS_INVALID_PARAMETER;
    };
    match w.module_state(a) {
        ModState::Paused | ModState::Restarting | ModState::Running | ModState::Pausing => {}
        ModState::Attaching => w.violate(Rule::ST10, format!("{F} while the module is Attaching")),
        s => w.violate(Rule::ST6, format!("{F} while the module is {s:?}")),
    }
    let addr = req as usize;
    {
        let mut t = lock(&w.oids);
        if t.originals.contains_key(&addr) {
            drop(t);
            w.violate(Rule::O1, format!("{F}: forwarded the original request; a filter forwards a clone from NdisAllocateCloneOidRequest"));
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        if let Some(c) = t.clones.get_mut(&addr) {
            c.at_miniport = true;
        } else {
            // A request the filter originates ("NdisFOidRequest": a filter driver can
            // originate OID requests, in memory it allocated). NDIS serializes what it
            // sends a driver; a filter keeps to one request of its own at a time (O4).
            if t.own.contains_key(&addr) {
                drop(t);
                w.violate(
                    Rule::O1,
                    format!("{F}: request {addr:#x} sent again while still outstanding"),
                );
                return NDIS_STATUS_INVALID_PARAMETER;
            }
            // SAFETY: the filter's request (the caller's contract: a valid NDIS_OID_REQUEST).
            let (header, kind, id) = unsafe { ((*req).Header, (*req).RequestType, (*req).RequestId) };
            if header.Type != NDIS_OBJECT_TYPE_OID_REQUEST
                || header.Revision < NDIS_OID_REQUEST_REVISION_1
                || header.Size < NDIS_SIZEOF_OID_REQUEST_REVISION_1
            {
                drop(t);
                w.violate(
                    Rule::O1,
                    format!("{F}: request {addr:#x} is neither a clone nor a request of the filter's own with a valid NDIS_OID_REQUEST header ({header:?})"),
                );
                return NDIS_STATUS_INVALID_PARAMETER;
            }
            if ![
                NdisRequestQueryInformation,
                NdisRequestSetInformation,
                NdisRequestQueryStatistics,
            ]
            .contains(&kind)
            {
                drop(t);
                return NDIS_STATUS_NOT_SUPPORTED;
            }
            let busy = t.own.values().any(|o| o.adapter == a.idx);
            t.own.insert(
                addr,
                OwnRec {
                    adapter: a.idx,
                    request_id: id as usize,
                },
            );
            if busy {
                drop(t);
                w.violate(
                    Rule::O4,
                    format!("{F}: a second OID request of the filter's own while one is outstanding on this module"),
                );
            }
        }
    }
    // SAFETY: a live clone or own request (checked above).
    let (status, counts) = unsafe { miniport_process(a, &mut *req) };
    {
        let mut t = lock(&w.oids);
        let original = t.clones.get(&addr).map(|c| c.original);
        if let Some(o) = original.and_then(|o| t.originals.get_mut(&o)) {
            o.expected = Some(counts);
        }
    }
    let sync = match w.cfg.oid_completion {
        crate::Completion::Sync => true,
        crate::Completion::Async => false,
        crate::Completion::Mixed => lock(&w.rng).next() & 1 == 0,
    };
    let hold = lock(&a.miniport).hold_oids;
    if sync && !hold {
        let mut t = lock(&w.oids);
        if let Some(c) = t.clones.get_mut(&addr) {
            c.at_miniport = false;
        }
        t.own.remove(&addr);
        status
    } else {
        lock(&a.miniport).oid_pending.push((addr, status));
        NDIS_STATUS_PENDING
    }
}

/// The miniport completes the OID requests it pended. Returns how many.
pub(crate) fn miniport_complete_oids(w: &World, a: &Adapter) -> usize {
    let _busy = w.busy();
    let pending: Vec<(usize, NDIS_STATUS)> = {
        let mut mp = lock(&a.miniport);
        // A miniport holding its requests completes only those cancelled meanwhile.
        let (done, held): (Vec<_>, Vec<_>) = std::mem::take(&mut mp.oid_pending)
            .into_iter()
            .partition(|(_, st)| !mp.hold_oids || *st == NDIS_STATUS_REQUEST_ABORTED);
        mp.oid_pending = held;
        done
    };
    if pending.is_empty() {
        return 0;
    }
    let ctx = lock(&a.module).ctx;
    let handler = w.chars().and_then(|c| c.oid_complete);
    for (req, status) in &pending {
        {
            let mut t = lock(&w.oids);
            if let Some(c) = t.clones.get_mut(req) {
                c.at_miniport = false;
            }
            t.own.remove(req);
        }
        if let Some(f) = handler {
            w.call_driver("FilterOidRequestComplete", PASSIVE_LEVEL, || {
                // SAFETY: the filter's handler, its context and its clone.
                unsafe { f(ctx as NDIS_HANDLE, *req as *mut NDIS_OID_REQUEST, *status) }
            });
        }
    }
    pending.len()
}

/// `NdisFCancelOidRequest`: the miniport completes the pending request with that
/// `RequestId` (a clone carries its original's; an own request its own) with
/// NDIS_STATUS_REQUEST_ABORTED at its next completion round ("MiniportCancelOidRequest").
pub(crate) fn cancel_request(w: &World, a: &Adapter, request_id: usize) {
    let ids: std::collections::HashMap<usize, usize> = {
        let t = lock(&w.oids);
        let own = t.own.iter().map(|(addr, o)| (*addr, o.request_id));
        let clones = t
            .clones
            .iter()
            .filter(|(_, c)| c.adapter == a.idx && c.at_miniport)
            .map(|(addr, _)| {
                // SAFETY: a live clone block.
                (*addr, unsafe { (*(*addr as *const NDIS_OID_REQUEST)).RequestId }
                    as usize)
            });
        own.chain(clones).collect()
    };
    let mut mp = lock(&a.miniport);
    mp.cancels.push(request_id);
    for (req, status) in &mut mp.oid_pending {
        if ids.get(req) == Some(&request_id) {
            *status = NDIS_STATUS_REQUEST_ABORTED;
        }
    }
}

/// `NdisAllocateCloneOidRequest`.
pub(crate) fn clone_request(
    w: &World,
    handle: NDIS_HANDLE,
    req: *mut NDIS_OID_REQUEST,
    out: *mut *mut NDIS_OID_REQUEST,
) -> NDIS_STATUS {
    const F: &str = "NdisAllocateCloneOidRequest";
    w.require_max_dispatch(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return NDIS_STATUS_INVALID_PARAMETER;
    };
    if req.is_null() || out.is_null() {
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    if w.fail_allocation(F) {
        return NDIS_STATUS_RESOURCES;
    }
    let block = Block::new(size_of::<NDIS_OID_REQUEST>(), 0);
    let clone = block.ptr::<NDIS_OID_REQUEST>();
    // SAFETY: copying a valid request into a block of its size.
    unsafe {
        std::ptr::copy_nonoverlapping(req.cast_const(), clone, 1);
        (*clone).SourceReserved = [std::ptr::null_mut(); 2];
        (*clone).MiniportReserved = [std::ptr::null_mut(); 2];
        (*clone).RequestHandle = handle;
        *out = clone;
    }
    lock(&w.oids).clones.insert(
        clone as usize,
        CloneRec {
            adapter: a.idx,
            original: req as usize,
            block,
            at_miniport: false,
        },
    );
    NDIS_STATUS_SUCCESS
}

/// `NdisFreeCloneOidRequest`.
pub(crate) fn free_clone(w: &World, handle: NDIS_HANDLE, req: *mut NDIS_OID_REQUEST) {
    const F: &str = "NdisFreeCloneOidRequest";
    w.require_max_dispatch(F);
    let _ = w.module_adapter(handle, F);
    let mut t = lock(&w.oids);
    match t.clones.remove(&(req as usize)) {
        Some(c) if c.at_miniport => {
            t.clones.insert(req as usize, c);
            drop(t);
            w.violate(Rule::O2, format!("{F}: the clone is still with the miniport"));
        }
        Some(c) => drop(c.block),
        None => {
            drop(t);
            w.violate(Rule::O2, format!("{F}({:#x}): not a live clone", req as usize));
        }
    }
}

/// `NdisFOidRequestComplete`.
pub(crate) fn f_oid_complete(
    w: &World,
    handle: NDIS_HANDLE,
    req: *mut NDIS_OID_REQUEST,
    status: NDIS_STATUS,
) {
    const F: &str = "NdisFOidRequestComplete";
    w.require_max_dispatch(F);
    w.require_no_locks(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return;
    };
    let addr = req as usize;
    let mut t = lock(&w.oids);
    if t.clones.contains_key(&addr) {
        drop(t);
        w.violate(
            Rule::O2,
            format!("{F} on the filter's own clone: complete the original NDIS gave FilterOidRequest"),
        );
        return;
    }
    let clone_alive = t.clones.values().any(|c| c.original == addr);
    let Some(o) = t.originals.get_mut(&addr).filter(|o| o.adapter == a.idx) else {
        drop(t);
        w.violate(
            Rule::O2,
            format!("{F}({addr:#x}): not a request NDIS gave this filter module"),
        );
        return;
    };
    o.completions += 1;
    if o.completions > 1 {
        drop(t);
        w.violate(Rule::O1, format!("{F}: the request was completed twice"));
        return;
    }
    o.status = Some(status);
    let expected = o.expected;
    drop(t);
    if clone_alive {
        w.violate(
            Rule::O2,
            format!("{F}: the original was completed before its clone was freed"),
        );
    }
    if let Some(e) = expected {
        // SAFETY: an outstanding original (ours).
        let got = counts_of(unsafe { &*req });
        if got != e {
            w.violate(
                Rule::O2,
                format!("{F}: result counts not copied back from the clone (clone {e:?}, original {got:?})"),
            );
        }
    }
}

// ---- Status and PnP -------------------------------------------------------------------------

/// The miniport indicates a status (e.g. `NDIS_STATUS_LINK_STATE`) with `payload`.
pub(crate) fn miniport_status(w: &World, a: &Adapter, code: NDIS_STATUS, payload: &[u8]) {
    let buf = Block::new(payload.len(), 0);
    // SAFETY: sized for the payload.
    unsafe { std::ptr::copy_nonoverlapping(payload.as_ptr(), buf.ptr::<u8>(), payload.len()) };
    let block = Block::new(size_of::<NDIS_STATUS_INDICATION>(), 0);
    let ind = block.ptr::<NDIS_STATUS_INDICATION>();
    // SAFETY: a zeroed block of the right size and alignment.
    unsafe {
        (*ind).Header = NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_STATUS_INDICATION,
            NDIS_STATUS_INDICATION_REVISION_1,
            NDIS_SIZEOF_STATUS_INDICATION_REVISION_1,
        );
        (*ind).SourceHandle = a.miniport_handle as NDIS_HANDLE;
        (*ind).StatusCode = code;
        (*ind).StatusBuffer = buf.ptr();
        (*ind).StatusBufferSize = payload.len() as u32;
    }
    let (state, ctx) = {
        let m = lock(&a.module);
        (m.state, m.ctx)
    };
    match (state, w.chars().and_then(|c| c.status)) {
        (ModState::Detached, _) | (_, None) => lock(&a.protocol).statuses.push(code),
        (_, Some(f)) => {
            let irql = w.datapath_irql();
            w.call_driver("FilterStatus", irql, || {
                // SAFETY: the filter's handler, its context and a valid indication.
                unsafe { f(ctx as NDIS_HANDLE, ind) }
            });
        }
    }
}

/// `NdisFIndicateStatus`.
pub(crate) fn f_indicate_status(w: &World, handle: NDIS_HANDLE, ind: *mut NDIS_STATUS_INDICATION) {
    const F: &str = "NdisFIndicateStatus";
    w.require_max_dispatch(F);
    w.require_no_locks(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return;
    };
    if w.module_state(a) == ModState::Attaching {
        w.violate(Rule::ST2, format!("{F} while the module is Attaching"));
    }
    if ind.is_null() {
        w.violate(Rule::ST6, format!("{F}(NULL)"));
        return;
    }
    // SAFETY: a valid indication from the filter.
    let (h, code) = unsafe { ((*ind).Header, (*ind).StatusCode) };
    if h.Type != NDIS_OBJECT_TYPE_STATUS_INDICATION {
        w.violate(Rule::ST6, format!("{F}: header {h:?} is not a status indication"));
        return;
    }
    lock(&a.protocol).statuses.push(code);
}

/// The protocol sends a network PnP event down. Returns the filter's status.
pub(crate) fn protocol_net_pnp(w: &World, a: &Adapter) -> NDIS_STATUS {
    let _busy = w.busy();
    let block = Block::new(128, 0);
    let (state, ctx) = {
        let m = lock(&a.module);
        (m.state, m.ctx)
    };
    match (state, w.chars().and_then(|c| c.net_pnp)) {
        (ModState::Detached, _) | (_, None) => {
            lock(&a.miniport).net_pnp_events += 1;
            NDIS_STATUS_SUCCESS
        }
        (_, Some(f)) => w.call_driver("FilterNetPnPEvent", PASSIVE_LEVEL, || {
            // SAFETY: the filter's handler with an (opaque) notification.
            unsafe { f(ctx as NDIS_HANDLE, block.ptr()) }
        }),
    }
}

/// `NdisFNetPnPEvent`.
pub(crate) fn f_net_pnp(w: &World, handle: NDIS_HANDLE) -> NDIS_STATUS {
    const F: &str = "NdisFNetPnPEvent";
    w.require_passive(F);
    w.require_no_locks(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return NDIS_STATUS_INVALID_PARAMETER;
    };
    lock(&a.miniport).net_pnp_events += 1;
    NDIS_STATUS_SUCCESS
}

/// The miniport notifies a device PnP event.
pub(crate) fn miniport_device_pnp(w: &World, a: &Adapter) {
    let block = Block::new(64, 0);
    let (state, ctx) = {
        let m = lock(&a.module);
        (m.state, m.ctx)
    };
    match (state, w.chars().and_then(|c| c.device_pnp)) {
        (ModState::Detached, _) | (_, None) => lock(&a.miniport).device_pnp_events += 1,
        (_, Some(f)) => w.call_driver("FilterDevicePnPEventNotify", PASSIVE_LEVEL, || {
            // SAFETY: the filter's handler with an (opaque) event.
            unsafe { f(ctx as NDIS_HANDLE, block.ptr()) }
        }),
    }
}

/// `NdisFDevicePnPEventNotify`: the event travels on down (to the miniport).
pub(crate) fn f_device_pnp(w: &World, handle: NDIS_HANDLE) {
    const F: &str = "NdisFDevicePnPEventNotify";
    w.require_passive(F);
    w.require_no_locks(F);
    let Some(a) = w.module_adapter(handle, F) else {
        return;
    };
    lock(&a.miniport).device_pnp_events += 1;
}
