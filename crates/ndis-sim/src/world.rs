//! The simulated machine: configuration, adapters (miniport, filter module, protocol), the
//! object tables, and the process-wide "current world" the exported NDIS functions reach.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use ndis_sys::*;

use crate::mem::MemTable;
use crate::nbl::Objects;
use crate::rules::{Rule, Strictness, Violation};
use crate::tls;

/// How a lower (or upper) component completes what the filter hands it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Inside the call that handed it over.
    Sync,
    /// Later, when the simulation is pumped, in mixed chains and shuffled order.
    Async,
    /// Randomly one or the other (seeded).
    Mixed,
}

/// The IRQL the simulated NDIS uses for datapath calls into the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqlMode {
    Dispatch,
    Passive,
    /// Randomly either (seeded), with the `*_DISPATCH_LEVEL` flags set to match.
    Mixed,
}

/// One simulated Ethernet adapter.
#[derive(Clone, Debug)]
pub struct AdapterConfig {
    /// Short name used by tools (`sim0`).
    pub name: String,
    /// Friendly name (`BaseMiniportInstanceName`).
    pub friendly_name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// `NdisMedium802_3` for Ethernet; anything else should be refused by the filter.
    pub medium: NDIS_MEDIUM,
    pub if_index: u32,
    /// The host stack's IPv4 address on this adapter: it answers ARP requests for it and ICMP
    /// echo requests to it (on the next pump, through the filter, down to the wire).
    pub host_ip: [u8; 4],
    /// Link speed, bits per second (`OID_GEN_LINK_SPEED`, `OID_GEN_LINK_STATE`).
    pub link_speed: u64,
    /// The miniport (an Ethernet one) indicates only the frames its packet filter
    /// (`OID_GEN_CURRENT_PACKET_FILTER` and `OID_802_3_MULTICAST_LIST`) accepts, as a NIC
    /// does (on by default: frames for other stations need promiscuous mode); off, it
    /// indicates every frame.
    pub honour_packet_filter: bool,
}

impl AdapterConfig {
    /// An Ethernet adapter with MTU 1500 and a locally administered MAC derived from `index`.
    pub fn ethernet(index: usize) -> AdapterConfig {
        AdapterConfig {
            name: format!("sim{index}"),
            friendly_name: format!("Simulated Ethernet Adapter #{index}"),
            mac: [0x02, 0x52, 0x58, 0x00, 0x00, index as u8 + 1],
            mtu: 1500,
            medium: NdisMedium802_3,
            if_index: 10 + index as u32,
            host_ip: [192, 168, 77 + index as u8, 1],
            link_speed: 1_000_000_000,
            honour_packet_filter: true,
        }
    }
}

/// Hostile behaviour of the simulated Windows, each switched on per test (and all by
/// `ndis-verify --hostile`), each reproducible from the machine's seed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hostile {
    /// The host stack keeps the receive NBLs it is given (the filter's own and the
    /// miniport's) for as long as it likes, as IP reassembly or a vSwitch does: it returns
    /// them only when the stack pauses or the filter detaches.
    pub hold_receives: bool,
    /// Low-resources simulation, as Driver Verifier's: once the driver runs (outside
    /// DriverEntry and FilterAttach, as Verifier's grace period spares a starting driver),
    /// one allocation in `fail_one_in` (seeded: NBLs, NET_BUFFERs, MDLs, pool memory, timers,
    /// work items, OID clones) fails. 0: none fails.
    pub fail_one_in: u32,
    /// Every allocation inside FilterAttach fails: the attach must fail cleanly (and leak
    /// nothing).
    pub fail_attach: bool,
    /// The interleaving explorer: at the driver's `interrupt_at`-th call into NDIS or the
    /// kernel (counted from 1; 0: off), another processor runs an [`Interruption`] (chosen by
    /// `interrupt_at` modulo 4: pause and restart the module, cancel the pending IRPs, detach
    /// and re-attach the module, or close every open handle), while the
    /// driver's thread waits at that point until the other has finished or waits for it. A
    /// run count sweeping `interrupt_at` reaches the races that need a second CPU. The point
    /// and what runs there are fixed; once the other processor waits for the driver's
    /// thread, the two run as real threads.
    pub interrupt_at: u64,
    /// A racing writer: at the driver's `scribble_at`-th call into NDIS or the kernel
    /// (counted as for `interrupt_at`; 0: off), another thread of the writer overwrites the
    /// buffer of every direct-I/O write not yet completed with random bytes (seeded), once.
    /// Direct I/O maps the writer's own pages, so "Using Direct I/O" leaves the driver to
    /// cope: whatever it validated it must not read again.
    pub scribble_at: u64,
    /// Another thread of the client closes every handle just after the `close_at_lookup`-th
    /// request through one (counted from 1; 0: off) has looked its handle up, before the I/O
    /// manager dispatches it. On
    /// Windows the request holds the file object from that lookup until it completes, so
    /// the driver gets it after IRP_MJ_CLEANUP and before IRP_MJ_CLOSE ("IRP_MJ_CLOSE": all
    /// outstanding I/O requests have been completed or canceled), and must refuse or finish
    /// it without the handle's state that cleanup tore down.
    pub close_at_lookup: u64,
    /// The `fail_in_driver_entry`-th allocation DriverEntry makes fails (counted from 1; 0:
    /// off), as Driver Verifier's systematic low-resources simulation fails one call site at
    /// a time: a sweep over `n` takes every failure path of the driver's initialisation,
    /// which must then fail DriverEntry (or carry on) and leave nothing allocated.
    pub fail_in_driver_entry: u32,
}

impl Hostile {
    /// Every hostile mode (one allocation in 16 fails).
    pub fn all() -> Hostile {
        Hostile {
            hold_receives: true,
            fail_one_in: 16,
            fail_attach: false,
            interrupt_at: 0,
            scribble_at: 0,
            close_at_lookup: 0,
            fail_in_driver_entry: 0,
        }
    }
}

