//! The kernel and NDIS services a WDK-built filter imports beyond rxinject's own list
//! (`kernel.rs`), each called as a driver calls it: through the address the loader binds, with
//! the Windows x64 calling convention, inside a simulation with the lab filter attached. Each
//! test checks the documented behaviour and that a misuse is reported with the right rule.

mod lab;

use std::ptr;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use lab::Fault;
use ndis_sim::{RegValue, RegistryKey, Report, Rule, Sim, SimConfig};
use ndis_sys::*;

/// The export `name` as a function pointer of type `T`.
fn f<T: Copy>(name: &str) -> T {
    assert_eq!(std::mem::size_of::<T>(), 8);
    let addr = ndis_sim::exports()
        .into_iter()
        .find(|(_, n, _)| *n == name)
        .unwrap_or_else(|| panic!("no export {name}"))
        .2;
    // SAFETY: T is the function-pointer type of the export (each test names it).
    unsafe { std::mem::transmute_copy(&addr) }
}

fn start() -> Sim {
    lab::start(Fault::None, SimConfig::default())
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

fn ndis_string(w: &[u16]) -> UNICODE_STRING {
    let bytes = ((w.len() - 1) * 2) as u16;
    UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes + 2,
        Buffer: w.as_ptr().cast_mut(),
    }
}

/// Only `rules` were broken (violations or warnings), each at least once.
#[track_caller]
fn only(report: &Report, rules: &[Rule]) {
    let mut want = rules.to_vec();
    want.sort();
    want.dedup();
    assert_eq!(report.rules(), want, "{report}");
}

type Fn0<R> = unsafe extern "win64" fn() -> R;
type Fn1<A, R> = unsafe extern "win64" fn(A) -> R;
type Fn2<A, B, R> = unsafe extern "win64" fn(A, B) -> R;
type Fn3<A, B, C, R> = unsafe extern "win64" fn(A, B, C) -> R;

// ---- debugging and strings ---------------------------------------------------------------------

#[test]
fn dbgprint_formats_its_arguments_as_the_kernel_does() {
    let sim = start();
    type DbgPrint = unsafe extern "win64" fn(*const u8, u64, u64, u64, u64, u64, u64, u64) -> NTSTATUS;
    let dbg: DbgPrint = f("DbgPrint");
    let name = wide("sim0");
    let us = ndis_string(&name);
    // SAFETY: the format matches the arguments; the last two stack slots are read.
    unsafe {
        dbg(
            c"%s=%d [%5x] [%-4u] %08X %wZ %I64x%%\n".as_ptr().cast(),
            c"rx".as_ptr() as u64,
            (-42i32) as u32 as u64,
            0xbeef,
            7,
            0xab,
            &us as *const _ as u64,
            0x1_0000_0000,
        )
    };
    type DbgPrintEx = unsafe extern "win64" fn(u32, u32, *const u8, u64, u64, u64) -> NTSTATUS;
    let dbg_ex: DbgPrintEx = f("DbgPrintEx");
    // SAFETY: as above.
    unsafe {
        dbg_ex(
            77,
            3,
            c"%s: %u of %c".as_ptr().cast(),
            c"frames".as_ptr() as u64,
            12,
            u64::from(b'Z'),
        )
    };
    let log = sim.log();
    assert!(
        log.iter()
            .any(|l| l == "rx=-42 [ beef] [7   ] 000000AB sim0 100000000%"),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l == "[3] frames: 12 of Z"), "{log:?}");
    sim.finish().assert_clean();
}

#[test]
fn rtl_init_unicode_string_counts_bytes_without_the_terminator() {
    let sim = start();
    let init: Fn2<*mut UNICODE_STRING, *const u16, ()> = f("RtlInitUnicodeString");
    let w = wide("FilterName");
    let mut s = UNICODE_STRING {
        Length: 1,
        MaximumLength: 1,
        Buffer: ptr::null_mut(),
    };
    // SAFETY: valid string and destination.
    unsafe { init(&mut s, w.as_ptr()) };
    assert_eq!(
        (s.Length, s.MaximumLength, s.Buffer.cast_const()),
        (20, 22, w.as_ptr())
    );
    // SAFETY: NULL source is documented: an empty string.
    unsafe { init(&mut s, ptr::null()) };
    assert_eq!((s.Length, s.MaximumLength), (0, 0));
    sim.finish().assert_clean();
}

