//! `cargo xtask demo --hostile`: the seed's scenario on a hostile Windows.
//!
//! The host stack keeps the receive NBLs it is given (the injected ones among them) until the
//! adapter pauses, as IP reassembly or a vSwitch does; the interleaving explorer lands a pause
//! and restart of the module inside a write; then the client process exits with its writes
//! and a read still pending (cleanup, then close). The seed's driver hung its writer here.
//! rxinject must complete everything: the writes cut by the pause with what they issued and
//! `NDIS_STATUS_PAUSED`, the writes the stack holds with `STATUS_CANCELLED` at cleanup (the
//! close waits for none of them), the read cancelled; the held frames come back at the next
//! pause to writes already completed; no frame is issued once a pause has begun, no reused NBL
//! carries state from its last trip, no rule breaks and nothing leaks.

use ndis_sim::packets::{IcmpEcho, arp_request};
use ndis_sim::{Completion, Driver, Hostile, Interruption, Irp, Sim, SimConfig, TestFrames, Violation};
use ndis_sys::*;
use rxinject_abi::capture::CaptureConfig;
use rxinject_abi::write::{Batch, DIR_RX, DIR_TX};
use rxinject_abi::{self as abi, Pod};
use serde_json::json;

use crate::Result;

const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x5E, 0x10, 0x00, 0x01];
const CLIENT_IP: [u8; 4] = [192, 168, 77, 2];
/// Frames of the write the explorer interrupts (three chains: Rx, Tx, Rx).
const CUT_FRAMES: usize = 24;

/// What the hostile demo saw.
#[derive(Clone, Debug, Default)]
pub struct HostileSummary {
    pub driver: String,
    pub load_error: Option<String>,
    /// The driver's NDIS call at which the explorer paused and restarted the module.
    pub interrupted_at: u64,
    pub interruptions: u64,
    pub write_irps_issued: usize,
    /// Completed before the client exited.
    pub write_irps_completed_before_exit: usize,
    pub writes_succeeded: usize,
    /// Completed with NDIS_STATUS_PAUSED (cut by the pause, with what they issued).
    pub writes_cut_by_pause: usize,
    /// Completed with STATUS_CANCELLED when the client exited.
    pub writes_cancelled: usize,
    pub frames_accepted_by_cancelled_writes: usize,
    /// Injected receive frames the host stack still held when the client exited.
    pub frames_held_at_exit: usize,
    pub read_cancelled: bool,
    /// The longest time a close waited (simulated time).
    pub close_with_writes_pending_ms: f64,
    pub writes_after_pause_began: u64,
    pub stale_nbl_fields: u64,
    pub held_frames_returned_at_pause: bool,
    pub write_irps_never_completed: usize,
    pub violations: Vec<Violation>,
    pub warnings: Vec<Violation>,
}

impl HostileSummary {
    pub fn leaks(&self) -> usize {
        crate::demo::leaks_in(&self.violations)
    }

    /// No rule broken, nothing leaked, nothing hung, and every hostile thing happened.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
            && self.warnings.is_empty()
            && self.load_error.is_none()
            && self.interruptions == 1
            && self.write_irps_never_completed == 0
            && self.writes_cut_by_pause > 0
            && self.writes_cancelled > 0
            && self.frames_held_at_exit > 0
            && self.read_cancelled
            && self.held_frames_returned_at_pause
            && self.writes_after_pause_began == 0
            && self.stale_nbl_fields == 0
    }
}

fn config(interrupt_at: u64) -> SimConfig {
    SimConfig {
        send_completion: Completion::Mixed,
        pause_protocol_first: false,
        seed: 2026,
        hostile: Hostile {
            hold_receives: true,
            interrupt_at,
            ..Hostile::default()
        },
        strict: ndis_sim::Strictness {
            warnings_fail: true,
            ..Default::default()
        },
        ..SimConfig::default()
    }
}

/// The write IRPs of the workload, and the NDIS calls the cut write spans.
struct Run {
    writes: Vec<Irp>,
    cut_span: (u64, u64),
    read: Irp,
}

fn ioctl(h: &ndis_sim::DeviceHandle<'_>, code: u32, input: &[u8]) -> NTSTATUS {
    h.device_io_control(code, input, 0).status
}

