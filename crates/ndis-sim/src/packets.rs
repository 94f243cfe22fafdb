//! ARP and ICMP echo over IPv4 on Ethernet, built and parsed with real checksums: what the
//! simulated host stack answers, and what tests and the demo send it.

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// The Ethernet broadcast address.
pub const BROADCAST: [u8; 6] = [0xFF; 6];

const IP_PROTO_ICMP: u8 = 1;
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

/// What the simulated host stack answers to a frame it received on an adapter with `mac`
/// and IPv4 address `ip`: an ARP reply to a request for `ip`, an echo reply to an echo
/// request for `ip` sent to `mac`. Everything else (and anything with a bad checksum) gets
/// no answer.
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
}
