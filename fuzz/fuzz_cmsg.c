/* fuzz_cmsg.c: libFuzzer harness for shim_check_cmsgs() (shim/core/options.c), the check of the
 * control messages of sendmsg/sendmmsg on a socket tied to a PvD.
 *
 * Input: one byte choosing the socket's state word (tied to the harness's PvD, being tied,
 * tied to a slot without a PvD, or not tied), then the control buffer, copied to a heap block
 * of exactly its length (ASan catches a read past msg_controllen).
 *
 * Oracle: an independent walk of the buffer with the kernel's rules (__cmsg_nxthdr and
 * CMSG_OK of net/core/scm.c): when the kernel would accept the list and act on an
 * IP_PKTINFO, IPV6_PKTINFO or IPV6_2292PKTINFO naming an interface outside the PvD or a
 * source address outside it, or on an IPV6_NEXTHOP, the shim must refuse (-1); when every
 * control message stays inside the PvD, it must let the message through (0). */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core.h"
#include "fuzz_check.h"
#include "scope_parse.h"
#include "uaccess.h"

#define PVD_SLOT 1u
#define EMPTY_SLOT 2u /* a slot with no PvD (removed meanwhile) */

static struct pvd_scope pvd;
static int pvd_ready;

static const char PVD_LINE[] = "v=1 id=fuzz.example handle=7 if=eth0:3 if=eth1:5 addr=192.0.2.10 "
                               "addr=10.1.0.2 addr=2001:db8::10 addr=fe80::2%3 mark=0x5001";

const struct pvd_scope *shim_pvd_at(unsigned int slot)
{
    return slot == PVD_SLOT ? &pvd : NULL;
}

int shim_copy_in(void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n); /* the harness's buffer is always readable */
    return 0;
}

static int ifindex_ok(unsigned int ifindex)
{
    if (ifindex == 0)
        return 1;
    for (unsigned i = 0; i < pvd.info.n_interfaces; i++)
        if (pvd.info.ifindexes[i] == ifindex)
            return 1;
    return 0;
}

static int v4_ok(const struct in_addr *a)
{
    if (a->s_addr == htonl(INADDR_ANY))
        return 1;
    for (unsigned i = 0; i < pvd.n_v4; i++)
        if (pvd.v4[i].s_addr == a->s_addr)
            return 1;
    return 0;
}

static int v6_ok(const struct in6_addr *a)
{
    if (IN6_IS_ADDR_UNSPECIFIED(a))
        return 1;
    if (IN6_IS_ADDR_V4MAPPED(a)) {
        struct in_addr a4;
        memcpy(&a4, &a->s6_addr[12], 4);
        return v4_ok(&a4);
    }
    for (unsigned i = 0; i < pvd.n_v6; i++)
        if (memcmp(&pvd.v6[i], a, sizeof *a) == 0)
            return 1;
    return 0;
}

/* The kernel's view: -1 when it refuses the list (EINVAL), else 1 when some control message
 * would take the packet outside the PvD, 0 when none does. */
static int kernel_verdict(const uint8_t *ctl, size_t len)
{
    int outside = 0;
    size_t off = 0;
    while (len - off >= sizeof(struct cmsghdr)) { /* CMSG_FIRSTHDR / __cmsg_nxthdr */
        struct cmsghdr h;
        memcpy(&h, ctl + off, sizeof h);
        if (h.cmsg_len < sizeof(struct cmsghdr) || h.cmsg_len > len - off) /* !CMSG_OK */
            return -1;
        const uint8_t *data = ctl + off + CMSG_LEN(0);
        size_t n = h.cmsg_len - CMSG_LEN(0);
        if (h.cmsg_level == IPPROTO_IP && h.cmsg_type == IP_PKTINFO && n >= sizeof(struct in_pktinfo)) {
            struct in_pktinfo p;
            memcpy(&p, data, sizeof p);
            if (!ifindex_ok((unsigned)p.ipi_ifindex) || !v4_ok(&p.ipi_spec_dst))
                outside = 1;
        } else if (h.cmsg_level == IPPROTO_IPV6
                   && (h.cmsg_type == IPV6_PKTINFO || h.cmsg_type == IPV6_2292PKTINFO)
                   && n >= sizeof(struct in6_pktinfo)) {
            struct in6_pktinfo p;
            memcpy(&p, data, sizeof p);
            if (!ifindex_ok(p.ipi6_ifindex) || !v6_ok(&p.ipi6_addr))
                outside = 1;
        } else if (h.cmsg_level == IPPROTO_IPV6 && h.cmsg_type == IPV6_NEXTHOP) {
            outside = 1;
        }
        size_t step = CMSG_ALIGN(h.cmsg_len);
        if (step > len - off)
            break;
        off += step;
    }
    return outside;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!pvd_ready) {
        CHECK(pvd_scope_parse(PVD_LINE, strlen(PVD_LINE), &pvd, NULL, 0) == 0);
        pvd_ready = 1;
    }
    if (size < 1)
        return 0;
    static const uint32_t words[] = {
        W_MAKE(FK_SCOPED, PVD_SLOT, W_DEVBOUND), W_MAKE(FK_BUSY, PVD_SLOT, 0),
        W_MAKE(FK_SCOPED, EMPTY_SLOT, 0), W_MAKE(FK_PENDING, PVD_SLOT, 0),
        W_MAKE(FK_SYSTEM, 0, 0), W_MAKE(FK_NONINET, 0, 0), W_MAKE(FK_SCOPED, PVD_SLOT, W_V6),
        W_MAKE(FK_LOOPBACK, 0, 0),
    };
    uint32_t w = words[data[0] % (sizeof words / sizeof words[0])];
    size_t len = size - 1;
    uint8_t *ctl = malloc(len ? len : 1);
    if (!ctl)
        return 0;
    memcpy(ctl, data + 1, len);

    int rc = shim_check_cmsgs(w, ctl, len);
    CHECK(rc == 0 || rc == -1);
    int tied = W_KIND(w) == FK_SCOPED || W_KIND(w) == FK_BUSY;
    if (!tied) {
        CHECK(rc == 0); /* not the PvD's socket: not the shim's business here */
    } else if (W_SLOT(w) == PVD_SLOT) {
        int verdict = kernel_verdict(ctl, len);
        if (verdict == 1)
            CHECK(rc == -1); /* the kernel would leave the PvD: refused */
        else if (verdict == 0)
            CHECK(rc == 0); /* everything inside the PvD: allowed */
    }
    free(ctl);
    return 0;
}
