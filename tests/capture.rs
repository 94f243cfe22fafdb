//! Capture through read IRPs: both directions in order, marked inbound/outbound and injected,
//! BPF filters compiled by libpcap, the ring's bound counted exactly, read timeouts,
//! immediate and non-blocking modes, cancellation, cleanup, pause and detach. Every test ends
//! with `finish().assert_clean()`: no NDIS or I/O rule broken, nothing leaked.

mod common;

use common::*;
use ndis_sim::{AdapterConfig, Completion, IrqlMode, Sim, SimConfig};
use ndis_sys::*;
use rxinject_abi::{self as abi, write};

fn flags_of(c: &Captured) -> u16 {
    c.header.flags
}

const IN: u16 = cap::RECORD_INBOUND;
const OUT: u16 = cap::RECORD_OUTBOUND;
const INJ: u16 = cap::RECORD_INJECTED;

#[test]
fn both_directions_are_captured_in_order_and_marked() {
    for (mdl_split, irql) in [
        (true, IrqlMode::Dispatch),
        (false, IrqlMode::Passive),
        (true, IrqlMode::Mixed),
    ] {
        let sim = load(SimConfig {
            mdl_split,
            datapath_irql: irql,
            send_completion: Completion::Mixed,
            ..SimConfig::default()
        });
        let a = sim.adapter(0);
        let capt = open_capture(&sim, 0, nonblocking());
        let inj = open_bound(&sim, 0);
        let f = frames_for(&sim, 0).take(8);
        a.indicate(&f[0..2]);
        a.send(&f[2..4]);
        assert_eq!(inj.write(&batch(RX, &f[4..6])).status, STATUS_SUCCESS);
        assert_eq!(inj.write(&batch(TX, &f[6..8])).status, STATUS_SUCCESS);
        sim.run_until_idle();
        let got = drain_records(&capt);
        let expect: Vec<(u16, &Vec<u8>)> = vec![
            (IN, &f[0]),
            (IN, &f[1]),
            (OUT, &f[2]),
            (OUT, &f[3]),
            (IN | INJ, &f[4]),
            (IN | INJ, &f[5]),
            (OUT | INJ, &f[6]),
            (OUT | INJ, &f[7]),
        ];
        assert_eq!(got.len(), expect.len(), "mdl_split {mdl_split}");
        let mut last_ts = Sim::BOOT_SYSTEM_TIME;
        for (c, (flags, frame)) in got.iter().zip(&expect) {
            assert_eq!(flags_of(c), *flags);
            assert_eq!(
                &c.frame, *frame,
                "byte-identical (frames split over unmapped MDLs: {mdl_split})"
            );
            assert_eq!(
                (c.header.caplen as usize, c.header.len as usize),
                (frame.len(), frame.len())
            );
            assert_eq!(c.header.if_index, a.config().if_index);
            assert_eq!(c.header.header_len as usize, cap::RECORD_HEADER_LEN);
            assert!(c.header.timestamp >= last_ts, "timestamps never go back");
            last_ts = c.header.timestamp;
        }
        assert!(last_ts > Sim::BOOT_SYSTEM_TIME);
        // The passing traffic was not disturbed.
        assert_eq!(a.received().len(), 4);
        assert_eq!(a.wire().len(), 4);
        let s = capture_stats(&capt);
        assert_eq!((s.seen, s.accepted, s.captured, s.dropped), (8, 8, 8, 0));
        assert_eq!(s.flags, cap::STATS_CAPTURING);
        drop((capt, inj));
        sim.finish().assert_clean();
    }
}

#[test]
fn without_a_capturing_handle_the_datapath_does_no_capture_work() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let inj = open_bound(&sim, 0);
    let f = frames_for(&sim, 0).take(20);
    a.indicate(&f[..5]);
    a.send(&f[5..10]);
    assert_eq!(inj.write(&batch(RX, &f[10..20])).status, STATUS_SUCCESS);
    sim.run_until_idle();
    assert_eq!(sim.time_queries(), 0, "no capture: not even a timestamp is taken");
    // A capture opened and closed leaves nothing behind: the datapath is back to no work.
    let c = open_capture(&sim, 0, nonblocking());
    a.indicate(&f[..2]);
    assert_eq!(drain_records(&c).len(), 2);
    drop(c);
    let before = sim.time_queries();
    a.indicate(&f[..5]);
    a.send(&f[5..10]);
    sim.run_until_idle();
    assert_eq!(
        sim.time_queries(),
        before,
        "the last capture closed: no timestamp taken"
    );
    // A capturing handle on another adapter does not change that for this one.
    drop(inj);
    sim.finish().assert_clean();
}

#[test]
fn snap_length_direction_filter_and_own_injections() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let snap = open_capture(
        &sim,
        0,
        CaptureConfig {
            snaplen: 20,
            ..nonblocking()
        },
    );
    let inbound = open_capture(
        &sim,
        0,
        CaptureConfig {
            directions: cap::CAPTURE_IN,
            ..nonblocking()
        },
    );
    let me = open_capture(
        &sim,
        0,
        CaptureConfig {
            flags: cap::CAPTURE_NONBLOCK | cap::CAPTURE_EXCLUDE_OWN,
            ..CaptureConfig::default()
        },
    );
    let none_injected = open_capture(
        &sim,
        0,
        CaptureConfig {
            flags: cap::CAPTURE_NONBLOCK | cap::CAPTURE_EXCLUDE_INJECTED,
            ..CaptureConfig::default()
        },
    );
    let other = open_bound(&sim, 0);
    let f = frames_for(&sim, 0).take(4);
    a.indicate(&f[0..1]);
    a.send(&f[1..2]);
    assert_eq!(me.write(&batch(RX, &f[2..3])).status, STATUS_SUCCESS);
    assert_eq!(other.write(&batch(TX, &f[3..4])).status, STATUS_SUCCESS);
    sim.run_until_idle();

    let s = drain_records(&snap);
    assert_eq!(s.len(), 4);
    for (c, frame) in s.iter().zip(&f) {
        assert_eq!(
            (c.header.caplen, c.header.len as usize),
            (20.min(frame.len() as u32), frame.len())
        );
        assert_eq!(c.frame, frame[..20]);
    }
    let i = drain_records(&inbound);
    assert_eq!(
        i.iter()
            .map(|c| (flags_of(c), c.frame.clone()))
            .collect::<Vec<_>>(),
        vec![(IN, f[0].clone()), (IN | INJ, f[2].clone())]
    );
    assert_eq!(
        capture_stats(&inbound).seen,
        4,
        "every frame is seen, the direction filter drops some"
    );
    let m = drain_records(&me);
    assert_eq!(
        m.iter()
            .map(|c| (flags_of(c), c.frame.clone()))
            .collect::<Vec<_>>(),
        vec![(IN, f[0].clone()), (OUT, f[1].clone()), (OUT | INJ, f[3].clone())],
        "its own injection is left out, another handle's is not"
    );
    let n = drain_records(&none_injected);
    assert_eq!(
        n.iter()
            .map(|c| (flags_of(c), c.frame.clone()))
            .collect::<Vec<_>>(),
        vec![(IN, f[0].clone()), (OUT, f[1].clone())],
        "no injected frame at all"
    );
    // Without CAPTURE_EXCLUDE_OWN, a handle sees its own injections too.
    assert_eq!(inbound.write(&batch(RX, &f[0..1])).status, STATUS_SUCCESS);
    sim.run_until_idle();
    let i = drain_records(&inbound);
    assert_eq!(
        i.iter()
            .map(|c| (flags_of(c), c.frame.clone()))
            .collect::<Vec<_>>(),
        vec![(IN | INJ, f[0].clone())]
    );
    drop((snap, inbound, me, none_injected, other));
    sim.finish().assert_clean();
}

