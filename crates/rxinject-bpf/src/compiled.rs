//! The form the driver runs: a program validated once and pre-decoded, so that the
//! interpreter does no decoding per instruction: one operation code per instruction (the
//! class, size, operation and source resolved), jump targets absolute, constants in place.
//! Loads read straight from the packet's first contiguous segment when the bytes lie there
//! (the usual case) and walk the packet only across segments.
//!
//! [`compile`] keeps every guarantee of [`crate::validate`], with the same verdict on every
//! program (tests compare them): known opcodes, forward jumps inside the program, a final
//! return, no division by a constant 0 or shift by 32 and more, scratch memory written before
//! it is read on every path. It is linear in the program: one pass decodes and checks, one
//! pass follows, for every instruction, the set of scratch words written on every path to it
//! (kept in the output itself: nothing on the stack grows with the program).

use crate::{
    ADD, AND, DIV, Error, Insn, JEQ, JGE, JGT, LSH, MEMWORDS, MOD, MUL, OR, Op, Packet, RSH, SUB, XOR, load,
};

/// An operation, decoded.
#[repr(u8)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Kind {
    #[default]
    RetK,
    RetA,
    LdAbsW,
    LdAbsH,
    LdAbsB,
    LdIndW,
    LdIndH,
    LdIndB,
    LdLen,
    LdImm,
    LdMem,
    LdxImm,
    LdxMem,
    LdxLen,
    LdxMsh,
    St,
    Stx,
    AddK,
    AddX,
    SubK,
    SubX,
    MulK,
    MulX,
    DivK,
    DivX,
    ModK,
    ModX,
    OrK,
    OrX,
    AndK,
    AndX,
    XorK,
    XorX,
    LshK,
    LshX,
    RshK,
    RshX,
    Neg,
    Ja,
    JeqK,
    JeqX,
    JgtK,
    JgtX,
    JgeK,
    JgeX,
    JsetK,
    JsetX,
    Tax,
    Txa,
    // A load and the conditional jump on it that follows, fused (the pair libpcap's code is
    // made of: `ldh [12]; jeq #0x800`): the load's offset is in `aux`, the comparison's
    // constant in `k`. A is set as the load sets it.
    LdAbsWJeq,
    LdAbsHJeq,
    LdAbsBJeq,
    LdIndWJeq,
    LdIndHJeq,
    LdIndBJeq,
    LdAbsWJset,
    LdAbsHJset,
    LdAbsBJset,
    LdIndWJset,
    LdIndHJset,
    LdIndBJset,
    // `jeq #k1 jt T jf next; jeq #k2 jt T jf F` (an ethertype, protocol or address among
    // several): `k2` in `k2`, F in `jf`.
    JeqKOrK,
    // `ld [off]; and #mask`: `off` in `aux`, the mask in `k`; goes on at `jt`.
    LdAbsWAndK,
    // `ld [off]; and #mask; jeq #k` (a network): `off` in `aux`, the mask in `k2`.
    LdAbsWAndKJeq,
    // `jeq #k jt next jf F; ldb [off]; jeq #k2 jt T jf F` (an EtherType, then the protocol
    // byte): `off` in `aux`, T in `jt`, F in `jf`. A is loaded only if it equals `k`.
    JeqKLdAbsBJeq,
    // `ldxb 4*([m]&0xf); ldh [x+off]; jeq #k` (a TCP or UDP port): `m` (8 bits) in
    // `flags`, `off` in `aux`; X and A are set as the pair sets them.
    LdxMshLdIndHJeq,
}

/// One pre-decoded instruction (16 bytes: indexing is a shift). Only [`compile`] makes one other than the default
/// (a return of 0), so every program the interpreter runs jumps forward only and ends.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compiled {
    kind: Kind,
    /// On the first instruction: [`USES_MEMORY`] if the program touches scratch memory.
    flags: u8,
    /// While compiling: the scratch words written on every path here (bit per word). Then,
    /// for a fused load and jump, the load's offset.
    aux: u16,
    /// Where a jump goes when taken (absolute), or `Ja`'s target.
    jt: u16,
    /// Where a conditional jump goes when not taken (absolute).
    jf: u16,
    k: u32,
    /// A second constant: `JeqKOrK`'s second.
    k2: u32,
}

const _: () = assert!(core::mem::size_of::<Compiled>() == 16);

