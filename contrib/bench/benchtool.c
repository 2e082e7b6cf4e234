/*
 * benchtool: small helpers for the kernel-lab benchmarks (ipvs-apply.guest.sh,
 * tcpcheck-cpu.guest.sh), where busybox lacks a nanosecond clock and a cheap TCP listener.
 * Built statically by the host-side scripts (gcc -O2 -static), so it costs one cheap exec in the
 * TCG guest.
 *
 *   benchtool now
 *       CLOCK_MONOTONIC in nanoseconds.
 *   benchtool waitlog FILE PATTERN TIMEOUT_MS [PID]
 *       Waits (inotify, plus a 5 ms poll as a fallback) until FILE contains a line with PATTERN;
 *       prints CLOCK_MONOTONIC ns at the moment it saw it, then the matching line on stderr.
 *       Exits 1 on timeout, 2 if PID (when given) has exited first.
 *   benchtool waitexit PID TIMEOUT_MS
 *       Waits until PID is gone or a zombie (polls /proc every 2 ms); prints CLOCK_MONOTONIC ns
 *       then. Exits 1 on timeout.
 *   benchtool cputicks PID
 *       Prints "TOTAL USER SYS NPROCS" in clock ticks (USER_HZ): utime+cutime and stime+cstime
 *       from /proc/PID/stat, summed over PID and all its live descendants (cutime/cstime keep
 *       the time of children already reaped).
 *   benchtool adverts IFNAME SECONDS
 *       Prints the kernel's timestamp (CLOCK_REALTIME, SO_TIMESTAMPNS) of every VRRP packet
 *       (IP protocol 112) sent or received on IFNAME for SECONDS, one "S.NNNNNNNNN" a line: the
 *       advert-jitter benchmark's wire (busybox has no tcpdump). An ETH_P_ALL packet socket, so
 *       a dummy interface's outgoing packets are seen too.
 *   benchtool nlcount IFNAME
 *       Counts the netlink requests (messages with NLM_F_REQUEST) every process of the network
 *       namespace sends, as an nlmon device IFNAME shows them, until SIGINT or SIGTERM; then
 *       prints "GENL RTNL OTHER DROPPED": requests to generic netlink (IPVS, and the family
 *       lookups), to rtnetlink, to any other protocol, and the packets the socket dropped (the
 *       counts mean nothing unless that is 0). Messages, not syscalls: one sendmsg may carry a
 *       batch. It replaces strace for the reload benchmark: nothing is traced, so the daemon
 *       runs at its own speed, and a socket opened and closed within the window is counted too.
 *   benchtool acceptor PORT ADDR...
 *       Listens on every ADDR:PORT, accepts and closes at once (epoll, accept4 in a loop).
 *   benchtool acceptor --http PORT ADDR...
 *       The same, but each connection is a web server's: read the request, answer a fixed
 *       page (HTTP/1.0 200, Content-Length), close. For HTTP_GET benchmarks.
 *       SIGUSR1: prints "accepted N" (cumulative) on stdout; SIGTERM/SIGINT: the same, then exits.
 *       Prints "listening" once every socket is bound.
 *   benchtool scrape PORT COUNT [PREFIX]
 *       COUNT times, one after the other: GET /metrics from 127.0.0.1:PORT (HTTP/1.0, a new
 *       connection each), read to the end. Prints "BYTES SAMPLES PREFIXED" of the last answer:
 *       its body's size, its sample lines (not comments) and those starting with PREFIX
 *       (default keepalived_lvs_).
 *       Exits 1 if an answer is not HTTP 200. The scrape benchmark's client, the same on the
 *       host and in the guest (busybox's wget would cost an exec per scrape).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <net/if.h>

#include "acceptor.h"

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int die(const char *what) {
    perror(what);
    return 3;
}

/* ---- waitexit ------------------------------------------------------------------------------ */

/* 1: PID exists and is not a zombie; 0: gone or zombie. */
static int alive(int pid) {
    char path[64], st[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, st, sizeof st - 1);
    close(fd);
    if (n <= 0) return 0;
    st[n] = 0;
    char *r = strrchr(st, ')');
    return !(r && r[1] == ' ' && (r[2] == 'Z' || r[2] == 'X'));
}

