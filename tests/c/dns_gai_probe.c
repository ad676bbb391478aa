/* dns_gai_probe.c: call the resolver functions a scoped program would call,
 * and print what they return.  Compiled by tests/fixtures/resolve_lab.py and
 * run with LD_PRELOAD=libpvdshim.so inside a lab namespace.
 *
 *   probe gai NAME [unspec|inet|inet6] [flags,...] [SERVICE]   getaddrinfo (service 80)
 *         flags: addrconfig canonname v4mapped all none
 *   probe gni ADDR [namereqd]                        getnameinfo
 *   probe ghbn NAME [inet|inet6]                     gethostbyname(2)
 *   probe ghbnr NAME                                 gethostbyname_r
 *   probe threads NAME COUNT                         COUNT concurrent getaddrinfo
 *   probe bench NAME COUNT                           mean microseconds per getaddrinfo
 *   probe thread-scope LINE NAME                     a thread scoped to LINE
 *         (pvd_add_scope + pvd_set_thread_scope, found with dlsym in the
 *         preloaded library) and the main thread both resolve NAME
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <stdint.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int parse_family(const char *s)
{
    if (!s || strcmp(s, "unspec") == 0)
        return AF_UNSPEC;
    return strcmp(s, "inet6") == 0 ? AF_INET6 : AF_INET;
}

static int parse_flags(const char *s)
{
    int flags = 0;
    if (!s)
        return 0;
    if (strstr(s, "addrconfig"))
        flags |= AI_ADDRCONFIG;
    if (strstr(s, "canonname"))
        flags |= AI_CANONNAME;
    if (strstr(s, "v4mapped"))
        flags |= AI_V4MAPPED;
    if (strstr(s, "all"))
        flags |= AI_ALL;
    return flags;
}

static int do_gai(int argc, char **argv)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = parse_family(argc > 3 ? argv[3] : NULL);
    hints.ai_flags = parse_flags(argc > 4 ? argv[4] : NULL);
    hints.ai_socktype = SOCK_STREAM;
    errno = 4242;
    int rc = getaddrinfo(argv[2], argc > 5 ? argv[5] : "80", &hints, &res);
    printf("rc=%d errno_kept=%d %s\n", rc, errno == 4242, rc ? gai_strerror(rc) : "ok");
    if (rc)
        return 0;
    if (res->ai_canonname)
        printf("canon=%s\n", res->ai_canonname);
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN];
        const void *addr = ai->ai_family == AF_INET
                               ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                               : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        int port = ntohs(ai->ai_family == AF_INET
                             ? ((struct sockaddr_in *)ai->ai_addr)->sin_port
                             : ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port);
        printf("%s %s %d\n", ai->ai_family == AF_INET ? "inet" : "inet6",
               inet_ntop(ai->ai_family, addr, text, sizeof text), port);
    }
    freeaddrinfo(res);
    return 0;
}

static int do_gni(int argc, char **argv)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (strchr(argv[2], ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(80);
        inet_pton(AF_INET6, argv[2], &s6->sin6_addr);
        len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(80);
        inet_pton(AF_INET, argv[2], &s4->sin_addr);
        len = sizeof *s4;
    }
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    int flags = (argc > 3 && strcmp(argv[3], "namereqd") == 0) ? NI_NAMEREQD : 0;
    int rc = getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, serv, sizeof serv, flags);
    if (rc)
        printf("rc=%d %s\n", rc, gai_strerror(rc));
    else
        printf("rc=0 host=%s serv=%s\n", host, serv);
    return 0;
}

static void print_hostent(const struct hostent *h)
{
    printf("name=%s\n", h->h_name);
    for (char **alias = h->h_aliases; *alias; alias++)
        printf("alias=%s\n", *alias);
    for (char **p = h->h_addr_list; *p; p++) {
        char text[INET6_ADDRSTRLEN];
        printf("%s\n", inet_ntop(h->h_addrtype, *p, text, sizeof text));
    }
}

static int do_ghbn(int argc, char **argv)
{
    struct hostent *h = argc > 3 ? gethostbyname2(argv[2], parse_family(argv[3]))
                                 : gethostbyname(argv[2]);
    if (!h) {
        printf("h_errno=%d\n", h_errno);
        return 0;
    }
    printf("h_errno=0\n");
    print_hostent(h);
    return 0;
}

static int do_ghbnr(char **argv)
{
    struct hostent ret, *result = NULL;
    char small[8];
    int herr = 0;
    int rc = gethostbyname_r(argv[2], &ret, small, sizeof small, &result, &herr);
    printf("small rc=%d\n", rc);
    char buf[4096];
    rc = gethostbyname_r(argv[2], &ret, buf, sizeof buf, &result, &herr);
    printf("rc=%d h_errno=%d found=%d\n", rc, herr, result != NULL);
    if (result)
        print_hostent(result);
    return 0;
}

struct thread_arg {
    const char *name;
    int ok;
};

static void *thread_main(void *varg)
{
    struct thread_arg *arg = varg;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    arg->ok = getaddrinfo(arg->name, "80", &hints, &res) == 0 && res != NULL;
    if (res)
        freeaddrinfo(res);
    return NULL;
}

static int do_threads(char **argv)
{
    int n = atoi(argv[3]);
    if (n < 1 || n > 64)
        return 2;
    pthread_t tids[64];
    struct thread_arg args[64];
    for (int i = 0; i < n; i++) {
        args[i].name = argv[2];
        args[i].ok = 0;
        pthread_create(&tids[i], NULL, thread_main, &args[i]);
    }
    int ok = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(tids[i], NULL);
        ok += args[i].ok;
    }
    printf("ok=%d of %d\n", ok, n);
    return 0;
}

static void print_first(const char *who, const char *name)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(name, "80", &hints, &res);
    char text[INET6_ADDRSTRLEN] = "-";
    if (rc == 0) {
        const void *addr = res->ai_family == AF_INET
                               ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                               : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
        inet_ntop(res->ai_family, addr, text, sizeof text);
        freeaddrinfo(res);
    }
    printf("%s rc=%d first=%s\n", who, rc, text);
}

struct scope_arg {
    const char *line, *name;
};

static void *scoped_thread(void *varg)
{
    struct scope_arg *arg = varg;
    int (*add)(const char *, uint32_t *) = (int (*)(const char *, uint32_t *))dlsym(RTLD_DEFAULT,
                                                                                    "pvd_add_scope");
    int (*set)(uint32_t) = (int (*)(uint32_t))dlsym(RTLD_DEFAULT, "pvd_set_thread_scope");
    uint32_t handle = 0;
    if (!add || !set || add(arg->line, &handle) != 0 || set(handle) != 0) {
        printf("thread cannot set its scope\n");
        return NULL;
    }
    print_first("thread", arg->name);
    return NULL;
}

static int do_thread_scope(char **argv)
{
    struct scope_arg arg = {argv[2], argv[3]};
    pthread_t tid;
    pthread_create(&tid, NULL, scoped_thread, &arg);
    pthread_join(tid, NULL);
    print_first("main", argv[3]);
    return 0;
}

static int do_bench(char **argv)
{
    int n = atoi(argv[3]), ok = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(argv[2], "80", &hints, &res) == 0) {
            ok++;
            freeaddrinfo(res);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / (n ? n : 1);
    printf("ok=%d of %d mean_us=%.1f\n", ok, n, us);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3)
        return 2;
    if (strcmp(argv[1], "gai") == 0)
        return do_gai(argc, argv);
    if (strcmp(argv[1], "gni") == 0)
        return do_gni(argc, argv);
    if (strcmp(argv[1], "ghbn") == 0)
        return do_ghbn(argc, argv);
    if (strcmp(argv[1], "ghbnr") == 0)
        return do_ghbnr(argv);
    if (strcmp(argv[1], "threads") == 0 && argc == 4)
        return do_threads(argv);
    if (strcmp(argv[1], "bench") == 0 && argc == 4)
        return do_bench(argv);
    if (strcmp(argv[1], "thread-scope") == 0 && argc == 4)
        return do_thread_scope(argv);
    return 2;
}
