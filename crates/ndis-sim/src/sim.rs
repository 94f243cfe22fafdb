//! The test harness: create a simulated machine, load a driver, drive traffic and the life
//! cycle, and read what happened.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};

use ndis_sys::*;

use crate::datapath;
use crate::image::{Driver, Image, LoadError};
use crate::io::{self, FileRef, IoResult, Irp, IrpKind, Request};
use crate::lifecycle;
use crate::mem::Block;
use crate::oid::{self, OidKind, OidResult};
use crate::rules::{Rule, Violation};
use crate::world::{self, Adapter, ModState, RxFrame, SimConfig, TxCompletion, WireFrame, World, lock};

/// Serialises simulations: the exported NDIS functions are process-wide symbols, so one
/// simulation runs at a time per process (a `Sim` may still be shared between threads).
static SLOT_BUSY: Mutex<bool> = Mutex::new(false);
static SLOT_FREE: Condvar = Condvar::new();

/// Holds the process's simulation slot until dropped.
struct Slot;

impl Slot {
    fn acquire() -> Slot {
        let mut busy = SLOT_BUSY.lock().unwrap_or_else(|e| e.into_inner());
        while *busy {
            busy = SLOT_FREE.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy = true;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *SLOT_BUSY.lock().unwrap_or_else(|e| e.into_inner()) = false;
        SLOT_FREE.notify_one();
    }
}

/// See [`Sim::on_processor`].
pub struct OnProcessor {
    previous: Option<u32>,
}

impl Drop for OnProcessor {
    fn drop(&mut self) {
        crate::tls::set_preferred_processor(self.previous);
    }
}

/// See [`Sim::actor`].
pub struct Actor<'a> {
    w: &'a World,
    first: bool,
}

impl Drop for Actor<'_> {
    fn drop(&mut self) {
        if self.first {
            crate::tls::set_actor(false);
            self.w.actors.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A simulated Windows machine with NDIS, some adapters, and (once loaded) a filter driver.
pub struct Sim {
    world: Arc<World>,
    driver_object: Block,
    registry_path: Vec<u16>,
    loaded: bool,
    /// The leak scan of unload has run.
    leaks_checked: bool,
    examined: bool,
    _slot: Slot,
    /// The loaded `.sys`, when the driver runs from one; declared last so that it is unmapped
    /// only after everything else of the simulation is gone.
    image: Option<Image>,
}

/// What a simulation found, in the order it happened: violations (documented musts) and
/// warnings (shoulds, inferences and our policies; see [`crate::Severity`]).
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub warnings: Vec<Violation>,
    /// Warnings count as violations ([`crate::Strictness::warnings_fail`]).
    pub warnings_fail: bool,
    /// The allocation counters at the end (after unload).
    pub stats: Stats,
}

impl Report {
    /// Splits `findings` into violations and warnings.
    pub fn from_findings(findings: Vec<Violation>, warnings_fail: bool, stats: Stats) -> Report {
        let (warnings, violations) = findings.into_iter().partition(Violation::is_warning);
        Report {
            violations,
            warnings,
            warnings_fail,
            stats,
        }
    }

    /// Whether the run passes: no violation, and no warning when warnings fail.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty() && (!self.warnings_fail || self.warnings.is_empty())
    }

    /// Panics with every finding unless the run was clean.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert!(self.is_clean(), "NDIS rule violations:\n{self}");
    }

    /// Whether `rule` was broken (a violation or a warning).
    pub fn has(&self, rule: Rule) -> bool {
        self.violations
            .iter()
            .chain(&self.warnings)
            .any(|v| v.rule == rule)
    }

    /// The distinct rules broken, violations and warnings, sorted.
    pub fn rules(&self) -> Vec<Rule> {
        let mut r: Vec<Rule> = self
            .violations
            .iter()
            .chain(&self.warnings)
            .map(|v| v.rule)
            .collect();
        r.sort();
        r.dedup();
        r
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.violations.is_empty() && self.warnings.is_empty() {
            return f.write_str("no violations");
        }
        for v in self.violations.iter().chain(&self.warnings) {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}

/// Allocation counters (for benchmarks and leak tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Pool allocations (NdisAllocateMemoryWithTagPriority and ExAllocatePool2), ever.
    pub pool_allocations: u64,
    /// Pool allocations alive now.
    pub pool_live: usize,
    /// NBLs the filter allocated from its pools, ever.
    pub filter_nbl_allocations: u64,
    /// NBLs the filter freed, ever.
    pub filter_nbl_frees: u64,
    /// The filter's own NBLs that are out now: indicated up (the protocol holds them) or sent
    /// down (the miniport has not completed them).
    pub filter_nbls_out: usize,
    /// Own NBLs the filter indicated or sent while its module was Pausing or Paused, ever,
    /// including those of work that began before the pause (which the rules allow to
    /// finish): on Windows the protocol above is already paused then.
    pub own_issued_while_pausing: u64,
    /// Own NBLs the filter issued (indicated or sent) still carrying what the stack left in
    /// them on their previous trip (`Flags` reserved bits, an `NblFlags` bit, an info slot):
    /// a reused NBL should be reset before it is issued again.
    pub stale_own_nbls: u64,
}

