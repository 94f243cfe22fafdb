//! Injection through write IRPs: frames go up to the host stack (Rx) or down to the wire (Tx)
//! byte-identical, the IRP completes when its last frame is back (with the real status and the
//! number of frames), own NBLs are reclaimed from mixed chains in any order, and every bad
//! input is refused with a clear status before anything is sent. Each test ends with
//! `finish().assert_clean()`: no NDIS or I/O rule broken, nothing leaked.

mod common;

use common::*;
use ndis_sim::{AdapterConfig, Completion, FrameOrigin, IrqlMode, SimConfig};
use ndis_sys::*;
use rxinject_abi::{self as abi, write};

/// Simulator modes the injection path must be indifferent to.
fn modes() -> Vec<SimConfig> {
    let mut v = Vec::new();
    for send_completion in [Completion::Async, Completion::Sync, Completion::Mixed] {
        for datapath_irql in [IrqlMode::Dispatch, IrqlMode::Passive, IrqlMode::Mixed] {
            v.push(SimConfig {
                send_completion,
                datapath_irql,
                mdl_split: v.len() % 2 == 0,
                seed: 100 + v.len() as u64,
                ..SimConfig::default()
            });
        }
    }
    v
}

fn filter_frames(frames: &[ndis_sim::RxFrame]) -> Vec<&ndis_sim::RxFrame> {
    frames
        .iter()
        .filter(|f| f.origin == FrameOrigin::Filter)
        .collect()
}

fn wire_from_filter(sim: &ndis_sim::Sim, i: usize) -> Vec<Vec<u8>> {
    sim.adapter(i)
        .wire()
        .into_iter()
        .filter(|f| f.origin == FrameOrigin::Filter)
        .map(|f| f.bytes)
        .collect()
}

#[test]
fn rx_frames_reach_the_stack_byte_identical_and_in_order_in_every_mode() {
    for cfg in modes() {
        let sim = load(cfg.clone());
        let h = open_bound(&sim, 0);
        let mut source = frames_for(&sim, 0);
        let mut sent = Vec::new();
        for n in [1, 2, 7, 64, 300] {
            let frames = source.take(n);
            let r = h.write(&batch(RX, &frames));
            assert_eq!((r.status, r.information), (STATUS_SUCCESS, n), "{cfg:?}");
            sent.extend(frames);
        }
        let got = sim.adapter(0).received();
        let own = filter_frames(&got);
        assert_eq!(own.len(), sent.len(), "{cfg:?}");
        for (g, s) in own.iter().zip(&sent) {
            assert_eq!(&g.bytes, s, "{cfg:?}");
            assert!(
                !g.resources,
                "indicated with flags 0 (the NBLs come back through the return handler)"
            );
            assert_eq!(g.vlan, None);
        }
        assert!(
            wire_from_filter(&sim, 0).is_empty(),
            "Rx frames never reach the wire"
        );
        let c = counters(&h);
        assert_eq!(c.handle.rx_frames, sent.len() as u64);
        assert_eq!(c.adapter.rx_injected, sent.len() as u64);
        assert_eq!(c.adapter.rx_returned, sent.len() as u64);
        assert_eq!(c.adapter.nbls_in_flight, 0);
        drop(h);
        sim.finish().assert_clean();
    }
}

#[test]
fn tx_frames_reach_the_wire_byte_identical_and_in_order_in_every_mode() {
    for cfg in modes() {
        let sim = load(cfg.clone());
        let h = open_bound(&sim, 0);
        let mut source = frames_for(&sim, 0);
        let mut sent = Vec::new();
        for n in [1, 3, 256, 257, 1000] {
            let frames = source.take(n);
            let r = h.write(&batch(TX, &frames));
            assert_eq!((r.status, r.information), (STATUS_SUCCESS, n), "{cfg:?}");
            sent.extend(frames);
        }
        assert_eq!(wire_from_filter(&sim, 0), sent, "{cfg:?}");
        assert!(
            filter_frames(&sim.adapter(0).received()).is_empty(),
            "Tx frames never go up"
        );
        assert!(
            sim.adapter(0).completions().is_empty(),
            "own sends are never completed to the protocol"
        );
        let c = counters(&h);
        assert_eq!(
            (c.adapter.tx_injected, c.adapter.tx_completed),
            (sent.len() as u64, sent.len() as u64)
        );
        drop(h);
        sim.finish().assert_clean();
    }
}

/// The lengths of the runs of consecutive equal chain numbers.
fn chain_lengths(chains: impl IntoIterator<Item = u64>) -> Vec<usize> {
    let mut runs: Vec<(u64, usize)> = Vec::new();
    for c in chains {
        match runs.last_mut() {
            Some((last, n)) if *last == c => *n += 1,
            _ => runs.push((c, 1)),
        }
    }
    runs.into_iter().map(|(_, n)| n).collect()
}

