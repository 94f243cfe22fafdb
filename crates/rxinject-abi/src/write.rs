//! The write buffer: frames to inject, each behind a [`FrameHeader`].
//!
//! ```text
//! offset 0:  FrameHeader { length, direction, flags, reserved }   8 bytes
//! offset 8:  frame bytes (length of them)
//!            zero padding up to the next multiple of 8 (optional after the last frame)
//! next:      FrameHeader ...
//! ```
//!
//! [`parse`] validates the whole buffer before any frame is looked at (lengths, directions,
//! flags, limits); [`records`] is the same validation one record at a time, and [`Frames`]
//! the frames of a slice [`parse`] accepted. The driver validates the whole buffer before it
//! allocates anything (a malformed buffer injects nothing), then reads it again record by
//! record as it copies the frames out: the buffer is the writer's memory ([`Source`]), so the
//! second pass validates again what it reads, from its own copy of every header.

use crate::{MAX_FRAMES_PER_WRITE, MAX_WRITE_BYTES, MIN_FRAME_LEN, VLAN_TAG_LEN};

/// Header of one frame record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameHeader {
    /// Bytes of the frame that follows.
    pub length: u32,
    /// [`DIR_DEFAULT`], [`DIR_TX`] or [`DIR_RX`].
    pub direction: u8,
    /// `FLAG_*`.
    pub flags: u8,
    /// Must be zero.
    pub reserved: u16,
}

const _: () = assert!(core::mem::size_of::<FrameHeader>() == HEADER_LEN);

/// Bytes of a [`FrameHeader`].
pub const HEADER_LEN: usize = 8;
/// Records start at multiples of this.
pub const RECORD_ALIGN: usize = 8;

/// Use the handle's default direction.
pub const DIR_DEFAULT: u8 = 0;
/// Down to the wire.
pub const DIR_TX: u8 = 1;
/// Up into the host stack.
pub const DIR_RX: u8 = 2;

/// Tx only: ask NDIS to loop the frame back to local protocols that would receive it
/// (`NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`).
pub const FLAG_TX_LOOPBACK: u8 = 0x01;
const FLAGS_KNOWN: u8 = FLAG_TX_LOOPBACK;

/// The Ethernet type of an 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;

/// Why a write buffer was refused. Frame numbers count from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// More than [`MAX_WRITE_BYTES`].
    TooManyBytes { bytes: usize },
    /// More than [`MAX_FRAMES_PER_WRITE`] frames.
    TooManyFrames,
    /// The buffer ends inside a header or a frame.
    Truncated { frame: u32, offset: usize },
    /// Padding between records is not zero.
    BadPadding { frame: u32, offset: usize },
    /// Reserved header bits set.
    BadHeader { frame: u32 },
    /// A direction other than default/Tx/Rx.
    BadDirection { frame: u32, direction: u8 },
    /// Unknown flags, or Tx flags on an Rx frame.
    BadFlags { frame: u32, flags: u8 },
    /// Shorter than an Ethernet header.
    FrameTooShort { frame: u32, length: u32 },
    /// Longer than the adapter's maximum frame size (+4 when it carries an 802.1Q tag).
    FrameTooLong { frame: u32, length: u32, max: u32 },
}

impl WriteError {
    /// Whether the error is about sizes (the driver answers `STATUS_INVALID_BUFFER_SIZE`)
    /// rather than format (`STATUS_INVALID_PARAMETER`).
    pub fn is_size(&self) -> bool {
        matches!(
            self,
            WriteError::TooManyBytes { .. }
                | WriteError::TooManyFrames
                | WriteError::FrameTooShort { .. }
                | WriteError::FrameTooLong { .. }
        )
    }
}

/// What a valid buffer holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub frames: u32,
    /// Sum of the frame lengths.
    pub frame_bytes: u64,
}

/// A frame of a validated buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub direction: u8,
    pub flags: u8,
    pub data: &'a [u8],
}

