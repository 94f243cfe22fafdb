//! Injection: write IRPs become NBLs sent down or indicated up, and come back here.
//!
//! **Slots.** Each adapter has a pool of slots: an NBL (from the module's NBL pool, with its
//! `SourceHandle` set to the filter handle once and for all), an MDL, and a data buffer the
//! driver owns. Slots are made in chunks when a write needs more than are free, up to
//! [`MAX_FRAMES_PER_WRITE`] per adapter, and reused: in steady state an injected frame costs no
//! allocation, and taking or giving back the slots of a whole write is one lock.
//!
//! **Writes.** A write's buffer is the writer's own pages ([`UserBuffer`], direct I/O), read
//! once per field. It is validated completely first (`rxinject_abi::write::parse_source`);
//! then it takes one datapath reference and one slot per frame, or fails before anything is
//! sent (all or nothing). A second pass reads and validates every record again as it copies
//! the frames into the slots (a buffer the writer changed meanwhile stops the write with
//! `STATUS_INVALID_PARAMETER`), their 802.1Q tag (if any) moved
//! into `Ieee8021QNetBufferListInfo`, and issued in chains: Rx frames with
//! `NdisFIndicateReceiveNetBufferLists` (flags 0: the NBLs come back through
//! `FilterReturnNetBufferLists`), Tx frames with `NdisFSendNetBufferLists`. Each chain is
//! issued only while the datapath is open: once `FilterPause` has begun, what is not issued
//! goes back to the pool and the write completes with the frames accepted and
//! `NDIS_STATUS_PAUSED`. The IRP is pended, and its NBLs point at the write's record
//! (`writes.rs`), which makes the write cancellable and lets frames come back after the IRP
//! was cancelled.
//!
//! **Reclaim.** `recv::filter_return` and `send::filter_send_complete` hand back our own NBLs
//! (split from foreign ones by `SourceHandle`, each taken back as the split finds it: one
//! walk); [`Reclaim`] records Tx failures, gives the
//! slots back, counts the frames off their writes (the last completes a write nobody
//! cancelled), and drops the datapath references (which may complete a pending pause).
//! Nothing ever waits: the seed's hang (waiting for a send-complete that never comes for a
//! receive indication) has no place to happen.

use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering;

use ndis_sys::*;
use rxinject_abi::tags::TAG_INJECT_SLOTS;
use rxinject_abi::write::{self, FLAG_TX_LOOPBACK, Source};
use rxinject_abi::{MAX_FRAMES_PER_WRITE, VLAN_TAG_LEN};

use crate::capture;
use crate::device::OpenHandle;
use crate::filter::FilterModule;
use crate::nbl::{self, NblChain};
use crate::writes::{self, WriteRecord};

/// Slots made per allocation.
const CHUNK_SLOTS: usize = 32;
/// NBLs issued per NDIS call at most.
const MAX_CHAIN: u32 = 256;

/// One reusable NBL with its MDL and data buffer.
pub struct Slot {
    nbl: *mut NET_BUFFER_LIST,
    mdl: *mut MDL,
    data: *mut u8,
    capacity: u32,
    /// Free-list link (meaningful only while the slot is free).
    next: *mut Slot,
}

/// A block of slots and their buffers, allocated at once.
#[repr(C)]
struct Chunk {
    next: *mut Chunk,
    slots: [Slot; CHUNK_SLOTS],
    // followed by CHUNK_SLOTS data buffers of `capacity` bytes each
}

/// The per-NBL context (the pool's context area): which slot, which write, which way.
#[repr(C)]
struct NblContext {
    slot: *mut Slot,
    write: *mut WriteRecord,
    rx: u32,
    _reserved: u32,
    _reserved2: u64,
}
const _: () = assert!(core::mem::size_of::<NblContext>() == crate::pool::NBL_CONTEXT_SIZE as usize);

/// The context of one of our slot NBLs.
///
/// # Safety
/// `nbl` is an NBL of a slot, owned by us now (not with NDIS); no other reference to its
/// context is alive.
unsafe fn nbl_context<'a>(nbl: *mut NET_BUFFER_LIST) -> &'a mut NblContext {
    // SAFETY: caller's contract: a valid NBL from our pool, with its context area.
    let area = unsafe { NET_BUFFER_LIST_CONTEXT_DATA_START(nbl) };
    // SAFETY: the context area is NBL_CONTEXT_SIZE bytes, 16-aligned, holding an NblContext
    // written when the slot was made.
    unsafe { &mut *area.cast::<NblContext>() }
}

/// The slot pool of one module (guarded by its lock).
pub struct SlotPool {
    free: *mut Slot,
    free_count: u32,
    total: u32,
    capacity: u32,
    chunks: *mut Chunk,
}

// SAFETY: the raw pointers are only followed under the owning SpinLock (or by the holder of
// slots taken from it).
unsafe impl Send for SlotPool {}

impl SlotPool {
    pub const fn new() -> Self {
        SlotPool {
            free: ptr::null_mut(),
            free_count: 0,
            total: 0,
            capacity: 0,
            chunks: ptr::null_mut(),
        }
    }

