//! rxinject's module life cycle under the strict simulator: registration, attach only to
//! Ethernet, pause and restart with traffic in flight, refusing traffic while not running,
//! repeated attach/detach, traffic on several threads, and a clean unload.

mod common;

use common::load;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use ndis_sim::{AdapterConfig, IrqlMode, ModState, Sim, SimConfig, TestFrames};
use ndis_sys::*;

fn frames(sim: &Sim) -> TestFrames {
    TestFrames::new([0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE], sim.adapter(0).config().mac)
}

#[test]
fn each_allocation_failing_in_driver_entry_fails_the_load_and_leaks_nothing() {
    let mut n = 1;
    loop {
        let mut cfg = SimConfig {
            hostile: ndis_sim::Hostile {
                fail_in_driver_entry: n,
                ..ndis_sim::Hostile::default()
            },
            ..SimConfig::default()
        };
        cfg.strict.warnings_fail = true;
        let mut sim = Sim::new(cfg);
        let status = common::load_into(&mut sim);
        if sim.failed_allocations() == 0 {
            // DriverEntry makes fewer than n allocations: every one has been failed.
            assert!(n > 1, "DriverEntry allocates nothing?");
            eprintln!("DriverEntry: {} allocations, each failed in turn", n - 1);
            assert_eq!(status, STATUS_SUCCESS);
            sim.finish().assert_clean();
            break;
        }
        if status == STATUS_SUCCESS {
            // Carried on without it: then it works.
            let a = sim.adapter(0);
            a.indicate(&frames(&sim).take(2));
            sim.run_until_idle();
            assert_eq!(a.received().len(), 2, "allocation {n} failed");
        }
        let report = sim.finish();
        assert!(
            report.is_clean(),
            "allocation {n} of DriverEntry failed ({status:?}):\n{report}"
        );
        n += 1;
        assert!(n < 200, "DriverEntry kept allocating");
    }
}

#[test]
fn registers_under_its_documented_names_and_runs_after_registration() {
    let sim = load(SimConfig::default());
    let [friendly, unique, service] = sim.registered_names().expect("registered");
    assert_eq!(friendly, rxinject_abi::FILTER_FRIENDLY_NAME);
    assert_eq!(unique, rxinject_abi::FILTER_UNIQUE_NAME);
    assert_eq!(service, rxinject_abi::SERVICE_NAME);
    assert_eq!(
        sim.adapter(0).state(),
        ModState::Running,
        "attached and restarted inside registration (ST8)"
    );
    sim.finish().assert_clean();
}

#[test]
fn the_mtu_comes_from_the_restart_attributes() {
    let mut adapter = AdapterConfig::ethernet(0);
    adapter.mtu = 9000;
    let sim = load(SimConfig {
        adapters: vec![adapter],
        ..SimConfig::default()
    });
    assert!(
        sim.log().iter().any(|l| l.contains("running, mtu 9000")),
        "{:?}",
        sim.log()
    );
    sim.finish().assert_clean();
}

#[test]
fn only_ethernet_adapters_are_attached_and_the_others_still_pass_traffic() {
    let mut wan = AdapterConfig::ethernet(1);
    wan.medium = NdisMediumWan;
    let sim = load(SimConfig {
        adapters: vec![AdapterConfig::ethernet(0), wan],
        ..SimConfig::default()
    });
    assert_eq!(sim.adapter(0).state(), ModState::Running);
    assert_eq!(
        sim.adapter(1).state(),
        ModState::Detached,
        "FilterAttach refused a non-802.3 medium"
    );
    let mut frames_gen = frames(&sim);
    sim.adapter(1).indicate(&frames_gen.take(2));
    sim.adapter(1).send(&frames_gen.take(2));
    sim.run_until_idle();
    assert_eq!(
        sim.adapter(1).received().len(),
        2,
        "NDIS bypasses the filter there"
    );
    // A failed attach must free what it allocated (ST2): a clean report proves it.
    sim.finish().assert_clean();
}

#[test]
fn a_paused_module_returns_receives_and_completes_sends_with_paused() {
    // At either IRQL: the return and send-complete flags say which (S7).
    for datapath_irql in [IrqlMode::Dispatch, IrqlMode::Passive] {
        paused_module_refuses_traffic(datapath_irql);
    }
}

