//! The simulator backend: rxinject's own code, compiled for this host (or the shipped `.sys`,
//! mapped by the simulator's loader), loaded into `ndis-sim` in this process. One adapter,
//! `sim0` (MAC 02:52:58:00:00:01), whose host stack at 192.168.77.1 answers ARP, ICMP echo and
//! UDP echo (port 7); its wire can play a capture file inbound, with the file's timing, on the
//! simulator's virtual clock.
//!
//! Time is virtual: waiting (a replay's pacing, a read's timeout) lets simulated time pass
//! instead of sleeping, so a replay of a one-minute capture takes a moment and every run is
//! the same.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use ndis_sim::{AdapterConfig, DeviceHandle, Driver, FrameOrigin, Hostile, Sim, SimConfig};

use crate::pcap::{self, FILETIME_UNIX_EPOCH};
use crate::{Backend, Channel, Error, Reply, SimOptions};

pub mod serve;

/// Frames the wire plays: when (virtual time) and what.
struct Wire {
    frames: Vec<(Duration, Vec<u8>)>,
    next: usize,
    /// Frames of the file a NIC would have dropped (runts, above the MTU).
    dropped: u64,
}

/// The simulation and what goes with it.
pub(crate) struct SimState {
    sim: RefCell<Option<Sim>>,
    wire: RefCell<Wire>,
    options: SimOptions,
    names: Vec<(u32, String)>,
    /// Each adapter's host stack address (/24), as Windows' IP Helper would list it.
    addresses: Vec<(u32, [u8; 4], u8)>,
}

impl SimState {
    /// Starts the simulation with the driver loaded.
    pub(crate) fn start(options: SimOptions) -> Result<SimState, Error> {
        // The adapter honours its packet filter, as a NIC does (the simulator's default):
        // frames on the simulated wire for other stations reach a capture only in
        // promiscuous mode.
        let cfg = SimConfig {
            adapters: vec![AdapterConfig::ethernet(0)],
            hostile: Hostile {
                hold_receives: options.hold_receives,
                ..Hostile::default()
            },
            ..SimConfig::default()
        };
        let mut wire_dropped = 0u64;
        let wire_frames = match &options.wire {
            Some(path) => {
                let file = pcap::read(path)?;
                file.require_ethernet()?;
                let timing: Vec<(i128, usize)> = file
                    .packets
                    .iter()
                    .map(|p| (p.timestamp_ns, p.data.len()))
                    .collect();
                // The file's gaps, as a replay takes them (a step back is none, decades are
                // capped by --max-sleep).
                let due = crate::replay::schedule(
                    &timing,
                    crate::replay::Pace::File { multiplier: 1.0 },
                    options.max_gap,
                );
                // What a NIC drops does not arrive: runts, and frames above the MTU (an
                // 802.1Q tag adds 4 bytes), as captures taken with offloads hold.
                let max = cfg.adapters[0].mtu as usize + 14;
                let (ok, dropped): (Vec<_>, Vec<_>) =
                    file.packets.into_iter().zip(due).partition(|(p, _)| {
                        let tagged = p.data.len() >= 18 && p.data[12..14] == [0x81, 0x00];
                        p.data.len() >= 14 && p.data.len() <= max + if tagged { 4 } else { 0 }
                    });
                wire_dropped = dropped.len() as u64;
                ok.into_iter().map(|(p, d)| (d, p.data)).collect()
            }
            None => Vec::new(),
        };
        let addresses = cfg.adapters.iter().map(|a| (a.if_index, a.host_ip, 24)).collect();
        let names = cfg
            .adapters
            .iter()
            .map(|a| (a.if_index, a.name.clone()))
            .collect();
        let mut sim = Sim::new(cfg);
        let driver = match &options.driver {
            Some(path) => Driver::Image(path.clone()),
            None => Driver::Linked(rxinject::DriverEntry),
        };
        let status = sim
            .load_driver(&driver)
            .map_err(|e| Error::Simulator(format!("cannot load {driver}: {e}")))?;
        if !status.is_success() {
            let report = sim.finish();
            return Err(Error::Simulator(format!(
                "the driver did not load: {status:?}\n{report}"
            )));
        }
        // The wire starts now.
        let start = sim.now();
        let frames = wire_frames.into_iter().map(|(d, f)| (start + d, f)).collect();
        Ok(SimState {
            sim: RefCell::new(Some(sim)),
            wire: RefCell::new(Wire {
                frames,
                next: 0,
                dropped: wire_dropped,
            }),
            options,
            names,
            addresses,
        })
    }

