/*
 * The listening side shared by benchtool's acceptor and benchtls: one epoll set holding a
 * listening socket per address (data.u64 = 1<<32 | fd), a signalfd for SIGUSR1/SIGTERM/SIGINT
 * (2<<32 | fd) and, added by the caller, connections (their fd). Included, not linked: each
 * tool is one static executable.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

enum { ACCEPTOR_LISTENER = 1, ACCEPTOR_SIGNALS = 2 };

/* Listens on every address; returns the epoll descriptor, or -1 (after saying why). The
 * signalfd is stored in *signals. */
static int acceptor_open(const char *tool, int port, int naddr, char **addrs, int *signals) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_create1");
        return -1;
    }
    for (int i = 0; i < naddr; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
        if (inet_pton(AF_INET, addrs[i], &sa.sin_addr) != 1) {
            fprintf(stderr, "%s: bad address %s\n", tool, addrs[i]);
            return -1;
        }
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 4096) < 0) {
            perror(addrs[i]);
            return -1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((unsigned long long)ACCEPTOR_LISTENER << 32) | (unsigned)s};
        epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    *signals = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    struct epoll_event sev = {.events = EPOLLIN, .data.u64 = ((unsigned long long)ACCEPTOR_SIGNALS << 32) | (unsigned)*signals};
    epoll_ctl(ep, EPOLL_CTL_ADD, *signals, &sev);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("listening\n");
    return ep;
}

/* Reads the queued signals: prints "accepted N" for each; false once one asks to exit. */
static int acceptor_signals(int signals, unsigned long long accepted) {
    struct signalfd_siginfo si;
    while (read(signals, &si, sizeof si) == sizeof si) {
        printf("accepted %llu\n", accepted);
        if (si.ssi_signo != SIGUSR1) return 0;
    }
    return 1;
}
