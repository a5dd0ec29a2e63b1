/* writer.c — the streaming .qlm writer.
 *
 * Metadata, tokenizer and the tensor declarations are kept in memory; the
 * first data byte fixes the layout (data_offset, every tensor offset), data
 * then streams to "<path>.tmp.<pid>" tensor by tensor with an XXH3 state per
 * tensor, and finish writes the sections, the directory and the header last,
 * fsyncs and renames into place.  Any failure leaves nothing at path. */
#include "qlm_format.h"
#include "fmt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

struct wmeta {
    char *key;
    enum qlm_meta_type type;
    uint64_t bits;  /* u64/i64/f64 value bits */
    char *str;
};

struct wtensor {
    char *name;
    enum qlm_dtype dtype;
    int n_dims;
    uint64_t dims[QLM_MAX_DIMS];
    uint32_t group;
    uint64_t offset, size, xxh3;
};

struct qlm_writer {
    char *path, *tmp;
    int fd;
    bool finished, started, overwrite;
    struct qlm_error err;
    struct wmeta *meta;
    size_t n_meta, cap_meta;
    uint8_t *tok_z;
    uint64_t tok_size, tok_raw_size;
    struct wtensor *t;
    size_t n_t, cap_t;
    uint64_t data_end;      /* end of the last declared tensor (from data_offset) */
    uint64_t data_offset;   /* fixed when the first data byte arrives */
    uint8_t *sections;      /* metadata + tokenizer + directory, built at start */
    uint64_t meta_size, dir_size;
    size_t cur;             /* tensor being written */
    uint64_t cur_done;      /* its bytes so far */
    XXH3_state_t *hash;
};

static enum qlm_err fail(struct qlm_writer *w, enum qlm_err code, const char *what)
{
    if (w->err.code == QLM_OK)
        qlm_error_set(&w->err, code, "%s: %s", w->path, what);
    return w->err.code;
}

static enum qlm_err fail_errno(struct qlm_writer *w, const char *what, int e)
{
    if (w->err.code == QLM_OK)
        qlm_error_set(&w->err, QLM_E_IO, "%s: %s: %s", w->path, what, strerror(e));
    return w->err.code;
}

const struct qlm_error *qlm_writer_error(const struct qlm_writer *w)
{
    return w ? &w->err : NULL;
}

size_t qlm_writer_tmp_path(const char *path, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s.tmp.%ld", path, (long)getpid());
    return n > 0 ? (size_t)n : 0;
}

enum qlm_err qlm_writer_open(struct qlm_writer **out, const char *path, bool overwrite,
                             struct qlm_error *err)
{
    *out = NULL;
    if (!path || !*path)
        return qlm_error_set(err, QLM_E_INVALID, "output path is empty");
    struct stat st;
    if (!overwrite && lstat(path, &st) == 0)
        return qlm_error_set(err, QLM_E_IO, "%s: already exists (not overwriting)", path);
    if (overwrite && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return qlm_error_set(err, QLM_E_IO, "%s: is a directory", path);
    struct qlm_writer *w = calloc(1, sizeof *w);
    size_t tl = qlm_writer_tmp_path(path, NULL, 0) + 1;
    if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(tl)) ||
        !(w->hash = XXH3_createState())) {
        if (w) {
            free(w->path);
            free(w->tmp);
            free(w);
        }
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
    }
    qlm_writer_tmp_path(path, w->tmp, tl);
    w->overwrite = overwrite;
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int e = errno;
        qlm_error_set(err, QLM_E_IO, "%s: cannot create %s: %s", path, w->tmp, strerror(e));
        XXH3_freeState(w->hash);
        free(w->path);
        free(w->tmp);
        free(w);
        return QLM_E_IO;
    }
    *out = w;
    return QLM_OK;
}

void qlm_writer_abort(struct qlm_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (!w->finished)
        unlink(w->tmp);
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].str);
    }
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->meta);
    free(w->t);
    free(w->tok_z);
    free(w->sections);
    XXH3_freeState(w->hash);
    free(w->path);
    free(w->tmp);
    free(w);
}