#[test]
fn a_write_goes_out_in_chains_of_at_most_256_split_only_where_the_direction_changes() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let h = open_bound(&sim, 0);
    let f = frames_for(&sim, 0).take(300);
    let r = h.write(&batch(TX, &f));
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 300));
    let r = h.write(&batch(RX, &f));
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 300));
    sim.run_until_idle();
    let down = |a: &ndis_sim::AdapterRef<'_>| {
        chain_lengths(
            a.wire()
                .into_iter()
                .filter(|w| w.origin == FrameOrigin::Filter)
                .map(|w| w.chain),
        )
    };
    let up = |a: &ndis_sim::AdapterRef<'_>| {
        chain_lengths(
            a.received()
                .into_iter()
                .filter(|r| r.origin == FrameOrigin::Filter)
                .map(|r| r.chain),
        )
    };
    assert_eq!(down(&a), vec![256, 44]);
    assert_eq!(up(&a), vec![256, 44]);
    // Tx, Rx, Tx: each run its own chain.
    let mixed: Vec<(u8, u8, &[u8])> = [TX, TX, TX, RX, RX, TX]
        .iter()
        .zip(&f)
        .map(|(&d, x)| (d, 0, &x[..]))
        .collect();
    let r = h.write(&records(&mixed));
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 6));
    sim.run_until_idle();
    assert_eq!(down(&a), vec![256, 44, 3, 1]);
    assert_eq!(up(&a), vec![256, 44, 2]);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn each_tx_frame_goes_down_with_exactly_its_own_loopback_flag() {
    // The driver batches consecutive Tx frames into one send; a change of per-frame flags
    // must start a new batch, or the loopback request of one frame is lost (or lent to its
    // neighbours).
    for cfg in modes() {
        let sim = load(cfg.clone());
        let h = open_bound(&sim, 0);
        let f = frames_for(&sim, 0).take(5);
        let lb = write::FLAG_TX_LOOPBACK;
        let plan = [0, lb, 0, lb, lb];
        let recs: Vec<(u8, u8, &[u8])> = plan.iter().zip(&f).map(|(&fl, d)| (TX, fl, &d[..])).collect();
        let r = h.write(&records(&recs));
        assert_eq!((r.status, r.information), (STATUS_SUCCESS, 5), "{cfg:?}");
        sim.run_until_idle();
        let down: Vec<(Vec<u8>, bool)> = sim
            .adapter(0)
            .wire()
            .into_iter()
            .filter(|w| w.origin == FrameOrigin::Filter)
            .map(|w| (w.bytes, w.send_flags & NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK != 0))
            .collect();
        let want: Vec<(Vec<u8>, bool)> = plan
            .iter()
            .zip(&f)
            .map(|(&fl, d)| (d.clone(), fl == lb))
            .collect();
        assert_eq!(down, want, "{cfg:?}");
        drop(h);
        sim.finish().assert_clean();
    }
}

