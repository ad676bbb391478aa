/* strict_client.h: what the strict-mode test clients (strict_syscall_connect.c,
 * strict_uring_connect.c) share: their error line and their address parser. */
#ifndef STRICT_CLIENT_H
#define STRICT_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* "error: ENAME (N)"; returns the exit status 1. */
static inline int fail(int err)
{
    const char *name = strerrorname_np(err);
    printf("error: %s (%d)\n", name ? name : "?", err);
    return 1;
}

/* ADDR and PORT into *sa; its length, or 0 when ADDR is no numeric address. */
static inline socklen_t parse(const char *addr, unsigned port, struct sockaddr_storage *sa)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
    char *scope;

    memset(sa, 0, sizeof(*sa));
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return sizeof(*v4);
    }
    snprintf(host, sizeof(host), "%s", addr);
    scope = strchr(host, '%');
    if (scope) {
        *scope++ = '\0';
        v6->sin6_scope_id = if_nametoindex(scope);
        if (!v6->sin6_scope_id)
            v6->sin6_scope_id = strtoul(scope, NULL, 10);
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) != 1)
        return 0;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return sizeof(*v6);
}

/* ADDR PORT [MESSAGE] from the command line into *sa: its length, or 0 after a usage line on
 * stderr (the caller exits 2). */
static inline socklen_t parse_args(int argc, char **argv, struct sockaddr_storage *sa)
{
    char *end;
    unsigned long port;
    socklen_t len;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s ADDR PORT [MESSAGE]\n", argv[0]);
        return 0;
    }
    port = strtoul(argv[2], &end, 10);
    len = end == argv[2] || *end || port > 65535 ? 0 : parse(argv[1], port, sa);
    if (!len)
        fprintf(stderr, "%s: bad address or port: %s %s\n", argv[0], argv[1], argv[2]);
    return len;
}

#endif
