//! The contract between the rxinject driver, its INF and the user-mode tools.
//!
//! `no_std`, dependency-free, and built for both kernel and user mode (like win-net-test's
//! `fnlwfapi.h`): every name, code and record layout the driver and the tools must agree on is
//! defined once, here.
//!
//! # Using the device
//!
//! 1. Open `\\.\RxInject` (administrators and SYSTEM only; the open must not carry a name
//!    after the device, `\\.\RxInject\x` is refused).
//! 2. `IOCTL_RXINJECT_GET_VERSION` returns [`VersionInfo`].
//! 3. `IOCTL_RXINJECT_LIST_ADAPTERS` returns an [`AdapterListHeader`] followed by
//!    [`AdapterEntry`] records.
//! 4. `IOCTL_RXINJECT_BIND` with a [`BindRequest`] (your [`ABI_VERSION`] and the adapter's
//!    `if_index`) binds the handle to one adapter. A different major version, or a newer
//!    minor version than the driver's, is refused.
//! 5. `IOCTL_RXINJECT_SET_DIRECTION` sets the handle's default direction ([`DIRECTION_TX`]
//!    down to the wire, the default; [`DIRECTION_RX`] up to the host stack).
//! 6. `WriteFile` with a buffer of frame records (the [`write`](mod@write) module) injects them: all of
//!    them, or none. The write completes when the last frame has come back from NDIS; its
//!    byte count (`Information`) is the **number of frames** accepted.
//! 7. `IOCTL_RXINJECT_GET_COUNTERS` returns [`Counters`] for the handle and its adapter.
//! 8. Capture (ABI 1.1, the [`capture`] module): `IOCTL_RXINJECT_SET_FILTER` (a classic BPF
//!    program, optional; `IOCTL_RXINJECT_CHECK_FILTER`, ABI 1.3, says why one is refused; a
//!    program accepted discards the records waiting, as BPF's `BIOCSETF` does), `IOCTL_RXINJECT_SET_CAPTURE` with a [`capture::CaptureConfig`], then
//!    `ReadFile` returns records (a [`capture::RecordHeader`] and the frame); a read buffer
//!    must hold [`capture::min_read_len`] bytes. `IOCTL_RXINJECT_GET_CAPTURE_STATS` returns
//!    [`capture::CaptureStats`]; `IOCTL_RXINJECT_STOP_CAPTURE` stops.
//!
//! All IOCTLs are `METHOD_BUFFERED`.
//!
//! # Statuses
//!
//! | status | meaning |
//! |---|---|
//! | `STATUS_SUCCESS` | done; a write: every frame handed to NDIS and none failed below |
//! | `STATUS_INVALID_PARAMETER` (0xC000000D) | malformed write buffer or IOCTL input; or a write buffer another thread changed while the driver read it (reads and writes use direct I/O: the driver reads the writer's own pages), the byte count then being the frames issued before the change was seen |
//! | `STATUS_INVALID_BUFFER_SIZE` (0xC0000206) | a frame outside 14 ..= max frame size (+4 with an 802.1Q tag), more than [`MAX_FRAMES_PER_WRITE`] frames, or more than [`MAX_WRITE_BYTES`] bytes |
//! | `STATUS_INVALID_DEVICE_STATE` (0xC0000184) | the handle is not bound to an adapter |
//! | `STATUS_NO_SUCH_DEVICE` (0xC000000E) | the bound adapter went away (the handle is unbound now) |
//! | `STATUS_NDIS_PAUSED` (0xC023002A) | the adapter is not running (paused, restarting): try again |
//! | `STATUS_INSUFFICIENT_RESOURCES` (0xC000009A) | not enough NBLs for the whole write, or the buffer of a read or write could not be mapped now; nothing was sent |
//! | `STATUS_REVISION_MISMATCH` (0xC0000059) | `BIND` with an incompatible ABI version |
//! | `STATUS_NOT_FOUND` (0xC0000225) | `BIND` to an `if_index` rxinject is not attached to |
//! | `STATUS_BUFFER_TOO_SMALL` (0xC0000023) | an IOCTL output buffer smaller than its record |
//! | `STATUS_BUFFER_OVERFLOW` (0x80000005) | `LIST_ADAPTERS`: the buffer holds fewer entries than exist (`returned < total`) |
//! | `STATUS_INVALID_DEVICE_REQUEST` (0xC0000010) | unknown IOCTL code |
//! | `STATUS_INVALID_DEVICE_STATE` (0xC0000184), on a read | the handle does not capture (never started, or stopped with no record left) |
//! | `STATUS_NO_SUCH_DEVICE` (0xC000000E), on a read | the adapter the handle captured on went away and no record is left |
//! | `STATUS_INVALID_BUFFER_SIZE` (0xC0000206), on a read | the read buffer cannot hold a record of the handle's snap length |
//! | `STATUS_CANCELLED` (0xC0000120) | a waiting read or pending write was cancelled, or its handle closed (a write's byte count: the frames already handed to NDIS); a read or write arriving after the handle's cleanup began |
//! | `STATUS_NDIS_PAUSED` (0xC023002A), on a pending write | a pause began while the write was being issued: what was not yet handed to NDIS was not sent (the byte count says what was) |
//! | `STATUS_QUOTA_EXCEEDED` (0xC0000044), on `SET_CAPTURE` | the capture rings of every handle would exceed [`capture::MAX_TOTAL_RING_BYTES`] of non-paged memory: ask for a smaller ring, or close a capture |
//! | `STATUS_INVALID_PARAMETER`, on `SET_FILTER` | the program was refused (the old filter stays); `CHECK_FILTER` with the same program returns the [`capture::FilterVerdict`] that says why and where |
//! | `STATUS_DEVICE_BUSY` (0x80000011) | another `BIND`/`SET_CAPTURE`/`STOP_CAPTURE`/`SET_FILTER` of the same handle is running: retry |
//! | an NDIS status | a completed write whose Tx frame failed below, e.g. `STATUS_NDIS_MEDIA_DISCONNECTED` (0xC023001F): the first failure |
#![no_std]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod capture;
pub mod write;

