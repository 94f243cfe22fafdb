//! rxinject passes traffic through untouched: frames arrive byte-identical and in order in
//! both directions, and every completion and return reaches its owner exactly once, in every
//! completion/IRQL/MDL mode of the simulator. The simulator is strict: each test ends with
//! `finish().assert_clean()` (no rule broken, nothing leaked at unload).

mod common;

use common::load;
use ndis_sim::{Completion, FrameOrigin, IrqlMode, Sim, SimConfig, TestFrames};
use ndis_sys::*;

fn frames_for(sim: &Sim, adapter: usize) -> TestFrames {
    TestFrames::new(
        [0x02, 0x11, 0x22, 0x33, 0x44, 0x55],
        sim.adapter(adapter).config().mac,
    )
}

/// Every simulator mode a pass-through filter must be indifferent to.
fn modes() -> Vec<SimConfig> {
    let mut v = Vec::new();
    for send_completion in [Completion::Async, Completion::Sync, Completion::Mixed] {
        for datapath_irql in [IrqlMode::Dispatch, IrqlMode::Passive, IrqlMode::Mixed] {
            for mdl_split in [true, false] {
                v.push(SimConfig {
                    send_completion,
                    datapath_irql,
                    mdl_split,
                    seed: v.len() as u64 + 1,
                    ..SimConfig::default()
                });
            }
        }
    }
    v
}

#[test]
fn receives_arrive_byte_identical_and_in_order_and_are_returned_once() {
    for cfg in modes() {
        let sim = load(cfg.clone());
        let a = sim.adapter(0);
        let mut frames_gen = frames_for(&sim, 0);
        let mut sent = Vec::new();
        for chain in 1..=12 {
            let frames = frames_gen.take(chain);
            let ids = a.indicate(&frames);
            sent.extend(ids.into_iter().zip(frames));
            // The protocol returns some now, holds the rest across indications.
            a.return_receives(chain / 2);
        }
        sim.run_until_idle();
        let got = a.received();
        assert_eq!(got.len(), sent.len(), "{cfg:?}");
        for (rx, (id, bytes)) in got.iter().zip(&sent) {
            assert_eq!(rx.id, *id, "order, {cfg:?}");
            assert_eq!(&rx.bytes, bytes, "frame {id} bytes, {cfg:?}");
            assert_eq!(rx.origin, FrameOrigin::Foreign);
            assert!(!rx.resources);
        }
        assert_eq!(a.rx_outstanding(), 0, "every receive back with the miniport");
        assert_eq!(a.rx_returned(), sent.len() as u64, "returned exactly once each");
        sim.finish().assert_clean();
    }
}

#[test]
fn resources_receives_pass_up_with_the_flag_and_stay_the_miniports() {
    for cfg in modes() {
        let sim = load(cfg.clone());
        let a = sim.adapter(0);
        let mut frames_gen = frames_for(&sim, 0);
        let mut expected = Vec::new();
        for chain in [1, 3, 8, 2] {
            let frames = frames_gen.take(chain);
            expected.extend(a.indicate_resources(&frames).into_iter().zip(frames));
        }
        let got = a.received();
        assert_eq!(got.len(), expected.len());
        for (rx, (id, bytes)) in got.iter().zip(&expected) {
            assert_eq!((rx.id, &rx.bytes, rx.resources), (*id, bytes, true), "{cfg:?}");
        }
        assert_eq!(a.held_by_protocol(), 0, "a RESOURCES indication is never held");
        assert_eq!(a.rx_outstanding(), 0);
        sim.finish().assert_clean();
    }
}

#[test]
fn sends_reach_the_wire_byte_identical_and_in_order_and_complete_once() {
    for cfg in modes() {
        let sim = load(cfg.clone());
        let a = sim.adapter(0);
        let mut frames_gen = frames_for(&sim, 0);
        let mut sent = Vec::new();
        for chain in 1..=10 {
            let frames = frames_gen.take(chain);
            sent.extend(a.send(&frames).into_iter().zip(frames));
            a.complete_sends(chain / 3);
        }
        sim.run_until_idle();
        let wire = a.wire();
        assert_eq!(wire.len(), sent.len());
        for (w, (id, bytes)) in wire.iter().zip(&sent) {
            assert_eq!(
                (w.id, &w.bytes, w.origin),
                (*id, bytes, FrameOrigin::Foreign),
                "{cfg:?}"
            );
        }
        let mut completed: Vec<u64> = a.completions().iter().map(|c| c.id).collect();
        completed.sort_unstable();
        let mut ids: Vec<u64> = sent.iter().map(|s| s.0).collect();
        ids.sort_unstable();
        assert_eq!(completed, ids, "each send completed exactly once, {cfg:?}");
        assert!(a.completions().iter().all(|c| c.status == NDIS_STATUS_SUCCESS));
        assert_eq!(a.tx_outstanding(), 0);
        sim.finish().assert_clean();
    }
}

