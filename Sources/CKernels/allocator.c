// Memory on transparent huge pages (see Memory.useHugePages in Tensors).
#include "CKernels.h"
// (<stdio.h> first: it defines __GLIBC__, which CKernels.h's headers do not.)
#if defined(__linux__)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#endif

enum { TUNABLES_MAX = 4096 };

int ck_reexec_with_huge_pages(char *const argv[]) {
#if defined(__linux__) && defined(__GLIBC__)
    const char *off = getenv("CANDELA_HUGE_PAGES");
    if (off && strcmp(off, "0") == 0) return 0;
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (tunables && strstr(tunables, "glibc.malloc.hugetlb")) return 0; // set already (by us or the user)
    // Only where the kernel gives huge pages to memory that asks for them: with "always" every
    // mapping has them already, with "never" none.
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return 0;
    char mode[128] = {0};
    const int read = fgets(mode, sizeof mode, f) != NULL;
    fclose(f);
    if (!read || !strstr(mode, "[madvise]")) return 0;
    char value[TUNABLES_MAX];
    const int n = tunables && *tunables ? snprintf(value, sizeof value, "%s:glibc.malloc.hugetlb=1", tunables)
                                        : snprintf(value, sizeof value, "glibc.malloc.hugetlb=1");
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
