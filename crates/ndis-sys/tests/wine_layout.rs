//! The WDM structures we declare, cross-checked against Wine's ABI-compatible headers
//! (`libwine-dev`: `/usr/include/wine/wine/windows/ddk/wdm.h`). The test writes a small C
//! program that prints `sizeof`/`offsetof` as gcc computes them from Wine's headers, runs it,
//! and compares every figure with Rust's `size_of`/`offset_of!` of our declarations.
//!
//! It needs gcc and libwine-dev (`.ci/run` installs both); without them it fails and says
//! what to install rather than passing vacuously.

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::Path;
use std::process::Command;

use ndis_sys::*;

const WINE_INCLUDE: &str = "/usr/include/wine/wine/windows";

/// (C type, member or "" for sizeof, Rust figure)
fn ours() -> Vec<(&'static str, &'static str, usize)> {
    let mut v = Vec::new();
    macro_rules! add {
        ($ty:ident: $($f:ident),*) => {
            v.push((stringify!($ty), "", size_of::<$ty>()));
            $( v.push((stringify!($ty), stringify!($f), offset_of!($ty, $f))); )*
        };
    }
    add!(UNICODE_STRING: Length, MaximumLength, Buffer);
    add!(LIST_ENTRY: Flink, Blink);
    add!(MDL: Next, Size, MdlFlags, Process, MappedSystemVa, StartVa, ByteCount, ByteOffset);
    add!(DRIVER_OBJECT: Type, Size, DeviceObject, Flags, DriverStart, DriverSize, DriverSection,
        DriverExtension, DriverName, HardwareDatabase, FastIoDispatch, DriverInit, DriverStartIo,
        DriverUnload, MajorFunction);
    add!(NDIS_SPIN_LOCK: SpinLock, OldIrql);
    add!(IRP: MdlAddress, Flags, ThreadListEntry, IoStatus, RequestorMode, PendingReturned,
        StackCount, CurrentLocation, Cancel, CancelIrql, UserIosb, UserEvent, Overlay,
        CancelRoutine, UserBuffer);
    add!(IO_STATUS_BLOCK: Information);
    add!(IO_STACK_LOCATION: MajorFunction, MinorFunction, Flags, Control, Parameters,
        DeviceObject, FileObject, CompletionRoutine, Context);
    // Fields whose C path differs from ours (unions, nested members).
    let p = offset_of!(IO_STACK_LOCATION, Parameters);
    let tail = offset_of!(IRP, Tail);
    v.extend([
        ("IRP", "AssociatedIrp.SystemBuffer", offset_of!(IRP, SystemBuffer)),
        (
            "IRP",
            "Tail.Overlay.DriverContext",
            tail + offset_of!(IRP_TAIL_OVERLAY, DriverContext),
        ),
        (
            "IRP",
            "Tail.Overlay.ListEntry",
            tail + offset_of!(IRP_TAIL_OVERLAY, ListEntry),
        ),
        (
            "IRP",
            "Tail.Overlay.CurrentStackLocation",
            tail + offset_of!(IRP_TAIL_OVERLAY, CurrentStackLocation),
        ),
        (
            "IRP",
            "Tail.Overlay.OriginalFileObject",
            tail + offset_of!(IRP_TAIL_OVERLAY, OriginalFileObject),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.Write.Length",
            p + offset_of!(IO_READ_WRITE_PARAMETERS, Length),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.Write.Key",
            p + offset_of!(IO_READ_WRITE_PARAMETERS, Key),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.Write.ByteOffset",
            p + offset_of!(IO_READ_WRITE_PARAMETERS, ByteOffset),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.Read.Length",
            p + offset_of!(IO_READ_WRITE_PARAMETERS, Length),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.DeviceIoControl.OutputBufferLength",
            p + offset_of!(IO_DEVICE_CONTROL_PARAMETERS, OutputBufferLength),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.DeviceIoControl.InputBufferLength",
            p + offset_of!(IO_DEVICE_CONTROL_PARAMETERS, InputBufferLength),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.DeviceIoControl.IoControlCode",
            p + offset_of!(IO_DEVICE_CONTROL_PARAMETERS, IoControlCode),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.DeviceIoControl.Type3InputBuffer",
            p + offset_of!(IO_DEVICE_CONTROL_PARAMETERS, Type3InputBuffer),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.Create.Options",
            p + offset_of!(IO_CREATE_PARAMETERS, Options),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.Create.ShareAccess",
            p + offset_of!(IO_CREATE_PARAMETERS, ShareAccess),
        ),
        (
            "IO_STACK_LOCATION",
            "Parameters.Create.EaLength",
            p + offset_of!(IO_CREATE_PARAMETERS, EaLength),
        ),
    ]);
    // Wine's FILE_OBJECT and DEVICE_OBJECT are older, shorter versions of the WDK's: compare
    // the offsets of the fields we use, not the sizes (tests/windows_sys.rs checks those).
    macro_rules! offsets {
        ($ty:ident: $($f:ident),*) => { $( v.push((stringify!($ty), stringify!($f), offset_of!($ty, $f))); )* };
    }
    offsets!(FILE_OBJECT: DeviceObject, Vpb, FsContext, FsContext2, FinalStatus, RelatedFileObject, Flags, FileName, CurrentByteOffset);
    offsets!(DEVICE_OBJECT: DriverObject, NextDevice, AttachedDevice, CurrentIrp, Flags, Characteristics, DeviceExtension, DeviceType, StackSize);
    v
}

fn c_program(items: &[(&str, &str, usize)]) -> String {
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <ntstatus.h>\n#define WIN32_NO_STATUS\n\
         #include <windef.h>\n#include <winternl.h>\n#include <ddk/wdm.h>\n#include <ddk/ndis.h>\n\
         int main(void) {\n",
    );
    for (ty, field, _) in items {
        if field.is_empty() {
            c.push_str(&format!("  printf(\"{ty} %zu\\n\", sizeof({ty}));\n"));
        } else {
            c.push_str(&format!(
                "  printf(\"{ty}.{field} %zu\\n\", offsetof({ty}, {field}));\n"
            ));
        }
    }
    c.push_str("  return 0;\n}\n");
    c
}

#[test]
fn wdm_structures_match_wine_headers() {
    assert!(
        Path::new(WINE_INCLUDE).join("ddk/wdm.h").exists(),
        "Wine's headers are missing: install the Debian package libwine-dev (`.ci/run` does)"
    );
    let items = ours();
    let dir = std::env::temp_dir().join(format!("ndis-sys-wine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(&src, c_program(&items)).unwrap();
    let out = Command::new("gcc")
        .args(["-w", "-I", WINE_INCLUDE, "-I", &format!("{WINE_INCLUDE}/ddk")])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("gcc is needed to compile the probe");
    assert!(
        out.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("run the probe");
    assert!(run.status.success());
    let theirs: BTreeMap<String, usize> = String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();
    let mut mismatches = Vec::new();
    for (ty, field, value) in &items {
        let key = if field.is_empty() {
            ty.to_string()
        } else {
            format!("{ty}.{field}")
        };
        let wine = theirs[&key];
        if wine != *value {
            mismatches.push(format!("{key}: ours {value}, Wine {wine}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        mismatches.is_empty(),
        "layouts differ from Wine's wdm.h:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(theirs.len(), items.len(), "every figure was compared");
}
