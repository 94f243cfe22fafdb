//! `cargo xtask fuzz [--seconds N] [--json] [TARGET...]`: runs each fuzz target (`fuzz/`, all
//! of `rxinject_fuzz::TARGETS` by default) for N seconds (default 60) under libFuzzer, on
//! the nightly toolchain with cargo-fuzz, and reports per target the executions, the
//! coverage (libFuzzer's `cov`: edges reached), the new corpus entries and the crashes.
//!
//! Each target starts from its seeds (`fuzz/corpus/<target>/`, read only) and the inputs
//! earlier runs found (`target/fuzz/corpus/<target>/`, where new ones go); a crash leaves its
//! input in `target/fuzz/artifacts/<target>/`. The command fails (exit 1) if any target
//! crashed; without nightly or cargo-fuzz it says what to install and exits 2.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::{Error, Result, root};

/// What one target's run gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetRun {
    pub name: String,
    pub seconds: u64,
    pub execs: u64,
    pub edges: u64,
    pub new_corpus: u64,
    pub crashes: u64,
    /// `bpf`: the first program of each kind that libpcap's validator accepts and ours
    /// refuses, as ours words the refusal (reported, not failed).
    pub refused_by_us_only: Vec<String>,
}

impl TargetRun {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "seconds": self.seconds,
            "execs": self.execs,
            "edges": self.edges,
            "new_corpus": self.new_corpus,
            "crashes": self.crashes,
            "refused_by_us_only": self.refused_by_us_only,
        })
    }
}

/// Parses the command line after `fuzz`: (seconds, json, targets).
pub fn parse_args(rest: &[String]) -> Result<(u64, bool, Vec<String>)> {
    let (mut seconds, mut json, mut targets) = (60u64, false, Vec::new());
    let mut args = rest.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|&s| s > 0)
                    .ok_or_else(|| Error::usage("--seconds takes a positive number"))?;
            }
            t if rxinject_fuzz::TARGETS.contains(&t) => targets.push(t.to_string()),
            other => {
                return Err(Error::usage(format!(
                    "fuzz takes --seconds N, --json and targets ({}), not {other:?}",
                    rxinject_fuzz::TARGETS.join(", ")
                )));
            }
        }
    }
    if targets.is_empty() {
        targets = rxinject_fuzz::TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Ok((seconds, json, targets))
}

fn fuzz_dir() -> PathBuf {
    root().join("fuzz")
}

/// Nightly and cargo-fuzz, or what to install.
fn check_tools() -> Result<()> {
    let ok = |c: &mut Command| c.output().is_ok_and(|o| o.status.success());
    if !ok(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])) {
        return Err(Error::usage(
            "cargo xtask fuzz needs the nightly toolchain: rustup toolchain install nightly",
        ));
    }
    if !ok(Command::new("cargo").args(["+nightly", "fuzz", "--version"])) {
        return Err(Error::usage(
            "cargo xtask fuzz needs cargo-fuzz: cargo install cargo-fuzz",
        ));
    }
    Ok(())
}

fn count_files(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| d.count() as u64)
}

/// libFuzzer's figures from its output: executions (`Done N runs`, or the last status
/// line's `#N`) and edges (the last `cov: N`).
pub fn parse_output(text: &str) -> (u64, u64) {
    let (mut execs, mut edges) = (0u64, 0u64);
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Done ") {
            if let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok()) {
                execs = n;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut words = rest.split_whitespace();
            if let Some(n) = words.next().and_then(|n| n.parse::<u64>().ok()) {
                execs = execs.max(n);
            }
            while let Some(w) = words.next() {
                if w == "cov:"
                    && let Some(n) = words.next().and_then(|n| n.parse().ok())
                {
                    edges = n;
                }
            }
        }
    }
    (execs, edges)
}

/// Runs one target for `seconds`.
fn run_target(name: &str, seconds: u64) -> Result<TargetRun> {
    let work = root().join("target").join("fuzz").join("corpus").join(name);
    let artifacts = root().join("target").join("fuzz").join("artifacts").join(name);
    for d in [&work, &artifacts] {
        std::fs::create_dir_all(d).map_err(|e| Error::with(format!("create {}", d.display()), e))?;
    }
    let before = (count_files(&work), count_files(&artifacts));
    let seeds = fuzz_dir().join("corpus").join(name);
    eprintln!("==> fuzz {name}: {seconds} s");
    let out = Command::new("cargo")
        .current_dir(fuzz_dir())
        .args(["+nightly", "fuzz", "run", "-O", "-a", name])
        .arg(&work)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .output()
        .map_err(|e| Error::with("run cargo fuzz", e))?;
    let text = String::from_utf8_lossy(&out.stderr);
    let (execs, edges) = parse_output(&text);
    let refused_by_us_only = refusals(&text);
    let crashes = count_files(&artifacts) - before.1;
    if !out.status.success() && crashes == 0 {
        return Err(Error::new(format!(
            "cargo fuzz run {name} failed without a crash input:\n{}",
            text.lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        )));
    }
    if crashes > 0 {
        // What the target said about it.
        for line in text
            .lines()
            .filter(|l| l.contains("panicked") || l.contains("ERROR:"))
        {
            eprintln!("    {line}");
        }
    }
    Ok(TargetRun {
        name: name.to_string(),
        seconds,
        execs,
        edges,
        new_corpus: count_files(&work).saturating_sub(before.0),
        crashes,
        refused_by_us_only,
    })
}

