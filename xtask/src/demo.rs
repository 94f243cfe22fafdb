//! `cargo xtask demo`: the driver in the NDIS simulator, end to end, in the seed's scenario.
//!
//! rxinject (compiled for this host) is loaded into a simulated Windows with one Ethernet
//! adapter, `sim0`, whose host stack has the address 192.168.77.1 and answers ARP and ICMP
//! echo. A client does what `nping` did to the seed driver, and more:
//!
//! 1. opens `\\.\RxInject`, checks the ABI version, lists the adapters and binds to `sim0`;
//! 2. writes an ARP request and an ICMP echo request for the host into the **Rx path**: the
//!    writes complete (the seed's writer hung here) and the host stack's answers leave on the
//!    wire, through the filter;
//! 3. injects 10,000 frames up and 10,000 down in batched, overlapped writes, while foreign
//!    traffic flows both ways, so own and foreign NBLs come back mixed and shuffled;
//! 4. pauses the adapter with writes in flight (the pause waits for the injected NBLs), sees a
//!    write refused while paused, restarts;
//! 5. reads the counters, closes, and unloads the driver.
//!
//! Meanwhile a second client captures on `sim0` (both directions, snap length 256) and reads
//! what passed, as a capture tool would: it must see the injected echo request inbound,
//! marked injected, and the host's reply outbound.
//!
//! Every NDIS and I/O rule is checked throughout; leaks are checked at unload.

use std::collections::VecDeque;

use ndis_sim::packets::{Arp, IcmpEcho, arp_request};
use ndis_sim::{
    Completion, DeviceHandle, Driver, FrameOrigin, IoResult, Irp, IrqlMode, Sim, SimConfig, TestFrames,
    Violation,
};
use ndis_sys::*;
use rxinject_abi::capture::{self as cap, CaptureConfig, CaptureStats};
use rxinject_abi::write::{Batch, DIR_DEFAULT, DIR_RX, DIR_TX};
use rxinject_abi::{self as abi, Pod};
use serde_json::json;

use crate::{Error, Result};

/// Frames injected each way in the bulk phase.
pub const BULK_FRAMES: usize = 10_000;
/// Frames per write in the bulk phase.
pub const BATCH_FRAMES: usize = 500;
/// Writes a client keeps in flight.
const IN_FLIGHT: usize = 3;

const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x5E, 0x10, 0x00, 0x01];
const CLIENT_IP: [u8; 4] = [192, 168, 77, 2];

/// What the demo saw.
#[derive(Debug, Default)]
pub struct Summary {
    pub adapter: String,
    pub mac: [u8; 6],
    pub host_ip: [u8; 4],
    /// Which build ran: "compiled for this host" or the `.sys` path.
    pub driver: String,
    /// The loaded image, when the driver ran from a `.sys`.
    pub image: Option<String>,
    /// Why the loader refused the `.sys`.
    pub load_error: Option<String>,
    pub driver_entry: String,
    pub abi_version: u32,
    pub adapters_listed: u32,
    pub bind_status: String,
    /// Frames injected each way in the bulk phase.
    pub bulk: usize,
    /// The seed scenario: ARP and echo request written to the Rx path.
    pub seed_writes_completed: usize,
    pub arp_reply_on_wire: bool,
    pub echo_reply_on_wire: bool,
    pub rx_frames_written: usize,
    pub rx_frames_delivered_to_stack: usize,
    pub rx_frames_identical: usize,
    pub tx_frames_written: usize,
    pub tx_frames_on_wire: usize,
    pub tx_frames_identical: usize,
    pub stack_replies_on_wire: usize,
    pub write_irps_issued: usize,
    pub write_irps_completed: usize,
    pub write_irps_succeeded: usize,
    pub write_irps_pending: usize,
    pub writes_refused_while_paused: usize,
    pub pause_pended: bool,
    /// Foreign traffic passed through meanwhile.
    pub foreign_rx: usize,
    pub foreign_rx_delivered: usize,
    pub foreign_tx: usize,
    pub foreign_tx_on_wire: usize,
    /// The driver's counters for the handle and the adapter at the end.
    pub counters: abi::Counters,
    pub nbls_allocated: u64,
    pub nbls_freed: u64,
    /// Own NBLs still up or down (with the stack or the miniport) when the traffic ended.
    pub nbls_outstanding: usize,
    /// What the capturing client read.
    pub captured_inbound: u64,
    pub captured_outbound: u64,
    pub captured_injected: u64,
    pub capture_stats: CaptureStats,
    /// The injected echo request was captured inbound and marked injected.
    pub capture_saw_request: bool,
    /// The host's echo reply was captured outbound (not injected).
    pub capture_saw_reply: bool,
    pub violations: Vec<Violation>,
    /// Rules of the catalogue that are not a must (should, inferred, policy): rxinject is held
    /// to them too, so they fail the demo as violations do.
    pub warnings: Vec<Violation>,
}

