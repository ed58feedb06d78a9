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
// has checked in, so the job's fields are never rewritten under a late worker. A job of
// ck_parallel_shares gives thread t its own part t (the caller is thread 0, worker i thread
// i + 1) and lets a thread that is done take what another has left.
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
// A job of ck_parallel_shares (job_parts > 0): per part, its next piece from the front (low 32
// bits) and one past its last unclaimed piece (high 32 bits), claimed from either end by CAS.
enum { MAX_PARTS = MAX_WORKERS + 1 };
static ck_piece_fn share_fn;
static int job_parts;
static _Atomic unsigned long long ends[MAX_PARTS];
static int workers;              // only grows; guarded by submit_lock
static _Thread_local int inside; // this thread is running a task (or is a worker)

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

// The next unclaimed piece of `part` from its front (or its back), or -1 when none is left.
static int claim(int part, int from_back) {
    unsigned long long e = atomic_load_explicit(&ends[part], memory_order_relaxed);
    for (;;) {
        const unsigned front = (unsigned)e, back = (unsigned)(e >> 32);
        if (front >= back) return -1;
        const unsigned long long next = from_back ? (unsigned long long)(back - 1) << 32 | front
                                                  : (unsigned long long)back << 32 | (front + 1);
        if (atomic_compare_exchange_weak_explicit(&ends[part], &e, next, memory_order_relaxed, memory_order_relaxed))
            return (int)(from_back ? back - 1 : front);
    }
}

// Thread `self`'s part in order, then what is left of the others, each from its end.
static void run_shares(int self) {
    int piece;
    if (self < job_parts) while ((piece = claim(self, 0)) >= 0) share_fn(job_ctx, self, piece);
    for (int k = 1; k < job_parts; k++) {
        const int part = (self + k) % job_parts;
        while ((piece = claim(part, 1)) >= 0) share_fn(job_ctx, part, piece);
    }
}

static void run_tasks(int self) {
    if (job_parts > 0) {
        run_shares(self);
        return;
    }
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
            run_tasks(args.index + 1);
            atomic_fetch_sub_explicit(&pending, 1, memory_order_release);
        }
    }
    return NULL;
}

// Publishes the job set up in job_fn/share_fn and the counters to `threads - 1` workers, runs
// the caller's own tasks, and returns once every worker taking part has checked in.
static int run_job(int threads) {
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
    atomic_store_explicit(&pending, helpers, memory_order_relaxed);
    // Sequentially consistent: pairs with the sleepers check below and in the worker.
    atomic_store(&ticket, (generation + 1) << 8 | (unsigned long long)helpers);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    inside = 1;
    run_tasks(0);
    inside = 0;
    while (atomic_load_explicit(&pending, memory_order_acquire) > 0) CPU_RELAX();
    pthread_mutex_unlock(&submit_lock);
    return helpers + 1;
}

int ck_parallel_for(int count, int threads, ck_task_fn fn, void *ctx) {
    if (count <= 0) return 0;
    if (inside || threads <= 1 || count == 1 || pthread_mutex_trylock(&submit_lock) != 0) {
        for (int i = 0; i < count; i++) fn(ctx, i);
        return 0;
    }
    job_parts = 0;
    job_fn = fn;
    job_ctx = ctx;
    job_count = count;
    atomic_store_explicit(&next_task, 0, memory_order_relaxed);
    return run_job(threads);
}

int ck_parallel_nested(void) { return inside; }

int ck_parallel_shares(int parts, int pieces, ck_piece_fn fn, void *ctx) {
    if (parts <= 0 || pieces <= 0) return 0;
    if (inside || parts == 1 || parts > MAX_PARTS || pthread_mutex_trylock(&submit_lock) != 0) {
        for (int p = 0; p < parts; p++) for (int k = 0; k < pieces; k++) fn(ctx, p, k);
        return 0;
    }
    job_parts = parts;
    share_fn = fn;
    job_ctx = ctx;
    for (int p = 0; p < parts; p++) atomic_store_explicit(&ends[p], (unsigned long long)pieces << 32, memory_order_relaxed);
    return run_job(parts);
}