    /// Slots in use now.
    pub fn in_use(&self) -> u32 {
        self.total - self.free_count
    }

    fn pop(&mut self, n: u32) -> Option<*mut Slot> {
        if self.free_count < n {
            return None;
        }
        let head = self.free;
        let mut last = head;
        for _ in 1..n {
            // SAFETY: free-list slots are valid; `n <= free_count` entries exist.
            last = unsafe { (*last).next };
        }
        // SAFETY: as above (n >= 1 is ensured by the caller).
        self.free = unsafe { (*last).next };
        // SAFETY: as above.
        unsafe { (*last).next = ptr::null_mut() };
        self.free_count -= n;
        Some(head)
    }

    fn push_list(&mut self, head: *mut Slot, tail: *mut Slot, n: u32) {
        // SAFETY: `tail` ends a list of `n` slots owned by the caller.
        unsafe { (*tail).next = self.free };
        self.free = head;
        self.free_count += n;
    }
}

impl Default for SlotPool {
    fn default() -> Self {
        Self::new()
    }
}

/// The buffer size of the slots for an adapter whose largest untagged frame is `max_frame`
/// bytes: room for a frame that keeps its 802.1Q tag in the data (a tag with TCI 0, which
/// `Ieee8021QNetBufferListInfo` cannot express).
fn slot_capacity(max_frame: u32) -> u32 {
    max_frame.saturating_add(VLAN_TAG_LEN)
}

/// Bytes of a chunk with buffers of `capacity` bytes.
fn chunk_bytes(capacity: u32) -> Option<u32> {
    let header = core::mem::size_of::<Chunk>().next_multiple_of(64);
    u32::try_from(header + CHUNK_SLOTS * capacity as usize).ok()
}

/// Allocates one chunk: memory, MDLs, NBLs. PASSIVE/DISPATCH. Returns the chunk and its slots
/// as a list (head, tail), or None on any failure (everything partial is freed).
fn make_chunk(m: &FilterModule, capacity: u32) -> Option<(*mut Chunk, *mut Slot, *mut Slot)> {
    let bytes = chunk_bytes(capacity)?;
    // SAFETY: an allocation with our module handle.
    let mem = unsafe {
        NdisAllocateMemoryWithTagPriority(m.handle.get(), bytes, TAG_INJECT_SLOTS, NormalPoolPriority)
    };
    let chunk = NonNull::new(mem.cast::<Chunk>())?.as_ptr();
    let data_base = mem
        .cast::<u8>()
        .wrapping_add(core::mem::size_of::<Chunk>().next_multiple_of(64));
    // SAFETY: the block holds a Chunk header: a place inside it.
    let next = unsafe { ptr::addr_of_mut!((*chunk).next) };
    // SAFETY: as above; initialised before use.
    unsafe { next.write(ptr::null_mut()) };
    let mut made = 0;
    let mut ok = true;
    while made < CHUNK_SLOTS {
        let data = data_base.wrapping_add(made * capacity as usize);
        // SAFETY: `data` and `capacity` describe memory inside our allocation.
        let mdl = unsafe { NdisAllocateMdl(m.handle.get(), data.cast(), capacity) };
        if mdl.is_null() {
            ok = false;
            break;
        }
        // SAFETY: our pool (fAllocateNetBuffer, DataSize 0) and a valid MDL chain.
        let nbl = unsafe {
            NdisAllocateNetBufferAndNetBufferList(m.nbl_pool.get(), 0, 0, mdl, 0, capacity as usize)
        };
        if nbl.is_null() {
            // SAFETY: allocated just above, not used.
            unsafe { NdisFreeMdl(mdl) };
            ok = false;
            break;
        }
        // SAFETY: `made` < CHUNK_SLOTS, inside the chunk header.
        let slot = unsafe { ptr::addr_of_mut!((*chunk).slots[made]) };
        // SAFETY: writing a fresh Slot into the chunk; the NBL is ours.
        unsafe {
            slot.write(Slot {
                nbl,
                mdl,
                data,
                capacity,
                next: ptr::null_mut(),
            });
        }
        // SAFETY: a fresh NBL of ours, with the pool's context area.
        unsafe {
            (*nbl).SourceHandle = m.handle.get();
        }
        // SAFETY: as above.
        let ctx = unsafe { NET_BUFFER_LIST_CONTEXT_DATA_START(nbl) }.cast::<NblContext>();
        // SAFETY: the context area is NBL_CONTEXT_SIZE bytes, 16-aligned.
        unsafe {
            ctx.write(NblContext {
                slot,
                write: ptr::null_mut(),
                rx: 0,
                _reserved: 0,
                _reserved2: 0,
            });
        }
        made += 1;
    }
    if !ok {
        // SAFETY: the `made` first slots are initialised and unused.
        unsafe { free_slots(chunk, made) };
        return None;
    }
    // SAFETY: all slots of the chunk are initialised and nobody else sees the chunk yet.
    let slots = unsafe { &mut (*chunk).slots };
    for i in 0..CHUNK_SLOTS - 1 {
        slots[i].next = ptr::addr_of_mut!(slots[i + 1]);
    }
    let head = ptr::addr_of_mut!(slots[0]);
    let tail = ptr::addr_of_mut!(slots[CHUNK_SLOTS - 1]);
    Some((chunk, head, tail))
}

