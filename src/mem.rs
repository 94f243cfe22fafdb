//! Kernel memory: NDIS allocations for contexts, and the global allocator of the `.sys`.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use ndis_sys::{
    ExAllocatePool2, ExFreePoolWithTag, MEMORY_ALLOCATION_ALIGNMENT, NdisAllocateMemoryWithTagPriority,
    NdisFreeMemory, NormalPoolPriority, POOL_FLAG_NON_PAGED,
};
use rxinject_abi::tags::TAG_GLOBAL_ALLOC;

use crate::driver::Handle;

/// Allocates non-paged, 16-byte aligned memory for one `T` through
/// `NdisAllocateMemoryWithTagPriority` and moves `value` into it. IRQL <= DISPATCH_LEVEL.
///
/// Returns `None` (and drops nothing but `value`) when the pool is exhausted.
pub fn ndis_new<T>(handle: Handle, tag: u32, value: T) -> Option<NonNull<T>> {
    const { assert!(core::mem::align_of::<T>() <= MEMORY_ALLOCATION_ALIGNMENT) };
    let size = u32::try_from(core::mem::size_of::<T>()).ok()?;
    // SAFETY: a plain allocation call; `handle` is an NDIS handle given to us by NDIS.
    let p = unsafe { NdisAllocateMemoryWithTagPriority(handle.get(), size, tag, NormalPoolPriority) };
    let p = NonNull::new(p.cast::<T>())?;
    // SAFETY: fresh allocation of `size_of::<T>()` bytes, aligned to 16 >= align_of::<T>().
    unsafe { p.as_ptr().write(value) };
    Some(p)
}

/// Drops the `T` at `p` and frees it with `NdisFreeMemory`. IRQL <= DISPATCH_LEVEL.
///
/// # Safety
/// `p` came from [`ndis_new`] and is not used afterwards.
pub unsafe fn ndis_delete<T>(p: NonNull<T>) {
    // SAFETY: the caller's contract: `p` holds a live `T` we own.
    unsafe { ptr::drop_in_place(p.as_ptr()) };
    // SAFETY: allocated by NdisAllocateMemoryWithTagPriority (length/flags are ignored for
    // such memory and documented to be 0).
    unsafe { NdisFreeMemory(p.as_ptr().cast(), 0, 0) };
}

/// The global allocator of the `.sys`: non-paged pool via `ExAllocatePool2`, tag `Rxga`.
///
/// The driver's own structures are allocated explicitly (above); this serves `alloc` users.
/// Alignments above `MEMORY_ALLOCATION_ALIGNMENT` are refused (null), never
/// under-aligned.
pub struct KernelAllocator;

// SAFETY: ExAllocatePool2 returns memory aligned to MEMORY_ALLOCATION_ALIGNMENT or null, and
// larger alignments are refused, so every non-null result satisfies `layout`.
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > MEMORY_ALLOCATION_ALIGNMENT {
            return ptr::null_mut();
        }
        // SAFETY: IRQL <= DISPATCH_LEVEL is allowed for non-paged pool; the pool zeroes the
        // memory (no POOL_FLAG_UNINITIALIZED), which GlobalAlloc permits.
        unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, layout.size(), TAG_GLOBAL_ALLOC).cast() }
    }

    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        // SAFETY: `p` came from `alloc` above with the same tag.
        unsafe { ExFreePoolWithTag(p.cast(), TAG_GLOBAL_ALLOC) };
    }
}
