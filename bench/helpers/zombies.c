/* zombies: reaping benchmark, run as the child of the init under test while
 * the init is PID 1 of a fresh PID namespace.
 *
 * A middle process forks N children that exit at once, waits (WNOWAIT, so
 * without reaping) until every one is a zombie, notes the time and exits:
 * the N zombies are orphaned and handed to PID 1. This process then polls
 * kill(pid, 0) (which succeeds on a zombie, fails with ESRCH once reaped)
 * until every one is gone or the deadline passes.
 *
 * usage: zombies N DEADLINE_S OUTFILE
 * OUTFILE gets "reap_ns N remaining" (reap_ns = -1 if some were never reaped).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s N DEADLINE_S OUTFILE\n", argv[0]); return 2; }
    long n = strtol(argv[1], NULL, 10);
    long deadline_s = strtol(argv[2], NULL, 10);
    FILE *out = fopen(argv[3], "w");
    if (!out) { perror(argv[3]); return 2; }

    /* shared with the middle process: t0, count, pids */
    long long *shm = mmap(NULL, sizeof(long long) * (size_t)(n + 2), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) { perror("mmap"); return 2; }

    pid_t mid = fork();
    if (mid < 0) { perror("fork"); return 2; }
    if (mid == 0) {
        long made = 0;
        for (long i = 0; i < n; i++) {
            pid_t p = fork();
            if (p == 0) _exit(0);
            if (p < 0) break;
            shm[2 + made++] = p;
        }
        for (long i = 0; i < made; i++) {
            siginfo_t si;
            while (waitid(P_PID, (id_t)shm[2 + i], &si, WEXITED | WNOWAIT) < 0 && errno == EINTR) {}
        }
        shm[1] = made;
        shm[0] = now_ns();
        _exit(0);
    }
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {}
    long made = shm[1];
    long long t0 = shm[0];
    long long deadline = t0 + deadline_s * 1000000000LL;
    struct timespec nap = {0, 100000}; /* 0.1 ms: resolution enough, leaves the CPU to PID 1 */
    long i = 0;
    long long t1 = 0;
    while (i < made) {
        if (kill((pid_t)shm[2 + i], 0) < 0 && errno == ESRCH) { i++; continue; }
        t1 = now_ns();
        if (t1 > deadline) break;
        nanosleep(&nap, NULL);
    }
    t1 = now_ns();
    long remaining = made - i;
    if (remaining == 0) {
        fprintf(out, "%lld %ld 0\n", t1 - t0, made);
    } else {
        long left = 0;
        for (long j = 0; j < made; j++)
            if (!(kill((pid_t)shm[2 + j], 0) < 0 && errno == ESRCH)) left++;
        fprintf(out, "-1 %ld %ld\n", made, left);
    }
    fclose(out);
    return 0;
}
