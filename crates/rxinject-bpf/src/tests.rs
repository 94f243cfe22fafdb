extern crate std;

use std::vec;
use std::vec::Vec;

use super::*;

const fn i(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn::new(code, jt, jf, k)
}

/// `validate`, checked against `validate_by_word` (the same verdict, whichever `validate` is).
fn checked_both(prog: &[Insn]) -> Result<(), Error> {
    let v = validate(prog);
    assert_eq!(validate_by_word(prog), v, "{prog:?}");
    v
}

/// An Ethernet/IPv4/UDP frame from 10.0.0.1:1234 to 10.0.0.2:53 with `payload`.
fn udp_frame(ihl_words: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let ihl = usize::from(ihl_words) * 4;
    let total = (ihl + 8 + payload.len()) as u16;
    let mut ip = vec![0x40 | ihl_words, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    ip.resize(ihl, 0x01); // options (NOPs)
    f.extend(ip);
    f.extend_from_slice(&1234u16.to_be_bytes());
    f.extend_from_slice(&53u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// "ip and udp dst port 53", written by hand: EtherType, protocol, then the UDP destination
/// port behind a variable-length IP header (LDX MSH).
fn udp_port_53() -> Vec<Insn> {
    vec![
        i(LD | H | ABS, 0, 0, 12),
        i(JMP | JEQ | K, 0, 5, 0x0800),
        i(LD | B | ABS, 0, 0, 23),
        i(JMP | JEQ | K, 0, 3, 17),
        i(LDX | B | MSH, 0, 0, 14),
        i(LD | H | IND, 0, 0, 16),
        i(JMP | JEQ | K, 1, 0, 53),
        i(RET | K, 0, 0, 0),
        i(RET | K, 0, 0, 96),
    ]
}

#[test]
fn instructions_have_the_bpf_insn_layout() {
    let insn = i(LD | H | ABS, 1, 2, 0x0102_0304);
    assert_eq!(insn.to_bytes(), [0x28, 0x00, 1, 2, 0x04, 0x03, 0x02, 0x01]);
    assert_eq!(Insn::from_bytes(insn.to_bytes()), insn);
}

#[test]
fn a_hand_written_filter_matches_what_it_should() {
    let prog = udp_port_53();
    checked_both(&prog).unwrap();
    assert_eq!(run(&prog, &udp_frame(5, b"query")[..]), 96);
    // A longer IP header moves the port: MSH follows it.
    assert_eq!(run(&prog, &udp_frame(7, b"query")[..]), 96);
    let mut other_port = udp_frame(5, b"query");
    other_port[14 + 20 + 3] = 54;
    assert_eq!(run(&prog, &other_port[..]), 0);
    let mut not_ip = udp_frame(5, b"query");
    not_ip[12] = 0x86;
    assert_eq!(run(&prog, &not_ip[..]), 0);
    assert_eq!(run(&ACCEPT_ALL, &not_ip[..]), u32::MAX);
}

#[test]
fn loads_outside_the_packet_reject_it() {
    let prog = [i(LD | W | ABS, 0, 0, 60), i(RET | K, 0, 0, 1)];
    checked_both(&prog).unwrap();
    assert_eq!(run(&prog, &[0u8; 64][..]), 1);
    assert_eq!(run(&prog, &[0u8; 63][..]), 0, "a word at 60 needs 64 bytes");
    // IND with a huge X must not wrap around.
    let prog = [
        i(LDX | W | IMM, 0, 0, u32::MAX),
        i(LD | B | IND, 0, 0, 2),
        i(RET | K, 0, 0, 1),
    ];
    assert_eq!(run(&prog, &[0u8; 64][..]), 0);
    // MSH past the end.
    let prog = [i(LDX | B | MSH, 0, 0, 64), i(RET | K, 0, 0, 1)];
    assert_eq!(run(&prog, &[0u8; 64][..]), 0);
    assert_eq!(run(&[i(LD | B | ABS, 0, 0, 0), i(RET | A, 0, 0, 0)], &[][..]), 0);
}

#[test]
fn arithmetic_scratch_memory_and_the_length() {
    let pkt = [0u8; 100];
    let prog = [
        i(LD | W | LEN, 0, 0, 0),     // A = 100
        i(ST, 0, 0, 3),               // M[3] = 100
        i(ALU | MUL | K, 0, 0, 3),    // A = 300
        i(TAX | MISC, 0, 0, 0),       // X = 300
        i(LD | W | MEM, 0, 0, 3),     // A = 100
        i(ALU | ADD | X, 0, 0, 0),    // A = 400
        i(ALU | DIV | K, 0, 0, 7),    // A = 57
        i(ALU | MOD | K, 0, 0, 10),   // A = 7
        i(ALU | LSH | K, 0, 0, 4),    // A = 112
        i(ALU | XOR | K, 0, 0, 0xff), // A = 0x8f
        i(ALU | NEG, 0, 0, 0),        // A = -0x8f
        i(ALU | NEG, 0, 0, 0),        // A = 0x8f
        i(JMP | JSET | K, 0, 1, 0x80),
        i(RET | A, 0, 0, 0),
        i(RET | K, 0, 0, 0),
    ];
    checked_both(&prog).unwrap();
    assert_eq!(run(&prog, &pkt[..]), 0x8f);
    // Division and modulo by X = 0 reject; shifts by X >= 32 give 0.
    let div = [
        i(LDX | W | IMM, 0, 0, 0),
        i(LD | W | IMM, 0, 0, 9),
        i(ALU | DIV | X, 0, 0, 0),
        i(RET | K, 0, 0, 1),
    ];
    assert_eq!(run(&div, &pkt[..]), 0);
    let shift = [
        i(LDX | W | IMM, 0, 0, 40),
        i(LD | W | IMM, 0, 0, 9),
        i(ALU | LSH | X, 0, 0, 0),
        i(RET | A, 0, 0, 0),
    ];
    assert_eq!(run(&shift, &pkt[..]), 0);
}

#[test]
fn jumps_go_forward_by_their_offsets() {
    let pkt = [5u8; 10];
    let prog = [
        i(LD | B | ABS, 0, 0, 0),
        i(JMP | JGT | K, 2, 0, 4), // 5 > 4: skip two
        i(RET | K, 0, 0, 1),
        i(RET | K, 0, 0, 2),
        i(JMP | JGE | K, 0, 1, 5), // 5 >= 5
        i(JMP | JA, 0, 0, 1),
        i(RET | K, 0, 0, 3),
        i(RET | K, 0, 0, 4),
    ];
    checked_both(&prog).unwrap();
    assert_eq!(run(&prog, &pkt[..]), 4);
}

#[test]
fn the_validator_refuses_what_a_kernel_refuses() {
    let ret = i(RET | K, 0, 0, 0);
    let cases: Vec<(Vec<Insn>, Error)> = vec![
        (vec![], Error::Length { len: 0 }),
        (vec![ret; MAX_INSNS + 1], Error::Length { len: MAX_INSNS + 1 }),
        (
            vec![i(0xffff, 0, 0, 0), ret],
            Error::UnknownOpcode { at: 0, code: 0xffff },
        ),
        // An extension (Linux's BPF_LD | BPF_B | BPF_ABS | ... MOD mode bits) and RET X.
        (
            vec![i(LD | W | MSH, 0, 0, 0), ret],
            Error::UnknownOpcode {
                at: 0,
                code: LD | W | MSH,
            },
        ),
        (
            vec![i(RET | X, 0, 0, 0)],
            Error::UnknownOpcode { at: 0, code: RET | X },
        ),
        (vec![i(JMP | JA, 0, 0, 1), ret], Error::JumpOutOfRange { at: 0 }),
        (
            vec![i(JMP | JEQ | K, 0, 2, 0), ret, ret],
            Error::JumpOutOfRange { at: 0 },
        ),
        (vec![i(JMP | JEQ | K, 0, 0, 0)], Error::JumpOutOfRange { at: 0 }),
        (vec![i(ST, 0, 0, 16), ret], Error::BadMemoryIndex { at: 0, k: 16 }),
        (
            vec![i(LD | W | MEM, 0, 0, 2), ret],
            Error::UninitializedMemory { at: 0, k: 2 },
        ),
        (
            vec![i(ALU | DIV | K, 0, 0, 0), ret],
            Error::DivisionByZero { at: 0 },
        ),
        (
            vec![i(ALU | MOD | K, 0, 0, 0), ret],
            Error::DivisionByZero { at: 0 },
        ),
        (
            vec![i(ALU | RSH | K, 0, 0, 32), ret],
            Error::BadShift { at: 0, k: 32 },
        ),
        (vec![ret, i(LD | W | IMM, 0, 0, 0)], Error::NoFinalReturn),
    ];
    for (prog, err) in cases {
        assert_eq!(checked_both(&prog), Err(err), "{prog:?}");
    }
    // A word written on one branch only may not be read after the branches join.
    let one_branch = [
        i(LD | B | ABS, 0, 0, 0),
        i(JMP | JEQ | K, 0, 1, 1),
        i(ST, 0, 0, 4),
        i(LD | W | MEM, 0, 0, 4),
        i(RET | A, 0, 0, 0),
    ];
    assert_eq!(
        checked_both(&one_branch),
        Err(Error::UninitializedMemory { at: 3, k: 4 })
    );
    // Written on both: fine.
    let both = [
        i(LD | B | ABS, 0, 0, 0),
        i(JMP | JEQ | K, 0, 2, 1),
        i(ST, 0, 0, 4),
        i(JMP | JA, 0, 0, 1),
        i(STX, 0, 0, 4),
        i(LD | W | MEM, 0, 0, 4),
        i(RET | A, 0, 0, 0),
    ];
    assert_eq!(checked_both(&both), Ok(()));
    // The longest program is fine.
    assert_eq!(checked_both(&[ret; MAX_INSNS]), Ok(()));
}

#[test]
fn run_never_panics_or_loops_on_garbage() {
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pkt: Vec<u8> = (0..200).map(|n| n as u8).collect();
    let mut valid = 0;
    for _ in 0..20_000 {
        let n = 1 + (next() % 12) as usize;
        let prog: Vec<Insn> = (0..n)
            .map(|_| {
                let r = next();
                // Mostly real opcodes, with small operands.
                let codes = [
                    0x28, 0x30, 0x20, 0x48, 0x50, 0x40, 0x00, 0x01, 0x61, 0x60, 0x02, 0x03, 0x04, 0x0c, 0x14,
                    0x24, 0x34, 0x44, 0x54, 0x64, 0x74, 0x84, 0x94, 0xa4, 0x05, 0x15, 0x25, 0x35, 0x45, 0x1d,
                    0x06, 0x16, 0x07, 0x87, 0xb1, 0x80, 0x81,
                ];
                let code = if r % 10 == 0 {
                    (r >> 8) as u16
                } else {
                    codes[(r >> 16) as usize % codes.len()]
                };
                i(
                    code,
                    (r >> 24) as u8 % 4,
                    (r >> 32) as u8 % 4,
                    (r >> 40) as u32 % 300,
                )
            })
            .collect();
        if checked_both(&prog).is_ok() {
            valid += 1;
        }
        let _ = run(&prog, &pkt[..]);
    }
    assert!(valid > 100, "{valid}");
}

/// A packet whose first segment is its first `head` bytes: loads beyond go through `read`.
struct Split<'a> {
    data: &'a [u8],
    head: usize,
}

impl Packet for Split<'_> {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn read(&self, offset: usize, out: &mut [u8]) -> bool {
        self.data.read(offset, out)
    }

    fn head(&self) -> &[u8] {
        &self.data[..self.head.min(self.data.len())]
    }
}

