//! rtnetlink (`NETLINK_ROUTE`, rtnetlink(7)): the machine's interfaces (`RTM_GETLINK`), and
//! the companion veth of `rxinject link` (`RTM_NEWLINK`, `RTM_DELLINK`). Messages are built
//! and parsed here byte by byte (netlink(7): a 16-byte `nlmsghdr`, then a 16-byte
//! `ifinfomsg`, then attributes of `len`, `type` and a payload padded to 4 bytes).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_STATS64: u16 = 23;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
/// `NLA_F_NESTED`: the attribute holds attributes.
const NESTED: u16 = 0x8000;
/// `ARPHRD_ETHER`: an Ethernet interface (`ifi_type`).
pub const ARPHRD_ETHER: u16 = 1;
const IFF_UP: u32 = 0x1;
const HEADER: usize = 16;
const IFINFO: usize = 16;

/// One interface, as `RTM_GETLINK` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// `ifi_type` (`ARPHRD_*`).
    pub kind: u16,
    /// `IF_OPER_*` (RFC 2863: 6 is up).
    pub operstate: u8,
    /// `IFF_UP`: administratively up.
    pub up: bool,
    /// `IFLA_LINK`: a veth's peer (its index).
    pub peer: Option<u32>,
    /// `IFLA_STATS64`'s `rx_dropped` and `tx_dropped`: frames the kernel dropped on their
    /// way in (a full backlog, the interface down) and out.
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

impl Link {
    /// The state as `rxinject adapters` shows it (RFC 2863's operational states).
    pub fn state(&self) -> &'static str {
        match self.operstate {
            6 => "up",
            2 => "down",
            5 => "dormant",
            7 => "lowerlayerdown",
            // IF_OPER_UNKNOWN: what a veth or a tap may report while it works.
            _ if self.up => "unknown (up)",
            _ => "down",
        }
    }
}

/// A netlink socket of the routing family.
struct Socket {
    fd: OwnedFd,
    seq: u32,
    /// Where replies are received (64 KiB, allocated once).
    buf: Vec<u8>,
}

impl Socket {
    fn open() -> io::Result<Socket> {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Socket {
            fd,
            seq: 1,
            buf: vec![0u8; 64 << 10],
        })
    }

    fn send(&mut self, mut msg: Vec<u8>) -> io::Result<u32> {
        self.seq += 1;
        let len = msg.len() as u32;
        msg[0..4].copy_from_slice(&len.to_ne_bytes());
        msg[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // SAFETY: a sockaddr_nl of zeros (the kernel) is a valid address of its size.
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: `msg` and `to` are valid for their lengths for the call.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&raw const to).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(self.seq)
    }

    /// The replies to request `seq`: each message's type and payload, until `NLMSG_DONE` (a
    /// dump) or the acknowledgement (an error message of code 0). A negative error code is
    /// the request's failure.
    fn replies(&mut self, seq: u32, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
        let buf = &mut self.buf;
        loop {
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= HEADER {
                let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                let mseq = u32::from_ne_bytes(rest[8..12].try_into().unwrap());
                if len < HEADER || len > rest.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a truncated netlink message",
                    ));
                }
                let payload = &rest[HEADER..len];
                rest = &rest[align(len).min(rest.len())..];
                if mseq != seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = payload
                            .get(0..4)
                            .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap()));
                        return if code == 0 {
                            Ok(())
                        } else {
                            Err(io::Error::from_raw_os_error(-code))
                        };
                    }
                    _ => each(kind, payload),
                }
            }
        }
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A request: header (length and sequence filled in by `Socket::send`) and `ifinfomsg`.
fn request(kind: u16, flags: u16, index: i32, ifi_flags: u32, ifi_change: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(256);
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    m.extend_from_slice(&[0; 8]);
    ifinfo(&mut m, index, ifi_flags, ifi_change);
    m
}

fn ifinfo(m: &mut Vec<u8>, index: i32, flags: u32, change: u32) {
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    m.extend_from_slice(&index.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&change.to_ne_bytes());
}

/// Appends attribute `kind` with `data`, padded.
fn attr(m: &mut Vec<u8>, kind: u16, data: &[u8]) {
    m.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(data);
    m.resize(align(m.len()), 0);
}

