/* calls.c: time one socket call in a tight loop, for `make bench`.
 *
 * usage: calls OP N [--dst ADDR] [--port P] [--name HOST] [--native IFINDEX]
 *                   [--bind ADDR] [--warmup W] [--clock wall|cpu] [--path FILE]
 *   OP  socket_close  socket(AF_INET, SOCK_STREAM) + close, N times
 *       udp_connect   connect() of one UDP socket to ADDR:P, N times
 *       udp_lifecycle socket(AF_INET, SOCK_DGRAM) + connect() to ADDR:P + close(), N times
 *                     (where a shim that scopes at first use pays its scoping cost)
 *       sendto        sendto(fd, 64 bytes, NULL addr) on a connected UDP socket
 *       sendmsg       sendmsg(fd, 64 bytes, no name) on a connected UDP socket
 *       getaddrinfo   getaddrinfo(HOST, AF_INET, SOCK_DGRAM) + freeaddrinfo
 *       res_query     res_query(HOST, C_IN, T_A) into a 4096-byte buffer (the answer must
 *                     hold at least one record)
 *       open_close    open(PATH, O_RDONLY | O_CLOEXEC) + close() of an ordinary file
 *       pvdd_resolve  one pvdd request {"op":"resolve","name":PVD,"host":HOST} on a new
 *                     connection to --socket PATH (as the shim's pvdd client makes one
 *                     exchange per connection); with --persistent 1 every request on one
 *                     connection made before the loop (as the Python API keeps its
 *                     connection); with --unique 1 every call asks another name,
 *                     u<pid>-<i>.HOST, so that no answer comes from pvdd's cache (not even
 *                     one a previous run of the loop asked).  Each call is timed too: the
 *                     JSON line adds p50_ns, p90_ns and p99_ns of the N calls
 *       sink          bind UDP ADDR:P and never read (datagrams dropped) until killed
 *       probe         make one UDP socket (connected to ADDR:P when --dst is
 *                     given) and print the device it is bound to and its mark,
 *                     to tell whether a preloaded library scoped it
 *   --native IFINDEX  scope every socket the program makes itself, the way an
 *                     application that knows its PvD would (SO_BINDTOIFINDEX,
 *                     plus bind() to --bind ADDR when given): the floor any
 *                     preload shim can reach.
 *
 *   --clock cpu       time with the thread's CPU clock (user + system time of this thread),
 *                     so that time other processes hold the CPU is left out; the default,
 *                     wall, is the monotonic clock (for calls that wait, like getaddrinfo).
 *
 * Prints one JSON line: {"op": ..., "calls": N, "ns_per_call": X, ...}, X being the
 * median over 10 equal batches of the N calls (mean_ns_per_call: the plain mean).
 * Any failing call is fatal (exit 1): timing failed calls would be a lie.
 * Bad usage exits 2.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

struct options {
    const char *op;
    long calls;
    long warmup;
    const char *dst;
    int port;
    const char *name;
    int native_ifindex; /* 0: not scoped natively */
    const char *bind_addr;
    const char *clock; /* "wall" (default) or "cpu" */
    const char *socket_path; /* pvdd_resolve */
    const char *pvd;         /* pvdd_resolve */
    int unique;              /* pvdd_resolve: a new name per call */
    int persistent;          /* pvdd_resolve: every request on one connection */
    const char *path;        /* open_close */
};

static void usage(const char *why)
{
    fprintf(stderr, "calls: %s\n"
            "usage: calls socket_close|udp_connect|udp_lifecycle|sendto|sendmsg|getaddrinfo|res_query|open_close|pvdd_resolve|sink|probe N "
            "[--dst ADDR] [--port P] [--name HOST] [--native IFINDEX] [--bind ADDR] [--warmup W] [--clock wall|cpu] [--socket PATH --pvd NAME [--unique 1] [--persistent 1]] [--path FILE]\n",
            why);
    exit(2);
}

static void die(const char *what)
{
    fprintf(stderr, "calls: %s: %s\n", what, strerror(errno));
    exit(1);
}

