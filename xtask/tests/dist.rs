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
    // Linked /CETCOMPAT (the check fails an image without it).
    assert!(img.cet_compat, "CET-compatible");
    let mut bad = img.clone();
    bad.cet_compat = false;
    assert!(
        check_driver_image(&bad, map_symbol_rva(&map, "DriverEntry"))
            .iter()
            .any(|p| p.contains("CETCOMPAT"))
    );
}

/// Functions newer than the first Windows 10 would need the INF to exclude older builds.
/// The driver imports none (`ExAllocatePool2`, Windows 10 2004, serves only the global
/// allocator, which nothing uses, so the linker drops it): the INF installs on every
/// Windows 10 and 11 (`NTamd64.10.0`). Were one imported, the INF check would require a
/// build decoration that excludes the builds without it.
#[test]
fn the_inf_installs_only_where_the_imports_exist() {
    let d = built();
    assert!(
        !d.image.imports.iter().any(|(_, f)| f == "ExAllocatePool2"),
        "the driver now imports ExAllocatePool2: target Windows 10 2004 (NTamd64.10.0...19041) in the INF"
    );
    assert_eq!(inf::min_build_for(&d.image.imports), 0);
    let text = std::fs::read_to_string(&d.inf).unwrap();
    assert!(
        inf::check(
            &text,
            &inf::Expected::rxinject_importing(&d.image.imports),
            &xtask::dist::out_dir()
        )
        .is_empty()
    );
    // With ExAllocatePool2 imported, the same INF is refused.
    let mut imports = d.image.imports.clone();
    imports.push(("ntoskrnl.exe".into(), "ExAllocatePool2".into()));
    let problems = inf::check(
        &text,
        &inf::Expected::rxinject_importing(&imports),
        &xtask::dist::out_dir(),
    );
    assert!(
        problems.iter().any(|p| p.contains("builds before 19041")),
        "{problems:?}"
    );
    let fixed = text
        .replace("NTamd64.10.0,", "NTamd64.10.0...19041,")
        .replace("[RxInject.NTamd64.10.0]", "[RxInject.NTamd64.10.0...19041]");
    assert!(
        inf::check(
            &fixed,
            &inf::Expected::rxinject_importing(&imports),
            &xtask::dist::out_dir()
        )
        .is_empty()
    );
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
    // The shipped program has no client of the simulator (`sim-client`, a feature of the
    // Wine tests' build only, whose exe the Wine test checks has both): not the variable
    // that names a server, nor the client's messages. (Winsock proves nothing: Rust's std
    // imports it into every Windows program.)
    let bytes = std::fs::read(&d.exe).unwrap();
    for needle in [&b"RXINJECT_SIM"[..], b"rxinject sim serve"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the shipped rxinject.exe carries the simulator client ({})",
            String::from_utf8_lossy(needle)
        );
    }
    // The check rejects a kernel import.
    let mut bad = img.clone();
    bad.imports.push(("ntoskrnl.exe".into(), "memcpy".into()));
    assert!(!xtask::pe::check_console_image(&bad).is_empty());
}

/// Packet.dll: a DLL exporting every Packet API function libpcap's pcap-npf.c and libdnet
/// call, nothing but Packet API names, importing system DLLs only, and without the
/// simulator client.
#[test]
fn the_packet_dll_exports_every_function_libpcap_calls() {
    let d = built();
    let img = &d.packet_dll_image;
    assert!(d.packet_dll.ends_with("Packet.dll"));
    assert!(img.is_dll);
    assert!(xtask::pe::check_dll_image(img, dist::PACKET_API_CALLED).is_empty());
    for e in &img.exports {
        assert!(e.starts_with("Packet"), "{e} is exported");
    }
    assert!(
        img.exports.iter().any(|e| e == "PacketLibraryVersion"),
        "Npcap's version data"
    );
    let bytes = std::fs::read(&d.packet_dll).unwrap();
    for needle in [&b"RXINJECT_SIM"[..], b"rxinject sim serve"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the shipped Packet.dll carries the simulator client"
        );
    }
    // The check rejects a DLL that lacks one, and an image that is no DLL.
    let mut bad = img.clone();
    bad.exports.retain(|e| e != "PacketReceivePacket");
    bad.is_dll = false;
    let problems = xtask::pe::check_dll_image(&bad, dist::PACKET_API_CALLED);
    assert!(
        problems.iter().any(|p| p.contains("PacketReceivePacket")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| p.contains("not a DLL")), "{problems:?}");
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

