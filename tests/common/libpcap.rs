//! libpcap as the reference: programs compiled by libpcap from real filter expressions, and
//! libpcap's own verdict on frames, both through `tcpdump` (`cargo xtask setup` installs it).
//! Nothing here opens a network device: tcpdump reads and writes pcap files only.

use std::path::{Path, PathBuf};
use std::process::Command;

use rxinject_bpf::Insn;

fn tcpdump() -> Command {
    let c = Command::new("tcpdump");
    if which("tcpdump").is_none() {
        panic!(
            "tcpdump is needed to compile filter expressions with libpcap: run `cargo xtask setup` (or apt-get install tcpdump)"
        );
    }
    c
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
}

/// A scratch directory for this test process.
fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("rxinject-libpcap-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

/// A pcap file (microsecond timestamps, Ethernet) holding `frames`, frame `i` stamped with
/// second `i`.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).expect("write pcap");
}

/// The second stamps of the records of a pcap file.
fn read_pcap_seconds(path: &Path) -> Vec<u32> {
    let data = std::fs::read(path).expect("read pcap");
    let mut at = 24;
    let mut v = Vec::new();
    while at + 16 <= data.len() {
        let sec = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
        let incl = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        v.push(sec);
        at += 16 + incl;
    }
    v
}

/// The program libpcap compiles `expr` to, for Ethernet (`tcpdump -ddd`).
pub fn compile(expr: &str) -> Vec<Insn> {
    let dir = scratch();
    let empty = dir.join("empty.pcap");
    write_pcap(&empty, &[]);
    let out = tcpdump()
        .arg("-ddd")
        .arg("-r")
        .arg(&empty)
        .arg(expr)
        .output()
        .expect("run tcpdump");
    assert!(
        out.status.success(),
        "tcpdump -ddd {expr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = text.lines();
    let n: usize = lines.next().expect("count").trim().parse().expect("a count");
    let insns: Vec<Insn> = lines
        .map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .map(|x| x.parse().expect("a number"))
                .collect();
            Insn::new(f[0] as u16, f[1] as u8, f[2] as u8, f[3])
        })
        .collect();
    assert_eq!(insns.len(), n, "tcpdump -ddd {expr}");
    insns
}

/// Which of `frames` libpcap's own interpreter accepts with `expr` (`tcpdump -r ... -w ...`).
pub fn matches(expr: &str, frames: &[Vec<u8>]) -> Vec<bool> {
    let dir = scratch();
    let name = format!("{:016x}", {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        expr.hash(&mut h);
        frames.hash(&mut h);
        h.finish()
    });
    let input = dir.join(format!("{name}-in.pcap"));
    let output = dir.join(format!("{name}-out.pcap"));
    write_pcap(&input, frames);
    let out = tcpdump()
        .arg("-r")
        .arg(&input)
        .arg("-w")
        .arg(&output)
        .arg(expr)
        .output()
        .expect("run tcpdump");
    assert!(
        out.status.success(),
        "tcpdump -r/-w {expr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = read_pcap_seconds(&output);
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    (0..frames.len() as u32).map(|i| kept.contains(&i)).collect()
}
