//! Prerequisites: the Windows target and rustup components (always installable), and the
//! Debian packages the tests use (installed when running as root, otherwise named).

use std::path::Path;
use std::process::Command;

use crate::{Error, Result, run_cmd};

/// The cross-compilation target of the driver.
pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-msvc";

/// Debian packages: gcc (compiles the Wine layout probe), libwine-dev (its headers), tcpdump
/// (libpcap compiles the filter expressions of the BPF tests and judges frames as the
/// reference; it only reads and writes pcap files), tshark (with capinfos and editcap: reads
/// back the pcapng files the tool writes, and writes pcapng as Wireshark does), the mingw-w64
/// linker (links `rxinject.exe`), wine64 (runs it in a test) and valgrind (callgrind counts
/// the shipped driver's instructions per frame: `cargo xtask bench` and its budget test),
/// clang (compiles the `ndis.h` fix's test header as bindgen's libclang would, and the C
/// sample filters for `x86_64-pc-windows-msvc`), libclang-dev (bindgen's libclang, for the
/// eWDK layout checks' probe), lld (lld-link links the samples' `.sys`) and llvm
/// (llvm-dlltool makes their `ndis.lib`/`ntoskrnl.lib` import libraries); for the Linux
/// backend's namespace tests and `bench-linux`, iproute2 (`ip netns`, `tc`), tcpreplay (the
/// tool sending on a companion interface, and the benchmark's peer) and util-linux
/// (`setpriv` drops capabilities).
const APT_PACKAGES: &[(&str, &str)] = &[
    ("gcc", "/usr/bin/gcc"),
    ("clang", "/usr/bin/clang"),
    ("libclang-dev", "/usr/lib/llvm-14/lib/libclang.so"),
    ("lld", "/usr/bin/lld-link"),
    ("llvm", "/usr/bin/llvm-dlltool"),
    ("libwine-dev", "/usr/include/wine/wine/windows/ddk/wdm.h"),
    ("tcpdump", "/usr/bin/tcpdump"),
    ("tshark", "/usr/bin/tshark"),
    ("gcc-mingw-w64-x86-64", "/usr/bin/x86_64-w64-mingw32-gcc"),
    ("wine64", "/usr/lib/wine/wine64"),
    ("valgrind", "/usr/bin/valgrind"),
    ("iproute2", "/usr/sbin/ip"),
    ("tcpreplay", "/usr/bin/tcpreplay"),
    ("util-linux", "/usr/bin/setpriv"),
];

/// The target of the user-mode tool's Windows build (linked with mingw-w64).
pub const WINDOWS_GNU_TARGET: &str = "x86_64-pc-windows-gnu";

/// Ensures a rustup target: [`WINDOWS_TARGET`] (the driver, `dist` and the Windows clippy
/// run) or [`WINDOWS_GNU_TARGET`] (`rxinject.exe`).
pub fn ensure_target(target: &str) -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| Error::with(format!("rustup is needed to add the {target} target"), e))?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        return Ok(());
    }
    run_cmd(
        &format!("rustup target add {target}"),
        Command::new("rustup").args(["target", "add", target]),
    )
}

/// Ensures rustfmt and clippy.
pub fn ensure_components() -> Result<()> {
    let out = Command::new("rustup")
        .args(["component", "list", "--installed"])
        .output()
        .map_err(|e| Error::with("rustup is needed to add components", e))?;
    let installed = String::from_utf8_lossy(&out.stdout).to_string();
    for c in ["rustfmt", "clippy"] {
        if !installed.lines().any(|l| l.starts_with(c)) {
            run_cmd(
                &format!("rustup component add {c}"),
                Command::new("rustup").args(["component", "add", c]),
            )?;
        }
    }
    Ok(())
}

/// Ensures the Debian packages, with apt-get when running as root.
pub fn ensure_packages() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(_, probe)| !Path::new(probe).exists())
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root {
        return Err(Error::new(format!(
            "missing Debian packages {}: run `sudo apt-get install -y {}` (or `sudo cargo xtask setup`)",
            missing.join(", "),
            missing.join(" ")
        )));
    }
    run_cmd("apt-get update", Command::new("apt-get").args(["update", "-q"]))?;
    run_cmd(
        &format!("apt-get install {}", missing.join(" ")),
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// `cargo xtask setup`.
pub fn run() -> Result<()> {
    ensure_components()?;
    ensure_target(WINDOWS_TARGET)?;
    ensure_target(WINDOWS_GNU_TARGET)?;
    ensure_packages()?;
    eprintln!("==> setup complete");
    Ok(())
}
