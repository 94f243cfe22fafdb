//! Driver-wide state: the NDIS filter driver registration and the list of modules.

use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use ndis_sys::{DEVICE_OBJECT, NDIS_HANDLE};

use crate::filter::ModuleList;
use crate::lock::SpinLock;

/// An NDIS handle stored in a structure shared between CPUs. Handles are opaque values that
/// NDIS allows any thread to pass back; they are never dereferenced by the driver.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(transparent)]
pub struct Handle(NDIS_HANDLE);

// SAFETY: an opaque token, never dereferenced here; NDIS accepts it from any thread.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

impl Handle {
    /// Wraps a handle NDIS gave us.
    pub const fn new(h: NDIS_HANDLE) -> Self {
        Handle(h)
    }

    /// The raw handle.
    #[inline]
    pub const fn get(self) -> NDIS_HANDLE {
        self.0
    }
}

/// See the module documentation.
pub struct Globals {
    /// `NdisFilterDriverHandle` from `NdisFRegisterFilterDriver`.
    filter_driver: AtomicPtr<c_void>,
    /// The `FilterDriverContext` given at registration (the driver object).
    driver_context: AtomicPtr<c_void>,
    /// Attached modules. Initialised in `DriverEntry`, freed in unload.
    pub modules: SpinLock<ModuleList>,
    /// The control device and its NDIS handle.
    device_object: AtomicPtr<DEVICE_OBJECT>,
    device_handle: AtomicPtr<c_void>,
    /// The last module id given out.
    module_ids: AtomicU64,
}

/// The one instance.
pub static GLOBALS: Globals = Globals {
    filter_driver: AtomicPtr::new(core::ptr::null_mut()),
    driver_context: AtomicPtr::new(core::ptr::null_mut()),
    modules: SpinLock::new(ModuleList::new()),
    device_object: AtomicPtr::new(core::ptr::null_mut()),
    device_handle: AtomicPtr::new(core::ptr::null_mut()),
    module_ids: AtomicU64::new(0),
};

impl Globals {
    /// The context passed to `NdisFRegisterFilterDriver` (checked in `FilterAttach`).
    pub fn driver_context(&self) -> NDIS_HANDLE {
        self.driver_context.load(Ordering::Acquire)
    }

    /// Records the context before registering (attach can run before registration returns).
    pub fn set_driver_context(&self, ctx: NDIS_HANDLE) {
        self.driver_context.store(ctx, Ordering::Release);
    }

    /// The filter driver handle (null when not registered).
    pub fn filter_driver(&self) -> NDIS_HANDLE {
        self.filter_driver.load(Ordering::Acquire)
    }

    /// Records or clears the filter driver handle.
    pub fn set_filter_driver(&self, h: NDIS_HANDLE) {
        self.filter_driver.store(h, Ordering::Release);
    }

    /// The control device (object, NDIS handle); null when not registered.
    pub fn device(&self) -> (*mut DEVICE_OBJECT, NDIS_HANDLE) {
        (
            self.device_object.load(Ordering::Acquire),
            self.device_handle.load(Ordering::Acquire),
        )
    }

    /// Records or clears the control device.
    pub fn set_device(&self, object: *mut DEVICE_OBJECT, handle: NDIS_HANDLE) {
        self.device_object.store(object, Ordering::Release);
        self.device_handle.store(handle, Ordering::Release);
    }

    /// A fresh module id (never 0).
    pub fn next_module_id(&self) -> u64 {
        self.module_ids.fetch_add(1, Ordering::Relaxed) + 1
    }
}