/// The kind of every 8-bit opcode (None: not an instruction), worked out when this crate is
/// compiled: `compile` looks an opcode up instead of decoding it. (An opcode above 255 is
/// decoded, as `validate` does.)
const KINDS: [Option<Kind>; 256] = {
    let mut t = [None; 256];
    let mut code = 0;
    while code < 256 {
        t[code] = match crate::decode(code as u16) {
            Some(op) => Some(kind_of(op)),
            None => None,
        };
        code += 1;
    }
    t
};

/// `checked` by kind: `i` (instruction `at` of `n`) decoded by [`KINDS`] and checked on its
/// own, with the same error as `checked`.
#[inline(always)]
fn checked_kind(i: &Insn, at: usize, n: usize) -> Result<Kind, Error> {
    use Kind::*;
    let kind = match KINDS.get(usize::from(i.code)) {
        Some(&kind) => kind,
        None => crate::decode(i.code).map(kind_of),
    };
    let Some(kind) = kind else {
        return Err(Error::UnknownOpcode { at, code: i.code });
    };
    let rest = n - at - 1;
    match kind {
        LdMem | LdxMem | St | Stx if i.k as usize >= MEMWORDS => Err(Error::BadMemoryIndex { at, k: i.k }),
        DivK | ModK if i.k == 0 => Err(Error::DivisionByZero { at }),
        LshK | RshK if i.k >= 32 => Err(Error::BadShift { at, k: i.k }),
        Ja if i.k as usize >= rest => Err(Error::JumpOutOfRange { at }),
        _ if conditional(kind) && (usize::from(i.jt) >= rest || usize::from(i.jf) >= rest) => {
            Err(Error::JumpOutOfRange { at })
        }
        _ => Ok(kind),
    }
}

const fn kind_of(op: Op) -> Kind {
    use Kind::*;
    match op {
        Op::LdAbs(4) => LdAbsW,
        Op::LdAbs(2) => LdAbsH,
        Op::LdAbs(_) => LdAbsB,
        Op::LdInd(4) => LdIndW,
        Op::LdInd(2) => LdIndH,
        Op::LdInd(_) => LdIndB,
        Op::LdLen => LdLen,
        Op::LdImm => LdImm,
        Op::LdMem => LdMem,
        Op::LdxImm => LdxImm,
        Op::LdxMem => LdxMem,
        Op::LdxLen => LdxLen,
        Op::LdxMsh => LdxMsh,
        Op::St => St,
        Op::Stx => Stx,
        Op::Alu(o, x) => match (o, x) {
            (ADD, false) => AddK,
            (ADD, true) => AddX,
            (SUB, false) => SubK,
            (SUB, true) => SubX,
            (MUL, false) => MulK,
            (MUL, true) => MulX,
            (DIV, false) => DivK,
            (DIV, true) => DivX,
            (MOD, false) => ModK,
            (MOD, true) => ModX,
            (OR, false) => OrK,
            (OR, true) => OrX,
            (AND, false) => AndK,
            (AND, true) => AndX,
            (XOR, false) => XorK,
            (XOR, true) => XorX,
            (LSH, false) => LshK,
            (LSH, true) => LshX,
            (RSH, false) => RshK,
            _ => RshX,
        },
        Op::Neg => Neg,
        Op::Ja => Ja,
        Op::Jcond(o, x) => match (o, x) {
            (JEQ, false) => JeqK,
            (JEQ, true) => JeqX,
            (JGT, false) => JgtK,
            (JGT, true) => JgtX,
            (JGE, false) => JgeK,
            (JGE, true) => JgeX,
            (_, false) => JsetK,
            _ => JsetX,
        },
        Op::RetK => RetK,
        Op::RetA => RetA,
        Op::Tax => Tax,
        Op::Txa => Txa,
    }
}

