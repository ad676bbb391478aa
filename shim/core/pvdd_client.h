/* pvdd_client.h: ask pvdd for its PvD list (the C API's source of PvDs when it runs). */
#ifndef PVD_PVDD_CLIENT_H
#define PVD_PVDD_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include "pvd.h"

/* Send {"v":1,"op":"list"} to pvdd ($PVDRUN_SOCKET, else /run/pvd/pvdd.sock), add every
 * "scope" of the reply to the PvD table and store up to max handles.  Returns how many PvDs
 * the reply held, or -1 (errno) when pvdd does not answer. */
int shim_pvdd_list(pvd_handle_t *handles, size_t max);

/* Ask pvdd for the PvD `name` means (op "get": every name pvdrun accepts, kind aliases and
 * configured names included), add it to the PvD table and store its handle.  0, or -1 with
 * errno ENOENT (no pvdd, or no such PvD). */
int shim_pvdd_get(const char *name, pvd_handle_t *handle);

/* Ask pvdd for the PvD whose ID is `id` (op "get") and write its extensible attributes, or the
 * value of one key, to out: shim_attributes_from_reply (json_scan.h), whose errnos it gives,
 * and ENOTCONN when pvdd does not answer. */
ssize_t shim_pvdd_attributes(pvd_handle_t handle, const char *id, const char *key, char *out, size_t outlen);

/* 1 when pvdd has listed the PvD `handle` to this process (in a list or get reply). */
int shim_pvdd_listed(pvd_handle_t handle);

/* Pure helper (fuzzable): find the next "scope":"..." string in reply[pos, len).
 * Returns 1 and sets [*start, *end) to the value, or 0 when there is none. */
int shim_next_scope(const char *reply, size_t len, size_t *pos, size_t *start, size_t *end);

/* Ask pvdd to set the socket mark of PvD `handle` on sockfd: the socket is passed over
 * pvdd's Unix socket (SCM_RIGHTS) and pvdd checks our credentials (R23).  0, or -1 with
 * errno EACCES (policy refuses) or ENETUNREACH (no pvdd, unknown PvD, other failure). */
int shim_pvdd_mark(int sockfd, pvd_handle_t handle);

/* Why this thread's last failed mark request failed, in words ("pvdd: " and pvdd's own
 * message when it refused; "" when none is known): pvd_last_reason().  Cleared by
 * shim_reason_clear. */
#define SHIM_REASON_MAX 256
const char *shim_reason(void);
void shim_reason_clear(void);

/* Pure helper (no I/O): the "message" string of a pvdd error reply, unescaped as far as a
 * one-line reason needs (control characters dropped, \uXXXX kept as written).  1 and a
 * NUL-terminated out, or 0 when there is none. */
int shim_reply_message(const char *reply, size_t len, char *out, size_t outlen);

#endif