#[test]
fn a_failed_assert_is_a_violation() {
    let sim = start();
    let rtl_assert: unsafe extern "win64" fn(PVOID, PVOID, u32, *const u8) = f("RtlAssert");
    // SAFETY: what the ASSERT macro passes.
    unsafe {
        rtl_assert(
            c"pending == 0".as_ptr() as PVOID,
            c"filter.c".as_ptr() as PVOID,
            120,
            ptr::null(),
        )
    };
    let r = sim.finish();
    only(&r, &[Rule::K2]);
    assert!(
        r.violations[0]
            .message
            .contains("ASSERT(pending == 0) failed at filter.c:120"),
        "{r}"
    );
}

#[test]
fn routine_lookups_find_the_exports_and_nothing_else() {
    let sim = start();
    let lookup: Fn1<*mut UNICODE_STRING, PVOID> = f("NdisGetRoutineAddress");
    let mm: Fn1<*mut UNICODE_STRING, PVOID> = f("MmGetSystemRoutineAddress");
    let send = wide("NdisFSendNetBufferLists");
    let alloc = wide("ExAllocatePool2");
    let bogus = wide("NdisNoSuchThing");
    // SAFETY: valid counted strings.
    unsafe {
        assert_eq!(
            lookup(&mut ndis_string(&send)) as usize,
            f::<usize>("NdisFSendNetBufferLists")
        );
        assert!(lookup(&mut ndis_string(&bogus)).is_null());
        // ndis.sys's routines are not ntoskrnl's.
        assert!(mm(&mut ndis_string(&send)).is_null());
        assert_eq!(
            mm(&mut ndis_string(&alloc)) as usize,
            f::<usize>("ExAllocatePool2")
        );
    }
    sim.finish().assert_clean();
}

// ---- IRQL and Ke spin locks --------------------------------------------------------------------

#[test]
fn irql_is_raised_and_lowered_only_in_the_documented_direction() {
    let sim = start();
    let get: Fn0<KIRQL> = f("KeGetCurrentIrql");
    let raise: Fn1<KIRQL, KIRQL> = f("KfRaiseIrql");
    let lower: Fn1<KIRQL, ()> = f("KeLowerIrql");
    // SAFETY: the kernel's IRQL functions.
    unsafe {
        assert_eq!(get(), PASSIVE_LEVEL);
        assert_eq!(raise(DISPATCH_LEVEL), PASSIVE_LEVEL);
        assert_eq!(get(), DISPATCH_LEVEL);
        lower(PASSIVE_LEVEL);
        assert_eq!(get(), PASSIVE_LEVEL);
    }
    let r0 = sim.finish();
    r0.assert_clean();

    let sim = start();
    // SAFETY: as above, misused.
    unsafe {
        raise(DISPATCH_LEVEL);
        raise(APC_LEVEL);
        lower(PASSIVE_LEVEL);
        lower(DISPATCH_LEVEL);
    }
    let r = sim.finish();
    only(&r, &[Rule::L8]);
    assert_eq!(r.violations.len(), 2, "{r}");
}

