//! The Linux backend: the driver's ABI, served in this process on the machine's real
//! interfaces. Each handle is the driver's handle: `BIND` picks an interface, a write's
//! frames go out through AF_PACKET (Tx) or, marked, through AF_PACKET and an egress tcx
//! program that redirects them to the same interface's receive path (Rx); a capture is an
//! AF_PACKET socket whose records carry the direction and the injected flag as the driver's
//! do. Everything above (pcap files, filters, pacing, JSON) is the same for all backends.
//!
//! Needs root, or CAP_NET_RAW (sockets), CAP_NET_ADMIN (marks, promiscuous mode, links) and
//! CAP_BPF (the Rx program). The program is attached with a tcx link that dies with the
//! process: nothing stays attached after the tool exits, however it exits.

pub mod ebpf;
pub mod netlink;
pub mod packet;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use ndis_sys::*;
use rxinject_abi::capture::{self as cap, CaptureConfig, CaptureStats, FilterVerdict, RecordHeader};
use rxinject_abi::{self as abi, Pod};

use crate::{Backend, Channel, Error, Reply};

/// The capabilities an operation needs (capabilities(7) numbers), for the error that says
/// which is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    NetAdmin = 12,
    NetRaw = 13,
    Bpf = 39,
}

impl Capability {
    fn name(self) -> &'static str {
        match self {
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::NetRaw => "CAP_NET_RAW",
            Capability::Bpf => "CAP_BPF",
        }
    }
}

/// This process's effective capabilities (`CapEff` of /proc/self/status).
fn effective() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// The error for `what` failing with `e`: a permission error names the capabilities missing
/// of `needs`.
fn os_error(what: &str, e: io::Error, needs: &[Capability]) -> Error {
    if e.raw_os_error() == Some(libc::EPERM) || e.kind() == io::ErrorKind::PermissionDenied {
        let have = effective();
        let missing: Vec<&str> = needs
            .iter()
            .filter(|c| have & (1u64 << (**c as u32)) == 0)
            .map(|c| c.name())
            .collect();
        let all = needs.iter().map(|c| c.name()).collect::<Vec<_>>().join(" + ");
        let lacking = if missing.is_empty() {
            "this process has them: a security module (or a user namespace) refused it".to_string()
        } else {
            format!("this process lacks {}", missing.join(" and "))
        };
        return Error::Unsupported(format!(
            "{what}: permission denied: this needs root, or {all}; {lacking}"
        ));
    }
    Error::Io {
        what: what.into(),
        error: e,
    }
}

/// The machine's Ethernet interfaces, as the driver's adapters.
pub fn adapters() -> Result<Vec<netlink::Link>, Error> {
    let all = netlink::links().map_err(|e| os_error("listing interfaces (netlink)", e, &[]))?;
    Ok(all
        .into_iter()
        .filter(|l| l.kind == netlink::ARPHRD_ETHER)
        .collect())
}

/// A companion interface (`rxinject link`): what is sent on `name` arrives on `target` as
/// received traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Companion {
    pub name: String,
    pub index: u32,
    /// The veth's other end, whose ingress redirects (`rxp<target index>`).
    pub peer: String,
    pub target: netlink::Link,
}

/// The peer of `target`'s companion.
fn peer_name(target: u32) -> String {
    format!("rxp{target}")
}

fn find(name: &str) -> Result<netlink::Link, Error> {
    let all = netlink::links().map_err(|e| os_error("listing interfaces (netlink)", e, &[]))?;
    let n = name.trim();
    match all
        .iter()
        .find(|l| l.name == n || n.parse::<u32>().ok() == Some(l.index))
    {
        Some(l) => Ok(l.clone()),
        None => Err(Error::AdapterNotFound {
            name: n.into(),
            available: all
                .iter()
                .filter(|l| l.kind == netlink::ARPHRD_ETHER)
                .map(|l| format!("{} (index {})", l.name, l.index))
                .collect(),
        }),
    }
}

