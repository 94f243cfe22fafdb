//! The README's main job, `cargo xtask demo`, passes everything through exactly and breaks
//! no rule; and its verdict can fail.

#[test]
fn the_demo_passes_everything_through_and_breaks_no_rule() {
    let s = xtask::demo::simulate();
    assert!(s.violations.is_empty(), "{:?}", s.violations);
    assert!(s.rx_indicated > 100 && s.tx_sent > 100);
    assert_eq!(s.rx_delivered_identical, s.rx_indicated);
    assert_eq!(s.tx_on_wire_identical, s.tx_sent);
    assert_eq!(s.pause_cycles, 3);
    assert_eq!(s.attach_cycles, 2);
    assert!(s.ok());
}

#[test]
fn the_demo_verdict_fails_on_a_lost_frame_or_a_violation() {
    let mut s = xtask::demo::simulate();
    s.rx_delivered_identical -= 1;
    assert!(!s.ok());
    let mut s = xtask::demo::simulate();
    s.tx_completed_success -= 1;
    assert!(!s.ok());
}
