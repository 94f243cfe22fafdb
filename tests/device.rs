//! The control device and its ABI: registration (name, link, SDDL, buffering), opens, and
//! every IOCTL with its length checks and full-code comparison (rules D1, D7-D9). Clients
//! speak the ABI byte for byte, as a user-mode tool does.

mod common;

use common::*;
use ndis_sim::{AdapterConfig, SimConfig};
use ndis_sys::*;
use rxinject_abi::{self as abi, Pod};

fn two_adapters() -> SimConfig {
    let mut jumbo = AdapterConfig::ethernet(1);
    jumbo.mtu = 9000;
    SimConfig {
        adapters: vec![AdapterConfig::ethernet(0), jumbo],
        ..SimConfig::default()
    }
}

fn utf16(units: &[u16], len: u16) -> String {
    String::from_utf16_lossy(&units[..usize::from(len)])
}

#[test]
fn the_device_is_registered_for_administrators_and_system_with_direct_io() {
    let mut sim = load(SimConfig::default());
    let devices = sim.devices();
    assert_eq!(devices.len(), 1);
    let d = &devices[0];
    assert_eq!(
        (d.name.as_str(), d.symbolic_name.as_str()),
        (abi::DEVICE_NAME, abi::SYMBOLIC_NAME)
    );
    assert_eq!(d.sddl, "D:P(A;;GA;;;SY)(A;;GA;;;BA)");
    // Direct I/O for reads and writes: no user-sized copy into non-paged pool.
    assert_eq!(d.flags & (DO_BUFFERED_IO | DO_DIRECT_IO), DO_DIRECT_IO);
    assert_eq!(d.flags & DO_DEVICE_INITIALIZING, 0, "ready for opens");
    sim.unload();
    assert!(sim.devices().is_empty(), "unload deletes the device");
    sim.finish().assert_clean();
}

#[test]
fn opens_of_the_bare_device_succeed_and_named_opens_are_refused() {
    let sim = load(SimConfig::default());
    for path in [abi::USER_PATH, "\\Device\\RxInject", "\\DosDevices\\rxinject"] {
        let h = sim.open(path).unwrap_or_else(|s| panic!("open {path}: {s:?}"));
        h.close();
    }
    for path in ["\\\\.\\RxInject\\sim0", "\\Device\\RxInject\\x\\y"] {
        assert_eq!(sim.open(path).err(), Some(STATUS_OBJECT_NAME_INVALID), "{path}");
    }
    assert_eq!(
        sim.open("\\\\.\\RxInjectX").err(),
        Some(STATUS_OBJECT_NAME_NOT_FOUND)
    );
    sim.finish().assert_clean();
}