/* Grow an array of n elements of size sz by one slot. */
static bool grow(void *pp, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*(void **)pp, nc * sz);
    if (!p)
        return false;
    *(void **)pp = p;
    *cap = nc;
    return true;
}

static enum qlm_err add_meta(struct qlm_writer *w, const char *key, enum qlm_meta_type type,
                             uint64_t bits, const char *str)
{
    if (w->err.code)
        return w->err.code;
    if (w->started)
        return fail(w, QLM_E_INVALID, "metadata added after tensor data");
    size_t kl = key ? strlen(key) : 0;
    if (kl == 0 || kl > UINT16_MAX)
        return fail(w, QLM_E_INVALID, "metadata key empty or longer than 65535 bytes");
    if (str && strlen(str) > UINT32_MAX)
        return fail(w, QLM_E_INVALID, "metadata string too long");
    for (size_t i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta[i].key, key) == 0) {
            qlm_error_set(&w->err, QLM_E_INVALID, "%s: duplicate metadata key '%s'", w->path,
                          key);
            return QLM_E_INVALID;
        }
    if (!grow(&w->meta, &w->cap_meta, w->n_meta, sizeof *w->meta))
        return fail(w, QLM_E_NOMEM, "out of memory");
    struct wmeta *m = &w->meta[w->n_meta];
    *m = (struct wmeta){.key = strdup(key), .type = type, .bits = bits};
    if (!m->key || (str && !(m->str = strdup(str)))) {
        free(m->key);
        return fail(w, QLM_E_NOMEM, "out of memory");
    }
    w->n_meta++;
    return QLM_OK;
}

enum qlm_err qlm_writer_meta_u64(struct qlm_writer *w, const char *key, uint64_t v)
{
    return add_meta(w, key, QLM_META_U64, v, NULL);
}

enum qlm_err qlm_writer_meta_i64(struct qlm_writer *w, const char *key, int64_t v)
{
    return add_meta(w, key, QLM_META_I64, (uint64_t)v, NULL);
}

enum qlm_err qlm_writer_meta_f64(struct qlm_writer *w, const char *key, double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    return add_meta(w, key, QLM_META_F64, b, NULL);
}

enum qlm_err qlm_writer_meta_str(struct qlm_writer *w, const char *key, const char *v)
{
    return add_meta(w, key, QLM_META_STR, 0, v ? v : "");
}

enum qlm_err qlm_writer_tokenizer(struct qlm_writer *w, const uint8_t *blob, size_t len)
{
    if (w->err.code)
        return w->err.code;
    if (w->started)
        return fail(w, QLM_E_INVALID, "tokenizer added after tensor data");
    if (w->tok_z)
        return fail(w, QLM_E_INVALID, "tokenizer given twice");
    if (len > UINT32_MAX)
        return fail(w, QLM_E_INVALID, "tokenizer blob too large");
    uLongf zl = compressBound((uLong)len);
    w->tok_z = malloc(zl);
    if (!w->tok_z)
        return fail(w, QLM_E_NOMEM, "out of memory");
    if (compress2(w->tok_z, &zl, blob, (uLong)len, 9) != Z_OK)
        return fail(w, QLM_E_NOMEM, "zlib compression of the tokenizer failed");
    w->tok_size = zl;
    w->tok_raw_size = len;
    return QLM_OK;
}

