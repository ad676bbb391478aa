/* core.c: initialisation, real-symbol resolution, the per-fd table, the PvD table and the
 * scope levels (socket > thread > process > system default, R12/R20). */
#include "core.h"
#include "auto_addrs.h"
#include "log.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct shim_real_fns shim_real;
atomic_int shim_ready;
_Atomic uint32_t *shim_fdtab;
unsigned int shim_fdtab_size;

#define FDTAB_MAX (1u << 24)
#define REAL_CLOSE(fd) shim_real.close(fd)

/* ---- syscall fallbacks, used only if dlsym(RTLD_NEXT) finds nothing ---- */
static int sys_socket(int d, int t, int p) { return (int)shim_real.syscall(SYS_socket, d, t, p); }
static int sys_socketpair(int d, int t, int p, int sv[2]) { return (int)shim_real.syscall(SYS_socketpair, d, t, p, sv); }
static int sys_connect(int fd, const struct sockaddr *a, socklen_t l) { return (int)shim_real.syscall(SYS_connect, fd, a, l); }
static int sys_bind(int fd, const struct sockaddr *a, socklen_t l) { return (int)shim_real.syscall(SYS_bind, fd, a, l); }
static int sys_listen(int fd, int b) { return (int)shim_real.syscall(SYS_listen, fd, b); }
static int sys_accept(int fd, struct sockaddr *a, socklen_t *l) { return (int)shim_real.syscall(SYS_accept, fd, a, l); }
static int sys_accept4(int fd, struct sockaddr *a, socklen_t *l, int f) { return (int)shim_real.syscall(SYS_accept4, fd, a, l, f); }
static ssize_t sys_sendto(int fd, const void *b, size_t n, int f, const struct sockaddr *a, socklen_t l)
{
    return shim_real.syscall(SYS_sendto, fd, b, n, f, a, l);
}
static ssize_t sys_sendmsg(int fd, const struct msghdr *m, int f) { return shim_real.syscall(SYS_sendmsg, fd, m, f); }
static int sys_sendmmsg(int fd, struct mmsghdr *m, unsigned int n, int f) { return (int)shim_real.syscall(SYS_sendmmsg, fd, m, n, f); }
static int sys_close(int fd) { return (int)shim_real.syscall(SYS_close, fd); }
static int sys_dup(int fd) { return (int)shim_real.syscall(SYS_dup, fd); }
static int sys_dup2(int a, int b) { return (int)shim_real.syscall(SYS_dup2, a, b); }
static int sys_dup3(int a, int b, int f) { return (int)shim_real.syscall(SYS_dup3, a, b, f); }
static int sys_setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    return (int)shim_real.syscall(SYS_setsockopt, fd, level, name, value, len);
}
static ssize_t sys_recvmsg(int fd, struct msghdr *m, int f) { return shim_real.syscall(SYS_recvmsg, fd, m, f); }
static int sys_recvmmsg(int fd, struct mmsghdr *m, unsigned int n, int f, struct timespec *t)
{
    return (int)shim_real.syscall(SYS_recvmmsg, fd, m, n, f, t);
}
static int sys_munmap(void *a, size_t n) { return (int)shim_real.syscall(SYS_munmap, a, n); }
static void *sys_mremap(void *a, size_t o, size_t n, int f, ...)
{
    va_list ap;
    va_start(ap, f);
    void *na = va_arg(ap, void *);
    va_end(ap);
    return (void *)shim_real.syscall(SYS_mremap, a, o, n, f, na);
}
static int sys_mprotect(void *a, size_t n, int p) { return (int)shim_real.syscall(SYS_mprotect, a, n, p); }
static void *sys_mmap(void *a, size_t n, int p, int f, int fd, off_t o)
{
    return (void *)shim_real.syscall(SYS_mmap, a, n, p, f, fd, o);
}
/* libc always has syscall(2); without it nothing can be forwarded */
static long sys_syscall(long n, ...)
{
    (void)n;
    errno = ENOSYS;
    return -1;
}
static int sys_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return (int)shim_real.syscall(SYS_fcntl, fd, cmd, arg);
}

