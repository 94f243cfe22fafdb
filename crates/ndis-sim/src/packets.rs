//! ARP and ICMP echo over IPv4 on Ethernet, built and parsed with real checksums: what the
//! simulated host stack answers, and what tests and the demo send it.

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// The Ethernet broadcast address.
pub const BROADCAST: [u8; 6] = [0xFF; 6];

const IP_PROTO_ICMP: u8 = 1;
const IP_PROTO_UDP: u8 = 17;
/// The UDP echo service's port (RFC 862).
pub const UDP_ECHO_PORT: u16 = 7;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

/// The Internet checksum (RFC 1071) of `data`.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    crate::frame::ethernet_frame(dst, src, ethertype, payload)
}

/// An ARP packet (Ethernet/IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// 1: request, 2: reply.
    pub operation: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: [u8; 4],
    pub target_mac: [u8; 6],
    pub target_ip: [u8; 4],
}

impl Arp {
    /// The Ethernet frame carrying this packet (requests are broadcast).
    pub fn to_frame(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(28);
        p.extend_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
        p.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        p.extend_from_slice(&[6, 4]);
        p.extend_from_slice(&self.operation.to_be_bytes());
        p.extend_from_slice(&self.sender_mac);
        p.extend_from_slice(&self.sender_ip);
        p.extend_from_slice(&self.target_mac);
        p.extend_from_slice(&self.target_ip);
        let dst = if self.operation == ARP_REQUEST {
            BROADCAST
        } else {
            self.target_mac
        };
        ethernet(dst, self.sender_mac, ETHERTYPE_ARP, &p)
    }

    /// Parses an untagged Ethernet frame carrying an Ethernet/IPv4 ARP packet.
    pub fn parse(frame: &[u8]) -> Option<Arp> {
        if frame.len() < 14 + 28 || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_ARP {
            return None;
        }
        let p = &frame[14..];
        if p[0..2] != [0, 1] || u16::from_be_bytes([p[2], p[3]]) != ETHERTYPE_IPV4 || p[4..6] != [6, 4] {
            return None;
        }
        let mut a = Arp {
            operation: u16::from_be_bytes([p[6], p[7]]),
            sender_mac: [0; 6],
            sender_ip: [0; 4],
            target_mac: [0; 6],
            target_ip: [0; 4],
        };
        a.sender_mac.copy_from_slice(&p[8..14]);
        a.sender_ip.copy_from_slice(&p[14..18]);
        a.target_mac.copy_from_slice(&p[18..24]);
        a.target_ip.copy_from_slice(&p[24..28]);
        Some(a)
    }
}

/// An ARP request: who has `target_ip`? Tell `sender_ip` at `sender_mac`.
pub fn arp_request(sender_mac: [u8; 6], sender_ip: [u8; 4], target_ip: [u8; 4]) -> Vec<u8> {
    Arp {
        operation: ARP_REQUEST,
        sender_mac,
        sender_ip,
        target_mac: [0; 6],
        target_ip,
    }
    .to_frame()
}

/// An ICMP echo request or reply in IPv4 in Ethernet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpEcho {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub src_ip: [u8; 4],
    pub dst_ip: [u8; 4],
    /// Reply (type 0) rather than request (type 8).
    pub reply: bool,
    pub ident: u16,
    pub sequence: u16,
    pub ttl: u8,
    pub payload: Vec<u8>,
}

impl IcmpEcho {
    /// A request from (`src_mac`, `src_ip`) to (`dst_mac`, `dst_ip`), TTL 64.
    pub fn request(
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src_ip: [u8; 4],
        dst_ip: [u8; 4],
        ident: u16,
        sequence: u16,
        payload: &[u8],
    ) -> IcmpEcho {
        IcmpEcho {
            dst_mac,
            src_mac,
            src_ip,
            dst_ip,
            reply: false,
            ident,
            sequence,
            ttl: 64,
            payload: payload.to_vec(),
        }
    }

