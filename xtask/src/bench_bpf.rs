//! BPF side by side: rxinject's interpreter (`rxinject_bpf::run`) against libpcap's
//! `bpf_filter()` (Debian's libpcap, loaded at run time), the same programs (libpcap's own
//! compilation of six expressions) over the same 64 representative frames, counted by
//! callgrind as the difference of two repetition counts. And what `validate` costs.
//!
//! The runner scenarios are `bpf_<name>_rxinject`, `bpf_<name>_libpcap` (FRAMES is the
//! number of passes over the 64 frames) and `bpfvalidate_<name>` (FRAMES validations).

use std::hint::black_box;

use ndis_sim::packets::{self, Arp, IcmpEcho, Udp};
use rxinject_bpf::Insn;

use crate::{Error, Result};

/// The programs: name, tcpdump expression.
pub const PROGRAMS: &[(&str, &str)] = &[
    ("icmp", "icmp"),
    ("tcp_port_80", "tcp port 80"),
    ("udp_dst_port_53", "udp and dst port 53"),
    ("vlan_udp", "vlan and udp"),
    ("ip6_tcp", "ip6 and tcp"),
    (
        "host_net_mix",
        "host 192.168.77.1 or (net 10.0.0.0/8 and not port 22) or src host 172.16.5.4",
    ),
];

/// The snap length the programs are compiled with (their accept value).
pub const SNAPLEN: u32 = 262_144;

const A: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0A];
const B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x0B];

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&B);
    f.extend_from_slice(&A);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// An IPv4 packet: `options` (a multiple of 4 bytes), a fragment offset (8-byte units) and
/// the more-fragments bit.
fn ipv4(
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    options: &[u8],
    frag: u16,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    let ihl = 5 + options.len() / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    let mut p = vec![(0x40 | ihl) as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34]);
    p.extend_from_slice(&((frag & 0x1FFF) | if more { 0x2000 } else { 0 }).to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(options);
    p.extend_from_slice(payload);
    p
}

fn ipv6(next: u8, src_last: u8, dst_last: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    let addr = |last: u8| {
        let mut a = [0u8; 16];
        a[..2].copy_from_slice(&[0xfd, 0x00]);
        a[15] = last;
        a
    };
    let (s, d) = (addr(src_last), addr(dst_last));
    p.extend_from_slice(&s);
    p.extend_from_slice(&d);
    p.extend_from_slice(payload);
    p
}

fn udp(sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + len) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.resize(8 + len, 0x5A);
    u
}

fn tcp(sport: u16, dport: u16, flags: u8, len: usize) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + len);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]);
    t.resize(20 + len, 0x33);
    t
}

fn vlan(tci: u16, inner_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = tci.to_be_bytes().to_vec();
    p.extend_from_slice(&inner_type.to_be_bytes());
    p.extend_from_slice(payload);
    eth(0x8100, &p)
}

