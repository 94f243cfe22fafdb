//! `rxinject`: list adapters, replay capture files into the Rx path (up to the host stack) or
//! the Tx path (down to the wire), capture both directions to pcapng, read counters; against
//! the installed driver (Windows) or the simulator (`--sim`).
//!
//! Exit status: 0 on success, 1 on a runtime failure (printed with what to do), 2 on a usage
//! error.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use rxinject_user::abi::capture::{self as cap, CaptureConfig};
use rxinject_user::abi::write::{Batch, DIR_DEFAULT};
use rxinject_user::abi::{self, MAX_FRAMES_PER_WRITE, MAX_WRITE_BYTES};
use rxinject_user::pcap::{self, Direction as PcapDirection, PcapNgWriter};
use rxinject_user::replay::{self, Pace};
use rxinject_user::{Driver, Error, SimOptions, Target, decode, filter, status_name};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "rxinject",
    version,
    about = "Inject frames into a Windows adapter's Rx path (up to the host stack) or Tx path (down to the wire), and capture both directions",
    after_help = "Examples (on the simulator; drop --sim on Windows, as administrator):\n  rxinject --sim adapters\n  rxinject --sim send -i sim0 --rx capture.pcap\n  rxinject --sim --sim-wire capture.pcap capture -i sim0 -w out.pcapng icmp\n  rxinject --sim stats -i sim0"
)]
struct Cli {
    /// Run against the simulator (the driver's code in this process, adapter `sim0`) instead
    /// of the installed driver.
    #[arg(long, global = true)]
    sim: bool,
    /// With --sim: the simulated wire plays this capture file inbound while the command runs.
    #[arg(long, global = true, value_name = "FILE", requires = "sim")]
    sim_wire: Option<PathBuf>,
    /// With --sim: at the end, write what reached the simulated host stack to this pcap file.
    #[arg(long, global = true, value_name = "FILE", requires = "sim")]
    sim_stack_out: Option<PathBuf>,
    /// With --sim: at the end, write what reached the simulated wire to this pcap file.
    #[arg(long, global = true, value_name = "FILE", requires = "sim")]
    sim_wire_out: Option<PathBuf>,
    /// With --sim: run this driver image (e.g. dist/x64/rxinject.sys, the bytes Windows
    /// users install) instead of the driver compiled into this program.
    #[arg(long, global = true, value_name = "FILE.sys", env = "RXINJECT_DRIVER")]
    sim_driver: Option<PathBuf>,
    /// The longest wait between two frames replayed with their file's timing (send, and
    /// the simulated wire), in seconds: a capture whose clock jumps by decades plays its
    /// real gaps only. A step back in time is no wait.
    #[arg(long, global = true, value_name = "SECONDS", value_parser = non_negative)]
    max_sleep: Option<f64>,
    /// Print a machine-readable JSON summary.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the adapters rxinject is attached to.
    Adapters,
    /// Inject frames: replay capture files (pcap, pcapng), or one frame given in hex.
    Send(SendArgs),
    /// Capture both directions, to the terminal or to a pcapng file.
    Capture(CaptureArgs),
    /// Show an adapter's counters.
    Stats(StatsArgs),
    /// A simulated Windows that several processes share (`sim serve`, `sim status`,
    /// `sim stop`).
    #[cfg(not(windows))]
    #[command(subcommand)]
    Sim(SimCommand),
    /// Linux: create a companion interface (a veth pair) whose traffic arrives on IFACE as
    /// received: any tool (tcpreplay, nping, scapy) sending on the companion injects into
    /// IFACE's receive path. It stays until `rxinject unlink`.
    #[cfg(target_os = "linux")]
    Link(LinkArgs),
    /// Linux: remove a companion interface made by `rxinject link`.
    #[cfg(target_os = "linux")]
    Unlink(UnlinkArgs),
}

