/* glibc_paths_probe.c: call glibc's resolver paths that do not go through
 * getaddrinfo -- res_* (and res_n*, __res_*), gethostbyaddr(_r),
 * getaddrinfo_a -- and print what they return.  Compiled by
 * tests/test_resolve_glibc_paths.py (linked with -lresolv) and run inside a
 * lab namespace, with LD_PRELOAD=libpvdshim.so or without it (the control).
 *
 *   probe res FUNC NAME TYPE            FUNC: query search send nquery nsearch nsend,
 *                                       or __res_query ... __res_nsend (found with dlsym)
 *   probe res FUNC NAME DOMAIN TYPE     FUNC: querydomain nquerydomain __res_querydomain ...
 *         env PROBE_ANSLEN=N (answer buffer, default 65535), PROBE_USEVC=1 (RES_USEVC)
 *         prints "rc=N h_errno=N errno=N [qid=N]", then "rcode=N tc=N ancount=N" when the
 *         buffer holds a reply, then one line per answer record: "A 1.2.3.4", "PTR name",
 *         "MX PREF name", "SRV PRIO WEIGHT PORT name"...
 *   probe ghba ADDR                     gethostbyaddr: "h_errno=N errno_kept=N", name, addr
 *   probe ghbar ADDR [BUFLEN]           gethostbyaddr_r: "rc=N h_errno=N found=N", name, addr
 *   probe gaia MODE NAME...             getaddrinfo_a; MODE wait, none (gai_suspend loop),
 *                                       signal (SIGEV_SIGNAL), thread (SIGEV_THREAD):
 *                                       "submit=N", the notification, "NAME rc=N ADDR..."
 *   probe gaia-cancel NAME COUNT        COUNT slow requests: gai_cancel of the last (queued)
 *                                       and the first (running), gai_suspend timeout,
 *                                       then gai_cancel once done
 *   probe gaia-intr NAME                gai_suspend interrupted by a signal
 *   probe thread-scope LINE NAME        a thread scoped to LINE (pvd_add_scope and
 *                                       pvd_set_thread_scope, found with dlsym in the
 *                                       preloaded library) and the main thread each run
 *                                       res_query(NAME, AAAA) and getaddrinfo_a(GAI_WAIT)
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <resolv.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*query_fn)(const char *, int, int, unsigned char *, int);
typedef int (*querydomain_fn)(const char *, const char *, int, int, unsigned char *, int);
typedef int (*send_fn)(const unsigned char *, int, unsigned char *, int);
typedef int (*nquery_fn)(res_state, const char *, int, int, unsigned char *, int);
typedef int (*nquerydomain_fn)(res_state, const char *, const char *, int, int,
                               unsigned char *, int);
typedef int (*nsend_fn)(res_state, const unsigned char *, int, unsigned char *, int);

static int parse_type(const char *s)
{
    static const struct {
        const char *name;
        int type;
    } types[] = {{"A", ns_t_a}, {"AAAA", ns_t_aaaa}, {"PTR", ns_t_ptr}, {"MX", ns_t_mx},
                 {"TXT", ns_t_txt}, {"CNAME", ns_t_cname}, {"SOA", ns_t_soa},
                 {"SRV", ns_t_srv}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(s, types[i].name) == 0)
            return types[i].type;
    return atoi(s);
}

static void print_answers(const unsigned char *answer, int len)
{
    if (len < HFIXEDSZ || !(answer[2] & 0x80))
        return;
    printf("rcode=%d tc=%d ancount=%d\n", answer[3] & 0x0F, (answer[2] >> 1) & 1,
           (answer[6] << 8) | answer[7]);
    ns_msg msg;
    if (ns_initparse(answer, len, &msg) != 0)
        return;
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0)
            break;
        char text[NS_MAXDNAME];
        switch (ns_rr_type(rr)) {
        case ns_t_a:
            printf("A %s\n", inet_ntop(AF_INET, ns_rr_rdata(rr), text, sizeof text));
            break;
        case ns_t_aaaa:
            printf("AAAA %s\n", inet_ntop(AF_INET6, ns_rr_rdata(rr), text, sizeof text));
            break;
        case ns_t_ptr:
        case ns_t_cname:
            if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr), text,
                                   sizeof text) >= 0)
                printf("%s %s\n", ns_rr_type(rr) == ns_t_ptr ? "PTR" : "CNAME", text);
            break;
        case ns_t_mx: /* preference, exchange */
            if (ns_rr_rdlen(rr) > 2 && ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg),
                                                          ns_rr_rdata(rr) + 2, text, sizeof text) >= 0)
                printf("MX %u %s\n", ns_get16(ns_rr_rdata(rr)), text);
            break;
        case ns_t_srv: /* priority, weight, port, target */
            if (ns_rr_rdlen(rr) > 6 && ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg),
                                                          ns_rr_rdata(rr) + 6, text, sizeof text) >= 0)
                printf("SRV %u %u %u %s\n", ns_get16(ns_rr_rdata(rr)), ns_get16(ns_rr_rdata(rr) + 2),
                       ns_get16(ns_rr_rdata(rr) + 4), text);
            break;
        default:
            printf("TYPE%d\n", ns_rr_type(rr));
        }
    }
}