fn paused_module_refuses_traffic(datapath_irql: IrqlMode) {
    let sim = load(SimConfig {
        datapath_irql,
        ..SimConfig::default()
    });
    let a = sim.adapter(0);
    let mut frames_gen = frames(&sim);
    // The module alone paused (NdisFRestartFilter's pause): the protocol above still sends.
    sim.pause_module(0);
    assert_eq!(a.state(), ModState::Paused);
    a.indicate(&frames_gen.take(3));
    a.indicate_resources(&frames_gen.take(2));
    let ids = a.send(&frames_gen.take(4));
    sim.run_until_idle();
    assert!(a.received().is_empty(), "nothing passed up while paused (R12)");
    assert!(a.wire().is_empty(), "nothing passed down while paused (S9)");
    assert_eq!(a.rx_returned(), 3, "the owned receives went straight back");
    let c = a.completions();
    assert_eq!(c.iter().map(|c| c.id).collect::<Vec<_>>(), ids);
    assert!(c.iter().all(|c| c.status == NDIS_STATUS_PAUSED), "{c:?}");
    sim.restart(0);
    sim.finish().assert_clean();
}

#[test]
fn sends_refused_while_paused_are_completed_with_send_complete_flags_not_send_flags() {
    // Send and send-complete flags are different families (S13, S14): SINGLE_QUEUE (0x4) and
    // CHECK_FOR_LOOPBACK (0x2) passed back as they came would read as the send-complete
    // flags SWITCH_SINGLE_SOURCE and SINGLE_QUEUE.
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    sim.pause_module(0);
    let flags = NDIS_SEND_FLAGS_SINGLE_QUEUE | NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK;
    let ids = a.send_with_flags(&frames(&sim).take(3), flags);
    sim.run_until_idle();
    let c = a.completions();
    assert_eq!(c.iter().map(|c| c.id).collect::<Vec<_>>(), ids);
    assert!(c.iter().all(|c| c.status == NDIS_STATUS_PAUSED), "{c:?}");
    sim.restart(0);
    sim.finish().assert_clean();
}

#[test]
fn pause_and_restart_with_traffic_in_flight() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let mut frames_gen = frames(&sim);
    for round in 0..10 {
        // Traffic in flight: receives held above, sends pending below.
        a.indicate(&frames_gen.take(4));
        a.send(&frames_gen.take(4));
        assert!(a.held_by_protocol() > 0 && a.pending_at_miniport() > 0);
        sim.pause(0);
        assert_eq!(a.state(), ModState::Paused, "round {round}");
        assert_eq!(a.held_by_protocol(), 0);
        assert_eq!(a.tx_outstanding(), 0);
        assert_eq!(sim.restart(0), NDIS_STATUS_SUCCESS);
        assert_eq!(a.state(), ModState::Running);
    }
    a.indicate(&frames_gen.take(2));
    a.send(&frames_gen.take(2));
    sim.run_until_idle();
    assert_eq!(a.received().len(), 42);
    assert_eq!(a.wire().len(), 42);
    sim.finish().assert_clean();
}

#[test]
fn pause_without_the_protocol_pausing_first() {
    // A harsher order than NDIS uses: the filter pauses while the protocol still holds
    // receives and sends are still below. The filter holds none of them, so it pauses at once.
    let sim = load(SimConfig {
        pause_protocol_first: false,
        ..SimConfig::default()
    });
    let a = sim.adapter(0);
    let mut frames_gen = frames(&sim);
    a.indicate(&frames_gen.take(3));
    a.send(&frames_gen.take(3));
    sim.pause(0);
    assert_eq!(a.state(), ModState::Paused);
    // Completions and returns still find their way while paused.
    sim.run_until_idle();
    assert_eq!(a.rx_returned(), 3);
    assert_eq!(a.completions().len(), 3);
    assert!(a.completions().iter().all(|c| c.status == NDIS_STATUS_SUCCESS));
    sim.finish().assert_clean();
}

