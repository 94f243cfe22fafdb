//! The BPF interpreter against libpcap itself: programs libpcap compiles from real filter
//! expressions pass our validator, and on every frame of a varied corpus our interpreter
//! accepts exactly the frames libpcap's own interpreter accepts.

mod common;

use common::{corpus, libpcap};

/// Expressions a network tester types, covering the libpcap code generator's shapes:
/// protocol tests, ports behind variable IP headers, fragments, VLAN, IPv6, byte tests,
/// lengths, host and broadcast matches, and combinations.
pub const EXPRESSIONS: &[&str] = &[
    "icmp",
    "tcp port 80",
    "vlan and udp",
    "ether host 02:11:22:33:44:55",
    "ip6",
    "arp",
    "udp port 53",
    "ip and not icmp",
    "tcp[tcpflags] & tcp-syn != 0",
    "ether[0] & 1 = 1",
    "greater 100",
    "less 60",
    "vlan 100",
    "ip6 and tcp dst port 80",
    "ether broadcast",
    "src host 192.168.77.2 and (tcp or udp)",
    "ip[6:2] & 0x1fff != 0",
    "portrange 40000-40001",
    "vlan and vlan 100",
    "igmp or icmp6",
];

#[test]
fn libpcap_programs_are_valid_and_agree_with_libpcap_on_every_frame() {
    let frames = corpus::frames();
    let mut total_matches = 0;
    for expr in EXPRESSIONS {
        let prog = libpcap::compile(expr);
        rxinject_bpf::validate(&prog).unwrap_or_else(|e| panic!("{expr}: libpcap's program refused: {e}"));
        // And the pre-decoded form the driver runs (`SET_FILTER`), fused idioms and all.
        let mut code = vec![rxinject_bpf::Compiled::default(); prog.len()];
        rxinject_bpf::compile(&prog, &mut code).unwrap_or_else(|e| panic!("{expr}: not compiled: {e}"));
        let reference = libpcap::matches(expr, &frames);
        for (i, (f, want)) in frames.iter().zip(&reference).enumerate() {
            let got = rxinject_bpf::run(&prog, &f[..]) != 0;
            assert_eq!(
                got,
                *want,
                "{expr}: frame {i} ({} bytes): ours {got}, libpcap {want}",
                f.len()
            );
            let compiled = rxinject_bpf::run_compiled(&code, &f[..]) != 0;
            assert_eq!(
                compiled,
                *want,
                "{expr}: frame {i} ({} bytes): ours (pre-decoded) {compiled}, libpcap {want}",
                f.len()
            );
        }
        let n = reference.iter().filter(|&&m| m).count();
        assert!(
            n > 0 && n < frames.len(),
            "{expr}: the corpus should have frames on both sides ({n} of {})",
            frames.len()
        );
        total_matches += n;
    }
    assert!(total_matches > EXPRESSIONS.len());
}
