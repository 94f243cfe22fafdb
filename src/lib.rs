//! rxinject: an NDIS 6 lightweight filter that passes traffic through untouched, and lets
//! user-mode tools inject frames into the Rx path (up to the host stack) or the Tx path
//! (down to the wire) and capture both directions.
//!
//! One module per NDIS concept (see ARCHITECTURE.md):
//! - `filter`: attach, detach, restart, pause; the module context and list;
//! - `device`, `ioctl`: the control device, its handles and device controls;
//! - `inject`: write IRPs to NBLs (Rx up, Tx down) and back: slots, issue, reclaim;
//! - `capture`, `frame`: taps on both paths, per-handle rings, BPF filters, read IRPs;
//! - `send`: the Tx path and its completions; `recv`: the Rx path and returns;
//! - `nbl`: chains and the own/foreign split; `pool`: the module's NBL pool and reclaim;
//! - `oid`: OID requests forwarded as clones; `pnp`: status and PnP pass-through;
//! - `state`, `rundown`, `list`: the module state machine, the datapath rundown and the
//!   intrusive lists of modules and captures (plain Rust);
//! - `lock`, `mem`, `trace`: spin locks, memory and debug output over NDIS.
//!
//! The same code builds for `x86_64-pc-windows-msvc` (the shipped `rxinject.sys`) and for
//! the Linux host, where the NDIS functions it imports are provided by `ndis-sim`.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

// Unit tests run on the host: the simulator provides the NDIS and kernel functions the code
// under test refers to.
#[cfg(test)]
use ndis_sim as _;

pub mod capture;
pub mod device;
pub mod driver;
pub mod filter;
pub mod frame;
pub mod inject;
pub mod ioctl;
pub mod list;
pub mod lock;
pub mod mem;
pub mod nbl;
pub mod oid;
pub mod oidreq;
pub mod pfilter;
pub mod pnp;
pub mod pool;
pub mod recv;
pub mod rundown;
pub mod send;
pub mod state;
mod trace;
pub mod writes;

#[cfg(all(target_os = "windows", not(test)))]
mod rt;

#[cfg(any(feature = "wdk", feature = "layout-probe"))]
mod wdk_layout;

use core::ptr;

use ndis_sys::*;
use rxinject_abi as abi;

use crate::driver::GLOBALS;
use crate::list::List;
use crate::trace::trace;

/// Bug check code for a Rust panic: the bytes "RXPN".
pub const BUGCHECK_PANIC: u32 = u32::from_be_bytes(*b"RXPN");
/// Bug check code for a filter module found in a state NDIS should never call it in
/// (checked builds, and every build for control callbacks): the bytes "RXST".
pub const BUGCHECK_STATE: u32 = u32::from_be_bytes(*b"RXST");

/// Stops the machine: `KeBugCheckEx(code, p1, p2, 0, 0)`.
#[cold]
pub fn bugcheck(code: u32, p1: usize, p2: usize) -> ! {
    // SAFETY: KeBugCheckEx has no preconditions and never returns.
    unsafe { KeBugCheckEx(code, p1, p2, 0, 0) }
}

utf16_static!(static SERVICE_NAME_W = abi::SERVICE_NAME;);
utf16_static!(static UNIQUE_NAME_W = abi::FILTER_UNIQUE_NAME;);
utf16_static!(static FRIENDLY_NAME_W = abi::FILTER_FRIENDLY_NAME;);

/// The filter characteristics NDIS 6.50 expects (revision 2), with every handler of a
/// modifying filter that originates sends and receive indications (rules R13, S11).
fn characteristics() -> NDIS_FILTER_DRIVER_CHARACTERISTICS {
    NDIS_FILTER_DRIVER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS,
            NDIS_FILTER_CHARACTERISTICS_REVISION_2,
            NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2,
        ),
        MajorNdisVersion: NDIS_FILTER_MAJOR_VERSION,
        MinorNdisVersion: NDIS_FILTER_MINOR_VERSION,
        MajorDriverVersion: abi::DRIVER_VERSION.0,
        MinorDriverVersion: abi::DRIVER_VERSION.1,
        Flags: 0,
        FriendlyName: wstr::unicode_string(&FRIENDLY_NAME_W),
        UniqueName: wstr::unicode_string(&UNIQUE_NAME_W),
        ServiceName: wstr::unicode_string(&SERVICE_NAME_W),
        SetOptionsHandler: None,
        SetFilterModuleOptionsHandler: None,
        AttachHandler: Some(filter::filter_attach),
        DetachHandler: Some(filter::filter_detach),
        RestartHandler: Some(filter::filter_restart),
        PauseHandler: Some(filter::filter_pause),
        SendNetBufferListsHandler: Some(send::filter_send),
        SendNetBufferListsCompleteHandler: Some(send::filter_send_complete),
        CancelSendNetBufferListsHandler: Some(send::filter_cancel_send),
        ReceiveNetBufferListsHandler: Some(recv::filter_receive),
        ReturnNetBufferListsHandler: Some(recv::filter_return),
        OidRequestHandler: Some(oid::filter_oid_request),
        OidRequestCompleteHandler: Some(oid::filter_oid_request_complete),
        CancelOidRequestHandler: Some(oid::filter_cancel_oid_request),
        DevicePnPEventNotifyHandler: Some(pnp::filter_device_pnp_event_notify),
        NetPnPEventHandler: Some(pnp::filter_net_pnp_event),
        StatusHandler: Some(pnp::filter_status),
        DirectOidRequestHandler: None,
        DirectOidRequestCompleteHandler: None,
        CancelDirectOidRequestHandler: None,
    }
}