#[test]
fn the_handle_default_direction_and_per_frame_overrides_mix_in_one_write() {
    let sim = load(SimConfig::default());
    let h = open_bound(&sim, 0);
    let f = frames_for(&sim, 0).take(6);
    // Default direction: Tx.
    let r = h.write(&records(&[
        (write::DIR_DEFAULT, 0, &f[0]),
        (RX, 0, &f[1]),
        (TX, write::FLAG_TX_LOOPBACK, &f[2]),
    ]));
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 3));
    assert_eq!(set_direction(&h, abi::DIRECTION_RX), STATUS_SUCCESS);
    let r = h.write(&records(&[
        (write::DIR_DEFAULT, 0, &f[3]),
        (TX, 0, &f[4]),
        (write::DIR_DEFAULT, 0, &f[5]),
    ]));
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 3));
    assert_eq!(
        wire_from_filter(&sim, 0),
        vec![f[0].clone(), f[2].clone(), f[4].clone()]
    );
    let up: Vec<Vec<u8>> = filter_frames(&sim.adapter(0).received())
        .iter()
        .map(|r| r.bytes.clone())
        .collect();
    assert_eq!(up, vec![f[1].clone(), f[3].clone(), f[5].clone()]);
    // A direction other than Tx or Rx is refused.
    assert_eq!(set_direction(&h, 0), STATUS_INVALID_PARAMETER);
    assert_eq!(set_direction(&h, 3), STATUS_INVALID_PARAMETER);
    let c = counters(&h);
    assert_eq!(
        (c.handle.rx_frames, c.handle.tx_frames, c.handle.writes_succeeded),
        (3, 3, 2)
    );
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn an_8021q_tag_moves_out_of_band_and_the_wire_gets_it_back() {
    let sim = load(SimConfig::default());
    let h = open_bound(&sim, 0);
    let plain = frames_for(&sim, 0).take(3);
    let tci = 0xA064; // priority 5, VLAN 100
    let t0 = tagged(&plain[0], tci);
    // A full-size frame plus its tag is allowed (max frame + 4).
    let big = tagged(&frames_for(&sim, 0).take(8)[6], 0x0123);
    assert_eq!(big.len(), 1518);
    // TCI 0 cannot be expressed out of band: the tag stays in the data.
    let t0_zero = tagged(&plain[1], 0);
    let r = h.write(&records(&[
        (RX, 0, &t0),
        (TX, 0, &t0),
        (TX, 0, &big),
        (RX, 0, &t0_zero),
        (TX, 0, &t0_zero),
    ]));
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 5));
    let up = sim.adapter(0).received();
    let up = filter_frames(&up);
    assert_eq!(
        (up[0].bytes.as_slice(), up[0].vlan),
        (plain[0].as_slice(), Some(tci))
    );
    assert_eq!((up[1].bytes.as_slice(), up[1].vlan), (t0_zero.as_slice(), None));
    assert_eq!(wire_from_filter(&sim, 0), vec![t0.clone(), big, t0_zero]);
    // One byte more than max frame + tag is refused.
    let mut too_big = tagged(&frames_for(&sim, 0).take(8)[6], 0x0123);
    too_big.push(0);
    assert_eq!(h.write(&batch(TX, &[too_big])).status, STATUS_INVALID_BUFFER_SIZE);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn a_write_completes_only_when_its_last_frame_is_back_from_mixed_shuffled_returns() {
    let sim = load(SimConfig {
        seed: 7,
        ..SimConfig::default()
    });
    let a = sim.adapter(0);
    let h = open_bound(&sim, 0);
    let mut source = frames_for(&sim, 0);
    // Foreign receives the stack holds, then two writes, then more foreign receives.
    let foreign1 = a.indicate(&source.take(10));
    let w1 = source.take(20);
    let irp1 = h.start_write(&batch(RX, &w1));
    let w2 = source.take(5);
    let irp2 = h.start_write(&batch(RX, &w2));
    let foreign2 = a.indicate(&source.take(10));
    assert_eq!(a.held_by_protocol(), 45);
    assert!(
        !h.is_complete(irp1) && !h.is_complete(irp2),
        "the stack holds every frame"
    );
    // The stack returns a few at a time: shuffled chains mixing both writes and foreign NBLs.
    let mut steps = 0;
    while a.held_by_protocol() > 0 {
        a.return_receives(4);
        steps += 1;
        let own_held = a.filter_nbls_held_by_protocol();
        let done = (h.is_complete(irp1), h.is_complete(irp2));
        if own_held > 0 {
            assert_ne!(
                done,
                (true, true),
                "a write completed while one of its frames is still held"
            );
        } else {
            assert_eq!(
                done,
                (true, true),
                "both writes complete once all their frames are back"
            );
        }
    }
    assert!(steps >= 12);
    let r1 = h.poll(irp1).expect("write 1 complete");
    let r2 = h.poll(irp2).expect("write 2 complete");
    assert_eq!((r1.status, r1.information), (STATUS_SUCCESS, 20));
    assert_eq!((r2.status, r2.information), (STATUS_SUCCESS, 5));
    assert_eq!(
        a.rx_returned(),
        (foreign1.len() + foreign2.len()) as u64,
        "every foreign NBL went back to the miniport once"
    );
    assert_eq!(a.rx_outstanding(), 0);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn tx_completions_mixed_with_the_protocols_sends_are_split_by_source() {
    let sim = load(SimConfig {
        seed: 11,
        ..SimConfig::default()
    });
    let a = sim.adapter(0);
    let h = open_bound(&sim, 0);
    let mut source = frames_for(&sim, 0);
    let ids = a.send(&source.take(8));
    let irp = h.start_write(&batch(TX, &source.take(30)));
    a.send(&source.take(8));
    assert_eq!(a.pending_at_miniport(), 46);
    while a.pending_at_miniport() > 0 {
        a.complete_sends(5);
    }
    let r = h.poll(irp).expect("complete once every frame came back");
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 30));
    let done = a.completions();
    assert_eq!(
        done.len(),
        16,
        "only the protocol's own sends are completed to it"
    );
    assert!(ids.iter().all(|id| done.iter().any(|c| c.id == *id)));
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn a_failed_tx_frame_fails_the_write_with_the_ndis_status() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let h = open_bound(&sim, 0);
    a.set_send_status(NDIS_STATUS_MEDIA_DISCONNECTED);
    let frames = frames_for(&sim, 0).take(4);
    let r = h.write(&batch(TX, &frames));
    assert_eq!(r.status, NTSTATUS::from(NDIS_STATUS_MEDIA_DISCONNECTED));
    assert_eq!(r.information, 4, "the frames were accepted and handed to NDIS");
    let c = counters(&h);
    assert_eq!((c.adapter.tx_failed, c.handle.writes_failed), (4, 1));
    // An Rx frame in the same write has no send status: the Tx failure is what the write reports.
    let r = h.write(&records(&[(RX, 0, &frames[0]), (TX, 0, &frames[1])]));
    assert_eq!(r.status, NTSTATUS::from(NDIS_STATUS_MEDIA_DISCONNECTED));
    a.set_send_status(NDIS_STATUS_SUCCESS);
    assert_eq!(h.write(&batch(TX, &frames)).status, STATUS_SUCCESS);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn malformed_writes_are_refused_whole_and_send_nothing() {
    let sim = load(SimConfig::default());
    let h = open_bound(&sim, 0);
    let ok = frames_for(&sim, 0).take(1).remove(0);
    let good = batch(TX, std::slice::from_ref(&ok));
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 9);
    let mut bad_padding = records(&[(TX, 0, &ok[..61]), (TX, 0, &ok)]);
    bad_padding[8 + 61] = 1;
    let mut reserved = good.clone();
    reserved[6] = 1;
    let too_many = {
        let f = &ok[..60];
        let mut v = Vec::new();
        for _ in 0..abi::MAX_FRAMES_PER_WRITE + 1 {
            let mut r = vec![0u8; write::record_len(60)];
            write::encode(&mut r, TX, 0, f).unwrap();
            v.extend(r);
        }
        v
    };
    let cases: Vec<(&str, Vec<u8>, NTSTATUS)> = vec![
        ("truncated frame", truncated, STATUS_INVALID_PARAMETER),
        ("half a header", good[..5].to_vec(), STATUS_INVALID_PARAMETER),
        ("bad padding", bad_padding, STATUS_INVALID_PARAMETER),
        ("reserved bits", reserved, STATUS_INVALID_PARAMETER),
        (
            "bad direction",
            records(&[(TX, 0, &ok), (7, 0, &ok)]),
            STATUS_INVALID_PARAMETER,
        ),
        (
            "unknown flag",
            records(&[(TX, 0x80, &ok)]),
            STATUS_INVALID_PARAMETER,
        ),
        (
            "loopback flag on Rx",
            records(&[(RX, write::FLAG_TX_LOOPBACK, &ok)]),
            STATUS_INVALID_PARAMETER,
        ),
        (
            "13-byte frame",
            records(&[(TX, 0, &ok), (TX, 0, &ok[..13])]),
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "1515-byte frame",
            records(&[(RX, 0, &[ok.clone(), vec![0; 1515 - ok.len()]].concat())]),
            STATUS_INVALID_BUFFER_SIZE,
        ),
        ("4097 frames", too_many, STATUS_INVALID_BUFFER_SIZE),
    ];
    let allocated = sim.stats().filter_nbl_allocations;
    for (what, buf, status) in cases {
        let r = h.write(&buf);
        assert_eq!((r.status, r.information), (status, 0), "{what}");
    }
    assert!(
        wire_from_filter(&sim, 0).is_empty() && sim.adapter(0).received().is_empty(),
        "nothing was sent"
    );
    assert_eq!(
        sim.stats().filter_nbl_allocations,
        allocated,
        "nothing was allocated"
    );
    let c = counters(&h);
    assert_eq!(
        (
            c.handle.writes_failed,
            c.handle.frames_accepted,
            c.handle.writes_pending
        ),
        (10, 0, 0)
    );
    // An empty write succeeds with nothing accepted.
    let r = h.write(&[]);
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 0));
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn the_largest_write_passes_and_frames_follow_the_adapter_mtu() {
    let mut jumbo = AdapterConfig::ethernet(1);
    jumbo.mtu = 9000;
    let sim = load(SimConfig {
        adapters: vec![AdapterConfig::ethernet(0), jumbo],
        ..SimConfig::default()
    });
    let h0 = open_bound(&sim, 0);
    let h1 = open_bound(&sim, 1);
    let frame = |len: usize| {
        let mut f = frames_for(&sim, 1).take(1).remove(0);
        f.resize(len, 0xAB);
        f
    };
    assert_eq!(
        h0.write(&batch(TX, &[frame(9014)])).status,
        STATUS_INVALID_BUFFER_SIZE
    );
    let r = h1.write(&batch(TX, &[frame(9014), frame(14)]));
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 2));
    assert_eq!(
        h1.write(&batch(TX, &[frame(9015)])).status,
        STATUS_INVALID_BUFFER_SIZE
    );
    assert_eq!(wire_from_filter(&sim, 1), vec![frame(9014), frame(14)]);
    assert!(
        wire_from_filter(&sim, 0).is_empty(),
        "frames go to the bound adapter only"
    );
    // MAX_FRAMES_PER_WRITE frames in one write, with the pool's free slots of a small write
    // before it counted in (the pool grows by what is missing, to the bound exactly).
    let many = frames_for(&sim, 0).take(abi::MAX_FRAMES_PER_WRITE as usize);
    let r = h0.write(&batch(RX, &many[..5]));
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 5));
    let r = h0.write(&batch(RX, &many));
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, many.len()));
    assert_eq!(filter_frames(&sim.adapter(0).received()).len(), 5 + many.len());
    drop((h0, h1));
    sim.finish().assert_clean();
}