/// Creates companion `name` (default `rx-TARGET`) of interface `target`: a veth pair whose
/// far end's tc ingress sends every frame to `target`'s receive path, with `target`'s Rx
/// mark. It stays until [`unlink`] (or until `target` goes): no process keeps it.
pub fn link(target: &str, name: Option<&str>) -> Result<Companion, Error> {
    let t = find(target)?;
    if t.kind != netlink::ARPHRD_ETHER {
        return Err(Error::Unsupported(format!(
            "{} is not an Ethernet interface",
            t.name
        )));
    }
    let name = match name {
        Some(n) => n.to_string(),
        None => format!("rx-{}", t.name).chars().take(15).collect(),
    };
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
        return Err(Error::Unsupported(format!(
            "{name:?}: an interface name is 1 to 15 bytes, without '/' or spaces"
        )));
    }
    let peer = peer_name(t.index);
    let admin = [Capability::NetAdmin];
    netlink::add_veth(&name, &peer)
        .map_err(|e| os_error(&format!("creating the veth pair {name} / {peer}"), e, &admin))?;
    let made = (|| {
        let all = netlink::links().map_err(|e| os_error("listing interfaces (netlink)", e, &[]))?;
        let index_of = |n: &str| all.iter().find(|l| l.name == n).map(|l| l.index);
        let (Some(index), Some(peer_index)) = (index_of(&name), index_of(&peer)) else {
            return Err(Error::Unsupported(format!(
                "{name} / {peer}: created, then not found"
            )));
        };
        let needs = [Capability::NetAdmin, Capability::Bpf];
        let prog = ebpf::load(&ebpf::redirect_to_ingress(t.index), "rxinject_link", 0)
            .map_err(|e| os_error("loading the companion's program (bpf)", e, &needs))?;
        netlink::add_clsact(peer_index)
            .map_err(|e| os_error(&format!("adding clsact to {peer}"), e, &admin))?;
        netlink::add_bpf_ingress(peer_index, &prog, "rxinject-link")
            .map_err(|e| os_error(&format!("attaching the program to {peer}'s ingress"), e, &admin))?;
        for i in [peer_index, index] {
            netlink::set_up(i).map_err(|e| os_error("setting the pair up", e, &admin))?;
        }
        Ok(index)
    })();
    match made {
        Ok(index) => Ok(Companion {
            name,
            index,
            peer,
            target: t,
        }),
        Err(e) => {
            // Nothing half made stays.
            if let Ok(l) = find(&name) {
                let _ = netlink::delete(l.index);
            }
            Err(e)
        }
    }
}

/// Removes companion `name` (its veth pair, and with it the program). Refuses an interface
/// that is not an rxinject companion.
pub fn unlink(name: &str) -> Result<String, Error> {
    let l = find(name)?;
    let all = netlink::links().map_err(|e| os_error("listing interfaces (netlink)", e, &[]))?;
    let ours = l
        .peer
        .and_then(|p| all.iter().find(|x| x.index == p))
        .is_some_and(|p| p.name.starts_with("rxp"));
    if !ours {
        return Err(Error::Unsupported(format!(
            "{} is not an rxinject companion (made by `rxinject link`)",
            l.name
        )));
    }
    netlink::delete(l.index)
        .map_err(|e| os_error(&format!("deleting {}", l.name), e, &[Capability::NetAdmin]))?;
    Ok(l.name)
}

/// The backend: a monotonic clock, and a channel per handle.
pub(crate) struct LinuxBackend {
    epoch: Instant,
}

impl LinuxBackend {
    pub(crate) fn new() -> LinuxBackend {
        LinuxBackend {
            epoch: Instant::now(),
        }
    }
}

