//! Capture: what a handle asks for ([`CaptureConfig`]), what a read returns (records: a
//! [`RecordHeader`] and the frame's first bytes), the filter verdict and the statistics.
//!
//! ```text
//! a read's data:  RecordHeader (24 bytes) | frame bytes (caplen) | zero padding to 8 | next record ...
//! ```
//!
//! A capturing handle sees every frame that passes its adapter in the directions it asked
//! for: receives from below and frames injected up are **inbound**, sends from above and
//! frames injected down are **outbound**; injected frames are marked. A frame whose 802.1Q tag
//! travels out of band (`Ieee8021QNetBufferListInfo`) is captured with the tag back in its
//! header, as it is on the wire. The BPF filter (if any) sees the same bytes, and its return
//! value caps the captured length, as in libpcap.
//!
//! Reads return as many whole records as fit. A read completes when at least `min_bytes` of
//! records are waiting (`CAPTURE_IMMEDIATE`: when any record is), when `timeout_ms` has passed
//! since it was issued (with whatever is there, possibly nothing), or at once with
//! `CAPTURE_NONBLOCK`. The ring never makes the datapath wait: a frame that does not fit is
//! counted in [`CaptureStats::dropped`].

use crate::Pod;

/// Ring size when [`CaptureConfig::ring_bytes`] is 0.
pub const DEFAULT_RING_BYTES: u32 = 1 << 20;
/// The smallest ring: room for a record of the largest snap length.
pub const MIN_RING_BYTES: u32 = 128 << 10;
/// The largest ring (non-paged memory, per handle).
pub const MAX_RING_BYTES: u32 = 64 << 20;
/// The capture rings of every handle together, at most (non-paged memory, driver-wide): a
/// `SET_CAPTURE` beyond it fails with `STATUS_QUOTA_EXCEEDED`.
pub const MAX_TOTAL_RING_BYTES: u64 = 256 << 20;
/// The largest snap length (also the snap length when [`CaptureConfig::snaplen`] is 0).
pub const MAX_SNAPLEN: u32 = 65535;
/// Read timeouts are honoured to within this many milliseconds.
pub const TIMEOUT_RESOLUTION_MS: u32 = 10;

/// [`CaptureConfig::directions`]: frames going up to the host (received, or injected up).
pub const CAPTURE_IN: u32 = 1;
/// [`CaptureConfig::directions`]: frames going down to the wire (sent, or injected down).
pub const CAPTURE_OUT: u32 = 2;

/// [`CaptureConfig::flags`]: leave out the frames this handle injected.
pub const CAPTURE_EXCLUDE_OWN: u32 = 1;
/// [`CaptureConfig::flags`]: a read completes as soon as one record is waiting.
pub const CAPTURE_IMMEDIATE: u32 = 2;
/// [`CaptureConfig::flags`]: a read never waits (it may complete with no record).
pub const CAPTURE_NONBLOCK: u32 = 4;
/// [`CaptureConfig::flags`]: leave out every injected frame (any handle's). Since ABI 1.2.
pub const CAPTURE_EXCLUDE_INJECTED: u32 = 8;
const FLAGS_KNOWN: u32 =
    CAPTURE_EXCLUDE_OWN | CAPTURE_IMMEDIATE | CAPTURE_NONBLOCK | CAPTURE_EXCLUDE_INJECTED;

/// Input of `IOCTL_RXINJECT_SET_CAPTURE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Ring size in bytes: 0 for [`DEFAULT_RING_BYTES`], else [`MIN_RING_BYTES`] ..=
    /// [`MAX_RING_BYTES`]. A different size than the current one empties the ring.
    pub ring_bytes: u32,
    /// Bytes kept of each frame: 0 for [`MAX_SNAPLEN`], else 1 ..= [`MAX_SNAPLEN`].
    pub snaplen: u32,
    /// [`CAPTURE_IN`] | [`CAPTURE_OUT`]; 0 for both.
    pub directions: u32,
    /// `CAPTURE_EXCLUDE_OWN`, `CAPTURE_EXCLUDE_INJECTED`, `CAPTURE_IMMEDIATE`,
    /// `CAPTURE_NONBLOCK`.
    pub flags: u32,
    /// A read completes once this many bytes of records wait (0 or 1: any record).
    pub min_bytes: u32,
    /// A read completes this long after it was issued, records or not (0: no timeout).
    pub timeout_ms: u32,
    pub reserved: [u32; 2],
}

