//! rxinject's device as the DLL uses it: synchronous IOCTLs and writes, and one read at a
//! time that completes on its own (setting an event), as an overlapped `ReadFile` does.
//!
//! Two devices: the installed driver (`\\.\RxInject`, overlapped I/O; Windows only), and a
//! simulator `rxinject sim serve` runs (`RXINJECT_SIM`; on the host, and in the Windows
//! build with the test-only `sim-client` feature).

use crate::layout::Handle;
use crate::os::{Event, err};

/// What a request returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The IRP's NT status.
    pub status: i32,
    /// Bytes returned (IOCTL, read) or frames accepted (write).
    pub information: usize,
    pub data: Vec<u8>,
}

impl Reply {
    pub fn ok(&self) -> bool {
        self.status >= 0
    }
}

/// An open handle of the device.
pub trait Device: Send + Sync {
    /// `DeviceIoControl`, waited for. Err: a Win32 error (the device is unusable).
    fn ioctl(&self, code: u32, input: &[u8], output_len: usize) -> Result<Reply, u32>;
    /// `WriteFile`, waited for.
    fn write(&self, data: &[u8]) -> Result<Reply, u32>;
    /// Issues a read of `len` bytes; `done` is set when it completes. One at a time.
    fn start_read(&self, len: usize, done: &Event) -> Result<(), u32>;
    /// The outstanding read's result once it has completed (taken: asked once).
    fn take_read(&self) -> Option<Reply>;
    /// `CancelIoEx` for the outstanding read (it completes, cancelled or not).
    fn cancel_read(&self);
    /// Whether a read is outstanding (issued, its result not taken).
    fn read_outstanding(&self) -> bool;
    /// What `ADAPTER::hFile` shows.
    fn raw_handle(&self) -> Handle;
}

/// Opens the device: the simulator if one is named, else (on Windows) the driver.
pub fn open() -> Result<Box<dyn Device>, u32> {
    #[cfg(any(not(windows), feature = "sim-client"))]
    if let Some(a) = sim::address() {
        return sim::SimDevice::open(&a).map(|d| Box::new(d) as Box<dyn Device>);
    }
    #[cfg(windows)]
    {
        win::WinDevice::open().map(|d| Box::new(d) as Box<dyn Device>)
    }
    #[cfg(not(windows))]
    {
        Err(err::ERROR_FILE_NOT_FOUND)
    }
}

#[cfg(any(not(windows), feature = "sim-client"))]
pub mod sim {
    use std::sync::{Arc, Mutex};

    use rxinject_user::remote::{self, Address, Connection, Done, Pending, Request};

    use super::{Device, Reply, err};
    use crate::layout::Handle;
    use crate::os::Event;

    static OVERRIDE: Mutex<Option<Address>> = Mutex::new(None);

    /// Names the simulator to use instead of `RXINJECT_SIM` (host tests).
    pub fn set_address(a: Option<Address>) {
        *OVERRIDE.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = a;
    }

    /// The simulator named: the override, else `RXINJECT_SIM`.
    pub fn address() -> Option<Address> {
        OVERRIDE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .or_else(remote::from_env)
    }

    /// A handle of the device in a shared simulator.
    pub struct SimDevice {
        conn: Arc<Connection>,
        handle: u64,
        read: Mutex<Option<Pending>>,
    }

    fn reply(d: Done) -> Reply {
        Reply {
            status: d.status.0,
            information: d.information as usize,
            data: d.data,
        }
    }

    const GONE: Reply = Reply {
        status: 0xC000_000Eu32 as i32,
        information: 0,
        data: Vec::new(),
    };

    impl SimDevice {
        pub fn open(a: &Address) -> Result<SimDevice, u32> {
            let conn = Connection::connect(a).map_err(|_| err::ERROR_FILE_NOT_FOUND)?;
            let handle = conn
                .open(rxinject_abi::USER_PATH)
                .map_err(|_| err::ERROR_FILE_NOT_FOUND)?;
            Ok(SimDevice {
                conn,
                handle,
                read: Mutex::new(None),
            })
        }

        fn call(&self, r: &Request) -> Result<Reply, u32> {
            self.conn
                .call(r)
                .map(reply)
                .map_err(|_| err::ERROR_DEVICE_REMOVED)
        }
    }

    impl Device for SimDevice {
        fn ioctl(&self, code: u32, input: &[u8], output_len: usize) -> Result<Reply, u32> {
            self.call(&Request::Ioctl {
                handle: self.handle,
                code,
                output_len: output_len.min(remote::MAX_IO_BYTES as usize) as u32,
                input: input.to_vec(),
            })
        }

        fn write(&self, data: &[u8]) -> Result<Reply, u32> {
            self.call(&Request::Write {
                handle: self.handle,
                data: data.to_vec(),
            })
        }

        fn start_read(&self, len: usize, done: &Event) -> Result<(), u32> {
            let mut read = self
                .read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if read.is_some() {
                return Err(err::ERROR_BUSY);
            }
            let waker = done.waker();
            let p = self
                .conn
                .start_notify(
                    &Request::Read {
                        handle: self.handle,
                        len: len.min(remote::MAX_IO_BYTES as usize) as u32,
                    },
                    Box::new(move || waker.wake()),
                )
                .map_err(|_| err::ERROR_DEVICE_REMOVED)?;
            *read = Some(p);
            Ok(())
        }

        fn take_read(&self) -> Option<Reply> {
            let mut read = self
                .read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let p = (*read)?;
            let r = match self.conn.poll(p) {
                Ok(Some(d)) => reply(d),
                Ok(None) => return None,
                Err(_) => GONE,
            };
            *read = None;
            Some(r)
        }

        fn cancel_read(&self) {
            let read = self
                .read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(p) = *read {
                let _ = self.conn.cancel(p);
            }
        }

