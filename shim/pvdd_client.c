/* pvdd_client.c: one request/reply exchange with pvdd over its Unix socket. */
#include "pvdd_client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "core.h"

#define DEFAULT_SOCKET "/run/pvd/pvdd.sock"
#define REPLY_MAX (1u << 20)

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
    if (REAL(connect)(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        int e = errno;
        REAL(close)(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int shim_pvdd_list(pvd_handle_t *handles, size_t max)
{
    static const char request[] = "{\"v\":1,\"op\":\"list\"}\n";
    int fd = connect_pvdd();
    if (fd < 0)
        return -1;
    if (REAL(sendto)(fd, request, sizeof request - 1, MSG_NOSIGNAL, NULL, 0) != (ssize_t)(sizeof request - 1)) {
        REAL(close)(fd);
        errno = EIO;
        return -1;
    }
    char *reply = malloc(REPLY_MAX);
    size_t len = 0;
    if (!reply) {
        REAL(close)(fd);
        errno = ENOMEM;
        return -1;
    }
    while (len < REPLY_MAX) {
        ssize_t n = recv(fd, reply + len, REPLY_MAX - len, 0);
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
        return -1;
    }
    len = (size_t)((char *)memchr(reply, '\n', len) - reply);
    int count = 0;
    size_t pos = 0, start, end;
    char err[160];
    while (shim_next_scope(reply, len, &pos, &start, &end)) {
        unsigned int slot = shim_pvd_add(reply + start, end - start, err, sizeof err);
        if (slot == 0)
            continue; /* a PvD this shim cannot use (malformed or table full): not listed */
        if ((size_t)count < max && handles)
            handles[count] = shim_slot_handle(slot);
        count++;
    }
    free(reply);
    return count;
}
