/*
 * policy.c — the quantization policy and the tensor-set check.
 */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

enum qlm_role qlm_policy_role(const char *name)
{
    if (strcmp(name, "model.embed_tokens.weight") == 0)
        return QLM_ROLE_EMBED;
    if (strcmp(name, "lm_head.weight") == 0)
        return QLM_ROLE_HEAD;
    if (ends_with(name, "rotary_emb.inv_freq"))
        return QLM_ROLE_SKIP;
    if (ends_with(name, ".bias"))
        return QLM_ROLE_BIAS;
    if (ends_with(name, "norm.weight"))
        return QLM_ROLE_NORM;
    if (strncmp(name, "model.layers.", 13) == 0 && ends_with(name, "_proj.weight"))
        return QLM_ROLE_LINEAR;
    return QLM_ROLE_UNKNOWN;
}

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
    const struct qlm_hf_config *cfg;
    const struct qlm_st_model *m;
    const char *name;
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

static enum qlm_err check_shape(struct builder *b, const struct qlm_st_tensor *t, int n_dims,
                                const uint64_t *dims, struct qlm_error *err)
{
    bool ok = t->n_dims == n_dims;
    for (int i = 0; ok && i < n_dims; i++)
        ok = t->dims[i] == dims[i];
    if (!ok) {
        char want[64], got[96];
        if (n_dims == 1)
            snprintf(want, sizeof want, "[%llu]", (unsigned long long)dims[0]);
        else
            snprintf(want, sizeof want, "[%llu, %llu]", (unsigned long long)dims[0],
                     (unsigned long long)dims[1]);
        size_t k = 0;
        got[k++] = '[';
        for (int i = 0; i < t->n_dims && i < 8 && k < sizeof got - 24; i++)
            k += (size_t)snprintf(got + k, sizeof got - k, "%s%llu", i ? ", " : "",
                                  (unsigned long long)t->dims[i]);
        snprintf(got + k, sizeof got - k, "]");
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: tensor '%s' has shape %s, config.json implies %s", st_file(b, t),
                             t->name, got, want);
    }
    if (t->dtype != QLM_ST_F32 && t->dtype != QLM_ST_F16 && t->dtype != QLM_ST_BF16)
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: tensor '%s' has dtype %s (BF16, F16 or F32 expected)",
                             st_file(b, t), t->name, t->dtype_name);
    return QLM_OK;
}

/* Append the tensor `tname` (role from its name) with the expected shape. */
static enum qlm_err add(struct builder *b, const char *tname, int n_dims, uint64_t d0, uint64_t d1,
                        struct qlm_error *err)
{
    const struct qlm_st_tensor *t = qlm_st_find(b->m, tname);
    if (!t)
        return qlm_error_set(err, QLM_E_NOTFOUND, "%s: missing tensor '%s'", b->name, tname);
    uint64_t dims[2] = {d0, d1};
    QLM_TRY(check_shape(b, t, n_dims, dims, err));
    mark_seen(b, t);

    struct qlm_plan *p = b->plan;
    if (p->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        struct qlm_plan_item *ni = realloc(p->items, ncap * sizeof *ni);
        if (!ni)
            return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory", b->name);
        p->items = ni;
        b->cap = ncap;
    }
    struct qlm_plan_item *it = &p->items[p->n];
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", tname);
    it->src = t;
    it->role = qlm_policy_role(tname);
    it->dtype = n_dims == 2 ? qlm_policy_dtype(it->role, b->chosen) : QLM_F32;
    if (n_dims == 1 && it->role != QLM_ROLE_NORM && it->role != QLM_ROLE_BIAS)
        it->dtype = QLM_F32;
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
                             b->name, tname, (unsigned long long)it->cols, it->group);
    if (!qlm_tensor_bytes(it->dtype, it->rows, it->cols, it->group, &it->bytes))
        return qlm_error_set(err, QLM_E_RANGE, "%s: tensor '%s' is too large", b->name, tname);
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

static enum qlm_err build(struct builder *b, struct qlm_error *err)
{
    const struct qlm_hf_config *c = b->cfg;
    uint64_t H = c->hidden, q_out = c->n_heads * c->head_dim, kv_out = c->n_kv_heads * c->head_dim;
    char nm[128];