/// The 802.1Q TCI of an Ethernet frame, if it is tagged.
pub fn vlan_tci(frame: &[u8]) -> Option<u16> {
    if frame.len() >= 18 && u16::from_be_bytes([frame[12], frame[13]]) == ETHERTYPE_VLAN {
        Some(u16::from_be_bytes([frame[14], frame[15]]))
    } else {
        None
    }
}

const fn align_up(n: usize) -> usize {
    (n + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// Bytes a record for a frame of `frame_len` bytes occupies, padding included.
pub const fn record_len(frame_len: usize) -> usize {
    align_up(HEADER_LEN + frame_len)
}

/// Where a write buffer's bytes come from. In the driver it is the writer's own memory
/// (direct I/O), which another thread of the writer may change at any moment: every byte the
/// parser looks at is read once, through [`Source::read`] into a local, and only the local is
/// used; frame bytes are copied once, with [`Source::copy`]. A slice is a source too.
pub trait Source {
    /// Bytes in the buffer (fixed for its lifetime).
    fn len(&self) -> usize;
    /// Whether the buffer is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The `N` bytes at `offset`, read once; `None` if they are not all inside the buffer.
    fn read<const N: usize>(&self, offset: usize) -> Option<[u8; N]>;
    /// Copies `out.len()` bytes from `offset`; false (and nothing copied) if they are not all
    /// inside the buffer.
    fn copy(&self, offset: usize, out: &mut [u8]) -> bool;
}

impl Source for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn read<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let b = self.get(offset..offset.checked_add(N)?)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Some(out)
    }

    fn copy(&self, offset: usize, out: &mut [u8]) -> bool {
        match offset
            .checked_add(out.len())
            .and_then(|end| self.get(offset..end))
        {
            Some(b) => {
                out.copy_from_slice(b);
                true
            }
            None => false,
        }
    }
}

/// One validated record of a write buffer, as read (once) from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub direction: u8,
    pub flags: u8,
    /// Offset of the frame's first byte in the buffer.
    pub data: usize,
    /// Bytes of the frame.
    pub length: u32,
    /// The frame's 802.1Q TCI if it is tagged (EtherType 0x8100 at bytes 12..14): the tag was
    /// read once, here, and decided the frame's size limit.
    pub tci: Option<u16>,
}

/// The records of a buffer, each validated as it is read (the checks of [`parse`]); the
/// first invalid record ends the iteration with its error.
pub struct Records<'a, S: Source + ?Sized> {
    src: &'a S,
    max_frame: u32,
    offset: usize,
    frame: u32,
    failed: bool,
    /// Every record's 802.1Q tag is looked for (else only where the length needs it: a
    /// count of the frames and their bytes).
    tags: bool,
}

/// Iterates over the records of `src` for an adapter whose largest untagged frame is
/// `max_frame` bytes.
pub fn records<S: Source + ?Sized>(src: &S, max_frame: u32) -> Records<'_, S> {
    Records {
        src,
        max_frame,
        offset: 0,
        frame: 0,
        failed: false,
        tags: true,
    }
}

