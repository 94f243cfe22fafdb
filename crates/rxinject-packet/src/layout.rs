//! The structures and values of the Packet API, as its callers lay them out (x64, Windows
//! LLP64: `long` is 4 bytes, pointers and `HANDLE`s 8). They come from Npcap's documented
//! API: the callers (libpcap's `pcap-npf.c`, older nmap's libdnet `eth-win32.c`) read some of
//! them directly, so the layout is the contract. Sizes and offsets are checked below; the
//! SDK header `sdk/Packet32.h` declares the same.

use core::ffi::c_void;

/// A Win32 `HANDLE`.
pub type Handle = *mut c_void;

/// Bytes of `ADAPTER::SymbolicLink`.
pub const MAX_LINK_NAME_LENGTH: usize = 64;
/// Bytes of `ADAPTER::Name` (256 + 12, as the IP Helper API's adapter names).
pub const ADAPTER_NAME_LENGTH: usize = 256 + 12;
/// The most addresses `PacketGetNetInfoEx` is asked for by libpcap.
pub const MAX_NETWORK_ADDRESSES: usize = 16;

/// `ADAPTER`: an open adapter. libpcap reads `h_file` (`pcap_fileno`) and `flags` (a DAG
/// card flag aborts its activation) itself.
#[repr(C)]
pub struct Adapter {
    /// `hFile`: the device handle.
    pub h_file: Handle,
    /// `SymbolicLink`.
    pub symbolic_link: [u8; MAX_LINK_NAME_LENGTH],
    /// `NumWrites`: how many times `PacketSendPacket` sends each frame.
    pub num_writes: i32,
    /// `ReadEvent`: signalled when data is waiting (and by `pcap_breakloop`).
    pub read_event: Handle,
    /// `ReadTimeOut`, in milliseconds (-1: do not wait; 0: wait for data).
    pub read_timeout: u32,
    /// `Name`: the name it was opened by (`\Device\NPF_{GUID}`), NUL-terminated.
    pub name: [u8; ADAPTER_NAME_LENGTH],
    /// `pWanAdapter`: always null.
    pub wan_adapter: *mut c_void,
    /// `Flags`: `INFO_FLAG_*` (always `INFO_FLAG_NDIS_ADAPTER`).
    pub flags: u32,
}

/// `OVERLAPPED`.
#[repr(C)]
pub struct Overlapped {
    pub internal: usize,
    pub internal_high: usize,
    pub offset: u32,
    pub offset_high: u32,
    pub h_event: Handle,
}

/// `PACKET`: a caller's buffer (libpcap keeps one on its stack and fills it with
/// `PacketInitPacket`).
#[repr(C)]
pub struct Packet {
    /// `hEvent` (unused).
    pub h_event: Handle,
    /// `OverLapped` (unused).
    pub overlapped: Overlapped,
    /// `Buffer`.
    pub buffer: *mut c_void,
    /// `Length`: bytes of `buffer`.
    pub length: u32,
    /// `ulBytesReceived`: bytes of records a read put there (or bytes a send took).
    pub bytes_received: u32,
    /// `bIoComplete` (unused).
    pub io_complete: u8,
}

/// `struct timeval` of Winsock: two `long`s.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeval {
    pub tv_sec: i32,
    pub tv_usec: i32,
}

/// `struct bpf_hdr`: the header before each frame a read returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BpfHdr {
    pub tstamp: Timeval,
    /// `bh_caplen`: bytes of the frame that follow.
    pub caplen: u32,
    /// `bh_datalen`: bytes of the frame on the wire.
    pub datalen: u32,
    /// `bh_hdrlen`: bytes of this header (the frame starts there).
    pub hdrlen: u16,
}

/// Bytes of [`BpfHdr`] (18, padded to 20).
pub const BPF_HDR_LEN: usize = 20;
/// `Packet_ALIGNMENT`: records of a read start at multiples of `sizeof(int)`.
pub const PACKET_ALIGNMENT: usize = 4;

/// `Packet_WORDALIGN(x)`.
pub const fn word_align(x: usize) -> usize {
    (x + PACKET_ALIGNMENT - 1) & !(PACKET_ALIGNMENT - 1)
}

/// `struct dump_bpf_hdr`: the header before each frame of a send queue
/// (`PacketSendPackets`; libpcap's `pcap_sendqueue_queue` writes `struct pcap_pkthdr`, the
/// same bytes on Windows).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpBpfHdr {
    pub ts: Timeval,
    pub caplen: u32,
    pub len: u32,
}

/// Bytes of [`DumpBpfHdr`].
pub const DUMP_BPF_HDR_LEN: usize = 16;