/// A thread at DISPATCH_LEVEL runs on a processor no other thread has until it drops below
/// it, and `KeGetCurrentProcessorNumberEx` says which (stable there); below DISPATCH_LEVEL a
/// thread may be anywhere. `KeQueryMaximumProcessorCountEx` is the configured count. With
/// all processors taken, one more thread raising to DISPATCH_LEVEL waits for one.
#[test]
fn processors_are_one_thread_each_at_dispatch_level() {
    let sim = lab::start(
        Fault::None,
        SimConfig {
            processors: 2,
            ..SimConfig::default()
        },
    );
    let raise: Fn1<KIRQL, KIRQL> = f("KfRaiseIrql");
    let lower: Fn1<KIRQL, ()> = f("KeLowerIrql");
    let current: Fn1<*mut PROCESSOR_NUMBER, u32> = f("KeGetCurrentProcessorNumberEx");
    let count: Fn1<u16, u32> = f("KeQueryMaximumProcessorCountEx");
    // SAFETY: the kernel's processor and IRQL functions, used as documented.
    unsafe {
        assert_eq!(count(ALL_PROCESSOR_GROUPS), 2);
        assert_eq!(count(0), 2);
        assert_eq!(count(1), 0, "one group");
        // Below DISPATCH_LEVEL: anywhere, and not always the same.
        let seen: std::collections::BTreeSet<u32> = (0..4).map(|_| current(ptr::null_mut())).collect();
        assert_eq!(seen.len(), 2, "{seen:?}");
        raise(DISPATCH_LEVEL);
        let mut number = PROCESSOR_NUMBER::default();
        let mine = current(&mut number);
        assert!(mine < 2);
        assert_eq!(current(ptr::null_mut()), mine, "stable at DISPATCH_LEVEL");
        assert_eq!((number.Group, u32::from(number.Number)), (0, mine));
        lower(PASSIVE_LEVEL);
    }
    // Two threads at DISPATCH_LEVEL at once get the two processors; a third waits until one
    // of them lowers.
    let at_dispatch = std::sync::Barrier::new(3);
    let third_in = AtomicU32::new(0);
    let (order, seen) = std::thread::scope(|s| {
        let first_two: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let _actor = sim.actor();
                    // SAFETY: as above.
                    let n = unsafe {
                        raise(DISPATCH_LEVEL);
                        current(ptr::null_mut())
                    };
                    at_dispatch.wait();
                    // Hold the processor until the third thread has tried to get one.
                    while third_in.load(Ordering::SeqCst) == 0 {
                        std::thread::yield_now();
                    }
                    // SAFETY: as above.
                    unsafe { lower(PASSIVE_LEVEL) };
                    n
                })
            })
            .collect();
        at_dispatch.wait();
        let third = s.spawn(|| {
            let _actor = sim.actor();
            third_in.store(1, Ordering::SeqCst);
            // SAFETY: as above: waits for a processor, then has it.
            let n = unsafe {
                raise(DISPATCH_LEVEL);
                current(ptr::null_mut())
            };
            // SAFETY: as above.
            unsafe { lower(PASSIVE_LEVEL) };
            n
        });
        let two: Vec<u32> = first_two.into_iter().map(|t| t.join().unwrap()).collect();
        (two, third.join().unwrap())
    });
    let mut two = order.clone();
    two.sort_unstable();
    assert_eq!(two, [0, 1], "distinct processors: {order:?}");
    assert!(seen < 2);
    sim.finish().assert_clean();
}

#[test]
fn ke_spin_locks_follow_the_l_rules_as_the_ndis_ones_do() {
    let sim = start();
    let init: Fn1<*mut KSPIN_LOCK, ()> = f("KeInitializeSpinLock");
    let acquire: Fn1<*mut KSPIN_LOCK, KIRQL> = f("KeAcquireSpinLockRaiseToDpc");
    let release: Fn2<*mut KSPIN_LOCK, KIRQL, ()> = f("KeReleaseSpinLock");
    let acquire_dpc: Fn1<*mut KSPIN_LOCK, ()> = f("KeAcquireSpinLockAtDpcLevel");
    let release_dpc: Fn1<*mut KSPIN_LOCK, ()> = f("KeReleaseSpinLockFromDpcLevel");
    let get: Fn0<KIRQL> = f("KeGetCurrentIrql");
    let mut a: KSPIN_LOCK = 0x55;
    // SAFETY: a lock word in this frame, initialized first.
    unsafe {
        init(&mut a);
        assert_eq!(a, 0, "KeInitializeSpinLock clears the lock");
        let old = acquire(&mut a);
        assert_eq!((old, get()), (PASSIVE_LEVEL, DISPATCH_LEVEL));
        release(&mut a, old);
        assert_eq!(get(), PASSIVE_LEVEL);
    }
    // A KSPIN_LOCK has nothing to free: no L7 at unload.
    sim.finish().assert_clean();

    let sim = start();
    let mut never: KSPIN_LOCK = 0;
    let mut b: KSPIN_LOCK = 0;
    // SAFETY: as above, misused.
    unsafe {
        // Uninitialized: reported once, taken, and released without a cascade.
        let old = acquire(&mut never);
        release(&mut never, old);
        let old = acquire(&mut never);
        release(&mut never, old);
        // The Dpc variant at PASSIVE_LEVEL, and a release of a lock not held.
        init(&mut b);
        acquire_dpc(&mut b);
        release_dpc(&mut b);
        release(&mut b, PASSIVE_LEVEL);
    }
    let r = sim.finish();
    only(&r, &[Rule::L3, Rule::L4]);
    assert_eq!(
        r.violations.iter().filter(|v| v.rule == Rule::L3).count(),
        2,
        "{r}"
    );
}