/// Simulator configuration. Defaults: one Ethernet adapter, asynchronous completions,
/// datapath at DISPATCH_LEVEL, frames split across MDLs, strict rules.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub adapters: Vec<AdapterConfig>,
    pub seed: u64,
    pub send_completion: Completion,
    pub oid_completion: Completion,
    pub datapath_irql: IrqlMode,
    /// Split foreign frames across several MDLs and start their data at a non-zero offset,
    /// as real stacks do (exercises every reader of NB data).
    pub mdl_split: bool,
    /// Attach and restart every adapter inside `NdisFRegisterFilterDriver` (rule ST8).
    pub attach_on_register: bool,
    /// Pause the protocol above before the filter (NDIS's top-down order): it returns what it
    /// holds and waits for its sends first.
    pub pause_protocol_first: bool,
    /// The NDIS version of the simulated Windows (6.89: Windows 11): a filter may register
    /// any documented version up to it.
    pub ndis_version: (u8, u8),
    pub strict: Strictness,
    /// Hostile modes (all off by default).
    pub hostile: Hostile,
    /// Logical processors (1 ..= 64, one group): `KeQueryMaximumProcessorCountEx`, and how
    /// many threads may run at DISPATCH_LEVEL at once, each on its own processor.
    pub processors: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            adapters: vec![AdapterConfig::ethernet(0)],
            seed: 0x5eed,
            send_completion: Completion::Async,
            oid_completion: Completion::Mixed,
            datapath_irql: IrqlMode::Dispatch,
            mdl_split: true,
            attach_on_register: true,
            pause_protocol_first: true,
            ndis_version: (6, 89),
            strict: Strictness::default(),
            hostile: Hostile::default(),
            processors: 8,
        }
    }
}

/// The state of a filter module, as NDIS sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModState {
    Detached,
    Attaching,
    Paused,
    Restarting,
    Running,
    Pausing,
}

/// Progress of a pause or restart the filter may pend.
#[derive(Default, Debug)]
pub(crate) struct OpProgress {
    /// The Filter{Pause,Restart} call is executing.
    pub in_call: bool,
    /// The operation is in progress (from the call until it completes).
    pub active: bool,
    /// Number of completions received for the current operation.
    pub completions: u32,
    /// Status passed to NdisFRestartComplete.
    pub status: Option<NDIS_STATUS>,
}

pub(crate) struct ModuleRec {
    pub state: ModState,
    /// The current NdisFilterHandle (0 while detached).
    pub handle: usize,
    /// FilterModuleContext from NdisFSetAttributes.
    pub ctx: usize,
    pub attributes_set: bool,
    pub pause: OpProgress,
    pub restart: OpProgress,
    pub attaches: u32,
    /// FilterRestart calls, ever.
    pub restarts: u32,
    /// The general restart attributes as the filter left them for the drivers above (NDIS
    /// reads them back after FilterRestart), at the last restart.
    pub restart_seen: Option<crate::lifecycle::RestartSeen>,
    /// Epoch at which the current (or last) pause began.
    pub pause_epoch: u64,
    /// Pauses the filter pended (FilterPause returned NDIS_STATUS_PENDING), ever.
    pub pauses_pended: u32,
}

/// Who put a frame on the wire or in front of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameOrigin {
    /// A foreign NBL: the protocol above (Tx) or the miniport below (Rx).
    Foreign,
    /// An NBL the filter allocated (an injection).
    Filter,
}

/// A frame that reached the simulated wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame {
    pub bytes: Vec<u8>,
    pub origin: FrameOrigin,
    /// The protocol's sequence number for foreign frames; 0 for the filter's.
    pub id: u64,
    /// The send flags the frame's chain came down with (`NDIS_SEND_FLAGS_*`, the DISPATCH
    /// bit aside): what the miniport was asked, e.g. `CHECK_FOR_LOOPBACK`.
    pub send_flags: u32,
    /// The chain the frame came down in: one number for each chain handed to the miniport,
    /// rising, shared with [`RxFrame::chain`] (frames of one call have the same number).
    pub chain: u64,
}

/// A frame that reached the simulated protocol above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxFrame {
    pub bytes: Vec<u8>,
    pub origin: FrameOrigin,
    /// The miniport's sequence number for foreign frames; 0 for the filter's.
    pub id: u64,
    /// Indicated with NDIS_RECEIVE_FLAGS_RESOURCES.
    pub resources: bool,
    /// The 802.1Q tag control information from `Ieee8021QNetBufferListInfo` (the tag is out
    /// of band: `bytes` holds the untagged frame).
    pub vlan: Option<u16>,
    /// The chain the frame came up in (see [`WireFrame::chain`]).
    pub chain: u64,
}

/// The completion of one of the protocol's sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxCompletion {
    pub id: u64,
    pub status: NDIS_STATUS,
}

/// The packet filter the simulated protocol sets when it binds: what TCP/IP asks for.
pub const PROTOCOL_PACKET_FILTER: u32 =
    NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_MULTICAST | NDIS_PACKET_TYPE_BROADCAST;

/// The filter types the simulated miniport supports (a set of any other bit but NDIS's own
/// `NDIS_PACKET_TYPE_ALL_LOCAL` fails with NDIS_STATUS_NOT_SUPPORTED).
pub const SUPPORTED_PACKET_FILTERS: u32 = NDIS_PACKET_TYPE_DIRECTED
    | NDIS_PACKET_TYPE_MULTICAST
    | NDIS_PACKET_TYPE_ALL_MULTICAST
    | NDIS_PACKET_TYPE_BROADCAST
    | NDIS_PACKET_TYPE_PROMISCUOUS;

