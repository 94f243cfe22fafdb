//! NDIS 6 and WDM declarations for rxinject, written by hand from Microsoft's documented
//! definitions (learn.microsoft.com `ndis.h` / `wdm.h` reference pages).
//!
//! Why hand-written rather than bindgen output: the windows-drivers-rs crates (and so the
//! WDK headers bindgen would need) cannot be used on the Linux machines this project is
//! built on, and `wdk-sys` has no NDIS subset at all. Every structure here therefore
//! carries compile-time `size_of`/`offset_of` checks against documented x64 values
//! (`layout.rs`), a test cross-checks the WDM structures against Wine's ABI-compatible
//! `wdm.h`, a test compares constants with `windows-sys` (generated from the real
//! headers), and the eWDK build (`--features wdk`) re-checks the layouts against the
//! WDK's own `ndis.h` through bindgen.
//!
//! Rules of this crate:
//! - fixed-width integers only (`u32` for `ULONG`, never `c_ulong`), so that the same
//!   `#[repr(C)]` layout holds when the driver is compiled for the Linux host and runs
//!   under the NDIS simulator;
//! - every function and callback uses the Windows x64 calling convention
//!   (`extern "win64"`), on every target, so the simulator speaks the ABI of the shipped
//!   `.sys`;
//! - on Windows the imports are `raw-dylib` with `+verbatim` module names; on other
//!   targets the symbols are left unresolved and are provided at link time by the
//!   simulator (`ndis-sim`).
#![no_std]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

mod consts;
mod functions;
mod layout;
mod ndis;
mod status;
mod types;
mod wdm;
pub mod wstr;

pub use consts::*;
pub use functions::*;
pub use ndis::*;
pub use status::*;
pub use types::*;
pub use wdm::*;
