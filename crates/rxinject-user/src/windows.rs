//! The Windows backend: `\\.\RxInject` through `CreateFileW` and overlapped
//! `DeviceIoControl`, `ReadFile` and `WriteFile`.
//!
//! Every request is overlapped, waited for with `GetOverlappedResult`, and its NT status read
//! from `OVERLAPPED.Internal` (where the I/O manager stores the IRP's status), so the tool sees
//! the driver's own status (`STATUS_NDIS_PAUSED`, ...) rather than a Win32 error it maps to.

use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND, HANDLE,
};

use crate::{Backend, Channel, Error, Reply};

/// The installed driver.
pub(crate) struct WindowsBackend;

/// The process's clock origin.
fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl Backend for WindowsBackend {
    fn open(&self) -> Result<Box<dyn Channel>, Error> {
        let (h, event) = overlapped::open_device().map_err(|code| match code {
            ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => Error::NotInstalled,
            ERROR_ACCESS_DENIED => Error::AccessDenied,
            code => Error::Open { code },
        })?;
        Ok(Box::new(WinChannel { file: h, event }))
    }

    fn now(&self) -> Duration {
        origin().elapsed()
    }

    fn sleep_until(&self, t: Duration) {
        let now = self.now();
        if t > now {
            std::thread::sleep(t - now);
        }
    }
}

/// An open handle and the event its requests complete on.
struct WinChannel {
    file: HANDLE,
    event: HANDLE,
}

impl Drop for WinChannel {
    fn drop(&mut self) {
        // SAFETY: our handles, closed once. Requests are always waited for, so none is in
        // flight.
        unsafe {
            CloseHandle(self.file);
        }
        // SAFETY: as above.
        unsafe {
            CloseHandle(self.event);
        }
    }
}

/// Overlapped requests on a handle opened with `FILE_FLAG_OVERLAPPED`, each waited for on
/// `event` (a manual-reset event, one request at a time), with the IRP's own NT status from
/// `OVERLAPPED.Internal`: the Windows backend's, and Packet.dll's.
pub mod overlapped {
    use windows_sys::Win32::Foundation::{
        CloseHandle, ERROR_IO_PENDING, GENERIC_READ, GENERIC_WRITE, GetLastError, HANDLE,
        INVALID_HANDLE_VALUE,
    };
    use windows_sys::Win32::Storage::FileSystem::{
        CreateFileW, FILE_FLAG_OVERLAPPED, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING, ReadFile,
        WriteFile,
    };
    use windows_sys::Win32::System::IO::{DeviceIoControl, GetOverlappedResult, OVERLAPPED};
    use windows_sys::Win32::System::Threading::CreateEventW;

    use crate::{NTSTATUS, Reply};

    /// Opens `\\.\RxInject` for overlapped I/O, with a manual-reset event (initially clear)
    /// for its synchronous requests; Err: the Win32 error. The caller closes both.
    pub fn open_device() -> Result<(HANDLE, HANDLE), u32> {
        let path: Vec<u16> = rxinject_abi::USER_PATH.encode_utf16().chain([0]).collect();
        // SAFETY: a NUL-terminated path; no security attributes or template.
        let h = unsafe {
            CreateFileW(
                path.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED,
                std::ptr::null_mut(),
            )
        };
        if h == INVALID_HANDLE_VALUE {
            // SAFETY: reads this thread's last error.
            return Err(unsafe { GetLastError() });
        }
        // SAFETY: a manual-reset event, initially clear, unnamed.
        let event = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
        if event.is_null() {
            // SAFETY: reads this thread's last error.
            let code = unsafe { GetLastError() };
            // SAFETY: our handle, not handed out.
            unsafe { CloseHandle(h) };
            return Err(code);
        }
        Ok((h, event))
    }

    /// Issues a request with `start` and waits for it: the IRP's status and Information.
    fn request(file: HANDLE, event: HANDLE, start: impl FnOnce(*mut OVERLAPPED) -> i32) -> (NTSTATUS, usize) {
        let mut ov = OVERLAPPED {
            hEvent: event,
            ..OVERLAPPED::default()
        };
        let ok = start(&mut ov);
        // SAFETY: reads this thread's last error.
        if ok == 0 && unsafe { GetLastError() } != ERROR_IO_PENDING {
            // Failed at once: the status is in `Internal` too (the I/O manager completed the IRP).
            return (NTSTATUS(ov.Internal as u32 as i32), ov.InternalHigh);
        }
        let mut n = 0u32;
        // SAFETY: the caller's handle and the OVERLAPPED of the request just issued; waits.
        unsafe { GetOverlappedResult(file, &ov, &mut n, 1) };
        (NTSTATUS(ov.Internal as u32 as i32), ov.InternalHigh)
    }

    pub fn len32(n: usize) -> u32 {
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// `DeviceIoControl`, waited for.
    ///
    /// # Safety
    /// `file` is an open handle, opened with `FILE_FLAG_OVERLAPPED`; `event` a manual-reset
    /// event no other request of the handle uses meanwhile.
    pub unsafe fn device_io_control(
        file: HANDLE,
        event: HANDLE,
        code: u32,
        input: &[u8],
        output_len: usize,
    ) -> Reply {
        let mut out = vec![0u8; output_len];
        let (status, n) = request(file, event, |ov| {
            // SAFETY: buffers that outlive the request (it is waited for before returning).
            unsafe {
                DeviceIoControl(
                    file,
                    code,
                    input.as_ptr().cast(),
                    len32(input.len()),
                    out.as_mut_ptr().cast(),
                    len32(out.len()),
                    std::ptr::null_mut(),
                    ov,
                )
            }
        });
        out.truncate(n.min(output_len));
        Reply {
            status,
            information: n,
            data: out,
        }
    }

    /// `WriteFile`, waited for.
    ///
    /// # Safety
    /// As [`device_io_control`].
    pub unsafe fn write(file: HANDLE, event: HANDLE, data: &[u8]) -> Reply {
        let (status, n) = request(file, event, |ov| {
            // SAFETY: as above.
            unsafe { WriteFile(file, data.as_ptr(), len32(data.len()), std::ptr::null_mut(), ov) }
        });
        Reply {
            status,
            information: n,
            data: Vec::new(),
        }
    }

    /// `ReadFile`, waited for.
    ///
    /// # Safety
    /// As [`device_io_control`].
    pub unsafe fn read(file: HANDLE, event: HANDLE, len: usize) -> Reply {
        let mut buf = vec![0u8; len];
        let (status, n) = request(file, event, |ov| {
            // SAFETY: as above.
            unsafe { ReadFile(file, buf.as_mut_ptr(), len32(buf.len()), std::ptr::null_mut(), ov) }
        });
        buf.truncate(n.min(len));
        Reply {
            status,
            information: n,
            data: buf,
        }
    }
}

impl Channel for WinChannel {
    fn device_io_control(&self, code: u32, input: &[u8], output_len: usize) -> Result<Reply, Error> {
        // SAFETY: our overlapped handle and its event; one request at a time (a channel is used
        // by one thread).
        Ok(unsafe { overlapped::device_io_control(self.file, self.event, code, input, output_len) })
    }

    fn write(&self, data: &[u8]) -> Result<Reply, Error> {
        // SAFETY: as above.
        Ok(unsafe { overlapped::write(self.file, self.event, data) })
    }

    fn read(&self, len: usize) -> Result<Reply, Error> {
        // SAFETY: as above.
        Ok(unsafe { overlapped::read(self.file, self.event, len) })
    }
}