static int do_res(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    const char *func = argv[2];
    const char *bare = strncmp(func, "__res_", 6) == 0 ? func + 6 : func;
    int with_domain = strstr(bare, "querydomain") != NULL;
    if (argc < (with_domain ? 6 : 5))
        return 2;
    const char *name = argv[3];
    const char *domain = with_domain ? argv[4] : NULL;
    int type = parse_type(argv[with_domain ? 5 : 4]);
    int anslen = getenv("PROBE_ANSLEN") ? atoi(getenv("PROBE_ANSLEN")) : 65535;
    unsigned char *answer = calloc(1, (size_t)anslen + 1);
    unsigned char query[NS_PACKETSZ];
    int state_form = bare[0] == 'n';
    struct __res_state st;
    memset(&st, 0, sizeof st);
    if (state_form) {
        res_ninit(&st);
        if (getenv("PROBE_USEVC"))
            st.options |= RES_USEVC;
    } else {
        res_init();
        if (getenv("PROBE_USEVC"))
            _res.options |= RES_USEVC;
    }
    int qlen = -1;
    if (strcmp(bare, "send") == 0 || strcmp(bare, "nsend") == 0) {
        qlen = state_form ? res_nmkquery(&st, ns_o_query, name, ns_c_in, type, NULL, 0, NULL,
                                         query, sizeof query)
                          : res_mkquery(ns_o_query, name, ns_c_in, type, NULL, 0, NULL, query,
                                        sizeof query);
        if (qlen < 0) {
            printf("mkquery failed\n");
            return 1;
        }
    }
    void *fn;
    if (func != bare) {
        fn = dlsym(RTLD_DEFAULT, func);
    } else {
        char full[64];
        snprintf(full, sizeof full, "res_%s", bare);
        fn = dlsym(RTLD_DEFAULT, full);
    }
    if (!fn) {
        printf("missing %s\n", func);
        return 3;
    }
    h_errno = 4242;
    errno = 4242;
    int rc;
    if (strcmp(bare, "query") == 0 || strcmp(bare, "search") == 0)
        rc = ((query_fn)fn)(name, ns_c_in, type, answer, anslen);
    else if (strcmp(bare, "querydomain") == 0)
        rc = ((querydomain_fn)fn)(name, domain, ns_c_in, type, answer, anslen);
    else if (strcmp(bare, "send") == 0)
        rc = ((send_fn)fn)(query, qlen, answer, anslen);
    else if (strcmp(bare, "nquery") == 0 || strcmp(bare, "nsearch") == 0)
        rc = ((nquery_fn)fn)(&st, name, ns_c_in, type, answer, anslen);
    else if (strcmp(bare, "nquerydomain") == 0)
        rc = ((nquerydomain_fn)fn)(&st, name, domain, ns_c_in, type, answer, anslen);
    else if (strcmp(bare, "nsend") == 0)
        rc = ((nsend_fn)fn)(&st, query, qlen, answer, anslen);
    else
        return 2;
    int herr = h_errno, err = errno;
    printf("rc=%d h_errno=%d errno=%d", rc, herr, err);
    if (qlen > 0)
        printf(" qid=%d", (query[0] << 8) | query[1]);
    if (state_form)
        printf(" state_h_errno=%d", st.res_h_errno);
    printf("\n");
    print_answers(answer, rc > 0 ? (rc < anslen ? rc : anslen) : anslen);
    if (state_form)
        res_nclose(&st);
    free(answer);
    return 0;
}

