/* gai_async.c: getaddrinfo_a, gai_suspend, gai_error and gai_cancel inside
 * the current PvD (R3, R25).
 *
 * glibc's getaddrinfo_a resolves in its own helper threads with its own
 * getaddrinfo, which the shim does not see: under a PvD it would ask the
 * host's DNS servers.  Here:
 *
 * - No scope in the submitting thread: the real getaddrinfo_a, unchanged.
 * - Otherwise each request is resolved by the shim's getaddrinfo (gai.c,
 *   pvd_gai_in_scope) in the scope of the thread that submitted it (the null
 *   PvD and a malformed scope fail as getaddrinfo does: EAI_FAIL for names
 *   that need DNS).  Requests wait in one FIFO queue, worked off by up to
 *   MAX_WORKERS detached threads (all signals blocked) that exit when the
 *   queue is empty.  If no thread can be started, the submitting thread
 *   resolves the queue itself before returning (synchronous completion).
 * - GAI_WAIT returns once every request of the call is complete (sevp is
 *   ignored, as glibc does); GAI_NOWAIT returns at once and, when all the
 *   call's requests are complete, notifies as sevp says: SIGEV_NONE nothing,
 *   SIGEV_SIGNAL the signal with si_code SI_ASYNCNL and sigev_value (as
 *   glibc), SIGEV_THREAD sigev_notify_function(sigev_value) in a new thread
 *   (with sigev_notify_attributes when given).
 * - gai_error: EAI_INPROGRESS while a request of ours is queued or running,
 *   then its result (the real gai_error reads it, as for glibc's requests).
 *   gai_cancel: a queued request of ours is cancelled (EAI_CANCELED, counted
 *   as complete for the call's notification); a running one is not
 *   (EAI_NOTCANCELED).  gai_suspend, as glibc's: EAI_ALLDONE when no
 *   listed request is pending, else 0 once one of those pending completes,
 *   EAI_AGAIN at the timeout, EAI_INTR when a signal interrupts the wait.
 *   Requests that are not ours (submitted with no scope) go to the real
 *   functions; a list mixing both is polled every 20 ms for glibc's.
 *
 * Completion is published under one mutex and announced through a futex
 * word, so gai_suspend can be interrupted by signals like glibc's.
 * errno is preserved (except EAI_SYSTEM's EINVAL for a bad mode).
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "dns_scope.h"
#include "gai_scoped.h"

#define MAX_WORKERS 16
#define MIXED_POLL_NS 20000000L


struct gai_call;

/* One request of a call: queued, then running, then forgotten. */
struct gai_job {
    struct gai_job *next; /* in the queue or in the running list */
    struct gaicb *req;
    struct gai_call *call;
};

/* One getaddrinfo_a call.  Freed when refs drops to 0. */
struct gai_call {
    int refs;      /* under pool.lock: unfinished jobs, the submitter, a GAI_WAIT waiter */
    int remaining; /* under pool.lock: jobs not complete */
    int notify;    /* GAI_NOWAIT with SIGEV_SIGNAL or SIGEV_THREAD */
    struct sigevent sev;
    pid_t pid;
    int status; /* pvd_dns_current_scope() of the submitting thread */
    struct pvd_dns_scope scope;
    struct gai_job jobs[];
};

static struct {
    pthread_mutex_t lock;
    struct gai_job *head, *tail; /* queued, FIFO */
    struct gai_job *running;
    int nworkers;
} pool = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, NULL, 0};

/* Bumped, and woken, whenever a request of ours completes. */
static unsigned int generation;
static int pool_used;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;


/* fork: the child has none of the workers; it keeps the queue (a later
 * getaddrinfo_a starts workers that work it off), and running requests
 * stay in progress there, as glibc's do. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&pool.lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&pool.lock);
}

static void fork_child(void)
{
    pthread_mutex_init(&pool.lock, NULL);
    pool.nworkers = 0;
}

static void setup_once(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    __atomic_store_n(&pool_used, 1, __ATOMIC_RELEASE);
}

static void wake_waiters(void)
{
    __atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &generation, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Sleep while generation == seen (at most *rel when not NULL).
 * Returns 0, or EINTR when a signal interrupted the wait. */