impl Backend for LinuxBackend {
    fn open(&self) -> Result<Box<dyn Channel>, Error> {
        Ok(Box::new(LinuxChannel(RefCell::new(State::new()))))
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn sleep_until(&self, t: Duration) {
        let now = self.now();
        if t > now {
            std::thread::sleep(t - now);
        }
    }
}

/// The Rx path of a bound interface: the marked socket and the egress program's link
/// (detached when dropped).
enum RxPath {
    /// The marked socket, and the egress program's link (detached when dropped).
    Tcx { socket: OwnedFd, _link: OwnedFd },
    /// XDP live frames (`RXINJECT_LINUX_RX=xdp`).
    Live(ebpf::LiveRx),
}

/// The environment variable that picks the Rx mechanism: `tcx` (the default) or `xdp`.
pub const RX_PATH_ENV: &str = "RXINJECT_LINUX_RX";

struct Bound {
    link: netlink::Link,
    tx: OwnedFd,
    rx: Option<RxPath>,
    /// Reads the interface's drop counters around each run (none: not counted).
    stats: Option<netlink::LinkReader>,
}

struct Capture {
    if_index: u32,
    socket: OwnedFd,
    settings: cap::Settings,
    receiver: packet::Receiver,
    /// Encoded records, oldest first, and their bytes.
    queue: VecDeque<Vec<u8>>,
    queued: usize,
    accepted: u64,
    captured: u64,
    dropped: u64,
    reads: u64,
    promiscuous: bool,
}

struct State {
    bound: Option<Bound>,
    rx: bool,
    counters: abi::HandleCounters,
    filter: Vec<rxinject_bpf::Insn>,
    capture: Option<Capture>,
    /// Promiscuous mode asked for (`OID_GEN_CURRENT_PACKET_FILTER`) before a capture.
    promiscuous: bool,
}

fn reply(status: NTSTATUS, data: Vec<u8>) -> Reply {
    Reply {
        status,
        information: data.len(),
        data,
    }
}

fn status(s: NTSTATUS) -> Reply {
    reply(s, Vec::new())
}

/// An output of `T` if `len` holds it.
fn out<T: Pod>(v: &T, len: usize) -> Reply {
    if len < std::mem::size_of::<T>() {
        status(STATUS_BUFFER_TOO_SMALL)
    } else {
        reply(STATUS_SUCCESS, v.to_vec())
    }
}

fn utf16_into(dst: &mut [u16], s: &str) -> u16 {
    let mut n = 0;
    for (d, u) in dst.iter_mut().zip(s.encode_utf16()) {
        *d = u;
        n += 1;
    }
    n as u16
}

fn program(input: &[u8]) -> Vec<rxinject_bpf::Insn> {
    input
        .chunks_exact(8)
        .map(|c| rxinject_bpf::Insn::from_bytes(c.try_into().unwrap()))
        .collect()
}

impl State {
    fn new() -> State {
        State {
            bound: None,
            rx: false,
            counters: abi::HandleCounters::default(),
            filter: Vec::new(),
            capture: None,
            promiscuous: false,
        }
    }