#[test]
fn get_version_reports_the_abi_and_limits() {
    let sim = load(SimConfig::default());
    let h = sim.open(abi::USER_PATH).unwrap();
    let v = version(&h);
    assert_eq!(v.abi_version, abi::ABI_VERSION);
    let (major, minor, patch) = abi::DRIVER_VERSION;
    assert_eq!(
        v.driver_version,
        u32::from(major) << 24 | u32::from(minor) << 16 | u32::from(patch)
    );
    assert_eq!(
        (v.max_write_bytes, v.max_frames_per_write),
        (abi::MAX_WRITE_BYTES, abi::MAX_FRAMES_PER_WRITE)
    );
    // A larger output buffer gets exactly the record.
    let r = ioctl(&h, abi::IOCTL_RXINJECT_GET_VERSION, &[], 100);
    assert_eq!(
        (r.status, r.information),
        (STATUS_SUCCESS, std::mem::size_of::<abi::VersionInfo>())
    );
    // A smaller one gets nothing.
    let r = ioctl(&h, abi::IOCTL_RXINJECT_GET_VERSION, &[], 15);
    assert_eq!((r.status, r.information), (STATUS_BUFFER_TOO_SMALL, 0));
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn list_adapters_describes_each_attached_adapter_and_reports_overflow() {
    let sim = load(two_adapters());
    let h = sim.open(abi::USER_PATH).unwrap();
    let (status, hdr, entries) = list_adapters(&h, 4);
    assert_eq!(status, STATUS_SUCCESS);
    assert_eq!(
        (hdr.total, hdr.returned, hdr.entry_size),
        (2, 2, std::mem::size_of::<abi::AdapterEntry>() as u32)
    );
    for i in 0..2 {
        let adapter = sim.adapter(i);
        let cfg = adapter.config();
        let e = entries
            .iter()
            .find(|e| e.if_index == cfg.if_index)
            .expect("listed");
        assert_eq!((e.mac, e.mac_len), (cfg.mac, 6));
        assert_eq!((e.mtu, e.max_frame_size), (cfg.mtu, cfg.mtu + 14));
        assert_eq!(e.state, abi::ADAPTER_STATE_RUNNING);
        assert_eq!(utf16(&e.friendly_name, e.friendly_name_len), cfg.friendly_name);
        let module = utf16(&e.module_name, e.module_name_len);
        assert!(
            module.starts_with('{') && module.contains(abi::FILTER_UNIQUE_NAME),
            "{module}"
        );
    }
    // Room for one: the first entry and STATUS_BUFFER_OVERFLOW (data returned, more exists).
    let (status, hdr, entries) = list_adapters(&h, 1);
    assert_eq!(
        (status, hdr.total, hdr.returned, entries.len()),
        (STATUS_BUFFER_OVERFLOW, 2, 1, 1)
    );
    // Room for the header only.
    let (status, hdr, entries) = list_adapters(&h, 0);
    assert_eq!(
        (status, hdr.total, hdr.returned, entries.len()),
        (STATUS_BUFFER_OVERFLOW, 2, 0, 0)
    );
    // Less than a header.
    let r = ioctl(&h, abi::IOCTL_RXINJECT_LIST_ADAPTERS, &[], 8);
    assert_eq!((r.status, r.information), (STATUS_BUFFER_TOO_SMALL, 0));
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn bind_checks_the_abi_version_and_the_adapter() {
    let sim = load(two_adapters());
    let h = sim.open(abi::USER_PATH).unwrap();
    let req = |abi_version: u32, if_index: u32| {
        abi::BindRequest {
            abi_version,
            if_index,
        }
        .to_vec()
    };
    let if1 = sim.adapter(1).config().if_index;
    let bind_raw = |input: &[u8]| ioctl(&h, abi::IOCTL_RXINJECT_BIND, input, 0).status;
    assert_eq!(
        bind_raw(&req(abi::abi_version(2, 0), if1)),
        STATUS_REVISION_MISMATCH
    );
    assert_eq!(
        bind_raw(&req(abi::abi_version(0, 9), if1)),
        STATUS_REVISION_MISMATCH
    );
    assert_eq!(
        bind_raw(&req(abi::ABI_VERSION + 1, if1)),
        STATUS_REVISION_MISMATCH,
        "a newer minor version"
    );
    assert_eq!(bind_raw(&req(abi::ABI_VERSION, 999)), STATUS_NOT_FOUND);
    assert_eq!(
        bind_raw(&req(abi::ABI_VERSION, if1)[..7]),
        STATUS_INVALID_PARAMETER,
        "short input"
    );
    assert_eq!(bind_raw(&[]), STATUS_INVALID_PARAMETER);
    assert_eq!(
        counters(&h).flags & abi::COUNTERS_BOUND,
        0,
        "no failed bind binds"
    );
    assert_eq!(bind_raw(&req(abi::ABI_VERSION, if1)), STATUS_SUCCESS);
    let c = counters(&h);
    assert_eq!(
        (c.flags, c.if_index),
        (abi::COUNTERS_BOUND | abi::COUNTERS_ADAPTER_PRESENT, if1)
    );
    // Rebinding moves the handle.
    assert_eq!(bind(&h, sim.adapter(0).config().if_index), STATUS_SUCCESS);
    assert_eq!(counters(&h).if_index, sim.adapter(0).config().if_index);
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn ioctl_codes_are_compared_in_full() {
    let sim = load(SimConfig::default());
    let h = sim.open(abi::USER_PATH).unwrap();
    let out = std::mem::size_of::<abi::Counters>();
    for code in [
        abi::IOCTL_RXINJECT_GET_VERSION,
        abi::IOCTL_RXINJECT_GET_COUNTERS,
        abi::IOCTL_RXINJECT_LIST_ADAPTERS,
    ] {
        let with_method = |m: u32| (code & !3) | m;
        for variant in [
            with_method(METHOD_NEITHER),
            with_method(METHOD_IN_DIRECT),
            with_method(METHOD_OUT_DIRECT),
            code ^ (3 << 14), // other access bits
            code ^ (1 << 16), // other device type
            code + (1 << 2),  // next function
            code & 0xFFFF,    // device type 0
        ] {
            let r = ioctl(&h, variant, &[], out);
            assert_eq!(
                (r.status, r.information),
                (STATUS_INVALID_DEVICE_REQUEST, 0),
                "{variant:#010x}"
            );
        }
    }
    // A read on a handle that does not capture.
    let r = h.read(1 << 17);
    assert_eq!((r.status, r.information), (STATUS_INVALID_DEVICE_STATE, 0));
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn every_output_record_is_length_checked() {
    let sim = load(SimConfig::default());
    let h = open_bound(&sim, 0);
    for (code, size) in [
        (
            abi::IOCTL_RXINJECT_GET_VERSION,
            std::mem::size_of::<abi::VersionInfo>(),
        ),
        (
            abi::IOCTL_RXINJECT_GET_COUNTERS,
            std::mem::size_of::<abi::Counters>(),
        ),
    ] {
        for len in [0, 1, size - 1] {
            let r = ioctl(&h, code, &[], len);
            assert_eq!(
                (r.status, r.information),
                (STATUS_BUFFER_TOO_SMALL, 0),
                "{code:#x} with {len}"
            );
        }
        let r = ioctl(&h, code, &[0xEE; 64], size);
        assert_eq!(
            (r.status, r.information),
            (STATUS_SUCCESS, size),
            "input is ignored where none is expected"
        );
    }
    // Inputs shorter than their record.
    let r = ioctl(&h, abi::IOCTL_RXINJECT_SET_DIRECTION, &[2, 0, 0], 0);
    assert_eq!(r.status, STATUS_INVALID_PARAMETER);
    // A counters record reads back as what the handle did.
    let c = counters(&h);
    assert_eq!(abi::Counters::read_from(&c.to_vec()), Some(c));
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn a_handle_must_be_bound_before_it_writes() {
    let sim = load(SimConfig::default());
    let h = sim.open(abi::USER_PATH).unwrap();
    let frames = frames_for(&sim, 0).take(1);
    let r = h.write(&batch(TX, &frames));
    assert_eq!((r.status, r.information), (STATUS_INVALID_DEVICE_STATE, 0));
    let c = counters(&h);
    assert_eq!((c.flags, c.handle.writes, c.handle.writes_failed), (0, 1, 1));
    drop(h);
    sim.finish().assert_clean();
}

#[test]
fn many_handles_open_and_close_without_leaks() {
    let sim = load(SimConfig::default());
    let live = sim.stats().pool_live;
    let handles: Vec<_> = (0..50).map(|_| open_bound(&sim, 0)).collect();
    assert_eq!(sim.stats().pool_live, live + 50, "one context per handle");
    drop(handles);
    assert_eq!(sim.stats().pool_live, live);
    // Handles left open when the driver goes away are closed first (as their processes exit).
    let _left_open = open_bound(&sim, 0);
    std::mem::forget(_left_open);
    sim.finish().assert_clean();
}
