//! Build script of the rxinject driver.
//!
//! Three builds exist (README.md, "Building the .sys"):
//!
//! - **Linux cross build** (`cargo xtask dist`, default features): nothing to do here. The
//!   link arguments of a kernel image are passed by `xtask/src/dist.rs` to the final link
//!   (`cargo rustc --crate-type cdylib -- -C link-arg=...`) and imports are `raw-dylib`, so no
//!   WDK library is needed.
//! - **eWDK build on Windows** (`--features wdk`, `cargo make`): `wdk-build` configures the
//!   link against the installed WDK, and bindgen generates the WDK's own `ndis.h`/`wdm.h`
//!   layouts so that `src/wdk_layout.rs` checks our hand-written bindings against them at
//!   compile time. bindgen reads a copy of `ndis.h` with one macro fixed (`build/ndis_h.rs`).
//! - **Layout probe** (`--features layout-probe --target x86_64-pc-windows-msvc`, run by
//!   `cargo xtask test` on Linux): the same bindgen run and the same `src/wdk_layout.rs`, over
//!   our own header of ndis-sys (`crates/ndis-sys/c/ndis_lwf.h`, written from the
//!   documentation with the WDK's names) instead of the WDK's, so that a field `wdk_layout.rs`
//!   names but bindgen would not produce, or a lint bindgen's output breaks, fails on Linux
//!   too.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=build");
    if let Err(e) = require_static_crt() {
        panic!("{e}");
    }
    #[cfg(feature = "wdk")]
    if let Err(e) = wdk::configure() {
        panic!("eWDK build configuration failed: {e}");
    }
    #[cfg(all(feature = "layout-probe", not(feature = "wdk")))]
    if let Err(e) = probe::generate() {
        panic!("layout probe failed: {e}");
    }
}

/// A Windows build of the driver links the C runtime statically (`+crt-static`), as a
/// kernel image must, and as wdk-build's `configure_wdk_binary_build()` demands of the eWDK
/// build: checked here on every Windows build, the Linux one included, by the test wdk-build
/// makes (the `crt-static` target feature cargo reports to build scripts). The flag comes from
/// `.cargo/config.toml`; a `RUSTFLAGS` in the environment replaces it.
fn require_static_crt() -> Result<(), String> {
    let var = |name| std::env::var(name).unwrap_or_default();
    let windows = var("CARGO_CFG_TARGET_OS") == "windows" && var("CARGO_CFG_TARGET_ENV") == "msvc";
    if !windows
        || var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static")
    {
        return Ok(());
    }
    Err(
        "the Windows build of rxinject needs a statically linked C runtime \
         (`-C target-feature=+crt-static`, set for x86_64-pc-windows-msvc in \
         .cargo/config.toml); RUSTFLAGS or CARGO_ENCODED_RUSTFLAGS in the environment \
         replace it: add the flag to them"
            .to_string(),
    )
}

#[cfg(feature = "wdk")]
#[path = "build/ndis_h.rs"]
mod ndis_h;

/// What both bindgen runs share: the structures `src/wdk_layout.rs` compares with ours, and
/// where the bindings go.
#[cfg(any(feature = "wdk", feature = "layout-probe"))]
mod layout {
    use std::path::PathBuf;

    /// The structures whose layouts `src/wdk_layout.rs` compares with ours.
    pub const TYPES: &[&str] = &[
        "_NET_BUFFER_LIST",
        "_NET_BUFFER",
        "_NET_BUFFER_LIST_POOL_PARAMETERS",
        "_NDIS_FILTER_DRIVER_CHARACTERISTICS",
        "_NDIS_FILTER_ATTRIBUTES",
        "_NDIS_FILTER_ATTACH_PARAMETERS",
        "_NDIS_FILTER_PAUSE_PARAMETERS",
        "_NDIS_FILTER_RESTART_PARAMETERS",
        "_NDIS_RESTART_ATTRIBUTES",
        "_NDIS_RESTART_GENERAL_ATTRIBUTES",
        "_NDIS_OID_REQUEST",
        "_NDIS_STATUS_INDICATION",
        "_NDIS_SPIN_LOCK",
        "_MDL",
        "_DRIVER_OBJECT",
        "_UNICODE_STRING",
        "_PROCESSOR_NUMBER",
    ];

    /// Our settings on top of the builder's: only [`TYPES`] (and what they need), no layout
    /// tests or `Default` impls (the comparison is `src/wdk_layout.rs`).
    pub fn select(mut builder: bindgen::Builder) -> bindgen::Builder {
        builder = builder.layout_tests(false).derive_default(false);
        for ty in TYPES {
            builder = builder.allowlist_type(ty);
        }
        builder
    }

