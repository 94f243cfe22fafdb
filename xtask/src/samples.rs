//! `cargo xtask verify-samples [--json]`: builds the C sample filters of
//! `crates/ndis-sim/samples` (one `.sys` per variant, with Debian's clang for
//! `x86_64-pc-windows-msvc`, lld-link, and import libraries llvm-dlltool makes from the
//! simulator's own export list), runs `ndis-verify --json` on each and on
//! `dist/x64/rxinject.sys`, and compares the rules each broke with the rules
//! `samples/expected.txt` says it must break. Exit status 0 only if every set matches.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::{Error, Result, cargo, root, run_cmd};

/// A sample to check: its name, image and the rules it must break (empty: none).
#[derive(Clone, Debug)]
pub struct Sample {
    pub name: String,
    pub image: PathBuf,
    pub expected: BTreeSet<String>,
    /// ndis-verify's options for it (`--hostile`).
    pub args: Vec<&'static str>,
}

/// The samples' directory.
pub fn samples_dir() -> PathBuf {
    root().join("crates/ndis-sim/samples")
}

/// Where the builds go.
pub fn out_dir() -> PathBuf {
    root().join("target/samples")
}

/// `expected.txt`: `variant: RULE RULE ...` per line (`#` comments); the variant `clean`
/// is the sample without a mistake.
pub fn expectations() -> Result<Vec<(String, BTreeSet<String>)>> {
    let path = samples_dir().join("expected.txt");
    let text =
        std::fs::read_to_string(&path).map_err(|e| Error::with(format!("read {}", path.display()), e))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (name, rules) = line
            .split_once(':')
            .ok_or_else(|| Error::new(format!("{}: `{line}` is not `variant: RULES`", path.display())))?;
        out.push((
            name.trim().to_string(),
            rules.split_whitespace().map(str::to_string).collect(),
        ));
    }
    Ok(out)
}

/// Writes `<module>.def` for each module of the simulator's exports and makes its import
/// library with llvm-dlltool.
fn import_libraries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut libs = Vec::new();
    for (module, base) in [("ndis.sys", "ndis"), ("ntoskrnl.exe", "ntoskrnl")] {
        let mut def = format!("LIBRARY {module}\nEXPORTS\n");
        let mut names: Vec<&str> = ndis_sim::image::loader_exports()
            .into_iter()
            .filter(|(m, _, _)| m.eq_ignore_ascii_case(module))
            .map(|(_, n, _)| n)
            .collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            def.push_str(&format!("    {n}\n"));
        }
        let def_path = dir.join(format!("{base}.def"));
        std::fs::write(&def_path, def)
            .map_err(|e| Error::with(format!("write {}", def_path.display()), e))?;
        let lib = dir.join(format!("{base}.lib"));
        run_cmd(
            &format!("llvm-dlltool for {module}"),
            Command::new("llvm-dlltool")
                .args(["-m", "i386:x86-64", "-D", module, "-d"])
                .arg(&def_path)
                .arg("-l")
                .arg(&lib),
        )?;
        libs.push(lib);
    }
    Ok(libs)
}

/// The preprocessor symbol of a variant (`return-twice` -> `SAMPLE_RETURN_TWICE`).
pub fn variant_macro(name: &str) -> String {
    format!("SAMPLE_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// lld-link making the kernel driver `out` (native subsystem, entry DriverEntry, no C
/// runtime); the objects, libraries and further options follow.
pub fn link_driver(out: &Path) -> Command {
    let mut link = Command::new("lld-link");
    link.args([
        "/nologo",
        "/driver",
        "/subsystem:native",
        "/entry:DriverEntry",
        "/nodefaultlib",
        "/machine:x64",
        "/dynamicbase",
        "/brepro",
    ])
    .arg(format!("/out:{}", out.display()));
    link
}

/// Builds every variant of `expected.txt`; returns them with their expectations.
pub fn build() -> Result<Vec<Sample>> {
    let dir = out_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::with(format!("create {}", dir.display()), e))?;
    let libs = import_libraries(&dir)?;
    let src = samples_dir().join("passthru.c");
    let mut samples = Vec::new();
    for (name, expected) in expectations()? {
        let obj = dir.join(format!("passthru-{name}.obj"));
        let image = dir.join(format!("passthru-{name}.sys"));
        let mut cc = Command::new("clang");
        cc.args([
            "--target=x86_64-pc-windows-msvc",
            "-O2",
            "-g0",
            "-ffreestanding",
            "-fno-stack-protector",
            "-fms-extensions",
            "-mno-stack-arg-probe",
            "-fno-builtin",
            // x64 kernel code carries unwind information (.pdata), as an MSVC build has.
            "-fasynchronous-unwind-tables",
            "-Wall",
            "-Werror",
            "-Wno-unused-function",
            "-D_WIN64",
            "-D_AMD64_",
        ]);
        if name != "clean" {
            cc.arg(format!("-D{}", variant_macro(&name)));
        }
        cc.arg("-I")
            .arg(root().join("crates/ndis-sys/c"))
            .arg("-I")
            .arg(samples_dir().join("include"))
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&obj);
        run_cmd(&format!("clang (sample {name})"), &mut cc)?;
        let mut link = link_driver(&image);
        link.arg(format!("/map:{}", image.with_extension("map").display()))
            .arg(&obj)
            .args(&libs);
        run_cmd(&format!("lld-link (sample {name})"), &mut link)?;
        samples.push(Sample {
            name,
            image,
            expected,
            args: Vec::new(),
        });
    }
    Ok(samples)
}

