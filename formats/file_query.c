/* file_query.c — lookups on an open .qlm: tensors by name (bsearch),
 * metadata by key and type, and the inflated tokenizer. */
#include "qlm_format.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int cmp_name_tensor(const void *key, const void *elem)
{
    return strcmp(key, ((const struct qlm_tensor_info *)elem)->name);
}

const struct qlm_tensor_info *qlm_file_tensor(const struct qlm_file *f, const char *name)
{
    if (!f || !name || f->n_tensors == 0)
        return NULL;
    return bsearch(name, f->tensors, f->n_tensors, sizeof *f->tensors, cmp_name_tensor);
}

const struct qlm_meta_entry *qlm_file_meta(const struct qlm_file *f, const char *key)
{
    for (uint32_t i = 0; f && key && i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0)
            return &f->meta[i];
    return NULL;
}

static const char *type_name(enum qlm_meta_type t)
{
    switch (t) {
    case QLM_META_U64: return "u64";
    case QLM_META_I64: return "i64";
    case QLM_META_F64: return "f64";
    case QLM_META_STR: return "str";
    }
    return "?";
}

static enum qlm_err typed(const struct qlm_file *f, const char *key, enum qlm_meta_type want,
                          const struct qlm_meta_entry **e, struct qlm_error *err)
{
    *e = qlm_file_meta(f, key);
    if (!*e)
        return qlm_error_set(err, QLM_E_NOTFOUND, "%s: metadata key '%s' missing", f->path,
                             key);
    if ((*e)->type != want)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: metadata '%s' is %s, expected %s",
                             f->path, key, type_name((*e)->type), type_name(want));
    return QLM_OK;
}

enum qlm_err qlm_file_meta_u64(const struct qlm_file *f, const char *key, uint64_t *v,
                               struct qlm_error *err)
{
    const struct qlm_meta_entry *e;
    QLM_TRY(typed(f, key, QLM_META_U64, &e, err));
    *v = e->v.u64;
    return QLM_OK;
}

enum qlm_err qlm_file_meta_f64(const struct qlm_file *f, const char *key, double *v,
                               struct qlm_error *err)
{
    const struct qlm_meta_entry *e;
    QLM_TRY(typed(f, key, QLM_META_F64, &e, err));
    *v = e->v.f64;
    return QLM_OK;
}

enum qlm_err qlm_file_meta_str(const struct qlm_file *f, const char *key, const char **v,
                               struct qlm_error *err)
{
    const struct qlm_meta_entry *e;
    QLM_TRY(typed(f, key, QLM_META_STR, &e, err));
    *v = e->v.str.ptr;
    return QLM_OK;
}

/* zlib's best ratio is about 1032:1; a larger claim is a lie. */
#define MAX_RATIO 1100u

enum qlm_err qlm_file_tokdata(const struct qlm_file *f, struct qlm_tokdata *t,
                              struct qlm_error *err)
{
    memset(t, 0, sizeof *t);
    if (f->tok_size == 0)
        return qlm_error_set(err, QLM_E_NOTFOUND, "%s: no tokenizer section", f->path);
    if (f->tok_raw_size == 0 || f->tok_raw_size / MAX_RATIO > f->tok_size ||
        f->tok_raw_size > (uint64_t)UINT32_MAX || f->tok_size > (uint64_t)UINT32_MAX)
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tokenizer sizes %llu -> %llu implausible",
                             f->path, (unsigned long long)f->tok_size,
                             (unsigned long long)f->tok_raw_size);
    uLongf n = (uLongf)f->tok_raw_size;
    uLong used = (uLong)f->tok_size;
    uint8_t *raw = malloc((size_t)n);
    if (!raw)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", f->path);
    /* the stream fills the section exactly and inflates to exactly
     * tok_raw_size bytes: no byte of the section goes unread */
    int zr = uncompress2(raw, &n, f->tok_zdata, &used);
    if (zr != Z_OK || n != f->tok_raw_size) {
        const char *why = zr == Z_OK ? "it holds fewer" : zr == Z_BUF_ERROR ? "it holds more"
                                                                           : zError(zr);
        free(raw);
        return qlm_error_set(err, QLM_E_FORMAT, "%s: tokenizer section does not inflate to "
                             "%llu bytes (%s)", f->path, (unsigned long long)f->tok_raw_size,
                             why);
    }
    if (used != f->tok_size) {
        free(raw);
        return qlm_error_set(err, QLM_E_FORMAT, "%s: the tokenizer's zlib stream ends at byte "
                             "%llu of its %llu-byte section", f->path, (unsigned long long)used,
                             (unsigned long long)f->tok_size);
    }
    /* The inflated buffer is handed over: no second copy of 3.6 MB at load. */
    return qlm_tokdata_parse_owned(raw, (size_t)n, f->path, t, err);
}
