/* hostile_efault: invalid pointers handed to the hooked calls.
 *
 * usage: hostile_efault inline|isolate contract|extra FAMILY DST PORT
 *
 * contract: sendto with addr (void *)1 and with an munmap()ed page (lengths 16 and 28);
 * sendmsg with msg, msg_name, msg_control invalid; sendmmsg with the array invalid, with its
 * only message's msg_name invalid, and with the second of two messages' msg_name invalid;
 * connect and bind with an invalid address; setsockopt SO_BINDTODEVICE, SO_BINDTOIFINDEX,
 * IPV6_PKTINFO (IPv6), IPV6_2292PKTOPTIONS (IPv6), IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP and
 * MCAST_JOIN_GROUP with an invalid value.  Each on a fresh socket of FAMILY (4|6) and on one
 * tied first by a datagram to DST:PORT.
 * extra: a page the program used once validly, then made unreadable without munmap or
 * mprotect (mmap MAP_FIXED PROT_NONE over it; munmap through syscall(2)), then passed as
 * sendto's address.
 *
 * inline: every case in this process (it must live to print "done").  isolate: each case
 * in a fork()ed child, a child killed by a signal reported as "CASE SIGNAME".  Output
 * "CASE ok|ERRNO_NAME|sentN". */
#define _GNU_SOURCE
#include "hostile.h"

#include <net/if.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif
#ifndef IPV6_2292PKTOPTIONS
#define IPV6_2292PKTOPTIONS 6
#endif

static int family, isolate;
static struct sockaddr_storage dst;
static socklen_t dst_len;
static void *unmapped; /* a page that was mapped, then munmap()ed */
static long page;

static void result(const char *name, long rc)
{
    if (rc >= 0 && strstr(name, "sendmmsg_second")) {
        printf("%s sent%ld\n", name, rc);
        fflush(stdout);
    } else {
        hostile_result(name, rc);
    }
}

static socklen_t addr_len(void) { return family == AF_INET ? 16 : 28; }

/* ---- the cases (fd: a socket of FAMILY) ---- */
static void c_sendto_addr1_16(int fd, const char *n) { result(n, sendto(fd, "x", 1, 0, (void *)1, 16)); }
static void c_sendto_addr1_28(int fd, const char *n) { result(n, sendto(fd, "x", 1, 0, (void *)1, 28)); }
static void c_sendto_unmapped_16(int fd, const char *n) { result(n, sendto(fd, "x", 1, 0, unmapped, 16)); }
static void c_sendto_unmapped_28(int fd, const char *n) { result(n, sendto(fd, "x", 1, 0, unmapped, 28)); }
static void c_sendmsg_msg(int fd, const char *n) { result(n, sendmsg(fd, unmapped, 0)); }

static struct msghdr valid_msg(struct iovec *iov)
{
    struct msghdr m;
    memset(&m, 0, sizeof m);
    iov->iov_base = "x";
    iov->iov_len = 1;
    m.msg_name = &dst;
    m.msg_namelen = dst_len;
    m.msg_iov = iov;
    m.msg_iovlen = 1;
    return m;
}

static void c_sendmsg_name(int fd, const char *n)
{
    struct iovec iov;
    struct msghdr m = valid_msg(&iov);
    m.msg_name = unmapped;
    m.msg_namelen = addr_len();
    result(n, sendmsg(fd, &m, 0));
}

static void c_sendmsg_control(int fd, const char *n)
{
    struct iovec iov;
    struct msghdr m = valid_msg(&iov);
    m.msg_control = unmapped;
    m.msg_controllen = 32;
    result(n, sendmsg(fd, &m, 0));
}

static void c_sendmmsg_array(int fd, const char *n) { result(n, sendmmsg(fd, unmapped, 1, 0)); }

static void c_sendmmsg_name(int fd, const char *n)
{
    struct iovec iov;
    struct mmsghdr m = {.msg_hdr = valid_msg(&iov)};
    m.msg_hdr.msg_name = unmapped;
    m.msg_hdr.msg_namelen = addr_len();
    result(n, sendmmsg(fd, &m, 1, 0));
}

static void c_sendmmsg_second_name(int fd, const char *n)
{
    struct iovec iov[2];
    struct mmsghdr m[2] = {{.msg_hdr = valid_msg(&iov[0])}, {.msg_hdr = valid_msg(&iov[1])}};
    m[1].msg_hdr.msg_name = unmapped;
    m[1].msg_hdr.msg_namelen = addr_len();
    result(n, sendmmsg(fd, m, 2, 0));
}

static void c_connect(int fd, const char *n) { result(n, connect(fd, unmapped, addr_len())); }
static void c_bind(int fd, const char *n) { result(n, bind(fd, unmapped, addr_len())); }
static void c_bindtodevice(int fd, const char *n) { result(n, setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, unmapped, 5)); }
static void c_bindtoifindex(int fd, const char *n) { result(n, setsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, unmapped, 4)); }

static void c_pktinfo6(int fd, const char *n)
{
    result(n, setsockopt(fd, IPPROTO_IPV6, IPV6_PKTINFO, unmapped, sizeof(struct in6_pktinfo)));
}

static void c_pktoptions(int fd, const char *n) { result(n, setsockopt(fd, IPPROTO_IPV6, IPV6_2292PKTOPTIONS, unmapped, 32)); }

