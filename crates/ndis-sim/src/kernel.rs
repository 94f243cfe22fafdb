//! What a WDK-built filter imports beyond rxinject's own list: the `Ke` spin locks that
//! ndis.h's `NdisXxxSpinLock` macros become under `NDIS_WDM`, IRQL, events and waits, the
//! registry through NDIS configuration handles, I/O work items, NET_BUFFER pools, headroom,
//! `NdisFRestartFilter`, and the kernel's debugging and lookup functions. Each is checked
//! against its reference page (the IRQL it states, the structures it takes, what must be
//! freed), as the functions of `exports.rs` are.
//!
//! A wait runs the machine: completions, returns, timers and work items happen while a
//! driver thread waits, as other processors would run them on Windows. A wait that nothing
//! left in the machine can satisfy is reported (K3): on Windows that thread hangs forever.

#![allow(non_snake_case, clippy::missing_safety_doc)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::CStr;
use std::sync::atomic::Ordering;

use ndis_sys::*;

use crate::exports::handle_kind;
use crate::mem::{AllocKind, Block};
use crate::nbl::{self, MdlRec};
use crate::rules::Rule;
use crate::world::{HandleKind, ModState, World, lock, world};
use crate::{lifecycle, locks, timer, tls};

/// An infinite wait, or a driver polling with `NdisMSleep`, that nothing satisfies in this
/// much simulated time is a hang (10 minutes, in 100 ns units).
pub(crate) const HANG_LIMIT: u64 = 10 * 60 * 10_000_000;

// ---- the state ---------------------------------------------------------------------------------

/// Where a configuration handle reads: the filter driver's `Parameters` key, or a filter
/// module's own key (its instance below the adapter's `Ndi` configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegistryKey {
    /// `HKLM\System\CurrentControlSet\Services\<service>\Parameters` (the filter driver
    /// handle).
    Driver,
    /// The filter module on adapter `n` (its module handle).
    Module(usize),
}

/// A registry value a test puts where `NdisReadConfiguration` finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegValue {
    /// `REG_DWORD`.
    Dword(u32),
    /// `REG_SZ` (what an INF's `Ndi\params` keywords write, numbers included).
    String(String),
    /// `REG_MULTI_SZ`.
    MultiString(Vec<String>),
    /// `REG_BINARY`.
    Binary(Vec<u8>),
}

struct ConfigRec {
    key: RegistryKey,
    /// The NDIS_CONFIGURATION_PARAMETERs returned on this handle: NDIS frees them when the
    /// handle is closed.
    returned: Vec<Block>,
}

struct WorkItemRec {
    /// Queued and not yet run: the routine and its context.
    queued: Option<(unsafe extern "win64" fn(PVOID, NDIS_HANDLE), usize)>,
    _block: Block,
}

struct NbPoolRec {
    params: NET_BUFFER_POOL_PARAMETERS,
    live: usize,
}

struct NbRec {
    pool: usize,
    block: Block,
}

/// A buffer `NdisRetreatNetBufferDataStart` put in front of an NB's MDL chain.
struct RetreatRec {
    /// The MDL and its data, when NDIS allocated them; None when the driver's
    /// `NET_BUFFER_ALLOCATE_MDL_HANDLER` did.
    blocks: Option<(Block, Block)>,
}

#[derive(Default)]
pub(crate) struct KernelTable {
    /// Initialized events (`KEVENT` addresses) and their type.
    events: crate::AddrMap<EVENT_TYPE>,
    /// The simulated registry: key -> lower-cased value name -> value.
    registry: HashMap<RegistryKey, BTreeMap<String, RegValue>>,
    configs: crate::AddrMap<ConfigRec>,
    work_items: crate::AddrMap<WorkItemRec>,
    /// Queued work items, in queueing order.
    work_queue: VecDeque<usize>,
    nb_pools: crate::AddrMap<NbPoolRec>,
    nbs: crate::AddrMap<NbRec>,
    /// Keyed by the MDL put in front.
    retreats: crate::AddrMap<RetreatRec>,
    /// Modules NdisFRestartFilter asked to restart (adapter indexes), not yet run.
    restarts: Vec<usize>,
    /// Work items run, ever.
    pub work_items_run: u64,
}

impl KernelTable {
    pub fn set_registry(&mut self, key: RegistryKey, name: &str, value: RegValue) {
        self.registry
            .entry(key)
            .or_default()
            .insert(name.to_ascii_lowercase(), value);
    }
}

fn kern(w: &World) -> std::sync::MutexGuard<'_, KernelTable> {
    lock(&w.kern)
}

fn require_max_apc(w: &World, function: &str) {
    let irql = tls::irql();
    if irql > APC_LEVEL {
        w.violate(
            Rule::L2,
            format!("{function} called at IRQL {irql}; it requires IRQL <= APC_LEVEL"),
        );
    }
}

/// Runs what was deferred to the machine's own threads: queued work items (at
/// PASSIVE_LEVEL, as a system worker thread runs them) and the pause and restart
/// `NdisFRestartFilter` scheduled. Returns whether anything ran.
pub(crate) fn run_deferred(w: &World) -> bool {
    let mut any = false;
    loop {
        let next = {
            let mut k = kern(w);
            let Some(h) = k.work_queue.pop_front() else { break };
            let Some(rec) = k.work_items.get_mut(&h) else {
                continue;
            };
            let Some((routine, ctx)) = rec.queued.take() else {
                continue;
            };
            k.work_items_run += 1;
            (h, routine, ctx)
        };
        let (h, routine, ctx) = next;
        w.call_driver("NDIS_IO_WORKITEM_FUNCTION", PASSIVE_LEVEL, || {
            // SAFETY: the driver's work item routine with its context and handle, as NDIS
            // calls it from a system worker thread.
            unsafe { routine(ctx as PVOID, h as NDIS_HANDLE) }
        });
        any = true;
    }
    let restarts = std::mem::take(&mut kern(w).restarts);
    for i in restarts {
        let a = &w.adapters[i];
        if w.module_state(a) != ModState::Running {
            continue;
        }
        lifecycle::pause_module(w, a);
        let _ = lifecycle::restart(w, a);
        any = true;
    }
    any
}

/// At unload: work items, configuration handles and NB pools still allocated.
pub(crate) fn check_unload(w: &World) {
    let (items, configs, pools) = {
        let k = kern(w);
        (
            k.work_items.len(),
            k.configs.len(),
            k.nb_pools
                .values()
                .map(|p| (p.params.PoolTag, p.live))
                .collect::<Vec<_>>(),
        )
    };
    if items > 0 {
        w.violate(
            Rule::K4,
            format!("at unload: {items} I/O work item(s) never freed (NdisFreeIoWorkItem)"),
        );
    }
    if configs > 0 {
        w.violate(
            Rule::C2,
            format!("at unload: {configs} configuration handle(s) never closed (NdisCloseConfiguration)"),
        );
    }
    for (tag, live) in pools {
        w.violate(
            Rule::N7,
            format!(
                "leak at unload: NET_BUFFER pool (tag {}) with {live} NET_BUFFER(s)",
                crate::mem::tag_str(tag)
            ),
        );
    }
}

/// A tool's registry write ([`crate::Sim::set_registry`]).
pub(crate) fn set_registry(w: &World, key: RegistryKey, name: &str, value: RegValue) {
    kern(w).set_registry(key, name, value);
}

macro_rules! kexport {
    (fn $name:ident ( $( $a:ident : $t:ty ),* $(,)? ) $( -> $r:ty )? $body:block) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "win64" fn $name( $( $a : $t ),* ) $( -> $r )? $body
    };
}

