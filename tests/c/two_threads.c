/* two_threads.c: two threads scoped to two PvDs at once (R20: per-thread scope), each
 * fetching http://DST/ over its own PvD.  Used by tests/test_shim_lab.py.
 *
 * usage: two_threads SCOPE_LINE_A SCOPE_LINE_B DST_ADDRESS
 * prints one line per thread: "<thread> handle=<h> socket=<h> thread=<h> reply=<body>" */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pvd.h"

struct job {
    const char *name;
    const char *scope_line;
    const char *dst;
    pthread_barrier_t *barrier;
    char result[512];
};

static int dst_sockaddr(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(80);
        *len = sizeof *s4;
        return 0;
    }
    if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(80);
        *len = sizeof *s6;
        return 0;
    }
    return -1;
}

static void *fetch(void *arg)
{
    struct job *job = arg;
    pvd_handle_t handle = 0, sock_handle = 0;
    struct sockaddr_storage ss;
    socklen_t len;
    char reply[1024];
    size_t got = 0;

    if (pvd_add_scope(job->scope_line, &handle) < 0 || pvd_set_thread_scope(handle) < 0) {
        snprintf(job->result, sizeof job->result, "%s error=scope:%s", job->name, strerror(errno));
        return NULL;
    }
    pthread_barrier_wait(job->barrier); /* both threads scoped at the same time */
    if (dst_sockaddr(job->dst, &ss, &len) < 0) {
        snprintf(job->result, sizeof job->result, "%s error=bad-address", job->name);
        return NULL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
        snprintf(job->result, sizeof job->result, "%s error=connect:%s", job->name, strerror(errno));
        return NULL;
    }
    pvd_get_socket_scope(fd, &sock_handle);
    static const char request[] = "GET / HTTP/1.0\r\n\r\n";
    if (send(fd, request, sizeof request - 1, 0) < 0) {
        snprintf(job->result, sizeof job->result, "%s error=send:%s", job->name, strerror(errno));
        close(fd);
        return NULL;
    }
    for (;;) {
        ssize_t n = recv(fd, reply + got, sizeof reply - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    reply[got] = '\0';
    char *body = strstr(reply, "\r\n\r\n");
    body = body ? body + 4 : reply;
    body[strcspn(body, "\r\n")] = '\0';
    snprintf(job->result, sizeof job->result, "%s handle=%u socket=%u thread=%u reply=%.200s", job->name,
             (unsigned)handle, (unsigned)sock_handle, (unsigned)pvd_get_thread_scope(), body);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t threads[2];
    pthread_barrier_t barrier;
    struct job jobs[2] = {
        {.name = "A", .scope_line = argc > 1 ? argv[1] : "", .dst = argc > 3 ? argv[3] : ""},
        {.name = "B", .scope_line = argc > 2 ? argv[2] : "", .dst = argc > 3 ? argv[3] : ""},
    };
    if (argc != 4) {
        fprintf(stderr, "usage: %s SCOPE_LINE_A SCOPE_LINE_B DST_ADDRESS\n", argv[0]);
        return 2;
    }
    pthread_barrier_init(&barrier, NULL, 2);
    for (int i = 0; i < 2; i++) {
        jobs[i].barrier = &barrier;
        pthread_create(&threads[i], NULL, fetch, &jobs[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
        printf("%s\n", jobs[i].result);
    }
    printf("main thread=%u process=%u\n", (unsigned)pvd_get_thread_scope(), (unsigned)pvd_get_process_scope());
    return 0;
}
