/* reader.c — open a .qlm: mmap the whole file read-only and validate every
 * byte that is used before it is used (header checksum, section bounds and
 * checksums, metadata, directory).  Tensor data is hashed by qlm_file_verify. */
#include "qlm_format.h"
#include "fmt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

struct fpriv {
    char *path;
    void *arena;          /* metadata keys and strings */
    void *names;          /* tensor names */
};

#define FAIL(code, ...) (rc = qlm_error_set(err, code, __VA_ARGS__))

void qlm_file_close(struct qlm_file *f)
{
    if (!f)
        return;
    if (f->map)
        munmap((void *)f->map, (size_t)f->size);
    struct fpriv *p = f->priv_;
    if (p) {
        free(p->path);
        free(p->arena);
        free(p->names);
        free(p);
    }
    free(f->meta);
    free(f->tensors);
    free(f);
}

/* A section [off, off+size) must lie inside [lo, hi). */
static bool inside(uint64_t off, uint64_t size, uint64_t lo, uint64_t hi)
{
    uint64_t end;
    return off >= lo && qlm_fmt_add(off, size, &end) && end <= hi;
}

static int cmp_str(const char *a, const char *b)
{
    return strcmp(a, b);
}

static int cmp_meta_key(const void *a, const void *b)
{
    return cmp_str(((const struct qlm_meta_entry *)a)->key,
                   ((const struct qlm_meta_entry *)b)->key);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return cmp_str(((const struct qlm_tensor_info *)a)->name,
                   ((const struct qlm_tensor_info *)b)->name);
}

