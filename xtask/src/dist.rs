//! `cargo xtask dist`: cross-compiles `rxinject.sys` on Linux and writes the driver package
//! files to `dist/x64/`.
//!
//! The recipe (see ../shared/cross-build.md): the `x86_64-pc-windows-msvc` target's `core`,
//! `rust-lld` in lld-link mode, the link arguments of a kernel image, imports declared as
//! `raw-dylib` (no import libraries), the C runtime linked statically (`+crt-static`, from
//! `.cargo/config.toml`, as for the eWDK build). lld-link ignores `/RELEASE`, so the image checksum the
//! kernel loader verifies is written here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::setup::{WINDOWS_GNU_TARGET, WINDOWS_TARGET, ensure_target};
use crate::{Error, Result, cargo, pe, root, run_cmd};

/// Link arguments of a kernel-mode driver (checked on the output by `pe::check_driver_image`).
pub const DRIVER_LINK_ARGS: &[&str] = &[
    "/DRIVER",
    "/SUBSYSTEM:NATIVE",
    "/ENTRY:DriverEntry",
    "/NODEFAULTLIB",
    // As the WDK links drivers: the loader requires a signature (test signing is enough).
    "/INTEGRITYCHECK",
    // Compatible with CET shadow stacks (kernel-mode hardware-enforced stack protection
    // refuses images without it).
    "/CETCOMPAT",
    "/DEBUG",
    // Reproducible output: the PDB is referenced without the build directory, and the time
    // stamp is a hash of the image instead of the build time.
    "/PDBALTPATH:%_PDB%",
    "/Brepro",
];

/// What `dist` produced.
pub struct Dist {
    pub sys: PathBuf,
    pub inf: PathBuf,
    pub pdb: PathBuf,
    pub map: PathBuf,
    pub image: pe::Image,
    /// The command-line tool for Windows.
    pub exe: PathBuf,
    pub exe_image: pe::Image,
    /// Packet.dll: the Packet API for libpcap (`crates/rxinject-packet`).
    pub packet_dll: PathBuf,
    pub packet_dll_image: pe::Image,
}

/// Every Packet API function libpcap's `pcap-npf.c` calls (libpcap 1.10 and its master
/// branch), and those the older nmap's libdnet `eth-win32.c` called before nping moved to
/// `pcap_inject`: Packet.dll must export each.
pub const PACKET_API_CALLED: &[&str] = &[
    // pcap-npf.c
    "PacketGetAdapterNames",
    "PacketGetNetInfoEx",
    "PacketOpenAdapter",
    "PacketCloseAdapter",
    "PacketRequest",
    "PacketGetNetType",
    "PacketGetTimestampModes",
    "PacketSetTimestampMode",
    "PacketSetMode",
    "PacketGetInfo",
    "PacketSetHwFilter",
    "PacketSetBuff",
    "PacketSetMinToCopy",
    "PacketSetBpf",
    "PacketSetReadTimeout",
    "PacketSetLoopbackBehavior",
    "PacketInitPacket",
    "PacketReceivePacket",
    "PacketSendPacket",
    "PacketSendPackets",
    "PacketGetStats",
    "PacketGetStatsEx",
    "PacketGetReadEvent",
    "PacketSetDumpName",
    "PacketSetDumpLimits",
    "PacketIsDumpEnded",
    "PacketIsLoopbackAdapter",
    "PacketIsMonitorModeSupported",
    "PacketSetMonitorMode",
    "PacketGetMonitorMode",
    "PacketGetVersion",
    "PacketGetDriverVersion",
    "PacketGetAirPcapHandle",
    // libdnet eth-win32.c (and nmap's netutil.cc)
    "PacketAllocatePacket",
    "PacketFreePacket",
    "PacketSetNumWrites",
];

/// The directory `dist` writes to.
pub fn out_dir() -> PathBuf {
    root().join("dist").join("x64")
}

