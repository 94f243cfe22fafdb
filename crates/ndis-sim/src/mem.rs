//! Simulated kernel memory: 16-byte aligned blocks, a table of live pool allocations (for
//! leak and double-free detection), and a quarantine that keeps freed blocks mapped for a
//! while so that a driver touching freed memory corrupts nothing real.

use std::alloc::{self, Layout};
use std::collections::VecDeque;
use std::ptr::NonNull;

/// Filled into fresh pool memory that the driver did not ask to be zeroed, as the checked
/// kernel does, so that reads of uninitialised memory show.
pub(crate) const UNINIT_FILL: u8 = 0xCD;
/// Written over quarantined memory.
pub(crate) const FREED_FILL: u8 = 0xDD;

/// An owned, 16-byte aligned, heap block.
pub(crate) struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the block is plain memory owned by this value; the simulator hands its address to
// driver code on any thread, which is what the kernel does with pool memory.
unsafe impl Send for Block {}
// SAFETY: a shared `&Block` only hands out the address; all access to the memory behind it
// goes through raw pointers under the simulator's locks or the driver's own synchronisation.
unsafe impl Sync for Block {}

impl Block {
    /// A block of `size` bytes (at least 1), filled with `fill`.
    pub fn new(size: usize, fill: u8) -> Block {
        let layout = Layout::from_size_align(size.max(1), 16).expect("block layout");
        // SAFETY: non-zero size.
        let p = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(p) else {
            alloc::handle_alloc_error(layout)
        };
        // SAFETY: fresh allocation of `layout.size()` bytes.
        unsafe { ptr.as_ptr().write_bytes(fill, layout.size()) };
        Block { ptr, layout }
    }

    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    pub fn ptr<T>(&self) -> *mut T {
        self.ptr.as_ptr().cast()
    }

    pub fn size(&self) -> usize {
        self.layout.size()
    }

    /// Overwrites the block with `FREED_FILL` (before quarantine).
    pub fn poison(&self) {
        // SAFETY: the block is ours and `size()` bytes long.
        unsafe { self.ptr.as_ptr().write_bytes(FREED_FILL, self.layout.size()) };
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// Keeps freed blocks alive (poisoned) for a while.
pub(crate) struct Quarantine {
    blocks: VecDeque<Block>,
    limit: usize,
}

impl Quarantine {
    pub fn new(limit: usize) -> Self {
        Quarantine {
            blocks: VecDeque::new(),
            limit,
        }
    }

    /// Quarantines `b`; returns the addresses of blocks released for good to make room.
    pub fn put(&mut self, b: Block) -> Vec<usize> {
        b.poison();
        self.blocks.push_back(b);
        let mut evicted = Vec::new();
        while self.blocks.len() > self.limit {
            if let Some(old) = self.blocks.pop_front() {
                evicted.push(old.addr());
            }
        }
        evicted
    }
}

/// How a pool allocation was made (it must be freed the same way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AllocKind {
    /// `NdisAllocateMemoryWithTagPriority`, with the NDIS handle passed.
    Ndis { handle: usize },
    /// `ExAllocatePool2`.
    Ex,
}

pub(crate) struct Allocation {
    pub block: Block,
    pub tag: u32,
    pub kind: AllocKind,
    /// Sequence number: lets reports list leaks in allocation order.
    pub seq: u64,
}

/// Live pool allocations, by address.
pub(crate) struct MemTable {
    pub live: crate::AddrMap<Allocation>,
    pub quarantine: Quarantine,
    next_seq: u64,
    /// Every allocation ever made (for the allocation-count figures of benchmarks).
    pub total_allocations: u64,
}

impl MemTable {
    pub fn new() -> Self {
        MemTable {
            live: Default::default(),
            quarantine: Quarantine::new(4096),
            next_seq: 0,
            total_allocations: 0,
        }
    }

    pub fn allocate(&mut self, size: usize, tag: u32, kind: AllocKind, zeroed: bool) -> usize {
        let block = Block::new(size, if zeroed { 0 } else { UNINIT_FILL });
        let addr = block.addr();
        self.next_seq += 1;
        self.total_allocations += 1;
        self.live.insert(
            addr,
            Allocation {
                block,
                tag,
                kind,
                seq: self.next_seq,
            },
        );
        addr
    }

    /// Removes and quarantines a live allocation.
    pub fn free(&mut self, addr: usize) -> Option<(u32, AllocKind)> {
        let a = self.live.remove(&addr)?;
        let r = (a.tag, a.kind);
        let _ = self.quarantine.put(a.block);
        Some(r)
    }
}

/// A pool tag as the four characters poolmon shows.
pub fn tag_str(tag: u32) -> String {
    tag.to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
        .collect()
}
