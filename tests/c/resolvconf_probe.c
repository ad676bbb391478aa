/* resolvconf_probe.c: opens resolv.conf every way a program can, for test_resolvconf_view.py.
 * Built with -O2 -D_FORTIFY_SOURCE=2, so that a non-constant flags argument goes through
 * glibc's __open_2 & co.
 *
 *   read FN PATH       open PATH with FN (open open64 openat openat64 open_2 open64_2 openat_2
 *                      openat64_2 fopen fopen64) and print what it reads
 *   twice PATH         two opens read independently (each its own offset)
 *   many PATH N        N opens and closes: the highest descriptor seen (a leak grows it)
 *   efault             open/openat/fopen of an unreadable pointer: "efault OK" when EFAULT
 *   errno PATH         errno is kept across a successful open of PATH
 *   kind PATH FLAGS    what a FLAGS open (rdonly, wronly-creat, path, rdwr) gives: "view"
 *                      (the shim's memfd), "file" or "error ERRNO"
 *   relative DIR NAME  chdir(DIR) then open(NAME)
 *   vfork PATH         a vfork child reads PATH and _exits; then the parent reads it
 *   signal PATH        a signal handler opens and reads PATH
 *   closeall PATH      read PATH, close every descriptor above 2 with the close_range system
 *                      call (the shim cannot see it), take the numbers with pipes, read again
 *   connect PATH       connect an AF_UNIX stream socket to PATH ("@NAME": abstract)
 *   bench PATH N       N open+close of PATH: nanoseconds per pair (CLOCK_MONOTONIC) */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int g_rdonly = O_RDONLY; /* not a constant: the fortified open calls __open_2 */

static int open_with(const char *fn, const char *path)
{
    int flags = g_rdonly;
    if (!strcmp(fn, "open"))
        return open(path, O_RDONLY);
    if (!strcmp(fn, "open64"))
        return open64(path, O_RDONLY);
    if (!strcmp(fn, "openat"))
        return openat(AT_FDCWD, path, O_RDONLY);
    if (!strcmp(fn, "openat64"))
        return openat64(AT_FDCWD, path, O_RDONLY);
    if (!strcmp(fn, "open_2"))
        return open(path, flags); /* __open_2 under _FORTIFY_SOURCE */
    if (!strcmp(fn, "open64_2"))
        return open64(path, flags);
    if (!strcmp(fn, "openat_2"))
        return openat(AT_FDCWD, path, flags);
    if (!strcmp(fn, "openat64_2"))
        return openat64(AT_FDCWD, path, flags);
    FILE *fp = !strcmp(fn, "fopen") ? fopen(path, "r") : !strcmp(fn, "fopen64") ? fopen64(path, "re") : NULL;
    if (!fp)
        return -1;
    int fd = dup(fileno(fp));
    fclose(fp);
    return fd;
}

static void dump(int fd)
{
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
}

/* Open path and print it: the exit status (0, or 1 when it cannot be opened). */
static int dump_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 1;
    dump(fd);
    return 0;
}

static int is_view(int fd)
{
    char link[64], target[256];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0)
        return 0;
    target[n] = '\0';
    return strstr(target, "memfd:pvdrun-resolv.conf") != NULL;
}

/* open, read, write to stdout, close: async-signal-safe calls only (a handler, a vfork child).
 * 0 when something was read. */
static int echo_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    char buf[512];
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (n > 0)
        (void)!write(STDOUT_FILENO, buf, (size_t)n);
    if (fd >= 0)
        close(fd);
    return n > 0 ? 0 : 1;
}

