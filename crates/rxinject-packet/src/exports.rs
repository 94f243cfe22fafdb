//! The exported functions, with Npcap's names, arguments and conventions (x64 has one
//! calling convention, `extern "C"` is it): every one checks its arguments, and fails as
//! Npcap does, with `SetLastError` and FALSE (or NULL, or a count), never by crashing the
//! caller. An `ADAPTER` or `PACKET` the DLL did not hand out is refused, not followed.
//!
//! What the callers need of each is in the crate documentation; the behaviour lives in
//! [`crate::adapter`].

#![allow(non_snake_case)]
// The callers' pointers are raw by nature: each dereference is checked and commented.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use core::ffi::{c_char, c_void};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use crate::adapter::{self, Inner};
use crate::layout::{
    self, ADAPTER_NAME_LENGTH, Adapter, BpfInsn, BpfProgram, BpfStat, Handle, MAX_LINK_NAME_LENGTH, NetType,
    NpfIfAddr, OID_DATA_OFFSET, Packet, PacketOidData,
};
use crate::os::{self, err};

/// `BOOLEAN`.
pub type Boolean = u8;
const TRUE: Boolean = 1;
const FALSE: Boolean = 0;

/// What `PacketOpenAdapter` allocates: the caller's `ADAPTER`, then the DLL's state.
#[repr(C)]
struct AdapterBox {
    public: Adapter,
    inner: Arc<Inner>,
}

/// The adapters and packets handed out, by address: a pointer not in here is refused.
struct Live {
    adapters: HashMap<usize, Arc<Inner>>,
    packets: HashSet<usize>,
}

fn live() -> std::sync::MutexGuard<'static, Live> {
    static LIVE: OnceLock<Mutex<Live>> = OnceLock::new();
    LIVE.get_or_init(|| {
        Mutex::new(Live {
            adapters: HashMap::new(),
            packets: HashSet::new(),
        })
    })
    .lock()
    .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The state of an adapter this DLL opened (and has not closed).
fn inner_of(a: *mut Adapter) -> Option<Arc<Inner>> {
    let r = live().adapters.get(&(a as usize)).cloned();
    if r.is_none() {
        os::set_last_error(err::ERROR_INVALID_HANDLE);
    }
    r
}

fn fail(e: u32) -> Boolean {
    os::set_last_error(e);
    FALSE
}

fn done(r: Result<(), u32>) -> Boolean {
    match r {
        Ok(()) => TRUE,
        Err(e) => fail(e),
    }
}

/// A NUL-terminated ANSI string of the caller's (at most `max` bytes read).
fn c_str(p: *const c_char, max: usize) -> Option<String> {
    if p.is_null() {
        return None;
    }
    let mut v = Vec::new();
    for i in 0..max {
        // SAFETY: within the caller's NUL-terminated string (we stop at its NUL, or `max`).
        let q = unsafe { p.add(i) };
        // SAFETY: as above.
        let b = unsafe { *q } as u8;
        if b == 0 {
            return Some(String::from_utf8_lossy(&v).into_owned());
        }
        v.push(b);
    }
    None
}

/// `PacketLibraryVersion`: the DLL's version string (exported data, as Npcap's).
#[unsafe(no_mangle)]
pub static PacketLibraryVersion: [u8; 64] = {
    let s = concat!("rxinject Packet.dll ", env!("CARGO_PKG_VERSION")).as_bytes();
    let mut out = [0u8; 64];
    let mut i = 0;
    while i < s.len() && i < 63 {
        out[i] = s[i];
        i += 1;
    }
    out
};

/// `PacketGetVersion`: this DLL's version.
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetVersion() -> *const c_char {
    PacketLibraryVersion.as_ptr().cast()
}

/// `PacketGetDriverVersion`: the driver's version and ABI, as the driver reports them
/// (`unknown` if it cannot be reached).
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetDriverVersion() -> *const c_char {
    static V: OnceLock<Vec<u8>> = OnceLock::new();
    V.get_or_init(|| {
        let s = match adapter::driver_version() {
            Ok((v, abi)) => format!(
                "rxinject {}.{}.{} (ABI {}.{})",
                v >> 24,
                (v >> 16) & 0xff,
                v & 0xffff,
                abi >> 16,
                abi & 0xffff
            ),
            Err(_) => "unknown".into(),
        };
        s.into_bytes().into_iter().chain([0]).collect()
    })
    .as_ptr()
    .cast()
}

