//! An open adapter: the Packet API's semantics over one bound handle of rxinject's device.
//!
//! - **Capture** starts at open, as Npcap's does (every frame of the adapter, both
//!   directions). `PacketSetBuff`, `PacketSetMinToCopy`, `PacketSetReadTimeout` and
//!   `PacketSetLoopbackBehavior` reconfigure it (`IOCTL_RXINJECT_SET_CAPTURE`: ring size,
//!   `min_bytes`, `timeout_ms` or non-blocking for -1, excluding this handle's own frames);
//!   `PacketSetBpf` installs the program (its return value caps the captured length, which is
//!   how libpcap sets the snapshot length).
//! - **The read event.** One read is kept outstanding, its completion setting the adapter's
//!   event (an OVERLAPPED's event): the event is set when `min_bytes` of records wait, or the
//!   read timeout passed, so a program waiting on `PacketGetReadEvent` wakes when there is
//!   something to read (Npcap's driver sets it for data only; here a timeout wakes it too,
//!   and the read that follows returns nothing, as a timeout does). `PacketReceivePacket`
//!   takes what the read returned, issues the next, and converts rxinject's records into
//!   `bpf_hdr` records aligned as `Packet_WORDALIGN` says. An event set by somebody else
//!   (`pcap_breakloop`) ends a waiting `PacketReceivePacket` with nothing.
//! - **Sending** goes through rxinject's batched writes, up the receive path if the adapter
//!   is listed in `SendToRxAdapters` or the handle asked for `PACKET_MODE_SENDTORX`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rxinject_abi::capture::{self as cap, CaptureConfig, CaptureStats};
use rxinject_abi::write::{Batch, DIR_RX, DIR_TX};
use rxinject_abi::{self as abi, Pod};

use crate::device::{self, Device, Reply};
use crate::layout::{self, BPF_HDR_LEN, BpfHdr, BpfInsn, BpfStat, DUMP_BPF_HDR_LEN, Timeval};
use crate::os::{self, Event, err};

/// 100 ns units from 1601-01-01 to 1970-01-01.
const FILETIME_UNIX_EPOCH: i64 = 116_444_736_000_000_000;
const STATUS_CANCELLED: i32 = 0xC000_0120u32 as i32;

/// Npcap's defaults at open: 16000 bytes before a read completes, no read timeout.
pub const DEFAULT_MIN_TO_COPY: u32 = 16000;

/// An adapter rxinject is attached to, as the Packet API names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub if_index: u32,
    /// `{GUID}`, upper case as Windows writes it.
    pub guid: String,
    /// `\Device\NPF_{GUID}`.
    pub name: String,
    pub description: String,
    pub mac: [u8; 6],
    pub max_frame: u32,
}

/// The adapter GUID in a filter module's name (`{adapter}-{filter}-0000`), or in a name the
/// Packet API is given (`\Device\NPF_{GUID}`, `NPF_{GUID}`, `{GUID}`).
pub fn guid_of(name: &str) -> Option<String> {
    let start = name.find('{')?;
    let end = start + name[start..].find('}')?;
    let g = &name[start..=end];
    (g.len() == 38).then(|| g.to_ascii_uppercase())
}

fn utf16(units: &[u16], len: u16) -> String {
    String::from_utf16_lossy(&units[..usize::from(len).min(units.len())])
}

/// The adapters of an open device.
fn list_on(dev: &dyn Device) -> Result<Vec<Listed>, u32> {
    let header = std::mem::size_of::<abi::AdapterListHeader>();
    let entry = std::mem::size_of::<abi::AdapterEntry>();
    let mut room = 16usize;
    loop {
        let r = dev.ioctl(abi::IOCTL_RXINJECT_LIST_ADAPTERS, &[], header + room * entry)?;
        let Some(h) = abi::AdapterListHeader::read_from(&r.data).filter(|_| r.ok()) else {
            return Err(os::win32_error(r.status));
        };
        if h.total as usize > room && room < 4096 {
            room = (h.total as usize).min(4096);
            continue;
        }
        return Ok(r
            .data
            .get(header..)
            .unwrap_or(&[])
            .chunks_exact(entry)
            .filter_map(abi::AdapterEntry::read_from)
            .filter_map(|e| {
                let module = utf16(&e.module_name, e.module_name_len);
                let guid = guid_of(&module)?;
                Some(Listed {
                    if_index: e.if_index,
                    name: format!("\\Device\\NPF_{guid}"),
                    guid,
                    description: utf16(&e.friendly_name, e.friendly_name_len),
                    mac: e.mac,
                    max_frame: e.max_frame_size,
                })
            })
            .collect());
    }
}

