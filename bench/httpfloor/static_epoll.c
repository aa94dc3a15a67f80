/*
 * static_epoll.c — the smallest HTTP/1.1 keep-alive server that answers
 * every request with the same static "200 ok": one epoll loop per thread,
 * each thread with its own SO_REUSEPORT listener. It frames requests by
 * Content-Length only (what the benchmark sends) and does nothing else.
 * A yardstick for bench/httpfloor/run.sh, not part of kinko.
 *
 *   static_epoll PORT THREADS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536

static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
			     "x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\n"
			     "Content-Length: 2\r\n\r\nok";

struct conn {
	int fd;
	size_t n;
	char buf[BUF];
};

static int port;

/* The length of the first whole request in c->buf, or 0 if it is not in yet. */
static size_t whole_request(const struct conn *c)
{
	const char *end = memmem(c->buf, c->n, "\r\n\r\n", 4);
	if (end == NULL)
		return 0;
	size_t head = (size_t)(end - c->buf) + 4;
	size_t body = 0;
	for (const char *p = c->buf; p < end; p++) {
		if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
			body = (size_t)strtoul(p + 15, NULL, 10);
	}
	return c->n >= head + body ? head + body : 0;
}

/* Reads what is there and answers every whole request; false once the peer is gone. */
static int serve(struct conn *c)
{
	for (;;) {
		ssize_t r = recv(c->fd, c->buf + c->n, BUF - c->n, 0);
		if (r == 0)
			return 0;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		c->n += (size_t)r;
		size_t len;
		while ((len = whole_request(c)) > 0) {
			if (send(c->fd, answer, sizeof answer - 1, MSG_NOSIGNAL) < 0)
				return 0;
			memmove(c->buf, c->buf + len, c->n - len);
			c->n -= len;
		}
		if (c->n == BUF)
			return 0;
	}
}

static void *worker(void *arg)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1024) != 0) {
		perror("listen");
		exit(1);
	}
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c == NULL) {
				int fd;
				while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					c = calloc(1, sizeof *c);
					c->fd = fd;
					struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
				}
				continue;
			}
			if (!serve(c)) {
				close(c->fd);
				free(c);
			}
		}
	}
	return arg;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: static_epoll PORT THREADS\n");
		return 2;
	}
	port = atoi(argv[1]);
	int threads = atoi(argv[2]);
	pthread_t t;
	for (int i = 1; i < threads; i++)
		pthread_create(&t, NULL, worker, NULL);
	worker(NULL);
	return 0;
}
