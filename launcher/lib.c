/* lib.c: the preload library that belongs to this install, without asking Python.
 *
 * pip puts this program in the scheme's scripts directory and the package in its purelib
 * directory; in every scheme pip uses on Linux (a venv, pipx's venvs, --user, /usr/local) the
 * second is scripts/../lib/python3.X/site-packages (Debian: dist-packages).  Exactly one
 * match is taken; none or several (an editable install, two Python versions in one prefix)
 * and the Python command line, which knows, runs the launch. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "launcher.h"

#define LIBRARY_NAME "libpvdshim.so"
#define LIBRARY_ENV "PVDRUN_SHIM_LIBRARY" /* pvdrun/shim/__init__.py's LIBRARY_ENV */

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* An absolute path os.path.abspath would leave as it is (no ".", "..", "//", trailing "/"). */
static int is_normal_absolute(const char *path)
{
    if (path[0] != '/' || strstr(path, "//") || strstr(path, "/./") || strstr(path, "/../"))
        return 0;
    size_t n = strlen(path);
    return !(n >= 2 && strcmp(path + n - 2, "/.") == 0) && !(n >= 3 && strcmp(path + n - 3, "/..") == 0);
}

int find_library(const char *bindir, char *out, size_t outlen)
{
    const char *override = getenv(LIBRARY_ENV);
    if (override && *override) {
        const char *base = strrchr(override, '/');
        if (!is_normal_absolute(override) || strcmp(base + 1, LIBRARY_NAME) != 0 ||
            !is_file(override) || strlen(override) >= outlen)
            return -1;
        strcpy(out, override);
        return 0;
    }
    char libdir[4096];
    if (snprintf(libdir, sizeof libdir, "%s/../lib", bindir) >= (int)sizeof libdir)
        return -1;
    DIR *dir = opendir(libdir);
    if (!dir)
        return -1;
    int found = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strncmp(entry->d_name, "python3", 7) != 0)
            continue;
        static const char *const kinds[] = {"site-packages", "dist-packages"};
        for (size_t k = 0; k < 2; k++) {
            char candidate[4096];
            int n = snprintf(candidate, sizeof candidate, "%s/%s/%s/pvdrun/shim/" LIBRARY_NAME,
                             libdir, entry->d_name, kinds[k]);
            if (n <= 0 || (size_t)n >= sizeof candidate || !is_file(candidate))
                continue;
            char *real = realpath(candidate, NULL);
            if (real && strlen(real) < outlen && (found == 0 || strcmp(real, out) != 0)) {
                strcpy(out, real);
                found++;
            }
            free(real);
        }
    }
    closedir(dir);
    return found == 1 ? 0 : -1;
}