/// Builds and checks. Fails if any property of the image is wrong.
pub fn run() -> Result<Dist> {
    ensure_target(WINDOWS_TARGET)?;
    let target_dir = root().join("target").join("sys");
    let map = target_dir.join("rxinject.map");
    let mut cmd = cargo();
    cmd.args([
        "rustc",
        "--package",
        "rxinject",
        "--lib",
        "--crate-type",
        "cdylib",
        "--release",
    ])
    .args(["--target", WINDOWS_TARGET])
    .arg("--target-dir")
    .arg(&target_dir)
    .env("CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_LINKER", "rust-lld")
    .arg("--")
    .args(["-C", "linker-flavor=lld-link"])
    // Source paths in the debug information name the repository, not the builder's
    // directory. (The PDB still records the absolute paths of the linked objects, so two
    // checkouts differ in the PDB GUID, time stamp and checksum; the code is identical.)
    .arg(format!("--remap-path-prefix={}=rxinject", root().display()));
    for a in DRIVER_LINK_ARGS {
        cmd.arg("-C").arg(format!("link-arg={a}"));
    }
    cmd.arg("-C").arg(format!("link-arg=/MAP:{}", map.display()));
    run_cmd("build rxinject.sys (x86_64-pc-windows-msvc, rust-lld)", &mut cmd)?;

    let built = target_dir.join(WINDOWS_TARGET).join("release");
    let out = out_dir();
    fs::create_dir_all(&out).map_err(|e| Error::with(format!("create {}", out.display()), e))?;

    let mut image = read(&built.join("rxinject.dll"))?;
    let checksum = pe::write_checksum(&mut image)?;
    let sys = out.join("rxinject.sys");
    write(&sys, &image)?;
    let pdb = out.join("rxinject.pdb");
    copy(&built.join("rxinject.pdb"), &pdb)?;
    let dist_map = out.join("rxinject.map");
    copy(&map, &dist_map)?;
    let inf = out.join("rxinject.inf");
    let inf_text = stamp_inf(
        &read_string(&root().join("inf").join("rxinject.inx"))?,
        &driver_date(),
    )?;
    write(&inf, inf_text.as_bytes())?;

    let img = pe::inspect(&image)?;
    let entry = pe::map_symbol_rva(&read_string(&dist_map)?, "DriverEntry");
    let problems = pe::check_driver_image(&img, entry);
    if !problems.is_empty() {
        return Err(Error::new(format!(
            "{} is not a valid driver image:\n  {}",
            sys.display(),
            problems.join("\n  ")
        )));
    }
    let modules: std::collections::BTreeSet<&str> = img.imports.iter().map(|(m, _)| m.as_str()).collect();
    eprintln!(
        "==> {}: {} bytes, PE32+ AMD64, subsystem NATIVE, entry DriverEntry ({:#x}), checksum {checksum:#x}, {} imports from {}",
        sys.display(),
        image.len(),
        img.entry_rva,
        img.imports.len(),
        modules.into_iter().collect::<Vec<_>>().join(", ")
    );
    // The INF must describe this driver and copy only files the package has.
    // ... and install it only on Windows builds that have every function it imports.
    let expected = crate::inf::Expected::rxinject_importing(&img.imports);
    let problems = crate::inf::check(&inf_text, &expected, &out);
    if !problems.is_empty() {
        return Err(Error::new(format!(
            "{} does not match the driver:\n  {}",
            inf.display(),
            problems.join("\n  ")
        )));
    }
    eprintln!("==> {}: consistent with the driver's names", inf.display());
    for script in ["install.ps1", "uninstall.ps1"] {
        copy(&root().join("scripts").join(script), &out.join(script))?;
    }
    let (exe, exe_image) = build_exe(&out)?;
    let (packet_dll, packet_dll_image) = build_packet_dll(&out)?;
    Ok(Dist {
        sys,
        inf,
        pdb,
        map: dist_map,
        image: img,
        exe,
        exe_image,
        packet_dll,
        packet_dll_image,
    })
}

/// Builds Packet.dll (x86_64-pc-windows-gnu, mingw-w64) into `out/Packet.dll` and checks it
/// exports what libpcap calls. Without the `sim-client` feature: the shipped DLL reaches the
/// installed driver only.
fn build_packet_dll(out: &Path) -> Result<(PathBuf, pe::Image)> {
    let dll = out.join("Packet.dll");
    cross_build(
        "Packet.dll",
        &["--package", "rxinject-packet", "--lib"],
        "packet.dll",
        &dll,
    )?;
    let data = read(&dll)?;
    let img = pe::inspect(&data)?;
    let problems = pe::check_dll_image(&img, PACKET_API_CALLED);
    if !problems.is_empty() {
        return Err(Error::new(format!(
            "{} is not the Packet.dll libpcap needs:\n  {}",
            dll.display(),
            problems.join("\n  ")
        )));
    }
    eprintln!(
        "==> {}: {} bytes, PE32+ AMD64 DLL, {} exports (every Packet API function pcap-npf.c and libdnet call)",
        dll.display(),
        data.len(),
        img.exports.len()
    );
    Ok((dll, img))
}

