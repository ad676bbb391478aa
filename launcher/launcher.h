/* launcher.h: the native launcher, `pvdrun --pvd NAME [--] CMD [ARGS...]` without Python.
 *
 * The launcher's whole job on its fast path: recognise the launcher form, find CMD as execvp
 * would, see that the shim can hold it (a dynamic, non-Go ELF program the loader preloads),
 * ask pvdd for the PvD's scope line (op "scope") and, with --strict, to move it into the PvD's
 * cgroup (op "strict"), give a root launch the PvD's resolv.conf, and exec CMD with
 * PVDRUN_SCOPE and LD_PRELOAD.  Anything else, and every failure before the
 * exec, hands the same argument vector to the Python command line (pvdrun-cli beside this
 * program), which does everything, says what went wrong and exits with the documented status:
 * the native launcher never prints an error of its own and never refuses anything itself.
 */
#ifndef PVDRUN_LAUNCHER_H
#define PVDRUN_LAUNCHER_H

#include <stddef.h>

/* The launcher's words, as pvdrun/launch_args.py parses them. */
struct launch_args {
    const char *pvd_name;   /* --pvd NAME, -p NAME, -pNAME, --pvd=NAME, exec's NAME */
    const char *socket;     /* --socket PATH, --socket=PATH, or NULL */
    const char *config;     /* --config PATH, --config=PATH, or NULL */
    int no_daemon;          /* --no-daemon */
    int strict;             /* 1 --strict, 0 --no-strict, -1 neither */
    int verbose;            /* -v, --verbose */
    int no_proxy_env;       /* --no-proxy-env */
    char **command;         /* CMD [ARGS...], NULL-terminated, never empty */
};

/* 1 and *out filled when argv is the launcher form, `run` or `exec` and parses without a usage
 * error or -h; 0 for anything else (which the Python command line then parses). */
int parse_launch_args(int argc, char **argv, struct launch_args *out);

/* The file execve would run for name with search_path as PATH (NULL: "/bin:/usr/bin"), as
 * pvdrun/pathsearch.py finds it; 0 and the path in out, or -1 when none is found (or it does
 * not fit). */
int find_program(const char *name, const char *search_path, char *out, size_t outlen);

/* 1 when the shim certainly holds the program at path (a dynamically linked, non-Go ELF file
 * the loader runs without secure mode: pvdrun/shim/preloadable.py's rule, restricted to what
 * needs no interpreter or message), 0 for anything else. */
int surely_preloadable(const char *path);

/* Its pure part (fuzzed): 1 when the ELF image d[0, len) has a PT_INTERP header and no Go
 * section or Go build-ID note, 0 for anything else (including anything malformed). */
int elf_surely_dynamic(const unsigned char *d, size_t len);

/* A connection to pvdd at socket_path (close-on-exec), or -1. */
int pvdd_connect(const char *socket_path);

/* Ask pvdd on fd for the scope line and resolv.conf of the PvD name; 0 on an ok reply, -1
 * otherwise (pvdd gone, an error reply, anything unexpected). */
/* 0 and the scope line and resolv.conf of the PvD name; -1 when pvdd gives none; -2 when pvdd
 * says the launch needs the Python launcher ("needs" in the reply: the PvD's Additional
 * Information adds a note or proxy variables, docs/pvdinfo.md). */
int ask_scope(int fd, const char *name, char *scope, size_t scope_len, char *resolv_conf, size_t resolv_len);

/* Ask pvdd on fd to move this process into the PvD name's strict cgroup (op "strict": pvdd
 * moves the peer of the connection); 0 when it did, -1 otherwise. */
int ask_strict(int fd, const char *name);

/* Pure helpers of ask_scope (tested and fuzzable): the JSON escape of s into out; the
 * unescaped value of the string member key of a flat JSON object line.  0 or -1. */
int json_escape(const char *s, char *out, size_t outlen);
int json_member(const char *line, size_t len, const char *key, char *out, size_t outlen);

/* As root: a private mount namespace whose /etc/resolv.conf shows text
 * (pvdrun/resolve/resolvconf.py's enter_private_resolv_conf); 0 or -1. */
int private_resolv_conf(const char *text);

/* The preload library beside this install: $PVDRUN_SHIM_LIBRARY when it is an absolute path to
 * a libpvdshim.so file, else the one libpvdshim.so under bindir/../lib/python3.X/site-packages
 * (or dist-packages)/pvdrun/shim/; 0, or -1 when there is none or more than one. */
int find_library(const char *bindir, char *out, size_t outlen);

/* Say what the launcher decided, on stderr, when PVDRUN_LAUNCHER_TRACE=1. */
void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define SCOPE_MAX 8192
#define RESOLV_MAX 8192

#endif
