/* core.h: the shim's shared state and decisions, used by the per-call wrappers.
 *
 * State lives in two fixed tables sized at initialisation and never reallocated:
 *  - the PvD table (PvDs parsed from scope lines; entries immutable once published),
 *  - the per-fd table: one atomic 32-bit word per file descriptor (see W_* below).
 * Hot paths (send* on a socket already tied to its PvD) read one word and call the real
 * function: no lock, no allocation, no extra system call. */
#ifndef PVD_CORE_H
#define PVD_CORE_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62 /* Linux 5.0; older headers lack it */
#endif

#include "pvd.h"
#include "scope_parse.h"

#define SHIM_API __attribute__((visibility("default")))
#define SHIM_LIKELY(x) __builtin_expect(!!(x), 1)
#define SHIM_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Thread-local state.  The default (global-dynamic) model, not initial-exec: a library
 * that uses initial-exec TLS needs its whole TLS block in the static TLS area, which a
 * dlopen (the Python API opens the library with cffi) may not find room in. */
#define SHIM_TLS __thread

/* ---- real libc functions: ONE table, resolved once with dlsym(RTLD_NEXT) ----
 * Socket calls have syscall(2) fallbacks; name-lookup functions may be NULL. */
struct addrinfo;
struct hostent;
struct gaicb;
struct sigevent;
struct __res_state;
struct _IO_FILE;
struct shim_real_fns {
    int (*socket)(int, int, int);
    int (*socketpair)(int, int, int, int[2]);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*bind)(int, const struct sockaddr *, socklen_t);
    int (*listen)(int, int);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
    int (*close)(int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
    int (*munmap)(void *, size_t);
    void *(*mremap)(void *, size_t, size_t, int, ...);
    int (*mprotect)(void *, size_t, int);
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    void *(*mmap64)(void *, size_t, int, int, int, off_t);
    long (*syscall)(long, ...);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    /* opens (hooks/open.c): resolv.conf is the PvD's view; glibc's fortified __open_2 & co
     * fall back to the plain calls where libc lacks them */
    int (*open)(const char *, int, ...);
    int (*open64)(const char *, int, ...);
    int (*openat)(int, const char *, int, ...);
    int (*openat64)(int, const char *, int, ...);
    int (*open_2)(const char *, int);
    int (*open64_2)(const char *, int);
    int (*openat_2)(int, const char *, int);
    int (*openat64_2)(int, const char *, int);
    struct _IO_FILE *(*fopen)(const char *, const char *);
    struct _IO_FILE *(*fopen64)(const char *, const char *);
    /* name lookups: NULL when libc lacks one (the hook then answers as libc would) */
    int (*getaddrinfo)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    void (*freeaddrinfo)(struct addrinfo *);
    int (*getnameinfo)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int);
    struct hostent *(*gethostbyname)(const char *);
    struct hostent *(*gethostbyname2)(const char *, int);
    int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t, struct hostent **, int *);
    int (*gethostbyname2_r)(const char *, int, struct hostent *, char *, size_t, struct hostent **, int *);
    struct hostent *(*gethostbyaddr)(const void *, socklen_t, int);
    int (*gethostbyaddr_r)(const void *, socklen_t, int, struct hostent *, char *, size_t, struct hostent **,
                           int *);
    int (*res_query)(const char *, int, int, unsigned char *, int);
    int (*res_search)(const char *, int, int, unsigned char *, int);
    int (*res_querydomain)(const char *, const char *, int, int, unsigned char *, int);
    int (*res_send)(const unsigned char *, int, unsigned char *, int);
    int (*res_nquery)(struct __res_state *, const char *, int, int, unsigned char *, int);
    int (*res_nsearch)(struct __res_state *, const char *, int, int, unsigned char *, int);
    int (*res_nquerydomain)(struct __res_state *, const char *, const char *, int, int, unsigned char *, int);
    int (*res_nsend)(struct __res_state *, const unsigned char *, int, unsigned char *, int);
    int (*getaddrinfo_a)(int, struct gaicb **, int, struct sigevent *);
    int (*gai_suspend)(const struct gaicb *const[], int, const struct timespec *);
    int (*gai_error)(struct gaicb *);
    int (*gai_cancel)(struct gaicb *);
};
extern struct shim_real_fns shim_real;
extern atomic_int shim_ready;

