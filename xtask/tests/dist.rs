//! `cargo xtask dist` produces a real kernel driver image: PE32+ for AMD64, subsystem NATIVE,
//! entry point DriverEntry, a valid checksum, imports only from ntoskrnl.exe / ndis.sys /
//! HAL.dll; and the INF beside it. The checks themselves are shown to reject broken images.

use std::sync::OnceLock;

use object::pe;
use xtask::dist::{self, Dist};
use xtask::pe::{check_driver_image, inspect, map_symbol_rva};

/// One build for all tests of this file (they would race on dist/x64 otherwise).
fn built() -> &'static Dist {
    static DIST: OnceLock<Dist> = OnceLock::new();
    DIST.get_or_init(|| dist::run().expect("cargo xtask dist"))
}

#[test]
fn the_sys_is_a_native_amd64_driver_with_driver_entry_as_entry_point() {
    let d = built();
    let img = &d.image;
    assert_eq!(img.machine, pe::IMAGE_FILE_MACHINE_AMD64);
    assert!(img.pe32_plus);
    assert_eq!(img.subsystem, pe::IMAGE_SUBSYSTEM_NATIVE);
    let map = std::fs::read_to_string(&d.map).unwrap();
    assert_eq!(
        Some(img.entry_rva),
        map_symbol_rva(&map, "DriverEntry"),
        "entry point is DriverEntry"
    );
    assert_eq!(img.checksum, img.computed_checksum);
    assert_ne!(img.checksum, 0);
    assert!(d.pdb.exists(), "symbols for WinDbg ship beside the driver");
    assert!(check_driver_image(img, map_symbol_rva(&map, "DriverEntry")).is_empty());
}

#[test]
fn the_sys_imports_only_from_kernel_modules_and_only_what_ndis_sys_declares() {
    let img = &built().image;
    let modules: std::collections::BTreeSet<&str> = img.imports.iter().map(|(m, _)| m.as_str()).collect();
    assert!(
        modules
            .iter()
            .all(|m| ["ntoskrnl.exe", "ndis.sys", "HAL.dll"].contains(m)),
        "{modules:?}"
    );
    // What injection needs: the control device, IRP completion, own NBLs with their MDLs and
    // buffers, both datapath directions.
    for (module, needed) in [
        ("ndis.sys", "NdisFRegisterFilterDriver"),
        ("ndis.sys", "NdisRegisterDeviceEx"),
        ("ndis.sys", "NdisDeregisterDeviceEx"),
        ("ndis.sys", "NdisAllocateNetBufferAndNetBufferList"),
        ("ndis.sys", "NdisFreeNetBufferList"),
        ("ndis.sys", "NdisAllocateMdl"),
        ("ndis.sys", "NdisFreeMdl"),
        ("ndis.sys", "NdisAllocateMemoryWithTagPriority"),
        ("ndis.sys", "NdisFIndicateReceiveNetBufferLists"),
        ("ndis.sys", "NdisFSendNetBufferLists"),
        ("ndis.sys", "NdisFReturnNetBufferLists"),
        ("ndis.sys", "NdisFSendNetBufferListsComplete"),
        ("ntoskrnl.exe", "IofCompleteRequest"),
        // Capture: the read timer, time stamps, reading unmapped buffers, cancellable reads.
        ("ndis.sys", "NdisAllocateTimerObject"),
        ("ndis.sys", "NdisSetTimerObject"),
        ("ndis.sys", "NdisCancelTimerObject"),
        ("ndis.sys", "NdisFreeTimerObject"),
        ("ntoskrnl.exe", "KeQuerySystemTimePrecise"),
        ("ntoskrnl.exe", "KeQueryInterruptTimePrecise"),
        ("ntoskrnl.exe", "KeFlushQueuedDpcs"),
        ("ntoskrnl.exe", "MmMapLockedPagesSpecifyCache"),
        ("ntoskrnl.exe", "IoReleaseCancelSpinLock"),
        ("ntoskrnl.exe", "KeBugCheckEx"),
    ] {
        assert!(
            img.imports.iter().any(|(m, f)| m == module && f == needed),
            "{needed} imported from {module}: {:?}",
            img.imports
        );
    }
}

#[test]
fn the_inf_is_stamped_beside_the_sys() {
    let inf = std::fs::read_to_string(&built().inf).unwrap();
    let (major, minor, patch) = rxinject_abi::DRIVER_VERSION;
    let line = inf
        .lines()
        .find(|l| l.starts_with("DriverVer"))
        .expect("DriverVer");
    assert!(line.ends_with(&format!(",{major}.{minor}.{patch}.0")), "{line}");
    let date = line.split('=').nth(1).unwrap().trim().split(',').next().unwrap();
    assert_eq!(date.len(), 10, "MM/DD/YYYY: {date}");
    assert!(inf.contains(rxinject_abi::FILTER_UNIQUE_NAME));
    assert!(inf.contains("rxinject.sys"));
}

#[test]
fn the_checks_reject_broken_images() {
    let d = built();
    let good = std::fs::read(&d.sys).unwrap();
    let map = std::fs::read_to_string(&d.map).unwrap();
    let entry = map_symbol_rva(&map, "DriverEntry");
    let e_lfanew = u32::from_le_bytes(good[0x3C..0x40].try_into().unwrap()) as usize;
    let opt = e_lfanew + 4 + 20;

    // A GUI subsystem (with a correct checksum, so only the subsystem is wrong).
    let mut gui = good.clone();
    gui[opt + 68] = 2;
    xtask::pe::write_checksum(&mut gui).unwrap();
    let problems = check_driver_image(&inspect(&gui).unwrap(), entry);
    assert!(problems.iter().any(|p| p.contains("subsystem")), "{problems:?}");

    // A stale checksum.
    let mut stale = good.clone();
    stale[opt + 64] ^= 0x55;
    let problems = check_driver_image(&inspect(&stale).unwrap(), entry);
    assert!(problems.iter().any(|p| p.contains("checksum")), "{problems:?}");

    // An import from a user-mode DLL: rename "ndis.sys" in the import table.
    let pos = good
        .windows(8)
        .position(|w| w == b"ndis.sys")
        .expect("module name");
    let mut user = good.clone();
    user[pos..pos + 8].copy_from_slice(b"ndis.dll");
    xtask::pe::write_checksum(&mut user).unwrap();
    let problems = check_driver_image(&inspect(&user).unwrap(), entry);
    assert!(problems.iter().any(|p| p.contains("ndis.dll")), "{problems:?}");

    // An entry point that is not DriverEntry.
    let problems = check_driver_image(&inspect(&good).unwrap(), entry.map(|e| e + 0x10));
    assert!(problems.iter().any(|p| p.contains("entry point")), "{problems:?}");
}
