//! The Windows build of `rxinject`, run under Wine, against `rxinject sim serve` on loopback:
//! the Windows transport to the simulator (the `sim-client` feature, in this test's build
//! only: the shipped rxinject.exe has none, as the dist test checks) lists the shared
//! adapter, injects into its Rx path, and captures what a Linux process injects: Winsock
//! and the Windows build's own code paths, for real.
//!
//! Needs mingw-w64 and wine64 (`cargo xtask setup`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ndis_sim::packets;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds rxinject.exe with the simulator client (a target directory of its own: the
/// shipped build in target/exe is never touched).
fn build_test_exe(dir: &Path) -> PathBuf {
    let target_dir = root().join("target").join("exe-sim-client");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        .args([
            "build",
            "--release",
            "--package",
            "rxinject-cli",
            "--bin",
            "rxinject",
            "--features",
            "sim-client",
            "--target",
            "x86_64-pc-windows-gnu",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env(
            "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER",
            "x86_64-w64-mingw32-gcc",
        )
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building the sim-client rxinject.exe (rustup target add x86_64-pc-windows-gnu; cargo xtask setup for mingw-w64):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exe = dir.join("rxinject.exe");
    // What the dist test looks for to tell that the shipped exe has no client.
    let bytes = std::fs::read(target_dir.join("x86_64-pc-windows-gnu/release/rxinject.exe")).unwrap();
    for needle in [&b"RXINJECT_SIM"[..], b"rxinject sim serve"] {
        assert!(bytes.windows(needle.len()).any(|w| w == needle));
    }
    std::fs::copy(
        target_dir.join("x86_64-pc-windows-gnu/release/rxinject.exe"),
        &exe,
    )
    .unwrap();
    // Wine 8 has no bcryptprimitives.dll (Rust's std needs it): a stand-in beside the exe.
    let shim = root().join("xtask/tests/shim");
    let out = Command::new("x86_64-w64-mingw32-gcc")
        .args(["-shared", "-O2", "-o"])
        .arg(dir.join("bcryptprimitives.dll"))
        .arg(shim.join("bcryptprimitives.c"))
        .arg(shim.join("bcryptprimitives.def"))
        .arg("-ladvapi32")
        .output()
        .expect("x86_64-w64-mingw32-gcc (cargo xtask setup installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    exe
}

fn wine64() -> PathBuf {
    let p = PathBuf::from("/usr/lib/wine/wine64");
    assert!(p.is_file(), "wine64 is needed: run `cargo xtask setup`");
    p
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn the_windows_build_under_wine_shares_the_simulator_over_loopback() {
    let dir = std::env::temp_dir().join(format!("rxinject-wine-sim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let exe = build_test_exe(&dir);
    let rxinject = env!("CARGO_BIN_EXE_rxinject");
    let mut server = Command::new(rxinject)
        .args(["sim", "serve", "--quiet", "--listen", "127.0.0.1:0"])
        .env_remove("RXINJECT_SIM")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line.trim().strip_prefix("RXINJECT_SIM=").unwrap().to_string();
    let wine = |args: &[&str]| {
        let mut c = Command::new(wine64());
        c.arg(&exe)
            .args(args)
            .env("WINEPREFIX", dir.join("prefix"))
            .env("WINEDEBUG", "-all")
            .env("RXINJECT_SIM", &address);
        c
    };
    // The adapter of the shared machine, by its short name.
    let out = wine(&["--sim", "--json", "adapters"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["adapters"][0]["name"], "sim0", "{v}");
    // A capture in the Windows program, of what a Linux process injects.
    let mut capture = wine(&["--sim", "--json", "capture", "-i", "sim0", "-Q", "in", "-c", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(capture.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut l = String::new();
        assert!(
            err.read_line(&mut l).unwrap() > 0,
            "the capture ended early:\n{seen}"
        );
        if l.contains("capturing on sim0") {
            break;
        }
        seen.push_str(&l);
    }
    let request = packets::arp_request([0x02, 0, 0, 0, 0, 0x99], [192, 168, 77, 2], [192, 168, 77, 1]);
    let sent = Command::new(rxinject)
        .args(["--sim", "send", "-i", "sim0", "--rx", "--hex", &hex(&request)])
        .env("RXINJECT_SIM", &address)
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let done = capture.wait_with_output().unwrap();
    assert!(done.status.success());
    let v: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(
        (v["captured"].as_u64(), v["injected"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    // And the Windows program injects: the shared host stack gets it.
    let out = wine(&[
        "--sim",
        "--json",
        "send",
        "-i",
        "sim0",
        "--rx",
        "--hex",
        &hex(&request),
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frames_delivered"], 1, "{v}");
    let stop = Command::new(rxinject)
        .args(["sim", "stop", &address])
        .output()
        .unwrap();
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stdout));
    assert!(server.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}
