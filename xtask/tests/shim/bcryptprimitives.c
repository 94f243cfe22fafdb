/*
 * A stand-in for Windows' bcryptprimitives.dll, for running rxinject.exe under Wine 8
 * (Debian 12), which lacks the DLL. Rust's standard library takes its random numbers from
 * ProcessPrng (bcryptprimitives.dll, Windows 10 and later); this forwards to RtlGenRandom,
 * which Wine has. Test-only: built and placed beside the program by xtask/tests/dist.rs.
 */
#include <windows.h>

/* RtlGenRandom, exported by advapi32 as SystemFunction036. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