/* Initialise once (constructor; also called by any hook that runs before it). */
void shim_init(void);
static inline const struct shim_real_fns *shim_fns(void)
{
    if (!SHIM_LIKELY(atomic_load_explicit(&shim_ready, memory_order_acquire)))
        shim_init();
    return &shim_real;
}
#define REAL(fn) (shim_fns()->fn)

/* ---- per-fd state word ----
 * bits 0-15  slot: 0 none, SLOT_NULL the null PvD, else PvD-table index + 1
 * bits 16-19 kind (FK_*)
 * bit  20    socket is AF_INET6
 * bit  21    socket bound to an address already checked against its PvD
 * bit  22    device binding already applied
 * bit  23    slot set explicitly with pvd_bind_socket (per-socket scope)
 * bit  24    pvdd set the PvD's socket mark (mark= non-zero)
 * bit  25    tied IPv6 socket: a destination's scope ID is checked on every send
 * bit  26    adopted: first seen already open (inherited, received, beyond the table)
 * bits 27-31 FK_BUSY only: the fork generation of the tying thread (a word left busy by a
 *            thread that does not exist in this process is taken over, never waited on) */
enum fd_kind {
    FK_UNKNOWN = 0,  /* not seen (inherited, dup'ed by fcntl, ...): looked at on first use */
    FK_NONINET = 1,  /* not AF_INET/AF_INET6/AF_PACKET (or not a socket): left alone */
    FK_PENDING = 2,  /* inet socket not yet tied to a PvD */
    FK_SCOPED = 3,   /* tied to PvD `slot` */
    FK_SYSTEM = 4,   /* decided: no PvD set anywhere, the system default applies */
    FK_LOOPBACK = 5, /* connected or bound to loopback: left unscoped, loopback only */
    FK_NULLED = 6,   /* tied to the null PvD: every operation fails */
    FK_BUSY = 7,     /* a thread is tying it right now */
    FK_PACKET = 8,   /* AF_PACKET socket: `slot` 0 until its first bind/send, then its PvD */
};
#define SLOT_NONE 0u
#define SLOT_NULL 0xFFFFu
#define W_SLOT(w) ((w)&0xFFFFu)
#define W_KIND(w) (((w) >> 16) & 0xFu)
#define W_V6 (1u << 20)
#define W_BOUND (1u << 21)
#define W_DEVBOUND (1u << 22)
#define W_EXPLICIT (1u << 23)
#define W_MARKED (1u << 24)
#define W_DSTCHECK (1u << 25)
#define W_ADOPTED (1u << 26)
#define W_EPOCH_SHIFT 27
#define W_EPOCH(w) ((w) >> W_EPOCH_SHIFT)
#define W_FLAGS(w) ((w)&0x07F00000u)
#define W_MAKE(kind, slot, flags) (((uint32_t)(kind) << 16) | ((slot)&0xFFFFu) | (flags))
/* kinds whose operations go straight to the real call */
#define W_IS_PASS(w) ((1u << W_KIND(w)) & ((1u << FK_SCOPED) | (1u << FK_SYSTEM) | (1u << FK_NONINET)))
/* a send on this socket may go straight to the real call without reading its arguments */
#define W_SEND_PASS(w) ((1u << W_KIND(w)) & ((1u << FK_SYSTEM) | (1u << FK_NONINET)))

extern _Atomic uint32_t *shim_fdtab;
extern unsigned int shim_fdtab_size;

/* Set in a vfork() child (which shares the parent's memory, not its descriptor table):
 * the table is the parent's, so the child neither reads nor writes it (see vfork.c). */
extern SHIM_TLS int shim_in_vfork_child;