// ---- events and waits ----------------------------------------------------------------------------

static ROUTINE_IRQL: AtomicU8 = AtomicU8::new(0xFF);
static ROUTINE_RUNS: AtomicU32 = AtomicU32::new(0);

/// A work item routine: records its IRQL and sets the NDIS_EVENT its context points to.
unsafe extern "win64" fn set_event_routine(ctx: PVOID, item: NDIS_HANDLE) {
    let get: Fn0<KIRQL> = f("KeGetCurrentIrql");
    let set: Fn1<*mut NDIS_EVENT, ()> = f("NdisSetEvent");
    let free: Fn1<NDIS_HANDLE, ()> = f("NdisFreeIoWorkItem");
    // SAFETY: the kernel's functions, with the event the test passed and the work item this
    // routine may free (as documented).
    unsafe {
        ROUTINE_IRQL.store(get(), Ordering::SeqCst);
        ROUTINE_RUNS.fetch_add(1, Ordering::SeqCst);
        set(ctx.cast());
        free(item);
    }
}

fn new_event() -> Box<NDIS_EVENT> {
    // SAFETY: an all-zero KEVENT is plain memory; it is initialized by the test.
    Box::new(unsafe { std::mem::zeroed() })
}

#[test]
fn a_wait_runs_the_machine_until_a_work_item_sets_the_event() {
    let sim = start();
    let init: Fn1<*mut NDIS_EVENT, ()> = f("NdisInitializeEvent");
    let wait: Fn2<*mut NDIS_EVENT, u32, BOOLEAN> = f("NdisWaitEvent");
    let alloc: Fn1<NDIS_HANDLE, NDIS_HANDLE> = f("NdisAllocateIoWorkItem");
    let queue: Fn3<NDIS_HANDLE, NDIS_IO_WORKITEM_ROUTINE, PVOID, ()> = f("NdisQueueIoWorkItem");
    let mut ev = new_event();
    let driver = sim.driver_handle().expect("registered") as NDIS_HANDLE;
    ROUTINE_RUNS.store(0, Ordering::SeqCst);
    // SAFETY: an event and a work item used as documented.
    unsafe {
        init(&mut *ev);
        let item = alloc(driver);
        assert!(!item.is_null());
        let raise: Fn1<KIRQL, KIRQL> = f("KfRaiseIrql");
        let lower: Fn1<KIRQL, ()> = f("KeLowerIrql");
        // Queued at DISPATCH_LEVEL, run at PASSIVE_LEVEL by a worker thread.
        let old = raise(DISPATCH_LEVEL);
        queue(item, Some(set_event_routine), (&raw mut *ev).cast());
        lower(old);
        assert_eq!(wait(&mut *ev, 0), 1);
        // A notification event stays set.
        assert_eq!(wait(&mut *ev, 0), 1);
    }
    assert_eq!(ROUTINE_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(ROUTINE_IRQL.load(Ordering::SeqCst), PASSIVE_LEVEL);
    assert_eq!(sim.work_items_run(), 1);
    sim.finish().assert_clean();
}

#[test]
fn a_timed_wait_lets_simulated_time_pass_and_an_endless_one_is_a_hang() {
    let sim = start();
    let init: Fn3<*mut KEVENT, EVENT_TYPE, BOOLEAN, ()> = f("KeInitializeEvent");
    let set: Fn3<*mut KEVENT, i32, BOOLEAN, i32> = f("KeSetEvent");
    type Wait = unsafe extern "win64" fn(PVOID, u32, i8, BOOLEAN, *mut i64) -> NTSTATUS;
    let wait: Wait = f("KeWaitForSingleObject");
    let ndis_wait: Fn2<*mut NDIS_EVENT, u32, BOOLEAN> = f("NdisWaitEvent");
    let ndis_init: Fn1<*mut NDIS_EVENT, ()> = f("NdisInitializeEvent");
    let mut ev = new_event();
    let kev: *mut KEVENT = (&raw mut *ev).cast();
    // SAFETY: events used as documented.
    unsafe {
        init(kev, SynchronizationEvent, 0);
        assert_eq!(set(kev, 0, 0), 0);
        // A synchronization event releases one wait and resets itself.
        assert_eq!(
            wait(kev.cast(), 0, KernelMode, 0, ptr::null_mut()),
            STATUS_SUCCESS
        );
        let before = sim.now();
        let mut t = -10 * 10_000i64; // 10 ms, relative
        assert_eq!(wait(kev.cast(), 0, KernelMode, 0, &mut t), STATUS_TIMEOUT);
        assert_eq!(sim.now() - before, std::time::Duration::from_millis(10));
        let mut zero = 0i64;
        assert_eq!(wait(kev.cast(), 0, KernelMode, 0, &mut zero), STATUS_TIMEOUT);
    }
    sim.finish().assert_clean();

    let sim = start();
    let mut never = new_event();
    let mut uninit = new_event();
    // SAFETY: as above, misused.
    unsafe {
        ndis_init(&mut *never);
        // Nothing will set it: the thread would hang forever.
        assert_eq!(ndis_wait(&mut *never, 0), 0);
        assert_eq!(ndis_wait(&mut *uninit, 5), 0);
    }
    let r = sim.finish();
    only(&r, &[Rule::K3, Rule::K5]);
}

// ---- configuration -------------------------------------------------------------------------------

fn config_object(handle: NDIS_HANDLE) -> NDIS_CONFIGURATION_OBJECT {
    NDIS_CONFIGURATION_OBJECT {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_CONFIGURATION_OBJECT,
            NDIS_CONFIGURATION_OBJECT_REVISION_1,
            NDIS_SIZEOF_CONFIGURATION_OBJECT_REVISION_1,
        ),
        NdisHandle: handle,
        Flags: 0,
    }
}

