//! `cargo xtask bench [--json] [--quick]`: what each frame costs in the shipped driver.
//!
//! Every scenario runs `dist/x64/rxinject.sys`, mapped by the simulator's loader, in a
//! separate process (`rxinject-bench`, built in release). Instructions are counted by
//! valgrind's callgrind, which is deterministic whatever else the machine does; each scenario
//! runs twice, with `N1` and `N2` frames, and the cost of a frame is the difference divided by
//! `N2 - N1`, so loading, attaching and warming the pools drop out. Two counts per frame:
//!
//! - **total**: every instruction of the process (simulator and driver): the required
//!   `*_instr_per_frame` fields; the driver's share of a scenario is its total minus the
//!   baseline with no filter in the stack (`null_*`);
//! - **in the driver**: instructions executed inside the mapped image only (callgrind's
//!   per-instruction costs at addresses in its range): `*_driver_instr_per_frame`. This is
//!   the driver's own work, without what the simulated NDIS does for the filter layer.
//!
//! Wall time is the median of several native runs (`*_ns_per_frame`); heap allocations are the
//! simulator's pool counter over the same difference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ndis_sim::packets::Udp;
use ndis_sim::{Completion, DeviceHandle, Image, IrqlMode, Sim, SimConfig};
use ndis_sys::*;
use rxinject_abi::capture::{self as cap, CaptureConfig};
use rxinject_abi::write::{Batch, DIR_RX, DIR_TX};
use rxinject_abi::{self as abi, Pod};
use rxinject_bpf::{self as bpf, Insn};
use serde_json::{Value, json};

use crate::{Error, Result, cargo, dist, root, run_cmd};

/// Frames per receive or send chain in the pass-through and capture scenarios (a NIC's
/// receive batch).
pub const CHAIN: usize = 32;
/// Bytes per frame: a minimum-size Ethernet frame carrying UDP.
pub const FRAME_BYTES: usize = 64;

/// The scenarios, in the order the report lists them.
pub const SCENARIOS: &[&str] = &[
    "null_rx",
    "null_tx",
    "passthrough_rx",
    "passthrough_tx",
    "capture_rx",
    "capture_tx",
    "capture_rx_4cpu",
    "inject_rx_b1",
    "inject_rx_b64",
    "inject_rx_b1024",
    "inject_tx_b1",
    "inject_tx_b64",
    "inject_tx_b1024",
];

/// What one run of a scenario measured.
#[derive(Clone, Debug, Default)]
pub struct Run {
    pub frames: u64,
    /// Seconds in the measured loop only.
    pub seconds: f64,
    /// Pool allocations (the driver's, through the simulator) over the whole run.
    pub pool_allocations: u64,
    /// Where the image was mapped, and its size (0 for the null scenarios).
    pub image_base: usize,
    pub image_size: usize,
    /// Spin locks the driver acquired over the whole run (counted by the simulator).
    pub lock_acquisitions: u64,
}

impl Run {
    pub fn to_json(&self, scenario: &str) -> Value {
        json!({
            "scenario": scenario,
            "frames": self.frames,
            "seconds": self.seconds,
            "pool_allocations": self.pool_allocations,
            "image_base": self.image_base,
            "image_size": self.image_size,
            "lock_acquisitions": self.lock_acquisitions,
        })
    }
}

fn config() -> SimConfig {
    SimConfig {
        seed: 7,
        send_completion: Completion::Async,
        datapath_irql: IrqlMode::Dispatch,
        // One MDL per frame, data at offset 0: a NIC's receive buffer for a small frame.
        mdl_split: false,
        ..SimConfig::default()
    }
}

/// A 64-byte UDP frame to the discard port of a host that is not the simulated stack's, so
/// nothing answers and every frame costs the same.
fn frame(sim: &Sim, seq: u16) -> Vec<u8> {
    let a = sim.adapter(0);
    let f = Udp {
        dst_mac: a.config().mac,
        src_mac: [0x02, 0x42, 0x45, 0x4E, 0x43, 0x48],
        src_ip: [192, 168, 77, 50],
        dst_ip: [192, 168, 77, 99],
        src_port: 40000 + seq,
        dst_port: 9,
        payload: vec![0x5A; FRAME_BYTES - 42],
    }
    .to_frame();
    debug_assert_eq!(f.len(), FRAME_BYTES);
    f
}

