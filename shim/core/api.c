/* api.c: the public C API of pvd.h (R8, R14, R16, R19-R21, R24). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "core.h"
#include "dns_scope.h"
#include "host_resolvers.h"
#include "pvdd_client.h"
#include "uaccess.h"

SHIM_API int pvd_shim_active(void) { return shim_is_preloaded(); }

SHIM_API int pvd_add_scope(const char *scope_line, pvd_handle_t *handle)
{
    char err[160];
    shim_init();
    if (!scope_line) {
        errno = EINVAL;
        return -1;
    }
    unsigned int slot = shim_pvd_add(scope_line, strlen(scope_line), err, sizeof err);
    if (slot == 0)
        return -1;
    if (handle)
        *handle = shim_slot_handle(slot);
    return 0;
}

SHIM_API int pvd_list(pvd_handle_t *handles, size_t max)
{
    shim_init();
    int n = shim_pvdd_list(handles, max);
    if (n >= 0)
        return n;
    /* no pvdd: the PvDs this process knows (its environment's, and added ones) */
    unsigned int total = shim_pvd_count();
    int count = 0;
    for (unsigned int slot = 1; slot <= total; slot++) {
        pvd_handle_t h = shim_slot_handle(slot);
        if (shim_pvd_slot(h) != slot)
            continue; /* superseded by a newer entry for the same handle */
        if ((size_t)count < max && handles)
            handles[count] = h;
        count++;
    }
    return count;
}

/* Look a handle up, asking pvdd once when it is not known yet. */
static unsigned int slot_or_refresh(pvd_handle_t handle)
{
    unsigned int slot = shim_pvd_slot(handle);
    if (slot == 0 && handle != PVD_HANDLE_UNSPEC) {
        int saved = errno;
        shim_pvdd_list(NULL, 0);
        errno = saved;
        slot = shim_pvd_slot(handle);
    }
    return slot;
}

SHIM_API int pvd_get_info(pvd_handle_t handle, struct pvd_info *info)
{
    shim_init();
    if (!info) {
        errno = EINVAL;
        return -1;
    }
    if (handle == PVD_HANDLE_NULL) {
        memset(info, 0, sizeof *info);
        info->handle = PVD_HANDLE_NULL;
        strcpy(info->id, "null");
        return 0;
    }
    const struct pvd_scope *pvd = shim_pvd_at(slot_or_refresh(handle));
    if (!pvd) {
        errno = ENOENT;
        return -1;
    }
    memcpy(info, &pvd->info, sizeof *info);
    return 0;
}

static int find_in_table(const char *name, pvd_handle_t *handle)
{
    unsigned int total = shim_pvd_count();
    for (unsigned int slot = total; slot > 0; slot--) {
        const struct pvd_scope *pvd = shim_pvd_at(slot);
        int match = strcmp(pvd->info.id, name) == 0;
        for (unsigned int i = 0; !match && i < pvd->info.n_interfaces; i++)
            match = strcmp(pvd->info.interfaces[i], name) == 0;
        if (match) {
            *handle = pvd->info.handle;
            return 0;
        }
    }
    return -1;
}

SHIM_API int pvd_find(const char *name, pvd_handle_t *handle)
{
    shim_init();
    if (!name || !handle) {
        errno = EINVAL;
        return -1;
    }
    if (strcmp(name, "null") == 0) {
        *handle = PVD_HANDLE_NULL;
        return 0;
    }
    int saved = errno;
    shim_pvdd_list(NULL, 0);
    errno = saved;
    if (find_in_table(name, handle) == 0)
        return 0;
    if (shim_pvdd_get(name, handle) == 0) { /* a kind alias, a configured or short name */
        errno = saved;
        return 0;
    }
    errno = ENOENT;
    return -1;
}

SHIM_API int pvd_set_thread_scope(pvd_handle_t handle)
{
    shim_init();
    unsigned int slot = slot_or_refresh(handle);
    if (handle != PVD_HANDLE_UNSPEC && slot == 0) {
        errno = ENOENT;
        return -1;
    }
    shim_set_thread_slot(slot);
    return 0;
}

SHIM_API pvd_handle_t pvd_get_thread_scope(void) { return shim_slot_handle(shim_thread_slot()); }

SHIM_API int pvd_set_process_scope(pvd_handle_t handle)
{
    shim_init();
    unsigned int slot = slot_or_refresh(handle);
    if (handle != PVD_HANDLE_UNSPEC && slot == 0) {
        errno = ENOENT;
        return -1;
    }
    /* children inherit the process scope through the environment (R20) */
    int rc;
    if (slot == SLOT_NONE)
        rc = unsetenv("PVDRUN_SCOPE");
    else if (slot == SLOT_NULL)
        rc = setenv("PVDRUN_SCOPE", "v=1 id=null handle=4294967295", 1);
    else
        rc = setenv("PVDRUN_SCOPE", shim_pvd_line(slot), 1);
    if (rc < 0)
        return -1;
    shim_set_process_slot(slot);
    return 0;
}

SHIM_API pvd_handle_t pvd_get_process_scope(void) { return shim_slot_handle(shim_process_slot()); }

SHIM_API pvd_handle_t pvd_get_effective_scope(void) { return shim_slot_handle(shim_effective_slot()); }

SHIM_API int pvd_bind_socket(int fd, pvd_handle_t handle)
{
    shim_init();
    if (handle != PVD_HANDLE_UNSPEC && handle != PVD_HANDLE_NULL)
        slot_or_refresh(handle);
    return shim_bind_socket(fd, handle);
}

