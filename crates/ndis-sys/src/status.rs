//! `NDIS_STATUS` and `NTSTATUS` as newtypes whose `Debug` prints the constant's name, so that
//! a failing test says `NDIS_STATUS_PAUSED`, not `-1071448022`.

use core::fmt;

macro_rules! status_type {
    (
        $(#[$meta:meta])*
        $ty:ident, $prefix:literal {
            $( $(#[$cmeta:meta])* $name:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $ty(pub i32);

        $( $(#[$cmeta])* pub const $name: $ty = $ty($value as u32 as i32); )*

        impl $ty {
            /// The constant's name, if this value is one this crate declares.
            pub const fn name(self) -> Option<&'static str> {
                // Aliases (same value, two names) resolve to the first declared.
                $( if self.0 == $name.0 { return Some(stringify!($name)); } )*
                None
            }

            /// The raw value as the unsigned 32-bit number Windows prints (`0xC023002A`).
            pub const fn code(self) -> u32 {
                self.0 as u32
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, concat!($prefix, "(0x{:08X})"), self.code()),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

status_type! {
    /// `NDIS_STATUS`: a 32-bit status code. Values as the WDK's `shared/ndis/status.h`
    /// defines them: most are NT status values (`(NDIS_STATUS)STATUS_xxx`), but NDIS's own
    /// group is 0xC001xxxx (`NDIS_STATUS_INVALID_LENGTH` is 0xC0010014), which is not the
    /// `STATUS_NDIS_xxx` NTSTATUS of the same name (`STATUS_NDIS_INVALID_LENGTH` is 0xC0230014).
    NDIS_STATUS, "NDIS_STATUS" {
        NDIS_STATUS_SUCCESS = 0x0000_0000u32,
        NDIS_STATUS_PENDING = 0x0000_0103u32,
        NDIS_STATUS_NOT_ACCEPTED = 0x0001_0003u32,
        NDIS_STATUS_INDICATION_REQUIRED = 0x4023_0001u32,
        NDIS_STATUS_LINK_STATE = 0x4001_0017u32,
        /// A status indication: the adapter's packet filter may have changed (ndis.h).
        NDIS_STATUS_PACKET_FILTER = 0x4001_0024u32,
        NDIS_STATUS_FAILURE = 0xC000_0001u32,
        NDIS_STATUS_INVALID_PARAMETER = 0xC000_000Du32,
        NDIS_STATUS_RESOURCES = 0xC000_009Au32,
        NDIS_STATUS_NOT_SUPPORTED = 0xC000_00BBu32,
        NDIS_STATUS_BAD_VERSION = 0xC001_0004u32,
        NDIS_STATUS_BAD_CHARACTERISTICS = 0xC001_0005u32,
        NDIS_STATUS_DEVICE_FAILED = 0xC001_0008u32,
        NDIS_STATUS_MULTICAST_FULL = 0xC001_0009u32,
        /// An aborted OID request; not `NDIS_STATUS_SEND_ABORTED`.
        NDIS_STATUS_REQUEST_ABORTED = 0xC001_000Cu32,
        NDIS_STATUS_INVALID_LENGTH = 0xC001_0014u32,
        NDIS_STATUS_INVALID_DATA = 0xC001_0015u32,
        NDIS_STATUS_BUFFER_TOO_SHORT = 0xC001_0016u32,
        NDIS_STATUS_INVALID_OID = 0xC001_0017u32,
        NDIS_STATUS_UNSUPPORTED_MEDIA = 0xC001_0019u32,
        /// An aborted send (`STATUS_NDIS_REQUEST_ABORTED`).
        NDIS_STATUS_SEND_ABORTED = 0xC023_000Cu32,
        NDIS_STATUS_MEDIA_DISCONNECTED = 0xC023_001Fu32,
        NDIS_STATUS_PAUSED = 0xC023_002Au32,
        NDIS_STATUS_LOW_POWER_STATE = 0xC023_002Fu32,
    }
}

status_type! {
    /// `NTSTATUS`.
    NTSTATUS, "NTSTATUS" {
        STATUS_SUCCESS = 0x0000_0000u32,
        STATUS_PENDING = 0x0000_0103u32,
        /// A wait timed out (`KeWaitForSingleObject`).
        STATUS_TIMEOUT = 0x0000_0102u32,
        STATUS_DEVICE_BUSY = 0x8000_0011u32,
        STATUS_BUFFER_OVERFLOW = 0x8000_0005u32,
        STATUS_UNSUCCESSFUL = 0xC000_0001u32,
        STATUS_NOT_IMPLEMENTED = 0xC000_0002u32,
        /// A handle closed already (the I/O manager answers; no driver sees the request).
        STATUS_INVALID_HANDLE = 0xC000_0008u32,
        STATUS_QUOTA_EXCEEDED = 0xC000_0044u32,
        STATUS_INVALID_PARAMETER = 0xC000_000Du32,
        STATUS_NO_SUCH_DEVICE = 0xC000_000Eu32,
        STATUS_INVALID_DEVICE_REQUEST = 0xC000_0010u32,
        STATUS_ACCESS_DENIED = 0xC000_0022u32,
        /// A request's time ran out (an OID request the miniport did not answer in time).
        STATUS_IO_TIMEOUT = 0xC000_00B5u32,
        STATUS_BUFFER_TOO_SMALL = 0xC000_0023u32,
        STATUS_OBJECT_NAME_INVALID = 0xC000_0033u32,
        STATUS_OBJECT_NAME_NOT_FOUND = 0xC000_0034u32,
        STATUS_INSUFFICIENT_RESOURCES = 0xC000_009Au32,
        STATUS_NOT_SUPPORTED = 0xC000_00BBu32,
        STATUS_CANCELLED = 0xC000_0120u32,
        STATUS_INVALID_DEVICE_STATE = 0xC000_0184u32,
        STATUS_INVALID_BUFFER_SIZE = 0xC000_0206u32,
        STATUS_NOT_FOUND = 0xC000_0225u32,
        STATUS_DEVICE_NOT_READY = 0xC000_00A3u32,
        STATUS_REVISION_MISMATCH = 0xC000_0059u32,
        STATUS_NDIS_PAUSED = 0xC023_002Au32,
    }
}

impl NDIS_STATUS {
    /// `NT_SUCCESS`-style test: success and informational codes.
    pub const fn is_success(self) -> bool {
        self.0 >= 0
    }
}

impl NTSTATUS {
    /// `NT_SUCCESS(status)`.
    pub const fn is_success(self) -> bool {
        self.0 >= 0
    }
}

impl From<NDIS_STATUS> for NTSTATUS {
    /// Keeps the value: most NDIS 6 status codes are NT status values. The 0xC001xxxx group is
    /// NDIS's own and has no NTSTATUS name; such a value passes through unchanged.
    fn from(status: NDIS_STATUS) -> Self {
        NTSTATUS(status.0)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn debug_prints_the_constant_name() {
        assert_eq!(format!("{:?}", NDIS_STATUS_PAUSED), "NDIS_STATUS_PAUSED");
        assert_eq!(format!("{:?}", STATUS_PENDING), "STATUS_PENDING");
        // Two codes, not an alias: an aborted request and an aborted send.
        assert_eq!(
            format!("{:?}", NDIS_STATUS_SEND_ABORTED),
            "NDIS_STATUS_SEND_ABORTED"
        );
        assert_ne!(NDIS_STATUS_SEND_ABORTED, NDIS_STATUS_REQUEST_ABORTED);
    }

    #[test]
    fn unknown_values_print_in_hex() {
        assert_eq!(format!("{:?}", NDIS_STATUS(0x1234)), "NDIS_STATUS(0x00001234)");
        assert_eq!(format!("{:?}", NTSTATUS(-1)), "NTSTATUS(0xFFFFFFFF)");
    }

    #[test]
    fn success_follows_nt_success() {
        assert!(NDIS_STATUS_SUCCESS.is_success());
        assert!(NDIS_STATUS_PENDING.is_success());
        assert!(!NDIS_STATUS_PAUSED.is_success());
        assert!(!STATUS_CANCELLED.is_success());
    }
}