/// Frees the first `n` slots of a chunk and the chunk.
///
/// # Safety
/// The slots are initialised and not in use; the chunk is not referenced afterwards.
unsafe fn free_slots(chunk: *mut Chunk, n: usize) {
    for i in 0..n {
        // SAFETY: caller's contract: slot `i` is initialised.
        let s = unsafe { &(*chunk).slots[i] };
        // SAFETY: our NBL, idle.
        unsafe { NdisFreeNetBufferList(s.nbl) };
        // SAFETY: our MDL, no longer referenced by the freed NBL.
        unsafe { NdisFreeMdl(s.mdl) };
    }
    // SAFETY: allocated with NdisAllocateMemoryWithTagPriority.
    unsafe { NdisFreeMemory(chunk.cast(), 0, 0) };
}

/// Takes `n` slots for a write, growing the pool if needed (PASSIVE_LEVEL). `None` if the
/// pool cannot supply them all (at its bound, or out of memory): the write fails whole.
fn take_slots(m: &FilterModule, n: u32, capacity: u32) -> Option<*mut Slot> {
    loop {
        let short = {
            let mut pool = m.slots.lock();
            if pool.capacity != 0 && pool.capacity < capacity {
                // Buffers too small for this adapter's frames (the MTU grew): refuse rather
                // than truncate. `rebuild_if_too_small` replaces them at the next restart.
                return None;
            }
            if let Some(head) = pool.pop(n) {
                return Some(head);
            }
            let missing = n - pool.free_count;
            if pool.total + missing > MAX_FRAMES_PER_WRITE {
                return None;
            }
            missing
        };
        // Grow outside the lock (allocation calls NDIS), then add under it.
        let chunks = short.div_ceil(CHUNK_SLOTS as u32);
        for _ in 0..chunks {
            let (chunk, head, tail) = make_chunk(m, capacity)?;
            let mut pool = m.slots.lock();
            if pool.total + CHUNK_SLOTS as u32 > MAX_FRAMES_PER_WRITE.next_multiple_of(CHUNK_SLOTS as u32) {
                drop(pool);
                // SAFETY: a fresh chunk nobody else has seen.
                unsafe { free_slots(chunk, CHUNK_SLOTS) };
                return None;
            }
            // SAFETY: the chunk is fresh; linking it into the pool's chunk list.
            unsafe { (*chunk).next = pool.chunks };
            pool.chunks = chunk;
            pool.capacity = capacity;
            pool.total += CHUNK_SLOTS as u32;
            pool.push_list(head, tail, CHUNK_SLOTS as u32);
            m.counters
                .nbls_allocated
                .fetch_add(CHUNK_SLOTS as u64, Ordering::Relaxed);
        }
    }
}

/// Frees every slot of a module (detach, or a restart with a larger MTU).
///
/// # Safety
/// The module is paused: every slot is free and nothing can take one.
pub unsafe fn destroy_slots(m: &FilterModule) {
    let mut chunk = {
        let mut pool = m.slots.lock();
        debug_assert_eq!(pool.free_count, pool.total, "slots still in flight");
        let c = pool.chunks;
        *pool = SlotPool::new();
        c
    };
    while !chunk.is_null() {
        // SAFETY: chunks of this pool, all slots initialised and free.
        let next = unsafe { (*chunk).next };
        // SAFETY: as above.
        unsafe { free_slots(chunk, CHUNK_SLOTS) };
        chunk = next;
    }
    m.counters.nbls_allocated.store(0, Ordering::Relaxed);
}

/// At restart: if the slots' buffers are smaller than the adapter's largest frame now, free
/// them (the module is paused, so all are free); the pool regrows at the next write.
///
/// # Safety
/// As for [`destroy_slots`].
pub unsafe fn rebuild_if_too_small(m: &FilterModule, max_frame: u32) {
    let capacity = m.slots.lock().capacity;
    if capacity != 0 && capacity < slot_capacity(max_frame) {
        // SAFETY: caller's contract.
        unsafe { destroy_slots(m) };
    }
}

// ---- the write path ---------------------------------------------------------------------------

/// Why a write was refused before anything was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NotRunning,
    Invalid(write::WriteError),
    OutOfNbls,
    /// The handle was cleaned up (its last handle closed while this write was dispatched),
    /// or no write record could be had: the status says which.
    Handle(NTSTATUS),
}

impl Refusal {
    /// The status the write completes with.
    pub fn status(self) -> NTSTATUS {
        match self {
            Refusal::NotRunning => NDIS_STATUS_PAUSED.into(),
            Refusal::Invalid(e) if e.is_size() => STATUS_INVALID_BUFFER_SIZE,
            Refusal::Invalid(_) => STATUS_INVALID_PARAMETER,
            Refusal::OutOfNbls => STATUS_INSUFFICIENT_RESOURCES,
            Refusal::Handle(status) => status,
        }
    }
}