impl Summary {
    /// Violations that are leaks (found at detach or unload).
    pub fn leaks(&self) -> usize {
        leaks_in(&self.violations)
    }

    /// Whether every written frame arrived where it was sent, byte-identical, every write
    /// completed, the host answered, and no rule was broken.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
            && self.warnings.is_empty()
            && self.load_error.is_none()
            && self.driver_entry == "STATUS_SUCCESS"
            && self.bind_status == "STATUS_SUCCESS"
            && self.seed_writes_completed == 2
            && self.arp_reply_on_wire
            && self.echo_reply_on_wire
            && self.stack_replies_on_wire >= 2
            && self.bulk > 0
            && self.rx_frames_written >= self.bulk
            && self.rx_frames_delivered_to_stack == self.rx_frames_written
            && self.rx_frames_identical == self.rx_frames_written
            && self.tx_frames_written >= self.bulk
            && self.tx_frames_on_wire == self.tx_frames_written
            && self.tx_frames_identical == self.tx_frames_written
            && self.write_irps_pending == 0
            && self.write_irps_completed == self.write_irps_issued
            && self.write_irps_succeeded + self.writes_refused_while_paused == self.write_irps_completed
            && self.foreign_rx_delivered == self.foreign_rx
            && self.foreign_tx_on_wire == self.foreign_tx
            && self.nbls_outstanding == 0
            && self.nbls_freed == self.nbls_allocated
            && self.counters.handle.frames_accepted
                == (self.rx_frames_written + self.tx_frames_written) as u64
            && self.capture_saw_request
            && self.capture_saw_reply
            && self.capture_stats.dropped == 0
            && self.captured_inbound == (self.rx_frames_written + self.foreign_rx) as u64
            && self.captured_outbound
                == (self.tx_frames_written + self.foreign_tx + self.stack_replies_on_wire) as u64
            && self.captured_injected == (self.rx_frames_written + self.tx_frames_written) as u64
    }
}

fn mac_str(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn ip_str(ip: &[u8; 4]) -> String {
    ip.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(".")
}

/// A capturing client: reads records as they come and tallies them.
struct Capturer<'a> {
    h: DeviceHandle<'a>,
    echo: Vec<u8>,
    inbound: u64,
    outbound: u64,
    injected: u64,
    saw_request: bool,
    saw_reply: bool,
}

impl Capturer<'_> {
    /// Reads everything waiting (non-blocking reads).
    fn drain(&mut self) {
        loop {
            let r = self.h.read(1 << 20);
            if r.status != STATUS_SUCCESS || r.information == 0 {
                return;
            }
            for rec in cap::records(&r.output) {
                let f = rec.header.flags;
                if f & cap::RECORD_INBOUND != 0 {
                    self.inbound += 1;
                }
                if f & cap::RECORD_OUTBOUND != 0 {
                    self.outbound += 1;
                }
                let injected = f & cap::RECORD_INJECTED != 0;
                if injected {
                    self.injected += 1;
                }
                if rec.frame == self.echo.as_slice() && f & cap::RECORD_INBOUND != 0 && injected {
                    self.saw_request = true;
                }
                if f & cap::RECORD_OUTBOUND != 0
                    && !injected
                    && IcmpEcho::parse(rec.frame)
                        .is_some_and(|e| e.reply && e.dst_ip == CLIENT_IP && e.sequence == 1)
                {
                    self.saw_reply = true;
                }
            }
        }
    }
}

