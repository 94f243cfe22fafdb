//! Debug output through `DbgPrintEx` (component `DPFLTR_IHVNETWORK_ID`).
//!
//! Messages are formatted here into a small stack buffer and passed as `"%s"` with one
//! argument, so no variadic call carries data the callee must interpret. Control paths only;
//! nothing in the per-frame datapath logs.

use core::fmt::{self, Write};

use ndis_sys::{DPFLTR_IHVNETWORK_ID, DbgPrintEx};

const CAPACITY: usize = 240;

struct Line {
    buf: [u8; CAPACITY],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep one byte for the terminator; truncate silently (it is a log line).
        let room = CAPACITY - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Formats `args` with an `rxinject: ` prefix and a newline and prints it at `level`.
/// IRQL <= DISPATCH_LEVEL (DbgPrintEx's own limit is HIGH_LEVEL, but `%s` needs resident
/// memory, which a stack buffer is).
pub fn log(level: u32, args: fmt::Arguments<'_>) {
    let mut line = Line {
        buf: [0; CAPACITY],
        len: 0,
    };
    let _ = line.write_str("rxinject: ");
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    line.buf[line.len] = 0;
    // SAFETY: both strings are NUL-terminated and live across the call.
    unsafe {
        DbgPrintEx(
            DPFLTR_IHVNETWORK_ID,
            level,
            c"%s".as_ptr().cast(),
            line.buf.as_ptr(),
        )
    };
}

/// `trace!(INFO, "format", args...)`: levels are ERROR, WARNING, TRACE, INFO.
macro_rules! trace {
    (ERROR, $($arg:tt)*) => { $crate::trace::log(ndis_sys::DPFLTR_ERROR_LEVEL, format_args!($($arg)*)) };
    (WARNING, $($arg:tt)*) => { $crate::trace::log(ndis_sys::DPFLTR_WARNING_LEVEL, format_args!($($arg)*)) };
    (TRACE, $($arg:tt)*) => { $crate::trace::log(ndis_sys::DPFLTR_TRACE_LEVEL, format_args!($($arg)*)) };
    (INFO, $($arg:tt)*) => { $crate::trace::log(ndis_sys::DPFLTR_INFO_LEVEL, format_args!($($arg)*)) };
}
pub(crate) use trace;