/// What became of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// Frames were issued: the IRP is pended (and may already be completed); the dispatch
    /// routine returns STATUS_PENDING.
    Pended,
    /// The buffer held no frame: complete with success and nothing accepted.
    Empty,
    /// Refused before anything was sent: complete with the refusal's status.
    Refused(Refusal),
}

/// Injects the frames of `buf` through module `m`, on behalf of write `irp` of handle `h`.
/// PASSIVE_LEVEL. The caller holds one datapath reference on `m`, which this function takes
/// over: it is released on refusal, and otherwise held by the first frame's NBL.
///
/// Every chain is issued only while the module's datapath is open: once `FilterPause` has
/// begun, the frames not yet issued go back to the pool and the write completes with what
/// was accepted and `NDIS_STATUS_PAUSED`.
///
/// # Safety
/// `irp` is a write IRP of ours, not yet pended; `buf` is its buffer; `h` its handle.
pub unsafe fn write(m: &FilterModule, h: &OpenHandle, irp: *mut IRP, buf: &UserBuffer) -> Written {
    // Read once: both passes judge the frames by the same limit.
    let max_frame = m.max_frame_size();
    let summary = match write::parse_source(buf, max_frame) {
        Ok(s) => s,
        Err(e) => {
            m.leave_datapath();
            return Written::Refused(Refusal::Invalid(e));
        }
    };
    let n = summary.frames;
    if n == 0 {
        m.leave_datapath();
        return Written::Empty;
    }
    // One datapath reference per NBL: the caller's covers the first.
    if n > 1 && !m.datapath.try_acquire_many(n as usize - 1) {
        m.leave_datapath();
        m.counters.writes_not_running.fetch_add(1, Ordering::Relaxed);
        return Written::Refused(Refusal::NotRunning);
    }
    let Some(mut slot) = take_slots(m, n, slot_capacity(max_frame)) else {
        m.leave_datapath_many(n as usize);
        m.counters.writes_out_of_nbls.fetch_add(1, Ordering::Relaxed);
        return Written::Refused(Refusal::OutOfNbls);
    };
    // SAFETY: our write IRP of `h`, in its dispatch routine.
    let rec = match unsafe { writes::begin(h, irp, n as usize) } {
        Ok(r) => r,
        Err(status) => {
            // SAFETY: the `n` slots just taken, unused.
            unsafe { give_back_slots(m, slot, n) };
            m.leave_datapath_many(n as usize);
            return Written::Refused(Refusal::Handle(status));
        }
    };

    // Pended before the first frame can come back (and be completed by it).
    // SAFETY: our IRP (caller's contract), about to be pended.
    unsafe { IoMarkIrpPending(irp) };

    let default_rx = h.direction_is_rx();
    let mut batch = Batch::new(m, h, rec);
    let mut left = n;
    // The second pass: the buffer is the writer's memory, so every record is read (once) and
    // validated again as it is copied out. A buffer that no longer holds the `n` frames the
    // first pass counted was changed by the writer while we read it: what was not issued goes
    // back, and the write fails with STATUS_INVALID_PARAMETER.
    let mut records = write::records(buf, max_frame);
    let mut stop = None;
    while left > 0 {
        let Some(Ok(r)) = records.next() else {
            stop = Some(STATUS_INVALID_PARAMETER);
            break;
        };
        let rx = match r.direction {
            write::DIR_RX => true,
            write::DIR_TX => false,
            _ => default_rx,
        };
        // SAFETY: a slot of ours, not in use; `r` was validated against the max frame size
        // the slots were made for.
        let Some(nbl) = (unsafe { fill(slot, m.handle.get(), buf, &r, rec, rx) }) else {
            stop = Some(STATUS_INVALID_PARAMETER);
            break;
        };
        // SAFETY: `take_slots` gave `n` linked slots and `left` of them are unused.
        slot = unsafe { (*slot).next };
        left -= 1;
        if !batch.add(nbl, rx, r.flags, r.length as usize) {
            // The module began to pause: the chain (with this frame) went back.
            stop = Some(NDIS_STATUS_PAUSED.into());
            break;
        }
    }
    if left > 0 {
        // SAFETY: the rest of the `n` slots, unused, headed by `slot`.
        unsafe { give_back_slots(m, slot, left) };
        m.leave_datapath_many(left as usize);
        // SAFETY: the record counts `left` frames that will never be issued.
        unsafe { writes::frames_back(rec, left as usize) };
    } else if stop.is_none() && records.next().is_some() {
        // Every frame went, but the buffer now holds more than the first pass saw.
        stop = Some(STATUS_INVALID_PARAMETER);
    }
    batch.flush();
    let Batch {
        issued,
        rx_frames,
        tx_frames,
        bytes,
        ..
    } = batch;
    h.counters.write_accepted(rx_frames, tx_frames, bytes);
    // SAFETY: the record is alive (the IRP's reference).
    unsafe { (*rec).set_accepted(issued as usize) };
    // A chain the pause kept back at the last flush stops the write too.
    let stop = stop.or((issued < u64::from(n)).then(|| NDIS_STATUS_PAUSED.into()));
    if let Some(status) = stop {
        // SAFETY: as above.
        unsafe { (*rec).record_failure(status) };
        if status == NDIS_STATUS_PAUSED.into() {
            m.counters.writes_not_running.fetch_add(1, Ordering::Relaxed);
        }
    }
    // SAFETY: every frame was issued or given back: queue the write (cancellable) and drop
    // the issuing count.
    unsafe { writes::issued(rec) };
    Written::Pended
}

