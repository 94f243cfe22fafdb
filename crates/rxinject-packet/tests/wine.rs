//! The real Windows Packet.dll under Wine: a Windows program (tests/wine/packet_test.c,
//! built with mingw-w64 against our sdk/Packet32.h and linked to the DLL) calls it as
//! pcap-npf.c does, against rxinject's driver in a simulator this test serves on loopback.
//! The DLL is its test build (`sim-client`: it reaches the simulator through RXINJECT_SIM);
//! `SendToRxAdapters` is set in Wine's registry with `reg add`, as a tester sets it on
//! Windows. This checks the exports, the calling convention, the layouts, the real Win32
//! read event, and the registry path to the receive path.
//!
//! Needs mingw-w64 and wine64 (`cargo xtask setup`).

use std::path::{Path, PathBuf};
use std::process::Command;

use rxinject_user::remote::{Address, Connection};
use rxinject_user::sim::serve::{self, ServeOptions};
use rxinject_user::{Driver, SimOptions, Target};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(what: &str, c: &mut Command) -> std::process::Output {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (cargo xtask setup installs what is needed)"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn packet_dll_under_wine_captures_and_sends_to_rx_by_the_registry() {
    let dir = std::env::temp_dir().join(format!("rxinject-packet-wine-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The DLL's test build.
    let target_dir = root().join("target").join("exe-sim-client");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(
        "building the sim-client Packet.dll",
        Command::new(cargo)
            .current_dir(root())
            .args([
                "build",
                "--release",
                "--package",
                "rxinject-packet",
                "--lib",
                "--features",
                "sim-client",
            ])
            .args(["--target", "x86_64-pc-windows-gnu"])
            .arg("--target-dir")
            .arg(&target_dir)
            .env(
                "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER",
                "x86_64-w64-mingw32-gcc",
            ),
    );
    let dll = dir.join("Packet.dll");
    std::fs::copy(target_dir.join("x86_64-pc-windows-gnu/release/packet.dll"), &dll).unwrap();
    // The program, against our header, linked to the DLL.
    let exe = dir.join("packet_test.exe");
    run(
        "compiling packet_test.c with mingw-w64",
        Command::new("x86_64-w64-mingw32-gcc")
            .args(["-O2", "-Wall", "-Werror", "-std=c11"])
            .arg("-I")
            .arg(root().join("sdk"))
            .arg("-o")
            .arg(&exe)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wine/packet_test.c"))
            .arg(&dll)
            .arg("-lws2_32"),
    );
    // Wine 8 has no bcryptprimitives.dll (Rust's std needs it): a stand-in beside the DLL.
    let shim = root().join("xtask/tests/shim");
    run(
        "building the bcryptprimitives stand-in",
        Command::new("x86_64-w64-mingw32-gcc")
            .args(["-shared", "-O2", "-o"])
            .arg(dir.join("bcryptprimitives.dll"))
            .arg(shim.join("bcryptprimitives.c"))
            .arg(shim.join("bcryptprimitives.def"))
            .arg("-ladvapi32"),
    );

    // The simulator, on loopback, in this process.
    let (tx, rx) = std::sync::mpsc::channel();
    let opts = ServeOptions {
        address: Address::Tcp("127.0.0.1:0".parse().unwrap()),
        sim: SimOptions::default(),
    };
    let server = std::thread::spawn(move || {
        serve::serve(opts, false, |a| tx.send(a.clone()).unwrap()).expect("the simulator serves")
    });
    let address = rx.recv().unwrap();
    let guid = {
        let d = Driver::open(Target::Remote(address.clone())).unwrap();
        let m = d.adapters().unwrap()[0].module.clone();
        d.finish().unwrap();
        m[..m.find('}').unwrap() + 1].to_string()
    };

    let wine = |args: &[&str]| {
        let mut c = Command::new("/usr/lib/wine/wine64");
        c.args(args)
            .env("WINEPREFIX", dir.join("prefix"))
            .env("WINEDEBUG", "-all")
            .env("RXINJECT_SIM", address.to_string());
        c
    };
    run(
        "wine64 reg add",
        &mut wine(&[
            "reg",
            "add",
            r"HKLM\SYSTEM\CurrentControlSet\Services\rxinject\Parameters",
            "/v",
            "SendToRxAdapters",
            "/t",
            "REG_SZ",
            "/d",
            &format!("{{11111111-2222-3333-4444-555555555555}};{guid}"),
            "/f",
        ]),
    );
    let out = wine(&[exe.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("PASS"),
        "packet_test.exe under Wine:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("version rxinject Packet.dll"), "{text}");

    // The shipped DLL (no simulator client) on a machine without the driver: its real
    // device path opens \\.\RxInject, finds nothing, and says so.
    let plain = root().join("target").join("exe-packet");
    run(
        "building the shipped Packet.dll",
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(root())
            .args(["build", "--release", "--package", "rxinject-packet", "--lib"])
            .args(["--target", "x86_64-pc-windows-gnu"])
            .arg("--target-dir")
            .arg(&plain)
            .env(
                "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER",
                "x86_64-w64-mingw32-gcc",
            ),
    );
    std::fs::copy(plain.join("x86_64-pc-windows-gnu/release/packet.dll"), &dll).unwrap();
    let out = wine(&[exe.to_str().unwrap(), "nodriver"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("PASS"),
        "packet_test.exe nodriver under Wine:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let c = Connection::connect(&address).unwrap();
    let report = c.shutdown().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert!(server.join().unwrap().clean);
    let _ = std::fs::remove_dir_all(&dir);
}
