//! rxinject under the simulator's hostile modes: a host stack that keeps what it is given
//! until a pause, allocations failing at seeded points, and the interleaving explorer, which
//! lets another processor pause and restart the module, cancel the pending IRPs, detach and
//! re-attach the module, or close the handles between any two of the driver's NDIS calls.
//! A writer must never hang, and no rule may break, whatever the point.

mod common;

use common::*;
use ndis_sim::{Completion, DeviceHandle, Hostile, Interruption, Sim, SimConfig};
use ndis_sys::*;
use rxinject_abi::{self as abi, Pod};

/// Opens and binds, as open_bound does, but a refusal (low resources) is an answer, not a
/// failure of the test.
fn try_open(sim: &Sim, capture: bool) -> Option<DeviceHandle<'_>> {
    let h = sim.open(abi::USER_PATH).ok()?;
    if bind(&h, sim.adapter(0).config().if_index) != STATUS_SUCCESS {
        return None;
    }
    if capture && set_capture(&h, nonblocking()) != STATUS_SUCCESS {
        return None;
    }
    Some(h)
}

/// Writes both ways with a capture reading and a read left pending, promiscuous mode asked
/// for and an OID query running meanwhile; returns the statuses the writes and requests
/// completed with.
fn workload(sim: &Sim) -> Vec<NTSTATUS> {
    let a = sim.adapter(0);
    let mut f = frames_for(sim, 0);
    let cap = try_open(sim, true);
    let h = try_open(sim, false);
    let pending = cap.as_ref().map(|c| c.start_read(1 << 16));
    let mut statuses = Vec::new();
    // Promiscuous for the capture, and a query left running while the traffic flows.
    if let Some(c) = &cap {
        statuses.push(oid_status(
            c,
            &oid_set_input(
                OID_GEN_CURRENT_PACKET_FILTER,
                &NDIS_PACKET_TYPE_PROMISCUOUS.to_le_bytes(),
            ),
        ));
    }
    let query = h.as_ref().map(|h| {
        h.start_device_io_control(
            abi::IOCTL_RXINJECT_OID_REQUEST,
            &abi::OidRequest {
                oid: OID_GEN_LINK_SPEED,
                kind: abi::OID_QUERY,
                timeout_ms: 0,
                length: 4,
            }
            .to_vec(),
            size_of::<abi::OidResult>() + 4,
        )
    });
    a.indicate(&f.take(3));
    for dir in [RX, TX, RX] {
        if let Some(h) = &h {
            statuses.push(h.write(&batch(dir, &f.take(4))).status);
        }
        a.send(&f.take(2));
        a.indicate_resources(&f.take(1));
    }
    // A write of three chains (the direction changes twice).
    if let Some(h) = &h {
        let m = f.take(3);
        statuses.push(
            h.write(&records(&[(RX, 0, &m[0]), (TX, 0, &m[1]), (RX, 0, &m[2])]))
                .status,
        );
    }
    sim.run_until_idle();
    if let (Some(c), Some(r)) = (&cap, pending) {
        let _ = c.poll(r);
    }
    if let (Some(h), Some(q)) = (&h, query)
        && let Some(r) = h.poll(q)
    {
        statuses.push(r.status);
    }
    drop((h, cap));
    statuses
}

/// An OID request's status: the IRP's, or (when it succeeded) the miniport's as an
/// NTSTATUS-shaped value for the allowed list.
fn oid_status(h: &DeviceHandle<'_>, input: &[u8]) -> NTSTATUS {
    let r = h.device_io_control(
        abi::IOCTL_RXINJECT_OID_REQUEST,
        input,
        size_of::<abi::OidResult>(),
    );
    match abi::OidResult::read_from(&r.output) {
        Some(res) if r.status == STATUS_SUCCESS => NTSTATUS(res.status as i32),
        _ => r.status,
    }
}

