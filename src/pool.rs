//! The per-module NBL pool: created in `FilterAttach`, destroyed in `FilterDetach`. The NBLs
//! allocated from it are the injection slots of `inject.rs`.

use ndis_sys::*;
use rxinject_abi::tags::TAG_NBL_POOL;

use crate::driver::Handle;

/// Bytes of per-NBL context the driver reserves in every NBL it allocates (a multiple of
/// `MEMORY_ALLOCATION_ALIGNMENT`, rule N2): the slot, the write IRP and the direction of an
/// injected frame (`inject.rs`).
pub const NBL_CONTEXT_SIZE: u16 = 32;
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
