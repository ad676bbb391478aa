/* args.c: the launcher form, exactly as pvdrun/fastlaunch.py's launcher_arguments() reads it
 * (tests/test_launch_native.py runs both over the same argument vectors).  Anything it does not
 * accept goes to the Python command line, which accepts or refuses it. */
#include <string.h>

#include "launcher.h"

static int is_launcher_form(const char *first)
{
    return strcmp(first, "--pvd") == 0 || strcmp(first, "-p") == 0 || strncmp(first, "--pvd=", 6) == 0;
}

int parse_launch_args(int argc, char **argv, struct launch_args *out)
{
    out->pvd_name = NULL;
    out->socket = NULL;
    out->strict = -1;
    out->command = NULL;
    if (argc < 2 || !is_launcher_form(argv[1]))
        return 0;
    int i = 1;
    while (i < argc) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(arg, "--strict") == 0 || strcmp(arg, "--no-strict") == 0) {
            out->strict = arg[2] == 's';
            i++;
        } else if ((strcmp(arg, "--pvd") == 0 || strcmp(arg, "-p") == 0) && i + 1 < argc) {
            out->pvd_name = argv[i + 1];
            i += 2;
        } else if (strcmp(arg, "--socket") == 0 && i + 1 < argc) {
            out->socket = argv[i + 1];
            i += 2;
        } else if (strncmp(arg, "--pvd=", 6) == 0) {
            out->pvd_name = arg + 6;
            i++;
        } else if (strncmp(arg, "--socket=", 9) == 0) {
            out->socket = arg + 9;
            i++;
        } else if (arg[0] == '-') {
            return 0; /* -h, --help, -pNAME, an unknown option, a missing value, "-" */
        } else {
            break;
        }
        if ((out->pvd_name && !*out->pvd_name) || (out->socket && !*out->socket))
            return 0;
    }
    /* launch() drops one more leading "--" of the command (pvdrun run -- -- CMD). */
    if (i < argc && strcmp(argv[i], "--") == 0)
        i++;
    if (i >= argc || !out->pvd_name)
        return 0;
    out->command = argv + i;
    return 1;
}