#[test]
fn vlan_tags_are_captured_as_on_the_wire() {
    let sim = load(SimConfig::default());
    let capt = open_capture(&sim, 0, nonblocking());
    let inj = open_bound(&sim, 0);
    let plain = frames_for(&sim, 0).take(2);
    let t = tagged(&plain[0], 0xA064);
    let zero = tagged(&plain[1], 0);
    assert_eq!(
        inj.write(&records(&[(RX, 0, &t), (TX, 0, &t), (RX, 0, &zero)]))
            .status,
        STATUS_SUCCESS
    );
    let got = drain_records(&capt);
    assert_eq!(got.len(), 3);
    assert_eq!(
        (got[0].frame.clone(), flags_of(&got[0])),
        (t.clone(), IN | INJ | cap::RECORD_VLAN_RESTORED)
    );
    assert_eq!(
        (got[1].frame.clone(), flags_of(&got[1])),
        (t.clone(), OUT | INJ | cap::RECORD_VLAN_RESTORED)
    );
    assert_eq!(
        (got[2].frame.clone(), flags_of(&got[2])),
        (zero, IN | INJ),
        "an in-band tag stays as it is"
    );
    assert_eq!(got[0].header.len as usize, t.len());
    drop((capt, inj));
    sim.finish().assert_clean();
}

/// Sends `frames` through the adapter both ways (foreign traffic) and injects them both ways.
fn all_paths(sim: &Sim, inj: &ndis_sim::DeviceHandle<'_>, frames: &[Vec<u8>]) {
    let a = sim.adapter(0);
    a.indicate(frames);
    a.send(frames);
    assert_eq!(inj.write(&batch(RX, frames)).status, STATUS_SUCCESS);
    assert_eq!(inj.write(&batch(TX, frames)).status, STATUS_SUCCESS);
    sim.run_until_idle();
}

#[test]
fn libpcap_filters_capture_exactly_what_libpcap_would() {
    // Frames the adapter carries (the corpus without the noise shorter than a header).
    let corpus: Vec<Vec<u8>> = corpus::frames().into_iter().filter(|f| f.len() >= 14).collect();
    // A host stack at an address the corpus does not use, so it answers nothing.
    let mut adapter = AdapterConfig::ethernet(0);
    adapter.host_ip = [10, 99, 99, 99];
    let sim = load(SimConfig {
        adapters: vec![adapter],
        mdl_split: true,
        ..SimConfig::default()
    });
    let inj = open_bound(&sim, 0);
    for expr in [
        "icmp",
        "tcp port 80",
        "vlan and udp",
        "ether host 02:11:22:33:44:55",
        "ip6",
        "udp port 53 or arp",
    ] {
        let h = open_capture(&sim, 0, nonblocking());
        // The corpus is traffic between other stations.
        set_promiscuous(&h);
        let (status, verdict) = set_filter(&h, &libpcap::compile(expr));
        assert_eq!(
            (status, verdict.error),
            (STATUS_SUCCESS, cap::FILTER_OK),
            "{expr}"
        );
        all_paths(&sim, &inj, &corpus);
        let want: Vec<&Vec<u8>> = corpus
            .iter()
            .zip(libpcap::matches(expr, &corpus))
            .filter(|(_, m)| *m)
            .map(|(f, _)| f)
            .collect();
        assert!(!want.is_empty(), "{expr}");
        let got = drain_records(&h);
        // Four passes (in, out, injected in, injected out), each in corpus order.
        assert_eq!(got.len(), 4 * want.len(), "{expr}");
        for (pass, chunk) in got.chunks(want.len()).enumerate() {
            let frames: Vec<&Vec<u8>> = chunk.iter().map(|c| &c.frame).collect();
            assert_eq!(frames, want, "{expr}, pass {pass}");
        }
        let s = capture_stats(&h);
        assert_eq!(
            (s.seen, s.accepted),
            (4 * corpus.len() as u64, 4 * want.len() as u64),
            "{expr}"
        );
        assert_ne!(s.flags & cap::STATS_FILTERED, 0);
        h.close();
    }
    drop(inj);
    sim.finish().assert_clean();
}