impl<S: Source + ?Sized> Records<'_, S> {
    // Inlined into each loop: the driver's two passes are its per-frame hot path.
    #[inline(always)]
    fn next_record(&mut self) -> Result<Record, WriteError> {
        let (src, offset, frame) = (self.src, self.offset, self.frame);
        let len = src.len();
        if frame == 0 && len > MAX_WRITE_BYTES as usize {
            return Err(WriteError::TooManyBytes { bytes: len });
        }
        if frame >= MAX_FRAMES_PER_WRITE {
            return Err(WriteError::TooManyFrames);
        }
        let Some(h) = src.read::<HEADER_LEN>(offset) else {
            return Err(WriteError::Truncated { frame, offset });
        };
        let h = u64::from_le_bytes(h);
        let (direction, flags, reserved) = ((h >> 32) as u8, (h >> 40) as u8, (h >> 48) as u16);
        // The usual header (no flag, a known direction) in one comparison; the others one by
        // one, each with its error.
        if h >> 32 > u64::from(DIR_RX) {
            if reserved != 0 {
                return Err(WriteError::BadHeader { frame });
            }
            if !matches!(direction, DIR_DEFAULT | DIR_TX | DIR_RX) {
                return Err(WriteError::BadDirection { frame, direction });
            }
            if flags & !FLAGS_KNOWN != 0 || (direction == DIR_RX && flags & FLAG_TX_LOOPBACK != 0) {
                return Err(WriteError::BadFlags { frame, flags });
            }
        }
        let h = FrameHeader {
            length: h as u32,
            direction,
            flags,
            reserved,
        };
        // The header was inside the buffer: `data <= len`, and what remains bounds the frame.
        let data = offset + HEADER_LEN;
        if h.length as usize > len - data {
            return Err(WriteError::Truncated { frame, offset });
        }
        let data_end = data + h.length as usize;
        if h.length < MIN_FRAME_LEN {
            return Err(WriteError::FrameTooShort {
                frame,
                length: h.length,
            });
        }
        // Bytes 12..16: EtherType 0x8100 and the TCI, when the frame has room for a tag (and,
        // for a count, only when the length is beyond what an untagged frame may have).
        let tci = if h.length >= 18 && (self.tags || h.length > self.max_frame) {
            src.read::<4>(data + 12)
                .filter(|t| u16::from_be_bytes([t[0], t[1]]) == ETHERTYPE_VLAN)
                .map(|t| u16::from_be_bytes([t[2], t[3]]))
        } else {
            None
        };
        let max = if tci.is_some() {
            self.max_frame.saturating_add(VLAN_TAG_LEN)
        } else {
            self.max_frame
        };
        if h.length > max {
            return Err(WriteError::FrameTooLong {
                frame,
                length: h.length,
                max,
            });
        }
        // The padding, in one read: the 8 bytes that end where the next record begins (a
        // frame has at least 14 bytes, so they start inside this one's data).
        let next = align_up(data_end).min(len);
        let pad = next - data_end;
        if pad > 0 {
            // Little-endian: the last `pad` bytes are the top ones (pad is 1..=7).
            let tail = src.read::<RECORD_ALIGN>(next - RECORD_ALIGN);
            if tail.is_none_or(|t| u64::from_le_bytes(t) >> (8 * (RECORD_ALIGN - pad)) != 0) {
                return Err(WriteError::BadPadding {
                    frame,
                    offset: data_end,
                });
            }
        }
        self.offset = next;
        self.frame += 1;
        Ok(Record {
            direction: h.direction,
            flags: h.flags,
            data,
            length: h.length,
            tci,
        })
    }
}

impl<S: Source + ?Sized> Iterator for Records<'_, S> {
    type Item = Result<Record, WriteError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || (self.offset >= self.src.len() && self.src.len() <= MAX_WRITE_BYTES as usize) {
            return None;
        }
        let r = self.next_record();
        self.failed = r.is_err();
        Some(r)
    }
}

/// Validates a whole write buffer for an adapter whose largest untagged frame is
/// `max_frame` bytes.
pub fn parse(buf: &[u8], max_frame: u32) -> Result<Summary, WriteError> {
    parse_source(buf, max_frame)
}

/// [`parse`] of any [`Source`].
pub fn parse_source<S: Source + ?Sized>(src: &S, max_frame: u32) -> Result<Summary, WriteError> {
    let mut summary = Summary::default();
    let counted = Records {
        tags: false,
        ..records(src, max_frame)
    };
    for r in counted {
        let r = r?;
        summary.frames += 1;
        summary.frame_bytes += u64::from(r.length);
    }
    Ok(summary)
}

/// The frames of a buffer that [`parse`] accepted.
pub struct Frames<'a> {
    buf: &'a [u8],
    records: Records<'a, [u8]>,
}

