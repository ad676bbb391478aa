/* pvd_list.c: a small PvD-aware program using pvd.h (see docs/c-api.md).
 *
 * Lists the PvDs with their attributes (R14, R16), then, given a PvD name and an address,
 * opens a TCP connection to ADDRESS:PORT inside that PvD only (per-socket scope, R24) and
 * says which PvD the socket belongs to (R8).
 *
 *   cc -I"$(dirname "$(pvdrun shim-path)")" -o pvd_list examples/pvd_list.c \
 *      "$(pvdrun shim-path)" -Wl,-rpath,"$(dirname "$(pvdrun shim-path)")"
 *   ./pvd_list                       # list
 *   ./pvd_list ispa 198.51.100.80 80 # connect through PvD "ispa" only */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pvd.h"

static void print_pvd(pvd_handle_t handle)
{
    struct pvd_info info;
    if (pvd_get_info(handle, &info) < 0) {
        printf("handle %u: %s\n", (unsigned)handle, strerror(errno));
        return;
    }
    printf("%s handle=%u", info.id, (unsigned)info.handle);
    for (unsigned int i = 0; i < info.n_interfaces; i++)
        printf(" if=%s:%u", info.interfaces[i], info.ifindexes[i]);
    for (unsigned int i = 0; i < info.n_addresses; i++)
        printf(" addr=%s", info.addresses[i]);
    for (unsigned int i = 0; i < info.n_dns; i++)
        printf(" dns=%s", info.dns[i]);
    printf("\n");
}

static int connect_in(const char *pvd_name, const char *address, int port)
{
    pvd_handle_t handle, socket_pvd = PVD_HANDLE_UNSPEC;
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, address, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        len = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, address, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
        len = sizeof(struct sockaddr_in6);
    } else {
        fprintf(stderr, "pvd_list: %s is not an IP address\n", address);
        return 2;
    }
    if (pvd_find(pvd_name, &handle) < 0) {
        fprintf(stderr, "pvd_list: no PvD %s: %s\n", pvd_name, strerror(errno));
        return 3;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || pvd_bind_socket(fd, handle) < 0) {
        fprintf(stderr, "pvd_list: socket in PvD %s: %s\n", pvd_name, strerror(errno));
        return 1;
    }
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        fprintf(stderr, "pvd_list: connect through %s: %s\n", pvd_name, strerror(errno));
        close(fd);
        return 1;
    }
    pvd_get_socket_scope(fd, &socket_pvd);
    printf("connected to %s port %d through PvD %s (socket's PvD handle %u)\n", address, port, pvd_name,
           (unsigned)socket_pvd);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    pvd_handle_t handles[64];
    if (argc == 4)
        return connect_in(argv[1], argv[2], atoi(argv[3]));
    if (argc != 1) {
        fprintf(stderr, "usage: %s [PVD ADDRESS PORT]\n", argv[0]);
        return 2;
    }
    int n = pvd_list(handles, 64);
    if (n < 0) {
        fprintf(stderr, "pvd_list: %s\n", strerror(errno));
        return 1;
    }
    printf("%d PvD(s); this process: %u, this thread: %u\n", n, (unsigned)pvd_get_process_scope(),
           (unsigned)pvd_get_thread_scope());
    for (int i = 0; i < n && i < 64; i++)
        print_pvd(handles[i]);
    return 0;
}