static int waitexit(int pid, long timeout_ms) {
    long long deadline = now_ns() + timeout_ms * 1000000LL;
    while (alive(pid)) {
        if (now_ns() > deadline) return 1;
        usleep(2000);
    }
    printf("%lld\n", now_ns());
    return 0;
}

/* ---- waitlog ------------------------------------------------------------------------------- */

static int waitlog(const char *file, const char *pattern, long timeout_ms, int pid) {
    long long deadline = now_ns() + timeout_ms * 1000000LL;
    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    int fd = -1;
    size_t cap = 1 << 16, len = 0, scanned = 0;
    char *buf = malloc(cap);
    if (!buf) return die("malloc");
    for (;;) {
        /* Checked before reading, so that a line written just before the exit is still seen. */
        int gone = pid > 0 && !alive(pid);
        if (fd < 0) {
            fd = open(file, O_RDONLY | O_CLOEXEC);
            if (fd >= 0 && in >= 0) inotify_add_watch(in, file, IN_MODIFY);
        }
        if (fd >= 0) {
            for (;;) {
                if (cap - len < 4096) {
                    cap *= 2;
                    buf = realloc(buf, cap);
                    if (!buf) return die("realloc");
                }
                ssize_t n = read(fd, buf + len, cap - len - 1);
                if (n <= 0) break;
                len += (size_t)n;
            }
            buf[len] = 0;
            /* Look only at complete lines not yet scanned. */
            char *start = buf + scanned, *nl;
            while ((nl = memchr(start, '\n', (size_t)(buf + len - start))) != NULL) {
                *nl = 0;
                if (strstr(start, pattern)) {
                    long long t = now_ns();
                    printf("%lld\n", t);
                    fprintf(stderr, "%s\n", start);
                    return 0;
                }
                *nl = '\n';
                start = nl + 1;
            }
            scanned = (size_t)(start - buf);
        }
        if (gone) return 2;
        long long left = deadline - now_ns();
        if (left <= 0) return 1;
        struct pollfd p = {.fd = in, .events = POLLIN};
        int ms = left / 1000000LL < 5 ? (int)(left / 1000000LL) + 1 : 5;
        if (in >= 0 && fd >= 0) {
            if (poll(&p, 1, ms) > 0) {
                char ev[4096];
                while (read(in, ev, sizeof ev) > 0) {}
            }
        } else {
            usleep(ms * 1000);
        }
    }
}

/* ---- cputicks ------------------------------------------------------------------------------ */

struct proc { int pid, ppid; long long user, sys; };

static int read_stat(int pid, struct proc *p) {
    char path[64], st[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, st, sizeof st - 1);
    close(fd);
    if (n <= 0) return -1;
    st[n] = 0;
    char *r = strrchr(st, ')'); /* comm may contain spaces */
    if (!r) return -1;
    /* After ") ": state(3) ppid(4) pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15) cutime(16) cstime(17) */
    char state;
    int ppid;
    long long f[13];
    if (sscanf(r + 2, "%c %d %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld",
               &state, &ppid, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8],
               &f[9], &f[10], &f[11], &f[12]) != 15)
        return -1;
    p->pid = pid;
    p->ppid = ppid;
    p->user = f[9] + f[11];
    p->sys = f[10] + f[12];
    return 0;
}

static int cputicks(int root) {
    static struct proc procs[8192];
    int n = 0;
    DIR *d = opendir("/proc");
    if (!d) return die("/proc");
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 8192) {
        int pid = atoi(e->d_name);
        if (pid > 0 && read_stat(pid, &procs[n]) == 0) n++;
    }
    closedir(d);
    /* Mark the tree: repeat until no new member (the table is small). */
    static char in[8192];
    int found = 0;
    for (int i = 0; i < n; i++) in[i] = procs[i].pid == root, found |= in[i];
    if (!found) {
        fprintf(stderr, "benchtool: no process %d\n", root);
        return 1;
    }
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < n; i++) {
            if (in[i]) continue;
            for (int j = 0; j < n; j++)
                if (in[j] && procs[j].pid == procs[i].ppid) { in[i] = 1; changed = 1; break; }
        }
    }
    long long user = 0, sys = 0;
    int members = 0;
    for (int i = 0; i < n; i++) if (in[i]) user += procs[i].user, sys += procs[i].sys, members++;
    printf("%lld %lld %lld %d\n", user + sys, user, sys, members);
    return 0;
}