#define RESOLVE(name)                                                            \
    do {                                                                         \
        void *sym = dlsym(RTLD_NEXT, #name);                                     \
        memcpy(&shim_real.name, &sym, sizeof sym);                               \
        if (!shim_real.name)                                                     \
            shim_real.name = sys_##name;                                         \
    } while (0)

#define OPTIONAL(field, name, old_name)                                          \
    do {                                                                         \
        void *sym = dlsym(RTLD_NEXT, name);                                      \
        const char *old = old_name;                                              \
        if (!sym && old)                                                         \
            sym = dlsym(RTLD_NEXT, old);                                         \
        memcpy(&shim_real.field, &sym, sizeof sym);                              \
    } while (0)

static ssize_t sys_recvfrom(int fd, void *b, size_t n, int f, struct sockaddr *a, socklen_t *l)
{
    return syscall(SYS_recvfrom, fd, b, n, f, a, l);
}

/* opens: the system call where libc lacks a name (never in glibc); the fortified forms take
 * no mode (glibc's abort on O_CREAT without one, which the plain call does not) */
static mode_t open_mode(int flags, va_list ap) { return __OPEN_NEEDS_MODE(flags) ? va_arg(ap, mode_t) : 0; }
static int sys_openat(int dirfd, const char *p, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    return (int)shim_real.syscall(SYS_openat, dirfd, p, flags, mode);
}
static int sys_open(const char *p, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    return sys_openat(AT_FDCWD, p, flags, mode);
}
static int sys_open_2(const char *p, int flags) { return shim_real.open(p, flags); }
static int sys_open64_2(const char *p, int flags) { return shim_real.open64(p, flags); }
static int sys_openat_2(int dirfd, const char *p, int flags) { return shim_real.openat(dirfd, p, flags); }
static int sys_openat64_2(int dirfd, const char *p, int flags) { return shim_real.openat64(dirfd, p, flags); }
static struct _IO_FILE *sys_fopen(const char *p, const char *m)
{
    (void)p;
    (void)m;
    errno = ENOSYS;
    return NULL;
}

#define RESOLVE_AS(field, name, fallback)                                        \
    do {                                                                         \
        void *sym = dlsym(RTLD_NEXT, name);                                      \
        memcpy(&shim_real.field, &sym, sizeof sym);                              \
        if (!shim_real.field)                                                    \
            shim_real.field = fallback;                                          \
    } while (0)

static void resolve_real(void)
{
    RESOLVE(socket);
    RESOLVE(socketpair);
    RESOLVE(connect);
    RESOLVE(bind);
    RESOLVE(listen);
    RESOLVE(accept);
    RESOLVE(accept4);
    RESOLVE(sendto);
    RESOLVE(sendmsg);
    RESOLVE(sendmmsg);
    RESOLVE(close);
    RESOLVE(dup);
    RESOLVE(dup2);
    RESOLVE(dup3);
    RESOLVE(fcntl);
    RESOLVE(setsockopt);
    RESOLVE(recvmsg);
    RESOLVE(recvmmsg);
    RESOLVE(munmap);
    RESOLVE(mremap);
    RESOLVE(mprotect);
    RESOLVE(recvfrom);
    RESOLVE(mmap);
    RESOLVE(syscall);
    RESOLVE_AS(open, "open", sys_open);
    RESOLVE_AS(open64, "open64", shim_real.open);
    RESOLVE_AS(openat, "openat", sys_openat);
    RESOLVE_AS(openat64, "openat64", shim_real.openat);
    RESOLVE_AS(open_2, "__open_2", sys_open_2);
    RESOLVE_AS(open64_2, "__open64_2", sys_open64_2);
    RESOLVE_AS(openat_2, "__openat_2", sys_openat_2);
    RESOLVE_AS(openat64_2, "__openat64_2", sys_openat64_2);
    RESOLVE_AS(fopen, "fopen", sys_fopen);
    RESOLVE_AS(fopen64, "fopen64", shim_real.fopen);
    void *mmap64_sym = dlsym(RTLD_NEXT, "mmap64");
    memcpy(&shim_real.mmap64, &mmap64_sym, sizeof mmap64_sym);
    if (!shim_real.mmap64)
        shim_real.mmap64 = shim_real.mmap;
    /* name lookups (no fallback; older <resolv.h> names are __res_*) */
    OPTIONAL(getaddrinfo, "getaddrinfo", NULL);
    OPTIONAL(freeaddrinfo, "freeaddrinfo", NULL);
    OPTIONAL(getnameinfo, "getnameinfo", NULL);
    OPTIONAL(gethostbyname, "gethostbyname", NULL);
    OPTIONAL(gethostbyname2, "gethostbyname2", NULL);
    OPTIONAL(gethostbyname_r, "gethostbyname_r", NULL);
    OPTIONAL(gethostbyname2_r, "gethostbyname2_r", NULL);
    OPTIONAL(gethostbyaddr, "gethostbyaddr", NULL);
    OPTIONAL(gethostbyaddr_r, "gethostbyaddr_r", NULL);
    OPTIONAL(res_query, "res_query", "__res_query");
    OPTIONAL(res_search, "res_search", "__res_search");
    OPTIONAL(res_querydomain, "res_querydomain", "__res_querydomain");
    OPTIONAL(res_send, "res_send", "__res_send");
    OPTIONAL(res_nquery, "res_nquery", "__res_nquery");
    OPTIONAL(res_nsearch, "res_nsearch", "__res_nsearch");
    OPTIONAL(res_nquerydomain, "res_nquerydomain", "__res_nquerydomain");
    OPTIONAL(res_nsend, "res_nsend", "__res_nsend");
    OPTIONAL(getaddrinfo_a, "getaddrinfo_a", NULL);
    OPTIONAL(gai_suspend, "gai_suspend", NULL);
    OPTIONAL(gai_error, "gai_error", NULL);
    OPTIONAL(gai_cancel, "gai_cancel", NULL);
    void *sym = dlsym(RTLD_NEXT, "fcntl64");
    memcpy(&shim_real.fcntl64, &sym, sizeof sym);
    if (!shim_real.fcntl64)
        shim_real.fcntl64 = shim_real.fcntl;
}

/* The table covers every descriptor number this process can ever have: the kernel's
 * fs.nr_open (the ceiling of RLIMIT_NOFILE, which root may raise later), up to FDTAB_MAX.
 * Untouched pages cost nothing (MAP_NORESERVE).  A descriptor beyond it is untracked: each
 * operation on it decides afresh (correct, slower). */
static rlim_t read_nr_open(void)
{
    char buf[32];
    rlim_t value = 0;
    int fd = open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    REAL_CLOSE(fd);
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
        value = value * 10 + (rlim_t)(buf[i] - '0');
    return value;
}

static void alloc_fdtab(void)
{
    struct rlimit rl;
    rlim_t want = read_nr_open();
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max > want)
        want = rl.rlim_max;
    if (want == 0)
        want = 1u << 20;
    if (want == RLIM_INFINITY || want > FDTAB_MAX)
        want = FDTAB_MAX;
    if (want < 1024)
        want = 1024;
    size_t bytes = (size_t)want * sizeof(uint32_t);
    void *mem = shim_real.mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        return; /* every fd is then "unknown": correct, only slower */
    shim_fdtab_size = (unsigned int)want;
    __atomic_store_n(&shim_fdtab, (_Atomic uint32_t *)mem, __ATOMIC_RELEASE);
}