/// The exports of this module: (module, name, address).
pub(crate) fn exports() -> Vec<(&'static str, &'static str, usize)> {
    macro_rules! list {
        ($( $dll:literal: [ $( $f:ident ),* $(,)? ] )*) => {
            vec![ $( $( ($dll, stringify!($f), $f as *const () as usize), )* )* ]
        };
    }
    list! {
        "ndis.sys": [
            NdisInitializeEvent, NdisSetEvent, NdisResetEvent, NdisWaitEvent,
            NdisOpenConfigurationEx, NdisReadConfiguration, NdisCloseConfiguration,
            NdisFRestartFilter, NdisGetDataBuffer, NdisRetreatNetBufferDataStart,
            NdisAdvanceNetBufferDataStart, NdisAllocateNetBufferPool, NdisFreeNetBufferPool,
            NdisAllocateNetBuffer, NdisFreeNetBuffer, NdisAllocateNetBufferList, NdisMSleep,
            NdisAllocateIoWorkItem, NdisQueueIoWorkItem, NdisFreeIoWorkItem,
            NdisGetRoutineAddress, NdisWriteEventLogEntry,
        ]
        "ntoskrnl.exe": [
            KeInitializeSpinLock, KeAcquireSpinLockRaiseToDpc, KeReleaseSpinLock,
            KeAcquireSpinLockAtDpcLevel, KeReleaseSpinLockFromDpcLevel, KeGetCurrentIrql,
            KeRaiseIrqlToDpcLevel, RtlInitUnicodeString, DbgPrint,
            RtlAssert, ExAllocatePoolWithTag, ExFreePool, KeInitializeEvent, KeSetEvent,
            KeResetEvent, KeClearEvent, KeReadStateEvent, KeWaitForSingleObject,
            MmGetSystemRoutineAddress,
        ]
    }
}

// ---- spin locks and IRQL -------------------------------------------------------------------

kexport! { fn KeInitializeSpinLock(SpinLock: *mut KSPIN_LOCK) { locks::initialize_word(&world(), SpinLock as usize) } }

kexport! {
    fn KeAcquireSpinLockRaiseToDpc(SpinLock: *mut KSPIN_LOCK) -> KIRQL {
        locks::acquire_word(&world(), SpinLock as usize, "KeAcquireSpinLockRaiseToDpc", false)
    }
}

kexport! {
    fn KeReleaseSpinLock(SpinLock: *mut KSPIN_LOCK, NewIrql: KIRQL) {
        locks::release_word(&world(), SpinLock as usize, "KeReleaseSpinLock", false, Some(NewIrql))
    }
}

kexport! {
    fn KeAcquireSpinLockAtDpcLevel(SpinLock: *mut KSPIN_LOCK) {
        let _ = locks::acquire_word(&world(), SpinLock as usize, "KeAcquireSpinLockAtDpcLevel", true);
    }
}

kexport! {
    fn KeReleaseSpinLockFromDpcLevel(SpinLock: *mut KSPIN_LOCK) {
        locks::release_word(&world(), SpinLock as usize, "KeReleaseSpinLockFromDpcLevel", true, None)
    }
}

kexport! { fn KeGetCurrentIrql() -> KIRQL { tls::irql() } }

fn raise(w: &World, function: &str, new: KIRQL) -> KIRQL {
    let old = tls::irql();
    if new < old {
        w.violate(
            Rule::L8,
            format!("{function}({new}) at IRQL {old}: raising to a lower IRQL (bug check 0x9 IRQL_NOT_GREATER_OR_EQUAL)"),
        );
        return old;
    }
    tls::set_irql(new);
    old
}

/// `KfRaiseIrql` (exported in exports.rs: rxinject imports it).
pub(crate) fn raise_irql(new: KIRQL) -> KIRQL {
    raise(&world(), "KeRaiseIrql", new)
}
kexport! { fn KeRaiseIrqlToDpcLevel() -> KIRQL { raise(&world(), "KeRaiseIrqlToDpcLevel", DISPATCH_LEVEL) } }

/// `KeLowerIrql` (exported in exports.rs: rxinject imports it).
#[allow(non_snake_case)]
pub(crate) fn lower_irql(NewIrql: KIRQL) {
    {
        let w = world();
        let now = tls::irql();
        if NewIrql > now {
            w.violate(
                Rule::L8,
                format!("KeLowerIrql({NewIrql}) at IRQL {now}: lowering to a higher IRQL (bug check 0xA IRQL_NOT_LESS_OR_EQUAL)"),
            );
            return;
        }
        if !tls::held_locks().is_empty() && NewIrql < DISPATCH_LEVEL {
            w.violate(
                Rule::L8,
                format!("KeLowerIrql({NewIrql}) while holding a spin lock"),
            );
        }
        tls::set_irql(NewIrql);
    }
}

// ---- strings, debugging, lookups ---------------------------------------------------------------

kexport! {
    fn RtlInitUnicodeString(DestinationString: *mut UNICODE_STRING, SourceString: *const u16) {
        if DestinationString.is_null() {
            world().violate(Rule::K1, "RtlInitUnicodeString(NULL, ...)");
            return;
        }
        let mut len = 0usize;
        if !SourceString.is_null() {
            // SAFETY: the caller passes a NUL-terminated wide string.
            while unsafe { *SourceString.add(len) } != 0 && len < 0x7FFE {
                len += 1;
            }
        }
        let bytes = (len * 2) as u16;
        // SAFETY: the caller's UNICODE_STRING.
        unsafe {
            *DestinationString = UNICODE_STRING {
                Length: bytes,
                MaximumLength: if SourceString.is_null() { 0 } else { bytes + 2 },
                Buffer: SourceString.cast_mut(),
            };
        }
    }
}

/// Reads a NUL-terminated string the driver passed (at most 4096 units).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn c_str(p: *const u8) -> String {
    if p.is_null() {
        return "(null)".into();
    }
    let mut v = Vec::new();
    // SAFETY: caller's contract.
    while v.len() < 4096 && unsafe { *p.add(v.len()) } != 0 {
        // SAFETY: as above.
        v.push(unsafe { *p.add(v.len()) });
    }
    String::from_utf8_lossy(&v).into_owned()
}

/// # Safety
/// `p` is NULL or a NUL-terminated wide string.
unsafe fn w_str(p: *const u16) -> String {
    if p.is_null() {
        return "(null)".into();
    }
    let mut v = Vec::new();
    // SAFETY: caller's contract.
    while v.len() < 4096 && unsafe { *p.add(v.len()) } != 0 {
        // SAFETY: as above.
        v.push(unsafe { *p.add(v.len()) });
    }
    String::from_utf16_lossy(&v)
}

