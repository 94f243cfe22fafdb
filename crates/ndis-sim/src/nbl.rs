//! NBLs, NBs and MDLs: allocation (for the miniport and protocol, and from the filter's
//! pools), the ownership table every handoff updates, shape snapshots (rule S5) and
//! validated reading of frame data (rule N5).

use std::mem::{offset_of, size_of};
use std::ptr;

use ndis_sys::*;

use crate::mem::{Block, Quarantine};
use crate::world::HandleKind;

/// The most NBLs the simulator follows in one chain before calling it a loop.
pub(crate) const MAX_CHAIN: usize = 1 << 20;
/// `Status` of a fresh NBL: lets S6 see whether the filter set a status.
pub(crate) const STATUS_NEVER_SET: NDIS_STATUS = NDIS_STATUS(0x5A5A_5A5A);

/// The `NetBufferListInfo` slots of the NBLs ndis.sys itself allocates (Windows 10 1903 and
/// later, from its public symbols: a 0x180-byte NET_BUFFER_LIST on x64). A driver sees only
/// the slots of the NDIS version it registered ([`crate::lifecycle::nbl_info_slots`]).
pub(crate) const NDIS_SYS_INFO_SLOTS: usize = 29;
/// The bytes of an NBL as ndis.sys allocates it.
pub(crate) const NBL_BYTES: usize =
    align16(offset_of!(NET_BUFFER_LIST, NetBufferListInfo) + NDIS_SYS_INFO_SLOTS * size_of::<PVOID>());
/// What an info slot beyond the driver's version holds (its index in the low bits), and must
/// still hold whenever the NBL changes hands (rule N11).
const BEYOND_SLOT_FILL: usize = 0xB0B0_5107_0000_0000;

/// The info slots of `nbl` beyond the driver's `visible` ones, filled.
///
/// # Safety
/// `nbl` was allocated by the simulator ([`NBL_BYTES`]).
pub(crate) unsafe fn fill_beyond_slots(nbl: *mut NET_BUFFER_LIST, visible: usize) {
    let info = nbl
        .cast::<u8>()
        .wrapping_add(offset_of!(NET_BUFFER_LIST, NetBufferListInfo))
        .cast::<usize>();
    for i in visible.min(NDIS_SYS_INFO_SLOTS)..NDIS_SYS_INFO_SLOTS {
        // SAFETY: inside the NBL_BYTES the simulator allocated.
        unsafe { info.add(i).write(BEYOND_SLOT_FILL | i) };
    }
}

/// The first info slot beyond the driver's `visible` ones that is no longer as filled, and
/// what it holds.
///
/// # Safety
/// As for [`fill_beyond_slots`].
pub(crate) unsafe fn touched_beyond_slot(
    nbl: *const NET_BUFFER_LIST,
    visible: usize,
) -> Option<(usize, usize)> {
    let info = nbl
        .cast::<u8>()
        .wrapping_add(offset_of!(NET_BUFFER_LIST, NetBufferListInfo))
        .cast::<usize>();
    (visible.min(NDIS_SYS_INFO_SLOTS)..NDIS_SYS_INFO_SLOTS).find_map(|i| {
        // SAFETY: inside the NBL_BYTES the simulator allocated.
        let v = unsafe { info.add(i).read() };
        (v != BEYOND_SLOT_FILL | i).then_some((i, v))
    })
}

/// Where an NBL was allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The miniport below (a receive).
    Miniport,
    /// The protocol above (a send).
    Protocol,
    /// The filter's pool (`pool` is the pool handle).
    Filter { pool: usize },
}

impl Origin {
    pub fn is_own(self) -> bool {
        matches!(self, Origin::Filter { .. })
    }
}

/// Who holds an NBL right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    Miniport,
    Protocol,
    /// The filter module (given to it by a callback, or allocated by it).
    Filter,
    /// Indicated up: the protocol holds it.
    Above,
    /// Sent down: the miniport holds it.
    Below,
}

