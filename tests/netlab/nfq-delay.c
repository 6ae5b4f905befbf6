/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nfq-delay: the network lab's delay shaping (`netlab shape HOST delay MS`).
 *
 *   nfq-delay QUEUE DELAY_MS [JITTER_MS]
 *
 * This kernel has no sch_netem, so a delay is made in user space: iptables sends the
 * packets of a link to NFQUEUE QUEUE (`--queue-bypass`: they pass undelayed while no
 * program listens), and this program holds each one until DELAY_MS after it arrived, then
 * accepts it. With JITTER_MS each packet is held a further uniform random 0..JITTER_MS ms,
 * but never released before the packet ahead of it: packets keep their order, as on a real
 * path where jitter comes from queues (reordering there is rare), so a packet drawn short
 * behind one drawn long leaves with it, the delays of neighbours are correlated, and every
 * packet's extra delay still lies in 0..JITTER_MS. Only the packet's id is kept (the kernel
 * holds the packet), in arrival order: due times never fall in that order (the constant
 * delay, and the jitter by the rule above), so a ring is all it needs. When
 * the ring is full a packet passes at once (counted), as the kernel does with its own
 * queue (fail-open). "ready" on stdout says the queue is bound. SIGTERM or SIGINT: every
 * held packet is accepted at once, the queue is unbound, the counts go to stderr, exit 0.
 * A simple poll loop: ppoll with the signals unblocked only while waiting, so a signal is
 * never lost between the check and the wait. Runs inside the host's network namespace. */
/* glibc's socket headers before the kernel's, or their definitions clash. */
#include <arpa/inet.h>
#include <sys/socket.h>

#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING_SIZE 65536u
#define RECV_BUFFER (8u << 20) /* packet bursts must not overflow the netlink socket */

typedef struct {
  uint32_t id;
  uint64_t due_ns;
} Held;

typedef struct {
  struct nfq_handle *handle;
  struct nfq_q_handle *queue;
  uint64_t delay_ns, jitter_ns;
  uint64_t random_state; /* xorshift64*: the jitter draws */
  uint64_t last_due_ns;  /* the due time of the packet last held */
  Held ring[RING_SIZE];
  uint32_t head, tail; /* held: tail..head-1 (unsigned wrap-around) */
  uint64_t delayed, passed_full, dropped_by_kernel;
} Delay;

static volatile sig_atomic_t stop_requested;

static void
on_signal(int signum)
{
  (void)signum;
  stop_requested = 1;
}