/// The driver's service name (`AddService` in the INF, `ServiceName` in the filter
/// characteristics, the `.sys` file stem).
pub const SERVICE_NAME: &str = "rxinject";

/// The filter's unique name: its `NetCfgInstanceId` GUID, braces included, upper case as
/// NDIS compares it.
pub const FILTER_UNIQUE_NAME: &str = "{55851E4F-D5BE-4EA9-BC6B-725F93193597}";

/// The friendly name NDIS shows for the filter (the INF's description string).
pub const FILTER_FRIENDLY_NAME: &str = "rxinject NDIS frame injection filter";

/// The netcfg component id (`netcfg -i <id>`), the INF's hardware id for the filter.
pub const COMPONENT_ID: &str = "RX_RxInject";

/// The media types the filter binds to (the INF's `FilterMediaTypes`).
pub const FILTER_MEDIA_TYPES: &str = "ethernet";

/// Version of the driver, as `major.minor.patch` (the INF's `DriverVer` version).
pub const DRIVER_VERSION: (u8, u8, u16) = (0, 2, 0);

/// The control device's kernel name.
pub const DEVICE_NAME: &str = "\\Device\\RxInject";
/// The control device's symbolic link.
pub const SYMBOLIC_NAME: &str = "\\DosDevices\\RxInject";
/// What user mode opens.
pub const USER_PATH: &str = "\\\\.\\RxInject";
/// The device's security descriptor: generic all for SYSTEM and Administrators, nobody else
/// (`SDDL_DEVOBJ_SYS_ALL_ADM_ALL`).
pub const DEVICE_SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)";

/// `major << 16 | minor`.
pub const fn abi_version(major: u16, minor: u16) -> u32 {
    (major as u32) << 16 | minor as u32
}

/// The ABI this crate describes. A client passes it in [`BindRequest`]; the driver accepts the
/// same major version with a minor version not newer than its own.
pub const ABI_VERSION: u32 = abi_version(1, 4);

/// Whether a driver of ABI `driver` serves a client of ABI `client`.
pub const fn abi_compatible(driver: u32, client: u32) -> bool {
    driver >> 16 == client >> 16 && client & 0xFFFF <= driver & 0xFFFF
}

/// The device type of the IOCTL codes (a vendor value, 0x8000 and above).
pub const FILE_DEVICE_RXINJECT: u32 = 0x0000_8D51;

const METHOD_BUFFERED: u32 = 0;
const FILE_ANY_ACCESS: u32 = 0;
const FILE_READ_ACCESS: u32 = 1;
const FILE_WRITE_ACCESS: u32 = 2;

