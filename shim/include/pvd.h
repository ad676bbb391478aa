/*
 * pvd.h: the C API of pvdrun for PvD-aware programs (RFC 7556 Provisioning Domains).
 *
 * Link with -lpvdshim (the library `pvdrun shim-path` prints), or call these functions in a
 * program started by `pvdrun --pvd NAME CMD`, where the same library is preloaded.
 * See docs/c-api.md.  Requirements cited are those of draft-kline-mif-mpvd-api-reqs-00.
 *
 * Scoping levels (R12, R19-R21), most specific first:
 *   socket  (pvd_bind_socket)        - one socket, fixed for its lifetime (R24, draft-liu)
 *   thread  (pvd_set_thread_scope)   - sockets this thread scopes from now on
 *   process (pvd_set_process_scope)  - the whole process, and children started after (R20)
 *   system  (nothing set)            - the kernel's ordinary routing: the system default PvD
 * Every getter returns PVD_HANDLE_UNSPEC (0) when nothing is set at its level (R21).
 *
 * Functions returning int return 0 on success, or -1 with errno set.
 * Thread safety: every function may be called from any thread.
 */
#ifndef PVD_H
#define PVD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this API: bumped when a declaration changes (docs/c-api.md). */
#define PVD_API_VERSION 5

/* A PvD's programmatic reference (R5). */
typedef uint32_t pvd_handle_t;

/* The unspecified PvD (R11): defer to the next coarser level. */
#define PVD_HANDLE_UNSPEC ((pvd_handle_t)0)
/* The null PvD (R13): no network at all; every inet operation fails fast. */
#define PVD_HANDLE_NULL ((pvd_handle_t)0xFFFFFFFFu)

/* Table limits; the same numbers as pvdrun/model.py. */
#define PVD_MAX_ADDRS 32
#define PVD_MAX_DNS 8
#define PVD_MAX_SEARCH 8
#define PVD_MAX_IFACES 8
#define PVD_ID_MAX 256     /* bytes, NUL included */
#define PVD_IFNAME_MAX 16  /* IFNAMSIZ */
#define PVD_ADDRSTR_MAX 64 /* an IPv6 address with a %zone, NUL included */
#define PVD_SEARCH_MAX 256

/* Attributes of one PvD (R16, R22: the same for explicit and implicit PvDs). */
struct pvd_info {
    pvd_handle_t handle;
    char id[PVD_ID_MAX]; /* the PvD identifier; "null" for the null PvD */
    unsigned int n_interfaces;
    char interfaces[PVD_MAX_IFACES][PVD_IFNAME_MAX];
    unsigned int ifindexes[PVD_MAX_IFACES];
    unsigned int n_addresses;
    char addresses[PVD_MAX_ADDRS][PVD_ADDRSTR_MAX];
    unsigned int n_dns;
    char dns[PVD_MAX_DNS][PVD_ADDRSTR_MAX];
    unsigned int n_search;
    char search[PVD_MAX_SEARCH][PVD_SEARCH_MAX];
    uint32_t mark;  /* socket mark pvdd uses for this PvD (0: none) */
    int srcbind;    /* 1: the interface is shared with other PvDs, sources are bound too */
};

/* 1 when the library is preloaded and intercepts this program's socket calls, else 0
 * (for example when Python opened it with cffi without LD_PRELOAD: then only
 * pvd_bind_socket has an effect on sockets). */
int pvd_shim_active(void);

/* Learning PvDs (R14, R16).
 * pvd_list stores up to `max` handles in `handles` and returns how many PvDs there are
 * (which may exceed max), or -1.  The list comes from pvdd when its socket answers
 * ($PVDRUN_SOCKET, else /run/pvd/pvdd.sock); otherwise it is the process's own PvD
 * (from $PVDRUN_SCOPE) and PvDs added with pvd_add_scope. */
int pvd_list(pvd_handle_t *handles, size_t max);
/* Fill *info for a handle (PVD_HANDLE_NULL included).  errno ENOENT: unknown handle. */
int pvd_get_info(pvd_handle_t handle, struct pvd_info *info);
/* Find a PvD by its identifier or one of its interface names.  errno ENOENT. */
int pvd_find(const char *name, pvd_handle_t *handle);
/* Make a PvD known from its scope line (the format of $PVDRUN_SCOPE, `pvdrun show`),
 * e.g. to use a PvD when pvdd is not running.  errno EINVAL: malformed line. */
int pvd_add_scope(const char *scope_line, pvd_handle_t *handle);

/* Scoping (R3, R19-R21).  Setting PVD_HANDLE_UNSPEC clears the level.  An unknown handle
 * gives ENOENT.  A socket is tied to the PvD in force at its first connect, sendto,
 * sendmsg, bind or listen (docs/shim.md); changing a scope does not move sockets already
 * tied. */
int pvd_set_thread_scope(pvd_handle_t handle);
pvd_handle_t pvd_get_thread_scope(void);
/* Also exports the PvD in $PVDRUN_SCOPE so that programs this process executes later
 * inherit it (R20); like setenv(3), do not race it with other threads' getenv. */
