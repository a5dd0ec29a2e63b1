/* imat.c — the .imat reader and writer (layout in qlm_imat.h).  The reader
 * takes the bytes as hostile: it checks the magic, version, size and
 * checksum, then every field against the bytes left before reading it, and
 * refuses what the writer could never have written (NaN or negative means,
 * duplicate names, trailing bytes).  The writer runs the same entry checks,
 * so a file it writes is one the reader accepts. */
#include "qlm_imat.h"
#include "fmt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* bytes of an entry before its values: name_len, name, cols, count */
#define ENTRY_FIXED (2 + 4 + 8)

struct ipriv {
    struct qlm_imat_entry *entries;
    const struct qlm_imat_entry **by_name; /* sorted by name */
    char *names;                           /* every name, NUL-terminated */
    float *values;                         /* every entry's values */
};

/* ---- checks shared by the reader and the writer ------------------------- */

static bool name_ok(const char *s, size_t len)
{
    if (len == 0 || len > QLM_IMAT_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static enum qlm_err check_model(const struct qlm_imat_model *m, const char *nm,
                                enum qlm_err code, struct qlm_error *err)
{
    size_t al = strnlen(m->arch, sizeof m->arch);
    if (al == sizeof m->arch || !name_ok(m->arch, al))
        return qlm_error_set(err, code, "%s: architecture name is not printable ASCII of 1 to "
                             "15 characters", nm);
    const struct { const char *key; uint32_t v; } dims[] = {
        {"n_layers", m->n_layers},     {"hidden", m->hidden},
        {"ffn_hidden", m->ffn_hidden}, {"n_heads", m->n_heads},
        {"n_kv_heads", m->n_kv_heads}, {"head_dim", m->head_dim},
        {"vocab_size", m->vocab_size},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v == 0)
            return qlm_error_set(err, code, "%s: model %s is 0", nm, dims[i].key);
    return QLM_OK;
}

/* Entry i (its name already checked): sizes and values. */
static enum qlm_err check_entry(const struct qlm_imat_entry *e, uint32_t i, uint64_t n_tokens,
                                const char *nm, enum qlm_err code, struct qlm_error *err)
{
    if (e->cols == 0)
        return qlm_error_set(err, code, "%s: entry %u '%s' has 0 columns", nm, i, e->name);
    if (e->count == 0 || e->count > n_tokens)
        return qlm_error_set(err, code, "%s: entry %u '%s' counts %llu input rows, not 1 to "
                             "the file's %llu tokens", nm, i, e->name,
                             (unsigned long long)e->count, (unsigned long long)n_tokens);
    for (uint32_t c = 0; c < e->cols; c++)
        if (!isfinite(e->values[c]) || e->values[c] < 0.0f)
            return qlm_error_set(err, code, "%s: entry %u '%s' has %s value at column %u "
                                 "(a mean of squares is finite and >= 0)", nm, i, e->name,
                                 isnan(e->values[c]) ? "a NaN" : isinf(e->values[c]) ?
                                 "an infinite" : "a negative", c);
    return QLM_OK;
}

static int cmp_entry_name(const void *a, const void *b)
{
    const struct qlm_imat_entry *x = *(const struct qlm_imat_entry *const *)a;
    const struct qlm_imat_entry *y = *(const struct qlm_imat_entry *const *)b;
    return strcmp(x->name, y->name);
}

/* idx (n pointers to the entries) sorted by name; a name twice is an error. */
static enum qlm_err sort_unique(const struct qlm_imat_entry **idx, uint32_t n, const char *nm,
                                enum qlm_err code, struct qlm_error *err)
{
    qsort(idx, n, sizeof *idx, cmp_entry_name);
    for (uint32_t i = 1; i < n; i++)
        if (strcmp(idx[i - 1]->name, idx[i]->name) == 0)
            return qlm_error_set(err, code, "%s: entry '%s' appears twice", nm, idx[i]->name);
    return QLM_OK;
}

/* ---- reader --------------------------------------------------------------- */

void qlm_imat_free(struct qlm_imat *m)
{
    if (!m)
        return;
    struct ipriv *p = m->priv_;
    if (p) {
        free(p->entries);
        free(p->by_name);
        free(p->names);
        free(p->values);
        free(p);
    }
    free(m);
}

/* The header's fields after the checksum matched. */
static enum qlm_err parse_header(const uint8_t *h, struct qlm_imat *m, const char *nm,
                                 struct qlm_error *err)
{
    memcpy(m->model.arch, h + 24, sizeof m->model.arch);
    uint32_t *dims[] = {&m->model.n_layers, &m->model.hidden, &m->model.ffn_hidden,
                        &m->model.n_heads, &m->model.n_kv_heads, &m->model.head_dim,
                        &m->model.vocab_size};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        *dims[i] = qlm_fmt_rd32(h + 40 + 4 * i);
    m->n_entries = qlm_fmt_rd32(h + 68);
    m->n_tokens = qlm_fmt_rd64(h + 72);
    m->n_chunks = qlm_fmt_rd32(h + 80);
    m->chunk_tokens = qlm_fmt_rd32(h + 84);
    QLM_TRY(check_model(&m->model, nm, QLM_E_FORMAT, err));
    if (m->n_entries == 0 || m->n_entries > QLM_IMAT_MAX_ENTRIES)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: %u entries, not 1 to %u", nm,
                             m->n_entries, QLM_IMAT_MAX_ENTRIES);
    if (m->n_tokens == 0)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: computed over 0 tokens", nm);
    return QLM_OK;
}

/* The entries in [96, len - 8), copied into p's arrays (sized by the bytes
 * they are read from, so a lying count cannot make them large). */
static enum qlm_err parse_entries(const uint8_t *buf, size_t len, struct qlm_imat *m,
                                  struct ipriv *p, const char *nm, struct qlm_error *err)
{
    size_t body = len - QLM_IMAT_HEADER_SIZE - 8;
    if (m->n_entries > body / (ENTRY_FIXED + 1 + 4))
        return qlm_error_set(err, QLM_E_FORMAT, "%s: truncated: %u entries do not fit in %zu "
                             "bytes", nm, m->n_entries, body);
    p->entries = calloc(m->n_entries, sizeof *p->entries);
    p->by_name = malloc(m->n_entries * sizeof *p->by_name);
    p->names = malloc(body);
    p->values = malloc(body / 4 * sizeof(float));
    if (!p->entries || !p->by_name || !p->names || !p->values)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", nm);
    struct qlm_fmt_cur c = {.p = buf + QLM_IMAT_HEADER_SIZE, .len = body, .ok = true};
    char *np = p->names;
    float *vp = p->values;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        struct qlm_imat_entry *e = &p->entries[i];
        uint16_t nl = qlm_fmt_get16(&c);
        const uint8_t *name = qlm_fmt_take(&c, nl);
        if (!c.ok)
            return qlm_error_set(err, QLM_E_FORMAT, "%s: truncated in entry %u", nm, i);
        if (!name_ok((const char *)name, nl))
            return qlm_error_set(err, QLM_E_FORMAT, "%s: entry %u: name of %u bytes is not "
                                 "printable ASCII of 1 to %d characters", nm, i, nl,
                                 QLM_IMAT_NAME_MAX);
        memcpy(np, name, nl);
        np[nl] = '\0';
        e->name = np;
        np += nl + 1; /* nl + 1 <= the 2 + nl bytes read: stays inside names */
        e->cols = qlm_fmt_get32(&c);
        e->count = qlm_fmt_get64(&c);
        const uint8_t *v = c.ok && e->cols <= (c.len - c.pos) / 4
                               ? qlm_fmt_take(&c, (size_t)e->cols * 4) : NULL;
        if (!v)
            return qlm_error_set(err, QLM_E_FORMAT, "%s: truncated in entry %u '%s'", nm, i,
                                 e->name);
        for (uint32_t k = 0; k < e->cols; k++) {
            uint32_t bits = qlm_fmt_rd32(v + 4 * (size_t)k);
            memcpy(&vp[k], &bits, 4);
        }
        e->values = vp;
        vp += e->cols;
        QLM_TRY(check_entry(e, i, m->n_tokens, nm, QLM_E_FORMAT, err));
        p->by_name[i] = e;
    }
    if (c.pos != c.len)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: %zu bytes after the last entry", nm,
                             c.len - c.pos);
    return sort_unique(p->by_name, m->n_entries, nm, QLM_E_FORMAT, err);
}