impl Sim {
    /// A machine with the given adapters and behaviour. Blocks while another simulation in
    /// this process is running.
    pub fn new(cfg: SimConfig) -> Sim {
        let slot = Slot::acquire();
        // Keep every export reachable from here, so the linker includes them whatever the
        // order of the archives on its command line.
        let n = crate::exports::exports().len();
        assert!(n >= ndis_sys::IMPORTS.len());
        crate::tls::set_processor_count(cfg.processors);
        let world = Arc::new(World::new(cfg));
        world::install(Arc::clone(&world));
        let driver_object = Block::new(std::mem::size_of::<DRIVER_OBJECT>(), 0);
        // SAFETY: a zeroed block of DRIVER_OBJECT size.
        unsafe {
            let d = driver_object.ptr::<DRIVER_OBJECT>();
            (*d).Type = IO_TYPE_DRIVER;
            (*d).Size = std::mem::size_of::<DRIVER_OBJECT>() as i16;
        }
        Sim {
            world,
            driver_object,
            registry_path: "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\rxinject"
                .encode_utf16()
                .collect(),
            loaded: false,
            leaks_checked: false,
            examined: false,
            _slot: slot,
            image: None,
        }
    }

    /// The default machine: one Ethernet adapter `sim0`.
    pub fn with_defaults() -> Sim {
        Sim::new(SimConfig::default())
    }

    /// Calls the driver's entry point at PASSIVE_LEVEL, as the I/O manager does.
    pub fn load(&mut self, entry: DriverInitialize) -> NTSTATUS {
        let mut path = UNICODE_STRING {
            Length: (self.registry_path.len() * 2) as u16,
            MaximumLength: (self.registry_path.len() * 2) as u16,
            Buffer: self.registry_path.as_mut_ptr(),
        };
        let d = self.driver_object.ptr::<DRIVER_OBJECT>();
        *lock(&self.world.driver_object) = Some(d as usize);
        let status = self.world.call_driver("DriverEntry", PASSIVE_LEVEL, || {
            // SAFETY: the driver's entry point with a valid driver object and path.
            unsafe { entry(d, &mut path) }
        });
        self.loaded = status.is_success();
        status
    }

    /// Loads a driver image (see [`crate::image`]) and calls its entry point, as
    /// [`Sim::load`] does for a driver linked into this process. The simulation keeps the
    /// image mapped until it is dropped.
    pub fn load_image(&mut self, image: Image) -> NTSTATUS {
        let entry = image.entry();
        *lock(&self.world.image_range) = Some((image.base(), image.size()));
        self.image = Some(image);
        self.load(entry)
    }

    /// Loads `driver`, whichever build it is: linked into this process, or a `.sys` file
    /// for the loader. Fails only if the loader refuses the file.
    pub fn load_driver(&mut self, driver: &Driver) -> Result<NTSTATUS, LoadError> {
        match driver {
            Driver::Linked(entry) => Ok(self.load(*entry)),
            Driver::Image(path) => Ok(self.load_image(Image::load(path)?)),
        }
    }

    /// The NDIS version the filter registered (`MajorNdisVersion`, `MinorNdisVersion`), while
    /// it is registered.
    pub fn ndis_version(&self) -> Option<(u8, u8)> {
        lock(&self.world.driver).as_ref().map(|d| d.version)
    }

    /// The `NdisFilterDriverHandle` NdisFRegisterFilterDriver returned, while registered.
    pub fn driver_handle(&self) -> Option<usize> {
        lock(&self.world.driver).as_ref().map(|d| d.handle)
    }

    /// The loaded image, when the driver runs from a `.sys`.
    pub fn image(&self) -> Option<&Image> {
        self.image.as_ref()
    }

