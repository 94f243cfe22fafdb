//! Classic BPF (the `struct bpf_insn` programs libpcap compiles filter expressions to): a
//! validator that decides whether a program may run in the kernel, and an interpreter whose
//! every packet access is bounds-checked.
//!
//! `no_std`, no `unsafe`, no allocation (but with the `alloc` feature, the user tools', which
//! lets [`validate`] work in one pass): the driver runs it on the datapath, the user tools on
//! files. The checks follow what kernels have long required of classic BPF:
//!
//! - 1 to [`MAX_INSNS`] instructions, each with a known opcode;
//! - jumps only forward, landing inside the program (so every run ends, in at most as many
//!   steps as there are instructions);
//! - the last instruction is a return;
//! - scratch memory indices below [`MEMWORDS`], and no scratch word read on any path before
//!   it is written;
//! - no division or modulo by a constant zero, no shift by a constant of 32 or more.
//!
//! At run time a load outside the packet ends the program with 0 (the packet is rejected), as
//! does a division by a zero `X`; shifts by `X` >= 32 give 0.

#![no_std]

#[cfg(feature = "alloc")]
extern crate alloc;

/// One instruction, laid out as `struct bpf_insn` (8 bytes, little-endian `k`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const _: () = assert!(core::mem::size_of::<Insn>() == 8);

impl Insn {
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    /// Decodes an instruction from its 8 bytes (as user mode passes them).
    pub fn from_bytes(b: [u8; 8]) -> Insn {
        Insn {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    pub fn to_bytes(self) -> [u8; 8] {
        let c = self.code.to_le_bytes();
        let k = self.k.to_le_bytes();
        [c[0], c[1], self.jt, self.jf, k[0], k[1], k[2], k[3]]
    }
}

/// The most instructions a program may have (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;
/// Scratch memory words (`BPF_MEMWORDS`).
pub const MEMWORDS: usize = 16;

// Instruction classes.
pub const LD: u16 = 0x00;
pub const LDX: u16 = 0x01;
pub const ST: u16 = 0x02;
pub const STX: u16 = 0x03;
pub const ALU: u16 = 0x04;
pub const JMP: u16 = 0x05;
pub const RET: u16 = 0x06;
pub const MISC: u16 = 0x07;
// Load sizes.
pub const W: u16 = 0x00;
pub const H: u16 = 0x08;
pub const B: u16 = 0x10;
// Load modes.
pub const IMM: u16 = 0x00;
pub const ABS: u16 = 0x20;
pub const IND: u16 = 0x40;
pub const MEM: u16 = 0x60;
pub const LEN: u16 = 0x80;
pub const MSH: u16 = 0xa0;
// ALU and jump operations.
pub const ADD: u16 = 0x00;
pub const SUB: u16 = 0x10;
pub const MUL: u16 = 0x20;
pub const DIV: u16 = 0x30;
pub const OR: u16 = 0x40;
pub const AND: u16 = 0x50;
pub const LSH: u16 = 0x60;
pub const RSH: u16 = 0x70;
pub const NEG: u16 = 0x80;
pub const MOD: u16 = 0x90;
pub const XOR: u16 = 0xa0;
pub const JA: u16 = 0x00;
pub const JEQ: u16 = 0x10;
pub const JGT: u16 = 0x20;
pub const JGE: u16 = 0x30;
pub const JSET: u16 = 0x40;
// Operand sources.
pub const K: u16 = 0x00;
pub const X: u16 = 0x08;
/// Return: the accumulator.
pub const A: u16 = 0x10;
// MISC operations.
pub const TAX: u16 = 0x00;
pub const TXA: u16 = 0x80;

/// Why a program was refused, and at which instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No instruction, or more than [`MAX_INSNS`].
    Length { len: usize },
    /// An opcode classic BPF does not have (or an extension this interpreter does not run).
    UnknownOpcode { at: usize, code: u16 },
    /// A jump that would land past the end of the program.
    JumpOutOfRange { at: usize },
    /// A scratch memory index of [`MEMWORDS`] or more.
    BadMemoryIndex { at: usize, k: u32 },
    /// A scratch word read on some path before any write to it.
    UninitializedMemory { at: usize, k: u32 },
    /// Division or modulo by the constant 0.
    DivisionByZero { at: usize },
    /// A shift by a constant of 32 or more.
    BadShift { at: usize, k: u32 },
    /// The last instruction is not a return.
    NoFinalReturn,
}

impl Error {
    /// A short code for the ABI (`0` is reserved for "valid").
    pub fn code(&self) -> u32 {
        match self {
            Error::Length { .. } => 1,
            Error::UnknownOpcode { .. } => 2,
            Error::JumpOutOfRange { .. } => 3,
            Error::BadMemoryIndex { .. } => 4,
            Error::UninitializedMemory { .. } => 5,
            Error::DivisionByZero { .. } => 6,
            Error::BadShift { .. } => 7,
            Error::NoFinalReturn => 8,
        }
    }