/// Appends a nested attribute whose contents `f` writes.
fn nested(m: &mut Vec<u8>, kind: u16, f: impl FnOnce(&mut Vec<u8>)) {
    let at = m.len();
    m.extend_from_slice(&[0; 4]);
    f(m);
    let len = (m.len() - at) as u16;
    m[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    m[at + 2..at + 4].copy_from_slice(&(kind | NESTED).to_ne_bytes());
}

fn name_attr(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

/// Parses one `RTM_NEWLINK` payload (`ifinfomsg` and attributes); None if malformed.
fn parse_link(p: &[u8]) -> Option<Link> {
    let info = p.get(..IFINFO)?;
    let kind = u16::from_ne_bytes([info[2], info[3]]);
    let index = i32::from_ne_bytes(info[4..8].try_into().ok()?);
    let flags = u32::from_ne_bytes(info[8..12].try_into().ok()?);
    let mut link = Link {
        index: u32::try_from(index).ok()?,
        name: String::new(),
        mac: [0; 6],
        mtu: 0,
        kind,
        operstate: 0,
        up: flags & IFF_UP != 0,
        peer: None,
        rx_dropped: 0,
        tx_dropped: 0,
    };
    let mut rest = &p[IFINFO..];
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let t = u16::from_ne_bytes([rest[2], rest[3]]) & !NESTED;
        if len < 4 || len > rest.len() {
            return None;
        }
        let data = &rest[4..len];
        match t {
            IFLA_IFNAME => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                link.name = String::from_utf8_lossy(&data[..end]).into_owned();
            }
            IFLA_ADDRESS if data.len() == 6 => link.mac.copy_from_slice(data),
            IFLA_MTU if data.len() == 4 => link.mtu = u32::from_ne_bytes(data.try_into().ok()?),
            IFLA_OPERSTATE if !data.is_empty() => link.operstate = data[0],
            IFLA_LINK if data.len() == 4 => link.peer = Some(u32::from_ne_bytes(data.try_into().ok()?)),
            // struct rtnl_link_stats64: rx/tx packets, bytes, errors, then rx_dropped (7th)
            // and tx_dropped (8th), each a u64.
            IFLA_STATS64 if data.len() >= 64 => {
                link.rx_dropped = u64::from_ne_bytes(data[48..56].try_into().ok()?);
                link.tx_dropped = u64::from_ne_bytes(data[56..64].try_into().ok()?);
            }
            _ => {}
        }
        rest = &rest[align(len).min(rest.len())..];
    }
    Some(link)
}

/// Every interface of this network namespace, in index order.
pub fn links() -> io::Result<Vec<Link>> {
    let mut s = Socket::open()?;
    let seq = s.send(request(RTM_GETLINK, NLM_F_DUMP, 0, 0, 0))?;
    let mut v = Vec::new();
    s.replies(seq, |kind, p| {
        if kind == RTM_NEWLINK
            && let Some(l) = parse_link(p)
        {
            v.push(l);
        }
    })?;
    v.sort_by_key(|l| l.index);
    Ok(v)
}

/// Interface `index` alone (`RTM_GETLINK` for one index: its counters now).
pub fn link(index: u32) -> io::Result<Link> {
    link_on(&mut Socket::open()?, index)
}

/// A netlink socket kept open to read interfaces' counters again and again: one opened and
/// closed for each read costs about a millisecond here (most of it in the close), as much
/// as injecting 700 frames.
pub struct LinkReader(Socket);

impl LinkReader {
    pub fn new() -> io::Result<LinkReader> {
        Socket::open().map(LinkReader)
    }

    /// Interface `index` alone, as [`link`].
    pub fn link(&mut self, index: u32) -> io::Result<Link> {
        link_on(&mut self.0, index)
    }
}

fn link_on(s: &mut Socket, index: u32) -> io::Result<Link> {
    let seq = s.send(request(RTM_GETLINK, NLM_F_ACK, index as i32, 0, 0))?;
    let mut found = None;
    s.replies(seq, |kind, p| {
        if kind == RTM_NEWLINK {
            found = parse_link(p);
        }
    })?;
    found.ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
}

/// Creates the veth pair `name` and `peer` (both down).
pub fn add_veth(name: &str, peer: &str) -> io::Result<()> {
    let mut s = Socket::open()?;
    let mut m = request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, 0, 0, 0);
    attr(&mut m, IFLA_IFNAME, &name_attr(name));
    nested(&mut m, IFLA_LINKINFO, |m| {
        attr(m, IFLA_INFO_KIND, b"veth");
        nested(m, IFLA_INFO_DATA, |m| {
            nested(m, VETH_INFO_PEER, |m| {
                ifinfo(m, 0, 0, 0);
                attr(m, IFLA_IFNAME, &name_attr(peer));
            });
        });
    });
    let seq = s.send(m)?;
    s.replies(seq, |_, _| {})
}

/// Sets interface `index` administratively up.
pub fn set_up(index: u32) -> io::Result<()> {
    let mut s = Socket::open()?;
    let seq = s.send(request(RTM_NEWLINK, NLM_F_ACK, index as i32, IFF_UP, IFF_UP))?;
    s.replies(seq, |_, _| {})
}