#[test]
fn set_filter_takes_each_validator_limit_and_refuses_one_past_it() {
    use rxinject_bpf::{
        ABS, ALU, B, DIV, Insn, JA, JEQ, JMP, K, LD, LDX, LSH, MAX_INSNS, MEM, MEMWORDS, MOD, RET, RSH, ST,
        STX, W,
    };
    let sim = load(SimConfig::default());
    let h = open_capture(&sim, 0, nonblocking());
    let ret = Insn::new(RET | K, 0, 0, 0);
    let i = Insn::new;
    let m = MEMWORDS as u32;
    /// (what, the program at the limit, the program one past it, the error, the instruction
    /// it names)
    type Case = (&'static str, Vec<Insn>, Vec<Insn>, u32, u32);
    let cases: Vec<Case> = vec![
        (
            "st index",
            vec![i(ST, 0, 0, m - 1), ret],
            vec![i(ST, 0, 0, m), ret],
            cap::FILTER_BAD_MEMORY_INDEX,
            0,
        ),
        (
            "stx index",
            vec![i(STX, 0, 0, m - 1), ret],
            vec![i(STX, 0, 0, m), ret],
            cap::FILTER_BAD_MEMORY_INDEX,
            0,
        ),
        (
            "ld mem index",
            vec![i(ST, 0, 0, m - 1), i(LD | W | MEM, 0, 0, m - 1), ret],
            vec![i(ST, 0, 0, m - 1), i(LD | W | MEM, 0, 0, m), ret],
            cap::FILTER_BAD_MEMORY_INDEX,
            1,
        ),
        (
            "ldx mem index",
            vec![i(ST, 0, 0, m - 1), i(LDX | W | MEM, 0, 0, m - 1), ret],
            vec![i(ST, 0, 0, m - 1), i(LDX | W | MEM, 0, 0, m), ret],
            cap::FILTER_BAD_MEMORY_INDEX,
            1,
        ),
        (
            "div k",
            vec![i(ALU | DIV | K, 0, 0, 1), ret],
            vec![i(ALU | DIV | K, 0, 0, 0), ret],
            cap::FILTER_DIVISION_BY_ZERO,
            0,
        ),
        (
            "mod k",
            vec![i(ALU | MOD | K, 0, 0, 1), ret],
            vec![i(ALU | MOD | K, 0, 0, 0), ret],
            cap::FILTER_DIVISION_BY_ZERO,
            0,
        ),
        (
            "lsh k",
            vec![i(ALU | LSH | K, 0, 0, 31), ret],
            vec![i(ALU | LSH | K, 0, 0, 32), ret],
            cap::FILTER_BAD_SHIFT,
            0,
        ),
        (
            "rsh k",
            vec![i(ALU | RSH | K, 0, 0, 31), ret],
            vec![i(ALU | RSH | K, 0, 0, 32), ret],
            cap::FILTER_BAD_SHIFT,
            0,
        ),
        // A jump to the last instruction, and one past it.
        (
            "ja",
            vec![i(JMP | JA, 0, 0, 1), ret, ret],
            vec![i(JMP | JA, 0, 0, 2), ret, ret],
            cap::FILTER_JUMP_OUT_OF_RANGE,
            0,
        ),
        (
            "jeq true",
            vec![i(LD | B | ABS, 0, 0, 0), i(JMP | JEQ | K, 1, 0, 7), ret, ret],
            vec![i(LD | B | ABS, 0, 0, 0), i(JMP | JEQ | K, 2, 0, 7), ret, ret],
            cap::FILTER_JUMP_OUT_OF_RANGE,
            1,
        ),
        (
            "jeq false",
            vec![i(LD | B | ABS, 0, 0, 0), i(JMP | JEQ | K, 0, 1, 7), ret, ret],
            vec![i(LD | B | ABS, 0, 0, 0), i(JMP | JEQ | K, 0, 2, 7), ret, ret],
            cap::FILTER_JUMP_OUT_OF_RANGE,
            1,
        ),
        // A word written on every path before it is read, and on all but one.
        (
            "memory written on both paths",
            vec![
                i(LD | B | ABS, 0, 0, 0),
                i(JMP | JEQ | K, 0, 2, 7),
                i(ST, 0, 0, 3),
                i(JMP | JA, 0, 0, 1),
                i(ST, 0, 0, 3),
                i(LD | W | MEM, 0, 0, 3),
                ret,
            ],
            vec![
                i(LD | B | ABS, 0, 0, 0),
                i(JMP | JEQ | K, 0, 2, 7),
                i(ST, 0, 0, 3),
                i(JMP | JA, 0, 0, 1),
                i(ST, 0, 0, 4),
                i(LD | W | MEM, 0, 0, 3),
                ret,
            ],
            cap::FILTER_UNINITIALIZED_MEMORY,
            5,
        ),
        (
            "memory written before the read",
            vec![i(ST, 0, 0, 0), i(LD | W | MEM, 0, 0, 0), ret],
            vec![i(LD | W | MEM, 0, 0, 0), i(ST, 0, 0, 0), ret],
            cap::FILTER_UNINITIALIZED_MEMORY,
            0,
        ),
        (
            "length",
            vec![ret; MAX_INSNS],
            vec![ret; MAX_INSNS + 1],
            cap::FILTER_BAD_LENGTH,
            u32::MAX,
        ),
        (
            "final return",
            vec![i(LD | B | ABS, 0, 0, 0), ret],
            vec![ret, i(LD | B | ABS, 0, 0, 0)],
            cap::FILTER_NO_FINAL_RETURN,
            u32::MAX,
        ),
    ];
    for (what, at_limit, past, error, at) in cases {
        let (status, v) = set_filter(&h, &at_limit);
        assert_eq!(
            (status, v),
            (STATUS_SUCCESS, FilterVerdict::default()),
            "{what}: at the limit"
        );
        let (status, v) = set_filter(&h, &past);
        assert_eq!(
            (status, v.error, v.instruction),
            (STATUS_INVALID_PARAMETER, error, at),
            "{what}: one past the limit"
        );
    }
    // No instruction is not a program but the removal of the filter.
    assert_eq!(set_filter(&h, &[]).0, STATUS_SUCCESS);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn a_filters_return_value_caps_the_captured_length_and_zero_removes_the_filter() {
    use rxinject_bpf::{Insn, K, RET};
    let sim = load(SimConfig::default());
    let h = open_capture(&sim, 0, nonblocking());
    assert_eq!(set_filter(&h, &[Insn::new(RET | K, 0, 0, 17)]).0, STATUS_SUCCESS);
    let f = frames_for(&sim, 0).take(2);
    sim.adapter(0).indicate(&f[..1]);
    let got = drain_records(&h);
    assert_eq!(
        (got[0].header.caplen, got[0].frame.clone()),
        (17, f[0][..17].to_vec())
    );
    // No instruction: no filter.
    assert_eq!(set_filter(&h, &[]).0, STATUS_SUCCESS);
    sim.adapter(0).indicate(&f[1..2]);
    let got = drain_records(&h);
    assert_eq!(got[0].frame, f[1]);
    assert_eq!(capture_stats(&h).flags & cap::STATS_FILTERED, 0);
    drop(h);
    sim.finish().assert_clean();
}

/// A new program discards the records the old one let in, as BPF's BIOCSETF and Npcap do:
/// libpcap does not filter again what the driver returns, so a frame the old filter
/// accepted would reach a reader of the new one. A refused program discards nothing.
#[test]
fn a_new_filter_discards_what_the_old_one_let_in() {
    use rxinject_bpf::{Insn, K, RET};
    let sim = load(SimConfig::default());
    let h = open_capture(&sim, 0, nonblocking());
    let f = frames_for(&sim, 0).take(3);
    sim.adapter(0).indicate(&f[..2]);
    assert_eq!(capture_stats(&h).records_queued, 2);
    // Refused (a jump out of the program): the records stay.
    assert_ne!(set_filter(&h, &[Insn::new(0x05, 0, 0, 9)]).0, STATUS_SUCCESS);
    assert_eq!(capture_stats(&h).records_queued, 2);
    assert_eq!(
        set_filter(&h, &[Insn::new(RET | K, 0, 0, 0xFFFF)]).0,
        STATUS_SUCCESS
    );
    assert_eq!(
        capture_stats(&h).records_queued,
        0,
        "the old program's records are gone"
    );
    sim.adapter(0).indicate(&f[2..3]);
    let got = drain_records(&h);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].frame, f[2]);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn malformed_programs_are_refused_with_the_instruction_and_the_old_filter_stays() {
    use rxinject_bpf::{ABS, B, Insn, JA, JMP, K, LD, MEM, RET, W};
    let sim = load(SimConfig::default());
    let h = open_capture(&sim, 0, nonblocking());
    // The corpus frames below are for other stations.
    set_promiscuous(&h);
    let icmp = libpcap::compile("icmp");
    assert_eq!(set_filter(&h, &icmp).0, STATUS_SUCCESS);
    let ret = Insn::new(RET | K, 0, 0, 0);
    let cases: Vec<(Vec<Insn>, u32, u32)> = vec![
        (
            vec![Insn::new(0xffff, 0, 0, 0), ret],
            cap::FILTER_UNKNOWN_OPCODE,
            0,
        ),
        (
            vec![
                Insn::new(LD | B | ABS, 0, 0, 0),
                Insn::new(JMP | JA, 0, 0, 5),
                ret,
            ],
            cap::FILTER_JUMP_OUT_OF_RANGE,
            1,
        ),
        (
            vec![Insn::new(LD | W | MEM, 0, 0, 3), ret],
            cap::FILTER_UNINITIALIZED_MEMORY,
            0,
        ),
        (
            vec![Insn::new(LD | W | MEM, 0, 0, 16), ret],
            cap::FILTER_BAD_MEMORY_INDEX,
            0,
        ),
        (
            vec![Insn::new(LD | B | ABS, 0, 0, 0)],
            cap::FILTER_NO_FINAL_RETURN,
            u32::MAX,
        ),
        (
            vec![ret; rxinject_bpf::MAX_INSNS + 1],
            cap::FILTER_BAD_LENGTH,
            u32::MAX,
        ),
    ];
    for (prog, error, at) in cases {
        let (status, v) = set_filter(&h, &prog);
        assert_eq!(
            (status, v.error, v.instruction),
            (STATUS_INVALID_PARAMETER, error, at),
            "{prog:?}"
        );
    }
    // A length that is not a whole number of instructions.
    let r = h.device_io_control(abi::IOCTL_RXINJECT_SET_FILTER, &[0u8; 12], 8);
    assert_eq!(r.status, STATUS_INVALID_PARAMETER);
    assert!(
        r.output.is_empty(),
        "no output with an error status, as on Windows"
    );
    let v = check_filter(&h, &[0u8; 12]);
    assert_eq!((v.error, v.instruction), (cap::FILTER_BAD_LENGTH, u32::MAX));
    // CHECK_FILTER installs nothing, even a good program, and needs no bound handle.
    let accept_all = [Insn::new(RET | K, 0, 0, u32::MAX)];
    let good: Vec<u8> = accept_all.iter().flat_map(|i| i.to_bytes()).collect();
    assert_eq!(check_filter(&h, &good), FilterVerdict::default());
    let unbound = sim.open(abi::USER_PATH).unwrap();
    assert_eq!(check_filter(&unbound, &good).error, cap::FILTER_OK);
    drop(unbound);
    // The icmp filter is still in place.
    let f = corpus::frames();
    sim.adapter(0).indicate(&f[..3]); // echo request, echo reply, ARP
    let got = drain_records(&h);
    assert_eq!(
        got.iter().map(|c| c.frame.clone()).collect::<Vec<_>>(),
        f[..2].to_vec()
    );
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn a_full_ring_drops_and_counts_exactly_and_recovers() {
    let sim = load(SimConfig::default());
    let h = open_capture(
        &sim,
        0,
        CaptureConfig {
            ring_bytes: cap::MIN_RING_BYTES,
            ..nonblocking()
        },
    );
    // 1514-byte frames: records of 24 + 1520 bytes.
    let frame = |i: u8| {
        let mut f = frames_for(&sim, 0).take(7).remove(6);
        assert_eq!(f.len(), 1514);
        f[20] = i;
        f
    };
    // One processor's ring: an equal share of the ring, but room for a record of the
    // largest snap length (the frames all come from one processor here).
    let processors = SimConfig::default().processors as usize;
    let share = (cap::MIN_RING_BYTES as usize / processors).max(cap::record_len(cap::MAX_SNAPLEN as usize));
    assert_eq!(capture_stats(&h).ring_bytes as usize, share * processors);
    let fits = share / cap::record_len(1514);
    let frames: Vec<Vec<u8>> = (0..fits as u8 + 16).map(frame).collect();
    sim.adapter(0).indicate(&frames);
    let s = capture_stats(&h);
    assert_eq!(
        (s.accepted, s.captured, s.dropped),
        (frames.len() as u64, fits as u64, 16)
    );
    assert_eq!(
        (s.records_queued as usize, s.ring_used as usize),
        (fits, fits * cap::record_len(1514))
    );
    let got = drain_records(&h);
    assert_eq!(got.len(), fits);
    assert!(
        got.iter().zip(&frames).all(|(c, f)| &c.frame == f),
        "the oldest are kept, in order"
    );
    // Room again.
    sim.adapter(0).indicate(&frames[..3]);
    assert_eq!(drain_records(&h).len(), 3);
    assert_eq!(capture_stats(&h).dropped, 16);
    // The passing traffic never waited for the ring.
    assert_eq!(sim.adapter(0).received().len(), frames.len() + 3);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn records_that_wrap_around_the_end_of_the_ring_read_back_whole_and_in_order() {
    let sim = load(SimConfig::default());
    let snaplen = 256;
    let h = open_capture(
        &sim,
        0,
        CaptureConfig {
            ring_bytes: cap::MIN_RING_BYTES,
            snaplen,
            ..nonblocking()
        },
    );
    let a = sim.adapter(0);
    let mut source = frames_for(&sim, 0);
    let mut expected = std::collections::VecDeque::new();
    let mut read = 0usize;
    let mut pushed_bytes = 0usize;
    let check = |got: Vec<Captured>, expected: &mut std::collections::VecDeque<Vec<u8>>| {
        for c in got {
            let f = expected.pop_front().expect("a record for every frame captured");
            assert_eq!(c.header.len as usize, f.len());
            assert_eq!(
                c.frame,
                f[..f.len().min(snaplen as usize)],
                "record in order and intact"
            );
        }
    };
    // Four frames in, then small reads (one to three records each) until at most 8 records
    // wait: the ring never empties (so its head never resets to 0) and never fills, and its
    // tail goes round its 128 KiB several times, cutting records at every kind of place: in a
    // header, in the data, in the padding.
    for _ in 0..600 {
        let f = source.take(4);
        pushed_bytes += f
            .iter()
            .map(|f| cap::record_len(f.len().min(snaplen as usize)))
            .sum::<usize>();
        a.indicate(&f);
        a.return_receives(usize::MAX);
        expected.extend(f);
        while capture_stats(&h).records_queued > 8 {
            let r = h.read(cap::min_read_len(snaplen));
            assert_eq!(r.status, STATUS_SUCCESS);
            let got = parse_records(&r.output);
            assert!(!got.is_empty());
            read += got.len();
            check(got, &mut expected);
        }
        assert!(capture_stats(&h).records_queued >= 4, "the ring never empties");
    }
    assert!(
        pushed_bytes > 3 * cap::MIN_RING_BYTES as usize,
        "the ring wrapped"
    );
    assert!(
        !expected.is_empty(),
        "records were still queued while the ring wrapped"
    );
    let rest = drain_records(&h);
    read += rest.len();
    check(rest, &mut expected);
    assert!(expected.is_empty());
    let s = capture_stats(&h);
    assert_eq!((s.captured, s.dropped), (2400, 0));
    assert_eq!(read, 2400);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn reads_wait_for_min_bytes_or_the_timeout() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let h = open_capture(
        &sim,
        0,
        CaptureConfig {
            min_bytes: 3 * cap::record_len(64) as u32,
            timeout_ms: 200,
            ..CaptureConfig::default()
        },
    );
    let f: Vec<Vec<u8>> = frames_for(&sim, 0)
        .take(3)
        .into_iter()
        .map(|mut x| {
            x.truncate(64);
            x
        })
        .collect();
    // min_bytes: complete on the third frame, not before.
    let read = h.start_read(READ_LEN);
    a.indicate(&f[..1]);
    a.indicate(&f[1..2]);
    assert!(!h.is_complete(read));
    assert_eq!(capture_stats(&h).reads_pending, 1);
    a.indicate(&f[2..3]);
    let r = h.poll(read).expect("complete once min_bytes wait");
    assert_eq!(parse_records(&r.output).len(), 3);
    // Timeout: one frame, then the time passes.
    let start = sim.now();
    let read = h.start_read(READ_LEN);
    a.indicate(&f[..1]);
    sim.advance_time(std::time::Duration::from_millis(150));
    assert!(!h.is_complete(read), "not before its timeout");
    sim.advance_time(std::time::Duration::from_millis(100));
    let r = h.poll(read).expect("complete after its timeout");
    assert_eq!((r.status, parse_records(&r.output).len()), (STATUS_SUCCESS, 1));
    // Timeout with nothing: an empty, successful read (waited for by pumping the machine).
    let read = h.start_read(READ_LEN);
    let before = sim.now();
    let ticks = sim.timers_fired();
    let r = h.wait(read).expect("the timeout completes it");
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 0));
    // The timer ticks at the timeout resolution meanwhile, not faster.
    let ticks = sim.timers_fired() - ticks;
    let per_timeout = u64::from(200 / cap::TIMEOUT_RESOLUTION_MS);
    assert!(
        (per_timeout..=per_timeout + 2).contains(&ticks),
        "{ticks} ticks in a 200 ms timeout"
    );
    let waited = sim.now() - before;
    let resolution = std::time::Duration::from_millis(u64::from(cap::TIMEOUT_RESOLUTION_MS));
    assert!(
        waited >= std::time::Duration::from_millis(200)
            && waited <= std::time::Duration::from_millis(200) + 2 * resolution,
        "{waited:?}"
    );
    assert!(sim.now() - start >= std::time::Duration::from_millis(450));
    drop(h);
    // With no timed read left, the timer stops.
    let fired = sim.timers_fired();
    sim.advance_time(std::time::Duration::from_secs(5));
    assert_eq!(sim.timers_fired(), fired);
    sim.finish().assert_clean();
}

#[test]
fn a_read_smaller_than_min_bytes_completes_when_its_buffer_could_be_filled() {
    // min_bytes larger than the read: the read waits for what it can hold, not for min_bytes
    // (which it could never take), and there is no timeout to rescue it.
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let h = open_capture(
        &sim,
        0,
        CaptureConfig {
            snaplen: 128,
            min_bytes: 8192,
            timeout_ms: 0,
            ..CaptureConfig::default()
        },
    );
    let f: Vec<Vec<u8>> = frames_for(&sim, 0)
        .take(7)
        .into_iter()
        .map(|mut x| {
            x.truncate(64);
            x
        })
        .collect();
    let rec = cap::record_len(64);
    let read_len = 512;
    let fit = read_len / rec;
    assert!(fit * rec < read_len && (fit + 1) * rec > read_len);
    let read = h.start_read(read_len);
    a.indicate(&f[..fit]);
    assert!(
        !h.is_complete(read),
        "{} bytes wait, fewer than the read's {read_len}",
        fit * rec
    );
    a.indicate(&f[fit..fit + 1]);
    let r = h.poll(read).expect("enough bytes to fill the read");
    assert_eq!((r.status, parse_records(&r.output).len()), (STATUS_SUCCESS, fit));
    assert_eq!(
        capture_stats(&h).records_queued,
        1,
        "the record that did not fit waits"
    );
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn one_frame_completes_the_waiting_reads_of_more_handles_than_one_round_takes() {
    // A tap completes ready reads in rounds of 16 (outside the capture locks); the reads of
    // 40 handles woken by one frame are completed, every one.
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let handles: Vec<_> = (0..40)
        .map(|_| {
            open_capture(
                &sim,
                0,
                CaptureConfig {
                    ring_bytes: cap::MIN_RING_BYTES,
                    flags: cap::CAPTURE_IMMEDIATE,
                    ..CaptureConfig::default()
                },
            )
        })
        .collect();
    let reads: Vec<_> = handles.iter().map(|h| h.start_read(READ_LEN)).collect();
    assert!(handles.iter().zip(&reads).all(|(h, &r)| !h.is_complete(r)));
    let f = frames_for(&sim, 0).take(1);
    a.indicate(&f);
    for (i, (h, &r)) in handles.iter().zip(&reads).enumerate() {
        let done = h
            .poll(r)
            .unwrap_or_else(|| panic!("handle {i}: its read still waits"));
        assert_eq!(parse_records(&done.output).len(), 1, "handle {i}");
    }
    drop(handles);
    sim.finish().assert_clean();
}

#[test]
fn each_processors_share_of_a_ring_is_its_part_rounded_down_to_the_record_alignment() {
    let sim = load(SimConfig::default());
    let processors = SimConfig::default().processors as usize;
    // A part of 13 bytes over a multiple of 16: rounded down to 8 over it.
    let part = cap::MIN_RING_BYTES as usize / processors + 13;
    let h = open_capture(
        &sim,
        0,
        CaptureConfig {
            ring_bytes: (part * processors) as u32,
            snaplen: 128,
            ..nonblocking()
        },
    );
    assert_eq!(part % 16, 13);
    assert_eq!(capture_stats(&h).ring_bytes as usize, (part - 5) * processors);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn a_full_ring_completes_a_read_waiting_for_more_than_it_holds() {
    // Frames of the snap length: records of 1,544 bytes (the ring's share no multiple of
    // them) and of 1,024 (a multiple: room for exactly one more is not full).
    for len in [1514usize, 1000] {
        full_ring_wakes_a_waiting_read(len);
    }
}

fn full_ring_wakes_a_waiting_read(len: usize) {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let h = open_capture(
        &sim,
        0,
        CaptureConfig {
            ring_bytes: cap::MIN_RING_BYTES,
            snaplen: len as u32,
            min_bytes: 1 << 20,
            timeout_ms: 0,
            ..CaptureConfig::default()
        },
    );
    let processors = SimConfig::default().processors as usize;
    let share = cap::MIN_RING_BYTES as usize / processors;
    let rec = cap::record_len(len);
    let fits = share / rec;
    assert!(share - (fits - 1) * rec >= rec);
    let mut frame = frames_for(&sim, 0).take(7).remove(6);
    frame.truncate(len);
    let read = h.start_read(READ_LEN);
    let locks = sim.lock_acquisitions();
    for _ in 0..fits - 1 {
        a.indicate(std::slice::from_ref(&frame));
    }
    assert!(
        !h.is_complete(read),
        "{len}: room for one more record: the read waits"
    );
    // Taps that cannot complete the read do not take the capture's lock to find that out.
    let taken = sim.lock_acquisitions() - locks;
    assert!(taken < 4, "{taken} lock acquisitions for {} frames", fits - 1);
    a.indicate(std::slice::from_ref(&frame));
    let r = h
        .poll(read)
        .expect("a full ring completes the read, whatever min_bytes asks");
    assert_eq!(
        (r.status, parse_records(&r.output).len()),
        (STATUS_SUCCESS, fits),
        "{len}"
    );
    assert_eq!(capture_stats(&h).reads_completed, 1, "{len}");
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn a_timed_read_on_an_idle_driver_takes_one_tick_per_resolution_of_its_timeout() {
    // The timer is not running; the read arms it: relative ticks of the resolution, the
    // first one a resolution after the read, the last one at its deadline.
    let sim = load(SimConfig::default());
    let h = open_capture(
        &sim,
        0,
        CaptureConfig {
            min_bytes: 1 << 20,
            timeout_ms: 200,
            ..CaptureConfig::default()
        },
    );
    let ticks = sim.timers_fired();
    let start = sim.now();
    let read = h.start_read(READ_LEN);
    let r = h.wait(read).expect("the timeout completes it");
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 0));
    let waited = sim.now() - start;
    let resolution = std::time::Duration::from_millis(u64::from(cap::TIMEOUT_RESOLUTION_MS));
    assert!(
        waited >= std::time::Duration::from_millis(200)
            && waited < std::time::Duration::from_millis(200) + resolution,
        "{waited:?}"
    );
    assert_eq!(
        sim.timers_fired() - ticks,
        u64::from(200 / cap::TIMEOUT_RESOLUTION_MS)
    );
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn a_timed_read_started_while_the_timer_runs_does_not_delay_its_ticks() {
    let sim = load(SimConfig::default());
    let cfg = CaptureConfig {
        min_bytes: 1 << 20,
        timeout_ms: 200,
        ..CaptureConfig::default()
    };
    let (ha, hb) = (open_capture(&sim, 0, cfg), open_capture(&sim, 0, cfg));
    let start = sim.now();
    let a = ha.start_read(READ_LEN);
    sim.advance_time(std::time::Duration::from_millis(5));
    let b = hb.start_read(READ_LEN);
    assert!(ha.wait(a).is_some());
    let waited = sim.now() - start;
    assert!(
        waited < std::time::Duration::from_millis(205),
        "the first read waited {waited:?}"
    );
    assert!(hb.wait(b).is_some());
    drop((ha, hb));
    sim.finish().assert_clean();
}

#[test]
fn a_timed_read_cancelled_at_close_stops_the_read_timer() {
    let sim = load(SimConfig::default());
    let h = open_capture(
        &sim,
        0,
        CaptureConfig {
            min_bytes: 1 << 20,
            timeout_ms: 200,
            ..CaptureConfig::default()
        },
    );
    let read = h.start_read(READ_LEN);
    assert!(!h.is_complete(read));
    h.close();
    assert_eq!(sim.io_stats().pending, 0);
    // Whatever the close left for the timer (deferred frees) done, it stops.
    sim.advance_time(std::time::Duration::from_secs(1));
    let fired = sim.timers_fired();
    sim.advance_time(std::time::Duration::from_secs(5));
    assert_eq!(sim.timers_fired(), fired, "no timed read left: the timer stops");
    sim.finish().assert_clean();
}

#[test]
fn immediate_and_nonblocking_modes() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let f = frames_for(&sim, 0).take(3);
    // Immediate: the first record completes a waiting read; a waiting record completes a read
    // at once.
    let h = open_capture(
        &sim,
        0,
        CaptureConfig {
            min_bytes: 1 << 20,
            flags: cap::CAPTURE_IMMEDIATE,
            ..CaptureConfig::default()
        },
    );
    let read = h.start_read(READ_LEN);
    assert!(!h.is_complete(read));
    a.indicate(&f[..1]);
    assert_eq!(h.poll(read).map(|r| parse_records(&r.output).len()), Some(1));
    a.indicate(&f[1..2]);
    let read = h.start_read(READ_LEN);
    assert_eq!(
        h.poll(read).map(|r| parse_records(&r.output).len()),
        Some(1),
        "at once"
    );
    // Non-blocking: a read never waits.
    let nb = open_capture(&sim, 0, nonblocking());
    let r = nb.read(READ_LEN);
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 0));
    a.indicate(&f[2..3]);
    assert_eq!(parse_records(&nb.read(READ_LEN).output).len(), 1);
    drop((h, nb));
    sim.finish().assert_clean();
}

