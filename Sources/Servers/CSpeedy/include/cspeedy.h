#ifndef SPEEDY_CSPEEDY_H
#define SPEEDY_CSPEEDY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// Extends a CRC-32C (Castagnoli) over `length` bytes.
///
/// Pass 0 as `crc` to start; feed the result back in to continue over more bytes. Uses the
/// SSE4.2 `crc32` instruction when the CPU has it and a table otherwise; both give the same value.
uint32_t speedy_crc32c_extend(uint32_t crc, const void *bytes, size_t length);

/// 1 when the hardware instruction is in use, 0 for the table.
int speedy_crc32c_is_hardware(void);

/// Linux fallocate(2) (a GNU extension Swift's Glibc module does not export). Returns 0 or errno.
int speedy_fallocate(int fd, int mode, off_t offset, off_t length);

/// The O_DIRECT open flag (a GNU extension Swift's Glibc module does not export); 0 where there is none.
int speedy_o_direct(void);

/// Bytes of a SHA-256 hashing state; the state is plain data, so an upload can save it between
/// requests and any imageserver can continue hashing where another stopped.
#define SPEEDY_SHA256_STATE_BYTES 112

/// Starts a SHA-256 in `state` (SPEEDY_SHA256_STATE_BYTES bytes). Returns 1 on success.
int speedy_sha256_init(void *state);

/// Feeds `length` bytes into the hash. Returns 1 on success.
int speedy_sha256_update(void *state, const void *bytes, size_t length);

/// Writes the 32-byte digest of a copy of `state` (the state itself can continue). Returns 1 on success.
int speedy_sha256_final(const void *state, unsigned char *out32);

/// One-shot SHA-512 (manifests addressed by sha512 digests).
void speedy_sha512(const void *bytes, size_t length, unsigned char *out64);

/// Fixes glibc's mmap threshold (so large buffers are unmapped when freed) and caps its arenas.
void speedy_tune_malloc(int mmap_threshold, int arena_max);

/// The chunk buffer pool's allocator functions (buffer_pool.c): large blocks are kept for reuse
/// up to a limit, so their pages stay mapped.
void *speedy_pool_alloc(size_t size);
void *speedy_pool_realloc(void *pointer, size_t old_size, size_t new_size);
void speedy_pool_free(void *_Nonnull pointer);
void speedy_pool_copy(void *_Nonnull destination, const void *_Nonnull source, size_t count);
/// Bytes of free blocks the pool may keep.
void speedy_pool_set_limit(size_t bytes);
/// Bytes of free blocks the pool keeps now.
size_t speedy_pool_pooled_bytes(void);

#endif