/// The adapters rxinject is attached to.
pub fn list() -> Result<Vec<Listed>, u32> {
    let dev = device::open()?;
    list_on(&*dev)
}

/// The driver's version (`major << 24 | minor << 16 | patch`) and ABI.
pub fn driver_version() -> Result<(u32, u32), u32> {
    let dev = device::open()?;
    version_on(&*dev)
}

fn version_on(dev: &dyn Device) -> Result<(u32, u32), u32> {
    let r = dev.ioctl(
        abi::IOCTL_RXINJECT_GET_VERSION,
        &[],
        std::mem::size_of::<abi::VersionInfo>(),
    )?;
    let v = abi::VersionInfo::read_from(&r.data).ok_or(os::win32_error(r.status))?;
    Ok((v.driver_version, v.abi_version))
}

/// What can change after open.
struct State {
    cfg: CaptureConfig,
    /// `PACKET_MODE_NANO`.
    nano: bool,
    /// Frames sent go up the receive path.
    send_to_rx: bool,
    /// Records converted for the caller and not delivered yet (`bpf_hdr` form), and where
    /// each starts.
    conv: Vec<u8>,
    starts: Vec<usize>,
    next: usize,
    /// Bytes of the read kept outstanding.
    read_len: usize,
}

/// An open adapter.
pub struct Inner {
    dev: Box<dyn Device>,
    pub event: Event,
    pub listed: Listed,
    pub version: u32,
    st: Mutex<State>,
    closing: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    /// Opens the adapter `name` designates and starts capturing on it.
    pub fn open(name: &str) -> Result<Arc<Inner>, u32> {
        let guid = guid_of(name).ok_or(err::ERROR_BAD_UNIT)?;
        let dev = device::open()?;
        let (version, abi_version) = version_on(&*dev)?;
        if !abi::abi_compatible(abi_version, abi::ABI_VERSION) {
            return Err(err::ERROR_REVISION_MISMATCH);
        }
        let listed = list_on(&*dev)?
            .into_iter()
            .find(|l| l.guid == guid)
            .ok_or(err::ERROR_BAD_UNIT)?;
        let bind = abi::BindRequest {
            abi_version: abi::ABI_VERSION,
            if_index: listed.if_index,
        };
        let r = dev.ioctl(abi::IOCTL_RXINJECT_BIND, &bind.to_vec(), 0)?;
        if !r.ok() {
            return Err(os::win32_error(r.status));
        }
        let cfg = CaptureConfig {
            ring_bytes: cap::DEFAULT_RING_BYTES,
            min_bytes: DEFAULT_MIN_TO_COPY,
            timeout_ms: 0,
            ..CaptureConfig::default()
        };
        let event = Event::new().ok_or(err::ERROR_NOT_ENOUGH_MEMORY)?;
        let send_to_rx = os::send_to_rx_listed(&listed.guid);
        let inner = Inner {
            dev,
            event,
            listed,
            version,
            st: Mutex::new(State {
                cfg,
                nano: false,
                send_to_rx,
                conv: Vec::new(),
                starts: Vec::new(),
                next: 0,
                read_len: cap::min_read_len(0),
            }),
            closing: AtomicBool::new(false),
        };
        inner.apply(&cfg)?;
        // From now on the event tells when data is waiting, whether or not anybody reads.
        {
            let st = lock(&inner.st);
            inner.ensure_read(&st)?;
        }
        Ok(Arc::new(inner))
    }

    fn apply(&self, cfg: &CaptureConfig) -> Result<(), u32> {
        let r = self
            .dev
            .ioctl(abi::IOCTL_RXINJECT_SET_CAPTURE, &cfg.to_vec(), 0)?;
        if r.ok() {
            Ok(())
        } else {
            Err(os::win32_error(r.status))
        }
    }

    /// Changes the capture settings with `f` (kept only if the driver takes them). The read
    /// outstanding was issued under the old settings (its timeout runs from its issue): it is
    /// cancelled, what it returned kept for the caller, and a read issued under the new ones.
    fn reconfigure(&self, f: impl FnOnce(&mut CaptureConfig)) -> Result<(), u32> {
        let mut st = lock(&self.st);
        let mut cfg = st.cfg;
        f(&mut cfg);
        self.apply(&cfg)?;
        st.cfg = cfg;
        st.read_len = st.read_len.max(cap::min_read_len(cfg.snaplen));
        if let Some(r) = self.cancel_outstanding() {
            convert(&mut st, &r);
        }
        self.event.reset();
        if st.next < st.starts.len() {
            self.event.set();
        }
        self.ensure_read(&st)
    }