    /// The Ethernet frame, with correct IPv4 header and ICMP checksums.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut icmp = Vec::with_capacity(8 + self.payload.len());
        icmp.push(if self.reply {
            ICMP_ECHO_REPLY
        } else {
            ICMP_ECHO_REQUEST
        });
        icmp.push(0);
        icmp.extend_from_slice(&[0, 0]);
        icmp.extend_from_slice(&self.ident.to_be_bytes());
        icmp.extend_from_slice(&self.sequence.to_be_bytes());
        icmp.extend_from_slice(&self.payload);
        let c = internet_checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let total = (20 + icmp.len()) as u16;
        let mut ip = Vec::with_capacity(total as usize);
        ip.extend_from_slice(&[0x45, 0]);
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&self.sequence.wrapping_add(self.ident).to_be_bytes()); // identification
        ip.extend_from_slice(&[0x40, 0]); // don't fragment
        ip.push(self.ttl);
        ip.push(IP_PROTO_ICMP);
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(&self.src_ip);
        ip.extend_from_slice(&self.dst_ip);
        let c = internet_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&icmp);
        ethernet(self.dst_mac, self.src_mac, ETHERTYPE_IPV4, &ip)
    }

    /// Parses an untagged Ethernet frame carrying an ICMP echo request or reply; `None` if it
    /// is anything else or a checksum is wrong.
    pub fn parse(frame: &[u8]) -> Option<IcmpEcho> {
        if frame.len() < 14 + 20 + 8 || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
            return None;
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0F) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if ip[0] >> 4 != 4 || ihl < 20 || total < ihl + 8 || total > ip.len() || ip[9] != IP_PROTO_ICMP {
            return None;
        }
        if internet_checksum(&ip[..ihl]) != 0 {
            return None;
        }
        let icmp = &ip[ihl..total];
        if internet_checksum(icmp) != 0 || icmp[1] != 0 {
            return None;
        }
        let reply = match icmp[0] {
            ICMP_ECHO_REPLY => true,
            ICMP_ECHO_REQUEST => false,
            _ => return None,
        };
        let mut e = IcmpEcho {
            dst_mac: [0; 6],
            src_mac: [0; 6],
            src_ip: [0; 4],
            dst_ip: [0; 4],
            reply,
            ident: u16::from_be_bytes([icmp[4], icmp[5]]),
            sequence: u16::from_be_bytes([icmp[6], icmp[7]]),
            ttl: ip[8],
            payload: icmp[8..].to_vec(),
        };
        e.dst_mac.copy_from_slice(&frame[0..6]);
        e.src_mac.copy_from_slice(&frame[6..12]);
        e.src_ip.copy_from_slice(&ip[12..16]);
        e.dst_ip.copy_from_slice(&ip[16..20]);
        Some(e)
    }
}

/// A UDP datagram in IPv4 in Ethernet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Udp {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub src_ip: [u8; 4],
    pub dst_ip: [u8; 4],
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

fn ipv4_header(proto: u8, src: [u8; 4], dst: [u8; 4], payload_len: usize, ident: u16) -> Vec<u8> {
    let total = (20 + payload_len) as u16;
    let mut ip = Vec::with_capacity(20);
    ip.extend_from_slice(&[0x45, 0]);
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&ident.to_be_bytes());
    ip.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip
}

