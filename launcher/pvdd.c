/* pvdd.c: one request to pvdd, op "scope" (docs/protocol.md), and the two JSON helpers it
 * needs.  pvdd writes each reply as one line of compact JSON (pvdrun/daemon/protocol.py); a
 * flat object's string members are found by their "key":" prefix, which cannot occur inside
 * a string (its quotes are escaped there). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "launcher.h"

#define REPLY_MAX (64 * 1024)
#define TIMEOUT_MS 5000 /* the Python client's timeout (pvdrun/daemon/protocol.py) */

int json_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char buf[8];
        const char *piece = buf;
        if (*p >= 0x7f)
            return -1; /* non-ASCII: only ASCII names take the fast path */
        if (*p == '"' || *p == '\\')
            buf[0] = '\\', buf[1] = (char)*p, buf[2] = '\0';
        else if (*p < 0x20)
            snprintf(buf, sizeof buf, "\\u%04x", *p);
        else
            buf[0] = (char)*p, buf[1] = '\0';
        size_t n = strlen(piece);
        if (o + n >= outlen)
            return -1;
        memcpy(out + o, piece, n);
        o += n;
    }
    out[o] = '\0';
    return 0;
}

int json_member(const char *line, size_t len, const char *key, char *out, size_t outlen)
{
    char pattern[64];
    int plen = snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    if (plen <= 0 || (size_t)plen >= sizeof pattern || outlen == 0)
        return -1;
    for (size_t i = 1; i + (size_t)plen <= len; i++) {
        if ((line[i - 1] != '{' && line[i - 1] != ',') || memcmp(line + i, pattern, (size_t)plen) != 0)
            continue;
        size_t o = 0;
        for (size_t e = i + (size_t)plen; e < len; e++) {
            char c = line[e];
            if (c == '"') {
                out[o] = '\0';
                return 0;
            }
            if (c == '\\') {
                if (++e >= len)
                    return -1;
                switch (line[e]) {
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'r': c = '\r'; break;
                case '"': case '\\': case '/': c = line[e]; break;
                default: return -1; /* \uXXXX and the rest: not for the fast path */
                }
            } else if ((unsigned char)c < 0x20) {
                return -1;
            }
            if (o + 1 >= outlen)
                return -1;
            out[o++] = c;
        }
        return -1; /* unterminated */
    }
    return -1;
}

static int remaining_ms(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : (int)ms;
}

int pvdd_connect(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path)
        return -1;
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc;
    while ((rc = connect(fd, (struct sockaddr *)&sun, sizeof sun)) < 0 && errno == EINTR)
        ;
    if (rc < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send request on fd and read the reply line (NUL-terminated in buf, its length), or -1: a
 * timeout, pvdd gone, no whole line within buflen. */
static ssize_t exchange(int fd, const char *request, char *buf, size_t buflen)
{
    size_t want = strlen(request), sent = 0;
    while (sent < want) {
        ssize_t n = send(fd, request + sent, want - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        sent += (size_t)n;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += TIMEOUT_MS / 1000;
    size_t len = 0;
    while (len + 1 < buflen) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, remaining_ms(&deadline));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            return -1;
        ssize_t n = recv(fd, buf + len, buflen - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        char *nl = memchr(buf + len, '\n', (size_t)n);
        len += (size_t)n;
        if (nl) {
            *nl = '\0';
            return nl - buf;
        }
    }
    return -1;
}

/* An op's ok reply to {"v":1,"op":OP,"name":NAME} in reply (REPLY_MAX), its length; or -1. */
static ssize_t ask(int fd, const char *op, const char *name, char *reply)
{
    char escaped[1024], request[1200];
    if (json_escape(name, escaped, sizeof escaped) < 0)
        return -1;
    snprintf(request, sizeof request, "{\"v\":1,\"op\":\"%s\",\"name\":\"%s\"}\n", op, escaped);
    ssize_t len = exchange(fd, request, reply, REPLY_MAX);
    char ok[64];
    int n = snprintf(ok, sizeof ok, "{\"v\":1,\"ok\":true,\"op\":\"%s\",", op);
    if (len > 0 && strncmp(reply, ok, (size_t)n) == 0)
        return len;
    trace("pvdd's reply to %s: %.200s", op, len > 0 ? reply : "(none)");
    return -1;
}

int ask_scope(int fd, const char *name, char *scope, size_t scope_len, char *resolv_conf, size_t resolv_len)
{
    char *reply = malloc(REPLY_MAX);
    if (!reply)
        return -1;
    ssize_t len = ask(fd, "scope", name, reply);
    int rc = len > 0 && json_member(reply, (size_t)len, "scope", scope, scope_len) == 0 && scope[0] &&
             json_member(reply, (size_t)len, "resolv_conf", resolv_conf, resolv_len) == 0 ? 0 : -1;
    char needs[64];
    if (rc == 0 && json_member(reply, (size_t)len, "needs", needs, sizeof needs) == 0)
        rc = -2;
    free(reply);
    return rc;
}

int ask_strict(int fd, const char *name)
{
    char *reply = malloc(REPLY_MAX);
    if (!reply)
        return -1;
    int rc = ask(fd, "strict", name, reply) > 0 ? 0 : -1;
    free(reply);
    return rc;
}
