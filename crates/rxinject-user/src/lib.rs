//! The user side of rxinject: a small, safe API over the driver's control device.
//!
//! ```text
//! let driver = Driver::open(Target::Simulator(SimOptions::default()))?;   // or Target::Windows
//! let adapter = driver.find_adapter("sim0")?;
//! let h = driver.bind(&adapter)?;
//! h.send(&batch)?;                       // inject a batch (Tx or Rx per frame)
//! h.start_capture(&config)?;             // capture both directions
//! for frame in h.read()? { ... }         // records with direction and injected flag
//! ```
//!
//! Two backends sit behind one interface: **Windows** (`\\.\RxInject` through `CreateFileW`,
//! overlapped `DeviceIoControl`, `ReadFile` and `WriteFile`) and the **simulator** (the driver's
//! own code compiled for this host, running in-process under `ndis-sim`, with a simulated
//! adapter `sim0`, a host stack above it answering ARP, ICMP echo and UDP echo, and a wire below
//! it that can play a capture file inbound). The Windows binary carries only the first, the
//! Linux one only the second.
//!
//! Also here: capture files ([`pcap`]: pcap and pcapng in, pcapng out), filters ([`filter`]:
//! tcpdump expressions through libpcap, or `tcpdump -ddd` text), replay pacing ([`replay`]) and
//! one-line frame descriptions ([`decode`]).

pub mod decode;
mod error;
pub mod filter;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod pcap;
#[cfg(any(not(windows), feature = "sim-client"))]
pub mod remote;
pub mod replay;
#[cfg(not(windows))]
pub mod sim;
#[cfg(windows)]
pub mod windows;

use std::rc::Rc;
use std::time::Duration;

pub use error::{Error, status_hint, status_name};
pub use ndis_sys::NTSTATUS;
pub use rxinject_abi as abi;
use rxinject_abi::Pod;
use rxinject_abi::capture::{self as cap, CaptureConfig, CaptureStats, FilterVerdict};
use rxinject_abi::write::Batch;
pub use rxinject_bpf::Insn;

/// What a request returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: NTSTATUS,
    /// Bytes returned (IOCTL, read) or frames accepted (write).
    pub information: usize,
    pub data: Vec<u8>,
}

/// One open handle of the device, as a backend provides it.
pub(crate) trait Channel {
    fn device_io_control(&self, code: u32, input: &[u8], output_len: usize) -> Result<Reply, Error>;
    fn write(&self, data: &[u8]) -> Result<Reply, Error>;
    fn read(&self, len: usize) -> Result<Reply, Error>;
}

/// A way to reach the driver.
pub(crate) trait Backend {
    fn open(&self) -> Result<Box<dyn Channel>, Error>;
    /// A monotonic clock (the simulator's is virtual).
    fn now(&self) -> Duration;
    /// Waits until [`Backend::now`] reaches `t` (the simulator lets virtual time pass).
    fn sleep_until(&self, t: Duration);
}

/// Where the driver is.
pub enum Target {
    /// The installed driver (Windows).
    Windows,
    /// The machine's real interfaces (Linux): AF_PACKET and an eBPF program in the kernel
    /// serve the driver's ABI (the [`linux`] module).
    #[cfg(target_os = "linux")]
    Linux,
    /// The driver's code in the simulator: in this process, or, when `RXINJECT_SIM` names
    /// one, in the simulator `rxinject sim serve` runs (shared with other processes).
    Simulator(SimOptions),
    /// The simulator `rxinject sim serve` runs at this address.
    #[cfg(any(not(windows), feature = "sim-client"))]
    Remote(remote::Address),
}

/// Options of the simulator backend.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    /// A capture file the simulated wire plays inbound, with its timing, while the tool runs.
    pub wire: Option<std::path::PathBuf>,
    /// Write what reached the simulated host stack to this pcap file at the end.
    pub stack_out: Option<std::path::PathBuf>,
    /// Write what reached the simulated wire to this pcap file at the end.
    pub wire_out: Option<std::path::PathBuf>,
    /// Run this `.sys` (mapped by the simulator's loader) instead of the driver compiled into
    /// the tool: `dist/x64/rxinject.sys` runs the bytes a Windows user installs.
    pub driver: Option<std::path::PathBuf>,
    /// A hostile host stack: it keeps the receive frames it is given (the driver's and the
    /// miniport's) until the adapter pauses, as IP reassembly or a vSwitch may: an Rx write
    /// then stays pending, as the seed's did.
    pub hold_receives: bool,
    /// The longest gap the wire waits between two frames of `wire` (a file whose clock jumps
    /// by decades plays its real gaps only); a step back in time is no gap.
    pub max_gap: Option<std::time::Duration>,
}

