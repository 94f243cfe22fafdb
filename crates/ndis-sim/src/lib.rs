//! A strict NDIS 6 simulator for lightweight filter drivers.
//!
//! The driver under test is ordinary Rust (or C) code compiled for the Linux host that
//! declares its NDIS imports with `extern "win64"`; this crate defines those functions
//! (`exports.rs`), so the driver links against the simulator exactly where it would link
//! against `ndis.sys` and `ntoskrnl.exe` on Windows. The simulator then plays Windows:
//!
//! - a **miniport** below each adapter (Ethernet, its own MAC, MTU 1500) that indicates
//!   receives with and without `NDIS_RECEIVE_FLAGS_RESOURCES`, completes sends
//!   synchronously or later in mixed, shuffled chains, and answers OID requests;
//! - a **protocol** above that sends, holds indicated NBLs and returns them later in chains
//!   mixing several indications (and the filter's own NBLs), and issues OIDs and PnP events;
//! - **NDIS** in between: registration (attaching modules before it returns), the module
//!   life cycle with pause/restart pending, per-thread IRQL, spin locks, pools and memory.
//!
//! Every handoff is checked against `../shared/ndis-rules.md`; a broken rule is recorded as
//! a [`Violation`] with its rule id, and a leak at detach or unload is a violation too.
//! Strict by default: a [`Sim`] dropped with unexamined violations fails the test.
//!
//! The simulation is process-wide (the exported functions are global symbols), so a `Sim`
//! holds a lock for its lifetime: tests that create simulations run one at a time. Within
//! one simulation, traffic may run on any number of threads.

mod datapath;
mod exports;
mod frame;
pub mod image;
mod io;
mod kernel;
pub(crate) mod lifecycle;
mod locks;
mod mem;
mod nbl;
mod oid;
pub mod packets;
mod rules;
mod sim;
mod timer;
mod tls;
pub mod verify;
mod world;

pub use exports::exports;
pub use frame::{TestFrames, ethernet_frame};
pub use image::{Driver, Image, LoadError};
pub use io::{IoResult, Irp};
pub use kernel::{RegValue, RegistryKey};
pub use lifecycle::RestartSeen;
pub use oid::{OidCounts, OidKind, OidResult};
pub use rules::{DOCS, Rule, Severity, Strictness, Violation};
pub use sim::{Actor, AdapterRef, DeviceHandle, DeviceInfo, IoStats, OnProcessor, Report, Sim, Stats};
pub use world::{
    AdapterConfig, Completion, FrameOrigin, Hostile, Interruption, IrqlMode, MULTICAST_LIST_SIZE, ModState,
    PROTOCOL_PACKET_FILTER, RacingWriter, RxFrame, SUPPORTED_PACKET_FILTERS, SimConfig, TxCompletion,
    WireFrame, packet_filter_accepts,
};

/// The hasher of the simulator's tables, which are keyed by addresses (NBLs, MDLs, IRPs,
/// allocations): a multiply and a fold. SipHash's resistance to chosen keys buys nothing
/// here and cost more than half of the simulator's time on the datapath.
#[derive(Clone, Copy, Default)]
pub(crate) struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let h = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // Fold the well-mixed high half into the low bits the table indexes with (addresses
        // are aligned, so a product alone would leave those bits zero).
        self.0 = h ^ (h >> 32);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A table keyed by address.
pub(crate) type AddrMap<V> = std::collections::HashMap<usize, V, std::hash::BuildHasherDefault<AddrHasher>>;

/// A small deterministic generator (xorshift64*), seeded per simulation.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}
