/* dns_client.c: PvD-scoped DNS transport and res_search-like name search
 * (see dns_client.h).  R25: sockets bound to the PvD's interface and source
 * address; never the system's resolvers. */
#include "dns_client.h"

#include "core.h"
#include "log.h"
#include "pvdd_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DNS_PORT 53
#define UDP_BUF 4096
#define MAX_CNAME_HOPS 16

static int clamp_option(const char *p, int lo, int hi, int dflt)
{
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p)
        return dflt;
    return v < lo ? lo : v > hi ? hi : (int)v;
}

void dns_options_load(struct dns_options *opt)
{
    opt->timeout_ms = 5000;
    opt->attempts = 2;
    opt->ndots = 1;
    const char *env = getenv("RES_OPTIONS");
    if (!env)
        return;
    for (const char *p = env; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "timeout:", 8) == 0)
            opt->timeout_ms = clamp_option(p + 8, 1, 30, 5) * 1000;
        else if (strncmp(p, "attempts:", 9) == 0)
            opt->attempts = clamp_option(p + 9, 1, 5, 2);
        else if (strncmp(p, "ndots:", 6) == 0)
            opt->ndots = clamp_option(p + 6, 0, 15, 1);
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
}

uint16_t dns_random_id(void)
{
    uint16_t id;
    if (getrandom(&id, sizeof id, GRND_NONBLOCK) == (ssize_t)sizeof id)
        return id;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint16_t)(ts.tv_nsec ^ (ts.tv_nsec >> 16) ^ getpid());
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dns_trace(const struct pvd_dns_scope *scope, const char *name, uint16_t qtype,
               const struct pvd_dns_addr *server, const char *verdict, const char *why, int rcode,
               int err)
{
    struct sockaddr_storage ss;
    socklen_t sl = server ? pvd_dns_sockaddr(server, DNS_PORT, &ss) : 0;
    shim_trace_lookup(name, qtype, server ? &ss : NULL, sl, scope ? scope->id : NULL, verdict, why,
                      rcode, err);
}

void dns_trace_each(const struct pvd_dns_scope *scope, const char *name, int want4, int want6,
                    const char *verdict, const char *why)
{
    if (want4)
        dns_trace(scope, name, DNS_TYPE_A, NULL, verdict, why, -1, 0);
    if (want6)
        dns_trace(scope, name, DNS_TYPE_AAAA, NULL, verdict, why, -1, 0);
}

/* Open a socket of type for server, tied to the PvD by the core's one rule for every socket
 * (decide.c: device, mark, source; shim_tie_own_socket).  Returns the fd or -1. */
static int open_scoped_socket(const struct pvd_dns_scope *scope, const struct pvd_dns_addr *server,
                              int type)
{
    struct sockaddr_storage ss;
    socklen_t sl = pvd_dns_sockaddr(server, DNS_PORT, &ss);
    int fd = REAL(socket)(server->family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (shim_tie_own_socket(fd, scope->handle, (struct sockaddr *)&ss, sl) < 0) {
        if (scope->mark && (errno == EACCES || errno == ENETUNREACH))
            pvd_dns_warn_once(3, "cannot mark a DNS socket with the PvD's mark (not root, and "
                                 "pvdd refused or does not answer): its DNS servers are not used");
        else if (errno == EPERM || errno == ENETDOWN)
            pvd_dns_warn_once(1, "cannot bind a DNS socket to the PvD's interface; "
                                 "its DNS servers are not used");
        shim_track_close(fd);
        REAL(close)(fd);
        return -1;
    }
    return fd;
}

static int same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a,
                                 *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a,
                              *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port
           && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* Wait for events on fd until deadline (ms, CLOCK_MONOTONIC).
 * Returns 1 when ready, 0 on timeout, -1 on error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, (int)left);
        if (rc > 0)
            return (pfd.revents & (events | POLLERR | POLLHUP)) ? 1 : 0;
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Results of one exchange with one server. */
#define X_ANSWER 0      /* parsed reply in resp */
#define X_TIMEOUT 1     /* nothing valid in time */
#define X_ERROR 2       /* cannot use this server (socket error, unreachable) */

