/* fuzz_launcher.c: libFuzzer harness for the native launcher's two readers of outside data:
 * pvdd's reply line (json_member, launcher/pvdd.c) and a program file's ELF headers
 * (elf_surely_dynamic, launcher/program.c).  The first input byte chooses.
 *
 * Besides memory and UB errors (ASan/UBSan; each input is copied to a buffer of exactly its
 * size, so a read past it is caught) it checks:
 *   - json_member returns 0 or -1, and on 0 its output is NUL-terminated within its size;
 *   - round trip: a printable ASCII string, escaped by json_escape and put in a one-member
 *     object line, is read back by json_member exactly;
 *   - elf_surely_dynamic returns 0 or 1, and 0 for anything shorter than an ELF header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "launcher.h"

void trace(const char *fmt, ...)
{
    (void)fmt;
}

static void reply(const uint8_t *data, size_t size)
{
    char *line = malloc(size ? size : 1);
    CHECK(line != NULL);
    memcpy(line, data, size);
    static char out[256];
    memset(out, 'x', sizeof out);
    int rc = json_member(line, size, "scope", out, sizeof out);
    CHECK(rc == 0 || rc == -1);
    if (rc == 0)
        CHECK(fuzz_terminated(out, sizeof out));
    free(line);

    char plain[128];
    size_t n = 0;
    for (size_t i = 0; i < size && n + 1 < sizeof plain; i++)
        if (data[i] >= 0x20 && data[i] < 0x7f)
            plain[n++] = (char)data[i];
    plain[n] = '\0';
    char escaped[512], object[600], back[256];
    CHECK(json_escape(plain, escaped, sizeof escaped) == 0);
    int len = snprintf(object, sizeof object, "{\"v\":1,\"k\":\"%s\"}", escaped);
    CHECK(len > 0 && (size_t)len < sizeof object);
    CHECK(json_member(object, (size_t)len, "k", back, sizeof back) == 0);
    CHECK(strcmp(back, plain) == 0);
}

static void elf(const uint8_t *data, size_t size)
{
    unsigned char *image = malloc(size ? size : 1);
    CHECK(image != NULL);
    memcpy(image, data, size);
    int rc = elf_surely_dynamic(image, size);
    CHECK(rc == 0 || rc == 1);
    if (size < 64)
        CHECK(rc == 0);
    free(image);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        reply(data + 1, size - 1);
    else
        elf(data + 1, size - 1);
    return 0;
}