/// An adapter rxinject is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adapter {
    pub if_index: u32,
    /// The friendly name (`BaseMiniportInstanceName`).
    pub name: String,
    /// The filter module's name (carries the adapter's GUID).
    pub module: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub max_frame_size: u32,
    pub state: &'static str,
    /// The simulator's short name (`sim0`), with the simulator backend.
    pub sim_name: Option<String>,
}

impl Adapter {
    /// The name to show: the simulator's short name, or the friendly name.
    pub fn display_name(&self) -> &str {
        self.sim_name.as_deref().unwrap_or(&self.name)
    }

    /// Whether `name` designates this adapter: its index, friendly name, module name or GUID,
    /// or simulator name (case-insensitive).
    pub fn matches(&self, name: &str) -> bool {
        let n = name.trim();
        n.parse::<u32>().ok() == Some(self.if_index)
            || n.eq_ignore_ascii_case(&self.name)
            || self
                .sim_name
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(n))
            || (n.len() >= 8 && self.module.to_ascii_lowercase().contains(&n.to_ascii_lowercase()))
    }
}

fn utf16(units: &[u16], len: u16) -> String {
    String::from_utf16_lossy(&units[..usize::from(len).min(units.len())])
}

/// Which machine the driver runs on.
enum Machine {
    #[cfg(windows)]
    Windows,
    #[cfg(target_os = "linux")]
    Linux,
    #[cfg(not(windows))]
    InProcess(Rc<sim::SimState>),
    /// A shared simulator, and what it had counted when this client connected.
    #[cfg(any(not(windows), feature = "sim-client"))]
    Remote(std::sync::Arc<remote::Connection>, remote::ServerStats),
}

/// The driver (or the simulator), opened.
pub struct Driver {
    backend: Rc<dyn Backend>,
    control: Box<dyn Channel>,
    pub version: abi::VersionInfo,
    machine: Machine,
}

impl Driver {
    /// Opens the driver and checks that it speaks this tool's ABI.
    pub fn open(target: Target) -> Result<Driver, Error> {
        #[cfg(any(not(windows), feature = "sim-client"))]
        let target = match target {
            Target::Simulator(options) => match remote::from_env() {
                Some(address) => {
                    if options.wire.is_some()
                        || options.stack_out.is_some()
                        || options.wire_out.is_some()
                        || options.driver.is_some()
                    {
                        return Err(Error::Unsupported(format!(
                            "{} names a shared simulator ({address}): its wire, dumps and driver are the server's options (`rxinject sim serve --wire FILE ...`)",
                            remote::ENV
                        )));
                    }
                    Target::Remote(address)
                }
                None => Target::Simulator(options),
            },
            t => t,
        };
        let (backend, machine): (Rc<dyn Backend>, Machine) = match target {
            #[cfg(any(not(windows), feature = "sim-client"))]
            Target::Remote(address) => {
                let b = remote::RemoteBackend::connect(&address)?;
                let m = Machine::Remote(std::sync::Arc::clone(&b.conn), b.at_start);
                (Rc::new(b), m)
            }
            #[cfg(not(windows))]
            Target::Simulator(options) => {
                let s = Rc::new(sim::SimState::start(options)?);
                (Rc::new(sim::SimBackend(Rc::clone(&s))), Machine::InProcess(s))
            }
            #[cfg(target_os = "linux")]
            Target::Linux => (Rc::new(linux::LinuxBackend::new()), Machine::Linux),
            #[cfg(not(windows))]
            Target::Windows => {
                return Err(Error::Unsupported(
                    "this build talks to the simulator only (the Windows driver is reached from the Windows build of rxinject): use --sim".into(),
                ));
            }
            #[cfg(windows)]
            Target::Windows => (Rc::new(windows::WindowsBackend), Machine::Windows),
            #[cfg(windows)]
            Target::Simulator(_) => {
                return Err(Error::Unsupported(
                    "the simulator is not part of the Windows build: run `rxinject --sim ...` on Linux"
                        .into(),
                ));
            }
        };
        let control = backend.open()?;
        let r = control.device_io_control(
            abi::IOCTL_RXINJECT_GET_VERSION,
            &[],
            std::mem::size_of::<abi::VersionInfo>(),
        )?;
        let version = abi::VersionInfo::read_from(&r.data).ok_or(Error::Driver {
            what: "asking the driver's version".into(),
            status: r.status,
        })?;
        if !abi::abi_compatible(version.abi_version, abi::ABI_VERSION) {
            return Err(Error::Version {
                driver: version.abi_version,
                tool: abi::ABI_VERSION,
            });
        }
        Ok(Driver {
            backend,
            control,
            version,
            machine,
        })
    }

