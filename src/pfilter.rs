//! The packet filter, per handle: promiscuous mode (and the other filter types) asked for by
//! capturing handles, merged with the protocols' own.
//!
//! The miniport's filter is the union of what the protocols above set
//! (`OID_GEN_CURRENT_PACKET_FILTER` sets pass through `FilterOidRequest`, which remembers
//! them and sends the union down in the clone's own buffer) and what handles asked for
//! (their sets through `IOCTL_RXINJECT_OID_REQUEST`). A protocol that queries the filter is
//! told its own. When the last handle that asked for a type goes away, the union shrinks
//! back and the miniport is told (`oidreq`'s queue carries that set, with no IRP). Until a
//! protocol has set its filter, the miniport's current one is taken for the protocols'
//! (queried first, before the driver changes anything).

use core::ptr;

use ndis_sys::*;

use crate::device::OpenHandle;
use crate::filter::FilterModule;

/// The filter types a handle may ask for.
pub const HANDLE_BITS: u32 = NDIS_PACKET_TYPE_DIRECTED
    | NDIS_PACKET_TYPE_MULTICAST
    | NDIS_PACKET_TYPE_ALL_MULTICAST
    | NDIS_PACKET_TYPE_BROADCAST
    | NDIS_PACKET_TYPE_PROMISCUOUS;

/// Groups of a multicast list the driver remembers (`OID_802_3_MAXIMUM_LIST_SIZE` is 32 on
/// most NICs; a longer list is taken as "any group").
pub const MULTICAST_GROUPS: usize = 32;

/// The protocols' multicast list, as they last set it (`OID_802_3_MULTICAST_LIST`).
#[derive(Clone, Copy)]
pub struct Groups {
    list: [[u8; 6]; MULTICAST_GROUPS],
    len: usize,
}

impl Groups {
    pub fn contains(&self, dst: &[u8; 6]) -> bool {
        self.list[..self.len].contains(dst)
    }
}

/// A module's packet filter (under the module's `pf` lock).
pub struct PacketFilters {
    /// The protocols' multicast list, if they set one since the driver attached (until then,
    /// and for a list longer than the driver keeps, any group is taken as theirs).
    groups: Option<Groups>,
    /// The protocols' own filter: their last set, or the miniport's filter before the driver
    /// changed it. None until known.
    higher: Option<u32>,
    /// Per filter bit, the handles that asked for it.
    counts: [u32; 32],
    /// What the miniport was last told by a set that succeeded.
    applied: Option<u32>,
}

impl PacketFilters {
    pub const fn new() -> Self {
        PacketFilters {
            groups: None,
            higher: None,
            counts: [0; 32],
            applied: None,
        }
    }

    /// The union of the handles' filters.
    pub fn mine(&self) -> u32 {
        (0..32)
            .filter(|&b| self.counts[b] > 0)
            .fold(0, |acc, b| acc | 1 << b)
    }

    /// What the miniport should have: the protocols' filter and the handles'.
    pub fn desired(&self) -> Option<u32> {
        self.higher.map(|h| h | self.mine())
    }

    pub fn higher(&self) -> Option<u32> {
        self.higher
    }

    /// The protocols' filter, as the miniport reported it before the driver changed it.
    pub fn learn_higher(&mut self, m: &FilterModule, current: u32) {
        self.higher.get_or_insert(current);
        self.applied.get_or_insert(current);
        publish(m, self);
    }

    pub fn applied(&self) -> Option<u32> {
        self.applied
    }

    pub fn set_applied(&mut self, value: u32) {
        self.applied = Some(value);
    }

    fn add(&mut self, bits: u32, delta: i32) {
        for b in 0..32 {
            if bits & 1 << b != 0 {
                self.counts[b] = self.counts[b].saturating_add_signed(delta);
            }
        }
    }
}

impl Default for PacketFilters {
    fn default() -> Self {
        Self::new()
    }
}

/// A handle's part: the module it asked on and the types it asked for.
#[derive(Clone, Copy, Default)]
pub struct HandleFilter {
    module: u64,
    bits: u32,
}

/// Publishes what the receive path needs (`FilterModule::rx_extra`, `rx_higher`) from
/// `pf`, under its lock.
fn publish(m: &FilterModule, pf: &PacketFilters) {
    use core::sync::atomic::Ordering;
    let (extra, higher) = match pf.higher {
        Some(h) => (pf.mine() & !h, h),
        None => (0, 0),
    };
    m.rx_higher.store(higher, Ordering::Relaxed);
    m.rx_extra.store(extra, Ordering::Release);
}

