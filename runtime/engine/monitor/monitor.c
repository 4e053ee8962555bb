/*
 * vl-monitor: watches one container, as conmon does for podman.
 *
 * It is exec'd by the engine's launcher after the runtime created the container, so the
 * container's init is already its child (the launcher made itself a child subreaper, and
 * that survives execve). It owns the container's stdio: it reads stdout/stderr (or the pty
 * master), writes one log line per output line with the host time it read it, fans the
 * output out to every client of its attach socket, and feeds their input to the
 * container's stdin. When the container exits it records the exit code in `exit`,
 * restarts it per policy (through a hook command), and otherwise exits itself.
 *
 * It holds an exclusive flock on `monitor.lock` for its whole life: the engine knows the
 * monitor is gone (even after SIGKILL) when it can take that lock.
 *
 * usage: vl-monitor DIR PID [options] [-- HOOK ARGV...]
 *   --out FD      stdout read end (or the pty master with --tty)
 *   --err FD      stderr read end
 *   --in FD       stdin write end (when the container was started with -i)
 *   --keep FD     a write end kept open for restarts (repeatable)
 *   --sync FD     write "ok\n" here once the attach socket listens, then close it
 *   --tty         output is a terminal: one stream, logged as stdout
 *   --autoremove  run HOOK cleanup after the exit unless a client said it removes
 * The HOOK is run as `HOOK... restart` (prints the new init pid; for a tty it also sends the new
 * pty master over its stdout, a socket) or `HOOK... cleanup`.
 * The restart policy is read from the file `restart-policy` ("POLICY MAX_RETRIES") at each
 * exit, so `update --restart` changes it for a running container. The file `stop-requested`
 * (made by stop, kill and rm -f; removed by start) suppresses any restart, also one that is
 * waiting out its back-off.
 *
 * Attach protocol: a client sends one mode byte ('o' output, 'r' output and "I remove the
 * container", 'i' output and input, 'I' the same and close stdin at EOF, 'R' = 'I' + 'r') and gets a hello
 * frame; then frames [type, 0, 0, 0, len32be] + payload: 1 stdout, 2 stderr, 3 exit code
 * (ASCII), 4 hello. Everything else a client sends is the container's stdin.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define MAX_KEEP 8
#define LINE_MAX_BYTES 16384
#define INBUF_BYTES 65536

enum { STREAM_STDOUT = 1, STREAM_STDERR = 2, FRAME_EXIT = 3, FRAME_HELLO = 4 };

struct stream {
    int fd;
    int kind;
    char buf[LINE_MAX_BYTES];
    size_t len;
};

struct client {
    int fd;
    char mode; /* 0 until the first byte: 'o' output, 'r' remover, 'i' input, 'I' input+close */
    int eof;   /* the client shut down its sending side: it still gets output */
};

static struct stream out_s = {.fd = -1, .kind = STREAM_STDOUT};
static struct stream err_s = {.fd = -1, .kind = STREAM_STDERR};
static struct client clients[MAX_CLIENTS];
static int nclients;
static int in_fd = -1;
static char inbuf[INBUF_BYTES];
static size_t inlen;
static int log_fd = -1;
static int listen_fd = -1;
static int tty_mode;

