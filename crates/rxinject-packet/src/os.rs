//! What the DLL needs of the operating system: notification events, the thread's last
//! error, and the registry value `SendToRxAdapters`. On Windows these are the real thing
//! (`CreateEventW`, `SetLastError`, `RegGetValueW`); on the host, where the tests call the
//! same exported functions, they are stand-ins with the same behaviour (an event is a
//! manual-reset flag a thread can wait on; the last error is per thread; the registry value
//! is set by the test).

#[cfg(not(windows))]
pub use host::*;
#[cfg(windows)]
pub use win::*;

/// Win32 error codes the DLL sets.
pub mod err {
    pub const ERROR_FILE_NOT_FOUND: u32 = 2;
    pub const ERROR_ACCESS_DENIED: u32 = 5;
    pub const ERROR_INVALID_HANDLE: u32 = 6;
    pub const ERROR_NOT_ENOUGH_MEMORY: u32 = 8;
    pub const ERROR_BAD_UNIT: u32 = 20;
    pub const ERROR_GEN_FAILURE: u32 = 31;
    pub const ERROR_NOT_SUPPORTED: u32 = 50;
    pub const ERROR_INVALID_PARAMETER: u32 = 87;
    pub const ERROR_INSUFFICIENT_BUFFER: u32 = 122;
    pub const ERROR_MORE_DATA: u32 = 234;
    pub const ERROR_OPERATION_ABORTED: u32 = 995;
    pub const ERROR_DEVICE_REMOVED: u32 = 1617;
    pub const ERROR_SEM_TIMEOUT: u32 = 121;
    pub const ERROR_NOT_FOUND: u32 = 1168;
    pub const ERROR_NOT_ENOUGH_QUOTA: u32 = 1816;
    pub const ERROR_BUSY: u32 = 170;
    pub const ERROR_NOT_READY: u32 = 21;
    pub const ERROR_REVISION_MISMATCH: u32 = 1306;
    pub const ERROR_INVALID_USER_BUFFER: u32 = 1784;
    pub const ERROR_NO_SYSTEM_RESOURCES: u32 = 1450;
}

/// The Win32 error a failed request's NT status becomes, as `RtlNtStatusToDosError` maps the
/// statuses rxinject returns. NDIS statuses a miniport answered an OID with (and any status
/// without a Win32 equivalent) are passed with the customer bit set, as Npcap's driver
/// returns them: libpcap compares against `NDIS_STATUS_NOT_SUPPORTED | 0x20000000`.
pub fn win32_error(status: i32) -> u32 {
    let s = status as u32;
    match s {
        0xC000_000D => err::ERROR_INVALID_PARAMETER,
        0xC000_0206 => err::ERROR_INVALID_USER_BUFFER,
        0xC000_000E | 0xC000_02B6 => err::ERROR_DEVICE_REMOVED,
        0xC000_0184 => err::ERROR_GEN_FAILURE,
        0xC000_009A => err::ERROR_NO_SYSTEM_RESOURCES,
        0xC000_0022 => err::ERROR_ACCESS_DENIED,
        0xC000_0008 => err::ERROR_INVALID_HANDLE,
        0xC000_0120 => err::ERROR_OPERATION_ABORTED,
        0xC000_00B5 => err::ERROR_SEM_TIMEOUT,
        0x8000_0011 => err::ERROR_BUSY,
        0xC000_0059 => err::ERROR_REVISION_MISMATCH,
        0xC000_0225 => err::ERROR_NOT_FOUND,
        0xC000_0044 => err::ERROR_NOT_ENOUGH_QUOTA,
        0xC000_00BB => err::ERROR_NOT_SUPPORTED,
        0xC000_0001 => err::ERROR_GEN_FAILURE,
        _ => ndis_error(status),
    }
}

/// The Win32 error of an NDIS status a miniport answered an OID request with: the status
/// with the customer bit, as Npcap's driver completes such requests.
pub fn ndis_error(status: i32) -> u32 {
    status as u32 | 0x2000_0000
}

