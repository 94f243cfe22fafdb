//! Device controls (`rxinject_abi::IOCTL_RXINJECT_*`), all METHOD_BUFFERED (rule D7): one
//! system buffer of max(input, output) bytes; the input is read completely before any output
//! is written; codes are compared in full (a METHOD_NEITHER or other-access variant of a code
//! is an unknown code); every length is checked; `Information` never exceeds the output length.

use core::mem::size_of;

use ndis_sys::*;
use rxinject_abi::capture::CaptureConfig;
use rxinject_abi::{
    self as abi, AdapterEntry, AdapterListHeader, BindRequest, Counters, Pod, SetDirection, VersionInfo,
};

use crate::capture;
use crate::device::OpenHandle;
use crate::filter;

/// Handles one device control for handle `h`. Returns (status, information) for completion.
///
/// # Safety
/// `irp`/`sl` are a device-control IRP of our device and its current stack location.
pub unsafe fn handle(h: &OpenHandle, irp: *mut IRP, sl: *mut IO_STACK_LOCATION) -> (NTSTATUS, usize) {
    // SAFETY: the current stack location of our IRP.
    let params = unsafe { &(*sl).Parameters };
    // SAFETY: a device-control IRP: the DeviceIoControl view of the parameters is live.
    let p = unsafe { params.DeviceIoControl };
    let (in_len, out_len) = (p.InputBufferLength as usize, p.OutputBufferLength as usize);
    // The full code first: a variant of a known code with another method or access is unknown
    // (and its buffers are not what METHOD_BUFFERED promises, so they are never looked at).
    let op: fn(&OpenHandle, &mut Buffers) -> (NTSTATUS, usize) = match p.IoControlCode {
        abi::IOCTL_RXINJECT_GET_VERSION => |_, io| get_version(io),
        abi::IOCTL_RXINJECT_LIST_ADAPTERS => |_, io| list_adapters(io),
        abi::IOCTL_RXINJECT_BIND => bind,
        abi::IOCTL_RXINJECT_SET_DIRECTION => set_direction,
        abi::IOCTL_RXINJECT_GET_COUNTERS => get_counters,
        abi::IOCTL_RXINJECT_SET_CAPTURE => set_capture,
        abi::IOCTL_RXINJECT_STOP_CAPTURE => stop_capture,
        abi::IOCTL_RXINJECT_SET_FILTER => set_filter,
        abi::IOCTL_RXINJECT_GET_CAPTURE_STATS => get_capture_stats,
        abi::IOCTL_RXINJECT_CHECK_FILTER => |_, io| check_filter(io),
        _ => return (STATUS_INVALID_DEVICE_REQUEST, 0),
    };
    // SAFETY: our IRP.
    let sys = unsafe { (*irp).SystemBuffer }.cast::<u8>();
    if sys.is_null() && (in_len != 0 || out_len != 0) {
        return (STATUS_INVALID_PARAMETER, 0);
    }
    op(h, &mut Buffers { sys, in_len, out_len })
}

/// The METHOD_BUFFERED system buffer: input and output share it.
struct Buffers {
    sys: *mut u8,
    in_len: usize,
    out_len: usize,
}

impl Buffers {
    /// A copy of the input record, if the input is long enough.
    fn input<T: Pod>(&self) -> Option<T> {
        if self.in_len < size_of::<T>() {
            return None;
        }
        // SAFETY: the system buffer holds at least `in_len` bytes of input.
        T::read_from(unsafe { core::slice::from_raw_parts(self.sys, self.in_len) })
    }

    /// The whole input. It aliases the output: drop it before calling [`Self::output`].
    fn input_bytes(&self) -> &[u8] {
        if self.in_len == 0 {
            return &[];
        }
        // SAFETY: the system buffer holds at least `in_len` bytes of input.
        unsafe { core::slice::from_raw_parts(self.sys, self.in_len) }
    }

    /// The output area. Only created after the input was read (the two alias).
    fn output(&mut self) -> &mut [u8] {
        if self.out_len == 0 {
            return &mut [];
        }
        // SAFETY: the system buffer holds at least `out_len` bytes; no input slice is alive.
        unsafe { core::slice::from_raw_parts_mut(self.sys, self.out_len) }
    }

    /// Writes one record as the whole output.
    fn reply<T: Pod>(&mut self, value: &T) -> (NTSTATUS, usize) {
        match value.write_to(self.output()) {
            Some(n) => (STATUS_SUCCESS, n),
            None => (STATUS_BUFFER_TOO_SMALL, 0),
        }
    }
}

fn get_version(io: &mut Buffers) -> (NTSTATUS, usize) {
    let (major, minor, patch) = abi::DRIVER_VERSION;
    io.reply(&VersionInfo {
        abi_version: abi::ABI_VERSION,
        driver_version: u32::from(major) << 24 | u32::from(minor) << 16 | u32::from(patch),
        max_write_bytes: abi::MAX_WRITE_BYTES,
        max_frames_per_write: abi::MAX_FRAMES_PER_WRITE,
    })
}