    /// The instruction at fault, if one is.
    pub fn at(&self) -> Option<usize> {
        match *self {
            Error::UnknownOpcode { at, .. }
            | Error::JumpOutOfRange { at }
            | Error::BadMemoryIndex { at, .. }
            | Error::UninitializedMemory { at, .. }
            | Error::DivisionByZero { at }
            | Error::BadShift { at, .. } => Some(at),
            Error::Length { .. } | Error::NoFinalReturn => None,
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Error::Length { len } => write!(f, "a program has 1 to {MAX_INSNS} instructions, not {len}"),
            Error::UnknownOpcode { at, code } => write!(f, "instruction {at}: unknown opcode {code:#06x}"),
            Error::JumpOutOfRange { at } => write!(f, "instruction {at}: jump past the end of the program"),
            Error::BadMemoryIndex { at, k } => {
                write!(f, "instruction {at}: scratch memory index {k} (0..{MEMWORDS})")
            }
            Error::UninitializedMemory { at, k } => {
                write!(
                    f,
                    "instruction {at}: scratch word {k} may be read before it is written"
                )
            }
            Error::DivisionByZero { at } => write!(f, "instruction {at}: division by the constant 0"),
            Error::BadShift { at, k } => write!(f, "instruction {at}: shift by {k} (at most 31)"),
            Error::NoFinalReturn => f.write_str("the last instruction is not a return"),
        }
    }
}

/// What an instruction does, decoded once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    LdAbs(u8),
    LdInd(u8),
    LdLen,
    LdImm,
    LdMem,
    LdxImm,
    LdxMem,
    LdxLen,
    LdxMsh,
    St,
    Stx,
    Alu(u16, bool),
    Neg,
    Ja,
    Jcond(u16, bool),
    RetK,
    RetA,
    Tax,
    Txa,
}

/// The bytes a load reads, from its size field (`code & 0x18`: 0x00 word, 0x08 half, 0x10
/// byte); called only on the load opcodes `decode` lists.
const fn size(code: u16) -> u8 {
    match code & 0x18 {
        W => 4,
        H => 2,
        _ => 1,
    }
}

/// The operation of opcode `code`, or none. Every opcode of classic BPF is listed by number,
/// as the BPF definition lists them (BSD `bpf.h`, Linux `filter.h`; Linux's
/// `bpf_check_classic` checks the same list): the class in the low 3 bits, the size or
/// source in bit 3 and 4, the mode or operation in the high 3 or 4. Anything else is none, a
/// code above 0xff too (which Linux refuses and libpcap's user-space interpreter aborts on).
#[inline(always)]
const fn decode(code: u16) -> Option<Op> {
    Some(match code {
        0x00 => Op::LdImm,                           // ld #k
        0x20 | 0x28 | 0x30 => Op::LdAbs(size(code)), // ld, ldh, ldb [k]
        0x40 | 0x48 | 0x50 => Op::LdInd(size(code)), // ld, ldh, ldb [x + k]
        0x60 => Op::LdMem,                           // ld M[k]
        0x80 => Op::LdLen,                           // ld #len
        0x01 => Op::LdxImm,                          // ldx #k
        0x61 => Op::LdxMem,                          // ldx M[k]
        0x81 => Op::LdxLen,                          // ldx #len
        0xb1 => Op::LdxMsh,                          // ldxb 4 * ([k] & 0xf)
        0x02 => Op::St,                              // st M[k]
        0x03 => Op::Stx,                             // stx M[k]
        // add, sub, mul, div, or, and, lsh, rsh, mod, xor #k
        0x04 | 0x14 | 0x24 | 0x34 | 0x44 | 0x54 | 0x64 | 0x74 | 0x94 | 0xa4 => Op::Alu(code & 0xf0, false),
        // the same with x
        0x0c | 0x1c | 0x2c | 0x3c | 0x4c | 0x5c | 0x6c | 0x7c | 0x9c | 0xac => Op::Alu(code & 0xf0, true),
        0x84 => Op::Neg,                                            // neg
        0x05 => Op::Ja,                                             // ja
        0x15 | 0x25 | 0x35 | 0x45 => Op::Jcond(code & 0xf0, false), // jeq, jgt, jge, jset #k
        0x1d | 0x2d | 0x3d | 0x4d => Op::Jcond(code & 0xf0, true),  // the same with x
        0x06 => Op::RetK,                                           // ret #k
        0x16 => Op::RetA,                                           // ret a
        0x07 => Op::Tax,                                            // tax
        0x87 => Op::Txa,                                            // txa
        _ => return None,
    })
}