/// 64 frames of the kinds a capture sees: IPv4 UDP, TCP and ICMP (with options, fragments),
/// IPv6 TCP, UDP and ICMPv6, ARP, 802.1Q-tagged, LLDP; 42 (ARP and ICMP as sent, before
/// padding) to 1514 bytes.
pub fn frames() -> Vec<Vec<u8>> {
    let h: [u8; 4] = [192, 168, 77, 1];
    let p: [u8; 4] = [192, 168, 77, 2];
    let ten: [u8; 4] = [10, 1, 2, 3];
    let other: [u8; 4] = [203, 0, 113, 9];
    let special: [u8; 4] = [172, 16, 5, 4];
    let rr = [7u8, 7, 4, 0]; // record route, one slot
    let sizes = [18usize, 200, 1472];
    let mut v = Vec::new();
    // IPv4 UDP: DNS both ways, other ports, sizes, an option, a fragment.
    for (i, &len) in sizes.iter().enumerate() {
        v.push(eth(
            0x0800,
            &ipv4(17, p, h, &[], 0, false, &udp(40000 + i as u16, 53, len)),
        ));
        v.push(eth(0x0800, &ipv4(17, h, p, &[], 0, false, &udp(53, 40000, len))));
        v.push(eth(
            0x0800,
            &ipv4(17, ten, other, &[], 0, false, &udp(5000, 9, len)),
        ));
    }
    v.push(eth(0x0800, &ipv4(17, p, h, &rr, 0, false, &udp(1234, 53, 40))));
    v.push(eth(0x0800, &ipv4(17, p, h, &[], 0, true, &udp(1234, 53, 1000))));
    v.push(eth(0x0800, &ipv4(17, p, h, &[], 125, false, &[0x11; 300])));
    // IPv4 TCP: port 80 both ways, SSH from the 10/8 net, 443, an option, a fragment.
    for (i, &len) in sizes.iter().enumerate() {
        let len = len.min(1460);
        v.push(eth(
            0x0800,
            &ipv4(6, p, h, &[], 0, false, &tcp(50000 + i as u16, 80, 0x18, len)),
        ));
        v.push(eth(
            0x0800,
            &ipv4(6, h, p, &[], 0, false, &tcp(80, 50000, 0x10, len)),
        ));
        v.push(eth(
            0x0800,
            &ipv4(6, ten, h, &[], 0, false, &tcp(60000, 22, 0x18, len)),
        ));
        v.push(eth(
            0x0800,
            &ipv4(6, other, p, &[], 0, false, &tcp(443, 51000, 0x10, len)),
        ));
    }
    v.push(eth(
        0x0800,
        &ipv4(6, p, h, &rr, 0, false, &tcp(50001, 80, 0x02, 0)),
    ));
    v.push(eth(
        0x0800,
        &ipv4(6, p, h, &[], 0, true, &tcp(50002, 80, 0x18, 800)),
    ));
    v.push(eth(
        0x0800,
        &ipv4(6, special, other, &[], 0, false, &tcp(1, 2, 0x02, 0)),
    ));
    // ICMP: echo both ways, sizes; an unreachable from elsewhere.
    for len in [8usize, 56, 1400] {
        let req = IcmpEcho::request(A, B, p, h, 1, len as u16, &vec![0x61; len]).to_frame();
        v.push(req);
    }
    v.push(eth(
        0x0800,
        &ipv4(1, h, p, &[], 0, false, &[0, 0, 0, 0, 0, 1, 0, 1]),
    ));
    v.push(eth(
        0x0800,
        &ipv4(1, other, ten, &[], 0, false, &[3, 3, 0, 0, 0, 0, 0, 0]),
    ));
    v.push(eth(
        0x0800,
        &ipv4(1, p, h, &rr, 0, false, &[8, 0, 0, 0, 0, 1, 0, 2]),
    ));
    // IPv6: TCP 80 and 22, UDP 53, ICMPv6 echo and neighbour solicitation, sizes.
    for &len in &sizes {
        let len = len.min(1440);
        v.push(eth(0x86DD, &ipv6(6, 2, 1, &tcp(50000, 80, 0x18, len))));
        v.push(eth(0x86DD, &ipv6(17, 2, 1, &udp(40000, 53, len))));
    }
    v.push(eth(0x86DD, &ipv6(6, 1, 2, &tcp(22, 60000, 0x10, 100))));
    v.push(eth(0x86DD, &ipv6(58, 2, 1, &[128, 0, 0, 0, 0, 1, 0, 1])));
    v.push(eth(0x86DD, &ipv6(58, 2, 1, &[135, 0, 0, 0, 0, 0, 0, 0])));
    // ARP.
    v.push(packets::arp_request(A, p, h));
    v.push(
        Arp {
            operation: 2,
            sender_mac: B,
            sender_ip: h,
            target_mac: A,
            target_ip: p,
        }
        .to_frame(),
    );
    v.push(packets::arp_request(A, ten, other));
    // 802.1Q: UDP 53, TCP 80, ICMP, ARP, IPv6 inside.
    v.push(vlan(
        100,
        0x0800,
        &ipv4(17, p, h, &[], 0, false, &udp(40000, 53, 40)),
    ));
    v.push(vlan(
        100,
        0x0800,
        &ipv4(17, ten, other, &[], 0, false, &udp(1000, 2000, 1000)),
    ));
    v.push(vlan(
        200,
        0x0800,
        &ipv4(6, p, h, &[], 0, false, &tcp(50000, 80, 0x18, 300)),
    ));
    v.push(vlan(
        200,
        0x0800,
        &ipv4(1, p, h, &[], 0, false, &[8, 0, 0, 0, 0, 1, 0, 1]),
    ));
    v.push(vlan(300, 0x0806, &packets::arp_request(A, p, h)[14..]));
    v.push(vlan(300, 0x86DD, &ipv6(17, 2, 1, &udp(40000, 53, 60))));
    // LLDP, and a UDP echo through the simulated host's own helper.
    let mut lldp = vec![0x02, 0x07, 0x04];
    lldp.extend_from_slice(&A);
    lldp.extend_from_slice(&[0x04, 0x03, 0x05, b'e', b'0', 0x06, 0x02, 0x00, 0x78, 0x00, 0x00]);
    let mut l = vec![0x01, 0x80, 0xC2, 0x00, 0x00, 0x0E];
    l.extend_from_slice(&A);
    l.extend_from_slice(&0x88CCu16.to_be_bytes());
    l.extend_from_slice(&lldp);
    l.resize(60, 0);
    v.push(l);
    v.push(
        Udp {
            dst_mac: B,
            src_mac: A,
            src_ip: p,
            dst_ip: h,
            src_port: 7,
            dst_port: 7,
            payload: vec![0; 1400],
        }
        .to_frame(),
    );
    // Up to 64 with full-size UDP and TCP of other hosts.
    let mut i = 0u16;
    while v.len() < 64 {
        v.push(eth(
            0x0800,
            &ipv4(17, other, ten, &[], 0, false, &udp(3000 + i, 3001, 1472)),
        ));
        i += 1;
    }
    v.truncate(64);
    v
}