/// A client of `\\.\RxInject`: records in, records out, as a user-mode tool does.
struct Client<'a> {
    h: DeviceHandle<'a>,
    in_flight: VecDeque<Irp>,
    issued: usize,
    completed: usize,
    succeeded: usize,
}

impl<'a> Client<'a> {
    fn ioctl<T: Pod + Default>(&self, code: u32, input: &[u8]) -> (IoResult, T) {
        let r = self.h.device_io_control(code, input, std::mem::size_of::<T>());
        let v = T::read_from(&r.output).unwrap_or_default();
        (r, v)
    }

    fn record(&mut self, r: &IoResult) {
        self.completed += 1;
        if r.status == STATUS_SUCCESS {
            self.succeeded += 1;
        }
    }

    /// A write, waited for.
    fn write(&mut self, buf: &[u8]) -> IoResult {
        self.issued += 1;
        let r = self.h.write(buf);
        self.record(&r);
        r
    }

    /// An overlapped write: at most IN_FLIGHT at a time.
    fn write_overlapped(&mut self, buf: &[u8]) {
        while self.in_flight.len() >= IN_FLIGHT {
            self.wait_oldest();
        }
        self.issued += 1;
        let irp = self.h.start_write(buf);
        self.in_flight.push_back(irp);
    }

    fn wait_oldest(&mut self) {
        if let Some(irp) = self.in_flight.pop_front()
            && let Some(r) = self.h.wait(irp)
        {
            self.record(&r);
        }
    }

    fn drain(&mut self) {
        while !self.in_flight.is_empty() {
            self.wait_oldest();
        }
    }
}

/// Runs the scenario and returns what happened.
pub fn simulate() -> Summary {
    simulate_with(BULK_FRAMES)
}

/// The scenario with `bulk` frames each way in phase 3.
pub fn simulate_with(bulk: usize) -> Summary {
    simulate_driver(&Driver::Linked(rxinject::DriverEntry), bulk)
}

/// The scenario, with `driver` (compiled for this host, or a `.sys` for the loader).
pub fn simulate_driver(driver: &Driver, bulk: usize) -> Summary {
    let cfg = SimConfig {
        send_completion: Completion::Mixed,
        datapath_irql: IrqlMode::Mixed,
        pause_protocol_first: false,
        seed: 2026,
        strict: ndis_sim::Strictness {
            warnings_fail: true,
            ..Default::default()
        },
        ..SimConfig::default()
    };
    let mut sim = Sim::new(cfg);
    let mut s = Summary {
        bulk,
        ..Summary::default()
    };
    s.driver = driver.to_string();
    let status = match sim.load_driver(driver) {
        Ok(status) => status,
        Err(e) => {
            s.load_error = Some(e.to_string());
            STATUS_UNSUCCESSFUL
        }
    };
    if let Some(image) = sim.image() {
        s.image = Some(format!(
            "{} mapped at {:#x} ({} bytes, {} imports bound, {} relocations)",
            image.name(),
            image.base(),
            image.size(),
            image.imports().len(),
            image.relocations()
        ));
    }
    s.driver_entry = format!("{status:?}");
    if status.is_success() {
        scenario(&sim, &mut s, bulk);
    }
    let report = sim.finish();
    s.violations = report.violations;
    s.warnings = report.warnings;
    s.nbls_allocated = report.stats.filter_nbl_allocations;
    s.nbls_freed = report.stats.filter_nbl_frees;
    s
}

/// A write of `n` new frames in `direction`, each remembered in what was written that way.
fn batch(
    direction: u8,
    n: usize,
    frames: &mut TestFrames,
    rx_written: &mut Vec<Vec<u8>>,
    tx_written: &mut Vec<Vec<u8>>,
) -> Batch {
    let written = if direction == DIR_RX {
        rx_written
    } else {
        tx_written
    };
    let mut b = Batch::new();
    for _ in 0..n {
        let f = frames.next_frame();
        b.push(direction, 0, &f);
        written.push(f);
    }
    b
}

