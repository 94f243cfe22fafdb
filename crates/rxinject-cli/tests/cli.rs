//! The `rxinject` command against the simulator, as a user runs it: replay delivers every
//! frame byte-identical (to the host stack with --rx, to the wire with --tx), pacing follows
//! the file or the rate asked for, captures are pcapng files that tshark and capinfos read back
//! with the same frames, counts and directions, filters select what libpcap selects, and bad
//! input gets a clear message and exit status 1 (2 for usage errors), never a panic.
//!
//! Needs tcpdump, tshark and capinfos (Debian packages; `cargo xtask setup` installs them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rxinject_user::pcap::{self, Direction};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rxinject")
}

fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is needed by this test: run `cargo xtask setup` (Debian package of {name})"
    );
    Command::new(name)
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rxinject-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run rxinject")
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "rxinject {args:?} failed ({:?}):\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).expect("one JSON object")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The sample traffic (frames for sim0 and its segment) as written by our pcap writer.
fn sample_frames() -> Vec<(i128, Vec<u8>)> {
    let a = ndis_sim::AdapterConfig::ethernet(0);
    ndis_sim::packets::sample_traffic(a.mac, a.host_ip)
}

/// The sample as files written by real tools: libpcap (tcpdump -w) for pcap, Wireshark's
/// editcap for pcapng.
fn real_files(d: &Path) -> (PathBuf, PathBuf) {
    let ours = d.join("ours.pcap");
    let frames = sample_frames();
    let list: Vec<(i128, &[u8])> = frames.iter().map(|(t, f)| (*t, f.as_slice())).collect();
    pcap::write_pcap(&ours, &list).unwrap();
    let real_pcap = d.join("real.pcap");
    let o = tool("tcpdump")
        .arg("-r")
        .arg(&ours)
        .arg("-w")
        .arg(&real_pcap)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let real_ng = d.join("real.pcapng");
    let o = tool("editcap")
        .args(["-F", "pcapng"])
        .arg(&real_pcap)
        .arg(&real_ng)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (real_pcap, real_ng)
}

fn frames_of(path: &Path) -> Vec<Vec<u8>> {
    pcap::read(path)
        .unwrap()
        .packets
        .into_iter()
        .map(|p| p.data)
        .collect()
}

#[test]
fn adapters_lists_the_simulated_adapter() {
    let v = json(&["--sim", "adapters", "--json"]);
    let a = &v["adapters"][0];
    assert_eq!(
        (a["name"].as_str(), a["mac"].as_str(), a["mtu"].as_u64()),
        (Some("sim0"), Some("02:52:58:00:00:01"), Some(1500))
    );
    assert_eq!(a["state"], "running");
    let text = ok(&["--sim", "adapters"]);
    assert!(text.contains("sim0") && text.contains("1514"), "{text}");
}

#[test]
fn replay_to_rx_delivers_every_frame_of_a_real_capture_to_the_host_stack() {
    let d = dir("rx");
    let (real_pcap, real_ng) = real_files(&d);
    let expected: Vec<Vec<u8>> = sample_frames().into_iter().map(|(_, f)| f).collect();
    for file in [&real_pcap, &real_ng] {
        let stack = d.join("stack.pcap");
        let v = json(&[
            "--sim",
            "--sim-stack-out",
            s(&stack),
            "send",
            "-i",
            "sim0",
            "--rx",
            s(file),
            "--json",
        ]);
        let n = expected.len() as u64;
        assert_eq!(
            (
                v["frames_sent"].as_u64(),
                v["frames_delivered"].as_u64(),
                v["frames_failed"].as_u64()
            ),
            (Some(n), Some(n), Some(0)),
            "{file:?}: {v}"
        );
        assert_eq!(
            v["bytes_sent"].as_u64(),
            Some(expected.iter().map(|f| f.len() as u64).sum())
        );
        // Byte-identical, in order, and nothing else reached the stack.
        assert_eq!(frames_of(&stack), expected, "{file:?}");
        // The file's own timing: about 2.6 seconds (of simulated time).
        let secs = v["seconds"].as_f64().unwrap();
        assert!((2.59..2.7).contains(&secs), "{secs}");
    }
}

