//! Shared by the driver's tests: loading rxinject (either build) into the simulator and a small client of its
//! control device that speaks the ABI byte for byte (records in, records out), as a user-mode
//! tool does.

#![allow(dead_code)]

pub mod corpus;
pub mod libpcap;

use ndis_sim::{DeviceHandle, Driver, IoResult, Sim, SimConfig, TestFrames};
use ndis_sys::*;
use rxinject_abi::write::{self, Batch};
use rxinject_abi::{self as abi, Pod};

/// The build of rxinject under test: the `.sys` named by `RXINJECT_DRIVER` (`cargo xtask test`
/// runs the scenarios again with `dist/x64/rxinject.sys`, the bytes we ship, mapped by the
/// simulator's loader), else rxinject compiled for this host.
pub fn driver() -> Driver {
    match std::env::var_os("RXINJECT_DRIVER") {
        Some(p) if !p.is_empty() => Driver::Image(p.into()),
        _ => Driver::Linked(rxinject::DriverEntry),
    }
}

/// Loads [`driver`] into `sim`: DriverEntry's status (the loader refusing the file fails the
/// test with its reason).
pub fn load_into(sim: &mut Sim) -> NTSTATUS {
    let d = driver();
    sim.load_driver(&d).unwrap_or_else(|e| panic!("loading {d}: {e}"))
}

/// A simulation with rxinject loaded.
pub fn load(mut cfg: SimConfig) -> Sim {
    // rxinject is held to the strict reading: a warning (a documented should, an inference,
    // our policy) fails its tests as a violation does.
    cfg.strict.warnings_fail = true;
    let mut sim = Sim::new(cfg);
    let status = load_into(&mut sim);
    assert_eq!(status, STATUS_SUCCESS);
    sim
}

/// Distinct test frames addressed to adapter `i`'s MAC.
pub fn frames_for(sim: &Sim, i: usize) -> TestFrames {
    TestFrames::new([0x02, 0x11, 0x22, 0x33, 0x44, 0x55], sim.adapter(i).config().mac)
}

/// A device control with a record as input and `out_len` bytes of output.
pub fn ioctl(h: &DeviceHandle<'_>, code: u32, input: &[u8], out_len: usize) -> IoResult {
    h.device_io_control(code, input, out_len)
}

/// `IOCTL_RXINJECT_GET_VERSION`.
pub fn version(h: &DeviceHandle<'_>) -> abi::VersionInfo {
    let r = ioctl(
        h,
        abi::IOCTL_RXINJECT_GET_VERSION,
        &[],
        std::mem::size_of::<abi::VersionInfo>(),
    );
    assert_eq!(r.status, STATUS_SUCCESS);
    abi::VersionInfo::read_from(&r.output).expect("a VersionInfo")
}

/// `IOCTL_RXINJECT_LIST_ADAPTERS` with room for `room` entries: (status, header, entries).
pub fn list_adapters(
    h: &DeviceHandle<'_>,
    room: usize,
) -> (NTSTATUS, abi::AdapterListHeader, Vec<abi::AdapterEntry>) {
    let header = std::mem::size_of::<abi::AdapterListHeader>();
    let entry = std::mem::size_of::<abi::AdapterEntry>();
    let r = ioctl(h, abi::IOCTL_RXINJECT_LIST_ADAPTERS, &[], header + room * entry);
    let hdr = abi::AdapterListHeader::read_from(&r.output).unwrap_or_default();
    let entries = r
        .output
        .get(header..)
        .unwrap_or(&[])
        .chunks_exact(entry)
        .filter_map(abi::AdapterEntry::read_from)
        .collect();
    (r.status, hdr, entries)
}

/// `IOCTL_RXINJECT_BIND` to `if_index` with this ABI version.
pub fn bind(h: &DeviceHandle<'_>, if_index: u32) -> NTSTATUS {
    let req = abi::BindRequest {
        abi_version: abi::ABI_VERSION,
        if_index,
    };
    ioctl(h, abi::IOCTL_RXINJECT_BIND, &req.to_vec(), 0).status
}

