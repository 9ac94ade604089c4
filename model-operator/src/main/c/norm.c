// RMSNorm over the last axis (spec §6), one call instead of eight libtorch ops: the statistics
// and the scaling in fp32, the normalised value rounded to the model's precision, then the weight
// multiply rounded again (as libtorch's BF16 multiply does).
#include <math.h>

#include "elements.h"
#include "monostream_cpu.h"
#include "pool.h"

typedef struct {
    int dtype;
    const void *x;
    const void *w;
    void *y;
    int64_t rows, hidden;
    float eps;
} norm_job;

/** One row, with dtype a constant at each call and restrict pointers, so that both loops vectorise. */
static inline __attribute__((always_inline)) void norm_row(const norm_job *j, int64_t r, const int dtype) {
    const int64_t h = j->hidden, size = dtype == MS_BF16 ? 2 : 4;
    const void *restrict x = (const char *) j->x + r * h * size;
    const void *restrict w = j->w;
    void *restrict y = (char *) j->y + r * h * size;
    // eight partial sums, so the sum of squares vectorises
    float partial[8] = {0};
    int64_t c = 0;
    for (; c + 8 <= h; c += 8) {
        for (int l = 0; l < 8; l++) {
            float v = load_elem(x, c + l, dtype);
            partial[l] += v * v;
        }
    }
    float squares = 0;
    for (; c < h; c++) {
        float v = load_elem(x, c, dtype);
        squares += v * v;
    }
    for (int l = 0; l < 8; l++) {
        squares += partial[l];
    }
    const float scale = sqrtf(squares / (float) h + j->eps);
    for (c = 0; c < h; c++) {
        float normalised = round_to(load_elem(x, c, dtype) / scale, dtype);
        store_elem(y, c, normalised * load_elem(w, c, dtype), dtype);
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void norm_share(const void *ctx, int part, int parts) {
    const norm_job *j = ctx;
    const int64_t r0 = j->rows * part / parts, r1 = j->rows * (part + 1) / parts;
    for (int64_t r = r0; r < r1; r++) {
        if (j->dtype == MS_BF16) {
            norm_row(j, r, MS_BF16);
        } else {
            norm_row(j, r, MS_F32);
        }
    }
}

int ms_cpu_rms_norm(int dtype, const void *x, int64_t rows, int64_t hidden, const void *w, float eps, void *y) {
    if (!valid_dtype(dtype) || !x || !w || !y || rows < 1 || hidden < 1 || !(eps >= 0)) {
        return MS_CPU_EINVAL;
    }
    norm_job job = {dtype, x, w, y, rows, hidden, eps};
    pool_run(norm_share, &job, rows * hidden >= (1 << 16));
    return MS_CPU_OK;
}