/// `CTL_CODE(DeviceType, Function, Method, Access)`.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    device_type << 16 | access << 14 | function << 2 | method
}

/// Output: [`VersionInfo`].
pub const IOCTL_RXINJECT_GET_VERSION: u32 =
    ctl_code(FILE_DEVICE_RXINJECT, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS);
/// Output: [`AdapterListHeader`] and [`AdapterEntry`] records.
pub const IOCTL_RXINJECT_LIST_ADAPTERS: u32 =
    ctl_code(FILE_DEVICE_RXINJECT, 0x801, METHOD_BUFFERED, FILE_READ_ACCESS);
/// Input: [`BindRequest`].
pub const IOCTL_RXINJECT_BIND: u32 = ctl_code(
    FILE_DEVICE_RXINJECT,
    0x802,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);
/// Input: [`SetDirection`].
pub const IOCTL_RXINJECT_SET_DIRECTION: u32 = ctl_code(
    FILE_DEVICE_RXINJECT,
    0x803,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);
/// Output: [`Counters`].
pub const IOCTL_RXINJECT_GET_COUNTERS: u32 =
    ctl_code(FILE_DEVICE_RXINJECT, 0x804, METHOD_BUFFERED, FILE_READ_ACCESS);
/// Input: [`capture::CaptureConfig`]. Starts (or reconfigures) capture on a bound handle.
/// Since ABI 1.1.
pub const IOCTL_RXINJECT_SET_CAPTURE: u32 = ctl_code(
    FILE_DEVICE_RXINJECT,
    0x805,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);
/// No input. Stops capture (records already captured stay readable). Since ABI 1.1.
pub const IOCTL_RXINJECT_STOP_CAPTURE: u32 = ctl_code(
    FILE_DEVICE_RXINJECT,
    0x806,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);
/// Input: a classic BPF program (`struct bpf_insn` records, 8 bytes each; none removes the
/// filter). Output (optional): [`capture::FilterVerdict`], which Windows delivers only when
/// the program is accepted; a refused one fails with `STATUS_INVALID_PARAMETER` and no output
/// (ask `IOCTL_RXINJECT_CHECK_FILTER` why). Since ABI 1.1.
pub const IOCTL_RXINJECT_SET_FILTER: u32 = ctl_code(
    FILE_DEVICE_RXINJECT,
    0x807,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);
/// Output: [`capture::CaptureStats`]. Since ABI 1.1.
pub const IOCTL_RXINJECT_GET_CAPTURE_STATS: u32 =
    ctl_code(FILE_DEVICE_RXINJECT, 0x808, METHOD_BUFFERED, FILE_READ_ACCESS);
/// Input: a program, as for `IOCTL_RXINJECT_SET_FILTER`. Output: [`capture::FilterVerdict`],
/// with `STATUS_SUCCESS` whatever the verdict: it only validates, on any handle, bound or
/// not. It exists because Windows copies a METHOD_BUFFERED output back only with a success
/// or warning status, so a `SET_FILTER` that refuses a program (`STATUS_INVALID_PARAMETER`)
/// cannot say why. Since ABI 1.3.
pub const IOCTL_RXINJECT_CHECK_FILTER: u32 =
    ctl_code(FILE_DEVICE_RXINJECT, 0x809, METHOD_BUFFERED, FILE_READ_ACCESS);

/// Input: [`OidRequest`], then (for a set) its `length` bytes of data. Output: [`OidResult`],
/// then (for a query) the data. Runs the query or set on the bound adapter as a request of
/// the driver's own (`NdisFOidRequest`), one at a time per handle (a second gets
/// `STATUS_DEVICE_BUSY`), queued behind the adapter's other own requests. Pends until the
/// miniport answers; completes with `STATUS_SUCCESS` and the NDIS status in
/// [`OidResult::status`] (so that `bytes_needed` reaches the caller even when the miniport
/// refused), with `STATUS_IO_TIMEOUT` once `timeout_ms` passed (the request is cancelled with
/// `NdisFCancelOidRequest`), or with `STATUS_CANCELLED` when cancelled or its handle closed.
/// Sets are limited to [`OID_SETS_ALLOWED`] (`STATUS_ACCESS_DENIED` otherwise). Since ABI 1.4.
pub const IOCTL_RXINJECT_OID_REQUEST: u32 = ctl_code(
    FILE_DEVICE_RXINJECT,
    0x80A,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);

