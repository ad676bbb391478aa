/* pvdd_client.c: one request/reply exchange with pvdd over its Unix socket. */
#include "pvdd_client.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "core.h"
#include "json_scan.h"

#define DEFAULT_SOCKET "/run/pvd/pvdd.sock"
#define REPLY_MAX (1u << 20)

/* Why this thread's last pvdd exchange failed (pvd_last_reason). */
static SHIM_TLS char t_reason[SHIM_REASON_MAX];

const char *shim_reason(void) { return t_reason; }

void shim_reason_clear(void) { t_reason[0] = '\0'; }

__attribute__((format(printf, 1, 2))) static void set_reason(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_reason, sizeof t_reason, fmt, ap);
    va_end(ap);
}

int shim_next_scope(const char *reply, size_t len, size_t *pos, size_t *start, size_t *end)
{
    static const char key[] = "\"scope\":\"";
    const size_t key_len = sizeof key - 1;
    for (size_t i = *pos; i + key_len <= len; i++) {
        if (memcmp(reply + i, key, key_len) != 0)
            continue;
        size_t s = i + key_len, e = s;
        while (e < len && reply[e] != '"' && reply[e] != '\\' && reply[e] != '\n')
            e++;
        if (e >= len || reply[e] != '"')
            return 0; /* unterminated or escaped: not a scope line */
        *start = s;
        *end = e;
        *pos = e + 1;
        return 1;
    }
    return 0;
}

