/* open.c: open(), open64(), openat(), openat64(), fopen(), fopen64() and glibc's fortified
 * __open_2(), __open64_2(), __openat_2(), __openat64_2() hooks.
 *
 * A scoped program that opens resolv.conf for reading gets the PvD's view of it
 * (dns/resolvconf_view.c) instead of the host's file: /etc/resolv.conf, the two files of
 * systemd-resolved its symlink usually points to (/run/systemd/resolve/stub-resolv.conf and
 * resolv.conf), and wherever /etc/resolv.conf's symlinks lead (followed once, at start-up).
 *
 * Every other open must cost nothing: the real call is made first, so the kernel checks the
 * path pointer (a bad one is EFAULT from the kernel, exactly as through libc) and only a
 * path it has read is looked at; then a length and an 11-byte compare of its end with
 * "resolv.conf" (no system call, no allocation, no lock; errno untouched).  Only a path
 * ending so is looked at further: the literal names above, else (a relative path, another
 * spelling, a symlink of the program's) the opened file's identity compared with theirs.
 *
 * Left to the real call: an unscoped process; opens for writing, O_CREAT, O_TRUNC, O_PATH
 * and O_DIRECTORY opens (a write to resolv.conf is the host's business, refused to users
 * by the file's mode).  A real open that failed before the kernel read the path (EFAULT,
 * EINVAL, ENOMEM, ENAMETOOLONG, EMFILE, ENFILE) is returned as it is.  A literal name that
 * does not exist (ENOENT) still gets the view: a program without resolv.conf would ask
 * 127.0.0.1. */
#undef _FORTIFY_SOURCE /* the fortified inline open() would clash with the definitions here */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "resolvconf_view.h"

int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

/* The real function, also while the core's initialisation runs in this thread (it opens
 * /proc files): the table's entry is used as soon as it is filled, so this never re-enters
 * the initialisation; before any initialisation, REAL() starts it. */
#define REAL_EARLY(fn) (__atomic_load_n(&shim_real.fn, __ATOMIC_ACQUIRE) ? shim_real.fn : REAL(fn))

#define SUFFIX "resolv.conf"
#define SUFFIX_LEN (sizeof SUFFIX - 1)

static const char *const g_literal[] = {
    "/etc/resolv.conf",
    "/run/systemd/resolve/stub-resolv.conf",
    "/run/systemd/resolve/resolv.conf",
};

/* Where /etc/resolv.conf's symlinks lead (lexically resolved; "" when it is no symlink).
 * Computed once, lock-free: the thread that wins TARGET_COMPUTING writes it. */
enum { TARGET_UNKNOWN, TARGET_COMPUTING, TARGET_READY };
static char g_target[PATH_MAX];
static atomic_int g_target_state;
static int g_target_odd; /* the target's name does not end in "resolv.conf" */

/* Remove "." and "..", and repeated slashes, from an absolute path, in place. */
static void normalise(char *path)
{
    char *out = path;
    const char *in = path;
    while (*in) {
        while (*in == '/')
            in++;
        const char *end = in;
        while (*end && *end != '/')
            end++;
        size_t n = (size_t)(end - in);
        if (n == 0 || (n == 1 && in[0] == '.')) {
            /* nothing */
        } else if (n == 2 && in[0] == '.' && in[1] == '.') {
            while (out > path && *--out != '/')
                ;
        } else {
            *out++ = '/';
            memmove(out, in, n);
            out += n;
        }
        in = end;
    }
    if (out == path)
        *out++ = '/';
    *out = '\0';
}

/* Follow /etc/resolv.conf's symlinks (at most 16) without touching the file: readlink only,
 * so this is safe anywhere (no allocation). */
static void compute_target(char *out, size_t size)
{
    char cur[PATH_MAX] = "/etc/resolv.conf";
    out[0] = '\0';
    for (int hops = 0; hops < 16; hops++) {
        char link[PATH_MAX];
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n <= 0)
            break;
        link[n] = '\0';
        if (link[0] == '/') {
            memcpy(cur, link, (size_t)n + 1);
        } else {
            char *slash = strrchr(cur, '/');
            size_t dir = slash ? (size_t)(slash - cur) + 1 : 0;
            if (dir + (size_t)n + 1 > sizeof cur)
                break;
            memcpy(cur + dir, link, (size_t)n + 1);
        }
        normalise(cur);
        if (strlen(cur) < size)
            strcpy(out, cur);
    }
    if (strcmp(out, "/etc/resolv.conf") == 0)
        out[0] = '\0';
}