/// `ip and udp`, as libpcap compiles it for Ethernet.
fn udp_filter() -> Vec<Insn> {
    vec![
        Insn::new(bpf::LD | bpf::H | bpf::ABS, 0, 0, 12),
        Insn::new(bpf::JMP | bpf::JEQ | bpf::K, 0, 3, 0x0800),
        Insn::new(bpf::LD | bpf::B | bpf::ABS, 0, 0, 23),
        Insn::new(bpf::JMP | bpf::JEQ | bpf::K, 0, 1, 17),
        Insn::new(bpf::RET | bpf::K, 0, 0, 262_144),
        Insn::new(bpf::RET | bpf::K, 0, 0, 0),
    ]
}

fn fail(scenario: &str, what: impl std::fmt::Display) -> Error {
    Error::new(format!("bench scenario {scenario}: {what}"))
}

fn ioctl_ok(h: &DeviceHandle<'_>, scenario: &str, code: u32, input: &[u8], out: usize) -> Result<Vec<u8>> {
    let r = h.device_io_control(code, input, out);
    if r.status != STATUS_SUCCESS {
        return Err(fail(scenario, format!("IOCTL {code:#x}: {:?}", r.status)));
    }
    Ok(r.output)
}

/// Opens the control device and binds to `sim0`.
/// A bound handle capturing with the UDP filter, 128 bytes of each frame, reads that return
/// at once: the capture scenarios' reader.
fn open_capturing<'s>(sim: &'s Sim, scenario: &str) -> Result<DeviceHandle<'s>> {
    let h = open_bound(sim, scenario)?;
    let config = CaptureConfig {
        snaplen: 128,
        flags: cap::CAPTURE_NONBLOCK,
        ..CaptureConfig::default()
    };
    ioctl_ok(&h, scenario, abi::IOCTL_RXINJECT_SET_CAPTURE, &config.to_vec(), 0)?;
    let program: Vec<u8> = udp_filter().iter().flat_map(|i| i.to_bytes()).collect();
    ioctl_ok(
        &h,
        scenario,
        abi::IOCTL_RXINJECT_SET_FILTER,
        &program,
        std::mem::size_of::<cap::FilterVerdict>(),
    )?;
    Ok(h)
}

fn open_bound<'s>(sim: &'s Sim, scenario: &str) -> Result<DeviceHandle<'s>> {
    let h = sim
        .open(abi::USER_PATH)
        .map_err(|s| fail(scenario, format!("open: {s:?}")))?;
    let req = abi::BindRequest {
        abi_version: abi::ABI_VERSION,
        if_index: sim.adapter(0).config().if_index,
    };
    ioctl_ok(&h, scenario, abi::IOCTL_RXINJECT_BIND, &req.to_vec(), 0)?;
    Ok(h)
}

/// In place of a `.sys` path: the driver compiled into `rxinject-bench` (release, with symbols,
/// for profiling with `callgrind_annotate`: the image has no symbols valgrind can read).
pub const LINKED: &str = "linked";