static int parse_addr(const char *text, unsigned char *buf, int *family)
{
    if (inet_pton(AF_INET, text, buf) == 1) {
        *family = AF_INET;
        return 4;
    }
    if (inet_pton(AF_INET6, text, buf) == 1) {
        *family = AF_INET6;
        return 16;
    }
    return -1;
}

static void print_hostent(const struct hostent *h)
{
    printf("name=%s\n", h->h_name);
    for (char **a = h->h_aliases; a && *a; a++)
        printf("alias=%s\n", *a);
    for (char **p = h->h_addr_list; *p; p++) {
        char text[INET6_ADDRSTRLEN];
        printf("addr=%s\n", inet_ntop(h->h_addrtype, *p, text, sizeof text));
    }
}

static int do_ghba(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    unsigned char addr[16];
    int family;
    int len = parse_addr(argv[2], addr, &family);
    if (len < 0)
        return 2;
    errno = 4242;
    h_errno = 4242;
    struct hostent *h = gethostbyaddr(addr, (socklen_t)len, family);
    printf("h_errno=%d errno_kept=%d\n", h ? 0 : h_errno, errno == 4242);
    if (h)
        print_hostent(h);
    return 0;
}

static int do_ghbar(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    unsigned char addr[16];
    int family;
    int len = parse_addr(argv[2], addr, &family);
    if (len < 0)
        return 2;
    size_t buflen = argc > 3 ? (size_t)atoi(argv[3]) : 1024;
    char *buf = malloc(buflen + 1);
    struct hostent ret, *result = NULL;
    int herr = 4242;
    int rc = gethostbyaddr_r(addr, (socklen_t)len, family, &ret, buf, buflen, &result, &herr);
    printf("rc=%d h_errno=%d found=%d\n", rc, herr, result != NULL);
    if (result)
        print_hostent(result);
    free(buf);
    return 0;
}

/* ---- getaddrinfo_a ---- */

static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notify_cond = PTHREAD_COND_INITIALIZER;
static int notified, notified_value, all_done_at_notify = -1;
static struct gaicb **g_reqs;
static int g_count;

static int all_done(void)
{
    for (int i = 0; i < g_count; i++)
        if (gai_error(g_reqs[i]) == EAI_INPROGRESS)
            return 0;
    return 1;
}

static void on_notify(union sigval value)
{
    int done = all_done();
    pthread_mutex_lock(&notify_lock);
    notified++;
    notified_value = value.sival_int;
    all_done_at_notify = done;
    pthread_cond_broadcast(&notify_cond);
    pthread_mutex_unlock(&notify_lock);
}

static struct gaicb **make_requests(int count, char **names, struct addrinfo *hints)
{
    struct gaicb **reqs = calloc((size_t)count, sizeof *reqs);
    memset(hints, 0, sizeof *hints);
    hints->ai_socktype = SOCK_STREAM;
    for (int i = 0; i < count; i++) {
        reqs[i] = calloc(1, sizeof **reqs);
        reqs[i]->ar_name = names[i];
        reqs[i]->ar_request = hints;
    }
    g_reqs = reqs;
    g_count = count;
    return reqs;
}

static void print_results(struct gaicb **reqs, int count)
{
    for (int i = 0; i < count; i++) {
        int rc = gai_error(reqs[i]);
        printf("%s rc=%d", reqs[i]->ar_name, rc);
        if (rc == 0) {
            for (struct addrinfo *ai = reqs[i]->ar_result; ai; ai = ai->ai_next) {
                char text[INET6_ADDRSTRLEN];
                const void *a = ai->ai_family == AF_INET
                                    ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                    : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
                printf(" %s", inet_ntop(ai->ai_family, a, text, sizeof text));
            }
            freeaddrinfo(reqs[i]->ar_result);
        }
        printf("\n");
        free(reqs[i]);
    }
    free(reqs);
}