static void die(const char *what)
{
    fprintf(stderr, "vl-monitor: %s: %s\n", what, strerror(errno));
    exit(125);
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void drop_client(int i)
{
    close(clients[i].fd);
    clients[i] = clients[--nclients];
}

/* Send one frame to every attached client; a client that cannot keep up is dropped
 * rather than letting it stall the container's output. */
static void broadcast(int kind, const char *data, size_t n)
{
    unsigned char hdr[8] = {(unsigned char)kind, 0, 0, 0, (unsigned char)(n >> 24),
                            (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
    for (int i = 0; i < nclients; i++) {
        if (clients[i].mode == 0)
            continue;
        struct iovec iov[2] = {{hdr, 8}, {(void *)data, n}};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
        ssize_t w = sendmsg(clients[i].fd, &mh, MSG_NOSIGNAL);
        if (w != (ssize_t)(n + 8)) {
            drop_client(i);
            i--;
        }
    }
}

/* One CRI-style log line: "<RFC3339Nano UTC> <stdout|stderr> <F|P> <bytes>\n". */
static void log_line(int kind, const char *data, size_t n, int partial, const struct timespec *ts)
{
    struct tm tm;
    char head[80];
    gmtime_r(&ts->tv_sec, &tm);
    int h = snprintf(head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ %s %c ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec,
                     kind == STREAM_STDERR ? "stderr" : "stdout", partial ? 'P' : 'F');
    struct iovec iov[3] = {{head, (size_t)h}, {(void *)data, n}, {"\n", 1}};
    ssize_t want = h + (ssize_t)n + 1, w;
    do {
        w = writev(log_fd, iov, 3);
    } while (w < 0 && errno == EINTR);
    (void)want;
}

static void flush_lines(struct stream *s, int final, const struct timespec *ts)
{
    size_t start = 0;
    for (size_t i = 0; i < s->len; i++) {
        if (s->buf[i] == '\n') {
            size_t end = i;
            if (tty_mode && end > start && s->buf[end - 1] == '\r')
                end--;
            log_line(s->kind, s->buf + start, end - start, 0, ts);
            start = i + 1;
        }
    }
    if (start > 0) {
        memmove(s->buf, s->buf + start, s->len - start);
        s->len -= start;
    }
    if (s->len == sizeof s->buf || (final && s->len > 0)) {
        log_line(s->kind, s->buf, s->len, 1, ts);
        s->len = 0;
    }
}

/* Read what the stream has; returns 0 on EOF or error (the fd is then closed). */
static int pump(struct stream *s)
{
    for (;;) {
        size_t room = sizeof s->buf - s->len;
        ssize_t r = read(s->fd, s->buf + s->len, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return 1;
        if (r <= 0) { /* EOF, or EIO on a pty whose other side closed */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            flush_lines(s, 1, &ts);
            close(s->fd);
            s->fd = -1;
            return 0;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        broadcast(s->kind, s->buf + s->len, (size_t)r);
        s->len += (size_t)r;
        flush_lines(s, 0, &ts);
        if ((size_t)r < room)
            return 1;
    }
}

static void accept_clients(void)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (nclients == MAX_CLIENTS) {
            close(fd);
            continue;
        }
        clients[nclients].fd = fd;
        clients[nclients].mode = 0;
        clients[nclients].eof = 0;
        nclients++;
    }
}

static int close_in_pending; /* close stdin once the buffered input is written */

static void close_stdin(void)
{
    if (inlen > 0 && in_fd >= 0) {
        close_in_pending = 1;
        return;
    }
    if (in_fd >= 0) {
        close(in_fd);
        in_fd = -1;
    }
    inlen = 0;
    close_in_pending = 0;
}

static void client_input(int i)
{
    char buf[4096];
    if (clients[i].eof) { /* POLLHUP/POLLERR after a half-close: the client is gone */
        drop_client(i);
        return;
    }
    ssize_t r = read(clients[i].fd, buf, sizeof buf);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        if (clients[i].mode == 'I' || clients[i].mode == 'R')
            close_stdin();
        if (r < 0 || clients[i].mode == 0)
            drop_client(i);
        else
            clients[i].eof = 1; /* half-closed (stdin ended): keep sending it output */
        return;
    }
    size_t off = 0;
    if (clients[i].mode == 0) {
        unsigned char hello[8] = {FRAME_HELLO, 0, 0, 0, 0, 0, 0, 0};
        clients[i].mode = buf[0];
        off = 1;
        if (send(clients[i].fd, hello, sizeof hello, MSG_NOSIGNAL) != sizeof hello) {
            drop_client(i);
            return;
        }
    }
    if ((clients[i].mode == 'i' || clients[i].mode == 'I' || clients[i].mode == 'R') && in_fd >= 0) {
        size_t n = (size_t)r - off;
        if (n > sizeof inbuf - inlen)
            n = sizeof inbuf - inlen; /* the container is not reading: drop the excess */
        memcpy(inbuf + inlen, buf + off, n);
        inlen += n;
    }
}

static void feed_stdin(void)
{
    ssize_t w = write(in_fd, inbuf, inlen);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            inlen = 0;
            close_stdin();
        }
        return;
    }
    memmove(inbuf, inbuf + w, inlen - (size_t)w);
    inlen -= (size_t)w;
    if (inlen == 0 && close_in_pending)
        close_stdin();
}

static int remover_attached(void)
{
    for (int i = 0; i < nclients; i++)
        if (clients[i].mode == 'r' || clients[i].mode == 'R')
            return 1;
    return 0;
}

static void write_exit(int status, int restarting)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    char body[160];
    int n = snprintf(body, sizeof body, "{\"code\": %d, \"signal\": %d, \"at\": %ld.%09ld, \"restarting\": %s}\n",
                     code, sig, (long)ts.tv_sec, ts.tv_nsec, restarting ? "true" : "false");
    int fd = open("exit.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        write_all(fd, body, (size_t)n);
        close(fd); /* no fsync: rename is atomic, and a host crash loses the container anyway */
        rename("exit.tmp", "exit");
    }
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Run the hook with one more argument; returns its stdout (first line) as a number, or -1.
 * Its stdout is a socket: a restart of a tty container sends the new pty master along
 * (SCM_RIGHTS), returned in *got_fd (else -1). */
