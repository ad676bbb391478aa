/* strict_empty_env_child PROGRAM [ARGS...]: run PROGRAM with an empty environment.
 *
 * Forks; the child calls execve(PROGRAM, {PROGRAM, ARGS..., NULL}, {NULL}), so it starts
 * with no variable at all (no LD_PRELOAD, no PATH: PROGRAM is a path).  The parent waits and
 * exits with the child's exit status (128 + N when signal N killed it; 127 when execve
 * failed, with a line on stderr).  Usage errors: exit 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char *empty[] = { NULL };
    int status;
    pid_t pid;

    if (argc < 2) {
        fprintf(stderr, "usage: %s PROGRAM [ARGS...]\n", argv[0]);
        return 2;
    }
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 127;
    }
    if (pid == 0) {
        execve(argv[1], argv + 1, empty);
        fprintf(stderr, "%s: execve %s: %s\n", argv[0], argv[1], strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            return 127;
        }
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