fn scenario(sim: &Sim, s: &mut Summary, bulk: usize) {
    let a = sim.adapter(0);
    let cfg = a.config();
    s.adapter = cfg.name.clone();
    s.mac = cfg.mac;
    s.host_ip = cfg.host_ip;
    let Ok(h) = sim.open(abi::USER_PATH) else { return };
    let mut c = Client {
        h,
        in_flight: VecDeque::new(),
        issued: 0,
        completed: 0,
        succeeded: 0,
    };

    // 1. Version, adapters, bind, default direction Rx.
    let (_, v): (_, abi::VersionInfo) = c.ioctl(abi::IOCTL_RXINJECT_GET_VERSION, &[]);
    s.abi_version = v.abi_version;
    let list = c.h.device_io_control(
        abi::IOCTL_RXINJECT_LIST_ADAPTERS,
        &[],
        std::mem::size_of::<abi::AdapterListHeader>() + 4 * std::mem::size_of::<abi::AdapterEntry>(),
    );
    s.adapters_listed = abi::AdapterListHeader::read_from(&list.output).map_or(0, |h| h.returned);
    let bind = abi::BindRequest {
        abi_version: abi::ABI_VERSION,
        if_index: cfg.if_index,
    };
    s.bind_status = format!(
        "{:?}",
        c.h.device_io_control(abi::IOCTL_RXINJECT_BIND, &bind.to_vec(), 0)
            .status
    );
    let dir = abi::SetDirection {
        direction: abi::DIRECTION_RX,
    };
    c.h.device_io_control(abi::IOCTL_RXINJECT_SET_DIRECTION, &dir.to_vec(), 0);

    // The capturing client, on its own handle.
    let Ok(ch) = sim.open(abi::USER_PATH) else { return };
    ch.device_io_control(abi::IOCTL_RXINJECT_BIND, &bind.to_vec(), 0);
    let config = CaptureConfig {
        ring_bytes: 16 << 20,
        snaplen: 256,
        flags: cap::CAPTURE_NONBLOCK,
        ..CaptureConfig::default()
    };
    ch.device_io_control(abi::IOCTL_RXINJECT_SET_CAPTURE, &config.to_vec(), 0);

    let mut rx_written: Vec<Vec<u8>> = Vec::new();
    let mut tx_written: Vec<Vec<u8>> = Vec::new();

    // 2. The seed's scenario: who has the host's address, then ping it, through the Rx path.
    let arp = arp_request(CLIENT_MAC, CLIENT_IP, cfg.host_ip);
    let echo = IcmpEcho::request(
        CLIENT_MAC,
        cfg.mac,
        CLIENT_IP,
        cfg.host_ip,
        0x6e70,
        1,
        b"rxinject demo: echo via Rx",
    )
    .to_frame();
    let mut capturer = Capturer {
        h: ch,
        echo: echo.clone(),
        inbound: 0,
        outbound: 0,
        injected: 0,
        saw_request: false,
        saw_reply: false,
    };
    for frame in [&arp, &echo] {
        let mut b = Batch::new();
        b.push(DIR_DEFAULT, 0, frame);
        let r = c.write(b.as_bytes());
        if r.status == STATUS_SUCCESS && r.information == 1 {
            s.seed_writes_completed += 1;
            rx_written.push(frame.clone());
        }
    }
    sim.run_until_idle();
    for w in a.stack_replies_on_wire() {
        if Arp::parse(&w.bytes).is_some_and(|r| r.operation == 2 && r.target_ip == CLIENT_IP) {
            s.arp_reply_on_wire = true;
        }
        if IcmpEcho::parse(&w.bytes).is_some_and(|e| e.reply && e.dst_ip == CLIENT_IP && e.sequence == 1) {
            s.echo_reply_on_wire = true;
        }
    }

    // 3. Bulk: batched, overlapped writes each way, with foreign traffic in between.
    let mut frames = TestFrames::new(CLIENT_MAC, cfg.mac);
    let mut foreign = TestFrames::new([0x02, 0x00, 0x5E, 0x20, 0x00, 0x02], cfg.mac);
    let mut foreign_rx: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut foreign_tx: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut round = 0usize;
    let mut bulk_rx = 0;
    let mut bulk_tx = 0;
    while bulk_rx < bulk || bulk_tx < bulk {
        for (direction, done) in [(DIR_RX, &mut bulk_rx), (DIR_TX, &mut bulk_tx)] {
            if *done >= bulk {
                continue;
            }
            let n = BATCH_FRAMES.min(bulk - *done);
            let b = batch(direction, n, &mut frames, &mut rx_written, &mut tx_written);
            c.write_overlapped(b.as_bytes());
            *done += n;
        }
        // Foreign traffic both ways; the stack and the miniport give back part of what they
        // hold, in chains mixing own and foreign NBLs.
        let f = foreign.take(8);
        foreign_rx.extend(a.indicate(&f).into_iter().zip(f));
        let f = foreign.take(8);
        foreign_tx.extend(a.send(&f).into_iter().zip(f));
        a.return_receives(BATCH_FRAMES / 2 + round % 7);
        a.complete_sends(BATCH_FRAMES / 2 + round % 5);
        capturer.drain();
        round += 1;
    }
    c.drain();

    // 4. Pause with writes in flight: the pause waits for the injected NBLs; a write while
    // paused is refused at once; restart.
    for direction in [DIR_RX, DIR_TX] {
        let b = batch(direction, 64, &mut frames, &mut rx_written, &mut tx_written);
        c.write_overlapped(b.as_bytes());
    }
    let pended_before = a.pauses_pended();
    sim.pause(0);
    s.pause_pended = a.pauses_pended() > pended_before;
    c.drain();
    let mut b = Batch::new();
    b.push(DIR_TX, 0, &frames.next_frame());
    if c.write(b.as_bytes()).status == NTSTATUS::from(NDIS_STATUS_PAUSED) {
        s.writes_refused_while_paused += 1;
    }
    sim.restart(0);
    sim.run_until_idle();

    // What arrived where.
    // (frames delivered, how many of them equal what was written, in order)
    let compare = |own: Vec<&Vec<u8>>, written: &[Vec<u8>]| {
        let identical = own
            .iter()
            .zip(written)
            .filter(|(got, sent)| **got == *sent)
            .count();
        (own.len(), identical)
    };
    let received = a.received();
    s.rx_frames_written = rx_written.len();
    (s.rx_frames_delivered_to_stack, s.rx_frames_identical) = compare(
        received
            .iter()
            .filter(|r| r.origin == FrameOrigin::Filter)
            .map(|r| &r.bytes)
            .collect(),
        &rx_written,
    );
    let wire = a.wire();
    s.tx_frames_written = tx_written.len();
    (s.tx_frames_on_wire, s.tx_frames_identical) = compare(
        wire.iter()
            .filter(|w| w.origin == FrameOrigin::Filter)
            .map(|w| &w.bytes)
            .collect(),
        &tx_written,
    );
    s.stack_replies_on_wire = a.stack_replies_on_wire().len();
    s.foreign_rx = foreign_rx.len();
    s.foreign_rx_delivered = foreign_rx
        .iter()
        .filter(|(id, bytes)| {
            received
                .iter()
                .any(|r| r.origin == FrameOrigin::Foreign && r.id == *id && &r.bytes == bytes)
        })
        .count();
    s.foreign_tx = foreign_tx.len();
    s.foreign_tx_on_wire = foreign_tx
        .iter()
        .filter(|(id, bytes)| {
            wire.iter()
                .any(|w| w.origin == FrameOrigin::Foreign && w.id == *id && &w.bytes == bytes)
        })
        .count();
    s.nbls_outstanding = sim.stats().filter_nbls_out;

    // The capture's view.
    capturer.drain();
    let r = capturer.h.device_io_control(
        abi::IOCTL_RXINJECT_GET_CAPTURE_STATS,
        &[],
        std::mem::size_of::<CaptureStats>(),
    );
    s.capture_stats = CaptureStats::read_from(&r.output).unwrap_or_default();
    s.captured_inbound = capturer.inbound;
    s.captured_outbound = capturer.outbound;
    s.captured_injected = capturer.injected;
    s.capture_saw_request = capturer.saw_request;
    s.capture_saw_reply = capturer.saw_reply;
    capturer.h.close();

    // 5. Counters, close.
    let (_, counters): (_, abi::Counters) = c.ioctl(abi::IOCTL_RXINJECT_GET_COUNTERS, &[]);
    s.counters = counters;
    s.write_irps_issued = c.issued;
    s.write_irps_completed = c.completed;
    s.write_irps_succeeded = c.succeeded;
    s.write_irps_pending = sim.io_stats().pending;
    c.h.close();
}

