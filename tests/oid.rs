//! OID requests from user mode (`IOCTL_RXINJECT_OID_REQUEST`): queries answered by the
//! miniport through a request of the driver's own; one per handle, one per module at the
//! miniport with the others queued; cancel, cleanup, timeout and pause against a miniport
//! that holds its requests (a hung device), and nothing left behind.

mod common;

use std::time::Duration;

use common::*;
use ndis_sim::{Completion, DeviceHandle, Irp, SimConfig};
use ndis_sys::*;
use rxinject_abi::{self as abi, OidRequest, OidResult, Pod};

/// The input of a query of `oid` into a buffer of `len` bytes, timing out after `timeout_ms`.
fn query_input(oid: NDIS_OID, len: u32, timeout_ms: u32) -> Vec<u8> {
    OidRequest {
        oid,
        kind: abi::OID_QUERY,
        timeout_ms,
        length: len,
    }
    .to_vec()
}

/// Handle `h` asks for the packet filter types `filter`; returns the miniport's status.
fn set_packet_filter(h: &DeviceHandle<'_>, filter: u32) -> u32 {
    let r = h.device_io_control(
        abi::IOCTL_RXINJECT_OID_REQUEST,
        &oid_set_input(OID_GEN_CURRENT_PACKET_FILTER, &filter.to_le_bytes()),
        size_of::<OidResult>(),
    );
    assert_eq!(r.status, STATUS_SUCCESS);
    let (res, _) = result(&r.output);
    assert_eq!(res.bytes, 4);
    res.status
}

fn start_query(h: &DeviceHandle<'_>, oid: NDIS_OID, len: u32, timeout_ms: u32) -> Irp {
    h.start_device_io_control(
        abi::IOCTL_RXINJECT_OID_REQUEST,
        &query_input(oid, len, timeout_ms),
        size_of::<OidResult>() + len as usize,
    )
}

/// The result record and the data of a completed request.
fn result(out: &[u8]) -> (OidResult, Vec<u8>) {
    let r = OidResult::read_from(out).expect("a result record");
    (r, out[size_of::<OidResult>()..].to_vec())
}

fn query(h: &DeviceHandle<'_>, oid: NDIS_OID, len: u32) -> (NTSTATUS, OidResult, Vec<u8>) {
    let r = h.device_io_control(
        abi::IOCTL_RXINJECT_OID_REQUEST,
        &query_input(oid, len, 0),
        size_of::<OidResult>() + len as usize,
    );
    if r.status != STATUS_SUCCESS {
        return (r.status, OidResult::default(), Vec::new());
    }
    let (res, data) = result(&r.output);
    (r.status, res, data)
}

#[test]
fn queries_reach_the_miniport_and_bring_its_answer_back() {
    for completion in [Completion::Sync, Completion::Async] {
        let sim = load(SimConfig {
            oid_completion: completion,
            ..SimConfig::default()
        });
        let h = open_bound(&sim, 0);
        let (st, r, data) = query(&h, OID_GEN_LINK_SPEED, 4);
        assert_eq!((st, r.status, r.bytes), (STATUS_SUCCESS, 0, 4), "{completion:?}");
        assert_eq!(u32::from_le_bytes(data[..4].try_into().unwrap()), 10_000_000);
        let (_, r, data) = query(&h, OID_802_3_CURRENT_ADDRESS, 6);
        assert_eq!((r.status, data), (0, sim.adapter(0).config().mac.to_vec()));
        // Too small a buffer: the miniport's status and the size it needs reach the caller.
        let (st, r, data) = query(&h, OID_GEN_LINK_STATE, 8);
        assert_eq!(st, STATUS_SUCCESS);
        assert_eq!(
            (r.status, r.bytes_needed, data.len()),
            (NDIS_STATUS_BUFFER_TOO_SHORT.code(), 40, 0)
        );
        let (_, r, _) = query(&h, 0x00FF_FF01, 4);
        assert_eq!(r.status, NDIS_STATUS_NOT_SUPPORTED.code());
        drop(h);
        sim.finish().assert_clean();
    }
}