static void c_join(int fd, const char *n)
{
    if (family == AF_INET)
        result(n, setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, unmapped, sizeof(struct ip_mreqn)));
    else
        result(n, setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, unmapped, sizeof(struct ipv6_mreq)));
}

static void c_mcast_join(int fd, const char *n)
{
    result(n, setsockopt(fd, family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6, MCAST_JOIN_GROUP, unmapped,
                         sizeof(struct group_req)));
}

/* extra: a page used once validly (as sendto's address), then made unreadable by a path
 * that is neither munmap() nor mprotect(); then used again, on a fresh socket. */
static void *used_page(int fd)
{
    void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    memcpy(p, &dst, dst_len);
    sendto(fd, "warm", 4, 0, p, dst_len);
    return p;
}

static void c_remapped_none(int fd, const char *n)
{
    void *p = used_page(fd);
    int again = socket(family, SOCK_DGRAM, 0);
    if (!p || mmap(p, (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
        printf("%s setup_failed\n", n);
        return;
    }
    result(n, sendto(again, "x", 1, 0, p, dst_len));
    close(again);
}

static void c_raw_munmap(int fd, const char *n)
{
    void *p = used_page(fd);
    int again = socket(family, SOCK_DGRAM, 0);
    if (!p || syscall(SYS_munmap, p, (size_t)page) != 0) {
        printf("%s setup_failed\n", n);
        return;
    }
    result(n, sendto(again, "x", 1, 0, p, dst_len));
    close(again);
}

struct test_case {
    const char *name;
    void (*run)(int, const char *);
    int v6_only;
};

static const struct test_case contract_cases[] = {
    {"sendto_addr1_len16", c_sendto_addr1_16, 0},
    {"sendto_addr1_len28", c_sendto_addr1_28, 0},
    {"sendto_unmapped_len16", c_sendto_unmapped_16, 0},
    {"sendto_unmapped_len28", c_sendto_unmapped_28, 0},
    {"sendmsg_msg_invalid", c_sendmsg_msg, 0},
    {"sendmsg_name_invalid", c_sendmsg_name, 0},
    {"sendmsg_control_invalid", c_sendmsg_control, 0},
    {"sendmmsg_array_invalid", c_sendmmsg_array, 0},
    {"sendmmsg_name_invalid", c_sendmmsg_name, 0},
    {"sendmmsg_second_name_invalid", c_sendmmsg_second_name, 0},
    {"connect_invalid", c_connect, 0},
    {"bind_invalid", c_bind, 0},
    {"setsockopt_bindtodevice_invalid", c_bindtodevice, 0},
    {"setsockopt_bindtoifindex_invalid", c_bindtoifindex, 0},
    {"setsockopt_ipv6_pktinfo_invalid", c_pktinfo6, 1},
    {"setsockopt_2292pktoptions_invalid", c_pktoptions, 1},
    {"setsockopt_join_invalid", c_join, 0},
    {"setsockopt_mcast_join_invalid", c_mcast_join, 0},
    {NULL, NULL, 0},
};

static const struct test_case extra_cases[] = {
    {"sendto_page_remapped_prot_none", c_remapped_none, 0},
    {"sendto_page_munmapped_by_syscall", c_raw_munmap, 0},
    {NULL, NULL, 0},
};

static void run_case(const struct test_case *c, int tied)
{
    char name[128];
    snprintf(name, sizeof name, "%s_%s", tied ? "tied" : "fresh", c->name);
    int fd = socket(family, SOCK_DGRAM, 0);
    if (fd < 0) {
        result(name, -1);
        return;
    }
    if (tied && sendto(fd, "tie", 3, 0, (struct sockaddr *)&dst, dst_len) < 0) {
        char tie_name[160];
        snprintf(tie_name, sizeof tie_name, "%s_tie", name);
        result(tie_name, -1);
    }
    if (!isolate) {
        c->run(fd, name);
        close(fd);
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        c->run(fd, name);
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        const char *sig = sigabbrev_np(WTERMSIG(status));
        printf("%s SIG%s\n", name, sig ? sig : "?");
        fflush(stdout);
    }
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s inline|isolate contract|extra FAMILY DST PORT\n", argv[0]);
        return 2;
    }
    isolate = strcmp(argv[1], "isolate") == 0;
    int extra = strcmp(argv[2], "extra") == 0;
    family = atoi(argv[3]) == 6 ? AF_INET6 : AF_INET;
    dst_len = hostile_sockaddr(family, argv[4], atoi(argv[5]), &dst);
    if (dst_len == 0)
        return 2;
    page = sysconf(_SC_PAGESIZE);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("start %s\n", argv[1]); /* stdio's buffers exist before the hole is made */
    /* a hole: three pages mapped, the middle one unmapped, the outer ones PROT_NONE, so
     * nothing the program maps later can land in it by chance */
    char *area = mmap(NULL, (size_t)page * 3, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        return 3;
    unmapped = area + page;
    munmap(unmapped, (size_t)page);
    mprotect(area, (size_t)page, PROT_NONE);
    mprotect(area + 2 * page, (size_t)page, PROT_NONE);

    const struct test_case *cases = extra ? extra_cases : contract_cases;
    for (int tied = 0; tied <= 1; tied++)
        for (const struct test_case *c = cases; c->name; c++)
            if (!c->v6_only || family == AF_INET6)
                run_case(c, tied);
    puts("done");
    return 0;
}