enum qlm_err qlm_imat_parse(const uint8_t *buf, size_t len, const char *nm,
                            struct qlm_imat **out, struct qlm_error *err)
{
    *out = NULL;
    const size_t ml = sizeof QLM_IMAT_MAGIC - 1;
    if (len > 0 && memcmp(buf, QLM_IMAT_MAGIC, len < ml ? len : ml) != 0)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: not an .imat file (bad magic)", nm);
    if (len < QLM_IMAT_HEADER_SIZE + 8)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: truncated: %zu bytes, the header and "
                             "checksum alone need %d", nm, len, QLM_IMAT_HEADER_SIZE + 8);
    uint32_t major = qlm_fmt_rd32(buf + 8), minor = qlm_fmt_rd32(buf + 12);
    if (major > QLM_IMAT_VERSION_MAJOR)
        return qlm_error_set(err, QLM_E_VERSION, "%s: format version %u.%u is newer than this "
                             "qlm (%d.x); upgrade qlm", nm, major, minor,
                             QLM_IMAT_VERSION_MAJOR);
    if (major < QLM_IMAT_VERSION_MAJOR)
        return qlm_error_set(err, QLM_E_VERSION, "%s: format version %u.%u is older than this "
                             "qlm (%d.x); run qlm-imatrix again", nm, major, minor,
                             QLM_IMAT_VERSION_MAJOR);
    uint64_t size = qlm_fmt_rd64(buf + 16);
    if (size != len)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: truncated or extended: header says %llu "
                             "bytes, file has %zu", nm, (unsigned long long)size, len);
    if (XXH3_64bits(buf, len - 8) != qlm_fmt_rd64(buf + len - 8))
        return qlm_error_set(err, QLM_E_CHECKSUM, "%s: checksum mismatch (file corrupted)", nm);
    struct qlm_imat *m = calloc(1, sizeof *m);
    struct ipriv *p = calloc(1, sizeof *p);
    if (!m || !p) {
        free(m);
        free(p);
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", nm);
    }
    m->priv_ = p;
    enum qlm_err rc = parse_header(buf, m, nm, err);
    if (rc == QLM_OK)
        rc = parse_entries(buf, len, m, p, nm, err);
    if (rc != QLM_OK) {
        qlm_imat_free(m);
        return rc;
    }
    m->entries = p->entries;
    *out = m;
    return QLM_OK;
}

