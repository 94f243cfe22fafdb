//! Per-processor rings of records, one set per capturing handle.
//!
//! Each processor has its own ring. Its producer is a tap running on that processor at
//! DISPATCH_LEVEL, where nothing else runs on the processor until the tap lowers the IRQL
//! again (`reclaim::enter`), so two producers never write one ring at once; its consumer is
//! the handle's reader, under the capture's lock. Neither takes a lock for the other: the
//! producer publishes the end of what it wrote (`tail`) once per chain, the consumer
//! publishes how far it read (`head`) once per read.
//!
//! Positions count bytes since the ring was made, modulo 2^48; the top 16 bits of the
//! published tail carry the filter generation its records were accepted under. A new
//! filter bumps the generation and empties the ring ([`RingSet::flush`]); a producer still
//! running the old filter then fails to publish (its compare-and-swap expects the old
//! generation) and its records are dropped, so no record the old filter let in is read after
//! `SET_FILTER` returns.

use core::ptr;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use rxinject_abi::Pod;
use rxinject_abi::capture::{self as cap, RECORD_HEADER_LEN, RecordHeader};
use rxinject_bpf::Packet;

use super::reclaim::Retired;
use crate::frame::FrameView;

const POS_BITS: u32 = 48;
const POS_MASK: u64 = (1 << POS_BITS) - 1;

fn pos(word: u64) -> u64 {
    word & POS_MASK
}

fn gen_of(word: u64) -> u16 {
    (word >> POS_BITS) as u16
}

fn word(generation: u16, position: u64) -> u64 {
    (u64::from(generation) << POS_BITS) | (position & POS_MASK)
}

/// One processor's ring. The producer's word and the consumer's are 64 bytes apart, on
/// different cache lines.
#[repr(C)]
pub struct CpuRing {
    buf: *mut u8,
    size: usize,
    /// Positions count modulo this: the largest multiple of `size` in 48 bits, so that
    /// `position % size` runs on across the wrap.
    modulus: u64,
    /// Generation << 48 | end of the published records.
    tail: AtomicU64,
    /// No record published has a later time stamp (the latest a producer published, kept
    /// as a running maximum: an upper bound even when the clock is set back). Written by the
    /// producer before it publishes, so a reader that sees a tail sees at least the bound of
    /// the records before it.
    newest: AtomicI64,
    _producer_line: [u64; 6],
    /// Start of the oldest unread record (written by the consumer only).
    head: AtomicU64,
    _consumer_line: [u64; 7],
}

impl CpuRing {
    /// Bytes from position `from` to position `to`.
    fn distance(&self, from: u64, to: u64) -> usize {
        (if to >= from {
            to - from
        } else {
            to + self.modulus - from
        }) as usize
    }

    /// Position `at` moved on by `len` bytes (`len <= size`).
    fn forward(&self, at: u64, len: usize) -> u64 {
        let p = at + len as u64;
        if p >= self.modulus { p - self.modulus } else { p }
    }

    /// Copies `len` bytes from `src` into the ring at position `at`.
    fn write_at(&self, at: u64, src: &[u8]) {
        let at = (at % self.size as u64) as usize;
        let first = src.len().min(self.size - at);
        // SAFETY: [at, at+first) and [0, len-first) lie in the ring's `size` bytes; the
        // producer alone writes the unpublished region they are in.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), self.buf.wrapping_add(at), first) };
        // SAFETY: as above.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr().wrapping_add(first), self.buf, src.len() - first) };
    }

    /// Copies `out.len()` bytes of the ring at position `at` into `out`.
    fn read_at(&self, at: u64, out: &mut [u8]) {
        let at = (at % self.size as u64) as usize;
        let first = out.len().min(self.size - at);
        // SAFETY: as in `write_at`; the consumer reads published records, which the producer
        // no longer writes.
        unsafe { ptr::copy_nonoverlapping(self.buf.wrapping_add(at), out.as_mut_ptr(), first) };
        if first < out.len() {
            // SAFETY: as above.
            unsafe {
                ptr::copy_nonoverlapping(self.buf, out.as_mut_ptr().wrapping_add(first), out.len() - first)
            };
        }
    }

    /// The time stamp and length of the record whose header starts at position `at`
    /// (published: the consumer's view), read in place unless the header wraps.
    fn peek(&self, at: u64) -> Option<(i64, usize)> {
        self.peek_at((at % self.size as u64) as usize, at)
    }

