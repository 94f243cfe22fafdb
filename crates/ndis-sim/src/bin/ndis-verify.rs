//! `ndis-verify`: checks any NDIS 6 lightweight filter driver image (`.sys`, x64) in the
//! simulator, as Driver Verifier and the NDIS tests would on Windows.
//!
//! ```text
//! ndis-verify [--json] [--strict] [--hostile] [--seed N] [--scenario NAME]... [--map FILE.map] DRIVER.sys
//! ```
//!
//! Loads the image (listing every import the simulator lacks), runs the battery of
//! `ndis_sim::verify::SCENARIOS` (each in a child process of its own, so that a driver that
//! crashes the machine ends only that scenario), and prints each violation (a documented
//! *must*) and warning (a *should*, an inference or a policy) with its rule, the message, the
//! page it comes from and where in the driver the call came from. Exit status: 0 without
//! violations (and, with `--strict`, without warnings), 1 with any, 2 when the image cannot
//! be loaded or the command line is wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use ndis_sim::verify::{Options, SCENARIOS, scenario};
use ndis_sim::{Image, LoadError, Rule, Violation};
use serde_json::{Value, json};

const USAGE: &str = "usage: ndis-verify [--json] [--strict] [--hostile] [--seed N] [--scenario NAME]... [--map FILE.map] DRIVER.sys";

struct Args {
    json: bool,
    strict: bool,
    options: Options,
    scenarios: Vec<String>,
    map: Option<PathBuf>,
    driver: PathBuf,
    /// Internal: run this one scenario and print its findings as JSON.
    child: Option<String>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        json: false,
        strict: false,
        options: Options {
            seed: 0x5eed,
            hostile: false,
        },
        scenarios: Vec::new(),
        map: None,
        driver: PathBuf::new(),
        child: None,
    };
    let mut driver = None;
    let mut it = args.iter();
    while let Some(x) = it.next() {
        match x.as_str() {
            "--json" => a.json = true,
            "--strict" => a.strict = true,
            "--hostile" => a.options.hostile = true,
            "--seed" => {
                let v = it.next().ok_or("--seed needs a number")?;
                a.options.seed = parse_number(v).ok_or_else(|| format!("--seed {v}: not a number"))?;
            }
            "--scenario" => {
                let v = it.next().ok_or("--scenario needs a name")?;
                if scenario(v).is_none() {
                    let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
                    return Err(format!(
                        "no scenario {v:?}; the battery has: {}",
                        names.join(", ")
                    ));
                }
                a.scenarios.push(v.clone());
            }
            "--map" => a.map = Some(it.next().ok_or("--map needs a file")?.into()),
            "--child" => a.child = Some(it.next().ok_or("--child needs a scenario")?.clone()),
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => {
                if driver.replace(PathBuf::from(s)).is_some() {
                    return Err("one DRIVER.sys only".into());
                }
            }
        }
    }
    a.driver = driver.ok_or("no DRIVER.sys given")?;
    Ok(a)
}

fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            if e.is_empty() {
                println!("{USAGE}");
                print_battery();
                return ExitCode::SUCCESS;
            }
            eprintln!("ndis-verify: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match &args.child {
        Some(name) => child(&args, name),
        None => parent(&args),
    }
}

fn print_battery() {
    println!("\nscenarios:");
    for s in SCENARIOS {
        println!("  {:<16} {}", s.name, s.what);
    }
}

/// Runs one scenario in this process; prints its findings as one JSON object.
fn child(args: &Args, name: &str) -> ExitCode {
    let Some(s) = scenario(name) else {
        return ExitCode::from(2);
    };
    match s.run(&args.driver, &args.options) {
        Ok(out) => {
            let findings: Vec<Value> = out.findings.iter().map(finding_json).collect();
            let v = json!({
                "name": name,
                "ndis_version": out.ndis_version.map(|(a, b)| format!("{a}.{b}")),
                "findings": findings,
            });
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ndis-verify: {e}");
            ExitCode::from(2)
        }
    }
}

