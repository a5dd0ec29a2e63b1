/*
 * qlm_format.h — the .qlm file format, the safetensors reader, dtype conversion
 * and the reference quantization codecs.  This is the whole public surface of
 * libqlmformat; it knows bytes on disk and nothing about transformers.
 *
 * THE .qlm FILE (format version 2.0).  All integers little-endian.
 *
 *   offset  size  field
 *   0       8     magic "\x89QLM\r\n\x1a\n"  (PNG-style: catches text-mode
 *                 transfers and truncation at the first bytes)
 *   8       4     u32 version_major (2)  — a reader refuses any other major
 *   12      4     u32 version_minor (0)  — minor bumps stay readable
 *   16      8     u64 file_size          — exact size of the file
 *   24      8     u64 meta_offset        — metadata section (typed key/values)
 *   32      8     u64 meta_size
 *   40      8     u64 tok_offset         — tokenizer section, zlib stream
 *   48      8     u64 tok_size           —   compressed bytes
 *   56      8     u64 tok_raw_size       —   bytes after inflate
 *   64      8     u64 dir_offset         — tensor directory
 *   72      8     u64 dir_size
 *   80      4     u32 n_tensors
 *   84      4     u32 data_alignment     — every tensor offset is a multiple (>= 64)
 *   88      8     u64 data_offset        — page-aligned (QLM_PAGE_ALIGN)
 *   96      8     u64 data_size          — data_offset + data_size == file_size
 *   104     8     u64 XXH3-64 of the metadata section
 *   112     8     u64 XXH3-64 of the tokenizer section (compressed bytes)
 *   120     8     u64 XXH3-64 of the directory section
 *   128     120   reserved, zero
 *   248     8     u64 XXH3-64 of bytes [0, 248) of this header
 *   256           sections follow in the order metadata, tokenizer, directory,
 *                 then zero padding up to data_offset.
 *
 * METADATA: u32 count, then count entries:
 *   u16 key_len, key bytes (UTF-8, no NUL, unique), u8 type, value:
 *   QLM_META_U64: u64;  QLM_META_I64: i64;  QLM_META_F64: f64 (IEEE-754);
 *   QLM_META_STR: u32 len + bytes (no NUL).
 *
 * TOKENIZER (after inflate), "QTOK" blob, see struct qlm_tokdata:
 *   char[4] "QTOK", u32 version (1), u32 n_tokens, u32 n_merges, u32 flags,
 *   i32 bos_id (-1: none), i32 pad_id (-1: none), u32 n_eos, u32 eos[n_eos],
 *   u32 len + regex bytes, u32 len + chat template bytes,
 *   n_tokens x { u8 kind (QLM_TOK_*), u32 len, raw bytes of the token },
 *   n_merges x { u32 left_id, u32 right_id, u32 result_id } in rank order.
 *   Tokens are raw bytes (the byte-level "Ġ" alphabet already undone).
 *
 * DIRECTORY: n_tensors fixed 80-byte entries, then a string table that is
 * the names back to back in entry order (entry i's name_offset is where entry
 * i-1's name ends; the last one ends the section; no other bytes):
 *   0   u32 name_offset (into the string table)   4  u16 name_len
 *   6   u8 dtype (enum qlm_dtype)                  7  u8 n_dims (1..4)
 *   8   u64 dims[4] (row-major, outermost first, unused = 0; a matrix is
 *       {rows = out_features, cols = in_features} as in safetensors)
 *   40  u32 group_size (q8/q4: elements per scale along cols; else 0)
 *   44  u32 layout (0: plain, float types; 8 = QLM_QBLOCK_ROWS: q8/q4 rows
 *       interleaved in blocks of 8, below; any other value is refused)
 *   48  u64 offset (from data_offset; multiple of data_alignment)
 *   56  u64 size (bytes)                           64 u64 XXH3-64 of the bytes
 *   72  u64 reserved, zero
 *   Names are unique; tensors do not overlap and lie inside the data section.
 *
 * TENSOR DATA.  f32/f16/bf16: row-major elements.  Quantized matrices
 * (rows x cols, group % 32 == 0, cols % group == 0) are stored for the
 * kernels, not for readability: rows go in blocks of QLM_QBLOCK_ROWS = 8
 * (the last block padded with zero rows: scale 0, quants 0), and each block
 * is cols/group consecutive tiles, one per group in column order.  A tile
 * holds that group of the block's 8 rows:
 *   8 f16 scales, row 0 of the block first                 (16 bytes)
 *   then for each 32-element chunk of the group, in order:
 *     the chunk of row 0, of row 1, ... of row 7   (q8: 8 x 32, q4: 8 x 16 bytes)
 * so tile bytes = 16 + 8 * group (q8) or 16 + 4 * group (q4), and a tensor is
 * ceil(rows / 8) * (cols / group) tiles.  Decoding a token reads each matrix
 * once, front to back, as one stream; scales sit next to the quants they
 * scale.  (Format 1.x kept row-major quants and a separate scales array:
 * eight interleaved row streams ran at under half the DRAM bandwidth.)
 * q8: int8 q in [-127, 127], w = d * q, d = max|w| / 127 over the group.
 * q4: w = d * (n - 8), n in [0,15] stored as nibbles, d = max|w| / 7 (the
 *   value of largest magnitude maps to +-7, others clamp to [-8, 7]); within
 *   each 32-element chunk, byte j holds element j in its low nibble and
 *   element j + 16 in its high nibble, so one AND and one shift unpack 32
 *   weights in SIMD.
 */
