//! A corpus of frames for filter tests: every protocol the test expressions talk about, with
//! and without 802.1Q tags, IP options, fragments, truncated headers and noise.

use ndis_sim::packets::{IcmpEcho, arp_request, internet_checksum};

pub const MAC_A: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
pub const MAC_B: [u8; 6] = [0x02, 0x52, 0x58, 0x00, 0x00, 0x01];
const IP_A: [u8; 4] = [192, 168, 77, 2];
const IP_B: [u8; 4] = [192, 168, 77, 1];

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn vlan(frame: &[u8], tci: u16) -> Vec<u8> {
    let mut t = frame[..12].to_vec();
    t.extend_from_slice(&0x8100u16.to_be_bytes());
    t.extend_from_slice(&tci.to_be_bytes());
    t.extend_from_slice(&frame[12..]);
    t
}

/// IPv4 with `proto` and `payload`; `options` bytes of NOPs; `frag` the flags+offset word.
fn ipv4(proto: u8, payload: &[u8], options: usize, frag: u16) -> Vec<u8> {
    let ihl = 20 + options;
    let total = (ihl + payload.len()) as u16;
    let mut ip = vec![0x40 | (ihl / 4) as u8, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&0x1234u16.to_be_bytes());
    ip.extend_from_slice(&frag.to_be_bytes());
    ip.extend_from_slice(&[64, proto, 0, 0]);
    ip.extend_from_slice(&IP_A);
    ip.extend_from_slice(&IP_B);
    ip.resize(ihl, 1);
    let c = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(payload);
    ip
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[next, 64]);
    ip.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    ip.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    ip.extend_from_slice(payload);
    ip
}

fn tcp(sport: u16, dport: u16, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut t = sport.to_be_bytes().to_vec();
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(data);
    t
}

fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    u
}

/// The corpus (deterministic).
pub fn frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let icmp = IcmpEcho::request(MAC_A, MAC_B, IP_A, IP_B, 1, 1, b"ping").to_frame();
    v.push(icmp.clone());
    let mut reply = IcmpEcho::request(MAC_B, MAC_A, IP_B, IP_A, 1, 1, b"pong");
    reply.reply = true;
    v.push(reply.to_frame());
    v.push(arp_request(MAC_A, IP_A, IP_B));
    for (sport, dport, flags) in [
        (40000, 80, 0x02),
        (80, 40000, 0x12),
        (40000, 443, 0x10),
        (8080, 8080, 0x18),
    ] {
        v.push(eth(
            MAC_B,
            MAC_A,
            0x0800,
            &ipv4(6, &tcp(sport, dport, flags, b"GET / HTTP/1.1\r\n"), 0, 0x4000),
        ));
    }
    // IP options move the TCP header.
    v.push(eth(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4(6, &tcp(40001, 80, 0x02, b""), 8, 0),
    ));
    // A later fragment of a TCP datagram: no TCP header in it.
    v.push(eth(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4(6, &tcp(80, 80, 0, b"xxxx"), 0, 0x0010),
    ));
    for (sport, dport) in [(5353, 53), (53, 40000), (40000, 80)] {
        v.push(eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4(17, &udp(sport, dport, b"dns?"), 0, 0),
        ));
    }
    // Tagged: UDP, TCP, ICMP, and a double tag.
    let tagged_udp = vlan(
        &eth(MAC_B, MAC_A, 0x0800, &ipv4(17, &udp(1000, 53, b"q"), 0, 0)),
        100,
    );
    v.push(tagged_udp.clone());
    v.push(vlan(
        &eth(MAC_B, MAC_A, 0x0800, &ipv4(6, &tcp(1000, 80, 2, b""), 0, 0)),
        0x2064,
    ));
    v.push(vlan(&icmp, 7));
    v.push(vlan(&tagged_udp, 5));
    // IPv6: ICMPv6, TCP, UDP, and tagged.
    v.push(eth(MAC_B, MAC_A, 0x86dd, &ipv6(58, &[128, 0, 0, 0, 0, 1, 0, 1])));
    v.push(eth(MAC_B, MAC_A, 0x86dd, &ipv6(6, &tcp(40000, 80, 2, b""))));
    v.push(eth(MAC_A, MAC_B, 0x86dd, &ipv6(17, &udp(546, 547, b"dhcp"))));
    v.push(vlan(&eth(MAC_B, MAC_A, 0x86dd, &ipv6(17, &udp(1, 53, b""))), 200));
    // Broadcast and multicast destinations, other hosts.
    v.push(eth(
        [0xff; 6],
        [0x02, 9, 9, 9, 9, 9],
        0x0800,
        &ipv4(17, &udp(67, 68, b"dhcp"), 0, 0),
    ));
    v.push(eth(
        [0x01, 0x00, 0x5e, 0, 0, 1],
        [0x02, 9, 9, 9, 9, 9],
        0x0800,
        &ipv4(2, &[0x11, 0, 0, 0], 0, 0),
    ));
    // Truncated: an IPv4 header cut short, a TCP header cut short, a bare Ethernet header.
    let mut cut = eth(MAC_B, MAC_A, 0x0800, &ipv4(6, &tcp(1, 80, 2, b""), 0, 0));
    cut.truncate(14 + 10);
    v.push(cut);
    let mut cut = eth(MAC_B, MAC_A, 0x0800, &ipv4(6, &tcp(1, 80, 2, b""), 0, 0));
    cut.truncate(14 + 20 + 3);
    v.push(cut);
    v.push(eth(MAC_B, MAC_A, 0x88b5, &[]));
    // Noise, of several sizes (deterministic).
    let mut x: u32 = 0x1234_5678;
    for len in [14usize, 33, 60, 97, 250, 1514] {
        let f: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        v.push(f);
    }
    v
}