#[test]
fn malformed_unbound_and_disallowed_requests_are_refused() {
    let sim = load(SimConfig::default());
    let h = open_bound(&sim, 0);
    let code = abi::IOCTL_RXINJECT_OID_REQUEST;
    let out = size_of::<OidResult>() + 4;
    assert_eq!(
        h.device_io_control(code, &[0; 8], out).status,
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        h.device_io_control(code, &query_input(OID_GEN_LINK_SPEED, 4, 0), 8)
            .status,
        STATUS_INVALID_PARAMETER,
        "no room for the result"
    );
    let mut bad_kind = query_input(OID_GEN_LINK_SPEED, 4, 0);
    bad_kind[4] = 7;
    assert_eq!(
        h.device_io_control(code, &bad_kind, out).status,
        STATUS_INVALID_PARAMETER
    );
    let big = query_input(OID_GEN_LINK_SPEED, abi::MAX_OID_DATA + 1, 0);
    assert_eq!(
        h.device_io_control(
            code,
            &big,
            size_of::<OidResult>() + abi::MAX_OID_DATA as usize + 1
        )
        .status,
        STATUS_INVALID_BUFFER_SIZE
    );
    // Output too small for the query's buffer.
    assert_eq!(
        h.device_io_control(code, &query_input(OID_GEN_LINK_SPEED, 64, 0), out)
            .status,
        STATUS_INVALID_BUFFER_SIZE
    );
    // A set outside the allow-list changes nothing.
    let group = [0x01, 0x00, 0x5E, 0x00, 0x00, 0x01];
    let set = oid_set_input(OID_802_3_MULTICAST_LIST, &group);
    assert_eq!(
        h.device_io_control(code, &set, size_of::<OidResult>()).status,
        STATUS_ACCESS_DENIED
    );
    assert!(sim.adapter(0).multicast_list().is_empty());
    // The packet filter: 4 bytes, of the types a handle may ask for.
    let short = oid_set_input(OID_GEN_CURRENT_PACKET_FILTER, &[0x20, 0]);
    assert_eq!(
        h.device_io_control(code, &short, size_of::<OidResult>()).status,
        STATUS_INVALID_BUFFER_SIZE
    );
    let token_ring = oid_set_input(OID_GEN_CURRENT_PACKET_FILTER, &0x0000_4000u32.to_le_bytes());
    assert_eq!(
        h.device_io_control(code, &token_ring, size_of::<OidResult>())
            .status,
        STATUS_NOT_SUPPORTED
    );
    assert_eq!(sim.adapter(0).packet_filter(), ndis_sim::PROTOCOL_PACKET_FILTER);
    let unbound = sim.open(abi::USER_PATH).unwrap();
    assert_eq!(
        unbound
            .device_io_control(code, &query_input(OID_GEN_LINK_SPEED, 4, 0), out)
            .status,
        STATUS_INVALID_DEVICE_STATE
    );
    drop((h, unbound));
    sim.finish().assert_clean();
}

/// Against a hung device: one request per handle (a second is busy), the next handle's
/// queued behind the first at the miniport; a cancel completes its IRP at once (the request
/// is cancelled at the miniport and freed when it comes back), the timeout ends the one
/// that never comes back, and closing a handle ends its request.
#[test]
fn a_hung_device_never_hangs_the_caller() {
    let sim = load(SimConfig {
        oid_completion: Completion::Async,
        ..SimConfig::default()
    });
    let a = sim.adapter(0);
    a.hold_oids(true);
    let (h1, h2, h3) = (open_bound(&sim, 0), open_bound(&sim, 0), open_bound(&sim, 0));
    let first = start_query(&h1, OID_GEN_LINK_SPEED, 4, 0);
    sim.run_until_idle();
    assert!(!h1.is_complete(first));
    let busy = h1.device_io_control(
        abi::IOCTL_RXINJECT_OID_REQUEST,
        &query_input(OID_GEN_LINK_SPEED, 4, 0),
        size_of::<OidResult>() + 4,
    );
    assert_eq!(busy.status, STATUS_DEVICE_BUSY);
    let queued = start_query(&h2, OID_GEN_HARDWARE_STATUS, 4, 200);
    let closed = start_query(&h3, OID_GEN_MEDIA_IN_USE, 4, 0);
    sim.run_until_idle();
    assert_eq!(
        a.oids_pending_at_miniport(),
        1,
        "one own request at the miniport at a time"
    );
    // Cancel the one at the miniport: its IRP completes now; the miniport aborts it and the
    // queued one goes down.
    h1.cancel(first);
    assert_eq!(h1.poll(first).map(|r| r.status), Some(STATUS_CANCELLED));
    sim.run_until_idle();
    assert_eq!(a.oids_pending_at_miniport(), 1);
    // It is held too: its 200 ms pass.
    assert!(!h2.is_complete(queued));
    sim.advance_time(Duration::from_millis(300));
    sim.run_until_idle();
    assert_eq!(h2.poll(queued).map(|r| r.status), Some(STATUS_IO_TIMEOUT));
    // The third handle closes with its request still queued behind the timed-out one.
    let monitor = sim.open(abi::USER_PATH).unwrap();
    h3.close();
    assert_eq!(monitor.poll(closed).map(|r| r.status), Some(STATUS_CANCELLED));
    // The device recovers: what it held comes back, and nothing is left.
    a.hold_oids(false);
    sim.run_until_idle();
    assert_eq!(a.oids_pending_at_miniport(), 0);
    let (st, r, _) = query(&h1, OID_GEN_LINK_SPEED, 4);
    assert_eq!((st, r.status), (STATUS_SUCCESS, 0));
    drop((h1, h2, monitor));
    sim.finish().assert_clean();
}