/// Whether the protocols, with packet filter `higher` and multicast list `groups` (None:
/// not known, any group) on an adapter whose address is `mac`, asked for a frame sent to
/// `dst`.
pub fn protocols_want(higher: u32, groups: Option<&Groups>, mac: &[u8; 6], dst: &[u8; 6]) -> bool {
    if higher & NDIS_PACKET_TYPE_PROMISCUOUS != 0 {
        return true;
    }
    if *dst == [0xFF; 6] {
        higher & NDIS_PACKET_TYPE_BROADCAST != 0
    } else if dst[0] & 1 != 0 {
        higher & NDIS_PACKET_TYPE_ALL_MULTICAST != 0
            || (higher & NDIS_PACKET_TYPE_MULTICAST != 0 && groups.is_none_or(|g| g.contains(dst)))
    } else {
        higher & NDIS_PACKET_TYPE_DIRECTED != 0 && dst == mac
    }
}

/// The protocols' multicast list, for the receive path.
pub fn groups(m: &FilterModule) -> Option<Groups> {
    m.pf.lock().groups
}

/// What a handle's set asks for: `NDIS_PACKET_TYPE_ALL_LOCAL` (NDIS's own loopback of local
/// sends, which a filter below the protocols sees anyway) stands for directed, multicast and
/// broadcast; other types than [`HANDLE_BITS`] are not supported.
pub fn normalize(value: u32) -> Option<u32> {
    let v = if value & NDIS_PACKET_TYPE_ALL_LOCAL != 0 {
        (value & !NDIS_PACKET_TYPE_ALL_LOCAL)
            | NDIS_PACKET_TYPE_DIRECTED
            | NDIS_PACKET_TYPE_MULTICAST
            | NDIS_PACKET_TYPE_BROADCAST
    } else {
        value
    };
    (v & !HANDLE_BITS == 0).then_some(v)
}

/// Handle `h` now asks module `m` for `bits` (replacing what it asked before, on `m`).
pub fn set_handle(m: &FilterModule, h: &OpenHandle, bits: u32) {
    let mut pf = m.pf.lock();
    let mut hf = h.packet_filter.lock();
    if hf.module == m.id {
        pf.add(hf.bits, -1);
    }
    pf.add(bits, 1);
    *hf = HandleFilter { module: m.id, bits };
    publish(m, &pf);
}

/// Handle `h` goes away (cleanup): what it asked for is dropped; the module's miniport is
/// told the smaller union, if that changes it.
pub fn remove_handle(h: &OpenHandle) {
    let hf = core::mem::take(&mut *h.packet_filter.lock());
    if hf.bits == 0 {
        return;
    }
    let crate::filter::Acquired::Module(m) = crate::filter::acquire_module(hf.module) else {
        // Gone: its filter went with it. Paused: the datapath reference is refused; the union
        // is made smaller now and told to the miniport at the restart (`restarted`).
        let _ = crate::filter::with_module(hf.module, |m| {
            let mut pf = m.pf.lock();
            pf.add(hf.bits, -1);
            publish(m, &pf);
        });
        return;
    };
    let changed = {
        let mut pf = m.pf.lock();
        pf.add(hf.bits, -1);
        publish(m, &pf);
        pf.desired().is_some_and(|d| Some(d) != pf.applied())
    };
    if changed {
        // The set goes through the module's queue; it holds the reference taken above.
        crate::oidreq::sync_packet_filter(m);
    } else {
        m.leave_datapath();
    }
}

/// The 4 bytes at `buf`, if a buffer of `len` bytes holds them.
///
/// # Safety
/// `buf` is null or holds `len` readable bytes.
unsafe fn read_u32(buf: PVOID, len: u32) -> Option<u32> {
    // SAFETY: caller's contract; an unaligned read of 4 of the `len` bytes.
    (len >= 4 && !buf.is_null()).then(|| unsafe { buf.cast::<u32>().read_unaligned() })
}

/// `FilterRestart` (Running now): a union that changed while the module was paused (a handle
/// went away) is told to the miniport.
pub fn restarted(m: &FilterModule) {
    let stale = {
        let pf = m.pf.lock();
        pf.desired().is_some_and(|d| Some(d) != pf.applied())
    };
    if stale && m.datapath.try_acquire() {
        // The set holds the reference.
        crate::oidreq::sync_packet_filter(m);
    }
}

