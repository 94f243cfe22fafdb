//! `ndis-verify` as a command, on the C sample filters that `cargo xtask build-samples`
//! builds with clang and lld-link: its JSON contract, the driver address of each finding,
//! `--strict`, and exit status 0, 1 and 2 (an image that cannot be loaded lists every missing
//! import). Each image is a real PE the simulator's loader maps, built from C.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use xtask::samples;

struct Built {
    verifier: PathBuf,
    dir: PathBuf,
}

/// One build of the verifier and the samples for every test of this file.
fn built() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| {
        let verifier = samples::build_verifier().expect("build ndis-verify");
        samples::build().expect("build the samples");
        Built {
            verifier,
            dir: samples::out_dir(),
        }
    })
}

fn sample(name: &str) -> PathBuf {
    built().dir.join(format!("passthru-{name}.sys"))
}

/// Runs ndis-verify; returns the exit code and stdout.
fn run(args: &[&str], image: &Path) -> (i32, String) {
    let out = Command::new(&built().verifier)
        .args(args)
        .arg(image)
        .output()
        .expect("run ndis-verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn json(args: &[&str], image: &Path) -> (i32, Value) {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let (code, out) = run(&a, image);
    (
        code,
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")),
    )
}

#[test]
fn a_clean_filter_passes_with_every_field_of_the_report() {
    let (code, v) = json(&[], &sample("clean"));
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["loaded"], true);
    assert_eq!(v["missing_imports"], serde_json::json!([]));
    assert_eq!(v["ndis_version"], "6.50");
    assert_eq!(v["violations"], 0);
    assert_eq!(v["warnings"], 0);
    assert_eq!(v["rules_hit"], serde_json::json!([]));
    let names: Vec<&str> = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let battery: Vec<&str> = ndis_sim::verify::SCENARIOS.iter().map(|s| s.name).collect();
    assert_eq!(names, battery);
    // One scenario on request.
    let (_, one) = json(&["--scenario", "pause-restart"], &sample("clean"));
    assert_eq!(one["scenarios"].as_array().unwrap().len(), 1);
}

#[test]
fn the_seeds_writer_is_a_violation_located_in_the_driver() {
    let image = sample("wait-for-send-complete");
    let map = image.with_extension("map");
    let (code, v) = json(&["--map", map.to_str().unwrap()], &image);
    assert_eq!(code, 1);
    assert_eq!(v["rules_hit"], serde_json::json!(["K3"]));
    let device = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "control-device")
        .unwrap();
    let k3 = &device["violations"][0];
    assert_eq!(k3["rule"], "K3");
    assert!(k3["message"].as_str().unwrap().contains("NdisWaitEvent"), "{k3}");
    assert!(k3["rva"].as_u64().is_some(), "{k3}");
    // The write's dispatch routine waits (its helper is inlined into it).
    assert!(
        k3["function"].as_str().unwrap().starts_with("SampleDispatch+"),
        "{k3}"
    );
    assert!(
        k3["doc"]
            .as_str()
            .unwrap()
            .starts_with("https://learn.microsoft.com/"),
        "{k3}"
    );
    // Without the map, the function is the .pdata entry holding the address.
    let (_, bare) = json(&["--scenario", "control-device"], &image);
    let f = bare["scenarios"][0]["violations"][0]["function"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(f.starts_with("fn@0x"), "{f}");
    // The human report says the same.
    let (_, text) = run(
        &["--scenario", "control-device", "--map", map.to_str().unwrap()],
        &image,
    );
    assert!(text.contains("K3 (must) [DispatchWrite]"), "{text}");
    assert!(text.contains("(SampleDispatch+"), "{text}");
    assert!(text.contains("FAIL: "), "{text}");
}

#[test]
fn warnings_fail_only_with_strict() {
    let image = sample("accept-named-open");
    let (code, v) = json(&[], &image);
    assert_eq!(
        (code, v["violations"].as_u64(), v["rules_hit"].clone()),
        (0, Some(0), serde_json::json!(["D10"]))
    );
    assert_eq!(v["warnings"], 1);
    let (strict, _) = json(&["--strict"], &image);
    assert_eq!(strict, 1);
}

#[test]
fn an_image_that_cannot_load_lists_every_missing_import_and_exits_2() {
    let dir = built().dir.join("missing");
    std::fs::create_dir_all(&dir).unwrap();
    // A driver importing two functions the simulator does not have.
    std::fs::write(
        dir.join("missing.c"),
        "__declspec(dllimport) int NdisMRegisterMiniportDriver(void *, void *, void *, void **);\n\
         __declspec(dllimport) void NdisMSetPeriodicTimer(void *, unsigned);\n\
         long DriverEntry(void *d, void *p) { NdisMSetPeriodicTimer(d, 1); return NdisMRegisterMiniportDriver(d, p, 0, 0); }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("ndis.def"),
        "LIBRARY ndis.sys\nEXPORTS\n    NdisMRegisterMiniportDriver\n    NdisMSetPeriodicTimer\n",
    )
    .unwrap();
    let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
    ok(Command::new("llvm-dlltool").current_dir(&dir).args([
        "-m",
        "i386:x86-64",
        "-D",
        "ndis.sys",
        "-d",
        "ndis.def",
        "-l",
        "ndis.lib",
    ]));
    ok(Command::new("clang").current_dir(&dir).args([
        "--target=x86_64-pc-windows-msvc",
        "-O2",
        "-fno-stack-protector",
        "-c",
        "missing.c",
        "-o",
        "missing.obj",
    ]));
    ok(samples::link_driver(&dir.join("missing.sys"))
        .current_dir(&dir)
        .args(["missing.obj", "ndis.lib"]));
    let (code, v) = json(&[], &dir.join("missing.sys"));
    assert_eq!(code, 2);
    assert_eq!(v["loaded"], false);
    assert_eq!(
        v["missing_imports"],
        serde_json::json!([
            "ndis.sys!NdisMRegisterMiniportDriver",
            "ndis.sys!NdisMSetPeriodicTimer"
        ])
    );
    // Not an image at all; and a command line that is wrong.
    std::fs::write(dir.join("garbage.sys"), b"MZ not really").unwrap();
    assert_eq!(run(&[], &dir.join("garbage.sys")).0, 2);
    assert_eq!(run(&["--scenario", "no-such"], &sample("clean")).0, 2);
    assert_eq!(run(&["--seed"], Path::new("")).0, 2);
}

#[test]
fn the_sample_variants_break_exactly_their_expected_rules() {
    for (name, expected) in samples::expectations().unwrap() {
        let (_, v) = json(&[], &sample(&name));
        assert_eq!(samples::rules_hit(&v), expected, "{name}: {v:#}");
    }
}