#[test]
fn reads_are_cancellable_and_cleanup_finishes_them() {
    let sim = load(SimConfig::default());
    let h = open_capture(&sim, 0, CaptureConfig::default());
    let r1 = h.start_read(READ_LEN);
    let r2 = h.start_read(READ_LEN);
    assert_eq!(capture_stats(&h).reads_pending, 2);
    h.cancel(r1);
    let r = h.poll(r1).expect("cancelled at once");
    assert_eq!((r.status, r.information), (STATUS_CANCELLED, 0));
    assert_eq!(capture_stats(&h).reads_pending, 1);
    // A frame completes the other one (default: any record).
    sim.adapter(0).indicate(&frames_for(&sim, 0).take(1));
    assert!(h.poll(r2).is_some_and(|r| r.status == STATUS_SUCCESS));
    // Cancelling a read in the middle of the queue takes that one out, no other: the rest
    // complete in their order, a frame each.
    let queued: Vec<_> = (0..4).map(|_| h.start_read(READ_LEN)).collect();
    for (i, r) in [queued[2], queued[1]].into_iter().enumerate() {
        h.cancel(r);
        let done = h
            .poll(r)
            .unwrap_or_else(|| panic!("cancel {i}: completed at once"));
        assert_eq!((done.status, done.information), (STATUS_CANCELLED, 0));
    }
    assert_eq!(capture_stats(&h).reads_pending, 2);
    // The queue's end is still right: a read queued now comes after the last.
    let later = h.start_read(READ_LEN);
    for (n, &r) in [queued[0], queued[3], later].iter().enumerate() {
        assert!(!h.is_complete(r), "read {n} waits for a frame");
        sim.adapter(0).indicate(&frames_for(&sim, 0).take(1));
        assert!(h.poll(r).is_some_and(|r| r.status == STATUS_SUCCESS), "read {n}");
    }
    // Close with two reads waiting: cleanup cancels them (D6), then close.
    let r3 = h.start_read(READ_LEN);
    let r4 = h.start_read(READ_LEN);
    assert!(!h.is_complete(r3) && !h.is_complete(r4));
    h.close();
    assert_eq!(sim.io_stats().pending, 0);
    sim.finish().assert_clean();
}