fn allowed(s: NTSTATUS) -> bool {
    // Accepted; refused while the module paused; cancelled by the explorer; refused for
    // want of memory.
    s == STATUS_SUCCESS
        || s == NTSTATUS::from(NDIS_STATUS_PAUSED)
        || s == STATUS_CANCELLED
        || s == STATUS_INSUFFICIENT_RESOURCES
        // An OID request the pause cancelled at the miniport.
        || s == NTSTATUS(NDIS_STATUS_REQUEST_ABORTED.0)
}

/// Each request of the workload in turn, with the client's other thread closing every handle
/// just after it looked its handle up: the driver gets it after IRP_MJ_CLEANUP (and before
/// IRP_MJ_CLOSE), and must refuse it or finish it without leaving anything behind.
#[test]
fn a_request_arriving_after_its_handles_cleanup_is_refused_or_finished_cleanly() {
    // The workload above, and a reader whose reads wait (a read queued after cleanup
    // drained the queue would wait for ever, and so would the close).
    let blocking_reader = |sim: &Sim| {
        let mut statuses = Vec::new();
        if let Ok(h) = sim.open(abi::USER_PATH) {
            statuses.push(bind(&h, sim.adapter(0).config().if_index));
            statuses.push(set_capture(&h, CaptureConfig::default()));
            // No frame comes: the read waits until the handle's cleanup cancels it.
            let r = h.start_read(1 << 19);
            sim.run_until_idle();
            if let Some(done) = h.poll(r) {
                statuses.push(done.status);
            }
        }
        statuses
    };
    let mut findings = Vec::new();
    for (name, run) in [
        ("workload", &workload as &dyn Fn(&Sim) -> Vec<NTSTATUS>),
        ("blocking reader", &blocking_reader),
    ] {
        let mut n = 1;
        loop {
            let sim = load(SimConfig {
                hostile: Hostile {
                    close_at_lookup: n,
                    ..Hostile::default()
                },
                ..SimConfig::default()
            });
            let statuses = run(&sim);
            let reached = sim.lookups() >= n;
            let report = sim.finish();
            if !statuses
                .iter()
                .all(|s| allowed(*s) || *s == STATUS_INVALID_HANDLE)
                || !report.is_clean()
            {
                findings.push(format!("{name}, request {n}: {statuses:?}\n{report}"));
            }
            if !reached {
                break;
            }
            n += 1;
        }
        assert!(n > 3, "{name} makes {n} requests");
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}

#[test]
fn the_interleaving_explorer_runs_a_pause_cancel_detach_or_cleanup_at_every_point_of_the_driver() {
    // The calls the workload makes: every one is a point.
    let sim = load(SimConfig::default());
    let first = sim.ndis_calls() + 1;
    workload(&sim);
    let last = sim.ndis_calls();
    sim.finish().assert_clean();
    let mut ran = [0u64; 4];
    let mut findings = Vec::new();
    for point in first..=last {
        let sim = load(SimConfig {
            send_completion: Completion::Mixed,
            hostile: Hostile {
                interrupt_at: point,
                ..Hostile::default()
            },
            ..SimConfig::default()
        });
        let statuses = workload(&sim);
        let kind = Interruption::of(point);
        ran[point as usize % 4] += sim.interruptions();
        // No write issues a frame once the module's pause has begun.
        let after_pause = sim.stats().own_issued_while_pausing;
        let report = sim.finish();
        // Besides the statuses of every run: after a detach the handle's adapter is gone
        // (the re-attached module is another binding), and after the other processor closed
        // the handle the I/O manager refuses it.
        let expected = |s: NTSTATUS| match kind {
            Interruption::Detach => {
                allowed(s) || s == STATUS_NO_SUCH_DEVICE || s == STATUS_INVALID_DEVICE_STATE
            }
            Interruption::Cleanup => allowed(s) || s == STATUS_INVALID_HANDLE,
            Interruption::PauseRestart | Interruption::Cancel => allowed(s),
        };
        if !statuses.iter().all(|s| expected(*s)) || !report.is_clean() || after_pause != 0 {
            findings.push(format!(
                "point {point} ({kind:?}): {statuses:?}, {after_pause} frame(s) issued after the pause began\n{report}"
            ));
        }
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));
    // Each kind ran at most of its points.
    let points = last - first + 1;
    assert!(
        ran.iter().all(|&n| n > points / 8),
        "{points} points, interruptions by kind {ran:?}"
    );
    eprintln!("interleaving: {points} points, interruptions by kind {ran:?}, no finding");
}