    /// `peek` of the record at position `at`, which lies at `off` in the ring's memory.
    #[inline(always)]
    fn peek_at(&self, off: usize, at: u64) -> Option<(i64, usize)> {
        let (timestamp, caplen) = if self.size - off >= RECORD_HEADER_LEN {
            let p = self.buf.wrapping_add(off);
            // SAFETY: the header's 24 bytes lie in the ring at `off`, published by the
            // producer; unaligned reads of its first two fields (little-endian, as written).
            let ts = unsafe { ptr::read_unaligned(p.cast::<i64>()) };
            // SAFETY: as above, bytes 8..12.
            let caplen = unsafe { ptr::read_unaligned(p.wrapping_add(8).cast::<u32>()) };
            (i64::from_le(ts), u32::from_le(caplen))
        } else {
            let h = self.header_at(at)?;
            (h.timestamp, h.caplen)
        };
        Some((timestamp, cap::record_len(caplen as usize)))
    }

    /// The ring's memory from position `at` for `len` bytes, as at most two slices.
    ///
    /// Only for the producer, on its unpublished region.
    #[allow(clippy::mut_from_ref)]
    fn region(&self, at: u64, len: usize) -> (&mut [u8], &mut [u8]) {
        let at = (at % self.size as u64) as usize;
        let first = len.min(self.size - at);
        // SAFETY: [at, at+first) lies in the ring's memory; the producer alone touches the
        // unpublished region, and `len <= size` keeps the two slices disjoint.
        let a = unsafe { core::slice::from_raw_parts_mut(self.buf.wrapping_add(at), first) };
        // SAFETY: as above, [0, len-first).
        let b = unsafe { core::slice::from_raw_parts_mut(self.buf, len - first) };
        (a, b)
    }

    /// The header of the record at position `at`.
    fn header_at(&self, at: u64) -> Option<RecordHeader> {
        let mut h = [0u8; RECORD_HEADER_LEN];
        self.read_at(at, &mut h);
        RecordHeader::read_from(&h)
    }

    /// Starts appending records accepted under filter generation `generation`, none with a
    /// time stamp later than `newest` (a tap's chain shares one). The caller is this ring's
    /// processor, at DISPATCH_LEVEL, until [`Producer::publish`].
    pub fn producer(&self, generation: u16, newest: i64) -> Producer<'_> {
        let start = self.tail.load(Ordering::Acquire);
        // Records accepted under another filter than the ring's are not kept; nor are any in
        // a ring without memory.
        let refused = gen_of(start) != generation || self.buf.is_null();
        let free = if refused {
            0
        } else {
            self.size - self.distance(pos(self.head.load(Ordering::Acquire)), pos(start))
        };
        Producer {
            ring: self,
            buf: self.buf,
            size: self.size,
            start,
            off: if self.size == 0 {
                0
            } else {
                (pos(start) % self.size as u64) as usize
            },
            written: 0,
            limit: free,
            newest,
            refused,
        }
    }

    /// Bytes waiting to be read.
    fn used(&self) -> usize {
        self.distance(
            pos(self.head.load(Ordering::Relaxed)),
            pos(self.tail.load(Ordering::SeqCst)),
        )
    }
}

/// A producer's batch: records appended but not yet visible to the consumer.
///
/// It keeps what the appending needs in its own fields (the ring's memory, the room left, where
/// the next record goes), so that a record costs a compare, the copies and two additions;
/// the position is worked out once, at [`Producer::publish`].
pub struct Producer<'a> {
    ring: &'a CpuRing,
    buf: *mut u8,
    size: usize,
    /// The published tail word when the batch began.
    start: u64,
    /// Where the next record goes in the ring's memory (its position `% size`, kept without
    /// dividing).
    off: usize,
    /// Bytes appended since `start`.
    written: usize,
    /// How many bytes the batch may append in all (`written` included), as of the consumer's
    /// head when last looked at.
    limit: usize,
    /// No record of the batch has a later time stamp.
    newest: i64,
    refused: bool,
}