/// `PacketGetDriverName`.
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetDriverName() -> *const c_char {
    c"rxinject".as_ptr()
}

/// `PacketGetAdapterNames`: the adapters' names (`\Device\NPF_{GUID}`), each NUL-terminated,
/// an empty one, then their descriptions the same way. With a buffer too small (or none),
/// FALSE, `ERROR_INSUFFICIENT_BUFFER` and the size needed in `*size`.
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetAdapterNames(buf: *mut c_char, size: *mut u32) -> Boolean {
    if size.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let list = match adapter::list() {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let mut out = Vec::new();
    for l in &list {
        out.extend_from_slice(l.name.as_bytes());
        out.push(0);
    }
    out.push(0);
    for l in &list {
        out.extend(l.description.bytes().map(|b| if b.is_ascii() { b } else { b'?' }));
        out.push(0);
    }
    out.push(0);
    // SAFETY: checked non-null; the caller's ULONG.
    let room = unsafe { *size } as usize;
    if buf.is_null() || room < out.len() {
        // SAFETY: as above.
        unsafe { *size = out.len() as u32 };
        return fail(err::ERROR_INSUFFICIENT_BUFFER);
    }
    // SAFETY: the caller's buffer holds `room` >= out.len() bytes.
    unsafe { std::ptr::copy_nonoverlapping(out.as_ptr(), buf.cast::<u8>(), out.len()) };
    // SAFETY: as above.
    unsafe { *size = out.len() as u32 };
    TRUE
}

/// `PacketOpenAdapter`: opens `\Device\NPF_{GUID}` (or `{GUID}`) and starts capturing.
/// NULL with `ERROR_BAD_UNIT` for an adapter rxinject is not attached to.
#[unsafe(no_mangle)]
pub extern "C" fn PacketOpenAdapter(name: *const c_char) -> *mut Adapter {
    let Some(n) = c_str(name, ADAPTER_NAME_LENGTH * 2) else {
        os::set_last_error(err::ERROR_INVALID_PARAMETER);
        return std::ptr::null_mut();
    };
    let inner = match Inner::open(&n) {
        Ok(i) => i,
        Err(e) => {
            os::set_last_error(e);
            return std::ptr::null_mut();
        }
    };
    let mut public = Adapter {
        h_file: inner.raw_handle(),
        symbolic_link: [0; MAX_LINK_NAME_LENGTH],
        num_writes: 1,
        read_event: inner.event.handle(),
        read_timeout: 0,
        name: [0; ADAPTER_NAME_LENGTH],
        wan_adapter: std::ptr::null_mut(),
        flags: layout::INFO_FLAG_NDIS_ADAPTER,
    };
    let link = rxinject_abi::USER_PATH.as_bytes();
    public.symbolic_link[..link.len().min(MAX_LINK_NAME_LENGTH - 1)]
        .copy_from_slice(&link[..link.len().min(MAX_LINK_NAME_LENGTH - 1)]);
    let nb = inner.listed.name.as_bytes();
    let k = nb.len().min(ADAPTER_NAME_LENGTH - 1);
    public.name[..k].copy_from_slice(&nb[..k]);
    let b = Box::into_raw(Box::new(AdapterBox {
        public,
        inner: Arc::clone(&inner),
    }));
    let a = b.cast::<Adapter>();
    live().adapters.insert(a as usize, inner);
    a
}

/// `PacketCloseAdapter`: a read waiting in another thread returns (`ERROR_OPERATION_ABORTED`);
/// the handle is closed once it has.
#[unsafe(no_mangle)]
pub extern "C" fn PacketCloseAdapter(a: *mut Adapter) {
    let Some(inner) = live().adapters.remove(&(a as usize)) else {
        os::set_last_error(err::ERROR_INVALID_HANDLE);
        return;
    };
    inner.close();
    // SAFETY: `a` is the box PacketOpenAdapter made (it was in the live set), freed once.
    drop(unsafe { Box::from_raw(a.cast::<AdapterBox>()) });
}

/// `PacketAllocatePacket`.
#[unsafe(no_mangle)]
pub extern "C" fn PacketAllocatePacket() -> *mut Packet {
    // SAFETY: PACKET is plain data; all zeroes is a valid (empty) one.
    let p = Box::into_raw(Box::new(unsafe { std::mem::zeroed::<Packet>() }));
    live().packets.insert(p as usize);
    p
}

/// `PacketFreePacket`: only packets `PacketAllocatePacket` made.
#[unsafe(no_mangle)]
pub extern "C" fn PacketFreePacket(p: *mut Packet) {
    if live().packets.remove(&(p as usize)) {
        // SAFETY: our allocation, freed once.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// `PacketInitPacket`: points `p` at the caller's buffer.
#[unsafe(no_mangle)]
pub extern "C" fn PacketInitPacket(p: *mut Packet, buffer: *mut c_void, length: u32) {
    if p.is_null() {
        os::set_last_error(err::ERROR_INVALID_PARAMETER);
        return;
    }
    // SAFETY: the caller's PACKET (libpcap's is on its stack).
    unsafe {
        (*p).buffer = buffer;
    }
    // SAFETY: as above.
    unsafe {
        (*p).length = length;
    }
    // SAFETY: as above.
    unsafe {
        (*p).bytes_received = 0;
    }
    // SAFETY: as above.
    unsafe {
        (*p).io_complete = 0;
    }
}

/// The buffer of a PACKET: pointer and length, checked.
fn packet_buffer(p: *mut Packet) -> Option<(*mut u8, usize)> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller's PACKET.
    let b = unsafe { (*p).buffer };
    // SAFETY: as above.
    let n = unsafe { (*p).length };
    (!b.is_null() && n > 0).then_some((b.cast::<u8>(), n as usize))
}

/// `PacketReceivePacket`: waits as the read timeout and `PacketSetMinToCopy` say, then
/// fills the PACKET's buffer with `bpf_hdr` records (`ulBytesReceived` of them; 0 after a
/// timeout or `pcap_breakloop`).
#[unsafe(no_mangle)]
pub extern "C" fn PacketReceivePacket(a: *mut Adapter, p: *mut Packet, _sync: Boolean) -> Boolean {
    let Some(inner) = inner_of(a) else { return FALSE };
    let Some((buf, len)) = packet_buffer(p) else {
        return fail(err::ERROR_INVALID_PARAMETER);
    };
    // SAFETY: the caller's buffer of `len` bytes, set by PacketInitPacket.
    let out = unsafe { std::slice::from_raw_parts_mut(buf, len) };
    match inner.receive(out) {
        Ok(n) => {
            // SAFETY: the caller's PACKET, checked above.
            unsafe { (*p).bytes_received = n as u32 };
            TRUE
        }
        Err(e) => fail(e),
    }
}

/// `PacketSendPacket`: the PACKET's buffer is one frame, sent `NumWrites` times.
#[unsafe(no_mangle)]
pub extern "C" fn PacketSendPacket(a: *mut Adapter, p: *mut Packet, _sync: Boolean) -> Boolean {
    let Some(inner) = inner_of(a) else { return FALSE };
    let Some((buf, len)) = packet_buffer(p) else {
        return fail(err::ERROR_INVALID_PARAMETER);
    };
    // SAFETY: the caller's buffer of `len` bytes.
    let frame = unsafe { std::slice::from_raw_parts(buf, len) };
    // SAFETY: our box (it is live): the caller may have changed NumWrites itself.
    let repeat = unsafe { (*a).num_writes }.max(1) as u32;
    done(inner.send(frame, repeat))
}

/// `PacketSendPackets`: a send queue; returns the bytes of it sent (all of it on success).
#[unsafe(no_mangle)]
pub extern "C" fn PacketSendPackets(a: *mut Adapter, buf: *mut c_void, size: u32, sync: Boolean) -> i32 {
    let Some(inner) = inner_of(a) else { return 0 };
    if buf.is_null() || size == 0 {
        os::set_last_error(err::ERROR_INVALID_PARAMETER);
        return 0;
    }
    // SAFETY: the caller's queue of `size` bytes.
    let q = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), size as usize) };
    let (n, r) = inner.send_queue(q, sync != 0);
    if let Err(e) = r {
        os::set_last_error(e);
    }
    n as i32
}