/// A write's buffer: the writer's own pages, mapped into system space (direct I/O). Another
/// thread of the writer may change them while the driver reads ("Using Direct I/O"), so no
/// Rust reference to them is ever formed: a header or tag is fetched once, by a volatile
/// read into a local, and only the local is looked at; frame bytes are copied once into the
/// slot (a byte the writer changes meanwhile arrives old or new, and is never read again).
pub struct UserBuffer {
    base: *const u8,
    len: usize,
}

impl UserBuffer {
    /// A buffer of no bytes.
    pub const EMPTY: UserBuffer = UserBuffer {
        base: ptr::null(),
        len: 0,
    };

    /// # Safety
    /// `base` maps `len` readable bytes for as long as the value is used (the write IRP
    /// they belong to is not completed before then).
    pub unsafe fn new(base: *const u8, len: usize) -> UserBuffer {
        UserBuffer { base, len }
    }

    /// Whether `n` bytes at `offset` are inside the buffer.
    fn holds(&self, offset: usize, n: usize) -> bool {
        offset.checked_add(n).is_some_and(|end| end <= self.len)
    }
}

/// A value read from an address of any alignment.
#[repr(C, packed)]
#[derive(Clone, Copy)]
struct Unaligned<T: Copy>(T);

impl Source for UserBuffer {
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn read<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        if !self.holds(offset, N) {
            return None;
        }
        // SAFETY: inside the mapping (`new`'s contract; checked above).
        let at = unsafe { self.base.add(offset) };
        let mut out = [0u8; N];
        // Volatile: fetched once, whatever the writer does meanwhile; 8 and 4 bytes (headers,
        // tags, padding) in one load each.
        match N {
            8 => {
                // SAFETY: 8 mapped bytes at `at`; `Unaligned` has no alignment to keep.
                let v = unsafe { at.cast::<Unaligned<u64>>().read_volatile() }.0;
                out.copy_from_slice(&v.to_ne_bytes()[..N]);
            }
            4 => {
                // SAFETY: as above, 4 bytes.
                let v = unsafe { at.cast::<Unaligned<u32>>().read_volatile() }.0;
                out.copy_from_slice(&v.to_ne_bytes()[..N]);
            }
            _ => {
                for (i, b) in out.iter_mut().enumerate() {
                    // SAFETY: byte `i` < N of the mapped bytes at `at`.
                    let p = unsafe { at.add(i) };
                    // SAFETY: as above.
                    *b = unsafe { p.read_volatile() };
                }
            }
        }
        Some(out)
    }

    #[inline]
    fn copy(&self, offset: usize, out: &mut [u8]) -> bool {
        if !self.holds(offset, out.len()) {
            return false;
        }
        if !out.is_empty() {
            // SAFETY: inside the mapping (as above).
            let at = unsafe { self.base.add(offset) };
            // SAFETY: `out.len()` mapped bytes at `at`; `out` is driver memory, not the
            // writer's.
            unsafe { ptr::copy_nonoverlapping(at, out.as_mut_ptr(), out.len()) };
        }
        true
    }
}

/// Slots collected one by one into a list, to go back to the pool in one lock.
struct SlotList {
    head: *mut Slot,
    tail: *mut Slot,
    len: u32,
}

impl SlotList {
    const fn new() -> Self {
        SlotList {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            len: 0,
        }
    }

    /// Appends `s`.
    ///
    /// # Safety
    /// `s` is a slot of ours, in no list and not in use.
    unsafe fn push(&mut self, s: *mut Slot) {
        // SAFETY: caller's contract: relinking a slot we own.
        unsafe { (*s).next = ptr::null_mut() };
        if self.tail.is_null() {
            self.head = s;
        } else {
            // SAFETY: the tail is a slot of this list, ours.
            unsafe { (*self.tail).next = s };
        }
        self.tail = s;
        self.len += 1;
    }

    /// Gives the slots back to `m`'s pool.
    fn give_back(self, m: &FilterModule) {
        if self.len > 0 {
            m.slots.lock().push_list(self.head, self.tail, self.len);
        }
    }
}

/// Gives back `n` linked slots (from `head`) that were never issued.
///
/// # Safety
/// `head` heads a list of `n` slots of `m`, taken and not in use (`n` may be 0).
unsafe fn give_back_slots(m: &FilterModule, head: *mut Slot, n: u32) {
    if n == 0 {
        return;
    }
    let mut tail = head;
    for _ in 1..n {
        // SAFETY: caller's contract: `n` linked slots.
        tail = unsafe { (*tail).next };
    }
    m.slots.lock().push_list(head, tail, n);
}