#[cfg(target_os = "linux")]
#[derive(Args)]
struct LinkArgs {
    /// The interface whose receive path the companion feeds: its name or index.
    #[arg(value_name = "IFACE")]
    interface: String,
    /// The companion's name (default: rx-IFACE, cut to 15 bytes).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

#[cfg(target_os = "linux")]
#[derive(Args)]
struct UnlinkArgs {
    /// The companion interface (`rx-IFACE` by default).
    #[arg(value_name = "NAME")]
    name: String,
}

#[cfg(not(windows))]
#[derive(Subcommand)]
enum SimCommand {
    /// Host one simulated Windows (the driver, NDIS, adapter sim0 with its host stack, and
    /// the wire) for every `--sim` client that names it in RXINJECT_SIM, until `sim stop`.
    /// Prints `RXINJECT_SIM=ADDRESS` first.
    Serve(ServeArgs),
    /// Show what a running simulator counts: connections, handles, outstanding requests,
    /// injected frames delivered, violations.
    Status(SimAddressArgs),
    /// Stop a running simulator: it closes every handle, unloads the driver and prints its
    /// report (exit status 1 if the driver broke a rule or leaked).
    Stop(SimAddressArgs),
}

#[cfg(not(windows))]
#[derive(Args)]
struct ServeArgs {
    /// Listen on this Unix socket (default: $XDG_RUNTIME_DIR/rxinject-sim.sock).
    #[arg(long, value_name = "PATH", conflicts_with = "listen")]
    socket: Option<PathBuf>,
    /// Listen on TCP, on loopback only (for programs running under Wine); port 0 picks one.
    #[arg(long, value_name = "127.0.0.1:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// The simulated wire plays this capture file inbound, with its timing, from the start.
    #[arg(long, value_name = "FILE")]
    wire: Option<PathBuf>,
    /// At the end, write what reached the simulated host stack to this pcap file.
    #[arg(long, value_name = "FILE")]
    stack_out: Option<PathBuf>,
    /// At the end, write what reached the simulated wire to this pcap file.
    #[arg(long, value_name = "FILE")]
    wire_out: Option<PathBuf>,
    /// Run this driver image (e.g. dist/x64/rxinject.sys) instead of the driver compiled
    /// into this program (also RXINJECT_DRIVER).
    #[arg(long, value_name = "FILE.sys")]
    driver: Option<PathBuf>,
    /// A hostile host stack that keeps the receive frames it is given until the adapter
    /// pauses (as IP reassembly or a vSwitch may): Rx writes stay pending, as the seed's did.
    #[arg(long)]
    hold_receives: bool,
    /// Say nothing of clients coming and going.
    #[arg(short, long)]
    quiet: bool,
}

#[cfg(not(windows))]
#[derive(Args)]
struct SimAddressArgs {
    /// The server's Unix socket or 127.0.0.1:PORT (default: RXINJECT_SIM, else the default
    /// socket).
    #[arg(value_name = "ADDRESS")]
    address: Option<String>,
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("\"{s}\" is not a number of seconds")),
    }
}

fn max_gap(cli: &Cli) -> Option<Duration> {
    cli.max_sleep.map(Duration::from_secs_f64)
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("\"{s}\" is not a positive number")),
    }
}

#[derive(Args)]
struct SendArgs {
    /// The adapter: its index, name, GUID, or `sim0` with --sim (see `rxinject adapters`).
    #[arg(short = 'i', long = "interface", value_name = "ADAPTER")]
    adapter: String,
    /// Up into the host stack, as if the frames arrived from the network.
    #[arg(long, conflicts_with = "tx")]
    rx: bool,
    /// Down to the wire (the default).
    #[arg(long)]
    tx: bool,
    /// Send at most this many frames in all.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Play the files this many times.
    #[arg(long = "loop", value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    loops: u32,
    /// Send at this many frames per second.
    #[arg(long, value_name = "N", value_parser = positive, group = "pace")]
    pps: Option<f64>,
    /// Send at this many megabits per second.
    #[arg(long, value_name = "N", value_parser = positive, group = "pace")]
    mbps: Option<f64>,
    /// Keep the file's timing, this many times faster.
    #[arg(long, value_name = "X", value_parser = positive, group = "pace")]
    multiplier: Option<f64>,
    /// As fast as the driver takes them.
    #[arg(long, group = "pace")]
    topspeed: bool,
    /// One frame, in hexadecimal (separators `:`, `-` and spaces are ignored).
    #[arg(
        long,
        value_name = "HEX",
        conflicts_with = "files",
        required_unless_present = "files"
    )]
    hex: Option<String>,
    /// Refuse the whole input, before sending anything, if one frame cannot be sent (larger
    /// than the adapter takes, or shorter than an Ethernet header). Without it such frames
    /// are skipped and counted.
    #[arg(long)]
    strict: bool,
    /// Truncate frames larger than the adapter takes to its largest frame, and send them
    /// (tcpreplay's --mtu-trunc). Runts are still skipped.
    #[arg(long = "mtu-trunc", conflicts_with = "strict")]
    mtu_trunc: bool,
    /// Capture files to replay (Ethernet link type).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// Frames of the input the adapter cannot take, skipped (or truncated) rather than sent.
#[derive(Default)]
struct Skipped {
    oversize: u64,
    runt: u64,
    truncated: u64,
    /// The first one, for the warning and the error.
    first: Option<String>,
}

impl Skipped {
    fn total(&self) -> u64 {
        self.oversize + self.runt
    }

    fn note(&mut self, e: Error) {
        if self.first.is_none() {
            self.first = Some(e.to_string());
        }
    }
}

