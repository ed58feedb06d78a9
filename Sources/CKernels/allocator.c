// glibc malloc settings for tensors: heap blocks, kept, on transparent huge pages (see
// Memory.tuneMalloc in Tensors).
#include "CKernels.h"
// (<stdio.h> first: it defines __GLIBC__, which CKernels.h's headers do not.)
#if defined(__linux__)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#endif

enum { TUNABLES_MAX = 4096 };

int ck_reexec_with_malloc_tunables(char *const argv[]) {
#if defined(__linux__) && defined(__GLIBC__)
    const char *off = getenv("CANDELA_HUGE_PAGES");
    if (off && strcmp(off, "0") == 0) return 0;
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (tunables && strstr(tunables, "glibc.malloc.mmap_max")) return 0; // set already (by us or the user)
    // Huge pages only where the kernel gives them to memory that asks for them: with "always"
    // every mapping has them already, with "never" none.
    int huge = 0;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        char mode[128] = {0};
        huge = fgets(mode, sizeof mode, f) != NULL && strstr(mode, "[madvise]") != NULL;
        fclose(f);
    }
    if (tunables && strstr(tunables, "glibc.malloc.hugetlb")) huge = 0; // the user's choice stands
    // Large blocks from the heap, never a fresh mapping, and freed memory kept for the next
    // block instead of given back: a backward pass allocates and frees tensors of tens of MB
    // every step, and each fresh mapping's pages were faulted in and cleared by the kernel.
    const char *heap = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295";
    char value[TUNABLES_MAX];
    const int n = snprintf(value, sizeof value, "%s%s%s%s", tunables && *tunables ? tunables : "",
                           tunables && *tunables ? ":" : "", heap, huge ? ":glibc.malloc.hugetlb=1" : "");
    if (n <= 0 || n >= (int)sizeof value) return 0;
    char previous[TUNABLES_MAX];
    if (tunables) snprintf(previous, sizeof previous, "%s", tunables);
    if (setenv("GLIBC_TUNABLES", value, 1) != 0) return 0;
    execv("/proc/self/exe", argv);
    // execv returned: it failed, and the program goes on as it is, with the variable as it was
    // (so that Memory.hugePages does not claim a tunable this process never read).
    if (tunables) setenv("GLIBC_TUNABLES", previous, 1);
    else unsetenv("GLIBC_TUNABLES");
    return -1;
#else
    (void)argv;
    return 0;
#endif
}