type Read = unsafe extern "win64" fn(
    *mut NDIS_STATUS,
    *mut *mut NDIS_CONFIGURATION_PARAMETER,
    NDIS_HANDLE,
    *mut NDIS_STRING,
    u32,
);

/// Reads `name` as `ty` on `h`: the status and the parameter.
fn read(h: NDIS_HANDLE, name: &str, ty: u32) -> (NDIS_STATUS, *mut NDIS_CONFIGURATION_PARAMETER) {
    let read: Read = f("NdisReadConfiguration");
    let w = wide(name);
    let mut kw = ndis_string(&w);
    let mut st = NDIS_STATUS(0x1234);
    let mut p = 0x5A5A as *mut NDIS_CONFIGURATION_PARAMETER;
    // SAFETY: valid out parameters and keyword.
    unsafe { read(&mut st, &mut p, h, &mut kw, ty) };
    (st, p)
}

#[test]
fn configuration_reads_the_simulated_registry_of_the_driver_and_of_each_module() {
    let sim = start();
    sim.set_registry(RegistryKey::Driver, "Mode", RegValue::String("7".into()));
    sim.set_registry(RegistryKey::Driver, "Mask", RegValue::String("ff".into()));
    sim.set_registry(RegistryKey::Driver, "Label", RegValue::String("lab".into()));
    sim.set_registry(RegistryKey::Module(0), "Depth", RegValue::Dword(64));
    let open: Fn2<*mut NDIS_CONFIGURATION_OBJECT, *mut NDIS_HANDLE, NDIS_STATUS> =
        f("NdisOpenConfigurationEx");
    let close: Fn1<NDIS_HANDLE, ()> = f("NdisCloseConfiguration");
    let mut dh = ptr::null_mut();
    let mut mh = ptr::null_mut();
    let mut co = config_object(sim.driver_handle().unwrap() as NDIS_HANDLE);
    let mut mo = config_object(sim.adapter(0).module_handle().unwrap() as NDIS_HANDLE);
    // SAFETY: configuration objects initialized as documented.
    unsafe {
        assert_eq!(open(&mut co, &mut dh), NDIS_STATUS_SUCCESS);
        assert_eq!(open(&mut mo, &mut mh), NDIS_STATUS_SUCCESS);
    }
    // SAFETY: the parameters NDIS returned, valid until the handle is closed.
    unsafe {
        let (st, p) = read(dh, "MODE", NdisParameterInteger);
        assert_eq!(st, NDIS_STATUS_SUCCESS);
        assert_eq!(
            ((*p).ParameterType, (*p).ParameterData.IntegerData),
            (NdisParameterInteger, 7)
        );
        let (_, p) = read(dh, "mask", NdisParameterHexInteger);
        assert_eq!((*p).ParameterData.IntegerData, 0xff);
        let (_, p) = read(dh, "Label", NdisParameterString);
        assert_eq!((*p).ParameterType, NdisParameterString);
        let s = (*p).ParameterData.StringData;
        assert_eq!(
            String::from_utf16_lossy(std::slice::from_raw_parts(s.Buffer, usize::from(s.Length) / 2)),
            "lab"
        );
        let (_, p) = read(dh, "NdisVersion", NdisParameterInteger);
        assert_eq!((*p).ParameterData.IntegerData, 0x0006_0059);
        // Each key holds its own values.
        let (st, p) = read(dh, "Depth", NdisParameterInteger);
        assert_eq!(
            (st, p as usize),
            (NDIS_STATUS_FAILURE, 0x5A5A),
            "not found: *ParameterValue untouched"
        );
        let (st, p) = read(mh, "Depth", NdisParameterInteger);
        assert_eq!((st, (*p).ParameterData.IntegerData), (NDIS_STATUS_SUCCESS, 64));
        // A string that is not a number is not an integer.
        assert_eq!(read(dh, "Label", NdisParameterInteger).0, NDIS_STATUS_FAILURE);
        close(dh);
        close(mh);
    }
    sim.finish().assert_clean();

    let sim = start();
    let mut bad = config_object(sim.driver_handle().unwrap() as NDIS_HANDLE);
    bad.Header.Size = 8;
    let mut h = ptr::null_mut();
    let mut good = config_object(sim.driver_handle().unwrap() as NDIS_HANDLE);
    // SAFETY: misuse the simulator must catch, with valid memory.
    unsafe {
        assert_ne!(open(&mut bad, &mut h), NDIS_STATUS_SUCCESS);
        assert_eq!(open(&mut good, &mut h), NDIS_STATUS_SUCCESS);
        close(h);
        close(h);
        // Opened and never closed.
        assert_eq!(open(&mut good, &mut h), NDIS_STATUS_SUCCESS);
    }
    let r = sim.finish();
    only(&r, &[Rule::C1, Rule::C2]);
    assert_eq!(r.warnings.iter().filter(|v| v.rule == Rule::C2).count(), 1, "{r}");
}