/// A pause cancels the request at the miniport (its datapath reference would hold the pause
/// for as long as the device does) and fails the queued ones with NDIS_STATUS_PAUSED; while
/// paused, a request is refused.
#[test]
fn a_pause_is_not_held_by_a_hung_request() {
    let sim = load(SimConfig {
        oid_completion: Completion::Async,
        ..SimConfig::default()
    });
    let a = sim.adapter(0);
    a.hold_oids(true);
    let (h1, h2) = (open_bound(&sim, 0), open_bound(&sim, 0));
    let at_miniport = start_query(&h1, OID_GEN_LINK_SPEED, 4, 0);
    let queued = start_query(&h2, OID_GEN_LINK_SPEED, 4, 0);
    sim.run_until_idle();
    sim.pause(0);
    assert_eq!(a.state(), ndis_sim::ModState::Paused);
    assert_eq!(
        h2.poll(queued).map(|r| r.status),
        Some(NTSTATUS::from(NDIS_STATUS_PAUSED))
    );
    let r = h1.poll(at_miniport).expect("answered: aborted");
    let (res, _) = result(&r.output);
    assert_eq!(
        (r.status, res.status),
        (STATUS_SUCCESS, NDIS_STATUS_REQUEST_ABORTED.code())
    );
    let (st, _, _) = query(&h1, OID_GEN_LINK_SPEED, 4);
    assert_eq!(st, NTSTATUS::from(NDIS_STATUS_PAUSED));
    assert_eq!(
        counters(&h1).adapter.writes_not_running,
        0,
        "an OID request is not a write"
    );
    assert_eq!(sim.restart(0), NDIS_STATUS_SUCCESS);
    a.hold_oids(false);
    let (st, r, _) = query(&h1, OID_GEN_LINK_SPEED, 4);
    assert_eq!((st, r.status), (STATUS_SUCCESS, 0));
    drop((h1, h2));
    sim.finish().assert_clean();
}

/// Promiscuous mode per handle: the miniport's filter is the union of the protocols' own
/// and the handles', a protocol that queries it is told its own, and the union shrinks back
/// as the handles go away. With a NIC that honours its filter, a capture sees frames for
/// other stations only while a handle asks for them.
#[test]
fn handles_packet_filters_merge_with_the_protocols_and_go_away_with_them() {
    let mut ac = ndis_sim::AdapterConfig::ethernet(0);
    ac.honour_packet_filter = true;
    for completion in [Completion::Sync, Completion::Async] {
        let sim = load(SimConfig {
            adapters: vec![ac.clone()],
            oid_completion: completion,
            ..SimConfig::default()
        });
        let a = sim.adapter(0);
        let proto = ndis_sim::PROTOCOL_PACKET_FILTER;
        let cap = open_capture(&sim, 0, nonblocking());
        let stranger = ndis_sim::TestFrames::new([2, 0, 0, 0, 0, 9], [0x02, 0, 0, 0, 0, 0x77]).take(1);
        a.indicate(&stranger);
        assert!(drain_records(&cap).is_empty(), "not for us: the NIC drops it");
        assert_eq!(
            set_packet_filter(&cap, NDIS_PACKET_TYPE_PROMISCUOUS),
            0,
            "{completion:?}"
        );
        assert_eq!(a.packet_filter(), proto | NDIS_PACKET_TYPE_PROMISCUOUS);
        a.indicate(&stranger);
        assert_eq!(drain_records(&cap).len(), 1, "promiscuous: captured");
        // The protocol changes its filter: the union goes down; it is told its own.
        let own = NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_BROADCAST;
        assert_eq!(
            a.set_oid(OID_GEN_CURRENT_PACKET_FILTER, &own.to_le_bytes())
                .status,
            NDIS_STATUS_SUCCESS
        );
        assert_eq!(a.packet_filter(), own | NDIS_PACKET_TYPE_PROMISCUOUS);
        assert_eq!(
            a.query_oid(OID_GEN_CURRENT_PACKET_FILTER, 4).data,
            own.to_le_bytes()
        );
        // A second handle: "all local" stands for directed, multicast and broadcast.
        let h2 = open_bound(&sim, 0);
        assert_eq!(set_packet_filter(&h2, NDIS_PACKET_TYPE_ALL_LOCAL), 0);
        assert_eq!(
            a.packet_filter(),
            own | NDIS_PACKET_TYPE_PROMISCUOUS | NDIS_PACKET_TYPE_MULTICAST
        );
        // The same again changes nothing below.
        assert_eq!(set_packet_filter(&h2, NDIS_PACKET_TYPE_ALL_LOCAL), 0);
        // The capturing handle goes away: promiscuous goes with it.
        drop(cap);
        sim.run_until_idle();
        assert_eq!(a.packet_filter(), own | NDIS_PACKET_TYPE_MULTICAST);
        h2.close();
        sim.run_until_idle();
        assert_eq!(a.packet_filter(), own, "the protocols' own filter, restored");
        sim.finish().assert_clean();
    }
}