/// Iterates over the frames of `buf`. Only meaningful after [`parse`] accepted `buf`; on any
/// other buffer it stops at the first invalid record instead of panicking.
pub fn frames(buf: &[u8]) -> Frames<'_> {
    Frames {
        buf,
        records: records(buf, u32::MAX),
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        let r = self.records.next()?.ok()?;
        let data = self.buf.get(r.data..r.data + r.length as usize)?;
        Some(Frame {
            direction: r.direction,
            flags: r.flags,
            data,
        })
    }
}

/// Writes one record (header, frame, padding) at the start of `out`. Returns the bytes
/// written ([`record_len`]), or `None` if `out` is too short or the frame too long for a
/// header.
pub fn encode(out: &mut [u8], direction: u8, flags: u8, frame: &[u8]) -> Option<usize> {
    let n = record_len(frame.len());
    let length = u32::try_from(frame.len()).ok()?;
    let out = out.get_mut(..n)?;
    out[..4].copy_from_slice(&length.to_le_bytes());
    out[4] = direction;
    out[5] = flags;
    out[6..8].copy_from_slice(&[0, 0]);
    out[HEADER_LEN..HEADER_LEN + frame.len()].copy_from_slice(frame);
    out[HEADER_LEN + frame.len()..].fill(0);
    Some(n)
}

/// A write buffer under construction (user mode, feature `alloc`): frames are appended as
/// records; [`Batch::push`] refuses a frame that would break the write limits, so a full batch
/// is sent and a new one begun.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, Default)]
pub struct Batch {
    buf: alloc::vec::Vec<u8>,
    frames: u32,
}