// ---------------------------------------------------------------------------------------------
// The Windows package on paper: the INF, the install scripts, the eWDK makefile and the
// Windows testing guide agree with the driver's own names, IOCTLs and pool tags.
// ---------------------------------------------------------------------------------------------

use xtask::inf::{self, Expected};

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(xtask::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_inf_declares_a_modifying_optional_ethernet_filter_under_the_drivers_names() {
    let d = built();
    let stamped = std::fs::read_to_string(&d.inf).unwrap();
    let out = xtask::dist::out_dir();
    let problems = inf::check(&stamped, &Expected::rxinject(), &out);
    assert!(problems.is_empty(), "{problems:#?}");
    // The template itself (before stamping) passes too: stamping only touches DriverVer.
    let template = repo_file("inf/rxinject.inx");
    let problems = inf::check(&template, &Expected::rxinject(), &out);
    assert!(problems.is_empty(), "{problems:#?}");

    // Spot checks straight from the parsed text, independent of `check`.
    let parsed = inf::parse(&stamped).unwrap();
    assert_eq!(
        parsed.value("RxInject.Install", "NetCfgInstanceId").as_deref(),
        Some(rxinject_abi::FILTER_UNIQUE_NAME)
    );
    let reg = parsed.registry("RxInject.Ndi.AddReg");
    let get = |name: &str| reg.iter().find(|r| r.name == name).map(|r| r.value.as_str());
    assert_eq!(get("FilterType"), Some("2"));
    assert_eq!(get("FilterRunType"), Some("2"));
    assert_eq!(get("FilterMediaTypes"), Some(rxinject_abi::FILTER_MEDIA_TYPES));
    assert_eq!(get("Service"), Some(rxinject_abi::SERVICE_NAME));
    assert_eq!(get("CoServices"), Some(rxinject_abi::SERVICE_NAME));
    assert_eq!(get("FilterClass"), Some("diagnostic"));
    // Both OS ranges install the same component.
    for models in ["RxInject.NTamd64.10.0", "RxInject.NTamd64.10.0...25286"] {
        let line = &parsed.section(models).expect(models)[0];
        assert_eq!(line.values[1], rxinject_abi::COMPONENT_ID);
        assert_eq!(
            parsed.expand(line.key.as_deref().unwrap()),
            rxinject_abi::FILTER_FRIENDLY_NAME
        );
    }
    // Every file the INF copies is in the package `dist` wrote.
    for copy in ["RxInject.CopyFiles.System32", "RxInject.CopyFiles.DriverStore"] {
        for line in parsed.section(copy).unwrap() {
            assert!(out.join(&line.values[0]).is_file(), "{copy}: {}", line.values[0]);
        }
    }
}

#[test]
fn the_driver_registers_with_ndis_under_the_names_the_inf_installs() {
    let d = built();
    let parsed = inf::parse(&std::fs::read_to_string(&d.inf).unwrap()).unwrap();
    // The .sys the INF installs, run by the simulator's loader.
    let mut sim = ndis_sim::Sim::new(ndis_sim::SimConfig::default());
    let image = ndis_sim::Image::load(&d.sys).unwrap();
    assert_eq!(sim.load_image(image), ndis_sys::STATUS_SUCCESS);
    let [friendly, unique, service] = sim.registered_names().expect("registered");
    assert_eq!(
        Some(unique),
        parsed.value("RxInject.Install", "NetCfgInstanceId"),
        "NDIS matches FilterAttach to the INF by the unique name"
    );
    let reg = parsed.registry("RxInject.Ndi.AddReg");
    let ndi_service = reg.iter().find(|r| r.name == "Service").map(|r| r.value.clone());
    assert_eq!(Some(service.clone()), ndi_service);
    assert_eq!(
        Some(service),
        parsed
            .values("RxInject.Install.Services", "AddService")
            .map(|v| v[0].clone())
    );
    assert_eq!(Some(friendly), parsed.value("Strings", "RxInject.Desc"));
    sim.finish().assert_clean();
}

#[test]
fn the_inf_check_rejects_an_inf_that_disagrees_with_the_driver() {
    let d = built();
    // The stamped INF has CRLF line ends; the cases below are written with `\n`.
    let good = std::fs::read_to_string(&d.inf).unwrap().replace("\r\n", "\n");
    assert!(inf::check(&good, &Expected::rxinject(), &xtask::dist::out_dir()).is_empty());
    let out = xtask::dist::out_dir();
    // (what to change, into what, what the check must then report)
    let guid = rxinject_abi::FILTER_UNIQUE_NAME;
    let cases: &[(&str, &str, &str)] = &[
        (guid, "{00000000-0000-0000-0000-000000000000}", "NetCfgInstanceId"),
        (
            "Characteristics  = 0x40000",
            "Characteristics  = 0x400",
            "Characteristics",
        ),
        ("Class       = NetService", "Class       = Net", "Class"),
        (
            "HKR, Ndi, FilterType, 0x00010001, 2",
            "HKR, Ndi, FilterType, 0x00010001, 1",
            "FilterType",
        ),
        (
            "HKR, Ndi, FilterType, 0x00010001, 2",
            "HKR, Ndi, FilterType, , 2",
            "FilterType",
        ),
        (
            "FilterRunType, 0x00010001, 2",
            "FilterRunType, 0x00010001, 1",
            "FilterRunType",
        ),
        (
            "HKR, Ndi, Service, , \"rxinject\"",
            "HKR, Ndi, Service, , \"rxinj\"",
            "Service",
        ),
        (
            "CoServices, 0x00010000, \"rxinject\"",
            "CoServices, 0x00010000, \"other\"",
            "CoServices",
        ),
        (
            "FilterClass, , diagnostic",
            "FilterClass, , sniffer",
            "FilterClass",
        ),
        ("\"noupper\"", "\"ndis5\"", "UpperRange"),
        ("\"nolower\"", "\"ethernet\"", "LowerRange"),
        (
            "FilterMediaTypes, , \"ethernet\"",
            "FilterMediaTypes, , \"wan\"",
            "FilterMediaTypes",
        ),
        ("AddService = rxinject,", "AddService = rxinj,", "AddService"),
        ("DelService = rxinject,", "DelService = other,", "DelService"),
        ("StartType      = 1", "StartType      = 3", "StartType"),
        (
            "LoadOrderGroup = NDIS",
            "LoadOrderGroup = PNP_TDI",
            "LoadOrderGroup",
        ),
        ("ServiceBinary  = %12%", "ServiceBinary  = %13%", "ServiceBinary"),
        (
            "[RxInject.CopyFiles.System32]\nrxinject.sys",
            "[RxInject.CopyFiles.System32]\nrxhelper.sys",
            "rxhelper.sys",
        ),
        (
            "rxinject.sys = 1",
            "rxinject.sys = 1\nrxhelper.dll = 1",
            "rxhelper.dll",
        ),
        (
            "RxInject.Install, RX_RxInject",
            "RxInject.Install, RX_Other",
            "component id",
        ),
        (
            "RxInject.Desc     = \"rxinject",
            "RxInject.Desc     = \"RxInject",
            "description",
        ),
        (
            "CatalogFile = rxinject.cat",
            "CatalogFile = other.cat",
            "CatalogFile",
        ),
        ("; rxinject.inx", "; rxinject.inx \u{e9}", "ASCII"),
        (
            "[RxInject.NTamd64.10.0]",
            "[RxInject.NTamd64.6.3]",
            "RxInject.NTamd64.10.0",
        ),
    ];
    for (from, to, reported) in cases {
        assert!(good.contains(from), "the INF has {from:?}");
        let bad = good.replacen(from, to, 1);
        let problems = inf::check(&bad, &Expected::rxinject(), &out);
        assert!(
            problems.iter().any(|p| p.contains(reported)),
            "changing {from:?} to {to:?} must be reported as {reported:?}: {problems:#?}"
        );
    }
}

#[test]
fn the_install_scripts_use_the_drivers_names_and_ship_in_the_package() {
    let out = xtask::dist::out_dir();
    built();
    let install = repo_file("scripts/install.ps1");
    let uninstall = repo_file("scripts/uninstall.ps1");
    for (name, text) in [("install.ps1", &install), ("uninstall.ps1", &uninstall)] {
        assert!(text.is_ascii(), "{name} is plain ASCII");
        assert_eq!(
            &std::fs::read_to_string(out.join(name)).unwrap(),
            text,
            "{name} in dist/x64"
        );
        assert!(
            text.contains(&format!("'{}'", rxinject_abi::COMPONENT_ID)),
            "{name}: component id"
        );
        assert!(
            text.contains(&format!("'{}'", rxinject_abi::SERVICE_NAME)),
            "{name}: service"
        );
    }
    for needed in [
        "netcfg -v -l $inf -c s -i $ComponentId",
        "'rxinject.inf'",
        "bcdedit /set testsigning on",
        "Get-NetAdapterBinding -ComponentID $ComponentId",
        "Cert:\\LocalMachine\\Root",
        "Cert:\\LocalMachine\\TrustedPublisher",
        "#Requires -RunAsAdministrator",
    ] {
        assert!(install.contains(needed), "install.ps1: {needed}");
    }
    for needed in ["netcfg -u $ComponentId", "#Requires -RunAsAdministrator"] {
        assert!(uninstall.contains(needed), "uninstall.ps1: {needed}");
    }
}

#[test]
fn the_makefile_builds_the_wdk_feature_and_packages_the_inf_and_the_tools() {
    let make = repo_file("Makefile.toml");
    let cargo = repo_file("Cargo.toml");
    // The makefile loads the same wdk-build the driver's build script uses.
    let version = |text: &str, prefix: &str| {
        text.lines()
            .find_map(|l| l.trim_start_matches("//! ").strip_prefix(prefix))
            .and_then(|rest| rest.split('"').nth(1))
            .map(str::to_string)
    };
    let loaded = version(&make, "wdk-build = ").expect("load_script wdk-build version");
    let built_with = version(&cargo, "wdk-build = ").expect("Cargo.toml wdk-build version");
    assert_eq!(loaded, built_with);
    for needed in [
        "extend = \"target/rust-driver-makefile.toml\"",
        "\"--features\",\n  \"wdk\"",
        "inf/rxinject.inx",
        "[tasks.copy-inx-to-output]",
        "[tasks.package-driver]",
        "\"copy-tools-to-package\"",
        "\"infverif\"",
        "\"sign-cat\"",
        "\"sign-driver-binary\"",
        "scripts/install.ps1",
        "scripts/uninstall.ps1",
        "stampinf",
        "inf2cat",
    ] {
        assert!(make.contains(needed), "Makefile.toml: {needed}");
    }
    assert!(cargo.contains("[package.metadata.wdk.driver-model]\ndriver-type = \"WDM\""));
    // Once for the driver, not once per workspace member.
    assert!(make.contains("default_to_workspace = false"));
    // The manifest's lib is an rlib: the inherited flow's cdylib condition would skip packaging.
    assert!(make.contains("[tasks.package-driver-flow]\nclear = true"));
    // `cargo make --profile release` already forwards `--profile release`; a second one fails.
    let build = make
        .split("\n[tasks.build]\n")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("[tasks.build]");
    assert!(!build.contains("\"--profile\""), "{build}");
    assert!(build.contains("@@split(CARGO_MAKE_CARGO_BUILD_TEST_FLAGS, )"));
}

#[test]
fn the_windows_guide_uses_the_drivers_real_names_ioctls_and_pool_tags() {
    let guide = repo_file("docs/WINDOWS-TESTING.md");
    assert!(
        guide.contains("nothing in this guide has been run"),
        "says plainly it was never run"
    );
    for (name, code) in rxinject_abi::IOCTLS {
        let row = format!("| `{name}` | {code:#010X} |").replace("0X", "0x");
        assert!(guide.contains(&row), "guide lists {row}");
    }
    // Every IOCTL name the guide mentions is real.
    for word in guide.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("IOCTL_RXINJECT_") {
            assert!(
                rxinject_abi::IOCTLS.iter().any(|(n, _)| *n == word),
                "the guide names {word}, which the driver does not have"
            );
        }
    }
    for (tag, what) in rxinject_abi::tags::ALL {
        let spelled = String::from_utf8(tag.to_le_bytes().to_vec()).unwrap();
        assert!(
            guide.contains(&format!("| `{spelled}` | {what} |")),
            "guide lists pool tag {spelled}"
        );
    }
    for name in [
        rxinject_abi::COMPONENT_ID,
        rxinject_abi::SERVICE_NAME,
        rxinject_abi::FILTER_UNIQUE_NAME,
        rxinject_abi::FILTER_FRIENDLY_NAME,
        rxinject_abi::DEVICE_NAME,
        rxinject_abi::USER_PATH,
    ] {
        assert!(guide.contains(name), "guide names {name}");
    }
    for needed in [
        "!ndiskd.filter",
        "!ndiskd.nbl",
        "!ndiskd.oid",
        "!irp",
        "!poolused",
        "0x7C",
        "0xC4",
        "0xC9",
        "0x44",
        "0x92010",
        "0x92011",
        "0x92012",
        "NDISTest 6.5 - LWF Logo test",
        "netcfg -v -l",
        "install.ps1",
        "uninstall.ps1",
    ] {
        assert!(guide.contains(needed), "guide covers {needed}");
    }
}