/// Deletes interface `index` (a veth takes its peer with it).
pub fn delete(index: u32) -> io::Result<()> {
    let mut s = Socket::open()?;
    let seq = s.send(request(RTM_DELLINK, NLM_F_ACK, index as i32, 0, 0))?;
    s.replies(seq, |_, _| {})
}

/// A tc request (rtnetlink(7)'s `tcmsg`: family, ifindex, handle, parent, info).
fn tc_request(kind: u16, flags: u16, index: u32, handle: u32, parent: u32, info: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    m.extend_from_slice(&(index as i32).to_ne_bytes());
    for v in [handle, parent, info] {
        m.extend_from_slice(&v.to_ne_bytes());
    }
    m
}

const RTM_NEWQDISC: u16 = 36;
const RTM_NEWTFILTER: u16 = 44;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
/// `TC_H_CLSACT`, and its ingress hook (`TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)`).
const TC_H_CLSACT: u32 = 0xffff_fff1;
const TC_H_CLSACT_INGRESS: u32 = 0xffff_fff2;
const TCA_BPF_FD: u16 = 6;
const TCA_BPF_NAME: u16 = 7;
const TCA_BPF_FLAGS: u16 = 8;
const TCA_BPF_FLAG_ACT_DIRECT: u32 = 1;

/// Adds the `clsact` qdisc to interface `index` (where tc's ingress and egress hooks live).
pub fn add_clsact(index: u32) -> io::Result<()> {
    let mut s = Socket::open()?;
    let mut m = tc_request(
        RTM_NEWQDISC,
        NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        index,
        0xffff_0000,
        TC_H_CLSACT,
        0,
    );
    attr(&mut m, TCA_KIND, b"clsact\0");
    let seq = s.send(m)?;
    s.replies(seq, |_, _| {})
}

/// Attaches tc classifier `prog` (direct action) at interface `index`'s ingress, for every
/// protocol. It holds the program until the filter or the interface goes: no process needs
/// to stay (unlike a tcx link, which dies with its descriptor).
pub fn add_bpf_ingress(index: u32, prog: &OwnedFd, name: &str) -> io::Result<()> {
    let mut s = Socket::open()?;
    // Priority 1, protocol ETH_P_ALL (in network order in the low 16 bits).
    let info = (1u32 << 16) | u32::from(0x0003u16.to_be());
    let mut m = tc_request(
        RTM_NEWTFILTER,
        NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        index,
        1,
        TC_H_CLSACT_INGRESS,
        info,
    );
    attr(&mut m, TCA_KIND, b"bpf\0");
    nested(&mut m, TCA_OPTIONS, |m| {
        attr(m, TCA_BPF_FD, &(prog.as_raw_fd() as u32).to_ne_bytes());
        attr(m, TCA_BPF_NAME, &name_attr(name));
        attr(m, TCA_BPF_FLAGS, &TCA_BPF_FLAG_ACT_DIRECT.to_ne_bytes());
    });
    let seq = s.send(m)?;
    s.replies(seq, |_, _| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_message_parses_and_a_malformed_one_does_not() {
        let mut m = Vec::new();
        ifinfo(&mut m, 7, IFF_UP, 0);
        m[2..4].copy_from_slice(&ARPHRD_ETHER.to_ne_bytes());
        attr(&mut m, IFLA_IFNAME, &name_attr("veth0"));
        attr(&mut m, IFLA_ADDRESS, &[2, 0, 0, 0, 0, 9]);
        attr(&mut m, IFLA_MTU, &1500u32.to_ne_bytes());
        attr(&mut m, IFLA_OPERSTATE, &[6]);
        let l = parse_link(&m).unwrap();
        assert_eq!(
            l,
            Link {
                index: 7,
                name: "veth0".into(),
                mac: [2, 0, 0, 0, 0, 9],
                mtu: 1500,
                kind: ARPHRD_ETHER,
                operstate: 6,
                up: true,
                peer: None,
                rx_dropped: 0,
                tx_dropped: 0,
            }
        );
        assert_eq!(l.state(), "up");
        // An attribute longer than the message.
        let mut bad = m.clone();
        bad[IFINFO..IFINFO + 2].copy_from_slice(&200u16.to_ne_bytes());
        assert_eq!(parse_link(&bad), None);
        assert_eq!(parse_link(&m[..10]), None);
    }

    #[test]
    fn nested_attributes_carry_their_length_and_flag() {
        let mut m = Vec::new();
        nested(&mut m, IFLA_LINKINFO, |m| attr(m, IFLA_INFO_KIND, b"veth"));
        assert_eq!(m.len(), 4 + 8);
        assert_eq!(u16::from_ne_bytes([m[0], m[1]]), 12);
        assert_eq!(u16::from_ne_bytes([m[2], m[3]]), IFLA_LINKINFO | NESTED);
    }
}