/// Runs `scenario` with `frames` frames (a multiple of 1024) on the driver image at `driver`
/// (or [`LINKED`]; nothing is loaded for the `null_*` scenarios).
pub fn run_scenario(scenario: &str, frames: u64, driver: &Path) -> Result<Run> {
    if frames == 0 || !frames.is_multiple_of(1024) {
        return Err(fail(scenario, "frames must be a positive multiple of 1024"));
    }
    let mut sim = Sim::new(config());
    let mut run = Run {
        frames,
        ..Run::default()
    };
    if !scenario.starts_with("null_") {
        let status = if driver == Path::new(LINKED) {
            sim.load(rxinject::DriverEntry)
        } else {
            let image =
                Image::load(driver).map_err(|e| fail(scenario, format!("{}: {e}", driver.display())))?;
            run.image_base = image.base();
            run.image_size = image.size();
            sim.load_image(image)
        };
        if status != STATUS_SUCCESS {
            return Err(fail(scenario, format!("DriverEntry: {status:?}")));
        }
    }
    let chains = frames as usize / CHAIN;
    let chain: Vec<Vec<u8>> = (0..CHAIN).map(|i| frame(&sim, i as u16)).collect();
    let a = sim.adapter(0);
    let start;
    match scenario {
        "null_rx" | "passthrough_rx" => {
            start = Instant::now();
            for _ in 0..chains {
                a.indicate(&chain);
                a.return_receives(usize::MAX);
            }
            if a.received().len() as u64 != frames {
                return Err(fail(
                    scenario,
                    format!("{} of {frames} frames reached the stack", a.received().len()),
                ));
            }
        }
        "null_tx" | "passthrough_tx" => {
            start = Instant::now();
            for _ in 0..chains {
                a.send(&chain);
                a.complete_sends(usize::MAX);
            }
            if a.wire().len() as u64 != frames {
                return Err(fail(
                    scenario,
                    format!("{} of {frames} frames reached the wire", a.wire().len()),
                ));
            }
        }
        "capture_rx" | "capture_tx" => {
            let rx = scenario == "capture_rx";
            let h = open_capturing(&sim, scenario)?;
            let mut captured = 0u64;
            start = Instant::now();
            for _ in 0..chains {
                if rx {
                    a.indicate(&chain);
                    a.return_receives(usize::MAX);
                } else {
                    a.send(&chain);
                    a.complete_sends(usize::MAX);
                }
                // The reader keeps up: everything waiting, in one read.
                let r = h.read(1 << 16);
                if r.status != STATUS_SUCCESS {
                    return Err(fail(scenario, format!("a read ended with {:?}", r.status)));
                }
                captured += cap::records(&r.output).count() as u64;
            }
            if captured != frames {
                return Err(fail(scenario, format!("{captured} of {frames} frames captured")));
            }
        }
        "capture_rx_4cpu" => {
            // Four processors indicating at once (a NIC with four receive queues), each its
            // own chain; the reader reads after each round. A barrier keeps the rounds in
            // step, so that exactly 4 chains wait for each read.
            const CPUS: usize = 4;
            let h = open_capturing(&sim, scenario)?;
            let rounds = chains / CPUS;
            let barrier = std::sync::Barrier::new(CPUS + 1);
            let mut captured = 0u64;
            let mut failed = None;
            start = Instant::now();
            std::thread::scope(|s| {
                for cpu in 0..CPUS {
                    let (sim, barrier, chain) = (&sim, &barrier, &chain);
                    s.spawn(move || {
                        let _actor = sim.actor();
                        // Each queue's DPC on its own processor (valgrind runs one thread at
                        // a time: without this they would all find processor 0 free).
                        let _cpu = sim.on_processor(cpu as u32);
                        for _ in 0..rounds {
                            barrier.wait();
                            sim.adapter(0).indicate(chain);
                            barrier.wait();
                        }
                    });
                }
                for _ in 0..rounds {
                    barrier.wait();
                    barrier.wait();
                    a.return_receives(usize::MAX);
                    let r = h.read(1 << 16);
                    if r.status != STATUS_SUCCESS {
                        failed = Some(r.status);
                    }
                    captured += cap::records(&r.output).count() as u64;
                }
            });
            if let Some(status) = failed {
                return Err(fail(scenario, format!("a read ended with {status:?}")));
            }
            if captured != (rounds * CPUS * CHAIN) as u64 {
                return Err(fail(scenario, format!("{captured} of {frames} frames captured")));
            }
        }
        s if s.starts_with("inject_") => {
            let (direction, per_write) = match s {
                "inject_rx_b1" => (DIR_RX, 1),
                "inject_rx_b64" => (DIR_RX, 64),
                "inject_rx_b1024" => (DIR_RX, 1024),
                "inject_tx_b1" => (DIR_TX, 1),
                "inject_tx_b64" => (DIR_TX, 64),
                "inject_tx_b1024" => (DIR_TX, 1024),
                _ => return Err(fail(s, "no such scenario")),
            };
            let h = open_bound(&sim, scenario)?;
            let mut batch = Batch::new();
            for i in 0..per_write {
                batch.push(direction, 0, &frame(&sim, i as u16));
            }
            let data = batch.as_bytes().to_vec();
            start = Instant::now();
            for _ in 0..frames as usize / per_write {
                let irp = h.start_write(&data);
                match h.wait(irp) {
                    Some(r) if r.status == STATUS_SUCCESS => {}
                    r => return Err(fail(scenario, format!("a write ended with {r:?}"))),
                }
            }
            let delivered = if direction == DIR_RX {
                a.received().len()
            } else {
                a.wire().len()
            };
            if delivered as u64 != frames {
                return Err(fail(
                    scenario,
                    format!("{delivered} of {frames} injected frames arrived"),
                ));
            }
        }
        other => {
            return Err(Error::usage(format!(
                "no bench scenario {other:?} (one of {})",
                SCENARIOS.join(", ")
            )));
        }
    }
    run.seconds = start.elapsed().as_secs_f64();
    run.lock_acquisitions = sim.lock_acquisitions();
    let report = sim.finish();
    if !report.is_clean() {
        return Err(fail(scenario, format!("NDIS rule violations:\n{report}")));
    }
    run.pool_allocations = report.stats.pool_allocations;
    Ok(run)
}