/* ---- adverts ------------------------------------------------------------------------------- */

static int adverts(const char *ifname, long seconds) {
    int s = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (s < 0) return die("socket(AF_PACKET)");
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)if_nametoindex(ifname)};
    if (sll.sll_ifindex == 0) return die(ifname);
    if (bind(s, (struct sockaddr *)&sll, sizeof sll) < 0) return die("bind(AF_PACKET)");
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    setvbuf(stdout, NULL, _IOLBF, 0);
    long long until = now_ns() + seconds * 1000000000LL;
    for (;;) {
        long long left = until - now_ns();
        if (left <= 0) return 0;
        struct pollfd p = {.fd = s, .events = POLLIN};
        if (poll(&p, 1, (int)(left / 1000000) + 1) <= 0) continue;
        unsigned char packet[2048];
        char control[256];
        struct sockaddr_ll from;
        struct iovec iov = {.iov_base = packet, .iov_len = sizeof packet};
        struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
                           .msg_control = control, .msg_controllen = sizeof control};
        ssize_t n = recvmsg(s, &m, 0);
        if (n < 20 || from.sll_protocol != htons(ETH_P_IP) || packet[9] != 112) continue;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(c), sizeof ts);
                printf("%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
            }
        }
    }
}

static int nlcount(const char *ifname) {
    int s = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (s < 0) return die("socket(AF_PACKET)");
    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)if_nametoindex(ifname)};
    if (sll.sll_ifindex == 0) return die(ifname);
    if (bind(s, (struct sockaddr *)&sll, sizeof sll) < 0) return die("bind(AF_PACKET)");
    int size = 32 << 20;
    if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    int sfd = signalfd(-1, &stop, SFD_CLOEXEC);
    if (sfd < 0) return die("signalfd");
    long long genl = 0, rtnl = 0, other = 0;
    static unsigned char packet[1 << 18];
    for (int stopping = 0;;) {
        struct pollfd p[2] = {{.fd = s, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        /* After the signal, drain what is queued, then stop. */
        if (poll(p, 2, stopping ? 0 : -1) < 0 && errno != EINTR) return die("poll");
        if (p[1].revents & POLLIN) stopping = 1;
        if (!(p[0].revents & POLLIN)) {
            if (stopping) break;
            continue;
        }
        struct sockaddr_ll from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(s, packet, sizeof packet, MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
        if (n < 0) continue;
        if (n > (ssize_t)sizeof packet) n = sizeof packet;
        unsigned protocol = ntohs(from.sll_protocol);
        for (ssize_t at = 0; at + (ssize_t)sizeof(struct nlmsghdr) <= n;) {
            struct nlmsghdr h;
            memcpy(&h, packet + at, sizeof h);
            if (h.nlmsg_len < sizeof h) break;
            if (h.nlmsg_flags & NLM_F_REQUEST) {
                if (protocol == NETLINK_GENERIC) genl++;
                else if (protocol == NETLINK_ROUTE) rtnl++;
                else other++;
            }
            at += NLMSG_ALIGN(h.nlmsg_len);
        }
    }
    struct tpacket_stats stats = {0};
    socklen_t len = sizeof stats;
    getsockopt(s, SOL_PACKET, PACKET_STATISTICS, &stats, &len);
    printf("%lld %lld %lld %u\n", genl, rtnl, other, stats.tp_drops);
    return 0;
}

/* ---- acceptor ------------------------------------------------------------------------------ */

static const char page[] = "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: 15\r\n\r\n<html>ok</html>";

static int acceptor(int port, int naddr, char **addrs, int http) {
    int sfd;
    int ep = acceptor_open("benchtool", port, naddr, addrs, &sfd);
    if (ep < 0) return 3;
    unsigned long long accepted = 0;
    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = (int)(evs[i].data.u64 & 0xffffffffU);
            unsigned kind = (unsigned)(evs[i].data.u64 >> 32);
            if (kind == 0) {
                /* A web connection with its request in: answer and close. */
                char request[2048];
                ssize_t r = read(fd, request, sizeof request);
                if (r < 0 && errno == EAGAIN) continue;
                if (r > 0) {
                    ssize_t w = write(fd, page, sizeof page - 1);
                    (void)w;
                }
                close(fd);
                continue;
            }
            if (kind == ACCEPTOR_SIGNALS) {
                if (!acceptor_signals(sfd, accepted)) return 0;
                continue;
            }
            for (;;) {
                int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | (http ? SOCK_NONBLOCK : 0));
                if (c < 0) break;
                accepted++;
                if (!http) {
                    close(c);
                    continue;
                }
                struct epoll_event cev = {.events = EPOLLIN, .data.u64 = (unsigned)c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
            }
        }
    }
}

