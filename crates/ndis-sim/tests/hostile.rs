//! The hostile modes (`SimConfig::hostile`, all of them with `ndis-verify --hostile`): each
//! does what it says, reproducibly from the seed, and a driver that copes breaks no rule.

mod lab;

use lab::Fault;
use ndis_sim::{Hostile, Interruption, Sim, SimConfig, TestFrames};
use ndis_sys::*;

#[test]
fn a_host_stack_that_holds_receives_returns_them_only_at_pause() {
    let cfg = SimConfig {
        hostile: Hostile {
            hold_receives: true,
            ..Hostile::default()
        },
        ..SimConfig::default()
    };
    let sim = lab::start(Fault::None, cfg);
    let a = sim.adapter(0);
    let mut f = TestFrames::new([2, 0, 0, 0, 0, 9], a.config().mac);
    a.indicate(&f.take(4));
    lab::inject_rx(2);
    sim.run_until_idle();
    // Running: the host keeps all six, the filter's own two among them.
    assert_eq!(a.held_by_protocol(), 6);
    assert_eq!(a.filter_nbls_held_by_protocol(), 2);
    sim.advance_time(std::time::Duration::from_secs(60));
    assert_eq!(a.held_by_protocol(), 6, "time alone returns nothing");
    sim.pause(0);
    assert_eq!(a.held_by_protocol(), 0, "a pausing stack returns what it holds");
    assert_eq!(a.rx_outstanding(), 0);
    sim.restart(0);
    sim.finish().assert_clean();

    // Without the mode, the same machine returns them at once.
    let sim = lab::start(Fault::None, SimConfig::default());
    let a = sim.adapter(0);
    a.indicate(&f.take(4));
    sim.run_until_idle();
    assert_eq!(a.held_by_protocol(), 0);
    sim.finish().assert_clean();
}

type Alloc2 = unsafe extern "win64" fn(POOL_FLAGS, usize, u32) -> PVOID;
type Free = unsafe extern "win64" fn(PVOID, u32);

fn export<T: Copy>(name: &str) -> T {
    let addr = ndis_sim::exports()
        .into_iter()
        .find(|(_, n, _)| *n == name)
        .expect("exported")
        .2;
    // SAFETY: T is the export's function-pointer type.
    unsafe { std::mem::transmute_copy(&addr) }
}

/// Which of 64 allocations fail with one in `n` failing, under `seed`.
fn failures(seed: u64, n: u32) -> (Vec<bool>, u64) {
    let cfg = SimConfig {
        seed,
        hostile: Hostile {
            fail_one_in: n,
            ..Hostile::default()
        },
        ..SimConfig::default()
    };
    // DriverEntry is spared (its allocations all succeed: the lab loads).
    let sim = lab::start(Fault::None, cfg);
    let alloc: Alloc2 = export("ExAllocatePool2");
    let free: Free = export("ExFreePoolWithTag");
    let tag = u32::from_le_bytes(*b"Host");
    let pattern = (0..64)
        .map(|_| {
            // SAFETY: an allocation freed at once.
            let p = unsafe { alloc(POOL_FLAG_NON_PAGED, 32, tag) };
            if !p.is_null() {
                // SAFETY: as above.
                unsafe { free(p, tag) };
            }
            p.is_null()
        })
        .collect();
    let failed = sim.failed_allocations();
    sim.finish().assert_clean();
    (pattern, failed)
}

#[test]
fn low_resources_fail_allocations_at_seeded_points() {
    let (a, failed) = failures(7, 4);
    assert_eq!(failed as usize, a.iter().filter(|f| **f).count());
    assert!(failed > 4 && failed < 32, "about one in four: {failed}");
    // The same seed fails the same allocations; another seed others.
    assert_eq!(failures(7, 4).0, a);
    assert_ne!(failures(8, 4).0, a);
    // Off: nothing fails.
    assert_eq!(failures(7, 0).1, 0);
}