/// The entry of the `rxinject-bench` program: `rxinject-bench SCENARIO FRAMES DRIVER.sys`
/// (or `linked`) prints the [`Run`] as one JSON line.
pub fn runner_main(args: &[String]) -> Result<()> {
    let [scenario, frames, driver] = args else {
        return Err(Error::usage(format!(
            "usage: rxinject-bench SCENARIO FRAMES DRIVER.sys (scenarios: {})",
            SCENARIOS.join(", ")
        )));
    };
    let frames: u64 = frames
        .parse()
        .map_err(|_| Error::usage(format!("FRAMES: not a number: {frames}")))?;
    if crate::bench_bpf::is_bpf_scenario(scenario) {
        let evals = crate::bench_bpf::run_scenario(scenario, frames)?;
        let run = Run {
            frames: evals,
            ..Run::default()
        };
        println!("{}", run.to_json(scenario));
        return Ok(());
    }
    let run = run_scenario(scenario, frames, Path::new(driver))?;
    println!("{}", run.to_json(scenario));
    Ok(())
}

/// Instruction counts of one callgrind run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every instruction of the process.
    pub total: u64,
    /// Instructions at addresses in the range (the driver image's own code).
    pub in_range: u64,
    /// Inclusive cost of the C memory functions (`memcpy`, `memset`, ...) called from the
    /// range: the driver's copies, done by `ntoskrnl.exe` on Windows. Less the simulator's
    /// own instructions in its `memcpy`, `memmove` and `memset` (`is_crt_shim`).
    pub crt_from_range: u64,
    /// Calls from the range to functions outside it other than the C memory functions: the
    /// NDIS and kernel functions.
    pub calls_out: u64,
}

/// Sums a callgrind output file (written with `--dump-instr=yes --dump-line=no
/// --compress-pos=no --compress-strings=no`, so each cost line is `0xADDRESS IR`): the
/// `summary:` total, the self cost of instructions whose address is in `range`, and the calls
/// made from `range` to functions outside it. The cost line after a `calls=` line is the
/// inclusive cost of that call, not an instruction's own.
pub fn parse_callgrind(text: &str, range: std::ops::Range<u64>) -> Result<Counts> {
    let hex = |s: &str| s.strip_prefix("0x").and_then(|h| u64::from_str_radix(h, 16).ok());
    let mut c = Counts::default();
    let mut summary = None;
    let mut callee = String::new();
    // Inside one of the simulator's memory functions (`is_crt_shim`), and their own cost.
    let (mut in_shim, mut shim) = (false, 0u64);
    // After a `calls=` line: (call count, callee outside the range).
    let mut call: Option<(u64, bool)> = None;
    for line in text.lines() {
        if let Some(v) = line
            .strip_prefix("summary:")
            .or_else(|| line.strip_prefix("totals:"))
        {
            summary = v.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
            continue;
        }
        if let Some(name) = line.strip_prefix("cfn=") {
            callee = name.trim().to_string();
            continue;
        }
        if let Some(name) = line.strip_prefix("fn=") {
            in_shim = is_crt_shim(name.trim());
            continue;
        }
        if let Some(rest) = line.strip_prefix("calls=") {
            let mut f = rest.split_whitespace();
            let count = f.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let target = f.next().and_then(hex);
            let outside = !target.is_some_and(|t| range.contains(&t));
            call = Some((count, outside));
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(addr), Some(ir)) = (
            f.next().and_then(hex),
            f.next().and_then(|n| n.parse::<u64>().ok()),
        ) else {
            continue;
        };
        match call.take() {
            Some((count, outside)) => {
                if outside && range.contains(&addr) {
                    if callee.contains("crt::mem") {
                        c.crt_from_range += ir;
                    } else {
                        c.calls_out += count;
                    }
                }
            }
            None => {
                if range.contains(&addr) {
                    c.in_range += ir;
                } else if in_shim {
                    shim += ir;
                }
            }
        }
    }
    c.total = summary.ok_or_else(|| Error::new("callgrind output without a summary line"))?;
    c.crt_from_range = c.crt_from_range.saturating_sub(shim);
    Ok(c)
}

/// The simulator's `memcpy`, `memmove` and `memset` are win64 functions that hand the work
/// to the host's C library (System V), and so save and restore the ten registers xmm6-xmm15
/// that win64 preserves and System V does not: 36 instructions a call that no memory
/// function on Windows pays. Their own instructions are that translation alone (only
/// images call them), so the driver's share counts the C library's copy, not them.
/// (`memcmp` does its own work, and counts whole.)
fn is_crt_shim(function: &str) -> bool {
    ["memcpy", "memmove", "memset"]
        .iter()
        .any(|f| function.strip_prefix("ndis_sim::image::crt::") == Some(f))
}

fn runner_path() -> PathBuf {
    root().join("target").join("release").join("rxinject-bench")
}

fn run_native(scenario: &str, frames: u64, driver: &Path) -> Result<Run> {
    let out = Command::new(runner_path())
        .args([scenario, &frames.to_string()])
        .arg(driver)
        .output()
        .map_err(|e| Error::with("run rxinject-bench", e))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "rxinject-bench {scenario} {frames}: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    parse_run(&out.stdout)
}

