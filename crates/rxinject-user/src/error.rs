//! Errors that say what happened and what to do about it.

use std::fmt;

use ndis_sys::{NDIS_STATUS, NTSTATUS};

use crate::filter::FilterError;
use crate::pcap::FileError;

/// Everything that can go wrong between a tool and the driver.
#[derive(Debug)]
pub enum Error {
    /// `\\.\RxInject` does not exist.
    NotInstalled,
    /// Opening the device was refused.
    AccessDenied,
    /// Another failure to open the device (a Win32 error code).
    Open { code: u32 },
    /// The driver speaks an ABI this tool does not.
    Version { driver: u32, tool: u32 },
    /// No adapter matches the name.
    AdapterNotFound { name: String, available: Vec<String> },
    /// A request completed with a failure status.
    Driver { what: String, status: NTSTATUS },
    /// A frame larger than the adapter takes.
    FrameTooLarge {
        source: String,
        index: usize,
        len: usize,
        max: usize,
    },
    /// A frame shorter than an Ethernet header.
    FrameTooShort {
        source: String,
        index: usize,
        len: usize,
    },
    /// A capture file problem.
    File(FileError),
    /// A filter problem.
    Filter(FilterError),
    /// The driver refused a BPF program.
    FilterRefused { error: u32, instruction: u32 },
    /// An I/O error with what was being done.
    Io { what: String, error: std::io::Error },
    /// The simulator backend could not start, or found the driver breaking a rule.
    Simulator(String),
    /// Not available in this build (e.g. the simulator in the Windows binary).
    Unsupported(String),
}

/// What an NT status means for a user of the tool, if there is something to say.
pub fn status_hint(status: NTSTATUS) -> Option<&'static str> {
    use ndis_sys::*;
    Some(match status {
        STATUS_NDIS_PAUSED => "the adapter is paused or restarting (being reconfigured): try again",
        STATUS_NO_SUCH_DEVICE => "the adapter went away (disabled or removed)",
        STATUS_INVALID_DEVICE_STATE => "the handle is not bound to an adapter, or does not capture",
        STATUS_INSUFFICIENT_RESOURCES => {
            "the driver ran out of buffers for a write this large: send smaller batches"
        }
        STATUS_INVALID_BUFFER_SIZE => {
            "a frame is longer than the adapter takes, or a batch exceeds the write limits"
        }
        STATUS_REVISION_MISMATCH => {
            "the driver and this tool speak different ABI versions: install matching versions"
        }
        STATUS_NOT_FOUND => "rxinject is not attached to that adapter",
        STATUS_DEVICE_BUSY => "another request of this handle is running: try again",
        STATUS_QUOTA_EXCEEDED => {
            "the driver's capture memory (all handles' rings together) is used up: ask for a smaller ring or close a capture"
        }
        _ => return None,
    })
}

/// `STATUS_NAME (0xC023002A)` for any status (NDIS names for NDIS values).
pub fn status_name(status: NTSTATUS) -> String {
    let name = status
        .name()
        .map(str::to_string)
        .or_else(|| NDIS_STATUS(status.0).name().map(str::to_string))
        .unwrap_or_else(|| "status".to_string());
    format!("{name} (0x{:08X})", status.code())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotInstalled => f.write_str(
                "the rxinject driver is not installed or not started (\\\\.\\RxInject does not exist): install it as administrator with `netcfg -v -l rxinject.inf -c s -i RX_RxInject` (see the README), or use --sim to run against the simulator",
            ),
            Error::AccessDenied => {
                f.write_str("access to \\\\.\\RxInject was denied: run this command as administrator")
            }
            Error::Open { code } => write!(f, "cannot open \\\\.\\RxInject: Windows error {code}"),
            Error::Version { driver, tool } => write!(
                f,
                "the driver speaks ABI {}.{} and this tool ABI {}.{}: install the driver and tools of the same release",
                driver >> 16,
                driver & 0xffff,
                tool >> 16,
                tool & 0xffff
            ),
            Error::AdapterNotFound { name, available } => {
                write!(f, "no adapter \"{name}\": ")?;
                if available.is_empty() {
                    f.write_str("rxinject is not attached to any adapter (is the filter bound? see `netcfg -s n`)")
                } else {
                    write!(f, "rxinject is attached to {} (see `rxinject adapters`)", available.join(", "))
                }
            }
            Error::Driver { what, status } => {
                write!(f, "{what}: {}", status_name(*status))?;
                if let Some(h) = status_hint(*status) {
                    write!(f, ": {h}")?;
                }
                Ok(())
            }
            Error::FrameTooLarge { source, index, len, max } => write!(
                f,
                "frame {index} of {source} is {len} bytes; the adapter takes at most {max} ({} with an 802.1Q tag)",
                max + 4
            ),
            Error::FrameTooShort { source, index, len } => {
                write!(f, "frame {index} of {source} is {len} bytes, shorter than an Ethernet header (14)")
            }
            Error::File(e) => e.fmt(f),
            Error::Filter(e) => e.fmt(f),
            Error::FilterRefused { error, instruction } => {
                write!(f, "the driver refused the filter program (error {error}")?;
                if *instruction != u32::MAX {
                    write!(f, " at instruction {instruction}")?;
                }
                f.write_str(")")
            }
            Error::Io { what, error } => write!(f, "{what}: {error}"),
            Error::Simulator(m) => write!(f, "simulator: {m}"),
            Error::Unsupported(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<FileError> for Error {
    fn from(e: FileError) -> Self {
        Error::File(e)
    }
}

impl From<FilterError> for Error {
    fn from(e: FilterError) -> Self {
        Error::Filter(e)
    }
}