/// The summary as one JSON object.
pub fn to_json(s: &Summary) -> serde_json::Value {
    let hc = &s.counters.handle;
    let ac = &s.counters.adapter;
    json!({
        "adapter": s.adapter,
        "mac": mac_str(&s.mac),
        "host_ip": ip_str(&s.host_ip),
        "driver": s.driver,
        "image": s.image,
        "load_error": s.load_error,
        "driver_entry": s.driver_entry,
        "abi_version": format!("{}.{}", s.abi_version >> 16, s.abi_version & 0xFFFF),
        "adapters_listed": s.adapters_listed,
        "bind": s.bind_status,
        "seed_writes_completed": s.seed_writes_completed,
        "arp_reply_on_wire": s.arp_reply_on_wire,
        "echo_reply_on_wire": s.echo_reply_on_wire,
        "rx_frames_written": s.rx_frames_written,
        "rx_frames_delivered_to_stack": s.rx_frames_delivered_to_stack,
        "rx_frames_identical": s.rx_frames_identical,
        "tx_frames_written": s.tx_frames_written,
        "tx_frames_on_wire": s.tx_frames_on_wire,
        "tx_frames_identical": s.tx_frames_identical,
        "stack_replies_on_wire": s.stack_replies_on_wire,
        "write_irps_issued": s.write_irps_issued,
        "write_irps_completed": s.write_irps_completed,
        "write_irps_succeeded": s.write_irps_succeeded,
        "write_irps_pending": s.write_irps_pending,
        "writes_refused_while_paused": s.writes_refused_while_paused,
        "pause_waited_for_injected_nbls": s.pause_pended,
        "foreign_rx_passed": s.foreign_rx_delivered,
        "foreign_tx_passed": s.foreign_tx_on_wire,
        "driver_counters": {
            "handle": {
                "writes": hc.writes, "writes_succeeded": hc.writes_succeeded, "writes_failed": hc.writes_failed,
                "frames_accepted": hc.frames_accepted, "bytes_accepted": hc.bytes_accepted,
                "rx_frames": hc.rx_frames, "tx_frames": hc.tx_frames, "writes_pending": hc.writes_pending,
            },
            "adapter": {
                "rx_injected": ac.rx_injected, "tx_injected": ac.tx_injected, "rx_returned": ac.rx_returned,
                "tx_completed": ac.tx_completed, "tx_failed": ac.tx_failed, "nbls_allocated": ac.nbls_allocated,
                "nbls_in_flight": ac.nbls_in_flight, "writes_out_of_nbls": ac.writes_out_of_nbls,
                "writes_not_running": ac.writes_not_running,
            },
        },
        "captured_inbound": s.captured_inbound,
        "captured_outbound": s.captured_outbound,
        "captured_injected": s.captured_injected,
        "capture_drops": s.capture_stats.dropped,
        "capture_seen": s.capture_stats.seen,
        "capture_saw_injected_echo_request_inbound": s.capture_saw_request,
        "capture_saw_host_reply_outbound": s.capture_saw_reply,
        "nbls_allocated": s.nbls_allocated,
        "nbls_freed": s.nbls_freed,
        "nbls_outstanding": s.nbls_outstanding,
        "rule_violations": violations_json(&s.violations),
        "rule_warnings": warnings_json(&s.warnings),
        "leaks": s.leaks(),
        "ok": s.ok(),
    })
}