/// A frame that arrives only because a handle asked for promiscuous mode is captured, and
/// goes no further: the protocols get what their own filter asks for, from ordinary and
/// RESOURCES indications alike (the lent chain goes back as it came, R3). Without such a
/// handle, every receive goes up untouched.
#[test]
fn frames_only_a_handle_asked_for_are_captured_but_not_passed_up() {
    let mut ac = ndis_sim::AdapterConfig::ethernet(0);
    ac.honour_packet_filter = true;
    let sim = load(SimConfig {
        adapters: vec![ac],
        ..SimConfig::default()
    });
    let a = sim.adapter(0);
    let mac = a.config().mac;
    let mut ours = frames_for(&sim, 0);
    let mut strangers = ndis_sim::TestFrames::new([2, 0, 0, 0, 0, 9], [0x02, 0, 0, 0, 0, 0x77]);
    let broadcast = ndis_sim::TestFrames::new([2, 0, 0, 0, 0, 9], [0xFF; 6]).take(1);
    let cap = open_capture(&sim, 0, nonblocking());
    assert_eq!(set_packet_filter(&cap, NDIS_PACKET_TYPE_PROMISCUOUS), 0);
    let up = |from: usize| -> Vec<[u8; 6]> {
        a.received()[from..]
            .iter()
            .map(|r| r.bytes[..6].try_into().unwrap())
            .collect()
    };
    for resources in [false, true] {
        let before = a.received().len();
        let mix = vec![
            strangers.next_frame(),
            ours.next_frame(),
            strangers.next_frame(),
            broadcast[0].clone(),
            ours.next_frame(),
            strangers.next_frame(),
        ];
        if resources {
            a.indicate_resources(&mix);
        } else {
            a.indicate(&mix);
        }
        sim.run_until_idle();
        assert_eq!(up(before), vec![mac, [0xFF; 6], mac], "resources: {resources}");
        assert_eq!(drain_records(&cap).len(), 6, "all captured");
    }
    // The handle goes: promiscuous off, nothing suppressed.
    drop(cap);
    sim.run_until_idle();
    let before = a.received().len();
    a.indicate(&ours.take(2));
    sim.run_until_idle();
    assert_eq!(up(before), vec![mac, mac]);
    assert_eq!(
        a.rx_outstanding(),
        0,
        "what was not passed up went back to the miniport"
    );
    sim.finish().assert_clean();
}