#[test]
fn repeated_attach_detach_cycles_leave_nothing_behind() {
    let sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let mut frames_gen = frames(&sim);
    for cycle in 0..25 {
        a.indicate(&frames_gen.take(2));
        a.send(&frames_gen.take(2));
        sim.detach(0);
        assert_eq!(a.state(), ModState::Detached, "cycle {cycle}");
        sim.attach(0).expect("re-attach");
        assert_eq!(a.state(), ModState::Running);
        if cycle % 5 == 0 {
            sim.pause(0);
            assert_eq!(sim.restart(0), NDIS_STATUS_SUCCESS);
        }
    }
    sim.run_until_idle();
    assert_eq!(a.attach_count(), 26);
    assert_eq!(a.received().len(), 50);
    assert_eq!(a.wire().len(), 50);
    // Detach frees the module context and pool each time (ST7); unload frees the rest (K1).
    sim.finish().assert_clean();
}

#[test]
fn traffic_on_several_threads_through_pause_restart_cycles() {
    const WORKERS: usize = 4;
    const CYCLES: usize = 30;
    let sim = Arc::new(load(SimConfig {
        seed: 7,
        ..SimConfig::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    // Operations each worker has done: the pauser waits for counts reached, never for time,
    // so a loaded machine gives the same interleaving guarantees as an idle one.
    let done: Arc<Vec<AtomicUsize>> = Arc::new((0..WORKERS).map(|_| AtomicUsize::new(0)).collect());
    let mut workers = Vec::new();
    for t in 0..WORKERS as u8 {
        let sim = Arc::clone(&sim);
        let stop = Arc::clone(&stop);
        let done = Arc::clone(&done);
        workers.push(thread::spawn(move || {
            let _actor = sim.actor();
            let mut frames_gen = TestFrames::new([0x02, t, 0, 0, 0, 1], sim.adapter(0).config().mac);
            let mut n = 0usize;
            while !stop.load(Ordering::Acquire) {
                let a = sim.adapter(0);
                match (usize::from(t) + n) % 4 {
                    0 => drop(a.indicate(&frames_gen.take(3))),
                    1 => drop(a.indicate_resources(&frames_gen.take(2))),
                    2 => drop(a.send(&frames_gen.take(3))),
                    _ => {
                        a.complete_sends(4);
                        a.return_receives(4);
                    }
                }
                n += 1;
                done[usize::from(t)].store(n, Ordering::Release);
            }
            n
        }));
    }
    // Until every worker has done `k` more operations (all four kinds).
    let each_does = |k: usize| {
        let start: Vec<usize> = done.iter().map(|d| d.load(Ordering::Acquire)).collect();
        while done
            .iter()
            .zip(&start)
            .any(|(d, s)| d.load(Ordering::Acquire) < s + k)
        {
            thread::yield_now();
        }
    };
    for _ in 0..CYCLES {
        sim.pause(0);
        each_does(4);
        assert_eq!(sim.restart(0), NDIS_STATUS_SUCCESS);
        each_does(4);
    }
    stop.store(true, Ordering::Release);
    let ops: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(ops >= WORKERS * CYCLES * 8, "the workers ran ({ops} operations)");
    sim.run_until_idle();
    let a = sim.adapter(0);
    assert_eq!(a.rx_outstanding(), 0);
    assert_eq!(a.tx_outstanding(), 0);
    // Every send was completed exactly once: passed through (SUCCESS) or refused (PAUSED).
    let c = a.completions();
    let mut ids: Vec<u64> = c.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), c.len(), "no send completed twice");
    let passed = c.iter().filter(|c| c.status == NDIS_STATUS_SUCCESS).count();
    assert_eq!(
        passed,
        a.wire().len(),
        "a send reached the wire iff it completed with SUCCESS"
    );
    let sim = Arc::into_inner(sim).expect("workers are done");
    sim.finish().assert_clean();
}

#[test]
fn unload_with_traffic_outstanding_returns_and_frees_everything() {
    let mut sim = load(SimConfig::default());
    let a = sim.adapter(0);
    let mut frames_gen = frames(&sim);
    a.indicate(&frames_gen.take(5));
    a.send(&frames_gen.take(5));
    assert!(a.held_by_protocol() > 0);
    sim.unload();
    assert_eq!(sim.adapter(0).state(), ModState::Detached);
    assert_eq!(sim.adapter(0).rx_outstanding(), 0);
    assert_eq!(sim.adapter(0).tx_outstanding(), 0);
    assert!(sim.log().iter().any(|l| l.contains("unloaded")));
    sim.finish().assert_clean();
}
