//! `cargo xtask demo`: the driver in the NDIS simulator, end to end.
//!
//! rxinject (compiled for this host) is loaded into a simulated Windows with one Ethernet
//! adapter, `sim0`. The demo passes traffic both ways in every shape the simulator knows
//! (receives with and without RESOURCES, sends completed at once and later, returns mixed
//! across indications, datapath at PASSIVE and DISPATCH), pauses with traffic in flight,
//! checks that a paused filter refuses traffic, restarts, forwards an OID, detaches and
//! re-attaches, and unloads. Every NDIS rule is checked throughout; leaks are checked at
//! detach and unload.

use ndis_sim::{Completion, FrameOrigin, IrqlMode, Sim, SimConfig, TestFrames, Violation};
use ndis_sys::*;
use serde_json::json;

use crate::{Error, Result};

/// What the demo saw.
#[derive(Debug, Default)]
pub struct Summary {
    pub adapter: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub driver_entry: String,
    pub rx_indicated: usize,
    pub rx_indicated_resources: usize,
    pub rx_delivered: usize,
    pub rx_delivered_identical: usize,
    pub rx_returned: u64,
    pub tx_sent: usize,
    pub tx_on_wire: usize,
    pub tx_on_wire_identical: usize,
    pub tx_completed: usize,
    pub tx_completed_success: usize,
    pub rx_refused_while_paused: usize,
    pub tx_refused_while_paused: usize,
    pub pause_cycles: u32,
    pub attach_cycles: u32,
    pub oid_mac: Option<[u8; 6]>,
    pub violations: Vec<Violation>,
}

impl Summary {
    /// Violations that are leaks (found at detach or unload).
    pub fn leaks(&self) -> usize {
        self.violations
            .iter()
            .filter(|v| v.message.contains("leak") || v.message.contains("left"))
            .count()
    }

    /// Whether everything passed through exactly and no rule was broken.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
            && self.driver_entry == "STATUS_SUCCESS"
            && self.rx_delivered == self.rx_indicated
            && self.rx_delivered_identical == self.rx_delivered
            && self.rx_returned
                == (self.rx_indicated - self.rx_indicated_resources + self.rx_refused_while_paused) as u64
            && self.tx_on_wire == self.tx_sent
            && self.tx_on_wire_identical == self.tx_on_wire
            && self.tx_completed == self.tx_sent + self.tx_refused_while_paused
            && self.tx_completed_success == self.tx_sent
            && self.oid_mac == Some(self.mac)
    }
}

