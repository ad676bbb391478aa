/* main.c: `pvdrun`, the command people run.  The launcher form runs here when everything is
 * as expected (launcher.h); everything else execs pvdrun-cli, the Python command line installed
 * beside this program, with the same arguments. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher.h"

#define CLI_NAME "pvdrun-cli"
#define SCOPE_ENV "PVDRUN_SCOPE"
#define SOCKET_ENV "PVDRUN_SOCKET"
#define DEFAULT_SOCKET "/run/pvd/pvdd.sock"
#define PRELOAD_ENV "LD_PRELOAD"
#define NULL_PVD "null"
#define AUTO_PVD "auto" /* a PvD per name and per destination: the Python launcher */
#define EXIT_MISSING_PREREQ 5 /* pvdrun/errors.py */

extern char **environ;

void trace(const char *fmt, ...)
{
    const char *on = getenv("PVDRUN_LAUNCHER_TRACE");
    if (!on || strcmp(on, "1") != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("pvdrun: native launcher: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* The directory of this program's file (symbolic links resolved: pipx links to its venv). */
static int own_dir(char *out, size_t outlen)
{
    ssize_t n = readlink("/proc/self/exe", out, outlen - 1);
    if (n <= 0 || (size_t)n >= outlen - 1)
        return -1;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

static void exec_cli(const char *dir, char **argv)
{
    char cli[4096];
    if (!dir || snprintf(cli, sizeof cli, "%s/" CLI_NAME, dir) >= (int)sizeof cli) {
        fprintf(stderr, "pvdrun: cannot find %s beside this program\n", CLI_NAME);
        exit(EXIT_MISSING_PREREQ);
    }
    execv(cli, argv);
    fprintf(stderr, "pvdrun: cannot run %s: %s\n", cli, strerror(errno));
    exit(EXIT_MISSING_PREREQ);
}

/* Whether an LD_PRELOAD entry (colon or space separated) is our library: an inner pvdrun, which
 * the Python command line handles (it leaves the outer scope first). */
static int preloads_shim(const char *value)
{
    for (const char *p = value; p && *p;) {
        size_t n = strcspn(p, ": ");
        const char *base = p;
        for (const char *q = p; q < p + n; q++)
            if (*q == '/')
                base = q + 1;
        if ((size_t)(p + n - base) == strlen("libpvdshim.so") && memcmp(base, "libpvdshim.so", p + n - base) == 0)
            return 1;
        p += n;
        p += strspn(p, ": ");
    }
    return 0;
}

/* A shell asks for completions (click's _PVDRUN_COMPLETE-style variables): click answers. */
static int completing(void)
{
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if ((*e)[0] == '_' && eq && eq[1] && eq - *e >= 9 && memcmp(eq - 9, "_COMPLETE", 9) == 0)
            return 1;
    }
    return 0;
}

/* LD_PRELOAD's new value: our library first, then the others (none a duplicate of ours). */
static char *preload_value(const char *library, const char *existing)
{
    size_t cap = strlen("LD_PRELOAD=") + strlen(library) + (existing ? strlen(existing) : 0) + 2;
    char *value = malloc(cap);
    if (!value)
        return NULL;
    size_t o = (size_t)sprintf(value, PRELOAD_ENV "=%s", library);
    for (const char *p = existing; p && *p;) {
        size_t n = strcspn(p, ": ");
        if (n && !(n == strlen(library) && memcmp(p, library, n) == 0)) {
            value[o++] = ':';
            memcpy(value + o, p, n);
            o += n;
        }
        p += n;
        p += strspn(p, ": ");
    }
    value[o] = '\0';
    return value;
}

static char *env_entry(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *entry = malloc(n);
    if (entry)
        snprintf(entry, n, "%s=%s", name, value);
    return entry;
}

/* The caller's environment with SCOPE, SOCKET (if given) and LD_PRELOAD replaced. */
static char **scoped_environment(const char *scope, const char *socket, const char *library)
{
    size_t count = 0;
    for (char **e = environ; *e; e++)
        count++;
    char **env = calloc(count + 4, sizeof *env);
    char *preload = preload_value(library, getenv(PRELOAD_ENV));
    char *scope_entry = env_entry(SCOPE_ENV, scope);
    char *socket_entry = socket ? env_entry(SOCKET_ENV, socket) : NULL;
    if (!env || !preload || !scope_entry || (socket && !socket_entry))
        return NULL;
    size_t o = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, SCOPE_ENV "=", sizeof SCOPE_ENV) == 0 ||
            strncmp(*e, PRELOAD_ENV "=", sizeof PRELOAD_ENV) == 0 ||
            (socket && strncmp(*e, SOCKET_ENV "=", sizeof SOCKET_ENV) == 0))
            continue;
        env[o++] = *e;
    }
    env[o++] = scope_entry;
    if (socket_entry)
        env[o++] = socket_entry;
    env[o++] = preload;
    env[o] = NULL;
    return env;
}