#[test]
fn bad_requests_get_clear_statuses() {
    let sim = load(SimConfig::default());
    let h = sim.open(abi::USER_PATH).unwrap();
    // Not bound, not capturing.
    assert_eq!(
        set_capture(&h, CaptureConfig::default()),
        STATUS_INVALID_DEVICE_STATE
    );
    assert_eq!(h.read(READ_LEN).status, STATUS_INVALID_DEVICE_STATE);
    assert_eq!(
        h.device_io_control(abi::IOCTL_RXINJECT_STOP_CAPTURE, &[], 0)
            .status,
        STATUS_INVALID_DEVICE_STATE
    );
    assert_eq!(bind(&h, sim.adapter(0).config().if_index), STATUS_SUCCESS);
    for bad in [
        CaptureConfig {
            ring_bytes: 4096,
            ..Default::default()
        },
        CaptureConfig {
            snaplen: 70_000,
            ..Default::default()
        },
        CaptureConfig {
            directions: 8,
            ..Default::default()
        },
        CaptureConfig {
            flags: 0x100,
            ..Default::default()
        },
        CaptureConfig {
            reserved: [1, 0],
            ..Default::default()
        },
    ] {
        assert_eq!(set_capture(&h, bad), STATUS_INVALID_PARAMETER, "{bad:?}");
    }
    let r = h.device_io_control(abi::IOCTL_RXINJECT_SET_CAPTURE, &[0u8; 31], 0);
    assert_eq!(r.status, STATUS_INVALID_PARAMETER, "short input");
    assert_eq!(
        set_capture(
            &h,
            CaptureConfig {
                snaplen: 100,
                ..nonblocking()
            }
        ),
        STATUS_SUCCESS
    );
    // A read must hold a record of the snap length.
    let r = h.read(cap::min_read_len(100) - 1);
    assert_eq!((r.status, r.information), (STATUS_INVALID_BUFFER_SIZE, 0));
    assert_eq!(h.read(cap::min_read_len(100)).status, STATUS_SUCCESS);
    // Stats need room for the record.
    let r = h.device_io_control(abi::IOCTL_RXINJECT_GET_CAPTURE_STATS, &[], 63);
    assert_eq!((r.status, r.information), (STATUS_BUFFER_TOO_SMALL, 0));
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn stop_capture_finishes_waiting_reads_and_leaves_records_readable() {
    let sim = load(SimConfig::default());
    let h = open_capture(
        &sim,
        0,
        CaptureConfig {
            min_bytes: 1 << 20,
            ..Default::default()
        },
    );
    let f = frames_for(&sim, 0).take(4);
    sim.adapter(0).indicate(&f[..2]);
    let waiting = h.start_read(cap::min_read_len(0));
    assert!(!h.is_complete(waiting));
    assert_eq!(
        h.device_io_control(abi::IOCTL_RXINJECT_STOP_CAPTURE, &[], 0)
            .status,
        STATUS_SUCCESS
    );
    let r = h.poll(waiting).expect("stop completes waiting reads");
    assert_eq!((r.status, parse_records(&r.output).len()), (STATUS_SUCCESS, 2));
    // No more frames are captured; an empty ring then says "not capturing".
    sim.adapter(0).indicate(&f[2..]);
    let r = h.read(READ_LEN);
    assert_eq!((r.status, r.information), (STATUS_INVALID_DEVICE_STATE, 0));
    assert_eq!(capture_stats(&h).captured, 2);
    // And it starts again.
    assert_eq!(set_capture(&h, nonblocking()), STATUS_SUCCESS);
    sim.adapter(0).indicate(&f[..1]);
    assert_eq!(drain_records(&h).len(), 1);
    // Records still in the ring when the capture stops are read with success, and then the
    // empty ring says "not capturing".
    sim.adapter(0).indicate(&f[1..3]);
    assert_eq!(
        h.device_io_control(abi::IOCTL_RXINJECT_STOP_CAPTURE, &[], 0)
            .status,
        STATUS_SUCCESS
    );
    let r = h.read(READ_LEN);
    assert_eq!((r.status, parse_records(&r.output).len()), (STATUS_SUCCESS, 2));
    assert_eq!(h.read(READ_LEN).status, STATUS_INVALID_DEVICE_STATE);
    // Every read counted: the one stop completed, one after it, two draining, two more.
    assert_eq!(capture_stats(&h).reads_completed, 6);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn capture_across_pause_and_restart() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let h = open_capture(&sim, 0, CaptureConfig::default());
    let inj = open_bound(&sim, 0);
    let f = frames_for(&sim, 0).take(6);
    let read = h.start_read(READ_LEN);
    // The filter alone paused (as NdisFRestartFilter does; in a stack pause the protocol
    // above is paused too and sends nothing).
    sim.pause_module(0);
    // Refused traffic did not pass, so it is not captured.
    a.indicate(&f[..2]);
    a.send(&f[2..3]);
    assert_eq!(
        inj.write(&batch(RX, &f[3..4])).status,
        NTSTATUS::from(NDIS_STATUS_PAUSED)
    );
    assert!(!h.is_complete(read), "the read waits across the pause");
    assert_eq!(sim.restart(0), NDIS_STATUS_SUCCESS);
    a.indicate(&f[4..5]);
    let r = h.poll(read).expect("the first frame after restart completes it");
    let got = parse_records(&r.output);
    assert_eq!(
        got.iter().map(|c| c.frame.clone()).collect::<Vec<_>>(),
        vec![f[4].clone()]
    );
    assert_eq!(capture_stats(&h).seen, 1);
    drop((h, inj));
    sim.finish().assert_clean();
}

#[test]
fn capture_across_detach_and_attach() {
    let sim = load(SimConfig {
        adapters: vec![AdapterConfig::ethernet(0), AdapterConfig::ethernet(1)],
        ..SimConfig::default()
    });
    let a = sim.adapter(1);
    let h = open_capture(
        &sim,
        1,
        CaptureConfig {
            min_bytes: 1 << 20,
            ..Default::default()
        },
    );
    let f = frames_for(&sim, 1).take(4);
    a.indicate(&f[..1]);
    let with_record = h.start_read(READ_LEN);
    let empty = h.start_read(READ_LEN);
    sim.detach(1);
    // Waiting reads complete: the first with the record, the second with "adapter gone".
    let r = h.poll(with_record).expect("completed by detach");
    assert_eq!((r.status, parse_records(&r.output).len()), (STATUS_SUCCESS, 1));
    let r = h.poll(empty).expect("completed by detach");
    assert_eq!((r.status, r.information), (STATUS_NO_SUCH_DEVICE, 0));
    assert_eq!(h.read(READ_LEN).status, STATUS_NO_SUCH_DEVICE);
    assert_ne!(capture_stats(&h).flags & cap::STATS_ADAPTER_GONE, 0);
    // The adapter comes back; binding to it again resumes the capture.
    sim.attach(1).unwrap();
    assert_eq!(bind(&h, a.config().if_index), STATUS_SUCCESS);
    let read = h.start_read(READ_LEN);
    a.indicate(&f[1..2]);
    assert!(!h.is_complete(read));
    assert_eq!(set_capture(&h, nonblocking()), STATUS_SUCCESS);
    let r = h
        .poll(read)
        .expect("non-blocking now: completed by the new settings");
    assert_eq!(parse_records(&r.output).len(), 1);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn several_handles_capture_independently_while_traffic_flows_on_threads() {
    let sim = load(SimConfig {
        send_completion: Completion::Mixed,
        datapath_irql: IrqlMode::Mixed,
        seed: 77,
        ..SimConfig::default()
    });
    let capturers: Vec<_> = (0..3)
        .map(|_| {
            open_capture(
                &sim,
                0,
                CaptureConfig {
                    ring_bytes: 8 << 20,
                    ..Default::default()
                },
            )
        })
        .collect();
    const ROUNDS: usize = 40;
    // The reader starts once both traffic threads are actors: a read that found no actor
    // yet (a thread not scheduled so far) would rightly be a hang.
    let ready = std::sync::Barrier::new(3);
    std::thread::scope(|s| {
        for t in 0..2 {
            let (sim, ready) = (&sim, &ready);
            s.spawn(move || {
                // Its traffic is what the reader below waits for.
                let _actor = sim.actor();
                ready.wait();
                let inj = open_bound(sim, 0);
                let mut src = frames_for(sim, 0);
                for r in 0..ROUNDS {
                    let frames = src.take(3);
                    if (t + r) % 2 == 0 {
                        sim.adapter(0).indicate(&frames);
                    } else {
                        assert_eq!(inj.write(&batch(TX, &frames)).status, STATUS_SUCCESS);
                    }
                }
            });
        }
        // A reader on its own thread, blocking reads.
        let (reader, ready) = (&capturers[0], &ready);
        s.spawn(move || {
            ready.wait();
            let mut n = 0;
            while n < 2 * ROUNDS * 3 {
                let r = reader.read(READ_LEN);
                assert_eq!(r.status, STATUS_SUCCESS);
                n += parse_records(&r.output).len();
            }
            assert_eq!(n, 2 * ROUNDS * 3);
        });
    });
    sim.run_until_idle();
    for h in &capturers[1..] {
        let s = capture_stats(h);
        assert_eq!(
            (s.seen, s.captured, s.dropped),
            ((2 * ROUNDS * 3) as u64, (2 * ROUNDS * 3) as u64, 0)
        );
        assert_eq!(s.records_queued as usize, 2 * ROUNDS * 3);
    }
    drop(capturers);
    sim.finish().assert_clean();
}

#[test]
fn concurrent_control_requests_on_one_handle_are_refused_not_raced() {
    // One handle's capture configuration is changed from several threads at once: each
    // request either runs alone or is refused with STATUS_DEVICE_BUSY; nothing breaks.
    let sim = load(SimConfig {
        adapters: vec![AdapterConfig::ethernet(0), AdapterConfig::ethernet(1)],
        ..SimConfig::default()
    });
    let h = open_capture(&sim, 0, nonblocking());
    let ifs = [sim.adapter(0).config().if_index, sim.adapter(1).config().if_index];
    let busy = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (h, busy) = (&h, &busy);
            s.spawn(move || {
                for i in 0..200 {
                    let status = match (t + i) % 3 {
                        0 => bind(h, ifs[i % 2]),
                        1 => set_capture(h, nonblocking()),
                        _ => set_filter(h, &[]).0,
                    };
                    if status == STATUS_DEVICE_BUSY {
                        busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    } else {
                        assert_eq!(status, STATUS_SUCCESS);
                    }
                }
            });
        }
    });
    // Whatever adapter it ended on, it captures there and only there.
    let c = counters(&h);
    let (on, off) = if c.if_index == ifs[0] { (0, 1) } else { (1, 0) };
    let f = frames_for(&sim, on).take(2);
    sim.adapter(on).indicate(&f[..1]);
    sim.adapter(off).indicate(&f[1..]);
    let got = drain_records(&h);
    assert_eq!(
        got.iter().map(|c| c.frame.clone()).collect::<Vec<_>>(),
        vec![f[0].clone()]
    );
    drop(h);
    sim.finish().assert_clean();
    let _ = write::DIR_TX;
}

