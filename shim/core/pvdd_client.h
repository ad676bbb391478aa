/* pvdd_client.h: ask pvdd for its PvD list (the C API's source of PvDs when it runs). */
#ifndef PVD_PVDD_CLIENT_H
#define PVD_PVDD_CLIENT_H

#include <stddef.h>

#include "pvd.h"

/* Send {"v":1,"op":"list"} to pvdd ($PVDRUN_SOCKET, else /run/pvd/pvdd.sock), add every
 * "scope" of the reply to the PvD table and store up to max handles.  Returns how many PvDs
 * the reply held, or -1 (errno) when pvdd does not answer. */
int shim_pvdd_list(pvd_handle_t *handles, size_t max);

/* Pure helper (fuzzable): find the next "scope":"..." string in reply[pos, len).
 * Returns 1 and sets [*start, *end) to the value, or 0 when there is none. */
int shim_next_scope(const char *reply, size_t len, size_t *pos, size_t *start, size_t *end);

/* Ask pvdd to set the socket mark of PvD `handle` on sockfd: the socket is passed over
 * pvdd's Unix socket (SCM_RIGHTS) and pvdd checks our credentials (R23).  0, or -1 with
 * errno EACCES (policy refuses) or ENETUNREACH (no pvdd, unknown PvD, other failure). */
int shim_pvdd_mark(int sockfd, pvd_handle_t handle);

#endif