/// Each conditional jump on X compares A with X as the BPF definition says (jeq: equal, jgt:
/// greater, jge: greater or equal, jset: a common bit), in both interpreters; each case
/// tells the four apart.
#[test]
fn each_jump_on_x_compares_a_with_x() {
    let pkt = [0u8; 14];
    let mut out = vec![Compiled::default(); 5];
    for (op, a, x, taken) in [
        (JEQ, 5, 5, true),
        (JEQ, 5, 6, false),
        (JGT, 6, 5, true),
        (JGT, 5, 5, false),
        (JGE, 5, 5, true),
        (JGE, 4, 5, false),
        (JSET, 6, 2, true),
        (JSET, 4, 2, false),
    ] {
        let p = [
            i(LD | W | IMM, 0, 0, a),
            i(LDX | W | IMM, 0, 0, x),
            i(JMP | op | X, 0, 1, 0),
            i(RET | K, 0, 0, 1),
            i(RET | K, 0, 0, 2),
        ];
        let want = if taken { 1 } else { 2 };
        assert_eq!(run(&p, &pkt[..]), want, "{op:#x} {a} {x}");
        compile(&p, &mut out).unwrap();
        assert_eq!(run_compiled(&out, &pkt[..]), want, "{op:#x} {a} {x}");
    }
}

