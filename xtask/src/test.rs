//! `cargo xtask test`: every check CI runs, in order, stopping at the first failure.

use crate::setup::{WINDOWS_GNU_TARGET, WINDOWS_TARGET, ensure_components, ensure_packages, ensure_target};
use crate::{Result, cargo, dist, run_cmd};

/// The driver's integration tests that run a second time on the shipped `.sys` (all but
/// `allocator`, which tests the host build's allocator directly, and `bpf_libpcap`, which
/// tests the BPF crate without a driver).
pub const SHIPPED_SCENARIOS: &[&str] = &[
    "passthrough",
    "lifecycle",
    "device",
    "inject",
    "capture",
    "regression",
    "hostile",
    "oid",
];

/// The driver-side crates, linted for the Windows target as well as the host.
const WINDOWS_CRATES: &[&str] = &["rxinject", "ndis-sys", "rxinject-abi", "rxinject-bpf"];

pub fn run() -> Result<()> {
    ensure_components()?;
    ensure_target(WINDOWS_TARGET)?;
    ensure_target(WINDOWS_GNU_TARGET)?;
    ensure_packages()?;

    run_cmd(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    run_cmd(
        "cargo clippy (host, all targets, -D warnings)",
        cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    let mut windows = cargo();
    windows.args(["clippy", "--lib", "--target", WINDOWS_TARGET]);
    for c in WINDOWS_CRATES {
        windows.args(["--package", c]);
    }
    windows.args(["--", "-D", "warnings"]);
    run_cmd(
        &format!("cargo clippy ({WINDOWS_TARGET}, -D warnings)"),
        &mut windows,
    )?;
    // One crate at a time for Windows: the driver with `layout-probe` (src/wdk_layout.rs, the
    // eWDK build's layout checks, against bindgen's output for our own header of ndis-sys,
    // with the lints bindgen's helpers would break: build.rs), then the user-mode library and
    // command (the Windows backend compiles only there).
    for (package, kind, features) in [
        ("rxinject", "--lib", Some("layout-probe")),
        ("rxinject-user", "--lib", None),
        ("rxinject-user", "--lib", Some("sim-client")),
        ("rxinject-cli", "--bins", None),
        ("rxinject-packet", "--lib", None),
        ("rxinject-packet", "--lib", Some("sim-client")),
    ] {
        let mut cmd = cargo();
        cmd.args(["clippy", "--package", package, kind, "--target", WINDOWS_TARGET]);
        if let Some(f) = features {
            cmd.args(["--features", f]);
        }
        cmd.args(["--", "-D", "warnings"]);
        let with = features.map(|f| format!(" --features {f}")).unwrap_or_default();
        run_cmd(
            &format!("cargo clippy {package}{with} ({WINDOWS_TARGET}, -D warnings)"),
            &mut cmd,
        )?;
    }

    let built = dist::run()?;

    run_cmd("cargo test --workspace", cargo().args(["test", "--workspace"]))?;
    // The Linux backend's namespace tests (crates/rxinject-cli/tests/linux.rs) ran above if
    // this is root; say plainly when they could not.
    #[cfg(target_os = "linux")]
    {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        if root {
            eprintln!("==> the Linux namespace tests ran (root)");
        } else {
            eprintln!(
                "==> SKIPPED: the Linux namespace tests (crates/rxinject-cli/tests/linux.rs) need root: run `sudo cargo xtask test`"
            );
        }
    }
    // The main scenarios again, on the bytes we ship: the simulator's loader maps
    // dist/x64/rxinject.sys and the same tests drive it (the demo's test on the .sys is in
    // xtask/tests/dist.rs, part of the run above).
    let mut shipped = cargo();
    shipped.args(["test", "--package", "rxinject"]);
    for t in SHIPPED_SCENARIOS {
        shipped.args(["--test", t]);
    }
    shipped.args([
        "--package",
        "rxinject-cli",
        "--test",
        "cli",
        "--test",
        "shared_sim",
    ]);
    shipped.env("RXINJECT_DRIVER", &built.sys);
    run_cmd(
        "cargo test: the driver's scenarios and the command line on dist/x64/rxinject.sys",
        &mut shipped,
    )?;
    // Any filter, not only ours: the C sample filters, each caught with the rules it must
    // break, and rxinject.sys clean, plain and hostile (`cargo xtask verify-samples`).
    eprintln!("==> verify-samples");
    crate::samples::run(false)?;
    run_cmd(
        "cargo doc (no warnings)",
        cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    eprintln!("==> all checks passed");
    Ok(())
}
