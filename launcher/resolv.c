/* resolv.c: as root, the PvD's resolv.conf in a private mount namespace, for programs that
 * read /etc/resolv.conf themselves (dig, host).  The same steps, in the same order, as
 * pvdrun/resolve/resolvconf.py's enter_private_resolv_conf (its docstring says why each is
 * there); the text itself is pvdd's, rendered by that module. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher.h"

#define RESOLV_CONF "/etc/resolv.conf"
#define HEADER_PREFIX "# resolv.conf of PvD " /* resolvconf.py's HEADER_PREFIX */
#define MAX_NESTED 8

static int mounted_is_ours(void)
{
    char first[sizeof HEADER_PREFIX] = "";
    int fd = open(RESOLV_CONF, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, first, sizeof first - 1);
    close(fd);
    return n == (ssize_t)(sizeof first - 1) && memcmp(first, HEADER_PREFIX, sizeof first - 1) == 0;
}

static int write_all(int fd, const char *text)
{
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

int private_resolv_conf(const char *text)
{
    struct stat st;
    if (stat(RESOLV_CONF, &st) != 0)
        return -1;
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return -1;
    /* An outer pvdrun's resolv.conf (unlinked once mounted: nothing mounts over it) goes first. */
    for (int i = 0; i < MAX_NESTED && mounted_is_ours(); i++)
        if (umount2(RESOLV_CONF, MNT_DETACH) != 0)
            return -1;
    const char *dir = stat("/run", &st) == 0 && S_ISDIR(st.st_mode) ? "/run" : "/tmp";
    char path[128];
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 16; tries++) {
        unsigned char rnd[6];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            return -1;
        snprintf(path, sizeof path, "%s/pvdrun-resolv-%d-%02x%02x%02x%02x%02x%02x.conf", dir,
                 (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            return -1;
    }
    if (fd < 0)
        return -1;
    int rc = write_all(fd, text) == 0 && fchmod(fd, 0644) == 0 ? 0 : -1;
    rc = close(fd) == 0 ? rc : -1;
    if (rc == 0)
        rc = mount(path, RESOLV_CONF, NULL, MS_BIND, NULL);
    unlink(path);
    return rc;
}