fn finding_json(v: &Violation) -> Value {
    json!({
        "rule": v.rule.id(),
        "context": v.context,
        "message": v.message,
        "rva": v.rva,
    })
}

/// Function names from a linker map (`Publics by Value`: `0001:000004b0  Name  Rva+Base`).
struct Symbols(Vec<(u64, String)>);

impl Symbols {
    fn load(path: &Path) -> Result<Symbols, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut base = None;
        let mut syms = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("Preferred load address is ") {
                base = u64::from_str_radix(rest.trim(), 16).ok();
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 3
                && f[0].len() == 13
                && f[0].as_bytes()[4] == b':'
                && f[2].len() == 16
                && let (Some(b), Ok(addr)) = (base, u64::from_str_radix(f[2], 16))
                && addr >= b
            {
                syms.push((addr - b, f[1].to_string()));
            }
        }
        syms.sort();
        Ok(Symbols(syms))
    }

    /// `name+0xoff` for an RVA.
    fn name(&self, rva: u64) -> Option<String> {
        let i = self.0.partition_point(|s| s.0 <= rva);
        let (start, name) = self.0.get(i.checked_sub(1)?)?;
        Some(if rva == *start {
            name.clone()
        } else {
            format!("{name}+{:#x}", rva - start)
        })
    }
}

struct ScenarioReport {
    name: String,
    violations: Vec<Value>,
    warnings: Vec<Value>,
}