/// Checks every frame before sending any: frames the adapter cannot take fail the run with
/// `--strict`, are truncated (oversize, with `--mtu-trunc`), or are skipped and counted.
fn admit(sources: &mut [(String, Vec<Item>)], max: usize, args: &SendArgs) -> Result<Skipped, Failure> {
    let mut skipped = Skipped::default();
    for (name, items) in sources.iter_mut() {
        let mut index = 0usize;
        items.retain_mut(|it| {
            index += 1;
            let limit = if is_tagged(&it.data) { max + 4 } else { max };
            let problem = if it.data.len() > limit {
                if args.mtu_trunc {
                    it.data.truncate(limit);
                    skipped.truncated += 1;
                    return true;
                }
                skipped.oversize += 1;
                Error::FrameTooLarge {
                    source: name.clone(),
                    index,
                    len: it.data.len(),
                    max,
                }
            } else if it.data.len() < 14 {
                skipped.runt += 1;
                Error::FrameTooShort {
                    source: name.clone(),
                    index,
                    len: it.data.len(),
                }
            } else {
                return true;
            };
            skipped.note(problem);
            false
        });
    }
    if args.strict && skipped.total() > 0 {
        return Err(Failure::Partial(format!(
            "{} (--strict: nothing was sent)",
            skipped.first.clone().unwrap_or_default()
        )));
    }
    if skipped.total() > 0 && sources.iter().all(|(_, items)| items.is_empty()) {
        return Err(Failure::Partial(format!(
            "no frame of the input can be sent: {} oversize, {} runt(s); first: {}",
            skipped.oversize,
            skipped.runt,
            skipped.first.clone().unwrap_or_default()
        )));
    }
    if let Some(first) = &skipped.first {
        eprintln!(
            "rxinject: warning: skipping frames the adapter cannot take ({first}); the summary counts them"
        );
    }
    Ok(skipped)
}

#[derive(Clone, Copy, ValueEnum)]
enum Dir {
    In,
    Out,
    Inout,
}

#[derive(Args)]
struct CaptureArgs {
    /// The adapter: its index, name, GUID, or `sim0` with --sim.
    #[arg(short = 'i', long = "interface", value_name = "ADAPTER")]
    adapter: String,
    /// Write a pcapng file instead of printing.
    #[arg(short = 'w', value_name = "FILE.pcapng")]
    write: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(short = 'c', value_name = "N")]
    count: Option<u64>,
    /// Stop after this many seconds (simulated seconds with --sim).
    #[arg(long, value_name = "S", value_parser = positive)]
    duration: Option<f64>,
    /// Which direction: into the host (in), out to the wire (out), or both.
    #[arg(short = 'Q', value_enum, default_value = "inout")]
    direction: Dir,
    /// Leave out the frames rxinject injected.
    #[arg(long)]
    no_injected: bool,
    /// Do not put the adapter in promiscuous mode (by default it is, for this capture only,
    /// as tcpdump does): only frames for this host and broadcast/multicast are seen.
    #[arg(short = 'p', long = "no-promiscuous")]
    no_promiscuous: bool,
    /// Keep at most this many bytes of each frame (0: all).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=65535))]
    snaplen: u32,
    /// A BPF program in `tcpdump -ddd` (or `-dd`) output format, instead of an expression.
    #[arg(long, value_name = "F", conflicts_with = "filter")]
    bpf_file: Option<PathBuf>,
    /// A tcpdump filter expression (compiled with libpcap).
    #[arg(value_name = "FILTER")]
    filter: Vec<String>,
}

#[derive(Args)]
struct StatsArgs {
    /// The adapter: its index, name, GUID, or `sim0` with --sim.
    #[arg(short = 'i', long = "interface", value_name = "ADAPTER")]
    adapter: String,
}

/// Why the command failed.
enum Failure {
    Usage(String),
    Runtime(Error),
    /// The command ran but some of its work failed (the summary says what).
    Partial(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Runtime(e)
    }
}

fn main() -> ExitCode {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let cli = match parsed {
        Ok((cli, m)) => {
            let from_cli = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
            // A shared simulator's wire, dumps and driver are its own.
            #[cfg(any(not(windows), feature = "sim-client"))]
            if cli.sim
                && shared_sim()
                && ["sim_wire", "sim_stack_out", "sim_wire_out", "sim_driver"]
                    .iter()
                    .any(|id| from_cli(id))
            {
                eprintln!(
                    "rxinject: {} names a shared simulator: --sim-wire, --sim-stack-out, --sim-wire-out and --sim-driver are its options (rxinject sim serve --wire FILE --stack-out FILE --wire-out FILE --driver FILE.sys)\n\nFor more information, try '--help'.",
                    rxinject_user::remote::ENV
                );
                return ExitCode::from(2);
            }
            // RXINJECT_DRIVER only matters with --sim; the flag itself means nothing without.
            if !cli.sim && from_cli("sim_driver") {
                eprintln!(
                    "rxinject: --sim-driver needs --sim (it names the driver the simulator runs)\n\nFor more information, try '--help'."
                );
                return ExitCode::from(2);
            }
            cli
        }
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("rxinject: {m}\n\nFor more information, try '--help'.");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("rxinject: error: {e}");
            ExitCode::from(1)
        }
        Err(Failure::Partial(m)) => {
            eprintln!("rxinject: {m}");
            ExitCode::from(1)
        }
    }
}