impl Udp {
    /// The Ethernet frame, with correct IPv4 and UDP checksums.
    pub fn to_frame(&self) -> Vec<u8> {
        let len = (8 + self.payload.len()) as u16;
        let mut u = Vec::with_capacity(usize::from(len));
        u.extend_from_slice(&self.src_port.to_be_bytes());
        u.extend_from_slice(&self.dst_port.to_be_bytes());
        u.extend_from_slice(&len.to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(&self.payload);
        // The checksum covers a pseudo-header (addresses, protocol, length).
        let mut pseudo = Vec::with_capacity(12 + u.len());
        pseudo.extend_from_slice(&self.src_ip);
        pseudo.extend_from_slice(&self.dst_ip);
        pseudo.extend_from_slice(&[0, IP_PROTO_UDP]);
        pseudo.extend_from_slice(&len.to_be_bytes());
        pseudo.extend_from_slice(&u);
        let c = match internet_checksum(&pseudo) {
            0 => 0xFFFF,
            c => c,
        };
        u[6..8].copy_from_slice(&c.to_be_bytes());
        let mut ip = ipv4_header(
            IP_PROTO_UDP,
            self.src_ip,
            self.dst_ip,
            u.len(),
            self.src_port ^ self.dst_port,
        );
        ip.extend_from_slice(&u);
        ethernet(self.dst_mac, self.src_mac, ETHERTYPE_IPV4, &ip)
    }

    /// Parses an untagged Ethernet frame carrying UDP in IPv4 (checksums checked; a zero UDP
    /// checksum means none).
    pub fn parse(frame: &[u8]) -> Option<Udp> {
        if frame.len() < 14 + 20 + 8 || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
            return None;
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0F) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if ip[0] >> 4 != 4 || ihl < 20 || total < ihl + 8 || total > ip.len() || ip[9] != IP_PROTO_UDP {
            return None;
        }
        if internet_checksum(&ip[..ihl]) != 0 || u16::from_be_bytes([ip[6], ip[7]]) & 0x3FFF != 0 {
            return None;
        }
        let u = &ip[ihl..total];
        let ulen = usize::from(u16::from_be_bytes([u[4], u[5]]));
        if ulen < 8 || ulen > u.len() {
            return None;
        }
        let (src_ip, dst_ip): ([u8; 4], [u8; 4]) = (ip[12..16].try_into().ok()?, ip[16..20].try_into().ok()?);
        if u[6..8] != [0, 0] {
            let mut pseudo = Vec::with_capacity(12 + ulen);
            pseudo.extend_from_slice(&src_ip);
            pseudo.extend_from_slice(&dst_ip);
            pseudo.extend_from_slice(&[0, IP_PROTO_UDP]);
            pseudo.extend_from_slice(&(ulen as u16).to_be_bytes());
            pseudo.extend_from_slice(&u[..ulen]);
            if internet_checksum(&pseudo) != 0 {
                return None;
            }
        }
        Some(Udp {
            dst_mac: frame[0..6].try_into().ok()?,
            src_mac: frame[6..12].try_into().ok()?,
            src_ip,
            dst_ip,
            src_port: u16::from_be_bytes([u[0], u[1]]),
            dst_port: u16::from_be_bytes([u[2], u[3]]),
            payload: u[8..ulen].to_vec(),
        })
    }
}