#ifndef QLM_FORMAT_H
#define QLM_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* QLM_API marks what libqlm exports: everything declared in the installed
 * headers (this one and qlm.h).  libqlm is built with -fvisibility=hidden,
 * so its internal functions stay inside the library. */
#if defined(__GNUC__)
#define QLM_API __attribute__((visibility("default")))
#else
#define QLM_API
#endif

#define QLM_MAGIC "\x89QLM\r\n\x1a\n"
#define QLM_MAGIC_LEN 8
#define QLM_VERSION_MAJOR 2
#define QLM_VERSION_MINOR 0
#define QLM_HEADER_SIZE 256
#define QLM_DIR_ENTRY_SIZE 80
#define QLM_DATA_ALIGN 64
#define QLM_PAGE_ALIGN 16384 /* covers 4 KiB and Apple Silicon's 16 KiB pages */
#define QLM_MAX_DIMS 4
#define QLM_QBLOCK_ROWS 8    /* rows per interleaved block of a q8/q4 tensor */
#define QLM_ERR_LEN 512

/* ---- errors ---------------------------------------------------------- */

enum qlm_err {
    QLM_OK = 0,
    QLM_E_IO,        /* open/read/write/mmap failed (errno in message) */
    QLM_E_NOMEM,
    QLM_E_FORMAT,    /* malformed input: the message says what */
    QLM_E_VERSION,   /* newer major version */
    QLM_E_CHECKSUM,  /* XXH3 mismatch */
    QLM_E_RANGE,     /* offset/length/shape out of range or overflowing */
    QLM_E_NOTFOUND,  /* missing file/tensor/key */
    QLM_E_INVALID,   /* bad argument from the caller */
    QLM_E_NONFINITE, /* NaN/Inf in a tensor */
};

/* Errors carry a code and a one-line message naming the file and the
 * problem, e.g. "model.safetensors: tensor 'x' data_offsets [8, 4] reversed". */
struct qlm_error {
    enum qlm_err code;
    char msg[QLM_ERR_LEN];
};

