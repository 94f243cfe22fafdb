//! `NdisFRegisterFilterDriver` as its reference page and NDIS_FILTER_DRIVER_CHARACTERISTICS
//! describe it: every documented NDIS 6 version up to the simulated Windows's, revisions 1 to
//! 3 with their sizes, the statuses of a refusal, and the optional handlers NDIS calls
//! (`FilterSetOptions` inside the registration, `FilterSetModuleOptions` before each
//! `FilterRestart`).

#![allow(clippy::undocumented_unsafe_blocks, clippy::multiple_unsafe_ops_per_block)]

use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, Ordering};

use ndis_sim::{AdapterConfig, Sim, SimConfig};
use ndis_sys::*;

/// What the next DriverEntry registers, and what the filter's handlers saw.
struct Case {
    header: NDIS_OBJECT_HEADER,
    major: u8,
    minor: u8,
    /// The structure is this long (a driver of an older revision passes a shorter one).
    len: usize,
    set_options: Option<NDIS_STATUS>,
    set_module_options: Option<NDIS_STATUS>,
    no_attach_handler: bool,
    no_names: bool,
    null_characteristics: bool,
    /// What happened, in order.
    calls: Vec<String>,
}

static CASE: Mutex<Option<Case>> = Mutex::new(None);
/// One case at a time, from before its simulation starts to after its record is read (the
/// simulation slot is released when `finish` returns).
static ONE_CASE: Mutex<()> = Mutex::new(());
static DRIVER: AtomicPtr<std::ffi::c_void> = AtomicPtr::new(ptr::null_mut());
/// The out parameter of NdisFRegisterFilterDriver (a static: FilterSetOptions looks at it).
static OUT_HANDLE: AtomicPtr<std::ffi::c_void> = AtomicPtr::new(ptr::null_mut());
static CONTEXT: AtomicPtr<std::ffi::c_void> = AtomicPtr::new(ptr::null_mut());

fn note(what: String) {
    if let Some(c) = CASE.lock().unwrap().as_mut() {
        c.calls.push(what);
    }
}

fn case<R>(f: impl FnOnce(&Case) -> R) -> R {
    f(CASE.lock().unwrap().as_ref().expect("a case"))
}

static NAME: [u16; 38] = {
    let s = b"{9a3c1c14-3a52-4f39-9d5d-6c2b7a0f1e44}";
    let mut u = [0u16; 38];
    let mut i = 0;
    while i < 38 {
        u[i] = s[i] as u16;
        i += 1;
    }
    u
};

unsafe extern "win64" fn set_options(driver: NDIS_HANDLE, context: NDIS_HANDLE) -> NDIS_STATUS {
    note(format!(
        "FilterSetOptions(driver handle known: {}, already in the out parameter: {}, context: {})",
        !driver.is_null() && DRIVER.load(Ordering::Acquire).is_null(),
        OUT_HANDLE.load(Ordering::Acquire) == driver,
        context == CONTEXT.load(Ordering::Acquire)
    ));
    case(|c| c.set_options.unwrap_or(NDIS_STATUS_SUCCESS))
}

unsafe extern "win64" fn set_module_options(ctx: NDIS_HANDLE) -> NDIS_STATUS {
    note(format!(
        "FilterSetModuleOptions({})",
        ctx as usize == MODULE_CONTEXT
    ));
    case(|c| c.set_module_options.unwrap_or(NDIS_STATUS_SUCCESS))
}

const MODULE_CONTEXT: usize = 0x5a5a_0000;

unsafe extern "win64" fn attach(
    h: NDIS_HANDLE,
    _c: NDIS_HANDLE,
    _p: *mut NDIS_FILTER_ATTACH_PARAMETERS,
) -> NDIS_STATUS {
    note("FilterAttach".into());
    let mut attrs = NDIS_FILTER_ATTRIBUTES {
        Header: NDIS_OBJECT_HEADER::new(
            NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES,
            NDIS_FILTER_ATTRIBUTES_REVISION_1,
            NDIS_SIZEOF_FILTER_ATTRIBUTES_REVISION_1,
        ),
        Flags: 0,
    };
    unsafe { NdisFSetAttributes(h, MODULE_CONTEXT as NDIS_HANDLE, &mut attrs) }
}