/// Instruction `at` of a program of `n`, decoded and checked on its own (opcode, memory
/// index, constant divisor and shift, jumps inside the program).
#[inline(always)]
fn checked(i: &Insn, at: usize, n: usize) -> Result<Op, Error> {
    let op = decode(i.code).ok_or(Error::UnknownOpcode { at, code: i.code })?;
    let rest = n - at - 1;
    match op {
        Op::LdMem | Op::LdxMem | Op::St | Op::Stx if i.k as usize >= MEMWORDS => {
            Err(Error::BadMemoryIndex { at, k: i.k })
        }
        Op::Alu(DIV | MOD, false) if i.k == 0 => Err(Error::DivisionByZero { at }),
        Op::Alu(LSH | RSH, false) if i.k >= 32 => Err(Error::BadShift { at, k: i.k }),
        Op::Ja if i.k as usize >= rest => Err(Error::JumpOutOfRange { at }),
        Op::Jcond(..) if usize::from(i.jt) >= rest || usize::from(i.jf) >= rest => {
            Err(Error::JumpOutOfRange { at })
        }
        _ => Ok(op),
    }
}

/// Checks `prog` as a kernel would before running it.
///
/// With the `alloc` feature, in one pass over the program: [`compile`], what the driver runs
/// at `SET_FILTER`, into a buffer from the heap. Without it, [`validate_by_word`].
pub fn validate(prog: &[Insn]) -> Result<(), Error> {
    #[cfg(feature = "alloc")]
    {
        let mut out = alloc::vec![Compiled::default(); prog.len().min(MAX_INSNS)];
        compile(prog, &mut out)
    }
    #[cfg(not(feature = "alloc"))]
    validate_by_word(prog)
}

/// [`validate`] without a buffer for the program: each instruction checked on its own, then
/// scratch memory with one pass for each word the program reads (at most [`MEMWORDS`]). The
/// plain statement of the rules, against which `compile`'s single pass is tested.
pub fn validate_by_word(prog: &[Insn]) -> Result<(), Error> {
    if prog.is_empty() || prog.len() > MAX_INSNS {
        return Err(Error::Length { len: prog.len() });
    }
    let n = prog.len();
    for (at, i) in prog.iter().enumerate() {
        checked(i, at, n)?;
    }
    if !matches!(decode(prog[n - 1].code), Some(Op::RetK | Op::RetA)) {
        return Err(Error::NoFinalReturn);
    }
    check_memory(prog)
}

/// Every scratch read is preceded, on every path, by a write. The control flow is acyclic and
/// forward-only, so for each word one pass in program order finds the instructions reachable
/// without writing it (a 512-byte bit set: this crate is linked into the driver, whose stack
/// frames stay under a page). Only the words the program reads get a pass (most programs
/// read none, and get none); [`compile`], what the driver runs at `SET_FILTER`, does it in
/// one pass for all words, keeping the masks in its output.
fn check_memory(prog: &[Insn]) -> Result<(), Error> {
    let mut read = 0u32;
    for i in prog {
        if matches!(decode(i.code), Some(Op::LdMem | Op::LdxMem)) {
            read |= 1 << (i.k as usize % MEMWORDS);
        }
    }
    for word in 0..MEMWORDS as u32 {
        if read & (1 << word) == 0 {
            continue;
        }
        let mut reach = [0u64; MAX_INSNS / 64];
        let mark = |to: usize, reach: &mut [u64; MAX_INSNS / 64]| reach[to / 64] |= 1 << (to % 64);
        mark(0, &mut reach);
        for (at, i) in prog.iter().enumerate() {
            if reach[at / 64] & (1 << (at % 64)) == 0 {
                continue;
            }
            let op = decode(i.code).ok_or(Error::UnknownOpcode { at, code: i.code })?;
            match op {
                Op::LdMem | Op::LdxMem if i.k == word => {
                    return Err(Error::UninitializedMemory { at, k: i.k });
                }
                Op::St | Op::Stx if i.k == word => continue,
                Op::RetK | Op::RetA => {}
                Op::Ja => mark(at + 1 + i.k as usize, &mut reach),
                Op::Jcond(..) => {
                    mark(at + 1 + usize::from(i.jt), &mut reach);
                    mark(at + 1 + usize::from(i.jf), &mut reach);
                }
                _ => mark(at + 1, &mut reach),
            }
        }
    }
    Ok(())
}