#[cfg(feature = "alloc")]
impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `frame` with `direction` and `flags`. Returns `false` (and appends nothing) if
    /// the batch would exceed [`MAX_FRAMES_PER_WRITE`] or [`MAX_WRITE_BYTES`], or the frame is
    /// too long for a header. Frame contents are not judged here: the driver does that.
    pub fn push(&mut self, direction: u8, flags: u8, frame: &[u8]) -> bool {
        let n = record_len(frame.len());
        if self.frames >= MAX_FRAMES_PER_WRITE || self.buf.len() + n > MAX_WRITE_BYTES as usize {
            return false;
        }
        let at = self.buf.len();
        self.buf.resize(at + n, 0);
        if encode(&mut self.buf[at..], direction, flags, frame).is_none() {
            self.buf.truncate(at);
            return false;
        }
        self.frames += 1;
        true
    }

    /// Frames in the batch.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// The write buffer.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.frames = 0;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn frame(len: usize, fill: u8) -> Vec<u8> {
        vec![fill; len]
    }

    fn tagged(len: usize) -> Vec<u8> {
        let mut f = frame(len, 0x11);
        f[12] = 0x81;
        f[13] = 0x00;
        f[14] = 0x20; // priority 1
        f[15] = 0x64; // VLAN 100
        f
    }

    /// The record layout's numbers, as the ABI documents them: an 8-byte header, the frame,
    /// padding to 8.
    #[test]
    fn records_are_the_header_and_the_frame_padded_to_8() {
        for (frame_len, record) in [
            (0, 8),
            (1, 16),
            (14, 24),
            (56, 64),
            (57, 72),
            (60, 72),
            (64, 72),
            (1514, 1528),
        ] {
            assert_eq!(record_len(frame_len), record, "a frame of {frame_len} bytes");
        }
    }

    /// A batch takes frames up to MAX_WRITE_BYTES exactly, no byte more, and MAX_FRAMES_PER_WRITE
    /// frames, no frame more.
    #[cfg(feature = "alloc")]
    #[test]
    fn a_batch_fills_to_the_largest_write_exactly() {
        let mut b = Batch::new();
        assert!(b.is_empty());
        // Records of 4,096 bytes: 2,048 of them are MAX_WRITE_BYTES.
        let big = frame(4096 - HEADER_LEN, 0x5a);
        for n in 0..2048 {
            assert!(b.push(DIR_TX, 0, &big), "frame {n}");
        }
        assert!(!b.is_empty());
        assert_eq!(
            (b.frames(), b.as_bytes().len()),
            (2048, crate::MAX_WRITE_BYTES as usize)
        );
        assert!(!b.push(DIR_TX, 0, &[]), "a byte more");
        // Frames: records of 8 bytes, to MAX_FRAMES_PER_WRITE.
        let mut b = Batch::new();
        for n in 0..crate::MAX_FRAMES_PER_WRITE {
            assert!(b.push(DIR_RX, 0, &[]), "frame {n}");
        }
        assert!(!b.push(DIR_RX, 0, &[]), "a frame more");
        assert_eq!(b.frames(), crate::MAX_FRAMES_PER_WRITE);
        b.clear();
        assert!(b.is_empty() && b.as_bytes().is_empty());
    }

    /// A buffer of MAX_WRITE_BYTES is parsed (here, to its first record's fault); one byte
    /// more is refused for its size.
    #[test]
    fn a_buffer_of_the_largest_size_is_parsed_and_one_byte_more_is_not() {
        let max = crate::MAX_WRITE_BYTES as usize;
        let buf = vec![0u8; max + 1];
        assert!(matches!(
            parse(&buf[..max], 1514),
            Err(WriteError::FrameTooShort { frame: 0, length: 0 })
        ));
        assert!(matches!(parse(&buf, 1514), Err(WriteError::TooManyBytes { bytes }) if bytes == max + 1));
    }

    /// A slice as a source: reads and copies inside it succeed with its bytes; past its end
    /// they fail and copy nothing.
    #[test]
    fn a_slice_source_reads_and_copies_only_inside_it() {
        let buf: Vec<u8> = (0..16).collect();
        let src: &[u8] = &buf;
        assert_eq!(Source::len(src), 16);
        assert!(!Source::is_empty(src) && Source::is_empty(&buf[..0]));
        assert_eq!(src.read::<4>(12), Some([12, 13, 14, 15]));
        assert_eq!(src.read::<4>(13), None);
        assert_eq!(src.read::<1>(usize::MAX), None);
        let mut out = [0xAAu8; 5];
        assert!(src.copy(3, &mut out));
        assert_eq!(out, [3, 4, 5, 6, 7]);
        let mut out = [0xAAu8; 5];
        assert!(!src.copy(12, &mut out));
        assert!(!src.copy(usize::MAX, &mut out));
        assert_eq!(out, [0xAA; 5], "nothing copied");
        assert!(src.copy(16, &mut []));
    }

    fn build(records: &[(u8, u8, &[u8])]) -> Vec<u8> {
        let mut out = vec![0u8; records.iter().map(|r| record_len(r.2.len())).sum()];
        let mut at = 0;
        for (d, f, data) in records {
            at += encode(&mut out[at..], *d, *f, data).unwrap();
        }
        out
    }

    #[test]
    fn a_valid_batch_parses_and_iterates_in_order() {
        let (a, b, c) = (frame(60, 1), frame(1514, 2), frame(15, 3));
        let buf = build(&[
            (DIR_TX, FLAG_TX_LOOPBACK, &a),
            (DIR_RX, 0, &b),
            (DIR_DEFAULT, 0, &c),
        ]);
        assert_eq!(buf.len(), 72 + 1528 + 24);
        let s = parse(&buf, 1514).unwrap();
        assert_eq!(
            s,
            Summary {
                frames: 3,
                frame_bytes: 60 + 1514 + 15
            }
        );
        let got: Vec<Frame<'_>> = frames(&buf).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].direction, got[0].flags, got[0].data),
            (DIR_TX, FLAG_TX_LOOPBACK, &a[..])
        );
        assert_eq!((got[1].direction, got[1].data), (DIR_RX, &b[..]));
        assert_eq!((got[2].direction, got[2].data), (DIR_DEFAULT, &c[..]));
    }

    #[test]
    fn the_last_record_may_omit_its_padding() {
        let buf = build(&[(DIR_TX, 0, &frame(15, 7))]);
        let trimmed = &buf[..HEADER_LEN + 15];
        assert_eq!(parse(trimmed, 1514).unwrap().frames, 1);
        assert_eq!(frames(trimmed).count(), 1);
    }

    #[test]
    fn an_empty_buffer_holds_no_frames() {
        assert_eq!(parse(&[], 1514).unwrap(), Summary::default());
    }

    #[test]
    fn sizes_are_limited_per_frame_with_four_more_bytes_for_a_tag() {
        assert_eq!(
            parse(&build(&[(DIR_TX, 0, &frame(13, 0))]), 1514),
            Err(WriteError::FrameTooShort { frame: 0, length: 13 })
        );
        assert_eq!(
            parse(
                &build(&[(DIR_TX, 0, &frame(60, 0)), (DIR_TX, 0, &frame(1515, 0))]),
                1514
            ),
            Err(WriteError::FrameTooLong {
                frame: 1,
                length: 1515,
                max: 1514
            })
        );
        assert!(parse(&build(&[(DIR_TX, 0, &tagged(1518))]), 1514).is_ok());
        assert_eq!(
            parse(&build(&[(DIR_TX, 0, &tagged(1519))]), 1514),
            Err(WriteError::FrameTooLong {
                frame: 0,
                length: 1519,
                max: 1518
            })
        );
        assert!(WriteError::FrameTooShort { frame: 0, length: 1 }.is_size());
    }

    #[test]
    fn malformed_buffers_are_refused_with_the_frame_number() {
        let good = build(&[(DIR_TX, 0, &frame(60, 1)), (DIR_TX, 0, &frame(60, 2))]);
        // Records of 60-byte frames are 72 bytes: the second header is at 72.
        assert_eq!(record_len(60), 72);
        // Truncated in the second frame's data, and in its header.
        assert_eq!(
            parse(&good[..good.len() - 5], 1514),
            Err(WriteError::Truncated { frame: 1, offset: 72 })
        );
        assert_eq!(
            parse(&good[..76], 1514),
            Err(WriteError::Truncated { frame: 1, offset: 72 })
        );
        // A length that points past the end (and would overflow on 32-bit).
        let mut huge = good.clone();
        huge[72..76].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            parse(&huge, 1514),
            Err(WriteError::Truncated { frame: 1, offset: 72 })
        );
        let mut dir = good.clone();
        dir[76] = 3;
        assert_eq!(
            parse(&dir, 1514),
            Err(WriteError::BadDirection {
                frame: 1,
                direction: 3
            })
        );
        let mut flags = good.clone();
        flags[5] = 0x80;
        assert_eq!(
            parse(&flags, 1514),
            Err(WriteError::BadFlags {
                frame: 0,
                flags: 0x80
            })
        );
        let rx_loop = build(&[(DIR_RX, FLAG_TX_LOOPBACK, &frame(60, 1))]);
        assert_eq!(
            parse(&rx_loop, 1514),
            Err(WriteError::BadFlags { frame: 0, flags: 1 })
        );
        let mut reserved = good.clone();
        reserved[6] = 1;
        assert_eq!(parse(&reserved, 1514), Err(WriteError::BadHeader { frame: 0 }));
        let mut pad = build(&[(DIR_TX, 0, &frame(61, 1)), (DIR_TX, 0, &frame(60, 1))]);
        pad[70] = 9;
        assert_eq!(
            parse(&pad, 1514),
            Err(WriteError::BadPadding { frame: 0, offset: 69 })
        );
    }

    #[test]
    fn limits_on_frames_and_bytes() {
        let one = build(&[(DIR_TX, 0, &frame(14, 0))]);
        let mut many = Vec::new();
        for _ in 0..=MAX_FRAMES_PER_WRITE {
            many.extend_from_slice(&one);
        }
        assert_eq!(parse(&many, 1514), Err(WriteError::TooManyFrames));
        assert_eq!(
            parse(&vec![0u8; MAX_WRITE_BYTES as usize + 1], 1514),
            Err(WriteError::TooManyBytes {
                bytes: MAX_WRITE_BYTES as usize + 1
            })
        );
    }

    #[test]
    fn the_iterator_never_panics_on_garbage() {
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let len = (x % 97) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = parse(&buf, 1514);
            let _ = frames(&buf).count();
        }
    }

    #[test]
    fn vlan_tags_are_recognised() {
        assert_eq!(vlan_tci(&tagged(60)), Some(0x2064));
        assert_eq!(vlan_tci(&frame(60, 0)), None);
        assert_eq!(vlan_tci(&tagged(60)[..17]), None);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn a_batch_builds_what_parse_accepts_and_stops_at_the_limits() {
        let mut b = Batch::new();
        assert!(b.push(DIR_RX, 0, &frame(61, 1)));
        assert!(b.push(DIR_TX, FLAG_TX_LOOPBACK, &frame(14, 2)));
        assert_eq!(b.frames(), 2);
        assert_eq!(b.as_bytes().len(), record_len(61) + record_len(14));
        let got: Vec<Frame<'_>> = frames(b.as_bytes()).collect();
        assert_eq!(parse(b.as_bytes(), 1514).unwrap().frames, 2);
        assert_eq!((got[0].direction, got[0].data.len()), (DIR_RX, 61));
        assert_eq!((got[1].flags, got[1].data), (FLAG_TX_LOOPBACK, &frame(14, 2)[..]));
        b.clear();
        let f = frame(60, 3);
        let mut n = 0;
        while b.push(DIR_DEFAULT, 0, &f) {
            n += 1;
        }
        assert_eq!(n, MAX_FRAMES_PER_WRITE);
        assert!(parse(b.as_bytes(), 1514).is_ok());
    }

    /// Mutations of valid buffers: `parse` either refuses them or accepts exactly what
    /// `frames` then yields (the count and byte total it promised, every frame within the
    /// limits), so the driver may trust the iterator after `parse`.
    #[test]
    fn parse_and_frames_agree_on_mutated_buffers() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let base: Vec<u8> = {
            let frames: Vec<Vec<u8>> = (0..6).map(|i| frame(14 + i * 37, i as u8 + 1)).collect();
            let mut out = vec![0u8; frames.iter().map(|f| record_len(f.len())).sum()];
            let mut at = 0;
            for (i, f) in frames.iter().enumerate() {
                at += encode(&mut out[at..], (i % 3) as u8, 0, f).unwrap();
            }
            out
        };
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let mut buf = base.clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() % buf.len() as u64) as usize;
                match next() % 4 {
                    0 => buf[at] = next() as u8,
                    1 => buf[at] ^= 1 << (next() % 8),
                    2 => buf.truncate(at),
                    _ => buf.insert(at, next() as u8),
                }
                if buf.is_empty() {
                    break;
                }
            }
            match parse(&buf, 200) {
                Ok(s) => {
                    accepted += 1;
                    let got: Vec<Frame<'_>> = frames(&buf).collect();
                    assert_eq!(got.len(), s.frames as usize);
                    assert_eq!(
                        got.iter().map(|f| f.data.len() as u64).sum::<u64>(),
                        s.frame_bytes
                    );
                    for f in got {
                        let max = if vlan_tci(f.data).is_some() { 204 } else { 200 };
                        assert!((14..=max).contains(&f.data.len()));
                        assert!(matches!(f.direction, DIR_DEFAULT | DIR_TX | DIR_RX));
                    }
                }
                Err(_) => refused += 1,
            }
        }
        assert!(
            accepted > 100 && refused > 100,
            "{accepted} accepted, {refused} refused"
        );
    }

    /// A change to the buffer, given the number of byte reads so far.
    type Race = std::boxed::Box<dyn Fn(usize, &mut Vec<u8>)>;

    /// A source that counts how often each byte is read, and lets a test change the buffer
    /// between reads (another thread of the writer).
    struct Watched {
        bytes: std::cell::RefCell<Vec<u8>>,
        reads: std::cell::RefCell<Vec<u32>>,
        /// Called before every read with the number of reads so far.
        race: Race,
    }

    impl Watched {
        fn new(bytes: Vec<u8>, race: impl Fn(usize, &mut Vec<u8>) + 'static) -> Watched {
            let n = bytes.len();
            Watched {
                bytes: std::cell::RefCell::new(bytes),
                reads: std::cell::RefCell::new(vec![0; n]),
                race: std::boxed::Box::new(race),
            }
        }

        fn touch(&self, offset: usize, n: usize) -> Option<()> {
            let so_far: u32 = self.reads.borrow().iter().sum();
            (self.race)(so_far as usize, &mut self.bytes.borrow_mut());
            let end = offset
                .checked_add(n)
                .filter(|&e| e <= self.bytes.borrow().len())?;
            for r in &mut self.reads.borrow_mut()[offset..end] {
                *r += 1;
            }
            Some(())
        }
    }

    impl Source for Watched {
        fn len(&self) -> usize {
            self.reads.borrow().len()
        }

        fn read<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
            self.touch(offset, N)?;
            self.bytes.borrow().as_slice().read(offset)
        }

        fn copy(&self, offset: usize, out: &mut [u8]) -> bool {
            self.touch(offset, out.len()).is_some() && self.bytes.borrow().as_slice().copy(offset, out)
        }
    }

    #[test]
    fn validation_reads_every_byte_it_checks_once() {
        let buf = build(&[
            (DIR_TX, 0, &frame(61, 1)),
            (DIR_RX, 0, &tagged(1518)),
            (DIR_DEFAULT, 0, &frame(60, 3)),
        ]);
        let w = Watched::new(buf.clone(), |_, _| {});
        assert_eq!(parse_source(&w, 1514).unwrap().frames, 3);
        let reads = w.reads.borrow();
        assert!(reads.iter().all(|&r| r <= 1), "a byte was read twice");
        // The headers, bytes 12..16 of the frame longer than an untagged one may be (the
        // count needs its tag for the limit, not the others') and, for each record with
        // padding, the 8 bytes that end it; no other byte.
        let read: usize = reads.iter().map(|&r| r as usize).sum();
        assert_eq!(read, 3 * HEADER_LEN + 4 + 3 * RECORD_ALIGN);
        // The records themselves (what the driver copies) look at every frame's tag.
        let w = Watched::new(buf.clone(), |_, _| {});
        assert_eq!(records(&w, 1514).filter(Result::is_ok).count(), 3);
        let reads = w.reads.borrow();
        assert!(reads.iter().all(|&r| r <= 1), "a byte was read twice");
        let read: usize = reads.iter().map(|&r| r as usize).sum();
        assert_eq!(read, 3 * HEADER_LEN + 3 * 4 + 3 * RECORD_ALIGN);
    }

    #[test]
    fn a_buffer_changed_between_reads_is_judged_by_what_was_read() {
        // The writer grows the first frame's length right after its header was read: the
        // record keeps the length that was validated.
        let buf = build(&[(DIR_TX, 0, &frame(60, 1)), (DIR_TX, 0, &frame(60, 2))]);
        let w = Watched::new(buf.clone(), |reads, b| {
            if reads == HEADER_LEN {
                b[..4].copy_from_slice(&u32::MAX.to_le_bytes());
            }
        });
        let got: Vec<_> = records(&w, 1514).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].unwrap().length, 60);
        assert_eq!(got[1].unwrap().data, 72 + HEADER_LEN);
        // A tag that appears after the size was checked changes nothing: the tag bytes are
        // read once, and the limit follows from that read.
        let buf = build(&[(DIR_TX, 0, &frame(1514, 1))]);
        let w = Watched::new(buf, |reads, b| {
            if reads == HEADER_LEN + 4 {
                b[HEADER_LEN + 12..HEADER_LEN + 14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            }
        });
        let r = records(&w, 1514).next().unwrap().unwrap();
        assert_eq!((r.length, r.tci), (1514, None));
    }
}
