//! Build script of the rxinject driver.
//!
//! Two builds exist (README.md, "Building the .sys"):
//!
//! - **Linux cross build** (`cargo xtask dist`, default features): nothing to do here. The
//!   link arguments of a kernel image are passed by `xtask/src/dist.rs` to the final link
//!   (`cargo rustc --crate-type cdylib -- -C link-arg=...`) and imports are `raw-dylib`, so no
//!   WDK library is needed.
//! - **eWDK build on Windows** (`--features wdk`, `cargo make`): `wdk-build` configures the
//!   link against the installed WDK, and bindgen generates the WDK's own `ndis.h`/`wdm.h`
//!   layouts so that `src/wdk_layout.rs` checks our hand-written bindings against them at
//!   compile time. This path has never been run (no Windows machine here).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "wdk")]
    if let Err(e) = wdk::configure() {
        panic!("eWDK build configuration failed: {e}");
    }
}

#[cfg(feature = "wdk")]
mod wdk {
    use std::path::PathBuf;

    use wdk_build::BuilderExt;

    /// The structures whose layouts `src/wdk_layout.rs` compares with ours.
    const TYPES: &[&str] = &[
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
        // Linker configuration of a WDM driver (ntoskrnl.lib, /DRIVER, /ENTRY, ...).
        wdk_build::configure_wdk_binary_build()?;

        let config = wdk_build::Config::from_env_auto()?;
        // An NDIS 6.50 filter, as the driver registers (NDIS_FILTER_MINOR_VERSION).
        let header = "#define NDIS_LWF 1\n#define NDIS650 1\n#include <ntddk.h>\n#include <ndis.h>\n";
        let mut builder = bindgen::Builder::wdk_default(config)?
            .header_contents("rxinject_ndis.h", header)
            .layout_tests(false)
            .derive_default(false);
        for ty in TYPES {
            builder = builder.allowlist_type(ty);
        }
        let out = PathBuf::from(std::env::var("OUT_DIR")?).join("wdk_ndis.rs");
        builder.generate()?.write_to_file(out)?;
        Ok(())
    }
}
