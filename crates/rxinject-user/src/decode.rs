//! A one-line description of an Ethernet frame, tcpdump-style (`IPv4 10.0.0.1.1234 >
//! 10.0.0.2.53: UDP, length 13`). Reads only what is there: a truncated frame is described as
//! far as it goes.

use std::fmt::Write;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn ipv4(b: &[u8]) -> String {
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

fn ipv6(b: &[u8]) -> String {
    let words: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    // The longest run of zero words (at least two) becomes "::".
    let (mut best, mut run) = ((0usize, 0usize), (0usize, 0usize));
    for (i, w) in words.iter().enumerate() {
        if *w == 0 {
            run = if run.1 == 0 { (i, 1) } else { (run.0, run.1 + 1) };
            if run.1 > best.1 {
                best = run;
            }
        } else {
            run = (0, 0);
        }
    }
    let hex = |ws: &[u16]| ws.iter().map(|w| format!("{w:x}")).collect::<Vec<_>>().join(":");
    if best.1 >= 2 {
        format!("{}::{}", hex(&words[..best.0]), hex(&words[best.0 + best.1..]))
    } else {
        hex(&words)
    }
}

fn mac(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

fn transport(proto: u8, src: &str, dst: &str, l4: &[u8], out: &mut String) {
    match proto {
        6 => match (u16_at(l4, 0), u16_at(l4, 2), l4.get(13)) {
            (Some(sp), Some(dp), Some(&flags)) => {
                let names: String = [(0x02, 'S'), (0x01, 'F'), (0x04, 'R'), (0x08, 'P'), (0x10, '.')]
                    .iter()
                    .filter(|(bit, _)| flags & bit != 0)
                    .map(|(_, c)| *c)
                    .collect();
                let _ = write!(out, "{src}.{sp} > {dst}.{dp}: TCP [{names}]");
            }
            _ => {
                let _ = write!(out, "{src} > {dst}: TCP (truncated)");
            }
        },
        17 => match (u16_at(l4, 0), u16_at(l4, 2), u16_at(l4, 4)) {
            (Some(sp), Some(dp), Some(len)) => {
                let _ = write!(
                    out,
                    "{src}.{sp} > {dst}.{dp}: UDP, length {}",
                    len.saturating_sub(8)
                );
            }
            _ => {
                let _ = write!(out, "{src} > {dst}: UDP (truncated)");
            }
        },
        1 | 58 => {
            let kind = match (proto, l4.first()) {
                (1, Some(8)) => "ICMP echo request".to_string(),
                (1, Some(0)) => "ICMP echo reply".to_string(),
                (58, Some(128)) => "ICMP6 echo request".to_string(),
                (58, Some(129)) => "ICMP6 echo reply".to_string(),
                (58, Some(135)) => "ICMP6 neighbor solicitation".to_string(),
                (58, Some(136)) => "ICMP6 neighbor advertisement".to_string(),
                (1, Some(t)) => format!("ICMP type {t}"),
                (_, Some(t)) => format!("ICMP6 type {t}"),
                (_, None) => "ICMP (truncated)".to_string(),
            };
            let seq = match (l4.first(), u16_at(l4, 4), u16_at(l4, 6)) {
                (Some(0 | 8 | 128 | 129), Some(id), Some(seq)) => format!(", id {id}, seq {seq}"),
                _ => String::new(),
            };
            let _ = write!(out, "{src} > {dst}: {kind}{seq}");
        }
        p => {
            let _ = write!(out, "{src} > {dst}: ip-proto-{p}");
        }
    }
}

/// Describes `frame` in one line.
pub fn describe(frame: &[u8]) -> String {
    let mut out = String::new();
    if frame.len() < 14 {
        let _ = write!(out, "runt frame of {} bytes", frame.len());
        return out;
    }
    let mut ethertype = u16_at(frame, 12).unwrap_or(0);
    let mut at = 14;
    // Up to two 802.1Q tags.
    for _ in 0..2 {
        if ethertype != 0x8100 && ethertype != 0x88a8 {
            break;
        }
        match (u16_at(frame, at), u16_at(frame, at + 2)) {
            (Some(tci), Some(next)) => {
                let _ = write!(out, "vlan {}, p {}, ", tci & 0x0fff, tci >> 13);
                ethertype = next;
                at += 4;
            }
            _ => {
                out.push_str("802.1Q (truncated)");
                return out;
            }
        }
    }
    let rest = &frame[at..];
    match ethertype {
        0x0800 => {
            if rest.len() < 20 || rest[0] >> 4 != 4 {
                out.push_str("IPv4 (truncated)");
                return out;
            }
            let ihl = usize::from(rest[0] & 0x0f) * 4;
            let (src, dst) = (ipv4(&rest[12..16]), ipv4(&rest[16..20]));
            out.push_str("IPv4 ");
            let frag = u16_at(rest, 6).unwrap_or(0) & 0x1fff;
            if frag != 0 {
                let _ = write!(out, "{src} > {dst}: fragment, offset {}", frag * 8);
            } else {
                transport(rest[9], &src, &dst, rest.get(ihl..).unwrap_or(&[]), &mut out);
            }
        }
        0x86dd => {
            if rest.len() < 40 {
                out.push_str("IPv6 (truncated)");
                return out;
            }
            out.push_str("IPv6 ");
            transport(
                rest[6],
                &ipv6(&rest[8..24]),
                &ipv6(&rest[24..40]),
                &rest[40..],
                &mut out,
            );
        }
        0x0806 => match (u16_at(rest, 6), rest.get(8..28)) {
            (Some(1), Some(b)) => {
                let _ = write!(out, "ARP, who-has {} tell {}", ipv4(&b[16..20]), ipv4(&b[6..10]));
            }
            (Some(2), Some(b)) => {
                let _ = write!(out, "ARP, reply {} is-at {}", ipv4(&b[6..10]), mac(&b[0..6]));
            }
            _ => out.push_str("ARP"),
        },
        t => {
            let _ = write!(
                out,
                "{} > {}, ethertype 0x{t:04x}",
                mac(&frame[6..12]),
                mac(&frame[0..6])
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_frames_read_like_tcpdump() {
        use ndis_sim_free::*;
        assert_eq!(
            describe(&icmp()),
            "IPv4 192.168.77.2 > 192.168.77.1: ICMP echo request, id 1, seq 7"
        );
        assert_eq!(describe(&arp()), "ARP, who-has 192.168.77.1 tell 192.168.77.2");
        assert_eq!(describe(&[0u8; 10]), "runt frame of 10 bytes");
        let mut tagged = icmp()[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x20, 0x64]);
        tagged.extend_from_slice(&icmp()[12..]);
        assert!(
            describe(&tagged).starts_with("vlan 100, p 1, IPv4 "),
            "{}",
            describe(&tagged)
        );
        assert_eq!(
            ipv6(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            "fe80::1"
        );
        // Never panics on any prefix.
        let f = icmp();
        for n in 0..f.len() {
            let _ = describe(&f[..n]);
        }
    }

    /// Frames built by hand (this crate does not depend on the simulator on every target).
    mod ndis_sim_free {
        pub fn icmp() -> Vec<u8> {
            let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
            f.extend_from_slice(&[
                0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 192, 168, 77, 2, 192, 168, 77, 1,
            ]);
            f.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, 7]);
            f
        }

        pub fn arp() -> Vec<u8> {
            let mut f = vec![0xff; 6];
            f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 0x08, 0x06]);
            f.extend_from_slice(&[
                0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 192, 168, 77, 2, 0, 0, 0, 0, 0, 0, 192, 168, 77, 1,
            ]);
            f
        }
    }
}
