//! OID requests from above: forwarded as clones (rules O1-O3). The driver's own requests
//! (`oidreq.rs`) come back through the same `FilterOidRequestComplete`.
//!
//! `FilterOidRequest` clones the request, remembers the original in the clone's
//! `SourceReserved`, and sends the clone down. Whether NDIS completes the clone
//! synchronously or later, [`filter_oid_request_complete`] copies the result counts back,
//! frees the clone and completes the original; `FilterOidRequest` itself always returns
//! `NDIS_STATUS_PENDING` once the clone exists.

use core::ptr;
use core::sync::atomic::Ordering;

use ndis_sys::*;
use rxinject_abi::tags::TAG_OID;

use crate::filter::FilterModule;
use crate::state::FilterState;

const OID_STATES: &[FilterState] = &[
    FilterState::Paused,
    FilterState::Restarting,
    FilterState::Running,
    FilterState::Pausing,
];

/// `FilterOidRequest`. IRQL <= DISPATCH.
///
/// # Safety
/// Called by NDIS with the module context and a request it owns until completion.
pub unsafe extern "win64" fn filter_oid_request(
    ctx: NDIS_HANDLE,
    request: *mut NDIS_OID_REQUEST,
) -> NDIS_STATUS {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    m.expect_state(OID_STATES, "FilterOidRequest");
    let mut clone: *mut NDIS_OID_REQUEST = ptr::null_mut();
    // SAFETY: our handle and NDIS's request; `clone` receives the copy.
    let status = unsafe { NdisAllocateCloneOidRequest(m.handle.get(), request, TAG_OID, &mut clone) };
    if status != NDIS_STATUS_SUCCESS {
        return status;
    }
    // SAFETY: `clone` is a fresh copy that we own until it is sent down.
    unsafe {
        (*clone).SourceReserved[0] = request.cast();
    }
    // A packet filter set goes down as the union with the handles' filters.
    // SAFETY: the protocol's request and our fresh clone of it.
    unsafe { crate::pfilter::intercept_set(m, request, clone) };
    // SAFETY: `request` is valid for the call.
    let request_id = unsafe { (*request).RequestId };
    // SAFETY: as above; the clone carries the original's id so cancellation can find it.
    unsafe {
        (*clone).RequestId = request_id;
    }
    m.counters.oid_requests.fetch_add(1, Ordering::Relaxed);
    // SAFETY: the clone is a valid request from NdisAllocateCloneOidRequest.
    let status = unsafe { NdisFOidRequest(m.handle.get(), clone) };
    if status != NDIS_STATUS_PENDING {
        // SAFETY: completed synchronously: the clone is ours again.
        unsafe { filter_oid_request_complete(ctx, clone, status) };
    }
    NDIS_STATUS_PENDING
}

/// `FilterOidRequestComplete`: finishes a forwarded request. IRQL <= DISPATCH.
///
/// # Safety
/// Called by NDIS (or by `filter_oid_request`) with a clone this module sent down.
pub unsafe extern "win64" fn filter_oid_request_complete(
    ctx: NDIS_HANDLE,
    clone: *mut NDIS_OID_REQUEST,
    status: NDIS_STATUS,
) {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    // SAFETY: a request NDIS gives back to us.
    if unsafe { crate::oidreq::is_own(clone) } {
        // SAFETY: one of the driver's own requests, back from below.
        unsafe { crate::oidreq::complete(m, clone.cast(), status) };
        return;
    }
    // SAFETY: the clone is back with us.
    let original = unsafe { (*clone).SourceReserved[0] }.cast::<NDIS_OID_REQUEST>();
    if original.is_null() {
        // Neither a clone of ours nor a request of our own: never complete a request NDIS
        // did not give us (rule O2).
        crate::trace::trace!(ERROR, "OID completion for a request without an original");
        return;
    }
    // SAFETY: the clone is ours again (back from below) and holds the lower driver's results.
    let clone_ref = unsafe { &*clone };
    // SAFETY: `original` is the request NDIS gave FilterOidRequest, still pending with us.
    let original_ref = unsafe { &mut *original };
    copy_results(clone_ref, original_ref);
    // SAFETY: both back with us, the counts copied.
    unsafe { crate::pfilter::completed(m, original, clone, status) };
    // SAFETY: the clone came from NdisAllocateCloneOidRequest and is not used again.
    unsafe { NdisFreeCloneOidRequest(m.handle.get(), clone) };
    // SAFETY: completing the original exactly once.
    unsafe { NdisFOidRequestComplete(m.handle.get(), original, status) };
}

/// Copies the counts a lower driver set on the clone back to the original.
fn copy_results(clone: &NDIS_OID_REQUEST, original: &mut NDIS_OID_REQUEST) {
    // Every union read below: `RequestType` selects the live view, and each view is plain
    // integers and pointers, valid for any bit pattern.
    let kind = original.RequestType;
    if kind == NdisRequestSetInformation {
        // SAFETY: see above.
        let c = unsafe { &clone.DATA.SET_INFORMATION };
        // SAFETY: see above.
        let o = unsafe { &mut original.DATA.SET_INFORMATION };
        o.BytesRead = c.BytesRead;
        o.BytesNeeded = c.BytesNeeded;
    } else if kind == NdisRequestMethod {
        // SAFETY: see above.
        let c = unsafe { &clone.DATA.METHOD_INFORMATION };
        // SAFETY: see above.
        let o = unsafe { &mut original.DATA.METHOD_INFORMATION };
        o.OutputBufferLength = c.OutputBufferLength;
        o.BytesWritten = c.BytesWritten;
        o.BytesRead = c.BytesRead;
        o.BytesNeeded = c.BytesNeeded;
    } else {
        // Query information and query statistics share the query view.
        // SAFETY: see above.
        let c = unsafe { &clone.DATA.QUERY_INFORMATION };
        // SAFETY: see above.
        let o = unsafe { &mut original.DATA.QUERY_INFORMATION };
        o.BytesWritten = c.BytesWritten;
        o.BytesNeeded = c.BytesNeeded;
    }
}

/// `FilterCancelOidRequest`: the forwarded clone carries the same `RequestId`, so the
/// cancellation is passed down with it. IRQL <= DISPATCH.
///
/// # Safety
/// Called by NDIS with the module context.
pub unsafe extern "win64" fn filter_cancel_oid_request(ctx: NDIS_HANDLE, request_id: PVOID) {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    // SAFETY: our handle; the id is opaque.
    unsafe { NdisFCancelOidRequest(m.handle.get(), request_id) };
}