    /// The adapters rxinject is attached to, in index order.
    pub fn adapters(&self) -> Result<Vec<Adapter>, Error> {
        let header = std::mem::size_of::<abi::AdapterListHeader>();
        let entry = std::mem::size_of::<abi::AdapterEntry>();
        let mut room = 16;
        loop {
            let r = self.control.device_io_control(
                abi::IOCTL_RXINJECT_LIST_ADAPTERS,
                &[],
                header + room * entry,
            )?;
            let Some(h) = abi::AdapterListHeader::read_from(&r.data) else {
                return Err(Error::Driver {
                    what: "listing adapters".into(),
                    status: r.status,
                });
            };
            if h.total as usize > room {
                room = h.total as usize;
                continue;
            }
            let mut v: Vec<Adapter> = r
                .data
                .get(header..)
                .unwrap_or(&[])
                .chunks_exact(entry)
                .filter_map(abi::AdapterEntry::read_from)
                .map(|e| Adapter {
                    if_index: e.if_index,
                    name: utf16(&e.friendly_name, e.friendly_name_len),
                    module: utf16(&e.module_name, e.module_name_len),
                    mac: e.mac,
                    mtu: e.mtu,
                    max_frame_size: e.max_frame_size,
                    state: match e.state {
                        abi::ADAPTER_STATE_RUNNING => "running",
                        abi::ADAPTER_STATE_RESTARTING => "restarting",
                        abi::ADAPTER_STATE_PAUSING => "pausing",
                        _ => "paused",
                    },
                    sim_name: self.sim_name(e.if_index),
                })
                .collect();
            v.sort_by_key(|a| a.if_index);
            return Ok(v);
        }
    }

    fn sim_name(&self, if_index: u32) -> Option<String> {
        match &self.machine {
            #[cfg(not(windows))]
            Machine::InProcess(s) => s.adapter_name(if_index),
            #[cfg(any(not(windows), feature = "sim-client"))]
            Machine::Remote(c, _) => c.adapter_name(if_index),
            #[cfg(windows)]
            Machine::Windows => {
                let _ = if_index;
                None
            }
            #[cfg(target_os = "linux")]
            Machine::Linux => {
                let _ = if_index;
                None
            }
        }
    }

    /// The adapter `name` designates (see [`Adapter::matches`]).
    pub fn find_adapter(&self, name: &str) -> Result<Adapter, Error> {
        let all = self.adapters()?;
        match all.iter().find(|a| a.matches(name)) {
            Some(a) => Ok(a.clone()),
            None => Err(Error::AdapterNotFound {
                name: name.into(),
                available: all
                    .iter()
                    .map(|a| format!("{} (index {})", a.display_name(), a.if_index))
                    .collect(),
            }),
        }
    }

    /// A new handle bound to `adapter`.
    pub fn bind(&self, adapter: &Adapter) -> Result<Handle, Error> {
        let ch = self.backend.open()?;
        let req = abi::BindRequest {
            abi_version: abi::ABI_VERSION,
            if_index: adapter.if_index,
        };
        let r = ch.device_io_control(abi::IOCTL_RXINJECT_BIND, &req.to_vec(), 0)?;
        check(r.status, "binding to the adapter")?;
        Ok(Handle {
            ch,
            adapter: adapter.clone(),
        })
    }

    /// The backend's clock (virtual with the simulator).
    pub fn now(&self) -> Duration {
        self.backend.now()
    }

    /// Waits until [`Driver::now`] reaches `t`.
    pub fn sleep_until(&self, t: Duration) {
        self.backend.sleep_until(t);
    }