/// Validates `prog` and writes its pre-decoded form into `out[..prog.len()]`; the same
/// verdict as [`crate::validate`]. `out` shorter than the program is refused as a length
/// error (nothing the caller should let happen).
pub fn compile(prog: &[Insn], out: &mut [Compiled]) -> Result<(), Error> {
    let n = prog.len();
    if n == 0 || n > crate::MAX_INSNS || out.len() < n {
        return Err(Error::Length { len: n });
    }
    // Decode and check each instruction (the first fault in program order, as validate).
    let mut uses_memory = false;
    for (at, i) in prog.iter().enumerate() {
        let kind = checked_kind(i, at, n)?;
        uses_memory |= matches!(kind, Kind::LdMem | Kind::LdxMem | Kind::St | Kind::Stx);
        // In range (checked above; targets < n <= 4096 fit a u16).
        let (jt, jf) = if kind == Kind::Ja {
            (at + 1 + i.k as usize, 0)
        } else if conditional(kind) {
            (at + 1 + usize::from(i.jt), at + 1 + usize::from(i.jf))
        } else {
            (0, 0)
        };
        out[at] = Compiled {
            kind,
            flags: 0,
            aux: u16::MAX,
            jt: jt as u16,
            jf: jf as u16,
            k: i.k,
            k2: 0,
        };
    }
    if !matches!(out[n - 1].kind, Kind::RetK | Kind::RetA) {
        return Err(Error::NoFinalReturn);
    }
    // No path has written anything when the program starts.
    out[0].aux = 0;
    // Then, in order: jumps to `ret #k` are marked (`TO_RET`: they return from the jump,
    // saving the return's own dispatch), scratch memory is checked (for the programs that
    // use it), and idioms are fused one behind (once the next instruction's targets are
    // marked).
    //
    // Scratch memory: each instruction's mask (`aux` while compiling) is the AND over the
    // paths reaching it of the words they wrote (all ones: no path yet, so an unreachable
    // instruction reads nothing). The first offending read of each word (`NONE`: none),
    // reported for the lowest word, as validate does.
    const NONE: u16 = u16::MAX;
    let mut first = [NONE; MEMWORDS];
    for at in 0..n {
        let kind = out[at].kind;
        if conditional(kind) {
            let (jt, jf) = (out[at].jt, out[at].jf);
            out[at].jt = marked(out, jt);
            out[at].jf = marked(out, jf);
        } else if kind == Kind::Ja {
            out[at].jt = marked(out, out[at].jt);
        }
        if uses_memory {
            let c = out[at];
            // (Unmarked: the targets as decoded.)
            let (c_jt, c_jf) = (c.jt & !TO_RET, c.jf & !TO_RET);
            let mut state = c.aux;
            let word = c.k as usize % MEMWORDS;
            match c.kind {
                Kind::LdMem | Kind::LdxMem if state & (1 << word) == 0 && first[word] == NONE => {
                    first[word] = at as u16;
                }
                Kind::St | Kind::Stx => state |= 1 << word,
                _ => {}
            }
            let mut flow = |to: u16| {
                if let Some(t) = out.get_mut(usize::from(to)) {
                    t.aux &= state;
                }
            };
            if kind == Kind::Ja {
                flow(c_jt);
            } else if conditional(kind) {
                flow(c_jt);
                flow(c_jf);
            } else if !matches!(kind, Kind::RetK | Kind::RetA) {
                flow((at + 1) as u16);
            }
        }
        if at > 0 {
            fuse(out, at - 1);
        }
    }
    if uses_memory && let Some((k, &at)) = first.iter().enumerate().find(|&(_, &a)| a != NONE) {
        return Err(Error::UninitializedMemory {
            at: usize::from(at),
            k: k as u32,
        });
    }
    if uses_memory {
        out[0].flags |= USES_MEMORY;
    }
    Ok(())
}

/// Whether `kind` is a conditional jump (before fusion).
#[inline(always)]
const fn conditional(kind: Kind) -> bool {
    use Kind::*;
    matches!(kind, JeqK | JeqX | JgtK | JgtX | JgeK | JgeX | JsetK | JsetX)
}

/// In a jump target: the target is `ret #k`, taken at once (`run`). Targets are below
/// `MAX_INSNS` (4096), so the bit is free.
const TO_RET: u16 = 0x8000;

/// [`Compiled::flags`] of the first instruction: the program reads or writes scratch memory
/// (else `run` skips setting it up).
const USES_MEMORY: u8 = 1;

impl Compiled {
    /// Which of the fused idioms this is (tests): 0 `JeqKOrK`, 1 `LdAbsWAndK`, 2
    /// `LdxMshLdIndHJeq`, 3 `LdAbsWAndKJeq`, 4 `JeqKLdAbsBJeq`.
    #[cfg(test)]
    pub(crate) fn idiom(&self) -> Option<usize> {
        match self.kind {
            Kind::JeqKOrK => Some(0),
            Kind::LdAbsWAndK => Some(1),
            Kind::LdxMshLdIndHJeq => Some(2),
            Kind::LdAbsWAndKJeq => Some(3),
            Kind::JeqKLdAbsBJeq => Some(4),
            _ => None,
        }
    }