#[test]
fn a_host_stack_holding_receives_and_failing_allocations_hang_no_writer() {
    let mut failed = 0;
    for seed in 1..=8 {
        let sim = load(SimConfig {
            seed,
            hostile: Hostile::all(),
            ..SimConfig::default()
        });
        let statuses = workload(&sim);
        failed += sim.failed_allocations();
        assert!(statuses.iter().all(|s| allowed(*s)), "seed {seed}: {statuses:?}");
        let report = sim.finish();
        assert!(report.is_clean(), "seed {seed}:\n{report}");
    }
    assert!(failed > 0, "the low-resources simulation failed nothing");
}

/// A host stack that keeps the injected receive frames (as IP reassembly or a vSwitch does)
/// while the writer's process exits: the close must not wait for them. Cleanup completes the
/// pending writes with STATUS_CANCELLED and the frames handed to NDIS so far; the frames
/// come back at the next pause, to a write already completed, and nothing leaks.
#[test]
fn a_writer_exiting_while_the_stack_holds_its_frames_does_not_hang() {
    let sim = load(SimConfig {
        hostile: Hostile {
            hold_receives: true,
            ..Hostile::default()
        },
        ..SimConfig::default()
    });
    let a = sim.adapter(0);
    let mut f = frames_for(&sim, 0);
    let h = open_bound(&sim, 0);
    let w1 = h.start_write(&batch(RX, &f.take(3)));
    let w2 = h.start_write(&batch(RX, &f.take(2)));
    sim.run_until_idle();
    assert!(
        !h.is_complete(w1) && !h.is_complete(w2),
        "the stack holds the frames"
    );
    assert_eq!(a.filter_nbls_held_by_protocol(), 5);
    // The process exits: the handle is closed with both writes pending.
    let (r1, r2) = (h.poll(w1), h.poll(w2));
    assert_eq!((r1, r2), (None, None));
    let monitor = sim.open(abi::USER_PATH).expect("a second handle");
    h.close();
    let (c1, c2) = (monitor_result(&monitor, w1), monitor_result(&monitor, w2));
    assert_eq!(c1, Some((STATUS_CANCELLED, 3)));
    assert_eq!(c2, Some((STATUS_CANCELLED, 2)));
    // The frames come back at the pause, to writes already completed.
    sim.pause(0);
    assert_eq!(a.filter_nbls_held_by_protocol(), 0);
    sim.restart(0);
    drop(monitor);
    sim.finish().assert_clean();
}

/// The result of an IRP of a closed handle (results outlive their handle, as an OVERLAPPED's).
fn monitor_result(h: &DeviceHandle<'_>, irp: ndis_sim::Irp) -> Option<(NTSTATUS, usize)> {
    h.poll(irp).map(|r| (r.status, r.information))
}

