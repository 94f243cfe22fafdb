//! What a `no_std` kernel image needs from its runtime on the Windows target: the panic
//! handler, the global allocator, and two symbols the prebuilt `core` references.
//!
//! With `--features wdk` (the eWDK build) the windows-drivers-rs crates provide the panic
//! handler and allocator instead, and the WDK libraries provide the symbols.

#[cfg(not(feature = "wdk"))]
mod own {
    use core::panic::PanicInfo;

    use crate::mem::KernelAllocator;

    #[global_allocator]
    static ALLOCATOR: KernelAllocator = KernelAllocator;

    /// A panic is a bug check: `RXPN`, with the source file (pointer, length), line and
    /// column of the panic as parameters, like the windows-drivers-rs handler.
    #[panic_handler]
    fn panic(info: &PanicInfo<'_>) -> ! {
        let (file, len, line) = info.location().map_or((0, 0, 0), |l| {
            (l.file().as_ptr() as usize, l.file().len(), l.line() as usize)
        });
        // SAFETY: KeBugCheckEx has no preconditions and never returns.
        unsafe { ndis_sys::KeBugCheckEx(crate::BUGCHECK_PANIC, file, len, line, 0) }
    }

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

#[cfg(feature = "wdk")]
mod wdk {
    extern crate wdk_panic;

    #[global_allocator]
    static ALLOCATOR: wdk_alloc::WdkAllocator = wdk_alloc::WdkAllocator;
}