    fn with<R>(&self, f: impl FnOnce(&Sim) -> R) -> Result<R, Error> {
        match self.sim.borrow().as_ref() {
            Some(s) => Ok(f(s)),
            None => Err(Error::Simulator("the simulation has ended".into())),
        }
    }

    pub(crate) fn adapter_name(&self, if_index: u32) -> Option<String> {
        self.names
            .iter()
            .find(|(i, _)| *i == if_index)
            .map(|(_, n)| n.clone())
    }

    fn now(&self) -> Duration {
        self.with(|s| s.now()).unwrap_or_default()
    }

    /// The wire plays every frame due by now (frames due together arrive in one indication).
    fn play_due(&self) {
        let now = self.now();
        let due: Vec<Vec<u8>> = {
            let mut w = self.wire.borrow_mut();
            let start = w.next;
            while w.next < w.frames.len() && w.frames[w.next].0 <= now {
                w.next += 1;
            }
            w.frames[start..w.next].iter().map(|(_, f)| f.clone()).collect()
        };
        if !due.is_empty() {
            let _ = self.with(|s| {
                s.adapter(0).indicate(&due);
                s.run_until_idle();
            });
        }
    }

    fn next_due(&self) -> Option<Duration> {
        let w = self.wire.borrow();
        w.frames.get(w.next).map(|(t, _)| *t)
    }

    /// Frames of the wire's file the simulated NIC dropped.
    pub(crate) fn wire_dropped(&self) -> u64 {
        self.wire.borrow().dropped
    }

    pub(crate) fn wire_done(&self) -> bool {
        self.next_due().is_none()
    }

    /// Lets virtual time pass until `t`, the wire playing on the way.
    fn advance_to(&self, t: Duration) {
        self.advance_until(t, || false);
    }

    /// As [`SimState::advance_to`], stopping early once `stop` says so. Virtual time jumps
    /// straight to the next event (a frame of the wire, a timer of the driver, or `t`): a gap
    /// of decades costs one step, not one per slice of it.
    fn advance_until(&self, t: Duration, stop: impl Fn() -> bool) {
        const TICK: Duration = Duration::from_nanos(100);
        loop {
            self.play_due();
            let now = self.now();
            if now >= t || stop() {
                return;
            }
            let timer = self.with(|s| s.next_timer_due()).ok().flatten();
            let next = [self.next_due(), timer]
                .into_iter()
                .flatten()
                .fold(t, Duration::min);
            let _ = self.with(|s| s.advance_time(next.saturating_sub(now).max(TICK)));
        }
    }

    /// The machine is idle until the wire's next frame (no timer of the driver is set, so
    /// nothing happens before it): lets virtual time jump to that frame, or to `limit` if
    /// earlier. A tool polling an idle capture would otherwise wait out a gap of decades one
    /// read timeout at a time.
    pub(crate) fn skip_idle(&self, limit: Option<Duration>) {
        let Some(next) = self.next_due() else { return };
        if self.with(|s| s.next_timer_due()).ok().flatten().is_some() {
            return;
        }
        let target = limit.map_or(next, |l| l.min(next));
        self.advance_to(target);
    }

    /// Injected frames that reached the host stack and the wire.
    pub(crate) fn delivered(&self) -> (usize, usize) {
        self.with(|s| {
            let a = s.adapter(0);
            (
                a.received()
                    .iter()
                    .filter(|f| f.origin == FrameOrigin::Filter)
                    .count(),
                a.wire()
                    .iter()
                    .filter(|f| f.origin == FrameOrigin::Filter)
                    .count(),
            )
        })
        .unwrap_or((0, 0))
    }

