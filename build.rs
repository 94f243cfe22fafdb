//! Build script of the rxinject driver.
//!
//! Two builds exist (see README.md, "Two ways to build the .sys"):
//!
//! - **Linux cross build** (default features, `cargo xtask dist`): for the
//!   `x86_64-pc-windows-msvc` target this script adds the link arguments of a kernel driver
//!   to the cdylib; `rust-lld` is chosen by `cargo xtask dist`. Imports are `raw-dylib`,
//!   so no WDK import library is needed.
//! - **eWDK build on Windows** (`--features wdk`, `cargo make`): `wdk-build` configures the
//!   link against the installed WDK, and bindgen generates the WDK's own `ndis.h` layouts
//!   so that `src/wdk_layout.rs` can check our hand-written bindings against them.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");

    #[cfg(feature = "wdk")]
    {
        if let Err(e) = wdk::configure() {
            panic!("eWDK build configuration failed: {e}");
        }
        return;
    }

    #[cfg(not(feature = "wdk"))]
    cross::configure();
}

#[cfg(not(feature = "wdk"))]
mod cross {
    /// Link arguments for a kernel-mode image (checked on the produced binary by
    /// `xtask/tests/dist.rs`).
    const DRIVER_LINK_ARGS: &[&str] = &[
        "/DRIVER",
        "/SUBSYSTEM:NATIVE",
        "/ENTRY:DriverEntry",
        "/NODEFAULTLIB",
        // As the WDK does: the loader requires a valid signature (test-signed is fine).
        "/INTEGRITYCHECK",
        // Write the image checksum: the kernel loader verifies it for drivers.
        "/RELEASE",
        // A map file: lets the tests find `DriverEntry` in the image.
        "/MAP",
    ];

    pub fn configure() {
        let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
        let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
        if os == "windows" && env == "msvc" {
            for arg in DRIVER_LINK_ARGS {
                println!("cargo::rustc-cdylib-link-arg={arg}");
            }
        }
    }
}

#[cfg(feature = "wdk")]
mod wdk {
    use std::path::PathBuf;

    use wdk_build::BuilderExt;

    /// The NDIS structures whose layouts `src/wdk_layout.rs` compares with ours.
    const NDIS_TYPES: &[&str] = &[
        "_NET_BUFFER_LIST",
        "_NET_BUFFER",
        "_NET_BUFFER_LIST_POOL_PARAMETERS",
        "_NDIS_FILTER_DRIVER_CHARACTERISTICS",
        "_NDIS_FILTER_ATTRIBUTES",
        "_NDIS_FILTER_ATTACH_PARAMETERS",
        "_NDIS_FILTER_PAUSE_PARAMETERS",
        "_NDIS_FILTER_RESTART_PARAMETERS",
        "_NDIS_RESTART_GENERAL_ATTRIBUTES",
        "_NDIS_OID_REQUEST",
        "_NDIS_STATUS_INDICATION",
        "_NDIS_SPIN_LOCK",
        "_MDL",
        "_DRIVER_OBJECT",
        "_UNICODE_STRING",
    ];

    pub fn configure() -> Result<(), Box<dyn std::error::Error>> {
        // Linker configuration for a WDM driver (ntoskrnl.lib, /DRIVER, ...).
        wdk_build::configure_wdk_binary_build()?;

        let config = wdk_build::Config::from_env_auto()?;
        // NDIS 6.50 filter, as the driver registers (NDIS_FILTER_MINOR_VERSION).
        let header = "#define NDIS_LWF 1\n#define NDIS650 1\n#include <ntddk.h>\n#include <ndis.h>\n";
        let mut builder = bindgen::Builder::wdk_default(config)?
            .header_contents("rxinject_ndis.h", header)
            .layout_tests(false)
            .derive_default(false);
        for ty in NDIS_TYPES {
            builder = builder.allowlist_type(ty);
        }
        let out = PathBuf::from(std::env::var("OUT_DIR")?).join("wdk_ndis.rs");
        builder.generate()?.write_to_file(out)?;
        Ok(())
    }
}
