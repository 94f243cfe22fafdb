//! What each fuzz target checks, as plain functions on the fuzzer's bytes. `fuzz/` (a
//! cargo-fuzz crate, nightly, outside the workspace) calls [`run`] from each libFuzzer
//! target; `tests/corpus.rs` (stable, in the normal test command) replays every file of the
//! seed corpora (`fuzz/corpus/<target>/`) through the same function, so an input that once
//! crashed a target, kept there, cannot come back unseen. A check fails by panicking: the
//! fuzzer records the input, the replay test names the file.
//!
//! - `write_parse`: the write-buffer parser. Whatever it accepts, `frames` iterates without
//!   fault, every frame inside the buffer, as many and as long as the parser counted.
//! - `ioctl_inputs`: one IOCTL, with arbitrary code, input and output sizes, on a handle of
//!   the driver in the simulator (bound or not): no rule broken, nothing leaked.
//! - `bpf`: every program the validator accepts runs without fault on the packet, the
//!   pre-decoded form as the reference interpreter, and both as libpcap's `bpf_filter()`
//!   when libpcap's `bpf_validate` accepts the program too. Programs libpcap accepts and we
//!   refuse are counted ([`bpf_refused_by_us_only`]), not failed.
//! - `pcap_read`, `pcapng_read`: the capture file reader never panics, and every error
//!   carries an offset inside the file.
//! - `device_sequence`: a sequence of operations on up to three handles of the driver in the
//!   simulator (create, bind, set direction, set capture, set filter, write, read, cancel,
//!   cleanup, close) and on its adapter (pause and restart, detach and re-attach), with the
//!   strict rules on: any violation, warning or leak fails.

pub mod libpcap;
mod sequence;

use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rxinject_abi::write;
use rxinject_bpf::{Compiled, Insn};

pub use sequence::{device_sequence, ioctl_inputs};

/// The fuzz targets, by name (`fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus/<name>/`).
pub const TARGETS: &[&str] = &[
    "write_parse",
    "ioctl_inputs",
    "bpf",
    "pcap_read",
    "pcapng_read",
    "device_sequence",
];

/// Runs target `name`'s check on `data`. Panics if the check fails, or if there is no such
/// target.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "write_parse" => write_parse(data),
        "ioctl_inputs" => ioctl_inputs(data),
        "bpf" => bpf(data),
        "pcap_read" | "pcapng_read" => capture_file(data),
        "device_sequence" => device_sequence(data),
        other => panic!("no fuzz target {other:?} (targets: {TARGETS:?})"),
    }
}

/// `write_parse`. The first byte picks the adapter's largest frame (1514 or 9014 bytes, as
/// the driver's `max_frame_size` gives them); the rest is the write buffer.
pub fn write_parse(data: &[u8]) {
    let Some((&pick, buf)) = data.split_first() else {
        return;
    };
    let max_frame = if pick & 1 == 0 { 1514 } else { 9014 };
    let range = buf.as_ptr_range();
    match write::parse(buf, max_frame) {
        Ok(summary) => {
            let (mut frames, mut bytes) = (0u32, 0u64);
            for f in write::frames(buf) {
                let inside = f.data.is_empty()
                    || (range.contains(&f.data.as_ptr()) && f.data.as_ptr_range().end <= range.end);
                assert!(inside, "frame {frames} outside the buffer");
                assert!(
                    f.data.len() >= rxinject_abi::MIN_FRAME_LEN as usize
                        && f.data.len() <= (max_frame + rxinject_abi::VLAN_TAG_LEN) as usize,
                    "frame {frames}: {} bytes accepted",
                    f.data.len()
                );
                frames += 1;
                bytes += f.data.len() as u64;
            }
            assert_eq!(
                (frames, bytes),
                (summary.frames, summary.frame_bytes),
                "frames iterated against the parser's count"
            );
        }
        Err(e) => {
            // Every refusal names its fault (and formatting it does not panic).
            assert!(!format!("{e:?}").is_empty());
        }
    }
    // The records as the driver's copy pass reads them, to the first fault.
    for r in write::records(buf, max_frame) {
        let Ok(r) = r else { break };
        assert!(r.data + r.length as usize <= buf.len(), "record past the buffer");
    }
}