static int cmp_tensor_off(const void *a, const void *b)
{
    const struct qlm_tensor_info *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_tensor_ptr_off(const void *a, const void *b)
{
    return cmp_tensor_off(*(const struct qlm_tensor_info *const *)a,
                          *(const struct qlm_tensor_info *const *)b);
}

/* Metadata: u32 count, then {u16 key_len, key, u8 type, value}. */
static enum qlm_err parse_meta(struct qlm_file *f, const uint8_t *p, uint64_t size,
                               char **arena_pos, struct qlm_error *err)
{
    enum qlm_err rc = QLM_OK;
    const char *nm = f->path;
    struct qlm_fmt_cur c = {p, (size_t)size, 0, true};
    uint32_t n = qlm_fmt_get32(&c);
    if (!c.ok)
        return FAIL(QLM_E_FORMAT, "%s: metadata section truncated", nm);
    if ((uint64_t)n * 7 > size - 4) /* smallest entry: empty key, STR "" = 7 bytes */
        return FAIL(QLM_E_FORMAT, "%s: metadata count %u exceeds the section", nm, n);
    f->meta = calloc(n ? n : 1, sizeof *f->meta);
    if (!f->meta)
        return FAIL(QLM_E_NOMEM, "%s: out of memory", nm);
    char *a = *arena_pos;
    for (uint32_t i = 0; i < n; i++) {
        uint16_t kl = qlm_fmt_get16(&c);
        const uint8_t *key = qlm_fmt_take(&c, kl);
        uint8_t type = qlm_fmt_get8(&c);
        if (!c.ok)
            return FAIL(QLM_E_FORMAT, "%s: metadata entry %u truncated", nm, i);
        if (kl == 0 || memchr(key, 0, kl))
            return FAIL(QLM_E_FORMAT, "%s: metadata entry %u has an empty key or a NUL byte",
                        nm, i);
        if (qlm_utf8_valid_prefix(key, kl) != kl)
            return FAIL(QLM_E_FORMAT, "%s: metadata entry %u: key is not valid UTF-8 (byte %zu)",
                        nm, i, qlm_utf8_valid_prefix(key, kl));
        struct qlm_meta_entry *e = &f->meta[i];
        memcpy(a, key, kl);
        a[kl] = 0;
        e->key = a;
        a += kl + 1;
        e->type = (enum qlm_meta_type)type;
        switch (type) {
        case QLM_META_U64:
        case QLM_META_I64:
        case QLM_META_F64: {
            uint64_t v = qlm_fmt_get64(&c);
            if (type == QLM_META_U64)
                e->v.u64 = v;
            else if (type == QLM_META_I64)
                e->v.i64 = (int64_t)v;
            else
                memcpy(&e->v.f64, &v, 8);
            break;
        }
        case QLM_META_STR: {
            uint32_t sl = qlm_fmt_get32(&c);
            const uint8_t *s = qlm_fmt_take(&c, sl);
            if (!c.ok)
                break;
            if (memchr(s, 0, sl))
                return FAIL(QLM_E_FORMAT, "%s: metadata '%s': NUL byte in string", nm, e->key);
            if (qlm_utf8_valid_prefix(s, sl) != sl)
                return FAIL(QLM_E_FORMAT, "%s: metadata '%s': string is not valid UTF-8 (byte "
                            "%zu)", nm, e->key, qlm_utf8_valid_prefix(s, sl));
            memcpy(a, s, sl);
            a[sl] = 0;
            e->v.str.ptr = a;
            e->v.str.len = sl;
            a += sl + 1;
            break;
        }
        default:
            return FAIL(QLM_E_FORMAT, "%s: metadata '%s': unknown type %u", nm, e->key, type);
        }
        if (!c.ok)
            return FAIL(QLM_E_FORMAT, "%s: metadata '%s': value truncated", nm, e->key);
        f->n_meta = i + 1;
    }
    if (c.pos != c.len)
        return FAIL(QLM_E_FORMAT, "%s: %zu trailing bytes in the metadata section", nm,
                    c.len - c.pos);
    /* keys unique: check on a sorted copy, keep the file's order */
    struct qlm_meta_entry *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return FAIL(QLM_E_NOMEM, "%s: out of memory", nm);
    memcpy(s, f->meta, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_meta_key);
    for (uint32_t i = 1; i < n; i++)
        if (strcmp(s[i - 1].key, s[i].key) == 0) {
            FAIL(QLM_E_FORMAT, "%s: duplicate metadata key '%s'", nm, s[i].key);
            break;
        }
    free(s);
    *arena_pos = a;
    return rc;
}

static enum qlm_err parse_dir(struct qlm_file *f, const uint8_t *p, uint64_t size,
                              uint64_t data_off, uint64_t data_size, uint32_t align,
                              struct qlm_error *err)
{
    enum qlm_err rc = QLM_OK;
    const char *nm = f->path;
    uint32_t n = f->n_tensors;
    uint64_t fixed = (uint64_t)n * QLM_DIR_ENTRY_SIZE;
    if (fixed > size)
        return FAIL(QLM_E_FORMAT, "%s: directory of %u tensors exceeds its %llu-byte section",
                    nm, n, (unsigned long long)size);
    const uint8_t *strtab = p + fixed;
    uint64_t strtab_size = size - fixed;
    /* the names lie back to back in entry order and fill the string table:
     * no byte of the section is left without a meaning */
    uint64_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = p + (uint64_t)i * QLM_DIR_ENTRY_SIZE;
        uint32_t no = qlm_fmt_rd32(e);
        uint16_t nl = qlm_fmt_rd16(e + 4);
        if (nl == 0)
            return FAIL(QLM_E_FORMAT, "%s: tensor %u: empty name", nm, i);
        if (!inside(no, nl, 0, strtab_size))
            return FAIL(QLM_E_RANGE, "%s: tensor %u: name [%u, +%u) outside the %llu-byte "
                        "string table", nm, i, no, nl, (unsigned long long)strtab_size);
        if (no != at)
            return FAIL(QLM_E_FORMAT, "%s: tensor %u: name at string-table offset %u, not %llu "
                        "where the names before it end", nm, i, no, (unsigned long long)at);
        at += nl;
    }
    if (at != strtab_size)
        return FAIL(QLM_E_FORMAT, "%s: the tensor names cover %llu of the string table's %llu "
                    "bytes", nm, (unsigned long long)at, (unsigned long long)strtab_size);
    uint64_t names_size = strtab_size + n + 1; /* each name NUL-terminated */
    struct fpriv *fp = f->priv_;
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (names_size > SIZE_MAX || !f->tensors || !(fp->names = malloc((size_t)names_size)))
        return FAIL(QLM_E_NOMEM, "%s: out of memory", nm);
    char *a = fp->names;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = p + (uint64_t)i * QLM_DIR_ENTRY_SIZE;
        struct qlm_tensor_info *t = &f->tensors[i];
        uint32_t no = qlm_fmt_rd32(e);
        uint16_t nl = qlm_fmt_rd16(e + 4);
        if (memchr(strtab + no, 0, nl))
            return FAIL(QLM_E_FORMAT, "%s: tensor %u: NUL byte in name", nm, i);
        if (qlm_utf8_valid_prefix(strtab + no, nl) != nl)
            return FAIL(QLM_E_FORMAT, "%s: tensor %u: name is not valid UTF-8 (byte %zu)", nm, i,
                        qlm_utf8_valid_prefix(strtab + no, nl));
        memcpy(a, strtab + no, nl);
        a[nl] = 0;
        t->name = a;
        a += nl + 1;
        uint8_t dt = e[6], nd = e[7];
        if (dt >= QLM_DTYPE_COUNT)
            return FAIL(QLM_E_FORMAT, "%s: tensor '%s': unknown dtype %u", nm, t->name, dt);
        if (nd < 1 || nd > QLM_MAX_DIMS)
            return FAIL(QLM_E_FORMAT, "%s: tensor '%s': %u dims (1..4 allowed)", nm, t->name,
                        nd);
        t->dtype = (enum qlm_dtype)dt;
        t->n_dims = nd;
        uint64_t rows = 1;
        for (int d = 0; d < QLM_MAX_DIMS; d++) {
            t->dims[d] = qlm_fmt_rd64(e + 8 + 8 * d);
            if (d >= nd && t->dims[d] != 0)
                return FAIL(QLM_E_FORMAT, "%s: tensor '%s': unused dim %d is not zero", nm,
                            t->name, d);
            if (d + 1 < nd && !qlm_fmt_mul(rows, t->dims[d], &rows))
                return FAIL(QLM_E_RANGE, "%s: tensor '%s': shape overflows", nm, t->name);
        }
        t->group = qlm_fmt_rd32(e + 40);
        t->layout = qlm_fmt_rd32(e + 44);
        t->offset = qlm_fmt_rd64(e + 48);
        t->size = qlm_fmt_rd64(e + 56);
        t->xxh3 = qlm_fmt_rd64(e + 64);
        if (t->layout != qlm_dtype_layout(t->dtype))
            return FAIL(QLM_E_FORMAT, "%s: tensor '%s': layout %u, a %s tensor has %u", nm,
                        t->name, t->layout, qlm_dtype_name(t->dtype),
                        qlm_dtype_layout(t->dtype));
        if (!qlm_dtype_is_quant(t->dtype) && t->group != 0)
            return FAIL(QLM_E_FORMAT, "%s: tensor '%s': group %u on a %s tensor", nm, t->name,
                        t->group, qlm_dtype_name(t->dtype));
        uint64_t want, cols = t->dims[nd - 1];
        const struct qlm_type_traits *tr = qlm_type_traits(t->dtype);
        if (tr->group_multiple &&
            (t->group == 0 || t->group % tr->group_multiple || cols % t->group))
            return FAIL(QLM_E_FORMAT, "%s: tensor '%s': shape does not fit %s group %u (%llu "
                        "columns)", nm, t->name, tr->name, t->group, (unsigned long long)cols);
        if (!qlm_tensor_bytes(t->dtype, rows, cols, t->group, &want))
            return FAIL(QLM_E_RANGE, "%s: tensor '%s': %llu x %llu %s: byte size overflows",
                        nm, t->name, (unsigned long long)rows, (unsigned long long)cols,
                        tr->name);
        if (want != t->size)
            return FAIL(QLM_E_FORMAT, "%s: tensor '%s': size %llu, its shape needs %llu", nm,
                        t->name, (unsigned long long)t->size, (unsigned long long)want);
        if (t->offset % align != 0)
            return FAIL(QLM_E_FORMAT, "%s: tensor '%s': offset %llu not aligned to %u", nm,
                        t->name, (unsigned long long)t->offset, align);
        if (!inside(t->offset, t->size, 0, data_size))
            return FAIL(QLM_E_RANGE, "%s: tensor '%s': [%llu, +%llu) outside the data section",
                        nm, t->name, (unsigned long long)t->offset,
                        (unsigned long long)t->size);
        t->data = f->map + data_off + t->offset;
    }
    qsort(f->tensors, n, sizeof *f->tensors, cmp_tensor_off);
    for (uint32_t i = 1; i < n; i++)
        if (f->tensors[i - 1].offset + f->tensors[i - 1].size > f->tensors[i].offset)
            return FAIL(QLM_E_FORMAT, "%s: tensors '%s' and '%s' overlap", nm,
                        f->tensors[i - 1].name, f->tensors[i].name);
    qsort(f->tensors, n, sizeof *f->tensors, cmp_tensor_name);
    for (uint32_t i = 1; i < n; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return FAIL(QLM_E_FORMAT, "%s: duplicate tensor '%s'", nm, f->tensors[i].name);
    return QLM_OK;
}

