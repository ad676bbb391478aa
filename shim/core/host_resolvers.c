/* host_resolvers.c: see host_resolvers.h. */
#include "host_resolvers.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static const char *const g_sockets[] = {
    "/run/nscd/socket",
    "/run/systemd/resolve/io.systemd.Resolve",
    "/run/systemd/resolve/io.systemd.Resolve.Monitor",
};

/* Append `n` bytes of `in` to the absolute path `out` (length *len, capacity cap), resolving
 * ".", ".." and repeated slashes lexically.  0, or -1 when it does not fit. */
static int append_path(char *out, size_t *len, size_t cap, const char *in, size_t n)
{
    const char *end = in + n;
    while (in < end) {
        while (in < end && *in == '/')
            in++;
        const char *stop = in;
        while (stop < end && *stop != '/')
            stop++;
        size_t part = (size_t)(stop - in);
        if (part == 0 || (part == 1 && in[0] == '.')) {
            /* nothing */
        } else if (part == 2 && in[0] == '.' && in[1] == '.') {
            while (*len > 0 && out[--*len] != '/')
                ;
        } else {
            if (*len + 1 + part >= cap)
                return -1;
            out[(*len)++] = '/';
            memcpy(out + *len, in, part);
            *len += part;
        }
        in = stop;
    }
    out[*len] = '\0';
    return 0;
}

int shim_is_host_resolver(const struct sockaddr *addr, socklen_t len)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    if (len <= off || addr->sa_family != AF_UNIX || un->sun_path[0] == '\0')
        return 0; /* unnamed, or abstract: not a path */
    size_t n = strnlen(un->sun_path, (size_t)len - off);
    if (n > sizeof un->sun_path)
        n = sizeof un->sun_path;
    int saved = errno;
    char path[PATH_MAX];
    size_t have = 0;
    path[0] = '\0';
    if (un->sun_path[0] != '/') {
        char cwd[PATH_MAX];
        int ok = getcwd(cwd, sizeof cwd) && cwd[0] == '/' && append_path(path, &have, sizeof path, cwd, strlen(cwd)) == 0;
        errno = saved;
        if (!ok)
            return 0; /* no working directory to read it from */
    }
    if (append_path(path, &have, sizeof path, un->sun_path, n) < 0)
        return 0;
    const char *p = path;
    if (strncmp(p, "/var/run/", 9) == 0)
        p += 4; /* /var/run is /run */
    for (size_t i = 0; i < sizeof g_sockets / sizeof g_sockets[0]; i++)
        if (strcmp(p, g_sockets[i]) == 0)
            return 1;
    return 0;
}

const char *shim_host_resolver_socket(unsigned int index)
{
    return index < sizeof g_sockets / sizeof g_sockets[0] ? g_sockets[index] : NULL;
}