    /// With the simulator: frames the driver injected that reached the host stack (Rx) and
    /// the wire (Tx) (with a shared simulator: while this client was connected, whoever
    /// injected them). None with the real driver (Windows cannot tell).
    pub fn delivered(&self) -> Option<(usize, usize)> {
        match &self.machine {
            #[cfg(not(windows))]
            Machine::InProcess(s) => Some(s.delivered()),
            #[cfg(any(not(windows), feature = "sim-client"))]
            Machine::Remote(c, start) => {
                let now = c.stats().ok()?;
                Some((
                    now.delivered_rx.saturating_sub(start.delivered_rx) as usize,
                    now.delivered_tx.saturating_sub(start.delivered_tx) as usize,
                ))
            }
            #[cfg(windows)]
            Machine::Windows => None,
            #[cfg(target_os = "linux")]
            Machine::Linux => None,
        }
    }

    /// On the in-process simulator, after a read that found nothing: when the machine is
    /// idle until the simulated wire's next frame, virtual time jumps to it (or to `limit`,
    /// if earlier), as the reads in between would all come back empty. Nothing elsewhere
    /// (a shared simulator's clock follows real time).
    pub fn skip_idle(&self, limit: Option<Duration>) {
        #[cfg(not(windows))]
        if let Machine::InProcess(s) = &self.machine {
            s.skip_idle(limit);
        }
        let _ = limit;
    }

    /// On the simulator: frames of the wire's file the simulated NIC dropped (runts, frames
    /// above the MTU). 0 on Windows.
    pub fn wire_dropped(&self) -> u64 {
        match &self.machine {
            #[cfg(not(windows))]
            Machine::InProcess(s) => s.wire_dropped(),
            #[cfg(any(not(windows), feature = "sim-client"))]
            Machine::Remote(c, _) => c.stats().map_or(0, |s| s.wire_dropped),
            #[cfg(windows)]
            Machine::Windows => 0,
            #[cfg(target_os = "linux")]
            Machine::Linux => 0,
        }
    }

    /// Whether the simulated wire has played all of its file (true without one, and on
    /// Windows).
    pub fn wire_done(&self) -> bool {
        match &self.machine {
            #[cfg(not(windows))]
            Machine::InProcess(s) => s.wire_done(),
            #[cfg(any(not(windows), feature = "sim-client"))]
            Machine::Remote(c, _) => c.stats().is_ok_and(|s| s.wire_done != 0),
            #[cfg(windows)]
            Machine::Windows => true,
            #[cfg(target_os = "linux")]
            Machine::Linux => true,
        }
    }

    /// Whether this is the simulator in this process (its time is virtual: nothing happens
    /// unless the tool waits, and a capture can tell when nothing more will come).
    pub fn is_simulator(&self) -> bool {
        #[cfg(not(windows))]
        if let Machine::InProcess(_) = self.machine {
            return true;
        }
        false
    }

    /// The shared simulator's connection, with `RXINJECT_SIM` (or [`Target::Remote`]).
    #[cfg(any(not(windows), feature = "sim-client"))]
    pub fn remote(&self) -> Option<&std::sync::Arc<remote::Connection>> {
        match &self.machine {
            Machine::Remote(c, _) => Some(c),
            _ => None,
        }
    }

    /// Closes everything. With the in-process simulator: unloads the driver, writes the
    /// requested dumps, and fails if the simulator saw the driver break an NDIS or I/O rule.
    /// With a shared one: fails if it recorded a violation while this client was connected.
    pub fn finish(self) -> Result<(), Error> {
        let Driver {
            backend,
            control,
            machine,
            ..
        } = self;
        drop(control);
        drop(backend);
        match machine {
            #[cfg(not(windows))]
            Machine::InProcess(s) => s.finish(),
            #[cfg(any(not(windows), feature = "sim-client"))]
            Machine::Remote(c, start) => {
                let now = c.stats()?;
                let n = now.violations.saturating_sub(start.violations);
                if n == 0 {
                    Ok(())
                } else {
                    Err(Error::Simulator(format!(
                        "the simulator at {} recorded {n} NDIS or I/O rule violations while this command ran (`rxinject sim stop` prints its report)",
                        c.address()
                    )))
                }
            }
            #[cfg(windows)]
            Machine::Windows => Ok(()),
            #[cfg(target_os = "linux")]
            Machine::Linux => Ok(()),
        }
    }
}