/* Run the launch; returns (why) only when the Python command line must take over. */
static const char *fast_launch(const char *dir, int argc, char **argv)
{
    struct launch_args args;
    static char program[4096], library[4096], scope[SCOPE_MAX], resolv[RESOLV_MAX];
    if (!dir)
        return "own directory unknown";
    if (completing() || !parse_launch_args(argc, argv, &args))
        return "not the launcher form";
    if (getenv("PVDRUN_LAUNCHER_TRACE")) {
        char words[2048] = "";
        for (char **w = args.command; *w; w++)
            snprintf(words + strlen(words), sizeof words - strlen(words), " <%s>", *w);
        trace("launcher form: pvd=<%s> socket=<%s> config=<%s> no_daemon=%d strict=%d verbose=%d "
              "no_proxy_env=%d command=%s",
              args.pvd_name, args.socket ? args.socket : "", args.config ? args.config : "",
              args.no_daemon, args.strict, args.verbose, args.no_proxy_env, words);
    }
    if (args.config || args.no_daemon || args.verbose)
        return "--config, --no-daemon or --verbose";
    if (strcmp(args.pvd_name, NULL_PVD) == 0)
        return "the null PvD";
    if (strcmp(args.pvd_name, AUTO_PVD) == 0)
        return "the auto PvD";
    if (preloads_shim(getenv(PRELOAD_ENV)))
        return "inside an outer pvdrun";
    if (find_program(args.command[0], getenv("PATH"), program, sizeof program) < 0)
        return "program not found";
    if (!surely_preloadable(program))
        return "program not surely preloadable";
    if (find_library(dir, library, sizeof library) < 0)
        return "preload library not found";
    const char *socket = args.socket;
    const char *path = socket ? socket : getenv(SOCKET_ENV);
    if (!path || !*path)
        path = DEFAULT_SOCKET;
    int fd = pvdd_connect(path);
    int asked = fd < 0 ? -1 : ask_scope(fd, args.pvd_name, scope, sizeof scope, resolv, sizeof resolv);
    if (asked < 0) {
        if (fd >= 0)
            close(fd);
        return asked == -2 ? "pvdd: the PvD's Additional Information needs the Python launcher"
                           : "pvdd gave no scope for the PvD";
    }
    int held = args.strict == 1 ? ask_strict(fd, args.pvd_name) : 0;
    close(fd);
    if (held < 0)
        return "pvdd did not hold the launcher in strict mode";
    const char *skip = getenv("PVDRUN_NO_RESOLV_CONF");
    if (geteuid() == 0 && !(skip && strcmp(skip, "1") == 0) && private_resolv_conf(resolv) < 0)
        return "private resolv.conf failed";
    char **env = scoped_environment(scope, socket, library);
    if (!env)
        return "out of memory";
    trace("exec %s", program);
    execve(program, args.command, env);
    return "exec failed";
}

int main(int argc, char **argv)
{
    static char dir[4096];
    int have_dir = own_dir(dir, sizeof dir) == 0;
    const char *why = fast_launch(have_dir ? dir : NULL, argc, argv);
    trace("%s: %s", why, CLI_NAME);
    exec_cli(have_dir ? dir : NULL, argv);
    return EXIT_MISSING_PREREQ;
}
