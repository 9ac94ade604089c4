// Decode attention over the new tokens of many sequences in one call (attention.c), for the
// decode step (decode.c); ms_cpu_attention_decode is its one-sequence form.
#ifndef MONOSTREAM_CPU_ATTENTION_H
#define MONOSTREAM_CPU_ATTENTION_H

#include <stdint.h>

/** One sequence's new token, laid out as ms_cpu_attention_decode's arguments (monostream_cpu.h). */
typedef struct {
    const void *qkv;
    const void *cos, *sin;
    void *k_cache, *v_cache;
    int64_t capacity, past;
    void *out;
} decode_token;

/**
 * ms_cpu_attention_decode for each of count tokens (arguments already checked), the threads
 * sharing every (token, query head) pair; MS_CPU_OK.
 */
int attention_decode_tokens(int dtype, int64_t kv_heads, int64_t group, int64_t d, const decode_token *tokens,
                            int64_t count);

#endif
