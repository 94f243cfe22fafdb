//! The eBPF program that turns frames sent on an interface into frames received on it, built
//! from its instructions here and attached with a tcx link (Linux 6.6+) that lives as long as
//! its file descriptor: when the tool exits, is killed or crashes, the kernel detaches it.
//!
//! Why not aya: aya loads ELF objects that a BPF toolchain (bpf-linker on nightly) builds;
//! these programs are a handful of instructions, so they are written out below and loaded
//! with the `bpf(2)` syscall directly, on the stable toolchain, with no build step.
//!
//! The layouts are the kernel's UAPI (`include/uapi/linux/bpf.h`): `union bpf_attr` for
//! `BPF_PROG_LOAD` and `BPF_LINK_CREATE`, `struct __sk_buff`'s field offsets, helper
//! numbers, and the eBPF instruction encoding (the kernel's
//! Documentation/bpf/standardization/instruction-set.rst).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// rxinject's `skb->mark`s (`SO_MARK` on its sockets): "RX" (0x5258) in the high 16 bits,
/// the interface's index (15 bits) in bits 1 to 15, bit 0 set on the frames to be
/// received. The index keeps a marked frame to its interface: a frame the host forwards
/// keeps its mark (so does one crossing a veth pair), and must be neither redirected nor
/// taken for an injection elsewhere.
pub const MARK_PREFIX: u32 = 0x5258_0000;
const MARK_RX_BIT: u32 = 1;

/// The mark of the frames injected on interface `ifindex` (Rx: to be received).
pub fn mark(ifindex: u32, rx: bool) -> u32 {
    MARK_PREFIX | ((ifindex & 0x7fff) << 1) | if rx { MARK_RX_BIT } else { 0 }
}

/// Whether a frame of interface `ifindex` with `mark`, seen going up (`inbound`) or down,
/// is one rxinject injected there: up, with the Rx mark (redirected to the receive path);
/// down, with the Tx mark.
pub fn injected(mark: u32, ifindex: u32, inbound: bool) -> bool {
    mark == self::mark(ifindex, inbound)
}

const BPF_PROG_LOAD: i64 = 5;
const BPF_LINK_CREATE: i64 = 28;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
/// `enum bpf_attach_type`.
pub const BPF_TCX_INGRESS: u32 = 46;
pub const BPF_TCX_EGRESS: u32 = 47;
/// `bpf_redirect(ifindex, flags)`.
const HELPER_REDIRECT: i32 = 23;
/// `BPF_F_INGRESS`: deliver to the device's receive path.
const BPF_F_INGRESS: i32 = 1;
/// tcx's verdict: the next program, or the default action (here: transmit as usual).
const TCX_NEXT: i32 = -1;
/// `struct __sk_buff`: `mark` and `ifindex`.
const SKB_MARK: i16 = 8;
const SKB_IFINDEX: i16 = 40;

/// One eBPF instruction: opcode, registers (destination in the low nibble), offset,
/// immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | dst,
            off,
            imm,
        }
    }

    fn bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

// Opcodes: class | size/source | mode/operation.
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_W | BPF_MEM
const STX_W: u8 = 0x63; // BPF_STX | BPF_W | BPF_MEM
const LSH32_K: u8 = 0x64; // BPF_ALU | BPF_LSH | BPF_K (32 bits, the upper half cleared)
const OR32_K: u8 = 0x44; // BPF_ALU | BPF_OR | BPF_K
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// The egress program of an interface rxinject injects into: a frame with this interface's
/// Rx mark is redirected to the same interface's receive path; anything else goes on as
/// usual. 12 instructions:
///
/// ```text
/// r2 = skb->mark; r1 = skb->ifindex
/// w3 = r1 & 0x7fff; w3 <<= 1; w3 |= MARK_PREFIX | 1; if r2 != r3 goto pass
/// r2 = BPF_F_INGRESS; return bpf_redirect(r1, r2)
/// pass: return TCX_NEXT
/// ```
pub fn rx_redirect() -> Vec<Insn> {
    vec![
        Insn::new(LDX_W, 2, 1, SKB_MARK, 0),
        Insn::new(LDX_W, 1, 1, SKB_IFINDEX, 0),
        Insn::new(MOV_X, 3, 1, 0, 0),
        Insn::new(AND32_K, 3, 0, 0, 0x7fff),
        Insn::new(LSH32_K, 3, 0, 0, 1),
        Insn::new(OR32_K, 3, 0, 0, (MARK_PREFIX | MARK_RX_BIT) as i32),
        Insn::new(JNE_X, 2, 3, 3, 0),
        Insn::new(MOV_K, 2, 0, 0, BPF_F_INGRESS),
        Insn::new(CALL, 0, 0, 0, HELPER_REDIRECT),
        Insn::new(EXIT, 0, 0, 0, 0),
        Insn::new(MOV_K, 0, 0, 0, TCX_NEXT),
        Insn::new(EXIT, 0, 0, 0, 0),
    ]
}

/// The ingress program of a companion interface's peer (`rxinject link`): every frame
/// arriving on it goes to interface `target`'s receive path, with `target`'s Rx mark (a
/// capture there shows it injected).
pub fn redirect_to_ingress(target: u32) -> Vec<Insn> {
    vec![
        Insn::new(MOV_K, 2, 0, 0, mark(target, true) as i32),
        Insn::new(STX_W, 1, 2, SKB_MARK, 0),
        Insn::new(MOV_K, 1, 0, 0, target as i32),
        Insn::new(MOV_K, 2, 0, 0, BPF_F_INGRESS),
        Insn::new(CALL, 0, 0, 0, HELPER_REDIRECT),
        Insn::new(EXIT, 0, 0, 0, 0),
    ]
}

