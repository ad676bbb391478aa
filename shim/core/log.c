/* log.c: see log.h. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int shim_debugging;
static char g_debug_path[256];

void shim_say(const char *fmt, ...)
{
    char line[512];
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0) {
        size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
        ssize_t ignored = write(STDERR_FILENO, line, len);
        (void)ignored;
    }
    errno = saved;
}

void shim_debug_init(void)
{
    const char *value = environ ? getenv("PVDRUN_DEBUG") : NULL; /* none before libc's start */
    if (!value)
        return;
    if (strcmp(value, "1") == 0) {
        shim_debugging = 1;
    } else if (value[0] == '/' && strlen(value) < sizeof g_debug_path) {
        strcpy(g_debug_path, value);
        shim_debugging = 2;
    }
}

void shim_debug(const char *fmt, ...)
{
    if (!shim_debugging)
        return;
    char line[512];
    int saved = errno;
    int n = snprintf(line, sizeof line, "pvdrun shim[%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = n > 0 ? vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap) : -1;
    va_end(ap);
    if (m >= 0) {
        size_t len = (size_t)n + ((size_t)m < sizeof line - (size_t)n - 1 ? (size_t)m : sizeof line - (size_t)n - 2);
        line[len++] = '\n';
        /* raw system calls: the shim's own hooks and the program's descriptors stay out of it */
        long fd = shim_debugging == 2
                      ? syscall(SYS_openat, AT_FDCWD, g_debug_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)
                      : STDERR_FILENO;
        if (fd >= 0) {
            long ignored = syscall(SYS_write, (int)fd, line, len);
            (void)ignored;
            if (shim_debugging == 2)
                syscall(SYS_close, (int)fd);
        }
    }
    errno = saved;
}
