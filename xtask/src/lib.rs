//! rxinject's orchestration tool. Commands (run from anywhere in the repository):
//!
//! - `cargo xtask demo [--json] [--driver FILE.sys]`: the main job. Loads the driver into the NDIS simulator and
//!   runs the seed's scenario through its control device: an ARP request and an ICMP echo
//!   request injected into the Rx path (the simulated host answers on the wire), 10,000
//!   frames injected each way in batched writes with foreign traffic mixed in, a pause with
//!   writes in flight, unload; prints what happened with every rule violation and leak. Exit
//!   status 1 if anything is wrong. With `--driver`, the driver runs from that image (e.g.
//!   `dist/x64/rxinject.sys`), mapped by the simulator's loader.
//! - `cargo xtask bench [--json] [--quick]`: what each frame costs in the shipped `.sys`
//!   (callgrind instruction counts and wall time; `docs/PERFORMANCE.md`).
//! - `cargo xtask dist`: builds `dist/x64/rxinject.sys` (cross-compiled with rust-lld) and
//!   `dist/x64/rxinject.inf`, and checks the binary.
//! - `cargo xtask test`: everything CI checks: formatting, clippy for the host and for
//!   `x86_64-pc-windows-msvc`, the `.sys` build and its checks, every test (the demo's among
//!   them), the driver's scenarios again on the shipped `.sys`, and the docs.
//! - `cargo xtask fuzz [--seconds N] [--json] [TARGET...]`: the fuzz targets (`fuzz/`) under
//!   libFuzzer, N seconds each (nightly and cargo-fuzz; see `fuzz.rs`).
//! - `cargo xtask setup`: installs what the above need (rustup target and components; Debian
//!   packages gcc and libwine-dev when run as root).

// serde_json's json! macro recurses once per field; the demo's summary has many.
#![recursion_limit = "256"]

