// Host test of the built library's C ABI without a GPU: argument checks answer before any CUDA
// call, the run table builder and the error strings behave as documented in the header.
#include <cstdio>
#include <cstring>
#include <vector>

#include "monostream_moe.h"

static int failures = 0;
#define EXPECT(cond)                                                      \
    do {                                                                  \
        if (!(cond)) { ++failures; std::printf("FAIL line %d: %s\n", __LINE__, #cond); } \
    } while (0)

int main() {
    EXPECT(monostream_moe_abi_version() == MONOSTREAM_MOE_ABI_VERSION);
    const uint8_t mask[6] = {0, 0, 1, 1, 1, 0};
    std::vector<monostream_moe_run> runs(monostream_moe_max_runs(6));
    int32_t count = 0, tiles = 0;
    EXPECT(monostream_moe_build_run_table(mask, 6, runs.data(), int32_t(runs.size()), &count, &tiles) == MONOSTREAM_MOE_OK);
    EXPECT(count == 3 && tiles == 3);
    EXPECT(runs[1].token_start == 2 && runs[1].token_count == 3 && runs[1].expert == MONOSTREAM_MOE_EXPERT_IMAGE);
    EXPECT(monostream_moe_build_run_table(mask, 6, runs.data(), 2, &count, &tiles) == MONOSTREAM_MOE_ERR_CAPACITY);
    EXPECT(monostream_moe_workspace_bytes(6, 8192) == size_t(6) * 8192 * 2);

    // fake but aligned device addresses: the checks reject before touching them
    alignas(16) static unsigned char buf[64];
    void* p = buf;
    monostream_moe_weights w{{p, p}, {p, p}, {p, p}};
    const monostream_moe_run* r = reinterpret_cast<const monostream_moe_run*>(buf);
    EXPECT(monostream_moe_gate_up(p, p, &w, 6, 2000, 8192, r, 3, 3, nullptr) == MONOSTREAM_MOE_ERR_UNSUPPORTED_SHAPE);
    EXPECT(monostream_moe_gate_up(p, p, &w, 6, 2048, 8200, r, 3, 3, nullptr) == MONOSTREAM_MOE_ERR_UNSUPPORTED_SHAPE);
    EXPECT(monostream_moe_gate_up(nullptr, p, &w, 6, 2048, 8192, r, 3, 3, nullptr) == MONOSTREAM_MOE_ERR_INVALID_ARGUMENT);
    EXPECT(monostream_moe_gate_up(p, p, &w, 6, 2048, 8192, r, 7, 3, nullptr) == MONOSTREAM_MOE_ERR_INVALID_ARGUMENT);
    EXPECT(monostream_moe_down(buf + 8, p, &w, 6, 2048, 8192, r, 3, 3, 0, nullptr) == MONOSTREAM_MOE_ERR_MISALIGNED);
    EXPECT(monostream_moe_down(p, p, &w, 6, 2048, 8192, r, 3, 3, 4, nullptr) == MONOSTREAM_MOE_ERR_INVALID_ARGUMENT);
    monostream_moe_weights missing = w;
    missing.w3[1] = nullptr;
    EXPECT(monostream_moe_gate_up(p, p, &missing, 6, 2048, 8192, r, 3, 3, nullptr) == MONOSTREAM_MOE_ERR_INVALID_ARGUMENT);
    EXPECT(monostream_moe_forward(p, p, p, &w, 0, 2048, 8192, nullptr, 0, 0, 0, nullptr) == MONOSTREAM_MOE_OK);  // no tokens: no launch
    EXPECT(std::strstr(monostream_moe_error_string(MONOSTREAM_MOE_ERR_MISALIGNED), "16-byte") != nullptr);
    EXPECT(std::strlen(monostream_moe_error_string(MONOSTREAM_MOE_ERR_CUDA_BASE + 1)) > 0);
    EXPECT(std::strcmp(monostream_moe_error_string(-5), "unknown error code") == 0);
    std::printf("abi_test: %s\n", failures == 0 ? "ok" : "FAILED");
    return failures == 0 ? 0 : 1;
}