/// The handle's filter types stay only where it is bound, and only while it is: rebinding
/// to another adapter restores the first one's filter; a handle that goes away while its
/// adapter is paused has its types dropped at the restart.
#[test]
fn filter_types_follow_the_binding_and_survive_no_pause() {
    let sim = load(SimConfig {
        adapters: vec![
            ndis_sim::AdapterConfig::ethernet(0),
            ndis_sim::AdapterConfig::ethernet(1),
        ],
        ..SimConfig::default()
    });
    let proto = ndis_sim::PROTOCOL_PACKET_FILTER;
    let promisc = proto | NDIS_PACKET_TYPE_PROMISCUOUS;
    let (a0, a1) = (sim.adapter(0), sim.adapter(1));
    let h = open_bound(&sim, 0);
    assert_eq!(set_packet_filter(&h, NDIS_PACKET_TYPE_PROMISCUOUS), 0);
    assert_eq!((a0.packet_filter(), a1.packet_filter()), (promisc, proto));
    assert_eq!(bind(&h, a1.config().if_index), STATUS_SUCCESS);
    sim.run_until_idle();
    assert_eq!(a0.packet_filter(), proto, "rebinding takes the types away");
    assert_eq!(set_packet_filter(&h, NDIS_PACKET_TYPE_PROMISCUOUS), 0);
    assert_eq!(a1.packet_filter(), promisc);
    sim.pause(1);
    drop(h);
    sim.run_until_idle();
    assert_eq!(a1.packet_filter(), promisc, "paused: not told yet");
    assert_eq!(sim.restart(1), NDIS_STATUS_SUCCESS);
    sim.run_until_idle();
    assert_eq!(a1.packet_filter(), proto, "told at the restart");
    sim.finish().assert_clean();
}

/// A pause with a hung request at the miniport and the driver's own packet filter set
/// queued behind it: the set is dropped (not left holding the pause), the hung request is
/// aborted, and the restart redoes the set.
#[test]
fn a_pause_drops_the_drivers_own_queued_set_and_the_restart_redoes_it() {
    let sim = load(SimConfig {
        oid_completion: Completion::Async,
        ..SimConfig::default()
    });
    let a = sim.adapter(0);
    let proto = ndis_sim::PROTOCOL_PACKET_FILTER;
    let (h1, h2) = (open_bound(&sim, 0), open_bound(&sim, 0));
    assert_eq!(set_packet_filter(&h1, NDIS_PACKET_TYPE_PROMISCUOUS), 0);
    a.hold_oids(true);
    let held = start_query(&h2, OID_GEN_LINK_SPEED, 4, 0);
    sim.run_until_idle();
    // h1 goes: its types leave the union, and the set waits behind the held query.
    drop(h1);
    sim.run_until_idle();
    assert_eq!(a.packet_filter(), proto | NDIS_PACKET_TYPE_PROMISCUOUS);
    sim.pause(0);
    assert_eq!(a.state(), ndis_sim::ModState::Paused);
    let r = h2.poll(held).expect("aborted by the pause");
    let (res, _) = result(&r.output);
    assert_eq!(res.status, NDIS_STATUS_REQUEST_ABORTED.code());
    a.hold_oids(false);
    assert_eq!(sim.restart(0), NDIS_STATUS_SUCCESS);
    sim.run_until_idle();
    assert_eq!(a.packet_filter(), proto, "the restart told the miniport");
    drop(h2);
    sim.finish().assert_clean();
}

/// The protocols' multicast list decides which group frames go up while a handle is
/// promiscuous: once they set one, frames for other groups are captured and not passed up;
/// before, any group is taken as theirs.
#[test]
fn group_frames_go_up_by_the_protocols_multicast_list() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let (g1, g2) = (
        [0x01, 0x00, 0x5E, 0x00, 0x00, 0x01],
        [0x01, 0x00, 0x5E, 0x00, 0x00, 0x02],
    );
    let frame = |dst: [u8; 6]| ndis_sim::TestFrames::new([2, 0, 0, 0, 0, 9], dst).next_frame();
    let cap = open_capture(&sim, 0, nonblocking());
    assert_eq!(set_packet_filter(&cap, NDIS_PACKET_TYPE_PROMISCUOUS), 0);
    let up = |dsts: &[[u8; 6]]| {
        let before = a.received().len();
        for d in dsts {
            a.indicate(&[frame(*d)]);
        }
        sim.run_until_idle();
        a.received()[before..]
            .iter()
            .map(|r| <[u8; 6]>::try_from(&r.bytes[..6]).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(up(&[g1, g2]), vec![g1, g2], "no list seen yet: any group");
    assert_eq!(
        a.set_oid(OID_802_3_MULTICAST_LIST, &g1).status,
        NDIS_STATUS_SUCCESS
    );
    assert_eq!(up(&[g1, g2]), vec![g1], "the protocols' group only");
    assert_eq!(drain_records(&cap).len(), 4, "all captured");
    drop(cap);
    sim.finish().assert_clean();
}