/// Entries the simulated miniport's multicast list holds (`OID_802_3_MAXIMUM_LIST_SIZE`).
pub const MULTICAST_LIST_SIZE: usize = 32;

/// Whether a NIC with packet filter `filter`, station address `mac` and multicast list
/// `multicast` accepts a frame for `dst` ("OID_GEN_CURRENT_PACKET_FILTER": directed frames
/// carry the station address; multicast ones an address of the list, or any with
/// ALL_MULTICAST; broadcast ones all ones; PROMISCUOUS takes everything).
pub fn packet_filter_accepts(filter: u32, mac: &[u8; 6], multicast: &[[u8; 6]], dst: &[u8]) -> bool {
    let Some(dst) = dst.get(..6) else {
        return false;
    };
    if filter & NDIS_PACKET_TYPE_PROMISCUOUS != 0 {
        return true;
    }
    if dst == [0xFF; 6] {
        filter & NDIS_PACKET_TYPE_BROADCAST != 0
    } else if dst[0] & 1 != 0 {
        filter & NDIS_PACKET_TYPE_ALL_MULTICAST != 0
            || (filter & NDIS_PACKET_TYPE_MULTICAST != 0 && multicast.iter().any(|m| m[..] == *dst))
    } else {
        filter & NDIS_PACKET_TYPE_DIRECTED != 0 && dst == mac
    }
}

#[derive(Default)]
pub(crate) struct MiniportRec {
    pub wire: Vec<WireFrame>,
    /// NBLs waiting for an asynchronous send completion.
    pub pending_sends: Vec<usize>,
    /// Foreign receive NBLs indicated without RESOURCES and not yet returned.
    pub rx_outstanding: usize,
    pub rx_returned: u64,
    /// Status the miniport completes sends with (SUCCESS unless a test says otherwise).
    pub send_status: Option<NDIS_STATUS>,
    /// Clones of OID requests the miniport holds (async completion): (clone, status).
    pub oid_pending: Vec<(usize, NDIS_STATUS)>,
    pub net_pnp_events: u64,
    pub device_pnp_events: u64,
    /// OID_GEN_CURRENT_PACKET_FILTER as last set (the protocol above set directed,
    /// multicast and broadcast when it bound, before any filter attached).
    pub packet_filter: u32,
    /// OID_802_3_MULTICAST_LIST as last set.
    pub multicast: Vec<[u8; 6]>,
    /// Frames the packet filter kept from the stack ([`AdapterConfig::honour_packet_filter`]).
    pub dropped_by_packet_filter: u64,
    /// The miniport keeps the OID requests it pends until they are cancelled (a slow or
    /// hung device; `AdapterRef::hold_oids`).
    pub hold_oids: bool,
    /// Cancel ids (sends and OID requests) that reached the miniport.
    pub cancels: Vec<usize>,
    /// Frames that arrived while the miniport was paused (not indicated).
    pub dropped_while_paused: u64,
}

#[derive(Default)]
pub(crate) struct ProtocolRec {
    pub received: Vec<RxFrame>,
    /// Receive NBLs the protocol holds, to return later (possibly from several indications).
    pub held: Vec<usize>,
    pub tx_outstanding: usize,
    pub completions: Vec<TxCompletion>,
    pub statuses: Vec<NDIS_STATUS>,
    /// The protocol is pausing or unbinding: it returns everything it holds, even with
    /// [`Hostile::hold_receives`].
    pub releasing: bool,
    /// The protocol is paused (a stack pause runs top-down: it is paused first, and sends
    /// nothing until the stack restarts).
    pub paused: bool,
    /// Sends handed to the paused protocol, sent when it restarts: (frames, flags, ids).
    pub deferred: Vec<(Vec<Vec<u8>>, u32, Vec<u64>)>,
    /// Answers of the host stack waiting to be sent.
    pub replies_queued: Vec<Vec<u8>>,
    /// Send ids of the answers sent.
    pub reply_ids: std::collections::HashSet<u64>,
}

/// Names of an adapter as NDIS passes them in the attach parameters (owned UTF-16).
pub(crate) struct AdapterNames {
    pub module_guid: Vec<u16>,
    pub instance: Vec<u16>,
    pub miniport: Vec<u16>,
}

pub(crate) struct Adapter {
    pub idx: usize,
    pub cfg: AdapterConfig,
    /// SourceHandle of the miniport's NBLs.
    pub miniport_handle: usize,
    /// SourceHandle of the protocol's NBLs.
    pub protocol_handle: usize,
    pub names: AdapterNames,
    pub module: Mutex<ModuleRec>,
    pub miniport: Mutex<MiniportRec>,
    pub protocol: Mutex<ProtocolRec>,
    /// The stack's edges, where the miniport indicates and the protocol sends.
    pub edges: Edges,
    /// The miniport's MTU now (`cfg.mtu` until a test changes it: [`crate::AdapterRef::set_mtu`]).
    pub mtu: std::sync::atomic::AtomicU32,
}

/// The edges of an adapter's stack: the miniport's receive indications and send
/// completions, and the protocol's sends and returns, enter here, on whatever thread makes
/// them. NDIS pauses the whole stack, the
/// miniport included ("NDIS pauses the miniport adapter", after the filters: "Pausing a
/// Driver Stack", learn.microsoft.com/windows-hardware/drivers/network/pausing-a-driver-stack),
/// before it detaches a filter, and restarts it only once the filters are
/// in place: while the edges are closed nothing new enters (the miniport indicates nothing,
/// the protocol's sends wait), and a detach waits until what entered before has left, so no
/// call reaches a module that is detaching or attaching.
#[derive(Default)]
pub(crate) struct Edges {
    closed: std::sync::atomic::AtomicBool,
    inside: std::sync::atomic::AtomicUsize,
}