/// The violations among `violations` that are leaks (something left behind).
pub fn leaks_in(violations: &[Violation]) -> usize {
    violations
        .iter()
        .filter(|v| v.message.contains("leak") || v.message.contains("left"))
        .count()
}

/// The demos' `rule_violations`.
pub fn violations_json(violations: &[Violation]) -> serde_json::Value {
    violations
        .iter()
        .map(|v| json!({"rule": v.rule.id(), "context": v.context, "message": v.message}))
        .collect()
}

/// The demos' `rule_warnings`.
pub fn warnings_json(warnings: &[Violation]) -> serde_json::Value {
    warnings
        .iter()
        .map(|v| {
            json!({
                "rule": v.rule.id(), "severity": v.rule.severity().name(), "context": v.context, "message": v.message,
            })
        })
        .collect()
}

/// `cargo xtask demo [--json] [--driver FILE.sys]`.
pub fn run(json_out: bool, driver: &Driver) -> Result<()> {
    let s = simulate_driver(driver, BULK_FRAMES);
    report(json_out, s.ok(), || to_json(&s), || print_summary(&s), "the demo")
}

/// Prints a demo's verdict (`json` or the summary) and fails unless `ok`.
pub fn report(
    json_out: bool,
    ok: bool,
    json: impl FnOnce() -> serde_json::Value,
    summary: impl FnOnce(),
    what: &str,
) -> Result<()> {
    if json_out {
        println!("{}", serde_json::to_string_pretty(&json()).expect("serialisable"));
    } else {
        summary();
    }
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!("{what} found problems (see above)")))
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "NO" }
}

