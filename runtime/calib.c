/*
 * calib.c — calibration statistics: for every linear weight, the per-column
 * sum of squares of the inputs it multiplies and the number of rows
 * (qlm.h).  Weights that read one input (q/k/v, gate/up) share one sum, so
 * a layer adds four inputs; the forward pass calls calib_add where each is
 * produced.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
#include "forward.h"
#include "team.h"

/* Columns per work item of calib_add. */
#define CALIB_CHUNK 64

void calib_add(struct team_worker *w, struct calib_sum *sum, const float *x, int nt)
{
    int n = sum->n, items = (n + CALIB_CHUNK - 1) / CALIB_CHUNK, i;
    while (team_claim(w, items, &i)) {
        int c0 = i * CALIB_CHUNK, c1 = c0 + CALIB_CHUNK < n ? c0 + CALIB_CHUNK : n;
        double *s = sum->sum_sq;
        for (int t = 0; t < nt; t++) {
            const float *row = x + (size_t)t * n;
            for (int c = c0; c < c1; c++)
                s[c] += (double)row[c] * row[c]; /* exact product: float squared fits a double */
        }
        if (i == 0)
            sum->count += (uint64_t)nt;
    }
    team_phase_end(w, items);
}

void calib_free(struct qlm_calib *c)
{
    if (c == NULL)
        return;
    free(c->sums);
    free(c->entries);
    free(c->storage);
    free(c);
}

/* The sum a schema tensor's input goes to, or -1 for tensors that are not
 * a linear weight (norms, biases; the embedding unless it is the head). */
static int input_of(const struct qlm_model *m, const struct qlm_schema_tensor *t, int n_sums)
{
    int l = t->layer;
    switch (t->kind) {
    case QLM_T_WQ: case QLM_T_WK: case QLM_T_WV: return l * CALIB_SITES + CALIB_ATTN_IN;
    case QLM_T_WO: return l * CALIB_SITES + CALIB_ATTN_OUT;
    case QLM_T_WGATE: case QLM_T_WUP: return l * CALIB_SITES + CALIB_FFN_IN;
    case QLM_T_WDOWN: return l * CALIB_SITES + CALIB_FFN_MID;
    case QLM_T_HEAD: return n_sums - 1;
    case QLM_T_EMBED: return m->params.tied ? n_sums - 1 : -1;
    default: return -1;
    }
}

/* Sums and entries for m, zeroed: the layers' weights in schema order, the
 * head last (a tied head is the embedding, first in the schema). */
static struct qlm_calib *calib_new(const struct qlm_model *m)
{
    const struct qlm_hparams *hp = &m->hp;
    struct qlm_calib *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->n_sums = hp->n_layers * CALIB_SITES + 1;
    c->sums = calloc((size_t)c->n_sums, sizeof *c->sums);
    c->entries = calloc((size_t)hp->n_layers * 7 + 1, sizeof *c->entries);
    const int width[CALIB_SITES] = {hp->hidden, hp->n_heads * hp->head_dim, hp->hidden,
                                    hp->ffn_hidden};
    size_t total = 0;
    for (int i = 0; i < c->n_sums; i++)
        total += (size_t)(i < c->n_sums - 1 ? width[i % CALIB_SITES] : hp->hidden);
    c->storage = calloc(total, sizeof *c->storage);
    if (c->sums == NULL || c->entries == NULL || c->storage == NULL) {
        calib_free(c);
        return NULL;
    }
    double *p = c->storage;
    for (int i = 0; i < c->n_sums; i++) {
        c->sums[i].n = i < c->n_sums - 1 ? width[i % CALIB_SITES] : hp->hidden;
        c->sums[i].sum_sq = p;
        p += c->sums[i].n;
    }
    struct calib_entry head = {.sum = -1};
    struct qlm_schema_tensor t;
    for (size_t pos = 0; qlm_schema_next(&m->params, &pos, &t);) {
        int sum = input_of(m, &t, c->n_sums);
        struct calib_entry *e = sum == c->n_sums - 1 ? &head
                                : sum >= 0 ? &c->entries[c->n_entries++] : NULL;
        if (e != NULL) {
            snprintf(e->name, sizeof e->name, "%s", t.name);
            e->sum = sum;
        }
    }
    c->entries[c->n_entries++] = head;
    return c;
}

enum qlm_err qlm_session_collect_stats(struct qlm_session *s, bool on, struct qlm_error *err)
{
    if (!on) {
        s->collect = false;
        return QLM_OK;
    }
    if (s->calib == NULL && (s->calib = calib_new(s->m)) == NULL)
        return qlm_error_set(err, QLM_E_NOMEM, "%s: out of memory for activation statistics",
                             s->m->file->path);
    struct qlm_calib *c = s->calib;
    for (int i = 0; i < c->n_sums; i++) {
        c->sums[i].count = 0;
        memset(c->sums[i].sum_sq, 0, (size_t)c->sums[i].n * sizeof(double));
    }
    s->collect = true;
    return QLM_OK;
}

int qlm_session_n_stats(const struct qlm_session *s)
{
    return s->calib ? s->calib->n_entries : 0;
}

static void fill(const struct qlm_calib *c, int i, struct qlm_weight_stats *out)
{
    const struct calib_sum *sum = &c->sums[c->entries[i].sum];
    out->name = c->entries[i].name;
    out->cols = sum->n;
    out->count = sum->count;
    out->sum_sq = sum->sum_sq;
}

enum qlm_err qlm_session_stats(const struct qlm_session *s, int i, struct qlm_weight_stats *out,
                               struct qlm_error *err)
{
    int n = qlm_session_n_stats(s);
    if (i < 0 || i >= n)
        return qlm_error_set(err, QLM_E_RANGE, "%s: statistics %d requested, the session has "
                             "%d", s->m->file->path, i, n);
    fill(s->calib, i, out);
    return QLM_OK;
}

enum qlm_err qlm_session_stats_find(const struct qlm_session *s, const char *name,
                                    struct qlm_weight_stats *out, struct qlm_error *err)
{
    for (int i = 0; name != NULL && i < qlm_session_n_stats(s); i++)
        if (strcmp(s->calib->entries[i].name, name) == 0) {
            fill(s->calib, i, out);
            return QLM_OK;
        }
    return qlm_error_set(err, QLM_E_NOTFOUND, "%s: no statistics for '%.200s'%s",
                         s->m->file->path, name ? name : "(null)",
                         s->calib ? "" : " (none collected)");
}