/// `PacketSetNumWrites`.
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetNumWrites(a: *mut Adapter, n: i32) -> Boolean {
    if inner_of(a).is_none() {
        return FALSE;
    }
    if n < 1 {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    // SAFETY: our live box.
    unsafe { (*a).num_writes = n };
    TRUE
}

/// `PacketSetMinToCopy`.
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetMinToCopy(a: *mut Adapter, n: i32) -> Boolean {
    let Some(inner) = inner_of(a) else { return FALSE };
    done(inner.set_min_to_copy(n))
}

/// `PacketSetReadTimeout`: -1 returns at once, 0 waits for data.
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetReadTimeout(a: *mut Adapter, ms: i32) -> Boolean {
    let Some(inner) = inner_of(a) else { return FALSE };
    let r = inner.set_read_timeout(ms);
    if r.is_ok() {
        // SAFETY: our live box.
        unsafe { (*a).read_timeout = ms as u32 };
    }
    done(r)
}

/// `PacketSetBuff`: the kernel buffer's size (clamped to rxinject's ring limits).
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetBuff(a: *mut Adapter, dim: i32) -> Boolean {
    let Some(inner) = inner_of(a) else { return FALSE };
    done(inner.set_buff(dim))
}

/// The most instructions a program may have (the driver has its own limit).
const MAX_BPF_INSNS: u32 = 1 << 16;

/// `PacketSetBpf`.
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetBpf(a: *mut Adapter, fp: *const BpfProgram) -> Boolean {
    let Some(inner) = inner_of(a) else { return FALSE };
    if fp.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    // SAFETY: the caller's program header.
    let n = unsafe { (*fp).bf_len };
    // SAFETY: as above.
    let insns = unsafe { (*fp).bf_insns };
    if n > MAX_BPF_INSNS || (n > 0 && insns.is_null()) {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let prog: Vec<BpfInsn> = if n == 0 {
        Vec::new()
    } else {
        // SAFETY: `n` instructions at `insns`, the caller's.
        unsafe { std::slice::from_raw_parts(insns, n as usize) }.to_vec()
    };
    done(inner.set_bpf(&prog))
}

/// `PacketSetSnapLen`: for DAG cards only in Npcap; 0 (nothing done) for an NDIS adapter.
/// libpcap sets the snapshot length through the filter's return value.
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetSnapLen(a: *mut Adapter, _snaplen: i32) -> i32 {
    let _ = inner_of(a);
    0
}

fn stats(a: *mut Adapter, s: *mut BpfStat) -> Boolean {
    let Some(inner) = inner_of(a) else { return FALSE };
    if s.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    match inner.stats() {
        Ok(v) => {
            // SAFETY: the caller's bpf_stat.
            unsafe { s.write_unaligned(v) };
            TRUE
        }
        Err(e) => fail(e),
    }
}

/// `PacketGetStats`: frames seen, dropped for want of buffer, captured.
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetStats(a: *mut Adapter, s: *mut BpfStat) -> Boolean {
    stats(a, s)
}

/// `PacketGetStatsEx`: the same.
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetStatsEx(a: *mut Adapter, s: *mut BpfStat) -> Boolean {
    stats(a, s)
}

/// `PacketGetNetType`: the medium (802.3) and link speed.
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetNetType(a: *mut Adapter, t: *mut NetType) -> Boolean {
    let Some(inner) = inner_of(a) else { return FALSE };
    if t.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let mut medium = [0u8; 4];
    let link_type = match inner.oid(false, ndis_oids::OID_GEN_MEDIA_IN_USE, &mut medium) {
        Ok(n) if n >= 4 => u32::from_le_bytes(medium),
        _ => 0, // NdisMedium802_3: rxinject binds to Ethernet only
    };
    let mut speed = [0u8; 4];
    let link_speed = match inner.oid(false, ndis_oids::OID_GEN_LINK_SPEED, &mut speed) {
        Ok(n) if n >= 4 => u64::from(u32::from_le_bytes(speed)) * 100,
        _ => 0,
    };
    // SAFETY: the caller's NetType.
    unsafe {
        t.write_unaligned(NetType {
            link_type,
            link_speed,
        })
    };
    TRUE
}

/// OIDs the DLL asks itself.
mod ndis_oids {
    pub const OID_GEN_MEDIA_IN_USE: u32 = 0x0001_0104;
    pub const OID_GEN_LINK_SPEED: u32 = 0x0001_0107;
    pub const OID_GEN_CURRENT_PACKET_FILTER: u32 = 0x0001_010E;
}

/// `PacketSetHwFilter`: this handle's packet filter types (promiscuous: 0x20), merged by the
/// driver with the protocols' own. The miniport's refusal comes back as its NDIS status with
/// the customer bit (`NDIS_STATUS_NOT_SUPPORTED | 0x20000000`, which libpcap tolerates).
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetHwFilter(a: *mut Adapter, filter: u32) -> Boolean {
    let Some(inner) = inner_of(a) else { return FALSE };
    let mut data = filter.to_le_bytes();
    match inner.oid(true, ndis_oids::OID_GEN_CURRENT_PACKET_FILTER, &mut data) {
        Ok(_) => TRUE,
        Err((e, _)) => fail(e),
    }
}

/// The OID and length of the caller's (non-null) PACKET_OID_DATA.
fn oid_header(d: *mut PacketOidData) -> (u32, u32) {
    // SAFETY: the caller's header.
    let oid = unsafe { (*d).oid };
    // SAFETY: as above.
    let len = unsafe { (*d).length };
    (oid, len)
}

/// `PacketRequest`: a query (`set` FALSE: `Length` is the buffer's size, and becomes the
/// bytes written) or a set of `Length` bytes (the driver's allow-list decides which).
#[unsafe(no_mangle)]
pub extern "C" fn PacketRequest(a: *mut Adapter, set: Boolean, d: *mut PacketOidData) -> Boolean {
    let Some(inner) = inner_of(a) else { return FALSE };
    if d.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let (oid, len) = oid_header(d);
    if len as usize > rxinject_abi::MAX_OID_DATA as usize {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    // SAFETY: the data follows the header: PACKET_OID_DATA_LENGTH(Length) bytes, the
    // caller's promise (as with Npcap).
    let at = unsafe { d.cast::<u8>().add(OID_DATA_OFFSET) };
    // SAFETY: as above.
    let data = unsafe { std::slice::from_raw_parts_mut(at, len as usize) };
    match inner.oid(set != 0, oid, data) {
        Ok(n) => {
            if set == 0 {
                // SAFETY: as above.
                unsafe { (*d).length = n.min(len) };
            }
            TRUE
        }
        Err((e, needed)) => {
            if needed > len {
                // SAFETY: as above.
                unsafe { (*d).length = needed };
            }
            fail(e)
        }
    }
}

/// `PacketGetInfo`: what the DLL knows of the driver (`NPF_GETINFO_VERSION`, `_CONFIG`,
/// `_BPFEXT`: no BPF extensions, so libpcap checks VLAN tags in the packet, where rxinject's
/// records have them).
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetInfo(a: *mut Adapter, d: *mut PacketOidData) -> Boolean {
    if d.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let (oid, len) = oid_header(d);
    let value = match oid {
        layout::getinfo::VERSION => {
            let v = if a.is_null() {
                adapter::driver_version().map(|(v, _)| v)
            } else {
                inner_of(a).map(|i| i.version).ok_or(err::ERROR_INVALID_HANDLE)
            };
            match v {
                Ok(v) => v,
                Err(e) => return fail(e),
            }
        }
        layout::getinfo::CONFIG => layout::getinfo::CONFIG_INJECT | layout::getinfo::CONFIG_ADMINONLY,
        layout::getinfo::BPFEXT => 0,
        _ => return fail(err::ERROR_NOT_SUPPORTED),
    };
    if len < 4 {
        return fail(err::ERROR_INSUFFICIENT_BUFFER);
    }
    let b = value.to_le_bytes();
    // SAFETY: the caller's buffer of `len` >= 4 bytes after the header.
    let at = unsafe { d.cast::<u8>().add(OID_DATA_OFFSET) };
    // SAFETY: as above.
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), at, 4) };
    // SAFETY: as above.
    unsafe { (*d).length = 4 };
    TRUE
}