    /// This is a fused form: a load and its jump, or an idiom (tests).
    #[cfg(test)]
    pub(crate) fn is_fused(&self) -> bool {
        self.kind as u8 >= Kind::LdAbsWJeq as u8
    }
}

/// Fuses the instruction at `at` with the one after it (and, for the idioms of three, the one
/// after that) into one operation: a load and the `jeq #k` or `jset #k` on it, and tcpdump's
/// idioms (see `Kind`). The instructions fused over stay as they were: a jump landing on one
/// still finds it (only the fall-through is replaced). Called once the instruction after
/// `at` has its targets marked.
#[inline(always)]
fn fuse(out: &mut [Compiled], at: usize) {
    use Kind::*;
    // The fused forms of each load (in `Kind`'s order, LdAbsW to LdIndB).
    const JEQ: [Kind; 6] = [LdAbsWJeq, LdAbsHJeq, LdAbsBJeq, LdIndWJeq, LdIndHJeq, LdIndBJeq];
    const JSET: [Kind; 6] = [
        LdAbsWJset, LdAbsHJset, LdAbsBJset, LdIndWJset, LdIndHJset, LdIndBJset,
    ];
    let (first, second) = (out[at], out[at + 1]);
    let pair = |kind: Kind| Compiled {
        kind,
        flags: 0,
        aux: first.k as u16,
        jt: second.jt,
        jf: second.jf,
        k: second.k,
        k2: 0,
    };
    let fused = match first.kind {
        JeqK if second.kind == JeqK => {
            if usize::from(first.jf) != at + 1 || first.jt != second.jt {
                return;
            }
            Compiled {
                kind: JeqKOrK,
                jf: second.jf,
                k2: second.k,
                ..first
            }
        }
        JeqK if second.kind == LdAbsB
            && usize::from(first.jt) == at + 1
            && second.k <= u32::from(u16::MAX) =>
        {
            match out.get(at + 2) {
                // (`first`'s targets are marked already, the jeq's not yet.)
                Some(&jump) if jump.kind == JeqK && jump.jf == first.jf & !TO_RET => Compiled {
                    kind: JeqKLdAbsBJeq,
                    flags: 0,
                    aux: second.k as u16,
                    jt: marked(out, jump.jt),
                    jf: first.jf,
                    k: first.k,
                    k2: jump.k,
                },
                _ => return,
            }
        }
        _ if first.k > u32::from(u16::MAX) => return,
        LdAbsW | LdAbsH | LdAbsB | LdIndW | LdIndH | LdIndB => {
            let load = usize::from(first.kind as u8 - LdAbsW as u8);
            match second.kind {
                JeqK => pair(JEQ[load % 6]),
                JsetK => pair(JSET[load % 6]),
                AndK if first.kind == LdAbsW => match out.get(at + 2) {
                    Some(&jump) if jump.kind == JeqK => Compiled {
                        kind: LdAbsWAndKJeq,
                        flags: 0,
                        aux: first.k as u16,
                        jt: marked(out, jump.jt),
                        jf: marked(out, jump.jf),
                        k: jump.k,
                        k2: second.k,
                    },
                    _ => Compiled {
                        jt: (at + 2) as u16,
                        ..pair(LdAbsWAndK)
                    },
                },
                _ => return,
            }
        }
        // Not at 0, whose `flags` are the program's.
        LdxMsh
            if at > 0
                && second.kind == LdIndH
                && first.k <= u32::from(u8::MAX)
                && second.k <= u32::from(u16::MAX) =>
        {
            match out.get(at + 2) {
                Some(&jump) if jump.kind == JeqK => Compiled {
                    kind: LdxMshLdIndHJeq,
                    flags: first.k as u8,
                    aux: second.k as u16,
                    jt: marked(out, jump.jt),
                    jf: marked(out, jump.jf),
                    k: jump.k,
                    k2: 0,
                },
                _ => return,
            }
        }
        _ => return,
    };
    out[at] = fused;
}

/// Target `t`, marked `TO_RET` if it is `ret #k` (an instruction `compile` has decoded).
fn marked(out: &[Compiled], t: u16) -> u16 {
    match out.get(usize::from(t)) {
        Some(r) if r.kind == Kind::RetK => t | TO_RET,
        _ => t,
    }
}