/// A call inside the edges of a stack (see [`Edges::enter`]).
pub(crate) struct InsideEdges<'a>(&'a Edges);

impl Drop for InsideEdges<'_> {
    fn drop(&mut self) {
        self.0.inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Edges {
    /// Enters, unless closed. (Counted before the check, and the close sets the flag before
    /// waiting for the count: one of the two sees the other.)
    pub fn enter(&self) -> Option<InsideEdges<'_>> {
        use std::sync::atomic::Ordering::SeqCst;
        self.inside.fetch_add(1, SeqCst);
        let inside = InsideEdges(self);
        (!self.closed.load(SeqCst)).then_some(inside)
    }

    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn open(&self) {
        self.closed.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Nothing is inside.
    pub fn idle(&self) -> bool {
        self.inside.load(std::sync::atomic::Ordering::SeqCst) == 0
    }
}

/// The registered filter driver.
pub(crate) struct DriverReg {
    pub handle: usize,
    pub context: usize,
    pub chars: Chars,
    /// Friendly, unique and service name from the characteristics.
    pub names: [String; 3],
    /// The NDIS version the driver registered (`MajorNdisVersion`, `MinorNdisVersion`).
    pub version: (u8, u8),
}

/// The handlers from the filter's characteristics (a copy: NDIS does not keep the caller's
/// structure).
#[derive(Clone, Copy)]
pub(crate) struct Chars {
    pub set_options: SET_OPTIONS_HANDLER,
    pub set_module_options: FILTER_SET_FILTER_MODULE_OPTIONS_HANDLER,
    pub attach: FILTER_ATTACH_HANDLER,
    pub detach: FILTER_DETACH_HANDLER,
    pub restart: FILTER_RESTART_HANDLER,
    pub pause: FILTER_PAUSE_HANDLER,
    pub send: FILTER_SEND_NET_BUFFER_LISTS_HANDLER,
    pub send_complete: FILTER_SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER,
    pub cancel_send: FILTER_CANCEL_SEND_HANDLER,
    pub receive: FILTER_RECEIVE_NET_BUFFER_LISTS_HANDLER,
    pub return_nbls: FILTER_RETURN_NET_BUFFER_LISTS_HANDLER,
    pub oid_request: FILTER_OID_REQUEST_HANDLER,
    pub oid_complete: FILTER_OID_REQUEST_COMPLETE_HANDLER,
    pub cancel_oid: FILTER_CANCEL_OID_REQUEST_HANDLER,
    pub device_pnp: FILTER_DEVICE_PNP_EVENT_NOTIFY_HANDLER,
    pub net_pnp: FILTER_NET_PNP_EVENT_HANDLER,
    pub status: FILTER_STATUS_HANDLER,
}

/// What a handle value stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandleKind {
    FilterDriver,
    Module(usize),
    Pool,
    Miniport(usize),
    Protocol(usize),
    /// A control device from NdisRegisterDeviceEx.
    Device,
}

/// Everything the simulated machine holds.
pub(crate) struct World {
    pub cfg: SimConfig,
    pub adapters: Vec<Adapter>,
    pub violations: Mutex<Vec<Violation>>,
    pub log: Mutex<Vec<String>>,
    pub mem: Mutex<MemTable>,
    pub locks: Mutex<crate::AddrMap<crate::locks::LockRec>>,
    pub objs: Mutex<Objects>,
    pub driver: Mutex<Option<DriverReg>>,
    pub oids: Mutex<crate::oid::OidTable>,
    /// The I/O manager: devices, files, IRPs.
    pub io: Mutex<crate::io::IoTable>,
    /// The DRIVER_OBJECT passed to DriverEntry (its address), once loaded.
    pub driver_object: Mutex<Option<usize>>,
    /// NDIS timer objects.
    pub timers: Mutex<crate::timer::TimerTable>,
    /// The virtual clock (100 ns units since boot; see `timer.rs`).
    pub clock: std::sync::atomic::AtomicU64,
    pub rng: Mutex<crate::Rng>,
    /// The low-resources simulation's own generator (it must not change the other choices).
    pub fault_rng: Mutex<crate::Rng>,
    /// Allocations the low-resources simulation failed.
    pub failed_allocations: std::sync::atomic::AtomicU64,
    /// Allocations DriverEntry made so far ([`Hostile::fail_in_driver_entry`]).
    pub entry_allocations: std::sync::atomic::AtomicU32,
    pub bugcheck_on_violation: bool,
    /// A clock that ticks at every call into the driver and every state change.
    pub epoch: std::sync::atomic::AtomicU64,
    /// The loaded image's address range (base, length), when the driver runs from a `.sys`.
    pub image_range: Mutex<Option<(usize, usize)>>,
    /// Events, configuration handles, work items, NET_BUFFER pools (see `kernel.rs`).
    pub kern: Mutex<crate::kernel::KernelTable>,
    /// Threads busy now: running driver code or simulator work (see [`World::busy`]).
    pub active: std::sync::atomic::AtomicUsize,
    /// Of those, threads waiting (`NdisWaitEvent`, `KeWaitForSingleObject`).
    pub waiting: std::sync::atomic::AtomicUsize,
    /// Test threads that act on the machine from outside ([`crate::Sim::actor`]).
    pub actors: std::sync::atomic::AtomicUsize,
    /// The driver's calls into NDIS and the kernel, ever (the interleaving explorer's clock).
    pub ndis_calls: std::sync::atomic::AtomicU64,
    /// Chains delivered to the miniport or the protocol so far ([`WireFrame::chain`]).
    pub chains: std::sync::atomic::AtomicU64,
    /// Times a settling thread found only other busy threads to wait for.
    pub stalls: std::sync::atomic::AtomicU64,
    /// Spin lock acquisitions by the driver (NDIS and kernel spin locks), ever.
    pub lock_acquisitions: std::sync::atomic::AtomicU64,
    /// The explorer's other processors, joined before the machine is examined.
    pub helpers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Own NBLs the filter issued while its module was Pausing or Paused.
    pub own_issued_while_pausing: std::sync::atomic::AtomicU64,
    /// Own NBLs the filter issued still carrying state from their previous trip.
    pub stale_own_nbls: std::sync::atomic::AtomicU64,
    /// Interruptions the explorer ran.
    pub interruptions: std::sync::atomic::AtomicU64,
    /// Requests through a handle so far (for `Hostile::close_at_lookup`).
    pub lookups: std::sync::atomic::AtomicU64,
    /// Write buffers the racing writer overwrote ([`Hostile::scribble_at`]).
    pub scribbled: std::sync::atomic::AtomicU64,
    /// Whether the racing writer has run.
    pub scribble_done: std::sync::atomic::AtomicBool,
    /// What the racing writer writes over a buffer (random bytes if none).
    pub racing_writer: Mutex<Option<RacingWriter>>,
}