/* ---- PvD table ---- */
static struct pvd_scope g_pvds[SHIM_MAX_PVDS];
static char g_lines[SHIM_MAX_PVDS][SHIM_LINE_MAX];
static atomic_uint g_npvds;
static pthread_mutex_t g_pvd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pvd_scope g_parse_tmp; /* under g_pvd_lock */

unsigned int shim_pvd_add(const char *line, size_t len, char *err, size_t errlen)
{
    unsigned int slot = 0;
    if (len >= SHIM_LINE_MAX) {
        snprintf(err, errlen, "scope line longer than %d bytes", SHIM_LINE_MAX - 1);
        errno = E2BIG;
        return 0;
    }
    pthread_mutex_lock(&g_pvd_lock);
    if (pvd_scope_parse(line, len, &g_parse_tmp, err, errlen) < 0) {
        errno = EINVAL;
        goto out;
    }
    if (g_parse_tmp.is_null) {
        slot = SLOT_NULL;
        goto out;
    }
    unsigned int n = atomic_load(&g_npvds);
    for (unsigned int i = n; i > 0; i--) {
        if (g_pvds[i - 1].info.handle == g_parse_tmp.info.handle) {
            if (memcmp(&g_pvds[i - 1], &g_parse_tmp, sizeof g_parse_tmp) == 0) {
                slot = i;
                goto out;
            }
            break; /* same handle, new attributes: a newer entry */
        }
    }
    if (n >= SHIM_MAX_PVDS) {
        snprintf(err, errlen, "more than %d PvDs in one process", SHIM_MAX_PVDS);
        errno = ENOSPC;
        goto out;
    }
    memcpy(&g_pvds[n], &g_parse_tmp, sizeof g_parse_tmp);
    memcpy(g_lines[n], line, len);
    g_lines[n][len] = '\0';
    atomic_store_explicit(&g_npvds, n + 1, memory_order_release);
    slot = n + 1;
out:
    pthread_mutex_unlock(&g_pvd_lock);
    return slot;
}