/// `PacketGetReadEvent`: the event set when data is waiting (a real Win32 event on Windows:
/// `pcap_breakloop` sets it).
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetReadEvent(a: *mut Adapter) -> Handle {
    match inner_of(a) {
        Some(i) => i.event.handle(),
        None => std::ptr::null_mut(),
    }
}

/// `PacketSetMode`: `PACKET_MODE_CAPT`, optionally `PACKET_MODE_NANO`; `PACKET_MODE_SENDTORX`
/// and `PACKET_MODE_SENDTORX_CLEAR`. Statistics, monitor and dump modes are refused
/// (`ERROR_NOT_SUPPORTED`).
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetMode(a: *mut Adapter, mode: i32) -> Boolean {
    let Some(inner) = inner_of(a) else { return FALSE };
    done(inner.set_mode(mode))
}

/// `PacketSetLoopbackBehavior`: whether this handle captures what it sends.
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetLoopbackBehavior(a: *mut Adapter, behaviour: u32) -> Boolean {
    let Some(inner) = inner_of(a) else { return FALSE };
    done(inner.set_loopback(behaviour))
}

/// The timestamp modes rxinject has: its records are stamped with KeQuerySystemTimePrecise.
const TS_MODES: [u32; 1] = [layout::timestamp::QUERYSYSTEMTIME_PRECISE];