fn parse_run(stdout: &[u8]) -> Result<Run> {
    let v: Value = serde_json::from_slice(stdout).map_err(|e| Error::with("rxinject-bench output", e))?;
    let u = |k: &str| v[k].as_u64().unwrap_or(0);
    Ok(Run {
        frames: u("frames"),
        seconds: v["seconds"].as_f64().unwrap_or(0.0),
        pool_allocations: u("pool_allocations"),
        image_base: u("image_base") as usize,
        image_size: u("image_size") as usize,
        lock_acquisitions: u("lock_acquisitions"),
    })
}

fn run_callgrind(scenario: &str, frames: u64, driver: &Path, dir: &Path) -> Result<(Run, Counts)> {
    let file = dir.join(format!("callgrind.{scenario}.{frames}"));
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--dump-instr=yes",
            "--dump-line=no",
            "--compress-pos=no",
            "--compress-strings=no",
        ])
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg(runner_path())
        .args([scenario, &frames.to_string()])
        .arg(driver)
        .output()
        .map_err(|e| Error::with("run valgrind (Debian package valgrind)", e))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "valgrind rxinject-bench {scenario} {frames}: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let run = parse_run(&out.stdout)?;
    let text =
        std::fs::read_to_string(&file).map_err(|e| Error::with(format!("read {}", file.display()), e))?;
    let base = run.image_base as u64;
    let counts = parse_callgrind(&text, base..base + run.image_size as u64)?;
    let _ = std::fs::remove_file(&file);
    Ok((run, counts))
}

/// One scenario's figures.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub instr_per_frame: f64,
    /// In the image, plus the C memory functions it calls.
    pub driver_instr_per_frame: f64,
    /// Calls from the image to NDIS and kernel functions.
    pub ndis_calls_per_frame: f64,
    pub ns_per_frame: f64,
    pub allocations_per_frame: f64,
    /// Spin lock acquisitions by the driver per frame (counted by the simulator).
    pub lock_acquisitions_per_frame: f64,
}

/// Builds `rxinject-bench` (release) and returns its path.
pub fn build_runner() -> Result<PathBuf> {
    run_cmd(
        "cargo build --release --bin rxinject-bench",
        cargo().args([
            "build",
            "--release",
            "--package",
            "xtask",
            "--bin",
            "rxinject-bench",
        ]),
    )?;
    Ok(runner_path())
}

/// Measures `scenario` on `driver`: callgrind at `n1` and `n2` frames, and `wall_runs` native
/// runs of `n2` frames (none: no wall time). Needs [`build_runner`] first.
pub fn measure(
    scenario: &str,
    n1: u64,
    n2: u64,
    wall_runs: usize,
    driver: &Path,
    dir: &Path,
) -> Result<Figures> {
    let (r1, c1) = run_callgrind(scenario, n1, driver, dir)?;
    let (r2, c2) = run_callgrind(scenario, n2, driver, dir)?;
    let d = (n2 - n1) as f64;
    let mut ns: Vec<f64> = Vec::new();
    for _ in 0..wall_runs {
        let r = run_native(scenario, n2, driver)?;
        ns.push(r.seconds * 1e9 / r.frames as f64);
    }
    ns.sort_by(f64::total_cmp);
    Ok(Figures {
        instr_per_frame: (c2.total as f64 - c1.total as f64) / d,
        driver_instr_per_frame: ((c2.in_range + c2.crt_from_range) as f64
            - (c1.in_range + c1.crt_from_range) as f64)
            / d,
        ndis_calls_per_frame: (c2.calls_out as f64 - c1.calls_out as f64) / d,
        ns_per_frame: ns.get(ns.len() / 2).copied().unwrap_or(0.0),
        allocations_per_frame: (r2.pool_allocations as f64 - r1.pool_allocations as f64) / d,
        lock_acquisitions_per_frame: (r2.lock_acquisitions as f64 - r1.lock_acquisitions as f64) / d,
    })
}

/// Where callgrind's output files go (each is removed once read).
pub fn work_dir() -> Result<PathBuf> {
    let dir = root().join("target").join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| Error::with("create target/bench", e))?;
    Ok(dir)
}