/* One UDP exchange with one server: a socket tied to the PvD, the server's address and port,
 * and the deadline of the whole exchange. */
struct udp_exchange {
    int fd;
    struct sockaddr_storage to;
    socklen_t tolen;
    long long deadline;
};

/* Open x for server (open_scoped_socket), timeout_ms from now.  0, or -1 (no socket). */
static int udp_open(struct udp_exchange *x, const struct pvd_dns_scope *scope,
                    const struct pvd_dns_addr *server, int timeout_ms)
{
    x->tolen = pvd_dns_sockaddr(server, DNS_PORT, &x->to);
    x->fd = open_scoped_socket(scope, server, SOCK_DGRAM);
    x->deadline = now_ms() + timeout_ms;
    return x->fd < 0 ? -1 : 0;
}

/* Send msg (len octets) to the server as one whole datagram; else close x: -1. */
static int udp_send(struct udp_exchange *x, const void *msg, size_t len)
{
    if (REAL(sendto)(x->fd, msg, len, MSG_NOSIGNAL, (struct sockaddr *)&x->to, x->tolen)
        == (ssize_t)len)
        return 0;
    REAL(close)(x->fd);
    return -1;
}

/* The next datagram from the server's address and port that fits in buf (bufsize octets),
 * waiting until x's deadline: X_ANSWER with its length in *outlen, X_TIMEOUT, or X_ERROR
 * (e.g. ICMP port unreachable).  Datagrams from elsewhere (spoofed or stray) and larger ones
 * are dropped. */
static int udp_recv(const struct udp_exchange *x, uint8_t *buf, size_t bufsize, size_t *outlen)
{
    int fd = x->fd;
    for (;;) {
        int rc = wait_fd(fd, POLLIN, x->deadline);
        if (rc <= 0)
            return rc == 0 ? X_TIMEOUT : X_ERROR;
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof from;
        ssize_t n = REAL(recvfrom)(fd, buf, bufsize, MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return X_ERROR;
        }
        if (!same_endpoint(&from, &x->to) || (size_t)n > bufsize)
            continue;
        *outlen = (size_t)n;
        return X_ANSWER;
    }
}

/* Move exactly len octets over a connected stream socket before deadline: send them (out;
 * `more` sets MSG_MORE) or read them into data.  Returns X_ANSWER (all moved), X_TIMEOUT or
 * X_ERROR (also when the peer closes early). */
static int stream_all(int fd, uint8_t *data, size_t len, int out, int more, long long deadline)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = out ? REAL(sendto)(fd, data + done, len - done, MSG_NOSIGNAL | (more ? MSG_MORE : 0), NULL, 0)
                        : REAL(recvfrom)(fd, data + done, len - done, 0, NULL, NULL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            int rc = wait_fd(fd, out ? POLLOUT : POLLIN, deadline);
            if (rc <= 0)
                return rc == 0 ? X_TIMEOUT : X_ERROR;
            continue;
        }
        return X_ERROR; /* an error, or closed early */
    }
    return X_ANSWER;
}

/* One exchange of query (qlen octets, any content) with server over TCP,
 * from a socket bound like the UDP ones.  The reply goes into buf (at least
 * DNS_MESSAGE_MAX octets), its length into *outlen; it must answer the
 * query (dns_reply_matches). */