// ---------------------------------------------------------------------------------------------
// The shipped bytes under the simulator: the loader maps dist/x64/rxinject.sys into this
// process, and the demo runs on it.
// ---------------------------------------------------------------------------------------------

use ndis_sim::image::{LoadError, Protection, loader_exports};
use ndis_sim::{Driver, Image};

/// The mappings of this process that overlap `range`, as (start, end, permissions).
fn mappings(range: std::ops::Range<usize>) -> Vec<(usize, usize, String)> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (a, b) = f.next()?.split_once('-')?;
            let (a, b) = (
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            );
            let perms = f.next()?.to_string();
            (a < range.end && b > range.start).then_some((a, b, perms))
        })
        .collect()
}

#[test]
fn the_loader_maps_the_shipped_sys_with_page_protections_relocations_and_every_import_bound() {
    let d = built();
    let image = Image::load(&d.sys).expect("the loader takes the .sys we ship");
    assert_ne!(
        image.base() as u64,
        image.preferred_base(),
        "mapped away from its link base"
    );
    assert!(image.relocations() > 0);
    let protections: Vec<(&str, Protection)> = image
        .sections()
        .iter()
        .map(|s| (s.name.as_str(), s.protection))
        .collect();
    assert_eq!(
        protections,
        [
            (".text", Protection::ReadExecute),
            (".rdata", Protection::Read),
            (".data", Protection::ReadWrite),
            (".pdata", Protection::Read),
            (".reloc", Protection::Read),
        ]
    );
    // Every import of the file is bound, to the simulator function of that name.
    let exports = loader_exports();
    assert_eq!(image.imports().len(), d.image.imports.len());
    for b in image.imports() {
        let want = exports
            .iter()
            .find(|(m, n, _)| m.eq_ignore_ascii_case(&b.module) && *n == b.name)
            .map(|e| e.2);
        assert_eq!(Some(b.address), want, "{}!{}", b.module, b.name);
    }
    // The kernel's view of the mapping: code read+execute, nothing writable and executable.
    let maps = mappings(image.base()..image.base() + image.size());
    assert!(!maps.is_empty());
    assert!(
        maps.iter().all(|(_, _, p)| !(p.contains('w') && p.contains('x'))),
        "{maps:?}"
    );
    let text = image.base() + image.sections()[0].rva as usize;
    let (_, _, p) = maps.iter().find(|(a, b, _)| (*a..*b).contains(&text)).unwrap();
    assert!(p.starts_with("r-x"), "{p}");
    let rdata = image.base() + image.sections()[1].rva as usize;
    let (_, _, p) = maps.iter().find(|(a, b, _)| (*a..*b).contains(&rdata)).unwrap();
    assert!(p.starts_with("r--"), "{p}");
    // The entry point is DriverEntry, per the link map.
    let map = std::fs::read_to_string(&d.map).unwrap();
    assert_eq!(
        image.entry() as usize - image.base(),
        map_symbol_rva(&map, "DriverEntry").unwrap() as usize
    );
}

