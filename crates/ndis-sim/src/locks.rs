//! NDIS spin locks (rules L3-L5): real mutual exclusion between simulator threads, on the
//! `KSPIN_LOCK` word inside the driver's `NDIS_SPIN_LOCK`, with every misuse reported and
//! none of them allowed to deadlock the simulation.

use std::sync::atomic::{AtomicUsize, Ordering};

use ndis_sys::{DISPATCH_LEVEL, KIRQL, NDIS_SPIN_LOCK};

use crate::rules::Rule;
use crate::tls::{self, HeldLock};
use crate::world::{World, lock};

/// A spin lock the driver allocated.
pub(crate) struct LockRec {
    /// The thread token holding it (0: free).
    pub holder: u64,
    /// A bare `KSPIN_LOCK` (`KeInitializeSpinLock`, or a `Ke` acquire of an uninitialized
    /// one): there is nothing to free.
    pub ke: bool,
}

fn thread_token() -> u64 {
    thread_local!(static TOKEN: u64 = {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    });
    TOKEN.with(|t| *t)
}

fn word(lock: *mut NDIS_SPIN_LOCK) -> &'static AtomicUsize {
    // SAFETY: `lock` is a registered NDIS_SPIN_LOCK in driver memory that stays valid while
    // registered; its first field is a pointer-sized KSPIN_LOCK, used here as the lock word.
    unsafe { &*(lock.cast::<AtomicUsize>()) }
}

pub(crate) fn allocate(w: &World, lock: *mut NDIS_SPIN_LOCK) {
    w.require_max_dispatch("NdisAllocateSpinLock");
    if lock.is_null() {
        w.violate(Rule::L3, "NdisAllocateSpinLock(NULL)");
        return;
    }
    word(lock).store(0, Ordering::Release);
    // SAFETY: valid driver memory (the driver passes its own lock).
    unsafe { (*lock).OldIrql = 0 };
    lock_table(w).insert(lock as usize, LockRec { holder: 0, ke: false });
}

pub(crate) fn free(w: &World, lock: *mut NDIS_SPIN_LOCK) {
    let mut t = lock_table(w);
    match t.get(&(lock as usize)) {
        None => {
            drop(t);
            w.violate(
                Rule::L3,
                format!(
                    "NdisFreeSpinLock({:#x}): not an allocated spin lock",
                    lock as usize
                ),
            );
        }
        Some(r) if r.holder != 0 => {
            drop(t);
            w.violate(
                Rule::L3,
                format!("NdisFreeSpinLock({:#x}) while the lock is held", lock as usize),
            );
        }
        Some(_) => {
            t.remove(&(lock as usize));
        }
    }
}

fn lock_table(w: &World) -> std::sync::MutexGuard<'_, crate::AddrMap<LockRec>> {
    lock(&w.locks)
}

pub(crate) fn acquire(w: &World, lock: *mut NDIS_SPIN_LOCK, dpr: bool) {
    let name = if dpr {
        "NdisDprAcquireSpinLock"
    } else {
        "NdisAcquireSpinLock"
    };
    let old = acquire_word(w, lock as usize, name, dpr);
    if !dpr && tls::holds_once(lock as usize) {
        // SAFETY: the lock is held by this thread; OldIrql is the owner's field.
        unsafe { (*lock).OldIrql = old };
    }
}

