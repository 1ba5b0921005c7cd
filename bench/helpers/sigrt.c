/* sigrt: signal-forwarding round trip, run as the child of the init under test.
 *
 * Blocks SIGUSR1, then N times: sends SIGUSR1 to its parent (the init, through
 * a pidfd so a dead init can never redirect the signal to another process),
 * and waits with sigtimedwait for the forwarded SIGUSR1 to come back.
 * A signal that does not come back within TIMEOUT_MS counts as lost; after 20
 * losses in a row the rest are counted lost without sending (bounded run).
 *
 * usage: sigrt N TIMEOUT_MS OUTFILE [CPU]
 * With CPU, it first moves itself to that CPU (the caller pins the init), so
 * the round trip is measured on one CPU or across two, not wherever the
 * scheduler happens to put the two processes.
 * OUTFILE gets one line per signal: round-trip time in ns, or -1 if lost.
 * Exit 0 when it ran (even with losses), 2 on setup errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int one(int pidfd, const sigset_t *set, long timeout_ms, long long *dt) {
    struct timespec to = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
    siginfo_t si;
    long long t0 = now_ns();
    if (syscall(SYS_pidfd_send_signal, pidfd, SIGUSR1, NULL, 0) < 0) return -2;
    for (;;) {
        int s = sigtimedwait(set, &si, &to);
        if (s == SIGUSR1) { *dt = now_ns() - t0; return 0; }
        if (s < 0 && errno == EINTR) continue;
        return -1; /* timeout */
    }
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) { fprintf(stderr, "usage: %s N TIMEOUT_MS OUTFILE [CPU]\n", argv[0]); return 2; }
    if (argc == 5) {
        cpu_set_t cpus;
        CPU_ZERO(&cpus);
        CPU_SET(atoi(argv[4]), &cpus);
        if (sched_setaffinity(0, sizeof cpus, &cpus) < 0) { perror("sched_setaffinity"); return 2; }
    }
    long n = strtol(argv[1], NULL, 10);
    long timeout_ms = strtol(argv[2], NULL, 10);
    FILE *out = fopen(argv[3], "w");
    if (!out) { perror(argv[3]); return 2; }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);

    pid_t parent = getppid();
    int pidfd = (int)syscall(SYS_pidfd_open, parent, 0);
    if (pidfd < 0 || getppid() != parent) { perror("pidfd_open(parent)"); return 2; }

    long long dt;
    struct timespec zero = {0, 0};
    /* warm-up, not recorded; stop early if the init does not forward at all */
    for (int i = 0; i < 200; i++) {
        int r = one(pidfd, &set, timeout_ms, &dt);
        if (r == -2) { fprintf(stderr, "sigrt: parent gone\n"); return 2; }
        if (r == -1) break;
    }
    while (sigtimedwait(&set, NULL, &zero) > 0) {}

    int streak = 0;
    for (long i = 0; i < n; i++) {
        int r = (streak >= 20) ? -1 : one(pidfd, &set, timeout_ms, &dt);
        if (r == 0) { fprintf(out, "%lld\n", dt); streak = 0; continue; }
        fprintf(out, "-1\n");
        streak++;
        if (r == -2) streak = 20; /* init died: count the rest lost */
        while (sigtimedwait(&set, NULL, &zero) > 0) {} /* drop a late arrival */
    }
    fclose(out);
    return 0;
}