static long parse_long(const char *text, const char *what)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || !end || *end || value < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s is not a non-negative integer: '%s'", what, text);
        usage(msg);
    }
    return value;
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    if (argc < 3)
        usage("missing OP or N");
    memset(opt, 0, sizeof *opt);
    opt->op = argv[1];
    opt->calls = parse_long(argv[2], "N");
    opt->warmup = 1000;
    opt->port = 9;
    opt->clock = "wall";
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc)
            usage("option without a value");
        const char *key = argv[i], *value = argv[++i];
        if (!strcmp(key, "--dst"))
            opt->dst = value;
        else if (!strcmp(key, "--port"))
            opt->port = (int)parse_long(value, "--port");
        else if (!strcmp(key, "--name"))
            opt->name = value;
        else if (!strcmp(key, "--native"))
            opt->native_ifindex = (int)parse_long(value, "--native");
        else if (!strcmp(key, "--bind"))
            opt->bind_addr = value;
        else if (!strcmp(key, "--warmup"))
            opt->warmup = parse_long(value, "--warmup");
        else if (!strcmp(key, "--socket"))
            opt->socket_path = value;
        else if (!strcmp(key, "--pvd"))
            opt->pvd = value;
        else if (!strcmp(key, "--unique"))
            opt->unique = (int)parse_long(value, "--unique");
        else if (!strcmp(key, "--persistent"))
            opt->persistent = (int)parse_long(value, "--persistent");
        else if (!strcmp(key, "--path"))
            opt->path = value;
        else if (!strcmp(key, "--clock")) {
            if (strcmp(value, "wall") && strcmp(value, "cpu"))
                usage("--clock is wall or cpu");
            opt->clock = value;
        }
        else
            usage("unknown option");
    }
}

static void ipv4_address(const char *text, int port, struct sockaddr_in *out)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, text, &out->sin_addr) != 1)
        usage("address is not IPv4");
}

/* Scope a socket the way a PvD-aware application would, by itself. */
static void scope_natively(int fd, const struct options *opt)
{
    if (!opt->native_ifindex)
        return;
    int ifindex = opt->native_ifindex;
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex, sizeof ifindex) < 0)
        die("setsockopt(SO_BINDTOIFINDEX)");
    if (opt->bind_addr) {
        struct sockaddr_in src;
        ipv4_address(opt->bind_addr, 0, &src);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
            die("bind");
    }
}

static int connected_udp(const struct options *opt)
{
    if (!opt->dst)
        usage("this OP needs --dst");
    struct sockaddr_in dst;
    ipv4_address(opt->dst, opt->port, &dst);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    scope_natively(fd, opt);
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0)
        die("connect");
    return fd;
}