/// `cargo xtask bench [--json] [--quick]`.
pub fn run(json_out: bool, quick: bool) -> Result<()> {
    let built = dist::run()?;
    build_runner()?;
    let (n1, n2, wall_runs) = if quick { (1024, 2048, 3) } else { (4096, 12288, 5) };
    let dir = work_dir()?;
    let driver = built.sys.clone();
    let mut figures = BTreeMap::new();
    for s in SCENARIOS {
        eprintln!("==> {s}: callgrind with {n1} and {n2} frames, {wall_runs} native runs");
        figures.insert(s.to_string(), measure(s, n1, n2, wall_runs, &driver, &dir)?);
    }
    let mut report = report(&figures, &driver, n1, n2, wall_runs);
    let (r1, r2) = if quick { (10, 30) } else { (20, 60) };
    let bpf = measure_bpf(r1, r2, &dir)?;
    if let (Value::Object(m), Value::Object(b)) = (&mut report, bpf) {
        let ratio = b["bpf_ratio_max"].as_f64().unwrap_or(f64::MAX);
        let validate = b["bpf_validate_instr_max"].as_f64().unwrap_or(f64::MAX);
        if let Some(Value::Object(t)) = m.get_mut("targets") {
            t.insert(
                "bpf_ratio_max".into(),
                json!({ "limit": 0.8, "worst": ratio, "met": ratio <= 0.8 }),
            );
            t.insert(
                "bpf_validate_instr_max".into(),
                json!({ "limit": 5000, "worst": validate, "met": validate <= 5000.0 }),
            );
        }
        m.extend(b);
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report).expect("serialisable"));
    } else {
        print_report(&report);
    }
    Ok(())
}

/// `cargo xtask bench --only S,...`: the figures of the named scenarios alone (no targets, no
/// BPF side by side), as JSON; for working on one path.
pub fn run_only(scenarios: &[String], quick: bool) -> Result<()> {
    if let Some(s) = scenarios.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
        return Err(Error::usage(format!(
            "no scenario {s:?}; the scenarios: {}",
            SCENARIOS.join(", ")
        )));
    }
    let built = dist::run()?;
    build_runner()?;
    let (n1, n2) = if quick { (1024, 2048) } else { (4096, 12288) };
    let dir = work_dir()?;
    let mut m = serde_json::Map::new();
    for s in scenarios {
        eprintln!("==> {s}: callgrind with {n1} and {n2} frames");
        let x = measure(s, n1, n2, 0, &built.sys, &dir)?;
        m.insert(
            s.clone(),
            json!({
                "instr_per_frame": round1(x.instr_per_frame),
                "driver_instr_per_frame": round1(x.driver_instr_per_frame),
                "ndis_calls_per_frame": (x.ndis_calls_per_frame * 1000.0).round() / 1000.0,
                "allocations_per_frame": x.allocations_per_frame,
                "lock_acquisitions_per_frame": (x.lock_acquisitions_per_frame * 1000.0).round() / 1000.0,
            }),
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(m)).expect("serialisable")
    );
    Ok(())
}

/// Instructions per evaluation of a BPF scenario: callgrind at `r1` and `r2` repetitions, the
/// difference over the evaluations between.
pub fn measure_bpf_scenario(scenario: &str, r1: u64, r2: u64, dir: &Path) -> Result<f64> {
    let none = Path::new("-");
    let (a, c1) = run_callgrind(scenario, r1, none, dir)?;
    let (b, c2) = run_callgrind(scenario, r2, none, dir)?;
    Ok((c2.total as f64 - c1.total as f64) / (b.frames - a.frames) as f64)
}

