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
//! WDK's own `ndis.h` through bindgen (and, in CI, against `c/ndis_lwf.h`, our header
//! of the same structures: `--features layout-probe` of the driver).
//!
//! Against the WDK's own headers (10.0.22000 and 10.0.22621, `NDIS_LWF`, `NDIS650`, x64):
//! every constant and status code this crate declares has the header's value, and every
//! structure has the header's size, alignment and member offsets, except the differences
//! below, which are deliberate:
//! - **Members the header puts in anonymous unions or structures are flattened or given a
//!   type of ours**, at the same offsets: `NET_BUFFER_LIST::{Next, FirstNetBuffer, Status}`,
//!   `NET_BUFFER::{Next, ..., DataOffset}` with `DataLength` as [`NET_BUFFER_DATA_LENGTH`],
//!   `IRP::SystemBuffer` (`AssociatedIrp.SystemBuffer`) and [`IRP_TAIL_OVERLAY`],
//!   [`IO_STACK_PARAMETERS`] and its `IO_*_PARAMETERS` views, and the `DATA` union of
//!   [`NDIS_OID_REQUEST`] ([`NDIS_OID_REQUEST_DATA`] with `NDIS_OID_*_INFORMATION`). The
//!   header's legacy union members (`NetBufferListHeader`, `NetBufferHeader`, `Link`) are
//!   left out.
//! - **Explicit `_pad*`/`_Reserved*` members** stand where C inserts padding, so a
//!   structure can be built with a literal; `DEVICE_OBJECT` and `FILE_OBJECT` end in an
//!   opaque `_Rest` (a driver never reads past the members declared).
//! - **Types**: enumerations and handles are fixed-width integers or pointers of the same
//!   size; reserved byte arrays may be arrays of pointers of the same size
//!   (`NDIS_OID_REQUEST::NdisReserved` is `[PVOID; 16]`, the header's `UCHAR[128]`).
//! - **Opaque structures** a filter only forwards (`DRIVER_EXTENSION`,
//!   `NET_PNP_EVENT_NOTIFICATION`, `NET_DEVICE_PNP_EVENT`) are zero-sized: only pointers to
//!   them exist.
//! - `NET_BUFFER_LIST` has the info slots of NDIS 6.50 ([`MaxNetBufferListInfo`] 26); the
//!   NBLs NDIS allocates may have more, and a filter uses only its version's.
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