/// A read without a timeout dispatched while another thread closes the handle: cleanup
/// may run before the read is queued, and nothing would ever complete it (the close would
/// hang with it). A read that arrives after cleanup is refused, not queued.
#[test]
fn a_read_racing_the_handle_cleanup_is_refused_not_queued() {
    // `pad` counter queries before the read shift its NDIS calls, so that every one of them is
    // a cleanup point (`Interruption::of` cycles with the point number) for some `pad`.
    let run = |point: u64, pad: usize| {
        let sim = load(SimConfig {
            hostile: Hostile {
                interrupt_at: point,
                ..Hostile::default()
            },
            ..SimConfig::default()
        });
        let h = open_bound(&sim, 0);
        let config = CaptureConfig {
            timeout_ms: 0,
            ..CaptureConfig::default()
        };
        let mut statuses = vec![set_capture(&h, config)];
        for _ in 0..pad {
            let _ = counters(&h);
        }
        let first = sim.ndis_calls() + 1;
        let read = h.start_read(1 << 18);
        let last = sim.ndis_calls();
        sim.run_until_idle();
        statuses.push(h.poll(read).map_or(STATUS_PENDING, |r| r.status));
        drop(h);
        (first..=last, statuses, sim.interruptions(), sim.finish())
    };
    let mut in_read = 0;
    for pad in 0..4 {
        let (points, statuses, _, report) = run(0, pad);
        assert_eq!(statuses[1], STATUS_PENDING, "a read waits for records");
        report.assert_clean();
        for point in points.filter(|p| Interruption::of(*p) == Interruption::Cleanup) {
            let (_, statuses, interrupted, report) = run(point, pad);
            in_read += interrupted;
            assert!(report.is_clean(), "point {point}: {statuses:?}\n{report}");
        }
    }
    assert!(in_read > 0, "no cleanup ran inside the read's dispatch");
}

/// Another thread of the writer rewrites the buffer of a write while the driver reads it
/// (direct I/O maps the writer's own pages), at every point of the write's dispatch, in two
/// ways: random bytes (the simulator's own racing writer), and every header's length made as
/// long as the buffer allows (in bounds, too long for the adapter: a driver that trusted its
/// first pass would copy it), or too short near the end. The write completes, nothing breaks a rule or leaks, and every
/// frame that reached the stack or the wire is one of the writer's frames: the driver read
/// each header once and validated again, in the copy pass, what it read. A rewrite that
/// lands between the two passes or inside the second stops the write with
/// STATUS_INVALID_PARAMETER and the frames issued so far.
#[test]
fn a_writer_rewriting_its_buffer_during_the_write_changes_nothing_that_was_validated() {
    // Eight frames in four chains (the direction changes), one of them tagged.
    let write = |sim: &Sim| {
        let mut f = frames_for(sim, 0);
        let m = f.take(8);
        let t = tagged(&m[3], 0x2064);
        let recs: Vec<(u8, u8, &[u8])> = vec![
            (RX, 0, &m[0]),
            (RX, 0, &m[1]),
            (TX, 0, &m[2]),
            (TX, 0, &t),
            (RX, 0, &m[4]),
            (RX, 0, &m[5]),
            (TX, 0, &m[6]),
            (TX, 0, &m[7]),
        ];
        let offsets: Vec<usize> = recs
            .iter()
            .scan(0, |at, r| {
                let o = *at;
                *at += abi::write::record_len(r.2.len());
                Some(o)
            })
            .collect();
        let sent: Vec<Vec<u8>> = recs.iter().map(|r| r.2.to_vec()).collect();
        (records(&recs), sent, offsets)
    };
    let run = |point: u64, lengths: bool| {
        let sim = load(SimConfig {
            hostile: Hostile {
                scribble_at: point,
                ..Hostile::default()
            },
            ..SimConfig::default()
        });
        let a = sim.adapter(0);
        let h = open_bound(&sim, 0);
        let (buf, originals, offsets) = write(&sim);
        if lengths {
            sim.set_racing_writer(move |b| {
                for &o in &offsets {
                    // As long as the buffer allows; near the end, where that would still be
                    // a valid frame, one byte too short instead.
                    let longest = (b.len() - o - abi::write::HEADER_LEN) as u32;
                    let length = if longest > 1518 {
                        longest
                    } else {
                        abi::MIN_FRAME_LEN - 1
                    };
                    b[o..o + 4].copy_from_slice(&length.to_le_bytes());
                }
            });
        }
        let first = sim.ndis_calls() + 1;
        let r = h.write(&buf);
        let last = sim.ndis_calls();
        sim.run_until_idle();
        // What the stack and the wire got from the filter (tags back in the data).
        let mut arrived: Vec<Vec<u8>> = a
            .received()
            .into_iter()
            .filter(|f| f.id == 0)
            .map(|f| match f.vlan {
                Some(tci) => tagged(&f.bytes, tci),
                None => f.bytes,
            })
            .collect();
        arrived.extend(a.wire().into_iter().filter(|f| f.id == 0).map(|f| f.bytes));
        let scribbled = sim.scribbled_writes();
        drop(h);
        (first..=last, r, originals, arrived, scribbled, sim.finish())
    };
    let (points, r, _, arrived, _, report) = run(0, false);
    report.assert_clean();
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 8));
    assert_eq!(arrived.len(), 8);
    for lengths in [false, true] {
        let mut outcomes = std::collections::BTreeMap::new();
        for point in points.clone() {
            let (_, r, originals, arrived, scribbled, report) = run(point, lengths);
            let at = format!("point {point} (lengths: {lengths}): {r:?}");
            assert!(report.is_clean(), "{at}\n{report}");
            assert_eq!(scribbled, 1, "{at}: the write was still in its dispatch routine");
            assert!(
                [
                    STATUS_SUCCESS,
                    STATUS_INVALID_PARAMETER,
                    STATUS_INVALID_BUFFER_SIZE
                ]
                .contains(&r.status),
                "{at}"
            );
            assert_eq!(arrived.len(), r.information, "{at}");
            for f in &arrived {
                assert!(originals.contains(f), "{at}: a frame nobody validated: {f:02x?}");
            }
            *outcomes.entry((r.status.code(), r.information)).or_insert(0u32) += 1;
        }
        eprintln!("racing writer (lengths: {lengths}): (status, frames) -> points {outcomes:x?}");
        let midway = outcomes
            .iter()
            .filter(|((s, n), _)| *s == STATUS_INVALID_PARAMETER.code() && (1..8).contains(n))
            .count();
        assert!(midway > 0, "no rewrite landed inside the copy pass");
    }
}

