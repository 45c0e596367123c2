/* fuzz_model.c — libFuzzer harness for loading a model file: bytes ->
 * safetensors (from memory) -> architecture from the metadata or the shapes
 * -> a model -> its weights -> a prediction (fuzz_nn.h).  Build and run:
 * fuzz/run.sh 60 model */
#include "fuzz_nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wick_set_threads(1);
    if (fuzz_model_one(data, size) < 0) __builtin_trap();
    return 0;
}
