/* log.c: see log.h. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int shim_debugging;
static char g_debug_path[256];
int shim_tracing;
static char g_trace_path[256];

void shim_say(const char *fmt, ...)
{
    char line[512];
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0) {
        size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
        ssize_t ignored = write(STDERR_FILENO, line, len);
        (void)ignored;
    }
    errno = saved;
}

void shim_debug_init(void)
{
    const char *trace = environ ? getenv("PVDRUN_TRACE") : NULL; /* none before libc's start */
    if (trace && trace[0] == '/' && strlen(trace) < sizeof g_trace_path) {
        strcpy(g_trace_path, trace);
        shim_tracing = 1;
    }
    const char *value = environ ? getenv("PVDRUN_DEBUG") : NULL;
    if (!value)
        return;
    if (strcmp(value, "1") == 0) {
        shim_debugging = 1;
    } else if (value[0] == '/' && strlen(value) < sizeof g_debug_path) {
        strcpy(g_debug_path, value);
        shim_debugging = 2;
    }
}

void shim_debug(const char *fmt, ...)
{
    if (!shim_debugging)
        return;
    char line[512];
    int saved = errno;
    int n = snprintf(line, sizeof line, "pvdrun shim[%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = n > 0 ? vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap) : -1;
    va_end(ap);
    if (m >= 0) {
        size_t len = (size_t)n + ((size_t)m < sizeof line - (size_t)n - 1 ? (size_t)m : sizeof line - (size_t)n - 2);
        line[len++] = '\n';
        /* raw system calls: the shim's own hooks and the program's descriptors stay out of it */
        long fd = shim_debugging == 2
                      ? syscall(SYS_openat, AT_FDCWD, g_debug_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)
                      : STDERR_FILENO;
        if (fd >= 0) {
            long ignored = syscall(SYS_write, (int)fd, line, len);
            (void)ignored;
            if (shim_debugging == 2)
                syscall(SYS_close, (int)fd);
        }
    }
    errno = saved;
}

/* An address as JSON text ("" when none or not IPv4/IPv6): "192.0.2.1:80", "[2001:db8::1]:53". */
static void address_text(const void *sa, unsigned int len, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "";
    const struct sockaddr_in *v4 = sa;
    const struct sockaddr_in6 *v6 = sa;
    out[0] = '\0';
    if (!sa || len < sizeof(sa_family_t))
        return;
    if (v4->sin_family == AF_INET && len >= sizeof *v4 && inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host))
        snprintf(out, outlen, "%s:%u", host, ntohs(v4->sin_port));
    else if (v6->sin6_family == AF_INET6 && len >= sizeof *v6 && inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host))
        snprintf(out, outlen, "[%s]:%u", host, ntohs(v6->sin6_port));
}

void shim_trace_socket(int fd, const char *op, const char *pvd_id, const void *dst, unsigned int dstlen,
                       const char *verdict, const char *why, int err)
{
    if (!shim_tracing)
        return;
    int saved = errno;
    int family = 0, protocol = 0, ifindex = 0;
    socklen_t ilen = sizeof(int);
    syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, &family, &ilen);
    ilen = sizeof(int);
    syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &ilen);
    ilen = sizeof(int);
    syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex, &ilen);
    struct sockaddr_storage src;
    socklen_t slen = sizeof src;
    char source[64] = "", destination[64];
    if (syscall(SYS_getsockname, fd, &src, &slen) == 0)
        address_text(&src, slen, source, sizeof source);
    address_text(dst, dstlen, destination, sizeof destination);
    char line[768];
    int n = snprintf(line, sizeof line,
                     "{\"pid\":%d,\"fd\":%d,\"op\":\"%s\",\"family\":\"%s\",\"protocol\":%d,"
                     "\"pvd\":\"%s\",\"ifindex\":%d,\"source\":\"%s\",\"destination\":\"%s\","
                     "\"verdict\":\"%s\",\"why\":\"%s\",\"errno\":\"%s\"}\n",
                     (int)getpid(), fd, op, family == AF_INET ? "inet" : family == AF_INET6 ? "inet6" : "other",
                     protocol, pvd_id ? pvd_id : "", ifindex, source, destination, verdict, why ? why : "",
                     err ? strerrorname_np(err) : "");
    if (n > 0 && (size_t)n < sizeof line) {
        long out = syscall(SYS_openat, AT_FDCWD, g_trace_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (out >= 0) {
            long ignored = syscall(SYS_write, (int)out, line, (size_t)n);
            (void)ignored;
            syscall(SYS_close, (int)out);
        }
    }
    errno = saved;
}
