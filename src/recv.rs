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
        if m.rx_extra.load(core::sync::atomic::Ordering::Acquire) == 0 {
            // SAFETY: the chain is ours to pass up, with the count NDIS gave for it.
            unsafe { NdisFIndicateReceiveNetBufferLists(m.handle.get(), nbls, port, count, flags) };
        } else {
            // SAFETY: as above.
            unsafe { indicate_wanted(m, nbls, port, flags) };
        }
        m.leave_datapath();
    } else {
        refuse(m, nbls, flags);
    }
}

/// Passes up only what the protocols asked for, while handles asked for filter types they
/// did not (promiscuous mode): a frame that arrived only for a handle was captured, and goes
/// no further. The rest go back down (or, lent with `RESOURCES`, are simply not indicated:
/// such a chain is indicated one NBL at a time and relinked as it came, rule R3).
///
/// # Safety
/// As for [`filter_receive`]: `nbls` is the chain NDIS gave us, with `flags`.
#[cold]
#[inline(never)]
unsafe fn indicate_wanted(m: &FilterModule, nbls: *mut NET_BUFFER_LIST, port: NDIS_PORT_NUMBER, flags: u32) {
    use core::sync::atomic::Ordering;
    let higher = m.rx_higher.load(Ordering::Relaxed);
    let groups = crate::pfilter::groups(m);
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&m.adapter.mac[..6]);
    let wanted = |n: *mut NET_BUFFER_LIST| {
        let mut dst = [0u8; 6];
        // SAFETY: an NBL of the chain we hold; its first NB's data.
        let first = unsafe { (*n).FirstNetBuffer };
        // SAFETY: as above: a valid NB of a held NBL.
        !first.is_null()
            && unsafe { crate::frame::nb_read(first, 0, &mut dst) }
            && crate::pfilter::protocols_want(higher, groups.as_ref(), &mac, &dst)
    };
    let handle = m.handle.get();
    if flags & NDIS_RECEIVE_FLAGS_RESOURCES != 0 {
        let mut n = nbls;
        while !n.is_null() {
            // SAFETY: an NBL of the lent chain.
            let next = unsafe { (*n).Next };
            if wanted(n) {
                // Detached for the call, relinked after it: the chain goes back to the
                // miniport as it came.
                // SAFETY: an NBL of the lent chain, ours for this callback.
                unsafe { (*n).Next = core::ptr::null_mut() };
                // SAFETY: one NBL of the lent chain, with its flags.
                unsafe { NdisFIndicateReceiveNetBufferLists(handle, n, port, 1, flags) };
                // SAFETY: as above.
                unsafe { (*n).Next = next };
            }
            n = next;
        }
        return;
    }
    let (mut keep, mut drop) = (nbl::NblChain::new(), nbl::NblChain::new());
    // SAFETY: the chain is ours; `iter` reads each link before yielding.
    for n in unsafe { nbl::iter(nbls) } {
        let chain = if wanted(n) { &mut keep } else { &mut drop };
        // SAFETY: each NBL goes into exactly one of the two chains.
        unsafe { chain.push_back(n) };
    }
    if !keep.is_empty() {
        // SAFETY: ours to pass up, with its count.
        unsafe { NdisFIndicateReceiveNetBufferLists(handle, keep.head(), port, keep.len(), flags) };
    }
    if !drop.is_empty() {
        // SAFETY: foreign NBLs we own until returned, returned exactly once.
        unsafe { NdisFReturnNetBufferLists(handle, drop.head(), return_flags_for(flags)) };
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
    if m.own_rx_out.load(core::sync::atomic::Ordering::SeqCst) == 0 {
        // None of ours is up there: the chain is all foreign, passed back without a walk.
        // SAFETY: the foreign NBLs came from below through FilterReceiveNetBufferLists and
        // are returned here exactly once, with the flags NDIS gave.
        unsafe { NdisFReturnNetBufferLists(m.handle.get(), nbls, flags) };
        return;
    }
    // Own NBLs taken back as the split finds them: one walk.
    let mut own = inject::Reclaim::new(m, false);
    let reclaim = |nbl| {
        // SAFETY: an own NBL from this module's pool, back from above, split off once.
        unsafe { own.add(nbl) }
    };
    // SAFETY: NDIS hands the whole chain back to us.
    let (foreign, _) = unsafe { nbl::split_own_with(nbls, m.handle.get(), reclaim) };
    if !foreign.is_null() {
        // SAFETY: the foreign NBLs came from below through FilterReceiveNetBufferLists and
        // are returned here exactly once, with the flags NDIS gave.
        unsafe { NdisFReturnNetBufferLists(m.handle.get(), foreign, flags) };
    }
    own.finish();
}