/// Traffic a capture on a small Ethernet segment would show: a peer (02:11:22:33:44:55,
/// 192.168.77.2) resolving and pinging the host (`host_mac`, `host_ip`), using its UDP echo
/// service, looking up a name, opening a web connection, and the background a segment carries
/// (IPv6, a VLAN, broadcasts, frames for other hosts, a full-size frame). Timestamps (ns since
/// 1970) spread over about three seconds. Deterministic.
pub fn sample_traffic(host_mac: [u8; 6], host_ip: [u8; 4]) -> Vec<(i128, Vec<u8>)> {
    const PEER_MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    const PEER_IP: [u8; 4] = [192, 168, 77, 2];
    const OTHER_MAC: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
    let t0: i128 = 1_795_478_400_000_000_000; // 2026-11-24 00:00:00 UTC
    let mut v: Vec<(i128, Vec<u8>)> = Vec::new();
    let mut at = |ms: i128, f: Vec<u8>| v.push((t0 + ms * 1_000_000, f));
    at(0, arp_request(PEER_MAC, PEER_IP, host_ip));
    for seq in 1..=5u16 {
        let payload: Vec<u8> = (0..56u8).map(|b| b.wrapping_add(seq as u8)).collect();
        at(
            100 + 500 * i128::from(seq - 1),
            IcmpEcho::request(PEER_MAC, host_mac, PEER_IP, host_ip, 0x4242, seq, &payload).to_frame(),
        );
    }
    for (i, text) in [&b"hello"[..], b"echo me", b"rxinject"].iter().enumerate() {
        let u = Udp {
            dst_mac: host_mac,
            src_mac: PEER_MAC,
            src_ip: PEER_IP,
            dst_ip: host_ip,
            src_port: 50000 + i as u16,
            dst_port: UDP_ECHO_PORT,
            payload: text.to_vec(),
        };
        at(300 + 400 * i as i128, u.to_frame());
    }
    // A DNS query to a resolver that is not the host (the host stack does not answer it).
    let dns = Udp {
        dst_mac: OTHER_MAC,
        src_mac: PEER_MAC,
        src_ip: PEER_IP,
        dst_ip: [192, 168, 77, 53],
        src_port: 53535,
        dst_port: 53,
        payload: vec![
            0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c',
            b'o', b'm', 0, 0, 1, 0, 1,
        ],
    };
    at(150, dns.to_frame());
    // A TCP SYN to a web server on another host.
    let mut syn = ipv4_header(6, PEER_IP, [192, 168, 77, 80], 20, 7);
    syn.extend_from_slice(&[
        0xc3, 0x50, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    at(1200, ethernet(OTHER_MAC, PEER_MAC, ETHERTYPE_IPV4, &syn));
    // IPv6: an ICMPv6 echo request to the host's link-local address.
    let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 58, 64];
    v6.extend_from_slice(&[
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55,
    ]);
    v6.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x52, 0x58, 0xff, 0xfe, 0, 0, 1]);
    v6.extend_from_slice(&[128, 0, 0, 0, 0, 7, 0, 1]);
    at(1700, ethernet(host_mac, PEER_MAC, 0x86dd, &v6));
    // A tagged frame on VLAN 100 and a DHCP discover broadcast.
    let mut tagged = dns.to_frame();
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
    at(2000, tagged);
    let dhcp = Udp {
        dst_mac: BROADCAST,
        src_mac: OTHER_MAC,
        src_ip: [0, 0, 0, 0],
        dst_ip: [255, 255, 255, 255],
        src_port: 68,
        dst_port: 67,
        payload: {
            // BOOTP: op, htype, hlen, hops, xid, then zeros up to the client MAC and the
            // magic cookie, then DHCP message type "discover" and the end option.
            let mut b = vec![1, 1, 6, 0, 0x39, 0x03, 0xf3, 0x26];
            b.resize(28, 0);
            b.extend_from_slice(&OTHER_MAC);
            b.resize(236, 0);
            b.extend_from_slice(&[99, 130, 83, 99, 53, 1, 1, 255]);
            b
        },
    };
    at(2200, dhcp.to_frame());
    // A full-size frame for another host.
    let big = Udp {
        dst_mac: OTHER_MAC,
        src_mac: PEER_MAC,
        src_ip: PEER_IP,
        dst_ip: [192, 168, 77, 99],
        src_port: 9000,
        dst_port: 9000,
        payload: (0..1472u32).map(|b| (b * 7) as u8).collect(),
    };
    at(2600, big.to_frame());
    v.sort_by_key(|(t, _)| *t);
    v
}

