/*
 * convert.h — the conversion driver behind qlm-convert: config.json +
 * safetensors + tokenizer.json -> one .qlm file, streamed tensor by tensor.
 */
#ifndef QLM_CONVERT_H
#define QLM_CONVERT_H

#include "qlm_format.h"

struct qlm_convert_opts {
    const char *model_dir;
    const char *out_path;
    enum qlm_dtype type;     /* --type (default QLM_Q8) */
    uint32_t group;          /* --group (default 32) */
    bool force;              /* overwrite an existing out_path */
    int threads;             /* <= 0: number of online CPUs */
    bool allow_nonfinite;    /* NaN -> 0, +-inf -> +-largest finite, with a warning */
    const char *imatrix;     /* --imatrix FILE.imat: column importance, or NULL */
    /* Optional callbacks (library code prints nothing itself). */
    void (*progress)(size_t tensor, size_t n_tensors, uint64_t bytes_done,
                     uint64_t bytes_total, void *ctx);
    void (*warn)(const char *msg, void *ctx);
    void *ctx;
};

struct qlm_convert_stats {
    size_t n_tensors;        /* written */
    uint64_t n_params;       /* elements written */
    uint64_t bytes_in;       /* source tensor bytes read */
    uint64_t bytes_out;      /* tensor data written */
    uint64_t file_size;      /* size of the .qlm file */
    uint64_t n_fixed;        /* non-finite values replaced (--allow-nonfinite) */
    bool tied;
    double seconds;
};

enum qlm_err qlm_convert(const struct qlm_convert_opts *o, struct qlm_convert_stats *st,
                         struct qlm_error *err);

#endif