#[test]
fn injection_follows_an_mtu_changed_at_a_restart_both_ways() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let h = open_bound(&sim, 0);
    let frame = |len: usize| {
        let mut f = frames_for(&sim, 0).take(1).remove(0);
        f.resize(len, 0xAB);
        f
    };
    let write = |frames: &[Vec<u8>]| {
        let r = h.write(&batch(TX, frames));
        (r.status, r.information)
    };
    let restart_with = |mtu: u32| {
        a.set_mtu(mtu);
        sim.pause(0);
        assert_eq!(sim.restart(0), NDIS_STATUS_SUCCESS);
    };
    assert_eq!(write(&[frame(1514)]), (STATUS_SUCCESS, 1));
    assert_eq!(write(&[frame(9014)]).0, STATUS_INVALID_BUFFER_SIZE);
    // Jumbo frames switched on: the pool's buffers are too small and are replaced.
    restart_with(9000);
    assert_eq!(write(&[frame(9014), frame(60)]), (STATUS_SUCCESS, 2));
    // And off again: the larger buffers serve the smaller frames; the larger are refused.
    restart_with(1500);
    assert_eq!(write(&[frame(1514), frame(60)]), (STATUS_SUCCESS, 2));
    assert_eq!(write(&[frame(9014)]).0, STATUS_INVALID_BUFFER_SIZE);
    sim.run_until_idle();
    assert_eq!(
        wire_from_filter(&sim, 0),
        vec![frame(1514), frame(9014), frame(60), frame(1514), frame(60)]
    );
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn writes_fail_fast_while_the_adapter_is_not_running() {
    let sim = load(SimConfig::default());
    let h = open_bound(&sim, 0);
    let f = frames_for(&sim, 0).take(2);
    sim.pause(0);
    let r = h.write(&batch(RX, &f));
    assert_eq!((r.status, r.information), (NTSTATUS::from(NDIS_STATUS_PAUSED), 0));
    assert_eq!(h.write(&batch(TX, &f)).status, NTSTATUS::from(NDIS_STATUS_PAUSED));
    let (_, _, list) = list_adapters(&h, 4);
    assert_eq!(list[0].state, abi::ADAPTER_STATE_PAUSED);
    assert_eq!(sim.restart(0), NDIS_STATUS_SUCCESS);
    assert_eq!(h.write(&batch(RX, &f)).status, STATUS_SUCCESS);
    let c = counters(&h);
    assert_eq!(
        (
            c.adapter.writes_not_running,
            c.handle.writes_failed,
            c.handle.writes_succeeded
        ),
        (2, 2, 1)
    );
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn a_pause_pends_until_every_injected_nbl_is_back() {
    for (dir, send_completion) in [
        (RX, Completion::Async),
        (TX, Completion::Async),
        (RX, Completion::Sync),
    ] {
        let sim = load(SimConfig {
            pause_protocol_first: false,
            send_completion,
            ..SimConfig::default()
        });
        let a = sim.adapter(0);
        let h = open_bound(&sim, 0);
        let irp = h.start_write(&batch(dir, &frames_for(&sim, 0).take(50)));
        assert!(!h.is_complete(irp));
        sim.pause(0);
        assert_eq!(
            a.pauses_pended(),
            1,
            "FilterPause pended while 50 injected NBLs were out"
        );
        assert_eq!(sim.stats().filter_nbls_out, 0);
        let r = h
            .poll(irp)
            .expect("the write completed while the pause waited for its frames");
        assert_eq!((r.status, r.information), (STATUS_SUCCESS, 50));
        assert_eq!(sim.restart(0), NDIS_STATUS_SUCCESS);
        // With nothing out, the next pause completes at once.
        sim.pause(0);
        assert_eq!(a.pauses_pended(), 1);
        drop(h);
        sim.finish().assert_clean();
    }
}

#[test]
fn detach_with_an_open_handle_unbinds_it() {
    let sim = load(SimConfig {
        adapters: vec![AdapterConfig::ethernet(0), AdapterConfig::ethernet(1)],
        ..SimConfig::default()
    });
    let h = open_bound(&sim, 1);
    let f = frames_for(&sim, 1).take(3);
    // A write in flight when the adapter goes away completes first (the pause waits for it).
    let irp = h.start_write(&batch(RX, &f));
    sim.detach(1);
    assert_eq!(h.poll(irp).map(|r| r.status), Some(STATUS_SUCCESS));
    assert_eq!(h.write(&batch(TX, &f)).status, STATUS_NO_SUCH_DEVICE);
    assert_eq!(
        h.write(&batch(TX, &f)).status,
        STATUS_INVALID_DEVICE_STATE,
        "the handle is unbound now"
    );
    let c = counters(&h);
    assert_eq!(c.flags & abi::COUNTERS_BOUND, 0);
    let (status, hdr, _) = list_adapters(&h, 4);
    assert_eq!((status, hdr.total), (STATUS_SUCCESS, 1));
    // The adapter comes back: bind again.
    sim.attach(1).unwrap();
    assert_eq!(bind(&h, sim.adapter(1).config().if_index), STATUS_SUCCESS);
    assert_eq!(h.write(&batch(TX, &f)).status, STATUS_SUCCESS);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn pool_exhaustion_fails_the_write_whole_and_memory_stays_bounded() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let h = open_bound(&sim, 0);
    let mut source = frames_for(&sim, 0);
    // The stack holds every NBL of a maximal write: the pool is at its bound.
    let first = h.start_write(&batch(RX, &source.take(abi::MAX_FRAMES_PER_WRITE as usize)));
    let live = sim.stats().pool_live;
    let r = h.write(&batch(RX, &source.take(1)));
    assert_eq!((r.status, r.information), (STATUS_INSUFFICIENT_RESOURCES, 0));
    assert_eq!(sim.stats().pool_live, live, "no memory beyond the bound");
    assert_eq!(
        a.held_by_protocol(),
        abi::MAX_FRAMES_PER_WRITE as usize,
        "nothing of the refused write was sent"
    );
    let c = counters(&h);
    assert_eq!(
        (c.adapter.writes_out_of_nbls, c.adapter.nbls_in_flight),
        (1, u64::from(abi::MAX_FRAMES_PER_WRITE))
    );
    assert_eq!(
        h.wait(first).map(|r| r.information),
        Some(abi::MAX_FRAMES_PER_WRITE as usize)
    );
    // NBLs are back: writes go through again, reusing them (no new allocation).
    let allocated = sim.stats().filter_nbl_allocations;
    for _ in 0..3 {
        assert_eq!(h.write(&batch(TX, &source.take(1000))).status, STATUS_SUCCESS);
    }
    assert_eq!(sim.stats().filter_nbl_allocations, allocated);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn close_and_cancel_with_writes_in_flight() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    // Close: cleanup completes the write with STATUS_CANCELLED and the frames it handed to
    // NDIS; they are still above, and come back to its record, not to the IRP.
    let h = open_bound(&sim, 0);
    let monitor = sim.open(abi::USER_PATH).expect("open");
    let irp = h.start_write(&batch(RX, &frames_for(&sim, 0).take(10)));
    assert!(!h.is_complete(irp));
    h.close();
    let r = monitor.poll(irp).expect("cleanup completed it");
    assert_eq!((r.status, r.information), (STATUS_CANCELLED, 10));
    assert_eq!(a.held_by_protocol(), 10, "NDIS still owns the frames");
    sim.run_until_idle();
    assert_eq!(a.held_by_protocol(), 0);
    assert_eq!(sim.io_stats().pending, 0);
    // Cancel: the same for one write; the frames return later and only drop the record.
    let h = open_bound(&sim, 0);
    let f = frames_for(&sim, 0).take(10);
    let irp = h.start_write(&records(&[(RX, 0, &f[0]), (TX, 0, &f[1]), (RX, 0, &f[2])]));
    h.cancel(irp);
    let r = h.poll(irp).expect("cancelled at once");
    assert_eq!((r.status, r.information), (STATUS_CANCELLED, 3));
    sim.run_until_idle();
    // A write whose frames all came back before the cancel completes normally.
    let irp = h.start_write(&batch(TX, &f[3..5]));
    sim.run_until_idle();
    h.cancel(irp);
    let r = h.poll(irp).expect("completed");
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 2));
    assert_eq!(counters(&h).handle.writes_pending, 0);
    drop((h, monitor));
    sim.finish().assert_clean();
}

