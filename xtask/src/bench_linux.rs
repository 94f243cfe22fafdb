//! `cargo xtask bench-linux [--json] [--frames N]`: Rx injection on Linux, side by side, in
//! one run (root). A fresh network namespace holds a veth pair, `vh` (10.9.0.1/24, the
//! host's interface) and `vw`, and a second pair `vt`/`vtp` for the peer: `vtp`'s tc ingress
//! redirects everything to `vh`'s ingress with `mirred` (the way tcpreplay users inject
//! into a receive path today). The same pcap of distinct 64-byte UDP frames to 10.9.0.1 is
//! injected into `vh`'s receive path by:
//!
//! - `rxinject send --rx --topspeed` (AF_PACKET `sendmmsg`, the egress tcx program's
//!   redirect): `linux_rx_fps_rxinject`;
//! - the same with `RXINJECT_LINUX_RX=xdp` (XDP live frames): `linux_rx_fps_rxinject_xdp`;
//! - `tcpreplay --topspeed` on `vt` through `mirred ingress`: `linux_rx_fps_tcpreplay_mirred`;
//! - `tcpreplay --topspeed` on `rxinject link`'s companion: `linux_rx_fps_tcpreplay_link`
//!   (the cost of the companion);
//!
//! each pinned to CPU 0, best of `RUNS` (five) rounds (the four in turn in each, so that the
//! machine's slower moments fall on all four alike). A frame counts when the kernel's IPv4
//! receive counter (`Ip: InReceives`, /proc/net/snmp in the namespace) counted it:
//! delivered to the stack. A UDP socket is bound on the port for the whole run and never read: the stack
//! takes every datagram to that socket, whose full queue drops it (`UdpRcvbufErrors`).
//! Without a socket the stack would answer each datagram with an ICMP port-unreachable,
//! and the route lookups for those errors, made before their rate limit drops them, would
//! be the largest single cost of both ways alike (docs/PERFORMANCE.md has both figures).
//! Frames per second are delivered frames over the command's wall time.

use std::process::Command;
use std::time::Instant;

use crate::{Error, Result, cargo, run_cmd};

/// Rounds: on a shared virtual machine one run of a way can be a fifth off its best.
const RUNS: usize = 5;

const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

fn ip(args: &[&str]) -> Result<()> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| Error::with("iproute2's `ip` is needed (apt-get install iproute2)", e))?;
    if !o.status.success() {
        return Err(Error::new(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    Ok(())
}

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

impl Netns {
    fn exec(&self, args: &[&str], env: Option<(&str, &str)>) -> Result<std::process::Output> {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, "taskset", "-c", "0"])
            .args(args);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        c.output()
            .map_err(|e| Error::with(format!("running {args:?}"), e))
    }

    fn ok(&self, args: &[&str]) -> Result<String> {
        self.ok_with(args, None)
    }

    fn ok_with(&self, args: &[&str], env: Option<(&str, &str)>) -> Result<String> {
        let o = self.exec(args, env)?;
        if !o.status.success() {
            return Err(Error::new(format!(
                "{args:?} failed: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// IPv4 datagrams the stack received (`Ip: InReceives`).
    fn in_receives(&self) -> Result<u64> {
        let snmp = self.ok(&["cat", "/proc/net/snmp"])?;
        let mut lines = snmp.lines().filter(|l| l.starts_with("Ip: "));
        let names = lines.next().unwrap_or_default();
        let values = lines.next().unwrap_or_default();
        let at = names
            .split_whitespace()
            .position(|n| n == "InReceives")
            .ok_or_else(|| Error::new("no Ip: InReceives in /proc/net/snmp"))?;
        values
            .split_whitespace()
            .nth(at)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::new("unreadable Ip: InReceives"))
    }

    /// Frames per second the stack received while `args` ran, and the frames.
    fn measure(&self, args: &[&str], env: Option<(&str, &str)>) -> Result<(f64, u64)> {
        let before = self.in_receives()?;
        let t = Instant::now();
        self.ok_with(args, env)?;
        let secs = t.elapsed().as_secs_f64();
        let n = self.in_receives()? - before;
        Ok((n as f64 / secs, n))
    }
}

/// A UDP socket bound to `addr` in namespace `ns`: a thread enters the namespace (setns(2)
/// moves only the calling thread) and binds it; the socket stays in the namespace it was
/// made in.
fn bind_in(ns: &str, addr: &'static str) -> Result<std::net::UdpSocket> {
    let path = std::path::Path::new("/run/netns").join(ns);
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).map_err(|e| Error::with("the namespace's file", e))?;
        // SAFETY: setns(2) on an open namespace file, for this thread only.
        let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        if r != 0 {
            return Err(Error::with("setns", std::io::Error::last_os_error()));
        }
        std::net::UdpSocket::bind(addr).map_err(|e| Error::with(format!("binding {addr}"), e))
    })
    .join()
    .map_err(|_| Error::new("the thread binding the socket panicked"))?
}

/// `n` distinct 64-byte UDP frames from 10.9.0.2 (source ports 40000 + i % 1000, a counter
/// in the payload) to `dst` (10.9.0.1) port 9: ndis-sim's builder, real checksums.
fn frames(dst: [u8; 6], n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut payload = vec![0u8; 64 - 14 - 20 - 8];
            payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
            ndis_sim::packets::Udp {
                dst_mac: dst,
                src_mac: PEER_MAC,
                src_ip: [10, 9, 0, 2],
                dst_ip: [10, 9, 0, 1],
                src_port: 40000 + (i % 1000) as u16,
                dst_port: 9,
                payload,
            }
            .to_frame()
        })
        .collect()
}