unsafe extern "win64" fn detach(_ctx: NDIS_HANDLE) {
    note("FilterDetach".into());
}

unsafe extern "win64" fn restart(_ctx: NDIS_HANDLE, _p: *mut NDIS_FILTER_RESTART_PARAMETERS) -> NDIS_STATUS {
    note("FilterRestart".into());
    NDIS_STATUS_SUCCESS
}

unsafe extern "win64" fn pause(_ctx: NDIS_HANDLE, _p: *mut NDIS_FILTER_PAUSE_PARAMETERS) -> NDIS_STATUS {
    note("FilterPause".into());
    NDIS_STATUS_SUCCESS
}

unsafe extern "win64" fn unload(_d: *mut DRIVER_OBJECT) {
    let h = DRIVER.swap(ptr::null_mut(), Ordering::AcqRel);
    if !h.is_null() {
        unsafe { NdisFDeregisterFilterDriver(h) };
    }
}

unsafe extern "win64" fn driver_entry(d: *mut DRIVER_OBJECT, _path: *mut UNICODE_STRING) -> NTSTATUS {
    let name = ndis_sys::wstr::unicode_string(&NAME);
    let (header, major, minor, len, with_set_options, no_attach, no_names, null_chars) = case(|c| {
        (
            c.header,
            c.major,
            c.minor,
            c.len,
            c.set_options.is_some(),
            c.no_attach_handler,
            c.no_names,
            c.null_characteristics,
        )
    });
    let chars = NDIS_FILTER_DRIVER_CHARACTERISTICS {
        Header: header,
        MajorNdisVersion: major,
        MinorNdisVersion: minor,
        MajorDriverVersion: 1,
        MinorDriverVersion: 0,
        Flags: 0,
        FriendlyName: name,
        UniqueName: if no_names {
            unsafe { std::mem::zeroed() }
        } else {
            name
        },
        ServiceName: name,
        SetOptionsHandler: if with_set_options { Some(set_options) } else { None },
        SetFilterModuleOptionsHandler: Some(set_module_options),
        AttachHandler: if no_attach { None } else { Some(attach) },
        DetachHandler: Some(detach),
        RestartHandler: Some(restart),
        PauseHandler: Some(pause),
        SendNetBufferListsHandler: None,
        SendNetBufferListsCompleteHandler: None,
        CancelSendNetBufferListsHandler: None,
        ReceiveNetBufferListsHandler: None,
        ReturnNetBufferListsHandler: None,
        OidRequestHandler: None,
        OidRequestCompleteHandler: None,
        CancelOidRequestHandler: None,
        DevicePnPEventNotifyHandler: None,
        NetPnPEventHandler: None,
        StatusHandler: None,
        DirectOidRequestHandler: None,
        DirectOidRequestCompleteHandler: None,
        CancelDirectOidRequestHandler: None,
    };
    // The structure as long as the driver's revision (a revision-3 driver's is longer than
    // ndis-sys's revision 2: the two synchronous OID handlers follow, NULL here).
    let mut bytes = vec![0u8; len.max(std::mem::size_of_val(&chars))];
    let n = len.min(std::mem::size_of_val(&chars));
    unsafe { ptr::copy_nonoverlapping((&raw const chars).cast::<u8>(), bytes.as_mut_ptr(), n) };
    bytes.truncate(len);
    let p = if null_chars {
        ptr::null()
    } else {
        bytes.as_ptr().cast::<NDIS_FILTER_DRIVER_CHARACTERISTICS>()
    };
    CONTEXT.store(d.cast(), Ordering::Release);
    unsafe { (*d).DriverUnload = Some(unload) };
    OUT_HANDLE.store(ptr::null_mut(), Ordering::Release);
    let st = unsafe { NdisFRegisterFilterDriver(d, d.cast(), p, OUT_HANDLE.as_ptr()) };
    note(format!("registered: {st:?}"));
    DRIVER.store(OUT_HANDLE.load(Ordering::Acquire), Ordering::Release);
    NTSTATUS(st.0)
}

