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
    ADD, AND, DIV, Error, Insn, JEQ, JGE, JGT, LSH, MEMWORDS, MOD, MUL, OR, Op, Packet, RSH, SUB, XOR,
    checked, load,
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
}

/// One pre-decoded instruction (12 bytes). Only [`compile`] makes one other than the default
/// (a return of 0), so every program the interpreter runs jumps forward only and ends.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compiled {
    kind: Kind,
    _pad: u8,
    /// While compiling: the scratch words written on every path here (bit per word). Then,
    /// for a fused load and jump, the load's offset.
    aux: u16,
    /// Where a jump goes when taken (absolute), or `Ja`'s target.
    jt: u16,
    /// Where a conditional jump goes when not taken (absolute).
    jf: u16,
    k: u32,
}

const _: () = assert!(core::mem::size_of::<Compiled>() == 12);

fn kind_of(op: Op) -> Kind {
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
    for (at, i) in prog.iter().enumerate() {
        let op = checked(i, at, n)?;
        // In range (checked above; targets < n <= 4096 fit a u16).
        let (jt, jf) = match op {
            Op::Ja => (at + 1 + i.k as usize, 0),
            Op::Jcond(..) => (at + 1 + usize::from(i.jt), at + 1 + usize::from(i.jf)),
            _ => (0, 0),
        };
        out[at] = Compiled {
            kind: kind_of(op),
            _pad: 0,
            aux: if at == 0 { 0 } else { u16::MAX },
            jt: jt as u16,
            jf: jf as u16,
            k: i.k,
        };
    }
    if !matches!(out[n - 1].kind, Kind::RetK | Kind::RetA) {
        return Err(Error::NoFinalReturn);
    }
    // Scratch memory: each instruction's mask is the AND over the paths reaching it of the
    // words they wrote (all ones: no path yet, so an unreachable instruction reads nothing).
    // The first offending read of each word, reported for the lowest word, as validate does.
    let mut first: [Option<usize>; MEMWORDS] = [None; MEMWORDS];
    for at in 0..n {
        let c = out[at];
        let mut state = c.aux;
        let word = c.k as usize % MEMWORDS;
        match c.kind {
            Kind::LdMem | Kind::LdxMem if state & (1 << word) == 0 => {
                first[word].get_or_insert(at);
            }
            Kind::St | Kind::Stx => state |= 1 << word,
            _ => {}
        }
        let mut flow = |to: usize| out[to].aux &= state;
        match c.kind {
            Kind::RetK | Kind::RetA => {}
            Kind::Ja => flow(usize::from(c.jt)),
            Kind::JeqK
            | Kind::JeqX
            | Kind::JgtK
            | Kind::JgtX
            | Kind::JgeK
            | Kind::JgeX
            | Kind::JsetK
            | Kind::JsetX => {
                flow(usize::from(c.jt));
                flow(usize::from(c.jf));
            }
            _ => flow(at + 1),
        }
        // Its mask is used: the instruction may now take its final form.
        if at + 1 < n {
            fuse(out, at);
        }
    }
    if let Some((k, at)) = first.iter().enumerate().find_map(|(k, a)| a.map(|a| (k, a))) {
        return Err(Error::UninitializedMemory { at, k: k as u32 });
    }
    Ok(())
}

/// Fuses the load at `at` with the `jeq #k` or `jset #k` after it into one operation. The
/// jump stays as it was: a jump landing on it still finds it (only the fall-through from the
/// load is replaced).
#[inline(always)]
fn fuse(out: &mut [Compiled], at: usize) {
    use Kind::*;
    {
        let (load, jump) = (out[at], out[at + 1]);
        if load.k > u32::from(u16::MAX) {
            return;
        }
        let fused = match (load.kind, jump.kind) {
            (LdAbsW, JeqK) => LdAbsWJeq,
            (LdAbsH, JeqK) => LdAbsHJeq,
            (LdAbsB, JeqK) => LdAbsBJeq,
            (LdIndW, JeqK) => LdIndWJeq,
            (LdIndH, JeqK) => LdIndHJeq,
            (LdIndB, JeqK) => LdIndBJeq,
            (LdAbsW, JsetK) => LdAbsWJset,
            (LdAbsH, JsetK) => LdAbsHJset,
            (LdAbsB, JsetK) => LdAbsBJset,
            (LdIndW, JsetK) => LdIndWJset,
            (LdIndH, JsetK) => LdIndHJset,
            (LdIndB, JsetK) => LdIndBJset,
            _ => return,
        };
        out[at] = Compiled {
            kind: fused,
            _pad: 0,
            aux: load.k as u16,
            jt: jump.jt,
            jf: jump.jf,
            k: jump.k,
        };
    }
}

/// A load of `size` bytes at `off`: from the first segment when the bytes lie there, else
/// through the packet's walk.
#[inline(always)]
fn ld(head: &[u8], pkt: &(impl Packet + ?Sized), off: usize, size: usize) -> Option<u32> {
    // (`off` is at most 2^33: no overflow.)
    match head.get(off..off + size) {
        Some(b) => Some(match size {
            4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            2 => u32::from(u16::from_be_bytes([b[0], b[1]])),
            _ => u32::from(b[0]),
        }),
        None => load(pkt, off as u64, size as u8),
    }
}

