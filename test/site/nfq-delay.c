/*
 * nfq-delay: add a fixed one-way delay to every packet that netfilter hands
 * to an NFQUEUE, by holding the packet's verdict for DELAY_MS milliseconds.
 *
 * Why: this machine's kernel is built without sch_netem
 * ("tc qdisc add ... netem" -> "Error: Specified qdisc kind is unknown."),
 * so latency is emulated in user space instead. Packets are only held and
 * then accepted unchanged (no payload is copied: NFQNL_COPY_META), so TCP in
 * the kernel sees a real, longer round trip.
 *
 * Usage: nfq-delay QUEUE_NUM DELAY_MS      (DELAY_MS may be fractional: 0.2)
 *   e.g. (inside the login namespace; test/site/shape.sh does this)
 *   iptables-legacy -t mangle -A PREROUTING -i annexsite1 -j NFQUEUE --queue-num 7 --queue-bypass
 *   nfq-delay 7 50 &
 * Only packets entering the login node are held, so the round trip grows by
 * DELAY_MS (holding egress packets too throttles TCP: TCP Small Queues).
 *
 * Build: gcc -O2 -Wall -o nfq-delay nfq-delay.c -lnetfilter_queue
 *        (Debian: apt-get install libnetfilter-queue-dev)
 * Stop: SIGTERM/SIGINT; held packets are accepted before exit.
 */
#define _GNU_SOURCE /* ppoll: sub-millisecond timeouts */
#include <arpa/inet.h> /* before the netfilter headers: they pull in linux/in.h */
#include <errno.h>
#include <netinet/in.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h> /* NF_ACCEPT */
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define RING 65536 /* max packets held at once (power of two) */

static uint32_t ids[RING];
static uint64_t due[RING];
static unsigned head, tail; /* ring indices, head = oldest */
static uint64_t delay_ns;
static volatile sig_atomic_t stop;
static unsigned long long passed, overflow;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg,
                     struct nfq_data *nfa, void *data) {
    (void)msg; (void)data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (!ph) return 0;
    uint32_t id = ntohl(ph->packet_id);
    if (tail - head >= RING) { /* ring full: pass it now rather than drop */
        overflow++;
        return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
    }
    ids[tail % RING] = id;
    due[tail % RING] = now_ns() + delay_ns;
    tail++;
    return 0;
}

static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s QUEUE_NUM DELAY_MS\n", argv[0]);
        return 2;
    }
    int qnum = atoi(argv[1]);
    delay_ns = (uint64_t)(atof(argv[2]) * 1e6);

    struct nfq_handle *h = nfq_open();
    if (!h) { perror("nfq_open"); return 1; }
    struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)qnum, on_packet, NULL);
    if (!qh) { perror("nfq_create_queue"); return 1; }
    if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) { perror("nfq_set_mode"); return 1; }
    nfq_set_queue_maxlen(qh, RING);
    /* let the kernel pass packets rather than drop them if we fall behind,
     * and hand us GSO super-packets whole (fewer packets to hold) */
    nfq_set_queue_flags(qh, NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO,
                        NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO);
    int fd = nfq_fd(h);
    int rcvbuf = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    fprintf(stderr, "nfq-delay: queue %d, delay %.3f ms\n", qnum, delay_ns / 1e6);
    char buf[65536] __attribute__((aligned));
    while (!stop) {
        struct timespec ts, *timeout = NULL;
        if (head != tail) {
            uint64_t n = now_ns(), d = due[head % RING], w = d > n ? d - n : 0;
            ts.tv_sec = (time_t)(w / 1000000000ull);
            ts.tv_nsec = (long)(w % 1000000000ull);
            timeout = &ts;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = ppoll(&p, 1, timeout, NULL);
        if (r < 0 && errno != EINTR) { perror("poll"); break; }
        if (r > 0 && (p.revents & POLLIN)) {
            /* drain everything that is ready without blocking */
            for (;;) {
                ssize_t len = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (len < 0) {
                    if (errno == ENOBUFS) { overflow++; continue; }
                    break;
                }
                nfq_handle_packet(h, buf, (int)len);
            }
        }
        uint64_t n = now_ns();
        while (head != tail && due[head % RING] <= n) {
            nfq_set_verdict(qh, ids[head % RING], NF_ACCEPT, 0, NULL);
            head++;
            passed++;
        }
    }
    while (head != tail) { /* release what is still held */
        nfq_set_verdict(qh, ids[head % RING], NF_ACCEPT, 0, NULL);
        head++;
    }
    fprintf(stderr, "nfq-delay: exit, %llu packets delayed, %llu passed undelayed\n",
            passed, overflow);
    nfq_destroy_queue(qh);
    nfq_close(h);
    return 0;
}