    fn ioctl(&mut self, code: u32, input: &[u8], len: usize) -> Result<Reply, Error> {
        Ok(match code {
            abi::IOCTL_RXINJECT_GET_VERSION => {
                let (major, minor, patch) = abi::DRIVER_VERSION;
                let v = abi::VersionInfo {
                    abi_version: abi::ABI_VERSION,
                    driver_version: u32::from(major) << 24 | u32::from(minor) << 16 | u32::from(patch),
                    max_write_bytes: abi::MAX_WRITE_BYTES,
                    max_frames_per_write: abi::MAX_FRAMES_PER_WRITE,
                };
                out(&v, len)
            }
            abi::IOCTL_RXINJECT_LIST_ADAPTERS => self.list(len)?,
            abi::IOCTL_RXINJECT_BIND => self.bind(input)?,
            abi::IOCTL_RXINJECT_SET_DIRECTION => match abi::SetDirection::read_from(input) {
                Some(d) if d.direction == abi::DIRECTION_RX || d.direction == abi::DIRECTION_TX => {
                    self.rx = d.direction == abi::DIRECTION_RX;
                    status(STATUS_SUCCESS)
                }
                _ => status(STATUS_INVALID_PARAMETER),
            },
            abi::IOCTL_RXINJECT_GET_COUNTERS => {
                let c = abi::Counters {
                    flags: if self.bound.is_some() {
                        abi::COUNTERS_BOUND | abi::COUNTERS_ADAPTER_PRESENT
                    } else {
                        0
                    },
                    if_index: self.bound.as_ref().map_or(0, |b| b.link.index),
                    handle: self.counters,
                    adapter: abi::AdapterCounters::default(),
                };
                out(&c, len)
            }
            abi::IOCTL_RXINJECT_CHECK_FILTER => {
                let prog = program(input);
                let v = match (input.len() % 8, rxinject_bpf::validate(&prog)) {
                    (0, Ok(())) => FilterVerdict {
                        error: cap::FILTER_OK,
                        instruction: 0,
                    },
                    (0, Err(e)) => FilterVerdict {
                        error: e.code(),
                        instruction: e.at().map_or(u32::MAX, |a| a as u32),
                    },
                    _ => FilterVerdict {
                        error: cap::FILTER_BAD_LENGTH,
                        instruction: u32::MAX,
                    },
                };
                out(&v, len)
            }
            abi::IOCTL_RXINJECT_SET_FILTER => {
                if self.bound.is_none() {
                    return Ok(status(STATUS_INVALID_DEVICE_STATE));
                }
                let prog = program(input);
                if !input.len().is_multiple_of(8)
                    || (!prog.is_empty() && rxinject_bpf::validate(&prog).is_err())
                {
                    return Ok(status(STATUS_INVALID_PARAMETER));
                }
                if let Some(c) = &mut self.capture {
                    packet::set_filter(&c.socket, &prog)
                        .map_err(|e| os_error("attaching the filter", e, &[]))?;
                    // As BIOCSETF: what waits was the old filter's.
                    c.queue.clear();
                    c.queued = 0;
                }
                self.filter = prog;
                status(STATUS_SUCCESS)
            }
            abi::IOCTL_RXINJECT_SET_CAPTURE => self.set_capture(input)?,
            abi::IOCTL_RXINJECT_STOP_CAPTURE => {
                self.capture = None;
                status(STATUS_SUCCESS)
            }
            abi::IOCTL_RXINJECT_GET_CAPTURE_STATS => {
                let s = match &mut self.capture {
                    Some(c) => {
                        c.drain();
                        CaptureStats {
                            seen: c.accepted,
                            accepted: c.accepted,
                            captured: c.captured,
                            dropped: c.dropped,
                            reads_completed: c.reads,
                            ring_bytes: c.settings.ring_bytes,
                            ring_used: c.queued.min(u32::MAX as usize) as u32,
                            records_queued: c.queue.len() as u32,
                            reads_pending: 0,
                            flags: cap::STATS_CAPTURING
                                | if self.filter.is_empty() {
                                    0
                                } else {
                                    cap::STATS_FILTERED
                                },
                            snaplen: c.settings.snaplen,
                        }
                    }
                    None => CaptureStats::default(),
                };
                out(&s, len)
            }
            abi::IOCTL_RXINJECT_OID_REQUEST => self.oid(input, len)?,
            _ => status(STATUS_INVALID_DEVICE_REQUEST),
        })
    }