fn mac_str(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Frames sent so far, by direction, with the ids the simulator gave them.
struct Traffic {
    frames: TestFrames,
    rx_sent: Vec<(u64, Vec<u8>)>,
    tx_sent: Vec<(u64, Vec<u8>)>,
}

impl Traffic {
    /// `rounds` rounds of chains of 1 to 16 frames each way (every fourth receive chain with
    /// RESOURCES), with part of the returns and completions done as they go.
    fn both_ways(&mut self, a: &ndis_sim::AdapterRef<'_>, rounds: usize, s: &mut Summary) {
        for round in 0..rounds {
            let n = 1 + round % 16;
            let f = self.frames.take(n);
            let ids = if round % 4 == 3 {
                s.rx_indicated_resources += n;
                a.indicate_resources(&f)
            } else {
                a.indicate(&f)
            };
            s.rx_indicated += n;
            self.rx_sent.extend(ids.into_iter().zip(f));
            let f = self.frames.take(n);
            self.tx_sent.extend(a.send(&f).into_iter().zip(f));
            s.tx_sent += n;
            a.return_receives(n / 2);
            a.complete_sends(n / 2);
        }
    }
}

/// Runs the scenario and returns what happened.
pub fn simulate() -> Summary {
    let cfg = SimConfig {
        send_completion: Completion::Mixed,
        datapath_irql: IrqlMode::Mixed,
        seed: 2026,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(cfg);
    let mut s = Summary::default();
    let status = sim.load(rxinject::DriverEntry);
    s.driver_entry = format!("{status:?}");
    let a = sim.adapter(0);
    s.adapter = a.config().name.clone();
    s.mac = a.config().mac;
    s.mtu = a.config().mtu;
    let mut t = Traffic {
        frames: TestFrames::new([0x02, 0x00, 0x5E, 0x10, 0x00, 0x01], s.mac),
        rx_sent: Vec::new(),
        tx_sent: Vec::new(),
    };

    // 1. Traffic both ways.
    t.both_ways(&a, 32, &mut s);
    sim.run_until_idle();

    // 2. Pause with traffic in flight, refuse traffic while paused, restart.
    for _ in 0..3 {
        t.both_ways(&a, 4, &mut s);
        sim.pause(0);
        s.pause_cycles += 1;
        a.indicate(&t.frames.take(4));
        s.rx_refused_while_paused += 4;
        a.send(&t.frames.take(4));
        s.tx_refused_while_paused += 4;
        sim.run_until_idle();
        sim.restart(0);
    }

    // 3. An OID through the filter.
    let r = a.query_oid(OID_802_3_CURRENT_ADDRESS, 6);
    if r.status == NDIS_STATUS_SUCCESS && r.data.len() == 6 {
        s.oid_mac = Some(r.data.as_slice().try_into().expect("6 bytes"));
    }

    // 4. Detach and attach again (an adapter disabled and enabled), then more traffic.
    sim.detach(0);
    let _ = sim.attach(0);
    s.attach_cycles = a.attach_count();
    t.both_ways(&a, 16, &mut s);
    sim.run_until_idle();

    // What arrived where.
    let received = a.received();
    s.rx_delivered = received.len();
    s.rx_delivered_identical = received
        .iter()
        .zip(&t.rx_sent)
        .filter(|(r, (id, bytes))| r.id == *id && &r.bytes == bytes && r.origin == FrameOrigin::Foreign)
        .count();
    s.rx_returned = a.rx_returned();
    let wire = a.wire();
    s.tx_on_wire = wire.len();
    s.tx_on_wire_identical = wire
        .iter()
        .zip(&t.tx_sent)
        .filter(|(w, (id, bytes))| w.id == *id && &w.bytes == bytes)
        .count();
    let completions = a.completions();
    s.tx_completed = completions.len();
    s.tx_completed_success = completions
        .iter()
        .filter(|c| c.status == NDIS_STATUS_SUCCESS)
        .count();

    // 5. Unload: detaches, and every allocation must be gone.
    s.violations = sim.finish().violations;
    s
}

/// `cargo xtask demo [--json]`.
pub fn run(json_out: bool) -> Result<()> {
    let s = simulate();
    if json_out {
        let v = json!({
            "adapter": s.adapter,
            "mac": mac_str(&s.mac),
            "mtu": s.mtu,
            "driver_entry": s.driver_entry,
            "rx_indicated": s.rx_indicated,
            "rx_indicated_resources": s.rx_indicated_resources,
            "rx_delivered": s.rx_delivered,
            "rx_delivered_identical": s.rx_delivered_identical,
            "rx_returned": s.rx_returned,
            "rx_refused_while_paused": s.rx_refused_while_paused,
            "tx_sent": s.tx_sent,
            "tx_on_wire": s.tx_on_wire,
            "tx_on_wire_identical": s.tx_on_wire_identical,
            "tx_completed": s.tx_completed,
            "tx_completed_success": s.tx_completed_success,
            "tx_refused_while_paused": s.tx_refused_while_paused,
            "pause_cycles": s.pause_cycles,
            "attach_cycles": s.attach_cycles,
            "oid_current_address": s.oid_mac.map(|m| mac_str(&m)),
            "violations": s.violations.iter().map(|v| json!({
                "rule": v.rule.id(), "context": v.context, "message": v.message,
            })).collect::<Vec<_>>(),
            "leaks": s.leaks(),
            "ok": s.ok(),
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("serialisable"));
    } else {
        println!("rxinject demo: the driver in the NDIS simulator");
        println!("  adapter   {} ({}, MTU {})", s.adapter, mac_str(&s.mac), s.mtu);
        println!(
            "  load      DriverEntry -> {}; attached and restarted during registration",
            s.driver_entry
        );
        println!(
            "  receive   {} frames indicated ({} with RESOURCES); {} reached the protocol, {} byte-identical and in order; {} returned to the miniport",
            s.rx_indicated, s.rx_indicated_resources, s.rx_delivered, s.rx_delivered_identical, s.rx_returned
        );
        println!(
            "  send      {} frames sent; {} on the wire, {} byte-identical and in order; {} completed with SUCCESS",
            s.tx_sent, s.tx_on_wire, s.tx_on_wire_identical, s.tx_completed_success
        );
        println!(
            "  pause     {} pause/restart cycles with traffic in flight; while paused {} receives returned and {} sends completed with NDIS_STATUS_PAUSED",
            s.pause_cycles, s.rx_refused_while_paused, s.tx_refused_while_paused
        );
        println!(
            "  oid       OID_802_3_CURRENT_ADDRESS through the filter: {}",
            s.oid_mac.map_or("failed".to_string(), |m| mac_str(&m))
        );
        println!(
            "  attach    {} attaches (one detach/attach cycle), then unload",
            s.attach_cycles
        );
        println!(
            "  rules     {} violations, {} leaks",
            s.violations.len(),
            s.leaks()
        );
        for v in &s.violations {
            println!("            {v}");
        }
        println!("result: {}", if s.ok() { "OK" } else { "FAILED" });
    }
    if s.ok() {
        Ok(())
    } else {
        Err(Error::new("the demo found problems (see above)"))
    }
}