/// The BPF side by side (`bench_bpf`): per program, rxinject's and libpcap's instructions per
/// evaluation, the worst ratio, the dearest validation; after checking both give the same
/// verdict on every frame.
pub fn measure_bpf(r1: u64, r2: u64, dir: &Path) -> Result<Value> {
    use crate::bench_bpf::{PROGRAMS, disagreements};
    let d = disagreements()?;
    if !d.is_empty() {
        return Err(Error::new(format!(
            "rxinject and libpcap disagree (program, frame, rxinject, libpcap): {d:?}"
        )));
    }
    let mut m = serde_json::Map::new();
    let (mut ratio_max, mut validate_max) = (0.0f64, 0.0f64);
    for (name, _) in PROGRAMS {
        eprintln!("==> bpf {name}: rxinject and libpcap, callgrind with {r1} and {r2} passes over 64 frames");
        let ours = measure_bpf_scenario(&format!("bpf_{name}_rxinject"), r1, r2, dir)?;
        let theirs = measure_bpf_scenario(&format!("bpf_{name}_libpcap"), r1, r2, dir)?;
        let validate = measure_bpf_scenario(&format!("bpfvalidate_{name}"), r1 * 10, r2 * 10, dir)?;
        m.insert(format!("bpf_{name}_rxinject_instr_per_eval"), json!(round1(ours)));
        m.insert(
            format!("bpf_{name}_libpcap_instr_per_eval"),
            json!(round1(theirs)),
        );
        m.insert(format!("bpf_{name}_validate_instr"), json!(round1(validate)));
        ratio_max = ratio_max.max(ours / theirs);
        validate_max = validate_max.max(validate);
    }
    m.insert("bpf_ratio_max".into(), json!((ratio_max * 100.0).round() / 100.0));
    m.insert("bpf_validate_instr_max".into(), json!(round1(validate_max)));
    m.insert("bpf_frames".into(), json!(crate::bench_bpf::frames().len()));
    m.insert("bpf_verdicts_agree".into(), json!(true));
    Ok(Value::Object(m))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The JSON report: the fields first, then the rest.
pub fn report(f: &BTreeMap<String, Figures>, driver: &Path, n1: u64, n2: u64, wall_runs: usize) -> Value {
    let get = |s: &str| f.get(s).cloned().unwrap_or_default();
    let mut m = serde_json::Map::new();
    for s in SCENARIOS {
        let x = get(s);
        let key = |suffix: &str| match s.rsplit_once("_b") {
            Some((head, b)) if s.starts_with("inject_") => format!("{head}_{suffix}_b{b}"),
            _ => format!("{s}_{suffix}"),
        };
        m.insert(key("instr_per_frame"), json!(round1(x.instr_per_frame)));
        m.insert(
            key("driver_instr_per_frame"),
            json!(round1(x.driver_instr_per_frame)),
        );
        m.insert(
            key("ndis_calls_per_frame"),
            json!((x.ndis_calls_per_frame * 1000.0).round() / 1000.0),
        );
        m.insert(key("ns_per_frame"), json!(round1(x.ns_per_frame)));
        m.insert(
            key("lock_acquisitions_per_frame"),
            json!((x.lock_acquisitions_per_frame * 1000.0).round() / 1000.0),
        );
    }
    let inject: Vec<f64> = SCENARIOS
        .iter()
        .filter(|s| s.starts_with("inject_"))
        .map(|s| get(s).allocations_per_frame)
        .collect();
    let heap = inject.iter().copied().fold(0.0, f64::max);
    m.insert("heap_allocations_per_injected_frame".into(), json!(heap));
    let share = |s: &str, null: &str| round1(get(s).instr_per_frame - get(null).instr_per_frame);
    m.insert(
        "passthrough_rx_over_null_instr_per_frame".into(),
        json!(share("passthrough_rx", "null_rx")),
    );
    m.insert(
        "passthrough_tx_over_null_instr_per_frame".into(),
        json!(share("passthrough_tx", "null_tx")),
    );
    let worst_inject = SCENARIOS
        .iter()
        .filter(|s| s.ends_with("_b64") || s.ends_with("_b1024"))
        .map(|s| get(s).driver_instr_per_frame)
        .fold(0.0, f64::max);
    let pass_rx = get("passthrough_rx").driver_instr_per_frame;
    let pass_tx = get("passthrough_tx").driver_instr_per_frame;
    let capture = get("capture_rx").driver_instr_per_frame;
    let capture_locks = (get("capture_rx").lock_acquisitions_per_frame * 1000.0).round() / 1000.0;
    let inject_b64 = get("inject_rx_b64")
        .driver_instr_per_frame
        .max(get("inject_tx_b64").driver_instr_per_frame);
    m.insert(
        "targets".into(),
        json!({
            // Microsoft's LWF sample, measured the same way: 6.3 (Rx) and 11.3 (Tx).
            "passthrough_rx_driver_instr_per_frame": { "limit": 6.3, "worst": round1(pass_rx), "met": pass_rx <= 6.3 },
            "passthrough_tx_driver_instr_per_frame": { "limit": 9.0, "worst": round1(pass_tx), "met": pass_tx <= 9.0 },
            "inject_b64_and_up_driver_instr_per_frame": { "limit": 1500, "worst": round1(worst_inject), "met": worst_inject <= 1500.0 },
            "heap_allocations_per_injected_frame": { "limit": 0, "worst": heap, "met": heap == 0.0 },
            // Issue 14's.
            "capture_rx_driver_instr_per_frame": { "limit": 250, "worst": round1(capture), "met": capture <= 250.0 },
            "capture_rx_lock_acquisitions_per_frame": { "limit": 0.05, "worst": capture_locks, "met": capture_locks <= 0.05 },
            "inject_b64_driver_instr_per_frame": { "limit": 260, "worst": round1(inject_b64), "met": inject_b64 <= 260.0 },
            "capture_rx_4cpu_no_dearer_than_1cpu": {
                "limit": round1(get("capture_rx").driver_instr_per_frame),
                "worst": round1(get("capture_rx_4cpu").driver_instr_per_frame),
                "met": get("capture_rx_4cpu").driver_instr_per_frame <= get("capture_rx").driver_instr_per_frame,
            },
            // The literal measure: total minus the no-filter baseline. It holds the
            // simulated NDIS's own per-NBL checks for the extra layer (docs/PERFORMANCE.md).
            "passthrough_over_null_instr_per_frame": {
                "limit": 60,
                "worst": share("passthrough_rx", "null_rx").max(share("passthrough_tx", "null_tx")),
                "met": share("passthrough_rx", "null_rx").max(share("passthrough_tx", "null_tx")) <= 60.0,
                "dominated_by": "the simulator's checks of each NBL handed across the filter layer (chain walks, ownership tables, NET_BUFFER/MDL shape snapshots); the driver's own instructions are passthrough_driver_instr_per_frame",
            },
        }),
    );
    m.insert(
        "method".into(),
        json!({
            "driver": driver.display().to_string(),
            "frames": [n1, n2],
            "frame_bytes": FRAME_BYTES,
            "chain": CHAIN,
            "instructions": "valgrind callgrind, (count at N2 - count at N1) / (N2 - N1)",
            "driver_instructions": "callgrind self cost at addresses inside the mapped image, plus the memcpy/memset it calls (the C library's copy; not the simulator's win64-to-System-V shim around it)",
            "ndis_calls": "calls from the image to NDIS and kernel functions",
            "wall_time": format!("median of {wall_runs} native runs of N2 frames, measured loop only"),
        }),
    );
    Value::Object(m)
}

fn print_report(r: &Value) {
    println!(
        "rxinject bench: the shipped rxinject.sys, per frame ({} bytes; chains of {})",
        FRAME_BYTES, CHAIN
    );
    println!(
        "{:<18} {:>14} {:>14} {:>12} {:>12}",
        "scenario", "instr (total)", "instr (driver)", "NDIS calls", "ns (wall)"
    );
    for s in SCENARIOS {
        let key = |suffix: &str| match s.rsplit_once("_b") {
            Some((head, b)) if s.starts_with("inject_") => format!("{head}_{suffix}_b{b}"),
            _ => format!("{s}_{suffix}"),
        };
        println!(
            "{:<18} {:>14} {:>14} {:>12} {:>12}",
            s,
            r[key("instr_per_frame")],
            r[key("driver_instr_per_frame")],
            r[key("ndis_calls_per_frame")],
            r[key("ns_per_frame")]
        );
    }
    println!(
        "heap allocations per injected frame: {}",
        r["heap_allocations_per_injected_frame"]
    );
    println!("targets: {}", r["targets"]);
    println!(
        "{:<18} {:>14} {:>14} {:>8} {:>10}",
        "BPF program", "rxinject", "libpcap", "ratio", "validate"
    );
    for (name, _) in crate::bench_bpf::PROGRAMS {
        let ours = r[format!("bpf_{name}_rxinject_instr_per_eval")]
            .as_f64()
            .unwrap_or(0.0);
        let theirs = r[format!("bpf_{name}_libpcap_instr_per_eval")]
            .as_f64()
            .unwrap_or(0.0);
        println!(
            "{:<18} {:>14.1} {:>14.1} {:>8.2} {:>10}",
            name,
            ours,
            theirs,
            if theirs > 0.0 { ours / theirs } else { 0.0 },
            r[format!("bpf_{name}_validate_instr")]
        );
    }
    println!(
        "(instructions per evaluation; BPF verdicts agree on all {} frames)",
        r["bpf_frames"]
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callgrind_costs_are_summed_by_address_and_call_lines_skipped() {
        let text = "\
version: 1
positions: instr
events: Ir
ob=???
fn=0x1000
0x1000 3
0x1004 2
cfn=NdisFIndicateReceiveNetBufferLists
calls=1 0x9000
0x1008 500
0x100c 1
cfn=ndis_sim::image::crt::memcpy
calls=4 0x9100
0x1010 40
cfn=0x1800
calls=2 0x1800
0x1014 90
fn=0x1800
0x1800 45
fn=ndis_sim::image::crt::memcpy
0x9100 12
cfn=memcpy
calls=4 0x9800
0x9104 28
fn=main
0x4000 7
cfn=0x1000
calls=1 0x1000
0x4004 600
summary: 700
";
        let c = parse_callgrind(text, 0x1000..0x2000).unwrap();
        assert_eq!(
            c,
            Counts {
                total: 700,
                in_range: 3 + 2 + 1 + 45,
                // The call's 40, less the simulator's shim's own 12.
                crt_from_range: 28,
                calls_out: 1,
            }
        );
        assert!(parse_callgrind("0x1000 3\n", 0..1).is_err());
    }
}