    fn list(&self, len: usize) -> Result<Reply, Error> {
        let links = adapters()?;
        let header = std::mem::size_of::<abi::AdapterListHeader>();
        let entry = std::mem::size_of::<abi::AdapterEntry>();
        if len < header {
            return Ok(status(STATUS_BUFFER_TOO_SMALL));
        }
        let room = (len - header) / entry;
        let mut data = abi::AdapterListHeader {
            total: links.len() as u32,
            returned: links.len().min(room) as u32,
            entry_size: entry as u32,
            reserved: 0,
        }
        .to_vec();
        for l in links.iter().take(room) {
            let mut e = abi::AdapterEntry {
                if_index: l.index,
                // Running when the link is up (RFC 2863's up, or unknown while
                // administratively up, as a veth or a tap may say); else paused.
                state: if matches!(l.state(), "up" | "unknown (up)") {
                    abi::ADAPTER_STATE_RUNNING
                } else {
                    abi::ADAPTER_STATE_PAUSED
                },
                mtu: l.mtu,
                max_frame_size: l.mtu + 14,
                mac: l.mac,
                mac_len: 6,
                ..abi::AdapterEntry::ZERO
            };
            e.module_name_len = utf16_into(&mut e.module_name, &format!("linux:{}", l.name));
            e.friendly_name_len = utf16_into(&mut e.friendly_name, &l.name);
            data.extend_from_slice(&e.to_vec());
        }
        let st = if links.len() > room {
            STATUS_BUFFER_OVERFLOW
        } else {
            STATUS_SUCCESS
        };
        Ok(reply(st, data))
    }

    fn bind(&mut self, input: &[u8]) -> Result<Reply, Error> {
        let Some(req) = abi::BindRequest::read_from(input) else {
            return Ok(status(STATUS_INVALID_PARAMETER));
        };
        if !abi::abi_compatible(abi::ABI_VERSION, req.abi_version) {
            return Ok(status(STATUS_REVISION_MISMATCH));
        }
        let Some(link) = adapters()?.into_iter().find(|l| l.index == req.if_index) else {
            return Ok(status(STATUS_NOT_FOUND));
        };
        let tx = packet::injector(link.index, ebpf::mark(link.index, false)).map_err(|e| {
            os_error(
                &format!("opening a packet socket on {}", link.name),
                e,
                &[Capability::NetRaw],
            )
        })?;
        self.capture = None;
        self.bound = Some(Bound {
            link,
            tx,
            rx: None,
            stats: netlink::LinkReader::new().ok(),
        });
        Ok(status(STATUS_SUCCESS))
    }

    /// The Rx path of the bound interface, set up on first use.
    fn rx_path(&mut self) -> Result<&mut RxPath, Error> {
        let b = self.bound.as_mut().expect("bound");
        if b.rx.is_none() && std::env::var(RX_PATH_ENV).is_ok_and(|v| v == "xdp") {
            let live =
                ebpf::LiveRx::new(b.link.index, b.link.mtu + 18, abi::MAX_FRAMES_PER_WRITE).map_err(|e| {
                    os_error(
                        "loading the XDP live-frames program (bpf, Linux 5.18+)",
                        e,
                        &[Capability::NetAdmin, Capability::Bpf],
                    )
                })?;
            b.rx = Some(RxPath::Live(live));
        }
        if b.rx.is_none() {
            let name = b.link.name.clone();
            let needs = [Capability::NetAdmin, Capability::Bpf];
            let prog = ebpf::load(&ebpf::rx_redirect(), "rxinject_rx", ebpf::BPF_TCX_EGRESS)
                .map_err(|e| os_error("loading the Rx program (bpf)", e, &needs))?;
            let link = ebpf::attach(&prog, b.link.index, ebpf::BPF_TCX_EGRESS).map_err(|e| {
                os_error(
                    &format!("attaching the Rx program to {name} (tcx egress, Linux 6.6+)"),
                    e,
                    &needs,
                )
            })?;
            let socket = packet::injector(b.link.index, ebpf::mark(b.link.index, true)).map_err(|e| {
                os_error(
                    &format!("opening a packet socket on {name}"),
                    e,
                    &[Capability::NetRaw],
                )
            })?;
            b.rx = Some(RxPath::Tcx { socket, _link: link });
        }
        Ok(b.rx.as_mut().expect("just set"))
    }