fn check(status: NTSTATUS, what: &str) -> Result<(), Error> {
    if status.is_success() {
        Ok(())
    } else {
        Err(Error::Driver {
            what: what.into(),
            status,
        })
    }
}

/// What became of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Frames handed to NDIS.
    pub accepted: usize,
    /// The write's status (a refusal, or the first Tx failure below).
    pub status: NTSTATUS,
}

/// A captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// When it passed: 100 ns units since 1601-01-01 UTC (FILETIME).
    pub timestamp: i64,
    pub if_index: u32,
    /// Its length on the wire.
    pub len: u32,
    pub inbound: bool,
    pub injected: bool,
    pub vlan_restored: bool,
    pub data: Vec<u8>,
}

impl Captured {
    /// The timestamp in 100 ns units since 1970-01-01 UTC.
    pub fn unix_100ns(&self) -> u64 {
        (self.timestamp - pcap::FILETIME_UNIX_EPOCH).max(0) as u64
    }
}

/// A handle bound to one adapter.
pub struct Handle {
    ch: Box<dyn Channel>,
    pub adapter: Adapter,
}

/// Bytes of the read buffer [`Handle::read`] uses.
pub const READ_BUFFER: usize = 1 << 20;

impl Handle {
    /// Sets the direction of frames whose record does not say (Tx: to the wire, Rx: to the
    /// host stack).
    pub fn set_direction(&self, rx: bool) -> Result<(), Error> {
        let d = abi::SetDirection {
            direction: if rx { abi::DIRECTION_RX } else { abi::DIRECTION_TX },
        };
        let r = self
            .ch
            .device_io_control(abi::IOCTL_RXINJECT_SET_DIRECTION, &d.to_vec(), 0)?;
        check(r.status, "setting the direction")
    }

    /// Injects a batch; waits until every frame is back from NDIS.
    pub fn send(&self, batch: &Batch) -> Result<Sent, Error> {
        let r = self.ch.write(batch.as_bytes())?;
        Ok(Sent {
            accepted: r.information,
            status: r.status,
        })
    }

    /// The handle's and the adapter's counters.
    pub fn counters(&self) -> Result<abi::Counters, Error> {
        let r = self.ch.device_io_control(
            abi::IOCTL_RXINJECT_GET_COUNTERS,
            &[],
            std::mem::size_of::<abi::Counters>(),
        )?;
        check(r.status, "reading counters")?;
        abi::Counters::read_from(&r.data).ok_or(Error::Driver {
            what: "reading counters".into(),
            status: r.status,
        })
    }

    /// Installs a BPF program (empty: none). A refused program is
    /// [`Error::FilterRefused`], with the driver's reason (from `IOCTL_RXINJECT_CHECK_FILTER`:
    /// the refusal itself carries no output, as Windows copies none back with an error
    /// status).
    pub fn set_filter(&self, program: &[Insn]) -> Result<(), Error> {
        let input: Vec<u8> = program.iter().flat_map(|i| i.to_bytes()).collect();
        let r = self
            .ch
            .device_io_control(abi::IOCTL_RXINJECT_SET_FILTER, &input, 0)?;
        if r.status.is_success() {
            return Ok(());
        }
        match self.check_filter(program) {
            Ok(v) if v.error != cap::FILTER_OK => Err(Error::FilterRefused {
                error: v.error,
                instruction: v.instruction,
            }),
            _ => check(r.status, "setting the filter"),
        }
    }

    /// What the driver thinks of a BPF program, installing nothing
    /// (`IOCTL_RXINJECT_CHECK_FILTER`, ABI 1.3).
    pub fn check_filter(&self, program: &[Insn]) -> Result<FilterVerdict, Error> {
        let input: Vec<u8> = program.iter().flat_map(|i| i.to_bytes()).collect();
        let r = self.ch.device_io_control(
            abi::IOCTL_RXINJECT_CHECK_FILTER,
            &input,
            std::mem::size_of::<FilterVerdict>(),
        )?;
        check(r.status, "checking the filter")?;
        FilterVerdict::read_from(&r.data).ok_or(Error::Driver {
            what: "checking the filter".into(),
            status: r.status,
        })
    }