static int raw_tcp(const struct pvd_dns_scope *scope, const struct pvd_dns_addr *server,
                   const uint8_t *query, size_t qlen, uint8_t *buf, int timeout_ms,
                   size_t *outlen)
{
    int fd = open_scoped_socket(scope, server, SOCK_STREAM);
    if (fd < 0)
        return X_ERROR;
    int result = X_ERROR;
    long long deadline = now_ms() + timeout_ms;
    struct sockaddr_storage ss;
    socklen_t sl = pvd_dns_sockaddr(server, DNS_PORT, &ss);
    if (REAL(connect)(fd, (struct sockaddr *)&ss, sl) != 0) {
        if (errno != EINPROGRESS)
            goto out;
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc <= 0) {
            result = rc == 0 ? X_TIMEOUT : X_ERROR;
            goto out;
        }
        int soerr = 0;
        socklen_t el = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0 || soerr != 0)
            goto out;
    }
    uint8_t prefix[2] = {(uint8_t)(qlen >> 8), (uint8_t)qlen};
    if ((result = stream_all(fd, prefix, 2, 1, 1, deadline)) != X_ANSWER
        || (result = stream_all(fd, (uint8_t *)query, qlen, 1, 0, deadline)) != X_ANSWER
        || (result = stream_all(fd, prefix, 2, 0, 0, deadline)) != X_ANSWER)
        goto out;
    size_t want = ((size_t)prefix[0] << 8) | prefix[1];
    result = X_ERROR;
    if (want < DNS_HEADER_LEN)
        goto out;
    if ((result = stream_all(fd, buf, want, 0, 0, deadline)) != X_ANSWER)
        goto out;
    result = X_ERROR;
    if (dns_reply_matches(query, qlen, buf, want) == DNS_OK) {
        *outlen = want;
        result = X_ANSWER;
    }
out:
    REAL(close)(fd);
    return result;
}

static int exchange_tcp(const struct pvd_dns_scope *scope, const struct pvd_dns_addr *server,
                        const uint8_t *query, int qlen, uint16_t id, const char *name,
                        uint16_t qtype, int timeout_ms, struct dns_response *resp)
{
    uint8_t *buf = malloc(DNS_MESSAGE_MAX);
    if (!buf)
        return X_ERROR;
    size_t len = 0;
    int result = raw_tcp(scope, server, query, (size_t)qlen, buf, timeout_ms, &len);
    if (result == X_ANSWER
        && (dns_parse_response(buf, len, id, name, qtype, resp) != DNS_OK || resp->truncated))
        result = X_ERROR;
    free(buf);
    return result;
}

/* One question in flight: A and AAAA are asked together, from one socket,
 * as glibc does, so a dead server costs one timeout, not two. */
struct question {
    const char *name;
    uint16_t qtype;
    struct dns_response *resp;
    int settled;          /* a final answer (NOERROR/NXDOMAIN) or an error rcode is in resp */
    int final;            /* NOERROR or NXDOMAIN: no other server is asked */
    int error_rcode;      /* last SERVFAIL/REFUSED/... seen, when !final */
    /* per exchange */
    uint16_t id;
    int qlen;
    int answered;
    int needs_tcp;
    int err;              /* when not answered: why, as an errno value (for the trace) */
    const char *why;
    uint8_t query[DNS_UDP_MAX];
};

