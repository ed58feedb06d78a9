// A small fork-join thread pool whose workers spin briefly between jobs.
//
// Why not GCD's concurrentPerform: on a VM an idle vCPU halts, and waking a parked worker takes
// tens of microseconds. A forward pass runs a parallel region per operator (over a hundred on
// MobileNetV2), so at batch 1 those wake-ups cost a quarter of the pass. Here a worker that has
// finished a job keeps polling for the next one for SPIN_NS before it sleeps on a condition
// variable, so the regions of one pass find it awake; between passes it sleeps.
//
// One job runs at a time. A call made while another job runs (another thread's, or a nested
// call from inside a task) runs its tasks on the calling thread instead, so the pool can never
// deadlock. The calling thread takes tasks too. A job asking for T threads is taken by workers
// 0 .. T-2 only (the pool keeps the most ever asked for); the call returns after each of them
// has checked in, so the job's fields are never rewritten under a late worker.
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif
#include "CKernels.h"

enum { MAX_WORKERS = 63 };
static const long SPIN_NS = 200 * 1000;

static pthread_mutex_t submit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
// The job ticket: generation (bumped once per job) << 8 | how many workers take part. One word,
// so that a worker reads both consistently.
static atomic_ullong ticket;
static atomic_int sleepers;      // workers waiting on `wake`
static atomic_int next_task;     // the job's next unclaimed task
static atomic_int pending;       // workers that have not checked in for the job yet
static ck_task_fn job_fn;
static void *job_ctx;
static int job_count;
static int workers;              // only grows; guarded by submit_lock
static _Thread_local int inside; // this thread is running a task (or is a worker)

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void run_tasks(void) {
    int i;
    while ((i = atomic_fetch_add_explicit(&next_task, 1, memory_order_relaxed)) < job_count) job_fn(job_ctx, i);
}

typedef struct { unsigned long long seen; int index; } worker_args;

static void *worker_main(void *arg) {
    const worker_args args = *(worker_args *)arg;
    free(arg);
    unsigned long long seen = args.seen;
    inside = 1;
    for (;;) {
        unsigned long long t = atomic_load_explicit(&ticket, memory_order_acquire);
        long long deadline = 0;
        for (int spins = 0; t >> 8 == seen; spins++) {
            CPU_RELAX();
            if ((spins & 63) == 63) {
                const long long now = now_ns();
                if (deadline == 0) deadline = now + SPIN_NS;
                else if (now > deadline) {
                    // Announce the sleep first, then look again under the lock: a submitter that
                    // bumped the generation either sees the sleeper and signals, or is seen here.
                    pthread_mutex_lock(&sleep_lock);
                    atomic_fetch_add(&sleepers, 1);
                    while ((t = atomic_load(&ticket)) >> 8 == seen) pthread_cond_wait(&wake, &sleep_lock);
                    atomic_fetch_sub(&sleepers, 1);
                    pthread_mutex_unlock(&sleep_lock);
                    break;
                }
            }
            t = atomic_load_explicit(&ticket, memory_order_acquire);
        }
        seen = t >> 8;
        if (args.index < (int)(t & 0xFF)) {
            run_tasks();
            atomic_fetch_sub_explicit(&pending, 1, memory_order_release);
        }
    }
    return NULL;
}

int ck_parallel_for(int count, int threads, ck_task_fn fn, void *ctx) {
    if (count <= 0) return 0;
    if (inside || threads <= 1 || count == 1 || pthread_mutex_trylock(&submit_lock) != 0) {
        for (int i = 0; i < count; i++) fn(ctx, i);
        return 0;
    }
    const int want = (threads - 1 < MAX_WORKERS ? threads - 1 : MAX_WORKERS);
    const unsigned long long generation = atomic_load(&ticket) >> 8;
    while (workers < want) {
        pthread_t t;
        worker_args *args = malloc(sizeof *args);
        if (!args) break;
        *args = (worker_args){generation, workers};
        if (pthread_create(&t, NULL, worker_main, args) != 0) { free(args); break; }
        pthread_detach(t);
        workers++;
    }
    const int helpers = workers < want ? workers : want;
    job_fn = fn;
    job_ctx = ctx;
    job_count = count;
    atomic_store_explicit(&next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&pending, helpers, memory_order_relaxed);
    // Sequentially consistent: pairs with the sleepers check below and in the worker.
    atomic_store(&ticket, (generation + 1) << 8 | (unsigned long long)helpers);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    inside = 1;
    run_tasks();
    inside = 0;
    while (atomic_load_explicit(&pending, memory_order_acquire) > 0) CPU_RELAX();
    pthread_mutex_unlock(&submit_lock);
    return helpers + 1;
}
