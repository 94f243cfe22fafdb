//! `ndis-verify`'s battery: the scenarios it runs on any lightweight-filter image, each on
//! fresh simulated machines, and what each found. The `ndis-verify` binary runs every
//! scenario in a child process of its own (a driver that crashes the machine ends only its
//! scenario) and prints the reports.

use std::path::Path;

use ndis_sys::*;

use crate::image::{Image, LoadError};
use crate::rules::Violation;
use crate::world::{AdapterConfig, Completion, IrqlMode, SimConfig};
use crate::{Sim, TestFrames};

/// How to run the battery.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The seed of every machine's random choices (completion order, IRQL, chains).
    pub seed: u64,
    /// Switch on the hostile modes ([`crate::Hostile::all`]).
    pub hostile: bool,
}

/// A scenario of the battery.
pub struct Scenario {
    pub name: &'static str,
    pub what: &'static str,
    run: fn(&Path, &Options) -> Result<Outcome, LoadError>,
}

/// What one scenario found.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Violation>,
    /// The NDIS version the driver registered.
    pub ndis_version: Option<(u8, u8)>,
}

impl Outcome {
    fn add(&mut self, sim: Sim) {
        if self.ndis_version.is_none() {
            self.ndis_version = sim.ndis_version();
        }
        let r = sim.finish();
        self.findings.extend(r.violations);
        self.findings.extend(r.warnings);
    }
}

/// The battery, in the order it runs.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "register",
        what: "DriverEntry registers; NDIS attaches and restarts a module before the registration returns; unload",
        run: register,
    },
    Scenario {
        name: "late-attach",
        what: "two adapters that arrive after DriverEntry returned, traffic on each",
        run: late_attach,
    },
    Scenario {
        name: "pass-through",
        what: "receives with and without RESOURCES and sends, with synchronous, asynchronous and mixed completions, at PASSIVE and DISPATCH_LEVEL, data in one MDL and split across several",
        run: pass_through,
    },
    Scenario {
        name: "pause-restart",
        what: "pause and restart with sends and receives in flight, traffic arriving while paused, twice",
        run: pause_restart,
    },
    Scenario {
        name: "oid-status-pnp",
        what: "OID queries and sets completed synchronously and asynchronously, cancels, a status indication, PnP events",
        run: oid_status_pnp,
    },
    Scenario {
        name: "control-device",
        what: "every control device the driver registers: open (and a named open), IOCTLs, a write of a frame, a read left pending, close",
        run: control_device,
    },
    Scenario {
        name: "attach-low-resources",
        what: "(with --hostile) every allocation in FilterAttach fails: the attach fails cleanly, and a later one succeeds",
        run: attach_low_resources,
    },
    Scenario {
        name: "interleave",
        what: "(with --hostile) the interleaving explorer: traffic, writes and reads with another processor pausing and restarting the module, or cancelling the pending IRPs, between two of the driver's NDIS calls; 24 points swept",
        run: interleave,
    },
    Scenario {
        name: "detach-reattach",
        what: "detach with traffic done, attach again, traffic, unload",
        run: detach_reattach,
    },
];

