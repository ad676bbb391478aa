/* log.h: the shim's one way to say something: one line on stderr, written with a single
 * write(2), errno preserved.  Safe in a signal handler as long as the format has no
 * floating point (vsnprintf into a buffer on the stack). */
#ifndef PVD_LOG_H
#define PVD_LOG_H

void shim_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* PVDRUN_DEBUG, read once at start-up (shim_debug_init): "1" writes one line per socket the
 * shim ties or refuses, and why, to stderr; an absolute path appends them to that file
 * (opened and closed for each line: a program that closes every descriptor loses none).
 * shim_debugging is 0 otherwise: hot paths test it before calling shim_debug. */
extern int shim_debugging;
void shim_debug_init(void);
void shim_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* PVDRUN_TRACE=/absolute/path, read at start-up with PVDRUN_DEBUG: one JSON line appended per
 * socket decision (docs/shim.md, "Trace"): pid, fd, op, family, protocol, PvD, the device the
 * socket is bound to, its source, the destination, the verdict ("tied", "refused",
 * "not_tied"), why, errno.  shim_tracing is 0 otherwise; hot paths test it first.  errno kept. */
struct sockaddr;
extern int shim_tracing;
void shim_trace_socket(int fd, const char *op, const char *pvd_id, const void *dst, unsigned int dstlen,
                       const char *verdict, const char *why, int err);

#endif
