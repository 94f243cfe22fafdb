//! The eWDK build (`cargo make` on Windows, `--features wdk`) cannot run on these machines:
//! the windows-drivers-rs crates refuse a Linux host and the WDK's headers are not ours to
//! ship. These tests guard each layer of it that can be checked without them, one test per
//! failure a first Windows build met (README.md, "On Windows with the eWDK"):
//!
//! 1. wdk-build is found by a plain `cargo metadata` for a Windows host;
//! 2. the Windows build links the C runtime statically;
//! 3. the copy of `ndis.h` bindgen reads computes `NDIS_API_VERSION_AVAILABLE` as MSVC does;
//! 4. `src/wdk_layout.rs` compiles against bindgen's output, and fails on a renamed field or
//!    a wrong size (the layout probe, over `crates/ndis-sys/c/ndis_lwf.h`);
//! 5. every task `Makefile.toml` needs is defined by it or by wdk-build's makefile.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use serde_json::Value;
use xtask::{cargo, root};

#[path = "../../build/ndis_h.rs"]
mod ndis_h;

/// The target of the driver.
const WINDOWS: &str = "x86_64-pc-windows-msvc";

/// The cargo builds of these tests share one target directory, one at a time.
static BUILDS: Mutex<()> = Mutex::new(());

fn target_dir() -> PathBuf {
    root().join("target").join("ewdk")
}