/// A packet the interpreter reads: its length and a checked copy of a byte range.
pub trait Packet {
    /// Bytes in the packet.
    fn len(&self) -> usize;

    /// Copies `out.len()` bytes from `offset`; false (nothing promised in `out`) if the range
    /// is not inside the packet.
    fn read(&self, offset: usize, out: &mut [u8]) -> bool;

    /// No bytes at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The packet's first bytes, contiguous in memory (its first segment): loads inside them
    /// read there directly, the rest through [`Packet::read`]. None by default.
    fn head(&self) -> &[u8] {
        &[]
    }
}

impl Packet for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn head(&self) -> &[u8] {
        self
    }

    fn read(&self, offset: usize, out: &mut [u8]) -> bool {
        match offset
            .checked_add(out.len())
            .and_then(|end| self.get(offset..end))
        {
            Some(src) => {
                out.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

fn load(pkt: &(impl Packet + ?Sized), offset: u64, size: u8) -> Option<u32> {
    let offset = usize::try_from(offset).ok()?;
    let mut b = [0u8; 4];
    let out = &mut b[..usize::from(size)];
    if !pkt.read(offset, out) {
        return None;
    }
    Some(match size {
        4 => u32::from_be_bytes(b),
        2 => u32::from(u16::from_be_bytes([b[0], b[1]])),
        _ => u32::from(b[0]),
    })
}

/// Runs a program [`validate`] accepted on `pkt`; returns how many bytes of the packet to
/// keep (0: reject). On a program that was not validated it never panics or loops, but its
/// result is meaningless (an unknown opcode rejects the packet).
pub fn run(prog: &[Insn], pkt: &(impl Packet + ?Sized)) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEMWORDS];
    let len = u32::try_from(pkt.len()).unwrap_or(u32::MAX);
    let mut pc = 0usize;
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let Some(op) = decode(i.code) else { return 0 };
        let k = i.k;
        match op {
            Op::LdAbs(size) => match load(pkt, u64::from(k), size) {
                Some(v) => a = v,
                None => return 0,
            },
            Op::LdInd(size) => match load(pkt, u64::from(k) + u64::from(x), size) {
                Some(v) => a = v,
                None => return 0,
            },
            Op::LdLen => a = len,
            Op::LdImm => a = k,
            Op::LdMem => a = mem[(k as usize) % MEMWORDS],
            Op::LdxImm => x = k,
            Op::LdxMem => x = mem[(k as usize) % MEMWORDS],
            Op::LdxLen => x = len,
            Op::LdxMsh => match load(pkt, u64::from(k), 1) {
                Some(v) => x = (v & 0xf) << 2,
                None => return 0,
            },
            Op::St => mem[(k as usize) % MEMWORDS] = a,
            Op::Stx => mem[(k as usize) % MEMWORDS] = x,
            Op::Alu(op, use_x) => {
                let v = if use_x { x } else { k };
                a = match op {
                    ADD => a.wrapping_add(v),
                    SUB => a.wrapping_sub(v),
                    MUL => a.wrapping_mul(v),
                    DIV => match a.checked_div(v) {
                        Some(q) => q,
                        None => return 0,
                    },
                    MOD => match a.checked_rem(v) {
                        Some(r) => r,
                        None => return 0,
                    },
                    OR => a | v,
                    AND => a & v,
                    XOR => a ^ v,
                    LSH => a.checked_shl(v).unwrap_or(0),
                    RSH => a.checked_shr(v).unwrap_or(0),
                    _ => return 0,
                };
            }
            Op::Neg => a = a.wrapping_neg(),
            Op::Ja => pc = pc.saturating_add(k as usize),
            Op::Jcond(op, use_x) => {
                let v = if use_x { x } else { k };
                let taken = match op {
                    JEQ => a == v,
                    JGT => a > v,
                    JGE => a >= v,
                    _ => a & v != 0,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            Op::RetK => return k,
            Op::RetA => return a,
            Op::Tax => x = a,
            Op::Txa => a = x,
        }
    }
    0
}

/// A program that accepts every packet whole (what "no filter" means): `ret #0xffffffff`
/// (opcode `RET | K`, which is `RET`, `K` being 0).
pub const ACCEPT_ALL: [Insn; 1] = [Insn::new(RET, 0, 0, u32::MAX)];

mod compiled;
pub use compiled::{Compiled, compile, run as run_compiled};

#[cfg(test)]
mod tests;
