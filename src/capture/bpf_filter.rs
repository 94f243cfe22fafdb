//! Capture filters: a BPF program validated and pre-decoded at `SET_FILTER`
//! (`rxinject_bpf::compile`), published to the taps with its generation.

use core::ptr;
use core::sync::atomic::Ordering;

use ndis_sys::*;
use rxinject_abi::capture::{self as cap, FilterVerdict};
use rxinject_abi::tags::TAG_BPF;
use rxinject_bpf::{self as bpf, Compiled, Insn};

use super::reclaim::{self, Kind, Retired};
use super::{Capture, alloc_bytes, capture_of, free_bytes};
use crate::device::OpenHandle;

/// A validated program in its pre-decoded form, in pool memory: this header, then `len`
/// instructions. `len` 0 accepts every frame (no filter).
#[repr(C)]
pub struct Program {
    pub retired: Retired,
    /// Which `SET_FILTER` of the handle made it (the rings' generation, see ring.rs).
    pub generation: u16,
    len: usize,
}

const CODE_AT: usize = core::mem::size_of::<Program>();
const _: () = assert!(CODE_AT.is_multiple_of(core::mem::align_of::<Compiled>()));

impl Program {
    pub fn code(&self) -> &[Compiled] {
        let first = ptr::from_ref(self)
            .cast::<u8>()
            .wrapping_add(CODE_AT)
            .cast::<Compiled>();
        // SAFETY: `load` wrote `len` instructions right after the header; nothing writes
        // them since.
        unsafe { core::slice::from_raw_parts(first, self.len) }
    }

    pub fn is_filter(&self) -> bool {
        self.len > 0
    }
}

/// Frees a program that no tap can hold. IRQL <= DISPATCH_LEVEL.
///
/// # Safety
/// `p` came from [`load`] and is referenced by nothing.
pub unsafe fn free(p: *mut Program) {
    free_bytes(p.cast());
}

/// A program from an IOCTL input (8-byte `struct bpf_insn` records; none: no filter),
/// copied into pool memory and validated, made for generation `generation`; or the status
/// and verdict of its refusal.
pub fn load(input: &[u8], generation: u16) -> Result<*mut Program, (NTSTATUS, FilterVerdict)> {
    let bad = |error: u32, at: Option<usize>| FilterVerdict {
        error,
        instruction: at.map_or(u32::MAX, |a| a as u32),
    };
    if !input.len().is_multiple_of(8) || input.len() > bpf::MAX_INSNS * 8 {
        return Err((STATUS_INVALID_PARAMETER, bad(cap::FILTER_BAD_LENGTH, None)));
    }
    let n = input.len() / 8;
    let p = alloc_bytes(CODE_AT + n * core::mem::size_of::<Compiled>(), TAG_BPF).cast::<Program>();
    if p.is_null() {
        return Err((STATUS_INSUFFICIENT_RESOURCES, FilterVerdict::default()));
    }
    // SAFETY: fresh pool memory (16-aligned) for the header and `n` instructions.
    unsafe {
        p.write(Program {
            retired: Retired::new(Kind::Program),
            generation,
            len: n,
        })
    };
    if n == 0 {
        return Ok(p);
    }
    let insns = alloc_bytes(input.len(), TAG_BPF).cast::<Insn>();
    if insns.is_null() {
        free_bytes(p.cast());
        return Err((STATUS_INSUFFICIENT_RESOURCES, FilterVerdict::default()));
    }
    let code = p.cast::<u8>().wrapping_add(CODE_AT).cast::<Compiled>();
    for (i, chunk) in input.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        // SAFETY: `insns` holds `n` instructions (8 bytes each, 16-aligned pool memory) and
        // `i < n`.
        unsafe { insns.wrapping_add(i).write(Insn::from_bytes(b)) };
        // SAFETY: `code` holds `n` pre-decoded instructions after the header, `i < n`.
        unsafe { code.wrapping_add(i).write(Compiled::default()) };
    }
    // SAFETY: `insns` holds the `n` instructions written above; ours alone.
    let source = unsafe { core::slice::from_raw_parts(insns, n) };
    // SAFETY: `code` holds `n` initialised instructions; ours alone until published.
    let out = unsafe { core::slice::from_raw_parts_mut(code, n) };
    // Validated as it is decoded: linear in the program, nothing on the stack grows with it.
    let verdict = bpf::compile(source, out);
    free_bytes(insns.cast());
    if let Err(e) = verdict {
        free_bytes(p.cast());
        return Err((STATUS_INVALID_PARAMETER, bad(e.code(), e.at())));
    }
    Ok(p)
}

/// `IOCTL_RXINJECT_SET_FILTER`: validates and installs (or, with no instruction, removes) a
/// BPF program. Returns the status and the verdict to report. PASSIVE_LEVEL.
pub fn set_filter(h: &OpenHandle, input: &[u8]) -> (NTSTATUS, FilterVerdict) {
    let Some(c) = capture_of(h) else {
        return (STATUS_INSUFFICIENT_RESOURCES, FilterVerdict::default());
    };
    let generation = {
        let g = c.inner.lock();
        g.filter_generation.wrapping_add(1)
    };
    let program = match load(input, generation) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let old = install(c, program);
    if !old.is_null() {
        // SAFETY: unpublished by `install`; only taps already inside a section may hold it.
        unsafe { reclaim::retire(old.cast()) };
    }
    (STATUS_SUCCESS, FilterVerdict::default())
}

/// Publishes `program` and empties the rings: the records waiting were accepted by the old
/// program, and go with it, as BPF's BIOCSETF and Npcap's reset the buffer (a reader asking
/// for `icmp` must not then read an ARP frame the previous filter let in; libpcap does not
/// filter again). Returns the old program.
fn install(c: &Capture, program: *mut Program) -> *mut Program {
    let mut g = c.inner.lock();
    // SAFETY: just made by `load`, not shared yet.
    g.filter_generation = unsafe { (*program).generation };
    let old = c.program.swap(program, Ordering::SeqCst);
    // SAFETY: the rings are replaced only under this lock; alive while published.
    if let Some(rings) = unsafe { c.rings.load(Ordering::Acquire).as_ref() } {
        rings.flush(g.filter_generation);
    }
    g.filtered = input_is_filter(program);
    old
}

fn input_is_filter(p: *mut Program) -> bool {
    // SAFETY: a program of ours, alive (just published, freed only after it is replaced).
    unsafe { p.as_ref() }.is_some_and(Program::is_filter)
}

/// `IOCTL_RXINJECT_CHECK_FILTER`: the verdict `SET_FILTER` would give `input`, installing
/// nothing. `None` when there is no memory to validate in. PASSIVE_LEVEL.
pub fn check_filter(input: &[u8]) -> Option<FilterVerdict> {
    match load(input, 0) {
        Ok(p) => {
            // SAFETY: never published.
            unsafe { free(p) };
            Some(FilterVerdict::default())
        }
        Err((STATUS_INSUFFICIENT_RESOURCES, _)) => None,
        Err((_, verdict)) => Some(verdict),
    }
}