static enum qlm_err validate(struct qlm_file *f, struct qlm_error *err)
{
    enum qlm_err rc = QLM_OK;
    const char *nm = f->path;
    const uint8_t *h = f->map;
    if (f->size < QLM_MAGIC_LEN || memcmp(h, QLM_MAGIC, QLM_MAGIC_LEN) != 0)
        return FAIL(QLM_E_FORMAT, "%s: not a .qlm file (bad magic)", nm);
    if (f->size < QLM_HEADER_SIZE)
        return FAIL(QLM_E_FORMAT, "%s: truncated: %llu bytes, the header alone needs %d", nm,
                    (unsigned long long)f->size, QLM_HEADER_SIZE);
    if (XXH3_64bits(h, 248) != qlm_fmt_rd64(h + 248))
        return FAIL(QLM_E_CHECKSUM, "%s: header checksum mismatch (file corrupted)", nm);
    f->version_major = qlm_fmt_rd32(h + 8);
    f->version_minor = qlm_fmt_rd32(h + 12);
    if (f->version_major > QLM_VERSION_MAJOR)
        return FAIL(QLM_E_VERSION,
                    "%s: format version %u.%u is newer than this qlm (%d.x); upgrade qlm", nm,
                    f->version_major, f->version_minor, QLM_VERSION_MAJOR);
    if (f->version_major < QLM_VERSION_MAJOR)
        return FAIL(QLM_E_VERSION,
                    "%s: format version %u.%u is older than this qlm (%d.x); convert the "
                    "checkpoint again with qlm-convert", nm, f->version_major,
                    f->version_minor, QLM_VERSION_MAJOR);
    uint64_t file_size = qlm_fmt_rd64(h + 16);
    uint64_t meta_off = qlm_fmt_rd64(h + 24), meta_size = qlm_fmt_rd64(h + 32);
    uint64_t tok_off = qlm_fmt_rd64(h + 40), tok_size = qlm_fmt_rd64(h + 48);
    uint64_t tok_raw = qlm_fmt_rd64(h + 56);
    uint64_t dir_off = qlm_fmt_rd64(h + 64), dir_size = qlm_fmt_rd64(h + 72);
    uint32_t n_tensors = qlm_fmt_rd32(h + 80), align = qlm_fmt_rd32(h + 84);
    uint64_t data_off = qlm_fmt_rd64(h + 88), data_size = qlm_fmt_rd64(h + 96);
    if (file_size != f->size)
        return FAIL(QLM_E_FORMAT, "%s: truncated or extended: header says %llu bytes, file "
                    "has %llu", nm, (unsigned long long)file_size,
                    (unsigned long long)f->size);
    if (align < QLM_DATA_ALIGN || (align & (align - 1)) || align > QLM_PAGE_ALIGN)
        return FAIL(QLM_E_FORMAT, "%s: data alignment %u invalid", nm, align);
    uint64_t data_end;
    if (data_off % QLM_PAGE_ALIGN || data_off < QLM_HEADER_SIZE ||
        !qlm_fmt_add(data_off, data_size, &data_end) || data_end != file_size)
        return FAIL(QLM_E_RANGE, "%s: data section [%llu, +%llu) does not end the file", nm,
                    (unsigned long long)data_off, (unsigned long long)data_size);
    if (!inside(meta_off, meta_size, QLM_HEADER_SIZE, data_off) ||
        !inside(tok_off, tok_size, QLM_HEADER_SIZE, data_off) ||
        !inside(dir_off, dir_size, QLM_HEADER_SIZE, data_off))
        return FAIL(QLM_E_RANGE, "%s: a section lies outside the file's section area", nm);
    /* sections are laid out in order metadata, tokenizer, directory */
    if (meta_off + meta_size > tok_off || tok_off + tok_size > dir_off)
        return FAIL(QLM_E_RANGE, "%s: sections overlap or are out of order", nm);
    if (XXH3_64bits(h + meta_off, (size_t)meta_size) != qlm_fmt_rd64(h + 104))
        return FAIL(QLM_E_CHECKSUM, "%s: metadata checksum mismatch (file corrupted)", nm);
    if (XXH3_64bits(h + tok_off, (size_t)tok_size) != qlm_fmt_rd64(h + 112))
        return FAIL(QLM_E_CHECKSUM, "%s: tokenizer checksum mismatch (file corrupted)", nm);
    if (XXH3_64bits(h + dir_off, (size_t)dir_size) != qlm_fmt_rd64(h + 120))
        return FAIL(QLM_E_CHECKSUM, "%s: directory checksum mismatch (file corrupted)", nm);
    f->data_offset = data_off;
    f->tok_zdata = h + tok_off;
    f->tok_size = tok_size;
    f->tok_raw_size = tok_raw;
    f->n_tensors = n_tensors;
    /* keys and strings are copied NUL-terminated; each copy is no longer than
     * the bytes it was read from, so the section size bounds the arena */
    struct fpriv *p = f->priv_;
    p->arena = malloc((size_t)meta_size + 1);
    if (!p->arena)
        return FAIL(QLM_E_NOMEM, "%s: out of memory", nm);
    char *a = p->arena;
    QLM_TRY(parse_meta(f, h + meta_off, meta_size, &a, err));
    return parse_dir(f, h + dir_off, dir_size, data_off, data_size, align, err);
}