int pvd_set_process_scope(pvd_handle_t handle);
pvd_handle_t pvd_get_process_scope(void);
/* The PvD the calling thread's next socket would be tied to (R12): thread, else process,
 * else PVD_HANDLE_UNSPEC for the system default. */
pvd_handle_t pvd_get_effective_scope(void);

/* Per socket (R24, draft-liu-mif-socket-api "set PvD" per socket).
 * Ties an AF_INET/AF_INET6 socket to a PvD now: its traffic leaves through the PvD's
 * interface only, from one of the PvD's addresses.  PVD_HANDLE_NULL makes every later
 * operation of the socket fail.  errno: EBADF, ENOTSOCK, EAFNOSUPPORT (not inet), ENOENT
 * (unknown handle), EBUSY (already tied to another PvD), ENETDOWN (PvD's interface gone). */
int pvd_bind_socket(int fd, pvd_handle_t handle);
/* Which PvD a socket belongs to (R8): PVD_HANDLE_UNSPEC when it is not tied to one (not yet
 * used, talks only to loopback, or uses the system default).  An accepted socket belongs to
 * its listener's PvD. */
int pvd_get_socket_scope(int fd, pvd_handle_t *handle);

/* Since version 2.  Ties a socket that is about to talk to `dst` (its address and port) as
 * this library ties its own DNS sockets (R25): bound to the PvD's interface (dst's zone when
 * it names one of them, else the first), given the PvD's mark (set directly when the process
 * may, else by pvdd), checked for an IPv4 route through the interface, and bound to one of
 * the PvD's own addresses of dst's family, whether or not the PvD shares its interface.
 * The PvD is given by its scope line and need not be known to this process (a resolver
 * that keeps PvDs whose attributes change does not fill the PvD table).  errno: EINVAL
 * (malformed line), ENETUNREACH (the null PvD, no address of dst's family, no IPv4 route,
 * the mark could not be had), EACCES (pvdd's policy refuses the PvD), ENETDOWN (interface
 * gone), EPERM, and those of pvd_bind_socket; pvd_last_reason() says more when it can. */
int pvd_tie_socket(int fd, const char *scope_line, const struct sockaddr *dst, socklen_t dstlen);
/* Since version 2.  Why the calling thread's last failed pvd_tie_socket failed, when more is
 * known than errno says (pvdd's own reason for refusing a mark); "" otherwise.  The string
 * stays valid until the thread's next call of this API. */
const char *pvd_last_reason(void);

/* Since version 3.  1 when the PvD of `scope_line` can ask the DNS server `server` (an address as
 * the scope line's dns= entries spell it, "ADDR" or "ADDR%ZONE"), else 0, by the rule this
 * library's own resolver follows (R25): a link-local server is reached on its own link only,
 * which must be one of the PvD's interfaces (its zone, an index or a name of the line's if=
 * entries; without a zone, the PvD's interface when it has only one), from that link's
 * link-local address; any other server needs one of the PvD's own addresses of its family.
 * The null PvD can ask none.  errno: EINVAL (malformed line, or server no address). */
int pvd_dns_server_usable(const char *scope_line, const char *server);

/* Since version 4.  The `index`-th AF_UNIX socket path of the host's resolver daemons (nscd,
 * systemd-resolved) that a scoped connect() is refused (ECONNREFUSED), from 0; NULL past the
 * last.  Each is also reached as /var/run/... (this library reads /var/run as /run). */
const char *pvd_host_resolver_socket(unsigned int index);

/* Since version 5.  A PvD's extensible attributes (R18) as one JSON object text,
 * {"attributes":{...},"additional_info":{...}|null}: the configured pass-through keys and the
 * PvD's RFC 8801 Additional Information, copied verbatim from pvdd's reply (op "get").  Writes
 * it NUL-terminated to buf and returns its length (without the NUL), or -1 with errno: ENOENT
 * (unknown handle, or pvdd no longer has the PvD), ENOTCONN (pvdd, which listed the PvD,
 * does not answer), ERANGE (len too small), EFAULT (buf cannot be written), EPROTO (pvdd's
 * reply is malformed), ENOMEM.  A PvD pvdd never listed to this process (from $PVDRUN_SCOPE or
 * pvd_add_scope, pvdd not running or not knowing it) and the null PvD have none:
 * {"attributes":{},"additional_info":null}.  On failure buf holds "" when it can be written. */
ssize_t pvd_get_attributes(pvd_handle_t handle, char *buf, size_t len);
/* Since version 5.  The JSON text of one key (e.g. "noInternet" gives true), looked up in
 * "additional_info" first, then in "attributes"; returns and fails as pvd_get_attributes, and
 * ENODATA: no such key; EINVAL: key of 256 bytes or more; EFAULT: key unreadable. */
ssize_t pvd_get_attribute(pvd_handle_t handle, const char *key, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* PVD_H */
