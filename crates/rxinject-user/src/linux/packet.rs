//! AF_PACKET sockets (packet(7)): the injecting ones (`SO_MARK` says which kind: the
//! egress program redirects the Rx kind to the receive path) and the capturing one
//! (`ETH_P_ALL`, with the direction from `sll_pkttype`, the mark from `SO_RCVMARK`, the
//! wire length and an offloaded VLAN tag from `PACKET_AUXDATA`, the time from
//! `SO_TIMESTAMPNS`), batched with `sendmmsg` and `recvmmsg`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ETH_P_ALL: u16 = 0x0003;
const SOL_PACKET: i32 = 263;
const PACKET_ADD_MEMBERSHIP: i32 = 1;
const PACKET_STATISTICS: i32 = 6;
const PACKET_AUXDATA: i32 = 8;
const PACKET_MR_PROMISC: u16 = 1;
/// `sll_pkttype` of a frame this host sent.
pub const PACKET_OUTGOING: u8 = 4;
const SO_RCVMARK: i32 = 75;
const SO_TIMESTAMPNS: i32 = 35;
const TP_STATUS_VLAN_VALID: u32 = 0x10;
const TP_STATUS_VLAN_TPID_VALID: u32 = 0x40;

fn check(r: i32) -> io::Result<i32> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setopt<T>(fd: &OwnedFd, level: i32, name: i32, v: &T) -> io::Result<()> {
    // SAFETY: `v` is valid for reads of its size for the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    check(r).map(drop)
}

fn address(ifindex: u32, protocol: u16) -> libc::sockaddr_ll {
    // SAFETY: a sockaddr_ll of zeros is a valid (empty) address.
    let mut a: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    a.sll_family = libc::AF_PACKET as u16;
    a.sll_protocol = protocol.to_be();
    a.sll_ifindex = ifindex as i32;
    a
}

fn socket(flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments (protocol 0: nothing is received until
    // bind says what); the result is checked.
    let fd = check(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC | flags, 0) })?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(fd: &OwnedFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    let a = address(ifindex, protocol);
    // SAFETY: `a` is a valid sockaddr_ll of its size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const a).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    check(r).map(drop)
}

/// A socket that sends on `ifindex` with `mark` on every frame (`SO_MARK` needs
/// CAP_NET_ADMIN). It receives nothing.
pub fn injector(ifindex: u32, mark: u32) -> io::Result<OwnedFd> {
    let fd = socket(0)?;
    setopt(&fd, libc::SOL_SOCKET, libc::SO_MARK, &mark)?;
    bind(&fd, ifindex, 0)?;
    Ok(fd)
}

/// Sends `frames` on `fd` (an [`injector`] of `ifindex`), in `sendmmsg` batches of up to
/// 64. Calls `refused(i, error)` for each frame the kernel refused (too long for the MTU,
/// the interface down), and goes on with the next. Returns the frames sent.
pub fn send_all(
    fd: &OwnedFd,
    ifindex: u32,
    frames: &[&[u8]],
    mut refused: impl FnMut(usize, io::Error),
) -> usize {
    const BATCH: usize = 64;
    let mut sent = 0;
    let mut at = 0;
    // Each frame's address carries its EtherType, as the stack's own frames' protocol.
    let mut names: Vec<libc::sockaddr_ll> = Vec::with_capacity(BATCH);
    let mut iovs: Vec<libc::iovec> = Vec::with_capacity(BATCH);
    // SAFETY: an mmsghdr of zeros is valid (filled in below).
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    while at < frames.len() {
        let n = (frames.len() - at).min(BATCH);
        names.clear();
        iovs.clear();
        for f in &frames[at..at + n] {
            let ethertype = f.get(12..14).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
            names.push(address(ifindex, ethertype));
            iovs.push(libc::iovec {
                iov_base: f.as_ptr().cast_mut().cast(),
                iov_len: f.len(),
            });
        }
        for (i, m) in msgs[..n].iter_mut().enumerate() {
            m.msg_hdr.msg_name = (&raw mut names[i]).cast();
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            m.msg_hdr.msg_iov = &raw mut iovs[i];
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `msgs[..n]` point into `names`, `iovs` and `frames`, all alive and unmoved
        // for the call; the kernel only reads the frames.
        let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
        if r > 0 {
            sent += r as usize;
            at += r as usize;
        } else {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The first frame of the batch was refused: count it, go on after it.
            refused(at, e);
            at += 1;
        }
    }
    sent
}

/// A capturing socket on `ifindex`: every frame in and out, non-blocking, with the
/// metadata each record needs, and a receive buffer of `buffer` bytes.
pub fn capturer(ifindex: u32, buffer: u32) -> io::Result<OwnedFd> {
    let fd = socket(libc::SOCK_NONBLOCK)?;
    let on: i32 = 1;
    setopt(&fd, libc::SOL_SOCKET, SO_RCVMARK, &on)?;
    setopt(&fd, libc::SOL_SOCKET, SO_TIMESTAMPNS, &on)?;
    setopt(&fd, SOL_PACKET, PACKET_AUXDATA, &on)?;
    // SO_RCVBUFFORCE (CAP_NET_ADMIN) past rmem_max; the plain option if refused.
    let size = buffer as i32;
    if setopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
        setopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size)?;
    }
    // Bound last: nothing queues before the options hold.
    bind(&fd, ifindex, ETH_P_ALL)?;
    Ok(fd)
}

