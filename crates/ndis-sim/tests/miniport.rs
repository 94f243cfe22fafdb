//! The simulated miniport: the OIDs a capture tool asks about (libpcap's `pcap-npf.c` queries
//! the hardware status, the physical medium, the link state and speed, the address; it sets
//! the packet filter), and a NIC's packet filter ("OID_GEN_CURRENT_PACKET_FILTER"): directed,
//! multicast (by list, or all), broadcast and promiscuous. Asked through the lab filter,
//! which forwards the protocol's requests as clones.

mod lab;

use lab::Fault;
use ndis_sim::{AdapterConfig, PROTOCOL_PACKET_FILTER, SimConfig, TestFrames};
use ndis_sys::*;

fn u32_of(data: &[u8]) -> u32 {
    u32::from_le_bytes(data[..4].try_into().unwrap())
}

#[test]
fn the_miniport_answers_what_libpcap_asks() {
    let sim = lab::start(Fault::None, SimConfig::default());
    let a = sim.adapter(0);
    let q = |oid| {
        let r = a.query_oid(oid, 64);
        assert_eq!(r.status, NDIS_STATUS_SUCCESS, "{oid:#010x}");
        r.data
    };
    assert_eq!(u32_of(&q(OID_GEN_HARDWARE_STATUS)), NdisHardwareStatusReady);
    assert_eq!(u32_of(&q(OID_GEN_MEDIA_IN_USE)), NdisMedium802_3);
    assert_eq!(u32_of(&q(OID_GEN_PHYSICAL_MEDIUM)), NdisPhysicalMedium802_3);
    assert_eq!(u32_of(&q(OID_GEN_PHYSICAL_MEDIUM_EX)), NdisPhysicalMedium802_3);
    assert_eq!(u32_of(&q(OID_GEN_MEDIA_CONNECT_STATUS)), NdisMediaStateConnected);
    // 1 Gbit/s in units of 100 bit/s.
    assert_eq!(u32_of(&q(OID_GEN_LINK_SPEED)), 10_000_000);
    let ls = q(OID_GEN_LINK_STATE);
    assert_eq!(ls.len(), usize::from(NDIS_SIZEOF_LINK_STATE_REVISION_1));
    assert_eq!(
        (ls[0], ls[1]),
        (NDIS_OBJECT_TYPE_DEFAULT, NDIS_LINK_STATE_REVISION_1)
    );
    assert_eq!(u32_of(&ls[4..]), MediaConnectStateConnected);
    assert_eq!(u64::from_le_bytes(ls[16..24].try_into().unwrap()), 1_000_000_000);
    assert_eq!(q(OID_802_3_CURRENT_ADDRESS), a.config().mac);
    assert_eq!(u32_of(&q(OID_GEN_MAXIMUM_TOTAL_SIZE)), 1514);
    assert_eq!(u32_of(&q(OID_GEN_CURRENT_PACKET_FILTER)), PROTOCOL_PACKET_FILTER);
    // Too small a buffer: the size needed; an OID it does not know: not supported.
    let short = a.query_oid(OID_GEN_LINK_STATE, 8);
    assert_eq!(
        (short.status, short.counts.bytes_needed),
        (NDIS_STATUS_BUFFER_TOO_SHORT, 40)
    );
    assert_eq!(a.query_oid(0x00FF_FF01, 4).status, NDIS_STATUS_NOT_SUPPORTED);
    sim.finish().assert_clean();
}

#[test]
fn packet_filter_and_multicast_list_sets_are_checked() {
    let sim = lab::start(Fault::None, SimConfig::default());
    let a = sim.adapter(0);
    let set = |oid, data: &[u8]| a.set_oid(oid, data).status;
    assert_eq!(
        set(OID_GEN_CURRENT_PACKET_FILTER, &0x0000_002Bu32.to_le_bytes()),
        NDIS_STATUS_SUCCESS
    );
    assert_eq!(a.packet_filter(), 0x2B);
    // Token Ring's functional address is not Ethernet's.
    assert_eq!(
        set(OID_GEN_CURRENT_PACKET_FILTER, &0x0000_4000u32.to_le_bytes()),
        NDIS_STATUS_NOT_SUPPORTED
    );
    assert_eq!(
        set(OID_GEN_CURRENT_PACKET_FILTER, &[1, 0]),
        NDIS_STATUS_INVALID_LENGTH
    );
    let group = [0x01, 0x00, 0x5E, 0x00, 0x00, 0xFB];
    assert_eq!(set(OID_802_3_MULTICAST_LIST, &group), NDIS_STATUS_SUCCESS);
    assert_eq!(a.multicast_list(), vec![group]);
    assert_eq!(
        set(OID_802_3_MULTICAST_LIST, &group[..5]),
        NDIS_STATUS_INVALID_LENGTH
    );
    assert_eq!(
        set(OID_802_3_MULTICAST_LIST, &[1u8; 6 * 33]),
        NDIS_STATUS_MULTICAST_FULL
    );
    assert_eq!(a.query_oid(OID_802_3_MULTICAST_LIST, 64).data, group);
    sim.finish().assert_clean();
}