    /// Writes the dumps, unloads the driver, and reports what the simulator found.
    pub(crate) fn finish(&self) -> Result<(), Error> {
        match self.finish_report()? {
            (true, _) => Ok(()),
            (false, report) => Err(Error::Simulator(format!(
                "the simulator found the driver breaking NDIS or I/O rules:\n{report}"
            ))),
        }
    }

    /// As [`SimState::finish`]: whether the report is clean, and the report.
    pub(crate) fn finish_report(&self) -> Result<(bool, String), Error> {
        let Some(sim) = self.sim.borrow_mut().take() else {
            return Ok((true, String::new()));
        };
        let boot_unix_ns = (i128::from(Sim::BOOT_SYSTEM_TIME) - i128::from(FILETIME_UNIX_EPOCH)) * 100;
        let (received, on_wire) = {
            let a = sim.adapter(0);
            (a.received(), a.wire())
        };
        let dump = |path: &Option<std::path::PathBuf>, frames: Vec<Vec<u8>>| -> Result<(), Error> {
            let Some(path) = path else { return Ok(()) };
            let list: Vec<(i128, &[u8])> = frames.iter().map(|f| (boot_unix_ns, f.as_slice())).collect();
            pcap::write_pcap(path, &list).map_err(|error| Error::Io {
                what: format!("writing {}", path.display()),
                error,
            })
        };
        // What the stack saw, tags back in place (as a capture above the filter would show).
        let stack: Vec<Vec<u8>> = received
            .into_iter()
            .map(|f| match f.vlan {
                Some(tci) if f.bytes.len() >= 12 => {
                    let mut t = f.bytes[..12].to_vec();
                    t.extend_from_slice(&[0x81, 0x00]);
                    t.extend_from_slice(&tci.to_be_bytes());
                    t.extend_from_slice(&f.bytes[12..]);
                    t
                }
                _ => f.bytes,
            })
            .collect();
        let wire: Vec<Vec<u8>> = on_wire.into_iter().map(|f| f.bytes).collect();
        dump(&self.options.stack_out, stack)?;
        dump(&self.options.wire_out, wire)?;
        let report = sim.finish();
        Ok((report.is_clean(), report.to_string()))
    }
}

/// The backend: opens handles of the simulated device.
pub(crate) struct SimBackend(pub(crate) Rc<SimState>);

struct SimChannel {
    h: DeviceHandle<'static>,
    state: Rc<SimState>,
}

fn reply(r: ndis_sim::IoResult) -> Reply {
    Reply {
        status: r.status,
        information: r.information,
        data: r.output,
    }
}

impl Backend for SimBackend {
    fn open(&self) -> Result<Box<dyn Channel>, Error> {
        let h = self
            .0
            .with(|s| s.open_detached(rxinject_abi::USER_PATH))?
            .map_err(|status| Error::Simulator(format!("opening the device: {status:?}")))?;
        Ok(Box::new(SimChannel {
            h,
            state: Rc::clone(&self.0),
        }))
    }

    fn now(&self) -> Duration {
        self.0.now()
    }

    fn sleep_until(&self, t: Duration) {
        self.0.advance_to(t);
    }
}

impl Channel for SimChannel {
    fn device_io_control(&self, code: u32, input: &[u8], output_len: usize) -> Result<Reply, Error> {
        self.state.with(|_| ())?;
        Ok(reply(self.h.device_io_control(code, input, output_len)))
    }

    fn write(&self, data: &[u8]) -> Result<Reply, Error> {
        self.state.with(|_| ())?;
        self.state.play_due();
        Ok(reply(self.h.write(data)))
    }

    /// A read that waits lets the wire play (and time pass) until it completes.
    fn read(&self, len: usize) -> Result<Reply, Error> {
        self.state.with(|_| ())?;
        self.state.play_due();
        let irp = self.h.start_read(len);
        loop {
            if let Some(r) = self.h.poll(irp) {
                return Ok(reply(r));
            }
            match self.state.next_due() {
                Some(t) => self.state.advance_until(t, || self.h.is_complete(irp)),
                None => {
                    return match self.h.wait(irp) {
                        Some(r) => Ok(reply(r)),
                        None => Err(Error::Simulator(
                            "a read never completed (set a timeout or a record count)".into(),
                        )),
                    };
                }
            }
        }
    }
}