/// A client of the lab filter's device while traffic flows both ways: a read left pending,
/// an IOCTL, writes both ways (if `writes`), another IOCTL, and the handle closed at the end. Returns the
/// requests' statuses.
fn client_workload(sim: &Sim, writes: bool) -> Vec<NTSTATUS> {
    let a = sim.adapter(0);
    let mut f = TestFrames::new([2, 0, 0, 0, 0, 9], a.config().mac);
    let h = sim.open(lab::device::USER_PATH).expect("open the lab device");
    let mut statuses = Vec::new();
    a.indicate(&f.take(3));
    let pending = h.start_read(64);
    statuses.push(
        h.device_io_control(lab::device::IOCTL_LAB_ECHO, b"ping", 16)
            .status,
    );
    for dir in [1u8, 0].into_iter().filter(|_| writes) {
        let mut buf = vec![dir];
        buf.extend(f.next_frame());
        statuses.push(h.write(&buf).status);
    }
    a.send(&f.take(2));
    a.indicate_resources(&f.take(2));
    statuses.push(
        h.device_io_control(lab::device::IOCTL_LAB_ECHO, b"pong", 16)
            .status,
    );
    a.send(&f.take(2));
    sim.run_until_idle();
    let _ = h.poll(pending);
    h.close();
    a.indicate(&f.take(2));
    sim.run_until_idle();
    statuses
}

/// The correct lab filter with the interleaving explorer interrupting at `point`.
fn interrupted_at(point: u64) -> Sim {
    let hostile = Hostile {
        interrupt_at: point,
        ..Hostile::default()
    };
    lab::start(
        Fault::None,
        SimConfig {
            hostile,
            ..SimConfig::default()
        },
    )
}

#[test]
fn the_interleaving_explorer_finds_nothing_in_a_correct_filter_whatever_it_runs_where() {
    let sim = lab::start(Fault::None, SimConfig::default());
    let first = sim.ndis_calls() + 1;
    let statuses = client_workload(&sim, true);
    let last = sim.ndis_calls();
    assert_eq!(statuses, [STATUS_SUCCESS; 4]);
    sim.finish().assert_clean();
    assert!(last - first > 12, "too few points: {first}..={last}");
    let mut ran = [0u64; 4];
    for point in first..=last {
        let sim = interrupted_at(point);
        let kind = Interruption::of(point);
        // The lab's writes inject whatever the module's state (they take no reference a
        // pause or detach would wait for): only where the module keeps running.
        let writes = matches!(kind, Interruption::Cancel | Interruption::Cleanup);
        let statuses = client_workload(&sim, writes);
        ran[point as usize % 4] += sim.interruptions();
        // The handle was closed once, by whichever thread: one cleanup, one close.
        assert_eq!(
            lab::device::cleanups_and_closes(),
            (1, 1),
            "point {point} ({kind:?})"
        );
        // Only a handle closed by the other processor fails a request, and with the I/O
        // manager's answer: the driver never sees it.
        for s in &statuses {
            let expected =
                *s == STATUS_SUCCESS || (kind == Interruption::Cleanup && *s == STATUS_INVALID_HANDLE);
            assert!(expected, "point {point} ({kind:?}): {statuses:?}");
        }
        let report = sim.finish();
        assert!(report.is_clean(), "point {point} ({kind:?}):\n{report}");
    }
    eprintln!("explorer: points {first}..={last}, interruptions by kind {ran:?}");
    // Every kind of interruption ran somewhere.
    assert!(ran.iter().all(|&n| n > 0), "interruptions by kind: {ran:?}");
}

#[test]
fn a_handle_closed_by_another_thread_fails_the_next_request_without_reaching_the_driver() {
    // Find a point where the other processor closes the handle between the two IOCTLs.
    let sim = lab::start(Fault::None, SimConfig::default());
    let first = sim.ndis_calls() + 1;
    client_workload(&sim, false);
    let last = sim.ndis_calls();
    sim.finish().assert_clean();
    let closed_between = (first..=last)
        .filter(|p| Interruption::of(*p) == Interruption::Cleanup)
        .find(|&point| {
            let sim = interrupted_at(point);
            let statuses = client_workload(&sim, false);
            sim.finish().assert_clean();
            statuses == [STATUS_SUCCESS, STATUS_INVALID_HANDLE]
        });
    assert!(
        closed_between.is_some(),
        "no point closes the handle between the IOCTLs"
    );
}

