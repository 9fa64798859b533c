#include "cspeedy.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

void speedy_tune_malloc(int mmap_threshold, int arena_max) {
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, mmap_threshold);
    mallopt(M_ARENA_MAX, arena_max);
#else
    (void)mmap_threshold;
    (void)arena_max;
#endif
}