static const char *g_signal_path;
static void on_signal(int sig)
{
    (void)sig;
    echo_file(g_signal_path);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *cmd = argv[1];
    if (!strcmp(cmd, "read") && argc == 4) {
        int fd = open_with(argv[2], argv[3]);
        if (fd < 0) {
            printf("error %s\n", strerror(errno));
            return 1;
        }
        dump(fd);
        return 0;
    }
    if (!strcmp(cmd, "twice") && argc == 3) {
        int a = open(argv[2], O_RDONLY), b = open(argv[2], O_RDONLY);
        char first[8] = {0}, second[8] = {0}, rest[8] = {0};
        if (a < 0 || b < 0 || read(a, first, 7) != 7 || read(b, second, 7) != 7 || read(a, rest, 7) != 7)
            return 1;
        printf("a=%s b=%s a-again=%s same-file=%d\n", first, second, rest, a != b);
        return 0;
    }
    if (!strcmp(cmd, "many") && argc == 4) {
        int n = atoi(argv[3]), highest = -1;
        for (int i = 0; i < n; i++) {
            int fd = open(argv[2], O_RDONLY);
            if (fd < 0) {
                printf("error at %d: %s\n", i, strerror(errno));
                return 1;
            }
            if (fd > highest)
                highest = fd;
            close(fd);
        }
        printf("highest %d\n", highest);
        return 0;
    }
    if (!strcmp(cmd, "efault")) {
        const char *bad = (const char *)8;
        errno = 0;
        int a = open(bad, O_RDONLY);
        int ea = errno;
        int b = openat(AT_FDCWD, bad, O_RDONLY);
        int eb = errno;
        FILE *c = fopen(bad, "r");
        int ec = errno;
        printf("efault %s\n", a < 0 && ea == EFAULT && b < 0 && eb == EFAULT && !c && ec == EFAULT ? "OK" : "WRONG");
        return 0;
    }
    if (!strcmp(cmd, "errno") && argc == 3) {
        errno = 4242;
        int fd = open(argv[2], O_RDONLY);
        printf("fd %s errno %d\n", fd >= 0 ? "ok" : "failed", errno);
        return 0;
    }
    if (!strcmp(cmd, "kind") && argc == 4) {
        const char *f = argv[3];
        int flags = !strcmp(f, "wronly-creat") ? O_WRONLY | O_CREAT : !strcmp(f, "path") ? O_PATH
                    : !strcmp(f, "rdwr")      ? O_RDWR
                                              : O_RDONLY;
        int fd = open(argv[2], flags, 0644);
        if (fd < 0)
            printf("error %s\n", strerror(errno));
        else
            printf("%s\n", is_view(fd) ? "view" : "file");
        return 0;
    }
    if (!strcmp(cmd, "relative") && argc == 4) {
        if (chdir(argv[2]) < 0)
            return 1;
        int fd = open(argv[3], O_RDONLY);
        if (fd < 0) {
            printf("error %s\n", strerror(errno));
            return 1;
        }
        printf("%s\n", is_view(fd) ? "view" : "file");
        return 0;
    }
    if (!strcmp(cmd, "vfork") && argc == 3) {
        fflush(stdout);
        pid_t pid = vfork();
        if (pid == 0)
            _exit(echo_file(argv[2]));
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || status != 0)
            return 1;
        printf("--- parent\n");
        return dump_path(argv[2]);
    }
    if (!strcmp(cmd, "signal") && argc == 3) {
        g_signal_path = argv[2];
        signal(SIGUSR1, on_signal);
        raise(SIGUSR1); /* the first open of the view happens in the handler */
        printf("--- main\n");
        fflush(stdout);
        return dump_path(argv[2]);
    }
    if (!strcmp(cmd, "closeall") && argc == 3) {
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0)
            return 1;
        close(fd);
        fflush(stdout);
        syscall(SYS_close_range, 3u, ~0u, 0u);
        int pipes[8][2];
        for (int i = 0; i < 8; i++)
            if (pipe(pipes[i]) < 0)
                return 1;
        fd = open(argv[2], O_RDONLY);
        if (fd < 0) {
            printf("error %s\n", strerror(errno));
            return 1;
        }
        printf("%s\n", is_view(fd) ? "view" : "file");
        dump(fd);
        return 0;
    }
    if (!strcmp(cmd, "connect") && argc == 3) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        const char *p = argv[2];
        socklen_t len;
        if (p[0] == '@') {
            memcpy(sun.sun_path + 1, p + 1, strlen(p + 1));
            len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(p + 1));
        } else {
            snprintf(sun.sun_path, sizeof sun.sun_path, "%s", p);
            len = sizeof sun;
        }
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&sun, len) < 0) {
            printf("connect %s\n", strerrorname_np(errno));
            return 1;
        }
        printf("connect OK\n");
        return 0;
    }
    if (!strcmp(cmd, "connect-efault")) {
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        int rc = connect(s, (const struct sockaddr *)8, sizeof(struct sockaddr_un));
        printf("connect %s\n", rc < 0 ? strerrorname_np(errno) : "OK");
        return 0;
    }
    if (!strcmp(cmd, "bench") && argc == 4) {
        long n = atol(argv[3]);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long i = 0; i < n; i++) {
            int fd = open(argv[2], O_RDONLY);
            if (fd < 0)
                return 1;
            close(fd);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)n;
        printf("%.1f ns per open+close\n", ns);
        return 0;
    }
    return 2;
}