/// `IOCTL_RXINJECT_SET_DIRECTION`.
pub fn set_direction(h: &DeviceHandle<'_>, direction: u32) -> NTSTATUS {
    ioctl(
        h,
        abi::IOCTL_RXINJECT_SET_DIRECTION,
        &abi::SetDirection { direction }.to_vec(),
        0,
    )
    .status
}

/// `IOCTL_RXINJECT_GET_COUNTERS`.
pub fn counters(h: &DeviceHandle<'_>) -> abi::Counters {
    let r = ioctl(
        h,
        abi::IOCTL_RXINJECT_GET_COUNTERS,
        &[],
        std::mem::size_of::<abi::Counters>(),
    );
    assert_eq!(r.status, STATUS_SUCCESS);
    abi::Counters::read_from(&r.output).expect("a Counters record")
}

/// Opens the device and binds to adapter `i`.
pub fn open_bound(sim: &Sim, i: usize) -> DeviceHandle<'_> {
    let h = sim.open(abi::USER_PATH).expect("open \\\\.\\RxInject");
    assert_eq!(bind(&h, sim.adapter(i).config().if_index), STATUS_SUCCESS);
    h
}

/// A write buffer holding `frames`, each with `direction`.
pub fn batch(direction: u8, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Batch::new();
    for f in frames {
        assert!(b.push(direction, 0, f), "batch full");
    }
    b.as_bytes().to_vec()
}

/// A write buffer from (direction, flags, frame) records.
pub fn records(recs: &[(u8, u8, &[u8])]) -> Vec<u8> {
    let mut b = Batch::new();
    for (d, f, data) in recs {
        assert!(b.push(*d, *f, data), "batch full");
    }
    b.as_bytes().to_vec()
}

pub const RX: u8 = write::DIR_RX;
pub const TX: u8 = write::DIR_TX;

/// `frame` with an 802.1Q tag (`tci`) inserted after the MAC addresses.
pub fn tagged(frame: &[u8], tci: u16) -> Vec<u8> {
    let mut t = frame[..12].to_vec();
    t.extend_from_slice(&0x8100u16.to_be_bytes());
    t.extend_from_slice(&tci.to_be_bytes());
    t.extend_from_slice(&frame[12..]);
    t
}

// ---- capture ----------------------------------------------------------------------------------

pub use rxinject_abi::capture::{self as cap, CaptureConfig, CaptureStats, FilterVerdict, RecordHeader};

/// The input of `IOCTL_RXINJECT_OID_REQUEST` for a set of `oid` to `data`.
pub fn oid_set_input(oid: NDIS_OID, data: &[u8]) -> Vec<u8> {
    let mut v = abi::OidRequest {
        oid,
        kind: abi::OID_SET,
        timeout_ms: 0,
        length: data.len() as u32,
    }
    .to_vec();
    v.extend_from_slice(data);
    v
}

/// Asks for promiscuous mode on `h` (the simulated NIC honours its packet filter: frames
/// for other stations reach a capture only then).
pub fn set_promiscuous(h: &DeviceHandle<'_>) {
    let input = oid_set_input(
        OID_GEN_CURRENT_PACKET_FILTER,
        &NDIS_PACKET_TYPE_PROMISCUOUS.to_le_bytes(),
    );
    let r = ioctl(
        h,
        abi::IOCTL_RXINJECT_OID_REQUEST,
        &input,
        size_of::<abi::OidResult>(),
    );
    assert_eq!(r.status, STATUS_SUCCESS);
    let res = abi::OidResult::read_from(&r.output).expect("a result");
    assert_eq!(res.status, 0, "the miniport took the filter");
}

/// `IOCTL_RXINJECT_SET_CAPTURE`.
pub fn set_capture(h: &DeviceHandle<'_>, config: CaptureConfig) -> NTSTATUS {
    ioctl(h, abi::IOCTL_RXINJECT_SET_CAPTURE, &config.to_vec(), 0).status
}