/// `FilterOidRequest` of a protocol's set of the packet filter: remembers it as the
/// protocols' filter and points the clone at the union, kept in the clone's own
/// `SourceReserved[1]` (the clone is ours until it comes back).
///
/// # Safety
/// `request` is the protocol's request, `clone` our fresh clone of it, not yet sent.
pub unsafe fn intercept_set(m: &FilterModule, request: *mut NDIS_OID_REQUEST, clone: *mut NDIS_OID_REQUEST) {
    // SAFETY: the protocol's request, valid for the call.
    let req = unsafe { &*request };
    // SAFETY: union read: the set view, plain integers and a pointer (checked below).
    let q = unsafe { req.DATA.SET_INFORMATION };
    if req.RequestType != NdisRequestSetInformation || q.Oid != OID_GEN_CURRENT_PACKET_FILTER {
        return;
    }
    // SAFETY: the protocol's information buffer of `InformationBufferLength` bytes.
    let Some(value) = (unsafe { read_u32(q.InformationBuffer, q.InformationBufferLength) }) else {
        return;
    };
    let merged = {
        let mut pf = m.pf.lock();
        pf.higher = Some(value);
        publish(m, &pf);
        value | pf.mine()
    };
    // SAFETY: our fresh clone, not shared yet.
    let c = unsafe { &mut *clone };
    // SourceReserved[1] is pointer-sized: room for the value, in memory that lives as long
    // as the clone.
    let slot = ptr::addr_of_mut!(c.SourceReserved[1]).cast::<u32>();
    // SAFETY: an aligned u32 inside the clone.
    unsafe { slot.write(merged) };
    c.DATA.SET_INFORMATION.InformationBuffer = slot.cast();
    c.DATA.SET_INFORMATION.InformationBufferLength = 4;
}

/// `FilterOidRequestComplete` of a protocol's request: a packet filter set that went
/// through is what the miniport has now; a query is answered with the protocols' own
/// filter, not the union.
///
/// # Safety
/// `original` is the protocol's request and `clone` ours, back from below; the counts are
/// already copied.
pub unsafe fn completed(
    m: &FilterModule,
    original: *mut NDIS_OID_REQUEST,
    clone: *mut NDIS_OID_REQUEST,
    status: NDIS_STATUS,
) {
    if status != NDIS_STATUS_SUCCESS {
        return;
    }
    // SAFETY: our clone, back with us.
    let c = unsafe { &mut *clone };
    // SAFETY: union read: the query and set views share Oid and the buffer fields.
    let cq = unsafe { c.DATA.QUERY_INFORMATION };
    if cq.Oid == OID_802_3_MULTICAST_LIST && c.RequestType == NdisRequestSetInformation {
        // The protocols' groups, as the miniport took them (the clone shares their buffer).
        let len = cq.InformationBufferLength as usize;
        let mut g = Groups {
            list: [[0; 6]; MULTICAST_GROUPS],
            len: len / 6,
        };
        let known = len.is_multiple_of(6)
            && g.len <= MULTICAST_GROUPS
            && (len == 0 || !cq.InformationBuffer.is_null());
        if known && len > 0 {
            // SAFETY: the protocol's buffer of `len` bytes, which fit the list.
            unsafe {
                ptr::copy_nonoverlapping(cq.InformationBuffer.cast::<u8>(), g.list.as_mut_ptr().cast(), len)
            };
        }
        m.pf.lock().groups = known.then_some(g);
        return;
    }
    if cq.Oid != OID_GEN_CURRENT_PACKET_FILTER {
        return;
    }
    let mut pf = m.pf.lock();
    if c.RequestType == NdisRequestSetInformation {
        let own = ptr::addr_of_mut!(c.SourceReserved[1]).cast::<u32>();
        if cq.InformationBuffer == own.cast() {
            // SAFETY: the value `intercept_set` wrote into the clone.
            pf.set_applied(unsafe { own.read() });
        }
        return;
    }
    // SAFETY: the protocol's request, still ours until completed.
    let o = unsafe { &*original };
    // SAFETY: union read, as above.
    let oq = unsafe { o.DATA.QUERY_INFORMATION };
    match pf.higher() {
        Some(higher) if oq.InformationBufferLength >= 4 && !oq.InformationBuffer.is_null() => {
            // SAFETY: the protocol's buffer, which the miniport answered into (the clone
            // shares it): at least 4 bytes.
            unsafe { oq.InformationBuffer.cast::<u32>().write_unaligned(higher) };
        }
        Some(_) => {}
        None => {
            // The protocols' filter, before the driver changed anything.
            // SAFETY: as above.
            if let Some(current) = unsafe { read_u32(oq.InformationBuffer, oq.InformationBufferLength) } {
                pf.learn_higher(m, current);
            }
        }
    }
}