static int exchange_udp(const struct pvd_dns_scope *scope, const struct pvd_dns_addr *server,
                        struct question **qs, int nq, int timeout_ms)
{
    struct udp_exchange x;
    for (int i = 0; i < nq; i++) {
        qs[i]->answered = qs[i]->needs_tcp = 0;
        qs[i]->err = 0;
        qs[i]->why = "";
    }
    if (udp_open(&x, scope, server, timeout_ms) < 0) {
        int err = errno;
        for (int i = 0; i < nq; i++) {
            qs[i]->err = err ? err : EIO;
            qs[i]->why = "no socket tied to the PvD for this server";
        }
        return X_ERROR;
    }
    int waiting = 0;
    for (int i = 0; i < nq; i++) {
        struct question *q = qs[i];
        q->id = dns_random_id();
        if (i > 0 && q->id == qs[0]->id)
            q->id ^= 0x8000;
        q->qlen = dns_build_query(q->query, sizeof q->query, q->id, q->name, q->qtype);
        if (q->qlen < 0)
            continue;
        errno = 0;
        if (udp_send(&x, q->query, (size_t)q->qlen) < 0) {
            int err = errno;
            for (int j = 0; j < nq; j++) {
                qs[j]->err = err ? err : EIO;
                qs[j]->why = "the query could not be sent";
            }
            return X_ERROR;
        }
        waiting++;
    }
    int result = X_TIMEOUT, err = ETIMEDOUT;
    uint8_t buf[UDP_BUF];
    while (waiting > 0) {
        size_t n = 0;
        /* a datagram larger than buf is larger than any reply to a non-EDNS query */
        errno = 0;
        int rc = udp_recv(&x, buf, sizeof buf, &n);
        if (rc != X_ANSWER) {
            result = rc;
            err = rc == X_TIMEOUT ? ETIMEDOUT : errno ? errno : EIO;
            break;
        }
        for (int i = 0; i < nq; i++) {
            struct question *q = qs[i];
            if (q->answered || q->qlen < 0)
                continue;
            if (dns_parse_response(buf, n, q->id, q->name, q->qtype, q->resp) != DNS_OK)
                continue; /* not this question's reply (or malformed) */
            q->answered = 1;
            q->needs_tcp = q->resp->truncated;
            waiting--;
            break;
        }
    }
    REAL(close)(x.fd);
    for (int i = 0; i < nq; i++) {
        struct question *q = qs[i];
        if (!q->answered && q->qlen >= 0) {
            q->err = err;
            q->why = err == ETIMEDOUT ? "no reply in time" : "no reply: the exchange failed";
        }
        if (!q->needs_tcp)
            continue;
        long long left = x.deadline - now_ms();
        errno = 0;
        int tcp = exchange_tcp(scope, server, q->query, q->qlen, q->id, q->name, q->qtype,
                               left > 1000 ? (int)left : 1000, q->resp);
        q->answered = tcp == X_ANSWER;
        q->why = q->answered ? "truncated over UDP, answered over TCP" : "truncated over UDP, TCP failed";
        if (!q->answered)
            q->err = tcp == X_TIMEOUT ? ETIMEDOUT : errno ? errno : EPROTO;
    }
    for (int i = 0; i < nq; i++)
        if (qs[i]->answered)
            return X_ANSWER; /* at least one reply: the caller looks at each */
    return result;
}

/* Ask every question of qs[0..nq) of the scope's servers, attempts passes
 * over the list; returns DNS_Q_OK (each question then has settled or timed
 * out: see q->settled), DNS_Q_NOSERVER or DNS_Q_BADNAME. */
