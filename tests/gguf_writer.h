/*
 * gguf_writer.h — the project's own small GGUF writer, for test fixtures
 * (the format is public: formats/qlm_gguf.h describes it), and the
 * reference quantizers of ggml's Q8_0 and Q4_0 blocks, written from their
 * public definitions as llama.cpp's quantize_row_*_ref compute them:
 *   Q8_0: d = max|x| / 127, q = round(x / d)
 *   Q4_0: m = the x of largest |x| (with its sign), d = m / -8,
 *         n = min(15, trunc(x / d + 8.5))
 * Not installed; no error paths (tests abort on misuse).
 *
 * Files are assembled in memory, so tests can damage any byte: gw_bytes
 * also reports where each key/value and tensor info starts.
 */
#ifndef QLM_TESTS_GGUF_WRITER_H
#define QLM_TESTS_GGUF_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct gw;

struct gw *gw_new(void);
void gw_free(struct gw *w);

/* Key/values, in call order.  raw: any value type with its bytes as given
 * (after the u32 type), for malformed files. */
void gw_u32(struct gw *w, const char *key, uint32_t v);
void gw_i32(struct gw *w, const char *key, int32_t v);
void gw_u64(struct gw *w, const char *key, uint64_t v);
void gw_f32(struct gw *w, const char *key, float v);
void gw_bool(struct gw *w, const char *key, bool v);
void gw_str(struct gw *w, const char *key, const char *v);
void gw_strn(struct gw *w, const char *key, const char *v, size_t len);
void gw_arr_str(struct gw *w, const char *key, size_t n, const char *const *v, const size_t *len);
void gw_arr_i32(struct gw *w, const char *key, size_t n, const int32_t *v);
void gw_raw(struct gw *w, const char *key, uint32_t type, const void *bytes, size_t len);

/* A tensor: n_dims dims innermost first, ggml type, its bytes (copied).
 * Offsets follow from the order and the alignment (general.alignment when
 * set with gw_u32 before gw_bytes, else 32). */
void gw_tensor(struct gw *w, const char *name, uint32_t type, unsigned n_dims,
               const uint64_t *ne, const void *data, size_t bytes);

/* Where the pieces of the assembled file are. */
struct gw_layout {
    size_t kv[64];            /* offset of key/value i (the first 64) */
    size_t info[64];          /* offset of tensor info i (the first 64) */
    size_t data;              /* the data section */
};

/* The whole file (malloc'ed); version 3 unless gw_version changed it. */
uint8_t *gw_bytes(struct gw *w, size_t *len, struct gw_layout *lay);
void gw_version(struct gw *w, uint32_t version);
/* gw_bytes written to path (false on an I/O error). */
bool gw_write(struct gw *w, const char *path);

/* Reference quantizers: n (a multiple of 32) floats into n / 32 blocks of
 * 34 (Q8_0) or 18 (Q4_0) bytes. */
void gw_quantize_q8_0(const float *x, size_t n, uint8_t *blocks);
void gw_quantize_q4_0(const float *x, size_t n, uint8_t *blocks);

#endif
