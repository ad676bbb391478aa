/* fuzz_check.h: CHECK(), a property a harness asserts on the parser's output.  A failed
 * CHECK aborts, which libFuzzer reports as a crash and saves the input (so a wrong answer
 * is found the same way as an out-of-bounds read). */
#ifndef PVD_FUZZ_CHECK_H
#define PVD_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* 1 when buf[0..size) holds a NUL (the string it starts fits its array). */
static inline int fuzz_terminated(const char *buf, size_t size)
{
    return memchr(buf, '\0', size) != NULL;
}

#endif
