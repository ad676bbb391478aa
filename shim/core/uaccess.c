/* uaccess.c: safe reads of the program's memory (see uaccess.h). */
#include "uaccess.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"

#define PAGE_SHIFT_MIN 12 /* probing 4 KiB granules is right for any larger page size too */
#define KNOWN_PAGES 8

static atomic_uint g_generation = 1;
static int g_futex_dummy;

/* Pages this thread found readable, valid while t_known_gen equals g_generation. */
static SHIM_TLS uintptr_t t_known[KNOWN_PAGES];
static SHIM_TLS unsigned int t_known_gen, t_known_next;

void shim_mappings_changed(void) { atomic_fetch_add_explicit(&g_generation, 1, memory_order_release); }

/* One system call that reads the 4-byte word at p (aligned down) and fails with EFAULT when
 * it cannot: FUTEX_CMP_REQUEUE compares the word with val3 and, with nothing to wake or
 * requeue, does nothing else. */
static int probe(uintptr_t page)
{
    int saved = errno;
    long rc = REAL(syscall)(SYS_futex, (int *)(page << PAGE_SHIFT_MIN), FUTEX_CMP_REQUEUE_PRIVATE, 0, 0, &g_futex_dummy,
                      0);
    int ok = rc >= 0 || errno != EFAULT;
    errno = saved;
    return ok;
}

static int page_readable(uintptr_t page, unsigned int gen)
{
    if (t_known_gen != gen) {
        memset(t_known, 0, sizeof t_known);
        t_known_gen = gen;
    }
    for (unsigned int i = 0; i < KNOWN_PAGES; i++)
        if (t_known[i] == page)
            return 1;
    if (!probe(page))
        return 0;
    /* A probe in a signal handler may overwrite an entry the interrupted code was about to
     * write: the cache then misses, never lies (entries are whole words). */
    t_known[t_known_next++ % KNOWN_PAGES] = page;
    return 1;
}

int shim_readable(const void *p, size_t n)
{
    uintptr_t start = (uintptr_t)p;
    if (n == 0)
        return 1;
    if (start < 4096 || start + n < start || start + n - 1 < start) {
        errno = EFAULT;
        return 0;
    }
    unsigned int gen = atomic_load_explicit(&g_generation, memory_order_acquire);
    uintptr_t first = start >> PAGE_SHIFT_MIN, last = (start + n - 1) >> PAGE_SHIFT_MIN;
    for (uintptr_t page = first; page <= last; page++) {
        /* page 0 is never readable; pages are the unit (4 KiB granules) */
        if (!page_readable(page, gen)) {
            errno = EFAULT;
            return 0;
        }
    }
    return 1;
}

int shim_copy_in(void *dst, const void *src, size_t n)
{
    if (!shim_readable(src, n))
        return -1;
    if (n)
        memcpy(dst, src, n);
    return 0;
}

#ifndef GRND_INSECURE
#define GRND_INSECURE 0x0004
#endif

/* 1 when the kernel could write the byte at p (it writes a random byte there), else 0. */
static int probe_write(unsigned char *p)
{
    int saved = errno;
    long rc = REAL(syscall)(SYS_getrandom, p, 1, GRND_INSECURE);
    if (rc < 0 && errno == EINVAL) /* before Linux 5.6 */
        rc = REAL(syscall)(SYS_getrandom, p, 1, GRND_NONBLOCK);
    int ok = rc >= 0 || errno != EFAULT;
    errno = saved;
    return ok;
}

int shim_copy_out(void *p, const void *src, size_t n)
{
    uintptr_t start = (uintptr_t)p;
    if (n == 0)
        return 0;
    if (start < 4096 || start + n - 1 < start) {
        errno = EFAULT;
        return -1;
    }
    uintptr_t first = start >> PAGE_SHIFT_MIN, last = (start + n - 1) >> PAGE_SHIFT_MIN;
    for (uintptr_t page = first; page <= last; page++) {
        uintptr_t at = page == first ? start : page << PAGE_SHIFT_MIN;
        if (!probe_write((unsigned char *)at)) {
            if (page != first)
                *(unsigned char *)p = 0; /* no random byte left where a string starts */
            errno = EFAULT;
            return -1;
        }
    }
    memcpy(p, src, n);
    return 0;
}
