/* args.c: the launcher's words, by the grammar of pvdrun/launch_args.py (the one parser of the
 * Python command line; tests/test_launch_native.py runs both over the same argument vectors):
 *
 *   pvdrun [OPTION...] [--] CMD [ARGS...]           (an OPTION is --pvd: the launcher form)
 *   pvdrun run [OPTION...] [--] CMD [ARGS...]
 *   pvdrun exec [OPTION...] NAME [--] CMD [ARGS...]
 *
 * It accepts exactly what that parser accepts without a usage error or -h; everything else
 * goes to the Python command line, which accepts or refuses it and says why. */
#include <string.h>

#include "launcher.h"

static int named(const char *name, size_t len, const char *option)
{
    return strlen(option) == len && memcmp(name, option, len) == 0;
}

/* Apply the option at argv[*i] (and its value); -1 where launch_args.py raises. */
static int option(int argc, char **argv, int *i, struct launch_args *out)
{
    const char *word = argv[*i], *value = NULL;
    size_t len = strlen(word);
    if (word[0] == '-' && word[1] == '-') {
        const char *eq = strchr(word, '=');
        if (eq)
            len = (size_t)(eq - word), value = eq + 1;
    } else if (strncmp(word, "-p", 2) == 0 && word[2]) {
        len = 2, value = word + 2; /* -pNAME */
    }
    const char **field = named(word, len, "--pvd") || named(word, len, "-p") ? &out->pvd_name
                       : named(word, len, "--socket") ? &out->socket
                       : named(word, len, "--config") ? &out->config : NULL;
    if (field) {
        if (!value) {
            if (*i + 1 >= argc)
                return -1;
            value = argv[++*i];
        }
        if (!*value)
            return -1;
        *field = value;
    } else if (value) {
        return -1; /* a flag with a value, or an unknown option */
    } else if (named(word, len, "--strict") || named(word, len, "--no-strict")) {
        out->strict = word[2] == 's';
    } else if (named(word, len, "--no-daemon")) {
        out->no_daemon = 1;
    } else if (named(word, len, "--no-proxy-env")) {
        out->no_proxy_env = 1;
    } else if (named(word, len, "-v") || named(word, len, "--verbose")) {
        out->verbose = 1;
    } else {
        return -1; /* -h, --help (Python prints run's help), or an unknown option */
    }
    ++*i;
    return 0;
}

/* Take options from argv[*i] up to the first other word, or through "--"; -1 on an error. */
static int options(int argc, char **argv, int *i, struct launch_args *out)
{
    while (*i < argc) {
        const char *word = argv[*i];
        if (strcmp(word, "--") == 0) {
            ++*i;
            return 0;
        }
        if (word[0] != '-' || strcmp(word, "-") == 0)
            return 0;
        if (option(argc, argv, i, out) < 0)
            return -1;
    }
    return 0;
}

/* launch_args.is_launcher_form(argv[1:]). */
static int is_launcher_form(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] != '-' || strcmp(argv[1], "-") == 0 || strcmp(argv[1], "--") == 0 ||
        strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "--version") == 0)
        return 0;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0 && argv[i][0] == '-' && strcmp(argv[i], "-") != 0; i++) {
        const char *word = argv[i];
        size_t len = word[1] == '-' && strchr(word, '=') ? (size_t)(strchr(word, '=') - word) : strlen(word);
        if (named(word, len, "--pvd") || strncmp(word, "-p", 2) == 0)
            return 1;
        if ((strcmp(word, "--socket") == 0 || strcmp(word, "--config") == 0) && i + 1 < argc)
            i++;
    }
    return 0;
}

int parse_launch_args(int argc, char **argv, struct launch_args *out)
{
    memset(out, 0, sizeof *out);
    out->strict = -1;
    int exec = argc > 1 && strcmp(argv[1], "exec") == 0;
    int i = 1;
    if (exec || (argc > 1 && strcmp(argv[1], "run") == 0))
        i = 2;
    else if (!is_launcher_form(argc, argv))
        return 0;
    if (options(argc, argv, &i, out) < 0)
        return 0;
    if (exec) {
        if (out->pvd_name || i >= argc || !argv[i][0])
            return 0;
        out->pvd_name = argv[i++];
        if (i < argc && strcmp(argv[i], "--") == 0)
            i++;
    }
    if (!out->pvd_name || i >= argc)
        return 0;
    out->command = argv + i;
    return 1;
}
