//! libpcap (Debian's libpcap0.8), loaded at run time: its interpreter, `bpf_filter()`, and its
//! validator, `bpf_validate()` (pcap/bpf.h). For the BPF comparisons of the bench and of the
//! `bpf` fuzz target.

use std::sync::OnceLock;

use rxinject_bpf::Insn;

/// `u_int bpf_filter(const struct bpf_insn *, const u_char *, u_int wirelen, u_int buflen)`.
type BpfFilter = unsafe extern "C" fn(*const Insn, *const u8, u32, u32) -> u32;
/// `int bpf_validate(const struct bpf_insn *, int len)`.
type BpfValidate = unsafe extern "C" fn(*const Insn, i32) -> i32;

/// libpcap, loaded.
pub struct Libpcap {
    _lib: libloading::Library,
    filter: BpfFilter,
    validate: BpfValidate,
}

impl Libpcap {
    /// Loads libpcap, or says which package brings it.
    pub fn load() -> Result<Libpcap, String> {
        for name in ["libpcap.so.1", "libpcap.so.0.8", "libpcap.so"] {
            // SAFETY: loading libpcap runs its initialisers, ordinary library setup.
            let Ok(lib) = (unsafe { libloading::Library::new(name) }) else {
                continue;
            };
            // SAFETY: libpcap's documented bpf_filter signature (pcap/bpf.h).
            let filter = *unsafe { lib.get::<BpfFilter>(b"bpf_filter\0") }
                .map_err(|e| format!("bpf_filter in libpcap: {e}"))?;
            // SAFETY: libpcap's documented bpf_validate signature (pcap/bpf.h).
            let validate = *unsafe { lib.get::<BpfValidate>(b"bpf_validate\0") }
                .map_err(|e| format!("bpf_validate in libpcap: {e}"))?;
            return Ok(Libpcap {
                _lib: lib,
                filter,
                validate,
            });
        }
        Err("libpcap is needed for the BPF comparison (Debian package libpcap0.8, with tcpdump)".into())
    }

    /// libpcap's verdict on `frame`. `prog` is one libpcap's validator accepts (its
    /// interpreter trusts it).
    pub fn run(&self, prog: &[Insn], frame: &[u8]) -> u32 {
        let n = frame.len() as u32;
        // SAFETY: a program libpcap validated (or compiled), a frame of `n` bytes.
        unsafe { (self.filter)(prog.as_ptr(), frame.as_ptr(), n, n) }
    }

    /// Whether libpcap's `bpf_validate` accepts `prog`.
    pub fn validate(&self, prog: &[Insn]) -> bool {
        let Ok(n) = i32::try_from(prog.len()) else {
            return false;
        };
        // SAFETY: `n` instructions at `prog`; the validator only reads them.
        unsafe { (self.validate)(prog.as_ptr(), n) != 0 }
    }
}

/// libpcap, loaded once for the process (None where it is not installed).
pub fn get() -> Option<&'static Libpcap> {
    static LIB: OnceLock<Option<Libpcap>> = OnceLock::new();
    LIB.get_or_init(|| Libpcap::load().ok()).as_ref()
}
