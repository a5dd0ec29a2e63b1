/*
 * qlm_gguf.h — the GGUF reader of libqlmformat: llama.cpp's model files,
 * read so that qlm-convert can import them and qlm-inspect can show them.
 * It knows bytes (keys, value types, tensor infos, ggml block types) and
 * nothing about what a model's keys mean (convert/gguf_import.h does).
 *
 * THE GGUF FILE (versions 2 and 3, little-endian).  A string is a u64 byte
 * length and that many bytes (no NUL).
 *
 *   u8[4]  magic "GGUF"
 *   u32    version (2 or 3; 1 had 32-bit counts and is refused)
 *   u64    n_tensors
 *   u64    n_kv
 *   n_kv x key/value:   string key, u32 value type, value
 *   n_tensors x info:   string name, u32 n_dims (0..4), u64 ne[n_dims]
 *                       (innermost dimension first: a matrix of rows x cols
 *                       is {cols, rows}), u32 ggml type, u64 offset (from the
 *                       data section's start)
 *   zero padding to a multiple of the alignment (key general.alignment, a
 *   u32 power of two; 32 when absent)
 *   data section: the tensors in info order, each at its offset and padded
 *   to the alignment (so offset == the sum of the padded sizes before it).
 *
 * Value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (one
 * byte, 0 or 1), 8 string, 9 array (u32 element type, u64 count, the
 * elements; arrays of arrays are refused), 10 u64, 11 i64, 12 f64.
 *
 * Tensor bytes: ne[0] / block elements x block bytes x ne[1] x ne[2] x
 * ne[3] (ne[0] a multiple of the block).  The block types qlm imports:
 *   F32 (0), F16 (1), BF16 (30)   one element per block
 *   Q8_0 (8)   32 elements in 34 bytes: f16 d, int8 q[32];   x = d * q
 *   Q4_0 (2)   32 elements in 18 bytes: f16 d, u8 qs[16]; element j < 16 is
 *              the low nibble n of qs[j], element j + 16 the high nibble;
 *              x = d * (n - 8)
 * The other ggml types are known by name, block and size (so every tensor
 * of any GGUF is bounds-checked and shown) but not decoded.
 *
 * Everything is checked at open, before it is used: every length, count and
 * offset against the file size with overflow-checked arithmetic, at most
 * 2^20 keys and 2^20 tensors, keys printable ASCII of 1..65535 bytes and
 * unique, tensor names of 1..63 bytes without control bytes and unique, bool
 * values 0 or 1, known value and ggml types, n_dims <= 4, element and byte
 * counts below 2^63, ne[0] a multiple of its type's block, the alignment,
 * and tensor offsets that tile the data section in order (no overlaps, no
 * holes beyond the padding, nothing past the end of the file, no trailing
 * bytes after the last tensor's padding).
 */
#ifndef QLM_GGUF_H
#define QLM_GGUF_H

#include "qlm_format.h"

#define QLM_GGUF_MAGIC "GGUF"
#define QLM_GGUF_MAX_DIMS 4
#define QLM_GGUF_MAX_NAME 63         /* tensor name bytes (ggml's GGML_MAX_NAME - 1) */
#define QLM_GGUF_DEFAULT_ALIGN 32

enum qlm_gguf_vtype {
    QLM_GGUF_U8 = 0, QLM_GGUF_I8 = 1, QLM_GGUF_U16 = 2, QLM_GGUF_I16 = 3,
    QLM_GGUF_U32 = 4, QLM_GGUF_I32 = 5, QLM_GGUF_F32 = 6, QLM_GGUF_BOOL = 7,
    QLM_GGUF_STRING = 8, QLM_GGUF_ARRAY = 9, QLM_GGUF_U64 = 10, QLM_GGUF_I64 = 11,
    QLM_GGUF_F64 = 12, QLM_GGUF_VTYPE_COUNT
};

/* The ggml tensor types qlm-convert reads (ids as in ggml.h). */
enum qlm_ggml_type {
    QLM_GGML_F32 = 0, QLM_GGML_F16 = 1, QLM_GGML_Q4_0 = 2, QLM_GGML_Q8_0 = 8,
    QLM_GGML_BF16 = 30
};
#define QLM_GGML_Q_BLOCK 32          /* elements per Q8_0 / Q4_0 block */
#define QLM_GGML_Q8_0_BYTES 34
#define QLM_GGML_Q4_0_BYTES 18

/* A string inside the mapping (not NUL-terminated; may hold any bytes). */
struct qlm_gguf_str {
    const char *ptr;
    uint64_t len;
};

struct qlm_gguf_kv {
    const char *key;              /* NUL-terminated copy */
    enum qlm_gguf_vtype type;     /* QLM_GGUF_ARRAY for arrays */
    enum qlm_gguf_vtype elem;     /* arrays: the element type; else == type */
    uint64_t n;                   /* arrays: element count; scalars 1 */
    const uint8_t *data;          /* the (first) value inside the mapping */
    const struct qlm_gguf_str *strs; /* string values: n strings; else NULL */
};

