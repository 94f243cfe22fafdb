//! The bench's scenarios on the shipped `rxinject.sys`: each runs clean (no rule broken, every
//! frame where it belongs), injection allocates nothing per frame once warm, and the driver's
//! instruction counts (callgrind: deterministic, not a timing) stay within the budgets of
//! docs/PERFORMANCE.md.

use std::path::PathBuf;
use std::sync::OnceLock;

use xtask::bench::{self, SCENARIOS};

/// The .sys, built once for this file.
fn sys() -> &'static PathBuf {
    static SYS: OnceLock<PathBuf> = OnceLock::new();
    SYS.get_or_init(|| xtask::dist::run().expect("cargo xtask dist").sys)
}

#[test]
fn every_bench_scenario_runs_clean_on_the_shipped_sys() {
    for s in SCENARIOS {
        let run = bench::run_scenario(s, 1024, sys()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.frames, 1024);
        assert_eq!(run.image_size > 0, !s.starts_with("null_"), "{s}");
    }
    assert!(bench::run_scenario("no_such", 1024, sys()).is_err());
    assert!(
        bench::run_scenario("inject_rx_b64", 1000, sys()).is_err(),
        "frames: multiples of 1024"
    );
}

#[test]
fn injection_allocates_nothing_per_frame_once_the_pools_are_warm() {
    for s in SCENARIOS.iter().filter(|s| s.starts_with("inject_")) {
        let a = bench::run_scenario(s, 1024, sys()).unwrap().pool_allocations;
        let b = bench::run_scenario(s, 3072, sys()).unwrap().pool_allocations;
        assert_eq!(a, b, "{s}: pool allocations grow with the frames injected");
    }
}

#[test]
fn the_shipped_driver_stays_within_its_instruction_budgets() {
    let driver = sys().clone();
    bench::build_runner().unwrap();
    let dir = bench::work_dir().unwrap();
    let m = |s: &str| bench::measure(s, 1024, 2048, 0, &driver, &dir).unwrap_or_else(|e| panic!("{e}"));
    let null = m("null_rx");
    assert_eq!(
        null.driver_instr_per_frame, 0.0,
        "no driver, no instructions in it"
    );
    // Issue 14's targets: no dearer than Microsoft's sample measured the same way (6.3 per
    // received frame, 11.3 per sent one), Tx at 9.0. With none of its own NBLs out, the
    // driver passes returns and send completions on without walking the chain.
    for (s, limit) in [("passthrough_rx", 6.3), ("passthrough_tx", 9.0)] {
        let f = m(s);
        assert!(f.driver_instr_per_frame > 0.0, "{s}: {f:?}");
        assert!(f.driver_instr_per_frame <= limit, "{s}: {f:?} (target {limit})");
        // One NDIS call per chain of 32 (indicate or send, then return or complete): batched.
        assert!(
            f.ndis_calls_per_frame <= 2.0 / bench::CHAIN as f64 + 1e-9,
            "{s}: {f:?}"
        );
        assert!(f.instr_per_frame > null.instr_per_frame, "{s}: {f:?}");
    }
    // Issue 14's capture targets: the driver's share at most 250 (615 before the
    // per-processor rings), no spin lock per frame (one per chain of 32, the reader's; target
    // 0.05), and four processors tapping at once cost no more per frame than one.
    let one = m("capture_rx");
    assert!(
        one.driver_instr_per_frame > 0.0 && one.driver_instr_per_frame <= 250.0,
        "capture_rx: {one:?}"
    );
    assert!(one.lock_acquisitions_per_frame <= 0.05, "capture_rx: {one:?}");
    let four = m("capture_rx_4cpu");
    assert!(
        four.driver_instr_per_frame <= one.driver_instr_per_frame,
        "capture_rx_4cpu: {four:?} against {one:?}"
    );
    assert!(
        four.lock_acquisitions_per_frame <= 0.05,
        "capture_rx_4cpu: {four:?}"
    );
    // Injection at 64 frames per write: at most 260 (issue 14; 341 before it).
    for s in ["inject_rx_b64", "inject_tx_b64"] {
        let f = m(s);
        assert!(
            f.driver_instr_per_frame > 0.0 && f.driver_instr_per_frame <= 260.0,
            "{s}: {f:?}"
        );
        assert_eq!(f.allocations_per_frame, 0.0, "{s}: {f:?}");
    }
}

/// The BPF side by side (issue 14): 64 representative frames, libpcap's compilation of the
/// six programs, the same verdict from both interpreters on every frame, and both counted.
#[test]
fn bpf_side_by_side_agrees_with_libpcap_and_counts_both() {
    use xtask::bench_bpf;
    let frames = bench_bpf::frames();
    assert_eq!(frames.len(), 64);
    let sizes: Vec<usize> = frames.iter().map(Vec::len).collect();
    assert!(
        sizes.iter().all(|n| (42..=1518).contains(n)),
        "42 (an ARP frame as sent, before padding) to 1514 bytes (1518 tagged): {sizes:?}"
    );
    assert!(frames.iter().any(|f| f.len() >= 1514));
    let types: std::collections::BTreeSet<u16> = frames
        .iter()
        .map(|f| u16::from_be_bytes([f[12], f[13]]))
        .collect();
    for t in [0x0800, 0x86DD, 0x0806, 0x8100, 0x88CC] {
        assert!(types.contains(&t), "ethertype {t:#06x} among the frames");
    }
    let d = bench_bpf::disagreements().unwrap();
    assert!(d.is_empty(), "{d:?}");
    // Every program accepts some frames and rejects others: the comparison is not vacuous.
    let lib = bench_bpf::Libpcap::load().unwrap();
    for (name, _) in bench_bpf::PROGRAMS {
        let prog = bench_bpf::program(name).unwrap();
        let accepted = frames.iter().filter(|f| lib.run(&prog, f) != 0).count();
        assert!(
            accepted > 0 && accepted < frames.len(),
            "{name}: {accepted} of 64 accepted"
        );
    }
    bench::build_runner().unwrap();
    let dir = bench::work_dir().unwrap();
    // Issue 14's targets, held as instruction counts: validation (and pre-decoding) at most
    // 5,000 instructions for every program, and the interpreter faster than libpcap's on
    // every program, at most 0.8 of its instructions (it was 3.9, then 1.05, then 0.88).
    let m = serde_json::to_string(&bench::measure_bpf(2, 6, &dir).unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&m).unwrap();
    let validate = v["bpf_validate_instr_max"].as_f64().unwrap();
    assert!(validate > 100.0 && validate <= 5000.0, "{v}");
    let ratio = v["bpf_ratio_max"].as_f64().unwrap();
    assert!(ratio > 0.3 && ratio <= 0.8, "{v}");
}