/// The `bpf` target's reports of programs only ours refuses, each once (libFuzzer's
/// workers and restarts may repeat them).
pub fn refusals(text: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(i) = line.find(rxinject_fuzz::REFUSED_BY_US_ONLY) {
            let what = line[i + rxinject_fuzz::REFUSED_BY_US_ONLY.len()..]
                .trim()
                .to_string();
            if !seen.contains(&what) {
                seen.push(what);
            }
        }
    }
    seen
}

/// `cargo xtask fuzz`.
pub fn run(rest: &[String]) -> Result<()> {
    let (seconds, json_out, targets) = parse_args(rest)?;
    check_tools()?;
    crate::run_cmd(
        "cargo +nightly fuzz build",
        Command::new("cargo")
            .current_dir(fuzz_dir())
            .args(["+nightly", "fuzz", "build", "-O", "-a"]),
    )?;
    let mut runs = Vec::new();
    for t in &targets {
        runs.push(run_target(t, seconds)?);
    }
    if json_out {
        let v = json!({ "targets": runs.iter().map(TargetRun::to_json).collect::<Vec<_>>() });
        println!("{}", serde_json::to_string_pretty(&v).expect("serialisable"));
    } else {
        println!(
            "{:<16} {:>8} {:>12} {:>8} {:>12} {:>8}",
            "target", "seconds", "execs", "edges", "new corpus", "crashes"
        );
        for r in &runs {
            println!(
                "{:<16} {:>8} {:>12} {:>8} {:>12} {:>8}",
                r.name, r.seconds, r.execs, r.edges, r.new_corpus, r.crashes
            );
        }
        for r in runs.iter().filter(|r| !r.refused_by_us_only.is_empty()) {
            println!(
                "{}: programs libpcap's bpf_validate accepts and ours refuses (reported, not failures):",
                r.name
            );
            for what in &r.refused_by_us_only {
                println!("  {what}");
            }
        }
    }
    let crashed: Vec<&str> = runs
        .iter()
        .filter(|r| r.crashes > 0)
        .map(|r| r.name.as_str())
        .collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "crashes in {}: the inputs are in target/fuzz/artifacts/<target>/ (replay one with cargo +nightly fuzz run <target> FILE; keep it in fuzz/corpus/<target>/ once fixed)",
            crashed.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libfuzzers_figures_are_read_from_its_output() {
        let text = "\
INFO: Seed: 1
#83\tINITED cov: 466 ft: 935 corp: 63/8757b exec/s: 0 rss: 42Mb
#110\tNEW    cov: 467 ft: 943 corp: 64/8977b lim: 381 exec/s: 0 rss: 43Mb L: 221/381
#3532674\tDONE   cov: 1088 ft: 2797 corp: 974/179Kb lim: 4096 exec/s: 113957 rss: 461Mb
Done 3532674 runs in 31 second(s)
";
        assert_eq!(parse_output(text), (3_532_674, 1088));
        assert_eq!(parse_output(""), (0, 0));
    }

    #[test]
    fn the_bpf_targets_reports_of_ours_only_refusals_are_listed_once_each() {
        let p = rxinject_fuzz::REFUSED_BY_US_ONLY;
        let text = format!(
            "#1\tINITED cov: 3\n{p}instruction 0: x\n#2 NEW\n{p}instruction 0: x\n{p}instruction 4: y\n"
        );
        assert_eq!(refusals(&text), vec!["instruction 0: x", "instruction 4: y"]);
        assert!(refusals("#1 INITED cov: 3").is_empty());
    }

    #[test]
    fn the_command_line_names_targets_and_seconds() {
        let args = |a: &[&str]| parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let (s, j, t) = args(&[]).unwrap();
        assert_eq!((s, j, t.len()), (60, false, rxinject_fuzz::TARGETS.len()));
        let (s, j, t) = args(&["--seconds", "30", "--json", "bpf"]).unwrap();
        assert_eq!((s, j, t), (30, true, vec!["bpf".to_string()]));
        for bad in [&["--seconds"][..], &["--seconds", "0"], &["no_such"]] {
            assert_eq!(args(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }
}