    QLM_TRY(add(b, "model.embed_tokens.weight", 2, c->vocab_size, H, err));
    for (uint64_t l = 0; l < c->n_layers; l++) {
#define L(suffix) (snprintf(nm, sizeof nm, "model.layers.%llu.%s", (unsigned long long)l, suffix), nm)
        QLM_TRY(add(b, L("input_layernorm.weight"), 1, H, 0, err));
        QLM_TRY(add(b, L("self_attn.q_proj.weight"), 2, q_out, H, err));
        if (c->qkv_bias)
            QLM_TRY(add(b, L("self_attn.q_proj.bias"), 1, q_out, 0, err));
        QLM_TRY(add(b, L("self_attn.k_proj.weight"), 2, kv_out, H, err));
        if (c->qkv_bias)
            QLM_TRY(add(b, L("self_attn.k_proj.bias"), 1, kv_out, 0, err));
        QLM_TRY(add(b, L("self_attn.v_proj.weight"), 2, kv_out, H, err));
        if (c->qkv_bias)
            QLM_TRY(add(b, L("self_attn.v_proj.bias"), 1, kv_out, 0, err));
        if (c->qk_norm) {
            QLM_TRY(add(b, L("self_attn.q_norm.weight"), 1, c->head_dim, 0, err));
            QLM_TRY(add(b, L("self_attn.k_norm.weight"), 1, c->head_dim, 0, err));
        }
        QLM_TRY(add(b, L("self_attn.o_proj.weight"), 2, H, q_out, err));
        QLM_TRY(add(b, L("post_attention_layernorm.weight"), 1, H, 0, err));
        QLM_TRY(add(b, L("mlp.gate_proj.weight"), 2, c->ffn_hidden, H, err));
        QLM_TRY(add(b, L("mlp.up_proj.weight"), 2, c->ffn_hidden, H, err));
        QLM_TRY(add(b, L("mlp.down_proj.weight"), 2, H, c->ffn_hidden, err));
#undef L
    }
    QLM_TRY(add(b, "model.norm.weight", 1, H, 0, err));

    const struct qlm_st_tensor *head = qlm_st_find(b->m, "lm_head.weight");
    struct qlm_plan *p = b->plan;
    if (!head) {
        if (!c->tied)
            return qlm_error_set(err, QLM_E_NOTFOUND,
                                 "%s: missing tensor 'lm_head.weight' (tie_word_embeddings is "
                                 "false)",
                                 b->name);
        p->tied = true;
    } else {
        uint64_t dims[2] = {c->vocab_size, H};
        QLM_TRY(check_shape(b, head, 2, dims, err));
        mark_seen(b, head);
        const struct qlm_st_tensor *emb = p->items[0].src;
        if (c->tied) {
            p->tied = p->head_dropped = true;
        } else if (same_bytes(emb, head)) {
            p->tied = p->head_dropped = p->head_equal = true;
        } else {
            QLM_TRY(add(b, "lm_head.weight", 2, c->vocab_size, H, err));
        }
    }

    for (size_t i = 0; i < b->m->n_tensors; i++) {
        const struct qlm_st_tensor *t = &b->m->tensors[i];
        if (b->seen[i] || qlm_policy_role(t->name) == QLM_ROLE_SKIP)
            continue;
        return qlm_error_set(err, QLM_E_FORMAT,
                             "%s: unexpected tensor '%.200s' (not implied by config.json)",
                             st_file(b, t), t->name);
    }
    return QLM_OK;
}

enum qlm_err qlm_plan_build(const struct qlm_hf_config *cfg, const struct qlm_st_model *m,
                            const char *name, enum qlm_dtype chosen, uint32_t group,
                            struct qlm_plan *plan, struct qlm_error *err)
{
    memset(plan, 0, sizeof *plan);
    if ((int)chosen < 0 || chosen >= QLM_DTYPE_COUNT)
        return qlm_error_set(err, QLM_E_INVALID, "unknown output type %d", (int)chosen);
    if (qlm_dtype_is_quant(chosen) && !qlm_policy_group_ok(group))
        return qlm_error_set(err, QLM_E_INVALID,
                             "group %u is not supported (a multiple of 32, 32 .. 4096)", group);
    struct builder b = {cfg, m, name, chosen, group, plan, 0, NULL};
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