/// The file offset of `rva` in a PE file.
fn file_offset(data: &[u8], rva: u32) -> usize {
    use object::read::pe::PeFile64;
    let file = PeFile64::parse(data).unwrap();
    let s = file
        .section_table()
        .iter()
        .find(|s| {
            let va = s.virtual_address.get(object::LittleEndian);
            (va..va + s.size_of_raw_data.get(object::LittleEndian)).contains(&rva)
        })
        .unwrap();
    (s.pointer_to_raw_data.get(object::LittleEndian) + rva - s.virtual_address.get(object::LittleEndian))
        as usize
}

#[test]
fn the_loader_refuses_what_it_cannot_run_and_says_what() {
    let d = built();
    let good = std::fs::read(&d.sys).unwrap();
    let load = |bytes: &[u8]| Image::from_bytes(bytes, "mutated.sys").map(|_| ()).unwrap_err();
    let e_lfanew = u32::from_le_bytes(good[0x3C..0x40].try_into().unwrap()) as usize;
    let opt = e_lfanew + 4 + 20;

    // Imports the simulator does not have: all of them listed at once.
    let mut unknown = good.clone();
    for (from, to) in [
        (&b"NdisFreeMdl\0"[..], &b"NdisFreeMdX\0"[..]),
        (b"KeFlushQueuedDpcs\0", b"KeFlushQueuedDpcX\0"),
    ] {
        let at = unknown.windows(from.len()).position(|w| w == from).unwrap();
        unknown[at..at + to.len()].copy_from_slice(to);
    }
    match load(&unknown) {
        LoadError::MissingImports(list) => assert_eq!(
            list,
            [
                ("ntoskrnl.exe".to_string(), "KeFlushQueuedDpcX".to_string()),
                ("ndis.sys".to_string(), "NdisFreeMdX".to_string()),
            ]
        ),
        e => panic!("{e}"),
    }

    // A writable code section.
    let sections = opt + usize::from(u16::from_le_bytes([good[e_lfanew + 20], good[e_lfanew + 21]]));
    assert_eq!(&good[sections..sections + 5], b".text");
    let mut wx = good.clone();
    wx[sections + 36 + 3] |= 0x80; // IMAGE_SCN_MEM_WRITE (0x80000000) in Characteristics
    assert!(matches!(load(&wx), LoadError::WritableExecutable(s) if s == [".text"]));

    // A privileged instruction at the entry point (`cli`).
    let entry = d.image.entry_rva;
    let mut cli = good.clone();
    cli[file_offset(&good, entry)] = 0xFA;
    match load(&cli) {
        LoadError::Privileged(found) => {
            assert!(
                found.iter().any(|f| f.rva == entry && f.text == "cli"),
                "{found:?}"
            )
        }
        e => panic!("{e}"),
    }
    // A read of the KPCR (`mov rax, gs:[0x188]`, the current thread) at the entry point.
    let mut gs = good.clone();
    let at = file_offset(&good, entry);
    gs[at..at + 9].copy_from_slice(&[0x65, 0x48, 0x8B, 0x04, 0x25, 0x88, 0x01, 0x00, 0x00]);
    match load(&gs) {
        LoadError::Privileged(found) => {
            assert!(found.iter().any(|f| f.rva == entry && f.why.contains("gs:")))
        }
        e => panic!("{e}"),
    }

    // Not a kernel driver: a console subsystem.
    let mut console = good.clone();
    console[opt + 68] = 3;
    assert!(matches!(load(&console), LoadError::Format(m) if m.contains("subsystem")));

    // A relocation kind AMD64 images do not have (HIGHLOW).
    let reloc_dir = opt + 112 + 5 * 8;
    let reloc_rva = u32::from_le_bytes(good[reloc_dir..reloc_dir + 4].try_into().unwrap());
    let mut highlow = good.clone();
    let first = file_offset(&good, reloc_rva) + 8;
    highlow[first + 1] = (highlow[first + 1] & 0x0F) | 0x30;
    assert!(matches!(load(&highlow), LoadError::Format(m) if m.contains("relocation type 3")));
}

