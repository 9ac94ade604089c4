// A whole decode step in one call: with a few rows, the libtorch and Java glue between the kernels
// (array wrappers, shape changes, residual adds, one pool wake-up per call from Java) cost a
// fifth of the step; here the kernels run back to back on scratch memory of this call.
#include <stdlib.h>

#include "attention.h"
#include "elements.h"
#include "monostream_cpu.h"

/** y = round(y + x) elementwise, as the residual add of the model's dtype. */
static void add_into(int dtype, void *y, const void *x, int64_t count) {
    if (dtype == MS_BF16) {
        uint16_t *a = y;
        const uint16_t *b = x;
        for (int64_t i = 0; i < count; i++) {
            a[i] = f32_to_bf16(bf16_to_f32(a[i]) + bf16_to_f32(b[i]));
        }
    } else {
        float *a = y;
        const float *b = x;
        for (int64_t i = 0; i < count; i++) {
            a[i] += b[i];
        }
    }
}

static int valid(const ms_cpu_model *md, const ms_cpu_sequence *seq, int64_t m) {
    if (!md || !seq || m < 1 || !valid_dtype((int) md->dtype) || md->layers < 1 || md->hidden < 1
            || md->intermediate < 1 || md->kv_heads < 1 || md->heads < md->kv_heads || md->heads % md->kv_heads != 0
            || md->head_dim < 2 || md->head_dim % 2 != 0 || md->head_dim > MS_CPU_MAX_HEAD_DIM || md->vocab < 1
            || !(md->eps >= 0) || !md->layer || !md->embeddings || !md->final_norm || !md->head) {
        return 0;
    }
    for (int64_t r = 0; r < m; r++) {
        const ms_cpu_sequence *s = &seq[r];
        if (s->token < 0 || s->token >= md->vocab || s->past < 0 || s->past >= s->capacity || !s->cos || !s->sin
                || !s->k_cache || !s->v_cache) {
            return 0;
        }
    }
    return 1;
}

int ms_cpu_decode_step(const ms_cpu_model *md, const ms_cpu_sequence *seq, int64_t m, float *logits) {
    if (!valid(md, seq, m) || !logits) {
        return MS_CPU_EINVAL;
    }
    const int dtype = (int) md->dtype;
    const int64_t size = dtype == MS_BF16 ? 2 : 4;
    const int64_t hidden = md->hidden, d = md->head_dim, group = md->heads / md->kv_heads;
    const int64_t qkv_rows = md->kv_heads * (group + 2) * d, attended = md->heads * d;
    const int64_t widest = md->intermediate > qkv_rows ? md->intermediate : qkv_rows;
    // h: the residual stream; x: a norm's output; t: an attention or expert output; wide: qkv or the gate
    const int64_t h_at = 0, x_at = h_at + m * hidden, t_at = x_at + m * hidden, a_at = t_at + m * hidden;
    const int64_t wide_at = a_at + m * attended, end = wide_at + m * (widest > md->vocab ? widest : md->vocab);
    char *scratch = aligned_alloc(64, (size_t) ((end * size + 63) / 64 * 64));
    if (!scratch) {
        return MS_CPU_ENOMEM;
    }
    void *h = scratch + h_at * size, *x = scratch + x_at * size, *t = scratch + t_at * size;
    void *a = scratch + a_at * size, *wide = scratch + wide_at * size;
    const float eps = (float) md->eps;
    for (int64_t r = 0; r < m; r++) {
        memcpy((char *) h + r * hidden * size, (const char *) md->embeddings + seq[r].token * hidden * size,
               (size_t) (hidden * size));
    }
    decode_token *tokens = malloc((size_t) m * sizeof *tokens);
    if (!tokens) {
        free(scratch);
        return MS_CPU_ENOMEM;
    }
    int rc = MS_CPU_OK;
    for (int64_t l = 0; l < md->layers && rc == MS_CPU_OK; l++) {
        const ms_cpu_layer *w = &md->layer[l];
        rc |= ms_cpu_rms_norm(dtype, h, m, hidden, w->attention_norm, eps, x);
        rc |= ms_cpu_linear(dtype, x, m, hidden, w->wqkv, qkv_rows, wide);
        for (int64_t r = 0; r < m; r++) {
            const ms_cpu_sequence *s = &seq[r];
            tokens[r] = (decode_token) {(char *) wide + r * qkv_rows * size, s->cos, s->sin, s->k_cache[l],
                                        s->v_cache[l], s->capacity, s->past, (char *) a + r * attended * size};
        }
        if (rc == MS_CPU_OK) {
            rc |= attention_decode_tokens(dtype, md->kv_heads, group, d, tokens, m);
        }
        rc |= ms_cpu_linear(dtype, a, m, attended, w->wo, hidden, t);
        add_into(dtype, h, t, m * hidden);
        rc |= ms_cpu_rms_norm(dtype, h, m, hidden, w->ffn_norm, eps, x);
        rc |= ms_cpu_gated_linear(dtype, x, m, hidden, w->w1, w->w3, md->intermediate, wide);
        rc |= ms_cpu_linear(dtype, wide, m, md->intermediate, w->w2, hidden, t);
        add_into(dtype, h, t, m * hidden);
    }
    if (rc == MS_CPU_OK) {
        rc |= ms_cpu_rms_norm(dtype, h, m, hidden, md->final_norm, eps, x);
        rc |= ms_cpu_linear(dtype, x, m, hidden, md->head, md->vocab, dtype == MS_BF16 ? wide : (void *) logits);
        if (dtype == MS_BF16) {
            const uint16_t *y = wide;
            for (int64_t i = 0; i < m * md->vocab; i++) {
                logits[i] = bf16_to_f32(y[i]);
            }
        }
    }
    free(tokens);
    free(scratch);
    return rc == MS_CPU_OK ? MS_CPU_OK : MS_CPU_EINVAL;
}