fn bpf_raw(cmd: i64, attr: &mut [u8; 144]) -> io::Result<i64> {
    // SAFETY: bpf(2) reads `attr` (valid for its 144 bytes, the kernel checks that what it
    // does not know is zero) and the buffers its fields point to, which the caller keeps
    // alive for the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// A command that returns a new descriptor.
fn bpf(cmd: i64, attr: &mut [u8; 144]) -> io::Result<OwnedFd> {
    let r = bpf_raw(cmd, attr)?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

fn put32(a: &mut [u8; 144], at: usize, v: u32) {
    a[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put64(a: &mut [u8; 144], at: usize, v: u64) {
    a[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// Loads `prog` as a tc classifier for `attach` (`BPF_TCX_*`, or 0 for a tc filter). The verifier's log is the
/// error's text when it refuses the program.
pub fn load(prog: &[Insn], name: &str, attach: u32) -> io::Result<OwnedFd> {
    let code: Vec<u8> = prog.iter().flat_map(Insn::bytes).collect();
    let license = b"Dual MIT/GPL\0";
    let mut log = vec![0u8; 4096];
    let mut a = [0u8; 144];
    put32(&mut a, 0, BPF_PROG_TYPE_SCHED_CLS);
    put32(&mut a, 4, prog.len() as u32);
    put64(&mut a, 8, code.as_ptr() as u64);
    put64(&mut a, 16, license.as_ptr() as u64);
    put32(&mut a, 24, 1); // log_level
    put32(&mut a, 28, log.len() as u32);
    put64(&mut a, 32, log.as_mut_ptr() as u64);
    let n = name.len().min(15);
    a[48..48 + n].copy_from_slice(&name.as_bytes()[..n]);
    put32(&mut a, 68, attach); // expected_attach_type
    bpf(BPF_PROG_LOAD, &mut a).map_err(|e| {
        let end = log.iter().position(|&b| b == 0).unwrap_or(0);
        if end == 0 {
            e
        } else {
            io::Error::new(
                e.kind(),
                format!("{e}: {}", String::from_utf8_lossy(&log[..end]).trim()),
            )
        }
    })
}

/// Attaches program `prog` to interface `ifindex` at `attach` (`BPF_TCX_INGRESS` or
/// `BPF_TCX_EGRESS`), behind the programs already there. The link is detached when the
/// returned descriptor (and any pin of it) is closed.
pub fn attach(prog: &OwnedFd, ifindex: u32, attach: u32) -> io::Result<OwnedFd> {
    let mut a = [0u8; 144];
    put32(&mut a, 0, prog.as_raw_fd() as u32);
    put32(&mut a, 4, ifindex);
    put32(&mut a, 8, attach);
    bpf(BPF_LINK_CREATE, &mut a)
}

/// Pins `fd` (a link) at `path` in a bpf file system: it then outlives this process, until
/// the pin is removed (`rxinject unlink`) or the interface goes.
pub fn pin(fd: &OwnedFd, path: &std::ffi::CStr) -> io::Result<()> {
    const BPF_OBJ_PIN: i64 = 6;
    let mut a = [0u8; 144];
    put64(&mut a, 0, path.as_ptr() as u64);
    put32(&mut a, 8, fd.as_raw_fd() as u32);
    bpf_raw(BPF_OBJ_PIN, &mut a).map(drop)
}

/// How many programs are attached to interface `ifindex` at `attach` (`BPF_PROG_QUERY`).
pub fn attached(ifindex: u32, attach: u32) -> io::Result<u32> {
    const BPF_PROG_QUERY: i64 = 16;
    let mut a = [0u8; 144];
    put32(&mut a, 0, ifindex);
    put32(&mut a, 4, attach);
    bpf_raw(BPF_PROG_QUERY, &mut a)?;
    Ok(u32::from_ne_bytes(a[24..28].try_into().unwrap()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rx_program_jumps_to_its_pass_branch_and_encodes_little_endian() {
        let p = rx_redirect();
        assert_eq!(p.len(), 12);
        // The jne at 6 skips 3: onto `r0 = TCX_NEXT`.
        assert_eq!(p[6].code, JNE_X);
        assert_eq!(p[6 + 1 + p[6].off as usize], Insn::new(MOV_K, 0, 0, 0, TCX_NEXT));
        assert_eq!(p[0].bytes(), [0x61, 0x12, 8, 0, 0, 0, 0, 0]);
        assert_eq!(p[5].bytes()[4..], mark(0, true).to_le_bytes());
        // The largest mark stays below 2^31: w3's OR does not reach the sign.
        assert!(mark(u32::MAX, true) < 1 << 31);
    }

    #[test]
    fn marks_carry_the_prefix_the_interface_and_the_direction() {
        let m = mark(7, true);
        assert_eq!(m, 0x5258_000f);
        assert!(injected(m, 7, true) && !injected(m, 7, false) && !injected(m, 8, true));
        assert!(injected(mark(7, false), 7, false) && !injected(mark(7, false), 7, true));
        assert!(!injected(0, 7, true));
    }
}
