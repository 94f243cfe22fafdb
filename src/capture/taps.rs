//! Taps on the four paths: receives from below and sends from above (`recv.rs`, `send.rs`)
//! and our own injections (`inject.rs`) call [`tap`] with a whole chain before handing it on.
//! With no capturing handle on the adapter that is one load and one well-predicted branch.
//!
//! A tap takes no lock: it enters a section on its processor (`reclaim::enter`), takes the
//! time once for the chain, offers each frame to every capture of the module, appends what
//! passes to that capture's ring of this processor, publishes each ring once, and leaves. It
//! takes a capture's lock only when a read waits and the records now make it ready.

use core::sync::atomic::Ordering;

use ndis_sys::*;
use rxinject_abi::capture::{self as cap, RECORD_HEADER_LEN, RecordHeader};
use rxinject_bpf::{self as bpf, Packet};

use super::reads::Completions;
use super::reclaim;
use super::{Capture, Direction};
use crate::device::OpenHandle;
use crate::filter::FilterModule;
use crate::frame::FrameView;
use crate::nbl;

/// Offers every frame of `chain` to the module's capturing handles. `injected_by` is the
/// handle whose write injected the chain (null for other drivers' traffic). The caller holds
/// the chain (it has not handed it on yet). IRQL <= DISPATCH_LEVEL.
#[inline]
pub fn tap(
    m: &FilterModule,
    chain: *mut NET_BUFFER_LIST,
    direction: Direction,
    injected_by: *const OpenHandle,
) {
    if m.capture.active.load(Ordering::Relaxed) == 0 {
        return;
    }
    tap_slow(m, chain, direction, injected_by);
}

#[inline(never)]
fn tap_slow(
    m: &FilterModule,
    chain: *mut NET_BUFFER_LIST,
    direction: Direction,
    injected_by: *const OpenHandle,
) {
    let Some(inside) = reclaim::enter() else {
        return;
    };
    let mut timestamp = 0i64;
    // SAFETY: an out parameter on our stack.
    unsafe { KeQuerySystemTimePrecise(&mut timestamp) };
    let mut done = Completions::new();
    let mut more = false;
    let frame = FrameOffer {
        chain,
        direction,
        injected_by,
        timestamp,
        if_index: m.adapter.if_index,
    };
    for c in m.capture.captures() {
        c.tap_chain(&frame, inside.cpu(), &mut done);
        more |= done.is_full();
    }
    inside.leave();
    done.complete_all();
    if more {
        super::complete_ready_reads(m, None);
    }
}

/// A chain being tapped, and what every record of it shares.
struct FrameOffer {
    chain: *mut NET_BUFFER_LIST,
    direction: Direction,
    injected_by: *const OpenHandle,
    timestamp: i64,
    if_index: u32,
}

/// What a chain's `accepted` records, `dropped` of them refused by a full ring, count as once
/// they are `published` (captured, dropped). A publication fails when the ring was emptied
/// for a new filter meanwhile (on another processor, between the pushes and the
/// publication): the records were the old filter's, and count as dropped.
fn settled(accepted: u64, dropped: u64, published: bool) -> (u64, u64) {
    if published {
        (accepted - dropped, dropped)
    } else {
        (0, accepted)
    }
}