    /// Cancels the outstanding read and waits for it; its result, if one was outstanding.
    fn cancel_outstanding(&self) -> Option<Reply> {
        while self.dev.read_outstanding() {
            self.dev.cancel_read();
            self.event.reset();
            if let Some(r) = self.dev.take_read() {
                return Some(r);
            }
            self.event.wait(None);
            if let Some(r) = self.dev.take_read() {
                return Some(r);
            }
        }
        None
    }

    /// `PacketSetBuff`: the kernel buffer (rxinject's ring, within its limits).
    pub fn set_buff(&self, bytes: i32) -> Result<(), u32> {
        if bytes <= 0 {
            return Err(err::ERROR_INVALID_PARAMETER);
        }
        let b = (bytes as u32).clamp(cap::MIN_RING_BYTES, cap::MAX_RING_BYTES);
        self.reconfigure(|c| c.ring_bytes = b)
    }

    /// `PacketSetMinToCopy`.
    pub fn set_min_to_copy(&self, bytes: i32) -> Result<(), u32> {
        if bytes < 0 {
            return Err(err::ERROR_INVALID_PARAMETER);
        }
        self.reconfigure(|c| c.min_bytes = bytes as u32)
    }

    /// `PacketSetReadTimeout`: -1 returns at once, 0 waits for data, else milliseconds.
    pub fn set_read_timeout(&self, ms: i32) -> Result<(), u32> {
        if ms < -1 {
            return Err(err::ERROR_INVALID_PARAMETER);
        }
        self.reconfigure(|c| {
            if ms == -1 {
                c.flags |= cap::CAPTURE_NONBLOCK;
                c.timeout_ms = 0;
            } else {
                c.flags &= !cap::CAPTURE_NONBLOCK;
                c.timeout_ms = ms as u32;
            }
        })
    }

    /// `PacketSetLoopbackBehavior`.
    pub fn set_loopback(&self, behaviour: u32) -> Result<(), u32> {
        let exclude = match behaviour {
            layout::NPF_DISABLE_LOOPBACK => true,
            layout::NPF_ENABLE_LOOPBACK => false,
            _ => return Err(err::ERROR_INVALID_PARAMETER),
        };
        self.reconfigure(|c| {
            if exclude {
                c.flags |= cap::CAPTURE_EXCLUDE_OWN;
            } else {
                c.flags &= !cap::CAPTURE_EXCLUDE_OWN;
            }
        })
    }

    /// `PacketSetBpf`: installs `prog` (empty: none). What the old program let in is
    /// discarded, as Npcap does (libpcap does not filter again what a read returns): the
    /// driver empties its ring, and the DLL drops what it holds and what the outstanding read
    /// brings back (cancelled first). A program the driver refuses changes nothing.
    pub fn set_bpf(&self, prog: &[BpfInsn]) -> Result<(), u32> {
        let input: Vec<u8> = prog
            .iter()
            .flat_map(|i| {
                let mut b = [0u8; 8];
                b[..2].copy_from_slice(&i.code.to_le_bytes());
                b[2] = i.jt;
                b[3] = i.jf;
                b[4..].copy_from_slice(&i.k.to_le_bytes());
                b
            })
            .collect();
        let verdict_len = std::mem::size_of::<cap::FilterVerdict>();
        let v = self
            .dev
            .ioctl(abi::IOCTL_RXINJECT_CHECK_FILTER, &input, verdict_len)?;
        match cap::FilterVerdict::read_from(&v.data) {
            Some(f) if v.ok() && f.error == cap::FILTER_OK => {}
            Some(_) => return Err(err::ERROR_INVALID_PARAMETER),
            None => return Err(os::win32_error(v.status)),
        }
        let mut st = lock(&self.st);
        let _old_program = self.cancel_outstanding();
        let r = self.dev.ioctl(abi::IOCTL_RXINJECT_SET_FILTER, &input, 0)?;
        st.conv.clear();
        st.starts.clear();
        st.next = 0;
        self.event.reset();
        self.ensure_read(&st)?;
        if r.ok() {
            Ok(())
        } else {
            Err(os::win32_error(r.status))
        }
    }

