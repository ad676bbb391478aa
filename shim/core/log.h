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
 * "not_tied"), why, errno.  shim_tracing is 0 otherwise; hot paths test it first.  errno kept.
 * Each line is one write(2) to the file, kept open at a high close-on-exec descriptor and
 * opened again when the program closed or replaced it (log.c, trace_fd). */
struct sockaddr;
extern int shim_tracing;
void shim_trace_socket(int fd, const char *op, const char *pvd_id, const void *dst, unsigned int dstlen,
                       const char *verdict, const char *why, int err);

/* One JSON line per DNS query the resolver sends to a server, or per lookup it answers or refuses
 * without one (docs/shim.md, "Trace"): name (escaped for JSON), qtype, server (a sockaddr with
 * port, NULL for none), PvD id, verdict ("answered", "failed", "refused"), why, rcode (-1 for
 * none), err (0 for none).  Nothing when shim_tracing is 0.  No allocation; errno kept. */
void shim_trace_lookup(const char *name, unsigned qtype, const void *server, unsigned int serverlen,
                       const char *pvd_id, const char *verdict, const char *why, int rcode, int err);

#endif
