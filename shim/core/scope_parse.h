/* scope_parse.h: the scope-line parser, a pure function (no globals, no allocation, no I/O),
 * kept alone in its own file so that it can be fuzzed (see docs/shim.md). */
#ifndef PVD_SCOPE_PARSE_H
#define PVD_SCOPE_PARSE_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "pvd.h"

/* A parsed scope line: the public attributes plus binary addresses for fast checks. */
struct pvd_scope {
    struct pvd_info info;
    int is_null;                          /* the null PvD (R13) */
    unsigned int n_v4, n_v6;
    struct in_addr v4[PVD_MAX_ADDRS];
    struct in6_addr v6[PVD_MAX_ADDRS];
};

/* Parse `len` bytes of `line` (no NUL needed) into *out.  Returns 0, or -1 with a one-line
 * reason in err (always NUL-terminated when errlen > 0).  Rules: space-separated key=value
 * tokens; v must be 1; id and handle are required; a non-null PvD needs at least one
 * if=NAME:INDEX; list keys repeat up to the PVD_MAX_* limits; unknown keys are ignored. */
int pvd_scope_parse(const char *line, size_t len, struct pvd_scope *out, char *err, size_t errlen);

/* The scope line's numbers: an unsigned decimal of at most 32 bits ("010" is ten, never
 * octal), or 0x hex when allow_hex; no sign, no blanks.  0 or -1.  (Also %zone indexes.) */
int pvd_scope_parse_u32(const char *v, size_t n, int allow_hex, uint32_t *out);

#endif
