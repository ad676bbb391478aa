/* cmsg_stubs.c: what shim/core/options.c needs from the rest of the shim, for the cmsg harness
 * (fuzz/fuzz_cmsg.c), which links options.c and sockaddr.c alone.  shim_check_cmsgs() reaches only
 * shim_pvd_at() and shim_copy_in(), which the harness defines; everything else here is
 * never called on that path and aborts if it is (then the harness must learn about it).
 * Keep in step with the extern symbols of options.c and sockaddr.c: `nm -u` of their objects. */
#include <stdlib.h>

#include "core.h"
#include "pvdd_client.h"
#include "route_check.h"
#include "tie.h"

struct shim_real_fns shim_real;
atomic_int shim_ready = 1;
_Atomic uint32_t *shim_fdtab;
unsigned int shim_fdtab_size;
SHIM_TLS int shim_in_vfork_child;

void shim_init(void) { abort(); }
void fd_store(int fd, uint32_t w) { (void)fd; (void)w; abort(); }
int fd_cas(int fd, uint32_t expected, uint32_t desired)
{
    (void)fd; (void)expected; (void)desired;
    abort();
}
unsigned int shim_pvd_slot(pvd_handle_t handle) { (void)handle; abort(); }
unsigned int shim_effective_slot(void) { abort(); }
uint32_t shim_adopt(int fd, const struct sockaddr *dst, enum shim_op op)
{
    (void)fd; (void)dst; (void)op;
    abort();
}
int shim_is_preloaded(void) { abort(); }
unsigned int shim_fork_epoch(void) { abort(); }
int shim_pvdd_mark(int sockfd, pvd_handle_t handle) { (void)sockfd; (void)handle; abort(); }
int shim_v4_route_exists(struct in_addr dst, int ifindex, uint32_t mark, struct in_addr *prefix,
                         unsigned int *plen)
{
    (void)dst; (void)ifindex; (void)mark; (void)prefix; (void)plen;
    abort();
}
int shim_pick_ifindex(const struct pvd_scope *pvd, const struct sockaddr *dst, socklen_t dstlen)
{
    (void)pvd; (void)dst; (void)dstlen;
    abort();
}
