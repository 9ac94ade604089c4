// The library-wide entry points of libmonostream_cpu.so: version and thread count.
#include "monostream_cpu.h"
#include "pool.h"

int ms_cpu_abi_version(void) {
    return MS_CPU_ABI_VERSION;
}

int ms_cpu_set_threads(int threads) {
    return pool_set_threads(threads);
}

int ms_cpu_threads(void) {
    return pool_threads();
}