/// The client: binds, captures with a read left waiting, writes the seed's ARP and echo
/// requests up (the stack keeps them), a write of three chains (the one the explorer cuts),
/// and more frames up; then its process exits with what is pending.
fn workload(sim: &Sim, s: &mut HostileSummary) -> Option<Run> {
    let a = sim.adapter(0);
    let cfg = a.config();
    let h = sim.open(abi::USER_PATH).ok()?;
    let bind = abi::BindRequest {
        abi_version: abi::ABI_VERSION,
        if_index: cfg.if_index,
    };
    if ioctl(&h, abi::IOCTL_RXINJECT_BIND, &bind.to_vec()) != STATUS_SUCCESS {
        return None;
    }
    let capture = sim.open(abi::USER_PATH).ok()?;
    ioctl(&capture, abi::IOCTL_RXINJECT_BIND, &bind.to_vec());
    // A read that waits for more than will come: pending when the process exits.
    let config = CaptureConfig {
        ring_bytes: 1 << 20,
        snaplen: 256,
        min_bytes: 1 << 19,
        ..CaptureConfig::default()
    };
    ioctl(&capture, abi::IOCTL_RXINJECT_SET_CAPTURE, &config.to_vec());
    let read = capture.start_read(1 << 20);

    let mut writes = Vec::new();
    let mut b = Batch::new();
    b.push(DIR_RX, 0, &arp_request(CLIENT_MAC, CLIENT_IP, cfg.host_ip));
    let echo = IcmpEcho::request(
        CLIENT_MAC,
        cfg.mac,
        CLIENT_IP,
        cfg.host_ip,
        0x6e70,
        1,
        b"rxinject hostile demo",
    );
    b.push(DIR_RX, 0, &echo.to_frame());
    writes.push(h.start_write(b.as_bytes()));

    let mut frames = TestFrames::new(CLIENT_MAC, cfg.mac);
    let mut cut = Batch::new();
    for dir in [DIR_RX, DIR_TX, DIR_RX] {
        for _ in 0..CUT_FRAMES / 3 {
            cut.push(dir, 0, &frames.next_frame());
        }
    }
    let before = sim.ndis_calls();
    writes.push(h.start_write(cut.as_bytes()));
    let cut_span = (before + 1, sim.ndis_calls());
    // The explorer's processor finishes its pause and restart (joined here) before the
    // client goes on, so what follows meets a running module whatever the scheduling.
    sim.run_until_idle();
    a.indicate(&frames.take(4));
    a.send(&frames.take(4));
    let mut more = Batch::new();
    for _ in 0..8 {
        more.push(DIR_RX, 0, &frames.next_frame());
    }
    writes.push(h.start_write(more.as_bytes()));
    sim.run_until_idle();

    s.write_irps_issued = writes.len();
    s.frames_held_at_exit = a.filter_nbls_held_by_protocol();
    for &w in &writes {
        if h.is_complete(w) {
            s.write_irps_completed_before_exit += 1;
        }
    }
    // The process exits: both handles are closed with writes and a read pending.
    let t0 = sim.now();
    h.close();
    let t1 = sim.now();
    capture.close();
    let t2 = sim.now();
    s.close_with_writes_pending_ms = (t1 - t0).max(t2 - t1).as_secs_f64() * 1e3;
    Some(Run {
        writes,
        cut_span,
        read,
    })
}

/// Runs the hostile scenario with `driver`.
pub fn simulate(driver: &Driver) -> HostileSummary {
    let mut s = HostileSummary {
        driver: driver.to_string(),
        ..HostileSummary::default()
    };
    // A probe run finds the NDIS calls of the write to cut; the real run pauses inside it.
    let probe = {
        let mut sim = Sim::new(config(0));
        match sim.load_driver(driver) {
            Ok(st) if st.is_success() => {}
            Ok(st) => s.load_error = Some(format!("DriverEntry returned {st:?}")),
            Err(e) => s.load_error = Some(e.to_string()),
        }
        let span = if s.load_error.is_none() {
            workload(&sim, &mut HostileSummary::default()).map(|r| r.cut_span)
        } else {
            None
        };
        let _ = sim.finish();
        span
    };
    let Some((first, last)) = probe else {
        return s;
    };
    // The pause points inside the write, in order: the first that lands while the write
    // issues its chains (it cuts the write) is the run reported. Which call that is depends
    // on the driver's calls before its first chain, so the demo looks rather than assumes.
    let points: Vec<u64> = (first + 1..=last)
        .filter(|p| Interruption::of(*p) == Interruption::PauseRestart)
        .collect();
    if points.is_empty() {
        s.load_error = Some(format!(
            "no pause point inside the write (calls {first}..={last})"
        ));
        return s;
    }
    let mut first_run = None;
    for &point in &points {
        let run = run_at(driver, point, s.clone());
        if run.writes_cut_by_pause > 0 || run.load_error.is_some() {
            return run;
        }
        first_run.get_or_insert(run);
    }
    first_run.expect("one point at least")
}

