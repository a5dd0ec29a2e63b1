/*
 * gguf_import.h — a llama.cpp GGUF file as the converter's three inputs, so
 * that the plan, the policy and the writer stay the one path they are for a
 * Hugging Face checkpoint:
 *
 *   hyper-parameters   from the metadata, then qlm_schema_check (as
 *                      config.json's are)
 *   tensors            a checkpoint view under Hugging Face names
 *                      (qlm_gguf_st_view), the dtypes checked
 *   tokenizer          from tokenizer.ggml.*, then the checks of the
 *                      tokenizer.json importer (qlm_schema_regex included)
 *
 * Metadata read (ARCH = general.architecture: qwen3, qwen2 or llama):
 *   ARCH.block_count  .embedding_length  .feed_forward_length
 *   .attention.head_count  .attention.head_count_kv (default head_count)
 *   .attention.key_length (default embedding_length / head_count;
 *     .attention.value_length must equal it)  .context_length
 *   .attention.layer_norm_rms_epsilon  .rope.freq_base (default 10000)
 *   .vocab_size (optional: must equal token_embd.weight's rows, which are
 *     the vocabulary)
 * Refused by name: ARCH.rope.scaling.type other than "none", a
 *   .rope.dimension_count other than head_dim (partial RoPE),
 *   .expert_count > 0, tensors of other ggml types than F32, F16, BF16, Q8_0
 *   and Q4_0, tensors the table below does not name.
 *
 * Tensors (N a layer; weights .weight, Qwen2's q/k/v biases .bias):
 *   token_embd            model.embed_tokens
 *   output_norm           model.norm
 *   output                lm_head (absent: the head is tied)
 *   blk.N.attn_norm       model.layers.N.input_layernorm
 *   blk.N.attn_q/k/v      model.layers.N.self_attn.q_proj/k_proj/v_proj
 *   blk.N.attn_output     model.layers.N.self_attn.o_proj
 *   blk.N.attn_q_norm/k_norm  model.layers.N.self_attn.q_norm/k_norm
 *   blk.N.ffn_norm        model.layers.N.post_attention_layernorm
 *   blk.N.ffn_gate/up/down    model.layers.N.mlp.gate_proj/up_proj/down_proj
 * llama.cpp's converter reorders the rows of a Llama's q_proj and k_proj for
 * its RoPE (in each head of head_dim rows, row 2i + j holds row
 * j * head_dim / 2 + i); the import reads them back in Hugging Face order
 * (qlm_gguf_src_row).  Qwen2/3 GGUFs are not reordered (NEOX RoPE).
 *
 * Tokenizer: tokenizer.ggml.model "gpt2" (byte-level BPE); .pre "qwen2"
 * (Qwen2/3's pre-split regex, NFC, as their tokenizer.json has); other pre
 * names are refused by name ("llama-bpe" too: Llama 3 skips the merges of
 * words that are whole tokens, which the runtime does not do).  .tokens
 * (NORMAL and UNUSED ones in the byte-level alphabet, CONTROL and
 * USER_DEFINED ones as raw text: kinds special and added), .token_type,
 * .merges ("a b"), .bos/eos/padding_token_id, .eot/eom_token_id (also
 * eos), .add_bos_token, tokenizer.chat_template.  The UNUSED "[PADn]"
 * tokens llama.cpp appends up to the embedding's rows are dropped, so the
 * tokenizer is the one tokenizer.json had.  eos ids: eos, eot, eom, then
 * <|endoftext|> and <|im_end|> when those tokens exist (as the tokenizer.json
 * importer adds them).
 */
#ifndef QLM_GGUF_IMPORT_H
#define QLM_GGUF_IMPORT_H

#include "qlm_gguf.h"
#include "qlm_schema.h"
#include "policy.h"

/* The Hugging Face name of a GGUF tensor name (false if the table has none)
 * and back. */
bool qlm_gguf_name_to_hf(const char *gguf, char *hf, size_t len);
bool qlm_gguf_name_from_hf(const char *hf, char *gguf, size_t len);

/* Hyper-parameters from g's metadata and tensors ("m.gguf: metadata
 * 'qwen3.block_count' ..."). */
enum qlm_err qlm_gguf_params(const struct qlm_gguf *g, struct qlm_model_params *p,
                             struct qlm_error *err);

/* g's tensors under Hugging Face names, each of a type the converter reads. */
enum qlm_err qlm_gguf_checkpoint(const struct qlm_gguf *g, struct qlm_st_model **m,
                                 struct qlm_error *err);

/* The tokenizer; *out is released with qlm_tokdata_free. */
enum qlm_err qlm_gguf_tokenizer(const struct qlm_gguf *g, struct qlm_tokdata *out,
                                struct qlm_error *err);

/* Marks the plan items whose rows llama.cpp reordered (a Llama's q_proj and
 * k_proj weights): their perm_head_dim becomes head_dim. */
void qlm_gguf_mark_rows(const struct qlm_model_params *p, struct qlm_plan *plan);
/* The source row that holds Hugging Face row r of an item (its order undone
 * when perm_head_dim is set). */
uint64_t qlm_gguf_src_row(const struct qlm_plan_item *it, uint64_t r);

#endif