    /// Calls the driver's unload routine (which must deregister, detaching every module) and
    /// checks that nothing is left behind (rules K1, L3, N7, O2, ST9).
    pub fn unload(&mut self) {
        if !self.loaded {
            return;
        }
        // A driver with open handles cannot unload: the clients exit first (their handles
        // are closed, which runs cleanup and close).
        for f in io::open_files(&self.world) {
            io::close(&self.world, f);
        }
        self.loaded = false;
        self.leaks_checked = true;
        let d = self.driver_object.ptr::<DRIVER_OBJECT>();
        // SAFETY: the driver object we passed to DriverEntry.
        let unload = unsafe { (*d).DriverUnload };
        match unload {
            Some(f) => self.world.call_driver("DriverUnload", PASSIVE_LEVEL, || {
                // SAFETY: the driver's unload routine with its driver object.
                unsafe { f(d) }
            }),
            None => self
                .world
                .violate(Rule::ST9, "the driver set no DriverUnload routine"),
        }
        lifecycle::check_unload(&self.world);
    }

    /// Opens a control device as a user-mode client does with `CreateFile`: `path` is
    /// `\\.\Name` (a symbolic link in `\DosDevices`), `\DosDevices\Name` or `\Device\Name`,
    /// optionally followed by `\file-name`. Runs IRP_MJ_CREATE; returns the handle or the
    /// status the open failed with.
    pub fn open(&self, path: &str) -> Result<DeviceHandle<'_>, NTSTATUS> {
        self.open_handle(path)
    }

    /// As [`Sim::open`], for a handle that does not borrow the simulation (a tool that owns
    /// the `Sim` next to its handles). A handle still open when the simulation finishes is
    /// closed by it first; closing it afterwards does nothing.
    pub fn open_detached(&self, path: &str) -> Result<DeviceHandle<'static>, NTSTATUS> {
        self.open_handle(path)
    }

    /// A handle for either: the lifetime only says whether it borrows the simulation.
    fn open_handle<'h>(&self, path: &str) -> Result<DeviceHandle<'h>, NTSTATUS> {
        let file = self.open_file(path)?;
        Ok(DeviceHandle {
            w: Arc::clone(&self.world),
            file,
            open: true,
            _sim: std::marker::PhantomData,
        })
    }

    fn open_file(&self, path: &str) -> Result<FileRef, NTSTATUS> {
        let path = match path.strip_prefix("\\\\.\\") {
            Some(rest) => format!("\\DosDevices\\{rest}"),
            None => path.to_string(),
        };
        let (device, file_name) = {
            let io = lock(&self.world.io);
            let found = io.devices.iter().find_map(|d| {
                [d.name.as_str(), d.symbolic.as_str()].into_iter().find_map(|n| {
                    let head = path.get(..n.len())?;
                    let rest = &path[n.len()..];
                    (!n.is_empty()
                        && head.eq_ignore_ascii_case(n)
                        && (rest.is_empty() || rest.starts_with('\\')))
                    .then(|| (n.to_string(), rest.to_string()))
                })
            });
            match found {
                Some(f) => f,
                None => return Err(STATUS_OBJECT_NAME_NOT_FOUND),
            }
        };
        io::open(&self.world, &device, &file_name)
    }

    /// The control devices registered now.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        let io = lock(&self.world.io);
        io.devices
            .iter()
            .map(|d| DeviceInfo {
                name: d.name.clone(),
                symbolic_name: d.symbolic.clone(),
                sddl: d.sddl.clone(),
                // SAFETY: the device object block the simulator owns.
                flags: unsafe { (*d.object.ptr::<DEVICE_OBJECT>()).Flags },
            })
            .collect()
    }

    /// The result of `irp`, issued on any handle (one closed since too), if it has completed
    /// (collected: ask once). A tool that serves several clients tracks their IRPs here.
    pub fn poll(&self, irp: Irp) -> Option<IoResult> {
        io::collect(&self.world, irp)
    }

    /// Spin locks the driver acquired (NDIS and kernel spin locks), ever: what a datapath
    /// costs in lock traffic.
    pub fn lock_acquisitions(&self) -> u64 {
        self.world
            .lock_acquisitions
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// IRP counters of the I/O manager.
    pub fn io_stats(&self) -> IoStats {
        io::stats(&self.world)
    }

    /// Adapter `i`.
    pub fn adapter(&self, i: usize) -> AdapterRef<'_> {
        AdapterRef {
            w: &self.world,
            a: &self.world.adapters[i],
        }
    }

    /// Number of adapters.
    pub fn adapter_count(&self) -> usize {
        self.world.adapters.len()
    }

    /// Pauses the stack of adapter `i` (top-down: the protocol first, which then sends
    /// nothing until [`Sim::restart`], then the filter module).
    pub fn pause(&self, i: usize) {
        lifecycle::pause(&self.world, &self.world.adapters[i]);
    }

    /// Pauses the filter module of adapter `i` alone, as `NdisFRestartFilter` does: the
    /// protocol above keeps running, and what it sends meanwhile reaches the paused filter
    /// (which must complete it with NDIS_STATUS_PAUSED). [`Sim::restart`] restarts it.
    pub fn pause_module(&self, i: usize) {
        lifecycle::pause_module(&self.world, &self.world.adapters[i]);
    }

    /// Restarts the filter module of adapter `i`.
    pub fn restart(&self, i: usize) -> NDIS_STATUS {
        lifecycle::restart(&self.world, &self.world.adapters[i])
    }

    /// Attaches the filter to adapter `i` (and restarts it), as when an adapter is enabled.
    pub fn attach(&self, i: usize) -> Result<(), NDIS_STATUS> {
        let a = &self.world.adapters[i];
        lifecycle::attach(&self.world, a)?;
        match lifecycle::restart(&self.world, a) {
            s if s == NDIS_STATUS_SUCCESS => Ok(()),
            s => Err(s),
        }
    }

    /// Pauses and detaches the filter from adapter `i`, as when an adapter is disabled.
    pub fn detach(&self, i: usize) {
        lifecycle::detach_module(&self.world, &self.world.adapters[i]);
    }

    /// Completes every pending send, returns every held receive and completes every pended
    /// OID, on every adapter, until nothing is left.
    pub fn run_until_idle(&self) {
        loop {
            while self.world.pump() {}
            if lock(&self.world.helpers).is_empty() {
                return;
            }
            self.world.join_helpers();
        }
    }

    /// Lets `by` of (virtual) time pass: timers fire at their due times on the way.
    pub fn advance_time(&self, by: std::time::Duration) {
        crate::timer::advance(&self.world, (by.as_nanos() / 100) as u64);
        self.run_until_idle();
    }

    /// When the next of the driver's timers is due (on the virtual clock), if one is set.
    pub fn next_timer_due(&self) -> Option<std::time::Duration> {
        crate::timer::next_due(&self.world).map(|t| std::time::Duration::from_nanos(t.saturating_mul(100)))
    }

    /// The virtual clock: time since the simulated boot.
    pub fn now(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(crate::timer::now(&self.world) * 100)
    }

    /// The simulated system time at boot, in 100 ns units since 1601-01-01 UTC (what
    /// `KeQuerySystemTimePrecise` returns is this plus [`Sim::now`]).
    pub const BOOT_SYSTEM_TIME: i64 = crate::timer::BOOT_SYSTEM_TIME;

    /// Calls the driver made to `KeQuerySystemTimePrecise` (capture stamps records with it:
    /// with no capturing handle there should be none).
    pub fn time_queries(&self) -> u64 {
        lock(&self.world.timers).time_queries
    }

    /// Declares that this thread acts on the machine from outside (pauses, restarts, sends
    /// as another part of the test), until the guard is dropped. While one lives, a thread
    /// waiting for the machine (an IRP, an event, a pended pause) keeps waiting when nothing
    /// inside the machine can end its wait, instead of reporting a hang: the actor may.
    pub fn actor(&self) -> Actor<'_> {
        let first = !crate::tls::set_actor(true);
        if first {
            self.world
                .actors
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Actor {
            w: &self.world,
            first,
        }
    }

    /// Runs this thread's DISPATCH_LEVEL work on processor `n` (mod the processor count),
    /// waiting for it when another thread has it, until the guard is dropped: how a test puts
    /// two threads' traffic on chosen processors (a NIC's receive queues, each with its own
    /// DPC).
    pub fn on_processor(&self, n: u32) -> OnProcessor {
        OnProcessor {
            previous: crate::tls::set_preferred_processor(Some(n)),
        }
    }

    /// Puts a value in the simulated registry, where `NdisReadConfiguration` finds it on a
    /// configuration handle opened for `key` (names are case-insensitive, as in the registry).
    pub fn set_registry(&self, key: crate::RegistryKey, name: &str, value: crate::RegValue) {
        crate::kernel::set_registry(&self.world, key, name, value);
    }

    /// Allocations the low-resources simulation failed ([`crate::Hostile::fail_one_in`]).
    pub fn failed_allocations(&self) -> u64 {
        self.world
            .failed_allocations
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The driver's calls into NDIS and the kernel so far (the interleaving explorer counts
    /// them: [`crate::Hostile::interrupt_at`]).
    pub fn ndis_calls(&self) -> u64 {
        self.world.ndis_calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Interruptions the interleaving explorer ran (0 or 1).
    pub fn interruptions(&self) -> u64 {
        self.world.interruptions.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Requests through a handle so far: reads, writes, IOCTLs ([`crate::Hostile::close_at_lookup`]
    /// counts them).
    pub fn lookups(&self) -> u64 {
        self.world.lookups.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Write buffers the racing writer overwrote ([`crate::Hostile::scribble_at`]).
    pub fn scribbled_writes(&self) -> u64 {
        self.world.scribbled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What the racing writer ([`crate::Hostile::scribble_at`]) writes over the buffer of a
    /// write in flight, instead of random bytes: a test that knows the buffer's format can
    /// make a change a careless driver would trust.
    pub fn set_racing_writer(&self, rewrite: impl Fn(&mut [u8]) + Send + 'static) {
        *lock(&self.world.racing_writer) = Some(Box::new(rewrite));
    }

    /// I/O work item routines run, ever.
    pub fn work_items_run(&self) -> u64 {
        lock(&self.world.kern).work_items_run
    }

    /// Timer callbacks run, ever.
    pub fn timers_fired(&self) -> u64 {
        lock(&self.world.timers).fired
    }

    /// The rule findings so far, violations and warnings ([`Violation::is_warning`]); they
    /// stay recorded.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.world.violations).clone()
    }

    /// Removes and returns the findings so far, violations and warnings (for tests that
    /// expect some).
    pub fn take_violations(&self) -> Vec<Violation> {
        std::mem::take(&mut *lock(&self.world.violations))
    }

    /// The driver's debug output (`DbgPrintEx`), one entry per line.
    pub fn log(&self) -> Vec<String> {
        lock(&self.world.log).clone()
    }

    /// Friendly, unique and service name the driver registered, while registered.
    pub fn registered_names(&self) -> Option<[String; 3]> {
        lock(&self.world.driver).as_ref().map(|d| d.names.clone())
    }

    /// Allocation counters.
    pub fn stats(&self) -> Stats {
        stats(&self.world)
    }

    /// Unloads the driver if loaded, scans for leaks, and returns everything found (with the
    /// allocation counters after unload). The
    /// simulation counts as examined: dropping it afterwards does not fail.
    pub fn finish(mut self) -> Report {
        self.run_until_idle();
        self.world.join_helpers();
        self.unload();
        if !self.leaks_checked {
            // No driver was loaded (or it was unloaded already without the scan): whatever
            // is still allocated is a leak all the same.
            lifecycle::check_unload(&self.world);
            self.leaks_checked = true;
        }
        self.examined = true;
        Report::from_findings(
            self.take_violations(),
            self.world.cfg.strict.warnings_fail,
            stats(&self.world),
        )
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.world.join_helpers();
        if self.loaded && !std::thread::panicking() {
            self.run_until_idle();
            self.unload();
        }
        let leftover = std::mem::take(&mut *lock(&self.world.violations));
        let report = Report::from_findings(leftover, self.world.cfg.strict.warnings_fail, Stats::default());
        world::uninstall();
        if !self.examined && !report.is_clean() && !std::thread::panicking() {
            panic!("simulation dropped with unexamined NDIS rule violations:\n{report}");
        }
    }
}

fn stats(w: &World) -> Stats {
    let (pool_allocations, pool_live) = {
        let mem = lock(&w.mem);
        (mem.total_allocations, mem.live.len())
    };
    let objs = lock(&w.objs);
    Stats {
        pool_allocations,
        pool_live,
        filter_nbl_allocations: objs.filter_nbl_allocations,
        filter_nbl_frees: objs.filter_nbl_frees,
        filter_nbls_out: objs
            .nbls
            .values()
            .filter(|r| {
                r.origin.is_own() && matches!(r.owner, crate::nbl::Owner::Above | crate::nbl::Owner::Below)
            })
            .count(),
        own_issued_while_pausing: w
            .own_issued_while_pausing
            .load(std::sync::atomic::Ordering::Relaxed),
        stale_own_nbls: w.stale_own_nbls.load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// A registered control device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub name: String,
    pub symbolic_name: String,
    pub sddl: String,
    /// `DeviceObject->Flags` (`DO_BUFFERED_IO`, ...).
    pub flags: u32,
}

/// What the I/O manager counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    /// IRPs sent to the driver, ever.
    pub issued: u64,
    /// IRPs the driver completed, ever.
    pub completed: u64,
    /// IRPs a cancel (`CancelIoEx`, a thread's exit) reached before they completed, ever.
    pub cancelled: u64,
    /// Handles open now (files whose last handle is not closed).
    pub open_handles: usize,
    /// IRPs sent and not completed now.
    pub pending: usize,
}

/// A client's open handle of a control device. Requests either wait for their IRP (`write`,
/// `read`, `device_io_control`: the call pumps the simulated machine meanwhile, so frames the
/// stack holds come back) or return it pending (`start_*`), as overlapped I/O does. Dropping
/// the handle closes it (cleanup, then close once nothing of it is pending).
pub struct DeviceHandle<'a> {
    w: Arc<World>,
    file: FileRef,
    open: bool,
    _sim: std::marker::PhantomData<&'a Sim>,
}

impl DeviceHandle<'_> {
    fn start(&self, kind: IrpKind, input: &[u8], output_len: usize, ioctl_code: u32) -> Irp {
        let req = Request {
            kind,
            input,
            output_len,
            ioctl_code,
        };
        match io::issue(&self.w, self.file, &req) {
            Some((irp, _)) => irp,
            // Another thread closed the handle (or the process is exiting): the handle is
            // invalid. Otherwise the device is gone.
            None if !io::handle_open(&self.w, self.file) => {
                io::failed(&self.w, self.file.addr, kind, STATUS_INVALID_HANDLE)
            }
            None => io::failed(&self.w, self.file.addr, kind, STATUS_NO_SUCH_DEVICE),
        }
    }

    fn finish(&self, irp: Irp) -> IoResult {
        self.wait(irp).unwrap_or(IoResult {
            status: STATUS_UNSUCCESSFUL,
            information: 0,
            output: Vec::new(),
        })
    }

    /// `WriteFile` with an OVERLAPPED: issues the write; the IRP may be pending.
    pub fn start_write(&self, data: &[u8]) -> Irp {
        self.start(IrpKind::Write, data, 0, 0)
    }

    /// `ReadFile` with an OVERLAPPED.
    pub fn start_read(&self, len: usize) -> Irp {
        self.start(IrpKind::Read, &[], len, 0)
    }

    /// `DeviceIoControl` with an OVERLAPPED.
    pub fn start_device_io_control(&self, code: u32, input: &[u8], output_len: usize) -> Irp {
        self.start(IrpKind::DeviceControl, input, output_len, code)
    }

    /// `WriteFile`: issues the write and waits for it. A write that never completes is
    /// recorded as a hang (D3) and reported here as `STATUS_UNSUCCESSFUL`.
    pub fn write(&self, data: &[u8]) -> IoResult {
        let irp = self.start_write(data);
        self.finish(irp)
    }

    /// `ReadFile`.
    pub fn read(&self, len: usize) -> IoResult {
        let irp = self.start_read(len);
        self.finish(irp)
    }

    /// `DeviceIoControl`.
    pub fn device_io_control(&self, code: u32, input: &[u8], output_len: usize) -> IoResult {
        let irp = self.start_device_io_control(code, input, output_len);
        self.finish(irp)
    }

    /// The result of `irp` if it has completed (collected: ask once).
    pub fn poll(&self, irp: Irp) -> Option<IoResult> {
        io::collect(&self.w, irp)
    }

    /// Whether `irp` has completed (without collecting it).
    pub fn is_complete(&self, irp: Irp) -> bool {
        io::result(&self.w, irp).is_some()
    }

    /// Pumps the machine until `irp` completes and collects its result; `None` (and a D3
    /// violation) if it never does.
    pub fn wait(&self, irp: Irp) -> Option<IoResult> {
        io::wait(&self.w, irp)?;
        io::collect(&self.w, irp)
    }

    /// `CancelIoEx` for one IRP.
    pub fn cancel(&self, irp: Irp) {
        io::cancel(&self.w, irp);
    }

    /// `CloseHandle`.
    pub fn close(mut self) {
        self.open = false;
        io::close(&self.w, self.file);
    }
}

impl Drop for DeviceHandle<'_> {
    fn drop(&mut self) {
        if self.open && !std::thread::panicking() {
            io::close(&self.w, self.file);
        }
    }
}

/// One adapter of a [`Sim`]: its miniport, its protocol, and the filter module between.
pub struct AdapterRef<'a> {
    w: &'a World,
    a: &'a Adapter,
}

