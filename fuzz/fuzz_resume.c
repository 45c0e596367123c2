/* fuzz_resume.c — libFuzzer harness for resuming from a checkpoint: bytes ->
 * safetensors (from memory) -> a small trainer resumed from it -> two steps
 * of training under the sanitizers (fuzz_nn.h).  Build and run:
 * fuzz/run.sh 60 resume */
#include "fuzz_nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wick_set_threads(1);
    if (fuzz_resume_one(data, size) < 0) __builtin_trap();
    return 0;
}
