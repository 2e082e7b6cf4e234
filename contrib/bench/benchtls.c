/*
 * benchtls: the TLS web server of the SSL_GET benchmark (tcpcheck-cpu.sh with CHECK=SSL_GET),
 * `benchtool acceptor --http` behind TLS. `openssl s_server` serves one connection at a time,
 * which would time the server, not the checkers.
 *
 *   benchtls PORT CERT KEY ADDR...
 *       Listens on every ADDR:PORT; each connection: a non-blocking TLS handshake (OpenSSL),
 *       read the request, answer a fixed page (HTTP/1.0 200, Content-Length 15), close_notify,
 *       close. Prints "listening" once bound; SIGUSR1 prints "accepted N" (cumulative);
 *       SIGTERM/SIGINT the same, then exits.
 *
 * Built statically against Debian's libssl.a/libcrypto.a by tcpcheck-cpu.sh, so the guest needs
 * no library for it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acceptor.h"

static const char page[] = "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: 15\r\n\r\n<html>ok</html>";

enum { MAXFD = 65536 };
static SSL *sessions[MAXFD];
static int answered[MAXFD];

static int die(const char *what) {
    perror(what);
    return 1;
}

static void finish(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    if (sessions[fd]) SSL_free(sessions[fd]);
    sessions[fd] = NULL;
    answered[fd] = 0;
    close(fd);
}

/* Moves one connection on; keeps it watched for what OpenSSL waits for. */
static void step(int ep, int fd) {
    SSL *ssl = sessions[fd];
    int r;
    if (!SSL_is_init_finished(ssl)) {
        r = SSL_accept(ssl);
        if (r != 1) goto wait;
    }
    if (!answered[fd]) {
        char request[2048];
        r = SSL_read(ssl, request, sizeof request);
        if (r <= 0) goto wait;
        if (SSL_write(ssl, page, sizeof page - 1) <= 0) {
            finish(ep, fd);
            return;
        }
        answered[fd] = 1;
    }
    SSL_shutdown(ssl);
    finish(ep, fd);
    return;
wait:
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ: {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (unsigned)fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        return;
    }
    case SSL_ERROR_WANT_WRITE: {
        struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (unsigned)fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        return;
    }
    default:
        ERR_clear_error();
        finish(ep, fd);
    }
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: benchtls PORT CERT KEY ADDR...\n");
        return 64;
    }
    int port = atoi(argv[1]);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    int sfd;
    int ep = acceptor_open("benchtls", port, argc - 4, argv + 4, &sfd);
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
                step(ep, fd);
            } else if (kind == ACCEPTOR_SIGNALS) {
                if (!acceptor_signals(sfd, accepted)) return 0;
            } else {
                for (;;) {
                    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                    if (c < 0) break;
                    if (c >= MAXFD) {
                        close(c);
                        continue;
                    }
                    accepted++;
                    sessions[c] = SSL_new(ctx);
                    SSL_set_fd(sessions[c], c);
                    struct epoll_event cev = {.events = EPOLLIN, .data.u64 = (unsigned)c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                    step(ep, c);
                }
            }
        }
    }
}
