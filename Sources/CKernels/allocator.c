// glibc allocator settings for long runs (see Memory.configureAllocator in Tensors).
#include "CKernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void ck_configure_allocator(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
#endif
}