// ---- work items, restart, sleep ------------------------------------------------------------------

#[test]
fn work_items_are_freed_once_and_never_while_queued() {
    let sim = start();
    let alloc: Fn1<NDIS_HANDLE, NDIS_HANDLE> = f("NdisAllocateIoWorkItem");
    let queue: Fn3<NDIS_HANDLE, NDIS_IO_WORKITEM_ROUTINE, PVOID, ()> = f("NdisQueueIoWorkItem");
    let free: Fn1<NDIS_HANDLE, ()> = f("NdisFreeIoWorkItem");
    let mut ev = new_event();
    let init: Fn1<*mut NDIS_EVENT, ()> = f("NdisInitializeEvent");
    let driver = sim.driver_handle().unwrap() as NDIS_HANDLE;
    // SAFETY: misuse the simulator must catch, with valid memory.
    unsafe {
        init(&mut *ev);
        assert!(alloc(0x1000 as NDIS_HANDLE).is_null());
        let a = alloc(driver);
        queue(a, Some(set_event_routine), (&raw mut *ev).cast());
        queue(a, Some(set_event_routine), (&raw mut *ev).cast());
        free(a);
        // Left allocated at unload.
        let _b = alloc(driver);
    }
    sim.run_until_idle();
    let r = sim.finish();
    only(&r, &[Rule::K4]);
    assert_eq!(r.violations.len(), 4, "{r}");
}

