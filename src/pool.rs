//! The per-module NBL pool: created in `FilterAttach`, destroyed in `FilterDetach`, and the
//! one place own NBLs are given back to when NDIS returns them.

use ndis_sys::*;
use rxinject_abi::tags::TAG_NBL_POOL;

use crate::driver::Handle;
use crate::filter::FilterModule;
use crate::nbl::{self, NblChain};

/// Bytes of per-NBL context the driver reserves in every NBL it allocates (rounded to
/// `MEMORY_ALLOCATION_ALIGNMENT`, rule N2).
pub const NBL_CONTEXT_SIZE: u16 = 16;
const _: () = assert!((NBL_CONTEXT_SIZE as usize).is_multiple_of(MEMORY_ALLOCATION_ALIGNMENT));

/// The parameters of the module's pool: NBLs with one `NET_BUFFER` each, no data area
/// (frame data lives in driver-owned buffers described by MDLs), our context, our tag.
pub const fn pool_parameters() -> NET_BUFFER_LIST_POOL_PARAMETERS {
    NET_BUFFER_LIST_POOL_PARAMETERS {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_DEFAULT,
            NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
            NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
        ),
        ProtocolId: NDIS_PROTOCOL_ID_DEFAULT,
        fAllocateNetBuffer: TRUE,
        ContextSize: NBL_CONTEXT_SIZE,
        PoolTag: TAG_NBL_POOL,
        DataSize: 0,
    }
}

/// Creates the pool for a module being attached. IRQL <= DISPATCH_LEVEL.
pub fn create(ndis_filter_handle: Handle) -> Option<Handle> {
    let mut params = pool_parameters();
    // SAFETY: valid parameters; the handle is the module's NDIS handle.
    let pool = unsafe { NdisAllocateNetBufferListPool(ndis_filter_handle.get(), &mut params) };
    (!pool.is_null()).then(|| Handle::new(pool))
}

/// Frees a pool.
///
/// # Safety
/// `pool` came from [`create`] and every NBL allocated from it has been freed.
pub unsafe fn destroy(pool: Handle) {
    // SAFETY: the caller's contract.
    unsafe { NdisFreeNetBufferListPool(pool.get()) };
}

/// Takes back own NBLs that NDIS returned (send-complete or return handler): frees them and
/// drops the datapath reference each one held, completing a pending pause after the last.
///
/// # Safety
/// Every NBL of `own` was allocated from `module`'s pool and has just been handed back.
pub unsafe fn reclaim(module: &FilterModule, own: NblChain) {
    let n = own.len() as usize;
    // SAFETY: the chain is ours (caller's contract); the next link is read before freeing.
    for nbl in unsafe { nbl::iter(own.head()) } {
        // SAFETY: an own NBL, back from NDIS, not referenced elsewhere.
        unsafe { NdisFreeNetBufferList(nbl) };
    }
    module.leave_datapath_many(n);
}