/// Formats a `DbgPrint` message: `args` is the Windows x64 `va_list` (each argument one
/// 8-byte slot). Knows the conversions kernel code uses: `d i u x X o c s S p Z`, with flags,
/// width, precision (`*` too) and the `h l ll I64 I32 I w z` sizes; `%wZ` and `%Z` print a
/// UNICODE_STRING and an ANSI_STRING.
///
/// # Safety
/// `args` points to the caller's argument slots, and the arguments match the format.
pub(crate) unsafe fn format_va(fmt: &[u8], args: *const u64) -> String {
    let mut out = String::new();
    let mut next = 0usize;
    let mut arg = || {
        // SAFETY: caller's contract: one slot per conversion.
        let v = unsafe { *args.add(next) };
        next += 1;
        v
    };
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(c as char);
            continue;
        }
        let (mut left, mut plus, mut zero, mut alt, mut space) = (false, false, false, false, false);
        while i < fmt.len() && b"-+0# ".contains(&fmt[i]) {
            match fmt[i] {
                b'-' => left = true,
                b'+' => plus = true,
                b'0' => zero = true,
                b'#' => alt = true,
                _ => space = true,
            }
            i += 1;
        }
        let mut width = 0usize;
        if i < fmt.len() && fmt[i] == b'*' {
            width = arg() as i32 as usize;
            i += 1;
        }
        while i < fmt.len() && fmt[i].is_ascii_digit() {
            width = width * 10 + usize::from(fmt[i] - b'0');
            i += 1;
        }
        let mut precision: Option<usize> = None;
        if i < fmt.len() && fmt[i] == b'.' {
            i += 1;
            let mut p = 0usize;
            if i < fmt.len() && fmt[i] == b'*' {
                p = arg() as i32 as usize;
                i += 1;
            }
            while i < fmt.len() && fmt[i].is_ascii_digit() {
                p = p * 10 + usize::from(fmt[i] - b'0');
                i += 1;
            }
            precision = Some(p);
        }
        let mut wide64 = false;
        let mut wide_char = false;
        loop {
            let rest = &fmt[i..];
            if rest.starts_with(b"I64") || rest.starts_with(b"ll") {
                wide64 = true;
                i += if rest[0] == b'I' { 3 } else { 2 };
            } else if rest.starts_with(b"I32") {
                i += 3;
            } else if rest.starts_with(b"I") || rest.starts_with(b"z") {
                wide64 = true;
                i += 1;
            } else if rest.starts_with(b"h") || rest.starts_with(b"l") {
                i += 1;
            } else if rest.starts_with(b"w") {
                wide_char = true;
                i += 1;
            } else {
                break;
            }
        }
        let Some(&conv) = fmt.get(i) else { break };
        i += 1;
        let body = match conv {
            b'%' => "%".to_string(),
            b'd' | b'i' => {
                let v = arg();
                let v = if wide64 {
                    v as i64
                } else {
                    i64::from(v as u32 as i32)
                };
                let mut s = v.unsigned_abs().to_string();
                if let Some(p) = precision {
                    while s.len() < p {
                        s.insert(0, '0');
                    }
                }
                let sign = if v < 0 {
                    "-"
                } else if plus {
                    "+"
                } else if space {
                    " "
                } else {
                    ""
                };
                if zero && !left && precision.is_none() {
                    while s.len() + sign.len() < width {
                        s.insert(0, '0');
                    }
                }
                format!("{sign}{s}")
            }
            b'u' | b'x' | b'X' | b'o' | b'p' => {
                let v = arg();
                let v = if wide64 || conv == b'p' {
                    v
                } else {
                    u64::from(v as u32)
                };
                let mut s = match conv {
                    b'u' => v.to_string(),
                    b'x' => format!("{v:x}"),
                    b'X' => format!("{v:X}"),
                    b'o' => format!("{v:o}"),
                    _ => format!("{v:016X}"),
                };
                if let Some(p) = precision {
                    while s.len() < p {
                        s.insert(0, '0');
                    }
                }
                let prefix = match (alt, conv) {
                    (true, b'x') => "0x",
                    (true, b'X') => "0X",
                    _ => "",
                };
                if zero && !left && precision.is_none() {
                    while s.len() + prefix.len() < width {
                        s.insert(0, '0');
                    }
                }
                format!("{prefix}{s}")
            }
            b'c' | b'C' => char::from_u32(arg() as u32 & 0xFFFF).unwrap_or('?').to_string(),
            b's' | b'S' => {
                let p = arg() as usize;
                let s = if wide_char || conv == b'S' {
                    // SAFETY: the format says the argument is a wide string.
                    unsafe { w_str(p as *const u16) }
                } else {
                    // SAFETY: the format says the argument is a string.
                    unsafe { c_str(p as *const u8) }
                };
                match precision {
                    Some(n) => s.chars().take(n).collect(),
                    None => s,
                }
            }
            b'Z' => {
                let p = arg() as usize;
                if p == 0 {
                    "(null)".into()
                } else if wide_char {
                    // SAFETY: %wZ takes a PUNICODE_STRING.
                    unsafe { lifecycle::read_unicode(&*(p as *const UNICODE_STRING)) }
                } else {
                    // SAFETY: %Z takes a PANSI_STRING: USHORT Length, MaximumLength; PCHAR.
                    unsafe {
                        let len = *(p as *const u16) as usize;
                        let buf = *((p + 8) as *const *const u8);
                        if buf.is_null() {
                            String::new()
                        } else {
                            String::from_utf8_lossy(std::slice::from_raw_parts(buf, len)).into_owned()
                        }
                    }
                }
            }
            other => format!("%{}", other as char),
        };
        let pad = width.saturating_sub(body.chars().count());
        if left {
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&body);
        }
        if out.len() > 4096 {
            break;
        }
    }
    out
}

/// Records a debug message as the kernel debugger would show it.
pub(crate) fn debug_print(w: &World, level: Option<u32>, msg: &str) {
    let line = match level {
        Some(l) => format!("[{l}] {}", msg.trim_end()),
        None => msg.trim_end().to_string(),
    };
    if std::env::var_os("RXSIM_LOG").is_some() {
        eprintln!("dbg: {line}");
    }
    lock(&w.log).push(line);
}

/// `DbgPrint(Format, ...)`, after the shim spilled the register arguments.
unsafe extern "win64" fn dbg_vprint(format: *const u8, args: *const u64) -> NTSTATUS {
    let w = world();
    if !format.is_null() {
        // SAFETY: the caller's format and arguments (see `format_va`).
        let fmt = unsafe { CStr::from_ptr(format.cast()) }.to_bytes();
        // SAFETY: as above.
        let msg = unsafe { format_va(fmt, args) };
        debug_print(&w, None, &msg);
    }
    STATUS_SUCCESS
}

/// `DbgPrint` is variadic: this shim stores the register arguments in their home slots, where
/// the stack arguments follow them, and passes the address of the first variadic one (the
/// Windows x64 `va_list`) to [`dbg_vprint`].
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "win64" fn DbgPrint() {
    std::arch::naked_asm!(
        "mov [rsp + 8], rcx",
        "mov [rsp + 16], rdx",
        "mov [rsp + 24], r8",
        "mov [rsp + 32], r9",
        // 40 bytes: the callee's home area and the alignment to 16.
        "sub rsp, 40",
        "lea rdx, [rsp + 56]",
        "call {f}",
        "add rsp, 40",
        "ret",
        f = sym dbg_vprint,
    )
}

kexport! {
    fn RtlAssert(VoidFailedAssertion: PVOID, VoidFileName: PVOID, LineNumber: u32, MutableMessage: *const u8) {
        let w = world();
        // SAFETY: ASSERT passes the expression and file as NUL-terminated strings.
        let (expr, file) = unsafe { (c_str(VoidFailedAssertion.cast()), c_str(VoidFileName.cast())) };
        let msg = if MutableMessage.is_null() {
            String::new()
        } else {
            // SAFETY: as above (ASSERTMSG's message).
            format!(" ({})", unsafe { c_str(MutableMessage) })
        };
        debug_print(&w, None, &format!("*** Assertion failed: {expr}{msg} at {file}:{LineNumber}"));
        w.violate(Rule::K2, format!("ASSERT({expr}) failed at {file}:{LineNumber}{msg}"));
    }
}

/// The address of an export of the simulated system, by name.
fn routine_address(w: &World, function: &str, name: *const UNICODE_STRING, modules: &[&str]) -> PVOID {
    w.require_passive(function);
    if name.is_null() {
        w.violate(Rule::K1, format!("{function}(NULL)"));
        return std::ptr::null_mut();
    }
    // SAFETY: the caller's counted string.
    let name = unsafe { lifecycle::read_unicode(&*name) };
    crate::image::loader_exports()
        .into_iter()
        .find(|(m, n, _)| *n == name && modules.iter().any(|x| m.eq_ignore_ascii_case(x)))
        .map_or(std::ptr::null_mut(), |(_, _, a)| a as PVOID)
}

kexport! {
    fn NdisGetRoutineAddress(NdisRoutineName: *mut NDIS_STRING) -> PVOID {
        routine_address(&world(), "NdisGetRoutineAddress", NdisRoutineName, &["ndis.sys"])
    }
}

kexport! {
    fn MmGetSystemRoutineAddress(SystemRoutineName: *mut UNICODE_STRING) -> PVOID {
        routine_address(&world(), "MmGetSystemRoutineAddress", SystemRoutineName, &["ntoskrnl.exe", "hal.dll"])
    }
}

