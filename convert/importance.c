/*
 * importance.c — an .imat file matched to a conversion plan.  The names are
 * the .qlm's: an .imat measured on the f32 conversion of a checkpoint names
 * exactly the matmul weights the plan writes for it.
 */
#include "importance.h"

#include <string.h>

/* Whether the plan item is multiplied by activations (and so has an entry):
 * a tied head is stored as the embedding. */
static bool is_matmul(const struct qlm_plan *plan, const struct qlm_plan_item *it)
{
    return it->role == QLM_ROLE_LINEAR || it->role == QLM_ROLE_HEAD ||
           (it->role == QLM_ROLE_EMBED && plan->tied);
}

static enum qlm_err check_model(const struct qlm_imat *im, const char *path,
                                const struct qlm_model_params *cfg, struct qlm_error *err)
{
    const char *arch = qlm_arch_name(cfg->arch);
    if (strcmp(im->model.arch, arch) != 0)
        return qlm_error_set(err, QLM_E_INVALID, "%s: measured on a %s model, the checkpoint "
                             "is %s", path, im->model.arch, arch);
    const struct { const char *key; uint32_t got; uint64_t want; } dims[] = {
        {"n_layers", im->model.n_layers, cfg->n_layers},
        {"hidden", im->model.hidden, cfg->hidden},
        {"ffn_hidden", im->model.ffn_hidden, cfg->ffn_hidden},
        {"n_heads", im->model.n_heads, cfg->n_heads},
        {"n_kv_heads", im->model.n_kv_heads, cfg->n_kv_heads},
        {"head_dim", im->model.head_dim, cfg->head_dim},
        {"vocab_size", im->model.vocab_size, cfg->vocab_size},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].got != dims[i].want)
            return qlm_error_set(err, QLM_E_INVALID, "%s: measured on a model with %s %u, the "
                                 "checkpoint has %llu", path, dims[i].key, dims[i].got,
                                 (unsigned long long)dims[i].want);
    return QLM_OK;
}

/* Every matmul weight of the plan has its entry, and every entry a weight. */
static enum qlm_err check_entries(const struct qlm_imat *im, const char *path,
                                  const struct qlm_plan *plan, struct qlm_error *err)
{
    uint32_t matched = 0;
    for (size_t i = 0; i < plan->n; i++) {
        const struct qlm_plan_item *it = &plan->items[i];
        if (!is_matmul(plan, it))
            continue;
        const struct qlm_imat_entry *e = qlm_imat_find(im, it->name);
        if (e == NULL)
            return qlm_error_set(err, QLM_E_INVALID, "%s: no entry for '%s' (measured on "
                                 "another model?)", path, it->name);
        if (e->cols != it->cols)
            return qlm_error_set(err, QLM_E_INVALID, "%s: entry '%s' has %u columns, the "
                                 "checkpoint's tensor %llu", path, it->name, e->cols,
                                 (unsigned long long)it->cols);
        matched++;
    }
    for (uint32_t k = 0; matched < im->n_entries && k < im->n_entries; k++) {
        const char *name = im->entries[k].name;
        bool found = false;
        for (size_t i = 0; i < plan->n && !found; i++)
            found = is_matmul(plan, &plan->items[i]) && strcmp(plan->items[i].name, name) == 0;
        if (!found)
            return qlm_error_set(err, QLM_E_INVALID, "%s: entry '%s' is not a matmul weight "
                                 "of the checkpoint", path, name);
    }
    return QLM_OK;
}

enum qlm_err qlm_importance_load(const char *path, const struct qlm_model_params *cfg,
                                 const struct qlm_plan *plan, struct qlm_imat **out,
                                 struct qlm_error *err)
{
    struct qlm_imat *im;
    *out = NULL;
    QLM_TRY(qlm_imat_read(path, &im, err));
    enum qlm_err rc = check_model(im, path, cfg, err);
    if (rc == QLM_OK)
        rc = check_entries(im, path, plan, err);
    if (rc != QLM_OK) {
        qlm_imat_free(im);
        return rc;
    }
    *out = im;
    return QLM_OK;
}

const float *qlm_importance_of(const struct qlm_imat *im, const struct qlm_plan *plan,
                               const struct qlm_plan_item *item)
{
    if (im == NULL || !is_matmul(plan, item))
        return NULL;
    const struct qlm_imat_entry *e = qlm_imat_find(im, item->name);
    return e ? e->values : NULL;
}
