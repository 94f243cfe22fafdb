//! `rxinject` on real Linux interfaces, in network namespaces each test creates (and
//! deletes): a veth pair, `vh` (the host's interface, 10.9.0.1/24) and `vw` (its wire side,
//! no address), inside the namespace only. Nothing touches the machine's own interfaces.
//!
//! Needs root (network namespaces, AF_PACKET, eBPF) and iproute2's `ip`: without root every
//! test here says it was skipped and passes, and `cargo xtask test` says so too.
//!
//! No timing: a capture runs as a child process, the test waits for the line that says it
//! has started (its socket is open), and the capture ends at a count of frames (`-c`); the
//! long `--duration` is only there so that a failure ends rather than hangs.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use ndis_sim::packets::{self, Arp, IcmpEcho, Udp};
use rxinject_user::pcap;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rxinject")
}

/// Whether this process is root (else the caller skips, saying so).
fn root() -> bool {
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
    });
    if uid == Some(true) {
        return true;
    }
    eprintln!("SKIPPED: the Linux namespace tests need root (ip netns, AF_PACKET, eBPF)");
    false
}

fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .expect("iproute2's `ip` (Debian package iproute2)");
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A network namespace with the veth pair, deleted (with its interfaces) when dropped.
struct Netns {
    name: String,
    dir: PathBuf,
}

impl Netns {
    fn new(test: &str) -> Netns {
        let name = format!("rxi-{}-{test}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let n = Netns {
            dir: std::env::temp_dir().join(&name),
            name,
        };
        std::fs::create_dir_all(&n.dir).unwrap();
        ip(&[
            "-n", &n.name, "link", "add", "vh", "type", "veth", "peer", "name", "vw",
        ]);
        ip(&["-n", &n.name, "addr", "add", "10.9.0.1/24", "dev", "vh"]);
        for dev in ["lo", "vh", "vw"] {
            ip(&["-n", &n.name, "link", "set", dev, "up"]);
        }
        // The peer's address resolves without asking (nobody on `vw` would answer): the
        // stack's replies go out at once. (ARP requests are answered all the same.)
        ip(&[
            "-n",
            &n.name,
            "neigh",
            "add",
            "10.9.0.2",
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            "vh",
            "nud",
            "permanent",
        ]);
        n
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `rxinject ARGS` inside the namespace.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, bin()]).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "rxinject {args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A capture (`rxinject capture ARGS`) that has started: its socket is open.
    fn capture(&self, args: &[&str]) -> Capture {
        // A long --duration, unless the test gives one: a failure ends rather than hangs.
        let limit: &[&str] = if args.contains(&"--duration") {
            &[]
        } else {
            &["--duration", "60"]
        };
        let mut child = self
            .command(&[&["capture"][..], limit, args].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "the capture ended before it started"
            );
            if line.contains("capturing on") {
                break;
            }
        }
        Capture { child, err }
    }

    /// The MAC address of `dev`.
    fn mac(&self, dev: &str) -> [u8; 6] {
        let o = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "cat",
                &format!("/sys/class/net/{dev}/address"),
            ])
            .output()
            .unwrap();
        let s = String::from_utf8(o.stdout).unwrap();
        let mut mac = [0u8; 6];
        for (m, h) in mac.iter_mut().zip(s.trim().split(':')) {
            *m = u8::from_str_radix(h, 16).unwrap();
        }
        mac
    }

    /// The namespace's file in /run/netns (for `setns`).
    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Capture {
    child: Child,
    err: BufReader<std::process::ChildStderr>,
}

impl Capture {
    /// Waits for the capture to end (at its count): its stdout and the rest of its stderr.
    fn finish(mut self) -> (String, String) {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.err, &mut rest).unwrap();
        let o = self.child.wait_with_output().unwrap();
        assert!(o.status.success(), "capture: {rest}");
        (String::from_utf8_lossy(&o.stdout).into_owned(), rest)
    }
}