fn target(cli: &Cli) -> Target {
    if cli.sim && shared_sim() {
        // The machine is the server's: its options were checked in main.
        Target::Simulator(SimOptions::default())
    } else if cli.sim {
        Target::Simulator(SimOptions {
            wire: cli.sim_wire.clone(),
            stack_out: cli.sim_stack_out.clone(),
            wire_out: cli.sim_wire_out.clone(),
            driver: cli.sim_driver.clone(),
            hold_receives: false,
            max_gap: max_gap(cli),
        })
    } else {
        native()
    }
}

/// Without --sim: the installed driver on Windows, the real interfaces on Linux.
fn native() -> Target {
    #[cfg(target_os = "linux")]
    return Target::Linux;
    #[cfg(not(target_os = "linux"))]
    Target::Windows
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Adapters => adapters(cli),
        Command::Send(a) => send(cli, a),
        Command::Capture(a) => capture(cli, a),
        Command::Stats(a) => stats(cli, a),
        #[cfg(not(windows))]
        Command::Sim(c) => sim_command(cli, c),
        #[cfg(target_os = "linux")]
        Command::Link(a) => {
            let c = rxinject_user::linux::link(&a.interface, a.name.as_deref())?;
            if cli.json {
                println!(
                    "{}",
                    json!({"companion": c.name, "index": c.index, "peer": c.peer, "target": c.target.name, "target_index": c.target.index})
                );
            } else {
                println!(
                    "{}: what is sent on it arrives on {} as received (until `rxinject unlink {}`)",
                    c.name, c.target.name, c.name
                );
            }
            Ok(())
        }
        #[cfg(target_os = "linux")]
        Command::Unlink(a) => {
            let name = rxinject_user::linux::unlink(&a.name)?;
            if cli.json {
                println!("{}", json!({"removed": name}));
            } else {
                println!("{name} removed");
            }
            Ok(())
        }
    }
}

/// The simulator's report, one line at least.
#[cfg(not(windows))]
fn print_report(report: &str) {
    println!("{}", report.trim_end());
}

#[cfg(not(windows))]
fn sim_command(cli: &Cli, c: &SimCommand) -> Result<(), Failure> {
    use rxinject_user::remote::{self, Address, Connection};
    use rxinject_user::sim::serve::{self, ServeOptions};
    let address_of = |a: &SimAddressArgs| match &a.address {
        Some(s) => Address::parse(s),
        None => remote::from_env().unwrap_or_else(|| Address::Unix(serve::default_socket())),
    };
    match c {
        SimCommand::Serve(a) => {
            let address = match (&a.socket, a.listen) {
                (_, Some(t)) => Address::Tcp(t),
                (Some(p), None) => Address::Unix(p.clone()),
                (None, None) => Address::Unix(serve::default_socket()),
            };
            let opts = ServeOptions {
                address,
                sim: SimOptions {
                    wire: a.wire.clone(),
                    stack_out: a.stack_out.clone(),
                    wire_out: a.wire_out.clone(),
                    driver: a.driver.clone().or_else(|| cli.sim_driver.clone()),
                    hold_receives: a.hold_receives,
                    max_gap: max_gap(cli),
                },
            };
            let outcome = serve::serve(opts, !a.quiet, |addr| {
                println!("{}={addr}", remote::ENV);
                let _ = std::io::stdout().flush();
                if !a.quiet {
                    eprintln!(
                        "rxinject sim: serving sim0 at {addr}; in other terminals:\n  export {}={addr}\n  rxinject --sim capture -i sim0\n  rxinject --sim send -i sim0 --rx FILE.pcap\nand `rxinject sim stop` to end it",
                        remote::ENV
                    );
                }
            })?;
            print_report(&outcome.report);
            if outcome.clean {
                Ok(())
            } else {
                Err(Failure::Partial(
                    "the simulator found the driver breaking NDIS or I/O rules (above)".into(),
                ))
            }
        }
        SimCommand::Status(a) => {
            let conn = Connection::connect(&address_of(a))?;
            let s = conn.stats()?;
            if cli.json {
                println!(
                    "{}",
                    json!({
                        "address": conn.address().to_string(),
                        "connections": s.connections, "handles": s.handles,
                        "outstanding": s.outstanding, "delivered_rx": s.delivered_rx,
                        "delivered_tx": s.delivered_tx, "wire_done": s.wire_done != 0,
                        "wire_dropped": s.wire_dropped, "violations": s.violations,
                    })
                );
            } else {
                println!(
                    "{}: {} connections (this one included), {} handles open, {} requests outstanding; injected frames delivered: {} to the host stack, {} to the wire; {} violations",
                    conn.address(),
                    s.connections,
                    s.handles,
                    s.outstanding,
                    s.delivered_rx,
                    s.delivered_tx,
                    s.violations
                );
            }
            Ok(())
        }
        SimCommand::Stop(a) => {
            let conn = Connection::connect(&address_of(a))?;
            match conn.shutdown()? {
                Ok(report) => {
                    print_report(&report);
                    Ok(())
                }
                Err(report) => {
                    print_report(&report);
                    Err(Failure::Partial(
                        "the simulator found the driver breaking NDIS or I/O rules (above)".into(),
                    ))
                }
            }
        }
    }
}