#[test]
fn ndis_f_restart_filter_pauses_and_restarts_the_module() {
    let sim = start();
    let restart: Fn1<NDIS_HANDLE, NDIS_STATUS> = f("NdisFRestartFilter");
    let a = sim.adapter(0);
    let before = a.restart_count();
    // SAFETY: the module's own handle.
    let st = unsafe { restart(a.module_handle().unwrap() as NDIS_HANDLE) };
    assert_eq!(st, NDIS_STATUS_SUCCESS);
    assert_eq!(a.restart_count(), before, "scheduled, not run inside the call");
    sim.run_until_idle();
    assert_eq!(a.restart_count(), before + 1);
    assert_eq!(a.state(), ndis_sim::ModState::Running);
    sim.pause(0);
    // A paused module cannot be restarted this way.
    // SAFETY: as above.
    let st = unsafe { restart(a.module_handle().unwrap() as NDIS_HANDLE) };
    assert_eq!(st, NDIS_STATUS_FAILURE);
    sim.restart(0);
    sim.finish().assert_clean();
}

#[test]
fn ndis_m_sleep_takes_simulated_time() {
    let sim = start();
    let sleep: Fn1<u32, ()> = f("NdisMSleep");
    let before = sim.now();
    // SAFETY: at PASSIVE_LEVEL.
    unsafe { sleep(2500) };
    assert_eq!(sim.now() - before, std::time::Duration::from_micros(2500));
    sim.finish().assert_clean();
}

#[test]
fn ex_allocate_pool_with_tag_memory_is_not_zeroed_and_is_freed_by_ex_free_pool() {
    let sim = start();
    let alloc: Fn3<u32, usize, u32, PVOID> = f("ExAllocatePoolWithTag");
    let free: Fn1<PVOID, ()> = f("ExFreePool");
    // SAFETY: NonPagedPoolNx memory, freed once.
    unsafe {
        let p = alloc(512, 64, u32::from_le_bytes(*b"Test"));
        assert!(!p.is_null());
        assert!(
            std::slice::from_raw_parts(p.cast::<u8>(), 64)
                .iter()
                .all(|&b| b != 0)
        );
        free(p);
        let leak = alloc(512, 8, u32::from_le_bytes(*b"Leak"));
        assert!(!leak.is_null());
        free(0x5000 as PVOID);
    }
    let r = sim.finish();
    only(&r, &[Rule::K1]);
    assert_eq!(r.violations.len(), 2, "a bad free and a leak: {r}");
}

// ---- NET_BUFFER pools and headroom ------------------------------------------------------------