const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const PEER_IP: [u8; 4] = [10, 9, 0, 2];
const HOST_IP: [u8; 4] = [10, 9, 0, 1];

// The frames: ndis-sim's builders (real checksums), from the peer 10.9.0.2 to the host.
fn arp_request(target: [u8; 4]) -> Vec<u8> {
    packets::arp_request(PEER_MAC, PEER_IP, target)
}

fn icmp_echo(dst_mac: [u8; 6], id: u16) -> Vec<u8> {
    IcmpEcho::request(PEER_MAC, dst_mac, PEER_IP, HOST_IP, id, 1, b"rxinject on linux").to_frame()
}

fn udp(dst_mac: [u8; 6], port: u16, data: &[u8]) -> Vec<u8> {
    Udp {
        dst_mac,
        src_mac: PEER_MAC,
        src_ip: PEER_IP,
        dst_ip: HOST_IP,
        src_port: 40000,
        dst_port: port,
        payload: data.to_vec(),
    }
    .to_frame()
}

fn hex(f: &[u8]) -> String {
    f.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let packets: Vec<(i128, &[u8])> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (i as i128 * 1000, &f[..]))
        .collect();
    pcap::write_pcap(path, &packets).unwrap();
}

/// The frames of a pcapng file the capture wrote: (inbound, injected, bytes).
fn captured(path: &Path) -> Vec<(bool, bool, Vec<u8>)> {
    pcap::read(path)
        .unwrap()
        .packets
        .into_iter()
        .map(|p| {
            (
                p.direction() == Some(pcap::Direction::Inbound),
                p.comment.as_deref().is_some_and(|c| c.contains("inject")),
                p.data,
            )
        })
        .collect()
}