/* A file too short for the header is a cut .qlm only if it starts like one
 * (a 6-byte text file is not a .qlm at all). */
static bool magic_prefix(int fd, off_t size)
{
    uint8_t head[QLM_MAGIC_LEN];
    size_t n = size < QLM_MAGIC_LEN ? (size_t)size : QLM_MAGIC_LEN;
    return pread(fd, head, n, 0) == (ssize_t)n && memcmp(head, QLM_MAGIC, n) == 0;
}

enum qlm_err qlm_file_open(struct qlm_file **out, const char *path, struct qlm_error *err)
{
    enum qlm_err rc = QLM_OK;
    *out = NULL;
    struct qlm_file *f = calloc(1, sizeof *f);
    struct fpriv *p = calloc(1, sizeof *p);
    if (!f || !p || !(p->path = strdup(path))) {
        free(f);
        if (p)
            free(p->path);
        free(p);
        return FAIL(QLM_E_NOMEM, "%s: out of memory", path);
    }
    f->priv_ = p;
    f->path = p->path;
    int fd = -1;
    uint64_t size = 0;
    rc = qlm_input_open(path, &fd, &size, err);
    if (rc == QLM_OK && size < QLM_HEADER_SIZE && !magic_prefix(fd, (off_t)size)) {
        FAIL(QLM_E_FORMAT, "%s: not a .qlm file (bad magic)", path);
    } else if (rc == QLM_OK && size < QLM_HEADER_SIZE) {
        FAIL(QLM_E_FORMAT, "%s: truncated: %llu bytes, the header alone needs %d", path,
             (unsigned long long)size, QLM_HEADER_SIZE);
    } else if (rc == QLM_OK && size > SIZE_MAX) {
        FAIL(QLM_E_RANGE, "%s: too large to map", path);
    } else if (rc == QLM_OK) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            FAIL(QLM_E_IO, "%s: mmap: %s", path, strerror(errno));
        } else {
            f->map = m;
            f->size = size;
        }
    }
    if (fd >= 0)
        close(fd);
    if (rc == QLM_OK)
        rc = validate(f, err);
    if (rc != QLM_OK) {
        qlm_file_close(f);
        return rc;
    }
    *out = f;
    return QLM_OK;
}

