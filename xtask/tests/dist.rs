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

#[test]
fn the_exe_is_a_windows_console_program_importing_only_system_dlls() {
    let d = built();
    let img = &d.exe_image;
    assert_eq!(img.machine, pe::IMAGE_FILE_MACHINE_AMD64);
    assert!(img.pe32_plus);
    assert_eq!(img.subsystem, pe::IMAGE_SUBSYSTEM_WINDOWS_CUI);
    assert!(xtask::pe::check_console_image(img).is_empty());
    let modules: std::collections::BTreeSet<String> =
        img.imports.iter().map(|(m, _)| m.to_ascii_lowercase()).collect();
    assert!(modules.contains("kernel32.dll"), "{modules:?}");
    assert!(
        !modules.iter().any(|m| m.ends_with(".sys") || m.ends_with(".exe")),
        "no kernel import: {modules:?}"
    );
    for f in [
        "CreateFileW",
        "DeviceIoControl",
        "GetOverlappedResult",
        "ReadFile",
        "WriteFile",
    ] {
        assert!(img.imports.iter().any(|(_, g)| g == f), "{f} imported");
    }
    // The check rejects a kernel import.
    let mut bad = img.clone();
    bad.imports.push(("ntoskrnl.exe".into(), "memcpy".into()));
    assert!(!xtask::pe::check_console_image(&bad).is_empty());
}

/// Wine's 64-bit loader (Debian's wine64 package; `cargo xtask setup` installs it).
fn wine64() -> std::path::PathBuf {
    let p = std::path::PathBuf::from("/usr/lib/wine/wine64");
    assert!(
        p.is_file(),
        "wine64 is needed to run rxinject.exe: run `cargo xtask setup`"
    );
    p
}

#[test]
fn wine_runs_the_exe_and_it_reports_the_missing_driver() {
    let d = built();
    let dir = std::env::temp_dir().join(format!("rxinject-wine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Wine 8 has no bcryptprimitives.dll: a stand-in goes beside the program.
    let shim = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shim");
    let out = std::process::Command::new("x86_64-w64-mingw32-gcc")
        .args(["-shared", "-O2", "-o"])
        .arg(dir.join("bcryptprimitives.dll"))
        .arg(shim.join("bcryptprimitives.c"))
        .arg(shim.join("bcryptprimitives.def"))
        .arg("-ladvapi32")
        .output()
        .expect("x86_64-w64-mingw32-gcc (cargo xtask setup installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exe = dir.join("rxinject.exe");
    std::fs::copy(&d.exe, &exe).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(wine64())
            .arg(&exe)
            .args(args)
            .env("WINEPREFIX", dir.join("prefix"))
            .env("WINEDEBUG", "-all")
            .output()
            .expect("run wine64")
    };
    let help = run(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert_eq!(
        help.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&help.stderr)
    );
    assert!(
        text.contains("Usage: rxinject") && text.contains("capture"),
        "{text}"
    );
    // The Windows backend for real: there is no driver under Wine, and it says so.
    let adapters = run(&["adapters"]);
    let err = String::from_utf8_lossy(&adapters.stderr);
    assert_eq!(adapters.status.code(), Some(1), "{err}");
    assert!(err.contains("not installed"), "{err}");
    // The simulator is not part of the Windows build.
    let sim = run(&["--sim", "adapters"]);
    assert_eq!(sim.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&sim.stderr).contains("not part of the Windows build"));
    let _ = std::fs::remove_dir_all(&dir);
}