/* ---- scrape ------------------------------------------------------------------------------- */

static int scrape(int port, long count, const char *prefix) {
    size_t prefix_len = strlen(prefix);
    static char buf[16 << 20];
    size_t len = 0;
    for (long i = 0; i < count; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) return die("socket");
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) return die("connect");
        const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if (write(s, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) return die("write");
        len = 0;
        for (;;) {
            if (len == sizeof buf) { fprintf(stderr, "benchtool: an answer over 16 MiB\n"); return 1; }
            ssize_t n = read(s, buf + len, sizeof buf - len);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return die("read");
            if (n == 0) break;
            len += (size_t)n;
        }
        close(s);
        if (len < 12 || memcmp(buf + 9, "200", 3) != 0) {
            fprintf(stderr, "benchtool: scrape %ld: not HTTP 200: %.*s\n", i + 1, (int)(len < 80 ? len : 80), buf);
            return 1;
        }
    }
    char *body = memmem(buf, len, "\r\n\r\n", 4);
    if (!body) { fprintf(stderr, "benchtool: an answer without a header's end\n"); return 1; }
    body += 4;
    size_t body_len = (size_t)(buf + len - body);
    long samples = 0, prefixed = 0;
    for (char *line = body; line < buf + len;) {
        char *end = memchr(line, '\n', (size_t)(buf + len - line));
        if (!end) end = buf + len;
        if (end > line && *line != '#') {
            samples++;
            if ((size_t)(end - line) >= prefix_len && memcmp(line, prefix, prefix_len) == 0) prefixed++;
        }
        line = end + 1;
    }
    printf("%zu %ld %ld\n", body_len, samples, prefixed);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "now") == 0) {
        printf("%lld\n", now_ns());
        return 0;
    }
    if (argc >= 5 && strcmp(argv[1], "waitlog") == 0)
        return waitlog(argv[2], argv[3], atol(argv[4]), argc >= 6 ? atoi(argv[5]) : 0);
    if (argc == 4 && strcmp(argv[1], "waitexit") == 0) return waitexit(atoi(argv[2]), atol(argv[3]));
    if (argc == 3 && strcmp(argv[1], "cputicks") == 0) return cputicks(atoi(argv[2]));
    if (argc == 3 && strcmp(argv[1], "nlcount") == 0) return nlcount(argv[2]);
    if (argc == 4 && strcmp(argv[1], "adverts") == 0) return adverts(argv[2], atol(argv[3]));
    if (argc >= 5 && strcmp(argv[1], "acceptor") == 0 && strcmp(argv[2], "--http") == 0)
        return acceptor(atoi(argv[3]), argc - 4, argv + 4, 1);
    if (argc >= 4 && strcmp(argv[1], "acceptor") == 0) return acceptor(atoi(argv[2]), argc - 3, argv + 3, 0);
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "scrape") == 0)
        return scrape(atoi(argv[2]), atol(argv[3]), argc == 5 ? argv[4] : "keepalived_lvs_");
    fprintf(stderr, "usage: benchtool now | waitlog FILE PATTERN TIMEOUT_MS [PID] | waitexit PID"
                    " TIMEOUT_MS | cputicks PID | adverts IFNAME SECONDS | acceptor [--http] PORT ADDR... | scrape PORT COUNT [PREFIX]\n");
    return 64;
}