static int wait_generation(unsigned int seen, const struct timespec *rel)
{
    if (syscall(SYS_futex, &generation, FUTEX_WAIT_PRIVATE, seen, rel, NULL, 0) != 0
        && errno == EINTR)
        return EINTR;
    return 0;
}

static struct gai_job *find_in(struct gai_job *list, const struct gaicb *req)
{
    for (; list; list = list->next)
        if (list->req == req)
            return list;
    return NULL;
}

/* Under pool.lock: is req a request of ours not yet complete? */
static int pending_locked(const struct gaicb *req)
{
    return find_in(pool.head, req) || find_in(pool.running, req);
}

struct notify_arg {
    void (*fn)(union sigval);
    union sigval value;
};

static void *notify_thread(void *p)
{
    struct notify_arg arg = *(struct notify_arg *)p;
    free(p);
    arg.fn(arg.value);
    return NULL;
}

/* The call's requests are all complete: tell the program, as glibc does. */
static void notify(const struct gai_call *call)
{
    int saved = errno;
    const struct sigevent *sev = &call->sev;
    if (sev->sigev_notify == SIGEV_SIGNAL) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        info.si_signo = sev->sigev_signo;
        info.si_code = SI_ASYNCNL;
        info.si_pid = call->pid;
        info.si_uid = getuid();
        info.si_value = sev->sigev_value;
        syscall(SYS_rt_sigqueueinfo, call->pid, sev->sigev_signo, &info);
    } else if (sev->sigev_notify == SIGEV_THREAD && sev->sigev_notify_function) {
        struct notify_arg *arg = malloc(sizeof *arg);
        int started = 0;
        if (arg) {
            arg->fn = sev->sigev_notify_function;
            arg->value = sev->sigev_value;
            pthread_attr_t own, *attr = sev->sigev_notify_attributes;
            if (!attr) {
                pthread_attr_init(&own);
                pthread_attr_setdetachstate(&own, PTHREAD_CREATE_DETACHED);
                attr = &own;
            }
            sigset_t all, old;
            sigfillset(&all);
            pthread_sigmask(SIG_SETMASK, &all, &old);
            pthread_t tid;
            started = pthread_create(&tid, attr, notify_thread, arg) == 0;
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            if (attr == &own)
                pthread_attr_destroy(&own);
            if (!started)
                free(arg);
        }
        if (!started) /* no thread: the notification is not lost */
            sev->sigev_notify_function(sev->sigev_value);
    }
    errno = saved;
}

/* Under pool.lock (released meanwhile): job is complete (its result is
 * stored); wake gai_suspend/GAI_WAIT, notify when it was the call's last,
 * drop its reference. */
static void finish_job_locked(struct gai_job *job)
{
    struct gai_call *call = job->call;
    int last = --call->remaining == 0;
    pthread_mutex_unlock(&pool.lock);
    wake_waiters();
    if (last && call->notify)
        notify(call);
    pthread_mutex_lock(&pool.lock);
    if (--call->refs == 0)
        free(call);
}

/* Under pool.lock: resolve queued requests until the queue is empty. */
static void run_queue_locked(void)
{
    struct gai_job *job;
    while ((job = pool.head)) {
        pool.head = job->next;
        if (!pool.head)
            pool.tail = NULL;
        job->next = pool.running;
        pool.running = job;
        pthread_mutex_unlock(&pool.lock);

        struct gaicb *req = job->req;
        struct addrinfo *res = NULL;
        int rc = pvd_gai_in_scope(job->call->status, &job->call->scope, req->ar_name,
                                  req->ar_service, req->ar_request, &res);

        pthread_mutex_lock(&pool.lock);
        for (struct gai_job **p = &pool.running; *p; p = &(*p)->next)
            if (*p == job) {
                *p = job->next;
                break;
            }
        if (rc == 0)
            req->ar_result = res;
        __atomic_store_n(&req->__return, rc, __ATOMIC_RELEASE);
        finish_job_locked(job);
    }
}