/// A capture closed on another processor while a tap on this one is inside it (the
/// explorer's cleanup at each of the tap's calls, the tap's calls shifted by a few requests
/// before it so that every one of them is a cleanup point) is freed once the tap has left, by
/// the read timer's deferred free, not kept until the driver unloads: the memory alive
/// afterwards is what it is when nothing interrupts.
#[test]
fn a_capture_closed_under_a_tap_is_freed_once_the_tap_has_left() {
    fn run(sim: &Sim, shift: usize) -> (u64, u64, usize) {
        let h = open_capture(sim, 0, nonblocking());
        for _ in 0..shift {
            let _ = capture_stats(&h);
        }
        let first = sim.ndis_calls() + 1;
        sim.adapter(0).indicate(&frames_for(sim, 0).take(1));
        let last = sim.ndis_calls();
        h.close();
        sim.run_until_idle();
        sim.advance_time(std::time::Duration::from_secs(1));
        (first, last, sim.stats().pool_live)
    }
    let mut interrupted = 0;
    let mut points = Vec::new();
    for shift in 0..4 {
        let sim = load(SimConfig::default());
        let (first, last, live) = run(&sim, shift);
        sim.finish().assert_clean();
        for point in (first..=last).filter(|p| Interruption::of(*p) == Interruption::Cleanup) {
            let sim = load(SimConfig {
                hostile: Hostile {
                    interrupt_at: point,
                    ..Hostile::default()
                },
                ..SimConfig::default()
            });
            let (_, _, after) = run(&sim, shift);
            interrupted += sim.interruptions();
            points.push(point - first);
            assert_eq!(
                after, live,
                "shift {shift}, point {point}: pool allocations alive afterwards"
            );
            let report = sim.finish();
            assert!(report.is_clean(), "shift {shift}, point {point}:\n{report}");
        }
    }
    points.sort_unstable();
    points.dedup();
    assert!(
        interrupted >= 4 && points.len() >= 4,
        "the tap's calls interrupted: {points:?}"
    );
}