kexport! {
    fn NdisWriteEventLogEntry(
        LogHandle: PVOID,
        EventCode: NDIS_STATUS,
        UniqueEventValue: u32,
        NumStrings: u16,
        StringsList: PVOID,
        DataSize: u32,
        Data: PVOID,
    ) -> NDIS_STATUS {
        let _ = (StringsList, Data);
        let w = world();
        w.require_max_dispatch("NdisWriteEventLogEntry");
        let known = lock(&w.driver_object).is_some_and(|d| d == LogHandle as usize)
            || lock(&w.io).devices.iter().any(|d| d.object.addr() == LogHandle as usize);
        if !known {
            w.violate(
                Rule::K1,
                format!("NdisWriteEventLogEntry({:#x}): LogHandle is neither the driver object nor a device object", LogHandle as usize),
            );
            return NDIS_STATUS_FAILURE;
        }
        debug_print(
            &w,
            None,
            &format!("event log: code {EventCode:?}, value {UniqueEventValue:#x}, {NumStrings} string(s), {DataSize} byte(s) of data"),
        );
        NDIS_STATUS_SUCCESS
    }
}

// ---- pool ------------------------------------------------------------------------------------

/// `POOL_TYPE` values with their meaning for the checks: NonPagedPool 0, PagedPool 1,
/// NonPagedPoolNx 512 (and the must-succeed and cache-aligned variants of each).
fn pool_type_paged(pool_type: u32) -> bool {
    pool_type & 1 == 1
}

kexport! {
    fn ExAllocatePoolWithTag(PoolType: u32, NumberOfBytes: usize, Tag: u32) -> PVOID {
        let w = world();
        w.require_max_dispatch("ExAllocatePoolWithTag");
        if pool_type_paged(PoolType) && tls::irql() > APC_LEVEL {
            w.violate(Rule::L1, "ExAllocatePoolWithTag of paged pool at DISPATCH_LEVEL");
        }
        if Tag == 0 {
            w.violate(Rule::K1, "ExAllocatePoolWithTag with a zero tag");
        }
        if NumberOfBytes == 0 || w.fail_allocation("ExAllocatePoolWithTag") {
            return std::ptr::null_mut();
        }
        // Not zeroed: that is the difference from ExAllocatePool2.
        lock(&w.mem).allocate(NumberOfBytes, Tag, AllocKind::Ex, false) as PVOID
    }
}

kexport! {
    fn ExFreePool(P: PVOID) {
        let w = world();
        w.require_max_dispatch("ExFreePool");
        let mut mem = lock(&w.mem);
        match mem.live.get(&(P as usize)).map(|a| a.kind) {
            Some(AllocKind::Ex) => {
                mem.free(P as usize);
            }
            Some(kind) => {
                drop(mem);
                w.violate(Rule::K1, format!("ExFreePool({:#x}) on {kind:?} memory", P as usize));
            }
            None => {
                drop(mem);
                w.violate(Rule::K1, format!("ExFreePool({:#x}): not a live allocation (double free?)", P as usize));
            }
        }
    }
}

// ---- events and waits ------------------------------------------------------------------------

/// Whether `ev` was initialized; reports K5 if not.
fn known_event(w: &World, function: &str, ev: *mut KEVENT) -> Option<EVENT_TYPE> {
    let t = kern(w).events.get(&(ev as usize)).copied();
    if t.is_none() {
        w.violate(
            Rule::K5,
            format!(
                "{function}({:#x}): not an initialized event (KeInitializeEvent/NdisInitializeEvent)",
                ev as usize
            ),
        );
    }
    t
}

fn initialize_event(w: &World, function: &str, ev: *mut KEVENT, kind: EVENT_TYPE, state: bool) {
    w.require_max_dispatch(function);
    if ev.is_null() {
        w.violate(Rule::K5, format!("{function}(NULL)"));
        return;
    }
    if kind != NotificationEvent && kind != SynchronizationEvent {
        w.violate(
            Rule::K5,
            format!("{function}: event type {kind} is neither NotificationEvent nor SynchronizationEvent"),
        );
    }
    // SAFETY: the caller's storage for an event object.
    unsafe {
        let h = &mut (*ev).Header;
        h.Type = kind as u8;
        h.Signalling = 0;
        h.Size = (std::mem::size_of::<KEVENT>() / 4) as u8;
        h.Reserved1 = 0;
        h.SignalState = i32::from(state);
        let head = &raw mut h.WaitListHead;
        (*head).Flink = head;
        (*head).Blink = head;
    }
    kern(w).events.insert(ev as usize, kind);
}

/// The event's signal state, as the object in driver memory holds it.
///
/// # Safety
/// `ev` is an initialized event.
unsafe fn signal_state(ev: *mut KEVENT) -> i32 {
    // SAFETY: caller's contract.
    unsafe { std::ptr::read_volatile(&raw const (*ev).Header.SignalState) }
}

/// Sets the signal state; returns the previous one.
///
/// # Safety
/// As for [`signal_state`].
unsafe fn set_state(ev: *mut KEVENT, state: i32) -> i32 {
    // SAFETY: caller's contract.
    unsafe {
        let old = signal_state(ev);
        std::ptr::write_volatile(&raw mut (*ev).Header.SignalState, state);
        old
    }
}

/// Waits for `ev` (an initialized event of type `kind`) up to `timeout` (100 ns units; None:
/// forever) while the machine runs. Returns whether the event was signaled.
fn wait_event(w: &World, function: &str, ev: *mut KEVENT, kind: EVENT_TYPE, timeout: Option<u64>) -> bool {
    // SAFETY: an initialized event (checked by the caller).
    let signaled = || unsafe { signal_state(ev) } != 0;
    let waiting = w.waiting_here();
    let satisfied = match timeout {
        None => w.settle(signaled),
        Some(t) => {
            let deadline = timer::now(w).saturating_add(t);
            // The machine runs, and time passes to each timer due before the deadline.
            loop {
                if signaled() {
                    break true;
                }
                if w.pump() {
                    continue;
                }
                if let Some(due) = timer::next_due(w).filter(|&d| d <= deadline) {
                    w.clock.fetch_max(due, Ordering::SeqCst);
                    timer::fire_due(w);
                    continue;
                }
                if w.others_can_act() {
                    std::thread::yield_now();
                    continue;
                }
                w.clock.fetch_max(deadline, Ordering::SeqCst);
                break signaled();
            }
        }
    };
    drop(waiting);
    if satisfied {
        if kind == SynchronizationEvent {
            // SAFETY: as above.
            unsafe { set_state(ev, 0) };
        }
    } else if timeout.is_none() {
        w.violate(
            Rule::K3,
            format!(
                "{function}({:#x}) waits forever: nothing left in the machine sets the event (no completion, return, timer or work item pending, and no other thread in the driver); on Windows this thread hangs",
                ev as usize
            ),
        );
    }
    satisfied
}

kexport! {
    fn KeInitializeEvent(Event: *mut KEVENT, Type: EVENT_TYPE, State: BOOLEAN) {
        initialize_event(&world(), "KeInitializeEvent", Event, Type, State != 0)
    }
}

kexport! {
    fn KeSetEvent(Event: *mut KEVENT, Increment: i32, Wait: BOOLEAN) -> i32 {
        let _ = Increment;
        let w = world();
        if Wait != 0 {
            // The caller must wait right after, at IRQL <= APC_LEVEL.
            require_max_apc(&w, "KeSetEvent(Wait = TRUE)");
        } else {
            w.require_max_dispatch("KeSetEvent");
        }
        if known_event(&w, "KeSetEvent", Event).is_none() {
            return 0;
        }
        // SAFETY: an initialized event.
        unsafe { set_state(Event, 1) }
    }
}

kexport! {
    fn KeResetEvent(Event: *mut KEVENT) -> i32 {
        let w = world();
        w.require_max_dispatch("KeResetEvent");
        if known_event(&w, "KeResetEvent", Event).is_none() {
            return 0;
        }
        // SAFETY: an initialized event.
        unsafe { set_state(Event, 0) }
    }
}

kexport! {
    fn KeClearEvent(Event: *mut KEVENT) {
        let w = world();
        w.require_max_dispatch("KeClearEvent");
        if known_event(&w, "KeClearEvent", Event).is_some() {
            // SAFETY: an initialized event.
            unsafe { set_state(Event, 0) };
        }
    }
}

kexport! {
    fn KeReadStateEvent(Event: *mut KEVENT) -> i32 {
        let w = world();
        w.require_max_dispatch("KeReadStateEvent");
        if known_event(&w, "KeReadStateEvent", Event).is_none() {
            return 0;
        }
        // SAFETY: an initialized event.
        unsafe { signal_state(Event) }
    }
}