enum qlm_err qlm_imat_read(const char *path, struct qlm_imat **out, struct qlm_error *err)
{
    *out = NULL;
    char *buf;
    size_t n;
    QLM_TRY(qlm_input_read(path, (size_t)QLM_IMAT_MAX_BYTES, &buf, &n, err));
    enum qlm_err rc = qlm_imat_parse((const uint8_t *)buf, n, path, out, err);
    free(buf);
    return rc;
}

static int cmp_key_entry(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct qlm_imat_entry *const *)elem)->name);
}

const struct qlm_imat_entry *qlm_imat_find(const struct qlm_imat *m, const char *name)
{
    const struct ipriv *p = m->priv_;
    if (!p || !name)
        return NULL;
    const struct qlm_imat_entry *const *hit =
        bsearch(name, p->by_name, m->n_entries, sizeof *p->by_name, cmp_key_entry);
    return hit ? *hit : NULL;
}

/* ---- writer --------------------------------------------------------------- */

enum qlm_err qlm_imat_serialize(const struct qlm_imat *m, const char *nm, uint8_t **out,
                                size_t *len, struct qlm_error *err)
{
    *out = NULL;
    *len = 0;
    QLM_TRY(check_model(&m->model, nm, QLM_E_INVALID, err));
    if (m->n_entries == 0 || m->n_entries > QLM_IMAT_MAX_ENTRIES || !m->entries)
        return qlm_error_set(err, QLM_E_INVALID, "%s: %u entries, not 1 to %u", nm,
                             m->n_entries, QLM_IMAT_MAX_ENTRIES);
    if (m->n_tokens == 0)
        return qlm_error_set(err, QLM_E_INVALID, "%s: computed over 0 tokens", nm);
    uint64_t size = QLM_IMAT_HEADER_SIZE + 8;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct qlm_imat_entry *e = &m->entries[i];
        if (!e->name || !name_ok(e->name, strlen(e->name)))
            return qlm_error_set(err, QLM_E_INVALID, "%s: entry %u: name is not printable "
                                 "ASCII of 1 to %d characters", nm, i, QLM_IMAT_NAME_MAX);
        QLM_TRY(check_entry(e, i, m->n_tokens, nm, QLM_E_INVALID, err));
        uint64_t eb;
        if (!qlm_fmt_mul(e->cols, 4, &eb) || !qlm_fmt_add(eb, ENTRY_FIXED + strlen(e->name), &eb) ||
            !qlm_fmt_add(size, eb, &size) || size > QLM_IMAT_MAX_BYTES)
            return qlm_error_set(err, QLM_E_RANGE, "%s: more than an .imat file holds", nm);
    }
    const struct qlm_imat_entry **idx = malloc(m->n_entries * sizeof *idx);
    uint8_t *b = malloc((size_t)size);
    if (!idx || !b) {
        free(idx);
        free(b);
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", nm);
    }
    for (uint32_t i = 0; i < m->n_entries; i++)
        idx[i] = &m->entries[i];
    enum qlm_err rc = sort_unique(idx, m->n_entries, nm, QLM_E_INVALID, err);
    free(idx);
    if (rc != QLM_OK) {
        free(b);
        return rc;
    }
    memset(b, 0, QLM_IMAT_HEADER_SIZE);
    memcpy(b, QLM_IMAT_MAGIC, sizeof QLM_IMAT_MAGIC - 1);
    qlm_fmt_wr32(b + 8, QLM_IMAT_VERSION_MAJOR);
    qlm_fmt_wr32(b + 12, QLM_IMAT_VERSION_MINOR);
    qlm_fmt_wr64(b + 16, size);
    memcpy(b + 24, m->model.arch, sizeof m->model.arch);
    const uint32_t dims[] = {m->model.n_layers, m->model.hidden, m->model.ffn_hidden,
                             m->model.n_heads, m->model.n_kv_heads, m->model.head_dim,
                             m->model.vocab_size};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        qlm_fmt_wr32(b + 40 + 4 * i, dims[i]);
    qlm_fmt_wr32(b + 68, m->n_entries);
    qlm_fmt_wr64(b + 72, m->n_tokens);
    qlm_fmt_wr32(b + 80, m->n_chunks);
    qlm_fmt_wr32(b + 84, m->chunk_tokens);
    uint8_t *q = b + QLM_IMAT_HEADER_SIZE;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct qlm_imat_entry *e = &m->entries[i];
        size_t nl = strlen(e->name);
        qlm_fmt_wr16(q, (uint16_t)nl);
        memcpy(q + 2, e->name, nl);
        q += 2 + nl;
        qlm_fmt_wr32(q, e->cols);
        qlm_fmt_wr64(q + 4, e->count);
        q += 12;
        for (uint32_t c = 0; c < e->cols; c++, q += 4) {
            uint32_t bits;
            memcpy(&bits, &e->values[c], 4);
            qlm_fmt_wr32(q, bits);
        }
    }
    qlm_fmt_wr64(q, XXH3_64bits(b, (size_t)size - 8));
    *out = b;
    *len = (size_t)size;
    return QLM_OK;
}