#[test]
fn the_handle_and_adapter_counters_add_up() {
    let sim = load(SimConfig::default());
    let h = open_bound(&sim, 0);
    let other = open_bound(&sim, 0);
    let f = frames_for(&sim, 0).take(10);
    assert_eq!(h.write(&batch(RX, &f[..4])).status, STATUS_SUCCESS);
    assert_eq!(h.write(&batch(TX, &f[4..])).status, STATUS_SUCCESS);
    assert_eq!(other.write(&batch(TX, &f[..1])).status, STATUS_SUCCESS);
    assert_eq!(h.write(&[1, 2, 3]).status, STATUS_INVALID_PARAMETER);
    let c = counters(&h);
    assert_eq!(c.flags, abi::COUNTERS_BOUND | abi::COUNTERS_ADAPTER_PRESENT);
    assert_eq!(c.if_index, sim.adapter(0).config().if_index);
    let hc = c.handle;
    assert_eq!(
        (
            hc.writes,
            hc.writes_succeeded,
            hc.writes_failed,
            hc.writes_pending
        ),
        (3, 2, 1, 0)
    );
    assert_eq!((hc.frames_accepted, hc.rx_frames, hc.tx_frames), (10, 4, 6));
    assert_eq!(hc.bytes_accepted, f.iter().map(|x| x.len() as u64).sum::<u64>());
    let ac = c.adapter;
    assert_eq!(
        (ac.rx_injected, ac.tx_injected, ac.rx_returned, ac.tx_completed),
        (4, 7, 4, 7)
    );
    assert_eq!(counters(&other).handle.frames_accepted, 1);
    drop((h, other));
    sim.finish().assert_clean();
}