unsigned int shim_pvd_slot(pvd_handle_t handle)
{
    if (handle == PVD_HANDLE_NULL)
        return SLOT_NULL;
    if (handle == PVD_HANDLE_UNSPEC)
        return SLOT_NONE;
    unsigned int n = atomic_load_explicit(&g_npvds, memory_order_acquire);
    for (unsigned int i = n; i > 0; i--)
        if (g_pvds[i - 1].info.handle == handle)
            return i;
    return 0;
}

const struct pvd_scope *shim_pvd_at(unsigned int slot)
{
    if (slot == SLOT_NONE || slot == SLOT_NULL || slot > atomic_load_explicit(&g_npvds, memory_order_acquire))
        return NULL;
    return &g_pvds[slot - 1];
}

const char *shim_pvd_line(unsigned int slot)
{
    if (slot == SLOT_NONE || slot == SLOT_NULL || slot > atomic_load_explicit(&g_npvds, memory_order_acquire))
        return NULL;
    return g_lines[slot - 1];
}

pvd_handle_t shim_slot_handle(unsigned int slot)
{
    if (slot == SLOT_NULL)
        return PVD_HANDLE_NULL;
    const struct pvd_scope *pvd = shim_pvd_at(slot);
    return pvd ? pvd->info.handle : PVD_HANDLE_UNSPEC;
}

unsigned int shim_pvd_count(void) { return atomic_load_explicit(&g_npvds, memory_order_acquire); }

/* ---- scope levels ---- */
extern char **environ;
static int environ_ready(void) { return environ != NULL; }
static __thread unsigned int t_slot;
static atomic_uint g_process_slot;

unsigned int shim_thread_slot(void) { return t_slot; }
void shim_set_thread_slot(unsigned int slot) { t_slot = slot; }
static atomic_int g_scope_unknown;
static int load_env_scope(void);
unsigned int shim_process_slot(void)
{
    if (!atomic_load_explicit(&shim_ready, memory_order_acquire))
        shim_init();
    if (SHIM_UNLIKELY(atomic_load_explicit(&g_scope_unknown, memory_order_acquire)) && environ_ready()) {
        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&lock);
        if (atomic_load(&g_scope_unknown)) {
            shim_set_process_slot(SLOT_NONE);
            if (load_env_scope())
                atomic_store(&g_scope_unknown, 0);
            else
                shim_set_process_slot(SLOT_NULL);
        }
        pthread_mutex_unlock(&lock);
    }
    return atomic_load_explicit(&g_process_slot, memory_order_acquire);
}
void shim_set_process_slot(unsigned int slot) { atomic_store_explicit(&g_process_slot, slot, memory_order_release); }
unsigned int shim_effective_slot(void)
{
    unsigned int slot = t_slot;
    return slot ? slot : shim_process_slot();
}

/* ---- per-fd table ----
 * A vfork() child shares this memory but has its own descriptor table: it never writes. */
SHIM_TLS int shim_in_vfork_child;

