/* bcryptprimitives.dll for wine 8.0, which lacks ProcessPrng (Rust's std imports it since 1.78;
 * Windows 10 and later have it). Forwards to advapi32's RtlGenRandom (SystemFunction036). Only
 * copied into the test wine prefix: nothing shipped uses it. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
    if (!SystemFunction036(data, n)) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