#[test]
fn the_miniport_indicates_what_its_packet_filter_accepts() {
    let mut ac = AdapterConfig::ethernet(0);
    ac.honour_packet_filter = true;
    let sim = lab::start(
        Fault::None,
        SimConfig {
            adapters: vec![ac],
            ..SimConfig::default()
        },
    );
    let a = sim.adapter(0);
    let mac = a.config().mac;
    let group = [0x01, 0x00, 0x5E, 0x00, 0x00, 0xFB];
    let other_group = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01];
    let frame = |dst: [u8; 6]| TestFrames::new([2, 0, 0, 0, 0, 9], dst).next_frame();
    let dsts = [mac, [0xFF; 6], group, other_group, [0x02, 0, 0, 0, 0, 0x77]];
    // Which of `dsts` reach the protocol with `filter`.
    let reach = |filter: u32| {
        assert_eq!(
            a.set_oid(OID_GEN_CURRENT_PACKET_FILTER, &filter.to_le_bytes())
                .status,
            NDIS_STATUS_SUCCESS
        );
        let before = a.received().len();
        for d in dsts {
            a.indicate(&[frame(d)]);
        }
        sim.run_until_idle();
        let got: Vec<[u8; 6]> = a.received()[before..]
            .iter()
            .map(|r| r.bytes[..6].try_into().unwrap())
            .collect();
        dsts.iter().map(|d| got.contains(d)).collect::<Vec<bool>>()
    };
    assert_eq!(
        a.set_oid(OID_802_3_MULTICAST_LIST, &group).status,
        NDIS_STATUS_SUCCESS
    );
    // directed | multicast | broadcast: ours, broadcast, the listed group.
    assert_eq!(reach(PROTOCOL_PACKET_FILTER), [true, true, true, false, false]);
    assert_eq!(
        reach(NDIS_PACKET_TYPE_DIRECTED),
        [true, false, false, false, false]
    );
    assert_eq!(
        reach(NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_ALL_MULTICAST),
        [true, false, true, true, false]
    );
    assert_eq!(reach(NDIS_PACKET_TYPE_PROMISCUOUS), [true; 5]);
    assert_eq!(reach(0), [false; 5]);
    assert_eq!(a.dropped_by_packet_filter(), 2 + 4 + 2 + 5);
    sim.finish().assert_clean();
}

/// A filter may originate OID requests of its own ("NdisFOidRequest"): answered by the
/// miniport, completed through FilterOidRequestComplete when they pended, and aborted by
/// NdisFCancelOidRequest (the miniport completes a cancelled request with
/// NDIS_STATUS_REQUEST_ABORTED, "MiniportCancelOidRequest").
#[test]
fn a_filter_originates_queries_and_cancels_them() {
    let sim = lab::start(
        Fault::None,
        SimConfig {
            oid_completion: ndis_sim::Completion::Async,
            ..SimConfig::default()
        },
    );
    let a = sim.adapter(0);
    let (st, req) = lab::originate_query(OID_GEN_LINK_SPEED, 4, 7);
    assert_eq!(st, NDIS_STATUS_PENDING);
    sim.run_until_idle();
    assert_eq!(lab::own_oid_result(req), Some(NDIS_STATUS_SUCCESS));
    // A hung device holds the next one until the filter cancels it.
    a.hold_oids(true);
    let (st, req) = lab::originate_query(OID_GEN_HARDWARE_STATUS, 4, 8);
    assert_eq!(st, NDIS_STATUS_PENDING);
    sim.run_until_idle();
    assert_eq!(
        (lab::own_oid_result(req), a.oids_pending_at_miniport()),
        (None, 1)
    );
    lab::cancel_own(9);
    sim.run_until_idle();
    assert_eq!(lab::own_oid_result(req), None, "another id cancels nothing");
    lab::cancel_own(8);
    sim.run_until_idle();
    assert_eq!(lab::own_oid_result(req), Some(NDIS_STATUS_REQUEST_ABORTED));
    assert_eq!(a.oids_pending_at_miniport(), 0);
    sim.finish().assert_clean();
}