/// The shape of one NET_BUFFER and its MDL chain, for S5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NbShape {
    pub addr: usize,
    pub next: usize,
    pub mdl_chain: usize,
    pub current_mdl: usize,
    pub current_mdl_offset: u32,
    pub data_offset: u32,
    pub data_length: u32,
    /// (mdl, next, byte count, mapped va)
    pub mdls: Vec<(usize, usize, u32, usize)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub source_handle: usize,
    pub nbs: Vec<NbShape>,
}

pub(crate) struct NblRec {
    /// Sequence number of foreign frames (what the tests match on); 0 for own NBLs.
    pub id: u64,
    pub adapter: usize,
    pub origin: Origin,
    pub owner: Owner,
    /// The memory of a simulator-allocated NBL (with its NB, MDLs and data) or of an own
    /// NBL (with its context and NB).
    pub block: Option<Block>,
    /// Foreign NBLs: the shape they were created with.
    pub snapshot: Option<Snapshot>,
    /// Foreign receive NBL indicated with RESOURCES.
    pub rx_resources: bool,
    /// Own NBL indicated up with RESOURCES (R7).
    pub up_with_resources: bool,
    /// Status the miniport completed it with, if it went below.
    pub below_status: Option<NDIS_STATUS>,
    /// The protocol's send flags (S8).
    pub send_flags: u32,
    /// Delivered to the filter inside a return chain mixing own and foreign NBLs (R8).
    pub mixed_return: bool,
    /// Number of callbacks that handed it to the filter and are still running (excluded from
    /// the "held at pause" check: the callback will dispose of it).
    pub callbacks: u32,
    /// Unique per record (addresses are reused once quarantine lets go of them).
    pub generation: u64,
}

pub(crate) struct PoolRec {
    /// The NDIS handle the pool was allocated with.
    pub owner_handle: usize,
    pub owner_kind: HandleKind,
    pub params: NET_BUFFER_LIST_POOL_PARAMETERS,
    pub live: usize,
}

pub(crate) struct MdlRec {
    /// The MDL structure's own memory if allocated by NdisAllocateMdl; None when it is part
    /// of a simulator NBL block.
    pub block: Option<Block>,
    pub by_filter: bool,
}

/// Handles, pools, NBLs and MDLs.
pub(crate) struct Objects {
    pub handles: crate::AddrMap<HandleKind>,
    pub dead_handles: crate::AddrMap<HandleKind>,
    pub kept: Vec<Block>,
    pub pools: crate::AddrMap<PoolRec>,
    pub nbls: crate::AddrMap<NblRec>,
    pub mdls: crate::AddrMap<MdlRec>,
    pub quarantine: Quarantine,
    /// NBLs freed recently (their memory is still quarantined, so the address is not reused):
    /// a second handoff of one is reported as what it is (double return, double completion).
    pub freed: crate::AddrMap<(Origin, u64)>,
    next_id: u64,
    /// NBLs the filter allocated, ever (benchmarks).
    pub filter_nbl_allocations: u64,
    /// NBLs the filter freed, ever.
    pub filter_nbl_frees: u64,
    next_generation: u64,
    /// The info slots the registered driver sees (26 for NDIS 6.50).
    pub info_slots: usize,
    /// The minor NDIS version the driver registered (for messages).
    pub registered_minor: u8,
}

impl Objects {
    pub fn new() -> Objects {
        Objects {
            handles: Default::default(),
            dead_handles: Default::default(),
            kept: Vec::new(),
            pools: Default::default(),
            nbls: Default::default(),
            mdls: Default::default(),
            quarantine: Quarantine::new(8192),
            freed: Default::default(),
            next_id: 0,
            filter_nbl_allocations: 0,
            filter_nbl_frees: 0,
            next_generation: 0,
            info_slots: crate::lifecycle::nbl_info_slots(50),
            registered_minor: 50,
        }
    }

    /// A fresh, unique, non-null handle value.
    pub fn new_handle(&mut self, kind: HandleKind) -> usize {
        let b = Block::new(16, 0);
        let h = b.addr();
        self.kept.push(b);
        self.handles.insert(h, kind);
        h
    }