    fn write(&mut self, data: &[u8]) -> Result<Reply, Error> {
        self.counters.writes += 1;
        let Some(b) = &self.bound else {
            self.counters.writes_failed += 1;
            return Ok(Reply {
                status: STATUS_INVALID_DEVICE_STATE,
                information: 0,
                data: Vec::new(),
            });
        };
        let (ifindex, max) = (b.link.index, b.link.mtu + 14);
        if let Err(e) = abi::write::parse(data, max) {
            self.counters.writes_failed += 1;
            let s = match e {
                abi::write::WriteError::FrameTooLong { .. }
                | abi::write::WriteError::FrameTooShort { .. }
                | abi::write::WriteError::TooManyFrames
                | abi::write::WriteError::TooManyBytes { .. } => STATUS_INVALID_BUFFER_SIZE,
                _ => STATUS_INVALID_PARAMETER,
            };
            return Ok(Reply {
                status: s,
                information: 0,
                data: Vec::new(),
            });
        }
        let frames: Vec<abi::write::Frame<'_>> = abi::write::frames(data).collect();
        let mut accepted = 0usize;
        let mut first_failure: Option<NTSTATUS> = None;
        let mut at = 0;
        let default_rx = self.rx;
        let rx = |f: &abi::write::Frame<'_>| match f.direction {
            abi::write::DIR_RX => true,
            abi::write::DIR_TX => false,
            _ => default_rx,
        };
        while at < frames.len() {
            // A run of frames of one direction, sent as one batch.
            let dir = rx(&frames[at]);
            let end = frames[at..]
                .iter()
                .position(|f| rx(f) != dir)
                .map_or(frames.len(), |n| at + n);
            let run: Vec<&[u8]> = frames[at..end].iter().map(|f| f.data).collect();
            // What the kernel drops after taking a frame (a full backlog on the way up, the
            // interface going down) shows in the interface's counters: read around the run.
            let dropped = |l: &netlink::Link| if dir { l.rx_dropped } else { l.tx_dropped };
            let counters = |b: &mut Option<Bound>| b.as_mut()?.stats.as_mut()?.link(ifindex).ok();
            let before = counters(&mut self.bound);
            let mut refused = |_, e: io::Error| {
                first_failure.get_or_insert(errno_status(&e));
            };
            let mut sent = if dir {
                match self.rx_path()? {
                    RxPath::Tcx { socket, .. } => packet::send_all(socket, ifindex, &run, &mut refused),
                    // A run on an interface that is down would still go up its stack:
                    // refused, as AF_PACKET refuses (ENETDOWN).
                    RxPath::Live(_) if before.as_ref().is_some_and(|l| !l.up) => {
                        refused(0, io::Error::from_raw_os_error(libc::ENETDOWN));
                        0
                    }
                    // One run: a write holds at most MAX_FRAMES_PER_WRITE, the map's slots.
                    RxPath::Live(live) => match live.send(&run) {
                        Ok(n) if n == run.len() => n,
                        Ok(n) => {
                            // Longer than the kernel's frame can be made: jumbo frames.
                            first_failure.get_or_insert(STATUS_INVALID_BUFFER_SIZE);
                            n
                        }
                        Err(e) => {
                            refused(0, e);
                            0
                        }
                    },
                }
            } else {
                packet::send_all(
                    &self.bound.as_ref().expect("bound").tx,
                    ifindex,
                    &run,
                    &mut refused,
                )
            };
            if let (Some(b), Some(a)) = (before, counters(&mut self.bound)) {
                let lost = (dropped(&a).saturating_sub(dropped(&b)) as usize).min(sent);
                if lost > 0 {
                    sent -= lost;
                    first_failure.get_or_insert(STATUS_INSUFFICIENT_RESOURCES);
                }
            }
            accepted += sent;
            let bytes: usize = run.iter().map(|f| f.len()).sum();
            if dir {
                self.counters.rx_frames += sent as u64;
            } else {
                self.counters.tx_frames += sent as u64;
            }
            self.counters.bytes_accepted += bytes as u64;
            at = end;
        }
        self.counters.frames_accepted += accepted as u64;
        let st = first_failure.unwrap_or(STATUS_SUCCESS);
        if st.is_success() {
            self.counters.writes_succeeded += 1;
        } else {
            self.counters.writes_failed += 1;
        }
        Ok(Reply {
            status: st,
            information: accepted,
            data: Vec::new(),
        })
    }