SHIM_API int pvd_get_socket_scope(int fd, pvd_handle_t *handle)
{
    shim_init();
    if (!handle) {
        errno = EINVAL;
        return -1;
    }
    if (fcntl(fd, F_GETFD) < 0)
        return -1; /* EBADF */
    uint32_t w = fd_load(fd);
    switch (W_KIND(w)) {
    case FK_SCOPED:
    case FK_NULLED:
    case FK_BUSY:
        *handle = shim_slot_handle(W_SLOT(w));
        break;
    case FK_PENDING:
        *handle = (w & W_EXPLICIT) ? shim_slot_handle(W_SLOT(w)) : PVD_HANDLE_UNSPEC;
        break;
    default:
        *handle = PVD_HANDLE_UNSPEC;
    }
    return 0;
}

SHIM_API int pvd_tie_socket(int fd, const char *scope_line, const struct sockaddr *dst, socklen_t dstlen)
{
    shim_init();
    shim_reason_clear();
    if (!scope_line || !dst) {
        errno = EINVAL;
        return -1;
    }
    return shim_tie_scope_line(fd, scope_line, dst, dstlen);
}

SHIM_API const char *pvd_last_reason(void) { return shim_reason(); }

SHIM_API int pvd_dns_server_usable(const char *scope_line, const char *server)
{
    struct pvd_dns_scope view;
    struct pvd_dns_addr addr;
    int saved = errno;
    if (!scope_line || !server || pvd_dns_parse_scope(scope_line, &view) != PVD_DNS_SCOPE_OK) {
        errno = EINVAL;
        return -1;
    }
    int parsed = pvd_dns_parse_addr(server, &view, &addr);
    if (parsed == -1) {
        errno = EINVAL;
        return -1;
    }
    errno = saved;
    return parsed == 0 && pvd_dns_server_usable_in(&view, &addr);
}

SHIM_API const char *pvd_host_resolver_socket(unsigned int index) { return shim_host_resolver_socket(index); }

/* The attributes of a PvD pvdd does not know (one from $PVDRUN_SCOPE or pvd_add_scope). */
static const char no_attributes[] = "{\"attributes\":{},\"additional_info\":null}";

#define ATTR_KEY_MAX 256
#define ATTR_TMP_MAX ((size_t)1 << 20) /* pvdd's reply is at most that (pvdd_client.c) */

/* Copy the program's key string to key (safely: EFAULT); EINVAL when ATTR_KEY_MAX or longer. */
static int copy_key(char *key, const char *src)
{
    for (size_t i = 0; i < ATTR_KEY_MAX; i++) {
        if ((i == 0 || ((uintptr_t)(src + i) & 4095) == 0) && !shim_readable(src + i, 1))
            return -1;
        key[i] = src[i];
        if (key[i] == '\0')
            return 0;
    }
    errno = EINVAL;
    return -1;
}

static ssize_t get_attributes(pvd_handle_t handle, const char *user_key, char *buf, size_t len)
{
    int saved = errno;
    char keybuf[ATTR_KEY_MAX];
    const char *key = NULL;
    shim_init();
    if (!buf || (len > 0 && shim_copy_out(buf, "", 1) < 0)) {
        errno = EFAULT;
        return -1;
    }
    if (user_key) {
        if (copy_key(keybuf, user_key) < 0)
            return -1;
        key = keybuf;
    }
    const struct pvd_scope *pvd = NULL;
    if (handle != PVD_HANDLE_NULL) {
        pvd = shim_pvd_at(slot_or_refresh(handle));
        if (!pvd) {
            errno = ENOENT;
            return -1;
        }
    }
    size_t tmplen = len < ATTR_TMP_MAX ? len : ATTR_TMP_MAX;
    char *tmp = tmplen ? malloc(tmplen) : NULL;
    if (tmplen && !tmp) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n = -1;
    int local = pvd == NULL;
    if (pvd) {
        n = shim_pvdd_attributes(handle, pvd->info.id, key, tmp, tmplen);
        /* pvdd does not answer, or knows no such PvD: a PvD it never listed has no
         * attributes; one it listed is gone (ENOENT), or pvdd is (ENOTCONN) */
        local = n < 0 && (errno == ENOTCONN || errno == ENOENT) && !shim_pvdd_listed(handle);
    }
    if (local) {
        if (key) {
            n = -1;
            errno = ENODATA;
        } else if (sizeof no_attributes > tmplen) {
            n = -1;
            errno = ERANGE;
        } else {
            memcpy(tmp, no_attributes, sizeof no_attributes);
            n = (ssize_t)(sizeof no_attributes - 1);
        }
    }
    if (n >= 0 && shim_copy_out(buf, tmp, (size_t)n + 1) < 0)
        n = -1; /* EFAULT */
    int e = errno;
    free(tmp);
    errno = n >= 0 ? saved : e;
    return n;
}

SHIM_API ssize_t pvd_get_attributes(pvd_handle_t handle, char *buf, size_t len)
{
    return get_attributes(handle, NULL, buf, len);
}

SHIM_API ssize_t pvd_get_attribute(pvd_handle_t handle, const char *key, char *buf, size_t len)
{
    if (!key) {
        errno = EFAULT;
        return -1;
    }
    return get_attributes(handle, key, buf, len);
}