/// Runs `f` on a thread inside `ns` (setns(2) moves only the calling thread).
fn in_netns<T: Send + 'static>(
    ns: &Netns,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = ns.path();
    std::thread::spawn(move || {
        let file = std::fs::File::open(path).unwrap();
        // SAFETY: setns(2) on an open namespace file, for this thread only.
        let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
}

/// An ARP request and an ICMP echo request injected up on `vh` are answered by Linux's own
/// stack: the replies leave on `vh`, captured there outbound and not injected, and arrive on
/// `vw` (the wire side).
#[test]
fn arp_and_echo_requests_injected_up_are_answered_by_the_stack() {
    if !root() {
        return;
    }
    let ns = Netns::new("answer");
    let host = ns.mac("vh");
    let frames = [arp_request(HOST_IP), icmp_echo(host, 0x4242)];
    let input = ns.file("in.pcap");
    write_pcap(&input, &frames);
    let on_vh = ns.file("vh.pcapng");
    let on_vw = ns.file("vw.pcapng");
    // On vh: the two requests in, the two replies out. On vw: the two replies in (the
    // filter leaves out the IPv6 chatter a new interface may send).
    let vh = ns.capture(&[
        "-i",
        "vh",
        "-c",
        "4",
        "-w",
        on_vh.to_str().unwrap(),
        "arp or icmp",
    ]);
    let vw = ns.capture(&[
        "-i",
        "vw",
        "-c",
        "2",
        "-w",
        on_vw.to_str().unwrap(),
        "arp or icmp",
    ]);
    let out = ns.ok(&["send", "-i", "vh", "--rx", "--json", input.to_str().unwrap()]);
    assert!(out.contains("\"frames_sent\":2"), "{out}");
    vh.finish();
    vw.finish();
    let got = captured(&on_vh);
    assert_eq!(got.len(), 4, "{got:?}");
    let requests: Vec<_> = got.iter().filter(|(inb, _, _)| *inb).collect();
    let replies: Vec<_> = got.iter().filter(|(inb, _, _)| !*inb).collect();
    assert_eq!(requests.len(), 2);
    assert!(
        requests.iter().all(|(_, inj, _)| *inj),
        "the requests are the injected frames"
    );
    assert!(
        requests.iter().any(|(_, _, f)| *f == frames[0]) && requests.iter().any(|(_, _, f)| *f == frames[1])
    );
    assert!(
        replies.iter().all(|(_, inj, _)| !*inj),
        "the replies are the stack's own"
    );
    let arp = replies
        .iter()
        .find_map(|(_, _, f)| Arp::parse(f))
        .expect("an ARP reply");
    assert_eq!(
        (arp.operation, arp.sender_mac, arp.target_mac, arp.target_ip),
        (2, host, PEER_MAC, PEER_IP),
        "vh's reply to the asker"
    );
    let echo = replies
        .iter()
        .find_map(|(_, _, f)| IcmpEcho::parse(f))
        .expect("an echo reply");
    assert!(
        echo.reply && echo.ident == 0x4242,
        "the request's reply: {echo:?}"
    );
    // The same two replies reached the wire side, as received there.
    let wire = captured(&on_vw);
    assert_eq!(wire.len(), 2, "{wire:?}");
    for (inbound, injected, f) in &wire {
        assert!(*inbound && !*injected);
        assert!(replies.iter().any(|(_, _, r)| r == f));
    }
}

/// A UDP datagram injected up on `vh` reaches a socket bound in the namespace, byte for
/// byte.
#[test]
fn a_udp_datagram_injected_up_reaches_a_socket_byte_for_byte() {
    if !root() {
        return;
    }
    let ns = Netns::new("udp");
    let host = ns.mac("vh");
    let payload: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    // A thread in the namespace binds the socket.
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = in_netns(&ns, move || {
        let s = std::net::UdpSocket::bind("10.9.0.1:5555").unwrap();
        tx.send(()).unwrap();
        let mut buf = vec![0u8; 2000];
        let (n, from) = s.recv_from(&mut buf).unwrap();
        (buf[..n].to_vec(), from)
    });
    // Bound: now inject. (The peer's address must resolve for nothing: UDP needs no reply.)
    rx.recv().unwrap();
    ns.ok(&[
        "send",
        "-i",
        "vh",
        "--rx",
        "--hex",
        &hex(&udp(host, 5555, &payload)),
    ]);
    let (got, from) = receiver.join().unwrap();
    assert_eq!(got, payload);
    assert_eq!(from, "10.9.0.2:40000".parse().unwrap());
}

/// Direction and the injected mark on exactly the right frames: a frame injected up (in,
/// injected), one injected down (out, injected), the stack's reply (out, not injected), and
/// a frame rxinject transmits on `vw`, which arrives on `vh` with rxinject's mark for `vw`
/// still on it (a veth pair keeps marks) and must not count as injected there (in, not
/// injected).
#[test]
fn capture_marks_direction_and_injected_on_exactly_the_right_frames() {
    if !root() {
        return;
    }
    let ns = Netns::new("marks");
    let host = ns.mac("vh");
    let up = icmp_echo(host, 0x0101);
    let down = udp(PEER_MAC, 9, b"down to the wire");
    let across = udp(host, 9, b"across the pair");
    let on_vh = ns.file("vh.pcapng");
    // The echo request up, its reply out, the Tx frame out, the frame from vw in.
    let vh = ns.capture(&[
        "-i",
        "vh",
        "-c",
        "4",
        "-w",
        on_vh.to_str().unwrap(),
        "icmp or udp port 9",
    ]);
    ns.ok(&["send", "-i", "vh", "--rx", "--hex", &hex(&up)]);
    ns.ok(&["send", "-i", "vh", "--tx", "--hex", &hex(&down)]);
    ns.ok(&["send", "-i", "vw", "--tx", "--hex", &hex(&across)]);
    vh.finish();
    let got = captured(&on_vh);
    let find = |f: &[u8]| got.iter().find(|(_, _, g)| g == f).map(|(i, j, _)| (*i, *j));
    assert_eq!(find(&up), Some((true, true)), "injected up: {got:?}");
    assert_eq!(find(&down), Some((false, true)), "injected down");
    assert_eq!(find(&across), Some((true, false)), "received from the wire side");
    let reply = got
        .iter()
        .find(|(_, _, f)| IcmpEcho::parse(f).is_some_and(|e| e.reply));
    assert!(
        matches!(reply, Some((false, false, _))),
        "the stack's echo reply: {got:?}"
    );
}

/// Error paths: an interface that does not exist (exit 1, the interfaces listed), and a
/// frame above the MTU (skipped and counted; the rest sent).
#[test]
fn a_missing_interface_and_a_frame_above_the_mtu_are_reported() {
    if !root() {
        return;
    }
    let ns = Netns::new("errors");
    let o = ns.run(&[
        "send",
        "-i",
        "nosuch0",
        "--rx",
        "--hex",
        &hex(&arp_request(HOST_IP)),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nosuch0") && err.contains("vh"), "{err}");
    let host = ns.mac("vh");
    let input = ns.file("big.pcap");
    let big = udp(host, 9, &vec![0x55; 1600]);
    write_pcap(&input, &[arp_request(HOST_IP), big, icmp_echo(host, 7)]);
    let out = ns.ok(&["send", "-i", "vh", "--rx", "--json", input.to_str().unwrap()]);
    assert!(out.contains("\"frames_skipped_oversize\":1"), "{out}");
    assert!(out.contains("\"frames_sent\":2"), "{out}");
}

/// `rxinject link vh` makes `rx-vh`: what tcpreplay (an unchanged tool) sends on it arrives
/// on `vh` as received, marked injected, and the stack answers; `unlink` removes the pair,
/// and refuses an interface it did not make.
#[test]
fn a_companion_feeds_what_tcpreplay_sends_into_the_receive_path_until_unlinked() {
    if !root() {
        return;
    }
    let ns = Netns::new("link");
    let out = ns.ok(&["link", "vh", "--json"]);
    assert!(
        out.contains("\"companion\":\"rx-vh\"") && out.contains("\"target\":\"vh\""),
        "{out}"
    );
    let host = ns.mac("vh");
    let frames = [arp_request(HOST_IP), icmp_echo(host, 0x7777)];
    let input = ns.file("in.pcap");
    write_pcap(&input, &frames);
    let on_vh = ns.file("vh.pcapng");
    let vh = ns.capture(&[
        "-i",
        "vh",
        "-c",
        "4",
        "-w",
        on_vh.to_str().unwrap(),
        "arp or icmp",
    ]);
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "tcpreplay",
            "-q",
            "-i",
            "rx-vh",
            input.to_str().unwrap(),
        ])
        .output()
        .expect("tcpreplay (Debian package tcpreplay)");
    assert!(
        o.status.success(),
        "tcpreplay: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    vh.finish();
    let got = captured(&on_vh);
    for f in &frames {
        assert!(got.iter().any(|(inb, inj, g)| *inb && *inj && g == f), "{got:?}");
    }
    assert_eq!(
        got.iter().filter(|(inb, inj, _)| !*inb && !*inj).count(),
        2,
        "two replies: {got:?}"
    );
    assert!(ns.ok(&["unlink", "rx-vh"]).contains("rx-vh removed"));
    let links = Command::new("ip")
        .args(["-n", &ns.name, "-o", "link"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains("rx-vh") && !links.contains("rxp"), "{links}");
    let o = ns.run(&["unlink", "vh"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an rxinject companion"));
}

/// Without the capabilities: the error names the one missing. The Rx path needs CAP_BPF
/// and CAP_NET_ADMIN (CAP_SYS_ADMIN stands in for either); any injection needs
/// CAP_NET_RAW. (`setpriv` drops them from the bounding set: root keeps the rest.)
#[test]
fn missing_capabilities_are_named() {
    if !root() {
        return;
    }
    let ns = Netns::new("caps");
    let frame = hex(&arp_request(HOST_IP));
    for (drop, direction, missing) in [
        ("-bpf,-sys_admin", "--rx", "CAP_BPF"),
        ("-net_admin,-sys_admin", "--rx", "CAP_NET_ADMIN"),
        ("-net_raw", "--tx", "CAP_NET_RAW"),
    ] {
        let o = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "setpriv",
                "--bounding-set",
                drop,
                "--",
                bin(),
            ])
            .args(["send", "-i", "vh", direction, "--hex", &frame])
            .output()
            .expect("setpriv (util-linux)");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{drop}: {err}");
        assert!(err.contains(&format!("lacks {missing}")), "{drop}: {err}");
    }
}

/// `-Q` and `--snaplen` as on Windows: `-Q in` keeps the echo requests injected up and none of
/// the replies (two frames counted, both in, cut to 40 bytes with their wire length kept);
/// `-Q out` the reply alone. `--duration` ends a capture that sees nothing.
#[test]
fn direction_and_snaplen_select_and_cut_and_duration_ends_a_capture() {
    if !root() {
        return;
    }
    let ns = Netns::new("dirsnap");
    let host = ns.mac("vh");
    let requests = [icmp_echo(host, 0x0a01), icmp_echo(host, 0x0a02)];
    let input = ns.file("two.pcap");
    write_pcap(&input, &requests);
    let (inbound, outbound) = (ns.file("in.pcapng"), ns.file("out.pcapng"));
    let cap_in = ns.capture(&[
        "-i",
        "vh",
        "-Q",
        "in",
        "--snaplen",
        "40",
        "-c",
        "2",
        "-w",
        inbound.to_str().unwrap(),
        "icmp",
    ]);
    let cap_out = ns.capture(&[
        "-i",
        "vh",
        "-Q",
        "out",
        "-c",
        "1",
        "-w",
        outbound.to_str().unwrap(),
        "icmp",
    ]);
    ns.ok(&["send", "-i", "vh", "--rx", input.to_str().unwrap()]);
    cap_in.finish();
    cap_out.finish();
    let got = pcap::read(&inbound).unwrap().packets;
    assert_eq!(got.len(), 2);
    for (p, r) in got.iter().zip(&requests) {
        assert_eq!(p.direction(), Some(pcap::Direction::Inbound));
        assert_eq!(p.data, r[..40], "cut at the snap length");
        assert_eq!(p.orig_len as usize, r.len(), "the wire length kept");
    }
    let got = captured(&outbound);
    assert_eq!(got.len(), 1);
    assert!(
        !got[0].0 && !got[0].1 && IcmpEcho::parse(&got[0].2).is_some_and(|e| e.reply),
        "the stack's echo reply: {got:?}"
    );
    // Nothing comes for udp port 1: the capture ends at its duration, with nothing.
    let (out, err) = ns
        .capture(&["-i", "vw", "--duration", "1", "udp port 1"])
        .finish();
    assert!(out.is_empty() && err.contains("0 frames captured"), "{out}{err}");
}

/// Frames the kernel refuses are counted, with the status: `vh` administratively down, an
/// Rx replay of three frames fails all three (`ENETDOWN`, reported as the media being
/// disconnected) and exits 1.
#[test]
fn frames_the_kernel_refuses_are_counted() {
    if !root() {
        return;
    }
    let ns = Netns::new("refused");
    let host = ns.mac("vh");
    let input = ns.file("three.pcap");
    write_pcap(
        &input,
        &[arp_request(HOST_IP), icmp_echo(host, 1), icmp_echo(host, 2)],
    );
    ip(&["-n", &ns.name, "link", "set", "vh", "down"]);
    // Both Rx ways: AF_PACKET refuses (ENETDOWN); XDP live frames would go up a down
    // interface's stack, so rxinject refuses them itself.
    for xdp in ["", "xdp"] {
        let o = ns
            .command(&["send", "-i", "vh", "--rx", "--json", input.to_str().unwrap()])
            .env(rxinject_user::linux::RX_PATH_ENV, xdp)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{xdp}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("\"frames_failed\":3") && out.contains("\"frames_sent\":0"),
            "{xdp}: {out}"
        );
        assert!(out.contains("MEDIA_DISCONNECTED"), "{xdp}: {out}");
    }
}

/// XDP live frames are built in a page: a jumbo frame the interface's MTU allows cannot be
/// made that long there. The program drops it and counts it, so the command reports it
/// failed (and the frame after it delivered), where the AF_PACKET way sends both.
#[test]
fn a_jumbo_frame_the_live_path_cannot_build_is_counted_failed() {
    if !root() {
        return;
    }
    let ns = Netns::new("jumbo");
    ip(&["-n", &ns.name, "link", "set", "vh", "mtu", "9000"]);
    let host = ns.mac("vh");
    let input = ns.file("jumbo.pcap");
    write_pcap(&input, &[udp(host, 7, &[0x4a; 5000]), udp(host, 7, b"small")]);
    let json = |xdp: &str| {
        let o = ns
            .command(&["send", "-i", "vh", "--rx", "--json", input.to_str().unwrap()])
            .env(rxinject_user::linux::RX_PATH_ENV, xdp)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (o.status.code(), v)
    };
    let (code, v) = json("xdp");
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(
        (
            v["frames_sent"].as_u64(),
            v["frames_failed"].as_u64(),
            v["frames_delivered"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{v}"
    );
    assert!(
        v["first_failure"]
            .as_str()
            .unwrap()
            .contains("INVALID_BUFFER_SIZE"),
        "{v}"
    );
    let (code, v) = json("");
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        (v["frames_sent"].as_u64(), v["frames_failed"].as_u64()),
        (Some(2), Some(0)),
        "{v}"
    );
}

/// `rxinject adapters` lists the namespace's Ethernet interfaces (not `lo`) with their index,
/// MAC and MTU.
#[test]
fn adapters_lists_the_namespaces_ethernet_interfaces() {
    if !root() {
        return;
    }
    let ns = Netns::new("list");
    ip(&["-n", &ns.name, "link", "set", "vw", "mtu", "1400"]);
    let out = ns.ok(&["adapters", "--json"]);
    assert!(!out.contains("\"name\":\"lo\""), "{out}");
    let mac = ns
        .mac("vw")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(out.contains(&mac), "{out}");
    assert!(out.contains("\"mtu\":1400"), "{out}");
    assert!(out.contains("\"name\":\"vh\""), "{out}");
}

/// Nothing stays attached: while a long Rx replay runs, `vh` has rxinject's egress program;
/// after the command exits, and after one is killed (SIGKILL: no clean-up of its own), none
/// (the tcx link died with the process).
#[test]
fn the_rx_program_is_gone_after_the_command_exits_and_after_it_is_killed() {
    if !root() {
        return;
    }
    let ns = Netns::new("gone");
    ns.ok(&["send", "-i", "vh", "--rx", "--hex", &hex(&arp_request(HOST_IP))]);
    assert_eq!(egress_programs(&ns, "vh"), 0, "after exit");
    let input = ns.file("long.pcap");
    write_pcap(&input, &[arp_request(HOST_IP)]);
    killed_once(&ns, &input, "", || egress_programs(&ns, "vh") > 0);
    assert_eq!(egress_programs(&ns, "vh"), 0, "after SIGKILL");
}

/// A long replay of `file` into `vh`'s receive path (one frame a second, a minute of it;
/// `RXINJECT_LINUX_RX` set to `rx_path`), killed with SIGKILL (no clean-up of its own) once
/// `ready` holds: a count reached, not a time; the minute only bounds a failure. Returns
/// when no process runs in `ns` any more.
fn killed_once(ns: &Netns, file: &Path, rx_path: &str, ready: impl Fn() -> bool) {
    let mut child = ns
        .command(&[
            "send",
            "-i",
            "vh",
            "--rx",
            "--pps",
            "1",
            "--loop",
            "60",
            file.to_str().unwrap(),
        ])
        .env(rxinject_user::linux::RX_PATH_ENV, rx_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the replay ended before it was ready"
        );
        std::thread::yield_now();
    }
    // (`ip netns exec` execs rxinject: the child is rxinject itself.)
    child.kill().unwrap();
    child.wait().unwrap();
    wait_gone(ns);
}

/// Waits until no rxinject process runs in `ns` (`ip netns pids`): the counts of a killed
/// one's links are read after it has gone.
fn wait_gone(ns: &Netns) {
    loop {
        let o = Command::new("ip")
            .args(["netns", "pids", &ns.name])
            .output()
            .unwrap();
        if o.stdout.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        std::thread::yield_now();
    }
}

/// The tcx egress programs attached to `dev` (`BPF_PROG_QUERY`, from a thread inside the
/// namespace).
fn egress_programs(ns: &Netns, dev: &str) -> u32 {
    let dev = std::ffi::CString::new(dev).unwrap();
    in_netns(ns, move || {
        // SAFETY: a NUL-terminated name.
        let index = unsafe { libc::if_nametoindex(dev.as_ptr()) };
        assert_ne!(index, 0);
        rxinject_user::linux::ebpf::attached(index, rxinject_user::linux::ebpf::BPF_TCX_EGRESS).unwrap()
    })
    .join()
    .unwrap()
}

/// The XDP live-frames path (`RXINJECT_LINUX_RX=xdp`): 5,000 UDP datagrams (two writes,
/// two runs) injected up on `vh` reach a socket bound in the namespace byte for byte and
/// in order; while a replay runs, the program is held by the command's own TAP (the
/// anchor), and after the command exits, and after one is killed, the TAP is gone.
#[test]
fn live_frames_reach_a_socket_in_order_and_leave_nothing_behind() {
    if !root() {
        return;
    }
    let ns = Netns::new("live");
    let host = ns.mac("vh");
    const N: u32 = 5000;
    let frames: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let mut data = i.to_be_bytes().to_vec();
            data.extend((0..(i % 200) as u8).map(|b| b ^ 0x5a));
            udp(host, 5556, &data)
        })
        .collect();
    let input = ns.file("live.pcap");
    write_pcap(&input, &frames);
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = in_netns(&ns, move || {
        let s = std::net::UdpSocket::bind("10.9.0.1:5556").unwrap();
        // Room for every datagram at once (the frames are page-sized in the kernel): the
        // count does not depend on how fast this thread reads.
        let size: libc::c_int = 64 << 20;
        // SAFETY: setsockopt(2) on the socket's descriptor with an int option.
        let r = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const size).cast(),
                4,
            )
        };
        assert_eq!(r, 0);
        tx.send(()).unwrap();
        let mut buf = vec![0u8; 2000];
        (0..N)
            .map(|_| {
                let n = s.recv(&mut buf).unwrap();
                buf[..n].to_vec()
            })
            .collect::<Vec<_>>()
    });
    rx.recv().unwrap();
    let o = ns
        .command(&["send", "-i", "vh", "--rx", "--json", input.to_str().unwrap()])
        .env(rxinject_user::linux::RX_PATH_ENV, "xdp")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = receiver.join().unwrap();
    for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(&g[..], &f[42..], "datagram {i}");
    }
    // (The program's only attachment is the anchor's link: it goes with the TAP.)
    assert_eq!(links(&ns, "rxinj"), 0, "the anchor after exit");

    let one = ns.file("one.pcap");
    write_pcap(&one, &frames[..1]);
    killed_once(&ns, &one, "xdp", || links(&ns, "rxinj") > 0);
    assert_eq!(links(&ns, "rxinj"), 0, "the anchor after SIGKILL");
}

/// The interfaces of `ns` whose names start with `prefix`.
fn links(ns: &Netns, prefix: &str) -> usize {
    let o = Command::new("ip")
        .args(["-n", &ns.name, "-o", "link", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.split(": ").nth(1).is_some_and(|n| n.starts_with(prefix)))
        .count()
}