/// `PacketGetTimestampModes`: `modes[0]` is the array's length in; out, the number of modes,
/// and the modes after it (`ERROR_MORE_DATA` if they do not fit).
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetTimestampModes(a: *mut Adapter, modes: *mut u32) -> Boolean {
    if inner_of(a).is_none() {
        return FALSE;
    }
    if modes.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    // SAFETY: the caller's array, of at least one ULONG.
    let room = unsafe { *modes } as usize;
    // SAFETY: as above.
    unsafe { *modes = TS_MODES.len() as u32 };
    if room < 1 + TS_MODES.len() {
        return fail(err::ERROR_MORE_DATA);
    }
    for (i, m) in TS_MODES.iter().enumerate() {
        // SAFETY: the array holds `room` > i + 1 entries.
        let at = unsafe { modes.add(1 + i) };
        // SAFETY: as above.
        unsafe { *at = *m };
    }
    TRUE
}

/// `PacketSetTimestampMode`: the precise system time, or the system time (the precise one is
/// that, finer).
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetTimestampMode(a: *mut Adapter, mode: u32) -> Boolean {
    if inner_of(a).is_none() {
        return FALSE;
    }
    match mode {
        layout::timestamp::QUERYSYSTEMTIME_PRECISE | layout::timestamp::QUERYSYSTEMTIME => TRUE,
        _ => fail(err::ERROR_INVALID_PARAMETER),
    }
}

