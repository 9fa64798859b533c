#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>

#include "cspeedy.h"

int speedy_fallocate(int fd, int mode, off_t offset, off_t length) {
#ifdef __linux__
    return fallocate(fd, mode, offset, length) == 0 ? 0 : errno;
#else
    (void)fd; (void)mode; (void)offset; (void)length;
    return EOPNOTSUPP;
#endif
}

int speedy_o_direct(void) {
#ifdef O_DIRECT
    return O_DIRECT;
#else
    return 0;
#endif
}