static uint64_t
now_ns(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A uniform draw in 0..max (xorshift64*, Vigna 2016): the jitter needs no more. */
static uint64_t
random_up_to(Delay *d, uint64_t max)
{
  d->random_state ^= d->random_state >> 12;
  d->random_state ^= d->random_state << 25;
  d->random_state ^= d->random_state >> 27;
  uint64_t r = d->random_state * 0x2545F4914F6CDD1DULL;
  return max == 0 ? 0 : r % (max + 1);
}

/* When a packet that came now is due: the delay plus its jitter, not before the one ahead. */
static uint64_t
due_time(Delay *d)
{
  uint64_t due = now_ns() + d->delay_ns + random_up_to(d, d->jitter_ns);
  if (due < d->last_due_ns)
    due = d->last_due_ns;
  d->last_due_ns = due;
  return due;
}

static void
accept_packet(Delay *d, uint32_t id)
{
  nfq_set_verdict(d->queue, id, NF_ACCEPT, 0, NULL);
}

/* A packet came: hold its id until its due time (or pass it when the ring is full). */
static int
on_packet(struct nfq_q_handle *queue, struct nfgenmsg *message, struct nfq_data *data, void *user)
{
  (void)queue;
  (void)message;
  Delay *d = user;
  struct nfqnl_msg_packet_hdr *header = nfq_get_msg_packet_hdr(data);
  if (header == NULL)
    return 0;
  uint32_t id = ntohl(header->packet_id);
  if (d->head - d->tail >= RING_SIZE) {
    d->passed_full++;
    accept_packet(d, id);
    return 0;
  }
  d->ring[d->head % RING_SIZE] = (Held){ id, due_time(d) };
  d->head++;
  d->delayed++;
  return 0;
}

/* Accept every held packet due by `until` (every one with UINT64_MAX). */
static void
release_due(Delay *d, uint64_t until)
{
  while (d->head != d->tail && d->ring[d->tail % RING_SIZE].due_ns <= until) {
    accept_packet(d, d->ring[d->tail % RING_SIZE].id);
    d->tail++;
  }
}

/* How long to wait for the next packet: until the oldest held one is due. */
static struct timespec *
wait_time(const Delay *d, struct timespec *out)
{
  if (d->head == d->tail)
    return NULL;
  uint64_t now = now_ns(), due = d->ring[d->tail % RING_SIZE].due_ns;
  uint64_t left = due > now ? due - now : 0;
  out->tv_sec = (time_t)(left / 1000000000u);
  out->tv_nsec = (long)(left % 1000000000u);
  return out;
}

static void
read_packets(Delay *d, int fd)
{
  static char buffer[65536];
  for (;;) {
    ssize_t got = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (got > 0) {
      nfq_handle_packet(d->handle, buffer, (int)got);
      continue;
    }
    if (got < 0 && errno == ENOBUFS) { /* the kernel dropped messages: its packets passed */
      d->dropped_by_kernel++;
      continue;
    }
    return; /* EAGAIN, or nothing more */
  }
}

static int
run(Delay *d)
{
  int fd = nfq_fd(d->handle);
  sigset_t waiting;
  sigemptyset(&waiting);
  printf("ready\n");
  fflush(stdout);
  while (!stop_requested) {
    struct timespec timeout;
    struct pollfd poll_fd = { .fd = fd, .events = POLLIN };
    int ready = ppoll(&poll_fd, 1, wait_time(d, &timeout), &waiting);
    if (ready < 0 && errno != EINTR) {
      perror("nfq-delay: ppoll");
      return 1;
    }
    if (ready > 0)
      read_packets(d, fd);
    release_due(d, now_ns());
  }
  release_due(d, UINT64_MAX);
  return 0;
}

static int
open_queue(Delay *d, unsigned queue_number)
{
  d->handle = nfq_open();
  if (d->handle == NULL) {
    perror("nfq-delay: nfq_open");
    return -1;
  }
  d->queue = nfq_create_queue(d->handle, (uint16_t)queue_number, on_packet, d);
  if (d->queue == NULL) {
    perror("nfq-delay: nfq_create_queue (is another program bound to this queue?)");
    return -1;
  }
  /* The verdict needs only the id: no payload is copied to user space. */
  if (nfq_set_mode(d->queue, NFQNL_COPY_META, 0) < 0 ||
      nfq_set_queue_maxlen(d->queue, RING_SIZE) < 0) {
    perror("nfq-delay: configuring the queue");
    return -1;
  }
  nfq_set_queue_flags(d->queue, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN);
  nfnl_rcvbufsiz(nfq_nfnlh(d->handle), RECV_BUFFER);
  return 0;
}

static int
parse_number(const char *text, unsigned long max, unsigned long *out)
{
  char *end = NULL;
  errno = 0;
  unsigned long value = strtoul(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || value > max)
    return -1;
  *out = value;
  return 0;
}

int
main(int argc, char **argv)
{
  unsigned long queue_number, delay_ms, jitter_ms = 0;
  if ((argc != 3 && argc != 4) || parse_number(argv[1], 65535, &queue_number) < 0 ||
      parse_number(argv[2], 60000, &delay_ms) < 0 ||
      (argc == 4 && parse_number(argv[3], 60000, &jitter_ms) < 0)) {
    fprintf(stderr, "usage: nfq-delay QUEUE DELAY_MS [JITTER_MS]  (QUEUE 0-65535, DELAY_MS and "
                    "JITTER_MS 0-60000)\n");
    return 2;
  }
  /* The signals stay blocked except inside ppoll. */
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigprocmask(SIG_BLOCK, &blocked, NULL);
  struct sigaction action = { .sa_handler = on_signal };
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGINT, &action, NULL);

  static Delay delay; /* the ring is large: not on the stack */
  delay.delay_ns = (uint64_t)delay_ms * 1000000u;
  delay.jitter_ns = (uint64_t)jitter_ms * 1000000u;
  struct timespec seed;
  clock_gettime(CLOCK_REALTIME, &seed);
  delay.random_state = ((uint64_t)seed.tv_nsec << 20) ^ (uint64_t)seed.tv_sec ^ (uint64_t)getpid();
  if (delay.random_state == 0)
    delay.random_state = 1; /* xorshift's one stuck state */
  int status = open_queue(&delay, (unsigned)queue_number) < 0 ? 1 : run(&delay);
  if (delay.queue != NULL)
    nfq_destroy_queue(delay.queue);
  if (delay.handle != NULL)
    nfq_close(delay.handle);
  fprintf(stderr,
          "nfq-delay: %llu packets delayed by %lu ms (+ 0-%lu ms jitter), %llu passed at once "
          "(ring full), %llu netlink overruns\n",
          (unsigned long long)delay.delayed, delay_ms, jitter_ms,
          (unsigned long long)delay.passed_full,
          (unsigned long long)delay.dropped_by_kernel);
  return status;
}