static void learn_target(void)
{
    int expected = TARGET_UNKNOWN;
    if (!atomic_compare_exchange_strong(&g_target_state, &expected, TARGET_COMPUTING))
        return;
    int saved = errno;
    compute_target(g_target, sizeof g_target);
    size_t n = strlen(g_target);
    g_target_odd = n > 0 && (n < SUFFIX_LEN || memcmp(g_target + n - SUFFIX_LEN, SUFFIX, SUFFIX_LEN) != 0);
    atomic_store_explicit(&g_target_state, TARGET_READY, memory_order_release);
    errno = saved;
}

static int target_ready(void) { return atomic_load_explicit(&g_target_state, memory_order_acquire) == TARGET_READY; }

__attribute__((constructor)) static void open_constructor(void)
{
    if (shim_process_slot() != SLOT_NONE)
        learn_target();
}

/* Opened for reading only, in a way the view can stand for? */
static inline int reads_only(int flags)
{
    return (flags & O_ACCMODE) == O_RDONLY && !(flags & (O_PATH | O_CREAT | O_TRUNC | O_DIRECTORY));
}

/* After the real call: did the kernel read the whole path (so that we may), and does its end
 * say resolv.conf (or the odd target's name)? */
static inline int maybe_resolv_conf(int failed, const char *path)
{
    if (failed) {
        int e = errno;
        if (e == EFAULT || e == EINVAL || e == ENOMEM || e == ENAMETOOLONG || e == EMFILE || e == ENFILE)
            return 0;
    }
    size_t n = strlen(path);
    if (n >= SUFFIX_LEN && memcmp(path + n - SUFFIX_LEN, SUFFIX, SUFFIX_LEN) == 0)
        return 1;
    return SHIM_UNLIKELY(g_target_odd) && target_ready() && strcmp(path, g_target) == 0;
}