static long run_hook(char **hook, int nhook, const char *verb, int *keep, int nkeep, int *got_fd)
{
    int p[2];
    if (got_fd)
        *got_fd = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        char *argv[64];
        int n = 0;
        for (int i = 0; i < nhook && n < 62; i++)
            argv[n++] = hook[i];
        argv[n++] = (char *)verb;
        argv[n] = NULL;
        dup2(p[1], 1);
        for (int i = 0; i < nkeep; i++)
            fcntl(keep[i], F_SETFD, 0);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    char out[64] = {0};
    size_t got = 0;
    int fd = -1;
    for (;;) {
        union {
            char buf[CMSG_SPACE(4 * sizeof(int))];
            struct cmsghdr align;
        } cbuf;
        struct iovec iov = {out + got, sizeof out - 1 - got};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
                            .msg_controllen = sizeof cbuf.buf};
        ssize_t r = recvmsg(p[0], &mh, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            int nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int k = 0; k < nfds; k++) {
                int f;
                memcpy(&f, CMSG_DATA(c) + k * sizeof(int), sizeof f);
                if (fd < 0 && got_fd)
                    fd = f;
                else
                    close(f);
            }
        }
        got += (size_t)r;
        if (got >= sizeof out - 1)
            break;
    }
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (got_fd)
        *got_fd = fd;
    return strtol(out, NULL, 10);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: vl-monitor DIR PID [options] [-- HOOK...]\n");
        return 125;
    }
    const char *dir = argv[1];
    pid_t child = (pid_t)atoi(argv[2]);
    int sync_fd = -1, autoremove = 0;
    int keep[MAX_KEEP], nkeep = 0;
    char **hook = NULL;
    int nhook = 0;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            hook = argv + i + 1;
            nhook = argc - i - 1;
            break;
        } else if (!strcmp(a, "--tty")) {
            tty_mode = 1;
        } else if (!strcmp(a, "--autoremove")) {
            autoremove = 1;
        } else if (i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(a, "--out"))
                out_s.fd = atoi(v);
            else if (!strcmp(a, "--err"))
                err_s.fd = atoi(v);
            else if (!strcmp(a, "--in"))
                in_fd = atoi(v);
            else if (!strcmp(a, "--sync"))
                sync_fd = atoi(v);
            else if (!strcmp(a, "--keep") && nkeep < MAX_KEEP)
                keep[nkeep++] = atoi(v);
            else {
                fprintf(stderr, "vl-monitor: unknown option %s\n", a);
                return 125;
            }
        }
    }
    if (chdir(dir) < 0)
        die("chdir");
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    prctl(PR_SET_NAME, "vl-monitor");

    int lock_fd = open("monitor.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0)
        die("lock monitor.lock");
    char pidtxt[32];
    int pn = snprintf(pidtxt, sizeof pidtxt, "%d\n", getpid());
    if (ftruncate(lock_fd, 0) == 0)
        write_all(lock_fd, pidtxt, (size_t)pn);

    log_fd = open("container.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0)
        die("open container.log");

    unlink("attach.sock");
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, "attach.sock"); /* relative: the store path may exceed sun_path */
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(listen_fd, 16) < 0)
        die("listen attach.sock");
    chmod("attach.sock", 0600);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGPIPE);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    int sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0)
        die("signalfd");

    if (out_s.fd >= 0)
        set_nonblock(out_s.fd);
    if (err_s.fd >= 0)
        set_nonblock(err_s.fd);
    if (in_fd >= 0)
        set_nonblock(in_fd);
    if (sync_fd >= 0) {
        write_all(sync_fd, "ok\n", 3);
        close(sync_fd);
    }

    int restarts = 0, backoff = 0; /* restarts: for on-failure:N; backoff: the delay's exponent */
    struct timespec run_started;
    clock_gettime(CLOCK_MONOTONIC, &run_started);
    for (;;) {
        int exited = 0, status = 0;
        while (!exited) {
            struct pollfd pfd[4 + MAX_CLIENTS];
            int n = 0;
            pfd[n++] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
            pfd[n++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
            pfd[n++] = (struct pollfd){.fd = out_s.fd, .events = POLLIN};
            pfd[n++] = (struct pollfd){.fd = err_s.fd, .events = POLLIN};
            int base = n;
            for (int i = 0; i < nclients; i++)
                pfd[n++] = (struct pollfd){.fd = clients[i].fd,
                                           .events = (!clients[i].eof && inlen < sizeof inbuf) ? POLLIN : 0};
            struct pollfd inp = {.fd = inlen > 0 ? in_fd : -1, .events = POLLOUT};
            pfd[n++] = inp;
            if (poll(pfd, (nfds_t)n, -1) < 0) {
                if (errno == EINTR)
                    continue;
                die("poll");
            }
            /* clients first, so a client's mode byte counts before output read in
             * the same round is broadcast */
            for (int i = nclients - 1; i >= 0; i--)
                if (base + i < n - 1 && pfd[base + i].revents && pfd[base + i].fd == clients[i].fd)
                    client_input(i);
            if (pfd[1].revents)
                accept_clients();
            if (pfd[n - 1].revents)
                feed_stdin();
            if (pfd[2].revents)
                pump(&out_s);
            if (pfd[3].revents)
                pump(&err_s);
            if (pfd[0].revents) {
                struct signalfd_siginfo si;
                while (read(sig_fd, &si, sizeof si) == sizeof si)
                    ;
                for (;;) {
                    int st;
                    pid_t w = waitpid(-1, &st, WNOHANG);
                    if (w <= 0)
                        break;
                    if (w == child) {
                        exited = 1;
                        status = st;
                    }
                }
            }
        }
        /* The container is gone: take what is left in the pipes without waiting for
         * EOF (a daemonised grandchild may hold the write ends open). */
        if (out_s.fd >= 0)
            pump(&out_s);
        if (err_s.fd >= 0)
            pump(&err_s);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        flush_lines(&out_s, 1, &ts);
        flush_lines(&err_s, 1, &ts);

        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        int again = 0, retries = 0;
        char policy[32] = "no";
        FILE *pf = fopen("restart-policy", "re");
        if (pf) {
            if (fscanf(pf, "%31s %d", policy, &retries) < 1)
                strcpy(policy, "no");
            fclose(pf);
        }
        if (hook && !file_exists("stop-requested")) {
            if (!strcmp(policy, "always") || !strcmp(policy, "unless-stopped"))
                again = 1;
            else if (!strcmp(policy, "on-failure") && code != 0 && (retries == 0 || restarts < retries))
                again = 1;
        }
        write_exit(status, again);
        if (again) {
            /* docker's back-off: 100 ms, doubling, at most a few seconds here; a run that lasted 10 s
             * starts it over. A stop (or kill) during the wait ends it at once: the file is polled. */
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - run_started.tv_sec >= 10)
                backoff = 0;
            int delay_ms = 100 << (backoff < 5 ? backoff : 5);
            for (int waited = 0; waited < delay_ms && !file_exists("stop-requested"); waited += 20) {
                struct timespec d = {0, 20 * 1000000L};
                while (nanosleep(&d, &d) < 0 && errno == EINTR)
                    ;
            }
            backoff++;
            restarts++;
            int master = -1;
            long pid = file_exists("stop-requested") ? -1 : run_hook(hook, nhook, "restart", keep, nkeep, &master);
            if (pid > 0) {
                child = (pid_t)pid;
                clock_gettime(CLOCK_MONOTONIC, &run_started);
                if (master >= 0 && tty_mode) { /* the new init has a new terminal */
                    if (out_s.fd >= 0)
                        close(out_s.fd);
                    out_s.fd = master;
                    out_s.len = 0;
                    set_nonblock(master);
                    if (in_fd >= 0) {
                        close(in_fd);
                        in_fd = dup(master);
                        inlen = 0;
                    }
                } else if (master >= 0) {
                    close(master);
                }
                if (out_s.fd < 0 && err_s.fd < 0)
                    break;
                continue;
            }
            /* no restart after all (stopped during the back-off, or the hook failed): the exit
             * record must say so, or the engine would take this for a monitor that died */
            write_exit(status, 0);
        }
        break;
    }
    char frame[16];
    int code_len;
    {
        FILE *f = fopen("exit", "re");
        int code = 0;
        if (f) {
            if (fscanf(f, "{\"code\": %d", &code) != 1)
                code = 255;
            fclose(f);
        }
        code_len = snprintf(frame, sizeof frame, "%d", code);
    }
    int cleanup = autoremove && hook && !remover_attached();
    broadcast(FRAME_EXIT, frame, (size_t)code_len);
    for (int i = nclients - 1; i >= 0; i--)
        drop_client(i);
    close(listen_fd);
    unlink("attach.sock");
    if (cleanup) {
        /* release the lock first: the cleanup hook checks that no monitor runs */
        close(lock_fd);
        run_hook(hook, nhook, "cleanup", keep, 0, NULL);
    }
    return 0;
}