impl Capture {
    /// Offers the chain to this capture, from processor `cpu` inside its section.
    fn tap_chain(&self, offer: &FrameOffer, cpu: usize, done: &mut Completions) {
        if !self.capturing.load(Ordering::Acquire) {
            return;
        }
        let Some(counters) = self.counters(cpu) else {
            return;
        };
        // SAFETY: published rings live until retired, and retired ones until no section that
        // may have loaded them is left; we are inside one.
        let Some(rings) = (unsafe { self.rings.load(Ordering::Acquire).as_ref() }) else {
            return;
        };
        let Some(ring) = rings.ring(cpu) else {
            return;
        };
        // SAFETY: as above, for the program.
        let program = unsafe { self.program.load(Ordering::Acquire).as_ref() };
        let (generation, code) = program.map_or((0, &[][..]), |p| (p.generation, p.code()));
        let directions = self.directions.load(Ordering::Relaxed);
        let flags = self.flags.load(Ordering::Relaxed);
        let snaplen = self.snaplen.load(Ordering::Relaxed) as usize;
        let dir_bit = match offer.direction {
            Direction::Inbound => cap::CAPTURE_IN,
            Direction::Outbound => cap::CAPTURE_OUT,
        };
        let injected = !offer.injected_by.is_null();
        let wanted = directions & dir_bit != 0
            && !(injected
                && (flags & cap::CAPTURE_EXCLUDE_INJECTED != 0
                    || (offer.injected_by == self.owner && flags & cap::CAPTURE_EXCLUDE_OWN != 0)));
        let mut record_flags = match offer.direction {
            Direction::Inbound => cap::RECORD_INBOUND,
            Direction::Outbound => cap::RECORD_OUTBOUND,
        };
        if injected {
            record_flags |= cap::RECORD_INJECTED;
        }
        if !wanted {
            // Seen, and no more: no frame of the chain is looked at.
            let mut frames = 0u64;
            // SAFETY: the caller holds the chain; `iter` reads links before yielding.
            for n in unsafe { nbl::iter(offer.chain) } {
                // SAFETY: an NBL of the held chain.
                let mut nb = unsafe { (*n).FirstNetBuffer };
                while !nb.is_null() {
                    frames += 1;
                    // SAFETY: an NB of a held NBL.
                    nb = unsafe { (*nb).Next };
                }
            }
            counters.add(frames, 0, 0, 0);
            return;
        }
        let (mut seen, mut accepted, mut dropped) = (0u64, 0u64, 0u64);
        let mut producer = ring.producer(generation, offer.timestamp);
        // SAFETY: the caller holds the chain; `iter` reads links before yielding.
        for n in unsafe { nbl::iter(offer.chain) } {
            // SAFETY: an NBL of the held chain.
            let nbl_ref = unsafe { &*n };
            let (mut nb, info) = (
                nbl_ref.FirstNetBuffer,
                nbl_ref.NetBufferListInfo[Ieee8021QNetBufferListInfo] as usize,
            );
            while !nb.is_null() {
                seen += 1;
                // SAFETY: an NB of a held NBL, valid for this call.
                let frame = unsafe { FrameView::new(nb, info) };
                // SAFETY: as above.
                nb = unsafe { (*nb).Next };
                let keep = if code.is_empty() {
                    u32::MAX
                } else {
                    bpf::run_compiled(code, &frame)
                };
                if keep == 0 {
                    continue;
                }
                accepted += 1;
                let len = frame.len();
                let caplen = len.min(snaplen).min(keep as usize);
                let header = RecordHeader {
                    timestamp: offer.timestamp,
                    caplen: caplen as u32,
                    len: u32::try_from(len).unwrap_or(u32::MAX),
                    if_index: offer.if_index,
                    flags: record_flags
                        | if frame.tag_restored() {
                            cap::RECORD_VLAN_RESTORED
                        } else {
                            0
                        },
                    header_len: RECORD_HEADER_LEN as u16,
                };
                if !producer.push(&header, &frame, caplen) {
                    dropped += 1;
                }
            }
        }
        let (captured, dropped) = settled(accepted, dropped, producer.publish());
        counters.add(seen, accepted, captured, dropped);
        if (captured > 0 || dropped > 0) && self.may_wake(rings, cap::record_len(snaplen)) {
            let mut g = self.inner.lock();
            self.collect_ready(&mut g, None, done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::settled;

    /// The counts of a chain: published, the records the ring took are captured; not (a
    /// new filter emptied the ring between the pushes and the publication, which no
    /// simulated interleaving reaches: nothing between them calls NDIS), every accepted
    /// record is dropped, the ring's refusals among them.
    #[test]
    fn a_chain_whose_publication_failed_counts_every_accepted_record_dropped() {
        assert_eq!(settled(5, 2, true), (3, 2));
        assert_eq!(settled(5, 0, true), (5, 0));
        assert_eq!(settled(5, 2, false), (0, 5));
        assert_eq!(settled(5, 0, false), (0, 5));
        assert_eq!(settled(0, 0, false), (0, 0));
    }
}