/* All of buf to fd, retrying short writes and EINTR. */
static bool write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t r = write(fd, buf, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = ENOSPC;
            return false;
        }
        buf += r;
        len -= (size_t)r;
    }
    return true;
}

enum qlm_err qlm_imat_write(const char *path, const struct qlm_imat *m, bool overwrite,
                            struct qlm_error *err)
{
    struct stat st;
    if (!overwrite && lstat(path, &st) == 0)
        return qlm_error_set(err, QLM_E_IO, "%s: already exists (not overwriting)", path);
    uint8_t *buf;
    size_t len;
    QLM_TRY(qlm_imat_serialize(m, path, &buf, &len, err));
    size_t tl = qlm_writer_tmp_path(path, NULL, 0) + 1;
    char *tmp = malloc(tl);
    if (!tmp) {
        free(buf);
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", path);
    }
    qlm_writer_tmp_path(path, tmp, tl);
    enum qlm_err rc = QLM_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = qlm_error_set(err, QLM_E_IO, "%s: cannot create %s: %s", path, tmp,
                           strerror(errno));
    } else {
        if (!write_all(fd, buf, len))
            rc = qlm_error_set(err, QLM_E_IO, "%s: write failed: %s", path, strerror(errno));
        else if (fsync(fd) != 0)
            rc = qlm_error_set(err, QLM_E_IO, "%s: fsync failed: %s", path, strerror(errno));
        if (close(fd) != 0 && rc == QLM_OK)
            rc = qlm_error_set(err, QLM_E_IO, "%s: close failed: %s", path, strerror(errno));
        if (rc == QLM_OK)
            rc = qlm_fmt_publish(tmp, path, overwrite, err);
        if (rc != QLM_OK)
            unlink(tmp);
        else
            qlm_fmt_sync_dir(path);
    }
    free(tmp);
    free(buf);
    return rc;
}