#[test]
fn replay_to_tx_puts_every_frame_on_the_wire() {
    let d = dir("tx");
    let (real_pcap, _) = real_files(&d);
    let wire = d.join("wire.pcap");
    let v = json(&[
        "--sim",
        "--sim-wire-out",
        s(&wire),
        "send",
        "-i",
        "sim0",
        "--tx",
        "--topspeed",
        s(&real_pcap),
        "--json",
    ]);
    let expected: Vec<Vec<u8>> = sample_frames().into_iter().map(|(_, f)| f).collect();
    assert_eq!(v["frames_delivered"].as_u64(), Some(expected.len() as u64));
    assert_eq!(frames_of(&wire), expected);
    assert!(v["seconds"].as_f64().unwrap() < 0.01, "top speed: {v}");
}

#[test]
fn pacing_follows_the_rate_or_the_multiplier_and_count_and_loop_limit() {
    let d = dir("pace");
    let (real_pcap, _) = real_files(&d);
    let f = s(&real_pcap);
    let n = sample_frames().len() as f64;
    let secs = |extra: &[&str]| -> (f64, u64) {
        let mut args = vec!["--sim", "send", "-i", "sim0", "--json"];
        args.extend_from_slice(extra);
        args.push(f);
        let v = json(&args);
        (v["seconds"].as_f64().unwrap(), v["frames_sent"].as_u64().unwrap())
    };
    let (t, sent) = secs(&["--pps", "10"]);
    assert!(((n - 1.0) / 10.0..(n - 1.0) / 10.0 + 0.02).contains(&t), "{t}");
    assert_eq!(sent, n as u64);
    let (t, _) = secs(&["--multiplier", "2"]);
    assert!((1.29..1.35).contains(&t), "{t}");
    let (t, _) = secs(&["--mbps", "1"]);
    let bits: f64 = sample_frames()[..sample_frames().len() - 1]
        .iter()
        .map(|(_, f)| f.len() as f64 * 8.0)
        .sum();
    assert!(
        (bits / 1e6..bits / 1e6 + 0.01).contains(&t),
        "{t} vs {}",
        bits / 1e6
    );
    // A rate runs across loops: 2N frames, 2N - 1 gaps.
    let (t, sent) = secs(&["--pps", "100", "--loop", "2"]);
    assert_eq!(sent, 2 * n as u64);
    assert!(
        ((2.0 * n - 1.0) / 100.0..(2.0 * n - 1.0) / 100.0 + 0.002).contains(&t),
        "{t}"
    );
    // File timing restarts with each loop, right after the previous one ends.
    let (t, _) = secs(&["--loop", "2"]);
    assert!((5.19..5.25).contains(&t), "{t}");
    let (_, sent) = secs(&["--topspeed", "--loop", "3"]);
    assert_eq!(sent, 3 * n as u64);
    let (_, sent) = secs(&["--topspeed", "--loop", "3", "--count", "20"]);
    assert_eq!(sent, 20);
}

#[test]
fn one_frame_in_hex() {
    let v = json(&[
        "--sim",
        "send",
        "-i",
        "sim0",
        "--rx",
        "--hex",
        "02:52:58:00:00:01 02:11:22:33:44:55 88:b5 00 01 02",
        "--json",
    ]);
    assert_eq!(
        (v["frames_sent"].as_u64(), v["frames_delivered"].as_u64()),
        (Some(1), Some(1))
    );
    let o = run(&["--sim", "send", "-i", "sim0", "--hex", "0252zz"]);
    assert_eq!(o.status.code(), Some(2), "a bad --hex is a usage error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a frame in hexadecimal"));
}

