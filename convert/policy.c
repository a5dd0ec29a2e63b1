/*
 * policy.c — the quantization policy and the tensor-set check.
 */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum qlm_dtype qlm_policy_dtype(enum qlm_role role, enum qlm_dtype chosen)
{
    switch (role) {
    case QLM_ROLE_NORM:
    case QLM_ROLE_BIAS:
        return QLM_F32;
    case QLM_ROLE_EMBED:
    case QLM_ROLE_HEAD:
        /* The embedding row is read directly and the head sets every logit:
         * int4 costs too much there for too little, so they stay int8. */
        return chosen == QLM_Q4 ? QLM_Q8 : chosen;
    case QLM_ROLE_LINEAR:
    default:
        return chosen;
    }
}

bool qlm_policy_group_ok(uint32_t group)
{
    return group >= 32 && group <= 4096 && group % 32 == 0;
}

void qlm_release_range(const void *p, uint64_t len)
{
#if defined(MADV_DONTNEED)
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0 || len == 0)
        return;
    uintptr_t a = (uintptr_t)p, e = a + len;
    /* Only whole pages inside the range: neighbours may still be in use. */
    a = (a + (uintptr_t)ps - 1) & ~((uintptr_t)ps - 1);
    e &= ~((uintptr_t)ps - 1);
    if (e > a)
        (void)madvise((void *)a, e - a, MADV_DONTNEED);
#else
    (void)p;
    (void)len;
#endif
}

struct builder {
    const struct qlm_model_params *cfg;
    const struct qlm_st_model *m;
    const char *name, *params_from;
    enum qlm_dtype chosen;
    uint32_t group;
    struct qlm_plan *plan;
    size_t cap;
    unsigned char *seen; /* per checkpoint tensor: claimed by the plan */
};

static const char *st_file(const struct builder *b, const struct qlm_st_tensor *t)
{
    if (t && t->shard >= 0 && t->shard < b->m->n_shards)
        return b->m->shard_paths[t->shard];
    return b->name;
}

static void mark_seen(struct builder *b, const struct qlm_st_tensor *t)
{
    size_t i = (size_t)(t - b->m->tensors);
    if (i < b->m->n_tensors)
        b->seen[i] = 1;
}

/* The dtype check of a checkpoint tensor: the converter reads floats and
 * the two ggml block types whose values it decodes. */
static enum qlm_err check_dtype(struct builder *b, const struct qlm_st_tensor *t,
                                struct qlm_error *err)
{
    if (t->dtype == QLM_ST_OTHER)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: tensor '%s' has dtype %s (BF16, F16, F32, Q8_0 or Q4_0 "
                             "expected)", st_file(b, t), t->name, t->dtype_name);
    return QLM_OK;
}

/* The checkpoint tensor of schema entry want, present with its shape and a
 * float dtype. */
static enum qlm_err find(struct builder *b, const struct qlm_schema_tensor *want,
                         const struct qlm_st_tensor **out, struct qlm_error *err)
{
    const struct qlm_st_tensor *t = qlm_st_find(b->m, want->name);
    if (t == NULL)
        return qlm_schema_check_shape(b->name, want, 0, NULL, err);
    QLM_TRY(qlm_schema_check_shape(st_file(b, t), want, t->n_dims, t->dims, err));
    QLM_TRY(check_dtype(b, t, err));
    mark_seen(b, t);
    *out = t;
    return QLM_OK;
}

/* Append the tensor of schema entry want to the plan. */
static enum qlm_err add(struct builder *b, const struct qlm_schema_tensor *want,
                        struct qlm_error *err)
{
    const struct qlm_st_tensor *t;
    QLM_TRY(find(b, want, &t, err));
    struct qlm_plan *p = b->plan;
    if (p->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        struct qlm_plan_item *ni = realloc(p->items, ncap * sizeof *ni);
        if (!ni)
            return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", b->name);
        p->items = ni;
        b->cap = ncap;
    }
    int n_dims = want->n_dims;
    uint64_t d0 = want->dims[0], d1 = want->dims[1];
    struct qlm_plan_item *it = &p->items[p->n];
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", want->name);
    it->src = t;
    it->role = want->role;
    it->dtype = n_dims == 2 ? qlm_policy_dtype(it->role, b->chosen) : QLM_F32;
    it->group = qlm_dtype_is_quant(it->dtype) ? b->group : 0;
    it->n_dims = n_dims;
    it->dims[0] = d0;
    it->dims[1] = n_dims == 2 ? d1 : 0;
    it->rows = n_dims == 2 ? d0 : 1;
    it->cols = n_dims == 2 ? d1 : d0;
    if (it->group && it->cols % it->group != 0)
        return qlm_error_set(err, QLM_E_INVALID,
                             "%s: tensor '%s' has %llu input columns, not a multiple of "
                             "group %u (try --group 32 or a float --type)",
                             b->name, it->name, (unsigned long long)it->cols, it->group);
    if (!qlm_tensor_bytes(it->dtype, it->rows, it->cols, it->group, &it->bytes))
        return qlm_error_set(err, QLM_E_RANGE, "%s: tensor '%s' is too large", b->name,
                             it->name);
    p->n++;
    p->n_params += t->numel;
    p->bytes_out += it->bytes;
    p->bytes_in += t->size;
    return QLM_OK;
}