    /// `PacketSetMode`.
    pub fn set_mode(&self, mode: i32) -> Result<(), u32> {
        use layout::mode::*;
        if mode & (STAT | MON | DUMP) != 0 || mode & !(SENDTORX | SENDTORX_CLEAR | NANO) != 0 {
            // Statistics-only, monitor and kernel-dump modes are not rxinject's.
            return Err(err::ERROR_NOT_SUPPORTED);
        }
        if mode & SENDTORX != 0 && mode & SENDTORX_CLEAR != 0 {
            return Err(err::ERROR_INVALID_PARAMETER);
        }
        let mut st = lock(&self.st);
        if mode & SENDTORX != 0 {
            st.send_to_rx = true;
        } else if mode & SENDTORX_CLEAR != 0 {
            st.send_to_rx = false;
        } else {
            // A capture mode (CAPT, optionally NANO): the timestamps' resolution.
            st.nano = mode & NANO != 0;
        }
        Ok(())
    }

    /// Whether frames sent go up the receive path.
    pub fn sends_to_rx(&self) -> bool {
        lock(&self.st).send_to_rx
    }

    /// The read timeout as `ADAPTER::ReadTimeOut` shows it.
    pub fn read_timeout(&self) -> i32 {
        let c = lock(&self.st).cfg;
        if c.flags & cap::CAPTURE_NONBLOCK != 0 {
            -1
        } else {
            c.timeout_ms as i32
        }
    }

    /// Keeps one read outstanding (its completion sets the event).
    fn ensure_read(&self, st: &State) -> Result<(), u32> {
        if self.dev.read_outstanding() || self.closing.load(Ordering::Acquire) {
            return Ok(());
        }
        self.dev.start_read(st.read_len, &self.event)
    }

    /// `PacketReceivePacket` into `out`: bytes of `bpf_hdr` records written.
    pub fn receive(&self, out: &mut [u8]) -> Result<usize, u32> {
        if out.len() < BPF_HDR_LEN {
            return Err(err::ERROR_INSUFFICIENT_BUFFER);
        }
        let mut waited = false;
        loop {
            if self.closing.load(Ordering::Acquire) {
                return Err(err::ERROR_OPERATION_ABORTED);
            }
            let mut st = lock(&self.st);
            st.read_len = st.read_len.max(out.len().min(16 << 20));
            if st.next < st.starts.len() {
                let n = deliver(&mut st, out);
                if st.next < st.starts.len() {
                    self.event.set();
                }
                return Ok(n);
            }
            if let Some(r) = self.dev.take_read() {
                self.event.reset();
                convert(&mut st, &r);
                self.ensure_read(&st)?;
                if !r.ok() && r.status != STATUS_CANCELLED {
                    return Err(os::win32_error(r.status));
                }
                if st.starts.is_empty() {
                    // A timeout (or a cancelled read) with nothing.
                    return Ok(0);
                }
                continue;
            }
            if waited {
                // Set by somebody else (pcap_breakloop): back with nothing.
                self.event.reset();
                return Ok(0);
            }
            if !self.dev.read_outstanding() {
                self.event.reset();
                self.ensure_read(&st)?;
            }
            drop(st);
            // A close that set the event before the reset above set `closing` first.
            if self.closing.load(Ordering::Acquire) {
                return Err(err::ERROR_OPERATION_ABORTED);
            }
            self.event.wait(None);
            waited = true;
        }
    }

    /// `PacketSendPacket`: `frame`, `repeat` times.
    pub fn send(&self, frame: &[u8], repeat: u32) -> Result<(), u32> {
        let dir = if self.sends_to_rx() { DIR_RX } else { DIR_TX };
        self.check_frame(frame)?;
        let mut left = repeat.max(1);
        let mut batch = Batch::new();
        while left > 0 {
            batch.clear();
            while left > 0 && batch.push(dir, 0, frame) {
                left -= 1;
            }
            if batch.is_empty() {
                return Err(err::ERROR_INVALID_PARAMETER);
            }
            self.write(&batch)?;
        }
        Ok(())
    }

    fn check_frame(&self, frame: &[u8]) -> Result<(), u32> {
        let tagged = frame.len() >= 18 && frame[12..14] == [0x81, 0x00];
        let max = self.listed.max_frame as usize + if tagged { 4 } else { 0 };
        if frame.len() < 14 || frame.len() > max {
            return Err(err::ERROR_INVALID_PARAMETER);
        }
        Ok(())
    }