/// A characteristics header as the documentation says to fill it for NDIS 6.`minor`.
fn documented(minor: u8) -> (NDIS_OBJECT_HEADER, usize) {
    let (revision, size) = match minor {
        0 => (
            NDIS_FILTER_CHARACTERISTICS_REVISION_1,
            NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_1,
        ),
        1..=79 => (
            NDIS_FILTER_CHARACTERISTICS_REVISION_2,
            NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2,
        ),
        _ => (3, NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2 + 16),
    };
    (
        NDIS_OBJECT_HEADER::new(NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS, revision, size),
        usize::from(size),
    )
}

fn base(minor: u8) -> Case {
    let (header, len) = documented(minor);
    Case {
        header,
        major: 6,
        minor,
        len,
        set_options: None,
        set_module_options: None,
        no_attach_handler: false,
        no_names: false,
        null_characteristics: false,
        calls: Vec::new(),
    }
}

/// Registers `c` on a machine with `cfg`; returns the status and what the filter saw.
fn register(c: Case, cfg: SimConfig) -> (NTSTATUS, Vec<String>, Option<(u8, u8)>) {
    let _one = ONE_CASE.lock().unwrap_or_else(|e| e.into_inner());
    let mut sim = Sim::new(cfg);
    DRIVER.store(ptr::null_mut(), Ordering::Release);
    *CASE.lock().unwrap() = Some(c);
    let st = sim.load(driver_entry);
    let version = sim.ndis_version();
    sim.finish().assert_clean();
    let calls = CASE.lock().unwrap().take().unwrap().calls;
    (st, calls, version)
}

fn no_adapters() -> SimConfig {
    SimConfig {
        adapters: Vec::new(),
        ..SimConfig::default()
    }
}

#[test]
fn every_documented_ndis_6_version_registers_with_its_documented_revision() {
    for minor in [
        0, 1, 20, 30, 40, 50, 51, 60, 70, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89,
    ] {
        let (st, _, version) = register(base(minor), no_adapters());
        assert_eq!(st, STATUS_SUCCESS, "NDIS 6.{minor}");
        assert_eq!(version, Some((6, minor)));
    }
}

#[test]
fn a_later_filter_may_keep_revision_2_as_microsofts_sample_does() {
    // The sample fills Size with sizeof (revision 3's, with NDIS683) and Revision 2.
    let mut c = base(83);
    c.header.Revision = NDIS_FILTER_CHARACTERISTICS_REVISION_2;
    assert_eq!(register(c, no_adapters()).0, STATUS_SUCCESS);
}

#[test]
fn versions_windows_does_not_have_are_bad_version() {
    for (major, minor) in [(6, 55), (6, 2), (6, 90), (5, 1), (7, 0)] {
        let mut c = base(50);
        c.major = major;
        c.minor = minor;
        assert_eq!(
            register(c, no_adapters()).0.0,
            NDIS_STATUS_BAD_VERSION.0,
            "NDIS {major}.{minor}"
        );
    }
    // A Windows 8 (NDIS 6.30) machine refuses a 6.50 filter and takes a 6.30 one.
    let win8 = || SimConfig {
        ndis_version: (6, 30),
        ..no_adapters()
    };
    assert_eq!(register(base(50), win8()).0.0, NDIS_STATUS_BAD_VERSION.0);
    assert_eq!(register(base(30), win8()).0, STATUS_SUCCESS);
}

#[test]
fn invalid_characteristics_are_bad_characteristics() {
    let bad = |f: &dyn Fn(&mut Case)| {
        let mut c = base(50);
        f(&mut c);
        register(c, no_adapters()).0.0
    };
    let want = NDIS_STATUS_BAD_CHARACTERISTICS.0;
    assert_eq!(
        bad(&|c| c.header.Type = NDIS_OBJECT_TYPE_DEFAULT),
        want,
        "header type"
    );
    assert_eq!(bad(&|c| c.header.Revision = 4), want, "unknown revision");
    assert_eq!(bad(&|c| c.header.Revision = 0), want, "revision 0");
    assert_eq!(
        bad(&|c| {
            c.header.Size -= 8;
            c.len -= 8;
        }),
        want,
        "shorter than its revision"
    );
    // "Implementing an NDIS 6.1 Driver": revision 2 from NDIS 6.1 on.
    assert_eq!(
        bad(&|c| {
            c.header = documented(0).0;
            c.len = documented(0).1;
        }),
        want,
        "a 6.50 filter with revision 1"
    );
    assert_eq!(bad(&|c| c.no_attach_handler = true), want, "no FilterAttach");
    assert_eq!(bad(&|c| c.no_names = true), want, "no unique name");
    assert_eq!(
        bad(&|c| c.null_characteristics = true),
        NDIS_STATUS_INVALID_PARAMETER.0
    );
}