/// A rewrite of a write's buffer by another thread of the writer (see
/// [`Hostile::scribble_at`]).
pub type RacingWriter = Box<dyn Fn(&mut [u8]) + Send>;

/// See [`World::busy`].
pub(crate) struct BusyGuard<'a>(&'a World);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        // A pinned thread stays counted until its pin is released.
        if !tls::pinned() {
            tls::set_counted(false);
            self.0.active.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// See [`World::waiting_here`].
pub(crate) struct WaitingGuard<'a>(&'a World);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        tls::set_waiting(false);
        self.0.waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

static CURRENT: RwLock<Option<Arc<World>>> = RwLock::new(None);

/// The running simulation. The exported NDIS functions call this; with no simulation running
/// there is no machine to run on, which is a fatal error for the process.
pub(crate) fn world() -> Arc<World> {
    let w = {
        let current = CURRENT.read().unwrap_or_else(|e| e.into_inner());
        match current.as_ref() {
            Some(w) => Arc::clone(w),
            None => {
                eprintln!("ndis-sim: an NDIS function was called while no simulation is running");
                std::process::abort()
            }
        }
    };
    let n = w.ndis_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    tls::enter_call(w.epoch.load(std::sync::atomic::Ordering::SeqCst));
    let at = w.cfg.hostile.interrupt_at;
    if at != 0 && n >= at {
        interrupt(&w);
    }
    let at = w.cfg.hostile.scribble_at;
    if at != 0 && n >= at && !w.scribble_done.swap(true, std::sync::atomic::Ordering::SeqCst) {
        crate::io::scribble(&w);
    }
    w
}

/// What the interleaving explorer's other processor does (`interrupt_at` modulo 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interruption {
    /// Pause the filter module and restart it (`NdisFRestartFilter`: the protocol above keeps
    /// running).
    PauseRestart,
    /// Cancel every pending IRP (`CancelIoEx`).
    Cancel,
    /// Pause the stack, detach the filter module, attach it again and restart the stack (the
    /// adapter disabled and enabled, or the filter reinstalled).
    Detach,
    /// Close every open handle of the driver's devices (another thread's `CloseHandle`, or
    /// the client process exiting): cleanup at once, close when the handle's last IRP is
    /// done.
    Cleanup,
}

impl Interruption {
    /// The interruption of point `at`.
    pub fn of(at: u64) -> Interruption {
        match at % 4 {
            0 => Interruption::PauseRestart,
            1 => Interruption::Cancel,
            2 => Interruption::Detach,
            _ => Interruption::Cleanup,
        }
    }
}

/// The interleaving explorer's interruption, at the driver's call into NDIS number
/// `interrupt_at` (or the first call after it where one may run: NDIS serializes its PnP
/// operations, so none runs inside DriverEntry, DriverUnload, FilterAttach, FilterDetach,
/// FilterPause or FilterRestart, and none while the driver holds a spin lock, which the other
/// processor would spin on).
fn interrupt(w: &Arc<World>) {
    use std::sync::atomic::Ordering;
    let ctx = tls::context_name();
    let excluded = matches!(
        ctx,
        "DriverEntry"
            | "DriverUnload"
            | "FilterAttach"
            | "FilterDetach"
            | "FilterPause"
            | "FilterRestart"
            | "FilterSetModuleOptions"
            | "driver"
    ) || !tls::held_locks().is_empty();
    if excluded || w.interruptions.load(Ordering::SeqCst) > 0 {
        return;
    }
    w.interruptions.fetch_add(1, Ordering::SeqCst);
    let action = Interruption::of(w.cfg.hostile.interrupt_at);
    if std::env::var_os("RXSIM_TRACE").is_some() {
        eprintln!(
            "ndis-sim: interleaving: {action:?} in {ctx}, at NDIS call {}",
            w.ndis_calls.load(Ordering::SeqCst)
        );
    }
    on_another_processor(w, move |w2| match action {
        Interruption::Cancel => {
            for irp in crate::io::pending_irps(w2) {
                crate::io::cancel(w2, irp);
            }
        }
        Interruption::PauseRestart => {
            for a in &w2.adapters {
                if w2.module_state(a) == ModState::Running {
                    crate::lifecycle::pause_module(w2, a);
                    let _ = crate::lifecycle::restart(w2, a);
                }
            }
        }
        Interruption::Detach => {
            for a in &w2.adapters {
                if w2.module_state(a) == ModState::Running {
                    // The protocol stays paused until the new module runs: nothing
                    // reaches a module still attaching.
                    crate::lifecycle::detach_filter(w2, a);
                    if crate::lifecycle::attach(w2, a).is_err() {
                        crate::datapath::protocol_restart(w2, a);
                    } else if crate::lifecycle::restart(w2, a) != NDIS_STATUS_SUCCESS {
                        // The stack restarts without the filter.
                        crate::lifecycle::detach_module(w2, a);
                    }
                }
            }
        }
        Interruption::Cleanup => close_every_handle(w2),
    });
}