static int query_many(const struct pvd_dns_scope *scope, const struct dns_options *opt,
                      struct question **qs, int nq)
{
    uint8_t probe[DNS_UDP_MAX];
    for (int i = 0; i < nq; i++) {
        qs[i]->settled = qs[i]->final = 0;
        qs[i]->error_rcode = 0;
        if (dns_build_query(probe, sizeof probe, 0, qs[i]->name, qs[i]->qtype) < 0) {
            if (shim_tracing)
                for (int j = 0; j < nq; j++)
                    dns_trace(scope, qs[j]->name, qs[j]->qtype, NULL, "refused",
                              "the name cannot be a DNS name", -1, 0);
            return DNS_Q_BADNAME;
        }
    }
    int saved_errno = errno;
    int usable = 0;
    for (int attempt = 0; attempt < opt->attempts; attempt++) {
        for (int s = 0; s < scope->nservers; s++) {
            const struct pvd_dns_addr *server = &scope->servers[s];
            if (!pvd_dns_server_usable_in(scope, server))
                continue;
            usable = 1;
            struct question *open_qs[2];
            int nopen = 0;
            for (int i = 0; i < nq && nopen < 2; i++)
                if (!qs[i]->final)
                    open_qs[nopen++] = qs[i];
            if (nopen == 0) {
                errno = saved_errno;
                return DNS_Q_OK;
            }
            int x = exchange_udp(scope, server, open_qs, nopen, opt->timeout_ms);
            if (shim_tracing)
                for (int i = 0; i < nopen; i++) {
                    const struct question *q = open_qs[i];
                    if (q->answered)
                        dns_trace(scope, q->name, q->qtype, server, "answered", q->why, q->resp->rcode, 0);
                    else
                        dns_trace(scope, q->name, q->qtype, server, "failed", q->why, -1, q->err);
                }
            if (x != X_ANSWER)
                continue;
            for (int i = 0; i < nopen; i++) {
                struct question *q = open_qs[i];
                if (!q->answered)
                    continue;
                q->settled = 1;
                if (q->resp->rcode == DNS_RCODE_NOERROR || q->resp->rcode == DNS_RCODE_NXDOMAIN)
                    q->final = 1;
                else /* SERVFAIL, REFUSED, NOTIMP, FORMERR: ask the next server */
                    q->error_rcode = q->resp->rcode;
            }
        }
        if (!usable) {
            if (shim_tracing)
                for (int i = 0; i < nq; i++)
                    dns_trace(scope, qs[i]->name, qs[i]->qtype, NULL, "refused",
                              "no DNS server the PvD can reach from its own addresses", -1, 0);
            errno = saved_errno;
            return DNS_Q_NOSERVER;
        }
        int all_settled = 1;
        for (int i = 0; i < nq; i++)
            all_settled &= qs[i]->settled;
        if (all_settled)
            break; /* every question answered somewhere: another pass changes nothing */
    }
    for (int i = 0; i < nq; i++) {
        struct question *q = qs[i];
        if (q->settled && !q->final) {
            q->resp->rcode = (uint8_t)q->error_rcode;
            q->resp->nanswers = 0;
            q->resp->truncated = 0;
        }
    }
    errno = saved_errno;
    return DNS_Q_OK;
}

int dns_query(const struct pvd_dns_scope *scope, const struct dns_options *opt,
              const char *name, uint16_t qtype, struct dns_response *resp)
{
    struct question q;
    memset(&q, 0, offsetof(struct question, query));
    q.name = name;
    q.qtype = qtype;
    q.resp = resp;
    struct question *qs[1] = {&q};
    int rc = query_many(scope, opt, qs, 1);
    if (rc != DNS_Q_OK)
        return rc;
    return q.settled ? DNS_Q_OK : DNS_Q_TIMEOUT;
}

/* Collect the addresses for qname in resp, following its CNAME chain. */
static void collect_addrs(const struct dns_response *resp, const char *qname, uint16_t qtype,
                          struct dns_addr_result *out)
{
    char current[DNS_NAME_MAX + 1];
    snprintf(current, sizeof current, "%s", qname);
    for (int hop = 0; hop < MAX_CNAME_HOPS; hop++) {
        int followed = 0;
        for (int i = 0; i < resp->nanswers; i++) {
            const struct dns_answer *a = &resp->answers[i];
            if (a->type == DNS_TYPE_CNAME && dns_name_equal(a->owner, current)) {
                snprintf(current, sizeof current, "%s", a->data.name);
                followed = 1;
                break;
            }
        }
        if (!followed)
            break;
    }
    if (!out->canon[0])
        snprintf(out->canon, sizeof out->canon, "%s", current);
    for (int i = 0; i < resp->nanswers; i++) {
        const struct dns_answer *a = &resp->answers[i];
        if (a->type != qtype || !dns_name_equal(a->owner, current))
            continue;
        if (out->naddrs >= DNS_RESULT_MAX_ADDRS)
            return;
        struct pvd_dns_addr *dst = &out->addrs[out->naddrs++];
        memset(dst, 0, sizeof *dst);
        dst->family = qtype == DNS_TYPE_A ? AF_INET : AF_INET6;
        memcpy(dst->addr, a->data.addr, qtype == DNS_TYPE_A ? 4 : 16);
    }
}