#[test]
fn a_request_that_looked_its_handle_up_reaches_the_driver_after_cleanup_and_before_close() {
    // Another thread closes the handle just after the IOCTL looked it up: as on Windows, the
    // request holds the file object, so the driver gets it between IRP_MJ_CLEANUP and
    // IRP_MJ_CLOSE, never after the close (which would find the handle's context freed).
    let sim = lab::start(
        Fault::None,
        SimConfig {
            hostile: Hostile {
                close_at_lookup: 1,
                ..Hostile::default()
            },
            ..SimConfig::default()
        },
    );
    let h = sim.open(lab::device::USER_PATH).expect("open the lab device");
    let r = h.device_io_control(lab::device::IOCTL_LAB_ECHO, &[1, 2, 3], 3);
    assert_eq!((r.status, &r.output[..]), (STATUS_SUCCESS, &[1u8, 2, 3][..]));
    assert_eq!(
        *lab::device::SEEN_AT_IOCTL.lock().unwrap(),
        Some((1, 0)),
        "the IOCTL came after the cleanup and before the close"
    );
    sim.run_until_idle();
    assert_eq!(lab::device::cleanups_and_closes(), (1, 1));
    // The handle is closed now: the next request fails in the I/O manager.
    let again = h.device_io_control(lab::device::IOCTL_LAB_ECHO, &[4], 1);
    assert_eq!(again.status, STATUS_INVALID_HANDLE);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn a_close_by_another_thread_waits_for_a_write_the_client_thread_will_release() {
    // The host stack keeps the receive-path write's frame until the stack pauses, and only
    // the client thread pauses it, after the other processor has begun to close the handle:
    // the close must wait for the client thread (which is still acting, not idle), and the
    // write's result must stay for the client thread after the close.
    let run = |point: u64| {
        let sim = lab::start(
            Fault::None,
            SimConfig {
                hostile: Hostile {
                    hold_receives: true,
                    interrupt_at: point,
                    ..Hostile::default()
                },
                ..SimConfig::default()
            },
        );
        let a = sim.adapter(0);
        let mut f = TestFrames::new([2, 0, 0, 0, 0, 9], a.config().mac);
        let h = sim.open(lab::device::USER_PATH).expect("open the lab device");
        let mut buf = vec![1u8];
        buf.extend(f.next_frame());
        let write = h.start_write(&buf);
        let first = sim.ndis_calls() + 1;
        for _ in 0..4 {
            a.indicate(&f.take(1));
        }
        let last = sim.ndis_calls();
        sim.pause(0);
        sim.restart(0);
        let result = h.wait(write).map(|r| r.status);
        drop(h);
        sim.run_until_idle();
        let interrupted = sim.interruptions();
        // (Read while this run holds the simulation: the counters are the lab's statics.)
        let closes = lab::device::cleanups_and_closes();
        (first..=last, result, interrupted, closes, sim.finish())
    };
    let (points, result, _, _, report) = run(0);
    assert_eq!(result, Some(STATUS_SUCCESS));
    report.assert_clean();
    let mut closed_meanwhile = 0;
    for point in points.filter(|p| Interruption::of(*p) == Interruption::Cleanup) {
        let (_, result, interrupted, closes, report) = run(point);
        assert!(report.is_clean(), "point {point}:\n{report}");
        assert_eq!(result, Some(STATUS_SUCCESS), "point {point}");
        assert_eq!(closes, (1, 1), "point {point}");
        closed_meanwhile += interrupted;
    }
    assert!(
        closed_meanwhile > 0,
        "no point closed the handle during the indication"
    );
}

#[test]
fn frames_a_filter_issues_after_its_pause_returned_are_counted() {
    let sim = lab::start(Fault::None, SimConfig::default());
    lab::inject_rx(2);
    lab::inject_tx(1);
    sim.run_until_idle();
    assert_eq!(sim.stats().own_issued_while_pausing, 0, "issued while running");
    // The lab filter does not gate its injections: issued on a paused module, they count
    // (and break R12 / S9).
    sim.pause_module(0);
    lab::inject_rx(2);
    lab::inject_tx(1);
    assert_eq!(sim.stats().own_issued_while_pausing, 3);
    sim.restart(0);
    let report = sim.finish();
    assert!(
        report.has(ndis_sim::Rule::R12) && report.has(ndis_sim::Rule::S9),
        "{report}"
    );
}

#[test]
fn fresh_nbls_carry_no_trip_state() {
    // The lab allocates a new NBL for every injection: whatever the stack left in the ones
    // that came back (the marks `stale_own_nbls` looks for) is gone with them.
    let sim = lab::start(Fault::None, SimConfig::default());
    for _ in 0..5 {
        lab::inject_rx(3);
        lab::inject_tx(3);
        sim.run_until_idle();
    }
    assert_eq!(sim.stats().stale_own_nbls, 0);
    sim.finish().assert_clean();
}

/// Direct I/O as the I/O manager does it ("Using Direct I/O", "Errors in Direct I/O"): no
/// system buffer; an MDL of the caller's locked pages, not mapped into system space, covering
/// the request's length (locked for writing for a read); none for a zero-length transfer; a
/// read's bytes reach the caller.
#[test]
fn direct_io_requests_carry_the_callers_locked_pages_and_no_system_buffer() {
    let sim = lab::start(Fault::DirectIo, SimConfig::default());
    let a = sim.adapter(0);
    let mut f = TestFrames::new([2, 0, 0, 0, 0, 9], a.config().mac);
    let h = sim.open(lab::device::USER_PATH).expect("open the lab device");
    let frame = f.next_frame();
    let mut buf = vec![1u8];
    buf.extend(&frame);
    let seen = |op: &mut dyn FnMut()| {
        *lab::device::DIRECT_SEEN.lock().unwrap() = None;
        op();
        lab::device::DIRECT_SEEN
            .lock()
            .unwrap()
            .take()
            .expect("the lab saw the request")
    };
    let w = seen(&mut || assert_eq!(h.write(&buf).status, STATUS_SUCCESS));
    assert!(w.system_buffer_null && !w.mdl_null, "{w:?}");
    assert_eq!(
        w.mdl_flags & (MDL_PAGES_LOCKED | MDL_MAPPED_TO_SYSTEM_VA | MDL_WRITE_OPERATION),
        MDL_PAGES_LOCKED
    );
    assert_eq!(w.byte_count as usize, buf.len());
    assert!(a.received().iter().any(|r| r.bytes == frame), "the frame went up");
    let mut read = None;
    let r = seen(&mut || {
        let irp = h.start_read(64);
        lab::device::complete_reads();
        read = h.poll(irp);
    });
    assert!(r.system_buffer_null && !r.mdl_null, "{r:?}");
    assert_eq!(
        r.mdl_flags & (MDL_PAGES_LOCKED | MDL_WRITE_OPERATION),
        MDL_PAGES_LOCKED | MDL_WRITE_OPERATION
    );
    assert_eq!(r.byte_count, 64);
    let read = read.expect("completed");
    assert_eq!((read.status, read.output), (STATUS_SUCCESS, vec![0x5A]));
    let empty = seen(&mut || {
        let irp = h.start_read(0);
        lab::device::complete_reads();
        assert!(h.poll(irp).is_some());
    });
    assert!(
        empty.mdl_null && empty.system_buffer_null,
        "no MDL for a zero-length read: {empty:?}"
    );
    h.close();
    sim.finish().assert_clean();
}

/// The racing writer changes the caller's pages themselves: what the driver reads after the
/// rewrite is the rewrite (the simulator does not hand the driver a private copy), and a
/// write that is not in flight is left alone.
#[test]
fn the_racing_writer_rewrites_the_pages_the_driver_reads() {
    let run = |scribble_at: u64| {
        let sim = lab::start(
            Fault::DirectIo,
            SimConfig {
                hostile: Hostile {
                    scribble_at,
                    ..Hostile::default()
                },
                ..SimConfig::default()
            },
        );
        sim.set_racing_writer(|b| b[1..].fill(0xAB));
        let a = sim.adapter(0);
        let mut f = TestFrames::new([2, 0, 0, 0, 0, 9], a.config().mac);
        let h = sim.open(lab::device::USER_PATH).expect("open the lab device");
        let mut buf = vec![1u8];
        buf.extend(f.next_frame());
        let before = sim.ndis_calls();
        assert_eq!(h.write(&buf).status, STATUS_SUCCESS);
        let up: Vec<Vec<u8>> = a
            .received()
            .into_iter()
            .filter(|r| r.id == 0)
            .map(|r| r.bytes)
            .collect();
        let scribbled = sim.scribbled_writes();
        h.close();
        sim.finish().assert_clean();
        (before, up, scribbled, buf)
    };
    let (before, up, scribbled, buf) = run(0);
    assert_eq!((up, scribbled), (vec![buf[1..].to_vec()], 0));
    // The lab's first call in its write is the mapping, before it copies the frame.
    let (_, up, scribbled, buf) = run(before + 1);
    assert_eq!(scribbled, 1);
    assert_eq!(up, vec![vec![0xAB; buf.len() - 1]]);
}
