//! Status indications and PnP events: forwarded untouched.

use ndis_sys::*;

use crate::filter::FilterModule;
use crate::state::FilterState;

/// `FilterStatus`: passes a status indication from below up. IRQL <= DISPATCH.
///
/// # Safety
/// Called by NDIS with the module context and a valid indication.
pub unsafe extern "win64" fn filter_status(ctx: NDIS_HANDLE, indication: *mut NDIS_STATUS_INDICATION) {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    m.expect_state(
        &[
            FilterState::Paused,
            FilterState::Restarting,
            FilterState::Running,
            FilterState::Pausing,
        ],
        "FilterStatus",
    );
    // SAFETY: our handle; the indication is valid for the call.
    unsafe { NdisFIndicateStatus(m.handle.get(), indication) };
}

/// `FilterNetPnPEvent`: passes a network PnP event down and returns its status. PASSIVE.
///
/// # Safety
/// Called by NDIS with the module context and a valid notification.
pub unsafe extern "win64" fn filter_net_pnp_event(
    ctx: NDIS_HANDLE,
    notification: *mut NET_PNP_EVENT_NOTIFICATION,
) -> NDIS_STATUS {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    // SAFETY: our handle; the notification is valid for the call.
    unsafe { NdisFNetPnPEvent(m.handle.get(), notification) }
}

/// `FilterDevicePnPEventNotify`: passes a device PnP event down. PASSIVE.
///
/// # Safety
/// Called by NDIS with the module context and a valid event.
pub unsafe extern "win64" fn filter_device_pnp_event_notify(
    ctx: NDIS_HANDLE,
    event: *mut NET_DEVICE_PNP_EVENT,
) {
    // SAFETY: NDIS contract for this callback.
    let m = unsafe { FilterModule::from_context(ctx) };
    // SAFETY: our handle; the event is valid for the call.
    unsafe { NdisFDevicePnPEventNotify(m.handle.get(), event) };
}