/// Why a [`CaptureConfig`] is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    RingSize(u32),
    Snaplen(u32),
    Directions(u32),
    Flags(u32),
    Reserved,
}

/// A [`CaptureConfig`] with its defaults applied and every field checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub ring_bytes: u32,
    pub snaplen: u32,
    pub directions: u32,
    pub flags: u32,
    pub min_bytes: u32,
    pub timeout_ms: u32,
}

impl CaptureConfig {
    /// Checks the configuration and applies the defaults.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let ring_bytes = match self.ring_bytes {
            0 => DEFAULT_RING_BYTES,
            n if (MIN_RING_BYTES..=MAX_RING_BYTES).contains(&n) => n & !7,
            n => return Err(ConfigError::RingSize(n)),
        };
        let snaplen = match self.snaplen {
            0 => MAX_SNAPLEN,
            n if n <= MAX_SNAPLEN => n,
            n => return Err(ConfigError::Snaplen(n)),
        };
        let directions = match self.directions {
            0 => CAPTURE_IN | CAPTURE_OUT,
            d if d & !(CAPTURE_IN | CAPTURE_OUT) == 0 => d,
            d => return Err(ConfigError::Directions(d)),
        };
        if self.flags & !FLAGS_KNOWN != 0 {
            return Err(ConfigError::Flags(self.flags));
        }
        if self.reserved != [0; 2] {
            return Err(ConfigError::Reserved);
        }
        Ok(Settings {
            ring_bytes,
            snaplen,
            directions,
            flags: self.flags,
            min_bytes: self.min_bytes.max(1),
            timeout_ms: self.timeout_ms,
        })
    }
}

/// [`RecordHeader::flags`]: the frame went up (received, or injected up).
pub const RECORD_INBOUND: u16 = 1;
/// [`RecordHeader::flags`]: the frame went down (sent, or injected down).
pub const RECORD_OUTBOUND: u16 = 2;
/// [`RecordHeader::flags`]: rxinject injected the frame (through some handle's write).
pub const RECORD_INJECTED: u16 = 4;
/// [`RecordHeader::flags`]: the 802.1Q tag was out of band and is back in the captured bytes.
pub const RECORD_VLAN_RESTORED: u16 = 8;

/// The header of one captured frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// When the frame passed, in 100 ns units since 1601-01-01 UTC (a Windows FILETIME).
    pub timestamp: i64,
    /// Bytes of the frame in the record.
    pub caplen: u32,
    /// Bytes of the frame on the wire (with its 802.1Q tag).
    pub len: u32,
    /// The adapter ([`crate::AdapterEntry::if_index`]).
    pub if_index: u32,
    /// `RECORD_*`.
    pub flags: u16,
    /// Bytes of this header (24); the frame follows it.
    pub header_len: u16,
}

/// Bytes of a [`RecordHeader`].
pub const RECORD_HEADER_LEN: usize = 24;
/// Records start at multiples of this.
pub const RECORD_ALIGN: usize = 8;

const _: () = assert!(core::mem::size_of::<RecordHeader>() == RECORD_HEADER_LEN);