static _Atomic uint32_t *fd_slot(int fd)
{
    _Atomic uint32_t *tab = __atomic_load_n(&shim_fdtab, __ATOMIC_ACQUIRE);
    if (!tab || fd < 0 || (unsigned int)fd >= shim_fdtab_size || shim_in_vfork_child)
        return NULL;
    return &tab[fd];
}

void fd_store(int fd, uint32_t w)
{
    _Atomic uint32_t *slot = fd_slot(fd);
    if (slot)
        atomic_store_explicit(slot, w, memory_order_release);
}

int fd_cas(int fd, uint32_t expected, uint32_t desired)
{
    _Atomic uint32_t *slot = fd_slot(fd);
    if (!slot)
        return 1; /* untracked: nothing to race on */
    return atomic_compare_exchange_strong(slot, &expected, desired);
}

void fd_or(int fd, uint32_t bits)
{
    _Atomic uint32_t *slot = fd_slot(fd);
    if (slot)
        atomic_fetch_or(slot, bits);
}

/* ---- fork generation ---- */
static atomic_uint g_fork_epoch;
unsigned int shim_fork_epoch(void) { return atomic_load_explicit(&g_fork_epoch, memory_order_relaxed) & 0x1Fu; }
static void after_fork_child(void) { atomic_fetch_add(&g_fork_epoch, 1); }

/* ---- initialisation ---- */
static int g_preloaded;
int shim_is_preloaded(void)
{
    if (!atomic_load_explicit(&shim_ready, memory_order_acquire))
        shim_init();
    return g_preloaded;
}

/* An environment variable (PVDRUN_SCOPE, PVDRUN_AUTO) when libc has not set `environ` yet (a
 * hooked call from the program's .preinit_array runs before libc's own initialisation): the
 * environment the kernel gave the process, from /proc/self/environ, into buf[size].  Returns
 * the value's length + 1 (so that a variable set but empty, which is malformed, is told from
 * an absent one), 0 when the variable is absent, -1 when the environment cannot be read.  A
 * value that does not fit is cut short (and then malformed). */
static char g_env_buf[SHIM_LINE_MAX + 16];
static char g_auto_env_buf[SHIM_AUTO_ENV_MAX + 16];
static ssize_t env_from_proc(const char *key, char *buf, size_t size, const char **line)
{
    size_t key_len = strlen(key);
    char chunk[4096];
    size_t have = 0;     /* bytes of the current entry kept in buf (capped) */
    int at_start = 1, matching = 1, found = 0;
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            REAL_CLOSE(fd);
            return n < 0 ? -1 : 0;
        }
        for (ssize_t i = 0; i < n; i++) {
            char c = chunk[i];
            if (at_start) {
                have = 0;
                matching = 1;
                at_start = 0;
            }
            if (c == '\0') {
                if (matching && have >= key_len) {
                    found = 1;
                    break;
                }
                at_start = 1;
                continue;
            }
            if (!matching)
                continue;
            if (have < key_len && c != key[have])
                matching = 0;
            else if (have < size - 1)
                buf[have++] = c;
            else
                matching = 0; /* longer than any value: malformed, handled below */
        }
        if (found)
            break;
    }
    REAL_CLOSE(fd);
    buf[have] = '\0';
    *line = buf + key_len;
    return (ssize_t)(have - key_len) + 1;
}

static ssize_t scope_from_proc(const char **line)
{
    return env_from_proc("PVDRUN_SCOPE=", g_env_buf, sizeof g_env_buf, line);
}

/* ---- the auto PvD ---- */
static char g_auto_zones[SHIM_AUTO_MAX_ZONES][SHIM_AUTO_ZONE_MAX];
static unsigned char g_auto_zone_len[SHIM_AUTO_MAX_ZONES];
static unsigned int g_auto_zone_slot[SHIM_AUTO_MAX_ZONES];
static unsigned int g_auto_nzones;
static atomic_uint g_auto_default; /* 0: no auto PvD; published last */
static char g_auto_line[SHIM_LINE_MAX]; /* one line without its zones, under the load's lock */

int shim_auto_covers(unsigned int slot)
{
    unsigned int def = atomic_load_explicit(&g_auto_default, memory_order_acquire);
    return SHIM_UNLIKELY(def != 0) && slot == def && shim_thread_slot() == 0;
}

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