kexport! {
    fn KeWaitForSingleObject(Object: PVOID, WaitReason: u32, WaitMode: i8, Alertable: BOOLEAN, Timeout: *mut i64) -> NTSTATUS {
        const F: &str = "KeWaitForSingleObject";
        // The wait mode and alertability change nothing here: no APC is ever delivered.
        let _ = (WaitReason, WaitMode, Alertable);
        let w = world();
        // SAFETY: the caller's LARGE_INTEGER, when given.
        let timeout = (!Timeout.is_null()).then(|| unsafe { *Timeout });
        if timeout == Some(0) {
            w.require_max_dispatch(F);
        } else {
            require_max_apc(&w, &format!("{F} with a non-zero timeout"));
        }
        let ev = Object.cast::<KEVENT>();
        let Some(kind) = known_event(&w, F, ev) else {
            return STATUS_INVALID_PARAMETER;
        };
        // Negative: relative; positive: absolute system time.
        let rel = timeout.map(|t| {
            if t < 0 {
                t.unsigned_abs()
            } else {
                (t - timer::BOOT_SYSTEM_TIME - timer::now(&w) as i64).max(0) as u64
            }
        });
        if wait_event(&w, F, ev, kind, rel) {
            STATUS_SUCCESS
        } else {
            STATUS_TIMEOUT
        }
    }
}

kexport! {
    fn NdisInitializeEvent(Event: *mut NDIS_EVENT) {
        initialize_event(&world(), "NdisInitializeEvent", Event.cast(), NotificationEvent, false)
    }
}

kexport! {
    fn NdisSetEvent(Event: *mut NDIS_EVENT) {
        let w = world();
        w.require_max_dispatch("NdisSetEvent");
        if known_event(&w, "NdisSetEvent", Event.cast()).is_some() {
            // SAFETY: an initialized event.
            unsafe { set_state(Event.cast(), 1) };
        }
    }
}

kexport! {
    fn NdisResetEvent(Event: *mut NDIS_EVENT) {
        let w = world();
        w.require_max_dispatch("NdisResetEvent");
        if known_event(&w, "NdisResetEvent", Event.cast()).is_some() {
            // SAFETY: an initialized event.
            unsafe { set_state(Event.cast(), 0) };
        }
    }
}

kexport! {
    fn NdisWaitEvent(Event: *mut NDIS_EVENT, MsToWait: u32) -> BOOLEAN {
        const F: &str = "NdisWaitEvent";
        let w = world();
        w.require_passive(F);
        let Some(kind) = known_event(&w, F, Event.cast()) else {
            return 0;
        };
        // "A value of zero specifies that the caller will wait for the event indefinitely."
        let timeout = (MsToWait != 0).then(|| u64::from(MsToWait) * 10_000);
        BOOLEAN::from(wait_event(&w, F, Event.cast(), kind, timeout))
    }
}

kexport! {
    fn NdisMSleep(MicrosecondsToSleep: u32) {
        const F: &str = "NdisMSleep";
        let w = world();
        require_max_apc(&w, F);
        let slept = tls::add_sleep(u64::from(MicrosecondsToSleep) * 10);
        timer::advance(&w, u64::from(MicrosecondsToSleep) * 10);
        // Other processors work meanwhile.
        while w.pump() {}
        if slept > HANG_LIMIT {
            w.violate(
                Rule::K3,
                format!("{} has slept {} s of simulated time in NdisMSleep polling a condition nothing in the machine changes: on Windows this thread hangs", tls::context_name(), slept / 10_000_000),
            );
            w.stop("a driver thread polls forever");
        }
    }
}

// ---- configuration ---------------------------------------------------------------------------

kexport! {
    fn NdisOpenConfigurationEx(ConfigObject: *mut NDIS_CONFIGURATION_OBJECT, ConfigurationHandle: *mut NDIS_HANDLE) -> NDIS_STATUS {
        const F: &str = "NdisOpenConfigurationEx";
        let w = world();
        w.require_passive(F);
        if ConfigObject.is_null() || ConfigurationHandle.is_null() {
            w.violate(Rule::C1, format!("{F} with a NULL argument"));
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        // SAFETY: the caller's configuration object.
        let co = unsafe { *ConfigObject };
        if co.Header.Type != NDIS_OBJECT_TYPE_CONFIGURATION_OBJECT
            || co.Header.Revision != NDIS_CONFIGURATION_OBJECT_REVISION_1
            || co.Header.Size < NDIS_SIZEOF_CONFIGURATION_OBJECT_REVISION_1
        {
            w.violate(Rule::C1, format!("{F}: header {:?} is not CONFIGURATION_OBJECT/revision 1/size 20", co.Header));
            return NDIS_STATUS_INVALID_PARAMETER;
        }
        let key = match handle_kind(&w, co.NdisHandle) {
            Some(HandleKind::FilterDriver) => RegistryKey::Driver,
            Some(HandleKind::Module(i)) => RegistryKey::Module(i),
            _ => {
                w.violate(Rule::C1, format!("{F}: NdisHandle {:#x} is neither the filter driver's nor a module's handle", co.NdisHandle as usize));
                return NDIS_STATUS_FAILURE;
            }
        };
        let b = Block::new(16, 0);
        let h = b.addr();
        kern(&w).configs.insert(h, ConfigRec { key, returned: vec![b] });
        // SAFETY: the caller's out parameter.
        unsafe { *ConfigurationHandle = h as NDIS_HANDLE };
        NDIS_STATUS_SUCCESS
    }
}

/// An `NDIS_CONFIGURATION_PARAMETER` block for `value` as asked for `requested`, or None when
/// the value cannot be read as that type.
fn parameter_block(value: &RegValue, requested: u32) -> Option<Block> {
    fn with_data(ty: u32, data: &[u8], as_string: bool) -> Block {
        let head = std::mem::size_of::<NDIS_CONFIGURATION_PARAMETER>();
        let b = Block::new(head + data.len() + 2, 0);
        let p = b.ptr::<NDIS_CONFIGURATION_PARAMETER>();
        let buf = (b.addr() + head) as *mut u8;
        // SAFETY: the block holds the parameter followed by the data.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
            (*p).ParameterType = ty;
            if as_string {
                (*p).ParameterData.StringData = UNICODE_STRING {
                    Length: data.len() as u16,
                    MaximumLength: data.len() as u16,
                    Buffer: buf.cast(),
                };
            } else {
                (*p).ParameterData.BinaryData = BINARY_DATA {
                    Length: data.len() as u16,
                    Buffer: buf.cast(),
                };
            }
        }
        b
    }
    fn integer(ty: u32, v: u32) -> Block {
        let b = Block::new(std::mem::size_of::<NDIS_CONFIGURATION_PARAMETER>(), 0);
        let p = b.ptr::<NDIS_CONFIGURATION_PARAMETER>();
        // SAFETY: a block of the parameter's size.
        unsafe {
            (*p).ParameterType = ty;
            (*p).ParameterData.IntegerData = v;
        }
        b
    }
    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }
    let wants_integer = requested == NdisParameterInteger || requested == NdisParameterHexInteger;
    Some(match value {
        RegValue::Dword(v) => integer(
            if wants_integer {
                requested
            } else {
                NdisParameterInteger
            },
            *v,
        ),
        // Keywords an INF writes are strings; the reference page says a keyword's value can be
        // an integer or a string. Our reading (an inference): asked for an integer, NDIS
        // converts a string that holds one (decimal for NdisParameterInteger, hexadecimal for
        // NdisParameterHexInteger), and fails the read otherwise.
        RegValue::String(s) if wants_integer => {
            let t = s.trim();
            let v = if requested == NdisParameterHexInteger {
                u32::from_str_radix(t.trim_start_matches("0x").trim_start_matches("0X"), 16).ok()?
            } else {
                t.parse::<u32>().ok()?
            };
            integer(requested, v)
        }
        RegValue::String(s) => with_data(NdisParameterString, &utf16(s), true),
        RegValue::MultiString(v) => {
            let mut d = Vec::new();
            for s in v {
                d.extend(utf16(s));
                d.extend([0, 0]);
            }
            d.extend([0, 0]);
            with_data(NdisParameterMultiString, &d, true)
        }
        RegValue::Binary(d) => with_data(NdisParameterBinary, d, false),
    })
}