#[test]
fn many_clients_inject_concurrently_while_foreign_traffic_flows() {
    let sim = load(SimConfig {
        send_completion: Completion::Mixed,
        datapath_irql: IrqlMode::Mixed,
        seed: 99,
        ..SimConfig::default()
    });
    const THREADS: usize = 4;
    const WRITES: usize = 20;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let sim = &sim;
            s.spawn(move || {
                let _actor = sim.actor();
                let h = open_bound(sim, 0);
                let mut source = frames_for(sim, 0);
                for w in 0..WRITES {
                    let dir = if (t + w) % 2 == 0 { RX } else { TX };
                    let r = h.write(&batch(dir, &source.take(1 + (w * 7) % 40)));
                    assert_eq!(r.status, STATUS_SUCCESS);
                }
            });
        }
        let sim = &sim;
        s.spawn(move || {
            // Its completions and returns are what the writers wait for.
            let _actor = sim.actor();
            let a = sim.adapter(0);
            let mut source = frames_for(sim, 0);
            for _ in 0..50 {
                a.indicate(&source.take(5));
                a.send(&source.take(5));
                a.return_receives(7);
                a.complete_sends(7);
            }
        });
    });
    sim.run_until_idle();
    let a = sim.adapter(0);
    let per_thread: usize = (0..WRITES).map(|w| 1 + (w * 7) % 40).sum();
    let own_up = filter_frames(&a.received()).len();
    let own_down = wire_from_filter(&sim, 0).len();
    assert_eq!(own_up + own_down, THREADS * per_thread);
    assert_eq!(a.rx_outstanding(), 0);
    assert_eq!(a.tx_outstanding(), 0);
    sim.finish().assert_clean();
}

