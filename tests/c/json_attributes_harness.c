/* json_attributes_harness.c: drive the scanner of pvd_get_attributes (shim/core/json_scan.c)
 * from tests.  Compiled by tests/test_shim_attributes.py with that source and sanitizers.
 *
 *   harness HANDLE OUTLEN [KEY] < reply   -> "rc=N errno=NAME" and, on success, the text on
 *                                            the next line
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"

static const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case EPROTO: return "EPROTO";
    case ENOENT: return "ENOENT";
    case ENODATA: return "ENODATA";
    case ERANGE: return "ERANGE";
    default: return "other";
    }
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    static char reply[1 << 20];
    size_t len = fread(reply, 1, sizeof reply, stdin);
    while (len > 0 && reply[len - 1] == '\n')
        len--;
    char *in = malloc(len ? len : 1); /* exactly its size: ASan sees a read past it */
    memcpy(in, reply, len);
    size_t outlen = strtoul(argv[2], NULL, 10);
    char *out = outlen ? malloc(outlen) : NULL;
    if (out)
        memset(out, 'x', outlen);
    errno = 0;
    ssize_t rc = shim_attributes_from_reply(in, len, (pvd_handle_t)strtoul(argv[1], NULL, 10),
                                            argc > 3 ? argv[3] : NULL, out, outlen);
    printf("rc=%zd errno=%s\n", rc, rc < 0 ? errname(errno) : "0");
    if (rc >= 0)
        printf("%s\n", out);
    else if (out)
        printf("left=%s\n", out[0] == '\0' ? "empty" : "junk");
    free(out);
    free(in);
    return 0;
}