/// Acquires the spin lock at `addr` (an NDIS_SPIN_LOCK's KSPIN_LOCK, or a bare KSPIN_LOCK
/// of the `Ke` functions a WDK build's `NdisXxxSpinLock` macros call), raising to
/// DISPATCH_LEVEL unless `dpr` (the caller is there already). Returns the IRQL before.
pub(crate) fn acquire_word(w: &World, addr: usize, name: &'static str, dpr: bool) -> KIRQL {
    w.require_max_dispatch(name);
    w.lock_acquisitions
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let old = tls::irql();
    if !lock_table(w).contains_key(&addr) {
        // Reported once, and then taken: one mistake must not cascade into an L4 at every
        // release, and the critical section stays protected. (Zeroed memory is a free
        // KSPIN_LOCK on Windows too.)
        w.violate(
            Rule::L3,
            format!("{name}({addr:#x}): the lock was never allocated (NdisAllocateSpinLock/KeInitializeSpinLock); taken anyway"),
        );
        word(addr as *mut NDIS_SPIN_LOCK).store(0, Ordering::Release);
        lock_table(w).insert(
            addr,
            LockRec {
                holder: 0,
                ke: name.starts_with("Ke"),
            },
        );
    }
    if dpr && tls::irql() != DISPATCH_LEVEL {
        w.violate(
            Rule::L3,
            format!(
                "{name}({addr:#x}) at IRQL {} (requires DISPATCH_LEVEL)",
                tls::irql()
            ),
        );
    }
    if tls::holds(addr) {
        w.violate(
            Rule::L4,
            format!("{name}({addr:#x}): recursive acquire by the thread that holds it"),
        );
        // Pretend it was acquired so the matching release pairs; never deadlock.
        tls::push_lock(HeldLock { addr, dpr });
        return old;
    }
    let me = thread_token();
    let wd = word(addr as *mut NDIS_SPIN_LOCK);
    // Raised before spinning, as KeAcquireSpinLock does: the spinner holds its processor,
    // and a thread waiting for a processor holds no spin lock.
    tls::set_irql(old.max(DISPATCH_LEVEL));
    let mut spins = 0u32;
    while wd
        .compare_exchange_weak(0, me as usize, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    if let Some(r) = lock_table(w).get_mut(&addr) {
        r.holder = me;
    }
    tls::set_irql(DISPATCH_LEVEL);
    tls::push_lock(HeldLock { addr, dpr });
    old
}

pub(crate) fn release(w: &World, lock: *mut NDIS_SPIN_LOCK, dpr: bool) {
    let name = if dpr {
        "NdisDprReleaseSpinLock"
    } else {
        "NdisReleaseSpinLock"
    };
    // SAFETY: a lock this thread holds (checked by release_word before it is used); its
    // OldIrql was written by our acquire.
    let restore = (!dpr).then(|| unsafe { (*lock).OldIrql });
    release_word(w, lock as usize, name, dpr, restore);
}

/// Releases the spin lock at `addr`: to `restore` (NdisReleaseSpinLock's OldIrql,
/// KeReleaseSpinLock's NewIrql), or staying at DISPATCH_LEVEL for the `dpr` variants.
pub(crate) fn release_word(w: &World, addr: usize, name: &'static str, dpr: bool, restore: Option<KIRQL>) {
    let Some((held, lifo)) = tls::pop_lock(addr) else {
        w.violate(
            Rule::L4,
            format!("{name}({addr:#x}) by a thread that does not hold the lock"),
        );
        return;
    };
    if !lifo {
        w.violate(
            Rule::L5,
            format!("{name}({addr:#x}): locks released out of LIFO order"),
        );
    }
    if held.dpr != dpr {
        w.violate(
            Rule::L3,
            format!(
                "{name}({addr:#x}) pairs with {}",
                if held.dpr {
                    "NdisDprAcquireSpinLock (KeAcquireSpinLockAtDpcLevel)"
                } else {
                    "NdisAcquireSpinLock (KeAcquireSpinLockRaiseToDpc)"
                }
            ),
        );
    }
    // A recursive acquire was recorded without taking the word; only the outermost
    // release frees it.
    if tls::holds(addr) {
        return;
    }
    if let Some(r) = lock_table(w).get_mut(&addr) {
        r.holder = 0;
    }
    word(addr as *mut NDIS_SPIN_LOCK).store(0, Ordering::Release);
    tls::set_irql(if held.dpr {
        DISPATCH_LEVEL
    } else {
        restore.unwrap_or(DISPATCH_LEVEL)
    });
}

/// `KeInitializeSpinLock`: a bare KSPIN_LOCK becomes a lock (as NdisAllocateSpinLock does
/// for an NDIS_SPIN_LOCK).
pub(crate) fn initialize_word(w: &World, addr: usize) {
    if addr == 0 {
        w.violate(Rule::L3, "KeInitializeSpinLock(NULL)");
        return;
    }
    w.require_max_dispatch("KeInitializeSpinLock");
    word(addr as *mut NDIS_SPIN_LOCK).store(0, Ordering::Release);
    lock_table(w).insert(addr, LockRec { holder: 0, ke: true });
}

/// Releases a lock a callback kept when it returned (after L4 was reported).
pub(crate) fn force_release(w: &World, addr: usize) {
    if let Some(r) = lock_table(w).get_mut(&addr) {
        r.holder = 0;
        word(addr as *mut NDIS_SPIN_LOCK).store(0, Ordering::Release);
    }
}