/// The capture rings of every handle share a driver-wide budget of non-paged memory: a
/// capture beyond it fails with STATUS_QUOTA_EXCEEDED (and allocates nothing), and closing a
/// capture gives its ring back.
#[test]
fn capture_rings_share_a_driver_wide_memory_budget() {
    let sim = load(SimConfig::default());
    let big = CaptureConfig {
        ring_bytes: cap::MAX_RING_BYTES,
        ..nonblocking()
    };
    let per = u64::from(cap::MAX_RING_BYTES);
    let fits = (cap::MAX_TOTAL_RING_BYTES / per) as usize;
    let mut handles: Vec<_> = (0..fits).map(|_| open_capture(&sim, 0, big)).collect();
    let extra = open_bound(&sim, 0);
    let live = sim.stats().pool_live;
    assert_eq!(set_capture(&extra, big), STATUS_QUOTA_EXCEEDED);
    assert_eq!(
        sim.stats().pool_live,
        live + 2,
        "only the capture context and its per-processor counters, no ring"
    );
    // A smaller ring does not fit either, while the budget is used up.
    let small = CaptureConfig {
        ring_bytes: cap::MIN_RING_BYTES,
        ..nonblocking()
    };
    assert_eq!(set_capture(&extra, small), STATUS_QUOTA_EXCEEDED);
    // Shrinking one capture's ring frees budget for another.
    assert_eq!(set_capture(&handles[0], small), STATUS_SUCCESS);
    assert_eq!(set_capture(&extra, small), STATUS_SUCCESS);
    // Closing gives the ring back.
    drop(handles.pop());
    assert_eq!(set_capture(&extra, big), STATUS_SUCCESS);
    drop((handles, extra));
    sim.finish().assert_clean();
}