#[test]
fn writes_racing_pause_and_restart_never_originate_outside_running() {
    let sim = load(SimConfig {
        pause_protocol_first: false,
        send_completion: Completion::Mixed,
        seed: 5,
        ..SimConfig::default()
    });
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let stop = AtomicBool::new(false);
    // Writes completed, and of them those that went through: the pauser waits for counts
    // reached, never for time.
    let (completed, succeeded) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let (ok, paused) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let h = open_bound(&sim, 0);
            let mut source = frames_for(&sim, 0);
            let (mut ok, mut paused) = (0, 0);
            while !stop.load(Ordering::Acquire) {
                let r = h.write(&batch(if ok % 2 == 0 { RX } else { TX }, &source.take(8)));
                match r.status {
                    STATUS_SUCCESS => {
                        ok += 1;
                        succeeded.fetch_add(1, Ordering::Release);
                    }
                    s if s == NTSTATUS::from(NDIS_STATUS_PAUSED) => paused += 1,
                    s => panic!("unexpected status {s:?}"),
                }
                completed.fetch_add(1, Ordering::Release);
            }
            (ok, paused)
        });
        let wait_for = |counter: &AtomicUsize, n: usize| {
            while counter.load(Ordering::Acquire) < n {
                std::thread::yield_now();
            }
        };
        // This thread restarts what it pauses: a write waiting across a pause is not hung.
        let actor = sim.actor();
        for _ in 0..30 {
            // A write goes through while running, another completes around the pause.
            wait_for(&succeeded, succeeded.load(Ordering::Acquire) + 1);
            sim.pause(0);
            wait_for(&completed, completed.load(Ordering::Acquire) + 1);
            assert_eq!(sim.restart(0), NDIS_STATUS_SUCCESS);
        }
        drop(actor);
        stop.store(true, Ordering::Release);
        writer.join().unwrap()
    });
    assert!(
        ok >= 30,
        "a write went through in every cycle ({ok} ok, {paused} paused)"
    );
    sim.finish().assert_clean();
}