/* Outcome of one search candidate. */
#define C_FOUND 0
#define C_NXDOMAIN 1
#define C_NODATA 2
#define C_SERVFAIL 3
#define C_TIMEOUT 4
#define C_NOSERVER 5

static int try_candidate(const struct pvd_dns_scope *scope, const struct dns_options *opt,
                         const char *cand, int want4, int want6, struct dns_addr_result *out,
                         struct dns_response *resps)
{
    struct question qa, q6;
    memset(&qa, 0, offsetof(struct question, query));
    memset(&q6, 0, offsetof(struct question, query));
    qa.name = q6.name = cand;
    qa.qtype = DNS_TYPE_A;
    q6.qtype = DNS_TYPE_AAAA;
    qa.resp = &resps[0];
    q6.resp = &resps[1];
    struct question *qs[2];
    int nq = 0;
    if (want4)
        qs[nq++] = &qa;
    if (want6)
        qs[nq++] = &q6;
    out->naddrs = 0;
    out->canon[0] = '\0';
    int rc = query_many(scope, opt, qs, nq);
    if (rc == DNS_Q_NOSERVER)
        return C_NOSERVER;
    if (rc != DNS_Q_OK)
        return C_NXDOMAIN; /* cannot be encoded: no such name */
    int nodata = 0, servfail = 0, timeout = 0;
    for (int i = 0; i < nq; i++) {
        struct question *q = qs[i];
        if (!q->settled) {
            timeout++;
        } else if (q->resp->rcode == DNS_RCODE_NXDOMAIN) {
            continue;
        } else if (q->resp->rcode != DNS_RCODE_NOERROR) {
            servfail++;
        } else {
            int before = out->naddrs;
            collect_addrs(q->resp, cand, q->qtype, out);
            if (out->naddrs == before)
                nodata++;
        }
    }
    if (out->naddrs > 0)
        return C_FOUND;
    if (timeout)
        return C_TIMEOUT;
    if (servfail)
        return C_SERVFAIL;
    if (nodata)
        return C_NODATA;
    return C_NXDOMAIN;
}

int dns_resolve_addrs(const struct pvd_dns_scope *scope, const struct dns_options *opt,
                      const char *name, int want4, int want6, struct dns_addr_result *out)
{
    size_t len = strlen(name);
    if (len == 0 || len > DNS_NAME_MAX - 1 || (!want4 && !want6)) {
        if (shim_tracing)
            dns_trace_each(scope, name, want4, want6, "refused", "the name cannot be a DNS name");
        return DNS_RES_BADNAME;
    }
    struct dns_response *resp = malloc(2 * sizeof *resp); /* A and AAAA replies */
    if (!resp)
        return DNS_RES_AGAIN;
    int absolute = name[len - 1] == '.';
    int dots = 0;
    for (size_t i = 0; i < len; i++)
        dots += name[i] == '.';
    /* Candidate list as res_search(3): as-is first when ndots is reached. */
    char cands[PVD_DNS_MAX_SEARCH + 1][DNS_NAME_MAX + 1];
    int ncands = 0;
    int as_is_first = absolute || dots >= opt->ndots;
    if (as_is_first)
        snprintf(cands[ncands++], DNS_NAME_MAX + 1, "%s", name);
    if (!absolute) {
        for (int i = 0; i < scope->nsearch; i++) {
            if (len + 1 + strlen(scope->search[i]) > DNS_NAME_MAX - 1)
                continue;
            snprintf(cands[ncands++], DNS_NAME_MAX + 1, "%s.%s", name, scope->search[i]);
        }
        if (!as_is_first)
            snprintf(cands[ncands++], DNS_NAME_MAX + 1, "%s", name);
    }
    int got_nodata = 0, got_servfail = 0, result = DNS_RES_NXDOMAIN;
    for (int i = 0; i < ncands; i++) {
        int rc = try_candidate(scope, opt, cands[i], want4, want6, out, resp);
        if (rc == C_FOUND) {
            result = DNS_RES_OK;
            goto done;
        }
        if (rc == C_NOSERVER) {
            result = DNS_RES_NOSERVER;
            goto done;
        }
        if (rc == C_TIMEOUT) {
            result = DNS_RES_AGAIN; /* as res_search: a timeout ends the search */
            goto done;
        }
        got_nodata |= rc == C_NODATA;
        got_servfail |= rc == C_SERVFAIL;
    }
    result = got_nodata ? DNS_RES_NODATA : got_servfail ? DNS_RES_AGAIN : DNS_RES_NXDOMAIN;
done:
    free(resp);
    return result;
}