/// `struct bpf_stat` (`PacketGetStats`, `PacketGetStatsEx`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BpfStat {
    /// Frames the adapter passed the driver.
    pub bs_recv: u32,
    /// Frames lost for want of room in the kernel buffer.
    pub bs_drop: u32,
    /// Frames the interface dropped (0: unknown).
    pub ps_ifdrop: u32,
    /// Frames that passed the filter and found room.
    pub bs_capt: u32,
}

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct bpf_program`.
#[repr(C)]
pub struct BpfProgram {
    pub bf_len: u32,
    pub bf_insns: *const BpfInsn,
}

/// `PACKET_OID_DATA`: an OID, the length of its data, and the data (`Length` bytes from
/// offset 8).
#[repr(C)]
pub struct PacketOidData {
    pub oid: u32,
    pub length: u32,
    pub data: [u8; 1],
}

/// Offset of `PACKET_OID_DATA::Data`.
pub const OID_DATA_OFFSET: usize = 8;

/// `NetType` (`PacketGetNetType`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetType {
    /// An `NDIS_MEDIUM`.
    pub link_type: u32,
    /// Bits per second.
    pub link_speed: u64,
}

/// `struct sockaddr_storage` (128 bytes, 8-aligned).
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct SockaddrStorage {
    pub family: u16,
    pub data: [u8; 126],
}

impl SockaddrStorage {
    pub const ZERO: SockaddrStorage = SockaddrStorage {
        family: 0,
        data: [0; 126],
    };

    /// A `sockaddr_in` of `ip` (port 0).
    pub fn ipv4(ip: [u8; 4]) -> SockaddrStorage {
        let mut s = SockaddrStorage::ZERO;
        s.family = AF_INET;
        s.data[2..6].copy_from_slice(&ip);
        s
    }
}

/// `AF_INET`.
pub const AF_INET: u16 = 2;

/// `npf_if_addr` (`PacketGetNetInfoEx`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NpfIfAddr {
    pub ip_address: SockaddrStorage,
    pub subnet_mask: SockaddrStorage,
    pub broadcast: SockaddrStorage,
}

/// `PACKET_MODE_*` (`PacketSetMode`).
pub mod mode {
    /// Capture (the default).
    pub const CAPT: i32 = 0x0;
    /// Statistics only (refused).
    pub const STAT: i32 = 0x1;
    /// Monitoring (refused).
    pub const MON: i32 = 0x2;
    /// Kernel dump (refused).
    pub const DUMP: i32 = 0x10;
    /// Frames this handle sends go up the receive path.
    pub const SENDTORX: i32 = 1 << 8;
    /// Frames this handle sends go to the wire, whatever the registry says.
    pub const SENDTORX_CLEAR: i32 = 1 << 9;
    /// Nanosecond timestamps in `bpf_hdr` (`tv_usec` carries nanoseconds).
    pub const NANO: i32 = 1 << 10;
}

/// `INFO_FLAG_NDIS_ADAPTER`: an ordinary NDIS adapter.
pub const INFO_FLAG_NDIS_ADAPTER: u32 = 0;
/// `INFO_FLAG_DAG_CARD`.
pub const INFO_FLAG_DAG_CARD: u32 = 2;

/// `NPF_DISABLE_LOOPBACK`: do not capture what this handle sends.
pub const NPF_DISABLE_LOOPBACK: u32 = 1;
/// `NPF_ENABLE_LOOPBACK`: capture it (the default).
pub const NPF_ENABLE_LOOPBACK: u32 = 2;

/// `TIMESTAMPMODE_*`.
pub mod timestamp {
    /// KeQueryPerformanceCounter, synchronised once.
    pub const SINGLE_SYNCHRONIZATION: u32 = 0;
    /// KeQuerySystemTime.
    pub const QUERYSYSTEMTIME: u32 = 2;
    /// KeQuerySystemTimePrecise: what rxinject stamps records with.
    pub const QUERYSYSTEMTIME_PRECISE: u32 = 4;
}

/// `PacketGetInfo` OIDs (`NPF_GETINFO_*`).
pub mod getinfo {
    /// The driver's version (a `ULONG`: major << 24 | minor << 16 | patch).
    pub const VERSION: u32 = 1;
    /// The driver's configuration flags (`NPF_CONFIG_*`).
    pub const CONFIG: u32 = 2;
    /// The BPF extensions the driver's interpreter has (0: none).
    pub const BPFEXT: u32 = 3;
    /// `NPF_CONFIG_INJECT`: the driver can send.
    pub const CONFIG_INJECT: u32 = 0x02;
    /// `NPF_CONFIG_ADMINONLY`: only administrators open it.
    pub const CONFIG_ADMINONLY: u32 = 0x04;
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Adapter>() == 376);
    assert!(offset_of!(Adapter, symbolic_link) == 8);
    assert!(offset_of!(Adapter, num_writes) == 72);
    assert!(offset_of!(Adapter, read_event) == 80);
    assert!(offset_of!(Adapter, read_timeout) == 88);
    assert!(offset_of!(Adapter, name) == 92);
    assert!(offset_of!(Adapter, wan_adapter) == 360);
    assert!(offset_of!(Adapter, flags) == 368);
    assert!(size_of::<Overlapped>() == 32);
    assert!(size_of::<Packet>() == 64);
    assert!(offset_of!(Packet, buffer) == 40);
    assert!(offset_of!(Packet, length) == 48);
    assert!(offset_of!(Packet, bytes_received) == 52);
    assert!(offset_of!(Packet, io_complete) == 56);
    assert!(size_of::<BpfHdr>() == BPF_HDR_LEN);
    assert!(offset_of!(BpfHdr, hdrlen) == 16);
    assert!(size_of::<DumpBpfHdr>() == DUMP_BPF_HDR_LEN);
    assert!(size_of::<BpfStat>() == 16);
    assert!(size_of::<BpfInsn>() == 8);
    assert!(size_of::<BpfProgram>() == 16);
    assert!(offset_of!(PacketOidData, data) == OID_DATA_OFFSET);
    assert!(size_of::<NetType>() == 16);
    assert!(size_of::<SockaddrStorage>() == 128);
    assert!(size_of::<NpfIfAddr>() == 384);
};
