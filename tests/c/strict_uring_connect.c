/* strict_uring_connect ADDR PORT [MESSAGE]: a TCP connection made through io_uring.
 *
 * The socket is made with syscall(SYS_socket); the connect (IORING_OP_CONNECT) and the send
 * of MESSAGE, if given (IORING_OP_SEND), are requests to an io_uring set up with raw system
 * calls (io_uring_setup, mmap of the rings, io_uring_enter; no liburing): no connect(2) or
 * send(2) system call is made, and no libc function a preloaded library could wrap.
 * ADDR is a numeric IPv4 or IPv6 address (an IPv6 one may carry %SCOPE).  Prints "connected"
 * (exit 0) once connected and MESSAGE sent; otherwise "error: ENAME (N)" (exit 1), from the
 * completion's res or from a failed system call.  Usage errors: exit 2.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "strict_client.h"

/* One ring with its submission and completion queues mapped. */
struct ring {
    int fd;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
};

/* Set up a ring of 4 entries; 0, or -errno. */
static int ring_setup(struct ring *r)
{
    struct io_uring_params p;
    size_t sq_size, cq_size;
    uint8_t *sq, *cq;

    memset(&p, 0, sizeof(p));
    r->fd = syscall(SYS_io_uring_setup, 4, &p);
    if (r->fd < 0)
        return -errno;
    sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if ((p.features & IORING_FEAT_SINGLE_MMAP) && cq_size > sq_size)
        sq_size = cq_size;
    sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
    if (sq == MAP_FAILED)
        return -errno;
    cq = sq;
    if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
        cq = mmap(NULL, cq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
        if (cq == MAP_FAILED)
            return -errno;
    }
    r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED)
        return -errno;
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

/* Submit *sqe alone and wait for its completion: its res, or -errno of io_uring_enter. */
static int ring_run(struct ring *r, const struct io_uring_sqe *sqe)
{
    unsigned tail = *r->sq_tail, index = tail & *r->sq_mask, head;
    int res;

    r->sqes[index] = *sqe;
    r->sq_array[index] = index;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    while (syscall(SYS_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
        if (errno != EINTR)
            return -errno;
    head = *r->cq_head;
    while (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
        if (syscall(SYS_io_uring_enter, r->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0 && errno != EINTR)
            return -errno;
    res = r->cqes[head & *r->cq_mask].res;
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    return res;
}

int main(int argc, char **argv)
{
    struct sockaddr_storage sa;
    struct io_uring_sqe sqe;
    struct ring ring;
    socklen_t len;
    int fd, res;

    len = parse_args(argc, argv, &sa);
    if (!len)
        return 2;
    res = ring_setup(&ring);
    if (res < 0)
        return fail(-res);
    fd = syscall(SYS_socket, sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return fail(errno);

    memset(&sqe, 0, sizeof(sqe));
    sqe.opcode = IORING_OP_CONNECT;
    sqe.fd = fd;
    sqe.addr = (uintptr_t)&sa;
    sqe.off = len; /* the address length (addr2) */
    res = ring_run(&ring, &sqe);
    if (res < 0)
        return fail(-res);

    if (argc == 4) {
        const char *msg = argv[3];
        size_t left = strlen(msg);
        while (left) {
            memset(&sqe, 0, sizeof(sqe));
            sqe.opcode = IORING_OP_SEND;
            sqe.fd = fd;
            sqe.addr = (uintptr_t)msg;
            sqe.len = left;
            sqe.msg_flags = MSG_NOSIGNAL;
            res = ring_run(&ring, &sqe);
            if (res < 0)
                return fail(-res);
            msg += res;
            left -= res;
        }
    }
    close(fd);
    printf("connected\n");
    return 0;
}