/// `PacketGetNetInfoEx`: the adapter's addresses, at most `*n` (set to how many were written).
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetNetInfoEx(name: *const c_char, buf: *mut NpfIfAddr, n: *mut i32) -> Boolean {
    let Some(name) = c_str(name, ADAPTER_NAME_LENGTH * 2) else {
        return fail(err::ERROR_INVALID_PARAMETER);
    };
    if n.is_null() || buf.is_null() {
        return fail(err::ERROR_INVALID_PARAMETER);
    }
    let Some(guid) = adapter::guid_of(&name) else {
        return fail(err::ERROR_BAD_UNIT);
    };
    let addrs = crate::netinfo::addresses(&guid);
    // SAFETY: the caller's count.
    let room = unsafe { *n }.max(0) as usize;
    let k = addrs.len().min(room);
    for (i, a) in addrs.iter().take(k).enumerate() {
        // SAFETY: the caller's array of `room` > i entries.
        let at = unsafe { buf.add(i) };
        // SAFETY: as above.
        unsafe { at.write_unaligned(*a) };
    }
    // SAFETY: as above.
    unsafe { *n = k as i32 };
    TRUE
}

/// `PacketIsLoopbackAdapter`: rxinject has no loopback adapter.
#[unsafe(no_mangle)]
pub extern "C" fn PacketIsLoopbackAdapter(_name: *const c_char) -> Boolean {
    FALSE
}