/// The driver's entry point: registers the filter with NDIS. PASSIVE_LEVEL.
///
/// NDIS may attach (and restart) modules before `NdisFRegisterFilterDriver` returns (rule
/// ST8), so every global a callback uses is ready before the call.
///
/// # Safety
/// Called once by the I/O manager with a valid driver object.
#[unsafe(no_mangle)]
pub unsafe extern "win64" fn DriverEntry(
    driver_object: *mut DRIVER_OBJECT,
    _registry_path: *mut UNICODE_STRING,
) -> NTSTATUS {
    GLOBALS.set_filter_driver(ptr::null_mut());
    GLOBALS.set_driver_context(driver_object.cast());
    // SAFETY: first use of the global lock in this load of the driver.
    unsafe { GLOBALS.modules.init() };
    // The list starts empty on every load (a previous load's modules are long gone).
    *GLOBALS.modules.lock() = List::new();
    // SAFETY: the I/O manager passes a valid driver object.
    unsafe { (*driver_object).DriverUnload = Some(driver_unload) };

    let chars = characteristics();
    let mut handle: NDIS_HANDLE = ptr::null_mut();
    // SAFETY: valid driver object, characteristics and out parameter.
    let status =
        unsafe { NdisFRegisterFilterDriver(driver_object, driver_object.cast(), &chars, &mut handle) };
    if status != NDIS_STATUS_SUCCESS {
        trace!(ERROR, "NdisFRegisterFilterDriver failed: {status:?}");
        // SAFETY: registration failed, so no module (and no lock user) exists.
        unsafe { GLOBALS.modules.free() };
        return status.into();
    }
    GLOBALS.set_filter_driver(handle);
    let status = capture::start(driver::Handle::new(handle));
    if status != NDIS_STATUS_SUCCESS {
        trace!(ERROR, "read timer allocation failed: {status:?}");
        // SAFETY: our registration; deregistering detaches every module.
        unsafe { NdisFDeregisterFilterDriver(handle) };
        GLOBALS.set_filter_driver(ptr::null_mut());
        // SAFETY: no module exists any more.
        unsafe { GLOBALS.modules.free() };
        return status.into();
    }
    let status = device::register(driver::Handle::new(handle));
    if status != NDIS_STATUS_SUCCESS {
        capture::stop();
        // SAFETY: our registration; deregistering detaches every module.
        unsafe { NdisFDeregisterFilterDriver(handle) };
        capture::finish();
        GLOBALS.set_filter_driver(ptr::null_mut());
        // SAFETY: no module and no device exist any more.
        unsafe { GLOBALS.modules.free() };
        return status.into();
    }
    trace!(
        INFO,
        "registered, version {}.{}.{}",
        abi::DRIVER_VERSION.0,
        abi::DRIVER_VERSION.1,
        abi::DRIVER_VERSION.2
    );
    STATUS_SUCCESS
}

/// `DriverUnload`: deregistering detaches every module first (NDIS pauses and detaches them
/// inside the call). PASSIVE_LEVEL.
///
/// # Safety
/// Called once by the I/O manager after a successful `DriverEntry`.
unsafe extern "win64" fn driver_unload(_driver_object: *mut DRIVER_OBJECT) {
    // The device first: no new handle, no new write (the I/O manager unloads a driver only
    // when no handle is open, so no write is in flight).
    device::deregister();
    // The read timer belongs to the filter driver handle: freed before deregistering.
    capture::stop();
    let handle = GLOBALS.filter_driver();
    if !handle.is_null() {
        // SAFETY: the handle from our registration.
        unsafe { NdisFDeregisterFilterDriver(handle) };
        GLOBALS.set_filter_driver(ptr::null_mut());
    }
    // Every module is detached: no tap runs, and what capture retired can go.
    capture::finish();
    debug_assert!(GLOBALS.modules.lock().is_empty());
    // SAFETY: every module is detached, so nothing can take the lock any more.
    unsafe { GLOBALS.modules.free() };
    trace!(INFO, "unloaded");
}