fn mac(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn adapters(cli: &Cli) -> Result<(), Failure> {
    let driver = Driver::open(target(cli))?;
    let list = driver.adapters()?;
    if cli.json {
        let v: Vec<_> = list
            .iter()
            .map(|a| {
                json!({
                    "index": a.if_index, "name": a.display_name(), "friendly_name": a.name, "module": a.module,
                    "mac": mac(&a.mac), "mtu": a.mtu, "max_frame_size": a.max_frame_size, "state": a.state,
                })
            })
            .collect();
        println!(
            "{}",
            json!({ "adapters": v, "abi": format!("{}.{}", driver.version.abi_version >> 16, driver.version.abi_version & 0xffff) })
        );
    } else {
        println!(
            "{:>5}  {:<30} {:<17} {:>5} {:>9}  state",
            "index", "name", "mac", "mtu", "max frame"
        );
        for a in &list {
            println!(
                "{:>5}  {:<30} {:<17} {:>5} {:>9}  {}",
                a.if_index,
                a.display_name(),
                mac(&a.mac),
                a.mtu,
                a.max_frame_size,
                a.state
            );
        }
    }
    driver.finish()?;
    Ok(())
}

fn parse_hex(s: &str) -> Result<Vec<u8>, Failure> {
    let digits: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | ' ' | '\t' | '\n'))
        .collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) || !digits.chars().all(|c| c.is_ascii_hexdigit())
    {
        return Err(Failure::Usage(format!(
            "--hex \"{s}\" is not a frame in hexadecimal (an even number of hex digits)"
        )));
    }
    Ok((0..digits.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
        .collect())
}

/// A frame to send, and where it came from (for messages).
struct Item {
    ts_ns: i128,
    data: Vec<u8>,
}

fn load_frames(args: &SendArgs) -> Result<Vec<(String, Vec<Item>)>, Failure> {
    if let Some(h) = &args.hex {
        return Ok(vec![(
            "--hex".into(),
            vec![Item {
                ts_ns: 0,
                data: parse_hex(h)?,
            }],
        )]);
    }
    let mut out = Vec::new();
    for path in &args.files {
        let file = pcap::read(path).map_err(Error::File)?;
        file.require_ethernet().map_err(Error::File)?;
        let items = file
            .packets
            .into_iter()
            .map(|p| Item {
                ts_ns: p.timestamp_ns,
                data: p.data,
            })
            .collect();
        out.push((path.display().to_string(), items));
    }
    Ok(out)
}

fn is_tagged(f: &[u8]) -> bool {
    f.len() >= 18 && f[12] == 0x81 && f[13] == 0x00
}

struct Progress {
    on: bool,
    last: Duration,
}

impl Progress {
    fn show(&mut self, now: Duration, sent: u64, total: u64, start: Duration) {
        if !self.on || now < self.last + Duration::from_millis(200) && sent < total {
            return;
        }
        self.last = now;
        let secs = (now - start).as_secs_f64().max(1e-9);
        let width = 30usize;
        let done = if total == 0 {
            width
        } else {
            (sent as usize * width) / total as usize
        };
        eprint!(
            "\r[{}{}] {sent}/{total} frames, {:.1} s, {:.0} pps ",
            "#".repeat(done.min(width)),
            " ".repeat(width - done.min(width)),
            secs,
            sent as f64 / secs
        );
        let _ = std::io::stderr().flush();
    }

    fn end(&self) {
        if self.on {
            eprintln!();
        }
    }
}