    pub fn kill_handle(&mut self, h: usize) {
        if let Some(k) = self.handles.remove(&h) {
            self.dead_handles.insert(h, k);
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Inserts a record, giving it a fresh generation.
    pub fn insert_nbl(&mut self, addr: usize, mut rec: NblRec) {
        self.next_generation += 1;
        rec.generation = self.next_generation;
        self.nbls.insert(addr, rec);
    }

    /// Marks `nbls` as handed to the filter by a callback about to run; returns the tokens
    /// for [`leave_callback`](Self::leave_callback).
    pub fn enter_callback(&mut self, nbls: &[usize]) -> Vec<(usize, u64)> {
        nbls.iter()
            .filter_map(|n| {
                let r = self.nbls.get_mut(n)?;
                r.callbacks += 1;
                Some((*n, r.generation))
            })
            .collect()
    }

    /// The callback that received `tokens` has returned.
    pub fn leave_callback(&mut self, tokens: &[(usize, u64)]) {
        for (n, g) in tokens {
            if let Some(r) = self.nbls.get_mut(n).filter(|r| r.generation == *g) {
                r.callbacks = r.callbacks.saturating_sub(1);
            }
        }
    }

    /// Removes an NBL and its MDLs from the tables, quarantining its memory.
    pub fn release_nbl(&mut self, addr: usize) -> Option<NblRec> {
        let mut rec = self.nbls.remove(&addr)?;
        if let Some(s) = &rec.snapshot {
            for nb in &s.nbs {
                for m in &nb.mdls {
                    if self.mdls.get(&m.0).is_some_and(|r| r.block.is_none()) {
                        self.mdls.remove(&m.0);
                    }
                }
            }
        }
        if let Some(b) = rec.block.take() {
            for gone in self.quarantine.put(b) {
                self.freed.remove(&gone);
            }
            self.freed.insert(addr, (rec.origin, rec.id));
        }
        Some(rec)
    }
}

const fn align16(n: usize) -> usize {
    (n + 15) & !15
}

/// Builds a foreign NBL (one NB) holding `frame`. With `split`, the data starts at a
/// non-zero offset inside the first MDL and spans several MDLs, like a real stack's.
/// Returns the NBL address; the caller inserts the record.
pub(crate) fn build_foreign(
    objs: &mut Objects,
    frame: &[u8],
    split: bool,
    source_handle: usize,
    adapter: usize,
    origin: Origin,
    id: u64,
) -> usize {
    // Segment sizes: headroom in the first MDL, then pieces (MAC header kept whole: N4).
    let headroom: usize = if split { 32 } else { 0 };
    let mut pieces: Vec<usize> = Vec::new();
    if split && frame.len() > 40 {
        let first = 14 + (frame.len() - 14) / 3;
        let second = (frame.len() - first) / 2;
        pieces.extend([first, second, frame.len() - first - second]);
    } else {
        pieces.push(frame.len());
    }
    let nmdl = pieces.len();
    let nbl_off = 0;
    let nb_off = NBL_BYTES;
    let mdl_off = nb_off + align16(size_of::<NET_BUFFER>());
    let data_off = align16(mdl_off + nmdl * size_of::<MDL>());
    let total = data_off + headroom + frame.len();
    let block = Block::new(total, 0);
    let base = block.addr();
    let nbl = (base + nbl_off) as *mut NET_BUFFER_LIST;
    let nb = (base + nb_off) as *mut NET_BUFFER;

    // Data (headroom first: the first MDL covers headroom + first piece).
    let data = (base + data_off) as *mut u8;
    // SAFETY: the block holds `headroom + frame.len()` bytes from `data_off`.
    unsafe {
        data.write_bytes(0xEE, headroom);
        ptr::copy_nonoverlapping(frame.as_ptr(), data.add(headroom), frame.len());
    }
    let mut va = base + data_off;
    let mut mdl_addrs = Vec::with_capacity(nmdl);
    for (i, piece) in pieces.iter().enumerate() {
        let mdl = (base + mdl_off + i * size_of::<MDL>()) as *mut MDL;
        let len = if i == 0 { headroom + piece } else { *piece };
        // With `split`, the MDLs after the first describe locked pages not mapped into system
        // space (as a stack's zero-copy sends do): a reader must map them
        // (`MmGetSystemAddressForMdlSafe`) before touching their data.
        let mapped = !split || i == 0;
        // SAFETY: `mdl` lies inside the zeroed block.
        unsafe {
            (*mdl).Size = size_of::<MDL>() as i16;
            (*mdl).MdlFlags = if mapped {
                MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA
            } else {
                0
            };
            (*mdl).StartVa = (va & !0xFFF) as PVOID;
            (*mdl).ByteOffset = (va & 0xFFF) as u32;
            (*mdl).ByteCount = len as u32;
            (*mdl).MappedSystemVa = if mapped { va as PVOID } else { ptr::null_mut() };
            (*mdl).Next = ptr::null_mut();
        }
        if i > 0 {
            let prev = mdl_addrs[i - 1] as *mut MDL;
            // SAFETY: inside the block.
            unsafe { (*prev).Next = mdl };
        }
        mdl_addrs.push(mdl as usize);
        va += len;
    }
    // SAFETY: NBL and NB lie inside the zeroed block.
    unsafe {
        (*nb).MdlChain = mdl_addrs[0] as *mut MDL;
        (*nb).CurrentMdl = mdl_addrs[0] as *mut MDL;
        (*nb).CurrentMdlOffset = headroom as u32;
        (*nb).DataOffset = headroom as u32;
        (*nb).DataLength = NET_BUFFER_DATA_LENGTH::new(frame.len() as u32);
        (*nbl).FirstNetBuffer = nb;
        (*nbl).SourceHandle = source_handle as NDIS_HANDLE;
        (*nbl).Status = STATUS_NEVER_SET;
        fill_beyond_slots(nbl, objs.info_slots);
    }
    for m in &mdl_addrs {
        objs.mdls.insert(
            *m,
            MdlRec {
                block: None,
                by_filter: false,
            },
        );
    }
    // SAFETY: just built.
    let snapshot = unsafe { snapshot(nbl) };
    objs.insert_nbl(
        nbl as usize,
        NblRec {
            id,
            adapter,
            origin,
            owner: match origin {
                Origin::Miniport => Owner::Miniport,
                _ => Owner::Protocol,
            },
            block: Some(block),
            snapshot: Some(snapshot),
            rx_resources: false,
            up_with_resources: false,
            below_status: None,
            send_flags: 0,
            mixed_return: false,
            callbacks: 0,
            generation: 0,
        },
    );
    nbl as usize
}

/// Allocates an own NBL with one NB from a filter pool (NdisAllocateNetBufferAndNetBufferList).
pub(crate) fn build_own(
    objs: &mut Objects,
    pool: usize,
    context_size: usize,
    mdl_chain: *mut MDL,
    data_offset: u32,
    data_length: usize,
) -> usize {
    build_own_with(
        objs,
        pool,
        context_size,
        Some((mdl_chain, data_offset, data_length)),
    )
}

/// Allocates an own NBL without a NET_BUFFER (NdisAllocateNetBufferList).
pub(crate) fn build_own_bare(objs: &mut Objects, pool: usize, context_size: usize) -> usize {
    build_own_with(objs, pool, context_size, None)
}

fn build_own_with(
    objs: &mut Objects,
    pool: usize,
    context_size: usize,
    data: Option<(*mut MDL, u32, usize)>,
) -> usize {
    let ctx_off = NBL_BYTES;
    let ctx_total = size_of::<NET_BUFFER_LIST_CONTEXT>() + context_size;
    let nb_off = align16(ctx_off + ctx_total);
    let nb_size = if data.is_some() {
        size_of::<NET_BUFFER>()
    } else {
        0
    };
    let block = Block::new(nb_off + nb_size, 0);
    let base = block.addr();
    let nbl = base as *mut NET_BUFFER_LIST;
    let ctx = (base + ctx_off) as *mut NET_BUFFER_LIST_CONTEXT;
    let nb = (base + nb_off) as *mut NET_BUFFER;
    // SAFETY: the NBL and its context lie inside the zeroed block.
    unsafe {
        (*ctx).Size = context_size as u16;
        (*ctx).Offset = 0;
        (*nbl).Context = if context_size > 0 { ctx } else { ptr::null_mut() };
        (*nbl).NdisPoolHandle = pool as NDIS_HANDLE;
        (*nbl).Status = STATUS_NEVER_SET;
        fill_beyond_slots(nbl, objs.info_slots);
    }
    if let Some((mdl_chain, data_offset, data_length)) = data {
        // SAFETY: the NB lies inside the zeroed block.
        unsafe {
            (*nbl).FirstNetBuffer = nb;
            (*nb).NdisPoolHandle = pool as NDIS_HANDLE;
            (*nb).MdlChain = mdl_chain;
            (*nb).DataOffset = data_offset;
            (*nb).DataLength = NET_BUFFER_DATA_LENGTH::new(data_length as u32);
            // CurrentMdl/CurrentMdlOffset: the MDL holding DataOffset.
            let mut mdl = mdl_chain;
            let mut remaining = data_offset;
            while !mdl.is_null() && remaining >= (*mdl).ByteCount && !(*mdl).Next.is_null() {
                remaining -= (*mdl).ByteCount;
                mdl = (*mdl).Next;
            }
            (*nb).CurrentMdl = mdl;
            (*nb).CurrentMdlOffset = remaining;
        }
    }
    objs.filter_nbl_allocations += 1;
    objs.insert_nbl(
        nbl as usize,
        NblRec {
            id: 0,
            adapter: usize::MAX,
            origin: Origin::Filter { pool },
            owner: Owner::Filter,
            block: Some(block),
            snapshot: None,
            rx_resources: false,
            up_with_resources: false,
            below_status: None,
            send_flags: 0,
            mixed_return: false,
            callbacks: 0,
            generation: 0,
        },
    );
    nbl as usize
}

/// The current shape of an NBL's NET_BUFFERs and MDLs.
///
/// # Safety
/// `nbl` is a live NBL whose NBs and MDLs are live (checked by the caller's tables).
pub(crate) unsafe fn snapshot(nbl: *const NET_BUFFER_LIST) -> Snapshot {
    let mut nbs = Vec::new();
    // SAFETY: caller's contract.
    let mut nb = unsafe { (*nbl).FirstNetBuffer };
    while !nb.is_null() && nbs.len() < 64 {
        // SAFETY: caller's contract.
        let n = unsafe { &*nb };
        let mut mdls = Vec::new();
        let mut m = n.MdlChain;
        while !m.is_null() && mdls.len() < 64 {
            // SAFETY: caller's contract.
            let md = unsafe { &*m };
            mdls.push((
                m as usize,
                md.Next as usize,
                md.ByteCount,
                md.StartVa as usize + md.ByteOffset as usize,
            ));
            m = md.Next;
        }
        nbs.push(NbShape {
            addr: nb as usize,
            next: n.Next as usize,
            mdl_chain: n.MdlChain as usize,
            current_mdl: n.CurrentMdl as usize,
            current_mdl_offset: n.CurrentMdlOffset,
            data_offset: n.DataOffset,
            data_length: n.DataLength.get(),
            mdls,
        });
        nb = n.Next;
    }
    Snapshot {
        // SAFETY: caller's contract.
        source_handle: unsafe { (*nbl).SourceHandle } as usize,
        nbs,
    }
}

/// Reads the data of one NET_BUFFER after checking its offsets against its MDL chain (N5).
/// Every MDL must be one the simulator knows (allocated by it or by NdisAllocateMdl).
///
/// # Safety
/// `nb` is a live NET_BUFFER (of a registered NBL).
pub(crate) unsafe fn read_nb(objs: &Objects, nb: *const NET_BUFFER) -> Result<Vec<u8>, String> {
    // SAFETY: caller's contract.
    let n = unsafe { &*nb };
    let len = n.DataLength.get() as usize;
    let mut mdl = n.MdlChain;
    let mut before_current: Option<usize> = None;
    let mut total = 0usize;
    let mut chain = Vec::new();
    while !mdl.is_null() {
        if !objs.mdls.contains_key(&(mdl as usize)) {
            return Err(format!(
                "MDL {:#x} in the chain was not allocated through NDIS",
                mdl as usize
            ));
        }
        if chain.len() >= 256 {
            return Err("MDL chain longer than 256 entries (a loop?)".into());
        }
        if mdl == n.CurrentMdl {
            before_current = Some(total);
        }
        // SAFETY: a registered, live MDL.
        let m = unsafe { &*mdl };
        // The buffer the MDL describes (mapped or not: the simulator reads it directly).
        chain.push((m.StartVa as usize + m.ByteOffset as usize, m.ByteCount as usize));
        total += m.ByteCount as usize;
        mdl = m.Next;
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    let Some(before) = before_current else {
        return Err(format!(
            "CurrentMdl {:#x} is not in the NB's MDL chain",
            n.CurrentMdl as usize
        ));
    };
    if before + n.CurrentMdlOffset as usize != n.DataOffset as usize {
        return Err(format!(
            "DataOffset {} != {} (bytes before CurrentMdl) + {} (CurrentMdlOffset)",
            n.DataOffset, before, n.CurrentMdlOffset
        ));
    }
    if n.DataOffset as usize + len > total {
        return Err(format!(
            "DataOffset {} + DataLength {} exceeds the {} bytes of the MDL chain",
            n.DataOffset, len, total
        ));
    }
    let mut out = Vec::with_capacity(len);
    let mut skip = n.DataOffset as usize;
    for (va, count) in chain {
        if out.len() == len {
            break;
        }
        if skip >= count {
            skip -= count;
            continue;
        }
        let take = (count - skip).min(len - out.len());
        // SAFETY: a registered MDL maps `count` bytes at `va`.
        let s = unsafe { std::slice::from_raw_parts((va + skip) as *const u8, take) };
        out.extend_from_slice(s);
        skip = 0;
    }
    Ok(out)
}

/// Number of bytes of the first MDL segment available from the data start (for N4: the MAC
/// header must not be split).
///
/// # Safety
/// As for [`read_nb`], after it succeeded.
pub(crate) unsafe fn first_segment_len(nb: *const NET_BUFFER) -> usize {
    // SAFETY: caller's contract.
    let n = unsafe { &*nb };
    if n.CurrentMdl.is_null() {
        return 0;
    }
    // SAFETY: validated by read_nb.
    let count = unsafe { (*n.CurrentMdl).ByteCount } as usize;
    count.saturating_sub(n.CurrentMdlOffset as usize)
}

/// Follows a chain of registered NBLs. Stops at the first unknown address (returned as the
/// error, with the addresses walked so far).
pub(crate) fn walk(objs: &Objects, head: *mut NET_BUFFER_LIST) -> Result<Vec<usize>, (Vec<usize>, usize)> {
    let mut out = Vec::new();
    let mut cur = head as usize;
    while cur != 0 {
        if !objs.nbls.contains_key(&cur) || out.len() >= MAX_CHAIN {
            return Err((out, cur));
        }
        out.push(cur);
        // SAFETY: registered NBLs are live memory owned by the simulator or its pools.
        cur = unsafe { (*(cur as *const NET_BUFFER_LIST)).Next } as usize;
    }
    Ok(out)
}

/// Links `nbls` into a chain (in order) and returns its head.
pub(crate) fn link(nbls: &[usize]) -> *mut NET_BUFFER_LIST {
    for w in nbls.windows(2) {
        // SAFETY: registered NBLs the simulator is handing over.
        unsafe { (*(w[0] as *mut NET_BUFFER_LIST)).Next = w[1] as *mut NET_BUFFER_LIST };
    }
    if let Some(&last) = nbls.last() {
        // SAFETY: as above.
        unsafe { (*(last as *mut NET_BUFFER_LIST)).Next = ptr::null_mut() };
    }
    nbls.first()
        .map_or(ptr::null_mut(), |&h| h as *mut NET_BUFFER_LIST)
}

/// Number of NET_BUFFERs of an NBL (at most 65).
///
/// # Safety
/// `nbl` is registered and live.
pub(crate) unsafe fn count_nbs(nbl: usize) -> usize {
    let mut n = 0;
    // SAFETY: caller's contract.
    let mut nb = unsafe { (*(nbl as *const NET_BUFFER_LIST)).FirstNetBuffer };
    while !nb.is_null() && n <= 64 {
        n += 1;
        // SAFETY: NBs of a live NBL.
        nb = unsafe { (*nb).Next };
    }
    n
}
