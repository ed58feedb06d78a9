/* cpumask: make a process and its children see a CPU without AVX-512 (or without AVX2/FMA).
 *
 * Preloaded (LD_PRELOAD=cpumask.so), it turns on CPUID faulting for the process (Linux
 * arch_prctl(ARCH_SET_CPUID, 0), on CPUs whose /proc/cpuinfo lists `cpuid_fault`), so every CPUID
 * instruction traps. The SIGSEGV handler runs the real CPUID with faulting briefly off, clears
 * the feature bits named by CPUMASK_HIDE, writes the result into the trapped thread's registers
 * and steps over the instruction. Threads inherit the setting; execve resets it and the preload
 * installs it again in the child. Everything that picks a kernel from CPUID (Candela's own
 * dispatch through __builtin_cpu_supports, ONNX Runtime's MLAS, oneDNN in torch, OpenBLAS,
 * NumPy) then takes the path it would take on such a CPU.
 *
 * CPUMASK_HIDE=avx512 (default): every AVX-512 subset (leaf 7 EBX/ECX/EDX, leaf 7.1 EAX BF16).
 * CPUMASK_HIDE=avx2: the same and AVX, AVX2, FMA (leaf 1 ECX, leaf 7 EBX): an SSE4 CPU.
 *
 * What it cannot hide: XGETBV still reports the AVX-512 register state as enabled (programs
 * check CPUID first), and /proc/cpuinfo still lists the flags. Code that ran CPUID before this
 * library's constructor (the dynamic loader choosing glibc's memcpy) keeps what it saw.
 *
 * A tool for tests and benchmarks only (tools/cpumask/README.md); Candela never loads it.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static int hide_avx2;
static struct sigaction previous;

static long set_cpuid_faulting(int faulting) {
    return syscall(SYS_arch_prctl, ARCH_SET_CPUID, faulting ? 0 : 1);
}

/* Clears the hidden feature bits from one CPUID answer. */
static void mask(unsigned leaf, unsigned subleaf, unsigned *a, unsigned *b, unsigned *c, unsigned *d) {
    if (leaf == 7 && subleaf == 0) {
        /* EBX: 16 F, 17 DQ, 21 IFMA, 26 PF, 27 ER, 28 CD, 30 BW, 31 VL */
        *b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
        /* ECX: 1 VBMI, 6 VBMI2, 11 VNNI, 12 BITALG, 14 VPOPCNTDQ */
        *c &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* EDX: 2 4VNNIW, 3 4FMAPS, 8 VP2INTERSECT, 23 FP16 */
        *d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 23));
        if (hide_avx2) *b &= ~(1u << 5);            /* AVX2 */
    } else if (leaf == 7 && subleaf == 1) {
        *a &= ~(1u << 5);                             /* AVX512_BF16 */
        if (hide_avx2) *a &= ~(1u << 4);              /* AVX-VNNI */
    } else if (leaf == 1 && hide_avx2) {
        *c &= ~((1u << 12) | (1u << 28) | (1u << 29)); /* FMA, AVX, F16C */
    }
}

static void on_fault(int signal, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *r = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    if (ip != NULL && ip[0] == 0x0f && ip[1] == 0xa2) {
        unsigned leaf = (unsigned)r[REG_RAX], subleaf = (unsigned)r[REG_RCX];
        unsigned a, b, c, d;
        set_cpuid_faulting(0);
        __cpuid_count(leaf, subleaf, a, b, c, d);
        set_cpuid_faulting(1);
        mask(leaf, subleaf, &a, &b, &c, &d);
        r[REG_RAX] = a; r[REG_RBX] = b; r[REG_RCX] = c; r[REG_RDX] = d;
        r[REG_RIP] += 2;
        return;
    }
    /* Not a CPUID: give the fault back to whoever handled it before (or the default action). */
    sigaction(SIGSEGV, &previous, NULL);
    (void)signal; (void)info;
}

__attribute__((constructor)) static void cpumask_init(void) {
    const char *hide = getenv("CPUMASK_HIDE");
    if (hide != NULL && strcmp(hide, "avx2") == 0) hide_avx2 = 1;
    else if (hide != NULL && *hide != '\0' && strcmp(hide, "avx512") != 0) {
        fprintf(stderr, "cpumask: CPUMASK_HIDE must be avx512 or avx2, not '%s'\n", hide);
        _exit(2);
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous);
    if (set_cpuid_faulting(1) != 0) {
        perror("cpumask: arch_prctl(ARCH_SET_CPUID) (does /proc/cpuinfo list cpuid_fault?)");
        _exit(2);
    }
}