kexport! {
    fn NdisReadConfiguration(
        Status: *mut NDIS_STATUS,
        ParameterValue: *mut *mut NDIS_CONFIGURATION_PARAMETER,
        ConfigurationHandle: NDIS_HANDLE,
        Keyword: *mut NDIS_STRING,
        ParameterType: u32,
    ) {
        const F: &str = "NdisReadConfiguration";
        let w = world();
        w.require_passive(F);
        if Status.is_null() || ParameterValue.is_null() || Keyword.is_null() {
            w.violate(Rule::C1, format!("{F} with a NULL argument"));
            if !Status.is_null() {
                // SAFETY: the caller's out parameter.
                unsafe { *Status = NDIS_STATUS_FAILURE };
            }
            return;
        }
        // SAFETY: the caller's counted string.
        let name = unsafe { lifecycle::read_unicode(&*Keyword) };
        let mut k = kern(&w);
        let Some(key) = k.configs.get(&(ConfigurationHandle as usize)).map(|c| c.key) else {
            drop(k);
            w.violate(Rule::C1, format!("{F}({:#x}, \"{name}\"): not an open configuration handle", ConfigurationHandle as usize));
            // SAFETY: the caller's out parameter.
            unsafe { *Status = NDIS_STATUS_FAILURE };
            return;
        };
        let (major, minor) = w.cfg.ndis_version;
        let value = match name.to_ascii_lowercase().as_str() {
            // The predefined keywords.
            "ndisversion" => Some(RegValue::Dword((u32::from(major) << 16) | u32::from(minor))),
            // NdisProcessorAmd64.
            "processortype" => Some(RegValue::Dword(4)),
            lower => k.registry.get(&key).and_then(|m| m.get(lower)).cloned(),
        };
        let Some(block) = value.and_then(|v| parameter_block(&v, ParameterType)) else {
            // "The requested information could not be found": *ParameterValue is not written.
            // SAFETY: the caller's out parameter.
            unsafe { *Status = NDIS_STATUS_FAILURE };
            return;
        };
        let p = block.ptr::<NDIS_CONFIGURATION_PARAMETER>();
        k.configs.get_mut(&(ConfigurationHandle as usize)).expect("checked").returned.push(block);
        // SAFETY: the caller's out parameters.
        unsafe {
            *ParameterValue = p;
            *Status = NDIS_STATUS_SUCCESS;
        }
    }
}

kexport! {
    fn NdisCloseConfiguration(ConfigurationHandle: NDIS_HANDLE) {
        const F: &str = "NdisCloseConfiguration";
        let w = world();
        w.require_passive(F);
        let Some(rec) = kern(&w).configs.remove(&(ConfigurationHandle as usize)) else {
            w.violate(Rule::C1, format!("{F}({:#x}): not an open configuration handle (closed twice?)", ConfigurationHandle as usize));
            return;
        };
        // What NdisReadConfiguration returned is freed now: poisoned, like freed pool.
        let mut objs = lock(&w.objs);
        for b in rec.returned {
            let _ = objs.quarantine.put(b);
        }
    }
}

// ---- NdisFRestartFilter ------------------------------------------------------------------------

kexport! {
    fn NdisFRestartFilter(NdisFilterHandle: NDIS_HANDLE) -> NDIS_STATUS {
        const F: &str = "NdisFRestartFilter";
        let w = world();
        w.require_max_dispatch(F);
        let Some(a) = w.module_adapter(NdisFilterHandle, F) else {
            return NDIS_STATUS_FAILURE;
        };
        if w.module_state(a) != ModState::Running {
            // Only a running module can be paused and restarted.
            return NDIS_STATUS_FAILURE;
        }
        let mut k = kern(&w);
        if !k.restarts.contains(&a.idx) {
            k.restarts.push(a.idx);
        }
        NDIS_STATUS_SUCCESS
    }
}

// ---- I/O work items ----------------------------------------------------------------------------

kexport! {
    fn NdisAllocateIoWorkItem(NdisObjectHandle: NDIS_HANDLE) -> NDIS_HANDLE {
        const F: &str = "NdisAllocateIoWorkItem";
        let w = world();
        w.require_max_dispatch(F);
        match handle_kind(&w, NdisObjectHandle) {
            // The documented handles for a filter: its driver handle or a device handle; a
            // module handle is accepted too (NDIS finds the driver object from it).
            Some(HandleKind::FilterDriver | HandleKind::Device | HandleKind::Module(_)) => {}
            _ => {
                w.violate(Rule::K4, format!("{F}({:#x}): not the filter driver's or a device's handle", NdisObjectHandle as usize));
                return std::ptr::null_mut();
            }
        }
        if w.fail_allocation(F) {
            return std::ptr::null_mut();
        }
        let b = Block::new(64, 0);
        let h = b.addr();
        kern(&w).work_items.insert(h, WorkItemRec { queued: None, _block: b });
        h as NDIS_HANDLE
    }
}

kexport! {
    fn NdisQueueIoWorkItem(NdisIoWorkItemHandle: NDIS_HANDLE, Routine: NDIS_IO_WORKITEM_ROUTINE, WorkItemContext: PVOID) {
        const F: &str = "NdisQueueIoWorkItem";
        let w = world();
        w.require_max_dispatch(F);
        let h = NdisIoWorkItemHandle as usize;
        let mut k = kern(&w);
        let problem = match (k.work_items.get_mut(&h), Routine) {
            (None, _) => Some(format!("{F}({h:#x}): not a live work item")),
            (Some(_), None) => Some(format!("{F}({h:#x}) with a NULL routine")),
            (Some(r), Some(_)) if r.queued.is_some() => Some(format!("{F}({h:#x}): the work item is already queued")),
            (Some(r), Some(f)) => {
                r.queued = Some((f, WorkItemContext as usize));
                None
            }
        };
        match problem {
            Some(p) => {
                drop(k);
                w.violate(Rule::K4, p);
            }
            None => k.work_queue.push_back(h),
        }
    }
}

kexport! {
    fn NdisFreeIoWorkItem(NdisIoWorkItemHandle: NDIS_HANDLE) {
        const F: &str = "NdisFreeIoWorkItem";
        let w = world();
        w.require_max_dispatch(F);
        let h = NdisIoWorkItemHandle as usize;
        let mut k = kern(&w);
        let problem = match k.work_items.get(&h) {
            None => Some(format!("{F}({h:#x}): not a live work item (freed twice?)")),
            Some(r) if r.queued.is_some() => Some(format!("{F}({h:#x}) while it is queued: its routine would run on freed memory")),
            Some(_) => None,
        };
        match problem {
            Some(p) => {
                drop(k);
                w.violate(Rule::K4, p);
            }
            None => {
                k.work_items.remove(&h);
            }
        }
    }
}

// ---- NET_BUFFER pools, NET_BUFFERs, NBLs without NET_BUFFERs -------------------------------------