impl<'a> AdapterRef<'a> {
    /// The adapter's configuration.
    pub fn config(&self) -> &'a crate::AdapterConfig {
        &self.a.cfg
    }

    /// The miniport's MTU changes (a jumbo-frame setting, say): its OIDs answer with the new
    /// one at once, and the filter learns it from the restart attributes of the next restart
    /// ([`Sim::pause`] and [`Sim::restart`]). [`AdapterRef::config`] keeps the MTU the adapter
    /// was made with.
    pub fn set_mtu(&self, mtu: u32) {
        self.a.mtu.store(mtu, std::sync::atomic::Ordering::SeqCst);
    }

    /// The filter module's `NdisFilterHandle`, while attached (a tool calls the driver's
    /// NDIS functions with it as the driver would).
    pub fn module_handle(&self) -> Option<usize> {
        let m = lock(&self.a.module);
        (m.state != ModState::Detached && m.handle != 0).then_some(m.handle)
    }

    /// The miniport indicates `frames` in one chain, without RESOURCES. Returns their ids.
    pub fn indicate(&self, frames: &[Vec<u8>]) -> Vec<u64> {
        datapath::miniport_indicate(self.w, self.a, frames, false)
    }

    /// The miniport indicates `frames` with NDIS_RECEIVE_FLAGS_RESOURCES (it needs them back
    /// when the call returns).
    pub fn indicate_resources(&self, frames: &[Vec<u8>]) -> Vec<u64> {
        datapath::miniport_indicate(self.w, self.a, frames, true)
    }

    /// The protocol sends `frames` in one chain. Returns their ids.
    pub fn send(&self, frames: &[Vec<u8>]) -> Vec<u64> {
        datapath::protocol_send(self.w, self.a, frames, 0)
    }

    /// The protocol sends `frames` with extra send flags (e.g. CHECK_FOR_LOOPBACK).
    pub fn send_with_flags(&self, frames: &[Vec<u8>], flags: u32) -> Vec<u64> {
        datapath::protocol_send(self.w, self.a, frames, flags)
    }

    /// The miniport completes up to `max` pending sends (shuffled, one chain).
    pub fn complete_sends(&self, max: usize) -> usize {
        datapath::miniport_complete(self.w, self.a, max)
    }

    /// The protocol returns up to `max` held receives (shuffled, one chain).
    pub fn return_receives(&self, max: usize) -> usize {
        datapath::protocol_return(self.w, self.a, max)
    }

    /// Sets the status the miniport completes sends with.
    pub fn set_send_status(&self, status: NDIS_STATUS) {
        lock(&self.a.miniport).send_status = Some(status);
    }

    /// Frames the protocol received, in order.
    pub fn received(&self) -> Vec<RxFrame> {
        lock(&self.a.protocol).received.clone()
    }

    /// Frames that reached the wire, in order.
    pub fn wire(&self) -> Vec<WireFrame> {
        lock(&self.a.miniport).wire.clone()
    }

    /// Send ids of the answers the host stack sent (ARP and ICMP echo replies), to find them
    /// on the wire.
    pub fn stack_reply_ids(&self) -> std::collections::HashSet<u64> {
        lock(&self.a.protocol).reply_ids.clone()
    }

    /// Wire frames that are answers of the host stack.
    pub fn stack_replies_on_wire(&self) -> Vec<WireFrame> {
        let ids = self.stack_reply_ids();
        self.wire()
            .into_iter()
            .filter(|f| f.origin == crate::FrameOrigin::Foreign && ids.contains(&f.id))
            .collect()
    }

    /// Completions of the protocol's sends, in order.
    pub fn completions(&self) -> Vec<TxCompletion> {
        lock(&self.a.protocol).completions.clone()
    }

    /// Receive NBLs the miniport is still waiting for.
    pub fn rx_outstanding(&self) -> usize {
        lock(&self.a.miniport).rx_outstanding
    }

    /// Receive NBLs returned to the miniport, ever.
    pub fn rx_returned(&self) -> u64 {
        lock(&self.a.miniport).rx_returned
    }

    /// Sends the protocol is still waiting for.
    pub fn tx_outstanding(&self) -> usize {
        lock(&self.a.protocol).tx_outstanding
    }

    /// Receives the protocol holds.
    pub fn held_by_protocol(&self) -> usize {
        lock(&self.a.protocol).held.len()
    }

    /// Receives the protocol holds that the filter originated.
    pub fn filter_nbls_held_by_protocol(&self) -> usize {
        let held = lock(&self.a.protocol).held.clone();
        let objs = lock(&self.w.objs);
        held.iter()
            .filter(|n| objs.nbls.get(n).is_some_and(|r| r.origin.is_own()))
            .count()
    }

    /// Sends waiting in the miniport for completion.
    pub fn pending_at_miniport(&self) -> usize {
        lock(&self.a.miniport).pending_sends.len()
    }

    /// The filter module's state.
    pub fn state(&self) -> ModState {
        self.w.module_state(self.a)
    }

    /// Number of pauses the filter pended (returned NDIS_STATUS_PENDING from FilterPause).
    pub fn pauses_pended(&self) -> u32 {
        lock(&self.a.module).pauses_pended
    }

    /// Number of times a module was attached to this adapter.
    pub fn attach_count(&self) -> u32 {
        lock(&self.a.module).attaches
    }

    /// The general restart attributes the filter passed up at its last restart (what the
    /// protocol above was told: MTU, lookahead, link speeds).
    pub fn restart_attributes_seen_above(&self) -> Option<crate::RestartSeen> {
        lock(&self.a.module).restart_seen
    }

    /// FilterRestart calls on this adapter's module, ever.
    pub fn restart_count(&self) -> u32 {
        lock(&self.a.module).restarts
    }

    /// The protocol queries `oid` with a buffer of `buffer_len` bytes.
    pub fn query_oid(&self, oid: NDIS_OID, buffer_len: u32) -> OidResult {
        oid::protocol_oid(self.w, self.a, oid, OidKind::Query { buffer_len })
    }

    /// The protocol sets `oid` to `data`.
    pub fn set_oid(&self, oid: NDIS_OID, data: &[u8]) -> OidResult {
        oid::protocol_oid(self.w, self.a, oid, OidKind::Set { data: data.to_vec() })
    }

    /// The miniport's current packet filter (as set through OID_GEN_CURRENT_PACKET_FILTER).
    pub fn packet_filter(&self) -> u32 {
        lock(&self.a.miniport).packet_filter
    }

    /// Whether the miniport pends every OID request and keeps it until it is cancelled
    /// (`NdisFCancelOidRequest`), as a hung device would; off again, the held requests
    /// complete at the next pump.
    pub fn hold_oids(&self, hold: bool) {
        lock(&self.a.miniport).hold_oids = hold;
    }

    /// OID requests the miniport holds (pended, not completed yet).
    pub fn oids_pending_at_miniport(&self) -> usize {
        lock(&self.a.miniport).oid_pending.len()
    }

    /// The miniport's multicast list (as set through OID_802_3_MULTICAST_LIST).
    pub fn multicast_list(&self) -> Vec<[u8; 6]> {
        lock(&self.a.miniport).multicast.clone()
    }

    /// Frames the miniport's packet filter did not accept
    /// ([`crate::AdapterConfig::honour_packet_filter`]).
    pub fn dropped_by_packet_filter(&self) -> u64 {
        lock(&self.a.miniport).dropped_by_packet_filter
    }

    /// The miniport indicates a status.
    pub fn indicate_status(&self, code: NDIS_STATUS, payload: &[u8]) {
        oid::miniport_status(self.w, self.a, code, payload);
    }

    /// Status codes the protocol received.
    pub fn statuses(&self) -> Vec<NDIS_STATUS> {
        lock(&self.a.protocol).statuses.clone()
    }

    /// The protocol sends a network PnP event down; returns the status it got.
    pub fn net_pnp_event(&self) -> NDIS_STATUS {
        oid::protocol_net_pnp(self.w, self.a)
    }

    /// NDIS notifies a device PnP event (which must reach the miniport).
    pub fn device_pnp_event(&self) {
        oid::miniport_device_pnp(self.w, self.a);
    }

    /// NDIS asks the filter to cancel sends tagged with `cancel_id`.
    pub fn cancel_sends(&self, cancel_id: usize) {
        let ctx = lock(&self.a.module).ctx;
        if let Some(f) = self.w.chars().and_then(|c| c.cancel_send)
            && self.state() != ModState::Detached
        {
            self.w
                .call_driver("FilterCancelSendNetBufferLists", DISPATCH_LEVEL, || {
                    // SAFETY: the filter's handler with its context.
                    unsafe { f(ctx as NDIS_HANDLE, cancel_id as PVOID) }
                });
        }
    }

    /// NDIS asks the filter to cancel the OID request `request_id`.
    pub fn cancel_oid(&self, request_id: usize) {
        let ctx = lock(&self.a.module).ctx;
        if let Some(f) = self.w.chars().and_then(|c| c.cancel_oid)
            && self.state() != ModState::Detached
        {
            self.w.call_driver("FilterCancelOidRequest", DISPATCH_LEVEL, || {
                // SAFETY: the filter's handler with its context.
                unsafe { f(ctx as NDIS_HANDLE, request_id as PVOID) }
            });
        }
    }

    /// Cancel ids that reached the miniport.
    pub fn cancels_delivered(&self) -> Vec<usize> {
        lock(&self.a.miniport).cancels.clone()
    }

    /// (network, device) PnP events that reached the miniport.
    pub fn pnp_events_delivered(&self) -> (u64, u64) {
        let m = lock(&self.a.miniport);
        (m.net_pnp_events, m.device_pnp_events)
    }
}
