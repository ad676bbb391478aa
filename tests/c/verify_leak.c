/* verify_leak asm ADDR PORT | api PVD ADDR PORT: a TCP connection that leaves the program's PvD,
 * for pvdrun verify to catch.
 *
 * asm: socket(2), connect(2) and write(2) made with the syscall instruction itself (x86-64,
 *      AArch64), so that no library, the preloaded shim included, sees them.
 * api: a socket put in the PvD PVD with the shim's C API (pvd_find, pvd_bind_socket, looked up
 *      in the preloaded shim), then connected with libc: the shim ties it to PVD, as asked.
 * ADDR is numeric (IPv6 may carry %SCOPE).  Prints "connected" (exit 0), "error: ENAME (N)"
 * (exit 1), or a usage line (exit 2).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../shim/include/pvd.h"
#include "strict_client.h"

static long raw(long nr, long a, long b, long c)
{
    long ret;
#if defined(__x86_64__)
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    ret = x0;
#else
#error "raw system calls: x86-64 or AArch64 only"
#endif
    return ret;
}

static int by_asm(const struct sockaddr_storage *sa, socklen_t len)
{
    long fd = raw(SYS_socket, sa->ss_family, SOCK_STREAM, IPPROTO_TCP);
    if (fd < 0)
        return fail((int)-fd);
    long rc = raw(SYS_connect, fd, (long)sa, len);
    if (rc < 0)
        return fail((int)-rc);
    raw(SYS_write, fd, (long)"leak\n", 5);
    raw(SYS_close, fd, 0, 0);
    printf("connected\n");
    return 0;
}

static int by_api(const char *pvd, const struct sockaddr_storage *sa, socklen_t len)
{
    int (*find)(const char *, pvd_handle_t *) = (int (*)(const char *, pvd_handle_t *))dlsym(RTLD_DEFAULT, "pvd_find");
    int (*bind_socket)(int, pvd_handle_t) = (int (*)(int, pvd_handle_t))dlsym(RTLD_DEFAULT, "pvd_bind_socket");
    pvd_handle_t handle;
    if (!find || !bind_socket) {
        printf("error: the shim is not loaded\n");
        return 1;
    }
    if (find(pvd, &handle) != 0)
        return fail(errno);
    int fd = socket(sa->ss_family, SOCK_STREAM, IPPROTO_TCP);
    if (fd < 0)
        return fail(errno);
    if (bind_socket(fd, handle) != 0)
        return fail(errno);
    if (connect(fd, (const struct sockaddr *)sa, len) != 0)
        return fail(errno);
    if (write(fd, "leak\n", 5) < 0)
        return fail(errno);
    close(fd);
    printf("connected\n");
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_storage sa;
    if (argc == 4 && strcmp(argv[1], "asm") == 0) {
        socklen_t len = parse(argv[2], (unsigned)strtoul(argv[3], NULL, 10), &sa);
        if (len)
            return by_asm(&sa, len);
    } else if (argc == 5 && strcmp(argv[1], "api") == 0) {
        socklen_t len = parse(argv[3], (unsigned)strtoul(argv[4], NULL, 10), &sa);
        if (len)
            return by_api(argv[2], &sa, len);
    }
    fprintf(stderr, "usage: verify_leak asm ADDR PORT | api PVD ADDR PORT\n");
    return 2;
}
