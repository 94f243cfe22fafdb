//! The Tx path: `FilterSendNetBufferLists`, `FilterSendNetBufferListsComplete` and
//! `FilterCancelSendNetBufferLists`.

use ndis_sys::*;

use crate::capture;
use crate::filter::{DATAPATH_STATES, FilterModule};
use crate::inject;
use crate::nbl;

/// The send-complete flags that match the IRQL a send was made at (rule S7: the two flag
/// sets are distinct even where the bit happens to coincide).
#[inline]
pub fn complete_flags_for(send_flags: u32) -> u32 {
    if send_flags & NDIS_SEND_FLAGS_DISPATCH_LEVEL != 0 {
        NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL
    } else {
        0
    }
}

/// `FilterSendNetBufferLists`: passes sends down untouched while Running; otherwise
/// completes them at once with `NDIS_STATUS_PAUSED` (rules S1, S6, S9). IRQL <= DISPATCH.
///
/// # Safety
/// Called by NDIS with the module context and a chain it hands to us.
pub unsafe extern "win64" fn filter_send(
    ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    port: NDIS_PORT_NUMBER,
    flags: u32,
) {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    m.debug_check_state(DATAPATH_STATES, "FilterSendNetBufferLists");
    if m.datapath.try_acquire() {
        capture::tap(m, nbls, capture::Direction::Outbound, core::ptr::null());
        // SAFETY: we own the chain until this call hands it down.
        unsafe { NdisFSendNetBufferLists(m.handle.get(), nbls, port, flags) };
        m.leave_datapath();
    } else {
        refuse(m, nbls, flags);
    }
}

#[cold]
fn refuse(m: &FilterModule, nbls: *mut NET_BUFFER_LIST, flags: u32) {
    m.counters
        .tx_refused_not_running
        .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    // SAFETY: the chain is ours (given in FilterSendNetBufferLists) until completed.
    unsafe { nbl::set_status(nbls, NDIS_STATUS_PAUSED) };
    // SAFETY: completing NBLs we received from above, each exactly once.
    unsafe { NdisFSendNetBufferListsComplete(m.handle.get(), nbls, complete_flags_for(flags)) };
}

/// `FilterSendNetBufferListsComplete`: splits own NBLs from foreign ones by each NBL's
/// `SourceHandle`, completes the foreign ones up with the flags NDIS gave, and reclaims
/// our own (rules S1, S3). IRQL <= DISPATCH.
///
/// # Safety
/// Called by NDIS with the module context and a chain it hands back to us.
pub unsafe extern "win64" fn filter_send_complete(ctx: NDIS_HANDLE, nbls: *mut NET_BUFFER_LIST, flags: u32) {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    m.debug_check_state(DATAPATH_STATES, "FilterSendNetBufferListsComplete");
    if m.own_tx_out.load(core::sync::atomic::Ordering::SeqCst) == 0 {
        // None of ours is down there: all foreign, completed up without a walk.
        // SAFETY: the foreign NBLs came from above through FilterSendNetBufferLists.
        unsafe { NdisFSendNetBufferListsComplete(m.handle.get(), nbls, flags) };
        return;
    }
    // Own NBLs taken back as the split finds them: one walk.
    let mut own = inject::Reclaim::new(m, true);
    let reclaim = |nbl| {
        // SAFETY: an own NBL from this module's pool, back from below, split off once.
        unsafe { own.add(nbl) }
    };
    // SAFETY: NDIS hands the whole chain back to us.
    let (foreign, _) = unsafe { nbl::split_own_with(nbls, m.handle.get(), reclaim) };
    if !foreign.is_null() {
        // SAFETY: the foreign NBLs came from above through FilterSendNetBufferLists.
        unsafe { NdisFSendNetBufferListsComplete(m.handle.get(), foreign, flags) };
    }
    own.finish();
}

/// `FilterCancelSendNetBufferLists`: the driver queues no sends, so the request is passed
/// down (rule S10). IRQL <= DISPATCH.
///
/// # Safety
/// Called by NDIS with the module context.
pub unsafe extern "win64" fn filter_cancel_send(ctx: NDIS_HANDLE, cancel_id: PVOID) {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    // SAFETY: our handle; the id is opaque.
    unsafe { NdisFCancelSendNetBufferLists(m.handle.get(), cancel_id) };
}