/// The value, or the packet is rejected (a load outside it).
macro_rules! or_reject {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return 0,
        }
    };
}

/// Runs a program [`compile`] produced on `pkt`: how many bytes of the packet to keep (0:
/// reject). The same result as [`crate::run`] on the source program.
pub fn run(prog: &[Compiled], pkt: &(impl Packet + ?Sized)) -> u32 {
    use Kind::*;
    let head = pkt.head();
    let len = u32::try_from(pkt.len()).unwrap_or(u32::MAX);
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEMWORDS];
    let mut pc = 0usize;
    loop {
        let Some(&i) = prog.get(pc) else { return 0 };
        pc += 1;
        let k = i.k;
        match i.kind {
            RetK => return k,
            RetA => return a,
            LdAbsW => a = or_reject!(ld(head, pkt, k as usize, 4)),
            LdAbsH => a = or_reject!(ld(head, pkt, k as usize, 2)),
            LdAbsB => a = or_reject!(ld(head, pkt, k as usize, 1)),
            LdIndW => a = or_reject!(ld(head, pkt, k as usize + x as usize, 4)),
            LdIndH => a = or_reject!(ld(head, pkt, k as usize + x as usize, 2)),
            LdIndB => a = or_reject!(ld(head, pkt, k as usize + x as usize, 1)),
            LdLen => a = len,
            LdImm => a = k,
            LdMem => a = mem[k as usize % MEMWORDS],
            LdxImm => x = k,
            LdxMem => x = mem[k as usize % MEMWORDS],
            LdxLen => x = len,
            LdxMsh => match ld(head, pkt, k as usize, 1) {
                Some(v) => x = (v & 0xf) << 2,
                None => return 0,
            },
            St => mem[k as usize % MEMWORDS] = a,
            Stx => mem[k as usize % MEMWORDS] = x,
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
            Ja => pc = usize::from(i.jt),
            JeqK => pc = usize::from(if a == k { i.jt } else { i.jf }),
            JeqX => pc = usize::from(if a == x { i.jt } else { i.jf }),
            JgtK => pc = usize::from(if a > k { i.jt } else { i.jf }),
            JgtX => pc = usize::from(if a > x { i.jt } else { i.jf }),
            JgeK => pc = usize::from(if a >= k { i.jt } else { i.jf }),
            JgeX => pc = usize::from(if a >= x { i.jt } else { i.jf }),
            JsetK => pc = usize::from(if a & k != 0 { i.jt } else { i.jf }),
            JsetX => pc = usize::from(if a & x != 0 { i.jt } else { i.jf }),
            Tax => x = a,
            Txa => a = x,
            LdAbsWJeq => {
                a = or_reject!(ld(head, pkt, usize::from(i.aux), 4));
                pc = usize::from(if a == k { i.jt } else { i.jf });
            }
            LdAbsHJeq => {
                a = or_reject!(ld(head, pkt, usize::from(i.aux), 2));
                pc = usize::from(if a == k { i.jt } else { i.jf });
            }
            LdAbsBJeq => {
                a = or_reject!(ld(head, pkt, usize::from(i.aux), 1));
                pc = usize::from(if a == k { i.jt } else { i.jf });
            }
            LdIndWJeq => {
                a = or_reject!(ld(head, pkt, usize::from(i.aux) + x as usize, 4));
                pc = usize::from(if a == k { i.jt } else { i.jf });
            }
            LdIndHJeq => {
                a = or_reject!(ld(head, pkt, usize::from(i.aux) + x as usize, 2));
                pc = usize::from(if a == k { i.jt } else { i.jf });
            }
            LdIndBJeq => {
                a = or_reject!(ld(head, pkt, usize::from(i.aux) + x as usize, 1));
                pc = usize::from(if a == k { i.jt } else { i.jf });
            }
            LdAbsWJset => {
                a = or_reject!(ld(head, pkt, usize::from(i.aux), 4));
                pc = usize::from(if a & k != 0 { i.jt } else { i.jf });
            }
            LdAbsHJset => {
                a = or_reject!(ld(head, pkt, usize::from(i.aux), 2));
                pc = usize::from(if a & k != 0 { i.jt } else { i.jf });
            }
            LdAbsBJset => {
                a = or_reject!(ld(head, pkt, usize::from(i.aux), 1));
                pc = usize::from(if a & k != 0 { i.jt } else { i.jf });
            }
            LdIndWJset => {
                a = or_reject!(ld(head, pkt, usize::from(i.aux) + x as usize, 4));
                pc = usize::from(if a & k != 0 { i.jt } else { i.jf });
            }
            LdIndHJset => {
                a = or_reject!(ld(head, pkt, usize::from(i.aux) + x as usize, 2));
                pc = usize::from(if a & k != 0 { i.jt } else { i.jf });
            }
            LdIndBJset => {
                a = or_reject!(ld(head, pkt, usize::from(i.aux) + x as usize, 1));
                pc = usize::from(if a & k != 0 { i.jt } else { i.jf });
            }
        }
    }
}
