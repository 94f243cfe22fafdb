//! What a `no_std` kernel image needs from its runtime on the Windows target: the panic
//! handler, the global allocator, and two symbols the prebuilt `core` references.
//!
//! The panic handler and the allocator are rxinject's in every build, the eWDK build
//! (`--features wdk`) included, so a crash dump or a pool-tag trace reads the same whichever
//! toolchain produced the `.sys` (README.md, "What differs under `wdk`"):
//! - a panic bug checks with `RXPN` (0x5258504E), where wdk-panic would use `RPNC` and, in a
//!   debug build, execute `int 3` first, which without a kernel debugger turns the panic into
//!   an unhandled breakpoint exception and loses its location;
//! - the allocator tags its pool `Rxga` and refuses alignments above
//!   `MEMORY_ALLOCATION_ALIGNMENT` (16), where wdk-alloc tags `rust` and ignores the requested
//!   alignment.
//!
//! Only the two symbols change with the build: the Linux build defines them here, and the
//! eWDK build takes them from wdk-sys (which also brings the WDK's kernel libraries), as every
//! windows-drivers-rs driver does; defining them twice would not link.

mod own {
    use core::panic::PanicInfo;

    use crate::mem::KernelAllocator;

    #[global_allocator]
    static ALLOCATOR: KernelAllocator = KernelAllocator;

    /// A panic is a bug check: `RXPN`, with the source file (pointer, length) and line of the
    /// panic as parameters.
    #[panic_handler]
    fn panic(info: &PanicInfo<'_>) -> ! {
        let (file, len, line) = info.location().map_or((0, 0, 0), |l| {
            (l.file().as_ptr() as usize, l.file().len(), l.line() as usize)
        });
        // SAFETY: KeBugCheckEx has no preconditions and never returns.
        unsafe { ndis_sys::KeBugCheckEx(crate::BUGCHECK_PANIC, file, len, line, 0) }
    }
}

#[cfg(not(feature = "wdk"))]
mod symbols {
    /// MSVC's marker that floating point is used; `core` references it.
    #[unsafe(no_mangle)]
    #[used]
    pub static _fltused: i32 = 0;

    /// Referenced by the prebuilt `core` for unwinding; with `panic = "abort"` it can never
    /// be reached, so reaching it is a bug check.
    #[unsafe(no_mangle)]
    pub extern "C" fn __CxxFrameHandler3() -> ! {
        // SAFETY: KeBugCheckEx has no preconditions and never returns.
        unsafe { ndis_sys::KeBugCheckEx(crate::BUGCHECK_PANIC, 0, 0, 0, 1) }
    }
}

// The eWDK build: wdk-sys defines `_fltused` and `__CxxFrameHandler3` and links ntoskrnl.lib,
// hal.lib, wmilib.lib and BufferOverflowFastFailK.lib. Nothing names it otherwise, and an
// unnamed crate is not linked.
#[cfg(feature = "wdk")]
extern crate wdk_sys as _;
