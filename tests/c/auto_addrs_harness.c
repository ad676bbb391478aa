/* auto_addrs_harness.c: the auto PvD's address table (shim/dns/auto_addrs.c) compiled alone.
 * Prints one line per check and exits 0 when all hold:
 *  - an address remembered is found with its PvD's slot, IPv4 also as IPv4-mapped IPv6;
 *  - the newest answer for an address wins;
 *  - overflow: after many more addresses than the table holds, the first ones are gone (0: the
 *    default PvD) and the last ones are still there;
 *  - threads remembering and looking up at once never see an address with another's slot. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "auto_addrs.h"

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            printf("ok: ");                                                                        \
        } else {                                                                                   \
            printf("FAIL: ");                                                                      \
            failures++;                                                                            \
        }                                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
    } while (0)

static void v6_of(unsigned int i, uint8_t out[16])
{
    memset(out, 0, 16);
    out[0] = 0x20;
    out[1] = 0x01;
    out[2] = 0x0d;
    out[3] = 0xb8;
    out[12] = (uint8_t)(i >> 24);
    out[13] = (uint8_t)(i >> 16);
    out[14] = (uint8_t)(i >> 8);
    out[15] = (uint8_t)i;
}

/* The slot of address i: derived from i, so that a reader can tell a wrong one. */
static unsigned int slot_of(unsigned int i) { return 1 + i % 60; }

static void *hammer(void *arg)
{
    unsigned int base = (unsigned int)(uintptr_t)arg, bad = 0;
    uint8_t a[16];
    for (unsigned int round = 0; round < 200000; round++) {
        unsigned int i = base + round % 5000;
        v6_of(i, a);
        pvd_auto_addr_remember(AF_INET6, a, slot_of(i));
        unsigned int j = base + (round * 7) % 5000;
        v6_of(j, a);
        unsigned int got = pvd_auto_addr_slot(AF_INET6, a);
        if (got != 0 && got != slot_of(j))
            bad++;
    }
    return (void *)(uintptr_t)bad;
}

int main(void)
{
    uint8_t a4[4], a6[16];
    inet_pton(AF_INET, "198.51.100.81", a4);
    pvd_auto_addr_remember(AF_INET, a4, 2);
    CHECK(pvd_auto_addr_slot(AF_INET, a4) == 2, "IPv4 address found with its slot");
    inet_pton(AF_INET6, "::ffff:198.51.100.81", a6);
    CHECK(pvd_auto_addr_slot(AF_INET6, a6) == 2, "the same address as IPv4-mapped IPv6");
    inet_pton(AF_INET6, "2001:db8:b:1::25", a6);
    CHECK(pvd_auto_addr_slot(AF_INET6, a6) == 0, "an address never answered: 0 (the default PvD)");
    pvd_auto_addr_remember(AF_INET6, a6, 3);
    pvd_auto_addr_remember(AF_INET6, a6, 4);
    CHECK(pvd_auto_addr_slot(AF_INET6, a6) == 4, "the newest answer wins");
    CHECK(pvd_auto_addr_slot(AF_UNIX, a6) == 0, "another family: 0");

    /* overflow: eight times the table */
    unsigned int total = AUTO_ADDR_ENTRIES * 8, first_kept = 0, last_kept = 0;
    for (unsigned int i = 0; i < total; i++) {
        v6_of(i + 1000000, a6);
        pvd_auto_addr_remember(AF_INET6, a6, slot_of(i));
    }
    for (unsigned int i = 0; i < AUTO_ADDR_ENTRIES; i++) {
        v6_of(i + 1000000, a6);
        first_kept += pvd_auto_addr_slot(AF_INET6, a6) != 0;
    }
    unsigned int wrong = 0;
    for (unsigned int i = total - 256; i < total; i++) {
        v6_of(i + 1000000, a6);
        unsigned int got = pvd_auto_addr_slot(AF_INET6, a6);
        last_kept += got != 0;
        wrong += got != 0 && got != slot_of(i);
    }
    CHECK(first_kept == 0, "overflow: the oldest %u addresses are gone (%u kept): the default PvD's",
          AUTO_ADDR_ENTRIES, first_kept);
    CHECK(last_kept == 256 && wrong == 0, "overflow: the newest 256 are kept (%u), with their slots (%u wrong)",
          last_kept, wrong);
    inet_pton(AF_INET, "198.51.100.81", a4);
    CHECK(pvd_auto_addr_slot(AF_INET, a4) == 0, "overflow: the first address falls back to 0");

    pthread_t threads[4];
    for (unsigned int t = 0; t < 4; t++)
        pthread_create(&threads[t], NULL, hammer, (void *)(uintptr_t)(t * 2500));
    uintptr_t bad = 0;
    for (unsigned int t = 0; t < 4; t++) {
        void *r;
        pthread_join(threads[t], &r);
        bad += (uintptr_t)r;
    }
    CHECK(bad == 0, "4 threads at once: no address ever read with another address's slot (%lu)",
          (unsigned long)bad);
    return failures ? 1 : 0;
}