/// Bytes a record with `caplen` bytes of frame occupies, padding included.
pub const fn record_len(caplen: usize) -> usize {
    (RECORD_HEADER_LEN + caplen + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// The size a read buffer must have at least, for a handle with snap length `snaplen`: one
/// record of the largest kind.
pub const fn min_read_len(snaplen: u32) -> usize {
    let s = if snaplen == 0 || snaplen > MAX_SNAPLEN {
        MAX_SNAPLEN
    } else {
        snaplen
    };
    record_len(s as usize)
}

/// One record of a read's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub header: RecordHeader,
    pub frame: &'a [u8],
}

/// The records of a read's data: a checked view that stops at the first inconsistency (and
/// says so through [`Records::malformed`]).
pub struct Records<'a> {
    buf: &'a [u8],
    offset: usize,
    malformed: bool,
}

/// Iterates over the records of `buf` (the bytes a read returned).
pub fn records(buf: &[u8]) -> Records<'_> {
    Records {
        buf,
        offset: 0,
        malformed: false,
    }
}

impl Records<'_> {
    /// Whether iteration stopped at a malformed record rather than at the end.
    pub fn malformed(&self) -> bool {
        self.malformed
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.offset >= self.buf.len() || self.malformed {
            return None;
        }
        let rest = &self.buf[self.offset..];
        let Some(header) = RecordHeader::read_from(rest) else {
            self.malformed = true;
            return None;
        };
        let start = usize::from(header.header_len);
        let end = start.checked_add(header.caplen as usize);
        match end.filter(|&e| start >= RECORD_HEADER_LEN && e <= rest.len() && header.caplen <= header.len) {
            Some(end) => {
                // The header (of `header_len` bytes) and the frame, padded to 8.
                self.offset += ((end + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)).min(rest.len());
                Some(Record {
                    header,
                    frame: &rest[start..end],
                })
            }
            None => {
                self.malformed = true;
                None
            }
        }
    }
}

/// Output of `IOCTL_RXINJECT_CHECK_FILTER`, and of `IOCTL_RXINJECT_SET_FILTER` when it accepts
/// the program (and the output buffer has room for it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterVerdict {
    /// `FILTER_*`: 0 when the program was accepted.
    pub error: u32,
    /// The instruction at fault, or `u32::MAX`.
    pub instruction: u32,
}

pub const FILTER_OK: u32 = 0;
/// No instruction, more than 4096, or a length that is not a multiple of 8.
pub const FILTER_BAD_LENGTH: u32 = 1;
pub const FILTER_UNKNOWN_OPCODE: u32 = 2;
pub const FILTER_JUMP_OUT_OF_RANGE: u32 = 3;
pub const FILTER_BAD_MEMORY_INDEX: u32 = 4;
pub const FILTER_UNINITIALIZED_MEMORY: u32 = 5;
pub const FILTER_DIVISION_BY_ZERO: u32 = 6;
pub const FILTER_BAD_SHIFT: u32 = 7;
pub const FILTER_NO_FINAL_RETURN: u32 = 8;

/// [`CaptureStats::flags`]: the handle is capturing.
pub const STATS_CAPTURING: u32 = 1;
/// [`CaptureStats::flags`]: a BPF filter is set.
pub const STATS_FILTERED: u32 = 2;
/// [`CaptureStats::flags`]: the adapter the handle captured on went away.
pub const STATS_ADAPTER_GONE: u32 = 4;

/// Output of `IOCTL_RXINJECT_GET_CAPTURE_STATS`. `accepted = captured + dropped`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames offered to the handle (every frame of its adapter while it captured).
    pub seen: u64,
    /// Frames that passed the direction, own-injection and BPF filters.
    pub accepted: u64,
    /// Frames written to the ring.
    pub captured: u64,
    /// Accepted frames lost because the ring was full.
    pub dropped: u64,
    /// Read IRPs completed with records (or by timeout, non-blocking mode, cleanup).
    pub reads_completed: u64,
    pub ring_bytes: u32,
    /// Bytes of records waiting in the ring.
    pub ring_used: u32,
    /// Records waiting in the ring.
    pub records_queued: u32,
    /// Read IRPs waiting.
    pub reads_pending: u32,
    /// `STATS_*`.
    pub flags: u32,
    pub snaplen: u32,
}