/// The scenario named `name`.
pub fn scenario(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

impl Scenario {
    /// Runs the scenario on the image at `driver`.
    pub fn run(&self, driver: &Path, o: &Options) -> Result<Outcome, LoadError> {
        (self.run)(driver, o)
    }
}

fn config(o: &Options) -> SimConfig {
    let mut c = SimConfig {
        seed: o.seed,
        ..SimConfig::default()
    };
    if o.hostile {
        c.hostile = crate::Hostile::all();
    }
    c
}

/// A machine with the driver loaded. A failed DriverEntry is the driver's answer, not a
/// finding (the machine then has no module, and the scenario ends).
fn start(driver: &Path, cfg: SimConfig) -> Result<(Sim, bool), LoadError> {
    let mut sim = Sim::new(cfg);
    let image = Image::load(driver)?;
    let st = sim.load_image(image);
    Ok((sim, st.is_success()))
}

fn frames(sim: &Sim, i: usize) -> TestFrames {
    TestFrames::new([0x02, 0, 0x5e, 0x10, 0, i as u8 + 1], sim.adapter(i).config().mac)
}

/// Some of everything on adapter `i`, then the machine runs until idle.
fn traffic(sim: &Sim, i: usize) {
    let a = sim.adapter(i);
    let mut f = frames(sim, i);
    a.indicate(&f.take(4));
    a.indicate_resources(&f.take(3));
    a.send(&f.take(4));
    a.send_with_flags(&f.take(2), NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK);
    sim.run_until_idle();
}

fn register(driver: &Path, o: &Options) -> Result<Outcome, LoadError> {
    let mut out = Outcome::default();
    let (sim, _) = start(driver, config(o))?;
    sim.run_until_idle();
    out.add(sim);
    Ok(out)
}

fn late_attach(driver: &Path, o: &Options) -> Result<Outcome, LoadError> {
    let mut out = Outcome::default();
    let cfg = SimConfig {
        adapters: vec![AdapterConfig::ethernet(0), AdapterConfig::ethernet(1)],
        attach_on_register: false,
        ..config(o)
    };
    let (sim, loaded) = start(driver, cfg)?;
    if loaded {
        for i in 0..2 {
            if sim.attach(i).is_ok() {
                traffic(&sim, i);
            }
        }
    }
    out.add(sim);
    Ok(out)
}

fn pass_through(driver: &Path, o: &Options) -> Result<Outcome, LoadError> {
    let mut out = Outcome::default();
    let modes = [
        (Completion::Sync, IrqlMode::Passive, false),
        (Completion::Async, IrqlMode::Dispatch, true),
        (Completion::Mixed, IrqlMode::Mixed, true),
    ];
    for (completion, irql, split) in modes {
        let cfg = SimConfig {
            send_completion: completion,
            datapath_irql: irql,
            mdl_split: split,
            ..config(o)
        };
        let (sim, loaded) = start(driver, cfg)?;
        if loaded {
            let a = sim.adapter(0);
            let mut f = frames(&sim, 0);
            for _ in 0..4 {
                a.indicate(&f.take(4));
                a.indicate_resources(&f.take(2));
                a.send(&f.take(4));
            }
            a.return_receives(5);
            a.complete_sends(5);
            sim.run_until_idle();
        }
        out.add(sim);
    }
    Ok(out)
}

fn pause_restart(driver: &Path, o: &Options) -> Result<Outcome, LoadError> {
    let mut out = Outcome::default();
    let cfg = SimConfig {
        send_completion: Completion::Async,
        ..config(o)
    };
    let (sim, loaded) = start(driver, cfg)?;
    if loaded {
        let a = sim.adapter(0);
        let mut f = frames(&sim, 0);
        for _ in 0..2 {
            // In flight: the protocol holds receives, the miniport holds sends.
            a.indicate(&f.take(6));
            a.send(&f.take(6));
            sim.pause(0);
            a.indicate(&f.take(2));
            a.indicate_resources(&f.take(2));
            a.send(&f.take(2));
            sim.run_until_idle();
            let _ = sim.restart(0);
            traffic(&sim, 0);
        }
        // The module alone paused (NdisFRestartFilter's pause): the protocol still sends, with
        // send flags whose bits mean something else as send-complete flags (S13, S14).
        sim.pause_module(0);
        a.send_with_flags(
            &f.take(2),
            NDIS_SEND_FLAGS_SINGLE_QUEUE | NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK,
        );
        sim.run_until_idle();
        let _ = sim.restart(0);
        traffic(&sim, 0);
    }
    out.add(sim);
    Ok(out)
}

fn oid_status_pnp(driver: &Path, o: &Options) -> Result<Outcome, LoadError> {
    let mut out = Outcome::default();
    for completion in [Completion::Sync, Completion::Async] {
        let cfg = SimConfig {
            oid_completion: completion,
            ..config(o)
        };
        let (sim, loaded) = start(driver, cfg)?;
        if loaded {
            let a = sim.adapter(0);
            let _ = a.query_oid(OID_802_3_CURRENT_ADDRESS, 6);
            let _ = a.query_oid(OID_GEN_MAXIMUM_FRAME_SIZE, 4);
            let _ = a.set_oid(OID_GEN_CURRENT_PACKET_FILTER, &0x0000_000Bu32.to_le_bytes());
            a.cancel_oid(0x5eed_0001);
            a.cancel_sends(0x5eed_0002);
            a.indicate_status(NDIS_STATUS_LINK_STATE, &[0; 8]);
            let _ = a.net_pnp_event();
            a.device_pnp_event();
            traffic(&sim, 0);
        }
        out.add(sim);
    }
    Ok(out)
}

/// IOCTL codes any control device may be sent: a buffered one of an unknown device type and
/// a network device's first private code. A driver refuses what it does not know.
const PROBE_IOCTLS: [u32; 2] = [0x0022_0000, (0x12 << 16) | (0x800 << 2)];

fn control_device(driver: &Path, o: &Options) -> Result<Outcome, LoadError> {
    let mut out = Outcome::default();
    let (sim, loaded) = start(driver, config(o))?;
    if loaded {
        let mut f = frames(&sim, 0);
        for d in sim.devices() {
            let path = if d.symbolic_name.is_empty() {
                d.name.clone()
            } else {
                d.symbolic_name.clone()
            };
            // An open into the device's namespace, which a device without
            // FILE_DEVICE_SECURE_OPEN should refuse.
            if let Ok(h) = sim.open(&format!("{path}\\probe")) {
                h.close();
            }
            let Ok(h) = sim.open(&path) else { continue };
            for code in PROBE_IOCTLS {
                let _ = h.device_io_control(code, &[0; 16], 64);
            }
            let frame = f.take(1).remove(0);
            let _ = h.write(&[]);
            // A frame alone, then one while the host stack still holds receives of the
            // miniport: it returns them together, in mixed chains.
            let _ = h.write(&frame);
            sim.run_until_idle();
            sim.adapter(0).indicate(&f.take(3));
            let _ = h.write(&frame);
            // A read the driver may keep, and a write in flight: the client exits with them
            // pending (cleanup, then close).
            let _pending = h.start_read(2048);
            let _writing = h.start_write(&frame);
            if let Ok(second) = sim.open(&path) {
                let _ = second.write(&frame);
                second.close();
            }
            sim.run_until_idle();
            h.close();
        }
        traffic(&sim, 0);
    }
    out.add(sim);
    Ok(out)
}

fn detach_reattach(driver: &Path, o: &Options) -> Result<Outcome, LoadError> {
    let mut out = Outcome::default();
    let (sim, loaded) = start(driver, config(o))?;
    if loaded {
        traffic(&sim, 0);
        sim.detach(0);
        if sim.attach(0).is_ok() {
            traffic(&sim, 0);
        }
    }
    out.add(sim);
    Ok(out)
}

fn attach_low_resources(driver: &Path, o: &Options) -> Result<Outcome, LoadError> {
    let mut out = Outcome::default();
    if !o.hostile {
        return Ok(out);
    }
    let mut cfg = config(o);
    cfg.hostile.fail_attach = true;
    let (sim, loaded) = start(driver, cfg)?;
    if loaded {
        // NDIS detaches nothing that failed to attach; the adapter stays without the filter.
        sim.run_until_idle();
        traffic(&sim, 0);
    }
    out.add(sim);
    Ok(out)
}

/// The interleaving explorer's workload: traffic both ways, and a client writing frames and
/// reading with a read left pending, on adapter 0.
fn interleave_workload(sim: &Sim) {
    let a = sim.adapter(0);
    let mut f = frames(sim, 0);
    a.indicate(&f.take(3));
    a.send(&f.take(3));
    let devices = sim.devices();
    let handle = devices.first().and_then(|d| {
        sim.open(if d.symbolic_name.is_empty() {
            &d.name
        } else {
            &d.symbolic_name
        })
        .ok()
    });
    if let Some(h) = &handle {
        let read = h.start_read(2048);
        let frame = f.take(1).remove(0);
        let _ = h.write(&frame);
        a.indicate_resources(&f.take(2));
        let _ = h.write(&frame);
        let _ = h.poll(read);
    }
    a.indicate(&f.take(3));
    a.send(&f.take(2));
    sim.run_until_idle();
    if let Some(h) = handle {
        h.close();
    }
}

const INTERLEAVE_RUNS: u64 = 24;

fn interleave(driver: &Path, o: &Options) -> Result<Outcome, LoadError> {
    let mut out = Outcome::default();
    if !o.hostile {
        return Ok(out);
    }
    // How many calls the workload makes, to spread the points over them.
    let (sim, loaded) = start(
        driver,
        SimConfig {
            seed: o.seed,
            ..SimConfig::default()
        },
    )?;
    let before = sim.ndis_calls();
    if loaded {
        interleave_workload(&sim);
    }
    let (first, total) = (before + 1, sim.ndis_calls().max(before + 1));
    let requests = sim.lookups();
    out.add(sim);
    if !loaded {
        return Ok(out);
    }
    // Each allocation of DriverEntry failing in turn: the load fails (or carries on) and
    // leaves nothing allocated. Until DriverEntry makes fewer allocations than the count.
    for n in 1..=64 {
        let cfg = SimConfig {
            seed: o.seed,
            hostile: crate::Hostile {
                fail_in_driver_entry: n,
                ..crate::Hostile::default()
            },
            ..SimConfig::default()
        };
        let (sim, loaded) = start(driver, cfg)?;
        if loaded {
            interleave_workload(&sim);
        }
        let failed = sim.failed_allocations();
        out.add(sim);
        if failed == 0 {
            break;
        }
    }
    let mut run = |hostile: crate::Hostile| -> Result<(), LoadError> {
        let cfg = SimConfig {
            seed: o.seed,
            hostile,
            ..SimConfig::default()
        };
        let (sim, loaded) = start(driver, cfg)?;
        if loaded {
            interleave_workload(&sim);
        }
        out.add(sim);
        Ok(())
    };
    // The client's other thread closes the handles just after each request in turn has
    // looked its handle up: the driver gets that request after IRP_MJ_CLEANUP.
    for n in 1..=requests {
        run(crate::Hostile {
            close_at_lookup: n,
            ..crate::Hostile::default()
        })?;
    }
    let span = total - first + 1;
    for i in 0..INTERLEAVE_RUNS {
        let point = first + (o.seed.wrapping_mul(7919).wrapping_add(i * span / INTERLEAVE_RUNS)) % span;
        // The racing writer rewrites the client's writes in flight at the same point.
        run(crate::Hostile {
            interrupt_at: point,
            scribble_at: point,
            ..crate::Hostile::default()
        })?;
    }
    Ok(out)
}
