/* spawntime: interleaved fork/exec timer for bench/run.
 *
 * Runs several commands round-robin (the start offset rotates every round, so
 * no command always goes first), each with stdin/stdout/stderr on /dev/null,
 * and records per run: wall time (CLOCK_MONOTONIC, spawn to reaped), CPU time
 * of the process and its reaped descendants (user+sys from wait4), exit status.
 *
 * usage: spawntime ROUNDS WARMUP OUTFILE CMD1 ARGS... ::: CMD2 ARGS... [::: ...]
 * A command may start with +NAME=VALUE (set) or +NAME (unset) words: its own
 * changes to the environment, made once before timing starts.
 * OUTFILE gets one line per measured run: "cmd_index wall_ns cpu_ns status".
 * WARMUP rounds are run first and not recorded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAXCMDS 32

/* environ with the leading +NAME[=VALUE] words of cmd applied; advances *cmd past them */
static char **command_env(char ***cmd) {
    size_t n = 0, k = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 64, sizeof *env);
    for (size_t i = 0; i < n; i++) env[k++] = environ[i];
    for (; **cmd && (**cmd)[0] == '+'; (*cmd)++) {
        const char *word = **cmd + 1;
        size_t len = strcspn(word, "=");
        size_t j = 0;
        for (size_t i = 0; i < k; i++) /* drop NAME from the copy */
            if (!(strncmp(env[i], word, len) == 0 && env[i][len] == '=')) env[j++] = env[i];
        k = j;
        if (word[len] == '=' && k < n + 63) env[k++] = (char *)word;
    }
    env[k] = NULL;
    return env;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s ROUNDS WARMUP OUTFILE CMD... [::: CMD...]\n", argv[0]);
        return 2;
    }
    long rounds = strtol(argv[1], NULL, 10);
    long warmup = strtol(argv[2], NULL, 10);
    FILE *out = fopen(argv[3], "w");
    if (!out) { perror(argv[3]); return 2; }

    char **cmds[MAXCMDS];
    int ncmds = 0;
    cmds[ncmds++] = &argv[4];
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], ":::") == 0) {
            argv[i] = NULL;
            if (i + 1 >= argc || ncmds == MAXCMDS) { fprintf(stderr, "bad command list\n"); return 2; }
            cmds[ncmds++] = &argv[i + 1];
        }
    }

    char **envs[MAXCMDS];
    for (int c = 0; c < ncmds; c++) {
        envs[c] = command_env(&cmds[c]);
        if (!cmds[c][0]) { fprintf(stderr, "empty command\n"); return 2; }
    }

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);

    for (long r = -warmup; r < rounds; r++) {
        for (int k = 0; k < ncmds; k++) {
            int c = (int)(((r % ncmds) + ncmds + k) % ncmds);
            pid_t pid;
            struct rusage ru;
            int status = 0;
            long long t0 = now_ns();
            int err = posix_spawn(&pid, cmds[c][0], &fa, NULL, cmds[c], envs[c]);
            if (err) { fprintf(stderr, "spawn %s: %s\n", cmds[c][0], strerror(err)); return 1; }
            while (wait4(pid, &status, 0, &ru) < 0) {
                if (errno != EINTR) { perror("wait4"); return 1; }
            }
            long long t1 = now_ns();
            long long cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
                            (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
            if (r >= 0) fprintf(out, "%d %lld %lld %d\n", c, t1 - t0, cpu, status);
        }
    }
    fclose(out);
    return 0;
}