    /// Where `src/wdk_layout.rs` includes the bindings from.
    pub fn out_file() -> Result<PathBuf, std::env::VarError> {
        Ok(PathBuf::from(std::env::var("OUT_DIR")?).join("wdk_ndis.rs"))
    }
}

#[cfg(feature = "wdk")]
mod wdk {
    use std::path::PathBuf;

    use wdk_build::BuilderExt;

    use crate::{layout, ndis_h};

    pub fn configure() -> Result<(), Box<dyn std::error::Error>> {
        // Linker configuration of a WDM driver (ntoskrnl.lib, /DRIVER, /ENTRY, ...).
        wdk_build::configure_wdk_binary_build()?;
        // wdk-build does not ask for CET shadow-stack compatibility; the Linux build does
        // (`xtask::dist::DRIVER_LINK_ARGS`, checked on the image).
        println!("cargo::rustc-cdylib-link-arg=/CETCOMPAT");

        let config = wdk_build::Config::from_env_auto()?;
        let ndis_h = fixed_ndis_h(&config)?;
        // An NDIS 6.50 filter, as the driver registers (NDIS_FILTER_MINOR_VERSION).
        let header = format!(
            "#define NDIS_LWF 1\n#define NDIS650 1\n#include <ntddk.h>\n#include \"{}\"\n",
            ndis_h::c_string(&ndis_h.display().to_string())
        );
        let builder = bindgen::Builder::wdk_default(config)?.header_contents("rxinject_ndis.h", &header);
        layout::select(builder)
            .generate()?
            .write_to_file(layout::out_file()?)?;
        Ok(())
    }

    /// The WDK's `ndis.h`, or the copy in `OUT_DIR` that libclang can read
    /// (`build/ndis_h.rs`).
    fn fixed_ndis_h(config: &wdk_build::Config) -> Result<PathBuf, Box<dyn std::error::Error>> {
        let original = config
            .include_paths()?
            .map(|dir| dir.join("ndis.h"))
            .find(|p| p.is_file())
            .ok_or("no ndis.h in the WDK's include directories")?;
        println!("cargo::rerun-if-changed={}", original.display());
        let text = std::fs::read_to_string(&original)?;
        let Some(fixed) = ndis_h::rewrite(&text, &original.display().to_string())? else {
            return Ok(original);
        };
        let copy = PathBuf::from(std::env::var("OUT_DIR")?).join("ndis.h");
        std::fs::write(&copy, fixed)?;
        Ok(copy)
    }
}

#[cfg(all(feature = "layout-probe", not(feature = "wdk")))]
mod probe {
    use std::path::PathBuf;

    use crate::layout;

    /// The target whose C layouts the probe computes, like the WDK's headers.
    const TARGET: &str = "x86_64-pc-windows-msvc";

    pub fn generate() -> Result<(), Box<dyn std::error::Error>> {
        let target = std::env::var("TARGET")?;
        if target != TARGET {
            return Err(format!(
                "the layout probe computes Windows layouts: build it with --target {TARGET} \
                 (this build is for {target})"
            )
            .into());
        }
        // The header; a test points RXINJECT_LAYOUT_PROBE_HEADER at a broken copy to see
        // the check fail (xtask/tests/ewdk.rs).
        println!("cargo::rerun-if-env-changed=RXINJECT_LAYOUT_PROBE_HEADER");
        let header = match std::env::var_os("RXINJECT_LAYOUT_PROBE_HEADER") {
            Some(h) => PathBuf::from(h),
            None => PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("crates/ndis-sys/c/ndis_lwf.h"),
        };
        println!("cargo::rerun-if-changed={}", header.display());
        // The options of wdk-build 0.6.0's `wdk_default` that shape the generated code (its
        // include paths and blocklist concern the WDK's headers only), so that the bindings
        // and their helpers are those an eWDK build compiles.
        let builder = bindgen::Builder::default()
            .header(header.display().to_string())
            .use_core()
            .derive_default(true)
            .generate_cstr(true)
            .detect_include_paths(false)
            .clang_args([
                &format!("--target={TARGET}"),
                "-fno-builtin",
                "-fms-compatibility",
                "-fms-extensions",
                "-D_WIN64",
                "-D_AMD64_",
                "-DAMD64",
                "-D_KERNEL_MODE",
                "-DNDIS_LWF=1",
                "-DNDIS650=1",
            ])
            .must_use_type("NTSTATUS")
            .default_enum_style(bindgen::EnumVariation::ModuleConsts)
            .formatter(bindgen::Formatter::Prettyplease)
            // wdk-build 0.6.0: its rust-version (1.91) and edition (2024).
            .rust_target(bindgen::RustTarget::stable(91, 0).map_err(|e| e.to_string())?)
            .rust_edition(bindgen::RustEdition::Edition2024);
        layout::select(builder)
            .generate()?
            .write_to_file(layout::out_file()?)?;
        Ok(())
    }
}
