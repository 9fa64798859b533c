// LLVMFuzzerRunDriver is defined by libFuzzer, linked in by -sanitize=fuzzer; this target only
// declares it (SwiftPM wants a source file in every C target).
#include "fuzzer_driver.h"
