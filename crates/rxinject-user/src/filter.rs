//! Capture filters: tcpdump expressions compiled by libpcap (loaded at run time: libpcap on
//! Linux, Npcap's `wpcap.dll` on Windows), or programs in `tcpdump -ddd` / `-dd` text.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::fmt;

use rxinject_bpf::Insn;

/// Why a filter could not be made.
#[derive(Debug)]
pub enum FilterError {
    /// libpcap is not installed.
    NoLibpcap { tried: Vec<String> },
    /// libpcap refused the expression.
    Compile { expr: String, message: String },
    /// A `-ddd` text with a bad line.
    Text { line: usize, message: String },
    /// A program the validator refused.
    Invalid(rxinject_bpf::Error),
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::NoLibpcap { tried } => write!(
                f,
                "filter expressions are compiled with libpcap, which was not found (tried {}): install libpcap (Linux) or Npcap (Windows), or pass the program with --bpf-file (tcpdump -ddd output)",
                tried.join(", ")
            ),
            FilterError::Compile { expr, message } => write!(f, "filter \"{expr}\": {message}"),
            FilterError::Text { line, message } => write!(f, "BPF program line {line}: {message}"),
            FilterError::Invalid(e) => write!(f, "the BPF program is not valid: {e}"),
        }
    }
}

impl std::error::Error for FilterError {}

/// `struct bpf_program`.
#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut Insn,
}

type OpenDead = unsafe extern "C" fn(c_int, c_int) -> *mut c_void;
type Compile = unsafe extern "C" fn(*mut c_void, *mut BpfProgram, *const c_char, c_int, u32) -> c_int;
type GetErr = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type FreeCode = unsafe extern "C" fn(*mut BpfProgram);
type Close = unsafe extern "C" fn(*mut c_void);

const DLT_EN10MB: c_int = 1;
const PCAP_NETMASK_UNKNOWN: u32 = 0xffff_ffff;

fn candidates() -> Vec<String> {
    if cfg!(windows) {
        let root = std::env::var("SystemRoot").unwrap_or_else(|_| "C:\\Windows".into());
        vec!["wpcap.dll".into(), format!("{root}\\System32\\Npcap\\wpcap.dll")]
    } else {
        vec![
            "libpcap.so.1".into(),
            "libpcap.so.0.8".into(),
            "libpcap.so".into(),
        ]
    }
}

/// Compiles `expr` for Ethernet with snap length `snaplen`, as `tcpdump -y EN10MB` would.
pub fn compile(expr: &str, snaplen: u32) -> Result<Vec<Insn>, FilterError> {
    let tried = candidates();
    // SAFETY: loading libpcap runs its initialisers, which are ordinary library setup.
    let lib = tried
        .iter()
        .find_map(|name| unsafe { libloading::Library::new(name) }.ok())
        .ok_or_else(|| FilterError::NoLibpcap { tried: tried.clone() })?;
    let symbols = (|| {
        // SAFETY (each): the documented libpcap signature (pcap/pcap.h) declared above.
        // SAFETY: see above.
        let open_dead = *unsafe { lib.get::<OpenDead>(b"pcap_open_dead\0") }.ok()?;
        // SAFETY: see above.
        let compile = *unsafe { lib.get::<Compile>(b"pcap_compile\0") }.ok()?;
        // SAFETY: see above.
        let geterr = *unsafe { lib.get::<GetErr>(b"pcap_geterr\0") }.ok()?;
        // SAFETY: see above.
        let freecode = *unsafe { lib.get::<FreeCode>(b"pcap_freecode\0") }.ok()?;
        // SAFETY: see above.
        let close = *unsafe { lib.get::<Close>(b"pcap_close\0") }.ok()?;
        Some((open_dead, compile, geterr, freecode, close))
    })();
    let Some((open_dead, pcap_compile, geterr, freecode, close)) = symbols else {
        return Err(FilterError::NoLibpcap { tried });
    };
    let c_expr = CString::new(expr).map_err(|_| FilterError::Compile {
        expr: expr.into(),
        message: "the expression contains a NUL byte".into(),
    })?;
    let snap = c_int::try_from(snaplen.max(1)).unwrap_or(65535);
    // SAFETY: pcap_open_dead returns a handle we close below (or null on failure).
    let p = unsafe { open_dead(DLT_EN10MB, snap) };
    if p.is_null() {
        return Err(FilterError::NoLibpcap { tried });
    }
    let mut prog = BpfProgram {
        bf_len: 0,
        bf_insns: std::ptr::null_mut(),
    };
    // SAFETY: a live handle, a program to fill, a NUL-terminated expression.
    let rc = unsafe { pcap_compile(p, &mut prog, c_expr.as_ptr(), 1, PCAP_NETMASK_UNKNOWN) };
    let result = if rc != 0 {
        // SAFETY: a live handle.
        let text = unsafe { geterr(p) };
        // SAFETY: pcap_geterr returns the handle's NUL-terminated message, valid until the
        // handle is closed.
        let msg = unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned();
        Err(FilterError::Compile {
            expr: expr.into(),
            message: msg,
        })
    } else {
        let insns = if prog.bf_insns.is_null() {
            Vec::new()
        } else {
            // SAFETY: libpcap filled `bf_len` instructions at `bf_insns`; `struct bpf_insn` has
            // the layout of `Insn` (8 bytes: u16, u8, u8, u32).
            unsafe { std::slice::from_raw_parts(prog.bf_insns, prog.bf_len as usize) }.to_vec()
        };
        // SAFETY: the program pcap_compile filled.
        unsafe { freecode(&mut prog) };
        Ok(insns)
    };
    // SAFETY: the handle from pcap_open_dead, closed once.
    unsafe { close(p) };
    let insns = result?;
    rxinject_bpf::validate(&insns).map_err(FilterError::Invalid)?;
    Ok(insns)
}