/// The hostile scenario with the pause and restart at NDIS call `point`.
fn run_at(driver: &Driver, point: u64, mut s: HostileSummary) -> HostileSummary {
    s.interrupted_at = point;
    let mut sim = Sim::new(config(point));
    if let Err(e) = sim.load_driver(driver) {
        s.load_error = Some(e.to_string());
        return s;
    }
    // A separate handle collects the results of the exited process's IRPs (they outlive
    // their handle, as an OVERLAPPED's do).
    let collector = sim.open(abi::USER_PATH).ok();
    if let (Some(run), Some(c)) = (workload(&sim, &mut s), &collector) {
        for w in run.writes {
            match c.poll(w) {
                Some(r) if r.status == STATUS_SUCCESS => s.writes_succeeded += 1,
                Some(r) if r.status == NTSTATUS::from(NDIS_STATUS_PAUSED) => s.writes_cut_by_pause += 1,
                Some(r) if r.status == STATUS_CANCELLED => {
                    s.writes_cancelled += 1;
                    s.frames_accepted_by_cancelled_writes += r.information;
                }
                Some(_) => {}
                None => s.write_irps_never_completed += 1,
            }
        }
        s.read_cancelled = c.poll(run.read).is_some_and(|r| r.status == STATUS_CANCELLED);
        // The next pause returns what the stack held, to writes already completed.
        sim.pause(0);
        s.held_frames_returned_at_pause = sim.adapter(0).filter_nbls_held_by_protocol() == 0;
        sim.restart(0);
    }
    drop(collector);
    s.interruptions = sim.interruptions();
    let stats = sim.stats();
    s.writes_after_pause_began = stats.own_issued_while_pausing;
    s.stale_nbl_fields = stats.stale_own_nbls;
    let report = sim.finish();
    s.violations = report.violations;
    s.warnings = report.warnings;
    s
}

pub fn to_json(s: &HostileSummary) -> serde_json::Value {
    json!({
        "driver": s.driver,
        "load_error": s.load_error,
        "hostile": {"hold_receives": true, "interrupt_at": s.interrupted_at, "interruption": "PauseRestart"},
        "interruptions": s.interruptions,
        "write_irps_issued": s.write_irps_issued,
        "write_irps_completed_before_exit": s.write_irps_completed_before_exit,
        "write_irps_pending": s.write_irps_never_completed,
        "writes_succeeded": s.writes_succeeded,
        "writes_cut_by_pause": s.writes_cut_by_pause,
        "writes_cancelled": s.writes_cancelled,
        "frames_accepted_by_cancelled_writes": s.frames_accepted_by_cancelled_writes,
        "frames_held_by_stack_at_exit": s.frames_held_at_exit,
        "read_cancelled_at_exit": s.read_cancelled,
        "close_with_writes_pending_ms": s.close_with_writes_pending_ms,
        "writes_after_pause_began": s.writes_after_pause_began,
        "stale_nbl_fields": s.stale_nbl_fields,
        "held_frames_returned_at_pause": s.held_frames_returned_at_pause,
        "rule_violations": crate::demo::violations_json(&s.violations),
        "rule_warnings": crate::demo::warnings_json(&s.warnings),
        "leaks": s.leaks(),
        "ok": s.ok(),
    })
}

/// `cargo xtask demo --hostile [--json] [--driver FILE.sys]`.
pub fn run(json_out: bool, driver: &Driver) -> Result<()> {
    let s = simulate(driver);
    crate::demo::report(
        json_out,
        s.ok(),
        || to_json(&s),
        || print_summary(&s),
        "the hostile demo",
    )
}

fn print_summary(s: &HostileSummary) {
    println!("rxinject demo --hostile: the seed's scenario on a hostile Windows");
    println!("  driver    {}", s.driver);
    if let Some(e) = &s.load_error {
        println!("  LOAD      {e}");
    }
    println!(
        "  stack     keeps the receive NBLs it is given until the adapter pauses; {} frames injected up were held when the client exited",
        s.frames_held_at_exit
    );
    println!(
        "  explorer  paused and restarted the module inside a write (NDIS call {}): {} write(s) cut, completed with NDIS_STATUS_PAUSED; {} frame(s) issued after the pause began",
        s.interrupted_at, s.writes_cut_by_pause, s.writes_after_pause_began
    );
    println!(
        "  exit      the client closed with writes and a read pending: {} write(s) cancelled ({} frames handed to NDIS), read cancelled: {}; the longest close waited {:.3} ms",
        s.writes_cancelled,
        s.frames_accepted_by_cancelled_writes,
        if s.read_cancelled { "yes" } else { "NO" },
        s.close_with_writes_pending_ms
    );
    println!(
        "  after     the next pause returned the held frames: {}; write IRPs never completed: {}; reused NBLs with stale fields: {}",
        if s.held_frames_returned_at_pause {
            "yes"
        } else {
            "NO"
        },
        s.write_irps_never_completed,
        s.stale_nbl_fields
    );
    println!(
        "  rules     {} violations, {} warnings, {} leaks",
        s.violations.len(),
        s.warnings.len(),
        s.leaks()
    );
    for v in s.violations.iter().chain(&s.warnings) {
        println!("            {v}");
    }
    println!("result: {}", if s.ok() { "OK" } else { "FAILED" });
}