#[test]
fn headroom_is_retreated_in_place_or_in_a_new_buffer_and_advanced_back() {
    let sim = start();
    let driver = sim.driver_handle().unwrap() as NDIS_HANDLE;
    let pool_alloc: Fn2<NDIS_HANDLE, *mut NET_BUFFER_POOL_PARAMETERS, NDIS_HANDLE> =
        f("NdisAllocateNetBufferPool");
    let pool_free: Fn1<NDIS_HANDLE, ()> = f("NdisFreeNetBufferPool");
    let nb_alloc: unsafe extern "win64" fn(NDIS_HANDLE, *mut MDL, u32, usize) -> *mut NET_BUFFER =
        f("NdisAllocateNetBuffer");
    let nb_free: Fn1<*mut NET_BUFFER, ()> = f("NdisFreeNetBuffer");
    let mdl_alloc: Fn3<NDIS_HANDLE, PVOID, u32, *mut MDL> = f("NdisAllocateMdl");
    let mdl_free: Fn1<*mut MDL, ()> = f("NdisFreeMdl");
    let get: unsafe extern "win64" fn(*mut NET_BUFFER, u32, PVOID, u32, u32) -> PVOID =
        f("NdisGetDataBuffer");
    let retreat: unsafe extern "win64" fn(
        *mut NET_BUFFER,
        u32,
        u32,
        NET_BUFFER_ALLOCATE_MDL_HANDLER,
    ) -> NDIS_STATUS = f("NdisRetreatNetBufferDataStart");
    let advance: unsafe extern "win64" fn(*mut NET_BUFFER, u32, BOOLEAN, NET_BUFFER_FREE_MDL_HANDLER) =
        f("NdisAdvanceNetBufferDataStart");
    let mut data: Vec<u8> = (0..32).collect();
    let mut params = NET_BUFFER_POOL_PARAMETERS {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_DEFAULT,
            NET_BUFFER_POOL_PARAMETERS_REVISION_1,
            NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1,
        ),
        PoolTag: u32::from_le_bytes(*b"NbPl"),
        DataSize: 0,
    };
    // SAFETY: NDIS objects used as documented; `data` outlives the MDL.
    unsafe {
        let pool = pool_alloc(driver, &mut params);
        assert!(!pool.is_null());
        let mdl = mdl_alloc(driver, data.as_mut_ptr().cast(), 32);
        let nb = nb_alloc(pool, mdl, 4, 10);
        assert!(!nb.is_null());
        // Contiguous: a pointer into the MDL's own buffer.
        assert_eq!(
            get(nb, 10, ptr::null_mut(), 1, 0) as usize,
            data.as_ptr() as usize + 4
        );
        assert!(
            get(nb, 11, ptr::null_mut(), 1, 0).is_null(),
            "more than DataLength"
        );
        // In place: the 4 unused bytes in front.
        assert_eq!(retreat(nb, 4, 0, None), NDIS_STATUS_SUCCESS);
        assert_eq!(((*nb).DataOffset, (*nb).DataLength.get()), (0, 14));
        // Beyond: a new buffer in front, with 16 bytes of backfill left unused.
        assert_eq!(retreat(nb, 6, 16, None), NDIS_STATUS_SUCCESS);
        assert_ne!((*nb).MdlChain, mdl);
        assert_eq!(((*nb).DataOffset, (*nb).DataLength.get()), (16, 20));
        // Not contiguous now: copied into the storage given.
        let mut storage = [0u8; 20];
        let p = get(nb, 20, storage.as_mut_ptr().cast(), 1, 0);
        assert_eq!(p, storage.as_mut_ptr().cast());
        assert_eq!(&storage[6..], &data[0..14]);
        // Back: the new buffer is freed once no data is in it.
        advance(nb, 10, 1, None);
        assert_eq!(
            ((*nb).MdlChain, (*nb).DataOffset, (*nb).DataLength.get()),
            (mdl, 4, 10)
        );
        nb_free(nb);
        mdl_free(mdl);
        pool_free(pool);
    }
    sim.finish().assert_clean();

    let sim = start();
    let driver = sim.driver_handle().unwrap() as NDIS_HANDLE;
    // SAFETY: misuse the simulator must catch, with valid memory.
    unsafe {
        let pool = pool_alloc(driver, &mut params);
        let mdl = mdl_alloc(driver, data.as_mut_ptr().cast(), 32);
        let nb = nb_alloc(pool, mdl, 0, 8);
        advance(nb, 9, 0, None);
        pool_free(pool);
        nb_free(nb);
        nb_free(nb);
        mdl_free(mdl);
        pool_free(pool);
    }
    let r = sim.finish();
    only(&r, &[Rule::N6, Rule::N7]);
    assert_eq!(r.violations.len(), 3, "{r}");
}

#[test]
fn an_nbl_without_net_buffers_takes_one_from_a_net_buffer_pool() {
    let sim = start();
    let driver = sim.driver_handle().unwrap() as NDIS_HANDLE;
    let nbl_pool: Fn2<NDIS_HANDLE, *mut NET_BUFFER_LIST_POOL_PARAMETERS, NDIS_HANDLE> =
        f("NdisAllocateNetBufferListPool");
    let nbl_pool_free: Fn1<NDIS_HANDLE, ()> = f("NdisFreeNetBufferListPool");
    let nbl_alloc: Fn3<NDIS_HANDLE, u16, u16, *mut NET_BUFFER_LIST> = f("NdisAllocateNetBufferList");
    let nbl_free: Fn1<*mut NET_BUFFER_LIST, ()> = f("NdisFreeNetBufferList");
    let mut p = NET_BUFFER_LIST_POOL_PARAMETERS {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_DEFAULT,
            NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
            NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
        ),
        ProtocolId: 0,
        fAllocateNetBuffer: 0,
        ContextSize: 0,
        PoolTag: u32::from_le_bytes(*b"NblP"),
        DataSize: 0,
    };
    // SAFETY: as documented.
    unsafe {
        let pool = nbl_pool(driver, &mut p);
        let nbl = nbl_alloc(pool, 16, 0);
        assert!(!nbl.is_null());
        assert!((*nbl).FirstNetBuffer.is_null());
        assert_eq!((*nbl).NdisPoolHandle, pool);
        assert!(
            nbl_alloc(pool, 8, 0).is_null(),
            "ContextSize not a multiple of 16"
        );
        nbl_free(nbl);
        nbl_pool_free(pool);
    }
    let r = sim.finish();
    only(&r, &[Rule::N2]);
}