#[test]
fn the_miniports_send_status_reaches_the_protocol_unchanged() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    a.set_send_status(NDIS_STATUS_MEDIA_DISCONNECTED);
    let ids = a.send(&frames_for(&sim, 0).take(5));
    sim.run_until_idle();
    let c = a.completions();
    assert_eq!(c.len(), ids.len());
    assert!(
        c.iter().all(|c| c.status == NDIS_STATUS_MEDIA_DISCONNECTED),
        "{c:?}"
    );
    sim.finish().assert_clean();
}

#[test]
fn check_for_loopback_is_passed_down() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    a.send_with_flags(&frames_for(&sim, 0).take(3), NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK);
    sim.run_until_idle();
    assert_eq!(a.wire().len(), 3);
    // The simulator checks S8 on every send: a clean finish means the flag survived.
    sim.finish().assert_clean();
}

#[test]
fn returns_mixed_across_many_indications_reach_the_miniport_once() {
    let sim = load(SimConfig {
        seed: 99,
        ..SimConfig::default()
    });
    let a = sim.adapter(0);
    let mut frames_gen = frames_for(&sim, 0);
    let mut total = 0;
    for chain in [5, 1, 7, 3, 4] {
        total += a.indicate(&frames_gen.take(chain)).len();
    }
    assert_eq!(a.held_by_protocol(), total, "the protocol holds every indication");
    // Return them in shuffled, mixed chains of uneven sizes.
    for n in [3, 1, 6, 2] {
        a.return_receives(n);
    }
    sim.run_until_idle();
    assert_eq!(a.rx_returned(), total as u64);
    assert_eq!(a.rx_outstanding(), 0);
    sim.finish().assert_clean();
}

#[test]
fn several_adapters_pass_traffic_independently() {
    let cfg = SimConfig {
        adapters: (0..3).map(ndis_sim::AdapterConfig::ethernet).collect(),
        ..SimConfig::default()
    };
    let sim = load(cfg);
    for i in 0..3 {
        let a = sim.adapter(i);
        let mut frames_gen = frames_for(&sim, i);
        a.indicate(&frames_gen.take(i + 1));
        a.send(&frames_gen.take(i + 2));
    }
    sim.run_until_idle();
    for i in 0..3 {
        let a = sim.adapter(i);
        assert_eq!(a.received().len(), i + 1);
        assert_eq!(a.wire().len(), i + 2);
        assert!(
            a.received().iter().all(|f| f.bytes[..6] == a.config().mac),
            "frames stay on their adapter"
        );
    }
    sim.finish().assert_clean();
}

#[test]
fn oid_requests_are_forwarded_and_completed_with_the_miniports_results() {
    for oid_completion in [Completion::Sync, Completion::Async] {
        let sim = load(SimConfig {
            oid_completion,
            ..SimConfig::default()
        });
        let a = sim.adapter(0);

        let mac = a.query_oid(OID_802_3_CURRENT_ADDRESS, 6);
        assert_eq!(mac.status, NDIS_STATUS_SUCCESS);
        assert_eq!(mac.data, a.config().mac);
        assert_eq!(mac.counts.bytes_written, 6);

        let short = a.query_oid(OID_802_3_CURRENT_ADDRESS, 4);
        assert_eq!(short.status, NDIS_STATUS_BUFFER_TOO_SHORT);
        assert_eq!(
            short.counts.bytes_needed, 6,
            "BytesNeeded copied back from the clone"
        );

        let mtu = a.query_oid(OID_GEN_MAXIMUM_FRAME_SIZE, 4);
        assert_eq!(u32::from_le_bytes(mtu.data.try_into().unwrap()), 1500);

        let set = a.set_oid(OID_GEN_CURRENT_PACKET_FILTER, &0x0Bu32.to_le_bytes());
        assert_eq!((set.status, set.counts.bytes_read), (NDIS_STATUS_SUCCESS, 4));
        assert_eq!(a.packet_filter(), 0x0B, "the set reached the miniport");

        let unknown = a.query_oid(0x00FF_FFFF, 16);
        assert_eq!(unknown.status, NDIS_STATUS_NOT_SUPPORTED);
        sim.finish().assert_clean();
    }
}

#[test]
fn oids_are_forwarded_while_paused() {
    let sim = load(SimConfig::default());
    sim.pause(0);
    let r = sim.adapter(0).query_oid(OID_802_3_CURRENT_ADDRESS, 6);
    assert_eq!(r.status, NDIS_STATUS_SUCCESS);
    sim.finish().assert_clean();
}

#[test]
fn status_indications_and_pnp_events_pass_through() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    a.indicate_status(NDIS_STATUS_LINK_STATE, &[1, 0, 0, 0]);
    assert_eq!(a.statuses(), vec![NDIS_STATUS_LINK_STATE]);
    assert_eq!(a.net_pnp_event(), NDIS_STATUS_SUCCESS);
    a.device_pnp_event();
    assert_eq!(a.pnp_events_delivered(), (1, 1));
    a.cancel_sends(0x1234);
    a.cancel_oid(0x5678);
    assert_eq!(a.cancels_delivered(), vec![0x1234, 0x5678]);
    sim.finish().assert_clean();
}
