/* auto_addrs.c: see auto_addrs.h. */
#include "auto_addrs.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>

struct auto_entry {
    atomic_uint seq;        /* odd while a writer is in the entry */
    atomic_uint words[5];   /* 16 address bytes (IPv4 as IPv4-mapped IPv6), then the slot (0: empty) */
};

static struct auto_entry g_entries[AUTO_ADDR_ENTRIES];
static atomic_uint g_next_way[AUTO_ADDR_BUCKETS]; /* the bucket's oldest way, round robin */

/* The address as 16 bytes (IPv4 mapped), or -1 for another family. */
static int key_of(int family, const uint8_t *addr, uint32_t key[4])
{
    uint8_t bytes[16];
    if (family == AF_INET) {
        memset(bytes, 0, 10);
        bytes[10] = bytes[11] = 0xff;
        memcpy(bytes + 12, addr, 4);
    } else if (family == AF_INET6) {
        memcpy(bytes, addr, 16);
    } else {
        return -1;
    }
    memcpy(key, bytes, 16);
    return 0;
}

static unsigned int bucket_of(const uint32_t key[4])
{
    uint32_t h = 0x9747b28cu; /* each word mixed in, then MurmurHash3's finaliser: every bit counts */
    for (int i = 0; i < 4; i++) {
        uint32_t k = key[i] * 0xcc9e2d51u;
        k = (k << 15) | (k >> 17);
        h ^= k * 0x1b873593u;
        h = ((h << 13) | (h >> 19)) * 5u + 0xe6546b64u;
    }
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h & (AUTO_ADDR_BUCKETS - 1);
}

/* A consistent copy of entry e: 1 with key and slot, 0 when it is being written (or changed
 * while read: taken as absent, never waited on). */
static int read_entry(struct auto_entry *e, uint32_t key[4], unsigned int *slot)
{
    unsigned int before = atomic_load_explicit(&e->seq, memory_order_acquire);
    if (before & 1u)
        return 0;
    for (int i = 0; i < 4; i++)
        key[i] = atomic_load_explicit(&e->words[i], memory_order_relaxed);
    *slot = atomic_load_explicit(&e->words[4], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&e->seq, memory_order_relaxed) == before;
}

static int write_entry(struct auto_entry *e, const uint32_t key[4], unsigned int slot)
{
    unsigned int seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
    if ((seq & 1u) || !atomic_compare_exchange_strong_explicit(&e->seq, &seq, seq + 1, memory_order_acquire,
                                                              memory_order_relaxed))
        return 0; /* another writer (or this thread, interrupted by a handler) is in it */
    atomic_thread_fence(memory_order_release);
    for (int i = 0; i < 4; i++)
        atomic_store_explicit(&e->words[i], key[i], memory_order_relaxed);
    atomic_store_explicit(&e->words[4], slot, memory_order_relaxed);
    atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
    return 1;
}

void pvd_auto_addr_remember(int family, const uint8_t *addr, unsigned int slot)
{
    uint32_t key[4], have[4];
    unsigned int have_slot;
    if (slot == 0 || key_of(family, addr, key) < 0)
        return;
    unsigned int bucket = bucket_of(key);
    struct auto_entry *ways = &g_entries[bucket * AUTO_ADDR_WAYS];
    for (unsigned int i = 0; i < AUTO_ADDR_WAYS; i++) /* the same address: replaced in place */
        if (read_entry(&ways[i], have, &have_slot) && have_slot && memcmp(have, key, sizeof key) == 0) {
            if (have_slot == slot || write_entry(&ways[i], key, slot))
                return;
        }
    for (unsigned int tries = 0; tries < AUTO_ADDR_WAYS; tries++) {
        unsigned int way = atomic_fetch_add_explicit(&g_next_way[bucket], 1, memory_order_relaxed) % AUTO_ADDR_WAYS;
        if (write_entry(&ways[way], key, slot))
            return;
    }
}

unsigned int pvd_auto_addr_slot(int family, const uint8_t *addr)
{
    uint32_t key[4], have[4];
    unsigned int have_slot;
    if (key_of(family, addr, key) < 0)
        return 0;
    const struct auto_entry *ways = &g_entries[bucket_of(key) * AUTO_ADDR_WAYS];
    for (unsigned int i = 0; i < AUTO_ADDR_WAYS; i++)
        if (read_entry((struct auto_entry *)&ways[i], have, &have_slot) && have_slot &&
            memcmp(have, key, sizeof key) == 0)
            return have_slot;
    return 0;
}