fn send(cli: &Cli, args: &SendArgs) -> Result<(), Failure> {
    let sources = load_frames(args)?;
    let driver = Driver::open(target(cli))?;
    let adapter = driver.find_adapter(&args.adapter)?;
    let h = driver.bind(&adapter)?;
    h.set_direction(args.rx)?;
    let max = adapter.max_frame_size as usize;
    let mut sources = sources;
    let skipped = admit(&mut sources, max, args)?;
    let pace = if args.topspeed || args.hex.is_some() {
        Pace::TopSpeed
    } else if let Some(p) = args.pps {
        Pace::Pps(p)
    } else if let Some(m) = args.mbps {
        Pace::Mbps(m)
    } else {
        Pace::File {
            multiplier: args.multiplier.unwrap_or(1.0),
        }
    };
    // The play list: every loop of every file (a segment each), up to --count frames.
    let limit = args.count.unwrap_or(u64::MAX);
    let mut segments: Vec<&[Item]> = Vec::new();
    let mut planned = 0u64;
    'outer: for _ in 0..args.loops {
        for (_, items) in &sources {
            let take = (limit - planned).min(items.len() as u64) as usize;
            if take == 0 {
                break 'outer;
            }
            segments.push(&items[..take]);
            planned += take as u64;
        }
    }
    let mut plan: Vec<(&[u8], Duration)> = Vec::new();
    if let Pace::File { .. } = pace {
        // Each segment keeps its own timing and starts when the previous one ended.
        let mut offset = Duration::ZERO;
        for seg in &segments {
            let timing: Vec<(i128, usize)> = seg.iter().map(|it| (it.ts_ns, it.data.len())).collect();
            let due = replay::schedule(&timing, pace, max_gap(cli));
            plan.extend(
                seg.iter()
                    .zip(&due)
                    .map(|(it, d)| (it.data.as_slice(), offset + *d)),
            );
            offset += due.last().copied().unwrap_or_default();
        }
    } else {
        // A rate runs across segments.
        let all: Vec<&Item> = segments.iter().flat_map(|s| s.iter()).collect();
        let timing: Vec<(i128, usize)> = all.iter().map(|it| (it.ts_ns, it.data.len())).collect();
        let due = replay::schedule(&timing, pace, max_gap(cli));
        plan.extend(all.iter().zip(due).map(|(it, d)| (it.data.as_slice(), d)));
    }
    let due: Vec<Duration> = plan.iter().map(|p| p.1).collect();
    let lens: Vec<usize> = plan.iter().map(|p| abi::write::record_len(p.0.len())).collect();
    let writes = replay::batches(
        &due,
        &lens,
        Duration::from_millis(1),
        MAX_FRAMES_PER_WRITE as usize,
        MAX_WRITE_BYTES as usize,
    );
    let total = plan.len() as u64;
    let mut progress = Progress {
        on: std::io::stderr().is_terminal() && !cli.json,
        last: Duration::ZERO,
    };
    let start = driver.now();
    let (mut sent, mut bytes, mut failed) = (0u64, 0u64, 0u64);
    // Frames accepted and not then reported lost (a failure below, every frame accepted):
    // what was delivered, where the machine cannot say.
    let mut kept = 0u64;
    let mut first_failure: Option<String> = None;
    let mut batch = Batch::new();
    for w in writes {
        driver.sleep_until(start + due[w.start]);
        batch.clear();
        for (frame, _) in &plan[w.clone()] {
            batch.push(DIR_DEFAULT, 0, frame);
        }
        let r = h.send(&batch)?;
        let n = w.len() as u64;
        if r.status.is_success() {
            sent += r.accepted as u64;
            kept += r.accepted as u64;
            bytes += plan[w.clone()].iter().map(|(f, _)| f.len() as u64).sum::<u64>();
        } else {
            // The frames not accepted, or (a failure below, every frame accepted) all.
            if (r.accepted as u64) < n {
                failed += n - r.accepted as u64;
                kept += r.accepted as u64;
            } else {
                failed += n;
            }
            sent += r.accepted as u64;
            if first_failure.is_none() {
                first_failure = Some(status_name(r.status));
            }
            // The adapter or the binding is gone: nothing more can be sent.
            if r.accepted == 0
                && (r.status == rxinject_user::NTSTATUS(ndis_status::NO_SUCH_DEVICE)
                    || r.status == rxinject_user::NTSTATUS(ndis_status::INVALID_DEVICE_STATE))
            {
                progress.end();
                return Err(Error::Driver {
                    what: "sending".into(),
                    status: r.status,
                }
                .into());
            }
        }
        progress.show(driver.now(), sent, total, start);
    }
    progress.end();
    let seconds = (driver.now() - start).as_secs_f64();
    let delivered = match driver.delivered() {
        Some((rx, tx)) => (if args.rx { rx } else { tx }) as u64,
        None => kept,
    };
    let rate = |x: f64| if seconds > 0.0 { x / seconds } else { 0.0 };
    driver.finish()?;
    let direction = if args.rx { "rx" } else { "tx" };
    if cli.json {
        println!(
            "{}",
            json!({
                "adapter": adapter.display_name(), "direction": direction,
                "frames_sent": sent, "frames_delivered": delivered, "bytes_sent": bytes,
                "frames_failed": failed, "seconds": seconds,
                "pps": rate(sent as f64), "mbps": rate(bytes as f64 * 8.0) / 1e6,
                "first_failure": first_failure,
                "frames_skipped": skipped.total(),
                "frames_skipped_oversize": skipped.oversize,
                "frames_skipped_runt": skipped.runt,
                "frames_truncated": skipped.truncated,
            })
        );
    } else {
        let to = if args.rx { "the host stack" } else { "the wire" };
        println!(
            "sent {sent} frames ({bytes} bytes) to {direction} in {seconds:.3} s: {:.0} pps, {:.2} Mbps; {failed} failed, {} skipped ({} oversize, {} runt){}",
            rate(sent as f64),
            rate(bytes as f64 * 8.0) / 1e6,
            skipped.total(),
            skipped.oversize,
            skipped.runt,
            if skipped.truncated > 0 {
                format!(", {} truncated", skipped.truncated)
            } else {
                String::new()
            }
        );
        if driver_is_sim(cli) {
            println!("{delivered} delivered to {to} of the simulator");
        }
    }
    if failed > 0 {
        return Err(Failure::Partial(format!(
            "{failed} frames failed (first failure: {})",
            first_failure.unwrap_or_default()
        )));
    }
    Ok(())
}

