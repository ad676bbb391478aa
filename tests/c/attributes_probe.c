/* attributes_probe.c: pvd_get_attributes / pvd_get_attribute from a program (tests/
 * test_shim_attributes.py), linked with the shim.
 *
 *   attributes_probe TARGET KEY LEN [BUF]
 *     TARGET  a name for pvd_find, or #N for the handle N
 *     KEY     - for pvd_get_attributes, @bad for the key pointer (char *)1, else the key
 *     LEN     the buffer's size
 *     BUF     bad: the buffer pointer (char *)1; ro: a read-only string
 *   With PVDRUN_PROBE_SOCKET_AFTER_FIND set, PVDRUN_SOCKET becomes its value after pvd_find: pvdd,
 *   which listed the PvD, no longer answers at the call.
 *   prints "rc=N errno=NAME kept=0|1" (kept: errno as before the call) and, when the buffer is
 *   the program's own, "buf=TEXT" ("buf=" for an empty string). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pvd.h"

static const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case ENOENT: return "ENOENT";
    case ENODATA: return "ENODATA";
    case ERANGE: return "ERANGE";
    case EFAULT: return "EFAULT";
    case ENOTCONN: return "ENOTCONN";
    case EPROTO: return "EPROTO";
    case EINVAL: return "EINVAL";
    default: return "other";
    }
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    pvd_handle_t handle;
    if (argv[1][0] == '#') {
        handle = (pvd_handle_t)strtoul(argv[1] + 1, NULL, 10);
    } else if (pvd_find(argv[1], &handle) < 0) {
        printf("find failed errno=%s\n", errname(errno));
        return 1;
    }
    const char *after = getenv("PVDRUN_PROBE_SOCKET_AFTER_FIND");
    if (after)
        setenv("PVDRUN_SOCKET", after, 1);
    size_t len = strtoul(argv[3], NULL, 10);
    char *own = malloc(len + 1);
    memset(own, 'x', len);
    own[len] = '\0';
    char *buf = own;
    if (argc > 4 && strcmp(argv[4], "bad") == 0)
        buf = (char *)1;
    else if (argc > 4 && strcmp(argv[4], "ro") == 0)
        buf = (char *)"read-only";
    errno = 4242;
    ssize_t rc;
    if (strcmp(argv[2], "-") == 0)
        rc = pvd_get_attributes(handle, buf, len);
    else
        rc = pvd_get_attribute(handle, strcmp(argv[2], "@bad") == 0 ? (const char *)1 : argv[2], buf, len);
    int e = errno;
    printf("rc=%zd errno=%s kept=%d\n", rc, rc < 0 ? errname(e) : "0", e == 4242);
    if (buf == own)
        printf("buf=%s\n", own);
    free(own);
    return 0;
}
