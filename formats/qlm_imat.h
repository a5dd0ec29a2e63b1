/*
 * qlm_imat.h — the .imat file: per-input-column activation statistics of a
 * model's linear weights (qlm-imatrix writes it, qlm-convert --imatrix reads
 * it to weight each column's quantization error).  Part of libqlmformat, and
 * installed with libqlm, which exports it (QLM_API); it knows bytes, not
 * transformers.  man/qlm-imat.5 documents the same layout.
 *
 * THE .imat FILE (format version 1.0).  All integers little-endian.
 *
 *   offset  size  field
 *   0       8     magic "\x89QIM\r\n\x1a\n"
 *   8       4     u32 version_major (1)  — a reader refuses any other major
 *   12      4     u32 version_minor (0)  — minor bumps stay readable
 *   16      8     u64 file_size          — exact size of the file
 *   24      16    architecture, ASCII, NUL-padded ("qwen3"; at least one NUL)
 *   40      4     u32 n_layers           \
 *   44      4     u32 hidden              |
 *   48      4     u32 ffn_hidden          |  the model the statistics were
 *   52      4     u32 n_heads             |  computed from (all >= 1): a
 *   56      4     u32 n_kv_heads          |  reader compares them with the
 *   60      4     u32 head_dim            |  checkpoint it quantizes
 *   64      4     u32 vocab_size         /
 *   68      4     u32 n_entries          — 1 .. QLM_IMAT_MAX_ENTRIES
 *   72      8     u64 n_tokens           — tokens evaluated (>= 1)
 *   80      4     u32 n_chunks           — chunks of text they came in
 *   84      4     u32 chunk_tokens       — tokens per chunk (--ctx)
 *   88      8     reserved, zero (readers ignore it)
 *   96            n_entries entries, back to back:
 *                   u16 name_len (1 .. 255), name (printable ASCII, 0x21..0x7e),
 *                   u32 cols (>= 1), u64 count (1 .. n_tokens: input rows seen),
 *                   f32 values[cols]: the mean over those rows of x[c]^2 for
 *                   each input column c (finite, >= 0)
 *   file_size - 8   u64 XXH3-64 of bytes [0, file_size - 8)
 *
 * Names are unique; nothing lies between the last entry and the checksum.
 * An entry is a weight matrix (rows = out, cols = in) named as in the .qlm
 * it was measured on; values[c] is how large input column c runs, so a
 * quantizer can spend its error where the inputs are small.
 */
#ifndef QLM_IMAT_H
#define QLM_IMAT_H

#include "qlm_format.h"

#define QLM_IMAT_MAGIC "\x89QIM\r\n\x1a\n"
#define QLM_IMAT_VERSION_MAJOR 1
#define QLM_IMAT_VERSION_MINOR 0
#define QLM_IMAT_HEADER_SIZE 96
#define QLM_IMAT_NAME_MAX 255
#define QLM_IMAT_MAX_ENTRIES (1u << 20)
#define QLM_IMAT_MAX_BYTES ((uint64_t)1 << 30) /* a reader refuses larger files */

/* The model the statistics describe. */
struct qlm_imat_model {
    char arch[16];               /* NUL-terminated */
    uint32_t n_layers, hidden, ffn_hidden, n_heads, n_kv_heads, head_dim, vocab_size;
};

struct qlm_imat_entry {
    const char *name;            /* NUL-terminated */
    uint32_t cols;
    uint64_t count;              /* input rows the means are over */
    const float *values;         /* (cols) mean of x^2 per input column */
};

struct qlm_imat {
    struct qlm_imat_model model;
    uint64_t n_tokens;
    uint32_t n_chunks, chunk_tokens;
    uint32_t n_entries;
    const struct qlm_imat_entry *entries; /* in file order */
    void *priv_;                 /* storage and the by-name index of a parsed file */
};

/* Parse an .imat image (untrusted: every length, count and value is checked
 * before use, the checksum first after the header fields that locate it).
 * name is used in messages ("calib.imat: entry 3 'x' has a NaN value at
 * column 7").  On success *out holds copies; free it with qlm_imat_free. */
QLM_API enum qlm_err qlm_imat_parse(const uint8_t *buf, size_t len, const char *name,
                                    struct qlm_imat **out, struct qlm_error *err);
/* Read a whole .imat file (a regular file of at most QLM_IMAT_MAX_BYTES)
 * and parse it; messages name path. */
QLM_API enum qlm_err qlm_imat_read(const char *path, struct qlm_imat **out,
                                   struct qlm_error *err);
QLM_API void qlm_imat_free(struct qlm_imat *m);
/* The entry named name, or NULL (binary search; parsed files only). */
QLM_API const struct qlm_imat_entry *qlm_imat_find(const struct qlm_imat *m, const char *name);

/* The bytes of m (a caller-built struct, priv_ unused), checked as the
 * reader checks them (a NaN value, a duplicate name, ... is QLM_E_INVALID
 * naming the entry); *out is malloc'ed.  name is used in messages. */
QLM_API enum qlm_err qlm_imat_serialize(const struct qlm_imat *m, const char *name,
                                        uint8_t **out, size_t *len, struct qlm_error *err);
/* Serialize m and write it to the .qlm writer's temporary name for path
 * (qlm_writer_tmp_path), fsync, and move it to path only when complete:
 * nothing appears at path on any failure.  Refuses an existing path unless
 * overwrite. */
QLM_API enum qlm_err qlm_imat_write(const char *path, const struct qlm_imat *m,
                                    bool overwrite, struct qlm_error *err);

#endif