kexport! {
    fn NdisAllocateNetBufferPool(NdisHandle: NDIS_HANDLE, Parameters: *mut NET_BUFFER_POOL_PARAMETERS) -> NDIS_HANDLE {
        const F: &str = "NdisAllocateNetBufferPool";
        let w = world();
        w.require_max_dispatch(F);
        if !matches!(handle_kind(&w, NdisHandle), Some(HandleKind::FilterDriver | HandleKind::Module(_))) {
            w.violate(Rule::N3, format!("{F} with {:#x}, not a driver or module handle", NdisHandle as usize));
            return std::ptr::null_mut();
        }
        if Parameters.is_null() {
            w.violate(Rule::N3, format!("{F}(Parameters = NULL)"));
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's parameters.
        let p = unsafe { *Parameters };
        if p.Header.Type != NDIS_OBJECT_TYPE_DEFAULT
            || p.Header.Revision != NET_BUFFER_POOL_PARAMETERS_REVISION_1
            || p.Header.Size < NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1
        {
            w.violate(Rule::N3, format!("{F}: header {:?} is not DEFAULT/revision 1/size 12", p.Header));
            return std::ptr::null_mut();
        }
        let h = lock(&w.objs).new_handle(HandleKind::Pool);
        kern(&w).nb_pools.insert(h, NbPoolRec { params: p, live: 0 });
        h as NDIS_HANDLE
    }
}

kexport! {
    fn NdisFreeNetBufferPool(PoolHandle: NDIS_HANDLE) {
        const F: &str = "NdisFreeNetBufferPool";
        let w = world();
        w.require_max_dispatch(F);
        let mut k = kern(&w);
        match k.nb_pools.get(&(PoolHandle as usize)).map(|p| p.live) {
            None => {
                drop(k);
                w.violate(Rule::N7, format!("{F}({:#x}): not a live NET_BUFFER pool", PoolHandle as usize));
            }
            Some(live) if live > 0 => {
                drop(k);
                w.violate(Rule::N7, format!("{F}: the pool still has {live} NET_BUFFER(s) allocated"));
            }
            Some(_) => {
                k.nb_pools.remove(&(PoolHandle as usize));
                drop(k);
                lock(&w.objs).kill_handle(PoolHandle as usize);
            }
        }
    }
}

/// Bytes described by an MDL chain whose every MDL the machine knows; Err names the first
/// unknown one.
fn chain_bytes(objs: &nbl::Objects, mut m: *mut MDL) -> Result<usize, usize> {
    let mut total = 0;
    let mut n = 0;
    while !m.is_null() {
        if !objs.mdls.contains_key(&(m as usize)) || n > 256 {
            return Err(m as usize);
        }
        // SAFETY: a registered MDL.
        let md = unsafe { &*m };
        total += md.ByteCount as usize;
        m = md.Next;
        n += 1;
    }
    Ok(total)
}

/// Points `CurrentMdl`/`CurrentMdlOffset` at the MDL holding `DataOffset`.
///
/// # Safety
/// `nb` is a NET_BUFFER whose chain is registered.
unsafe fn set_current(nb: *mut NET_BUFFER) {
    // SAFETY: caller's contract.
    unsafe {
        let mut mdl = (*nb).MdlChain;
        let mut remaining = (*nb).DataOffset;
        while !mdl.is_null() && remaining >= (*mdl).ByteCount && !(*mdl).Next.is_null() {
            remaining -= (*mdl).ByteCount;
            mdl = (*mdl).Next;
        }
        (*nb).CurrentMdl = mdl;
        (*nb).CurrentMdlOffset = remaining;
    }
}

kexport! {
    fn NdisAllocateNetBuffer(PoolHandle: NDIS_HANDLE, MdlChain: *mut MDL, DataOffset: u32, DataLength: usize) -> *mut NET_BUFFER {
        const F: &str = "NdisAllocateNetBuffer";
        let w = world();
        w.require_max_dispatch(F);
        if !kern(&w).nb_pools.contains_key(&(PoolHandle as usize)) {
            w.violate(Rule::N2, format!("{F}({:#x}): not a live NET_BUFFER pool", PoolHandle as usize));
            return std::ptr::null_mut();
        }
        match chain_bytes(&lock(&w.objs), MdlChain) {
            Err(m) => {
                w.violate(Rule::N2, format!("{F}: MDL {m:#x} was not allocated through NDIS"));
                return std::ptr::null_mut();
            }
            Ok(total) if !MdlChain.is_null() && DataOffset as usize + DataLength > total => {
                w.violate(Rule::N2, format!("{F}: DataOffset {DataOffset} + DataLength {DataLength} exceed the {total} bytes of the MDL chain"));
                return std::ptr::null_mut();
            }
            Ok(_) if MdlChain.is_null() && (DataOffset != 0 || DataLength != 0) => {
                w.violate(Rule::N2, format!("{F}: no MDL chain but DataOffset {DataOffset} / DataLength {DataLength}"));
                return std::ptr::null_mut();
            }
            Ok(_) => {}
        }
        if w.fail_allocation(F) {
            return std::ptr::null_mut();
        }
        let block = Block::new(std::mem::size_of::<NET_BUFFER>(), 0);
        let nb = block.ptr::<NET_BUFFER>();
        // SAFETY: a zeroed NET_BUFFER; its chain was checked above.
        unsafe {
            (*nb).NdisPoolHandle = PoolHandle;
            (*nb).MdlChain = MdlChain;
            (*nb).DataOffset = DataOffset;
            (*nb).DataLength = NET_BUFFER_DATA_LENGTH::new(DataLength as u32);
            set_current(nb);
        }
        let mut k = kern(&w);
        k.nbs.insert(nb as usize, NbRec { pool: PoolHandle as usize, block });
        k.nb_pools.get_mut(&(PoolHandle as usize)).expect("checked").live += 1;
        nb
    }
}

kexport! {
    fn NdisFreeNetBuffer(NetBuffer: *mut NET_BUFFER) {
        const F: &str = "NdisFreeNetBuffer";
        let w = world();
        w.require_max_dispatch(F);
        let Some(rec) = kern(&w).nbs.remove(&(NetBuffer as usize)) else {
            w.violate(Rule::N7, format!("{F}({:#x}): not a live NET_BUFFER from NdisAllocateNetBuffer (double free?)", NetBuffer as usize));
            return;
        };
        if let Some(p) = kern(&w).nb_pools.get_mut(&rec.pool) {
            p.live -= 1;
        }
        let _ = lock(&w.objs).quarantine.put(rec.block);
    }
}

kexport! {
    fn NdisAllocateNetBufferList(PoolHandle: NDIS_HANDLE, ContextSize: u16, ContextBackFill: u16) -> *mut NET_BUFFER_LIST {
        const F: &str = "NdisAllocateNetBufferList";
        let w = world();
        w.require_max_dispatch(F);
        let mut objs = lock(&w.objs);
        let Some(pool) = objs.pools.get(&(PoolHandle as usize)) else {
            drop(objs);
            w.violate(Rule::N2, format!("{F}({:#x}): not a live NET_BUFFER_LIST pool", PoolHandle as usize));
            return std::ptr::null_mut();
        };
        if usize::from(ContextSize) % MEMORY_ALLOCATION_ALIGNMENT != 0 || usize::from(ContextBackFill) % MEMORY_ALLOCATION_ALIGNMENT != 0 {
            drop(objs);
            w.violate(Rule::N2, format!("{F}: context size {ContextSize}/backfill {ContextBackFill} not multiples of MEMORY_ALLOCATION_ALIGNMENT"));
            return std::ptr::null_mut();
        }
        if w.fail_allocation(F) {
            return std::ptr::null_mut();
        }
        let ctx = usize::from(pool.params.ContextSize) + usize::from(ContextSize) + usize::from(ContextBackFill);
        let adapter = match pool.owner_kind { HandleKind::Module(i) => i, _ => usize::MAX };
        let n = nbl::build_own_bare(&mut objs, PoolHandle as usize, ctx);
        objs.nbls.get_mut(&n).expect("just built").adapter = adapter;
        objs.pools.get_mut(&(PoolHandle as usize)).expect("checked").live += 1;
        n as *mut NET_BUFFER_LIST
    }
}

// ---- data access and headroom ------------------------------------------------------------------

/// The MDLs of `nb`'s chain with the bytes each holds, after checking the chain (N5).
fn checked_chain(w: &World, function: &str, nb: *mut NET_BUFFER) -> Option<Vec<*mut MDL>> {
    if nb.is_null() {
        w.violate(Rule::N5, format!("{function}(NULL)"));
        return None;
    }
    let objs = lock(&w.objs);
    // SAFETY: the caller's NET_BUFFER; its MDLs are checked against the tables by read_nb.
    if let Err(e) = unsafe { nbl::read_nb(&objs, nb) } {
        drop(objs);
        w.violate(Rule::N5, format!("{function}: {e}"));
        return None;
    }
    let mut v = Vec::new();
    // SAFETY: validated above.
    let mut m = unsafe { (*nb).MdlChain };
    while !m.is_null() {
        v.push(m);
        // SAFETY: as above.
        m = unsafe { (*m).Next };
    }
    Some(v)
}

kexport! {
    fn NdisGetDataBuffer(NetBuffer: *mut NET_BUFFER, BytesNeeded: u32, Storage: PVOID, AlignMultiple: u32, AlignOffset: u32) -> PVOID {
        const F: &str = "NdisGetDataBuffer";
        let w = world();
        w.require_max_dispatch(F);
        if checked_chain(&w, F, NetBuffer).is_none() {
            return std::ptr::null_mut();
        }
        // SAFETY: a checked NET_BUFFER.
        let n = unsafe { &*NetBuffer };
        let need = BytesNeeded as usize;
        if need == 0 || need > n.DataLength.get() as usize {
            return std::ptr::null_mut();
        }
        if AlignMultiple == 0 || !AlignMultiple.is_power_of_two() || AlignOffset >= AlignMultiple {
            w.violate(Rule::N5, format!("{F}: AlignMultiple {AlignMultiple} must be a power of 2 and AlignOffset {AlignOffset} below it"));
            return std::ptr::null_mut();
        }
        // SAFETY: CurrentMdl is in the checked chain.
        let m = unsafe { &mut *n.CurrentMdl };
        let va = m.StartVa as usize + m.ByteOffset as usize;
        let at = va + n.CurrentMdlOffset as usize;
        let contiguous = m.ByteCount.saturating_sub(n.CurrentMdlOffset) as usize >= need;
        let aligned = (at as u64).wrapping_sub(u64::from(AlignOffset)) % u64::from(AlignMultiple) == 0;
        if contiguous && aligned {
            // NDIS maps the MDL for the caller.
            m.MappedSystemVa = va as PVOID;
            m.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
            return at as PVOID;
        }
        if Storage.is_null() {
            return std::ptr::null_mut();
        }
        let data = {
            let objs = lock(&w.objs);
            // SAFETY: checked above.
            unsafe { nbl::read_nb(&objs, NetBuffer) }.unwrap_or_default()
        };
        // SAFETY: the caller's storage holds at least BytesNeeded bytes.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), Storage.cast::<u8>(), need.min(data.len())) };
        Storage
    }
}

kexport! {
    fn NdisRetreatNetBufferDataStart(NetBuffer: *mut NET_BUFFER, DataOffsetDelta: u32, DataBackFill: u32, AllocateMdlHandler: NET_BUFFER_ALLOCATE_MDL_HANDLER) -> NDIS_STATUS {
        const F: &str = "NdisRetreatNetBufferDataStart";
        let w = world();
        w.require_max_dispatch(F);
        if checked_chain(&w, F, NetBuffer).is_none() {
            return NDIS_STATUS_FAILURE;
        }
        // SAFETY: a checked NET_BUFFER.
        let n = unsafe { &mut *NetBuffer };
        if DataOffsetDelta <= n.DataOffset {
            n.DataOffset -= DataOffsetDelta;
            n.DataLength = NET_BUFFER_DATA_LENGTH::new(n.DataLength.get() + DataOffsetDelta);
            // SAFETY: as above.
            unsafe { set_current(NetBuffer) };
            return NDIS_STATUS_SUCCESS;
        }
        // Not enough unused space: a new buffer goes in front of the chain. The unused bytes
        // of the old chain become data, and DataBackFill unused bytes stay in front.
        if w.fail_allocation(F) {
            return NDIS_STATUS_RESOURCES;
        }
        let extra = (DataOffsetDelta - n.DataOffset) as usize;
        let size = extra + DataBackFill as usize;
        let (mdl, rec) = match AllocateMdlHandler {
            Some(alloc) => {
                let mut got = size as u32;
                let mdl = w.call_driver("NET_BUFFER_ALLOCATE_MDL_HANDLER", tls::irql(), || {
                    // SAFETY: the driver's handler with a valid size variable.
                    unsafe { alloc(&mut got) }
                });
                if mdl.is_null() {
                    return NDIS_STATUS_RESOURCES;
                }
                if !lock(&w.objs).mdls.contains_key(&(mdl as usize)) || (got as usize) < size {
                    w.violate(Rule::N6, format!("{F}: the allocate-MDL handler returned {:#x} of {got} bytes, not an NDIS MDL of {size}", mdl as usize));
                    return NDIS_STATUS_FAILURE;
                }
                (mdl, RetreatRec { blocks: None })
            }
            None => {
                let data = Block::new(size, 0xEE);
                let mb = Block::new(std::mem::size_of::<MDL>(), 0);
                let mdl = mb.ptr::<MDL>();
                let va = data.addr();
                // SAFETY: a zeroed MDL-sized block.
                unsafe {
                    (*mdl).Size = std::mem::size_of::<MDL>() as i16;
                    (*mdl).MdlFlags = MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA;
                    (*mdl).StartVa = (va & !0xFFF) as PVOID;
                    (*mdl).ByteOffset = (va & 0xFFF) as u32;
                    (*mdl).ByteCount = size as u32;
                    (*mdl).MappedSystemVa = va as PVOID;
                }
                lock(&w.objs).mdls.insert(mdl as usize, MdlRec { block: None, by_filter: false });
                (mdl, RetreatRec { blocks: Some((mb, data)) })
            }
        };
        // SAFETY: the new MDL goes in front of the checked chain.
        unsafe {
            let count = (*mdl).ByteCount;
            (*mdl).Next = n.MdlChain;
            n.MdlChain = mdl;
            n.DataOffset = count - extra as u32;
            n.DataLength = NET_BUFFER_DATA_LENGTH::new(n.DataLength.get() + DataOffsetDelta);
            set_current(NetBuffer);
        }
        kern(&w).retreats.insert(mdl as usize, rec);
        NDIS_STATUS_SUCCESS
    }
}

kexport! {
    fn NdisAdvanceNetBufferDataStart(NetBuffer: *mut NET_BUFFER, DataOffsetDelta: u32, FreeMdl: BOOLEAN, FreeMdlHandler: NET_BUFFER_FREE_MDL_HANDLER) {
        const F: &str = "NdisAdvanceNetBufferDataStart";
        let w = world();
        w.require_max_dispatch(F);
        if checked_chain(&w, F, NetBuffer).is_none() {
            return;
        }
        // SAFETY: a checked NET_BUFFER.
        let n = unsafe { &mut *NetBuffer };
        if DataOffsetDelta > n.DataLength.get() {
            w.violate(Rule::N6, format!("{F} by {DataOffsetDelta} bytes, past the {} bytes of data", n.DataLength.get()));
            return;
        }
        n.DataOffset += DataOffsetDelta;
        n.DataLength = NET_BUFFER_DATA_LENGTH::new(n.DataLength.get() - DataOffsetDelta);
        if FreeMdl != 0 {
            // Free the buffers a retreat put in front, once they hold no data.
            loop {
                let head = n.MdlChain;
                // SAFETY: the chain was checked.
                let count = if head.is_null() { break } else { unsafe { (*head).ByteCount } };
                if n.DataOffset < count {
                    break;
                }
                let Some(rec) = kern(&w).retreats.remove(&(head as usize)) else { break };
                // SAFETY: as above.
                n.MdlChain = unsafe { (*head).Next };
                n.DataOffset -= count;
                match rec.blocks {
                    Some((mb, data)) => {
                        let mut objs = lock(&w.objs);
                        objs.mdls.remove(&(head as usize));
                        let _ = objs.quarantine.put(mb);
                        let _ = objs.quarantine.put(data);
                    }
                    None => match FreeMdlHandler {
                        Some(free) => w.call_driver("NET_BUFFER_FREE_MDL_HANDLER", tls::irql(), || {
                            // SAFETY: the driver's handler with the MDL its allocate handler made.
                            unsafe { free(head) }
                        }),
                        None => w.violate(Rule::N6, format!("{F}: the MDL came from the driver's allocate handler, but no free handler was given")),
                    },
                }
            }
        }
        // SAFETY: as above.
        unsafe { set_current(NetBuffer) };
    }
}