/// `IOCTL_RXINJECT_SET_FILTER` with `insns`: the status and the verdict.
/// `IOCTL_RXINJECT_SET_FILTER`, and the verdict: from its output when it succeeds, and from
/// `IOCTL_RXINJECT_CHECK_FILTER` when it refuses (Windows copies no output back with an error
/// status, and neither does the simulator).
pub fn set_filter(h: &DeviceHandle<'_>, insns: &[rxinject_bpf::Insn]) -> (NTSTATUS, FilterVerdict) {
    let input: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
    let r = ioctl(
        h,
        abi::IOCTL_RXINJECT_SET_FILTER,
        &input,
        std::mem::size_of::<FilterVerdict>(),
    );
    if r.status.is_success() {
        return (r.status, FilterVerdict::read_from(&r.output).unwrap_or_default());
    }
    assert!(r.output.is_empty(), "an error status carries no output");
    (r.status, check_filter(h, &input))
}

/// `IOCTL_RXINJECT_CHECK_FILTER` on raw input: always STATUS_SUCCESS and a verdict.
pub fn check_filter(h: &DeviceHandle<'_>, input: &[u8]) -> FilterVerdict {
    let r = ioctl(
        h,
        abi::IOCTL_RXINJECT_CHECK_FILTER,
        input,
        std::mem::size_of::<FilterVerdict>(),
    );
    assert_eq!(r.status, STATUS_SUCCESS, "CHECK_FILTER");
    FilterVerdict::read_from(&r.output).expect("a verdict")
}

/// `IOCTL_RXINJECT_GET_CAPTURE_STATS`.
pub fn capture_stats(h: &DeviceHandle<'_>) -> CaptureStats {
    let r = ioctl(
        h,
        abi::IOCTL_RXINJECT_GET_CAPTURE_STATS,
        &[],
        std::mem::size_of::<CaptureStats>(),
    );
    assert_eq!(r.status, STATUS_SUCCESS);
    CaptureStats::read_from(&r.output).expect("a CaptureStats record")
}

/// A captured frame, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    pub header: RecordHeader,
    pub frame: Vec<u8>,
}

/// The records of a read's data (asserting they are well formed).
pub fn parse_records(data: &[u8]) -> Vec<Captured> {
    let mut it = cap::records(data);
    let v: Vec<Captured> = it
        .by_ref()
        .map(|r| Captured {
            header: r.header,
            frame: r.frame.to_vec(),
        })
        .collect();
    assert!(!it.malformed(), "malformed records in a read");
    v
}

/// A read big enough for any record.
pub const READ_LEN: usize = 1 << 20;

/// Reads (waiting as the handle's settings say) and parses.
pub fn read_records(h: &DeviceHandle<'_>) -> (IoResult, Vec<Captured>) {
    let r = h.read(READ_LEN);
    let recs = parse_records(&r.output);
    (r, recs)
}

/// Reads everything waiting, with non-blocking reads, until one returns nothing.
pub fn drain_records(h: &DeviceHandle<'_>) -> Vec<Captured> {
    let mut all = Vec::new();
    loop {
        let (r, recs) = read_records(h);
        assert_eq!(r.status, STATUS_SUCCESS, "{r:?}");
        if recs.is_empty() {
            return all;
        }
        all.extend(recs);
    }
}

/// Opens, binds to adapter `i` and starts capturing with `config` (non-blocking reads unless
/// the config says otherwise through its flags).
pub fn open_capture(sim: &Sim, i: usize, config: CaptureConfig) -> DeviceHandle<'_> {
    let h = open_bound(sim, i);
    assert_eq!(set_capture(&h, config), STATUS_SUCCESS);
    h
}

/// A config with non-blocking reads and everything else default.
pub fn nonblocking() -> CaptureConfig {
    CaptureConfig {
        flags: cap::CAPTURE_NONBLOCK,
        ..CaptureConfig::default()
    }
}