impl Producer<'_> {
    /// Appends a record: `header`, then `caplen` bytes of `frame`, then padding to 8. False if
    /// it does not fit (nothing is appended then).
    #[inline(always)]
    pub fn push(&mut self, header: &RecordHeader, frame: &FrameView, caplen: usize) -> bool {
        debug_assert!(header.timestamp <= self.newest, "a record later than its batch");
        let len = cap::record_len(caplen);
        if self.written + len > self.limit && !self.room_for(len) {
            return false;
        }
        let off = self.off;
        let head = frame.head();
        if self.size - off >= len && head.len() >= caplen {
            // The usual case: the record does not wrap and the frame's bytes lie in its first
            // buffer. Header, frame, padding, each written once.
            let at = self.buf.wrapping_add(off);
            // The padding (fewer than 8 bytes) without a branch: the record's last 8 bytes
            // zeroed first, then header and frame written over all but the padding.
            // SAFETY: [off, off+len) lies in the ring and is the producer's unpublished
            // region, and `len >= 24`.
            unsafe { at.wrapping_add(len - 8).cast::<u64>().write_unaligned(0) };
            // SAFETY: as above; the header is plain data, written unaligned.
            unsafe { at.cast::<RecordHeader>().write_unaligned(*header) };
            // SAFETY: as above; `head` holds `caplen` readable bytes, not in the ring.
            unsafe { ptr::copy_nonoverlapping(head.as_ptr(), at.wrapping_add(RECORD_HEADER_LEN), caplen) };
            self.advance(len);
            return true;
        }
        self.push_pieces(header, frame, caplen, len)
    }

    /// Whether `len` more bytes fit, looking again at how far the consumer has read (it may
    /// have read since the batch began).
    #[cold]
    #[inline(never)]
    fn room_for(&mut self, len: usize) -> bool {
        if self.refused {
            return false;
        }
        let r = self.ring;
        let tail = r.forward(pos(self.start), self.written);
        self.limit = self.written + (r.size - r.distance(pos(r.head.load(Ordering::Acquire)), tail));
        self.written + len <= self.limit
    }

    /// `push` of a record that wraps round the ring's end or whose frame is in several
    /// buffers (or has its tag put back): written in pieces.
    #[inline(never)]
    fn push_pieces(&mut self, header: &RecordHeader, frame: &FrameView, caplen: usize, len: usize) -> bool {
        let r = self.ring;
        let (a, b) = r.region(r.forward(pos(self.start), self.written), len);
        // Header and frame are written where they lie in the ring (two pieces where the
        // record wraps round its end).
        if a.len() >= RECORD_HEADER_LEN {
            let _ = header.write_to(&mut a[..RECORD_HEADER_LEN]);
        } else {
            let mut h = [0u8; RECORD_HEADER_LEN];
            let _ = header.write_to(&mut h);
            let n = a.len();
            a.copy_from_slice(&h[..n]);
            b[..RECORD_HEADER_LEN - n].copy_from_slice(&h[n..]);
        }
        let data = RECORD_HEADER_LEN..RECORD_HEADER_LEN + caplen;
        let ok = if a.len() >= data.end {
            frame.read(0, &mut a[data.clone()])
        } else if a.len() <= data.start {
            let s = data.start - a.len();
            frame.read(0, &mut b[s..s + caplen])
        } else {
            let n = a.len() - data.start;
            frame.read(0, &mut a[data.start..]) && frame.read(n, &mut b[..caplen - n])
        };
        if !ok {
            return false;
        }
        let pad = len - data.end;
        if pad > 0 {
            r.write_at(
                r.forward(pos(self.start), self.written + data.end),
                &[0u8; cap::RECORD_ALIGN][..pad],
            );
        }
        self.advance(len);
        true
    }

    #[inline(always)]
    fn advance(&mut self, len: usize) {
        self.written += len;
        self.off += len;
        if self.off >= self.size {
            self.off -= self.size;
        }
    }

    /// Makes the batch visible to the consumer. False, and the batch is dropped, if the ring
    /// was emptied for a new filter since it began.
    pub fn publish(self) -> bool {
        if self.refused {
            return false;
        }
        if self.written == 0 {
            return true;
        }
        let tail = self.ring.forward(pos(self.start), self.written);
        let next = word(gen_of(self.start), tail);
        // Before the tail that makes the records visible (the CAS orders it); one producer.
        if self.newest > self.ring.newest.load(Ordering::Relaxed) {
            self.ring.newest.store(self.newest, Ordering::Relaxed);
        }
        // SeqCst: a reader that pends after this sees the records, or this producer sees the
        // reader waiting (`Capture::waiting`).
        self.ring
            .tail
            .compare_exchange(self.start, next, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }
}

/// The rings of one capture: one per processor, `share` bytes each, in one allocation with
/// their memory.
#[repr(C)]
pub struct RingSet {
    pub retired: Retired,
    count: usize,
    share: usize,
}

/// What a reader needs to know of the rings at a glance.
#[derive(Clone, Copy, Debug, Default)]
pub struct Backlog {
    /// Bytes waiting, in all rings.
    pub bytes: usize,
    /// A ring has less room than one record of `max_record` bytes: the reader should drain it.
    pub full: bool,
}