#define BATCHES 10

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (nearest rank) of n sorted values. */
static double percentile(const double *sorted, long n, int p)
{
    long rank = (n * p + 99) / 100; /* ceil(n * p / 100), 1-based */
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

/* CLOCK_MONOTONIC (wall) or CLOCK_THREAD_CPUTIME_ID (the CPU time, user and system, this
 * thread used: time other processes held the CPU is not in it). */
static clockid_t timing_clock = CLOCK_MONOTONIC;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(timing_clock, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One call of OP; fd and dst are prepared by run(). */
struct state {
    int fd;
    struct sockaddr_in dst;
    char payload[64];
    struct iovec iov;
    struct msghdr msg;
    struct addrinfo hints;
    struct sockaddr_un pvdd;
    long serial; /* pvdd_resolve --unique: the next name's number */
    int pvdd_fd; /* pvdd_resolve --persistent: the one connection, else -1 */
};

static int pvdd_connect(const struct state *st)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket(AF_UNIX)");
    if (connect(fd, (const struct sockaddr *)&st->pvdd, sizeof st->pvdd) < 0)
        die("connect(pvdd)");
    return fd;
}

/* One resolve exchange with pvdd; fatal unless the reply says "ok":true.  pvdd answers one
 * request with one line, and only one request is in flight: the reply ends at its newline. */
static void pvdd_resolve(const struct options *opt, struct state *st)
{
    char request[512], host[300], reply[65536];
    if (opt->unique)
        snprintf(host, sizeof host, "u%ld-%ld.%s", (long)getpid(), st->serial++, opt->name);
    else
        snprintf(host, sizeof host, "%s", opt->name);
    int len = snprintf(request, sizeof request,
                       "{\"v\":1,\"op\":\"resolve\",\"name\":\"%s\",\"host\":\"%s\"}\n",
                       opt->pvd, host);
    int fd = st->pvdd_fd >= 0 ? st->pvdd_fd : pvdd_connect(st);
    if (write(fd, request, (size_t)len) != len)
        die("write(pvdd)");
    size_t got = 0;
    while (got == 0 || reply[got - 1] != '\n') {
        ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
        if (n <= 0) {
            fprintf(stderr, "calls: pvdd closed the connection or failed before replying\n");
            exit(1);
        }
        got += (size_t)n;
        if (got >= sizeof reply - 1) {
            fprintf(stderr, "calls: pvdd's reply is too long\n");
            exit(1);
        }
    }
    reply[got] = '\0';
    if (fd != st->pvdd_fd)
        close(fd);
    if (!strstr(reply, "\"ok\":true")) {
        fprintf(stderr, "calls: pvdd could not resolve %s: %.300s", host, reply);
        exit(1);
    }
}

static void one_call(const struct options *opt, struct state *st)
{
    const char *op = opt->op;
    if (!strcmp(op, "socket_close")) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            die("socket");
        scope_natively(fd, opt);
        if (close(fd) < 0)
            die("close");
    } else if (!strcmp(op, "udp_lifecycle")) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        if (fd < 0)
            die("socket");
        scope_natively(fd, opt);
        if (connect(fd, (struct sockaddr *)&st->dst, sizeof st->dst) < 0)
            die("connect");
        if (close(fd) < 0)
            die("close");
    } else if (!strcmp(op, "udp_connect")) {
        if (connect(st->fd, (struct sockaddr *)&st->dst, sizeof st->dst) < 0)
            die("connect");
    } else if (!strcmp(op, "sendto")) {
        if (sendto(st->fd, st->payload, sizeof st->payload, 0, NULL, 0) < 0)
            die("sendto");
    } else if (!strcmp(op, "sendmsg")) {
        if (sendmsg(st->fd, &st->msg, 0) < 0)
            die("sendmsg");
    } else if (!strcmp(op, "pvdd_resolve")) {
        pvdd_resolve(opt, st);
    } else if (!strcmp(op, "getaddrinfo")) {
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(opt->name, NULL, &st->hints, &res);
        if (rc != 0) {
            fprintf(stderr, "calls: getaddrinfo(%s): %s\n", opt->name, gai_strerror(rc));
            exit(1);
        }
        freeaddrinfo(res);
    } else if (!strcmp(op, "res_query")) {
        unsigned char answer[4096];
        int n = res_query(opt->name, ns_c_in, ns_t_a, answer, sizeof answer);
        if (n < NS_HFIXEDSZ || (answer[6] == 0 && answer[7] == 0)) {
            fprintf(stderr, "calls: res_query(%s): %s\n", opt->name,
                    n < 0 ? hstrerror(h_errno) : "no answer record");
            exit(1);
        }
    } else if (!strcmp(op, "open_close")) {
        int fd = open(opt->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die("open");
        if (close(fd) < 0)
            die("close");
    }
}

static void sink(const struct options *opt)
{
    if (!opt->dst)
        usage("sink needs --dst");
    struct sockaddr_in addr;
    ipv4_address(opt->dst, opt->port, &addr);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    int rcvbuf = 1; /* the kernel rounds it up to its minimum */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
        die("setsockopt(SO_RCVBUF)");
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind");
    /* Never read: once the tiny buffer is full the kernel drops each datagram at the
     * socket, with no wake-up and no ICMP, so a sender's cost stays steady. */
    for (;;)
        pause();
}

static void probe(const struct options *opt)
{
    int fd = opt->dst ? connected_udp(opt) : socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    char device[64] = "";
    socklen_t device_len = sizeof device;
    if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device, &device_len) < 0)
        die("getsockopt(SO_BINDTODEVICE)");
    unsigned int mark = 0;
    socklen_t mark_len = sizeof mark;
    if (getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &mark_len) < 0)
        die("getsockopt(SO_MARK)");
    printf("{\"op\": \"probe\", \"device\": \"%s\", \"mark\": %u}\n", device, mark);
}