static inline uint32_t fd_load(int fd)
{
    _Atomic uint32_t *tab = __atomic_load_n(&shim_fdtab, __ATOMIC_ACQUIRE);
    if (SHIM_LIKELY(tab && (unsigned int)fd < shim_fdtab_size && !shim_in_vfork_child))
        return atomic_load_explicit(&tab[fd], memory_order_acquire);
    return 0; /* untracked: every operation decides afresh from the kernel's view */
}
void fd_store(int fd, uint32_t w);
int fd_cas(int fd, uint32_t expected, uint32_t desired);
void fd_or(int fd, uint32_t bits);

/* ---- PvD table ---- */
#define SHIM_MAX_PVDS 64
#define SHIM_LINE_MAX 8192
/* Parse a scope line and publish it; returns its slot (index + 1; SLOT_NULL for the null PvD)
 * or 0 with errno (EINVAL malformed, ENOSPC table full, E2BIG too long). */
unsigned int shim_pvd_add(const char *line, size_t len, char *err, size_t errlen);
/* Slot of a handle (newest entry), SLOT_NULL for PVD_HANDLE_NULL, 0 if unknown. */
unsigned int shim_pvd_slot(pvd_handle_t handle);
const struct pvd_scope *shim_pvd_at(unsigned int slot);
const char *shim_pvd_line(unsigned int slot);
pvd_handle_t shim_slot_handle(unsigned int slot);
unsigned int shim_pvd_count(void);

/* ---- the auto PvD (pvdrun --pvd auto; docs/shim.md "The auto PvD") ----
 * $PVDRUN_AUTO: one scope line per PvD, each with zero or more zone=NAME tokens (the DNS zones
 * the PvD claims), lines separated by newlines; $PVDRUN_SCOPE is the default PvD's line.
 * While the calling thread has no scope of its own and the process scope is that default PvD,
 * each lookup goes to the PvD claiming the longest zone holding the name (else the default),
 * and each socket is tied at its first operation to the PvD its destination address came
 * from (shim/dns/auto_addrs.h; else the default). */
#define SHIM_AUTO_MAX_ZONES 256
#define SHIM_AUTO_ZONE_MAX 254 /* a zone's name, NUL included (253 characters) */
#define SHIM_AUTO_ENV_MAX (256 * 1024)
/* 1 when `slot` (the calling thread's effective slot) is the auto PvD's default and the thread
 * has no scope of its own: the auto rules apply. */
int shim_auto_covers(unsigned int slot);
/* The slot of the PvD claiming the longest zone that holds `name` (case-insensitive, a final
 * dot ignored), else the default PvD's.  0 when auto is not in force. */
unsigned int shim_auto_slot_for_name(const char *name);
/* The slot the socket's first operation towards dst (NULL: none) is tied to: the thread's
 * effective slot, or under the auto rules the PvD dst came from (else the default). */
unsigned int shim_slot_towards(const struct sockaddr *dst, socklen_t len);

/* ---- scope levels (slot values) ---- */
unsigned int shim_thread_slot(void);
void shim_set_thread_slot(unsigned int slot);
unsigned int shim_process_slot(void);
void shim_set_process_slot(unsigned int slot);
unsigned int shim_effective_slot(void);
int shim_is_preloaded(void);
/* The fork generation (bumped in every fork child), for FK_BUSY words. */
unsigned int shim_fork_epoch(void);

/* ---- decisions (decide.c) ---- */
enum shim_op { OP_CONNECT, OP_SEND, OP_LISTEN };
/* First sight of an fd: what it is (SO_DOMAIN), remembered when the table can. */
uint32_t shim_adopt(int fd, const struct sockaddr *dst, enum shim_op op);
/* Tie fd to its PvD before an operation towards dst (NULL: none; the caller has copied it
 * into its own memory, see uaccess.h).  0: go on with the real call (errno untouched), and
 * *wout (if not NULL) holds the socket's word for this call, valid also for descriptors the
 * table cannot remember; -1: fail with errno set (the operation must not happen). */