int dns_resolve_ptr(const struct pvd_dns_scope *scope, const struct dns_options *opt,
                    int family, const uint8_t *addr, char *host, size_t hostlen)
{
    char qname[DNS_NAME_MAX + 1];
    if (dns_reverse_name(family == AF_INET ? 4 : 6, addr, qname, sizeof qname) != DNS_OK)
        return DNS_RES_BADNAME;
    struct dns_response *resp = malloc(sizeof *resp);
    if (!resp)
        return DNS_RES_AGAIN;
    int result;
    int rc = dns_query(scope, opt, qname, DNS_TYPE_PTR, resp);
    if (rc == DNS_Q_NOSERVER) {
        result = DNS_RES_NOSERVER;
    } else if (rc != DNS_Q_OK) {
        result = DNS_RES_AGAIN;
    } else if (resp->rcode == DNS_RCODE_NXDOMAIN) {
        result = DNS_RES_NXDOMAIN;
    } else if (resp->rcode != DNS_RCODE_NOERROR) {
        result = DNS_RES_AGAIN;
    } else {
        result = DNS_RES_NODATA;
        char current[DNS_NAME_MAX + 1];
        snprintf(current, sizeof current, "%s", qname);
        for (int hop = 0; hop < MAX_CNAME_HOPS && result == DNS_RES_NODATA; hop++) {
            int followed = 0;
            for (int i = 0; i < resp->nanswers; i++) {
                const struct dns_answer *a = &resp->answers[i];
                if (!dns_name_equal(a->owner, current))
                    continue;
                if (a->type == DNS_TYPE_PTR) {
                    if (strlen(a->data.name) + 1 > hostlen) {
                        result = DNS_RES_BADNAME;
                    } else {
                        strcpy(host, a->data.name);
                        result = DNS_RES_OK;
                    }
                    break;
                }
                if (a->type == DNS_TYPE_CNAME) { /* RFC 2317 classless delegation */
                    snprintf(current, sizeof current, "%s", a->data.name);
                    followed = 1;
                    break;
                }
            }
            if (!followed)
                break;
        }
    }
    free(resp);
    return result;
}

/* One UDP exchange of the caller's query with server: the first reply from
 * the server's address and port that answers the query goes into buf
 * (bufsize octets), its length into *outlen. */
static int raw_udp(const struct pvd_dns_scope *scope, const struct pvd_dns_addr *server,
                   const uint8_t *query, size_t qlen, uint8_t *buf, size_t bufsize,
                   int timeout_ms, size_t *outlen)
{
    struct udp_exchange x;
    if (udp_open(&x, scope, server, timeout_ms) < 0 || udp_send(&x, query, qlen) < 0)
        return X_ERROR;
    int result;
    for (;;) {
        size_t n = 0;
        result = udp_recv(&x, buf, bufsize, &n);
        if (result != X_ANSWER)
            break;
        if (dns_reply_matches(query, qlen, buf, n) != DNS_OK)
            continue;
        *outlen = n;
        break;
    }
    REAL(close)(x.fd);
    return result;
}