/// Promiscuous mode on `fd`'s interface while `fd` lives (`PACKET_MR_PROMISC`: the kernel
/// counts it, and drops it with the socket).
pub fn promiscuous(fd: &OwnedFd, ifindex: u32) -> io::Result<()> {
    let mr = libc::packet_mreq {
        mr_ifindex: ifindex as i32,
        mr_type: PACKET_MR_PROMISC,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    setopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr)
}

/// Installs classic BPF `prog` (`struct sock_filter`: code, jt, jf, k) on `fd`, or removes
/// the filter if `prog` is empty.
pub fn set_filter(fd: &OwnedFd, prog: &[rxinject_bpf::Insn]) -> io::Result<()> {
    if prog.is_empty() {
        let zero: i32 = 0;
        return match setopt(fd, libc::SOL_SOCKET, libc::SO_DETACH_FILTER, &zero) {
            // None was attached.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            r => r,
        };
    }
    let mut code: Vec<libc::sock_filter> = prog
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: code.len() as u16,
        filter: code.as_mut_ptr(),
    };
    setopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// The kernel's counts since the last call (`PACKET_STATISTICS`: frames the filter passed,
/// and those of them dropped for want of buffer space).
pub fn statistics(fd: &OwnedFd) -> (u64, u64) {
    let mut s = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as u32;
    // SAFETY: `s` and `len` are valid for writes for the call.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            SOL_PACKET,
            PACKET_STATISTICS,
            (&raw mut s).cast(),
            &raw mut len,
        )
    };
    if r < 0 {
        (0, 0)
    } else {
        (u64::from(s.tp_packets), u64::from(s.tp_drops))
    }
}

/// A received frame, as a capture record needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Nanoseconds since 1970.
    pub time_ns: i128,
    /// Bytes on the wire (an offloaded VLAN tag included).
    pub len: u32,
    pub outgoing: bool,
    pub mark: u32,
    /// The frame, with an offloaded VLAN tag put back (`vlan_restored`), cut at the snap
    /// length.
    pub data: Vec<u8>,
    pub vlan_restored: bool,
}

/// Buffers for `recvmmsg`, reused from call to call.
pub struct Receiver {
    bufs: Vec<Vec<u8>>,
    names: Vec<libc::sockaddr_ll>,
    iovs: Vec<libc::iovec>,
    controls: Vec<[u64; 16]>,
    msgs: Vec<libc::mmsghdr>,
}

impl Receiver {
    /// Room for `batch` frames of up to `snaplen` bytes.
    pub fn new(batch: usize, snaplen: usize) -> Receiver {
        Receiver {
            bufs: (0..batch).map(|_| vec![0u8; snaplen.max(64)]).collect(),
            names: (0..batch).map(|_| address(0, 0)).collect(),
            iovs: Vec::with_capacity(batch),
            controls: vec![[0u64; 16]; batch],
            // SAFETY: an mmsghdr of zeros is valid (filled in before each call).
            msgs: (0..batch).map(|_| unsafe { std::mem::zeroed() }).collect(),
        }
    }

    /// The frames waiting on `fd` (none: `WouldBlock`), at most the batch, each to
    /// `each`.
    pub fn receive(
        &mut self,
        fd: &OwnedFd,
        snaplen: usize,
        mut each: impl FnMut(Received),
    ) -> io::Result<usize> {
        let n = self.bufs.len();
        self.iovs.clear();
        for b in &mut self.bufs {
            self.iovs.push(libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            });
        }
        for i in 0..n {
            let m = &mut self.msgs[i].msg_hdr;
            m.msg_name = (&raw mut self.names[i]).cast();
            m.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            m.msg_iov = &raw mut self.iovs[i];
            m.msg_iovlen = 1;
            m.msg_control = self.controls[i].as_mut_ptr().cast();
            m.msg_controllen = std::mem::size_of::<[u64; 16]>();
            m.msg_flags = 0;
        }
        // SAFETY: every message points into buffers of `self` that live, unmoved, for the
        // call; the kernel writes at most their lengths.
        let r = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.msgs.as_mut_ptr(),
                n as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        for i in 0..r as usize {
            let got = (self.msgs[i].msg_len as usize).min(self.bufs[i].len());
            let outgoing = self.names[i].sll_pkttype == PACKET_OUTGOING;
            let control = &self.controls[i];
            // SAFETY: `control` is 128 bytes of plain memory; viewed as bytes.
            let bytes: &[u8] = unsafe { std::slice::from_raw_parts(control.as_ptr().cast(), 128) };
            let meta = parse_control(&bytes[..(self.msgs[i].msg_hdr.msg_controllen).min(128)]);
            let mut data = self.bufs[i][..got].to_vec();
            let mut len = meta.len.unwrap_or(got as u32);
            let mut vlan_restored = false;
            if let Some((tpid, tci)) = meta.vlan
                && data.len() >= 12
            {
                let mut tag = [0u8; 4];
                tag[..2].copy_from_slice(&tpid.to_be_bytes());
                tag[2..].copy_from_slice(&tci.to_be_bytes());
                data.splice(12..12, tag);
                len += 4;
                vlan_restored = true;
            }
            data.truncate(snaplen);
            each(Received {
                time_ns: meta.time_ns.unwrap_or(0),
                len,
                outgoing,
                mark: meta.mark,
                data,
                vlan_restored,
            });
        }
        Ok(r as usize)
    }
}