/// Copies the frame of record `r` from `buf` into slot `s` and prepares its NBL: length,
/// tag, no offload information. None if the frame does not fit the slot (it always does:
/// the record was validated against the max frame size the slots were made for).
///
/// # Safety
/// `s` is a slot of ours not in use.
unsafe fn fill(
    s: *mut Slot,
    m_handle: NDIS_HANDLE,
    buf: &UserBuffer,
    r: &write::Record,
    write: *mut WriteRecord,
    rx: bool,
) -> Option<*mut NET_BUFFER_LIST> {
    // SAFETY: caller's contract.
    let slot = unsafe { &*s };
    // A tag moves out of band unless its TCI is 0 (an all-zero Ieee8021QNetBufferListInfo
    // means "no tag"): such a frame keeps its tag in the data. The tag is the one the record
    // read (once); its 4 bytes are not copied again.
    let tci = r.tci.filter(|&t| t != 0);
    let tag = if tci.is_some() { VLAN_TAG_LEN as usize } else { 0 };
    let len = (r.length as usize).checked_sub(tag)?;
    if len > slot.capacity as usize {
        return None;
    }
    // SAFETY: the slot's buffer holds `capacity` >= len bytes, ours while the slot is.
    let dst = unsafe { core::slice::from_raw_parts_mut(slot.data, len) };
    let copied = match tci {
        // Destination and source MAC, then everything after the 4-byte tag.
        Some(_) => {
            let (head, rest) = dst.split_at_mut(12);
            buf.copy(r.data, head) && buf.copy(r.data + 12 + tag, rest)
        }
        // Untagged frames (most) are one copy.
        None => buf.copy(r.data, dst),
    };
    if !copied {
        return None;
    }
    let nbl = slot.nbl;
    // SAFETY: our NBL, idle (back from NDIS or fresh): reset to what a fresh one holds.
    unsafe { reset_nbl(nbl, m_handle, tci) };
    // SAFETY: a field of our NBL.
    let first = unsafe { ptr::addr_of!((*nbl).FirstNetBuffer) };
    // SAFETY: as above.
    let nb = unsafe { first.read() };
    // SAFETY: our NB (lower drivers restore its offsets before giving it back).
    unsafe { (*nb).DataLength.set(len as u32) };
    // SAFETY: one of our slot NBLs, idle.
    let ctx = unsafe { nbl_context(nbl) };
    ctx.write = write;
    ctx.rx = u32::from(rx);
    Some(nbl)
}

/// Resets an own NBL before it is issued again (its link is the chain's it joins next,
/// `NblChain::push_back`): success, our `SourceHandle`, no
/// `NblFlags` and no `Flags` but the bits NDIS reserves in each, no scratch, and every info
/// slot empty but the
/// 802.1Q tag (`tci`). What the protocol or the miniport left in it on its last trip (up,
/// or down) is gone, so an NBL that went up can next go down. Written through raw field
/// pointers, for the info slots of the NDIS version we registered (6.50: 26) only: a
/// reference to the whole structure would cover slots an older NDIS may not allocate.
///
/// # Safety
/// `nbl` is one of our slot NBLs, owned by us and idle.
unsafe fn reset_nbl(nbl: *mut NET_BUFFER_LIST, handle: NDIS_HANDLE, tci: Option<u16>) {
    /// Writes `$v` to field `$f` of `nbl` through a raw pointer (the caller's contract:
    /// a valid NBL of ours).
    macro_rules! set {
        ($f:ident, $v:expr) => {{
            // SAFETY: a field of a valid NBL (contract of `reset_nbl`).
            let field = unsafe { ptr::addr_of_mut!((*nbl).$f) };
            // SAFETY: aligned, and ours to write while we own the NBL.
            unsafe { field.write($v) };
        }};
    }
    set!(Status, NDIS_STATUS_SUCCESS);
    set!(SourceHandle, handle);
    set!(Scratch, ptr::null_mut());
    // NDIS's own bits stay (nbl.h: `NBL_FLAGS_NDIS_RESERVED`, and 0x04-0x80 of `NblFlags`).
    // SAFETY: a field of a valid NBL (contract of `reset_nbl`).
    let flags = unsafe { ptr::addr_of_mut!((*nbl).Flags) };
    // SAFETY: as above.
    let nbl_flags = unsafe { ptr::addr_of_mut!((*nbl).NblFlags) };
    for (field, keep) in [
        (flags, NBL_FLAGS_NDIS_RESERVED),
        (nbl_flags, NDIS_NBL_FLAGS_NDIS_RESERVED),
    ] {
        // SAFETY: aligned, and ours to read and write while we own the NBL.
        let kept = unsafe { field.read() } & keep;
        // SAFETY: as above.
        unsafe { field.write(kept) };
    }
    // SAFETY: as above: the info array's first slot.
    let info = unsafe { ptr::addr_of_mut!((*nbl).NetBufferListInfo) }.cast::<PVOID>();
    // SAFETY: the registered version's MaxNetBufferListInfo slots exist in every NBL NDIS
    // allocates for us.
    unsafe { ptr::write_bytes(info, 0, MaxNetBufferListInfo) };
    if let Some(t) = tci {
        // SAFETY: slot 4 of the slots above.
        let slot = unsafe { info.add(Ieee8021QNetBufferListInfo) };
        // SAFETY: as above.
        unsafe { slot.write(ieee8021q_info_from_tci(t) as PVOID) };
    }
}