/// Runs ndis-verify (`target/release/ndis-verify`) on `image`; returns its JSON report.
pub fn verify(bin: &Path, image: &Path, extra: &[&str]) -> Result<Value> {
    let mut cmd = Command::new(bin);
    cmd.arg("--json").args(extra);
    let map = image.with_extension("map");
    if map.exists() {
        cmd.arg("--map").arg(&map);
    }
    cmd.arg(image);
    let out = cmd
        .output()
        .map_err(|e| Error::with(format!("run {}", bin.display()), e))?;
    if out.status.code() == Some(2) || out.status.code().is_none() {
        return Err(Error::new(format!(
            "ndis-verify could not check {}: {}{}",
            image.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::with(format!("ndis-verify's JSON for {}", image.display()), e))
}

/// The rule ids a report found.
pub fn rules_hit(report: &Value) -> BTreeSet<String> {
    report["rules_hit"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Builds ndis-verify in release mode; returns its path.
pub fn build_verifier() -> Result<PathBuf> {
    run_cmd(
        "cargo build --release -p ndis-sim --bin ndis-verify",
        cargo().args([
            "build",
            "--release",
            "-q",
            "-p",
            "ndis-sim",
            "--bin",
            "ndis-verify",
        ]),
    )?;
    Ok(root().join("target/release/ndis-verify"))
}

/// `cargo xtask verify-samples [--json]`.
pub fn run(json: bool) -> Result<()> {
    let bin = build_verifier()?;
    let mut samples = build()?;
    let shipped = root().join("dist/x64/rxinject.sys");
    if !shipped.exists() {
        crate::dist::run().map(|_| ())?;
    }
    samples.push(Sample {
        name: "rxinject".into(),
        image: shipped.clone(),
        expected: BTreeSet::new(),
        args: Vec::new(),
    });
    samples.push(Sample {
        name: "rxinject --hostile".into(),
        image: shipped,
        expected: BTreeSet::new(),
        args: vec!["--hostile"],
    });
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for s in &samples {
        let report = verify(&bin, &s.image, &s.args)?;
        let found = rules_hit(&report);
        if found != s.expected {
            failed.push(s.name.clone());
        }
        if !json {
            let mark = if found == s.expected { "ok  " } else { "FAIL" };
            println!(
                "{mark} {:<24} expected [{}] found [{}]",
                s.name,
                s.expected.iter().cloned().collect::<Vec<_>>().join(" "),
                found.iter().cloned().collect::<Vec<_>>().join(" ")
            );
            if found != s.expected {
                for v in report["scenarios"].as_array().into_iter().flatten() {
                    for f in v["violations"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain(v["warnings"].as_array().into_iter().flatten())
                    {
                        println!(
                            "       {} {}: {}",
                            v["name"].as_str().unwrap_or(""),
                            f["rule"].as_str().unwrap_or(""),
                            f["message"].as_str().unwrap_or("")
                        );
                    }
                }
            }
        }
        rows.push(json!({"sample": s.name, "expected": s.expected, "found": found}));
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&Value::Array(rows)).unwrap_or_default()
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "samples whose rules differ from what was expected: {}",
            failed.join(", ")
        )))
    }
}