    fn write(&self, batch: &Batch) -> Result<(), u32> {
        let r: Reply = self.dev.write(batch.as_bytes())?;
        if !r.ok() {
            return Err(os::win32_error(r.status));
        }
        if r.information != batch.frames() as usize {
            return Err(err::ERROR_GEN_FAILURE);
        }
        Ok(())
    }

    /// `PacketSendPackets`: a send queue of `dump_bpf_hdr` records. Returns the bytes of the
    /// queue sent, up to the first frame that could not be; with `sync`, frames wait for the
    /// gaps between their timestamps.
    pub fn send_queue(&self, queue: &[u8], sync: bool) -> (usize, Result<(), u32>) {
        let dir = if self.sends_to_rx() { DIR_RX } else { DIR_TX };
        let mut batch = Batch::new();
        let mut off = 0usize;
        let mut sent = 0usize;
        let start = std::time::Instant::now();
        let mut first_ts: Option<i64> = None;
        while off < queue.len() {
            let Some(h) = queue.get(off..off + DUMP_BPF_HDR_LEN) else {
                break;
            };
            let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            let (sec, usec, caplen) = (word(0) as i32, word(4) as i32, word(8) as usize);
            let Some(frame) = queue.get(off + DUMP_BPF_HDR_LEN..off + DUMP_BPF_HDR_LEN + caplen) else {
                break;
            };
            if let Err(e) = self.check_frame(frame) {
                if !batch.is_empty() && self.write(&batch).is_ok() {
                    sent = off;
                }
                return (sent, Err(e));
            }
            if sync {
                let ts = i64::from(sec) * 1_000_000 + i64::from(usec);
                let t0 = *first_ts.get_or_insert(ts);
                let due = std::time::Duration::from_micros((ts - t0).max(0) as u64);
                let now = start.elapsed();
                if due > now + std::time::Duration::from_millis(1) {
                    if !batch.is_empty() {
                        if let Err(e) = self.write(&batch) {
                            return (sent, Err(e));
                        }
                        batch.clear();
                        sent = off;
                    }
                    std::thread::sleep(due - now);
                }
            }
            if !batch.push(dir, 0, frame) {
                if let Err(e) = self.write(&batch) {
                    return (sent, Err(e));
                }
                sent = off;
                batch.clear();
                if !batch.push(dir, 0, frame) {
                    return (sent, Err(err::ERROR_INVALID_PARAMETER));
                }
            }
            off += DUMP_BPF_HDR_LEN + caplen;
        }
        if !batch.is_empty()
            && let Err(e) = self.write(&batch)
        {
            return (sent, Err(e));
        }
        sent = off;
        if off < queue.len() {
            // A record cut short.
            return (sent, Err(err::ERROR_INVALID_PARAMETER));
        }
        (sent, Ok(()))
    }

    /// `PacketRequest`: a query of `oid` into `data` (its length is the buffer's), or a set
    /// of `data`. Returns the bytes written or read; Err carries the Win32 error and, for a
    /// buffer too short, the bytes needed.
    pub fn oid(&self, set: bool, oid: u32, data: &mut [u8]) -> Result<u32, (u32, u32)> {
        let len = data.len().min(abi::MAX_OID_DATA as usize);
        let mut input = abi::OidRequest {
            oid,
            kind: if set { abi::OID_SET } else { abi::OID_QUERY },
            timeout_ms: 0,
            length: len as u32,
        }
        .to_vec();
        if set {
            input.extend_from_slice(&data[..len]);
        }
        let res_len = std::mem::size_of::<abi::OidResult>();
        let r = self
            .dev
            .ioctl(
                abi::IOCTL_RXINJECT_OID_REQUEST,
                &input,
                res_len + if set { 0 } else { len },
            )
            .map_err(|e| (e, 0))?;
        if !r.ok() {
            return Err((os::win32_error(r.status), 0));
        }
        let res = abi::OidResult::read_from(&r.data).ok_or((err::ERROR_GEN_FAILURE, 0))?;
        if res.status != 0 {
            return Err((os::ndis_error(res.status as i32), res.bytes_needed));
        }
        if !set {
            let got = r.data.get(res_len..).unwrap_or(&[]);
            let n = got.len().min(len).min(res.bytes as usize);
            data[..n].copy_from_slice(&got[..n]);
        }
        Ok(res.bytes)
    }