/// Every IOCTL, by name (for tools and documentation checks).
pub const IOCTLS: &[(&str, u32)] = &[
    ("IOCTL_RXINJECT_GET_VERSION", IOCTL_RXINJECT_GET_VERSION),
    ("IOCTL_RXINJECT_LIST_ADAPTERS", IOCTL_RXINJECT_LIST_ADAPTERS),
    ("IOCTL_RXINJECT_BIND", IOCTL_RXINJECT_BIND),
    ("IOCTL_RXINJECT_SET_DIRECTION", IOCTL_RXINJECT_SET_DIRECTION),
    ("IOCTL_RXINJECT_GET_COUNTERS", IOCTL_RXINJECT_GET_COUNTERS),
    ("IOCTL_RXINJECT_SET_CAPTURE", IOCTL_RXINJECT_SET_CAPTURE),
    ("IOCTL_RXINJECT_STOP_CAPTURE", IOCTL_RXINJECT_STOP_CAPTURE),
    ("IOCTL_RXINJECT_SET_FILTER", IOCTL_RXINJECT_SET_FILTER),
    (
        "IOCTL_RXINJECT_GET_CAPTURE_STATS",
        IOCTL_RXINJECT_GET_CAPTURE_STATS,
    ),
    ("IOCTL_RXINJECT_CHECK_FILTER", IOCTL_RXINJECT_CHECK_FILTER),
    ("IOCTL_RXINJECT_OID_REQUEST", IOCTL_RXINJECT_OID_REQUEST),
];

/// [`OidRequest::kind`]: a query (`NdisRequestQueryInformation`).
pub const OID_QUERY: u32 = 0;
/// [`OidRequest::kind`]: a set (`NdisRequestSetInformation`).
pub const OID_SET: u32 = 1;
/// The largest OID information buffer a request may carry.
pub const MAX_OID_DATA: u32 = 4096;
/// [`OidRequest::timeout_ms`] 0 means this.
pub const OID_DEFAULT_TIMEOUT_MS: u32 = 5000;
/// The OIDs a handle may set. Every query is allowed (they change nothing); a set changes
/// the adapter for every protocol, so only those the driver can undo are:
/// `OID_GEN_CURRENT_PACKET_FILTER` (0x0001010E), the handle's own filter types
/// (promiscuous mode): the miniport gets the union of the protocols' filter and every
/// handle's, and the union shrinks back when a handle goes away. `NDIS_PACKET_TYPE_ALL_LOCAL`
/// stands for directed, multicast and broadcast; other types than those and all-multicast
/// and promiscuous fail with `STATUS_NOT_SUPPORTED`.
pub const OID_SETS_ALLOWED: &[u32] = &[0x0001_010E];

/// Input of `IOCTL_RXINJECT_OID_REQUEST` (followed by the data of a set).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OidRequest {
    pub oid: u32,
    /// [`OID_QUERY`] or [`OID_SET`].
    pub kind: u32,
    /// 0 for [`OID_DEFAULT_TIMEOUT_MS`].
    pub timeout_ms: u32,
    /// A query: the information buffer's size; a set: the bytes of data that follow. At
    /// most [`MAX_OID_DATA`].
    pub length: u32,
}

/// Output of `IOCTL_RXINJECT_OID_REQUEST` (followed by the `bytes` of a query's answer).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OidResult {
    /// The `NDIS_STATUS` the miniport completed the request with.
    pub status: u32,
    /// `BytesWritten` of a query, `BytesRead` of a set.
    pub bytes: u32,
    /// `BytesNeeded`: for a buffer too short, the size that would do.
    pub bytes_needed: u32,
    pub reserved: u32,
}

const _: () = assert!(core::mem::size_of::<OidRequest>() == 16);
const _: () = assert!(core::mem::size_of::<OidResult>() == 16);

/// The most bytes one write may carry.
pub const MAX_WRITE_BYTES: u32 = 8 << 20;
/// The most frames one write may carry (also the most NBLs an adapter's pool grows to, so a
/// write alone on an idle adapter always fits).
pub const MAX_FRAMES_PER_WRITE: u32 = 4096;
/// The shortest frame: an Ethernet header.
pub const MIN_FRAME_LEN: u32 = 14;
/// Bytes an 802.1Q tag adds to a frame's maximum length.
pub const VLAN_TAG_LEN: u32 = 4;