/// Every open handle of the driver's devices closed (another thread's `CloseHandle`, or the
/// process exiting).
pub(crate) fn close_every_handle(w: &World) {
    for f in crate::io::open_files(w) {
        crate::io::close(w, f);
    }
}

/// Runs `job` on another processor (a thread of its own), while this thread waits until it
/// has done its part or waits for this one; joined by [`World::join_helpers`].
pub(crate) fn on_another_processor(w: &Arc<World>, job: impl FnOnce(&Arc<World>) + Send + 'static) {
    use std::sync::atomic::Ordering;
    // Until the other processor is joined, this thread counts as able to act.
    w.pin_busy();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stalls = w.stalls.load(Ordering::SeqCst);
    let (w2, done2) = (Arc::clone(w), Arc::clone(&done));
    let helper = std::thread::spawn(move || {
        job(&w2);
        done2.store(true, Ordering::SeqCst);
    });
    while !done.load(Ordering::SeqCst) && w.stalls.load(Ordering::SeqCst) == stalls {
        std::thread::yield_now();
    }
    lock(&w.helpers).push(helper);
}

/// The running simulation, if any (without counting an NDIS call, as [`world`] does).
pub(crate) fn current() -> Option<Arc<World>> {
    CURRENT.read().unwrap_or_else(|e| e.into_inner()).clone()
}

pub(crate) fn install(w: Arc<World>) {
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(w);
}