/// A load across the packet's segments (the rare case), out of line.
#[cold]
#[inline(never)]
fn load_walking(pkt: &(impl Packet + ?Sized), off: usize, size: usize) -> Option<u32> {
    load(pkt, off as u64, size as u8)
}

/// Runs a program [`compile`] produced on `pkt`: how many bytes of the packet to keep (0:
/// reject). The same result as [`crate::run`] on the source program.
pub fn run(prog: &[Compiled], pkt: &(impl Packet + ?Sized)) -> u32 {
    match prog.first() {
        Some(i) if i.flags & USES_MEMORY != 0 => run_with::<MEMWORDS>(prog, pkt),
        _ => run_with::<0>(prog, pkt),
    }
}

/// `run` with `WORDS` words of scratch memory: all of them, or none for the programs that use
/// none (most: the validator proved every read follows a write, so with no write there is
/// no read).
#[inline(always)]
fn run_with<const WORDS: usize>(prog: &[Compiled], pkt: &(impl Packet + ?Sized)) -> u32 {
    use Kind::*;
    let head = pkt.head();
    // A load of `size` bytes at `off` into the accumulator's value: from the first segment when
    // the bytes lie there, else through the packet's walk; a load outside the packet rejects it.
    // (Written out, not through an `Option`, so that the fast path tests one bound.)
    macro_rules! ld {
        ($off:expr, $size:expr) => {{
            let off: usize = $off;
            match head.get(off..off + $size) {
                Some(b) => match $size {
                    4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    2 => u32::from(u16::from_be_bytes([b[0], b[1]])),
                    _ => u32::from(b[0]),
                },
                None => match load_walking(pkt, off, $size) {
                    Some(v) => v,
                    None => return 0,
                },
            }
        }};
    }
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; WORDS];
    let mut pc = 0usize;
    // A jump: to the target, or, when the target is `ret #k` (marked by `compile`), straight
    // out with its value.
    macro_rules! goto {
        ($t:expr) => {{
            let t: u16 = $t;
            if t & TO_RET != 0 {
                return prog.get(usize::from(t & !TO_RET)).map_or(0, |r| r.k);
            }
            pc = usize::from(t);
        }};
    }
    // Nearly every program tcpdump writes for Ethernet begins with `ldh [12]` (the EtherType)
    // and a `jeq`, fused: run before the loop, it costs a comparison, not a dispatch.
    if let Some(i) = prog.first()
        && i.kind == LdAbsHJeq
    {
        a = ld!(usize::from(i.aux), 2);
        goto!(if a == i.k { i.jt } else { i.jf });
    }
    loop {
        let Some(i) = prog.get(pc) else { return 0 };
        pc += 1;
        let k = i.k;
        match i.kind {
            RetK => return k,
            RetA => return a,
            LdAbsW => a = ld!(k as usize, 4),
            LdAbsH => a = ld!(k as usize, 2),
            LdAbsB => a = ld!(k as usize, 1),
            LdIndW => a = ld!(k as usize + x as usize, 4),
            LdIndH => a = ld!(k as usize + x as usize, 2),
            LdIndB => a = ld!(k as usize + x as usize, 1),
            LdLen => a = u32::try_from(pkt.len()).unwrap_or(u32::MAX),
            LdImm => a = k,
            LdMem => a = mem.get(k as usize % MEMWORDS).copied().unwrap_or(0),
            LdxImm => x = k,
            LdxMem => x = mem.get(k as usize % MEMWORDS).copied().unwrap_or(0),
            LdxLen => x = u32::try_from(pkt.len()).unwrap_or(u32::MAX),
            LdxMsh => x = (ld!(k as usize, 1) & 0xf) << 2,
            St => {
                if let Some(m) = mem.get_mut(k as usize % MEMWORDS) {
                    *m = a;
                }
            }
            Stx => {
                if let Some(m) = mem.get_mut(k as usize % MEMWORDS) {
                    *m = x;
                }
            }
            AddK => a = a.wrapping_add(k),
            AddX => a = a.wrapping_add(x),
            SubK => a = a.wrapping_sub(k),
            SubX => a = a.wrapping_sub(x),
            MulK => a = a.wrapping_mul(k),
            MulX => a = a.wrapping_mul(x),
            DivK | DivX => {
                let v = if i.kind == DivK { k } else { x };
                match a.checked_div(v) {
                    Some(q) => a = q,
                    None => return 0,
                }
            }
            ModK | ModX => {
                let v = if i.kind == ModK { k } else { x };
                match a.checked_rem(v) {
                    Some(r) => a = r,
                    None => return 0,
                }
            }
            OrK => a |= k,
            OrX => a |= x,
            AndK => a &= k,
            AndX => a &= x,
            XorK => a ^= k,
            XorX => a ^= x,
            LshK => a = a.checked_shl(k).unwrap_or(0),
            LshX => a = a.checked_shl(x).unwrap_or(0),
            RshK => a = a.checked_shr(k).unwrap_or(0),
            RshX => a = a.checked_shr(x).unwrap_or(0),
            Neg => a = a.wrapping_neg(),
            Ja => goto!(i.jt),
            JeqK => goto!(if a == k { i.jt } else { i.jf }),
            JeqX => goto!(if a == x { i.jt } else { i.jf }),
            JgtK => goto!(if a > k { i.jt } else { i.jf }),
            JgtX => goto!(if a > x { i.jt } else { i.jf }),
            JgeK => goto!(if a >= k { i.jt } else { i.jf }),
            JgeX => goto!(if a >= x { i.jt } else { i.jf }),
            JsetK => goto!(if a & k != 0 { i.jt } else { i.jf }),
            JsetX => goto!(if a & x != 0 { i.jt } else { i.jf }),
            Tax => x = a,
            Txa => a = x,
            LdAbsWJeq => {
                a = ld!(usize::from(i.aux), 4);
                goto!(if a == k { i.jt } else { i.jf });
            }
            LdAbsHJeq => {
                a = ld!(usize::from(i.aux), 2);
                goto!(if a == k { i.jt } else { i.jf });
            }
            LdAbsBJeq => {
                a = ld!(usize::from(i.aux), 1);
                goto!(if a == k { i.jt } else { i.jf });
            }
            LdIndWJeq => {
                a = ld!(usize::from(i.aux) + x as usize, 4);
                goto!(if a == k { i.jt } else { i.jf });
            }
            LdIndHJeq => {
                a = ld!(usize::from(i.aux) + x as usize, 2);
                goto!(if a == k { i.jt } else { i.jf });
            }
            LdIndBJeq => {
                a = ld!(usize::from(i.aux) + x as usize, 1);
                goto!(if a == k { i.jt } else { i.jf });
            }
            LdAbsWJset => {
                a = ld!(usize::from(i.aux), 4);
                goto!(if a & k != 0 { i.jt } else { i.jf });
            }
            LdAbsHJset => {
                a = ld!(usize::from(i.aux), 2);
                goto!(if a & k != 0 { i.jt } else { i.jf });
            }
            LdAbsBJset => {
                a = ld!(usize::from(i.aux), 1);
                goto!(if a & k != 0 { i.jt } else { i.jf });
            }
            LdIndWJset => {
                a = ld!(usize::from(i.aux) + x as usize, 4);
                goto!(if a & k != 0 { i.jt } else { i.jf });
            }
            LdIndHJset => {
                a = ld!(usize::from(i.aux) + x as usize, 2);
                goto!(if a & k != 0 { i.jt } else { i.jf });
            }
            LdIndBJset => {
                a = ld!(usize::from(i.aux) + x as usize, 1);
                goto!(if a & k != 0 { i.jt } else { i.jf });
            }
            JeqKOrK => goto!(if a == k || a == i.k2 { i.jt } else { i.jf }),
            LdAbsWAndK => {
                a = ld!(usize::from(i.aux), 4) & k;
                goto!(i.jt);
            }
            LdAbsWAndKJeq => {
                a = ld!(usize::from(i.aux), 4) & i.k2;
                goto!(if a == k { i.jt } else { i.jf });
            }
            JeqKLdAbsBJeq => {
                if a != k {
                    goto!(i.jf);
                } else {
                    a = ld!(usize::from(i.aux), 1);
                    goto!(if a == i.k2 { i.jt } else { i.jf });
                }
            }
            LdxMshLdIndHJeq => {
                x = (ld!(usize::from(i.flags), 1) & 0xf) << 2;
                a = ld!(usize::from(i.aux) + x as usize, 2);
                goto!(if a == k { i.jt } else { i.jf });
            }
        }
    }
}