    /// Runs an OID request on the bound adapter (`IOCTL_RXINJECT_OID_REQUEST`, ABI 1.4):
    /// a query into a buffer of `len` bytes, or a set of `data`. Returns the miniport's
    /// status (an `NDIS_STATUS`), the bytes written or read, the bytes needed, and a query's
    /// answer.
    pub fn oid_request(
        &self,
        oid: u32,
        set: Option<&[u8]>,
        len: u32,
    ) -> Result<(u32, u32, u32, Vec<u8>), Error> {
        let mut input = abi::OidRequest {
            oid,
            kind: if set.is_some() {
                abi::OID_SET
            } else {
                abi::OID_QUERY
            },
            timeout_ms: 0,
            length: set.map_or(len, |d| d.len() as u32),
        }
        .to_vec();
        input.extend_from_slice(set.unwrap_or(&[]));
        let out = std::mem::size_of::<abi::OidResult>() + if set.is_some() { 0 } else { len as usize };
        let r = self
            .ch
            .device_io_control(abi::IOCTL_RXINJECT_OID_REQUEST, &input, out)?;
        check(r.status, "an OID request")?;
        let res = abi::OidResult::read_from(&r.data).ok_or(Error::Driver {
            what: "an OID request".into(),
            status: r.status,
        })?;
        let data = r.data[std::mem::size_of::<abi::OidResult>()..].to_vec();
        Ok((res.status, res.bytes, res.bytes_needed, data))
    }

    /// Promiscuous mode (`NDIS_PACKET_TYPE_PROMISCUOUS`), for [`Handle::set_packet_filter`].
    pub const PROMISCUOUS: u32 = ndis_sys::NDIS_PACKET_TYPE_PROMISCUOUS;

    /// Asks for packet filter types for this handle (`NDIS_PACKET_TYPE_*`; 0x20 is
    /// promiscuous), merged by the driver with the protocols' own. Fails with the miniport's
    /// status if it refused.
    pub fn set_packet_filter(&self, types: u32) -> Result<(), Error> {
        let (status, _, _, _) = self.oid_request(
            ndis_sys::OID_GEN_CURRENT_PACKET_FILTER,
            Some(&types.to_le_bytes()),
            0,
        )?;
        // NDIS statuses are NTSTATUS values but for NDIS's own group, which prints the same.
        check(NTSTATUS(status as i32), "setting the packet filter")
    }

    /// Starts (or reconfigures) capture.
    pub fn start_capture(&self, config: &CaptureConfig) -> Result<(), Error> {
        let r = self
            .ch
            .device_io_control(abi::IOCTL_RXINJECT_SET_CAPTURE, &config.to_vec(), 0)?;
        check(r.status, "starting capture")
    }

    /// Stops capture.
    pub fn stop_capture(&self) -> Result<(), Error> {
        let r = self
            .ch
            .device_io_control(abi::IOCTL_RXINJECT_STOP_CAPTURE, &[], 0)?;
        check(r.status, "stopping capture")
    }

    /// One read: the records the driver returns (as the capture settings say when).
    pub fn read(&self) -> Result<Vec<Captured>, Error> {
        let r = self.ch.read(READ_BUFFER)?;
        check(r.status, "reading captured frames")?;
        let mut it = cap::records(&r.data);
        let v = it
            .by_ref()
            .map(|rec| Captured {
                timestamp: rec.header.timestamp,
                if_index: rec.header.if_index,
                len: rec.header.len,
                inbound: rec.header.flags & cap::RECORD_INBOUND != 0,
                injected: rec.header.flags & cap::RECORD_INJECTED != 0,
                vlan_restored: rec.header.flags & cap::RECORD_VLAN_RESTORED != 0,
                data: rec.frame.to_vec(),
            })
            .collect();
        if it.malformed() {
            return Err(Error::Simulator(
                "the driver returned a malformed capture record".into(),
            ));
        }
        Ok(v)
    }

    /// The capture counters.
    pub fn capture_stats(&self) -> Result<CaptureStats, Error> {
        let r = self.ch.device_io_control(
            abi::IOCTL_RXINJECT_GET_CAPTURE_STATS,
            &[],
            std::mem::size_of::<CaptureStats>(),
        )?;
        check(r.status, "reading capture statistics")?;
        CaptureStats::read_from(&r.data).ok_or(Error::Driver {
            what: "reading capture statistics".into(),
            status: r.status,
        })
    }
}
