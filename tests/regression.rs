//! The seed, pinned (`../shared/seed/README.md`): a WinPcap-derived driver hung its writer when
//! it injected a frame into the Rx path, and shipped ownership bugs of the same family for
//! years.
//!
//! (a) rxinject itself: a write to the Rx path completes (when the host stack returns the
//!     frame, not before), in the seed's own scenario (an ICMP echo request to the host, as
//!     `nping` sent it), and the host's answer goes out on the wire.
//! (b) test-only filters that make the seed's mistakes (the simulator's lab filter with a seed
//!     fault) are each caught with the right rule id; the same scenario without a fault is
//!     clean, so each check can both pass and fail.

mod common;

#[path = "../crates/ndis-sim/tests/lab/mod.rs"]
#[allow(unused_imports)]
mod lab;

use common::*;
use lab::Fault;
use ndis_sim::packets::IcmpEcho;
use ndis_sim::{Completion, Report, Rule, Sim, SimConfig};
use ndis_sys::*;

const PEER_MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
const PEER_IP: [u8; 4] = [192, 168, 77, 2];

fn echo_request(sim: &Sim, seq: u16) -> Vec<u8> {
    let cfg = sim.adapter(0).config();
    IcmpEcho::request(
        PEER_MAC,
        cfg.mac,
        PEER_IP,
        cfg.host_ip,
        0x6e70,
        seq,
        b"nping echo payload",
    )
    .to_frame()
}

#[test]
fn a_write_to_the_rx_path_completes_when_the_stack_returns_the_frame() {
    for send_completion in [Completion::Async, Completion::Sync, Completion::Mixed] {
        let sim = load(SimConfig {
            send_completion,
            ..SimConfig::default()
        });
        let a = sim.adapter(0);
        let h = open_bound(&sim, 0);
        let request = echo_request(&sim, 1);
        let irp = h.start_write(&batch(RX, std::slice::from_ref(&request)));
        // The stack holds the indicated NBL: the write is pending, not completed early and not
        // waiting for a send-complete that will never come.
        assert!(!h.is_complete(irp));
        assert_eq!(a.filter_nbls_held_by_protocol(), 1);
        assert_eq!(
            a.received().last().map(|f| f.bytes.clone()),
            Some(request.clone()),
            "delivered byte-identical"
        );
        // The stack returns it (FilterReturnNetBufferLists): the write completes, with success
        // and one frame.
        let r = h
            .wait(irp)
            .expect("the seed's hang: an Rx write that never completes");
        assert_eq!((r.status, r.information), (STATUS_SUCCESS, 1));
        // The host answered on the wire (through the filter), as in the seed's scenario.
        sim.run_until_idle();
        let replies = a.stack_replies_on_wire();
        assert_eq!(replies.len(), 1, "{send_completion:?}");
        let reply = IcmpEcho::parse(&replies[0].bytes).expect("an ICMP echo reply");
        assert!(reply.reply);
        assert_eq!(
            (reply.dst_mac, reply.dst_ip, reply.sequence),
            (PEER_MAC, PEER_IP, 1)
        );
        assert_eq!(
            counters(&h).adapter.tx_injected,
            0,
            "the reply is the stack's, not an injection"
        );
        drop(h);
        sim.finish().assert_clean();
    }
}

#[test]
fn many_rx_writes_in_a_row_never_hang_the_writer() {
    // nping sends one echo per second, each a write; the seed's writer hung at the first.
    let sim = load(SimConfig::default());
    let h = open_bound(&sim, 0);
    for seq in 1..=50 {
        let r = h.write(&batch(RX, &[echo_request(&sim, seq)]));
        assert_eq!((r.status, r.information), (STATUS_SUCCESS, 1), "write {seq}");
    }
    sim.run_until_idle();
    assert_eq!(sim.adapter(0).stack_replies_on_wire().len(), 50);
    drop(h);
    sim.finish().assert_clean();
}

/// The seed's scenario with the lab filter and its device: foreign receives returned alone, an
/// Rx write (an ICMP echo) whose frame comes back mixed with foreign receives in a shuffled
/// chain, then an Rx write whose frame comes back alone, then a Tx write.
fn seed_scenario(f: Fault) -> Report {
    let mut cfg = lab::quick();
    cfg.seed = 0x5eed_0001;
    let sim = lab::start(f, cfg);
    let a = sim.adapter(0);
    let mut frames = frames_for(&sim, 0);
    a.indicate(&frames.take(3));
    a.return_receives(usize::MAX);
    let h = sim.open(lab::device::USER_PATH).expect("open the lab device");
    a.indicate(&frames.take(2));
    let mut rx_write = vec![1u8];
    rx_write.extend(echo_request(&sim, 1));
    let mixed = h.start_write(&rx_write);
    a.indicate(&frames.take(2));
    a.return_receives(usize::MAX);
    let _ = h.wait(mixed);
    let alone = h.start_write(&rx_write);
    a.return_receives(usize::MAX);
    let _ = h.wait(alone);
    let mut tx_write = vec![0u8];
    tx_write.extend(frames.next_frame());
    let _ = h.write(&tx_write);
    h.close();
    lab::flush_queued();
    sim.finish()
}

#[test]
fn the_seed_scenario_is_clean_without_a_mistake() {
    seed_scenario(Fault::None).assert_clean();
}

fn assert_caught(f: Fault, rule: Rule) {
    let report = seed_scenario(f);
    assert!(
        report.has(rule),
        "the seed's mistake {f:?} should break {rule} ({}); the simulator reported:\n{report}",
        rule.summary()
    );
}

#[test]
fn waiting_for_send_complete_on_an_rx_write_is_caught_as_a_hang_d3() {
    assert_caught(Fault::SeedWaitForSendComplete, Rule::D3);
    let report = seed_scenario(Fault::SeedWaitForSendComplete);
    let v = report.violations.iter().find(|v| v.rule == Rule::D3).expect("D3");
    assert!(
        v.message.contains("Write IRP") && v.message.contains("never completed"),
        "{v}"
    );
}

#[test]
fn returning_own_nbls_with_ndis_f_return_is_caught_r6() {
    assert_caught(Fault::ReturnOwnViaNdis, Rule::R6);
}

#[test]
fn returning_the_chain_twice_is_caught_r1() {
    assert_caught(Fault::SeedReturnChainTwice, Rule::R1);
}

#[test]
fn classifying_a_chain_by_its_first_nbl_is_caught_r8() {
    assert_caught(Fault::ClassifyByFirst, Rule::R8);
}