static int do_gaia(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const char *mode = argv[2];
    int count = argc - 3;
    struct addrinfo hints;
    struct gaicb **reqs = make_requests(count, argv + 3, &hints);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    if (strcmp(mode, "signal") == 0) {
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        sev.sigev_notify = SIGEV_SIGNAL;
        sev.sigev_signo = SIGRTMIN;
        sev.sigev_value.sival_int = 4242;
    } else if (strcmp(mode, "thread") == 0) {
        sev.sigev_notify = SIGEV_THREAD;
        sev.sigev_notify_function = on_notify;
        sev.sigev_value.sival_int = 4343;
    } else {
        sev.sigev_notify = SIGEV_NONE;
    }
    errno = 4242;
    int rc = getaddrinfo_a(strcmp(mode, "wait") == 0 ? GAI_WAIT : GAI_NOWAIT, reqs, count, &sev);
    printf("submit=%d errno_kept=%d\n", rc, errno == 4242);
    if (rc != 0)
        return 1;
    if (strcmp(mode, "wait") == 0) {
        printf("all_done=%d\n", all_done());
    } else if (strcmp(mode, "none") == 0) {
        const struct gaicb **list = calloc((size_t)count, sizeof *list);
        for (int i = 0; i < count; i++)
            list[i] = reqs[i];
        int left = count;
        while (left > 0) {
            int src = gai_suspend(list, count, NULL);
            if (src != 0 && src != EAI_ALLDONE) { /* EAI_ALLDONE: none left pending */
                printf("suspend=%d\n", src);
                return 1;
            }
            for (int i = 0; i < count; i++)
                if (list[i] && gai_error(reqs[i]) != EAI_INPROGRESS) {
                    list[i] = NULL;
                    left--;
                }
        }
        printf("suspended_until_done=1\n");
        free(list);
    } else if (strcmp(mode, "signal") == 0) {
        siginfo_t info;
        struct timespec limit = {30, 0};
        int sig = sigtimedwait(&set, &info, &limit);
        printf("signal=%d code_asyncnl=%d value=%d pid_ok=%d all_done=%d\n", sig == SIGRTMIN,
               info.si_code == SI_ASYNCNL, info.si_value.sival_int, info.si_pid == getpid(),
               all_done());
    } else if (strcmp(mode, "thread") == 0) {
        struct timespec limit;
        clock_gettime(CLOCK_REALTIME, &limit);
        limit.tv_sec += 30;
        pthread_mutex_lock(&notify_lock);
        while (!notified)
            if (pthread_cond_timedwait(&notify_cond, &notify_lock, &limit) != 0)
                break;
        pthread_mutex_unlock(&notify_lock);
        usleep(100000); /* a second notification would show here */
        printf("thread_notified=%d value=%d all_done=%d\n", notified, notified_value,
               all_done_at_notify);
    }
    print_results(reqs, count);
    return 0;
}

static int do_gaia_cancel(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int count = atoi(argv[3]);
    char **names = calloc((size_t)count, sizeof *names);
    for (int i = 0; i < count; i++) {
        names[i] = malloc(strlen(argv[2]) + 16);
        sprintf(names[i], "n%d.%s", i, argv[2]);
    }
    struct addrinfo hints;
    struct gaicb **reqs = make_requests(count, names, &hints);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = on_notify;
    int rc = getaddrinfo_a(GAI_NOWAIT, reqs, count, &sev);
    printf("submit=%d\n", rc);
    printf("cancel_last=%d\n", gai_cancel(reqs[count - 1]));
    printf("error_last=%d\n", gai_error(reqs[count - 1]));
    usleep(200000);
    printf("cancel_first=%d\n", gai_cancel(reqs[0]));
    const struct gaicb *first[1] = {reqs[0]};
    struct timespec short_wait = {0, 200000000};
    printf("suspend_timeout=%d\n", gai_suspend(first, 1, &short_wait));
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 60;
    pthread_mutex_lock(&notify_lock);
    while (!notified)
        if (pthread_cond_timedwait(&notify_cond, &notify_lock, &limit) != 0)
            break;
    pthread_mutex_unlock(&notify_lock);
    printf("notified=%d all_done=%d\n", notified, all_done_at_notify);
    printf("cancel_done=%d\n", gai_cancel(reqs[0]));
    printf("suspend_done=%d\n", gai_suspend(first, 1, &short_wait));
    printf("error_first=%d\n", gai_error(reqs[0]));
    print_results(reqs, count);
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return 0;
}