static int same_file(const struct stat *a, const char *path)
{
    struct stat b;
    return stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

static int names_resolv_conf(const char *path)
{
    for (size_t i = 0; i < sizeof g_literal / sizeof g_literal[0]; i++)
        if (strcmp(path, g_literal[i]) == 0)
            return 1;
    return target_ready() && g_target[0] && strcmp(path, g_target) == 0;
}

/* The absolute, lexically normalised spelling of path (relative to dirfd), or "" when the
 * directory cannot be named (its name is read from the kernel: getcwd, /proc/self/fd). */
static void absolute(int dirfd, const char *path, char *out, size_t size)
{
    out[0] = '\0';
    size_t n = strlen(path), have = 0;
    if (path[0] != '/') {
        if (dirfd == AT_FDCWD) {
            if (!getcwd(out, size))
                out[0] = '\0';
        } else {
            char link[32] = "/proc/self/fd/";
            size_t l = strlen(link);
            int d = dirfd, digits = 1;
            for (int v = d; v >= 10; v /= 10)
                digits++;
            for (int i = digits - 1; i >= 0 && d >= 0; i--, d /= 10)
                link[l + (size_t)i] = (char)('0' + d % 10);
            link[l + (size_t)digits] = '\0';
            ssize_t got = dirfd >= 0 ? readlink(link, out, size - 1) : -1;
            out[got > 0 ? got : 0] = '\0';
        }
        if (out[0] != '/') {
            out[0] = '\0';
            return;
        }
        have = strlen(out);
    }
    if (have + 1 + n >= size) {
        out[0] = '\0';
        return;
    }
    out[have] = '/';
    memcpy(out + have + 1, path, n + 1);
    normalise(out);
}

/* Is this open (dirfd and path, and the descriptor the real call gave, or -1) one of
 * resolv.conf?  Its name first (as written, then made absolute and normalised), then the
 * opened file's identity. */
static int is_resolv_conf(int dirfd, const char *path, int fd)
{
    if (!target_ready())
        learn_target();
    if (names_resolv_conf(path))
        return 1;
    char full[PATH_MAX];
    absolute(dirfd, path, full, sizeof full);
    if (full[0] && names_resolv_conf(full))
        return 1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    for (size_t i = 0; i < sizeof g_literal / sizeof g_literal[0]; i++)
        if (same_file(&st, g_literal[i]))
            return 1; /* stat follows /etc/resolv.conf's symlinks: its target is covered */
    return 0;
}

/* The slow path: `fd` is what the real call returned (errno as it left it), `entry_errno`
 * the program's errno before the call.  Returns the view, or the real call's result. */
__attribute__((noinline, cold)) static int resolv_conf_view(int fd, int dirfd, const char *path, int cloexec,
                                                            int entry_errno)
{
    int real_errno = errno;
    if (shim_effective_slot() == SLOT_NONE || !is_resolv_conf(dirfd, path, fd)) {
        errno = real_errno;
        return fd;
    }
    int view = pvd_resolvconf_open(cloexec);
    int e = errno;
    if (fd >= 0)
        REAL(close)(fd);
    errno = view >= 0 ? entry_errno : e;
    return view; /* -1 when the view cannot be had: never the host's file */
}

static inline int after_open(int dirfd, int fd, const char *path, int flags, int entry_errno)
{
    if (SHIM_LIKELY(!reads_only(flags) || !maybe_resolv_conf(fd < 0, path)))
        return fd;
    return resolv_conf_view(fd, dirfd, path, (flags & O_CLOEXEC) != 0, entry_errno);
}

/* The mode argument of an open that creates (O_CREAT, O_TMPFILE), else 0. */
#define MODE_ARG(flags)                                                                           \
    __extension__({                                                                               \
        mode_t mode_ = 0;                                                                         \
        if (__OPEN_NEEDS_MODE(flags)) {                                                           \
            va_list ap_;                                                                          \
            va_start(ap_, flags);                                                                 \
            mode_ = va_arg(ap_, mode_t);                                                          \
            va_end(ap_);                                                                          \
        }                                                                                         \
        mode_;                                                                                    \
    })

/* The hooks: the real call (errno as the program left it saved first), then after_open. */
#define OPEN_HOOK(name, field)                                                                    \
    SHIM_API int name(const char *path, int flags, ...)                                           \
    {                                                                                             \
        int entry_errno = errno;                                                                  \
        return after_open(AT_FDCWD, REAL_EARLY(field)(path, flags, MODE_ARG(flags)), path, flags, \
                          entry_errno);                                                           \
    }
#define OPENAT_HOOK(name, field)                                                                  \
    SHIM_API int name(int dirfd, const char *path, int flags, ...)                                \
    {                                                                                             \
        int entry_errno = errno;                                                                  \
        return after_open(dirfd, REAL_EARLY(field)(dirfd, path, flags, MODE_ARG(flags)), path,    \
                          flags, entry_errno);                                                    \
    }
/* glibc's fortified forms take no mode (they abort on O_CREAT without one, as the real ones) */
#define OPEN_2_HOOK(name, field)                                                                  \
    SHIM_API int name(const char *path, int flags)                                                \
    {                                                                                             \
        int entry_errno = errno;                                                                  \
        return after_open(AT_FDCWD, REAL_EARLY(field)(path, flags), path, flags, entry_errno);    \
    }
#define OPENAT_2_HOOK(name, field)                                                                \
    SHIM_API int name(int dirfd, const char *path, int flags)                                     \
    {                                                                                             \
        int entry_errno = errno;                                                                  \
        return after_open(dirfd, REAL_EARLY(field)(dirfd, path, flags), path, flags, entry_errno); \
    }

OPEN_HOOK(open, open)
OPEN_HOOK(open64, open64)
OPENAT_HOOK(openat, openat)
OPENAT_HOOK(openat64, openat64)
OPEN_2_HOOK(__open_2, open_2)
OPEN_2_HOOK(__open64_2, open64_2)
OPENAT_2_HOOK(__openat_2, openat_2)
OPENAT_2_HOOK(__openat64_2, openat64_2)

/* fopen's mode: read-only ("r", with b, e, m, c, x but no "+")?  The real fopen has parsed it
 * (a NULL result with EINVAL: it may not have). */
static int mode_reads_only(const char *mode) { return mode[0] == 'r' && !strchr(mode, '+'); }

static FILE *after_fopen(FILE *fp, const char *path, const char *mode, int entry_errno)
{
    if (SHIM_LIKELY(!maybe_resolv_conf(fp == NULL, path) || !mode_reads_only(mode)))
        return fp;
    int real_errno = errno;
    int fd = fp ? fileno(fp) : -1;
    if (shim_effective_slot() == SLOT_NONE || !is_resolv_conf(AT_FDCWD, path, fd)) {
        errno = real_errno;
        return fp;
    }
    int view = pvd_resolvconf_open(strchr(mode, 'e') != NULL);
    FILE *vfp = view >= 0 ? fdopen(view, "r") : NULL;
    int e = errno;
    if (view >= 0 && !vfp)
        REAL(close)(view);
    if (fp)
        fclose(fp);
    errno = vfp ? entry_errno : e;
    return vfp; /* NULL when the view cannot be had: never the host's file */
}

SHIM_API FILE *fopen(const char *path, const char *mode)
{
    int entry_errno = errno;
    return after_fopen(REAL_EARLY(fopen)(path, mode), path, mode, entry_errno);
}

SHIM_API FILE *fopen64(const char *path, const char *mode)
{
    int entry_errno = errno;
    return after_fopen(REAL_EARLY(fopen64)(path, mode), path, mode, entry_errno);
}
