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

#endif