unsigned int shim_auto_slot_for_name(const char *name)
{
    unsigned int def = atomic_load_explicit(&g_auto_default, memory_order_acquire);
    if (!def || !name)
        return def;
    size_t n = strnlen(name, SHIM_AUTO_ZONE_MAX + 1);
    if (n > 0 && name[n - 1] == '.')
        n--;
    unsigned int best = def;
    size_t best_len = 0;
    for (unsigned int i = 0; i < g_auto_nzones; i++) {
        size_t z = g_auto_zone_len[i];
        if (z > n || z <= best_len || (z < n && name[n - z - 1] != '.'))
            continue;
        size_t j = 0;
        while (j < z && lower(name[n - z + j]) == g_auto_zones[i][j])
            j++;
        if (j == z) {
            best = g_auto_zone_slot[i];
            best_len = z;
        }
    }
    return best;
}

unsigned int shim_slot_towards(const struct sockaddr *dst, socklen_t len)
{
    unsigned int slot = shim_effective_slot();
    if (SHIM_LIKELY(!shim_auto_covers(slot)))
        return slot;
    unsigned int from = 0;
    if (dst && dst->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in))
        from = pvd_auto_addr_slot(AF_INET, (const uint8_t *)&((const struct sockaddr_in *)dst)->sin_addr);
    else if (dst && dst->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6))
        from = pvd_auto_addr_slot(AF_INET6, (const uint8_t *)&((const struct sockaddr_in6 *)dst)->sin6_addr);
    return from && shim_pvd_at(from) ? from : slot;
}

/* A zone=NAME value: 1 to 253 letters, digits, '-', '_' and inner dots (a final dot dropped). */
static int zone_ok(const char *v, size_t n)
{
    if (n > 0 && v[n - 1] == '.')
        n--;
    if (n == 0 || n > SHIM_AUTO_ZONE_MAX - 1 || v[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = lower(v[i]);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              (c == '.' && v[i + 1] != '.')))
            return 0;
    }
    return 1;
}

/* One line of PVDRUN_AUTO: its zone= tokens to the zone table, the rest to the PvD table. */
static int auto_line(const char *line, size_t len, char *err, size_t errlen)
{
    size_t out = 0, pos = 0;
    unsigned int first_zone = g_auto_nzones;
    while (pos < len) {
        if (line[pos] == ' ' || line[pos] == '\t') {
            pos++;
            continue;
        }
        size_t start = pos;
        while (pos < len && line[pos] != ' ' && line[pos] != '\t')
            pos++;
        if (pos - start > 5 && memcmp(line + start, "zone=", 5) == 0) {
            const char *v = line + start + 5;
            size_t n = pos - start - 5;
            if (!zone_ok(v, n)) {
                snprintf(err, errlen, "bad zone= at byte %zu", start);
                return -1;
            }
            if (v[n - 1] == '.')
                n--;
            if (g_auto_nzones >= SHIM_AUTO_MAX_ZONES) {
                snprintf(err, errlen, "more than %d zones", SHIM_AUTO_MAX_ZONES);
                return -1;
            }
            for (size_t j = 0; j < n; j++)
                g_auto_zones[g_auto_nzones][j] = lower(v[j]);
            g_auto_zones[g_auto_nzones][n] = '\0';
            g_auto_zone_len[g_auto_nzones] = (unsigned char)n;
            g_auto_nzones++;
            continue;
        }
        if (out + (pos - start) + 1 >= sizeof g_auto_line) {
            snprintf(err, errlen, "scope line longer than %d bytes", SHIM_LINE_MAX - 1);
            return -1;
        }
        if (out)
            g_auto_line[out++] = ' ';
        memcpy(g_auto_line + out, line + start, pos - start);
        out += pos - start;
    }
    unsigned int slot = shim_pvd_add(g_auto_line, out, err, errlen);
    if (slot == 0 || slot == SLOT_NULL) {
        if (slot == SLOT_NULL)
            snprintf(err, errlen, "the null PvD is no auto PvD");
        return -1;
    }
    for (unsigned int i = first_zone; i < g_auto_nzones; i++)
        g_auto_zone_slot[i] = slot;
    return 0;
}

