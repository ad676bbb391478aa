/* concurrent_tie.c: 8 threads send their first datagram on the same fresh UDP socket at
 * the same moment, ROUNDS times over (one new socket per round): the shim must tie each
 * socket exactly once, never hang, and never let a datagram fail or escape.
 *
 * usage: concurrent_tie DST_IPV4 IFINDEX TOKEN [ROUNDS]  (ROUNDS: 2000)
 * Every datagram carries TOKEN.  Prints "fails=N scoped=M bound=K rounds=R": M sockets the
 * shim says are in the process's PvD, K sockets the KERNEL says are bound to IFINDEX
 * (SO_BINDTOIFINDEX read back; the shim does not hook getsockopt). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pvd.h"

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

#define THREADS 8
static int rounds = 2000;
static const char *token = "x";

static int fd;
static pthread_barrier_t barrier;
static int fails;
static struct sockaddr_in dst = {.sin_family = AF_INET};

static void *sender(void *arg)
{
    (void)arg;
    for (int round = 0; round < rounds; round++) {
        pthread_barrier_wait(&barrier);
        if (sendto(fd, token, strlen(token), 0, (struct sockaddr *)&dst, sizeof dst) < 0)
            __atomic_fetch_add(&fails, 1, __ATOMIC_RELAXED);
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t threads[THREADS];
    int scoped = 0, bound = 0, ifindex;
    if (argc < 4 || argc > 5 || inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
        fprintf(stderr, "usage: %s DST_IPV4 IFINDEX TOKEN [ROUNDS]\n", argv[0]);
        return 2;
    }
    ifindex = atoi(argv[2]);
    token = argv[3];
    if (argc == 5)
        rounds = atoi(argv[4]);
    dst.sin_port = htons(9);
    pthread_barrier_init(&barrier, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, sender, NULL);
    for (int round = 0; round < rounds; round++) {
        fd = socket(AF_INET, SOCK_DGRAM, 0);
        pthread_barrier_wait(&barrier); /* go */
        pthread_barrier_wait(&barrier); /* all sent */
        pvd_handle_t handle = PVD_HANDLE_UNSPEC;
        if (pvd_get_socket_scope(fd, &handle) == 0 && handle == pvd_get_process_scope())
            scoped++;
        int kernel = 0;
        socklen_t len = sizeof kernel;
        if (getsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &kernel, &len) == 0 && kernel == ifindex)
            bound++;
        close(fd);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    printf("fails=%d scoped=%d bound=%d rounds=%d\n", fails, scoped, bound, rounds);
    return 0;
}
