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
#include <sys/stat.h>
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

/* The trace file is kept open (lines cost one write(2), not an openat/write/close each) at a
 * descriptor at or above TRACE_FD_FLOOR, close-on-exec, opened O_APPEND: one whole line per write
 * lands whole at the end, whatever other processes and threads append.  Before each line the
 * descriptor is checked with fstat and F_GETFL (still the same file, device and inode, still
 * open for appending): a program that closed it, or put another file at its number (dup2,
 * closefrom then open), gets it opened again, so no line is lost or written elsewhere.  Threads
 * race only to open it: the loser closes its copy.  Raw system calls only (the program's hooks
 * and descriptors stay out of it), no lock: safe in a signal handler. */
#define TRACE_FD_FLOOR 900
static int g_trace_fd = -1;
static unsigned long long g_trace_dev, g_trace_ino;

static int trace_fd_is_ours(int fd)
{
    struct stat st;
    if (syscall(SYS_fstat, fd, &st) != 0)
        return 0;
    if ((unsigned long long)st.st_dev != __atomic_load_n(&g_trace_dev, __ATOMIC_ACQUIRE)
        || (unsigned long long)st.st_ino != __atomic_load_n(&g_trace_ino, __ATOMIC_ACQUIRE))
        return 0;
    long fl = syscall(SYS_fcntl, fd, F_GETFL);
    return fl >= 0 && (fl & O_APPEND) && (fl & O_ACCMODE) != O_RDONLY;
}

static int trace_fd(void)
{
    int fd = __atomic_load_n(&g_trace_fd, __ATOMIC_ACQUIRE);
    if (fd >= 0 && trace_fd_is_ours(fd))
        return fd;
    long opened = syscall(SYS_openat, AT_FDCWD, g_trace_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (opened < 0)
        return -1;
    long high = syscall(SYS_fcntl, (int)opened, F_DUPFD_CLOEXEC, TRACE_FD_FLOOR);
    if (high >= 0) {
        syscall(SYS_close, (int)opened);
        opened = high;
    } /* else (the descriptor limit is below the floor): where openat put it */
    struct stat st;
    if (syscall(SYS_fstat, (int)opened, &st) != 0) {
        syscall(SYS_close, (int)opened);
        return -1;
    }
    __atomic_store_n(&g_trace_dev, (unsigned long long)st.st_dev, __ATOMIC_RELEASE);
    __atomic_store_n(&g_trace_ino, (unsigned long long)st.st_ino, __ATOMIC_RELEASE);
    int expected = fd;
    if (!__atomic_compare_exchange_n(&g_trace_fd, &expected, (int)opened, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        /* another thread opened it first: use its descriptor when it is good */
        if (expected >= 0 && expected != (int)opened && trace_fd_is_ours(expected)) {
            syscall(SYS_close, (int)opened);
            return expected;
        }
        __atomic_store_n(&g_trace_fd, (int)opened, __ATOMIC_RELEASE);
    }
    return (int)opened;
}

/* Append one whole line to the trace file with a single write(2). */
static void trace_append(const char *line, size_t len)
{
    int fd = trace_fd();
    if (fd >= 0) {
        long ignored = syscall(SYS_write, fd, line, len);
        (void)ignored;
    }
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
    if (n > 0 && (size_t)n < sizeof line)
        trace_append(line, (size_t)n);
    errno = saved;
}

/* s as the inside of a JSON string into out (outlen > 0, always terminated): `"`, `\` and every
 * byte below 0x20 or from 0x7f escaped (\u00XX for control and non-ASCII bytes: a name may hold
 * any octet, and the line must stay valid UTF-8).  Cut at a whole escape when out is full. */
static void json_text(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        char esc[7];
        size_t k = 0;
        if (*p == '"' || *p == '\\') {
            esc[k++] = '\\';
            esc[k++] = (char)*p;
        } else if (*p < 0x20 || *p >= 0x7f) {
            esc[k++] = '\\';
            esc[k++] = 'u';
            esc[k++] = '0';
            esc[k++] = '0';
            esc[k++] = hex[*p >> 4];
            esc[k++] = hex[*p & 15];
        } else {
            esc[k++] = (char)*p;
        }
        if (o + k >= outlen)
            break;
        memcpy(out + o, esc, k);
        o += k;
    }
    out[o] = '\0';
}

static const char *qtype_text(unsigned qtype, char *buf, size_t buflen)
{
    switch (qtype) {
    case 1: return "A";
    case 2: return "NS";
    case 5: return "CNAME";
    case 6: return "SOA";
    case 12: return "PTR";
    case 15: return "MX";
    case 16: return "TXT";
    case 28: return "AAAA";
    case 33: return "SRV";
    case 65: return "HTTPS";
    case 255: return "ANY";
    default:
        snprintf(buf, buflen, "TYPE%u", qtype);
        return buf;
    }
}

static const char *rcode_text(int rcode, char *buf, size_t buflen)
{
    static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
    if (rcode < 0)
        return "";
    if (rcode < (int)(sizeof names / sizeof names[0]))
        return names[rcode];
    snprintf(buf, buflen, "RCODE%d", rcode);
    return buf;
}

void shim_trace_lookup(const char *name, unsigned qtype, const void *server, unsigned int serverlen,
                       const char *pvd_id, const char *verdict, const char *why, int rcode, int err)
{
    if (!shim_tracing)
        return;
    int saved = errno;
    char qname[6 * 256 + 1], pvd[6 * 256 + 1], where[64], typebuf[16], rcodebuf[16];
    json_text(name, qname, sizeof qname);
    json_text(pvd_id, pvd, sizeof pvd);
    address_text(server, serverlen, where, sizeof where);
    char line[3584];
    int n = snprintf(line, sizeof line,
                     "{\"pid\":%d,\"op\":\"lookup\",\"name\":\"%s\",\"type\":\"%s\",\"server\":\"%s\","
                     "\"pvd\":\"%s\",\"verdict\":\"%s\",\"why\":\"%s\",\"rcode\":\"%s\",\"errno\":\"%s\"}\n",
                     (int)getpid(), qname, qtype_text(qtype, typebuf, sizeof typebuf), where, pvd, verdict,
                     why ? why : "", rcode_text(rcode, rcodebuf, sizeof rcodebuf),
                     err ? strerrorname_np(err) : "");
    if (n > 0 && (size_t)n < sizeof line)
        trace_append(line, (size_t)n);
    errno = saved;
}