fn list_adapters(io: &mut Buffers) -> (NTSTATUS, usize) {
    let header_len = size_of::<AdapterListHeader>();
    let entry_len = size_of::<AdapterEntry>();
    let out = io.output();
    if out.len() < header_len {
        return (STATUS_BUFFER_TOO_SMALL, 0);
    }
    let room = (out.len() - header_len) / entry_len;
    let (mut total, mut returned) = (0u32, 0u32);
    filter::for_each_module(|m| {
        if (returned as usize) < room {
            let at = header_len + returned as usize * entry_len;
            let _ = m.describe().write_to(&mut out[at..at + entry_len]);
            returned += 1;
        }
        total += 1;
    });
    let header = AdapterListHeader {
        total,
        returned,
        entry_size: entry_len as u32,
        reserved: 0,
    };
    let _ = header.write_to(out);
    let status = if returned == total {
        STATUS_SUCCESS
    } else {
        STATUS_BUFFER_OVERFLOW
    };
    (status, header_len + returned as usize * entry_len)
}

fn bind(h: &OpenHandle, io: &mut Buffers) -> (NTSTATUS, usize) {
    let Some(req) = io.input::<BindRequest>() else {
        return (STATUS_INVALID_PARAMETER, 0);
    };
    if !abi::abi_compatible(abi::ABI_VERSION, req.abi_version) {
        return (STATUS_REVISION_MISMATCH, 0);
    }
    let Some(_control) = h.begin_control() else {
        return (STATUS_DEVICE_BUSY, 0);
    };
    match filter::find_by_if_index(req.if_index) {
        Some(id) => {
            // The filter types it asked for stay with the adapter they were asked on only
            // while the handle is bound there.
            if h.binding().is_some_and(|(old, _)| old != id) {
                crate::pfilter::remove_handle(h);
            }
            h.bind(id, req.if_index);
            capture::rebind(h, id);
            (STATUS_SUCCESS, 0)
        }
        None => (STATUS_NOT_FOUND, 0),
    }
}

fn set_capture(h: &OpenHandle, io: &mut Buffers) -> (NTSTATUS, usize) {
    let Some(config) = io.input::<CaptureConfig>() else {
        return (STATUS_INVALID_PARAMETER, 0);
    };
    let Some(_control) = h.begin_control() else {
        return (STATUS_DEVICE_BUSY, 0);
    };
    (capture::set_capture(h, &config), 0)
}

fn stop_capture(h: &OpenHandle, _io: &mut Buffers) -> (NTSTATUS, usize) {
    let Some(_control) = h.begin_control() else {
        return (STATUS_DEVICE_BUSY, 0);
    };
    (capture::stop_capture(h), 0)
}

fn set_filter(h: &OpenHandle, io: &mut Buffers) -> (NTSTATUS, usize) {
    let Some(_control) = h.begin_control() else {
        return (STATUS_DEVICE_BUSY, 0);
    };
    let (status, verdict) = {
        // The whole input is the program (no record around it).
        let input = io.input_bytes();
        capture::set_filter(h, input)
    };
    // The verdict, if the caller gave room for it (the input was consumed above).
    match verdict.write_to(io.output()) {
        Some(n) => (status, n),
        None => (status, 0),
    }
}

/// The verdict comes back with STATUS_SUCCESS whatever it is: Windows copies no output with an
/// error status.
fn check_filter(io: &mut Buffers) -> (NTSTATUS, usize) {
    let verdict = capture::check_filter(io.input_bytes());
    match verdict {
        Some(v) => io.reply(&v),
        None => (STATUS_INSUFFICIENT_RESOURCES, 0),
    }
}

fn get_capture_stats(h: &OpenHandle, io: &mut Buffers) -> (NTSTATUS, usize) {
    io.reply(&capture::stats(h))
}

fn set_direction(h: &OpenHandle, io: &mut Buffers) -> (NTSTATUS, usize) {
    match io.input::<SetDirection>().map(|d| d.direction) {
        Some(abi::DIRECTION_TX) => h.set_rx_default(false),
        Some(abi::DIRECTION_RX) => h.set_rx_default(true),
        _ => return (STATUS_INVALID_PARAMETER, 0),
    }
    (STATUS_SUCCESS, 0)
}

fn get_counters(h: &OpenHandle, io: &mut Buffers) -> (NTSTATUS, usize) {
    let mut c = Counters {
        handle: h.counters.snapshot(),
        ..Counters::default()
    };
    if let Some((id, if_index)) = h.binding() {
        c.flags |= abi::COUNTERS_BOUND;
        c.if_index = if_index;
        if let Some(adapter) = filter::with_module(id, |m| m.counters_snapshot()) {
            c.flags |= abi::COUNTERS_ADAPTER_PRESENT;
            c.adapter = adapter;
        }
    }
    io.reply(&c)
}

/// Keeps `AdapterEntry` in use from this module's point of view (built in `filter.rs`).
#[allow(dead_code)]
const _ENTRY: AdapterEntry = AdapterEntry::ZERO;