/// Down to the wire (`NdisFSendNetBufferLists`).
pub const DIRECTION_TX: u32 = 1;
/// Up into the host stack, as if received (`NdisFIndicateReceiveNetBufferLists`).
pub const DIRECTION_RX: u32 = 2;

/// Output of `IOCTL_RXINJECT_GET_VERSION`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VersionInfo {
    /// [`ABI_VERSION`] of the driver.
    pub abi_version: u32,
    /// `major << 24 | minor << 16 | patch`.
    pub driver_version: u32,
    pub max_write_bytes: u32,
    pub max_frames_per_write: u32,
}

/// First part of the output of `IOCTL_RXINJECT_LIST_ADAPTERS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdapterListHeader {
    /// Adapters rxinject is attached to.
    pub total: u32,
    /// Entries that follow (fewer than `total` when the buffer was too small).
    pub returned: u32,
    /// `size_of::<AdapterEntry>()`, for forward compatibility.
    pub entry_size: u32,
    pub reserved: u32,
}

/// The state of an adapter's filter module.
pub const ADAPTER_STATE_PAUSED: u32 = 1;
pub const ADAPTER_STATE_RESTARTING: u32 = 2;
pub const ADAPTER_STATE_RUNNING: u32 = 3;
pub const ADAPTER_STATE_PAUSING: u32 = 4;

/// One adapter rxinject is attached to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdapterEntry {
    /// The miniport's interface index: what [`BindRequest`] names.
    pub if_index: u32,
    /// `ADAPTER_STATE_*`.
    pub state: u32,
    /// MTU (bytes after the Ethernet header), from the restart attributes.
    pub mtu: u32,
    /// Largest untagged frame accepted: MTU + 14.
    pub max_frame_size: u32,
    pub mac: [u8; 6],
    pub mac_len: u8,
    pub reserved0: u8,
    /// UTF-16 units used in `module_name`.
    pub module_name_len: u16,
    /// UTF-16 units used in `friendly_name`.
    pub friendly_name_len: u16,
    pub reserved1: u32,
    /// The filter module's GUID name (identifies the binding to NDIS tools).
    pub module_name: [u16; 96],
    /// The adapter's friendly name.
    pub friendly_name: [u16; 128],
}

impl AdapterEntry {
    pub const ZERO: AdapterEntry = AdapterEntry {
        if_index: 0,
        state: 0,
        mtu: 0,
        max_frame_size: 0,
        mac: [0; 6],
        mac_len: 0,
        reserved0: 0,
        module_name_len: 0,
        friendly_name_len: 0,
        reserved1: 0,
        module_name: [0; 96],
        friendly_name: [0; 128],
    };
}

/// Input of `IOCTL_RXINJECT_BIND`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BindRequest {
    /// The client's [`ABI_VERSION`].
    pub abi_version: u32,
    /// [`AdapterEntry::if_index`] of the adapter to bind to.
    pub if_index: u32,
}

/// Input of `IOCTL_RXINJECT_SET_DIRECTION`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetDirection {
    /// [`DIRECTION_TX`] or [`DIRECTION_RX`].
    pub direction: u32,
}

/// Counters of one handle.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandleCounters {
    /// Write IRPs received.
    pub writes: u64,
    /// Write IRPs completed with success.
    pub writes_succeeded: u64,
    /// Write IRPs completed with a failure (refused, or a frame failed below).
    pub writes_failed: u64,
    /// Frames accepted (handed to NDIS).
    pub frames_accepted: u64,
    /// Bytes of the accepted frames.
    pub bytes_accepted: u64,
    /// Accepted frames sent down (Tx).
    pub tx_frames: u64,
    /// Accepted frames indicated up (Rx).
    pub rx_frames: u64,
    /// Write IRPs pending now.
    pub writes_pending: u64,
}

/// Counters of one adapter (all handles).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdapterCounters {
    /// Frames injected up (Rx) / down (Tx).
    pub rx_injected: u64,
    pub tx_injected: u64,
    /// Injected NBLs back from NDIS (returned / send-completed).
    pub rx_returned: u64,
    pub tx_completed: u64,
    /// Injected Tx frames that completed with a failure status.
    pub tx_failed: u64,
    /// NBLs (with their buffers) the adapter's injection pool holds.
    pub nbls_allocated: u64,
    /// Injected NBLs not yet back.
    pub nbls_in_flight: u64,
    /// Writes refused because the pool could not supply every NBL.
    pub writes_out_of_nbls: u64,
    /// Writes refused because the adapter was not running.
    pub writes_not_running: u64,
    /// Receive chains / send chains of other drivers refused while not running.
    pub rx_refused_not_running: u64,
    pub tx_refused_not_running: u64,
    /// OID requests passed through.
    pub oid_requests: u64,
}