static void *worker(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&pool.lock);
    run_queue_locked();
    pool.nworkers--;
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* Start up to count detached workers with every signal blocked (signals go
 * to the program's threads).  Returns how many started. */
static int start_workers(int count)
{
    if (count <= 0)
        return 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int started = 0;
    for (; started < count; started++) {
        pthread_t tid;
        if (pthread_create(&tid, &attr, worker, NULL) != 0)
            break;
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return started;
}

static void release_call(struct gai_call *call, int refs)
{
    pthread_mutex_lock(&pool.lock);
    call->refs -= refs;
    int gone = call->refs == 0;
    pthread_mutex_unlock(&pool.lock);
    if (gone)
        free(call);
}

SHIM_API int getaddrinfo_a(int mode, struct gaicb *list[], int ent, struct sigevent *sig)
{
    int saved = errno;
    struct pvd_dns_scope scope;
    int status = pvd_dns_current_scope(&scope);
    errno = saved;
    if (status == PVD_DNS_SCOPE_NONE) {
        if (REAL(getaddrinfo_a))
            return REAL(getaddrinfo_a)(mode, list, ent, sig);
        errno = ENOSYS;
        return EAI_SYSTEM;
    }
    if ((mode != GAI_WAIT && mode != GAI_NOWAIT) || ent < 0 || (ent > 0 && !list)) {
        errno = EINVAL;
        return EAI_SYSTEM;
    }
    int n = 0;
    for (int i = 0; i < ent; i++)
        n += list[i] != NULL;
    struct gai_call *call = calloc(1, sizeof *call + (size_t)n * sizeof(struct gai_job));
    if (!call)
        return EAI_MEMORY;
    call->status = status;
    memcpy(&call->scope, &scope, sizeof scope);
    call->pid = getpid();
    if (mode == GAI_NOWAIT && sig
        && (sig->sigev_notify == SIGEV_SIGNAL || sig->sigev_notify == SIGEV_THREAD)) {
        call->notify = 1;
        call->sev = *sig;
    }
    if (n == 0) { /* nothing to do but the notification */
        if (call->notify)
            notify(call);
        free(call);
        errno = saved;
        return 0;
    }
    pthread_once(&fork_once, setup_once);
    int own_refs = mode == GAI_WAIT ? 2 : 1; /* the submitter, and the GAI_WAIT waiter */
    call->refs = n + own_refs;
    call->remaining = n;

    pthread_mutex_lock(&pool.lock);
    for (int i = 0, j = 0; i < ent; i++) {
        if (!list[i])
            continue;
        struct gai_job *job = &call->jobs[j++];
        job->req = list[i];
        job->call = call;
        job->next = NULL;
        __atomic_store_n(&list[i]->__return, EAI_INPROGRESS, __ATOMIC_RELEASE);
        if (pool.tail)
            pool.tail->next = job;
        else
            pool.head = job;
        pool.tail = job;
    }
    int spawn = MAX_WORKERS - pool.nworkers;
    if (spawn > n)
        spawn = n;
    if (spawn < 0)
        spawn = 0;
    pool.nworkers += spawn;
    pthread_mutex_unlock(&pool.lock);

    int started = start_workers(spawn);
    if (started < spawn) {
        pthread_mutex_lock(&pool.lock);
        pool.nworkers -= spawn - started;
        if (pool.nworkers == 0 && pool.head) { /* nobody else will: resolve here */
            pool.nworkers++;
            run_queue_locked();
            pool.nworkers--;
        }
        pthread_mutex_unlock(&pool.lock);
    }

    if (mode == GAI_WAIT) {
        for (;;) {
            unsigned int seen = __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
            pthread_mutex_lock(&pool.lock);
            int left = call->remaining;
            pthread_mutex_unlock(&pool.lock);
            if (!left)
                break;
            wait_generation(seen, NULL); /* not interruptible, as glibc's GAI_WAIT */
        }
    }
    release_call(call, own_refs);
    errno = saved;
    return 0;
}

SHIM_API int gai_error(struct gaicb *req)
{
    if (req && __atomic_load_n(&pool_used, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&pool.lock);
        int pending = pending_locked(req);
        pthread_mutex_unlock(&pool.lock);
        if (pending)
            return EAI_INPROGRESS;
    }
    if (REAL(gai_error))
        return REAL(gai_error)(req);
    return req ? __atomic_load_n(&req->__return, __ATOMIC_ACQUIRE) : EAI_SYSTEM;
}

SHIM_API int gai_cancel(struct gaicb *req)
{
    int saved = errno;
    if (req && __atomic_load_n(&pool_used, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&pool.lock);
        struct gai_job *prev = NULL, *job = pool.head;
        while (job && job->req != req) {
            prev = job;
            job = job->next;
        }
        if (job) {
            if (prev)
                prev->next = job->next;
            else
                pool.head = job->next;
            if (pool.tail == job)
                pool.tail = prev;
            __atomic_store_n(&req->__return, EAI_CANCELED, __ATOMIC_RELEASE);
            finish_job_locked(job);
            pthread_mutex_unlock(&pool.lock);
            errno = saved;
            return EAI_CANCELED;
        }
        int running = find_in(pool.running, req) != NULL;
        pthread_mutex_unlock(&pool.lock);
        if (running)
            return EAI_NOTCANCELED;
    }
    if (REAL(gai_cancel))
        return REAL(gai_cancel)(req);
    return EAI_ALLDONE;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

SHIM_API int gai_suspend(const struct gaicb *const list[], int ent, const struct timespec *timeout)
{
    int saved = errno;
    int ours = 0;
    if (list && __atomic_load_n(&pool_used, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&pool.lock);
        for (int i = 0; i < ent && !ours; i++)
            ours = list[i] && pending_locked(list[i]);
        pthread_mutex_unlock(&pool.lock);
    }
    if (!ours) /* glibc's requests only, or none pending: its own wait (EAI_ALLDONE) */
        return REAL(gai_suspend) ? REAL(gai_suspend)(list, ent, timeout) : EAI_ALLDONE;
    long long deadline = 0;
    if (timeout) {
        if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000L) {
            errno = EINVAL;
            return EAI_SYSTEM;
        }
        deadline = now_ns() + (long long)timeout->tv_sec * 1000000000LL + timeout->tv_nsec;
    }
    /* As glibc's: wait for one of the requests pending now (1 ours, 2 glibc's). */
    unsigned char local[64], *kind = local;
    if ((size_t)ent > sizeof local && !(kind = malloc((size_t)ent))) {
        errno = saved;
        return EAI_MEMORY;
    }
    int pending_glibc = 0, result;
    pthread_mutex_lock(&pool.lock);
    for (int i = 0; i < ent; i++) {
        kind[i] = 0;
        if (!list[i])
            continue;
        if (pending_locked(list[i]))
            kind[i] = 1;
        else if (__atomic_load_n(&list[i]->__return, __ATOMIC_ACQUIRE) == EAI_INPROGRESS)
            kind[i] = 2;
        pending_glibc |= kind[i] == 2;
    }
    pthread_mutex_unlock(&pool.lock);
    for (;;) {
        unsigned int seen = __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
        int completed = 0;
        pthread_mutex_lock(&pool.lock);
        for (int i = 0; i < ent && !completed; i++)
            completed = (kind[i] == 1 && !pending_locked(list[i]))
                        || (kind[i] == 2
                            && __atomic_load_n(&list[i]->__return, __ATOMIC_ACQUIRE)
                                   != EAI_INPROGRESS);
        pthread_mutex_unlock(&pool.lock);
        if (completed) {
            result = 0;
            break;
        }
        long long left = -1;
        if (timeout) {
            left = deadline - now_ns();
            if (left <= 0) {
                result = EAI_AGAIN;
                break;
            }
        }
        if (pending_glibc && (left < 0 || left > MIXED_POLL_NS))
            left = MIXED_POLL_NS;
        struct timespec rel = {(time_t)(left / 1000000000LL), (long)(left % 1000000000LL)};
        if (wait_generation(seen, left >= 0 ? &rel : NULL) == EINTR) {
            result = EAI_INTR;
            break;
        }
    }
    if (kind != local)
        free(kind);
    errno = saved;
    return result;
}