/// Frames of one direction (and send flags) collected into a chain, issued when the
/// direction changes, the chain is long enough, or at the end.
struct Batch<'a> {
    m: &'a FilterModule,
    /// The handle whose write this is (for capture's "injected by" mark).
    source: *const OpenHandle,
    /// The write's record (frames given back are counted off it).
    write: *mut WriteRecord,
    chain: NblChain,
    /// Frame bytes in `chain`.
    chain_bytes: u64,
    rx: bool,
    flags: u8,
    /// What was handed to NDIS.
    issued: u64,
    rx_frames: u64,
    tx_frames: u64,
    bytes: u64,
}

impl<'a> Batch<'a> {
    fn new(m: &'a FilterModule, source: &OpenHandle, write: *mut WriteRecord) -> Self {
        Batch {
            m,
            source: ptr::from_ref(source),
            write,
            chain: NblChain::new(),
            chain_bytes: 0,
            rx: false,
            flags: 0,
            issued: 0,
            rx_frames: 0,
            tx_frames: 0,
            bytes: 0,
        }
    }

    /// Adds a filled NBL (`bytes` of frame), issuing the chain first if the direction or the
    /// flags change or it is long enough. False if the module began to pause: the chain and
    /// this NBL were given back, and nothing more may be added.
    fn add(&mut self, nbl: *mut NET_BUFFER_LIST, rx: bool, flags: u8, bytes: usize) -> bool {
        let issue_first =
            !self.chain.is_empty() && (rx != self.rx || flags != self.flags || self.chain.len() >= MAX_CHAIN);
        let ok = !issue_first || self.flush();
        self.rx = rx;
        self.flags = flags;
        // SAFETY: an NBL we just filled, in no other chain.
        unsafe { self.chain.push_back(nbl) };
        self.chain_bytes += bytes as u64;
        if !ok {
            self.give_back();
        }
        ok
    }

    /// Issues the chain, if the module's datapath is still open; otherwise gives it back.
    /// Returns whether it was issued (or empty).
    fn flush(&mut self) -> bool {
        if self.chain.is_empty() {
            return true;
        }
        // The gate: nothing is issued once FilterPause has begun (it closes the datapath
        // before it waits for what is out). Checked before the capture tap, and again after
        // it as the last thing before the call (the tap calls NDIS; between the last check
        // and the call there is none). A pause beginning in that last instant on another
        // processor cannot be excluded without holding a lock across the call, which NDIS
        // forbids; the write's datapath references still keep the pause from completing.
        if self.m.datapath.is_closed() {
            self.give_back();
            return false;
        }
        let direction = if self.rx {
            capture::Direction::Inbound
        } else {
            capture::Direction::Outbound
        };
        capture::tap(self.m, self.chain.head(), direction, self.source);
        if self.m.datapath.is_closed() {
            // (Captured, but not injected: the capture shows the write's intent.)
            self.give_back();
            return false;
        }
        let chain = core::mem::take(&mut self.chain);
        let n = u64::from(chain.len());
        self.issued += n;
        self.bytes += core::mem::take(&mut self.chain_bytes);
        let h = self.m.handle.get();
        // Counted as out before NDIS has them (see `FilterModule::own_rx_out`): a return on
        // another processor that sees them sees the count.
        let out = if self.rx {
            &self.m.own_rx_out
        } else {
            &self.m.own_tx_out
        };
        out.fetch_add(n as usize, Ordering::SeqCst);
        if self.rx {
            self.rx_frames += n;
            self.m.counters.rx_injected.fetch_add(n, Ordering::Relaxed);
            // SAFETY: our NBLs, each one NB, count = chain length, PASSIVE_LEVEL (flags 0), no
            // lock held. They come back through FilterReturnNetBufferLists.
            unsafe {
                NdisFIndicateReceiveNetBufferLists(h, chain.head(), NDIS_DEFAULT_PORT_NUMBER, chain.len(), 0)
            };
        } else {
            let flags = if self.flags & FLAG_TX_LOOPBACK != 0 {
                NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK
            } else {
                0
            };
            self.tx_frames += n;
            self.m.counters.tx_injected.fetch_add(n, Ordering::Relaxed);
            // SAFETY: our NBLs, PASSIVE_LEVEL (no DISPATCH flag), no lock held. They come back
            // through FilterSendNetBufferListsComplete.
            unsafe { NdisFSendNetBufferLists(h, chain.head(), NDIS_DEFAULT_PORT_NUMBER, flags) };
        }
        true
    }

    /// Gives the chain's slots back unissued, with their datapath references and their
    /// counts on the write's record.
    fn give_back(&mut self) {
        let chain = core::mem::take(&mut self.chain);
        self.chain_bytes = 0;
        let n = chain.len();
        if n == 0 {
            return;
        }
        let mut slots = SlotList::new();
        // SAFETY: our NBLs, never issued; `iter` reads links before yielding.
        for nbl in unsafe { nbl::iter(chain.head()) } {
            // SAFETY: one of our slot NBLs, ours.
            let ctx = unsafe { nbl_context(nbl) };
            ctx.write = ptr::null_mut();
            // SAFETY: its slot, ours and in no list.
            unsafe { slots.push(ctx.slot) };
        }
        slots.give_back(self.m);
        self.m.leave_datapath_many(n as usize);
        // SAFETY: the record counts these `n` frames, which will never be issued (its
        // issuing count keeps it from completing here).
        unsafe { writes::frames_back(self.write, n as usize) };
    }
}

