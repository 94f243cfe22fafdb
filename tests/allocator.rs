//! The `.sys`'s global allocator (ExAllocatePool2, non-paged, tag `Rxga`), exercised under
//! the simulator's pool tracking.

use std::alloc::{GlobalAlloc, Layout};

use ndis_sim::{Rule, Sim, SimConfig};
use rxinject::mem::KernelAllocator;

#[test]
fn allocations_are_aligned_zeroed_tagged_and_freed() {
    let sim = Sim::new(SimConfig::default());
    let before = sim.stats();
    let layout = Layout::from_size_align(100, 16).unwrap();
    // SAFETY: a non-zero layout; freed below with the same layout.
    let p = unsafe { KernelAllocator.alloc(layout) };
    assert!(!p.is_null());
    assert_eq!(p as usize % 16, 0);
    // SAFETY: 100 bytes were just allocated.
    let bytes = unsafe { std::slice::from_raw_parts(p, 100) };
    assert!(bytes.iter().all(|&b| b == 0));
    assert_eq!(sim.stats().pool_live, before.pool_live + 1);
    // SAFETY: allocated above with this layout.
    unsafe { KernelAllocator.dealloc(p, layout) };
    assert_eq!(sim.stats().pool_live, before.pool_live);
    sim.finish().assert_clean();
}

#[test]
fn alignments_beyond_sixteen_are_refused_not_under_aligned() {
    let sim = Sim::new(SimConfig::default());
    let layout = Layout::from_size_align(64, 64).unwrap();
    // SAFETY: a non-zero layout.
    let p = unsafe { KernelAllocator.alloc(layout) };
    assert!(p.is_null());
    assert_eq!(sim.stats().pool_live, 0);
    sim.finish().assert_clean();
}

#[test]
fn a_leaked_allocation_is_reported_with_its_tag() {
    let sim = Sim::new(SimConfig::default());
    let layout = Layout::from_size_align(32, 8).unwrap();
    // SAFETY: a non-zero layout; deliberately never freed.
    let p = unsafe { KernelAllocator.alloc(layout) };
    assert!(!p.is_null());
    let report = sim.finish();
    assert!(report.has(Rule::K1), "{report}");
    assert!(
        report.violations.iter().any(|v| v.message.contains("tag Rxga")),
        "{report}"
    );
}