impl RingSet {
    /// Bytes of the allocation for `count` rings of `share` bytes, or None if too large.
    pub fn allocation_len(count: usize, share: usize) -> Option<usize> {
        let rings = count.checked_mul(core::mem::size_of::<CpuRing>())?;
        let data = count.checked_mul(share)?;
        core::mem::size_of::<RingSet>()
            .checked_add(rings)?
            .checked_add(data)
    }

    /// Lays out a ring set in `mem` (`allocation_len(count, share)` bytes, 16-aligned, ours
    /// alone), its rings empty, at filter generation `generation`.
    ///
    /// # Safety
    /// As above.
    pub unsafe fn init(mem: *mut u8, count: usize, share: usize, generation: u16) -> *mut RingSet {
        let set = mem.cast::<RingSet>();
        // SAFETY: the caller's memory, large enough and aligned for the header.
        unsafe {
            set.write(RingSet {
                retired: Retired::new(super::reclaim::Kind::Rings),
                count,
                share,
            })
        };
        let rings = mem
            .wrapping_add(core::mem::size_of::<RingSet>())
            .cast::<CpuRing>();
        let data = rings.wrapping_add(count).cast::<u8>();
        for i in 0..count {
            // SAFETY: ring `i` of the `count` that follow the header, aligned (every size here
            // is a multiple of 8).
            unsafe {
                rings.wrapping_add(i).write(CpuRing {
                    buf: data.wrapping_add(i * share),
                    size: share,
                    modulus: if share == 0 {
                        1
                    } else {
                        (1u64 << POS_BITS) / share as u64 * share as u64
                    },
                    tail: AtomicU64::new(word(generation, 0)),
                    newest: AtomicI64::new(i64::MIN),
                    _producer_line: [0; 6],
                    head: AtomicU64::new(0),
                    _consumer_line: [0; 7],
                })
            };
        }
        set
    }

    /// The rings' memory, in bytes (what the ring budget counts).
    pub fn total_bytes(&self) -> usize {
        self.count * self.share
    }

    /// Bytes of each ring.
    pub fn share(&self) -> usize {
        self.share
    }

    fn rings(&self) -> &[CpuRing] {
        let first = ptr::from_ref(self)
            .cast::<u8>()
            .wrapping_add(core::mem::size_of::<RingSet>())
            .cast::<CpuRing>();
        // SAFETY: `init` wrote `count` rings right after the header; they live as long as the
        // set.
        unsafe { core::slice::from_raw_parts(first, self.count) }
    }

    /// Processor `cpu`'s ring.
    pub fn ring(&self, cpu: usize) -> Option<&CpuRing> {
        self.rings().get(cpu)
    }

    /// What waits in the rings (consumer side).
    pub fn backlog(&self, max_record: usize) -> Backlog {
        let mut b = Backlog::default();
        for r in self.rings() {
            let used = r.used();
            b.bytes += used;
            b.full |= r.size - used < max_record;
        }
        b
    }

    /// The records waiting (consumer side; walks their headers).
    pub fn records(&self) -> u32 {
        let mut n = 0u32;
        for r in self.rings() {
            let mut at = pos(r.head.load(Ordering::Relaxed));
            let end = pos(r.tail.load(Ordering::Acquire));
            while at != end {
                let Some(h) = r.header_at(at) else { break };
                let len = cap::record_len(h.caplen as usize);
                if len > r.distance(at, end) {
                    break;
                }
                at = r.forward(at, len);
                n += 1;
            }
        }
        n
    }

    /// Empties every ring for filter generation `generation` (consumer side, under the
    /// capture's lock): producers still running an older filter cannot publish any more.
    pub fn flush(&self, generation: u16) {
        for r in self.rings() {
            let mut current = r.tail.load(Ordering::Acquire);
            loop {
                match r.tail.compare_exchange_weak(
                    current,
                    word(generation, pos(current)),
                    Ordering::SeqCst,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(seen) => current = seen,
                }
            }
            r.head.store(pos(current), Ordering::Release);
        }
    }

