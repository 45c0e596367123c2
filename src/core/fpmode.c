/* fpmode.c — the floating-point mode wick computes in (policy in wick.h):
 * flush-to-zero and denormals-are-zero, set on entry to a computing call and
 * the caller's mode put back on return.  A float denormal in a product costs
 * a microcode assist on every instruction that touches it (a hundred cycles)
 * and changes nothing training can see; oneDNN and PyTorch flush them too. */
#include "core.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FTZ_DAZ 0x8040u   /* MXCSR: flush-to-zero (bit 15), denormals-are-zero (bit 6) */

unsigned wick_fp_enter(void) {
    unsigned old = _mm_getcsr();
    if ((old & FTZ_DAZ) != FTZ_DAZ) _mm_setcsr(old | FTZ_DAZ);
    return old;
}

/* The caller's control bits back; the exception flags (bits 0-5) raised
 * inside stay raised, as feupdateenv leaves them. */
void wick_fp_leave(unsigned saved) {
    unsigned now = _mm_getcsr(), back = saved | (now & 0x3fu);
    if (now != back) _mm_setcsr(back);
}

void wick_fp_flush_here(void) { _mm_setcsr(_mm_getcsr() | FTZ_DAZ); }
#else
unsigned wick_fp_enter(void) { return 0; }
void wick_fp_leave(unsigned saved) { (void)saved; }
void wick_fp_flush_here(void) {}
#endif