int shim_prepare(int fd, const struct sockaddr *dst, socklen_t dstlen, enum shim_op op, uint32_t *wout);
/* Check (and on a shared-interface PvD narrow) a bind address (already copied).  *use is
 * set to addr or to storage.  0 or -1 with errno, as shim_prepare. */
int shim_prepare_bind(int fd, const struct sockaddr *addr, socklen_t len,
                      struct sockaddr_storage *storage, const struct sockaddr **use, socklen_t *use_len);
/* On a tied socket (word w), may a datagram go to dst (copied)?  Refuses an IPv6 scope ID
 * naming another interface (EINVAL): the kernel sends to it over the device binding. */
int shim_check_dst(uint32_t w, const struct sockaddr *dst, socklen_t dstlen);
/* Check a sendmsg's control messages on a socket tied to a PvD (word w): IP_PKTINFO,
 * IPV6_PKTINFO, IPV6_2292PKTINFO may name another interface (EINVAL) or source address
 * (EADDRNOTAVAIL); IPV6_NEXTHOP picks a next hop (EPERM).  `control` is the program's
 * buffer; it is read safely (EFAULT).  0 or -1. */
int shim_check_cmsgs(uint32_t w, const void *control, size_t controllen);
/* setsockopt checks (setsockopt.c): the socket's PvD, or SLOT_NONE when no PvD applies. */
unsigned int shim_slot_for_option(int fd);
/* May the program bind this socket to the device `ifindex` (0: unbind)?  0 or -1 (EPERM). */
int shim_check_device_change(int fd, int ifindex);
/* Is ifindex (0: unspecified) an interface of the PvD in slot?  1 or 0. */
int shim_slot_has_ifindex(unsigned int slot, unsigned int ifindex);
/* The PvD's interface a multicast join or an unspecified interface goes to. */
unsigned int shim_slot_ifindex(unsigned int slot);
/* Is addr (IPv4, network order) an address of the PvD in slot?  1 or 0. */
int shim_slot_has_v4(unsigned int slot, struct in_addr addr);
/* Descriptors inherited across exec: each one is looked at as shim_adopt_foreign does. */
void shim_adopt_inherited(void);
/* May the program set a sticky IPV6_PKTINFO (source/interface for every datagram)?  0 or -1. */
struct in6_pktinfo;
int shim_check_sticky_pktinfo6(int fd, const struct in6_pktinfo *info);
/* Tie a socket the shim opens itself (a DNS query's) to PvD `handle` by the same rules as the
 * program's sockets (device, mark, IPv4 route check), always with a PvD source address of
 * dst's family.  0, or -1 with errno (ENETUNREACH: the PvD is unknown or has no source). */
int shim_tie_own_socket(int fd, pvd_handle_t handle, const struct sockaddr *dst, socklen_t dstlen);
/* The same for a PvD given by its scope line, which need not be in the table
 * (pvd_tie_socket).  errno EINVAL: malformed line; ENETUNREACH: the null PvD, or as above. */
int shim_tie_scope_line(int fd, const char *line, const struct sockaddr *dst, socklen_t dstlen);
/* Apply a PvD to a socket now (pvd_bind_socket). */
int shim_bind_socket(int fd, pvd_handle_t handle);
/* A new socket from socket()/accept(): remember it. */
void shim_track_new(int fd, int family);
void shim_track_accepted(int listener, int fd);
void shim_track_dup(int oldfd, int newfd);
void shim_track_close(int fd);
/* A descriptor this process did not create (received with SCM_RIGHTS, inherited across
 * exec): keep it when it belongs to the PvD, else replace it with a socket of the null PvD. */
void shim_adopt_foreign(int fd);
/* AF_PACKET: may this socket send to / bind on interface ifindex (0: the bound one)? */
int shim_packet_check(int fd, unsigned int ifindex);

/* Address classification. */
int shim_addr_is_loopback(const struct sockaddr *sa, socklen_t len);

#endif