/// (direction, comment, bytes) of a pcapng written by rxinject, read back with tshark (counts,
/// directions) and with our reader (bytes).
fn read_back(path: &Path) -> Vec<(Direction, bool, Vec<u8>)> {
    let c = tool("capinfos").arg("-c").arg("-M").arg(path).output().unwrap();
    assert!(
        c.status.success(),
        "capinfos: {}",
        String::from_utf8_lossy(&c.stderr)
    );
    let count: usize = String::from_utf8_lossy(&c.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("Number of packets:")
                .map(|x| x.trim().parse().unwrap())
        })
        .expect("capinfos prints the count");
    let t = tool("tshark")
        .arg("-r")
        .arg(path)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.cap_len",
            "-e",
            "frame.packet_flags_direction",
            "-e",
            "frame.comment",
        ])
        .output()
        .unwrap();
    assert!(
        t.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&t.stderr)
    );
    let lines: Vec<(usize, u32, String)> = String::from_utf8_lossy(&t.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].parse().unwrap(),
                u32::from_str_radix(f[1].trim_start_matches("0x"), 16).unwrap(),
                f.get(2).unwrap_or(&"").to_string(),
            )
        })
        .collect();
    let ours = pcap::read(path).unwrap().packets;
    assert_eq!((lines.len(), ours.len()), (count, count));
    ours.into_iter()
        .zip(lines)
        .map(|(p, (len, dir, comment))| {
            assert_eq!(len, p.data.len());
            let d = p.direction().expect("a direction on every frame");
            assert_eq!(
                dir,
                if d == Direction::Inbound { 1 } else { 2 },
                "tshark and our reader agree"
            );
            let injected = comment == pcap::INJECTED_COMMENT;
            assert_eq!(injected, p.comment.is_some());
            (d, injected, p.data)
        })
        .collect()
}

#[test]
fn capture_of_the_simulated_wire_is_a_pcapng_tshark_reads_with_the_same_frames() {
    let d = dir("cap");
    let (real_pcap, _) = real_files(&d);
    let out = d.join("out.pcapng");
    let v = json(&[
        "--sim",
        "--sim-wire",
        s(&real_pcap),
        "capture",
        "-i",
        "sim0",
        "-w",
        s(&out),
        "--json",
    ]);
    let got = read_back(&out);
    let wire: Vec<Vec<u8>> = sample_frames().into_iter().map(|(_, f)| f).collect();
    let inbound: Vec<Vec<u8>> = got
        .iter()
        .filter(|g| g.0 == Direction::Inbound)
        .map(|g| g.2.clone())
        .collect();
    assert_eq!(inbound, wire, "every frame of the wire, in order, byte-identical");
    // Outbound: the host stack's answers (ARP, 5 pings, 3 UDP echoes), none injected.
    let outbound: Vec<&Vec<u8>> = got
        .iter()
        .filter(|g| g.0 == Direction::Outbound)
        .map(|g| &g.2)
        .collect();
    assert_eq!(outbound.len(), 9);
    assert!(got.iter().all(|g| !g.1));
    assert_eq!(
        (
            v["inbound"].as_u64(),
            v["outbound"].as_u64(),
            v["dropped"].as_u64()
        ),
        (Some(15), Some(9), Some(0))
    );
    // -c stops early; -Q out keeps one direction; --snaplen cuts.
    let out2 = d.join("out2.pcapng");
    ok(&[
        "--sim",
        "--sim-wire",
        s(&real_pcap),
        "capture",
        "-i",
        "sim0",
        "-w",
        s(&out2),
        "-c",
        "5",
        "-Q",
        "out",
        "--snaplen",
        "40",
    ]);
    let got = read_back(&out2);
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|g| g.0 == Direction::Outbound && g.2.len() <= 40));
    // Printed lines, one per frame.
    let text = ok(&[
        "--sim",
        "--sim-wire",
        s(&real_pcap),
        "capture",
        "-i",
        "sim0",
        "-c",
        "4",
    ]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].contains("In ") && lines[0].contains("ARP, who-has 192.168.77.1 tell 192.168.77.2"),
        "{text}"
    );
    assert!(
        lines[1].contains("Out") && lines[1].contains("ARP, reply 192.168.77.1 is-at 02:52:58:00:00:01"),
        "{text}"
    );
    // --duration (simulated seconds): the first second only.
    let out3 = d.join("out3.pcapng");
    let v = json(&[
        "--sim",
        "--sim-wire",
        s(&real_pcap),
        "capture",
        "-i",
        "sim0",
        "-w",
        s(&out3),
        "--duration",
        "1",
        "--json",
    ]);
    let first_second = sample_frames()
        .iter()
        .filter(|(t, _)| *t - sample_frames()[0].0 < 1_000_000_000)
        .count() as u64;
    assert_eq!(v["inbound"].as_u64(), Some(first_second), "{v}");
}