/// A packet is empty exactly when it has no bytes (the default method, on a packet that
/// keeps it).
#[test]
fn a_packet_is_empty_exactly_when_it_has_no_bytes() {
    for (len, empty) in [(0, true), (1, false), (60, false)] {
        let data = vec![0u8; len];
        assert_eq!(Packet::is_empty(&Split { data: &data, head: 0 }), empty, "{len}");
    }
}

/// The pre-decoded form gives the validator's verdict on every program (the same error, at
/// the same instruction), and the interpreter's result on every packet, whether the bytes a
/// load wants lie in the first segment, across it, or beyond the packet.
#[test]
fn compiled_programs_agree_with_validate_and_run() {
    let mut x: u64 = 0x0bad_cafe_f00d_1234;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pkt: Vec<u8> = (0..200).map(|n| (n as u8).wrapping_mul(37)).collect();
    let codes = [
        0x28, 0x30, 0x20, 0x48, 0x50, 0x40, 0x00, 0x01, 0x61, 0x60, 0x02, 0x03, 0x04, 0x0c, 0x14, 0x24, 0x34,
        0x44, 0x54, 0x64, 0x74, 0x84, 0x94, 0xa4, 0x05, 0x15, 0x25, 0x35, 0x45, 0x1d, 0x06, 0x16, 0x07, 0x87,
        0xb1, 0x80, 0x81, 0x1c, 0x2c, 0x3c, 0x4c, 0x5c, 0x6c, 0x7c, 0x9c, 0xac, 0x2d, 0x3d, 0x4d, 0x0e,
    ];
    let (mut valid, mut errors) = (0, std::collections::BTreeSet::new());
    let mut out = vec![Compiled::default(); 16];
    for _ in 0..50_000 {
        let n = 1 + (next() % 14) as usize;
        let prog: Vec<Insn> = (0..n)
            .map(|_| {
                let r = next();
                let code = if r % 16 == 0 {
                    (r >> 8) as u16
                } else {
                    codes[(r >> 16) as usize % codes.len()]
                };
                i(
                    code,
                    (r >> 24) as u8 % 5,
                    (r >> 32) as u8 % 5,
                    (r >> 40) as u32 % 260,
                )
            })
            .collect();
        let mut prog = prog;
        // Half end with a return, as real programs do (the others mostly fail validation).
        if next() % 2 == 0 {
            prog[n - 1] = i(if n.is_multiple_of(2) { RET | K } else { RET | A }, 0, 0, 96);
        }
        // The plain statement of the rules against the single pass (`validate` is one or
        // the other, with the `alloc` feature or not).
        let v = validate_by_word(&prog);
        let c = compile(&prog, &mut out);
        assert_eq!(v, c, "{prog:?}");
        assert_eq!(validate(&prog), v, "{prog:?}");
        match v {
            Ok(()) => {
                valid += 1;
                for head in [0usize, 1, 13, 14, 40, 200] {
                    for len in [0usize, 3, 14, 60, 200] {
                        let p = Split {
                            data: &pkt[..len],
                            head,
                        };
                        assert_eq!(
                            run(&prog, &p),
                            run_compiled(&out[..n], &p),
                            "{prog:?} head {head} len {len}"
                        );
                    }
                }
            }
            Err(e) => {
                errors.insert(e.code());
            }
        }
    }
    assert!(valid > 1000, "{valid}");
    assert!(errors.len() >= 6, "every kind of refusal met: {errors:?}");
    // Every load followed by every conditional jump with a constant (what the compiler
    // fuses), taken and not taken, inside and outside the packet and its first segment; and
    // with a jump landing on the conditional jump (which must then not be fused).
    let loads = [
        LD | W | ABS,
        LD | H | ABS,
        LD | B | ABS,
        LD | W | IND,
        LD | H | IND,
        LD | B | IND,
    ];
    let jumps = [JMP | JEQ | K, JMP | JSET | K, JMP | JGT | K, JMP | JGE | K];
    for &l in &loads {
        for &j in &jumps {
            for off in [0u32, 1, 12, 13, 57, 58, 59, 196, 197, 300] {
                for xv in [0u32, 2] {
                    for into in [false, true] {
                        let size = match l & 0x18 {
                            W => 4,
                            H => 2,
                            _ => 1,
                        };
                        let at = (off + if l & IND != 0 { xv } else { 0 }) as usize;
                        let actual = pkt
                            .get(at..at + size)
                            .map_or(7, |b| b.iter().fold(0u32, |v, &c| v << 8 | u32::from(c)));
                        for k in [actual, actual.wrapping_add(1), actual.wrapping_sub(1), 0, 0x80] {
                            // ldx #xv; (ja +1 into the jump: `into`); load; jcond; ret #1; ret #2; ret a
                            let mut prog = vec![i(LDX | W | IMM, 0, 0, xv)];
                            if into {
                                prog.push(i(JMP | JEQ | K, 0, 1, 5)); // x == 5 never: goes to the load; jt lands on the load's next
                            }
                            prog.push(i(l, 0, 0, off));
                            prog.push(i(j, 0, 1, k));
                            prog.extend([i(RET | K, 0, 0, 1), i(RET | K, 0, 0, 2), i(RET | A, 0, 0, 0)]);
                            if into {
                                // Make the first jump land on the conditional jump when taken.
                                prog[1] = i(JMP | JEQ | X, 1, 0, 0);
                            }
                            assert_eq!(checked_both(&prog), Ok(()), "{prog:?}");
                            compile(&prog, &mut out).unwrap();
                            for head in [0usize, 14, 60, 200] {
                                for len in [14usize, 60, 200] {
                                    let p = Split {
                                        data: &pkt[..len],
                                        head,
                                    };
                                    assert_eq!(
                                        run(&prog, &p),
                                        run_compiled(&out[..prog.len()], &p),
                                        "{prog:?} head {head} len {len}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // A buffer shorter than the program is refused, not overrun.
    let prog = [i(RET | K, 0, 0, 1); 3];
    assert!(compile(&prog, &mut out[..2]).is_err());
    // A default-made program ends at once.
    assert_eq!(run_compiled(&[Compiled::default(); 4], &pkt[..]), 0);
}

/// The fused forms of tcpdump's idioms (two constants for one jump target, a load and a
/// mask, the IP header length and a port load and compare) give `run`'s result, taken or
/// not, on split packets, also when a jump lands on the second instruction of the idiom
/// (which stays as it was for it).
#[test]
fn fused_idioms_agree_with_run() {
    let mut pkt = udp_frame(5, &[1, 2, 3, 4, 5, 6, 7, 8]);
    pkt.resize(80, 0);
    let mut out = vec![Compiled::default(); 32];
    let ether = u32::from(u16::from_be_bytes([pkt[12], pkt[13]]));
    let word = u32::from_be_bytes([pkt[26], pkt[27], pkt[28], pkt[29]]);
    let port = u32::from(u16::from_be_bytes([pkt[36], pkt[37]]));
    let mut programs: Vec<Vec<Insn>> = Vec::new();
    for k in [ether, ether + 1, 0x86dd] {
        for k2 in [ether, 0x8100, 0x1_0000 + ether] {
            // ldh [12]; ldx #1; jeq #k jt ok jf next; jeq #k2 jt ok jf no; ...
            // (the ldx between keeps the load from fusing with the first jeq)
            for landing in [false, true] {
                let mut p = vec![i(LD | H | ABS, 0, 0, 12), i(LDX | W | IMM, 0, 0, 1)];
                if landing {
                    // Straight onto the second jeq.
                    p.push(i(JMP | JA, 0, 0, 1));
                }
                p.push(i(JMP | JEQ | K, 1, 0, k));
                p.push(i(JMP | JEQ | K, 0, 1, k2));
                p.extend([i(RET | K, 0, 0, 7), i(RET | K, 0, 0, 0)]);
                programs.push(p);
            }
        }
    }
    for mask in [0xff00_0000u32, 0xffff_ffff, 0] {
        for v in [word & mask, (word & mask) ^ 1] {
            programs.push(vec![
                i(LD | W | ABS, 0, 0, 26),
                i(ALU | AND | K, 0, 0, mask),
                i(JMP | JEQ | K, 0, 1, v),
                i(RET | K, 0, 0, 9),
                i(RET | A, 0, 0, 0),
            ]);
            // A jump straight onto the jeq, with A = v (or not) from before.
            for a in [v, v ^ 2] {
                programs.push(vec![
                    i(LD | W | IMM, 0, 0, a),
                    i(JMP | JA, 0, 0, 2),
                    i(LD | W | ABS, 0, 0, 26),
                    i(ALU | AND | K, 0, 0, mask),
                    i(JMP | JEQ | K, 0, 1, v),
                    i(RET | K, 0, 0, 9),
                    i(RET | A, 0, 0, 0),
                ]);
            }
        }
        // No jeq after the and: the pair alone.
        programs.push(vec![
            i(LD | W | ABS, 0, 0, 26),
            i(ALU | AND | K, 0, 0, mask),
            i(RET | A, 0, 0, 0),
        ]);
    }
    for msh_at in [14u32, 200] {
        for off in [14u32, 16, 70] {
            for k in [port, port + 1] {
                for landing in [false, true] {
                    // ldxb 4*([m]&0xf); ldh [x+off]; jeq #k; ...; a jump may land on the ldh.
                    let mut p = vec![i(LDX | W | IMM, 0, 0, 3)];
                    p.push(if landing {
                        // Straight onto the ldh, with X = 3.
                        i(JMP | JA, 0, 0, 1)
                    } else {
                        i(JMP | JA, 0, 0, 0)
                    });
                    p.push(i(LDX | B | MSH, 0, 0, msh_at));
                    p.push(i(LD | H | IND, 0, 0, off));
                    p.push(i(JMP | JEQ | K, 0, 1, k));
                    p.extend([i(RET | K, 0, 0, 5), i(RET | A, 0, 0, 0)]);
                    programs.push(p);
                }
            }
        }
    }
    let proto = u32::from(pkt[23]);
    for k in [ether, ether + 1] {
        for k2 in [proto, proto + 1] {
            // ldh [12]; ldx #1; jeq #k jt next jf F; ldb [23]; jeq #k2 jt T jf F (or jf
            // elsewhere: not fused); a jump may land on the ldb or the second jeq.
            for (landing, same_f) in [(0, true), (1, true), (2, true), (0, false)] {
                let mut p = vec![i(LD | H | ABS, 0, 0, 12), i(LDX | W | IMM, 0, 0, 1)];
                p.push(i(JMP | JA, 0, 0, landing));
                p.push(i(JMP | JEQ | K, 0, 3, k));
                p.push(i(LD | B | ABS, 0, 0, 23));
                p.push(i(JMP | JEQ | K, 0, if same_f { 1 } else { 2 }, k2));
                p.extend([i(RET | K, 0, 0, 7), i(RET | A, 0, 0, 0), i(RET | K, 0, 0, 3)]);
                programs.push(p);
            }
        }
    }
    let mut fused = [0usize; 5];
    for prog in &programs {
        assert_eq!(checked_both(prog), Ok(()), "{prog:?}");
        compile(prog, &mut out).unwrap();
        for c in &out[..prog.len()] {
            if let Some(k) = c.idiom() {
                fused[k] += 1;
            }
        }
        for head in [0usize, 14, 27, 38, 80] {
            for len in [14usize, 30, 38, 80] {
                let p = Split {
                    data: &pkt[..len],
                    head: head.min(len),
                };
                assert_eq!(
                    run(prog, &p),
                    run_compiled(&out[..prog.len()], &p),
                    "{prog:?} head {head} len {len}"
                );
            }
        }
    }
    // Each idiom was fused wherever it occurs.
    assert_eq!(fused, [18, 3, 24, 18, 12], "fused forms made");
}

/// The fused forms are the interpreter's fast path: each pair and idiom is fused wherever it
/// fits, at any place in the program (after 1 to 4 instructions that do not fuse), with the
/// largest constants its fields hold, and still gives `run`'s verdict.
#[test]
fn each_pair_and_idiom_is_fused_wherever_it_fits() {
    let mut pkt = udp_frame(5, &[1, 2, 3, 4, 5, 6, 7, 8]);
    pkt.resize(80, 0);
    let ether = u32::from(u16::from_be_bytes([pkt[12], pkt[13]]));
    let mut out = vec![Compiled::default(); 16];
    let mut made = 0;
    for pad in 1..=4 {
        let mut bodies: Vec<Vec<Insn>> = Vec::new();
        for load in [
            LD | W | ABS,
            LD | H | ABS,
            LD | B | ABS,
            LD | W | IND,
            LD | H | IND,
            LD | B | IND,
        ] {
            for jump in [JMP | JEQ | K, JMP | JSET | K] {
                for off in [12, u32::from(u16::MAX)] {
                    bodies.push(vec![i(load, 0, 0, off), i(jump, 0, 1, ether)]);
                }
            }
        }
        bodies.push(vec![
            i(LD | W | ABS, 0, 0, 26),
            i(ALU | AND | K, 0, 0, 0xffff_ff00),
            i(JMP | JEQ | K, 0, 1, 0),
        ]);
        bodies.push(vec![
            i(LD | W | ABS, 0, 0, 26),
            i(ALU | AND | K, 0, 0, 0xffff_ff00),
        ]);
        bodies.push(vec![
            i(JMP | JEQ | K, 1, 0, ether),
            i(JMP | JEQ | K, 0, 1, 0x86dd),
        ]);
        bodies.push(vec![
            i(JMP | JEQ | K, 0, 3, ether),
            i(LD | B | ABS, 0, 0, u32::from(u16::MAX)),
            i(JMP | JEQ | K, 0, 1, 17),
        ]);
        for (m, k) in [(14, 16), (u32::from(u8::MAX), u32::from(u16::MAX))] {
            bodies.push(vec![
                i(LDX | B | MSH, 0, 0, m),
                i(LD | H | IND, 0, 0, k),
                i(JMP | JEQ | K, 0, 1, 53),
            ]);
        }
        for body in bodies {
            // ldh [12] first, so that A is the EtherType; then `ldx #1`s, which fuse with
            // nothing.
            let mut p = vec![i(LD | H | ABS, 0, 0, 12)];
            p.extend((1..pad).map(|_| i(LDX | W | IMM, 0, 0, 1)));
            let at = p.len();
            p.extend(body);
            p.extend([i(RET | K, 0, 0, 7), i(RET | A, 0, 0, 0)]);
            assert_eq!(compile(&p, &mut out), Ok(()), "{p:?}");
            assert!(out[at].is_fused(), "not fused at {at}: {p:?}");
            assert_eq!(
                run_compiled(&out[..p.len()], &pkt[..]),
                run(&p, &pkt[..]),
                "{p:?}"
            );
            made += 1;
        }
    }
    assert_eq!(made, 4 * 30);
}

/// Every opcode of classic BPF, as the BPF definition lists them (BSD `bpf.h`, Linux
/// `filter.h`), written out here by number rather than built from this crate's constants.
const VALID_OPCODES: &[u16] = &[
    // ld: #k, [k] (w, h, b), [x+k] (w, h, b), M[k], len
    0x00, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50, 0x60, 0x80, //
    // ldx: #k, M[k], len, 4*([k]&0xf)
    0x01, 0x61, 0x81, 0xb1, //
    // st, stx
    0x02, 0x03, //
    // alu: add, sub, mul, div, or, and, lsh, rsh (k and x), neg, mod, xor (k and x)
    0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54, 0x5c, 0x64, 0x6c, 0x74, 0x7c, 0x84,
    0x94, 0x9c, 0xa4, 0xac, //
    // jmp: ja, jeq, jgt, jge, jset (k and x)
    0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d, //
    // ret #k, ret a
    0x06, 0x16, //
    // tax, txa
    0x07, 0x87,
];

/// The validator (both forms) takes exactly the opcodes of classic BPF: each one, alone in a
/// program that is otherwise valid, is accepted, and every other 16-bit code is refused as
/// an unknown opcode. Each accepted one also runs as the reference does.
#[test]
fn exactly_the_opcodes_of_classic_bpf_are_accepted() {
    for code in 0..=u16::MAX {
        // Scratch word 0 written first; constants no other rule refuses (memory index 0, a
        // divisor and shift of 1, jumps to the next instruction).
        let class = code & 0x07;
        let k = if (class <= LDX && code & 0xe0 == MEM) || class == ST || class == STX || class == JMP {
            0
        } else {
            1
        };
        let prog = [i(ST, 0, 0, 0), i(code, 0, 0, k), i(RET | A, 0, 0, 0)];
        let valid = VALID_OPCODES.contains(&code);
        let v = checked_both(&prog);
        let mut out = [Compiled::default(); 3];
        assert_eq!(compile(&prog, &mut out), v, "{code:#06x}");
        if valid {
            assert_eq!(v, Ok(()), "{code:#06x} is a classic BPF opcode");
            let packet = [0x45u8; 64];
            assert_eq!(
                run_compiled(&out, &packet[..]),
                run(&prog, &packet[..]),
                "{code:#06x}"
            );
        } else {
            assert_eq!(v, Err(Error::UnknownOpcode { at: 1, code }), "{code:#06x}");
        }
    }
    assert_eq!(VALID_OPCODES.len(), 9 + 4 + 2 + 21 + 9 + 2 + 2);
}

/// Scratch memory written on every path before it is read, or not, across `ja` and both
/// targets of conditional jumps, for `ld` and `ldx`, low and high words: the same verdict,
/// naming the same instruction, from the per-word check and the one-pass compile.
#[test]
fn scratch_memory_must_be_written_on_every_path_before_it_is_read() {
    let ldb0 = i(LD | B | ABS, 0, 0, 0);
    let ret = i(RET | A, 0, 0, 0);
    let uninit = |at: usize, k: u32| Err(Error::UninitializedMemory { at, k });
    let cases: Vec<(Vec<Insn>, Result<(), Error>)> = vec![
        // A jump over a store of another word.
        (
            vec![
                i(ST, 0, 0, 3),
                i(JMP | JA, 0, 0, 1),
                i(ST, 0, 0, 4),
                i(LD | MEM, 0, 0, 3),
                ret,
            ],
            Ok(()),
        ),
        // A jump over the only store.
        (
            vec![i(JMP | JA, 0, 0, 1), i(ST, 0, 0, 3), i(LD | MEM, 0, 0, 3), ret],
            uninit(2, 3),
        ),
        // A longer jump, onto the read.
        (
            vec![
                i(ST, 0, 0, 9),
                i(JMP | JA, 0, 0, 2),
                i(ST, 0, 0, 1),
                ret,
                i(LDX | MEM, 0, 0, 9),
                ret,
            ],
            Ok(()),
        ),
        (
            vec![
                i(ST, 0, 0, 1),
                i(JMP | JA, 0, 0, 2),
                i(ST, 0, 0, 9),
                ret,
                i(LDX | MEM, 0, 0, 9),
                ret,
            ],
            uninit(4, 9),
        ),
        // Both arms of a conditional store the word.
        (
            vec![
                ldb0,
                i(JMP | JEQ | K, 0, 2, 7),
                i(ST, 0, 0, 5),
                i(JMP | JA, 0, 0, 1),
                i(STX, 0, 0, 5),
                i(LD | MEM, 0, 0, 5),
                ret,
            ],
            Ok(()),
        ),
        // One arm stores another word.
        (
            vec![
                ldb0,
                i(JMP | JEQ | K, 0, 2, 7),
                i(ST, 0, 0, 5),
                i(JMP | JA, 0, 0, 1),
                i(STX, 0, 0, 6),
                i(LD | MEM, 0, 0, 5),
                ret,
            ],
            uninit(5, 5),
        ),
        // The true target skips the store.
        (
            vec![
                ldb0,
                i(JMP | JEQ | K, 1, 0, 7),
                i(ST, 0, 0, 2),
                i(LDX | MEM, 0, 0, 2),
                ret,
            ],
            uninit(3, 2),
        ),
        // The false target skips it.
        (
            vec![
                ldb0,
                i(JMP | JGT | K, 0, 1, 7),
                i(ST, 0, 0, 2),
                i(LDX | MEM, 0, 0, 2),
                ret,
            ],
            uninit(3, 2),
        ),
        // Neither does.
        (
            vec![
                ldb0,
                i(ST, 0, 0, 2),
                i(JMP | JSET | K, 0, 0, 7),
                i(LDX | MEM, 0, 0, 2),
                ret,
            ],
            Ok(()),
        ),
        // The highest word, and its neighbour not written.
        (vec![i(ST, 0, 0, 15), i(LD | MEM, 0, 0, 15), ret], Ok(())),
        (vec![i(ST, 0, 0, 14), i(LD | MEM, 0, 0, 15), ret], uninit(1, 15)),
        // Two words read; the second is the one not written (the lowest word is reported).
        (
            vec![i(ST, 0, 0, 0), i(LD | MEM, 0, 0, 0), i(LDX | MEM, 0, 0, 1), ret],
            uninit(2, 1),
        ),
        (
            vec![i(LD | MEM, 0, 0, 8), i(LDX | MEM, 0, 0, 1), ret],
            uninit(1, 1),
        ),
        // A read on a path that returns first is never reached.
        (
            vec![
                ldb0,
                i(JMP | JEQ | K, 0, 1, 7),
                ret,
                i(ST, 0, 0, 4),
                i(LD | MEM, 0, 0, 4),
                ret,
            ],
            Ok(()),
        ),
    ];
    for (n, (prog, want)) in cases.iter().enumerate() {
        assert_eq!(checked_both(prog), *want, "case {n}: {prog:?}");
    }
}

/// Scratch words hold their own values: stores to several words, read back by `ld` and
/// `ldx`, give the same result in the pre-decoded form as in the reference.
#[test]
fn scratch_words_keep_their_own_values_in_both_interpreters() {
    let prog = [
        i(LD | IMM, 0, 0, 7),
        i(ST, 0, 0, 3),
        i(LD | IMM, 0, 0, 9),
        i(ST, 0, 0, 12),
        i(LDX | IMM, 0, 0, 100),
        i(STX, 0, 0, 15),
        i(LDX | MEM, 0, 0, 3),
        i(LD | MEM, 0, 0, 12),
        i(ALU | ADD | X, 0, 0, 0),
        i(LDX | MEM, 0, 0, 15),
        i(ALU | ADD | X, 0, 0, 0),
        i(ST, 0, 0, 0),
        i(LD | MEM, 0, 0, 0),
        i(RET | A, 0, 0, 0),
    ];
    assert_eq!(checked_both(&prog), Ok(()));
    let mut code = [Compiled::default(); 14];
    assert_eq!(compile(&prog, &mut code), Ok(()));
    let packet = [0u8; 60];
    assert_eq!(run(&prog, &packet[..]), 7 + 9 + 100);
    assert_eq!(run_compiled(&code, &packet[..]), 7 + 9 + 100);
}

/// Every refusal says what and where, in words (the user tools print them).
#[test]
fn every_refusal_is_worded_with_its_instruction() {
    use std::string::ToString;
    let errors = [
        (Error::Length { len: 0 }, "0"),
        (Error::UnknownOpcode { at: 3, code: 0xff }, "instruction 3"),
        (Error::JumpOutOfRange { at: 4 }, "instruction 4"),
        (Error::BadMemoryIndex { at: 5, k: 16 }, "instruction 5"),
        (Error::UninitializedMemory { at: 6, k: 2 }, "instruction 6"),
        (Error::DivisionByZero { at: 7 }, "instruction 7"),
        (Error::BadShift { at: 8, k: 32 }, "instruction 8"),
        (Error::NoFinalReturn, "return"),
    ];
    for (e, part) in errors {
        let text = e.to_string();
        assert!(text.contains(part), "{e:?}: {text:?}");
        assert_eq!(e.at().is_some(), text.starts_with("instruction"), "{e:?}");
    }
}

/// Where a fused form could not hold an instruction's constant (a load offset above 65,535,
/// an `ldxb` offset above 255) or the jumps do not have the fused shape, nothing is fused:
/// both interpreters give the same verdicts. The offsets' low 16 bits point into the packet,
/// so a constant cut to fit would load real bytes and change the verdict.
#[test]
fn nothing_is_fused_where_the_fused_form_does_not_fit() {
    let mut pkt = udp_frame(5, &[1, 2, 3, 4, 5, 6, 7, 8]);
    pkt.resize(80, 0);
    let ether = u32::from(u16::from_be_bytes([pkt[12], pkt[13]]));
    let far = 0x1_0000 + 12;
    let mut programs: Vec<Vec<Insn>> = Vec::new();
    for load in [
        LD | W | ABS,
        LD | H | ABS,
        LD | B | ABS,
        LD | W | IND,
        LD | H | IND,
        LD | B | IND,
    ] {
        for jump in [JMP | JEQ | K, JMP | JSET | K] {
            programs.push(vec![
                i(LDX | W | IMM, 0, 0, 0),
                i(load, 0, 0, far),
                i(jump, 0, 1, ether),
                i(RET | K, 0, 0, 7),
                i(RET | K, 0, 0, 0),
            ]);
        }
    }
    // ld [far]; and; jeq.
    programs.push(vec![
        i(LD | W | ABS, 0, 0, far),
        i(ALU | AND | K, 0, 0, 0xffff_0000),
        i(JMP | JEQ | K, 0, 1, ether << 16),
        i(RET | K, 0, 0, 7),
        i(RET | K, 0, 0, 0),
    ]);
    // jeq; ldb [far]; jeq (one false target).
    programs.push(vec![
        i(LD | H | ABS, 0, 0, 12),
        i(JMP | JEQ | K, 0, 3, ether),
        i(LD | B | ABS, 0, 0, 0x1_0000 + 23),
        i(JMP | JEQ | K, 0, 1, 17),
        i(RET | K, 0, 0, 7),
        i(RET | K, 0, 0, 0),
    ]);
    // ldxb 4*([14]&0xf); ldh [x+16]; jeq first, in a program that uses scratch memory: the
    // first instruction's `flags` say so, and are not the fused form's to take.
    let port = u32::from(u16::from_be_bytes([pkt[36], pkt[37]]));
    for k in [port, port + 1] {
        programs.push(vec![
            i(LDX | B | MSH, 0, 0, 14),
            i(LD | H | IND, 0, 0, 16),
            i(JMP | JEQ | K, 0, 3, k),
            i(ST, 0, 0, 3),
            i(LD | W | IMM, 0, 0, 1),
            i(LD | MEM, 0, 0, 3),
            i(RET | A, 0, 0, 0),
        ]);
    }
    // jeq; ld #23; jeq (the middle not an ldb), and jeq jt past the ldb; ldb [23]; jeq (the
    // ldb not the true target): both sharing a false target, but not the fused idiom. (The
    // ldx keeps the load from fusing with the first jeq.)
    let proto = u32::from(pkt[23]);
    for (jt, middle) in [(0, i(LD | W | IMM, 0, 0, 23)), (1, i(LD | B | ABS, 0, 0, 23))] {
        let k2 = if jt == 0 { 23 } else { proto };
        programs.push(vec![
            i(LD | H | ABS, 0, 0, 12),
            i(LDX | W | IMM, 0, 0, 1),
            i(JMP | JEQ | K, jt, 3, ether),
            middle,
            i(JMP | JEQ | K, 0, 1, k2),
            i(RET | K, 0, 0, 7),
            i(RET | A, 0, 0, 0),
        ]);
    }
    // ldxb 4*([far]&0xf); ldh [x+k]; jeq, and ldxb 4*([14]&0xf); ldh [x+far]; jeq.
    let port = u32::from(u16::from_be_bytes([pkt[36], pkt[37]]));
    for (m, k) in [
        (0x1_0000 + 14, 16),
        (0x100 + 14, 16),
        (14, 0x1_0000 + 16),
        (14, 16),
    ] {
        programs.push(vec![
            i(LDX | W | IMM, 0, 0, 3),
            i(LDX | B | MSH, 0, 0, m),
            i(LD | H | IND, 0, 0, k),
            i(JMP | JEQ | K, 0, 1, port),
            i(RET | K, 0, 0, 7),
            i(RET | K, 0, 0, 0),
        ]);
    }
    // jeq; jeq with the first's false target next but different true targets: not one
    // "either" test.
    for (k1, k2) in [(ether, 1), (1, ether), (ether, ether)] {
        programs.push(vec![
            i(LD | H | ABS, 0, 0, 12),
            i(LDX | W | IMM, 0, 0, 1),
            i(JMP | JEQ | K, 2, 0, k1),
            i(JMP | JEQ | K, 0, 2, k2),
            i(RET | K, 0, 0, 7),
            i(RET | K, 0, 0, 5),
            i(RET | K, 0, 0, 0),
        ]);
    }
    let mut out = vec![Compiled::default(); 16];
    for p in &programs {
        assert_eq!(compile(p, &mut out), Ok(()), "{p:?}");
        assert_eq!(run_compiled(&out[..p.len()], &pkt[..]), run(p, &pkt[..]), "{p:?}");
    }
}