    fn set_capture(&mut self, input: &[u8]) -> Result<Reply, Error> {
        let Some(b) = &self.bound else {
            return Ok(status(STATUS_INVALID_DEVICE_STATE));
        };
        let Some(settings) = CaptureConfig::read_from(input).and_then(|c| c.settings().ok()) else {
            return Ok(status(STATUS_INVALID_PARAMETER));
        };
        let socket = packet::capturer(b.link.index, settings.ring_bytes).map_err(|e| {
            os_error(
                &format!("opening a capture socket on {}", b.link.name),
                e,
                &[Capability::NetRaw],
            )
        })?;
        packet::set_filter(&socket, &self.filter).map_err(|e| os_error("attaching the filter", e, &[]))?;
        if self.promiscuous {
            packet::promiscuous(&socket, b.link.index)
                .map_err(|e| os_error("promiscuous mode", e, &[Capability::NetRaw]))?;
        }
        self.capture = Some(Capture {
            if_index: b.link.index,
            socket,
            settings,
            receiver: packet::Receiver::new(64, settings.snaplen as usize),
            queue: VecDeque::new(),
            queued: 0,
            accepted: 0,
            captured: 0,
            dropped: 0,
            reads: 0,
            promiscuous: self.promiscuous,
        });
        Ok(status(STATUS_SUCCESS))
    }

    fn oid(&mut self, input: &[u8], len: usize) -> Result<Reply, Error> {
        let Some(req) = abi::OidRequest::read_from(input) else {
            return Ok(status(STATUS_INVALID_PARAMETER));
        };
        let data = &input[std::mem::size_of::<abi::OidRequest>().min(input.len())..];
        let mut result = abi::OidResult::default();
        if req.oid == OID_GEN_CURRENT_PACKET_FILTER && req.kind == abi::OID_SET && data.len() >= 4 {
            let types = u32::from_le_bytes(data[..4].try_into().unwrap());
            self.promiscuous = types & NDIS_PACKET_TYPE_PROMISCUOUS != 0;
            if let (Some(c), Some(b)) = (&mut self.capture, &self.bound)
                && self.promiscuous
                && !c.promiscuous
            {
                packet::promiscuous(&c.socket, b.link.index)
                    .map_err(|e| os_error("promiscuous mode", e, &[Capability::NetRaw]))?;
                c.promiscuous = true;
            }
            result.bytes = 4;
        } else {
            result.status = NDIS_STATUS_NOT_SUPPORTED.0 as u32;
        }
        Ok(out(&result, len))
    }

    fn read(&mut self, len: usize) -> Result<Reply, Error> {
        let Some(c) = &mut self.capture else {
            return Ok(status(STATUS_INVALID_DEVICE_STATE));
        };
        if len < cap::min_read_len(c.settings.snaplen) {
            return Ok(status(STATUS_INVALID_BUFFER_SIZE));
        }
        let s = c.settings;
        let deadline =
            (s.timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(u64::from(s.timeout_ms)));
        let threshold = (s.min_bytes as usize).min(len);
        loop {
            c.drain();
            let fits = c.fitting(len);
            let full = c.queued >= s.ring_bytes as usize;
            if fits > 0 && (fits >= threshold || s.flags & cap::CAPTURE_IMMEDIATE != 0 || full) {
                break;
            }
            if s.flags & cap::CAPTURE_NONBLOCK != 0 {
                break;
            }
            let wait = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    (d - now).as_millis().clamp(1, 100) as i32
                }
                None => 100,
            };
            let mut p = libc::pollfd {
                fd: c.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the call.
            unsafe { libc::poll(&raw mut p, 1, wait) };
        }
        let mut data = Vec::with_capacity(c.fitting(len));
        while let Some(r) = c.queue.front() {
            if data.len() + r.len() > len {
                break;
            }
            let r = c.queue.pop_front().expect("front");
            c.queued -= r.len();
            data.extend_from_slice(&r);
        }
        c.reads += 1;
        Ok(reply(STATUS_SUCCESS, data))
    }
}

