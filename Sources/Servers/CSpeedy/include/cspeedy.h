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

#endif