#[test]
fn the_demo_runs_on_the_shipped_sys() {
    let d = built();
    let s = xtask::demo::simulate_driver(&Driver::Image(d.sys.clone()), xtask::demo::BULK_FRAMES);
    assert!(s.ok(), "{:#?}", xtask::demo::to_json(&s));
    // And the hostile one.
    let h = xtask::demo_hostile::simulate(&Driver::Image(d.sys.clone()));
    assert!(h.ok(), "{:#?}", xtask::demo_hostile::to_json(&h));
    assert!(
        s.image.as_deref().is_some_and(|i| i.contains("imports bound")),
        "{:?}",
        s.image
    );
    assert_eq!(s.driver, d.sys.display().to_string());
    // A file the loader refuses fails the demo with the loader's reason.
    let s = xtask::demo::simulate_driver(&Driver::Image(d.inf.clone()), 10);
    assert!(!s.ok());
    assert!(
        s.load_error
            .as_deref()
            .is_some_and(|e| e.contains("not a loadable driver image"))
    );
}

#[test]
fn every_driver_scenario_file_runs_on_the_shipped_sys_too() {
    let mut files: Vec<String> = std::fs::read_dir(xtask::root().join("tests"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    files.sort();
    let mut covered: Vec<String> = xtask::test::SHIPPED_SCENARIOS
        .iter()
        .map(|s| s.to_string())
        .chain(["allocator".to_string(), "bpf_libpcap".to_string()])
        .collect();
    covered.sort();
    assert_eq!(
        files, covered,
        "a new test file: add it to SHIPPED_SCENARIOS, or say why not"
    );
}