fn print_summary(s: &Summary) {
    let c = &s.counters;
    println!("rxinject demo: the seed's scenario in the NDIS simulator");
    println!("  driver    {}", s.driver);
    if let Some(image) = &s.image {
        println!("            {image}");
    }
    if let Some(e) = &s.load_error {
        println!("  LOADER    refused the image: {e}");
    }
    println!(
        "  adapter   {} ({}), host stack at {}",
        s.adapter,
        mac_str(&s.mac),
        ip_str(&s.host_ip)
    );
    println!(
        "  load      DriverEntry -> {}; \\\\.\\RxInject opened, ABI {}.{}, {} adapter(s) listed, bind -> {}",
        s.driver_entry,
        s.abi_version >> 16,
        s.abi_version & 0xFFFF,
        s.adapters_listed,
        s.bind_status
    );
    println!(
        "  seed      ARP request and ICMP echo request written to the Rx path: {} of 2 writes completed",
        s.seed_writes_completed
    );
    println!(
        "            the host stack answered on the wire: ARP reply {}, echo reply {} ({} stack replies on the wire)",
        yes(s.arp_reply_on_wire),
        yes(s.echo_reply_on_wire),
        s.stack_replies_on_wire
    );
    println!(
        "  rx        {} frames written; {} delivered to the stack, {} byte-identical and in order",
        s.rx_frames_written, s.rx_frames_delivered_to_stack, s.rx_frames_identical
    );
    println!(
        "  tx        {} frames written; {} on the wire, {} byte-identical and in order",
        s.tx_frames_written, s.tx_frames_on_wire, s.tx_frames_identical
    );
    println!(
        "  writes    {} write IRPs ({} frames per batch, {} in flight): {} completed, {} succeeded, {} pending; {} refused while paused",
        s.write_irps_issued,
        BATCH_FRAMES,
        IN_FLIGHT,
        s.write_irps_completed,
        s.write_irps_succeeded,
        s.write_irps_pending,
        s.writes_refused_while_paused
    );
    println!(
        "  pause     with writes in flight: the pause {} for the injected NBLs",
        if s.pause_pended { "waited" } else { "did NOT wait" }
    );
    println!(
        "  foreign   {} of {} receives and {} of {} sends passed through meanwhile",
        s.foreign_rx_delivered, s.foreign_rx, s.foreign_tx_on_wire, s.foreign_tx
    );
    println!(
        "  capture   {} inbound, {} outbound ({} injected) of {} seen, {} dropped; the injected echo request inbound: {}, the host's reply outbound: {}",
        s.captured_inbound,
        s.captured_outbound,
        s.captured_injected,
        s.capture_stats.seen,
        s.capture_stats.dropped,
        yes(s.capture_saw_request),
        yes(s.capture_saw_reply)
    );
    println!(
        "  counters  handle: {} frames / {} bytes accepted; adapter: {} up / {} down injected, {} returned, {} completed",
        c.handle.frames_accepted,
        c.handle.bytes_accepted,
        c.adapter.rx_injected,
        c.adapter.tx_injected,
        c.adapter.rx_returned,
        c.adapter.tx_completed
    );
    println!(
        "  nbls      {} allocated, {} freed (at unload), {} outstanding when traffic ended",
        s.nbls_allocated, s.nbls_freed, s.nbls_outstanding
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