const _: () = assert!(core::mem::size_of::<CaptureConfig>() == 32);
const _: () = assert!(core::mem::size_of::<FilterVerdict>() == 8);
const _: () = assert!(core::mem::size_of::<CaptureStats>() == 64);

// SAFETY: #[repr(C)] integers only, no padding (sizes asserted above).
unsafe impl Pod for CaptureConfig {}
// SAFETY: as above.
unsafe impl Pod for RecordHeader {}
// SAFETY: as above.
unsafe impl Pod for FilterVerdict {}
// SAFETY: as above.
unsafe impl Pod for CaptureStats {}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn record(caplen: usize, len: u32, flags: u16) -> Vec<u8> {
        let h = RecordHeader {
            timestamp: 7,
            caplen: caplen as u32,
            len,
            if_index: 10,
            flags,
            header_len: RECORD_HEADER_LEN as u16,
        };
        let mut out = std::vec![0u8; record_len(caplen)];
        h.write_to(&mut out).unwrap();
        for (i, b) in out[RECORD_HEADER_LEN..RECORD_HEADER_LEN + caplen]
            .iter_mut()
            .enumerate()
        {
            *b = i as u8;
        }
        out
    }

    #[test]
    fn defaults_and_limits_of_a_config() {
        let s = CaptureConfig::default().settings().unwrap();
        assert_eq!(
            (s.ring_bytes, s.snaplen, s.directions, s.min_bytes),
            (DEFAULT_RING_BYTES, MAX_SNAPLEN, 3, 1)
        );
        let bad = |c: CaptureConfig| c.settings().unwrap_err();
        assert_eq!(
            bad(CaptureConfig {
                ring_bytes: MIN_RING_BYTES - 1,
                ..Default::default()
            }),
            ConfigError::RingSize(MIN_RING_BYTES - 1)
        );
        assert_eq!(
            bad(CaptureConfig {
                ring_bytes: MAX_RING_BYTES + 8,
                ..Default::default()
            }),
            ConfigError::RingSize(MAX_RING_BYTES + 8)
        );
        assert_eq!(
            bad(CaptureConfig {
                snaplen: 65536,
                ..Default::default()
            }),
            ConfigError::Snaplen(65536)
        );
        assert_eq!(
            bad(CaptureConfig {
                directions: 4,
                ..Default::default()
            }),
            ConfigError::Directions(4)
        );
        assert_eq!(
            bad(CaptureConfig {
                flags: 16,
                ..Default::default()
            }),
            ConfigError::Flags(16)
        );
        assert_eq!(
            bad(CaptureConfig {
                reserved: [0, 1],
                ..Default::default()
            }),
            ConfigError::Reserved
        );
        // The smallest ring holds a record of the largest snap length.
        assert!(MIN_RING_BYTES as usize >= min_read_len(0));
        assert_eq!(min_read_len(0), 24 + 65536);
        assert_eq!(min_read_len(60), 24 + 64);
    }

    #[test]
    fn records_iterate_and_stop_at_garbage() {
        let mut buf = record(60, 60, RECORD_INBOUND);
        buf.extend(record(13, 1514, RECORD_OUTBOUND | RECORD_INJECTED));
        let got: Vec<Record<'_>> = records(&buf).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].header.caplen, got[0].frame.len(), got[0].frame[59]),
            (60, 60, 59)
        );
        assert_eq!((got[1].header.len, got[1].frame.len()), (1514, 13));
        let mut r = records(&buf);
        assert_eq!(r.by_ref().count(), 2);
        assert!(!r.malformed());
        // A caplen running past the end, or larger than len, is malformed.
        let mut bad = record(60, 60, 0);
        bad[8] = 200;
        let mut r = records(&bad);
        assert_eq!(r.by_ref().count(), 0);
        assert!(r.malformed());
        let mut bad = record(60, 59, 0);
        bad.truncate(30);
        let mut r = records(&bad);
        assert_eq!(r.by_ref().count(), 0);
        assert!(r.malformed());
    }
}
