/* hostile_signal: a signal handler sends on the socket the main thread is tying.
 *
 * usage: hostile_signal TOKEN FAMILY DST PORT INTERVAL_US SENDS MIN_TICKS FRESH_EVERY
 *
 * An interval timer (setitimer ITIMER_REAL, INTERVAL_US) raises SIGALRM, whose handler
 * (installed without SA_RESTART) sends one datagram on the socket the main thread is
 * using.  The main thread sends SENDS datagrams, on a new UDP socket every FRESH_EVERY
 * datagrams, so the first datagram of each socket (the one that ties it to its PvD) is
 * often interrupted by a handler that sends on that very socket; then it waits (pause)
 * until the handler ran MIN_TICKS times.  Datagrams carry "TOKEN:main;" or
 * "TOKEN:handler;".  Output, one line:
 *   sends=N handler_sends=M ticks=T main_errors=NAME:COUNT,... handler_errors=... duration_us=D
 *   handler_max_us=L (L: the longest sendto inside the handler; D and L for information)
 * ("none" when there was no error), then "done". */
#define _GNU_SOURCE
#include "hostile.h"

#include <signal.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_ERRNO 200
static struct sockaddr_storage dst;
static socklen_t dst_len;
static volatile sig_atomic_t current_fd = -1; /* -1: no usable socket right now */
static volatile sig_atomic_t ticks, handler_sends;
static volatile sig_atomic_t handler_errors[MAX_ERRNO];
static volatile long handler_max_us; /* the longest sendto in the handler (information only) */
static long main_errors[MAX_ERRNO];
static char main_text[96], handler_text[96];
static size_t main_len, handler_len;

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    ticks++;
    int fd = current_fd;
    if (fd >= 0) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        ssize_t rc = sendto(fd, handler_text, handler_len, 0, (struct sockaddr *)&dst, dst_len);
        clock_gettime(CLOCK_MONOTONIC, &b);
        long us = (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
        if (us > handler_max_us)
            handler_max_us = us;
        if (rc < 0) {
            int e = errno;
            handler_errors[e > 0 && e < MAX_ERRNO ? e : 0]++;
        } else {
            handler_sends++;
        }
    }
    errno = saved;
}

static void print_errors(const char *label, int from_handler)
{
    int any = 0;
    printf(" %s=", label);
    for (int e = 0; e < MAX_ERRNO; e++) {
        long n = from_handler ? handler_errors[e] : main_errors[e];
        if (!n)
            continue;
        const char *name = strerrorname_np(e);
        printf("%s%s:%ld", any ? "," : "", name ? name : "E?", n);
        any = 1;
    }
    if (!any)
        printf("none");
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: %s TOKEN FAMILY DST PORT INTERVAL_US SENDS MIN_TICKS FRESH_EVERY\n", argv[0]);
        return 2;
    }
    main_len = (size_t)snprintf(main_text, sizeof main_text, "%s:main;", argv[1]);
    handler_len = (size_t)snprintf(handler_text, sizeof handler_text, "%s:handler;", argv[1]);
    argv++;
    int family = atoi(argv[1]) == 6 ? AF_INET6 : AF_INET;
    dst_len = hostile_sockaddr(family, argv[2], atoi(argv[3]), &dst);
    if (dst_len == 0)
        return 2;
    long interval = atol(argv[4]), sends = atol(argv[5]), min_ticks = atol(argv[6]);
    long fresh_every = atol(argv[7]) > 0 ? atol(argv[7]) : 1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_interval = {interval / 1000000, interval % 1000000},
                           .it_value = {interval / 1000000, interval % 1000000}};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    setitimer(ITIMER_REAL, &it, NULL);

    long done_sends = 0;
    int fd = -1;
    for (long i = 0; i < sends; i++) {
        if (i % fresh_every == 0) {
            current_fd = -1;
            if (fd >= 0)
                close(fd);
            fd = socket(family, SOCK_DGRAM, 0);
            if (fd < 0) {
                int e = errno;
                main_errors[e > 0 && e < MAX_ERRNO ? e : 0]++;
                continue;
            }
            current_fd = fd;
        }
        if (sendto(fd, main_text, main_len, 0, (struct sockaddr *)&dst, dst_len) < 0) {
            int e = errno;
            main_errors[e > 0 && e < MAX_ERRNO ? e : 0]++;
        } else {
            done_sends++;
        }
    }
    while (ticks < min_ticks)
        pause(); /* the handler goes on sending on the last socket */
    struct itimerval off;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
    current_fd = -1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    printf("sends=%ld handler_sends=%ld ticks=%ld", done_sends, (long)handler_sends, (long)ticks);
    print_errors("main_errors", 0);
    print_errors("handler_errors", 1);
    printf(" duration_us=%ld handler_max_us=%ld\n", us, (long)handler_max_us);
    puts("done");
    return 0;
}
