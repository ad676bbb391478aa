/* log.h: the shim's one way to say something: one line on stderr, written with a single
 * write(2), errno preserved.  Safe in a signal handler as long as the format has no
 * floating point (vsnprintf into a buffer on the stack). */
#ifndef PVD_LOG_H
#define PVD_LOG_H

void shim_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