/// A deterministic generator for the randomized tests below.
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

#[test]
fn mutated_write_buffers_are_injected_exactly_or_refused_whole() {
    let sim = load(SimConfig {
        send_completion: Completion::Mixed,
        seed: 31,
        ..SimConfig::default()
    });
    let h = open_bound(&sim, 0);
    let mut next = xorshift(0xD1CE);
    let frames = frames_for(&sim, 0).take(8);
    let base = records(&[
        (RX, 0, &frames[0]),
        (TX, 0, &frames[1]),
        (write::DIR_DEFAULT, 0, &frames[2]),
        (TX, write::FLAG_TX_LOOPBACK, &frames[3]),
        (RX, 0, &tagged(&frames[4], 0x2005)),
    ]);
    let (mut accepted, mut refused) = (0usize, 0usize);
    let mut expected_frames = 0usize;
    for _ in 0..1500 {
        let mut buf = base.clone();
        for _ in 0..1 + next() % 3 {
            if buf.is_empty() {
                break;
            }
            let at = (next() % buf.len() as u64) as usize;
            match next() % 4 {
                0 => buf[at] = next() as u8,
                1 => buf[at] ^= 1 << (next() % 8),
                2 => buf.truncate(at),
                _ => buf.insert(at, next() as u8),
            }
        }
        let verdict = write::parse(&buf, 1514);
        let r = h.write(&buf);
        match verdict {
            Ok(s) => {
                assert_eq!((r.status, r.information), (STATUS_SUCCESS, s.frames as usize));
                accepted += 1;
                expected_frames += s.frames as usize;
            }
            Err(e) => {
                let status = if e.is_size() {
                    STATUS_INVALID_BUFFER_SIZE
                } else {
                    STATUS_INVALID_PARAMETER
                };
                assert_eq!((r.status, r.information), (status, 0), "{e:?}");
                refused += 1;
            }
        }
    }
    assert!(
        accepted > 50 && refused > 50,
        "{accepted} accepted, {refused} refused"
    );
    sim.run_until_idle();
    let a = sim.adapter(0);
    assert_eq!(
        filter_frames(&a.received()).len() + wire_from_filter(&sim, 0).len(),
        expected_frames
    );
    assert_eq!(counters(&h).handle.frames_accepted, expected_frames as u64);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn random_device_controls_get_a_status_and_never_break_a_rule() {
    let sim = load(SimConfig::default());
    let h = sim.open(abi::USER_PATH).unwrap();
    let mut next = xorshift(0xC0DE);
    let known: Vec<u32> = abi::IOCTLS.iter().map(|(_, code)| *code).collect();
    for i in 0..3000 {
        let code = match i % 3 {
            0 => known[(next() % known.len() as u64) as usize],
            1 => known[(next() % known.len() as u64) as usize] ^ (1 << (next() % 32)),
            _ => next() as u32,
        };
        let input: Vec<u8> = (0..next() % 24).map(|_| next() as u8).collect();
        let out_len = (next() % 700) as usize;
        let r = h.device_io_control(code, &input, out_len);
        assert!(r.information <= out_len);
        if !known.contains(&code) {
            assert_eq!(r.status, STATUS_INVALID_DEVICE_REQUEST, "{code:#010x}");
        }
    }
    drop(h);
    sim.finish().assert_clean();
}

/// A reused NBL is a clean NBL: whatever the stack left in it on its last trip (up or down)
/// is gone when it is issued again, either way.
#[test]
fn a_reused_nbl_carries_nothing_from_its_previous_trip() {
    let sim = load(SimConfig::default());
    let h = open_bound(&sim, 0);
    let mut f = frames_for(&sim, 0);
    for dir in [RX, TX, RX, TX, TX, RX] {
        assert_eq!(h.write(&batch(dir, &f.take(8))).status, STATUS_SUCCESS);
    }
    let allocated = sim.stats().filter_nbl_allocations;
    assert!(allocated <= 32, "the slots were reused ({allocated} NBLs)");
    assert_eq!(
        sim.stats().stale_own_nbls,
        0,
        "NBLs issued with state from their last trip"
    );
    drop(h);
    sim.finish().assert_clean();
}