static void on_alarm(int sig)
{
    (void)sig;
}

static int do_gaia_intr(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    struct addrinfo hints;
    struct gaicb **reqs = make_requests(1, argv + 2, &hints);
    int rc = getaddrinfo_a(GAI_NOWAIT, reqs, 1, NULL);
    printf("submit=%d\n", rc);
    struct itimerval it = {{0, 0}, {0, 300000}};
    setitimer(ITIMER_REAL, &it, NULL);
    const struct gaicb *list[1] = {reqs[0]};
    printf("suspend=%d\n", gai_suspend(list, 1, NULL));
    while (gai_suspend(list, 1, NULL) == EAI_INTR)
        ;
    print_results(reqs, 1);
    return 0;
}

static const char *ts_name;

static void scoped_lookups(const char *who)
{
    unsigned char answer[4096];
    int rc = res_query(ts_name, ns_c_in, ns_t_aaaa, answer, sizeof answer);
    char first[INET6_ADDRSTRLEN] = "-";
    ns_msg msg;
    ns_rr rr;
    if (rc > 0 && ns_initparse(answer, rc, &msg) == 0 && ns_parserr(&msg, ns_s_an, 0, &rr) == 0
        && ns_rr_type(rr) == ns_t_aaaa)
        inet_ntop(AF_INET6, ns_rr_rdata(rr), first, sizeof first);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET6;
    hints.ai_socktype = SOCK_STREAM;
    struct gaicb req;
    memset(&req, 0, sizeof req);
    req.ar_name = ts_name;
    req.ar_request = &hints;
    struct gaicb *list[1] = {&req};
    int grc = getaddrinfo_a(GAI_WAIT, list, 1, NULL);
    char gfirst[INET6_ADDRSTRLEN] = "-";
    if (grc == 0 && gai_error(&req) == 0) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)req.ar_result->ai_addr)->sin6_addr, gfirst,
                  sizeof gfirst);
        freeaddrinfo(req.ar_result);
    }
    printf("%s res_query=%s getaddrinfo_a=%s\n", who, first, gfirst);
}

static void *scoped_thread(void *line)
{
    int (*add)(const char *, uint32_t *) =
        (int (*)(const char *, uint32_t *))dlsym(RTLD_DEFAULT, "pvd_add_scope");
    int (*set)(uint32_t) = (int (*)(uint32_t))dlsym(RTLD_DEFAULT, "pvd_set_thread_scope");
    uint32_t handle;
    if (!add || !set || add(line, &handle) != 0 || set(handle) != 0) {
        printf("thread scope failed\n");
        return NULL;
    }
    scoped_lookups("thread");
    return NULL;
}

static int do_thread_scope(char **argv)
{
    ts_name = argv[3];
    pthread_t tid;
    pthread_create(&tid, NULL, scoped_thread, argv[2]);
    pthread_join(tid, NULL);
    scoped_lookups("main");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return 2;
    if (strcmp(argv[1], "res") == 0)
        return do_res(argc, argv);
    if (strcmp(argv[1], "ghba") == 0)
        return do_ghba(argc, argv);
    if (strcmp(argv[1], "ghbar") == 0)
        return do_ghbar(argc, argv);
    if (strcmp(argv[1], "gaia") == 0)
        return do_gaia(argc, argv);
    if (strcmp(argv[1], "gaia-cancel") == 0)
        return do_gaia_cancel(argc, argv);
    if (strcmp(argv[1], "gaia-intr") == 0)
        return do_gaia_intr(argc, argv);
    if (strcmp(argv[1], "thread-scope") == 0 && argc == 4)
        return do_thread_scope(argv);
    return 2;
}
