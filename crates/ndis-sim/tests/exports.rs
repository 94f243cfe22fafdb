//! The simulator implements every function the driver imports, under the module name the
//! driver imports it from (what a loader of the shipped `.sys` will resolve against).

use std::collections::BTreeSet;

#[test]
fn every_import_has_an_export_under_the_same_module() {
    let exports: BTreeSet<(&str, &str)> = ndis_sim::exports().iter().map(|(m, f, _)| (*m, *f)).collect();
    let missing: Vec<_> = ndis_sys::IMPORTS
        .iter()
        .filter(|i| !exports.contains(i))
        .collect();
    assert!(
        missing.is_empty(),
        "imports without a simulator export: {missing:?}"
    );
}

#[test]
fn exports_are_unique_and_non_null() {
    let all = ndis_sim::exports();
    let names: BTreeSet<&str> = all.iter().map(|(_, f, _)| *f).collect();
    assert_eq!(names.len(), all.len(), "a function exported twice");
    assert!(all.iter().all(|(_, _, addr)| *addr != 0));
}
