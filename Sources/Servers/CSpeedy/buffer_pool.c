// A bounded pool of large blocks for chunk buffers (see ChunkBufferPool.swift).
//
// Every block carries a 64-byte header holding its size, so the free function (which NIO calls
// without a size) knows what it frees. Blocks of 1 MiB or more are rounded up to whole MiB and,
// when freed, kept on a free list of at most `limit` bytes instead of going back to the system:
// the next chunk buffer of that size reuses pages already mapped, with no page faults and no
// zeroing by the kernel. Smaller blocks go straight to malloc and free.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cspeedy.h"

#define HEADER 64
#define LARGE ((size_t)1 << 20)

struct block {
    size_t size;          // usable bytes after the header
    struct block *next;   // next free block, while pooled
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block *free_list;
static size_t pooled_bytes;
static size_t pool_limit = (size_t)32 << 20;

void speedy_pool_set_limit(size_t bytes) {
    pthread_mutex_lock(&lock);
    pool_limit = bytes;
    pthread_mutex_unlock(&lock);
}

size_t speedy_pool_pooled_bytes(void) {
    pthread_mutex_lock(&lock);
    size_t bytes = pooled_bytes;
    pthread_mutex_unlock(&lock);
    return bytes;
}

void *speedy_pool_alloc(size_t size) {
    size_t usable = size >= LARGE ? (size + LARGE - 1) / LARGE * LARGE : size;
    if (usable >= LARGE) {
        pthread_mutex_lock(&lock);
        struct block **link = &free_list;
        while (*link && (*link)->size != usable) link = &(*link)->next;
        struct block *found = *link;
        if (found) {
            *link = found->next;
            pooled_bytes -= found->size;
        }
        pthread_mutex_unlock(&lock);
        if (found) return (char *)found + HEADER;
    }
    struct block *fresh = malloc(HEADER + (usable ? usable : 1));
    if (!fresh) abort();  // NIO's allocator contract: never nil.
    fresh->size = usable;
    return (char *)fresh + HEADER;
}

void speedy_pool_free(void *pointer) {
    if (!pointer) return;
    struct block *b = (struct block *)((char *)pointer - HEADER);
    if (b->size >= LARGE) {
        pthread_mutex_lock(&lock);
        if (pooled_bytes + b->size <= pool_limit) {
            b->next = free_list;
            free_list = b;
            pooled_bytes += b->size;
            b = NULL;
        }
        pthread_mutex_unlock(&lock);
    }
    free(b);
}

void *speedy_pool_realloc(void *pointer, size_t old_size, size_t new_size) {
    if (pointer) {
        struct block *b = (struct block *)((char *)pointer - HEADER);
        if (new_size <= b->size) return pointer;
    }
    void *grown = speedy_pool_alloc(new_size);
    if (pointer) {
        memcpy(grown, pointer, old_size < new_size ? old_size : new_size);
        speedy_pool_free(pointer);
    }
    return grown;
}

void speedy_pool_copy(void *destination, const void *source, size_t count) {
    memcpy(destination, source, count);
}