/// Parses a program in `tcpdump -ddd` text (a count line, then `code jt jf k` in decimal) or
/// `-dd` text (`{ 0x28, 0, 0, 0x0000000c },` lines).
pub fn parse_text(text: &str) -> Result<Vec<Insn>, FilterError> {
    let bad = |line: usize, message: String| FilterError::Text { line, message };
    let mut insns = Vec::new();
    let mut declared: Option<(usize, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim().trim_end_matches(',').trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = t
            .trim_start_matches('{')
            .trim_end_matches('}')
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect();
        let num = |s: &str| -> Result<u64, FilterError> {
            let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse::<u64>(),
            };
            v.map_err(|_| bad(line, format!("\"{s}\" is not a number")))
        };
        match fields.len() {
            1 if declared.is_none() && insns.is_empty() => {
                declared = Some((num(fields[0])? as usize, line));
            }
            4 => {
                let (code, jt, jf, k) = (num(fields[0])?, num(fields[1])?, num(fields[2])?, num(fields[3])?);
                if code > 0xffff || jt > 0xff || jf > 0xff || k > 0xffff_ffff {
                    return Err(bad(
                        line,
                        "a field is out of range (code 16 bits, jt/jf 8 bits, k 32 bits)".into(),
                    ));
                }
                insns.push(Insn::new(code as u16, jt as u8, jf as u8, k as u32));
            }
            n => return Err(bad(line, format!("expected 4 numbers (code jt jf k), found {n}"))),
        }
    }
    if let Some((n, line)) = declared
        && n != insns.len()
    {
        return Err(bad(
            line,
            format!("the count says {n} instructions, {} follow", insns.len()),
        ));
    }
    rxinject_bpf::validate(&insns).map_err(FilterError::Invalid)?;
    Ok(insns)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ICMP_DDD: &str = "6\n40 0 0 12\n21 0 3 2048\n48 0 0 23\n21 0 1 1\n6 0 0 262144\n6 0 0 0\n";

    #[test]
    fn ddd_and_dd_texts_parse_to_the_same_program() {
        let a = parse_text(ICMP_DDD).unwrap();
        let dd = "{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, 0, 3, 0x00000800 },\n{ 0x30, 0, 0, 0x00000017 },\n{ 0x15, 0, 1, 0x00000001 },\n{ 0x6, 0, 0, 0x00040000 },\n{ 0x6, 0, 0, 0x00000000 },\n";
        assert_eq!(parse_text(dd).unwrap(), a);
        assert_eq!(a.len(), 6);
        assert_eq!(a[1], Insn::new(0x15, 0, 3, 0x800));
    }

    #[test]
    fn bad_texts_name_the_line() {
        let e = parse_text("2\n40 0 0 12\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("count says 2"), "{e}");
        let e = parse_text("40 0 0 12\n21 x 3 2048\n6 0 0 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("\"x\""), "{e}");
        let e = parse_text("40 0 0\n").unwrap_err().to_string();
        assert!(e.contains("found 3"), "{e}");
        let e = parse_text("1\n21 0 5 1\n").unwrap_err().to_string();
        assert!(e.contains("not valid"), "{e}");
    }

    #[test]
    fn libpcap_compiles_real_expressions_when_it_is_installed() {
        match compile("icmp", 262_144) {
            Ok(p) => assert_eq!(p, parse_text(ICMP_DDD).unwrap()),
            Err(FilterError::NoLibpcap { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        if let Err(e) = compile("tcp port", 65535) {
            assert!(
                matches!(e, FilterError::Compile { .. } | FilterError::NoLibpcap { .. }),
                "{e}"
            );
        }
    }
}