/* PVDRUN_AUTO (value, len) with the default PvD in slot def: 0, or -1 with a reason in err. */
static int load_auto(const char *value, size_t len, unsigned int def, char *err, size_t errlen)
{
    size_t pos = 0;
    g_auto_nzones = 0;
    if (def == SLOT_NONE || def == SLOT_NULL) {
        snprintf(err, errlen, "PVDRUN_SCOPE names no default PvD");
        return -1;
    }
    if (len >= SHIM_AUTO_ENV_MAX) {
        snprintf(err, errlen, "longer than %d bytes", SHIM_AUTO_ENV_MAX - 1);
        return -1;
    }
    while (pos < len) {
        const char *nl = memchr(value + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - value) : len;
        size_t k = pos;
        while (k < end && (value[k] == ' ' || value[k] == '\t'))
            k++;
        if (k < end && auto_line(value + pos, end - pos, err, errlen) < 0)
            return -1;
        pos = end + 1;
    }
    atomic_store_explicit(&g_auto_default, def, memory_order_release);
    return 0;
}

/* 1 when the process scope is known, 0 when it is not yet (then every operation fails
 * closed until it is: the scope is never taken to be "none" when it cannot be read). */
static int load_env_scope(void)
{
    const char *line = NULL;
    char err[160];
    if (environ) {
        line = getenv("PVDRUN_SCOPE");
    } else {
        ssize_t n = scope_from_proc(&line);
        if (n < 0)
            return 0;
        if (n == 0)
            line = NULL;
    }
    const char *autos = NULL;
    ssize_t auto_len = 0;
    if (environ) {
        autos = getenv("PVDRUN_AUTO");
        auto_len = autos ? (ssize_t)strlen(autos) + 1 : 0;
    } else {
        auto_len = env_from_proc("PVDRUN_AUTO=", g_auto_env_buf, sizeof g_auto_env_buf, &autos);
        if (auto_len < 0)
            return 0;
    }
    if (!line && auto_len > 0) { /* auto PvDs without their default: fail closed */
        shim_say("pvdrun shim: PVDRUN_AUTO without PVDRUN_SCOPE: every network operation of this program will fail\n");
        shim_set_process_slot(SLOT_NULL);
        return 1;
    }
    if (!line)
        return 1; /* no process scope: system default (unless set through the API) */
    unsigned int slot = shim_pvd_add(line, strlen(line), err, sizeof err);
    if (slot == 0) {
        shim_say("pvdrun shim: malformed PVDRUN_SCOPE (%s): every network operation of this program will fail\n",
                 err);
        slot = SLOT_NULL; /* fail closed: as the null PvD */
    }
    if (auto_len > 0 && slot != SLOT_NULL && load_auto(autos, (size_t)auto_len - 1, slot, err, sizeof err) < 0) {
        shim_say("pvdrun shim: malformed PVDRUN_AUTO (%s): every network operation of this program will fail\n",
                 err);
        slot = SLOT_NULL; /* fail closed: as the null PvD */
    }
    shim_set_process_slot(slot);
    return 1;
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    int saved = errno;
    resolve_real();
    alloc_fdtab();
    shim_debug_init();
    if (!load_env_scope()) {
        shim_set_process_slot(SLOT_NULL); /* until it can be read: fail closed */
        atomic_store(&g_scope_unknown, 1);
    }
    pthread_atfork(NULL, NULL, after_fork_child);
    /* Preloaded = the connect() the program's calls reach is in this library. */
    Dl_info global_info, self_info;
    void *global_connect = dlsym(RTLD_DEFAULT, "connect");
    g_preloaded = global_connect && dladdr(global_connect, &global_info) && dladdr((void *)shim_init, &self_info) &&
                  global_info.dli_fbase == self_info.dli_fbase;
    atomic_store_explicit(&shim_ready, 1, memory_order_release);
    errno = saved;
}

void shim_init(void)
{
    pthread_once(&g_once, init_once);
}

__attribute__((constructor)) static void shim_constructor(void)
{
    shim_init();
    if (shim_is_preloaded())
        shim_adopt_inherited();
}