struct qlm_gguf_tensor {
    const char *name;             /* NUL-terminated copy */
    uint32_t type;                /* ggml type id (a known one) */
    uint32_t n_dims;              /* 0..4 */
    uint64_t ne[QLM_GGUF_MAX_DIMS]; /* innermost first; unused = 1 */
    uint64_t numel;
    uint64_t offset;              /* from data_offset */
    uint64_t size;                /* bytes */
    const void *data;             /* inside the mapping */
};

struct qlm_gguf {
    const char *path;
    const uint8_t *map;           /* read-only mmap of the whole file */
    uint64_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;         /* start of the data section */
    uint64_t n_kv;
    struct qlm_gguf_kv *kv;       /* file order */
    uint64_t n_tensors;
    struct qlm_gguf_tensor *tensors; /* file order */
    void *priv_;
};

/* Whether path names a GGUF file: it ends in ".gguf" (qlm_gguf_named), or
 * the file starts with the magic (false when it cannot be read, or is a
 * directory). */
bool qlm_gguf_named(const char *path);
bool qlm_gguf_probe(const char *path);

/* mmap + validate (the list at the top of this file).  Messages name the
 * file: "m.gguf: tensor 'blk.0.attn_q.weight' ends at 9000, past the end of
 * the file (8192 bytes)". */
enum qlm_err qlm_gguf_open(struct qlm_gguf **g, const char *path, struct qlm_error *err);
void qlm_gguf_close(struct qlm_gguf *g);

const struct qlm_gguf_kv *qlm_gguf_find(const struct qlm_gguf *g, const char *key);
const struct qlm_gguf_tensor *qlm_gguf_tensor(const struct qlm_gguf *g, const char *name);

/* Typed reads of a key, each failing with a message naming the file and the
 * key: QLM_E_NOTFOUND when absent (callers with a default test for it),
 * QLM_E_FORMAT for another type or a value out of [0, max].
 * uint: any integer type; real: f32 or f64 (an f32 as the shortest decimal
 * that reads back as the same f32, so 1e-6f gives 1e-06, not
 * 9.99999997e-07); str: a string without NUL bytes, NUL-terminated copy in
 * *out (malloc'ed). */
enum qlm_err qlm_gguf_get_uint(const struct qlm_gguf *g, const char *key, uint64_t max,
                               uint64_t *out, struct qlm_error *err);
enum qlm_err qlm_gguf_get_real(const struct qlm_gguf *g, const char *key, double *out,
                               struct qlm_error *err);
enum qlm_err qlm_gguf_get_bool(const struct qlm_gguf *g, const char *key, bool *out,
                               struct qlm_error *err);
enum qlm_err qlm_gguf_get_str(const struct qlm_gguf *g, const char *key, char **out,
                              struct qlm_error *err);
/* An array key whose elements are of type elem (for elem QLM_GGUF_U32, any
 * integer type; QLM_GGUF_F32, f32 or f64). */
enum qlm_err qlm_gguf_get_array(const struct qlm_gguf *g, const char *key,
                                enum qlm_gguf_vtype elem, const struct qlm_gguf_kv **out,
                                struct qlm_error *err);
/* Element i of an integer array (any integer type), or of a scalar (i 0). */
int64_t qlm_gguf_int_at(const struct qlm_gguf_kv *kv, uint64_t i);
/* Element i of a float array (f32 or f64), or a float scalar. */
double qlm_gguf_real_at(const struct qlm_gguf_kv *kv, uint64_t i);

/* Names: "u32", "string", ... ("?" if unknown); "Q8_0", "BF16", ... (NULL
 * for an id ggml does not define). */
const char *qlm_gguf_vtype_name(enum qlm_gguf_vtype t);
const char *qlm_ggml_type_name(uint32_t type);
/* Elements per block and bytes per block of a known ggml type (0 if not). */
unsigned qlm_ggml_block_elems(uint32_t type);
unsigned qlm_ggml_block_bytes(uint32_t type);

/* Decode n (a multiple of 32) elements of Q8_0 or Q4_0 blocks to floats. */
void qlm_ggml_q8_0_to_f32(const void *blocks, uint64_t n, float *out);
void qlm_ggml_q4_0_to_f32(const void *blocks, uint64_t n, float *out);

/* The GGUF's tensors as a checkpoint (struct qlm_st_model), so the
 * converter reads either source the same way: tensor i under names[i]
 * (n_tensors names; the converter maps GGUF names to Hugging Face ones),
 * dims outermost first, F32/F16/BF16/Q8_0/Q4_0 as QLM_ST_F32 ... QLM_ST_Q4_0
 * and any other type as QLM_ST_OTHER named by ggml's name.  The view points
 * into g's mapping: close it (qlm_st_close) before g.  Duplicate names are
 * refused. */
enum qlm_err qlm_gguf_st_view(const struct qlm_gguf *g, const char *const *names,
                              struct qlm_st_model **m, struct qlm_error *err);

#endif