/// The NT status of a send refused with `e`.
fn errno_status(e: &io::Error) -> NTSTATUS {
    match e.raw_os_error() {
        Some(libc::EMSGSIZE) => STATUS_INVALID_BUFFER_SIZE,
        Some(libc::ENETDOWN) | Some(libc::ENXIO) => NTSTATUS::from(NDIS_STATUS_MEDIA_DISCONNECTED),
        Some(libc::ENOBUFS) | Some(libc::ENOMEM) => STATUS_INSUFFICIENT_RESOURCES,
        Some(libc::ENODEV) => STATUS_NO_SUCH_DEVICE,
        _ => STATUS_UNSUCCESSFUL,
    }
}

impl Capture {
    /// Takes what waits on the socket into the queue, as records (what the queue has no
    /// room for, at the ring's size, is dropped and counted).
    fn drain(&mut self) {
        let s = self.settings;
        let (_, kernel_drops) = packet::statistics(&self.socket);
        self.dropped += kernel_drops;
        loop {
            let mut got = Vec::new();
            match self
                .receiver
                .receive(&self.socket, s.snaplen as usize, |r| got.push(r))
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            for r in got {
                self.accepted += 1;
                let inbound = !r.outgoing;
                let want = if inbound {
                    cap::CAPTURE_IN
                } else {
                    cap::CAPTURE_OUT
                };
                let injected = ebpf::injected(r.mark, self.if_index, inbound);
                // (A handle's own injections cannot be told from another's on the same
                // interface: EXCLUDE_OWN leaves out both.)
                let exclude = cap::CAPTURE_EXCLUDE_INJECTED | cap::CAPTURE_EXCLUDE_OWN;
                if s.directions & want == 0 || (injected && s.flags & exclude != 0) {
                    continue;
                }
                let rec = record(&r, self.if_index, inbound, injected);
                if self.queued + rec.len() > s.ring_bytes as usize {
                    self.dropped += 1;
                    continue;
                }
                self.queued += rec.len();
                self.captured += 1;
                self.queue.push_back(rec);
            }
        }
    }

    /// Bytes of the whole records at the queue's front that fit in `len`.
    fn fitting(&self, len: usize) -> usize {
        let mut n = 0;
        for r in &self.queue {
            if n + r.len() > len {
                break;
            }
            n += r.len();
        }
        n
    }
}

/// The driver's record of frame `r`.
fn record(r: &packet::Received, if_index: u32, inbound: bool, injected: bool) -> Vec<u8> {
    let flags = if inbound {
        cap::RECORD_INBOUND
    } else {
        cap::RECORD_OUTBOUND
    } | if injected { cap::RECORD_INJECTED } else { 0 }
        | if r.vlan_restored {
            cap::RECORD_VLAN_RESTORED
        } else {
            0
        };
    let h = RecordHeader {
        timestamp: (r.time_ns / 100) as i64 + crate::pcap::FILETIME_UNIX_EPOCH,
        caplen: r.data.len() as u32,
        len: r.len,
        if_index,
        flags,
        header_len: cap::RECORD_HEADER_LEN as u16,
    };
    let mut v = h.to_vec();
    v.extend_from_slice(&r.data);
    v.resize(cap::record_len(r.data.len()), 0);
    v
}

/// One handle.
struct LinuxChannel(RefCell<State>);

impl Channel for LinuxChannel {
    fn device_io_control(&self, code: u32, input: &[u8], output_len: usize) -> Result<Reply, Error> {
        self.0.borrow_mut().ioctl(code, input, output_len)
    }

    fn write(&self, data: &[u8]) -> Result<Reply, Error> {
        self.0.borrow_mut().write(data)
    }

    fn read(&self, len: usize) -> Result<Reply, Error> {
        self.0.borrow_mut().read(len)
    }
}