static int connect_pvdd(void)
{
    const char *path = getenv("PVDRUN_SOCKET");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (!path || !*path)
        path = DEFAULT_SOCKET;
    if (strlen(path) >= sizeof sun.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sun.sun_path, path);
    int fd = REAL(socket)(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    REAL(setsockopt)(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    REAL(setsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc;
    /* A signal (a program's SIGCHLD handler without SA_RESTART, e.g. socat's EXEC) must
     * not turn into a failed PvD operation: every step of the exchange retries EINTR. */
    while ((rc = REAL(connect)(fd, (struct sockaddr *)&sun, sizeof sun)) < 0 && errno == EINTR)
        ;
    if (rc < 0 && errno == EISCONN)
        rc = 0; /* an interrupted connect that completed meanwhile */
    if (rc < 0) {
        int e = errno;
        REAL(close)(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Send request (one line) and read pvdd's reply line: a malloc'ed buffer (the caller frees it)
 * holding *len bytes, the newline excluded, or NULL (errno) when pvdd does not answer. */
static char *pvdd_exchange(const char *request, size_t *len_out)
{
    int fd = connect_pvdd();
    if (fd < 0)
        return NULL;
    size_t want = strlen(request);
    ssize_t sent;
    while ((sent = REAL(sendto)(fd, request, want, MSG_NOSIGNAL, NULL, 0)) < 0 && errno == EINTR)
        ;
    if (sent != (ssize_t)want) {
        REAL(close)(fd);
        errno = EIO;
        return NULL;
    }
    char *reply = malloc(REPLY_MAX);
    size_t len = 0;
    if (!reply) {
        REAL(close)(fd);
        errno = ENOMEM;
        return NULL;
    }
    while (len < REPLY_MAX) {
        ssize_t n = recv(fd, reply + len, REPLY_MAX - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(reply + len - (size_t)n, '\n', (size_t)n))
            break;
    }
    REAL(close)(fd);
    if (len == 0 || !memchr(reply, '\n', len)) {
        free(reply);
        errno = EIO;
        return NULL;
    }
    *len_out = (size_t)((char *)memchr(reply, '\n', len) - reply);
    return reply;
}

/* Handles pvdd has listed to this process (pvd_get_attributes: a PvD pvdd no longer answers
 * for is not one known without pvdd); the last SHIM_MAX_PVDS distinct ones.  Lock-free (safe in
 * a fork child): two threads adding at once may store one handle twice, which only makes room
 * for one fewer. */
static _Atomic pvd_handle_t g_seen[SHIM_MAX_PVDS];
static atomic_uint g_seen_next;

int shim_pvdd_listed(pvd_handle_t handle)
{
    if (handle == PVD_HANDLE_UNSPEC)
        return 0;
    for (unsigned int i = 0; i < SHIM_MAX_PVDS; i++)
        if (atomic_load_explicit(&g_seen[i], memory_order_relaxed) == handle)
            return 1;
    return 0;
}

static void seen_add(pvd_handle_t handle)
{
    if (shim_pvdd_listed(handle))
        return;
    unsigned int at = atomic_fetch_add_explicit(&g_seen_next, 1, memory_order_relaxed) % SHIM_MAX_PVDS;
    atomic_store_explicit(&g_seen[at], handle, memory_order_relaxed);
}

/* Send request (one line) and add every "scope" of the reply to the PvD table, storing up to
 * max handles: how many the reply held, or -1 (errno) when pvdd does not answer. */
static int pvdd_scopes(const char *request, pvd_handle_t *handles, size_t max)
{
    size_t len;
    char *reply = pvdd_exchange(request, &len);
    if (!reply)
        return -1;
    int count = 0;
    size_t pos = 0, start, end;
    char err[160];
    while (shim_next_scope(reply, len, &pos, &start, &end)) {
        unsigned int slot = shim_pvd_add(reply + start, end - start, err, sizeof err);
        if (slot == 0)
            continue; /* a PvD this shim cannot use (malformed or table full): not listed */
        seen_add(shim_slot_handle(slot));
        if ((size_t)count < max && handles)
            handles[count] = shim_slot_handle(slot);
        count++;
    }
    free(reply);
    return count;
}

int shim_pvdd_list(pvd_handle_t *handles, size_t max)
{
    return pvdd_scopes("{\"v\":1,\"op\":\"list\"}\n", handles, max);
}

int shim_pvdd_get(const char *name, pvd_handle_t *handle)
{
    char request[PVD_ID_MAX + 64];
    for (const char *p = name; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) {
            errno = ENOENT; /* no PvD name holds these */
            return -1;
        }
    int n = snprintf(request, sizeof request, "{\"v\":1,\"op\":\"get\",\"name\":\"%s\"}\n", name);
    if (n <= 0 || (size_t)n >= sizeof request) {
        errno = ENOENT;
        return -1;
    }
    pvd_handle_t found;
    if (pvdd_scopes(request, &found, 1) != 1) {
        errno = ENOENT;
        return -1;
    }
    *handle = found;
    return 0;
}

ssize_t shim_pvdd_attributes(pvd_handle_t handle, const char *id, const char *key, char *out, size_t outlen)
{
    char request[PVD_ID_MAX + 64];
    for (const char *p = id; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) {
            errno = ENOENT; /* pvdd knows no PvD by such an ID */
            return -1;
        }
    int n = snprintf(request, sizeof request, "{\"v\":1,\"op\":\"get\",\"name\":\"%s\"}\n", id);
    if (n <= 0 || (size_t)n >= sizeof request) {
        errno = ENOENT;
        return -1;
    }
    size_t len;
    char *reply = pvdd_exchange(request, &len);
    if (!reply) {
        errno = ENOTCONN;
        return -1;
    }
    ssize_t got = shim_attributes_from_reply(reply, len, handle, key, out, outlen);
    int e = errno;
    free(reply);
    errno = e;
    return got;
}

int shim_pvdd_mark(int sockfd, pvd_handle_t handle)
{
    char request[64];
    int n = snprintf(request, sizeof request, "{\"v\":1,\"op\":\"mark\",\"handle\":%u}\n", (unsigned)handle);
    int fd = connect_pvdd();
    if (fd < 0) {
        const char *path = getenv("PVDRUN_SOCKET");
        set_reason("pvdd does not answer on %s (%s)", path && *path ? path : DEFAULT_SOCKET, strerror(errno));
        errno = ENETUNREACH; /* no pvdd: the PvD's routing cannot be had, fail closed */
        return -1;
    }
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {.iov_base = request, .iov_len = (size_t)n};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &sockfd, sizeof(int));
    ssize_t sent;
    while ((sent = REAL(sendmsg)(fd, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (sent != (ssize_t)n) {
        REAL(close)(fd);
        set_reason("pvdd: the request could not be sent");
        errno = ENETUNREACH;
        return -1;
    }
    char reply[1024];
    size_t len = 0;
    while (len < sizeof reply - 1) {
        ssize_t got = recv(fd, reply + len, sizeof reply - 1 - len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
        if (memchr(reply, '\n', len))
            break;
    }
    REAL(close)(fd);
    reply[len] = '\0';
    if (!memchr(reply, '\n', len)) {
        set_reason("pvdd: no reply to the mark request");
        errno = ENETUNREACH;
        return -1;
    }
    if (strstr(reply, "\"ok\":true"))
        return 0;
    char message[SHIM_REASON_MAX - 8];
    if (!shim_reply_message(reply, len, message, sizeof message))
        snprintf(message, sizeof message, "refused");
    set_reason("pvdd: %s", message);
    errno = strstr(reply, "\"code\":\"forbidden\"") ? EACCES : ENETUNREACH;
    return -1;
}

int shim_reply_message(const char *reply, size_t len, char *out, size_t outlen)
{
    static const char key[] = "\"message\":\"";
    const size_t key_len = sizeof key - 1;
    if (outlen == 0)
        return 0;
    for (size_t i = 0; i + key_len <= len; i++) {
        if (memcmp(reply + i, key, key_len) != 0)
            continue;
        size_t o = 0;
        for (size_t e = i + key_len; e < len && reply[e] != '\n'; e++) {
            char c = reply[e];
            if (c == '"') {
                out[o] = '\0';
                return o > 0;
            }
            if (c == '\\' && e + 1 < len) {
                c = reply[++e];
                c = c == 'n' || c == 't' || c == 'r' ? ' ' : c; /* \uXXXX stays as written */
            }
            if (o + 1 < outlen && (unsigned char)c >= 0x20)
                out[o++] = c;
        }
        return 0; /* unterminated */
    }
    return 0;
}