/// What the control messages of one received frame say.
#[derive(Debug, Default, PartialEq, Eq)]
struct Meta {
    time_ns: Option<i128>,
    mark: u32,
    len: Option<u32>,
    /// An offloaded tag: TPID and TCI.
    vlan: Option<(u16, u16)>,
}

/// Parses `cmsghdr`s (length u64, level i32, type i32, data, padded to 8 bytes).
fn parse_control(mut c: &[u8]) -> Meta {
    let mut m = Meta::default();
    while c.len() >= 16 {
        let len = u64::from_ne_bytes(c[0..8].try_into().unwrap()) as usize;
        let level = i32::from_ne_bytes(c[8..12].try_into().unwrap());
        let kind = i32::from_ne_bytes(c[12..16].try_into().unwrap());
        if len < 16 || len > c.len() {
            break;
        }
        let d = &c[16..len];
        let u32_at = |at: usize| {
            d.get(at..at + 4)
                .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
        };
        let u16_at = |at: usize| {
            d.get(at..at + 2)
                .map(|b| u16::from_ne_bytes(b.try_into().unwrap()))
        };
        match (level, kind) {
            (libc::SOL_SOCKET, SO_TIMESTAMPNS) if d.len() >= 16 => {
                let s = i64::from_ne_bytes(d[0..8].try_into().unwrap());
                let ns = i64::from_ne_bytes(d[8..16].try_into().unwrap());
                m.time_ns = Some(i128::from(s) * 1_000_000_000 + i128::from(ns));
            }
            (libc::SOL_SOCKET, libc::SO_MARK) => m.mark = u32_at(0).unwrap_or(0),
            (SOL_PACKET, PACKET_AUXDATA) => {
                // struct tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid.
                let status = u32_at(0).unwrap_or(0);
                m.len = u32_at(4);
                if status & TP_STATUS_VLAN_VALID != 0 {
                    let tci = u16_at(16).unwrap_or(0);
                    let tpid = match u16_at(18) {
                        Some(t) if status & TP_STATUS_VLAN_TPID_VALID != 0 => t,
                        _ => 0x8100,
                    };
                    m.vlan = Some((tpid, tci));
                }
            }
            _ => {}
        }
        c = &c[((len + 7) & !7).min(c.len())..];
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((16 + data.len()) as u64).to_ne_bytes());
        v.extend_from_slice(&level.to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(data);
        v.resize((v.len() + 7) & !7, 0);
        v
    }

    #[test]
    fn control_messages_give_time_mark_length_and_an_offloaded_tag() {
        let mut c = cmsg(
            libc::SOL_SOCKET,
            SO_TIMESTAMPNS,
            &[&5i64.to_ne_bytes()[..], &7i64.to_ne_bytes()].concat(),
        );
        c.extend(cmsg(
            libc::SOL_SOCKET,
            libc::SO_MARK,
            &0x5258_0003u32.to_ne_bytes(),
        ));
        let mut aux = Vec::new();
        for v in [TP_STATUS_VLAN_VALID, 1514, 1514] {
            aux.extend_from_slice(&v.to_ne_bytes());
        }
        for v in [0u16, 14, 42, 0x88a8] {
            aux.extend_from_slice(&v.to_ne_bytes());
        }
        c.extend(cmsg(SOL_PACKET, PACKET_AUXDATA, &aux));
        assert_eq!(
            parse_control(&c),
            Meta {
                time_ns: Some(5_000_000_007),
                mark: 0x5258_0003,
                len: Some(1514),
                // No TPID_VALID: 802.1Q.
                vlan: Some((0x8100, 42)),
            }
        );
        // A header longer than what is left stops the walk.
        let mut bad = c.clone();
        bad[0..8].copy_from_slice(&1000u64.to_ne_bytes());
        assert_eq!(parse_control(&bad), Meta::default());
    }
}
