/* fuzz_scope_parse.c: libFuzzer harness for pvd_scope_parse() (shim/core/scope_parse.c), the
 * parser of the scope line every socket hook relies on.
 *
 * Besides memory and UB errors (ASan/UBSan) it checks the parser's contract:
 *   - the error message is always NUL-terminated, and non-empty on failure;
 *   - an accepted line satisfies the documented rules (v=1, id and handle present, handle
 *     not 0, a non-null PvD has an interface, list sizes within PVD_MAX_*, every string
 *     terminated inside its array, no separator or forbidden character in a value);
 *   - round trip: the accepted scope, written back as a canonical scope line, parses to
 *     exactly the same struct (nothing was partially accepted or silently cut). */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_check.h"
#include "scope_parse.h"

static int clean_value(const char *s, size_t size)
{
    if (!fuzz_terminated(s, size))
        return 0;
    return s[0] != '\0' && strpbrk(s, " \t\n=\"\\") == NULL;
}

/* Append "key=value " to line; returns the new length. */
static size_t put(char *line, size_t len, size_t cap, const char *key, const char *value)
{
    int n = snprintf(line + len, cap - len, "%s=%s ", key, value);
    CHECK(n > 0 && (size_t)n < cap - len);
    return len + (size_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pvd_scope s, again;
    char err[160];
    memset(err, 'x', sizeof err);
    int rc = pvd_scope_parse((const char *)data, size, &s, err, sizeof err);
    CHECK(rc == 0 || rc == -1);
    CHECK(fuzz_terminated(err, sizeof err));
    if (rc != 0) {
        CHECK(err[0] != '\0');
        /* a tiny error buffer is still terminated, and a NULL one is allowed */
        char small[4];
        CHECK(pvd_scope_parse((const char *)data, size, &again, small, sizeof small) == -1);
        CHECK(fuzz_terminated(small, sizeof small));
        CHECK(pvd_scope_parse((const char *)data, size, &again, NULL, 0) == -1);
        return 0;
    }
    CHECK(err[0] == '\0');

    const struct pvd_info *in = &s.info;
    CHECK(clean_value(in->id, sizeof in->id));
    CHECK(in->handle != PVD_HANDLE_UNSPEC);
    CHECK(s.is_null == (in->handle == PVD_HANDLE_NULL));
    CHECK(in->n_interfaces <= PVD_MAX_IFACES && in->n_addresses <= PVD_MAX_ADDRS);
    CHECK(in->n_dns <= PVD_MAX_DNS && in->n_search <= PVD_MAX_SEARCH);
    CHECK(s.is_null || in->n_interfaces > 0);
    CHECK(s.n_v4 + s.n_v6 == in->n_addresses);
    CHECK(in->srcbind == 0 || in->srcbind == 1);
    for (unsigned i = 0; i < in->n_interfaces; i++) {
        CHECK(clean_value(in->interfaces[i], PVD_IFNAME_MAX));
        CHECK(in->ifindexes[i] > 0 && in->ifindexes[i] <= INT32_MAX);
    }
    for (unsigned i = 0; i < in->n_addresses; i++)
        CHECK(clean_value(in->addresses[i], PVD_ADDRSTR_MAX));
    for (unsigned i = 0; i < in->n_dns; i++)
        CHECK(clean_value(in->dns[i], PVD_ADDRSTR_MAX));
    for (unsigned i = 0; i < in->n_search; i++)
        CHECK(clean_value(in->search[i], PVD_SEARCH_MAX));

    /* Round trip through the canonical form (what pvdrun/model.py's to_scope writes). */
    static char line[16384];
    char num[32];
    size_t len = 0, cap = sizeof line;
    len = put(line, len, cap, "v", "1");
    len = put(line, len, cap, "id", in->id);
    snprintf(num, sizeof num, "%u", in->handle);
    len = put(line, len, cap, "handle", num);
    for (unsigned i = 0; i < in->n_interfaces; i++) {
        char v[PVD_IFNAME_MAX + 16];
        snprintf(v, sizeof v, "%s:%u", in->interfaces[i], in->ifindexes[i]);
        len = put(line, len, cap, "if", v);
    }
    for (unsigned i = 0; i < in->n_addresses; i++)
        len = put(line, len, cap, "addr", in->addresses[i]);
    for (unsigned i = 0; i < in->n_dns; i++)
        len = put(line, len, cap, "dns", in->dns[i]);
    for (unsigned i = 0; i < in->n_search; i++)
        len = put(line, len, cap, "search", in->search[i]);
    snprintf(num, sizeof num, "%#x", in->mark);
    if (in->mark == 0)
        snprintf(num, sizeof num, "0x0");
    len = put(line, len, cap, "mark", num);
    len = put(line, len, cap, "srcbind", in->srcbind ? "1" : "0");
    CHECK(pvd_scope_parse(line, len, &again, err, sizeof err) == 0);
    CHECK(memcmp(&s, &again, sizeof s) == 0);
    return 0;
}