enum qlm_err qlm_file_verify(const struct qlm_file *f,
                             void (*progress)(uint64_t done, uint64_t total, void *ctx),
                             void *ctx, struct qlm_error *err)
{
    uint64_t total = 0, done = 0;
    uint32_t n = f->n_tensors;
    const struct qlm_tensor_info **order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", f->path);
    for (uint32_t i = 0; i < n; i++) {
        order[i] = &f->tensors[i];
        total += f->tensors[i].size;
    }
    /* hash in file order: sequential reads, and "first bad" means first on disk */
    qsort(order, n, sizeof *order, cmp_tensor_ptr_off);
    XXH3_state_t *st = XXH3_createState();
    enum qlm_err rc = st ? QLM_OK : qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", f->path);
    for (uint32_t i = 0; i < n && rc == QLM_OK; i++) {
        const struct qlm_tensor_info *t = order[i];
        const struct qlm_type_traits *tr = qlm_type_traits(t->dtype);
        uint64_t cols = t->dims[t->n_dims - 1], bb = tr->block_bytes(cols, t->group);
        bool checked = tr->check != NULL && bb > 0 && bb != UINT64_MAX;
        if (!checked)
            bb = 1;
        /* whole blocks of about 1 MiB: each is checked while still in cache */
        uint64_t chunk = ((uint64_t)1 << 20) / bb * bb;
        if (chunk == 0)
            chunk = bb;
        const uint8_t *d = t->data;
        uint64_t bad = UINT64_MAX;
        XXH3_64bits_reset(st);
        for (uint64_t o = 0; o < t->size; o += chunk) {
            size_t len = (size_t)(t->size - o < chunk ? t->size - o : chunk);
            XXH3_64bits_update(st, d + o, len);
            for (uint64_t b = 0; checked && bad == UINT64_MAX && b < len; b += bb)
                if (!tr->check(d + o + b, cols, t->group))
                    bad = (o + b) / bb;
            done += len;
            if (progress)
                progress(done, total, ctx);
        }
        if (XXH3_64bits_digest(st) != t->xxh3)
            rc = qlm_error_set(err, QLM_E_CHECKSUM, "%s: tensor '%s': checksum mismatch",
                               f->path, t->name);
        else if (bad != UINT64_MAX)
            rc = qlm_error_set(err, QLM_E_FORMAT,
                               "%s: tensor '%s': block %llu holds a code outside the %s range",
                               f->path, t->name, (unsigned long long)bad, tr->name);
    }
    if (rc == QLM_OK && progress && n == 0)
        progress(0, 0, ctx);
    XXH3_freeState(st);
    free(order);
    return rc;
}
