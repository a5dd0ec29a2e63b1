/*
 * importance.h — qlm-convert --imatrix: an .imat file (formats/qlm_imat.h)
 * checked against the checkpoint being converted, and each tensor's
 * per-column importance for the quantizer (qlm_type_traits' encode).
 */
#ifndef QLM_IMPORTANCE_H
#define QLM_IMPORTANCE_H

#include "policy.h"
#include "qlm_imat.h"

/* Read path and check that it describes this checkpoint: the same
 * architecture and sizes as cfg, an entry with the right column count for
 * every matmul weight the plan writes (the linear weights, the head, and
 * the embedding when it is the head), and no other entry.  A mismatch is
 * one line naming path and what differs. */
enum qlm_err qlm_importance_load(const char *path, const struct qlm_model_params *cfg,
                                 const struct qlm_plan *plan, struct qlm_imat **out,
                                 struct qlm_error *err);

/* The importance of item's input columns (item->cols values), or NULL when
 * im is NULL or the item is no matmul weight (norms, biases, an embedding
 * that is not the head). */
const float *qlm_importance_of(const struct qlm_imat *im, const struct qlm_plan *plan,
                               const struct qlm_plan_item *item);

#endif