/// `cargo build --release <what>` for x86_64-pc-windows-gnu, linked by mingw-w64 (one target
/// directory for both Windows programs: they share their dependencies and features), and
/// copies `artifact` to `to`.
fn cross_build(name: &str, what: &[&str], artifact: &str, to: &Path) -> Result<()> {
    ensure_target(WINDOWS_GNU_TARGET)?;
    let target_dir = root().join("target").join("exe");
    run_cmd(
        &format!("build {name} ({WINDOWS_GNU_TARGET}, mingw-w64)"),
        cargo()
            .args(["build", "--release"])
            .args(what)
            .args(["--target", WINDOWS_GNU_TARGET])
            .arg("--target-dir")
            .arg(&target_dir)
            .env(
                "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER",
                "x86_64-w64-mingw32-gcc",
            ),
    )?;
    copy(
        &target_dir.join(WINDOWS_GNU_TARGET).join("release").join(artifact),
        to,
    )
}

/// Builds the `rxinject` command for Windows (x86_64-pc-windows-gnu, linked by mingw-w64)
/// into `out/rxinject.exe` and checks it.
fn build_exe(out: &Path) -> Result<(PathBuf, pe::Image)> {
    let exe = out.join("rxinject.exe");
    cross_build(
        "rxinject.exe",
        &["--package", "rxinject-cli", "--bin", "rxinject"],
        "rxinject.exe",
        &exe,
    )?;
    let data = read(&exe)?;
    let img = pe::inspect(&data)?;
    let problems = pe::check_console_image(&img);
    if !problems.is_empty() {
        return Err(Error::new(format!(
            "{} is not a valid Windows console program:\n  {}",
            exe.display(),
            problems.join("\n  ")
        )));
    }
    let modules: std::collections::BTreeSet<&str> = img.imports.iter().map(|(m, _)| m.as_str()).collect();
    eprintln!(
        "==> {}: {} bytes, PE32+ AMD64, subsystem CONSOLE, imports from {}",
        exe.display(),
        data.len(),
        modules.into_iter().collect::<Vec<_>>().join(", ")
    );
    Ok((exe, img))
}

fn read(p: &Path) -> Result<Vec<u8>> {
    fs::read(p).map_err(|e| Error::with(format!("read {}", p.display()), e))
}

fn read_string(p: &Path) -> Result<String> {
    fs::read_to_string(p).map_err(|e| Error::with(format!("read {}", p.display()), e))
}

fn write(p: &Path, data: &[u8]) -> Result<()> {
    fs::write(p, data).map_err(|e| Error::with(format!("write {}", p.display()), e))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| Error::with(format!("copy {} to {}", from.display(), to.display()), e))
}

/// The `DriverVer` date: the date of the HEAD commit (reproducible), else today, as
/// `MM/DD/YYYY`.
fn driver_date() -> String {
    let git = Command::new("git")
        .args(["log", "-1", "--format=%cd", "--date=format:%m/%d/%Y"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| s.len() == 10);
    git.unwrap_or_else(|| {
        Command::new("date")
            .arg("+%m/%d/%Y")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|_| "01/01/2026".into())
    })
}

/// Stamps the INF template as `stampinf` does on Windows: `DriverVer` gets the date and the
/// driver's version, and `$ARCH$` the architecture.
pub fn stamp_inf(inx: &str, date: &str) -> Result<String> {
    let (major, minor, patch) = rxinject_abi::DRIVER_VERSION;
    let mut stamped = false;
    let mut out = String::with_capacity(inx.len() + 64);
    for line in inx.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        if key.eq_ignore_ascii_case("DriverVer") {
            out.push_str(&format!("DriverVer   = {date},{major}.{minor}.{patch}.0"));
            stamped = true;
        } else {
            out.push_str(&line.replace("$ARCH$", "amd64"));
        }
        out.push_str("\r\n");
    }
    if !stamped {
        return Err(Error::new("inf/rxinject.inx has no DriverVer line to stamp"));
    }
    Ok(out)
}