int main(int argc, char **argv)
{
    struct options opt;
    parse_options(argc, argv, &opt);
    if (!strcmp(opt.op, "sink")) {
        sink(&opt);
        return 0;
    }
    if (!strcmp(opt.op, "probe")) {
        probe(&opt);
        return 0;
    }
    struct state st;
    memset(&st, 0, sizeof st);
    st.fd = -1;
    st.pvdd_fd = -1;
    if (!strcmp(opt.op, "udp_connect") || !strcmp(opt.op, "sendto") || !strcmp(opt.op, "sendmsg")) {
        st.fd = connected_udp(&opt);
        ipv4_address(opt.dst, opt.port, &st.dst);
        st.iov.iov_base = st.payload;
        st.iov.iov_len = sizeof st.payload;
        st.msg.msg_iov = &st.iov;
        st.msg.msg_iovlen = 1;
    } else if (!strcmp(opt.op, "udp_lifecycle")) {
        if (!opt.dst)
            usage("udp_lifecycle needs --dst");
        ipv4_address(opt.dst, opt.port, &st.dst);
    } else if (!strcmp(opt.op, "pvdd_resolve")) {
        if (!opt.name || !opt.socket_path || !opt.pvd)
            usage("pvdd_resolve needs --name, --socket and --pvd");
        if (strlen(opt.socket_path) >= sizeof st.pvdd.sun_path || strlen(opt.name) > 200 ||
            strlen(opt.pvd) > 200 || strpbrk(opt.name, "\"\\") || strpbrk(opt.pvd, "\"\\"))
            usage("--socket, --name or --pvd too long or with a quote or backslash");
        st.pvdd.sun_family = AF_UNIX;
        strcpy(st.pvdd.sun_path, opt.socket_path);
        if (opt.persistent)
            st.pvdd_fd = pvdd_connect(&st);
    } else if (!strcmp(opt.op, "getaddrinfo")) {
        if (!opt.name)
            usage("getaddrinfo needs --name");
        st.hints.ai_family = AF_INET;
        st.hints.ai_socktype = SOCK_DGRAM;
    } else if (!strcmp(opt.op, "res_query")) {
        if (!opt.name)
            usage("res_query needs --name");
    } else if (!strcmp(opt.op, "open_close")) {
        if (!opt.path)
            usage("open_close needs --path");
    } else if (strcmp(opt.op, "socket_close")) {
        usage("unknown OP");
    }
    if (!strcmp(opt.clock, "cpu"))
        timing_clock = CLOCK_THREAD_CPUTIME_ID;
    for (long i = 0; i < opt.warmup; i++)
        one_call(&opt, &st);
    /* BATCHES equal batches; the median batch's rate is reported, so that a burst of
     * preemption by other processes on a shared machine moves one batch, not the figure. */
    double batch_ns[BATCHES];
    long per_batch = opt.calls / BATCHES, done = 0;
    /* pvdd_resolve: each call timed as well, for its percentiles (the other ops are too
     * short for two more clock reads per call to go unnoticed) */
    double *each_ns = NULL;
    if (!strcmp(opt.op, "pvdd_resolve") && opt.calls > 0 && !(each_ns = calloc((size_t)opt.calls, sizeof *each_ns)))
        die("calloc");
    double total_start = now_ns();
    for (int b = 0; b < BATCHES; b++) {
        long count = b == BATCHES - 1 ? opt.calls - done : per_batch;
        double start = now_ns();
        if (each_ns) {
            for (long i = 0; i < count; i++) {
                double call_start = now_ns();
                one_call(&opt, &st);
                each_ns[done + i] = now_ns() - call_start;
            }
        } else {
            for (long i = 0; i < count; i++)
                one_call(&opt, &st);
        }
        batch_ns[b] = count ? (now_ns() - start) / (double)count : 0.0;
        done += count;
    }
    double mean = opt.calls ? (now_ns() - total_start) / (double)opt.calls : 0.0;
    qsort(batch_ns, BATCHES, sizeof batch_ns[0], compare_double);
    double median = opt.calls >= BATCHES ? (batch_ns[BATCHES / 2 - 1] + batch_ns[BATCHES / 2]) / 2.0 : mean;
    printf("{\"op\": \"%s\", \"calls\": %ld, \"batches\": %d, \"clock\": \"%s\", "
           "\"ns_per_call\": %.1f, \"mean_ns_per_call\": %.1f",
           opt.op, opt.calls, BATCHES, opt.clock, median, mean);
    if (each_ns) {
        qsort(each_ns, (size_t)opt.calls, sizeof each_ns[0], compare_double);
        printf(", \"p50_ns\": %.1f, \"p90_ns\": %.1f, \"p99_ns\": %.1f",
               percentile(each_ns, opt.calls, 50), percentile(each_ns, opt.calls, 90),
               percentile(each_ns, opt.calls, 99));
        free(each_ns);
    }
    printf("}\n");
    if (st.pvdd_fd >= 0)
        close(st.pvdd_fd);
    return 0;
}