static bool same_bytes(const struct qlm_st_tensor *a, const struct qlm_st_tensor *b)
{
    if (a->dtype != b->dtype || a->size != b->size)
        return false;
    /* Compare in slices and drop each slice's pages, so that checking a
     * 300 MB head costs no resident memory. */
    const unsigned char *pa = a->data, *pb = b->data;
    const uint64_t slice = (uint64_t)8 << 20;
    bool eq = true;
    for (uint64_t off = 0; off < a->size && eq; off += slice) {
        uint64_t n = a->size - off < slice ? a->size - off : slice;
        eq = memcmp(pa + off, pb + off, (size_t)n) == 0;
        qlm_release_range(pa + off, n);
        qlm_release_range(pb + off, n);
    }
    return eq;
}

/* lm_head.weight: written only when the head differs from the embedding
 * (tie_word_embeddings false and other bytes); otherwise checked and
 * dropped, and the file says tied. */
static enum qlm_err add_head(struct builder *b, const struct qlm_schema_tensor *want,
                             struct qlm_error *err)
{
    struct qlm_plan *p = b->plan;
    const struct qlm_st_tensor *head = qlm_st_find(b->m, want->name);
    if (head == NULL) {
        if (!b->cfg->tied)
            return qlm_error_set(err, QLM_E_NOTFOUND,
                                 "%s: missing tensor 'lm_head.weight' (tie_word_embeddings is "
                                 "false)",
                                 b->name);
        p->tied = true;
        return QLM_OK;
    }
    QLM_TRY(find(b, want, &head, err));
    if (b->cfg->tied) {
        p->tied = p->head_dropped = true;
        return QLM_OK;
    }
    if (same_bytes(p->items[0].src, head)) {
        p->tied = p->head_dropped = p->head_equal = true;
        return QLM_OK;
    }
    return add(b, want, err);
}

static enum qlm_err build(struct builder *b, struct qlm_error *err)
{
    /* the schema's tensors, the head included: the policy decides on it */
    struct qlm_model_params c = *b->cfg;
    c.tied = false;
    struct qlm_schema_tensor want;
    for (size_t pos = 0; qlm_schema_next(&c, &pos, &want);)
        QLM_TRY(want.kind == QLM_T_HEAD ? add_head(b, &want, err) : add(b, &want, err));

    for (size_t i = 0; i < b->m->n_tensors; i++) {
        const struct qlm_st_tensor *t = &b->m->tensors[i];
        if (b->seen[i] || qlm_schema_role(t->name) == QLM_ROLE_SKIP)
            continue;
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: unexpected tensor '%.200s' (not implied by %s)",
                             st_file(b, t), t->name, b->params_from);
    }
    return QLM_OK;
}

enum qlm_err qlm_plan_build(const struct qlm_model_params *cfg, const struct qlm_st_model *m,
                            const char *name, const char *params_from, enum qlm_dtype chosen,
                            uint32_t group, struct qlm_plan *plan, struct qlm_error *err)
{
    memset(plan, 0, sizeof *plan);
    if ((int)chosen < 0 || chosen >= QLM_DTYPE_COUNT)
        return qlm_error_set(err, QLM_E_INVALID, "unknown output type %d", (int)chosen);
    if (qlm_dtype_is_quant(chosen) && !qlm_policy_group_ok(group))
        return qlm_error_set(err, QLM_E_INVALID,
                             "group %u is not supported (a multiple of 32, 32 .. 4096)", group);
    struct builder b = {cfg, m, name, params_from, chosen, group, plan, 0, NULL};
    b.seen = calloc(m->n_tensors ? m->n_tensors : 1, 1);
    if (!b.seen)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", name);
    enum qlm_err rc = build(&b, err);
    free(b.seen);
    if (rc != QLM_OK)
        qlm_plan_free(plan);
    return rc;
}

void qlm_plan_free(struct qlm_plan *plan)
{
    free(plan->items);
    memset(plan, 0, sizeof *plan);
}