/* Copy a reply into the caller's buffer: at most anslen octets, and a cut
 * reply gets its TC bit set (as glibc's res_send does for TCP replies). */
static int copy_reply(const uint8_t *buf, size_t len, uint8_t *answer, int anslen)
{
    size_t n = len < (size_t)anslen ? len : (size_t)anslen;
    memcpy(answer, buf, n);
    if (n < len)
        answer[2] |= 0x02;
    return (int)n;
}

int dns_send_raw(const struct pvd_dns_scope *scope, const struct dns_options *opt,
                 const uint8_t *query, int qlen, uint8_t *answer, int anslen, int flags)
{
    if (qlen < DNS_HEADER_LEN || qlen > DNS_MESSAGE_MAX || anslen < DNS_HEADER_LEN)
        return DNS_Q_BADNAME;
    uint8_t *buf = malloc(DNS_MESSAGE_MAX);
    if (!buf)
        return DNS_Q_TIMEOUT;
    int saved_errno = errno;
    /* the question, for the trace */
    char qname[DNS_NAME_MAX + 1] = "";
    uint16_t qtype = 0;
    if (shim_tracing) {
        size_t off = DNS_HEADER_LEN;
        if (dns_read_name(query, (size_t)qlen, &off, qname, sizeof qname) == DNS_OK && off + 2 <= (size_t)qlen)
            qtype = (uint16_t)((query[off] << 8) | query[off + 1]);
    }
    int usable = 0, refused = 0, result = DNS_Q_TIMEOUT;
    for (int attempt = 0; attempt < opt->attempts; attempt++) {
        for (int s = 0; s < scope->nservers; s++) {
            const struct pvd_dns_addr *server = &scope->servers[s];
            if (!pvd_dns_server_usable_in(scope, server))
                continue;
            usable = 1;
            size_t len = 0;
            int x;
            const char *why = "";
            errno = 0;
            if (flags & DNS_RAW_USEVC) {
                x = raw_tcp(scope, server, query, (size_t)qlen, buf, opt->timeout_ms, &len);
                why = "over TCP";
            } else {
                x = raw_udp(scope, server, query, (size_t)qlen, buf, DNS_MESSAGE_MAX,
                            opt->timeout_ms, &len);
                if (x == X_ANSWER && (buf[2] & 0x02) && !(flags & DNS_RAW_IGNTC)) {
                    errno = 0;
                    x = raw_tcp(scope, server, query, (size_t)qlen, buf, opt->timeout_ms, &len);
                    why = x == X_ANSWER ? "truncated over UDP, answered over TCP" : "truncated over UDP, TCP failed";
                }
            }
            if (x != X_ANSWER) {
                if (shim_tracing)
                    dns_trace(scope, qname, qtype, server, "failed",
                              why[0] ? why : x == X_TIMEOUT ? "no reply in time" : "no reply: the exchange failed",
                              -1, x == X_TIMEOUT ? ETIMEDOUT : errno ? errno : EIO);
                continue;
            }
            int rcode = buf[3] & 0x0F;
            if (shim_tracing)
                dns_trace(scope, qname, qtype, server, "answered", why, rcode, 0);
            int copied = copy_reply(buf, len, answer, anslen);
            if (rcode == DNS_RCODE_SERVFAIL || rcode == DNS_RCODE_NOTIMP
                || rcode == DNS_RCODE_REFUSED) {
                refused = 1; /* as glibc: the next server is asked */
                continue;
            }
            result = copied;
            goto done;
        }
        if (!usable) {
            if (shim_tracing)
                dns_trace(scope, qname, qtype, NULL, "refused",
                          "no DNS server the PvD can reach from its own addresses", -1, 0);
            result = DNS_Q_NOSERVER;
            goto done;
        }
    }
    if (refused)
        result = DNS_Q_SERVFAIL;
done:
    free(buf);
    errno = saved_errno;
    return result;
}