/// The adapters whose frames go up the receive path, from the registry: `{GUID}`s
/// separated by `;` (Npcap's convention), compared without case and braces.
pub fn send_to_rx_listed(guid: &str) -> bool {
    let want = guid.trim_matches(|c| c == '{' || c == '}');
    send_to_rx_adapters()
        .split(';')
        .map(|g| g.trim().trim_matches(|c| c == '{' || c == '}'))
        .any(|g| !g.is_empty() && g.eq_ignore_ascii_case(want))
}

/// The registry key of the value, under `HKEY_LOCAL_MACHINE`.
pub const PARAMETERS_KEY: &str = r"SYSTEM\CurrentControlSet\Services\rxinject\Parameters";
/// The value's name.
pub const SEND_TO_RX_VALUE: &str = "SendToRxAdapters";

#[cfg(not(windows))]
mod host {
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    use crate::layout::Handle;

    struct Flag {
        set: Mutex<bool>,
        cv: Condvar,
        /// Threads waiting on it now (the host tests' barrier).
        waiters: std::sync::atomic::AtomicUsize,
    }

    /// A manual-reset event. Its `HANDLE` is the address of its state.
    #[derive(Clone)]
    pub struct Event(Arc<Flag>);

    impl Event {
        pub fn new() -> Option<Event> {
            Some(Event(Arc::new(Flag {
                set: Mutex::new(false),
                cv: Condvar::new(),
                waiters: std::sync::atomic::AtomicUsize::new(0),
            })))
        }

        pub fn handle(&self) -> Handle {
            Arc::as_ptr(&self.0) as Handle
        }

        pub fn set(&self) {
            *lock(&self.0.set) = true;
            self.0.cv.notify_all();
        }

        pub fn reset(&self) {
            *lock(&self.0.set) = false;
        }

        /// Waits until it is set (at most `ms` milliseconds; None: forever). Whether it is.
        pub fn wait(&self, ms: Option<u32>) -> bool {
            use std::sync::atomic::Ordering;
            let mut g = lock(&self.0.set);
            self.0.waiters.fetch_add(1, Ordering::SeqCst);
            let _left = Left(&self.0.waiters);
            match ms {
                None => {
                    while !*g {
                        g = self
                            .0
                            .cv
                            .wait(g)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                    }
                    true
                }
                Some(ms) => {
                    let (g, _) = self
                        .0
                        .cv
                        .wait_timeout_while(g, Duration::from_millis(u64::from(ms)), |s| !*s)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    *g
                }
            }
        }

        /// A waker another thread can set it with.
        pub fn waker(&self) -> Waker {
            Waker(self.clone())
        }
    }