/// Each processor has its own ring; a read merges them by time stamp. Frames tapped on
/// processors 3 and 1 alternately, the clock moving between them, come back in the order they
/// passed, not ring after ring.
#[test]
fn reads_merge_the_processors_rings_in_time_order() {
    let sim = load(SimConfig::default());
    let h = open_capture(&sim, 0, nonblocking());
    let a = sim.adapter(0);
    let frames: Vec<Vec<u8>> = frames_for(&sim, 0).take(6);
    for (i, f) in frames.iter().enumerate() {
        // Processors 3, 1, 3, 1, ...: a NIC's two receive queues, each with its DPC.
        let _cpu = sim.on_processor(if i % 2 == 0 { 3 } else { 1 });
        a.indicate(std::slice::from_ref(f));
        sim.advance_time(std::time::Duration::from_micros(10));
    }
    let got = drain_records(&h);
    assert_eq!(
        got.iter().map(|c| c.frame.clone()).collect::<Vec<_>>(),
        frames,
        "in the order they passed"
    );
    assert!(
        got.windows(2)
            .all(|w| w[0].header.timestamp < w[1].header.timestamp),
        "time stamps rise"
    );
    drop(h);
    sim.finish().assert_clean();
}

/// A full ring is one processor's: frames on another processor still fit, and the drops are
/// counted where they happened and summed.
#[test]
fn a_full_ring_on_one_processor_drops_there_only() {
    let sim = load(SimConfig::default());
    let h = open_capture(
        &sim,
        0,
        CaptureConfig {
            ring_bytes: cap::MIN_RING_BYTES,
            ..nonblocking()
        },
    );
    let big = frames_for(&sim, 0).take(7).remove(6);
    assert_eq!(big.len(), 1514);
    let share = capture_stats(&h).ring_bytes as usize / SimConfig::default().processors as usize;
    let fits = share / cap::record_len(1514);
    {
        let _cpu = sim.on_processor(2);
        sim.adapter(0).indicate(&vec![big.clone(); fits + 5]);
    }
    {
        let _cpu = sim.on_processor(5);
        sim.adapter(0).indicate(&vec![big.clone(); 3]);
    }
    let s = capture_stats(&h);
    assert_eq!(
        (s.seen, s.captured, s.dropped, s.records_queued as usize),
        ((fits + 8) as u64, (fits + 3) as u64, 5, fits + 3)
    );
    assert_eq!(drain_records(&h).len(), fits + 3);
    drop(h);
    sim.finish().assert_clean();
}