enum qlm_err qlm_writer_declare(struct qlm_writer *w, const char *name, enum qlm_dtype t,
                                int n_dims, const uint64_t *dims, uint32_t group)
{
    if (w->err.code)
        return w->err.code;
    if (w->started)
        return fail(w, QLM_E_INVALID, "tensor declared after tensor data");
    size_t nl = name ? strlen(name) : 0;
    if (nl == 0 || nl > UINT16_MAX)
        return fail(w, QLM_E_INVALID, "tensor name empty or longer than 65535 bytes");
    if (w->n_t >= UINT32_MAX)
        return fail(w, QLM_E_INVALID, "too many tensors");
    if ((unsigned)t >= QLM_DTYPE_COUNT || n_dims < 1 || n_dims > QLM_MAX_DIMS) {
        qlm_error_set(&w->err, QLM_E_INVALID, "%s: tensor '%s': bad dtype or %d dims",
                      w->path, name, n_dims);
        return QLM_E_INVALID;
    }
    /* rows = product of the outer dims, cols = the innermost */
    uint64_t rows = 1, size;
    for (int i = 0; i + 1 < n_dims; i++)
        if (!qlm_fmt_mul(rows, dims[i], &rows))
            rows = UINT64_MAX, i = n_dims;
    if (!qlm_dtype_is_quant(t))
        group = 0;
    if (rows == UINT64_MAX ||
        !qlm_tensor_bytes(t, rows, dims[n_dims - 1], group, &size)) {
        qlm_error_set(&w->err, QLM_E_INVALID,
                      "%s: tensor '%s': shape overflows or does not fit %s group %u", w->path,
                      name, qlm_dtype_name(t), group);
        return QLM_E_INVALID;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) {
            qlm_error_set(&w->err, QLM_E_INVALID, "%s: duplicate tensor '%s'", w->path, name);
            return QLM_E_INVALID;
        }
    uint64_t off, end;
    if (!qlm_fmt_align(w->data_end, QLM_DATA_ALIGN, &off) || !qlm_fmt_add(off, size, &end))
        return fail(w, QLM_E_RANGE, "data section overflows");
    if (!grow(&w->t, &w->cap_t, w->n_t, sizeof *w->t))
        return fail(w, QLM_E_NOMEM, "out of memory");
    struct wtensor *e = &w->t[w->n_t];
    *e = (struct wtensor){.name = strdup(name), .dtype = t, .n_dims = n_dims, .group = group,
                          .offset = off, .size = size};
    if (!e->name)
        return fail(w, QLM_E_NOMEM, "out of memory");
    for (int i = 0; i < n_dims; i++)
        e->dims[i] = dims[i];
    w->n_t++;
    w->data_end = end;
    return QLM_OK;
}

/* pwrite all of buf at off, retrying short writes and EINTR. */
static enum qlm_err put(struct qlm_writer *w, const void *buf, uint64_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
        ssize_t r = pwrite(w->fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return fail_errno(w, "write failed", errno);
        }
        if (r == 0)
            return fail_errno(w, "write failed", ENOSPC);
        p += r;
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    return QLM_OK;
}

static enum qlm_err put_zeros(struct qlm_writer *w, uint64_t len, uint64_t off)
{
    static const uint8_t zeros[4096];
    while (len > 0) {
        uint64_t n = len < sizeof zeros ? len : sizeof zeros;
        QLM_TRY(put(w, zeros, n, off));
        off += n;
        len -= n;
    }
    return QLM_OK;
}

/* Fix the layout: build the metadata and directory bytes (directory hashes
 * are patched in at finish) and compute data_offset. */