/// Whether RXINJECT_SIM names a shared simulator (`rxinject sim serve`) for --sim.
#[cfg(any(not(windows), feature = "sim-client"))]
fn shared_sim() -> bool {
    rxinject_user::remote::from_env().is_some()
}

/// The shipped Windows build has no client of the simulator.
#[cfg(all(windows, not(feature = "sim-client")))]
fn shared_sim() -> bool {
    false
}

fn driver_is_sim(cli: &Cli) -> bool {
    cli.sim
}

/// NT status values the send loop tests for.
mod ndis_status {
    pub const NO_SUCH_DEVICE: i32 = 0xC000_000Eu32 as i32;
    pub const INVALID_DEVICE_STATE: i32 = 0xC000_0184u32 as i32;
}

/// `HH:MM:SS.ffffff` (UTC) of a time in 100 ns units since 1970.
fn clock(unix_100ns: u64) -> String {
    let secs = unix_100ns / 10_000_000;
    let micros = (unix_100ns % 10_000_000) / 10;
    format!(
        "{:02}:{:02}:{:02}.{micros:06}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

fn capture(cli: &Cli, args: &CaptureArgs) -> Result<(), Failure> {
    let snaplen = if args.snaplen == 0 {
        cap::MAX_SNAPLEN
    } else {
        args.snaplen
    };
    let program = match (&args.bpf_file, args.filter.is_empty()) {
        (Some(f), _) => {
            let text = std::fs::read_to_string(f).map_err(|error| Error::Io {
                what: format!("reading {}", f.display()),
                error,
            })?;
            Some(filter::parse_text(&text).map_err(Error::Filter)?)
        }
        (None, false) => Some(filter::compile(&args.filter.join(" "), snaplen).map_err(Error::Filter)?),
        (None, true) => None,
    };
    let driver = Driver::open(target(cli))?;
    let adapter = driver.find_adapter(&args.adapter)?;
    let h = driver.bind(&adapter)?;
    if let Some(p) = &program {
        h.set_filter(p)?;
    }
    if !args.no_promiscuous {
        // For this handle: the driver merges it with the protocols' filter and undoes it when
        // the capture ends. A driver or adapter that cannot is no reason not to capture.
        if let Err(e) = h.set_packet_filter(rxinject_user::Handle::PROMISCUOUS) {
            eprintln!("rxinject: warning: not promiscuous ({e}); capturing what reaches this host");
        }
    }
    let directions = match args.direction {
        Dir::In => cap::CAPTURE_IN,
        Dir::Out => cap::CAPTURE_OUT,
        Dir::Inout => cap::CAPTURE_IN | cap::CAPTURE_OUT,
    };
    h.start_capture(&CaptureConfig {
        ring_bytes: 8 << 20,
        snaplen,
        directions,
        flags: if args.no_injected {
            cap::CAPTURE_EXCLUDE_INJECTED
        } else {
            0
        },
        min_bytes: 1,
        timeout_ms: 100,
        ..CaptureConfig::default()
    })?;
    // As tcpdump's "listening on": the capture is running from here (a script starts
    // sending once it reads this line).
    eprintln!(
        "rxinject: capturing on {} ({}{}, snaplen {})",
        adapter.display_name(),
        match args.direction {
            Dir::In => "inbound",
            Dir::Out => "outbound",
            Dir::Inout => "both directions",
        },
        if args.no_promiscuous { "" } else { ", promiscuous" },
        if snaplen == 0 {
            "all".to_string()
        } else {
            snaplen.to_string()
        }
    );
    let mut writer = match &args.write {
        Some(path) => {
            let f = std::fs::File::create(path).map_err(|error| Error::Io {
                what: format!("creating {}", path.display()),
                error,
            })?;
            let mut w = PcapNgWriter::new(
                std::io::BufWriter::new(f),
                concat!("rxinject ", env!("CARGO_PKG_VERSION")),
            )
            .map_err(|error| Error::Io {
                what: format!("writing {}", path.display()),
                error,
            })?;
            let iface = w
                .interface(adapter.if_index, adapter.display_name(), &adapter.name, snaplen)
                .map_err(|error| Error::Io {
                    what: format!("writing {}", path.display()),
                    error,
                })?;
            Some((w, iface, path.clone()))
        }
        None => None,
    };
    let start = driver.now();
    let deadline = args.duration.map(|s| start + Duration::from_secs_f64(s));
    let limit = args.count.unwrap_or(u64::MAX);
    let (mut n, mut inbound, mut outbound, mut injected) = (0u64, 0u64, 0u64, 0u64);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    'reading: while n < limit {
        if deadline.is_some_and(|d| driver.now() >= d) {
            break;
        }
        let wire_was_done = driver.wire_done();
        let frames = h.read()?;
        if frames.is_empty()
            && args.count.is_none()
            && deadline.is_none()
            && driver.is_simulator()
            && wire_was_done
        {
            // The simulated wire has played everything and nothing more comes.
            break;
        }
        if frames.is_empty() {
            // Idle until the simulated wire's next frame: no need to poll through the gap.
            driver.skip_idle(deadline);
        }
        for f in frames {
            if n >= limit {
                break 'reading;
            }
            n += 1;
            if f.inbound {
                inbound += 1;
            } else {
                outbound += 1;
            }
            if f.injected {
                injected += 1;
            }
            match &mut writer {
                Some((w, iface, path)) => {
                    let dir = if f.inbound {
                        PcapDirection::Inbound
                    } else {
                        PcapDirection::Outbound
                    };
                    w.packet(*iface, f.unix_100ns(), &f.data, f.len, dir, f.injected)
                        .map_err(|error| Error::Io {
                            what: format!("writing {}", path.display()),
                            error,
                        })?;
                }
                None if !cli.json => {
                    let _ = writeln!(
                        out,
                        "{} {} {} {:5} {}",
                        clock(f.unix_100ns()),
                        if f.inbound { "In " } else { "Out" },
                        if f.injected { "inj" } else { "   " },
                        f.len,
                        decode::describe(&f.data)
                    );
                }
                None => {}
            }
        }
        if let Some((w, _, path)) = &mut writer {
            w.flush().map_err(|error| Error::Io {
                what: format!("writing {}", path.display()),
                error,
            })?;
        }
    }
    let stats = h.capture_stats()?;
    drop(h);
    let wire_dropped = driver.wire_dropped();
    driver.finish()?;
    if cli.json {
        let mut v = json!({
            "adapter": adapter.display_name(), "captured": n, "inbound": inbound, "outbound": outbound,
            "injected": injected, "seen": stats.seen, "accepted": stats.accepted, "dropped": stats.dropped,
            "file": args.write.as_ref().map(|p| p.display().to_string()),
        });
        if cli.sim_wire.is_some() {
            v["wire_dropped"] = json!(wire_dropped);
        }
        println!("{v}");
    } else {
        eprintln!(
            "{n} frames captured ({inbound} in, {outbound} out, {injected} injected); {} dropped by the driver",
            stats.dropped
        );
        if wire_dropped > 0 {
            eprintln!(
                "{wire_dropped} frames of the simulated wire's file dropped by its NIC (runts, or above the MTU)"
            );
        }
    }
    Ok(())
}

fn stats(cli: &Cli, args: &StatsArgs) -> Result<(), Failure> {
    let driver = Driver::open(target(cli))?;
    let adapter = driver.find_adapter(&args.adapter)?;
    let h = driver.bind(&adapter)?;
    let c = h.counters()?.adapter;
    drop(h);
    driver.finish()?;
    let fields = [
        ("rx_injected", c.rx_injected),
        ("tx_injected", c.tx_injected),
        ("rx_returned", c.rx_returned),
        ("tx_completed", c.tx_completed),
        ("tx_failed", c.tx_failed),
        ("nbls_allocated", c.nbls_allocated),
        ("nbls_in_flight", c.nbls_in_flight),
        ("writes_out_of_nbls", c.writes_out_of_nbls),
        ("writes_not_running", c.writes_not_running),
        ("rx_refused_not_running", c.rx_refused_not_running),
        ("tx_refused_not_running", c.tx_refused_not_running),
        ("oid_requests", c.oid_requests),
    ];
    if cli.json {
        let mut m = serde_json::Map::new();
        m.insert("adapter".into(), json!(adapter.display_name()));
        for (k, v) in fields {
            m.insert(k.into(), json!(v));
        }
        println!("{}", serde_json::Value::Object(m));
    } else {
        println!("{} (index {}):", adapter.display_name(), adapter.if_index);
        for (k, v) in fields {
            println!("  {k:<24} {v}");
        }
    }
    Ok(())
}