        fn read_outstanding(&self) -> bool {
            self.read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some()
        }

        fn raw_handle(&self) -> Handle {
            // A number that is no pointer, as a HANDLE is.
            (self.handle << 2) as Handle
        }
    }

    impl Drop for SimDevice {
        fn drop(&mut self) {
            let _ = self.conn.call(&Request::Close { handle: self.handle });
        }
    }
}

#[cfg(windows)]
mod win {
    use std::sync::Mutex;

    use rxinject_user::windows::overlapped::{self, len32};
    use windows_sys::Win32::Foundation::{
        CloseHandle, ERROR_IO_INCOMPLETE, ERROR_IO_PENDING, GetLastError, HANDLE,
    };
    use windows_sys::Win32::Storage::FileSystem::ReadFile;
    use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

    use super::{Device, Reply, err};
    use crate::layout::Handle;
    use crate::os::Event;

    /// The read in flight: its OVERLAPPED and buffer live here (boxed: they must not move)
    /// until it has completed.
    struct Read {
        ov: Box<OVERLAPPED>,
        buf: Vec<u8>,
    }

    /// `\\.\RxInject`, opened for overlapped I/O.
    pub struct WinDevice {
        file: HANDLE,
        /// The event synchronous requests wait on (one at a time).
        sync: Mutex<HANDLE>,
        read: Mutex<Option<Read>>,
    }

    // SAFETY: handles may be used from any thread; the read's buffers are behind a mutex.
    unsafe impl Send for WinDevice {}
    // SAFETY: as above.
    unsafe impl Sync for WinDevice {}

    impl WinDevice {
        pub fn open() -> Result<WinDevice, u32> {
            let (file, sync) = overlapped::open_device()?;
            Ok(WinDevice {
                file,
                sync: Mutex::new(sync),
                read: Mutex::new(None),
            })
        }
    }

    fn reply(r: rxinject_user::Reply) -> Reply {
        Reply {
            status: r.status.0,
            information: r.information,
            data: r.data,
        }
    }

    impl Device for WinDevice {
        fn ioctl(&self, code: u32, input: &[u8], output_len: usize) -> Result<Reply, u32> {
            // One synchronous request at a time on the event.
            let event = self
                .sync
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // SAFETY: our overlapped handle, and its synchronous requests' event, held.
            Ok(reply(unsafe {
                overlapped::device_io_control(self.file, *event, code, input, output_len)
            }))
        }

        fn write(&self, data: &[u8]) -> Result<Reply, u32> {
            let event = self
                .sync
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // SAFETY: as above.
            Ok(reply(unsafe { overlapped::write(self.file, *event, data) }))
        }

        fn start_read(&self, len: usize, done: &Event) -> Result<(), u32> {
            let mut read = self
                .read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if read.is_some() {
                return Err(err::ERROR_BUSY);
            }
            let mut r = Read {
                ov: Box::new(OVERLAPPED {
                    hEvent: done.handle(),
                    ..OVERLAPPED::default()
                }),
                buf: vec![0u8; len],
            };
            let ov: *mut OVERLAPPED = &mut *r.ov;
            // SAFETY: the buffer and OVERLAPPED stay in `self.read` until the read completes.
            let ok = unsafe {
                ReadFile(
                    self.file,
                    r.buf.as_mut_ptr(),
                    len32(len),
                    std::ptr::null_mut(),
                    ov,
                )
            };
            if ok == 0 {
                // SAFETY: reads this thread's last error.
                let e = unsafe { GetLastError() };
                if e != ERROR_IO_PENDING {
                    // Failed at once (the driver refused the read without pending it): no
                    // completion will come, neither the event nor the OVERLAPPED's status
                    // would tell, so the error is the caller's now and nothing is kept.
                    return Err(e);
                }
            }
            // Pending, or done: `take_read` finds the outcome in the OVERLAPPED.
            *read = Some(r);
            Ok(())
        }

        fn take_read(&self) -> Option<Reply> {
            let mut read = self
                .read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let r = read.as_mut()?;
            let mut n = 0u32;
            // SAFETY: our handle and the read's OVERLAPPED; does not wait.
            let ok = unsafe { GetOverlappedResult(self.file, &*r.ov, &mut n, 0) };
            // SAFETY: reads this thread's last error.
            if ok == 0 && unsafe { GetLastError() } == ERROR_IO_INCOMPLETE {
                return None;
            }
            let mut r = read.take()?;
            let status = r.ov.Internal as u32 as i32;
            let got = r.ov.InternalHigh.min(r.buf.len());
            r.buf.truncate(got);
            Some(Reply {
                status,
                information: got,
                data: r.buf,
            })
        }

        fn cancel_read(&self) {
            let read = self
                .read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(r) = read.as_ref() {
                // SAFETY: our handle and the OVERLAPPED of our outstanding read.
                unsafe { CancelIoEx(self.file, &*r.ov) };
            }
        }

        fn read_outstanding(&self) -> bool {
            self.read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some()
        }

        fn raw_handle(&self) -> Handle {
            self.file
        }
    }

    impl Drop for WinDevice {
        fn drop(&mut self) {
            let mut read = self
                .read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(r) = read.as_mut() {
                let mut n = 0u32;
                // SAFETY: cancels and waits for our read: its buffers may go after.
                unsafe { CancelIoEx(self.file, &*r.ov) };
                // SAFETY: as above.
                unsafe { GetOverlappedResult(self.file, &*r.ov, &mut n, 1) };
            }
            *read = None;
            // SAFETY: our handles, closed once, nothing in flight.
            unsafe { CloseHandle(self.file) };
            let sync = *self
                .sync
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // SAFETY: as above.
            unsafe { CloseHandle(sync) };
        }
    }
}