QLM_API const char *qlm_strerror(enum qlm_err code);
/* Sets err (if non-NULL) and returns code; printf-style message. */
QLM_API enum qlm_err qlm_error_set(struct qlm_error *err, enum qlm_err code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Forward an error: QLM_TRY(expr) returns the error code of expr if non-zero. */
#define QLM_TRY(expr)                                                          \
    do {                                                                       \
        enum qlm_err qlm_try_rc_ = (expr);                                     \
        if (qlm_try_rc_ != QLM_OK)                                             \
            return qlm_try_rc_;                                                \
    } while (0)

/* ---- input files ------------------------------------------------------- */

/* Open a model or checkpoint file read-only (every reader of a .qlm,
 * safetensors, index, config or tokenizer file goes through here): only a
 * regular file is accepted, and the check is made without blocking, so a
 * FIFO, a device or a directory is refused at once ("PATH: is a FIFO, not a
 * regular file") instead of hanging in open.  *fd is blocking again and
 * close-on-exec; *size is its size at open.  A missing file is
 * QLM_E_NOTFOUND ("PATH: No such file or directory"). */
enum qlm_err qlm_input_open(const char *path, int *fd, uint64_t *size, struct qlm_error *err);
/* Read a whole regular file (opened as above) of at most max bytes into a
 * malloc'ed buffer, NUL-terminated after its *len bytes.  A file larger than
 * max, at open or by growing while read, is refused (QLM_E_RANGE). */
enum qlm_err qlm_input_read(const char *path, size_t max, char **buf, size_t *len,
                            struct qlm_error *err);

/* ---- UTF-8 ------------------------------------------------------------- */

/* Length of the longest valid UTF-8 prefix of s (== len iff s is valid;
 * strict: no overlongs, surrogates or code points past U+10FFFF). */
size_t qlm_utf8_valid_prefix(const uint8_t *s, size_t len);
/* Whether c can start a multi-byte character: then *need continuation bytes
 * follow and the first of them lies in [*lo, *hi] (the rest in 80..BF). */
bool qlm_utf8_lead(uint8_t c, int *need, uint8_t *lo, uint8_t *hi);

/* ---- dtypes and conversion -------------------------------------------- */

enum qlm_dtype {
    QLM_F32 = 0,
    QLM_F16 = 1,
    QLM_BF16 = 2,
    QLM_Q8 = 3,
    QLM_Q4 = 4,
    QLM_DTYPE_COUNT
};

/* ---- weight-type traits ------------------------------------------------ */
/* Everything the format, the converter and the loader need to know about a
 * dtype, in one table indexed by enum qlm_dtype (formats/traits.c), so that
 * no code outside the codecs switches on the type.  A tensor of rows x cols
 * is stored as ceil(rows / block_rows) blocks of block_bytes(cols, group)
 * bytes each: float types row by row (block_rows 1), q8/q4 in the 8-row
 * interleaved tiles described above. */
struct qlm_type_traits {
    const char *name;           /* "f32", "q8", ... as in --type and quant.type */
    unsigned code_bits;         /* bits of one element's code: 32, 16, 8, 4 */
    unsigned block_rows;        /* rows stored together: 1, or QLM_QBLOCK_ROWS */
    unsigned group_multiple;    /* quantized: group % this == 0; 0: no groups */
    float qmax;                 /* quantized: largest code magnitude (127, 7); else 0 */
    float max_abs;              /* largest finite magnitude the type represents */
    /* Bytes of one block of cols columns; UINT64_MAX when that overflows or
     * the group does not fit (group % group_multiple, cols % group). */
    uint64_t (*block_bytes)(uint64_t cols, uint32_t group);
    /* Encode nr (1..block_rows) rows of cols finite floats, row-major, into
     * one block (rows past nr are zero: scale 0, codes 0).  importance is
     * NULL or cols values >= 0, one per input column (the mean x^2 of the
     * inputs that column multiplies, from an .imat file): an encoder that
     * searches its scales may weight column c's squared error by it.
     * Today's codecs (float rows, q8/q4 max-abs scales) ignore it. */
    void (*encode)(const float *x, unsigned nr, uint64_t cols, uint32_t group,
                   const float *importance, void *block);
    /* Row i (< block_rows) of a block back to cols floats. */
    void (*decode_row)(const void *block, unsigned i, uint64_t cols, uint32_t group, float *y);
    /* Whether every code of a block is one the format allows (q8: no -128,
     * which the kernels could not negate); NULL when every byte is. */
    bool (*check)(const void *block, uint64_t cols, uint32_t group);
    /* Quantized types whose group of 32 is a ggml block (q8: Q8_0, q4:
     * Q4_0; qlm_gguf.h): nr rows, row i given as cols / 32 such blocks at
     * rows[i] (finite f16 scales), into one block at group 32, the scales
     * and codes kept as they are.  A source block holding a code the type
     * does not allow (q8: -128) is decoded and quantized again; returns how
     * many were.  NULL for the other types. */
    uint64_t (*repack32)(const void *const *rows, unsigned nr, uint64_t cols, void *block);
    int repack_src;             /* the enum qlm_st_dtype repack32 reads, or -1 */
};

/* The traits of t; NULL for a value outside enum qlm_dtype. */
QLM_API const struct qlm_type_traits *qlm_type_traits(enum qlm_dtype t);
QLM_API const char *qlm_dtype_name(enum qlm_dtype t);       /* "f32", "q8", ...; "?" if unknown */
QLM_API int qlm_dtype_from_name(const char *name);          /* -1 if unknown */
QLM_API bool qlm_dtype_is_quant(enum qlm_dtype t);          /* has per-group scales */
/* Bits per weight of a rows x cols tensor of type t stored at this group,
 * scales included (q8 g32: 8.5); 0 when the shape does not fit. */
QLM_API double qlm_dtype_bits(enum qlm_dtype t, uint64_t cols, uint32_t group);
/* Bytes of a rows x cols tensor of type t (whole blocks); false on overflow
 * or, for quantized types, unless group % 32 == 0 and cols % group == 0. */
QLM_API bool qlm_tensor_bytes(enum qlm_dtype t, uint64_t rows, uint64_t cols, uint32_t group,
                      uint64_t *out);
/* Bytes of one q8/q4 tile (8 rows x one group) and of one 8-row block
 * (UINT64_MAX when that overflows or group is 0). */
QLM_API uint64_t qlm_quant_tile_bytes(enum qlm_dtype t, uint32_t group);
QLM_API uint64_t qlm_quant_block_bytes(enum qlm_dtype t, uint64_t cols, uint32_t group);
/* The dir entry's layout value for a tensor of type t (its block_rows when
 * it is blocked, else 0). */
QLM_API uint32_t qlm_dtype_layout(enum qlm_dtype t);

/* The q8/q4 tile geometry as constants, for kernels that address it:
 * bytes of a tile of `group` elements of `bits`-bit codes, of one 32-element
 * chunk of one row, and the offset of row i's chunk c inside a tile. */
#define QLM_TILE_SCALE_BYTES (2 * QLM_QBLOCK_ROWS) /* the 8 rows' f16 scales */
#define QLM_TILE_BYTES(bits, group) (QLM_TILE_SCALE_BYTES + (bits) * QLM_QBLOCK_ROWS / 8 * (group))
#define QLM_CHUNK_BYTES(bits) (32 * (bits) / 8)
#define QLM_CHUNK_OFFSET(bits, c, i)                                                         \
    (QLM_TILE_SCALE_BYTES + ((c) * QLM_QBLOCK_ROWS + (i)) * QLM_CHUNK_BYTES(bits))
#ifndef __cplusplus
_Static_assert(QLM_TILE_BYTES(8, 32) == 272, "q8 g32 tile: 16 scale bytes + 8 x 32 quants");
_Static_assert(QLM_TILE_BYTES(4, 32) == 144, "q4 g32 tile: 16 scale bytes + 8 x 16 bytes");
_Static_assert(QLM_CHUNK_OFFSET(4, 1, 7) == 16 + 15 * 16, "q4: chunk 1 of row 7");
#endif

QLM_API float qlm_bf16_to_f32(uint16_t h);
QLM_API uint16_t qlm_f32_to_bf16(float f);   /* round to nearest even; NaN stays NaN */
QLM_API float qlm_f16_to_f32(uint16_t h);
QLM_API uint16_t qlm_f32_to_f16(float f);    /* round to nearest even; overflow -> inf */
QLM_API void qlm_bf16_to_f32_row(const uint16_t *src, float *dst, size_t n);
QLM_API void qlm_f16_to_f32_row(const uint16_t *src, float *dst, size_t n);

/* ---- reference quantization codecs (the oracle for every kernel) ------ */

/* Quantize one row of n (n % group == 0) floats.  q8: q[n] int8, d[n/group]
 * f16 scales.  q4: q[n/2] packed nibbles (layout above).  A zero group gets
 * scale 0 and zero quants, never NaN.  Inputs must be finite. */
QLM_API void qlm_quantize_row_q8(const float *x, size_t n, uint32_t group, int8_t *q, uint16_t *d);
QLM_API void qlm_quantize_row_q4(const float *x, size_t n, uint32_t group, uint8_t *q, uint16_t *d);
QLM_API void qlm_dequantize_row_q8(const int8_t *q, const uint16_t *d, size_t n, uint32_t group, float *y);
QLM_API void qlm_dequantize_row_q4(const uint8_t *q, const uint16_t *d, size_t n, uint32_t group, float *y);
/* Interleave nr (1..8) rows of a block, given row-major as the codecs above
 * write them (q: nr rows of cols or cols/2 bytes, d: nr rows of cols/group
 * scales), into one block of qlm_quant_block_bytes (missing rows zero). */
QLM_API void qlm_quant_pack_block(enum qlm_dtype t, uint64_t cols, uint32_t group, const void *q,
                          const uint16_t *d, unsigned nr, void *block);
/* Row i (0..7) of a block back to the codecs' row-major quants and scales. */
QLM_API void qlm_quant_unpack_row(enum qlm_dtype t, uint64_t cols, uint32_t group, const void *block,
                          unsigned i, void *q, uint16_t *d);
/* Row r of any tensor (f32/f16/bf16/q8/q4) to floats; cols elements. */
QLM_API void qlm_dequantize_row(enum qlm_dtype t, const void *tensor_data, uint64_t rows, uint64_t cols,
                        uint32_t group, uint64_t r, float *y);

/* ---- typed metadata ----------------------------------------------------- */

enum qlm_meta_type { QLM_META_U64 = 1, QLM_META_I64 = 2, QLM_META_F64 = 3, QLM_META_STR = 4 };

struct qlm_meta_entry {
    const char *key;          /* NUL-terminated copy */
    enum qlm_meta_type type;
    union {
        uint64_t u64;
        int64_t i64;
        double f64;
        struct { const char *ptr; uint32_t len; } str; /* also NUL-terminated */
    } v;
};

/* ---- tokenizer data ---------------------------------------------------- */

enum qlm_tok_kind { QLM_TOK_NORMAL = 0, QLM_TOK_ADDED = 1, QLM_TOK_SPECIAL = 2 };
#define QLM_TOKF_NFC 1u          /* normalize input with NFC */
#define QLM_TOKF_ADD_BOS 2u      /* prepend bos_id */
#define QLM_TOKF_BYTE_LEVEL 4u   /* byte-level BPE (every byte is a token) */

struct qlm_token {
    const uint8_t *bytes; /* raw bytes (not NUL-terminated) */
    uint32_t len;
    uint8_t kind;         /* enum qlm_tok_kind */
};

struct qlm_merge { uint32_t left, right, result; };

struct qlm_tokdata {
    uint32_t n_tokens, n_merges, flags, n_eos;
    int32_t bos_id, pad_id;
    uint32_t *eos;
    char *regex;          /* NUL-terminated pre-split pattern */
    char *chat_template;  /* NUL-terminated, "" if none */
    struct qlm_token *tokens;
    struct qlm_merge *merges;
    void *storage_;       /* owned buffer the pointers point into */
};

/* Serialize to a malloc'ed "QTOK" blob. */
QLM_API enum qlm_err qlm_tokdata_serialize(const struct qlm_tokdata *t, uint8_t **out, size_t *out_len,
                                   struct qlm_error *err);
/* Parse a "QTOK" blob (untrusted: every length and id is checked; the blob is
 * copied so it need not outlive t).  name is used in messages. */
QLM_API enum qlm_err qlm_tokdata_parse(const uint8_t *buf, size_t len, const char *name,
                               struct qlm_tokdata *t, struct qlm_error *err);
/* As qlm_tokdata_parse, but takes over buf (malloc'ed, len bytes) in every
 * case: on success it becomes t's storage (grown by realloc; the token bytes
 * and merges are used in place, not copied), on failure it is freed. */
QLM_API enum qlm_err qlm_tokdata_parse_owned(uint8_t *buf, size_t len, const char *name,
                                     struct qlm_tokdata *t, struct qlm_error *err);
QLM_API void qlm_tokdata_free(struct qlm_tokdata *t);

/* ---- .qlm writer -------------------------------------------------------- */

struct qlm_writer;

/* Creates "<path>.tmp.<pid>" next to path; nothing appears at path until
 * qlm_writer_finish succeeds.  Refuses an existing path unless overwrite. */
/* That temporary name, into buf (cap bytes, NUL-terminated, cut to fit);
 * returns its length (call with cap 0 to size buf), as snprintf does. */
QLM_API size_t qlm_writer_tmp_path(const char *path, char *buf, size_t cap);
QLM_API enum qlm_err qlm_writer_open(struct qlm_writer **w, const char *path, bool overwrite,
                             struct qlm_error *err);
QLM_API enum qlm_err qlm_writer_meta_u64(struct qlm_writer *w, const char *key, uint64_t v);
QLM_API enum qlm_err qlm_writer_meta_i64(struct qlm_writer *w, const char *key, int64_t v);
QLM_API enum qlm_err qlm_writer_meta_f64(struct qlm_writer *w, const char *key, double v);
QLM_API enum qlm_err qlm_writer_meta_str(struct qlm_writer *w, const char *key, const char *v);
/* Tokenizer blob (raw QTOK bytes; the writer compresses it). */
QLM_API enum qlm_err qlm_writer_tokenizer(struct qlm_writer *w, const uint8_t *blob, size_t len);
/* Declare every tensor (name, dtype, shape, group) before writing any data,
 * so the directory and data offsets are fixed up front and data streams out
 * tensor by tensor in declaration order. */
QLM_API enum qlm_err qlm_writer_declare(struct qlm_writer *w, const char *name, enum qlm_dtype t,
                                int n_dims, const uint64_t *dims, uint32_t group);
/* Data of the next declared tensor, exactly its byte size, in one or more
 * calls (chunks are hashed as they stream). */
QLM_API enum qlm_err qlm_writer_write(struct qlm_writer *w, const void *data, size_t len);
/* Writes header + directory, fsyncs, renames into place. */
QLM_API enum qlm_err qlm_writer_finish(struct qlm_writer *w, struct qlm_error *err);
/* Removes the temporary file; safe after any failure, and after finish. */
QLM_API void qlm_writer_abort(struct qlm_writer *w);
/* Error of the last failing writer call (message names the output file). */
QLM_API const struct qlm_error *qlm_writer_error(const struct qlm_writer *w);

/* ---- .qlm reader -------------------------------------------------------- */

struct qlm_tensor_info {
    const char *name;
    enum qlm_dtype dtype;
    int n_dims;
    uint64_t dims[QLM_MAX_DIMS];
    uint32_t group;
    uint32_t layout;
    uint64_t offset, size, xxh3;
    const void *data;     /* inside the mapping, aligned to data_alignment */
};

struct qlm_file {
    const char *path;
    const uint8_t *map;   /* read-only mmap of the whole file */
    uint64_t size;
    uint32_t version_major, version_minor;
    uint64_t data_offset;            /* start of the data section (page-aligned) */
    uint32_t n_meta;
    struct qlm_meta_entry *meta;
    uint32_t n_tensors;
    struct qlm_tensor_info *tensors; /* sorted by name for bsearch */
    const uint8_t *tok_zdata;        /* compressed tokenizer section */
    uint64_t tok_size, tok_raw_size;
    void *priv_;
};

/* mmap + validate: header checksum, section bounds, metadata and directory
 * checksums, every tensor offset/size inside the data section, aligned, no
 * overlap, size consistent with dtype x shape.  Does not hash tensor data
 * (qlm_file_verify does).  Everything is checked before it is used. */
QLM_API enum qlm_err qlm_file_open(struct qlm_file **f, const char *path, struct qlm_error *err);
QLM_API void qlm_file_close(struct qlm_file *f);
/* Recompute every tensor's XXH3 and check its codes (qlm_type_traits'
 * check: a q8 code of -128 is refused); error names the first bad tensor.
 * progress (may be NULL) is called with bytes done / total. */
QLM_API enum qlm_err qlm_file_verify(const struct qlm_file *f,
                             void (*progress)(uint64_t done, uint64_t total, void *ctx),
                             void *ctx, struct qlm_error *err);
QLM_API const struct qlm_tensor_info *qlm_file_tensor(const struct qlm_file *f, const char *name);
QLM_API const struct qlm_meta_entry *qlm_file_meta(const struct qlm_file *f, const char *key);
/* Typed lookups: QLM_E_NOTFOUND if missing, QLM_E_FORMAT if wrong type. */
QLM_API enum qlm_err qlm_file_meta_u64(const struct qlm_file *f, const char *key, uint64_t *v,
                               struct qlm_error *err);
QLM_API enum qlm_err qlm_file_meta_f64(const struct qlm_file *f, const char *key, double *v,
                               struct qlm_error *err);
QLM_API enum qlm_err qlm_file_meta_str(const struct qlm_file *f, const char *key, const char **v,
                               struct qlm_error *err);
/* Inflate and parse the tokenizer section. */
QLM_API enum qlm_err qlm_file_tokdata(const struct qlm_file *f, struct qlm_tokdata *t,
                              struct qlm_error *err);

/* ---- safetensors reader ------------------------------------------------ */

/* Source element types.  Q8_0 and Q4_0 (ggml's blocks of 32, see
 * qlm_gguf.h) come only from a GGUF's checkpoint view (qlm_gguf_st_view). */
enum qlm_st_dtype { QLM_ST_F32, QLM_ST_F16, QLM_ST_BF16, QLM_ST_Q8_0, QLM_ST_Q4_0, QLM_ST_OTHER };

struct qlm_st_tensor {
    char *name;
    enum qlm_st_dtype dtype;
    char dtype_name[16];  /* as written, e.g. "BF16", "I64" */
    int n_dims;
    uint64_t dims[8];
    uint64_t numel;
    uint64_t size;        /* bytes */
    const void *data;     /* inside the shard's mapping */
    int shard;            /* index into the shard list */
};

struct qlm_st_model {
    int n_shards;
    char **shard_paths;
    size_t n_tensors;
    struct qlm_st_tensor *tensors; /* sorted by name */
    void *priv_;
};

/* Open a model directory or a single .safetensors file: "model.safetensors",
 * or "model.safetensors.index.json" and its shards.  Validates as strictly as
 * the reference implementation (header length bound 100 MB, JSON object,
 * offsets contiguous with no holes or overlaps, end - begin == numel x size,
 * data end == file end, no duplicate names across shards, overflow-checked). */
QLM_API enum qlm_err qlm_st_open(struct qlm_st_model **m, const char *path, struct qlm_error *err);
QLM_API void qlm_st_close(struct qlm_st_model *m); /* also a GGUF's view (qlm_gguf_st_view) */
QLM_API const struct qlm_st_tensor *qlm_st_find(const struct qlm_st_model *m, const char *name);
/* Convert elements [start, start+n) of a tensor to f32 (Q8_0/Q4_0: start
 * and n multiples of 32, whole blocks). */
QLM_API void qlm_st_to_f32(const struct qlm_st_tensor *t, uint64_t start, uint64_t n, float *out);
/* Tell the OS we are done with a tensor's pages (keeps convert's RSS flat). */
QLM_API void qlm_st_release(const struct qlm_st_model *m, const struct qlm_st_tensor *t);

#endif