    /// Moves as many whole records as fit into `out`, oldest first across the rings (by
    /// time stamp; a ring's own records are in order already); returns the bytes written.
    /// Consumer side, under the capture's lock.
    ///
    /// In runs: the ring with the oldest record gives all its records up to the next-oldest
    /// record of another ring, in one copy. A chain's records share one time stamp and lie
    /// together in one ring, so with one busy ring (one receive queue, the usual case) a read
    /// is one copy, and with several, one copy per chain.
    pub fn pop_into(&self, out: &mut [u8]) -> usize {
        let rings = self.rings();
        let mut written = 0;
        loop {
            // The ring with the oldest record, and the time stamp it may run up to.
            let mut best: Option<(usize, i64)> = None;
            let mut until = i64::MAX;
            for (i, r) in rings.iter().enumerate() {
                let (head, tail) = (
                    pos(r.head.load(Ordering::Relaxed)),
                    pos(r.tail.load(Ordering::Acquire)),
                );
                let Some((ts, _)) = Self::next_record(r, head, tail) else {
                    continue;
                };
                match best {
                    Some((_, oldest)) if ts >= oldest => until = until.min(ts),
                    Some((_, oldest)) => {
                        until = until.min(oldest);
                        best = Some((i, ts));
                    }
                    None => best = Some((i, ts)),
                }
            }
            let Some((i, _)) = best else {
                return written;
            };
            let r = &rings[i];
            let start = pos(r.head.load(Ordering::Relaxed));
            let avail = r.distance(start, pos(r.tail.load(Ordering::Acquire)));
            let room = out.len() - written;
            // The run's records, walked by their offset in the ring (no division per record).
            // When none of this ring's records is later than `until` (none of another ring's
            // is older: one busy ring, or each holding one chain) and all fit, the run is all
            // of them (producers publish whole records), and nothing need be walked.
            let mut off = (start % r.size as u64) as usize;
            let mut run = if r.newest.load(Ordering::Relaxed) <= until && avail <= room {
                avail
            } else {
                0
            };
            while run < avail {
                let Some((ts, len)) = r.peek_at(off, r.forward(start, run)) else {
                    break;
                };
                if len > avail - run || (run > 0 && ts > until) || len > room - run {
                    break;
                }
                run += len;
                off += len;
                if off >= r.size {
                    off -= r.size;
                }
            }
            let end = r.forward(start, run);
            if run == 0 {
                // The oldest record does not fit: the read is full.
                return written;
            }
            r.read_at(start, &mut out[written..written + run]);
            written += run;
            r.head.store(end, Ordering::Release);
            if until == i64::MAX {
                // No other ring held records: this was the whole read (what came since waits
                // for the next).
                return written;
            }
        }
    }

    /// The time stamp and length of the record at `head`, if one is there whole.
    fn next_record(r: &CpuRing, head: u64, tail: u64) -> Option<(i64, usize)> {
        if head == tail {
            return None;
        }
        let (ts, len) = r.peek(head)?;
        (len <= r.distance(head, tail)).then_some((ts, len))
    }
}

