//! The library the command is built on, with the simulator: a capture taken while frames are
//! injected both ways marks the injected ones, and the pcapng it writes carries the direction
//! and the injected marker the way tshark reads them; leaving out injected frames works.

use std::process::Command;

use rxinject_user::abi::capture::{self as cap, CaptureConfig};
use rxinject_user::abi::write::{Batch, DIR_RX, DIR_TX};
use rxinject_user::pcap::{self, Direction, PcapNgWriter};
use rxinject_user::{Driver, SimOptions, Target};

fn sample() -> Vec<Vec<u8>> {
    let a = ndis_sim::AdapterConfig::ethernet(0);
    ndis_sim::packets::sample_traffic(a.mac, a.host_ip)
        .into_iter()
        .map(|(_, f)| f)
        .collect()
}

#[test]
fn injected_frames_are_marked_in_the_capture_and_in_the_pcapng() {
    let driver = Driver::open(Target::Simulator(SimOptions::default())).unwrap();
    let adapter = driver.find_adapter("sim0").unwrap();
    let capture = driver.bind(&adapter).unwrap();
    capture
        .start_capture(&CaptureConfig {
            flags: cap::CAPTURE_NONBLOCK,
            ..CaptureConfig::default()
        })
        .unwrap();
    let others = driver.bind(&adapter).unwrap();
    others
        .start_capture(&CaptureConfig {
            flags: cap::CAPTURE_NONBLOCK | cap::CAPTURE_EXCLUDE_INJECTED,
            ..CaptureConfig::default()
        })
        .unwrap();
    let inject = driver.bind(&adapter).unwrap();
    let frames = sample();
    // The first two sample frames (an ARP request and an echo request for the host) up, the
    // next one (a DNS query for another host) down.
    let mut b = Batch::new();
    b.push(DIR_RX, 0, &frames[0]);
    b.push(DIR_RX, 0, &frames[1]);
    b.push(DIR_TX, 0, &frames[2]);
    let sent = inject.send(&b).unwrap();
    assert_eq!((sent.accepted, sent.status.is_success()), (3, true));
    let mut got = Vec::new();
    loop {
        let r = capture.read().unwrap();
        if r.is_empty() {
            break;
        }
        got.extend(r);
    }
    // The three injected frames, then the host's answers to the two Rx frames (ARP reply, echo
    // reply), which the stack sends on the next pump.
    let summary: Vec<(bool, bool, usize)> = got
        .iter()
        .map(|f| (f.inbound, f.injected, f.data.len()))
        .collect();
    assert_eq!(
        summary[..3],
        [
            (true, true, frames[0].len()),
            (true, true, frames[1].len()),
            (false, true, frames[2].len())
        ]
    );
    assert!(got.len() >= 3);
    // Leaving out injected frames leaves only what the host stack sent.
    let plain = others.read().unwrap();
    assert!(plain.iter().all(|f| !f.injected && !f.inbound));
    assert_eq!(plain.len(), got.len() - 3);

    // Written as pcapng, read back by tshark: directions and the injected marker.
    let dir = std::env::temp_dir().join(format!("rxinject-lib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("marked.pcapng");
    {
        let f = std::fs::File::create(&path).unwrap();
        let mut w = PcapNgWriter::new(f, "test").unwrap();
        let i = w
            .interface(adapter.if_index, "sim0", &adapter.name, 65535)
            .unwrap();
        for c in &got {
            let d = if c.inbound {
                Direction::Inbound
            } else {
                Direction::Outbound
            };
            w.packet(i, c.unix_100ns(), &c.data, c.len, d, c.injected)
                .unwrap();
        }
    }
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.packet_flags_direction",
            "-e",
            "frame.comment",
        ])
        .output()
        .expect("tshark (cargo xtask setup installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), got.len());
    assert_eq!(lines[0], format!("0x00000001\t{}", pcap::INJECTED_COMMENT));
    assert_eq!(lines[2], format!("0x00000002\t{}", pcap::INJECTED_COMMENT));
    assert!(lines[3..].iter().all(|l| l.trim_end() == "0x00000002"), "{text}");
    // And the timestamps are the capture's (2026-11-24, the simulator's boot day).
    let t = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args(["-T", "fields", "-e", "frame.time_epoch", "-c", "1"])
        .output()
        .unwrap();
    let epoch: f64 = String::from_utf8_lossy(&t.stdout).trim().parse().unwrap();
    assert!((1_795_478_400.0..1_795_478_500.0).contains(&epoch), "{epoch}");
    std::fs::remove_dir_all(dir).unwrap();
    drop((capture, others, inject));
    driver.finish().unwrap();
}