pub fn run(json: bool, total: u64) -> Result<()> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !root {
        return Err(Error::new(
            "bench-linux needs root (network namespaces, AF_PACKET, eBPF)",
        ));
    }
    for (tool, package) in [
        ("tcpreplay", "tcpreplay"),
        ("taskset", "util-linux"),
        ("tc", "iproute2"),
    ] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Err(Error::new(format!("{tool} is needed: apt-get install {package}")));
        }
    }
    run_cmd(
        "cargo build --release -p rxinject-cli",
        cargo().args(["build", "--release", "-p", "rxinject-cli"]),
    )?;
    let bin = std::env::current_dir()
        .map_err(|e| Error::with("the working directory", e))?
        .join("target/release/rxinject");
    let bin = bin
        .to_str()
        .ok_or_else(|| Error::new("a non-UTF-8 path"))?
        .to_string();

    let ns = Netns(format!("rxbench-{}", std::process::id()));
    let _ = Command::new("ip").args(["netns", "del", &ns.0]).output();
    ip(&["netns", "add", &ns.0])?;
    let n = ns.0.as_str();
    ip(&["-n", n, "link", "add", "vh", "type", "veth", "peer", "name", "vw"])?;
    ip(&[
        "-n", n, "link", "add", "vt", "type", "veth", "peer", "name", "vtp",
    ])?;
    ip(&["-n", n, "addr", "add", "10.9.0.1/24", "dev", "vh"])?;
    let mac_text = ns.ok(&["cat", "/sys/class/net/vh/address"])?;
    let mut mac = [0u8; 6];
    for (m, h) in mac.iter_mut().zip(mac_text.trim().split(':')) {
        *m = u8::from_str_radix(h, 16).map_err(|_| Error::new("vh's MAC"))?;
    }
    // mirred does not reclassify: vtp carries vh's address, so that the frames are the
    // host's (PACKET_HOST) when they reach vh.
    ip(&["-n", n, "link", "set", "vtp", "address", mac_text.trim()])?;
    for dev in ["lo", "vh", "vw", "vt", "vtp"] {
        ip(&["-n", n, "link", "set", dev, "up"])?;
    }
    ip(&[
        "-n",
        n,
        "neigh",
        "add",
        "10.9.0.2",
        "lladdr",
        "02:00:00:00:00:02",
        "dev",
        "vh",
        "nud",
        "permanent",
    ])?;
    ns.ok(&["tc", "qdisc", "add", "dev", "vtp", "clsact"])?;
    ns.ok(&[
        "tc", "filter", "add", "dev", "vtp", "ingress", "protocol", "all", "u32", "match", "u32", "0", "0",
        "action", "mirred", "ingress", "redirect", "dev", "vh",
    ])?;
    ns.ok(&[&bin, "link", "vh"])?;
    let _socket = bind_in(&ns.0, "10.9.0.1:9")?;

    let per_file = 1000usize;
    let loops = (total / per_file as u64).max(1);
    let dir = std::env::temp_dir().join(&ns.0);
    std::fs::create_dir_all(&dir).map_err(|e| Error::with("a temporary directory", e))?;
    let pcap = dir.join("udp64.pcap");
    let list = frames(mac, per_file);
    let packets: Vec<(i128, &[u8])> = list
        .iter()
        .enumerate()
        .map(|(i, f)| (i as i128 * 1000, &f[..]))
        .collect();
    rxinject_user::pcap::write_pcap(&pcap, &packets).map_err(|e| Error::with("writing the pcap", e))?;
    let pcap = pcap
        .to_str()
        .ok_or_else(|| Error::new("a non-UTF-8 path"))?
        .to_string();
    let loops_s = loops.to_string();

    let ours: Vec<&str> = vec![
        &bin,
        "send",
        "-i",
        "vh",
        "--rx",
        "--topspeed",
        "--loop",
        &loops_s,
        &pcap,
    ];
    let tcpreplay = |dev| -> Vec<&str> {
        vec![
            "tcpreplay",
            "-q",
            "-t",
            "-K",
            "--loop",
            &loops_s,
            "-i",
            dev,
            &pcap,
        ]
    };
    let (mirred, link) = (tcpreplay("vt"), tcpreplay("rx-vh"));
    let (mut best_ours, mut best_mirred, mut best_link, mut best_xdp) = (0f64, 0f64, 0f64, 0f64);
    let expect = loops * per_file as u64;
    let xdp = Some((rxinject_user::linux::RX_PATH_ENV, "xdp"));
    for _ in 0..RUNS {
        for (args, env, best) in [
            (&ours, None, &mut best_ours),
            (&ours, xdp, &mut best_xdp),
            (&mirred, None, &mut best_mirred),
            (&link, None, &mut best_link),
        ] {
            let (fps, got) = ns.measure(args, env)?;
            if got < expect {
                return Err(Error::new(format!(
                    "{}: {got} of {expect} frames reached the stack",
                    args[0]
                )));
            }
            *best = best.max(fps);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let ratio = best_ours / best_mirred;
    let ratio_xdp = best_xdp / best_mirred;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "frames": expect, "frame_len": 64, "runs": RUNS, "cpu": 0,
                "counted": "Ip InReceives; a socket bound on the port, not read",
                "linux_rx_fps_rxinject": best_ours.round(),
                "linux_rx_fps_tcpreplay_mirred": best_mirred.round(),
                "linux_rx_fps_tcpreplay_link": best_link.round(),
                "linux_rx_fps_rxinject_xdp": best_xdp.round(),
                "linux_rx_ratio": (ratio * 100.0).round() / 100.0,
                "linux_rx_ratio_xdp": (ratio_xdp * 100.0).round() / 100.0,
            })
        );
    } else {
        println!(
            "Rx injection of {expect} 64-byte frames into vh, delivered to the stack (best of {RUNS}, CPU 0):"
        );
        println!("  rxinject send --rx (AF_PACKET + tcx redirect): {best_ours:>10.0} frames/s");
        println!("  rxinject, RXINJECT_LINUX_RX=xdp (live frames): {best_xdp:>10.0} frames/s");
        println!("  tcpreplay through tc mirred ingress:           {best_mirred:>10.0} frames/s");
        println!("  tcpreplay on rxinject link's companion:        {best_link:>10.0} frames/s");
        println!("  ratio rxinject / tcpreplay mirred:             {ratio:>10.2}");
        println!("  ratio rxinject xdp / tcpreplay mirred:         {ratio_xdp:>10.2}");
    }
    Ok(())
}