static enum qlm_err start(struct qlm_writer *w)
{
    uint64_t ms = 4, ss = 0, total;
    for (size_t i = 0; i < w->n_meta; i++) {
        ms += 2 + strlen(w->meta[i].key) + 1;
        ms += w->meta[i].type == QLM_META_STR ? 4 + strlen(w->meta[i].str) : 8;
    }
    for (size_t i = 0; i < w->n_t; i++)
        ss += strlen(w->t[i].name);
    w->meta_size = ms;
    w->dir_size = (uint64_t)w->n_t * QLM_DIR_ENTRY_SIZE + ss;
    total = ms + w->tok_size + w->dir_size;
    if (!qlm_fmt_align(QLM_HEADER_SIZE + total, QLM_PAGE_ALIGN, &w->data_offset))
        return fail(w, QLM_E_RANGE, "sections too large");
    w->sections = calloc(1, (size_t)total ? (size_t)total : 1);
    if (!w->sections)
        return fail(w, QLM_E_NOMEM, "out of memory");
    uint8_t *p = w->sections;
    qlm_fmt_wr32(p, (uint32_t)w->n_meta);
    p += 4;
    for (size_t i = 0; i < w->n_meta; i++) {
        const struct wmeta *m = &w->meta[i];
        size_t kl = strlen(m->key);
        qlm_fmt_wr16(p, (uint16_t)kl);
        memcpy(p + 2, m->key, kl);
        p += 2 + kl;
        *p++ = (uint8_t)m->type;
        if (m->type == QLM_META_STR) {
            size_t sl = strlen(m->str);
            qlm_fmt_wr32(p, (uint32_t)sl);
            memcpy(p + 4, m->str, sl);
            p += 4 + sl;
        } else {
            qlm_fmt_wr64(p, m->bits);
            p += 8;
        }
    }
    if (w->tok_size)
        memcpy(p, w->tok_z, (size_t)w->tok_size);
    p += w->tok_size;
    uint8_t *strtab = p + w->n_t * QLM_DIR_ENTRY_SIZE;
    uint32_t so = 0;
    for (size_t i = 0; i < w->n_t; i++, p += QLM_DIR_ENTRY_SIZE) {
        const struct wtensor *t = &w->t[i];
        size_t nl = strlen(t->name);
        if (so > UINT32_MAX - nl)
            return fail(w, QLM_E_RANGE, "string table too large");
        qlm_fmt_wr32(p, so);
        qlm_fmt_wr16(p + 4, (uint16_t)nl);
        p[6] = (uint8_t)t->dtype;
        p[7] = (uint8_t)t->n_dims;
        for (int d = 0; d < t->n_dims; d++)
            qlm_fmt_wr64(p + 8 + 8 * d, t->dims[d]);
        qlm_fmt_wr32(p + 40, t->group);
        qlm_fmt_wr32(p + 44, qlm_dtype_layout(t->dtype));
        qlm_fmt_wr64(p + 48, t->offset);
        qlm_fmt_wr64(p + 56, t->size);
        memcpy(strtab + so, t->name, nl);
        so += (uint32_t)nl;
    }
    w->started = true;
    w->cur = 0;
    w->cur_done = 0;
    XXH3_64bits_reset(w->hash);
    return QLM_OK;
}

/* Zero-size tensors are complete without data: hash of nothing. */
static enum qlm_err skip_empty(struct qlm_writer *w)
{
    while (w->cur < w->n_t && w->t[w->cur].size == 0) {
        struct wtensor *t = &w->t[w->cur];
        t->xxh3 = XXH3_64bits(NULL, 0);
        uint64_t next = w->cur + 1 < w->n_t ? w->t[w->cur + 1].offset : w->data_end;
        QLM_TRY(put_zeros(w, next - t->offset, w->data_offset + t->offset));
        w->cur++;
    }
    return QLM_OK;
}

enum qlm_err qlm_writer_write(struct qlm_writer *w, const void *data, size_t len)
{
    if (w->err.code)
        return w->err.code;
    if (!w->started)
        QLM_TRY(start(w));
    const uint8_t *p = data;
    QLM_TRY(skip_empty(w));
    while (len > 0) {
        if (w->cur >= w->n_t)
            return fail(w, QLM_E_INVALID, "more data written than the declared tensors hold");
        struct wtensor *t = &w->t[w->cur];
        uint64_t n = t->size - w->cur_done;
        if (n > len)
            n = len;
        QLM_TRY(put(w, p, n, w->data_offset + t->offset + w->cur_done));
        XXH3_64bits_update(w->hash, p, (size_t)n);
        w->cur_done += n;
        p += n;
        len -= (size_t)n;
        if (w->cur_done == t->size) {
            t->xxh3 = XXH3_64bits_digest(w->hash);
            XXH3_64bits_reset(w->hash);
            /* zero padding up to the next tensor (or the end of data) */
            uint64_t next = w->cur + 1 < w->n_t ? w->t[w->cur + 1].offset : w->data_end;
            QLM_TRY(put_zeros(w, next - (t->offset + t->size),
                              w->data_offset + t->offset + t->size));
            w->cur++;
            w->cur_done = 0;
            QLM_TRY(skip_empty(w));
        }
    }
    return QLM_OK;
}