/// A read waiting for more bytes is completed by the tap that brings them, on whichever
/// processor it runs; the reader's ring check and the tap's waiting check cannot both miss.
#[test]
fn a_waiting_read_is_completed_by_a_tap_on_another_processor() {
    let sim = load(SimConfig::default());
    let f = frames_for(&sim, 0).take(3);
    // More than the first frame's record, less than all three.
    let need = cap::record_len(f[0].len()) + 1;
    assert!(f.iter().map(|x| cap::record_len(x.len())).sum::<usize>() >= need);
    let h = open_capture(
        &sim,
        0,
        CaptureConfig {
            min_bytes: need as u32,
            // Not the host stack's answers: only what the taps below bring.
            directions: cap::CAPTURE_IN,
            snaplen: 2048,
            ..CaptureConfig::default()
        },
    );
    let read = h.start_read(1 << 16);
    {
        let _cpu = sim.on_processor(6);
        // One short frame: fewer bytes than the read waits for.
        sim.adapter(0).indicate(&f[..1]);
    }
    assert!(h.poll(read).is_none(), "still waiting for {need} bytes");
    {
        let _cpu = sim.on_processor(4);
        sim.adapter(0).indicate(&f[1..]);
    }
    let r = h.poll(read).expect("completed by the second tap");
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(parse_records(&r.output).len(), 3, "both rings, merged");
    drop(h);
    sim.finish().assert_clean();
}

/// Four processors tap at once while another thread opens, reads and closes captures over
/// and over: each closed capture is retired while taps may hold it and freed later (by a
/// later writer, the read timer or unload). The capture that stays counts every frame, once
/// (each processor's counts have one writer), and nothing leaks. This is the real
/// parallelism; the deterministic check that nothing is freed under a tap is the
/// interleaving explorer's (tests/hostile.rs), which closes the handles at each of the
/// driver's calls, some inside a tap.
#[test]
fn captures_closed_while_four_processors_tap_are_freed_safely() {
    let sim = load(SimConfig::default());
    let keep = open_capture(
        &sim,
        0,
        CaptureConfig {
            ring_bytes: 8 << 20,
            directions: cap::CAPTURE_IN,
            ..nonblocking()
        },
    );
    const ROUNDS: usize = 50;
    const PER: usize = 4;
    let ready = std::sync::Barrier::new(5);
    std::thread::scope(|s| {
        for cpu in 0..4u32 {
            let (sim, ready) = (&sim, &ready);
            s.spawn(move || {
                let _actor = sim.actor();
                let _cpu = sim.on_processor(cpu);
                ready.wait();
                let mut src = frames_for(sim, 0);
                for _ in 0..ROUNDS {
                    sim.adapter(0).indicate(&src.take(PER));
                }
            });
        }
        let (sim, ready) = (&sim, &ready);
        s.spawn(move || {
            let _actor = sim.actor();
            ready.wait();
            for _ in 0..ROUNDS {
                let h = open_capture(sim, 0, nonblocking());
                let _ = h.read(READ_LEN);
                drop(h);
            }
        });
    });
    sim.run_until_idle();
    let total = (4 * ROUNDS * PER) as u64;
    let s = capture_stats(&keep);
    assert_eq!((s.accepted, s.captured, s.dropped), (total, total, 0));
    let got = drain_records(&keep);
    assert_eq!(got.len() as u64, total);
    drop(keep);
    sim.finish().assert_clean();
}