/// [`Counters::flags`]: the handle is bound.
pub const COUNTERS_BOUND: u32 = 1;
/// [`Counters::flags`]: the bound adapter is attached (its counters are valid).
pub const COUNTERS_ADAPTER_PRESENT: u32 = 2;

/// Output of `IOCTL_RXINJECT_GET_COUNTERS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// `COUNTERS_*`.
    pub flags: u32,
    /// The bound adapter's `if_index` (0 when unbound).
    pub if_index: u32,
    pub handle: HandleCounters,
    pub adapter: AdapterCounters,
}

/// Pool tags, one per module, as `u32` values whose bytes spell the tag in memory order
/// (poolmon and `!poolused` show `Rxfm` for [`tags::TAG_FILTER_MODULE`]).
pub mod tags {
    const fn tag(s: &[u8; 4]) -> u32 {
        u32::from_le_bytes(*s)
    }
    /// Filter module contexts (`filter.rs`).
    pub const TAG_FILTER_MODULE: u32 = tag(b"Rxfm");
    /// NBL pools (`pool.rs`).
    pub const TAG_NBL_POOL: u32 = tag(b"Rxnp");
    /// Injection slots: NBL buffers (`inject.rs`).
    pub const TAG_INJECT_SLOTS: u32 = tag(b"Rxis");
    /// Per-handle contexts (`device.rs`).
    pub const TAG_HANDLE: u32 = tag(b"Rxhd");
    /// Cloned OID requests (`oid.rs`).
    pub const TAG_OID: u32 = tag(b"Rxoi");
    /// The global allocator (`mem.rs`).
    pub const TAG_GLOBAL_ALLOC: u32 = tag(b"Rxga");
    /// Capture contexts and rings (`capture.rs`).
    pub const TAG_CAPTURE: u32 = tag(b"Rxcp");
    /// BPF programs (`capture.rs`).
    pub const TAG_BPF: u32 = tag(b"Rxbf");
    /// The read timer (`capture.rs`).
    pub const TAG_TIMER: u32 = tag(b"Rxtm");

    /// Every tag, with what it holds (for `!poolused` and documentation checks).
    pub const ALL: &[(u32, &str)] = &[
        (TAG_FILTER_MODULE, "filter module contexts"),
        (TAG_NBL_POOL, "NBL pools"),
        (TAG_INJECT_SLOTS, "injection slots (NBL buffers)"),
        (TAG_HANDLE, "handle contexts"),
        (TAG_OID, "cloned OID requests and the driver's own"),
        (TAG_GLOBAL_ALLOC, "the global allocator"),
        (TAG_CAPTURE, "capture contexts and rings"),
        (TAG_BPF, "BPF programs"),
        (TAG_TIMER, "the read timer"),
    ];
}

const _: () = assert!(core::mem::size_of::<VersionInfo>() == 16);
const _: () = assert!(core::mem::size_of::<AdapterListHeader>() == 16);
const _: () = assert!(core::mem::size_of::<AdapterEntry>() == 480);
const _: () = assert!(core::mem::size_of::<BindRequest>() == 8);
const _: () = assert!(core::mem::size_of::<SetDirection>() == 4);
const _: () = assert!(core::mem::size_of::<HandleCounters>() == 64);
const _: () = assert!(core::mem::size_of::<AdapterCounters>() == 96);
const _: () = assert!(core::mem::size_of::<Counters>() == 168);
const _: () = assert!(core::mem::offset_of!(AdapterEntry, module_name) == 32);
const _: () = assert!(core::mem::offset_of!(AdapterEntry, friendly_name) == 224);