/// libpcap, loaded at run time (shared with the `bpf` fuzz target).
pub use rxinject_fuzz::libpcap::Libpcap;

/// The program of `name`, compiled by libpcap.
pub fn program(name: &str) -> Result<Vec<Insn>> {
    let (_, expr) = PROGRAMS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| Error::usage(format!("no BPF program {name}")))?;
    rxinject_user::filter::compile(expr, SNAPLEN).map_err(|e| Error::new(format!("compiling {expr}: {e}")))
}

/// Whether rxinject and libpcap give the same verdict on every frame, for every program:
/// the (program, frame index, rxinject, libpcap) that differ.
pub fn disagreements() -> Result<Vec<(String, usize, u32, u32)>> {
    let lib = Libpcap::load().map_err(Error::new)?;
    let fs = frames();
    let mut out = Vec::new();
    for (name, _) in PROGRAMS {
        let prog = program(name)?;
        let mut code = vec![rxinject_bpf::Compiled::default(); prog.len()];
        rxinject_bpf::compile(&prog, &mut code)
            .map_err(|e| Error::new(format!("{name}: rxinject refuses it: {e}")))?;
        for (i, f) in fs.iter().enumerate() {
            let (ours, theirs) = (rxinject_bpf::run_compiled(&code, f.as_slice()), lib.run(&prog, f));
            if ours != theirs {
                out.push((name.to_string(), i, ours, theirs));
            }
        }
    }
    Ok(out)
}

/// Whether `scenario` is one of this module's.
pub fn is_bpf_scenario(scenario: &str) -> bool {
    scenario.starts_with("bpf_") || scenario.starts_with("bpfvalidate_")
}

/// Runs a BPF scenario `reps` times (passes over the frames, or validations); returns the
/// evaluations made.
pub fn run_scenario(scenario: &str, reps: u64) -> Result<u64> {
    if let Some(name) = scenario.strip_prefix("bpfvalidate_") {
        // What the driver does at SET_FILTER: validate and pre-decode.
        let prog = program(name)?;
        let mut out = vec![rxinject_bpf::Compiled::default(); prog.len()];
        for _ in 0..reps {
            black_box(rxinject_bpf::compile(black_box(&prog), black_box(&mut out)).is_ok());
        }
        return Ok(reps);
    }
    let rest = scenario
        .strip_prefix("bpf_")
        .ok_or_else(|| Error::usage(format!("not a BPF scenario: {scenario}")))?;
    let (name, which) = rest
        .rsplit_once('_')
        .ok_or_else(|| Error::usage(format!("bpf_<program>_<rxinject|libpcap>: {scenario}")))?;
    let prog = program(name)?;
    let fs = frames();
    let mut acc = 0u32;
    match which {
        "rxinject" => {
            // What the driver runs: the pre-decoded form.
            let mut code = vec![rxinject_bpf::Compiled::default(); prog.len()];
            rxinject_bpf::compile(&prog, &mut code).map_err(|e| Error::new(format!("{name}: {e}")))?;
            for _ in 0..reps {
                for f in &fs {
                    acc = acc.wrapping_add(rxinject_bpf::run_compiled(
                        black_box(&code),
                        black_box(f.as_slice()),
                    ));
                }
            }
        }
        "libpcap" => {
            let lib = Libpcap::load().map_err(Error::new)?;
            for _ in 0..reps {
                for f in &fs {
                    acc = acc.wrapping_add(lib.run(black_box(&prog), black_box(f)));
                }
            }
        }
        other => return Err(Error::usage(format!("bpf_..._{other}: rxinject or libpcap"))),
    }
    black_box(acc);
    Ok(reps * fs.len() as u64)
}