fn parent(args: &Args) -> ExitCode {
    let image = match Image::load(&args.driver) {
        Ok(i) => i,
        Err(e) => {
            let missing: Vec<String> = match &e {
                LoadError::MissingImports(m) => m.iter().map(|(d, f)| format!("{d}!{f}")).collect(),
                _ => Vec::new(),
            };
            if args.json {
                let v = json!({
                    "driver": args.driver.display().to_string(),
                    "loaded": false,
                    "error": e.to_string(),
                    "missing_imports": missing,
                    "ndis_version": null,
                    "scenarios": [],
                    "violations": 0,
                    "warnings": 0,
                    "rules_hit": [],
                });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                eprintln!("ndis-verify: {} cannot be loaded: {e}", args.driver.display());
                for m in &missing {
                    eprintln!("  missing import {m}");
                }
            }
            return ExitCode::from(2);
        }
    };
    let symbols = match args.map.as_deref().map(Symbols::load).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ndis-verify: --map {e}");
            return ExitCode::from(2);
        }
    };
    let where_in = |rva: Option<u64>| -> Value {
        let Some(rva) = rva else { return Value::Null };
        let by_map = symbols.as_ref().and_then(|s| s.name(rva));
        let by_pdata = image
            .function_at(rva as u32)
            .map(|(start, _)| format!("fn@{start:#x}+{:#x}", rva - u64::from(start)));
        by_map.or(by_pdata).map_or(Value::Null, Value::String)
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ndis-verify"));
    let names: Vec<&str> = if args.scenarios.is_empty() {
        SCENARIOS.iter().map(|s| s.name).collect()
    } else {
        args.scenarios.iter().map(String::as_str).collect()
    };
    if !args.json {
        println!(
            "ndis-verify: {} ({} bytes mapped, {} imports bound){}",
            args.driver.display(),
            image.size(),
            image.imports().len(),
            if args.options.hostile { ", hostile" } else { "" }
        );
    }
    let mut ndis_version: Option<String> = None;
    let mut reports = Vec::new();
    let mut rules_hit: BTreeSet<String> = BTreeSet::new();
    for name in names {
        let mut cmd = Command::new(&exe);
        cmd.arg("--child")
            .arg(name)
            .arg("--seed")
            .arg(args.options.seed.to_string());
        if args.options.hostile {
            cmd.arg("--hostile");
        }
        cmd.arg(&args.driver);
        let out = match cmd.output() {
            Ok(o) => o,
            Err(e) => {
                eprintln!("ndis-verify: cannot run {}: {e}", exe.display());
                return ExitCode::from(2);
            }
        };
        let mut rep = ScenarioReport {
            name: name.to_string(),
            violations: Vec::new(),
            warnings: Vec::new(),
        };
        let parsed: Option<Value> = out
            .status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten();
        match parsed {
            Some(v) => {
                if ndis_version.is_none() {
                    ndis_version = v["ndis_version"].as_str().map(str::to_string);
                }
                for f in v["findings"].as_array().into_iter().flatten() {
                    let id = f["rule"].as_str().unwrap_or("");
                    let Some(rule) = Rule::ALL.iter().copied().find(|r| r.id() == id) else {
                        continue;
                    };
                    rules_hit.insert(id.to_string());
                    let rva = f["rva"].as_u64();
                    let entry = json!({
                        "rule": id,
                        "severity": rule.severity().name(),
                        "context": f["context"],
                        "message": f["message"],
                        "rva": rva,
                        "function": where_in(rva),
                        "doc": rule.url(),
                    });
                    if rule.severity().is_violation() {
                        rep.violations.push(entry);
                    } else {
                        rep.warnings.push(entry);
                    }
                }
            }
            None => {
                // The machine stopped: a bug check, a crash of the driver, or a hang the
                // simulator ended.
                let stderr = String::from_utf8_lossy(&out.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
                let msg = format!(
                    "the machine stopped ({}): {}",
                    out.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                );
                rules_hit.insert("crash".into());
                rep.violations.push(json!({"rule": "crash", "severity": "must", "context": name, "message": msg, "rva": null, "function": null, "doc": null}));
            }
        }
        reports.push(rep);
    }
    let violations: usize = reports.iter().map(|r| r.violations.len()).sum();
    let warnings: usize = reports.iter().map(|r| r.warnings.len()).sum();
    let failed = violations > 0 || (args.strict && warnings > 0);
    if args.json {
        let v = json!({
            "driver": args.driver.display().to_string(),
            "loaded": true,
            "missing_imports": [],
            "ndis_version": ndis_version,
            "hostile": args.options.hostile,
            "seed": args.options.seed,
            "scenarios": reports.iter().map(|r| json!({"name": r.name, "violations": r.violations, "warnings": r.warnings})).collect::<Vec<_>>(),
            "violations": violations,
            "warnings": warnings,
            "rules_hit": rules_hit,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!(
            "  registered NDIS {}",
            ndis_version.as_deref().unwrap_or("(did not register)")
        );
        let mut per_rule: BTreeMap<String, usize> = BTreeMap::new();
        for r in &reports {
            let n = r.violations.len() + r.warnings.len();
            println!(
                "  {:<16} {}",
                r.name,
                if n == 0 {
                    "clean".to_string()
                } else {
                    format!(
                        "{} violation(s), {} warning(s)",
                        r.violations.len(),
                        r.warnings.len()
                    )
                }
            );
            for f in r.violations.iter().chain(&r.warnings) {
                let rule = f["rule"].as_str().unwrap_or("");
                *per_rule.entry(rule.to_string()).or_default() += 1;
                println!(
                    "    {rule} ({}) [{}] {}",
                    f["severity"].as_str().unwrap_or(""),
                    f["context"].as_str().unwrap_or(""),
                    f["message"].as_str().unwrap_or("")
                );
                if let Some(rva) = f["rva"].as_u64() {
                    println!(
                        "        at rva {rva:#x}{}",
                        f["function"]
                            .as_str()
                            .map(|s| format!(" ({s})"))
                            .unwrap_or_default()
                    );
                }
                if let Some(doc) = f["doc"].as_str() {
                    println!("        {doc}");
                }
            }
        }
        println!(
            "{}: {violations} violation(s), {warnings} warning(s){}",
            if failed { "FAIL" } else { "PASS" },
            if per_rule.is_empty() {
                String::new()
            } else {
                format!(
                    "; rules: {}",
                    per_rule
                        .iter()
                        .map(|(r, n)| format!("{r}×{n}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            }
        );
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
