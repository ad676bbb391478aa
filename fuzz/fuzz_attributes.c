/* fuzz_attributes.c: libFuzzer harness for the JSON scanner of pvd_get_attributes and
 * pvd_get_attribute (shim/core/json_scan.c): pvdd's reply to op "get", read for the PvD with
 * handle 42.  The first input byte chooses the key (low 3 bits; 0: none, the whole object)
 * and the output size (high 5 bits); the rest is the reply line.
 *
 * Besides memory and UB errors (ASan/UBSan; the input is in a buffer of exactly its size) it
 * checks:
 *   - shim_json_value: a value found lies inside the input, and alone scans to its own end;
 *   - shim_attributes_from_reply returns -1 only with EPROTO, ENOENT, ENODATA or ERANGE, and
 *     leaves "" in its output; on success the output is NUL-terminated within its size, scans
 *     as one complete JSON value, and is a substring of the input (one key), or the object
 *     {"attributes":A,"additional_info":B} whose A and B are substrings of the input (or the
 *     defaults {} and null);
 *   - ERANGE only when the answer does not fit: a large buffer then gets it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "json_scan.h"

static const char *const keys[8] = {NULL, "noInternet", "k", "name", "caf\xc3\xa9", "\xf0\x9f\x98\x80", "", "a\"b"};
static const size_t sizes[8] = {0, 1, 2, 5, 16, 64, 300, 4096};

static int whole_value(const char *s, size_t len)
{
    size_t st, en;
    return shim_json_value(s, len, 0, &st, &en) == 0 && st == 0 && en == len;
}

static int in_input(const char *input, size_t size, const char *part, size_t len)
{
    return memmem(input, size, part, len) != NULL;
}

static void check_output(const char *in, size_t len, const char *key, const char *out, ssize_t rc)
{
    const char *text = out;
    size_t n = (size_t)rc;
    CHECK(strlen(text) == n);
    CHECK(whole_value(text, n));
    if (key) {
        CHECK(in_input(in, len, text, n));
        return;
    }
    size_t vs, ve;
    CHECK(text[0] == '{');
    CHECK(shim_json_member(text, 0, n, "attributes", &vs, &ve) == 1);
    CHECK(text[vs] == '{');
    CHECK(in_input(in, len, text + vs, ve - vs) || (ve - vs == 2 && memcmp(text + vs, "{}", 2) == 0));
    CHECK(shim_json_member(text, 0, n, "additional_info", &vs, &ve) == 1);
    CHECK(in_input(in, len, text + vs, ve - vs) || (ve - vs == 4 && memcmp(text + vs, "null", 4) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *key = keys[data[0] & 7];
    size_t outlen = (data[0] >> 3) < 8 ? sizes[data[0] >> 3] : (size_t)(data[0] >> 3) * 13;
    size_t len = size - 1;
    char *in = malloc(len ? len : 1); /* exactly the reply's size: a read past it is caught */
    CHECK(in);
    memcpy(in, data + 1, len);

    size_t st, en;
    if (shim_json_value(in, len, 0, &st, &en) == 0) {
        CHECK(st < en && en <= len);
        CHECK(whole_value(in + st, en - st));
    }

    char *out = outlen ? malloc(outlen) : NULL;
    if (out)
        memset(out, 'x', outlen);
    errno = 0;
    ssize_t rc = shim_attributes_from_reply(in, len, 42, key, out, outlen);
    if (rc < 0) {
        int e = errno;
        CHECK(e == EPROTO || e == ENOENT || e == ENODATA || e == ERANGE);
        if (outlen)
            CHECK(out[0] == '\0');
        if (e == ERANGE) {
            static char big[1 << 16];
            ssize_t again = shim_attributes_from_reply(in, len, 42, key, big, sizeof big);
            CHECK(again >= (ssize_t)outlen || (again < 0 && errno == ERANGE && len >= sizeof big - 64));
            if (again >= 0)
                check_output(in, len, key, big, again);
        }
    } else {
        CHECK((size_t)rc < outlen);
        CHECK(fuzz_terminated(out, outlen));
        check_output(in, len, key, out, rc);
    }
    free(out);
    free(in);
    return 0;
}
