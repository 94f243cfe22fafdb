//! The hostile modes (`SimConfig::hostile`, all of them with `ndis-verify --hostile`): each
//! does what it says, reproducibly from the seed, and a driver that copes breaks no rule.

mod lab;

use lab::Fault;
use ndis_sim::{Hostile, SimConfig, TestFrames};
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