#[test]
fn filters_select_what_libpcap_selects() {
    let d = dir("filter");
    let (real_pcap, _) = real_files(&d);
    let all_path = d.join("all.pcapng");
    ok(&[
        "--sim",
        "--sim-wire",
        s(&real_pcap),
        "capture",
        "-i",
        "sim0",
        "-w",
        s(&all_path),
    ]);
    let all = read_back(&all_path);
    let frames: Vec<Vec<u8>> = all.iter().map(|g| g.2.clone()).collect();
    for expr in [
        "icmp",
        "udp port 7",
        "arp",
        "ip6",
        "vlan and udp",
        "ether host 02:11:22:33:44:55",
        "greater 1000",
    ] {
        // The reference: libpcap's verdict on every captured frame (tcpdump -r/-w).
        let ref_in = d.join("ref-in.pcap");
        let ref_out = d.join("ref-out.pcap");
        let list: Vec<(i128, &[u8])> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| (i as i128 * 1_000_000_000, f.as_slice()))
            .collect();
        pcap::write_pcap(&ref_in, &list).unwrap();
        let o = tool("tcpdump")
            .arg("-r")
            .arg(&ref_in)
            .arg("-w")
            .arg(&ref_out)
            .arg(expr)
            .output()
            .unwrap();
        assert!(o.status.success());
        let want: Vec<(Direction, Vec<u8>)> = pcap::read(&ref_out)
            .unwrap()
            .packets
            .iter()
            .map(|p| {
                let i = (p.timestamp_ns / 1_000_000_000) as usize;
                (all[i].0, all[i].2.clone())
            })
            .collect();
        let out = d.join("f.pcapng");
        let mut args = vec![
            "--sim",
            "--sim-wire",
            s(&real_pcap),
            "capture",
            "-i",
            "sim0",
            "-w",
            s(&out),
        ];
        args.extend(expr.split(' '));
        ok(&args);
        let got: Vec<(Direction, Vec<u8>)> = read_back(&out).into_iter().map(|g| (g.0, g.2)).collect();
        assert!(!want.is_empty(), "{expr}");
        assert_eq!(got, want, "{expr}");
        // The same program as tcpdump -ddd text.
        let ddd = tool("tcpdump")
            .args(["-ddd", "-r"])
            .arg(&ref_in)
            .arg(expr)
            .output()
            .unwrap();
        let bpf = d.join("f.bpf");
        std::fs::write(&bpf, &ddd.stdout).unwrap();
        let out2 = d.join("f2.pcapng");
        ok(&[
            "--sim",
            "--sim-wire",
            s(&real_pcap),
            "capture",
            "-i",
            "sim0",
            "-w",
            s(&out2),
            "--bpf-file",
            s(&bpf),
        ]);
        assert_eq!(
            read_back(&out2)
                .into_iter()
                .map(|g| (g.0, g.2))
                .collect::<Vec<_>>(),
            want,
            "{expr} (--bpf-file)"
        );
    }
    // A bad expression: libpcap's message.
    let o = run(&["--sim", "capture", "-i", "sim0", "tcp", "port"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("filter \"tcp port\""),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn failing(args: &[&str], code: i32, needles: &[&str]) {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: expected \"{n}\" in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_files_and_arguments_get_clear_errors() {
    let d = dir("errors");
    let (real_pcap, _) = real_files(&d);
    let good = std::fs::read(&real_pcap).unwrap();
    let garbage = d.join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture file at all").unwrap();
    failing(
        &["--sim", "send", "-i", "sim0", s(&garbage)],
        1,
        &["not a pcap or pcapng file"],
    );
    let truncated = d.join("truncated.pcap");
    std::fs::write(&truncated, &good[..good.len() - 100]).unwrap();
    failing(
        &["--sim", "send", "-i", "sim0", s(&truncated)],
        1,
        &["truncated", "offset"],
    );
    let raw = d.join("raw.pcap");
    let mut r = good.clone();
    r[20] = 101;
    std::fs::write(&raw, &r).unwrap();
    failing(
        &["--sim", "send", "-i", "sim0", s(&raw)],
        1,
        &["link type 101 (RAW", "only Ethernet"],
    );
    failing(
        &["--sim", "--sim-wire", s(&raw), "adapters"],
        1,
        &["link type 101"],
    );
    failing(
        &["--sim", "send", "-i", "sim0", "/nonexistent/x.pcap"],
        1,
        &["cannot read /nonexistent/x.pcap"],
    );
    // A frame too large for the adapter (frame 2 of 2).
    let big = d.join("big.pcap");
    let small = vec![0x02u8; 60];
    let huge = vec![0x02u8; 1600];
    pcap::write_pcap(&big, &[(0, small.as_slice()), (0, huge.as_slice())]).unwrap();
    failing(
        &["--sim", "send", "-i", "sim0", "--strict", s(&big)],
        1,
        &["frame 2 of", "is 1600 bytes", "at most 1514", "nothing was sent"],
    );
    failing(
        &["--sim", "send", "-i", "nosuch", s(&real_pcap)],
        1,
        &["no adapter \"nosuch\"", "sim0"],
    );
    // Usage errors: exit 2.
    failing(
        &["--sim", "send", "-i", "sim0", "--rx", "--tx", s(&real_pcap)],
        2,
        &["cannot be used with"],
    );
    failing(
        &["--sim", "send", "-i", "sim0", "--pps", "0", s(&real_pcap)],
        2,
        &["not a positive number"],
    );
    failing(&["--sim", "send", "-i", "sim0"], 2, &["required"]);
    failing(&["--sim-wire", "x.pcap", "adapters"], 2, &["--sim"]);
    failing(&["frobnicate"], 2, &["unrecognized subcommand"]);
    // Without --sim this (Linux) build uses the machine's interfaces: one that does not
    // exist is named (nothing is sent anywhere).
    failing(
        &[
            "send",
            "-i",
            "rxinject-none",
            "--hex",
            "ffffffffffff02000000000208060001",
        ],
        1,
        &["rxinject-none"],
    );
}

#[test]
fn no_input_file_makes_it_panic() {
    let d = dir("fuzz");
    let (real_pcap, real_ng) = real_files(&d);
    let mut x: u64 = 0x51ed_2705;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (i, base) in [
        std::fs::read(&real_pcap).unwrap(),
        std::fs::read(&real_ng).unwrap(),
    ]
    .iter()
    .cycle()
    .take(60)
    .enumerate()
    {
        let mut b = base.clone();
        for _ in 0..1 + next() % 6 {
            let at = (next() % b.len() as u64) as usize;
            b[at] = next() as u8;
        }
        if next() % 4 == 0 {
            b.truncate((next() % b.len() as u64) as usize);
        }
        let f = d.join(format!("m{i}.pcap"));
        std::fs::write(&f, &b).unwrap();
        let o = run(&["--sim", "send", "-i", "sim0", "--topspeed", s(&f)]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "exit {:?}: {err}",
            o.status.code()
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn the_windows_guide_uses_only_commands_and_flags_the_program_has() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/WINDOWS-TESTING.md");
    let guide = std::fs::read_to_string(&path).unwrap();
    // Commands may wrap across lines in the prose.
    let flat = guide.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut checked = 0;
    for part in flat.split("rxinject.exe ").skip(1) {
        let command = part.split(['`', '#']).next().unwrap_or("");
        let words: Vec<&str> = command.split_whitespace().collect();
        let Some(sub) = words.first() else { continue };
        assert!(
            ["adapters", "send", "capture", "stats"].contains(sub),
            "the guide runs `rxinject.exe {command}`: no such command"
        );
        let help = ok(&[sub, "--help"]);
        let known: Vec<&str> = help
            .split_whitespace()
            .map(|w| w.trim_end_matches(','))
            .filter(|w| w.starts_with('-'))
            .collect();
        for flag in words.iter().filter(|w| w.starts_with('-')) {
            let flag = flag.split('=').next().unwrap();
            assert!(
                known.contains(&flag),
                "the guide runs `rxinject.exe {command}`: `{sub}` has no {flag} ({known:?})"
            );
        }
        checked += 1;
    }
    assert!(checked >= 7, "found {checked} commands in the guide");
}

/// `capture -Q in -c COUNT -w OUT --json` while the simulated wire plays `file`.
fn capture_of_wire(file: &Path, out: &Path, count: u32) -> serde_json::Value {
    let count = count.to_string();
    json(&[
        "--sim",
        "--sim-wire",
        s(file),
        "capture",
        "-i",
        "sim0",
        "-Q",
        "in",
        "-c",
        &count,
        "-w",
        s(out),
        "--json",
    ])
}

/// A capture whose clock jumps 68 years ahead and then back (tcpdump's test corpus has such
/// files): the simulated replay jumps its virtual clock straight to each frame instead of
/// stepping through the gap, a step back is no wait, and `--max-sleep` caps any gap, for
/// `send` and for the simulated wire alike. (That the run ends at all is the test: it used to
/// spin for ever.)
#[test]
fn a_capture_whose_clock_jumps_by_decades_or_backwards_replays_at_once() {
    const YEAR_NS: i128 = 365 * 24 * 3600 * 1_000_000_000;
    let d = dir("clock");
    let frames = sample_frames();
    let t0: i128 = 1_000_000_000 * 1_000_000_000;
    let stamps = [t0, t0 + 68 * YEAR_NS, t0 + YEAR_NS, t0 + YEAR_NS + 1_000_000];
    let list: Vec<(i128, &[u8])> = stamps
        .iter()
        .zip(&frames)
        .map(|(t, (_, f))| (*t, f.as_slice()))
        .collect();
    let file = d.join("jumps.pcap");
    pcap::write_pcap(&file, &list).unwrap();
    let v = json(&["--sim", "send", "-i", "sim0", "--rx", s(&file), "--json"]);
    assert_eq!(v["frames_sent"].as_u64(), Some(4));
    let seconds = v["seconds"].as_f64().unwrap();
    let jump = (68 * YEAR_NS) as f64 / 1e9;
    assert!(
        (seconds - (jump + 0.001)).abs() < 0.01,
        "{seconds} s of virtual time"
    );
    let v = json(&[
        "--sim",
        "--max-sleep",
        "1",
        "send",
        "-i",
        "sim0",
        "--rx",
        s(&file),
        "--json",
    ]);
    let seconds = v["seconds"].as_f64().unwrap();
    assert!((seconds - 1.001).abs() < 0.01, "{seconds} s with --max-sleep 1");
    // The simulated wire plays the same file into a capture.
    let v = capture_of_wire(&file, &d.join("out.pcapng"), 4);
    assert_eq!(v["inbound"].as_u64(), Some(4), "{v}");
}

/// Frames the adapter cannot take (offload-sized segments, runts from fuzzed files) are
/// skipped and counted, as tcpreplay does, not fatal; --strict refuses the whole input,
/// --mtu-trunc truncates oversize frames and sends them, and an input with no sendable
/// frame fails with the reason.
#[test]
fn frames_the_adapter_cannot_take_are_skipped_and_counted() {
    let d = dir("skip");
    let frames = sample_frames();
    let good: Vec<&[u8]> = frames.iter().map(|(_, f)| f.as_slice()).take(3).collect();
    let (huge, runt) = (vec![0x02u8; 9000], vec![0x02u8; 8]);
    let list = [
        (0, good[0]),
        (1_000, huge.as_slice()),
        (2_000, good[1]),
        (3_000, runt.as_slice()),
        (4_000, huge.as_slice()),
        (5_000, good[2]),
    ];
    let file = d.join("mixed.pcap");
    pcap::write_pcap(&file, &list).unwrap();
    let o = run(&["--sim", "send", "-i", "sim0", "--rx", s(&file), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let warning = String::from_utf8_lossy(&o.stderr);
    assert_eq!(warning.matches("warning").count(), 1, "one warning: {warning}");
    assert!(
        warning.contains("frame 2 of") && warning.contains("9000 bytes"),
        "{warning}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["frames_sent"].as_u64(), Some(3));
    assert_eq!(v["frames_delivered"].as_u64(), Some(3));
    assert_eq!(
        (
            v["frames_skipped"].as_u64(),
            v["frames_skipped_oversize"].as_u64(),
            v["frames_skipped_runt"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    // The plain summary says it too.
    let text = ok(&["--sim", "send", "-i", "sim0", "--rx", s(&file)]);
    assert!(text.contains("3 skipped (2 oversize, 1 runt)"), "{text}");
    // --mtu-trunc sends the oversize frames cut to the adapter's largest frame.
    let v = json(&[
        "--sim",
        "send",
        "-i",
        "sim0",
        "--rx",
        "--mtu-trunc",
        s(&file),
        "--json",
    ]);
    assert_eq!(v["frames_sent"].as_u64(), Some(5));
    assert_eq!(v["frames_truncated"].as_u64(), Some(2));
    assert_eq!(v["frames_skipped_runt"].as_u64(), Some(1));
    // --strict: nothing is sent.
    failing(
        &["--sim", "send", "-i", "sim0", "--rx", "--strict", s(&file)],
        1,
        &["frame 2 of", "nothing was sent"],
    );
    // The simulated wire drops what a NIC would, and counts it.
    let v = capture_of_wire(&file, &d.join("wire.pcapng"), 3);
    assert_eq!(
        (v["inbound"].as_u64(), v["wire_dropped"].as_u64()),
        (Some(3), Some(3)),
        "{v}"
    );
    // Nothing sendable at all: exit 1 with the reason.
    let bad = d.join("bad.pcap");
    pcap::write_pcap(&bad, &[(0, runt.as_slice()), (1, huge.as_slice())]).unwrap();
    failing(
        &["--sim", "send", "-i", "sim0", s(&bad)],
        1,
        &["no frame of the input can be sent", "1 oversize, 1 runt"],
    );
}

/// `capture` puts the adapter in promiscuous mode for itself, as tcpdump does: on the
/// simulated wire (whose NIC honours its packet filter), frames for other stations are
/// captured; with `-p` they are not, and the host's own still are.
#[test]
fn capture_is_promiscuous_unless_told_not_to_be() {
    let d = dir("promisc");
    let a = ndis_sim::AdapterConfig::ethernet(0);
    let mut ours = ndis_sim::TestFrames::new([0x02, 0, 0, 0, 0, 9], a.mac);
    let mut others = ndis_sim::TestFrames::new([0x02, 0, 0, 0, 0, 9], [0x02, 0, 0, 0, 0, 0x77]);
    let frames = [
        ours.next_frame(),
        others.next_frame(),
        others.next_frame(),
        ours.next_frame(),
    ];
    let list: Vec<(i128, &[u8])> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (i as i128 * 1_000_000, f.as_slice()))
        .collect();
    let file = d.join("mixed.pcap");
    pcap::write_pcap(&file, &list).unwrap();
    let inbound = |extra: &[&str]| {
        let mut args = vec![
            "--sim",
            "--sim-wire",
            s(&file),
            "capture",
            "-i",
            "sim0",
            "-Q",
            "in",
            "--json",
        ];
        args.extend_from_slice(extra);
        json(&args)["inbound"].as_u64()
    };
    assert_eq!(inbound(&[]), Some(4), "promiscuous: every frame of the wire");
    assert_eq!(inbound(&["-p"]), Some(2), "not promiscuous: the host's own");
}
