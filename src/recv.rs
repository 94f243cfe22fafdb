//! The Rx path: `FilterReceiveNetBufferLists` and `FilterReturnNetBufferLists`.
//!
//! "What happens when NDIS returns my NBLs" is [`filter_return`]: every NBL of the chain is
//! classified by its own `SourceHandle`; ours are reclaimed, the rest go back down with the
//! original `ReturnFlags`, in one call. Own NBLs are never passed to
//! `NdisFReturnNetBufferLists` (rule R6, the seed's bug), and nothing is returned twice.

use ndis_sys::*;

use crate::capture;
use crate::filter::{DATAPATH_STATES, FilterModule};
use crate::inject;
use crate::nbl;

/// The return flags that match the IRQL of a receive indication.
#[inline]
pub fn return_flags_for(receive_flags: u32) -> u32 {
    if receive_flags & NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL != 0 {
        NDIS_RETURN_FLAGS_DISPATCH_LEVEL
    } else {
        0
    }
}

/// `FilterReceiveNetBufferLists`: indicates receives up untouched while Running (the
/// `RESOURCES` flag passes through, so such NBLs are ours again when the call returns:
/// rules R2-R5); otherwise returns them at once, or, with `RESOURCES`, simply lets them go
/// (rule R12). IRQL <= DISPATCH.
///
/// # Safety
/// Called by NDIS with the module context and a chain it lends or gives us.
pub unsafe extern "win64" fn filter_receive(
    ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    port: NDIS_PORT_NUMBER,
    count: u32,
    flags: u32,
) {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    m.debug_check_state(DATAPATH_STATES, "FilterReceiveNetBufferLists");
    if m.datapath.try_acquire() {
        capture::tap(m, nbls, capture::Direction::Inbound, core::ptr::null());
        // SAFETY: the chain is ours to pass up, with the count NDIS gave for it.
        unsafe { NdisFIndicateReceiveNetBufferLists(m.handle.get(), nbls, port, count, flags) };
        m.leave_datapath();
    } else {
        refuse(m, nbls, flags);
    }
}

#[cold]
fn refuse(m: &FilterModule, nbls: *mut NET_BUFFER_LIST, flags: u32) {
    m.counters
        .rx_refused_not_running
        .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    if flags & NDIS_RECEIVE_FLAGS_RESOURCES == 0 {
        // SAFETY: foreign NBLs we own until returned, returned exactly once.
        unsafe { NdisFReturnNetBufferLists(m.handle.get(), nbls, return_flags_for(flags)) };
    }
    // With RESOURCES, ownership ends when this callback returns: nothing to give back.
}

/// `FilterReturnNetBufferLists`: see the module documentation. IRQL <= DISPATCH.
///
/// # Safety
/// Called by NDIS with the module context and a chain it hands back to us.
pub unsafe extern "win64" fn filter_return(ctx: NDIS_HANDLE, nbls: *mut NET_BUFFER_LIST, flags: u32) {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    m.debug_check_state(DATAPATH_STATES, "FilterReturnNetBufferLists");
    // SAFETY: NDIS hands the whole chain back to us.
    let split = unsafe { nbl::split_own(nbls, m.handle.get()) };
    if !split.foreign.is_null() {
        // SAFETY: the foreign NBLs came from below through FilterReceiveNetBufferLists and
        // are returned here exactly once, with the flags NDIS gave.
        unsafe { NdisFReturnNetBufferLists(m.handle.get(), split.foreign, flags) };
    }
    if !split.own.is_empty() {
        // SAFETY: own NBLs from this module's pool, back from above.
        unsafe { inject::reclaim(m, split.own, false) };
    }
}