/// What the simulated host stack answers to a frame it received on an adapter with `mac`
/// and IPv4 address `ip`: an ARP reply to a request for `ip`, an echo reply to an echo
/// request for `ip` sent to `mac`, the same datagram back to a UDP datagram for the echo
/// port of `ip`. Everything else (and anything with a bad checksum) gets no answer.
pub(crate) fn answer(mac: [u8; 6], ip: [u8; 4], frame: &[u8]) -> Option<Vec<u8>> {
    let dst: [u8; 6] = frame.get(..6)?.try_into().ok()?;
    if let Some(a) = Arp::parse(frame) {
        return (a.operation == ARP_REQUEST && a.target_ip == ip && (dst == BROADCAST || dst == mac)).then(
            || {
                Arp {
                    operation: ARP_REPLY,
                    sender_mac: mac,
                    sender_ip: ip,
                    target_mac: a.sender_mac,
                    target_ip: a.sender_ip,
                }
                .to_frame()
            },
        );
    }
    if let Some(u) = Udp::parse(frame) {
        return (dst == mac && u.dst_ip == ip && u.dst_port == UDP_ECHO_PORT).then(|| {
            Udp {
                dst_mac: u.src_mac,
                src_mac: mac,
                src_ip: ip,
                dst_ip: u.src_ip,
                src_port: UDP_ECHO_PORT,
                dst_port: u.src_port,
                payload: u.payload,
            }
            .to_frame()
        });
    }
    let e = IcmpEcho::parse(frame)?;
    (!e.reply && dst == mac && e.dst_ip == ip).then(|| {
        IcmpEcho {
            dst_mac: e.src_mac,
            src_mac: mac,
            src_ip: ip,
            dst_ip: e.src_ip,
            reply: true,
            ident: e.ident,
            sequence: e.sequence,
            ttl: 128,
            payload: e.payload,
        }
        .to_frame()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST_MAC: [u8; 6] = [2, 0x52, 0x58, 0, 0, 1];
    const HOST_IP: [u8; 4] = [192, 168, 77, 1];
    const PEER_MAC: [u8; 6] = [2, 0x11, 0x22, 0x33, 0x44, 0x55];
    const PEER_IP: [u8; 4] = [192, 168, 77, 2];

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: the sum of these words is 0xDDF2 (ones' complement 0x220D).
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]),
            0x220D
        );
        assert_eq!(internet_checksum(&[0xFF]), 0x00FF);
    }

    #[test]
    fn the_stack_answers_an_echo_request_for_its_address() {
        let req = IcmpEcho::request(PEER_MAC, HOST_MAC, PEER_IP, HOST_IP, 7, 3, b"abcdefgh").to_frame();
        assert_eq!(IcmpEcho::parse(&req).unwrap().sequence, 3);
        let reply = IcmpEcho::parse(&answer(HOST_MAC, HOST_IP, &req).unwrap()).unwrap();
        assert!(reply.reply);
        assert_eq!((reply.dst_mac, reply.src_mac), (PEER_MAC, HOST_MAC));
        assert_eq!((reply.src_ip, reply.dst_ip), (HOST_IP, PEER_IP));
        assert_eq!(
            (reply.ident, reply.sequence, &reply.payload[..]),
            (7, 3, &b"abcdefgh"[..])
        );
    }

    #[test]
    fn the_stack_ignores_other_addresses_replies_and_bad_checksums() {
        let other = IcmpEcho::request(PEER_MAC, HOST_MAC, PEER_IP, [192, 168, 77, 9], 1, 1, b"x").to_frame();
        assert_eq!(answer(HOST_MAC, HOST_IP, &other), None);
        let mut req = IcmpEcho::request(PEER_MAC, HOST_MAC, PEER_IP, HOST_IP, 1, 1, b"xyz").to_frame();
        let reply = answer(HOST_MAC, HOST_IP, &req).unwrap();
        assert_eq!(answer(HOST_MAC, HOST_IP, &reply), None);
        let last = req.len() - 1;
        req[last] ^= 0xFF;
        assert_eq!(answer(HOST_MAC, HOST_IP, &req), None, "bad ICMP checksum");
        let wrong_mac =
            IcmpEcho::request(PEER_MAC, [2, 9, 9, 9, 9, 9], PEER_IP, HOST_IP, 1, 1, b"x").to_frame();
        assert_eq!(answer(HOST_MAC, HOST_IP, &wrong_mac), None);
    }

    #[test]
    fn the_stack_answers_arp_for_its_address_only() {
        let req = arp_request(PEER_MAC, PEER_IP, HOST_IP);
        let reply = Arp::parse(&answer(HOST_MAC, HOST_IP, &req).unwrap()).unwrap();
        assert_eq!(reply.operation, ARP_REPLY);
        assert_eq!((reply.sender_mac, reply.sender_ip), (HOST_MAC, HOST_IP));
        assert_eq!((reply.target_mac, reply.target_ip), (PEER_MAC, PEER_IP));
        assert_eq!(
            answer(HOST_MAC, HOST_IP, &arp_request(PEER_MAC, PEER_IP, [10, 0, 0, 1])),
            None
        );
    }

    #[test]
    fn the_stack_echoes_udp_on_port_7_only() {
        let req = Udp {
            dst_mac: HOST_MAC,
            src_mac: PEER_MAC,
            src_ip: PEER_IP,
            dst_ip: HOST_IP,
            src_port: 40000,
            dst_port: UDP_ECHO_PORT,
            payload: b"hello".to_vec(),
        };
        let reply = Udp::parse(&answer(HOST_MAC, HOST_IP, &req.to_frame()).unwrap()).unwrap();
        assert_eq!(
            (reply.src_port, reply.dst_port, reply.dst_ip),
            (UDP_ECHO_PORT, 40000, PEER_IP)
        );
        assert_eq!(reply.payload, b"hello");
        let other = Udp {
            dst_port: 9,
            ..req.clone()
        };
        assert_eq!(answer(HOST_MAC, HOST_IP, &other.to_frame()), None);
        let mut bad = req.to_frame();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(answer(HOST_MAC, HOST_IP, &bad), None, "bad UDP checksum");
    }
}