pub(crate) fn uninstall() {
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Locks a simulator mutex, ignoring poisoning (a panicking test thread must not make every
/// later check panic too).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl World {
    pub fn new(cfg: SimConfig) -> World {
        let mut objs = Objects::new();
        let adapters = cfg
            .adapters
            .iter()
            .enumerate()
            .map(|(idx, ac)| {
                let miniport_handle = objs.new_handle(HandleKind::Miniport(idx));
                let protocol_handle = objs.new_handle(HandleKind::Protocol(idx));
                let guid = format!(
                    "{{{:08X}-5349-4D00-8000-{:012X}}}-{{55851E4F-D5BE-4EA9-BC6B-725F93193597}}-0000",
                    idx,
                    u64::from(ac.if_index)
                );
                Adapter {
                    idx,
                    mtu: std::sync::atomic::AtomicU32::new(ac.mtu),
                    cfg: ac.clone(),
                    miniport_handle,
                    protocol_handle,
                    names: AdapterNames {
                        module_guid: guid.encode_utf16().collect(),
                        instance: ac.friendly_name.encode_utf16().collect(),
                        miniport: format!("\\DEVICE\\{{SIM-{idx}}}").encode_utf16().collect(),
                    },
                    module: Mutex::new(ModuleRec {
                        state: ModState::Detached,
                        handle: 0,
                        ctx: 0,
                        attributes_set: false,
                        pause: OpProgress::default(),
                        restart: OpProgress::default(),
                        attaches: 0,
                        restarts: 0,
                        restart_seen: None,
                        pause_epoch: 0,
                        pauses_pended: 0,
                    }),
                    miniport: Mutex::new(MiniportRec {
                        packet_filter: PROTOCOL_PACKET_FILTER,
                        ..MiniportRec::default()
                    }),
                    protocol: Mutex::new(ProtocolRec::default()),
                    edges: Edges::default(),
                }
            })
            .collect();
        World {
            rng: Mutex::new(crate::Rng::new(cfg.seed)),
            fault_rng: Mutex::new(crate::Rng::new(cfg.seed ^ 0xFA11_FA11)),
            failed_allocations: std::sync::atomic::AtomicU64::new(0),
            entry_allocations: std::sync::atomic::AtomicU32::new(0),
            cfg,
            adapters,
            violations: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            mem: Mutex::new(MemTable::new()),
            locks: Mutex::new(Default::default()),
            objs: Mutex::new(objs),
            driver: Mutex::new(None),
            oids: Mutex::new(Default::default()),
            io: Mutex::new(Default::default()),
            driver_object: Mutex::new(None),
            timers: Mutex::new(Default::default()),
            clock: std::sync::atomic::AtomicU64::new(0),
            bugcheck_on_violation: std::env::var_os("RXSIM_BUGCHECK").is_some(),
            epoch: std::sync::atomic::AtomicU64::new(1),
            image_range: Mutex::new(None),
            kern: Mutex::new(Default::default()),
            active: std::sync::atomic::AtomicUsize::new(0),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            actors: std::sync::atomic::AtomicUsize::new(0),
            ndis_calls: std::sync::atomic::AtomicU64::new(0),
            chains: std::sync::atomic::AtomicU64::new(0),
            stalls: std::sync::atomic::AtomicU64::new(0),
            lock_acquisitions: std::sync::atomic::AtomicU64::new(0),
            helpers: Mutex::new(Vec::new()),
            own_issued_while_pausing: std::sync::atomic::AtomicU64::new(0),
            stale_own_nbls: std::sync::atomic::AtomicU64::new(0),
            interruptions: std::sync::atomic::AtomicU64::new(0),
            lookups: std::sync::atomic::AtomicU64::new(0),
            scribbled: std::sync::atomic::AtomicU64::new(0),
            scribble_done: std::sync::atomic::AtomicBool::new(false),
            racing_writer: Mutex::new(None),
        }
    }

    /// Records a broken rule, in the context of the driver callback running on this thread.
    pub fn violate(&self, rule: Rule, message: impl Into<String>) {
        let v = Violation {
            rule,
            context: tls::context_name().to_string(),
            message: message.into(),
            rva: lock(&self.image_range).and_then(|(base, len)| crate::image::caller_in(base, len)),
        };
        if std::env::var_os("RXSIM_TRACE").is_some() {
            eprintln!(
                "ndis-sim: {} {v}",
                if v.is_warning() { "WARNING" } else { "VIOLATION" }
            );
        }
        if self.bugcheck_on_violation && (!v.is_warning() || self.cfg.strict.warnings_fail) {
            eprintln!("ndis-sim: VIOLATION {v} (RXSIM_BUGCHECK set: stopping like a bug check)");
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
            std::process::abort();
        }
        lock(&self.violations).push(v);
    }

    /// Whether the low-resources simulation fails this allocation by `function`.
    pub fn fail_allocation(&self, function: &str) -> bool {
        let h = self.cfg.hostile;
        if h.fail_one_in == 0 && !h.fail_attach && h.fail_in_driver_entry == 0 {
            return false;
        }
        let fails = match tls::context_name() {
            "DriverEntry" => {
                h.fail_in_driver_entry != 0
                    && self
                        .entry_allocations
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                        + 1
                        == h.fail_in_driver_entry
            }
            "FilterAttach" => h.fail_attach,
            _ => h.fail_one_in != 0 && lock(&self.fault_rng).below(h.fail_one_in as usize) == 0,
        };
        if !fails {
            return false;
        }
        self.failed_allocations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if std::env::var_os("RXSIM_TRACE").is_some() {
            eprintln!(
                "ndis-sim: low resources: {function} fails in {}",
                tls::context_name()
            );
        }
        true
    }

    /// Checks the current IRQL for a function that requires at most DISPATCH_LEVEL (L1).
    pub fn require_max_dispatch(&self, function: &str) {
        let irql = tls::irql();
        if irql > DISPATCH_LEVEL {
            self.violate(
                Rule::L1,
                format!("{function} called at IRQL {irql} (> DISPATCH_LEVEL)"),
            );
        }
    }

    /// Checks for PASSIVE_LEVEL (L2).
    pub fn require_passive(&self, function: &str) {
        let irql = tls::irql();
        if irql != PASSIVE_LEVEL {
            self.violate(
                Rule::L2,
                format!("{function} called at IRQL {irql}; it requires PASSIVE_LEVEL"),
            );
        }
    }

    /// Rule L5: no driver spin lock held while calling into NDIS.
    pub fn require_no_locks(&self, function: &str) {
        self.require_no_locks_for(function, Rule::L5)
    }

    /// No driver spin lock held while calling `function`: `rule` says why (L5 for NDIS, L6
    /// for IoCompleteRequest).
    pub fn require_no_locks_for(&self, function: &str, rule: Rule) {
        let held = tls::held_locks();
        if !held.is_empty() {
            self.violate(
                rule,
                format!(
                    "{function} called while holding {} spin lock(s) (first at {:#x})",
                    held.len(),
                    held[0].addr
                ),
            );
        }
    }

    /// The adapter of a module handle, if the handle is a live module handle. Reports a dead
    /// or unknown handle (ST7).
    pub fn module_adapter(&self, handle: NDIS_HANDLE, function: &str) -> Option<&Adapter> {
        let h = handle as usize;
        let objs = lock(&self.objs);
        match objs.handles.get(&h) {
            Some(HandleKind::Module(i)) => Some(&self.adapters[*i]),
            _ => {
                let dead = objs.dead_handles.contains_key(&h);
                drop(objs);
                if dead {
                    self.violate(
                        Rule::ST7,
                        format!("{function} called with the handle of a detached module ({h:#x})"),
                    );
                } else {
                    self.violate(
                        Rule::ST7,
                        format!("{function} called with {h:#x}, which is not a filter module handle"),
                    );
                }
                None
            }
        }
    }

    /// Advances the simulation clock; returns the new time.
    pub fn tick(&self) -> u64 {
        self.clock
            .fetch_add(crate::timer::TICK, std::sync::atomic::Ordering::SeqCst);
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }

    /// Runs what is due everywhere: completions and returns on every adapter, timers, then
    /// work items and scheduled restarts. Returns whether anything happened.
    pub fn pump(&self) -> bool {
        let _busy = self.busy();
        let mut any = false;
        for a in &self.adapters {
            any |= crate::datapath::drain(self, a);
        }
        any |= crate::timer::fire_due(self) > 0;
        any | crate::kernel::run_deferred(self)
    }

    /// Runs the machine until `done()` holds: completions, returns, work items, then
    /// simulated time up to the next timer (at most [`crate::kernel::HANG_LIMIT`] of it), and
    /// while another thread runs driver code (and does not wait), that thread. Returns
    /// `done()` when nothing is left that could change it: no wall clock is involved, so a
    /// busy machine gives the same answer as an idle one.
    pub fn settle(&self, mut done: impl FnMut() -> bool) -> bool {
        use std::sync::atomic::Ordering;
        // A thread settling the machine runs it: it counts as busy, and as waiting only
        // while it finds nothing to do (another thread then knows it cannot act by itself;
        // while it pumps, it can).
        let _busy = self.busy();
        let limit = crate::timer::now(self).saturating_add(crate::kernel::HANG_LIMIT);
        // A periodic timer that never changes `done` must not keep the search going for
        // long: at most this many jumps of the clock.
        let mut jumps = 0u32;
        loop {
            if done() {
                return true;
            }
            if self.pump() {
                continue;
            }
            if let Some(due) = crate::timer::next_due(self).filter(|&d| d <= limit && jumps < 10_000) {
                jumps += 1;
                self.clock.fetch_max(due, Ordering::SeqCst);
                crate::timer::fire_due(self);
                continue;
            }
            let _waiting = self.waiting_here();
            if self.others_can_act() {
                self.stalls.fetch_add(1, Ordering::SeqCst);
                std::thread::yield_now();
                continue;
            }
            return done();
        }
    }

    /// Counts this thread as busy until [`World::join_helpers`] (the interrupted thread of
    /// the interleaving explorer: between its operations it is still about to act, and the
    /// other processor must not take it for idle; it waits only inside a settle or a join).
    pub fn pin_busy(&self) {
        if !tls::set_pinned(true) && !tls::set_counted(true) {
            self.active.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Whether another thread may still change the machine: one busy and not waiting, or an
    /// actor ([`crate::Sim::actor`]) other than this thread.
    pub fn others_can_act(&self) -> bool {
        use std::sync::atomic::Ordering;
        let actors = self.actors.load(Ordering::SeqCst) - usize::from(tls::is_actor());
        actors > 0 || self.active.load(Ordering::SeqCst) > self.waiting.load(Ordering::SeqCst)
    }

    /// Counts this thread as busy (running driver code, or simulator work it has taken out of
    /// a queue to hand to the driver) while the guard lives: a thread settling the machine
    /// waits for busy threads, whose work may be what it waits for.
    pub fn busy(&self) -> Option<BusyGuard<'_>> {
        (!tls::set_counted(true)).then(|| {
            self.active.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            BusyGuard(self)
        })
    }

    /// Counts this thread as waiting while the guard lives, if it is running driver code (a
    /// driver that waits, or NDIS running the machine inside a driver's call): other threads
    /// settling the machine then know it cannot make progress by itself.
    pub fn waiting_here(&self) -> Option<WaitingGuard<'_>> {
        (tls::counted() && !tls::set_waiting(true)).then(|| {
            self.waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            WaitingGuard(self)
        })
    }

    /// Waits for the interleaving explorer's other processors (a test thread's call, between
    /// its operations on the machine).
    pub fn join_helpers(&self) {
        {
            let _waiting = self.waiting_here();
            loop {
                let helpers = std::mem::take(&mut *lock(&self.helpers));
                if helpers.is_empty() {
                    break;
                }
                for h in helpers {
                    let _ = h.join();
                }
            }
        }
        if tls::set_pinned(false) {
            tls::set_counted(false);
            self.active.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The machine cannot go on (a driver thread spins forever): prints what was found, as a
    /// bug check does, and stops the process.
    pub fn stop(&self, why: &str) -> ! {
        eprintln!(
            "*** ndis-sim: the machine stops: {why}, in {}",
            tls::context_name()
        );
        for v in lock(&self.violations).iter() {
            eprintln!("    {v}");
        }
        std::process::abort()
    }

    /// Whether the driver work on this thread began before `FilterPause` of `a` returned.
    /// Work in flight while the filter is still closing its datapath may finish; work that
    /// began after FilterPause returned is new and must be refused.
    pub fn began_before_pause(&self, a: &Adapter) -> bool {
        let pause = lock(&a.module).pause_epoch;
        tls::entry_epoch().is_some_and(|e| e < pause)
    }

    pub fn chars(&self) -> Option<Chars> {
        lock(&self.driver).as_ref().map(|d| d.chars)
    }

    pub fn module_state(&self, a: &Adapter) -> ModState {
        lock(&a.module).state
    }

    /// The IRQL for the next datapath call into the filter.
    pub fn datapath_irql(&self) -> KIRQL {
        match self.cfg.datapath_irql {
            IrqlMode::Dispatch => DISPATCH_LEVEL,
            IrqlMode::Passive => PASSIVE_LEVEL,
            IrqlMode::Mixed => {
                if lock(&self.rng).next() & 1 == 0 {
                    DISPATCH_LEVEL
                } else {
                    PASSIVE_LEVEL
                }
            }
        }
    }

    /// Calls into the driver at `irql` as callback `name`, then checks what the callback left
    /// behind (rules L4: locks released; the IRQL restored).
    pub fn call_driver<R>(&self, name: &'static str, irql: KIRQL, f: impl FnOnce() -> R) -> R {
        self.call_driver_returning(name, irql, irql, f)
    }

    /// As [`World::call_driver`], for a callback that must return at `returns_at` (a cancel
    /// routine, entered at DISPATCH_LEVEL holding the cancel spin lock, releases it with the
    /// IRP's `CancelIrql` and so returns at that IRQL).
    pub fn call_driver_returning<R>(
        &self,
        name: &'static str,
        irql: KIRQL,
        returns_at: KIRQL,
        f: impl FnOnce() -> R,
    ) -> R {
        let now = self.tick();
        let busy = self.busy();
        let frame = tls::enter(name, irql, now);
        let r = f();
        let left = tls::leave(frame, returns_at);
        drop(busy);
        if !left.locks.is_empty() {
            self.violate(
                Rule::L4,
                format!(
                    "{} returned holding {} spin lock(s) (first at {:#x})",
                    left.callback,
                    left.locks.len(),
                    left.locks[0].addr
                ),
            );
            // Release them so the simulation can go on.
            for l in &left.locks {
                crate::locks::force_release(self, l.addr);
            }
        } else if left.irql_now != left.irql_expected {
            self.violate(
                Rule::L4,
                format!(
                    "{} returned at IRQL {} but was called at IRQL {}",
                    left.callback, left.irql_now, left.irql_expected
                ),
            );
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::Edges;

    #[test]
    fn closed_edges_let_nothing_in_and_show_what_entered_before() {
        let e = Edges::default();
        assert!(e.idle());
        let inside = e.enter().expect("open edges admit a call");
        e.close();
        // What entered before the close keeps the stack busy until it leaves; nothing new
        // enters (and a refused attempt leaves no count behind).
        assert!(!e.idle());
        assert!(e.enter().is_none());
        assert!(!e.idle());
        drop(inside);
        assert!(e.idle());
        e.open();
        assert!(e.enter().is_some());
        assert!(e.idle());
    }
}