#[test]
fn a_revision_1_structure_is_read_only_as_far_as_it_goes() {
    // 200 bytes and nothing after them: the direct OID handlers of revision 2 are not read.
    let (st, calls, _) = register(base(0), SimConfig::default());
    assert_eq!(st, STATUS_SUCCESS);
    assert!(calls.iter().any(|c| c == "FilterRestart"), "{calls:?}");
}

#[test]
fn filter_set_options_runs_inside_the_registration_and_its_failure_fails_it() {
    let mut c = base(50);
    c.set_options = Some(NDIS_STATUS_SUCCESS);
    let (st, calls, _) = register(c, SimConfig::default());
    assert_eq!(st, STATUS_SUCCESS);
    // With the driver's handle (before NdisFRegisterFilterDriver has returned it, but
    // already written to its out parameter, as Microsoft's LWF sample asserts) and context,
    // and before any module attaches.
    assert_eq!(
        calls[0],
        "FilterSetOptions(driver handle known: true, already in the out parameter: true, context: true)"
    );
    assert_eq!(calls[1], "FilterAttach");

    let mut c = base(50);
    c.set_options = Some(NDIS_STATUS_RESOURCES);
    let (st, calls, version) = register(c, SimConfig::default());
    assert_eq!(st.0, NDIS_STATUS_RESOURCES.0);
    assert!(!calls.iter().any(|c| c == "FilterAttach"), "{calls:?}");
    assert_eq!(version, None, "not registered");
}

#[test]
fn filter_set_module_options_runs_before_every_restart_and_its_failure_keeps_the_module_paused() {
    let cfg = || SimConfig {
        adapters: vec![AdapterConfig::ethernet(0)],
        ..SimConfig::default()
    };
    let _one = ONE_CASE.lock().unwrap_or_else(|e| e.into_inner());
    let mut sim = Sim::new(cfg());
    DRIVER.store(ptr::null_mut(), Ordering::Release);
    *CASE.lock().unwrap() = Some(base(50));
    assert_eq!(sim.load(driver_entry), STATUS_SUCCESS);
    sim.pause(0);
    assert_eq!(sim.restart(0), NDIS_STATUS_SUCCESS);
    // Now it fails: FilterRestart is not called, and the module stays Paused.
    CASE.lock().unwrap().as_mut().unwrap().set_module_options = Some(NDIS_STATUS_FAILURE);
    sim.pause(0);
    assert_eq!(sim.restart(0), NDIS_STATUS_FAILURE);
    assert_eq!(sim.adapter(0).state(), ndis_sim::ModState::Paused);
    CASE.lock().unwrap().as_mut().unwrap().set_module_options = None;
    assert_eq!(sim.restart(0), NDIS_STATUS_SUCCESS);
    sim.finish().assert_clean();
    let calls = CASE.lock().unwrap().take().unwrap().calls;
    let lifecycle: Vec<&str> = calls
        .iter()
        .map(String::as_str)
        .filter(|c| c.starts_with("Filter"))
        .collect();
    assert_eq!(
        lifecycle,
        [
            "FilterAttach",
            "FilterSetModuleOptions(true)",
            "FilterRestart",
            "FilterPause",
            "FilterSetModuleOptions(true)",
            "FilterRestart",
            "FilterPause",
            "FilterSetModuleOptions(true)",
            "FilterSetModuleOptions(true)",
            "FilterRestart",
            "FilterPause",
            "FilterDetach",
        ]
    );
}
