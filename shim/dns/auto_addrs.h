/* auto_addrs.h: which PvD each address came from, for `pvdrun --pvd auto` (docs/shim.md
 * "The auto PvD").  A fixed table of AUTO_ADDR_BUCKETS x AUTO_ADDR_WAYS entries in static
 * memory: no allocation, no lock.  Each entry is guarded by its own sequence counter (a
 * per-slot seqlock): a writer claims an entry by turning its counter odd with a
 * compare-and-swap, writes, and turns it even again; a reader copies the entry and keeps it
 * only when the counter was even and unchanged around the copy.  An address goes to the bucket
 * its hash picks; a bucket that is full loses its oldest entry (round robin), and an address
 * no longer in the table is the default PvD's.  Async-signal-safe: a handler never waits on an
 * entry its own thread is writing (a writer skips to the next way, a reader takes it as absent).
 * Internal to libpvdshim.so (and compiled alone by tests/c/). */
#ifndef PVD_AUTO_ADDRS_H
#define PVD_AUTO_ADDRS_H

#include <stdint.h>

#define AUTO_ADDR_BUCKETS 512u /* a power of two */
#define AUTO_ADDR_WAYS 8u
#define AUTO_ADDR_ENTRIES (AUTO_ADDR_BUCKETS * AUTO_ADDR_WAYS)

/* Remember that addr (family AF_INET: 4 bytes, AF_INET6: 16 bytes) came from the PvD in table
 * slot `slot` (1..0xFFFE).  An entry for the same address is replaced (the newest answer
 * wins).  errno untouched. */
void pvd_auto_addr_remember(int family, const uint8_t *addr, unsigned int slot);

/* The slot addr came from, or 0 when the table does not hold it.  An IPv4-mapped IPv6 address
 * is its IPv4 address.  errno untouched. */
unsigned int pvd_auto_addr_slot(int family, const uint8_t *addr);

#endif