impl RingSet {
    /// Sets the filter generation of rings not published yet.
    ///
    /// # Safety
    /// `set` came from [`RingSet::init`] and no tap can reach it yet.
    pub unsafe fn set_generation(set: *mut RingSet, generation: u16) {
        // SAFETY: the caller's contract.
        let set = unsafe { &*set };
        for r in set.rings() {
            r.tail.store(word(generation, 0), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::frame::tests::test_nb;
    use std::vec::Vec;

    /// A ring set over test memory (u64s: aligned).
    fn rings(count: usize, share: usize) -> (Vec<u64>, *mut RingSet) {
        let mut mem = std::vec![0u64; RingSet::allocation_len(count, share).unwrap().div_ceil(8)];
        // SAFETY: enough aligned memory, ours.
        let set = unsafe { RingSet::init(mem.as_mut_ptr().cast(), count, share, 0) };
        (mem, set)
    }

    fn header(i: usize, caplen: usize) -> RecordHeader {
        RecordHeader {
            timestamp: i as i64,
            caplen: caplen as u32,
            len: caplen as u32,
            if_index: 7,
            flags: 0,
            header_len: RECORD_HEADER_LEN as u16,
        }
    }

    /// Records read back whole and in order while the ring's positions run over the end of
    /// the position range and the records over the end of the ring's memory, written in
    /// place or in pieces (a frame in one buffer or in two).
    #[test]
    fn records_survive_the_position_wrap_and_the_ring_end() {
        let (_mem, set) = rings(2, 1000);
        // SAFETY: laid out above; alive with `_mem`.
        let set = unsafe { &*set };
        let r = set.ring(0).unwrap();
        let start = r.modulus - 2500;
        r.tail.store(word(0, start), Ordering::Relaxed);
        r.head.store(start, Ordering::Relaxed);
        let mut expect = std::collections::VecDeque::new();
        let mut out = std::vec![0u8; 700];
        for i in 0..200usize {
            let len = 40 + (i * 37) % 180;
            let data: Vec<u8> = (0..len).map(|k| (i + k) as u8).collect();
            let nb = if i % 3 == 0 {
                test_nb(&[&data[..len / 2], &data[len / 2..]], 0)
            } else {
                test_nb(&[&data], 0)
            };
            // SAFETY: a live test NB.
            let frame = unsafe { FrameView::new(&*nb.nb, 0) };
            let mut p = r.producer(0, i as i64);
            if p.push(&header(i, len), &frame, len) {
                expect.push_back(data);
            }
            assert!(p.publish());
            if i % 2 == 1 {
                let n = set.pop_into(&mut out);
                for rec in cap::records(&out[..n]) {
                    assert_eq!(Some(rec.frame), expect.pop_front().as_deref(), "record {i}");
                }
            }
        }
        assert!(
            pos(r.tail.load(Ordering::Relaxed)) < start,
            "the positions wrapped"
        );
        while set.backlog(0).bytes > 0 {
            let n = set.pop_into(&mut out);
            for rec in cap::records(&out[..n]) {
                assert_eq!(Some(rec.frame), expect.pop_front().as_deref());
            }
        }
        assert!(expect.is_empty());
    }

    /// Reads of every size, exact fits among them, take whole records, as many as fit, in
    /// time order across two rings whose records interleave (one ring's over its end).
    #[test]
    fn reads_of_every_size_take_whole_records_in_time_order_across_rings() {
        // Ring i's record j: time stamp 2j + i + 1, 40 to 56 bytes of frame.
        let frame_len = |i: usize, j: usize| 40 + 8 * ((i + j) % 3);
        let order: Vec<(usize, usize)> = (0..12).map(|t| (t % 2, t / 2)).collect();
        let lens: Vec<usize> = order
            .iter()
            .map(|&(i, j)| cap::record_len(frame_len(i, j)))
            .collect();
        let prefix: Vec<usize> = lens
            .iter()
            .scan(0, |s, l| {
                *s += l;
                Some(*s)
            })
            .collect();
        let mut sizes = std::vec![80, 88, 150, 1000, 8192, 10];
        sizes.extend(prefix.iter().take(6));
        for out_len in sizes {
            let (_mem, set) = rings(2, 4096);
            // SAFETY: as above.
            let set = unsafe { &*set };
            for i in 0..2 {
                let r = set.ring(i).unwrap();
                // The records run over the ring's end (ring 0) or not (ring 1).
                let start = if i == 0 { r.size as u64 - 200 } else { 0 };
                r.tail.store(word(0, start), Ordering::Relaxed);
                r.head.store(start, Ordering::Relaxed);
                for j in 0..6 {
                    let data: Vec<u8> = (0..frame_len(i, j)).map(|k| (k + 16 * j + i) as u8).collect();
                    let nb = test_nb(&[&data], 0);
                    // SAFETY: a live test NB.
                    let frame = unsafe { FrameView::new(&*nb.nb, 0) };
                    let ts = 2 * j + i + 1;
                    let mut p = r.producer(0, ts as i64);
                    assert!(p.push(&header(ts, data.len()), &frame, data.len()));
                    assert!(p.publish());
                }
            }
            let mut out = std::vec![0u8; 8192];
            let mut got = Vec::new();
            let (mut len, mut first) = (out_len, true);
            loop {
                let n = set.pop_into(&mut out[..len]);
                if std::mem::take(&mut first) {
                    // As many whole records as fit, in time order.
                    let fit = prefix
                        .iter()
                        .take_while(|&&s| s <= out_len)
                        .last()
                        .copied()
                        .unwrap_or(0);
                    assert_eq!(n, fit, "the first read of {out_len} bytes");
                }
                // The rest in reads of a record's size and more, alternately.
                len = if len == 88 { 200 } else { 88 };
                if n == 0 && set.backlog(0).bytes == 0 {
                    break;
                }
                for rec in cap::records(&out[..n]) {
                    let t = rec.header.timestamp as usize;
                    let (i, j) = ((t - 1) % 2, (t - 1) / 2);
                    let want: Vec<u8> = (0..frame_len(i, j)).map(|k| (k + 16 * j + i) as u8).collect();
                    assert_eq!(rec.frame, &want[..], "record {t}, reads of {out_len}");
                    got.push(t);
                }
            }
            assert_eq!(got, (1..=12).collect::<Vec<_>>(), "reads of {out_len} bytes");
        }
    }

    /// A record whose header or frame runs over the ring's end, at each 8-byte step before
    /// it: written, peeked at and read back whole.
    #[test]
    fn records_straddling_the_ring_end_read_back_whole() {
        let (_mem, set) = rings(1, 1000);
        // SAFETY: as above.
        let set = unsafe { &*set };
        let r = set.ring(0).unwrap();
        let mut out = std::vec![0u8; 512];
        for before_end in (8..=80).step_by(8) {
            for pieces in [1, 2] {
                let start = r.size as u64 - before_end;
                r.tail.store(word(0, start), Ordering::Relaxed);
                r.head.store(start, Ordering::Relaxed);
                let data: Vec<u8> = (0..45).map(|k| (k * 7 + before_end as usize) as u8).collect();
                let nb = if pieces == 1 {
                    test_nb(&[&data], 0)
                } else {
                    test_nb(&[&data[..10], &data[10..]], 0)
                };
                // SAFETY: a live test NB.
                let frame = unsafe { FrameView::new(&*nb.nb, 0) };
                let mut p = r.producer(0, 77);
                assert!(p.push(&header(77, data.len()), &frame, data.len()));
                assert!(p.publish());
                assert_eq!(
                    r.peek(start),
                    Some((77, cap::record_len(data.len()))),
                    "{before_end} bytes before the end"
                );
                let n = set.pop_into(&mut out);
                let recs: Vec<_> = cap::records(&out[..n]).collect();
                assert_eq!(
                    recs.len(),
                    1,
                    "{before_end} bytes before the end, {pieces} pieces"
                );
                assert_eq!((recs[0].header.timestamp, recs[0].frame), (77, &data[..]));
            }
        }
    }

    /// One ring's records over its end, read in reads smaller than the backlog: each read's
    /// walk over the records runs on across the end.
    #[test]
    fn a_read_walking_records_over_the_ring_end_takes_them_whole() {
        let (_mem, set) = rings(1, 1000);
        // SAFETY: as above.
        let set = unsafe { &*set };
        let r = set.ring(0).unwrap();
        let start = r.size as u64 - 100;
        r.tail.store(word(0, start), Ordering::Relaxed);
        r.head.store(start, Ordering::Relaxed);
        let data = |j: usize| -> Vec<u8> { (0..40).map(|k| (k + j) as u8).collect() };
        for j in 0..8 {
            let d = data(j);
            let nb = test_nb(&[&d], 0);
            // SAFETY: a live test NB.
            let frame = unsafe { FrameView::new(&*nb.nb, 0) };
            let mut p = r.producer(0, j as i64);
            assert!(p.push(&header(j, d.len()), &frame, d.len()));
            assert!(p.publish());
        }
        // Records of 64 bytes; reads of three.
        let mut out = [0u8; 3 * 64];
        let mut got = Vec::new();
        loop {
            let n = set.pop_into(&mut out);
            if n == 0 {
                break;
            }
            assert_eq!(
                n,
                64 * (8 - got.len()).min(3),
                "as many as fit, after {}",
                got.len()
            );
            for rec in cap::records(&out[..n]) {
                assert_eq!(rec.frame, &data(rec.header.timestamp as usize)[..]);
                got.push(rec.header.timestamp);
            }
        }
        assert_eq!(got, (0..8).collect::<Vec<i64>>());
    }

    /// Positions run modulo the ring's modulus: distances and moves across the wrap.
    #[test]
    fn distances_and_moves_run_across_the_position_wrap() {
        let (_mem, set) = rings(1, 1000);
        // SAFETY: as above.
        let set = unsafe { &*set };
        let r = set.ring(0).unwrap();
        let m = r.modulus;
        assert_eq!(m % r.size as u64, 0);
        assert_eq!(r.distance(m - 10, 5), 15);
        assert_eq!(r.distance(5, m - 10), (m - 15) as usize);
        assert_eq!(r.distance(7, 7), 0);
        assert_eq!(r.forward(m - 10, 15), 5);
        assert_eq!(r.forward(m - 10, 10), 0);
        assert_eq!(r.forward(3, 10), 13);
    }

    /// A ring takes records up to its last byte, no further: filled exactly in one batch and
    /// in one batch per record, the next record is refused, and one record's room read frees
    /// room for exactly one more.
    #[test]
    fn a_ring_fills_to_its_last_byte_and_no_further() {
        let data = [0x33u8; 40];
        assert_eq!(cap::record_len(data.len()), 64);
        let nb = test_nb(&[&data], 0);
        // SAFETY: a live test NB.
        let frame = unsafe { FrameView::new(&*nb.nb, 0) };
        for batched in [true, false] {
            let (_mem, set) = rings(1, 4096);
            // SAFETY: as above.
            let set = unsafe { &*set };
            let r = set.ring(0).unwrap();
            assert_eq!(r.size % 64, 0);
            let fits = r.size / 64;
            let mut p = r.producer(0, fits as i64 + 2);
            for i in 0..fits {
                if !batched {
                    assert!(p.publish());
                    p = r.producer(0, fits as i64 + 2);
                }
                assert!(
                    p.push(&header(i, data.len()), &frame, data.len()),
                    "record {i} of {fits}"
                );
            }
            assert!(
                !p.push(&header(fits, data.len()), &frame, data.len()),
                "one past full"
            );
            assert!(p.publish());
            assert_eq!(set.backlog(0).bytes, r.size);
            let mut p = r.producer(0, fits as i64 + 2);
            assert!(
                !p.push(&header(fits, data.len()), &frame, data.len()),
                "a full ring"
            );
            assert!(p.publish());
            // Read one record's worth; then exactly one more fits, from a batch begun before
            // the read and from one begun after.
            let mut early = r.producer(0, fits as i64 + 2);
            let mut out = [0u8; 64];
            assert_eq!(set.pop_into(&mut out), 64);
            assert!(
                early.push(&header(fits, data.len()), &frame, data.len()),
                "room seen again"
            );
            assert!(!early.push(&header(fits + 1, data.len()), &frame, data.len()));
            assert!(early.publish());
            assert_eq!(set.backlog(0).bytes, r.size);
        }
    }

    /// Padding is zero, whatever the ring's memory held before (the bytes of earlier records):
    /// records written in place and in pieces, of every length to a multiple of 8 and over.
    #[test]
    fn record_padding_is_zero_over_old_bytes() {
        let (_mem, set) = rings(1, 4096);
        // SAFETY: as above.
        let set = unsafe { &*set };
        let r = set.ring(0).unwrap();
        let mut out = std::vec![0u8; 4096];
        for len in 14..=30usize {
            for pieces in [1, 2] {
                // SAFETY: the ring's memory, ours; nothing is published in it.
                unsafe { ptr::write_bytes(r.buf, 0xFF, r.size) };
                let data: Vec<u8> = (0..len).map(|k| k as u8).collect();
                let nb = if pieces == 1 {
                    test_nb(&[&data], 0)
                } else {
                    test_nb(&[&data[..7], &data[7..]], 0)
                };
                // SAFETY: a live test NB.
                let frame = unsafe { FrameView::new(&*nb.nb, 0) };
                let mut p = r.producer(0, 1);
                assert!(p.push(&header(1, len), &frame, len));
                assert!(p.publish());
                let n = set.pop_into(&mut out);
                assert_eq!(n, cap::record_len(len));
                assert_eq!(&out[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len], &data[..]);
                assert!(
                    out[RECORD_HEADER_LEN + len..n].iter().all(|&b| b == 0),
                    "{len} bytes in {pieces} pieces: padding {:?}",
                    &out[RECORD_HEADER_LEN + len..n]
                );
            }
        }
    }

    /// A producer that began under the old filter cannot publish after the reader emptied the
    /// ring for a new one; one that began after it can.
    #[test]
    fn a_flush_for_a_new_filter_refuses_the_old_filters_records() {
        let (_mem, set) = rings(1, 4096);
        // SAFETY: as above.
        let set = unsafe { &*set };
        let r = set.ring(0).unwrap();
        let data = [0x5au8; 60];
        let nb = test_nb(&[&data], 0);
        // SAFETY: a live test NB.
        let frame = unsafe { FrameView::new(&*nb.nb, 0) };
        let mut old = r.producer(0, 1);
        assert!(old.push(&header(1, 60), &frame, 60));
        set.flush(1);
        assert!(!old.publish(), "the old filter's record is refused");
        assert_eq!(set.backlog(0).bytes, 0);
        let mut stale = r.producer(0, 2);
        assert!(
            !stale.push(&header(2, 60), &frame, 60),
            "a producer still on the old filter keeps nothing"
        );
        assert!(!stale.publish());
        let mut new = r.producer(1, 3);
        assert!(new.push(&header(3, 60), &frame, 60));
        assert!(new.publish());
        assert_eq!(set.records(), 1);
    }
}