/// `PacketIsMonitorModeSupported`: no (0).
#[unsafe(no_mangle)]
pub extern "C" fn PacketIsMonitorModeSupported(_name: *const c_char) -> i32 {
    0
}

/// `PacketSetMonitorMode`: not supported (0).
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetMonitorMode(_name: *const c_char, _mode: i32) -> i32 {
    0
}

/// `PacketGetMonitorMode`: not in monitor mode (0).
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetMonitorMode(_name: *const c_char) -> i32 {
    0
}

/// `PacketSetDumpName`: kernel dump mode is not supported (nor is it in Npcap).
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetDumpName(_a: *mut Adapter, _name: *mut c_void, _len: i32) -> Boolean {
    fail(err::ERROR_NOT_SUPPORTED)
}

/// `PacketSetDumpLimits`: not supported.
#[unsafe(no_mangle)]
pub extern "C" fn PacketSetDumpLimits(_a: *mut Adapter, _max_size: u32, _max_packets: u32) -> Boolean {
    fail(err::ERROR_NOT_SUPPORTED)
}

/// `PacketIsDumpEnded`: not supported.
#[unsafe(no_mangle)]
pub extern "C" fn PacketIsDumpEnded(_a: *mut Adapter, _sync: Boolean) -> Boolean {
    fail(err::ERROR_NOT_SUPPORTED)
}

/// `PacketGetAirPcapHandle`: no AirPcap.
#[unsafe(no_mangle)]
pub extern "C" fn PacketGetAirPcapHandle(_a: *mut Adapter) -> *mut c_void {
    std::ptr::null_mut()
}

/// `PacketStopDriver`: a DLL does not stop rxinject (FALSE, `ERROR_NOT_SUPPORTED`).
#[unsafe(no_mangle)]
pub extern "C" fn PacketStopDriver() -> i32 {
    os::set_last_error(err::ERROR_NOT_SUPPORTED);
    0
}

/// `PacketStopDriver60`: as `PacketStopDriver`.
#[unsafe(no_mangle)]
pub extern "C" fn PacketStopDriver60() -> i32 {
    PacketStopDriver()
}

/// The exported names (the dist test checks the DLL's export table against it, and it
/// against what libpcap's pcap-npf.c and libdnet call).
pub const EXPORTS: &[&str] = &[
    "PacketLibraryVersion",
    "PacketGetVersion",
    "PacketGetDriverVersion",
    "PacketGetDriverName",
    "PacketGetAdapterNames",
    "PacketOpenAdapter",
    "PacketCloseAdapter",
    "PacketAllocatePacket",
    "PacketFreePacket",
    "PacketInitPacket",
    "PacketReceivePacket",
    "PacketSendPacket",
    "PacketSendPackets",
    "PacketSetNumWrites",
    "PacketSetMinToCopy",
    "PacketSetReadTimeout",
    "PacketSetBuff",
    "PacketSetBpf",
    "PacketSetSnapLen",
    "PacketGetStats",
    "PacketGetStatsEx",
    "PacketGetNetType",
    "PacketSetHwFilter",
    "PacketRequest",
    "PacketGetInfo",
    "PacketGetReadEvent",
    "PacketSetMode",
    "PacketSetLoopbackBehavior",
    "PacketGetTimestampModes",
    "PacketSetTimestampMode",
    "PacketGetNetInfoEx",
    "PacketIsLoopbackAdapter",
    "PacketIsMonitorModeSupported",
    "PacketSetMonitorMode",
    "PacketGetMonitorMode",
    "PacketSetDumpName",
    "PacketSetDumpLimits",
    "PacketIsDumpEnded",
    "PacketGetAirPcapHandle",
    "PacketStopDriver",
    "PacketStopDriver60",
];
