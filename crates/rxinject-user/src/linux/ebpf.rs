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
const STX_DW: u8 = 0x7b; // BPF_STX | BPF_DW | BPF_MEM
const LDX_DW: u8 = 0x79; // BPF_LDX | BPF_DW | BPF_MEM
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
    load_typed(prog, name, BPF_PROG_TYPE_SCHED_CLS, attach)
}

/// Loads `prog` as a program of type `kind` for `attach`. The verifier's log is asked for
/// only when a load fails (a log too small for a successful load's would fail it too,
/// with `ENOSPC`), and it is then the error's text.
fn load_typed(prog: &[Insn], name: &str, kind: u32, attach: u32) -> io::Result<OwnedFd> {
    let code: Vec<u8> = prog.iter().flat_map(Insn::bytes).collect();
    let license = b"Dual MIT/GPL\0";
    let attr = |log: &mut [u8]| {
        let mut a = [0u8; 144];
        put32(&mut a, 0, kind);
        put32(&mut a, 4, prog.len() as u32);
        put64(&mut a, 8, code.as_ptr() as u64);
        put64(&mut a, 16, license.as_ptr() as u64);
        if !log.is_empty() {
            put32(&mut a, 24, 1); // log_level
            put32(&mut a, 28, log.len() as u32);
            put64(&mut a, 32, log.as_mut_ptr() as u64);
        }
        let n = name.len().min(15);
        a[48..48 + n].copy_from_slice(&name.as_bytes()[..n]);
        put32(&mut a, 68, attach); // expected_attach_type
        a
    };
    let e = match bpf(BPF_PROG_LOAD, &mut attr(&mut [])) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let mut log = vec![0u8; 1 << 16];
    let again = bpf(BPF_PROG_LOAD, &mut attr(&mut log));
    let end = log.iter().position(|&b| b == 0).unwrap_or(0);
    match again {
        // Loaded the second time: the first failure stands (it was not the program).
        Ok(_) => Err(e),
        Err(_) if end == 0 => Err(e),
        Err(_) => Err(io::Error::new(
            e.kind(),
            format!("{e}: {}", String::from_utf8_lossy(&log[..end]).trim()),
        )),
    }
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

const BPF_MAP_CREATE: i64 = 0;
const BPF_PROG_TEST_RUN: i64 = 10;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`: an interface's XDP hook.
pub const BPF_XDP: u32 = 37;
/// `BPF_F_TEST_XDP_LIVE_FRAMES`: frames the program passes go up the stack for real.
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const HELPER_MAP_LOOKUP: i32 = 1;
const HELPER_XDP_ADJUST_TAIL: i32 = 65;
const HELPER_XDP_STORE_BYTES: i32 = 190;
const XDP_DROP: i32 = 1;
const XDP_PASS: i32 = 2;
const ST_W: u8 = 0x62; // BPF_ST | BPF_W | BPF_MEM
const ADD_K: u8 = 0x07; // BPF_ALU64 | BPF_ADD | BPF_K
const JEQ_K: u8 = 0x15;
const JGT_K: u8 = 0x25;
const JLT_K: u8 = 0xa5;
const JNE_K: u8 = 0x55;
const LD_IMM64: u8 = 0x18; // BPF_LD | BPF_DW | BPF_IMM (two slots)

/// `BPF_F_MMAPABLE`: the array's values can be mapped into the process.
const BPF_F_MMAPABLE: u32 = 1 << 10;

/// A new array map of `entries` values of `value_size` bytes (u32 keys), which the process
/// maps with [`Mapped::new`].
fn array(value_size: u32, entries: u32) -> io::Result<OwnedFd> {
    let mut a = [0u8; 144];
    put32(&mut a, 0, BPF_MAP_TYPE_ARRAY);
    put32(&mut a, 4, 4);
    put32(&mut a, 8, value_size);
    put32(&mut a, 12, entries);
    put32(&mut a, 16, BPF_F_MMAPABLE);
    bpf(BPF_MAP_CREATE, &mut a)
}

/// An mmapable array map's values, mapped shared into the process: value `i` at
/// `i * value_size` (a multiple of 8). The process reads and writes them between program
/// runs; the program reads them (and writes the cursor's) only inside the runs this
/// process makes, each within one `bpf(2)` call.
struct Mapped {
    at: std::ptr::NonNull<u8>,
    len: usize,
}

impl Mapped {
    fn new(map: &OwnedFd, len: usize) -> io::Result<Mapped> {
        // SAFETY: a new shared mapping of the map's values: the kernel checks `len` against
        // the map (values rounded to 8 bytes, times the entries) and the descriptor.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_raw_fd(),
                0,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let at = std::ptr::NonNull::new(at.cast()).ok_or_else(|| io::Error::other("mmap at 0"))?;
        Ok(Mapped { at, len })
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `len` bytes mapped readable and writable for as long as `self`, and
        // `&mut self` keeps this the one slice. The program touches the memory only during
        // a run, inside a `bpf(2)` call this process makes while no slice is alive (`send`
        // drops each before the call); on the anchor's TAP it passes before any map access.
        unsafe { std::slice::from_raw_parts_mut(self.at.as_ptr(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made, unmapped once; no slice of it outlives `self`.
        unsafe { libc::munmap(self.at.as_ptr().cast(), self.len) };
    }
}

/// `r1 = map` (the two slots of a 64-bit immediate carrying the map's descriptor).
fn ld_map(map: &OwnedFd) -> [Insn; 2] {
    [
        Insn::new(LD_IMM64, 1, BPF_PSEUDO_MAP_FD, 0, map.as_raw_fd()),
        Insn::new(0, 0, 0, 0, 0),
    ]
}

/// A TAP interface of this process, down and unaddressed, that lives as long as its
/// descriptor (not made persistent: the kernel removes it when the process exits, is
/// killed or crashes), with the live program attached to its XDP hook by a link.
///
/// Why: each `BPF_PROG_RUN` of more than one frame enters the program into the kernel's
/// XDP dispatcher and takes it out again afterwards, and each change of the dispatcher
/// waits for an RCU grace period (`bpf_dispatcher_update`: `synchronize_rcu`). That
/// is ~24 ms per run here, whatever its size: 4,096 frames took 24 ms instead of 7 ms.
/// A program attached to an interface stays in the dispatcher, and the runs then only
/// count references. The TAP receives nothing (it is down), and the program passes
/// anything not handed to it by a run for the target interface untouched.
struct Anchor {
    _tap: OwnedFd,
    _link: OwnedFd,
}

impl Anchor {
    fn new(prog: &OwnedFd) -> io::Result<Anchor> {
        const TUNSETIFF: libc::c_ulong = 0x4004_54ca; // _IOW('T', 202, int)
        const IFF_TAP: u16 = 0x0002;
        const IFF_NO_PI: u16 = 0x1000;
        // SAFETY: a NUL-terminated path; the result is checked.
        let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        let tap = unsafe { OwnedFd::from_raw_fd(fd) };
        // struct ifreq: the name (a pattern the kernel fills in), then the flags.
        let mut ifr = [0u8; 40];
        ifr[..7].copy_from_slice(b"rxinj%d");
        ifr[16..18].copy_from_slice(&(IFF_TAP | IFF_NO_PI).to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes a struct ifreq, which `ifr` holds (40 bytes).
        if unsafe { libc::ioctl(tap.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        ifr[15] = 0;
        // SAFETY: the name the kernel wrote, NUL-terminated within the array.
        let index = unsafe { libc::if_nametoindex(ifr.as_ptr().cast()) };
        if index == 0 {
            return Err(io::Error::last_os_error());
        }
        let link = attach(prog, index, BPF_XDP)?;
        Ok(Anchor {
            _tap: tap,
            _link: link,
        })
    }
}

/// Receive-path injection through XDP live frames (`BPF_PROG_RUN` with
/// `BPF_F_TEST_XDP_LIVE_FRAMES`, Linux 5.18+): the frames of a write are copied into an
/// array map mapped into the process, and one run of a small XDP program on interface
/// `ifindex` takes them in turn (a cursor in a second map), resizes the frame the kernel
/// hands it and copies the next one in, and passes it: the kernel builds the skbs in
/// batches and gives them to the stack, with no transmit path and no backlog in between.
/// Such frames carry no mark (the kernel builds their skbs after the program): a capture
/// cannot tell them from received ones.
pub struct LiveRx {
    prog: OwnedFd,
    _anchor: Option<Anchor>,
    frames: Mapped,
    cursor: Mapped,
    _maps: [OwnedFd; 2],
    ifindex: u32,
    slots: usize,
    value_size: usize,
}

/// The length of the frame the kernel hands the program each time (it is made the right
/// length, up or down, before the copy).
const TEMPLATE: u32 = 64;

impl LiveRx {
    /// For interface `ifindex`, frames of up to `max_frame` bytes, `slots` per run. Without
    /// a TAP (no `/dev/net/tun`) it works, more slowly: each run then waits for an RCU
    /// grace period (see `Anchor`).
    pub fn new(ifindex: u32, max_frame: u32, slots: u32) -> io::Result<LiveRx> {
        let value_size = (4 + max_frame).next_multiple_of(8);
        let frames_map = array(value_size, slots)?;
        let cursor_map = array(8, 1)?;
        let page = 4096;
        let frames = Mapped::new(
            &frames_map,
            (value_size as usize * slots as usize).next_multiple_of(page),
        )?;
        let cursor = Mapped::new(&cursor_map, page)?;
        let prog = live_program(&cursor_map, &frames_map, max_frame, ifindex);
        let prog = load_typed(&prog, "rxinject_live", BPF_PROG_TYPE_XDP, BPF_XDP)?;
        Ok(LiveRx {
            _anchor: Anchor::new(&prog).ok(),
            prog,
            frames,
            cursor,
            _maps: [frames_map, cursor_map],
            ifindex,
            slots: slots as usize,
            value_size: value_size as usize,
        })
    }

    /// Injects `frames` (each 14 ..= max_frame bytes, at most `slots` of them) into the
    /// receive path in one run. Returns how many the program passed to the stack: the
    /// others it dropped, because the kernel's frame could not be made that long
    /// (`bpf_xdp_adjust_tail` refuses beyond a page, less head- and tailroom: jumbo frames).
    pub fn send(&mut self, frames: &[&[u8]]) -> io::Result<usize> {
        if frames.len() > self.slots {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "more frames than the map's slots",
            ));
        }
        let template = [0u8; TEMPLATE as usize];
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex.
        let mut ctx = [0u32; 6];
        ctx[1] = TEMPLATE;
        ctx[3] = self.ifindex;
        let values = self.frames.bytes();
        for (v, f) in values.chunks_exact_mut(self.value_size).zip(frames) {
            // A frame longer than its slot (the caller checks the length: none) keeps
            // its length, which the program refuses, and so counts it dropped.
            let n = f.len().min(v.len() - 4);
            v[..4].copy_from_slice(&(f.len() as u32).to_ne_bytes());
            v[4..4 + n].copy_from_slice(&f[..n]);
        }
        // The cursor, and the count of frames dropped.
        self.cursor.bytes()[..8].fill(0);
        let mut a = [0u8; 144];
        put32(&mut a, 0, self.prog.as_raw_fd() as u32);
        put32(&mut a, 8, TEMPLATE);
        put64(&mut a, 16, template.as_ptr() as u64);
        put32(&mut a, 32, frames.len() as u32);
        put32(&mut a, 40, std::mem::size_of_val(&ctx) as u32);
        put64(&mut a, 48, ctx.as_ptr() as u64);
        put32(&mut a, 64, BPF_F_TEST_XDP_LIVE_FRAMES);
        put32(&mut a, 72, 64);
        bpf_raw(BPF_PROG_TEST_RUN, &mut a)?;
        let c = self.cursor.bytes();
        let dropped = u32::from_ne_bytes([c[4], c[5], c[6], c[7]]) as usize;
        Ok(frames.len().saturating_sub(dropped))
    }
}

/// The XDP program of [`LiveRx`], on maps `cursor` (the next slot, and the count of frames
/// dropped) and `frames`, for interface `ifindex`: anything else (the [`Anchor`]'s TAP) it
/// passes untouched.
fn live_program(cursor: &OwnedFd, frames: &OwnedFd, max_frame: u32, ifindex: u32) -> Vec<Insn> {
    // The jumps' targets (`to(target, pc)`: the offset from the jump at `pc`): `pass`;
    // `drop`, which counts the frame in the cursor's second word; and `quiet`, the drop
    // without a cursor to count in (the verifier's null check: an array's one entry is
    // always there).
    let (pass, drop, quiet) = (38i16, 40i16, 44i16);
    let to = |target: i16, pc: i16| target - pc - 1;
    let at = |pc: i16| to(drop, pc);
    let [c0, c1] = ld_map(cursor);
    let [f0, f1] = ld_map(frames);
    vec![
        // struct xdp_md's ingress_ifindex
        Insn::new(LDX_W, 2, 1, 12, 0),
        Insn::new(JNE_K, 2, 0, to(pass, 1), ifindex as i32),
        // r6 = ctx
        Insn::new(MOV_X, 6, 1, 0, 0),
        // c = &cursor[0]; i = c.next++ (c kept on the stack for `drop`)
        Insn::new(ST_W, 10, 0, -4, 0),
        Insn::new(MOV_X, 2, 10, 0, 0),
        Insn::new(ADD_K, 2, 0, 0, -4),
        c0,
        c1,
        Insn::new(CALL, 0, 0, 0, HELPER_MAP_LOOKUP),
        Insn::new(JEQ_K, 0, 0, to(quiet, 9), 0),
        Insn::new(STX_DW, 10, 0, -16, 0),
        Insn::new(LDX_W, 7, 0, 0, 0),
        Insn::new(MOV_X, 8, 7, 0, 0),
        Insn::new(ADD_K, 8, 0, 0, 1),
        Insn::new(STX_W, 0, 8, 0, 0),
        // f = frames[i]
        Insn::new(STX_W, 10, 7, -8, 0),
        Insn::new(MOV_X, 2, 10, 0, 0),
        Insn::new(ADD_K, 2, 0, 0, -8),
        f0,
        f1,
        Insn::new(CALL, 0, 0, 0, HELPER_MAP_LOOKUP),
        Insn::new(JEQ_K, 0, 0, at(21), 0),
        Insn::new(MOV_X, 9, 0, 0, 0),
        // len = f.len, 14 ..= max_frame
        Insn::new(LDX_W, 8, 9, 0, 0),
        Insn::new(JGT_K, 8, 0, at(24), max_frame as i32),
        Insn::new(JLT_K, 8, 0, at(25), 14),
        // bpf_xdp_adjust_tail(ctx, len - TEMPLATE)
        Insn::new(MOV_X, 2, 8, 0, 0),
        Insn::new(ADD_K, 2, 0, 0, -(TEMPLATE as i32)),
        Insn::new(MOV_X, 1, 6, 0, 0),
        Insn::new(CALL, 0, 0, 0, HELPER_XDP_ADJUST_TAIL),
        Insn::new(JNE_K, 0, 0, at(30), 0),
        // bpf_xdp_store_bytes(ctx, 0, f.data, len)
        Insn::new(MOV_X, 1, 6, 0, 0),
        Insn::new(MOV_K, 2, 0, 0, 0),
        Insn::new(MOV_X, 3, 9, 0, 0),
        Insn::new(ADD_K, 3, 0, 0, 4),
        Insn::new(MOV_X, 4, 8, 0, 0),
        Insn::new(CALL, 0, 0, 0, HELPER_XDP_STORE_BYTES),
        Insn::new(JNE_K, 0, 0, at(37), 0),
        // pass (also anything that is not a run's)
        Insn::new(MOV_K, 0, 0, 0, XDP_PASS),
        Insn::new(EXIT, 0, 0, 0, 0),
        // drop: c.dropped++
        Insn::new(LDX_DW, 1, 10, -16, 0),
        Insn::new(LDX_W, 2, 1, 4, 0),
        Insn::new(ADD_K, 2, 0, 0, 1),
        Insn::new(STX_W, 1, 2, 4, 0),
        // quiet
        Insn::new(MOV_K, 0, 0, 0, XDP_DROP),
        Insn::new(EXIT, 0, 0, 0, 0),
    ]
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
    fn the_live_program_s_checks_all_jump_to_its_drop_and_it_passes_otherwise() {
        // Any descriptors: the program is only built here.
        let fd = |_| std::fs::File::open("/dev/null").map(OwnedFd::from).unwrap();
        let p = live_program(&fd(0), &fd(1), 1514, 9);
        assert_eq!(p.len(), 46);
        assert_eq!(p[38], Insn::new(MOV_K, 0, 0, 0, XDP_PASS));
        // `drop` counts in the cursor's second word, through the pointer spilled at 10.
        assert_eq!(p[10], Insn::new(STX_DW, 10, 0, -16, 0));
        assert_eq!(p[40], Insn::new(LDX_DW, 1, 10, -16, 0));
        assert_eq!((p[41].off, p[43].off, p[43].code), (4, 4, STX_W));
        assert_eq!(p[44], Insn::new(MOV_K, 0, 0, 0, XDP_DROP));
        // The first check: another interface's frame (the anchor's) is passed untouched.
        assert_eq!(p[0], Insn::new(LDX_W, 2, 1, 12, 0), "xdp_md.ingress_ifindex");
        let target = |pc: usize| pc as i16 + 1 + p[pc].off;
        assert_eq!((p[1].code, p[1].imm, target(1)), (JNE_K, 9, 38));
        // No cursor: dropped, not counted (nowhere to count), never passed.
        assert_eq!((p[9].code, target(9)), (JEQ_K, 44));
        let mut jumps = 0;
        for (pc, i) in p.iter().enumerate().skip(10) {
            if [JEQ_K, JNE_K, JGT_K, JLT_K].contains(&i.code) {
                assert_eq!(target(pc), 40, "the jump at {pc}");
                jumps += 1;
            }
        }
        // The frame's lookup, the two length checks and the two helpers' results.
        assert_eq!(jumps, 5);
        assert_eq!(p[24].imm, 1514, "the longest frame");
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