// ---- reclaim ----------------------------------------------------------------------------------

/// Takes back own NBLs NDIS handed to us (from FilterSendNetBufferListsComplete, with a
/// status each, or from FilterReturnNetBufferLists), IRQL <= DISPATCH: one by one as the
/// walk that splits them from foreign ones finds them ([`Reclaim::add`], called by
/// `nbl::split_own_with`: the chain is walked once), then all at once ([`Reclaim::finish`]).
pub struct Reclaim<'m> {
    m: &'m FilterModule,
    send_complete: bool,
    /// Their slots (as many as NBLs taken back).
    slots: SlotList,
    // The writes these NBLs belong to, counted off once the slots are back (runs of NBLs of
    // one write are counted together): the current run's write, and how many NBLs came
    // before the run.
    current: *mut WriteRecord,
    run_start: u32,
    tx_failed: u64,
    back: WritesBack,
}

impl<'m> Reclaim<'m> {
    /// `send_complete`: the NBLs come from FilterSendNetBufferListsComplete, with a status
    /// each; otherwise from FilterReturnNetBufferLists.
    pub fn new(m: &'m FilterModule, send_complete: bool) -> Self {
        Reclaim {
            m,
            send_complete,
            slots: SlotList::new(),
            current: ptr::null_mut(),
            run_start: 0,
            tx_failed: 0,
            back: WritesBack::new(),
        }
    }

    /// Takes back `nbl`.
    ///
    /// # Safety
    /// `nbl` is one of this module's slots, just handed back by NDIS, taken back once.
    #[inline(always)]
    pub unsafe fn add(&mut self, nbl: *mut NET_BUFFER_LIST) {
        // SAFETY: one of our slot NBLs, just handed back to us (caller's contract). Its
        // `write` is left as it is: `fill` sets it before the NBL goes out again.
        let ctx = unsafe { nbl_context(nbl) };
        let write = ctx.write;
        if self.send_complete {
            // SAFETY: our NBL, back from below with the lower driver's status.
            let status = unsafe { (*nbl).Status };
            if !status.is_success() {
                self.tx_failed += 1;
                // SAFETY: the record is alive while this NBL is counted on it.
                unsafe { (*write).record_failure(status.into()) };
            }
        }
        if write != self.current {
            let n = self.slots.len;
            self.back.push(self.current, (n - self.run_start) as usize);
            self.current = write;
            self.run_start = n;
        }
        // SAFETY: its slot, ours again and in no list.
        unsafe { self.slots.push(ctx.slot) };
    }

    /// Gives the slots back, counts off their writes and the NBLs out.
    pub fn finish(mut self) {
        let (m, n) = (self.m, self.slots.len);
        if n == 0 {
            return;
        }
        self.back.push(self.current, (n - self.run_start) as usize);
        if self.send_complete {
            m.counters.tx_completed.fetch_add(u64::from(n), Ordering::Relaxed);
            m.counters.tx_failed.fetch_add(self.tx_failed, Ordering::Relaxed);
        } else {
            m.counters.rx_returned.fetch_add(u64::from(n), Ordering::Relaxed);
        }
        self.slots.give_back(m);
        self.back.count_off_all();
        // Reclaimed: no longer out (before the rundown: the module may go with it).
        let out = if self.send_complete {
            &m.own_tx_out
        } else {
            &m.own_rx_out
        };
        out.fetch_sub(n as usize, Ordering::SeqCst);
        // Last: this may complete a pending pause, after which the module may go away.
        m.leave_datapath_many(n as usize);
    }
}

/// Writes some of whose NBLs came back in one reclaim, with how many: counted off once the
/// slots are back and no lock is held (which may complete them). Bounded without
/// allocation: beyond the inline capacity they are counted off at once (still outside any
/// lock).
struct WritesBack {
    writes: [(*mut WriteRecord, usize); 16],
    len: usize,
}

impl WritesBack {
    fn new() -> Self {
        WritesBack {
            writes: [(ptr::null_mut(), 0); 16],
            len: 0,
        }
    }

    fn push(&mut self, write: *mut WriteRecord, count: usize) {
        // An empty run (the one before the first NBL) has no record; any other has one.
        if count == 0 {
            return;
        }
        debug_assert!(!write.is_null(), "a run of NBLs without a write");
        if self.len == self.writes.len() {
            // SAFETY: `count` NBLs of this live record came back; no lock is held here.
            unsafe { writes::frames_back(write, count) };
        } else {
            self.writes[self.len] = (write, count);
            self.len += 1;
        }
    }

    fn count_off_all(&mut self) {
        for &(write, count) in &self.writes[..self.len] {
            // SAFETY: as in `push`.
            unsafe { writes::frames_back(write, count) };
        }
        self.len = 0;
    }
}
