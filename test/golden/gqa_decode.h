/* Public interface of one minductor kernel library (generated; see docs/abi.md). Plain C. */
#ifndef MINDUCTOR_KERNEL_H
#define MINDUCTOR_KERNEL_H

#include <stdint.h>

#define MD_ABI_VERSION 1

/* Compile-time constants of this library; batch, q_len and kv_len are runtime fields of md_args. */
#define MD_HQ 32
#define MD_HKV 8
#define MD_Q_DIM 128
#define MD_V_DIM 128
#define MD_SPARSE_Q_BLOCK_SIZE 128
#define MD_SPARSE_KV_BLOCK_SIZE 128
#define MD_PAGE_SIZE 0 /* 0: unpaged */
#define MD_NUM_BUFFERS 0
#define MD_DTYPE "bfloat16"

#define MD_STATUS_OK 0
#define MD_STATUS_BUFFER_INDEX 1 /* a mod indexed a captured buffer out of range */
#define MD_STATUS_BAD_ARGS 2     /* an argument failed a native sanity check */
#define MD_STATUS_NO_MEMORY 3    /* scratch allocation failed */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct md_args {
  int64_t batch;
  int64_t q_len;
  int64_t kv_len;
  const void* query;
  const void* key;
  const void* value;
  void* out;
  float* lse;
  const int32_t* page_table;
  const int32_t* seq_lens;
  int64_t max_pages_per_seq;
  int64_t num_pages;
  const int32_t* kv_num_blocks;
  const int32_t* kv_indices;
  const int32_t* full_kv_num_blocks;
  const int32_t* full_kv_indices;
  int64_t mask_batch, mask_heads, q_blocks, kv_blocks;
  const void* const* buffers;
  const int64_t* buffer_dims;
  int64_t partition_size;
  int32_t num_threads;
  int32_t status;
} md_args;

int32_t md_abi_version(void);
int32_t md_flash_attention(md_args* args);
int32_t md_flash_decoding(md_args* args);
int32_t md_build_block_mask(md_args* args);
int32_t md_naive_attention(md_args* args);

#ifdef __cplusplus
}
#endif

#endif /* MINDUCTOR_KERNEL_H */