/// `pcap_read` and `pcapng_read`: the reader on a file of these bytes.
pub fn capture_file(data: &[u8]) {
    use rxinject_user::pcap::{self, FileError};
    match pcap::parse(Path::new("fuzz.pcap"), data) {
        Ok(file) => {
            for p in &file.packets {
                assert!(p.data.len() <= data.len(), "a packet longer than the file");
                assert!(
                    p.offset < data.len(),
                    "a packet at offset {} past the file",
                    p.offset
                );
            }
        }
        Err(e) => {
            match &e {
                FileError::Malformed { offset, .. } | FileError::LinkType { offset, .. } => {
                    assert!(
                        *offset <= data.len(),
                        "error offset {offset} past the file ({} bytes)",
                        data.len()
                    );
                }
                // At offset 0: the magic.
                FileError::NotACapture { .. } => {}
                FileError::Io { .. } => panic!("an I/O error from bytes in memory"),
            }
            assert!(!e.to_string().is_empty());
        }
    }
}

static BPF_REFUSED_BY_US_ONLY: AtomicU64 = AtomicU64::new(0);
/// The kinds of refusal (`Error::code` bits) already reported on stderr.
static BPF_REFUSED_KINDS: AtomicU32 = AtomicU32::new(0);

/// How a line on stderr begins that reports a program libpcap accepts and ours refuses (the
/// first of each kind of refusal in a process; `cargo xtask fuzz` lists them).
pub const REFUSED_BY_US_ONLY: &str = "rxinject-fuzz: libpcap's bpf_validate accepts, ours refuses: ";

/// Programs libpcap's `bpf_validate` accepted and ours refused, so far in this process (not
/// failures: ours is stricter, e.g. about scratch memory read before it is written, which
/// libpcap does not check). The first of each kind is reported on stderr
/// ([`REFUSED_BY_US_ONLY`]), which `cargo xtask fuzz` lists.
pub fn bpf_refused_by_us_only() -> u64 {
    BPF_REFUSED_BY_US_ONLY.load(Ordering::Relaxed)
}

/// `bpf`. The first byte is the number of instructions (1 to 64), then 8 bytes each, as
/// `struct bpf_insn` (little-endian); the rest is the packet. Missing bytes are zero.
pub fn bpf(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 64) + 1;
    let mut raw = [0u8; 64 * 8];
    let take = rest.len().min(n * 8);
    raw[..take].copy_from_slice(&rest[..take]);
    let packet = &rest[take..];
    let prog: Vec<Insn> = raw[..n * 8]
        .chunks_exact(8)
        .map(|b| {
            Insn::new(
                u16::from_le_bytes([b[0], b[1]]),
                b[2],
                b[3],
                u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            )
        })
        .collect();
    let mut code = vec![Compiled::default(); n];
    let ours = rxinject_bpf::compile(&prog, &mut code);
    assert_eq!(
        ours,
        rxinject_bpf::validate_by_word(&prog),
        "compile and the plain rules disagree"
    );
    let lib = libpcap::get();
    let theirs = lib.map(|l| l.validate(&prog));
    match ours {
        Err(e) => {
            if theirs == Some(true) {
                BPF_REFUSED_BY_US_ONLY.fetch_add(1, Ordering::Relaxed);
                let kind = 1u32 << (e.code() % 32);
                if BPF_REFUSED_KINDS.fetch_or(kind, Ordering::Relaxed) & kind == 0 {
                    eprintln!("{REFUSED_BY_US_ONLY}{e}");
                }
            }
        }
        Ok(()) => {
            let verdict = rxinject_bpf::run_compiled(&code, packet);
            assert_eq!(
                verdict,
                rxinject_bpf::run(&prog, packet),
                "pre-decoded against the reference"
            );
            // libpcap's interpreter shifts by X modulo 32 (C's shift on x86) where classic BPF
            // and ours give 0 for X >= 32: no verdict to compare for such programs. And it
            // aborts on an opcode it does not know, which its validator lets through when the
            // bits above the 8 of an opcode are set (ours reads the 8, as `validate` does).
            let comparable = prog
                .iter()
                .all(|i| i.code < 0x100 && !matches!(i.code, 0x6c | 0x7c));
            if let Some(l) = lib
                && theirs == Some(true)
                && comparable
            {
                assert_eq!(verdict, l.run(&prog, packet), "ours against libpcap's bpf_filter");
            }
        }
    }
}