enum qlm_err qlm_writer_finish(struct qlm_writer *w, struct qlm_error *err)
{
    if (w->err.code == QLM_OK && !w->started)
        start(w);
    if (w->err.code == QLM_OK && w->cur_done == 0)
        skip_empty(w);
    if (w->err.code == QLM_OK && w->cur < w->n_t) {
        qlm_error_set(&w->err, QLM_E_INVALID, "%s: tensor '%s' has %llu of %llu bytes written",
                      w->path, w->t[w->cur].name, (unsigned long long)w->cur_done,
                      (unsigned long long)w->t[w->cur].size);
    }
    if (w->err.code) {
        qlm_error_set(err, w->err.code, "%s", w->err.msg);
        return w->err.code;
    }
    uint64_t data_size = w->data_end, file_size = w->data_offset + data_size;
    uint8_t *dir = w->sections + w->meta_size + w->tok_size;
    for (size_t i = 0; i < w->n_t; i++)
        qlm_fmt_wr64(dir + i * QLM_DIR_ENTRY_SIZE + 64, w->t[i].xxh3);
    uint64_t sec = w->meta_size + w->tok_size + w->dir_size;
    uint8_t h[QLM_HEADER_SIZE] = {0};
    memcpy(h, QLM_MAGIC, QLM_MAGIC_LEN);
    qlm_fmt_wr32(h + 8, QLM_VERSION_MAJOR);
    qlm_fmt_wr32(h + 12, QLM_VERSION_MINOR);
    qlm_fmt_wr64(h + 16, file_size);
    qlm_fmt_wr64(h + 24, QLM_HEADER_SIZE);
    qlm_fmt_wr64(h + 32, w->meta_size);
    qlm_fmt_wr64(h + 40, QLM_HEADER_SIZE + w->meta_size);
    qlm_fmt_wr64(h + 48, w->tok_size);
    qlm_fmt_wr64(h + 56, w->tok_raw_size);
    qlm_fmt_wr64(h + 64, QLM_HEADER_SIZE + w->meta_size + w->tok_size);
    qlm_fmt_wr64(h + 72, w->dir_size);
    qlm_fmt_wr32(h + 80, (uint32_t)w->n_t);
    qlm_fmt_wr32(h + 84, QLM_DATA_ALIGN);
    qlm_fmt_wr64(h + 88, w->data_offset);
    qlm_fmt_wr64(h + 96, data_size);
    qlm_fmt_wr64(h + 104, XXH3_64bits(w->sections, (size_t)w->meta_size));
    qlm_fmt_wr64(h + 112, XXH3_64bits(w->sections + w->meta_size, (size_t)w->tok_size));
    qlm_fmt_wr64(h + 120, XXH3_64bits(dir, (size_t)w->dir_size));
    qlm_fmt_wr64(h + 248, XXH3_64bits(h, 248));
    if (put(w, w->sections, sec, QLM_HEADER_SIZE) == QLM_OK &&
        put_zeros(w, w->data_offset - QLM_HEADER_SIZE - sec, QLM_HEADER_SIZE + sec) == QLM_OK &&
        put(w, h, QLM_HEADER_SIZE, 0) == QLM_OK) {
        /* the file size is data_offset + data_size even with no tensors */
        if (ftruncate(w->fd, (off_t)file_size) != 0)
            fail_errno(w, "truncate failed", errno);
        else if (fsync(w->fd) != 0)
            fail_errno(w, "fsync failed", errno);
        else if (close(w->fd) != 0)
            w->fd = -1, fail_errno(w, "close failed", errno);
        else if ((w->fd = -1),
                 qlm_fmt_publish(w->tmp, w->path, w->overwrite, &w->err) == QLM_OK)
            w->finished = true;
    }
    if (w->err.code) {
        qlm_error_set(err, w->err.code, "%s", w->err.msg);
        return w->err.code;
    }
    qlm_fmt_sync_dir(w->path); /* make the rename durable (best effort) */
    return QLM_OK;
}