/// A scratch directory of its own for test `name`.
fn scratch(name: &str) -> PathBuf {
    let d = target_dir().join("scratch").join(name);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `cargo check` of the driver for Windows in this file's target directory, with the
/// environment's rustflags removed (they would replace `.cargo/config.toml`'s).
fn check_driver(features: &[&str], env: &[(&str, &str)]) -> Output {
    let _one = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let mut cmd = cargo();
    cmd.args([
        "check",
        "--quiet",
        "--package",
        "rxinject",
        "--lib",
        "--target",
        WINDOWS,
    ])
    .arg("--target-dir")
    .arg(target_dir())
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .env_remove("RXINJECT_LAYOUT_PROBE_HEADER");
    for f in features {
        cmd.args(["--features", f]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    output(&mut cmd)
}

// ---- 1. cargo metadata ---------------------------------------------------------------------

fn metadata(args: &[&str]) -> Value {
    let out = output(cargo().args(["metadata", "--format-version", "1"]).args(args));
    assert!(out.status.success(), "cargo metadata failed:\n{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

fn packages<'a>(m: &'a Value, name: &str) -> Vec<&'a Value> {
    m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == name)
        .collect()
}

#[test]
fn a_plain_cargo_metadata_lists_wdk_build_as_a_build_dependency_for_a_windows_host() {
    // What wdk-build (bindgen's edition), wdk-sys's build script and the cargo-make flow's
    // load_script run: `cargo metadata`, no features. They need exactly one wdk-build.
    let m = metadata(&[]);
    let found = packages(&m, "wdk-build");
    assert_eq!(
        found.len(),
        1,
        "one wdk-build package in plain metadata: {found:?}"
    );
    let rxinject = packages(&m, "rxinject")[0];
    let deps: Vec<&Value> = rxinject["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["name"] == "wdk-build" && d["optional"] == false)
        .collect();
    assert_eq!(deps.len(), 1, "a non-optional wdk-build dependency: {deps:?}");
    assert_eq!(deps[0]["kind"], "build");
    assert_eq!(deps[0]["target"], "cfg(windows)");

    // Resolved for a Windows host it is a build-dependency of rxinject; for this Linux host
    // it is not (so it is never built here, where it would refuse to compile).
    let resolved = |platform: &str| -> bool {
        let m = metadata(&["--filter-platform", platform]);
        let id = &packages(&m, "rxinject")[0]["id"];
        let node = m["resolve"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| &n["id"] == id)
            .expect("rxinject is resolved");
        node["deps"].as_array().unwrap().iter().any(|d| {
            d["name"] == "wdk_build"
                && d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"] == "build")
        })
    };
    assert!(resolved(WINDOWS), "wdk-build resolved for a Windows host");
    assert!(
        !resolved("x86_64-unknown-linux-gnu"),
        "wdk-build not resolved for a Linux host"
    );
}

// ---- 2. the static C runtime ---------------------------------------------------------------

#[test]
fn the_windows_build_links_the_c_runtime_statically_and_refuses_to_build_without_it() {
    // The flags wdk-build's configure_wdk_binary_build() sees are the `target.<triple>`
    // rustflags of .cargo/config.toml; build.rs makes wdk-build's test on every Windows build.
    let ok = check_driver(&[], &[]);
    assert!(ok.status.success(), "{}", text(&ok));
    // A RUSTFLAGS in the environment replaces the configured flags, and the build says so.
    let without = check_driver(&[], &[("RUSTFLAGS", "")]);
    assert!(!without.status.success());
    assert!(
        text(&without).contains("needs a statically linked C runtime"),
        "{}",
        text(&without)
    );
    // Nothing in the cargo-make flow replaces the configured flags either.
    for file in [root().join("Makefile.toml"), wdk_build_makefile()] {
        let t = fs::read_to_string(&file).unwrap();
        for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"] {
            assert!(!t.contains(var), "{} sets {var}", file.display());
        }
    }
}

// ---- 3. ndis.h -----------------------------------------------------------------------------

/// A header with the shape of the WDK's: the pasting macro, then the version checks a filter
/// build makes with macro arguments.
fn synthetic_ndis_h(eol: &str, minor: &str) -> String {
    [
        "/* synthetic ndis.h */",
        "#define NDIS_MIN_API 0x400",
        "#define NDIS_API_VERSION_AVAILABLE(major,minor) ((((0x ## major) << 8) + (0x ## minor)) >= NDIS_MIN_API)",
        "#define NDIS_FILTER_MAJOR_VERSION 6",
        &format!("#define NDIS_FILTER_MINOR_VERSION {minor}"),
        "#if !NDIS_API_VERSION_AVAILABLE(NDIS_FILTER_MAJOR_VERSION, NDIS_FILTER_MINOR_VERSION)",
        "#error NDIS: This NDIS API version is not supported on the target architecture.",
        "#endif",
        "_Static_assert(NDIS_API_VERSION_AVAILABLE(6, 50), \"6.50 is available\");",
        "_Static_assert(!NDIS_API_VERSION_AVAILABLE(3, 0), \"3.0 is not\");",
        "_Static_assert(((0x6 << 8) + 0x50) == 0x650, \"the computed version\");",
        "int after_the_checks;",
        "",
    ]
    .join(eol)
}

/// `clang -fsyntax-only` of `file`, as bindgen's libclang reads it (MS extensions, Windows
/// target).
fn clang(file: &Path) -> Output {
    output(
        Command::new("clang")
            .args([
                "--target=x86_64-pc-windows-msvc",
                "-fms-compatibility",
                "-fms-extensions",
                "-fsyntax-only",
                "-x",
                "c",
            ])
            .arg(file),
    )
}

#[test]
fn libclang_fails_on_the_pasting_macro_as_the_wdk_ships_it() {
    let dir = scratch("ndis_h_original");
    let h = dir.join("ndis.h");
    fs::write(&h, synthetic_ndis_h("\n", "50")).unwrap();
    let out = clang(&h);
    assert!(!out.status.success(), "clang accepted the unfixed macro");
    assert!(
        text(&out).contains("invalid suffix 'xNDIS_FILTER_MAJOR_VERSION' on integer constant"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_rewritten_ndis_h_computes_the_version_as_msvc_does() {
    let dir = scratch("ndis_h_rewritten");
    for eol in ["\n", "\r\n"] {
        let original = dir.join("ndis.h");
        let source = synthetic_ndis_h(eol, "50");
        let fixed = ndis_h::rewrite(&source, &original.display().to_string())
            .unwrap()
            .expect("the macro is rewritten");
        // Only the macro's line changed: every other line is there, in order.
        let kept: Vec<&str> = source
            .lines()
            .filter(|l| !l.contains("define NDIS_API_VERSION_AVAILABLE"))
            .collect();
        let left: Vec<&str> = fixed
            .lines()
            .filter(|l| !l.contains("(major,minor)") && !l.starts_with("#line"))
            .collect();
        assert_eq!(kept, left, "nothing but the macro changes");
        assert_eq!(eol == "\r\n", fixed.contains("\r\n"), "line endings are kept");
        let copy = dir.join("copy.h");
        fs::write(&copy, &fixed).unwrap();
        let out = clang(&copy);
        assert!(
            out.status.success(),
            "clang rejected the fixed copy:\n{}",
            text(&out)
        );
    }

    // It computes the version rather than answering yes: a minor version below NDIS_MIN_API
    // (6.0 is 0x600, fine; 3.x is not) reaches the header's #error, at its original line.
    let low = synthetic_ndis_h("\n", "50").replace(
        "#define NDIS_FILTER_MAJOR_VERSION 6",
        "#define NDIS_FILTER_MAJOR_VERSION 3",
    );
    let original = dir.join("ndis.h");
    let fixed = ndis_h::rewrite(&low, &original.display().to_string())
        .unwrap()
        .unwrap();
    let copy = dir.join("low.h");
    fs::write(&copy, fixed).unwrap();
    let out = clang(&copy);
    assert!(!out.status.success());
    let diag = text(&out);
    assert!(
        diag.contains("NDIS: This NDIS API version is not supported"),
        "{diag}"
    );
    assert!(
        diag.contains(&format!("{}:7:2: error", original.display())),
        "the #error is reported at line 7 of the original: {diag}"
    );
}

#[test]
fn the_ndis_h_rewrite_leaves_other_headers_alone_and_reads_continued_definitions() {
    let path = "C:\\Program Files (x86)\\Windows Kits\\10\\Include\\10.0.22000.0\\km\\ndis.h";
    assert_eq!(ndis_h::rewrite("#define X 1\nint y;\n", path), Ok(None));
    // A definition that does not paste needs no fix.
    let plain = "#define NDIS_API_VERSION_AVAILABLE(a,b) ((a) >= 6)\n";
    assert_eq!(ndis_h::rewrite(plain, path), Ok(None));
    // A longer name is another macro.
    let longer = "#define NDIS_API_VERSION_AVAILABLE_EX(a,b) (0x ## a)\n";
    assert_eq!(ndis_h::rewrite(longer, path), Ok(None));
    // A definition continued over two lines is rewritten whole, and the numbering resumes
    // after it; the Windows path is escaped in the #line directive.
    let continued = "int a;\n#  define NDIS_API_VERSION_AVAILABLE( major , minor ) \\\n    ((0x ## major) + (0x ## minor))\nint b;\n";
    let fixed = ndis_h::rewrite(continued, path).unwrap().unwrap();
    let lines: Vec<&str> = fixed.lines().collect();
    assert_eq!(lines[0], "int a;");
    assert_eq!(
        lines[1],
        format!(
            "#define {}(major,minor) ((0x ## major) + (0x ## minor))",
            ndis_h::PASTING_MACRO
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "#define NDIS_API_VERSION_AVAILABLE(major,minor) {}(major,minor)",
            ndis_h::PASTING_MACRO
        )
    );
    assert_eq!(
        lines[3],
        "#line 4 \"C:\\\\Program Files (x86)\\\\Windows Kits\\\\10\\\\Include\\\\10.0.22000.0\\\\km\\\\ndis.h\""
    );
    assert_eq!(lines[4], "int b;");
    // A definition it cannot read is an error, not a silent copy.
    assert!(ndis_h::rewrite("#define NDIS_API_VERSION_AVAILABLE(a,b\n", path).is_err());
    assert!(ndis_h::rewrite("#define NDIS_API_VERSION_AVAILABLE 1\n", path).is_err());
}

// ---- 4. the layout checks ------------------------------------------------------------------

#[test]
fn the_layout_checks_compile_against_the_probe_and_fail_on_a_renamed_field_or_a_wrong_size() {
    let header = root().join("crates/ndis-sys/c/ndis_lwf.h");
    let ok = check_driver(&["layout-probe"], &[]);
    assert!(ok.status.success(), "the layout probe:\n{}", text(&ok));

    let source = fs::read_to_string(&header).unwrap();
    let dir = scratch("layout_probe");
    let broken = |name: &str, from: &str, to: &str| -> String {
        assert!(source.contains(from), "{from} is in ndis_lwf.h");
        let h = dir.join(name);
        fs::write(&h, source.replacen(from, to, 1)).unwrap();
        let out = check_driver(
            &["layout-probe"],
            &[("RXINJECT_LAYOUT_PROBE_HEADER", h.to_str().unwrap())],
        );
        assert!(!out.status.success(), "{name}: the checks passed");
        text(&out)
    };
    // ndis-sys's name where the WDK has another (the restart parameters' BoundIfIndex).
    let renamed = broken(
        "renamed.h",
        "    NET_IFINDEX LowerIfIndex;\n    NET_LUID LowerIfNetLuid;\n    ULONG Flags;\n} NDIS_FILTER_RESTART_PARAMETERS",
        "    NET_IFINDEX BoundIfIndex;\n    NET_LUID LowerIfNetLuid;\n    ULONG Flags;\n} NDIS_FILTER_RESTART_PARAMETERS",
    );
    assert!(
        renamed.contains("no field `LowerIfIndex` on type `_NDIS_FILTER_RESTART_PARAMETERS`"),
        "{renamed}"
    );
    // The NBL of another NDIS version (ndis.sys's 29 slots where a 6.50 header has 26).
    let resized = broken(
        "resized.h",
        "#define MaxNetBufferListInfo 26",
        "#define MaxNetBufferListInfo 29",
    );
    assert!(resized.contains("ndis_sys::NET_BUFFER_LIST"), "{resized}");
}

// ---- 5. Makefile.toml ----------------------------------------------------------------------

/// The `rust-driver-makefile.toml` of the wdk-build that Cargo.lock resolves (downloaded by
/// cargo with the lock file's packages), which `Makefile.toml` extends.
fn wdk_build_makefile() -> PathBuf {
    let m = metadata(&[]);
    let manifest = packages(&m, "wdk-build")[0]["manifest_path"]
        .as_str()
        .unwrap()
        .to_string();
    Path::new(&manifest)
        .parent()
        .unwrap()
        .join("rust-driver-makefile.toml")
}

fn parse(path: &Path) -> toml::Table {
    fs::read_to_string(path)
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{} is TOML: {e}", path.display()))
}

fn tasks(makefile: &toml::Table) -> &toml::Table {
    makefile["tasks"].as_table().expect("a [tasks] table")
}

/// The task names a task refers to: its dependencies, `run_task` (a name, `{ name = ... }`
/// or a list of either), `alias` and `extend`.
fn referenced(task: &toml::Value) -> Vec<String> {
    fn names(v: &toml::Value, out: &mut Vec<String>) {
        match v {
            toml::Value::String(s) => out.push(s.clone()),
            toml::Value::Array(a) => a.iter().for_each(|x| names(x, out)),
            toml::Value::Table(t) => {
                if let Some(n) = t.get("name") {
                    names(n, out)
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for key in ["dependencies", "run_task", "alias", "extend"] {
        if let Some(v) = task.get(key) {
            names(v, &mut out);
        }
    }
    out
}

/// Every task of `ours` (and of the file it extends) that names a task neither defines.
fn undefined_tasks(ours: &toml::Table, theirs: &toml::Table) -> Vec<String> {
    let defined: BTreeSet<&String> = tasks(ours).keys().chain(tasks(theirs).keys()).collect();
    let mut missing = Vec::new();
    for (file, table) in [("Makefile.toml", ours), ("rust-driver-makefile.toml", theirs)] {
        for (name, task) in tasks(table) {
            // A task of theirs that ours clears is ours now.
            if file != "Makefile.toml" && tasks(ours).contains_key(name) {
                continue;
            }
            for r in referenced(task) {
                if !defined.contains(&r) {
                    missing.push(format!("{file}: [tasks.{name}] needs {r}"));
                }
            }
        }
    }
    missing
}

#[test]
fn every_task_the_makefile_needs_is_defined_by_it_or_by_the_locked_wdk_build() {
    let ours_path = root().join("Makefile.toml");
    let ours = parse(&ours_path);
    let theirs_path = wdk_build_makefile();
    let theirs = parse(&theirs_path);
    let missing = undefined_tasks(&ours, &theirs);
    assert!(
        missing.is_empty(),
        "tasks no file defines:\n  {}",
        missing.join("\n  ")
    );

    // The check sees a missing task: without our own definition, the one wdk-build 0.6.0
    // dropped is missing again.
    let mut old = ours.clone();
    old["tasks"].as_table_mut().unwrap().remove("copy-map-to-package");
    assert_eq!(
        undefined_tasks(&old, &theirs),
        ["Makefile.toml: [tasks.package-driver] needs copy-map-to-package"]
    );

    // The file extended is the one load_rust_driver_makefile() links into target/, and the
    // load script asks for the wdk-build the lock file has.
    assert_eq!(ours["extend"].as_str(), Some("target/rust-driver-makefile.toml"));
    let locked = packages(&metadata(&[]), "wdk-build")[0]["version"]
        .as_str()
        .unwrap()
        .to_string();
    let load_script = ours["config"]["load_script"].as_str().unwrap();
    assert!(
        load_script.contains(&format!("wdk-build = \"{locked}\"")),
        "the load script's wdk-build is the locked {locked}:\n{load_script}"
    );
    assert!(load_script.contains("load_rust_driver_makefile()"));

    // Every WDK_BUILD_ or CARGO_MAKE_ variable the file reads is one wdk-build or its
    // makefile sets (cargo-make's own are named in wdk-build's sources too).
    let wdk_build = theirs_path.parent().unwrap();
    let known = [
        fs::read_to_string(&theirs_path).unwrap(),
        fs::read_to_string(wdk_build.join("src/cargo_make.rs")).unwrap(),
        fs::read_to_string(wdk_build.join("src/lib.rs")).unwrap(),
    ]
    .concat();
    let text = fs::read_to_string(&ours_path).unwrap();
    let mut unknown = BTreeSet::new();
    for prefix in ["WDK_BUILD_", "CARGO_MAKE_"] {
        for (i, _) in text.match_indices(prefix) {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
                .collect();
            if !known.contains(&name) {
                unknown.insert(name);
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "variables wdk-build does not set: {unknown:?}"
    );
}