/// Plain-old-data records that cross the user/kernel boundary: any bytes are a valid value
/// once the length is right.
///
/// # Safety
/// Implementors are `#[repr(C)]`, contain only integers and arrays of integers, and have no
/// padding bytes that a reader would interpret.
pub unsafe trait Pod: Copy + 'static {
    /// Reads a record from the start of `bytes` (any alignment), or `None` if too short.
    fn read_from(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < core::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: the length is checked; Pod types accept any bit pattern; read_unaligned
        // tolerates any alignment.
        Some(unsafe { bytes.as_ptr().cast::<Self>().read_unaligned() })
    }

    /// Writes the record to the start of `out`; returns the bytes written, or `None` if `out`
    /// is too short.
    fn write_to(&self, out: &mut [u8]) -> Option<usize> {
        let n = core::mem::size_of::<Self>();
        if out.len() < n {
            return None;
        }
        // SAFETY: `out` holds `n` bytes; write_unaligned tolerates any alignment.
        unsafe { out.as_mut_ptr().cast::<Self>().write_unaligned(*self) };
        Some(n)
    }

    /// The record's bytes (an IOCTL's input, for a user-mode client).
    #[cfg(feature = "alloc")]
    fn to_vec(&self) -> alloc::vec::Vec<u8> {
        let mut out = alloc::vec![0u8; core::mem::size_of::<Self>()];
        let _ = self.write_to(&mut out);
        out
    }
}

// SAFETY: each is #[repr(C)] integers/arrays only (the size asserts above show no padding
// beyond the explicit reserved fields).
unsafe impl Pod for VersionInfo {}
// SAFETY: as above.
unsafe impl Pod for AdapterListHeader {}
// SAFETY: as above.
unsafe impl Pod for AdapterEntry {}
// SAFETY: as above.
unsafe impl Pod for BindRequest {}
// SAFETY: as above.
unsafe impl Pod for SetDirection {}
// SAFETY: as above.
unsafe impl Pod for Counters {}
// SAFETY: as above.
unsafe impl Pod for OidRequest {}
// SAFETY: as above.
unsafe impl Pod for OidResult {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_name_is_a_braced_upper_case_guid() {
        let b = FILTER_UNIQUE_NAME.as_bytes();
        assert_eq!(b.len(), 38);
        assert_eq!((b[0], b[37]), (b'{', b'}'));
        for (i, c) in b[1..37].iter().enumerate() {
            if [8, 13, 18, 23].contains(&i) {
                assert_eq!(*c, b'-');
            } else {
                assert!(c.is_ascii_digit() || (b'A'..=b'F').contains(c), "{}", *c as char);
            }
        }
    }

    #[test]
    fn tags_spell_their_names_in_memory_order() {
        assert_eq!(&tags::TAG_FILTER_MODULE.to_le_bytes(), b"Rxfm");
    }

    #[test]
    fn ioctl_codes_are_buffered_vendor_codes_and_distinct() {
        let codes: [u32; 11] = core::array::from_fn(|i| IOCTLS[i].1);
        assert_eq!(IOCTLS.len(), codes.len());
        for (i, c) in codes.iter().enumerate() {
            assert_eq!(c & 3, METHOD_BUFFERED);
            assert_eq!(c >> 16, FILE_DEVICE_RXINJECT);
            assert!((c >> 2) & 0xFFF >= 0x800, "vendor function codes");
            assert!(!codes[i + 1..].contains(c));
        }
        // CTL_CODE as winioctl.h computes it.
        assert_eq!(ctl_code(0x22, 0x800, 0, 0), 0x0022_2000);
        assert_eq!(IOCTL_RXINJECT_OID_REQUEST, 0x8D51_E028);
    }

    #[test]
    fn abi_compatibility_is_same_major_and_not_newer_minor() {
        assert!(abi_compatible(abi_version(1, 3), abi_version(1, 0)));
        assert!(abi_compatible(abi_version(1, 3), abi_version(1, 3)));
        assert!(!abi_compatible(abi_version(1, 3), abi_version(1, 4)));
        assert!(!abi_compatible(abi_version(2, 0), abi_version(1, 0)));
    }

    #[test]
    fn pod_records_round_trip_at_any_alignment() {
        let c = Counters {
            flags: COUNTERS_BOUND,
            if_index: 7,
            handle: HandleCounters {
                writes: 3,
                ..Default::default()
            },
            adapter: AdapterCounters {
                tx_injected: 9,
                ..Default::default()
            },
        };
        let mut buf = [0u8; 200];
        assert_eq!(c.write_to(&mut buf[1..]), Some(168));
        assert_eq!(Counters::read_from(&buf[1..]), Some(c));
        assert_eq!(Counters::read_from(&buf[..167]), None);
        assert_eq!(c.write_to(&mut buf[..10]), None);
    }
}