    /// Counts a waiter out when it leaves.
    struct Left<'a>(&'a std::sync::atomic::AtomicUsize);

    impl Drop for Left<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Threads waiting on the event of handle `h` now (inside `PacketReceivePacket`), for the
    /// host tests' barriers.
    ///
    /// # Safety
    /// `h` is the handle of an event that is still alive.
    pub unsafe fn waiting_on(h: Handle) -> usize {
        let flag = h as *const Flag;
        // SAFETY: the caller's promise.
        unsafe { &*flag }
            .waiters
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sets an event from any thread.
    pub struct Waker(Event);

    impl Waker {
        pub fn wake(&self) {
            self.0.set();
        }
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `SetEvent` on the handle of an [`Event`] (what `pcap_breakloop` does to
    /// `PacketGetReadEvent`'s handle), for the host tests.
    ///
    /// # Safety
    /// `h` is the handle of an event that is still alive.
    pub unsafe fn set_event(h: Handle) {
        let flag = h as *const Flag;
        // SAFETY: the caller's promise: an Event's live state.
        let f = unsafe { &*flag };
        *lock(&f.set) = true;
        f.cv.notify_all();
    }

    /// `WaitForSingleObject` on the handle of an [`Event`], for the host tests: whether it
    /// was set within `ms` milliseconds (None: forever).
    ///
    /// # Safety
    /// `h` is the handle of an event that is still alive.
    pub unsafe fn wait_event(h: Handle, ms: Option<u32>) -> bool {
        let flag = h as *const Flag;
        // SAFETY: the caller's promise.
        let f = unsafe { &*flag };
        let g = lock(&f.set);
        let (g, _) =
            f.cv.wait_timeout_while(g, Duration::from_millis(u64::from(ms.unwrap_or(u32::MAX))), |s| {
                !*s
            })
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *g
    }

    thread_local! {
        static LAST_ERROR: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    pub fn set_last_error(e: u32) {
        LAST_ERROR.with(|c| c.set(e));
    }

    /// `GetLastError`, for the host tests.
    pub fn last_error() -> u32 {
        LAST_ERROR.with(std::cell::Cell::get)
    }

    static SEND_TO_RX: Mutex<String> = Mutex::new(String::new());

    /// The registry value, as the host tests set it.
    pub fn send_to_rx_adapters() -> String {
        lock(&SEND_TO_RX).clone()
    }

    /// Sets the stand-in registry value (host tests).
    pub fn set_send_to_rx_adapters(v: &str) {
        *lock(&SEND_TO_RX) = v.to_string();
    }
}

#[cfg(windows)]
mod win {
    use windows_sys::Win32::Foundation::{CloseHandle, SetLastError, WAIT_OBJECT_0};
    use windows_sys::Win32::System::Registry::{HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ, RegGetValueW};
    use windows_sys::Win32::System::Threading::{
        CreateEventW, INFINITE, ResetEvent, SetEvent, WaitForSingleObject,
    };

    use crate::layout::Handle;

    /// A manual-reset Win32 event (what `PacketGetReadEvent` returns).
    pub struct Event(Handle);

    // SAFETY: an event handle may be used from any thread.
    unsafe impl Send for Event {}
    // SAFETY: as above; the handle is only passed to thread-safe Win32 calls.
    unsafe impl Sync for Event {}

    impl Event {
        pub fn new() -> Option<Event> {
            // SAFETY: manual reset, initially clear, unnamed, default security.
            let h = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
            (!h.is_null()).then_some(Event(h))
        }

        pub fn handle(&self) -> Handle {
            self.0
        }

        pub fn set(&self) {
            // SAFETY: our event.
            unsafe { SetEvent(self.0) };
        }

        pub fn reset(&self) {
            // SAFETY: our event.
            unsafe { ResetEvent(self.0) };
        }

        pub fn wait(&self, ms: Option<u32>) -> bool {
            // SAFETY: our event.
            unsafe { WaitForSingleObject(self.0, ms.unwrap_or(INFINITE)) == WAIT_OBJECT_0 }
        }

        /// A waker another thread can set it with (while the event lives).
        pub fn waker(&self) -> Waker {
            Waker(self.0 as usize)
        }
    }

    impl Drop for Event {
        fn drop(&mut self) {
            // SAFETY: our event, closed once.
            unsafe { CloseHandle(self.0) };
        }
    }

    /// Sets an event from any thread.
    pub struct Waker(usize);

    impl Waker {
        pub fn wake(&self) {
            // SAFETY: the adapter keeps the event open until its I/O is done.
            unsafe { SetEvent(self.0 as Handle) };
        }
    }

    pub fn set_last_error(e: u32) {
        // SAFETY: sets this thread's last error.
        unsafe { SetLastError(e) };
    }

    fn wide(s: &str) -> Vec<u16> {
        s.encode_utf16().chain([0]).collect()
    }

    /// `SendToRxAdapters` under the driver's `Parameters` key (empty if absent).
    pub fn send_to_rx_adapters() -> String {
        let key = wide(super::PARAMETERS_KEY);
        let value = wide(super::SEND_TO_RX_VALUE);
        let mut buf = vec![0u16; 4096];
        let mut bytes = (buf.len() * 2) as u32;
        // SAFETY: NUL-terminated names; a buffer of `bytes` bytes.
        let r = unsafe {
            RegGetValueW(
                HKEY_LOCAL_MACHINE,
                key.as_ptr(),
                value.as_ptr(),
                RRF_RT_REG_SZ,
                std::ptr::null_mut(),
                buf.as_mut_ptr().cast(),
                &mut bytes,
            )
        };
        if r != 0 {
            return String::new();
        }
        let n = (bytes as usize / 2).min(buf.len());
        String::from_utf16_lossy(&buf[..n])
            .trim_end_matches('\0')
            .to_string()
    }
}
