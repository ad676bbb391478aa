/* hostile_preinit: network calls from .preinit_array, before any library's constructor.
 *
 * usage: hostile_preinit TOKEN FAMILY DST PORT
 *
 * The executable's .preinit_array runs before the constructors of every shared object,
 * LD_PRELOADed ones included, so a preload library's hooks may run before its own
 * initialisation.  The preinit function (glibc passes it argc, argv, envp) opens a UDP
 * socket and sends "TOKEN:preinit_send;" to DST:PORT; main() then prints that result, waits
 * for an answer on that socket (the lab's UDP echo answers "ISP CLIENT PAYLOAD"), and does
 * the same with a socket created in main().  Output "CASE ok|ERRNO_NAME", and
 * "CASE_reply FIRST_WORD" or "CASE_reply none". */
#define _GNU_SOURCE
#include "hostile.h"

#include <poll.h>
#include <unistd.h>

static struct sockaddr_storage dst;
static socklen_t dst_len;
static int family;
static int preinit_fd = -1;
static int preinit_errno = -1; /* -1: preinit did not run */
static int preinit_ran;

static int parse(int argc, char **argv)
{
    if (argc != 5)
        return -1;
    family = atoi(argv[2]) == 6 ? AF_INET6 : AF_INET;
    dst_len = hostile_sockaddr(family, argv[3], atoi(argv[4]), &dst);
    return dst_len ? 0 : -1;
}

/* Send "TOKEN:NAME;" on fd; 0 or the errno. */
static int send_named(int fd, const char *token, const char *name)
{
    char text[160];
    size_t n = hostile_text(text, sizeof text, token, name);
    return sendto(fd, text, n, 0, (struct sockaddr *)&dst, dst_len) < 0 ? errno : 0;
}

static void early(int argc, char **argv, char **envp)
{
    (void)envp;
    preinit_ran = 1;
    if (parse(argc, argv) < 0)
        return;
    preinit_fd = socket(family, SOCK_DGRAM, 0);
    preinit_errno = preinit_fd < 0 ? errno : send_named(preinit_fd, argv[1], "preinit_send");
}

__attribute__((section(".preinit_array"), used)) static void (*const preinit_hook)(int, char **, char **) = early;

static void print_errno(const char *name, int e)
{
    const char *s = e ? strerrorname_np(e) : "ok";
    printf("%s %s\n", name, s ? s : "E?");
}

/* The first word of an answer on fd within 3 s, or "none". */
static void print_reply(const char *name, int fd)
{
    char buf[512];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t n = -1;
    if (fd >= 0 && poll(&p, 1, 3000) == 1)
        n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    if (n <= 0) {
        printf("%s_reply none\n", name);
        return;
    }
    buf[n] = '\0';
    buf[strcspn(buf, " \n")] = '\0';
    printf("%s_reply %s\n", name, buf);
}

int main(int argc, char **argv)
{
    if (parse(argc, argv) < 0) {
        fprintf(stderr, "usage: %s TOKEN FAMILY DST PORT\n", argv[0]);
        return 2;
    }
    printf("preinit_ran %s\n", preinit_ran ? "yes" : "no");
    if (preinit_fd < 0)
        print_errno("preinit_socket", preinit_errno < 0 ? EIO : preinit_errno);
    else
        print_errno("preinit_send", preinit_errno);
    print_reply("preinit", preinit_fd);
    int fd = socket(family, SOCK_DGRAM, 0);
    print_errno("main_send", fd < 0 ? errno : send_named(fd, argv[1], "main_send"));
    print_reply("main", fd);
    fflush(stdout);
    puts("done");
    return 0;
}