pub mod bench;
pub mod bench_bpf;
#[cfg(target_os = "linux")]
pub mod bench_linux;
pub mod demo;
pub mod demo_hostile;
pub mod dist;
pub mod fuzz;
pub mod inf;
pub mod pe;
pub mod samples;
pub mod setup;
pub mod test;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An error of an xtask command, with an optional cause.
#[derive(Debug)]
pub struct Error {
    message: String,
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    usage: bool,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            cause: None,
            usage: false,
        }
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error {
            usage: true,
            ..Error::new(message)
        }
    }

    pub fn with(message: impl Into<String>, cause: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error {
            message: message.into(),
            cause: Some(Box::new(cause)),
            usage: false,
        }
    }

    /// 2 for a usage error, 1 for a failure.
    pub fn exit_code(&self) -> u8 {
        if self.usage { 2 } else { 1 }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

const HELP: &str = "\
usage: cargo xtask <command>

commands:
  demo [--json] [--hostile] [--driver FILE.sys]
                  the seed's scenario in the NDIS simulator: ARP and ICMP echo injected
                  into the Rx path (the host answers on the wire), 10,000 frames each
                  way in batched writes, a pause with writes in flight, unload; print a
                  summary (exit 1 on a lost frame, a pending write, a violation or a leak);
                  --driver runs a .sys image (e.g. dist/x64/rxinject.sys) instead of the
                  driver compiled for this host
  bench [--json] [--quick] [--only SCENARIO,...]
                  what each frame costs in dist/x64/rxinject.sys: instructions (callgrind)
                  and wall time, pass-through, capture, injection, BPF against libpcap
                  (docs/PERFORMANCE.md); --only: the named scenarios' figures alone
  fuzz [--seconds N] [--json] [TARGET...]
                  the fuzz targets (fuzz/: write_parse, ioctl_inputs, bpf, pcap_read,
                  pcapng_read, device_sequence) under libFuzzer, N seconds each (default
                  60): executions, edges, new corpus entries, crashes (nightly and
                  cargo-fuzz; exit 2 without them, 1 on a crash)
  bench-linux [--json] [--frames N]
                  (Linux, root) Rx injection of 64-byte frames into a veth in a fresh
                  network namespace, delivered to the stack: rxinject against tcpreplay
                  through tc mirred, and tcpreplay on rxinject link's companion, in one
                  run (docs/PERFORMANCE.md); N frames each (default 500,000)
  dist            build dist/x64/rxinject.sys and rxinject.inf and check the binary
  test            fmt, clippy (host and Windows target), dist, all tests (the demo's
                  among them), the driver's scenarios again on the shipped .sys, docs
  verify-samples [--json]
                  build the C sample filters (crates/ndis-sim/samples: a clean
                  pass-through LWF and one variant per classic mistake), run ndis-verify
                  on each and on dist/x64/rxinject.sys, and check that each breaks exactly
                  the rules samples/expected.txt lists (exit 1 otherwise)
  build-samples   only build the samples' .sys files (target/samples)
  setup           install the rustup target/components and the Debian packages needed
  sample-pcap F   write a small sample capture to F (to try `rxinject --sim send/capture`)
  help            this text
";

/// Runs the command in `args`.
pub fn run(args: &[String]) -> Result<()> {
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    match cmd {
        "demo" => {
            let (mut json, mut hostile) = (false, false);
            let mut driver = ndis_sim::Driver::Linked(rxinject::DriverEntry);
            let mut args = rest.iter();
            while let Some(a) = args.next() {
                match a.as_str() {
                    "--json" => json = true,
                    "--hostile" => hostile = true,
                    "--driver" => match args.next() {
                        Some(path) => driver = ndis_sim::Driver::Image(path.into()),
                        None => {
                            return Err(Error::usage(
                                "--driver needs a .sys file (e.g. dist/x64/rxinject.sys)",
                            ));
                        }
                    },
                    other => {
                        return Err(Error::usage(format!(
                            "demo takes --json, --hostile and --driver FILE.sys, not {other:?}"
                        )));
                    }
                }
            }
            if hostile {
                demo_hostile::run(json, &driver)
            } else {
                demo::run(json, &driver)
            }
        }
        "bench" => {
            let (mut json, mut quick, mut only) = (false, false, None::<Vec<String>>);
            let mut args = rest.iter();
            while let Some(a) = args.next() {
                match a.as_str() {
                    "--json" => json = true,
                    "--quick" => quick = true,
                    "--only" => match args.next() {
                        Some(list) => only = Some(list.split(',').map(str::to_string).collect()),
                        None => return Err(Error::usage("--only takes a list of scenarios")),
                    },
                    other => {
                        return Err(Error::usage(format!(
                            "bench takes --json, --quick and --only SCENARIO,..., not {other:?}"
                        )));
                    }
                }
            }
            match only {
                Some(list) => bench::run_only(&list, quick),
                None => bench::run(json, quick),
            }
        }
        "dist" => no_args(cmd, rest).and_then(|_| dist::run().map(|_| ())),
        "test" => no_args(cmd, rest).and_then(|_| test::run()),
        "fuzz" => fuzz::run(rest),
        #[cfg(target_os = "linux")]
        "bench-linux" => {
            let (mut json, mut frames) = (false, 500_000u64);
            let mut args = rest.iter();
            while let Some(a) = args.next() {
                match a.as_str() {
                    "--json" => json = true,
                    "--frames" => match args.next().and_then(|n| n.parse().ok()) {
                        Some(n) => frames = n,
                        None => return Err(Error::usage("--frames takes a number")),
                    },
                    other => {
                        return Err(Error::usage(format!(
                            "bench-linux takes --json and --frames N, not {other:?}"
                        )));
                    }
                }
            }
            bench_linux::run(json, frames)
        }
        "setup" => no_args(cmd, rest).and_then(|_| setup::run()),
        "verify-samples" => match rest {
            [] => samples::run(false),
            [j] if j == "--json" => samples::run(true),
            _ => Err(Error::usage(format!("verify-samples takes --json, not {rest:?}"))),
        },
        "build-samples" => no_args(cmd, rest).and_then(|_| {
            for s in samples::build()? {
                println!("{}", s.image.display());
            }
            Ok(())
        }),
        "sample-pcap" => match rest {
            [path] => sample_pcap(Path::new(path)),
            _ => Err(Error::usage(
                "sample-pcap takes one argument: the pcap file to write",
            )),
        },
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(Error::usage(format!("unknown command `{other}`\n\n{HELP}"))),
    }
}

/// `cargo xtask sample-pcap FILE`: writes a small capture of the traffic a segment with the
/// simulator's `sim0` on it would carry (ARP and pings for the host, UDP echo, DNS, a TCP SYN,
/// IPv6, a VLAN, a broadcast, a full-size frame), to try the `rxinject` command with.
pub fn sample_pcap(path: &Path) -> Result<()> {
    let a = ndis_sim::AdapterConfig::ethernet(0);
    let frames = ndis_sim::packets::sample_traffic(a.mac, a.host_ip);
    let list: Vec<(i128, &[u8])> = frames.iter().map(|(t, f)| (*t, f.as_slice())).collect();
    rxinject_user::pcap::write_pcap(path, &list)
        .map_err(|e| Error::with(format!("cannot write {}", path.display()), e))?;
    eprintln!("==> {}: {} frames", path.display(), frames.len());
    Ok(())
}

fn no_args(cmd: &str, rest: &[String]) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::usage(format!("`{cmd}` takes no arguments (got {rest:?})")))
    }
}

/// The repository root (the workspace containing xtask).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository root")
        .to_path_buf()
}

/// `cargo`, as the running cargo (or the one on PATH).
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs a command, echoing it, and fails with its exit status.
pub fn run_cmd(what: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {what}");
    let status = cmd
        .status()
        .map_err(|e| Error::with(format!("could not start: {what}"), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::new(format!("failed ({status}): {what}")))
    }
}