    /// `PacketGetStats`: what the capture counted since open.
    pub fn stats(&self) -> Result<BpfStat, u32> {
        let r = self.dev.ioctl(
            abi::IOCTL_RXINJECT_GET_CAPTURE_STATS,
            &[],
            std::mem::size_of::<CaptureStats>(),
        )?;
        let s = CaptureStats::read_from(&r.data)
            .filter(|_| r.ok())
            .ok_or(os::win32_error(r.status))?;
        let c = |v: u64| v.min(u64::from(u32::MAX)) as u32;
        Ok(BpfStat {
            bs_recv: c(s.seen),
            bs_drop: c(s.dropped),
            ps_ifdrop: 0,
            bs_capt: c(s.captured),
        })
    }

    /// The device handle, as `ADAPTER::hFile` shows it.
    pub fn raw_handle(&self) -> layout::Handle {
        self.dev.raw_handle()
    }

    /// `PacketCloseAdapter` (the rest when the last user goes): no new reads; the one
    /// outstanding is cancelled; a thread waiting in `receive` wakes and leaves.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.dev.cancel_read();
        self.event.set();
    }
}

/// Converts a read's records into `bpf_hdr` records for the caller, after those not
/// delivered yet.
fn convert(st: &mut State, r: &Reply) {
    if st.next >= st.starts.len() {
        st.conv.clear();
        st.starts.clear();
        st.next = 0;
    }
    if !r.ok() {
        return;
    }
    for rec in cap::records(&r.data) {
        let at = st.conv.len();
        let unix = (rec.header.timestamp - FILETIME_UNIX_EPOCH).max(0);
        let sec = unix / 10_000_000;
        let frac = unix % 10_000_000;
        let h = BpfHdr {
            tstamp: Timeval {
                tv_sec: sec.min(i64::from(i32::MAX)) as i32,
                tv_usec: if st.nano { frac * 100 } else { frac / 10 } as i32,
            },
            caplen: rec.frame.len() as u32,
            datalen: rec.header.len,
            hdrlen: BPF_HDR_LEN as u16,
        };
        st.conv.extend_from_slice(&h.tstamp.tv_sec.to_le_bytes());
        st.conv.extend_from_slice(&h.tstamp.tv_usec.to_le_bytes());
        st.conv.extend_from_slice(&h.caplen.to_le_bytes());
        st.conv.extend_from_slice(&h.datalen.to_le_bytes());
        st.conv.extend_from_slice(&h.hdrlen.to_le_bytes());
        st.conv.extend_from_slice(&[0, 0]);
        st.conv.extend_from_slice(rec.frame);
        st.conv
            .resize(at + layout::word_align(BPF_HDR_LEN + rec.frame.len()), 0);
        st.starts.push(at);
    }
}

/// Copies the waiting records that fit into `out`; a first record larger than `out` is cut
/// to fit (its `bh_caplen` says so).
fn deliver(st: &mut State, out: &mut [u8]) -> usize {
    let mut n = 0usize;
    while st.next < st.starts.len() {
        let at = st.starts[st.next];
        let end = st.starts.get(st.next + 1).copied().unwrap_or(st.conv.len());
        let rec = &st.conv[at..end];
        if n + rec.len() <= out.len() {
            out[n..n + rec.len()].copy_from_slice(rec);
            n += rec.len();
            st.next += 1;
            continue;
        }
        if n == 0 {
            // Cut the record to the buffer (whole words).
            let room = (out.len() & !(layout::PACKET_ALIGNMENT - 1)).min(rec.len());
            out[..room].copy_from_slice(&rec[..room]);
            let caplen = (room - BPF_HDR_LEN) as u32;
            out[8..12].copy_from_slice(&caplen.to_le_bytes());
            n = room;
            st.next += 1;
        }
        break;
    }
    if st.next >= st.starts.len() {
        st.conv.clear();
        st.starts.clear();
        st.next = 0;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_come_out_of_module_names_and_packet_names() {
        let g = "{00000000-5349-4D00-8000-00000000000A}";
        assert_eq!(
            guid_of(&format!("{g}-{{55851E4F-D5BE-4EA9-BC6B-725F93193597}}-0000")).as_deref(),
            Some(g)
        );
        assert_eq!(
            guid_of(&format!("\\Device\\NPF_{}", g.to_lowercase())).as_deref(),
            Some(g)
        );
        assert_eq!(guid_of("\\Device\\NPF_Loopback"), None);
        assert_eq!(guid_of("{short}"), None);
    }
}
