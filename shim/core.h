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

#include "pvd.h"
#include "scope_parse.h"

#define SHIM_API __attribute__((visibility("default")))
#define SHIM_LIKELY(x) __builtin_expect(!!(x), 1)

/* ---- real libc functions (resolved with dlsym(RTLD_NEXT), syscall fallbacks) ---- */
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
 * bit  24    pvdd set the PvD's socket mark (mark= non-zero) */
enum fd_kind {
    FK_UNKNOWN = 0,  /* not seen (inherited, dup'ed by fcntl, ...): looked at on first use */
    FK_NONINET = 1,  /* not AF_INET/AF_INET6 (or not a socket): left alone */
    FK_PENDING = 2,  /* inet socket not yet tied to a PvD */
    FK_SCOPED = 3,   /* tied to PvD `slot` */
    FK_SYSTEM = 4,   /* decided: no PvD set anywhere, the system default applies */
    FK_LOOPBACK = 5, /* connected or bound to loopback: left unscoped, loopback only */
    FK_NULLED = 6,   /* tied to the null PvD: every operation fails */
    FK_BUSY = 7,     /* another thread is tying it right now */
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
#define W_FLAGS(w) ((w)&0xFFF00000u)
#define W_MAKE(kind, slot, flags) (((uint32_t)(kind) << 16) | ((slot)&0xFFFFu) | (flags))
/* kinds whose operations go straight to the real call */
#define W_IS_PASS(w) ((1u << W_KIND(w)) & ((1u << FK_SCOPED) | (1u << FK_SYSTEM) | (1u << FK_NONINET)))

extern _Atomic uint32_t *shim_fdtab;
extern unsigned int shim_fdtab_size;

static inline uint32_t fd_load(int fd)
{
    _Atomic uint32_t *tab = __atomic_load_n(&shim_fdtab, __ATOMIC_ACQUIRE);
    if (tab && (unsigned int)fd < shim_fdtab_size)
        return atomic_load_explicit(&tab[fd], memory_order_acquire);
    return 0;
}
/* 1 when fd has a slot in the table (its state can be remembered). */
int fd_tracked(int fd);
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

/* ---- scope levels (slot values) ---- */
unsigned int shim_thread_slot(void);
void shim_set_thread_slot(unsigned int slot);
unsigned int shim_process_slot(void);
void shim_set_process_slot(unsigned int slot);
unsigned int shim_effective_slot(void);
int shim_is_preloaded(void);
/* For the resolver (dns_scope.c): the scope line of the PvD the calling thread's operations
 * use now (thread scope, else process scope).  Returns 1 with *line (valid for the process's
 * lifetime; the null PvD's line for the null PvD and for a malformed PVDRUN_SCOPE), or 0
 * when no PvD applies (system default). */
int shim_current_scope_line(const char **line);

/* ---- decisions ---- */
enum shim_op { OP_CONNECT, OP_SEND, OP_LISTEN };
/* Tie fd to its PvD before an operation towards dst (NULL: none).  0: go on with the real
 * call (errno untouched); -1: fail with errno set (the operation must not happen). */
int shim_prepare(int fd, const struct sockaddr *dst, socklen_t dstlen, enum shim_op op);
/* Check (and on a shared-interface PvD narrow) a bind address.  *use is set to addr or to
 * storage.  0 or -1 with errno, as shim_prepare. */
int shim_prepare_bind(int fd, const struct sockaddr *addr, socklen_t len,
                      struct sockaddr_storage *storage, const struct sockaddr **use, socklen_t *use_len);
/* Check a sendmsg's control messages on a socket tied to a PvD: IP_PKTINFO/IPV6_PKTINFO
 * may name another interface or source address, which would leave the PvD.  0 or -1. */
int shim_check_cmsgs(uint32_t w, const struct msghdr *msg);
/* May the program bind this socket to the device `ifindex` (0: unbind)?  0 or -1 (EPERM). */
int shim_check_device_change(int fd, int ifindex);
/* May the program set a sticky IPV6_PKTINFO (source/interface for every datagram)?  0 or -1. */
struct in6_pktinfo;
int shim_check_sticky_pktinfo6(int fd, const struct in6_pktinfo *info);
/* Apply a PvD to a socket now (pvd_bind_socket). */
int shim_bind_socket(int fd, pvd_handle_t handle);
/* A new socket from socket()/accept(): remember it. */
void shim_track_new(int fd, int family);
void shim_track_accepted(int listener, int fd);
void shim_track_dup(int oldfd, int newfd);
void shim_track_close(int fd);

/* Address classification. */
int shim_addr_is_loopback(const struct sockaddr *sa, socklen_t len);

#endif
