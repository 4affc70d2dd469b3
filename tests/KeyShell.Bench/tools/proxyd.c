/* proxyd: the least a proxy can do on this machine, as upstream mode's yardstick ("the limit" for a proxy, as
 * limitd is for a server). N threads share one non-blocking listener (EPOLLEXCLUSIVE); each accepted connection
 * gets its own connection to the upstream on the same thread, and every read on either side is sent to the
 * other at once with one send. No framing, no log, no timeouts: a front's rate divided by proxyd's, in the same
 * run, says how close to the kernel's cost of forwarding it is. Made for request-reply loads (a send that the
 * client cannot take at once drops the pair), on connections that stay open while it is measured.
 * Usage: proxyd PORT UPSTREAM_PORT [THREADS=2]   (binds and connects on 127.0.0.1 only; stop it with a signal) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536
static int listener, upstream_port, peer[MAX_FDS];

static int connect_upstream(void) {
  int one = 1, u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(upstream_port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (u < 0 || connect(u, (struct sockaddr *)&a, sizeof a)) { if (u >= 0) close(u); return -1; }
  setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return u;
}

static void close_pair(int fd) {
  int other = peer[fd];
  peer[fd] = -1; /* a later event for either in this batch finds no pair and is skipped */
  if (other >= 0) { peer[other] = -1; close(other); }
  close(fd);
}

static void *forward(void *unused) {
  (void)unused;
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = listener}, evs[256];
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  static __thread char buffer[64 * 1024];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == listener) {
        int c;
        while ((c = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          int u = connect_upstream(), one = 1;
          if (u < 0 || c >= MAX_FDS || u >= MAX_FDS) { close(c); if (u >= 0) close(u); continue; }
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          peer[c] = u;
          peer[u] = c;
          struct epoll_event e = {.events = EPOLLIN, .data.fd = c}, f = {.events = EPOLLIN, .data.fd = u};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
          epoll_ctl(ep, EPOLL_CTL_ADD, u, &f);
        }
        continue;
      }
      if (peer[fd] < 0) continue;
      ssize_t r = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (r < 0 && errno == EAGAIN) continue;
      if (r <= 0 || send(peer[fd], buffer, (size_t)r, MSG_NOSIGNAL) != r) close_pair(fd);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: proxyd PORT UPSTREAM_PORT [THREADS]\n"); return 2; }
  int port = atoi(argv[1]), threads = argc > 3 ? atoi(argv[3]) : 2, one = 1;
  if (threads < 1) threads = 1;
  memset(peer, -1, sizeof peer);
  upstream_port = atoi(argv[2]);
  listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(listener, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(listener, (struct sockaddr *)&a, sizeof a) || listen(listener, 4096)) { perror("proxyd"); return 1; }
  pthread_t t[64];
  for (int i = 0; i < threads && i < 64; i++) pthread_create(&t[i], NULL, forward, NULL);
  pthread_join(t[0], NULL);
  return 0;
}
