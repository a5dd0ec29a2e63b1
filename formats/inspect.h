/*
 * inspect.h — the parts of qlm-inspect: inspect_main.c (options, .qlm files
 * and the helpers below) and inspect_gguf.c (GGUF files).  Not installed.
 */
#ifndef QLM_INSPECT_H
#define QLM_INSPECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qlm_format.h"

/* Bytes on stdout, escaping what a terminal should not see. */
void inspect_escaped(const char *s, size_t len);
/* A JSON string, or null if the bytes are not UTF-8 (JSON cannot hold them). */
json_t *inspect_jstr(const char *s, size_t len);
/* "a x b x c" of n_dims dims into out (n bytes). */
void inspect_dims(const uint64_t *dims, unsigned n_dims, char *out, size_t n);
/* Bits per weight of bytes holding numel elements (0 for none). */
double inspect_bpw(uint64_t bytes, uint64_t numel);
/* A GGUF file (inspect_gguf.c): its header, keys, tensors and totals as
 * text on stdout, or as one JSON object; and the --verify check, that every
 * tensor of a type qlm-convert reads holds finite values ("FILE: tensor
 * 'NAME' has NaN at row R"), with progress over the bytes decoded. */
struct qlm_gguf;
void inspect_gguf_text(const struct qlm_gguf *g);
json_t *inspect_gguf_json(const struct qlm_gguf *g, bool verified);
enum qlm_err inspect_gguf_verify(const struct qlm_gguf *g,
                                 void (*progress)(uint64_t done, uint64_t total, void *ctx),
                                 void *ctx, struct qlm_error *err);

#endif
