/*
 * virtlab-probe: the one payload every backend runs (native, containers, VM guests).
 *
 * A tiny static program (gcc -static) so the same bytes run everywhere, with no
 * interpreter or library in the image.  Every subcommand prints `key=value` lines on
 * stdout; timings are taken inside the instance with CLOCK_MONOTONIC.
 *
 *   ready [SECONDS]         print VIRTLAB_READY (also to $VIRTLAB_READY_FD), then sleep
 *   noop                    exit 0 at once (the target of `fork`)
 *   cpu N                   N events of sysbench's prime loop (primes up to 10000)
 *   mem MB [PASSES]         memcpy bandwidth over two MB-sized buffers
 *   syscall N               N raw getppid() system calls
 *   fork N                  N fork + execve(self, noop) + wait
 *   fileio DIR MB           sequential write + fsync, then read, of an MB-sized file in DIR
 *   netserve ADDR [PORT]    host end of the host <-> instance test: print port= and VIRTLAB_READY, serve one client
 *   netclient ADDR PORT MB [ROUNDS]  instance end: MB up, MB down, then 1-byte round trips; prints the rates
 *   netup ADDR/PREFIX [IFACE]  set an interface's IPv4 address and bring it up (guests without `ip`)
 *   http PORT [N]           HTTP/1.0 server on PORT; with N, serve itself N requests over loopback
 *   isolation TOKEN PID     facts about what the instance can see and do, for the isolation matrix
 *                           (escape probes: mount tmpfs, mknod + open a block device, open /dev/mem,
 *                           open /proc/sys for writing, ptrace the host's canary)
 *   canary TOKEN            sleep; a host process the isolation check looks for
 *   memhog MB               touch MB of memory, print VIRTLAB_READY, sleep
 *   forkbomb [MAX]          fork sleeping children until fork fails or MAX, print the count
 *
 * Exit codes: 0 ok, 1 the measured operation failed, 2 usage.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MARKER "VIRTLAB_READY"
#define MIB (1024UL * 1024UL)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

/* As PID 1 of a container, signals without a handler are ignored: install real ones. */
static void handle_term(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static long parse_long(const char *s, const char *what, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "virtlab-probe: invalid %s %s (want %ld..%ld)\n", what, s, min, max);
		exit(2);
	}
	return v;
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void sleep_forever(long seconds)
{
	if (seconds > 0) {
		sleep((unsigned)seconds);
		return;
	}
	for (;;)
		pause();
}

static void announce_ready(void)
{
	const char *fdenv = getenv("VIRTLAB_READY_FD");
	write_all(1, MARKER "\n", sizeof(MARKER));
	if (fdenv && *fdenv) {
		int fd = (int)parse_long(fdenv, "VIRTLAB_READY_FD", 0, 1 << 20);
		write_all(fd, MARKER "\n", sizeof(MARKER));
		close(fd);
	}
}

static int cmd_ready(int argc, char **argv)
{
	long seconds = argc > 2 ? parse_long(argv[2], "seconds", 0, 1L << 30) : 0;
	handle_term();
	announce_ready();
	sleep_forever(seconds);
	return 0;
}

/* sysbench's cpu test: one event = find the primes up to max_prime by trial division. */
static int cmd_cpu(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: virtlab-probe cpu EVENTS\n");
		return 2;
	}
	long events = parse_long(argv[2], "events", 1, 1L << 40);
	const unsigned long max_prime = 10000;
	volatile unsigned long primes = 0;
	double t0 = now();
	for (long e = 0; e < events; e++) {
		unsigned long n = 0;
		for (unsigned long c = 3; c < max_prime; c++) {
			unsigned long t = (unsigned long)sqrt((double)c);
			unsigned long l;
			for (l = 2; l <= t; l++)
				if (c % l == 0)
					break;
			if (l > t)
				n++;
		}
		primes = n;
	}
	double dt = now() - t0;
	printf("events=%ld\nprimes=%lu\nmax_prime=%lu\nseconds=%.9f\nevents_per_s=%.3f\n", events,
	       (unsigned long)primes, max_prime, dt, events / dt);
	return 0;
}

static int cmd_mem(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: virtlab-probe mem MB [PASSES]\n");
		return 2;
	}
	long mb = parse_long(argv[2], "MB", 1, 1 << 16);
	long passes = argc > 3 ? parse_long(argv[3], "passes", 1, 1 << 20) : 8;
	size_t size = (size_t)mb * MIB;
	char *a = malloc(size), *b = malloc(size);
	if (!a || !b) {
		fprintf(stderr, "virtlab-probe: cannot allocate 2 x %ld MiB\n", mb);
		return 1;
	}
	memset(a, 1, size);
	memset(b, 2, size);
	memcpy(b, a, size); /* warm the pages and the TLB before the clock starts */
	double t0 = now();
	for (long p = 0; p < passes; p++) {
		a[p % size] = (char)p;
		memcpy(b, a, size);
	}
	double dt = now() - t0;
	printf("mb=%ld\npasses=%ld\ncheck=%d\nseconds=%.9f\nmb_per_s=%.3f\n", mb, passes, b[size / 2], dt,
	       (double)mb * passes / dt);
	free(a);
	free(b);
	return 0;
}

static int cmd_syscall(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: virtlab-probe syscall N\n");
		return 2;
	}
	long n = parse_long(argv[2], "N", 1, 1L << 40);
	long sum = 0;
	double t0 = now();
	for (long i = 0; i < n; i++)
		sum += syscall(SYS_getppid);
	double dt = now() - t0;
	printf("calls=%ld\ncheck=%ld\nseconds=%.9f\nns_per_op=%.3f\n", n, sum % 7, dt, dt * 1e9 / n);
	return 0;
}

static int cmd_fork(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: virtlab-probe fork N\n");
		return 2;
	}
	long n = parse_long(argv[2], "N", 1, 1L << 30);
	char *child_argv[] = {argv[0], "noop", NULL};
	char *envp[] = {NULL};
	double t0 = now();
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			fprintf(stderr, "virtlab-probe: fork: %s\n", strerror(errno));
			return 1;
		}
		if (pid == 0) {
			execve("/proc/self/exe", child_argv, envp);
			execve(argv[0], child_argv, envp);
			_exit(127);
		}
		int status;
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "virtlab-probe: child of fork/exec failed (status %d)\n", status);
			return 1;
		}
	}
	double dt = now() - t0;
	printf("forks=%ld\nseconds=%.9f\nus_per_op=%.3f\n", n, dt, dt * 1e6 / n);
	return 0;
}

static int cmd_fileio(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: virtlab-probe fileio DIR MB\n");
		return 2;
	}
	const char *dir = argv[2];
	long mb = parse_long(argv[3], "MB", 1, 1 << 20);
	char path[4096];
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "virtlab-probe: mkdir %s: %s\n", dir, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/virtlab-fileio.%d", dir, (int)getpid());
	char *buf = malloc(MIB);
	if (!buf)
		return 1;
	for (size_t i = 0; i < MIB; i++)
		buf[i] = (char)(i * 131 + 7);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "virtlab-probe: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	double t0 = now();
	for (long i = 0; i < mb; i++) {
		if (write(fd, buf, MIB) != (ssize_t)MIB) {
			fprintf(stderr, "virtlab-probe: write %s: %s\n", path, strerror(errno));
			close(fd);
			unlink(path);
			return 1;
		}
	}
	if (fsync(fd) < 0) {
		fprintf(stderr, "virtlab-probe: fsync %s: %s\n", path, strerror(errno));
		close(fd);
		unlink(path);
		return 1;
	}
	close(fd);
	double wdt = now() - t0;
	/* Read back through the page cache: an honest label, since dropping caches is not allowed everywhere. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	long total = 0;
	double t1 = now();
	for (;;) {
		ssize_t r = read(fd, buf, MIB);
		if (r <= 0)
			break;
		total += r;
	}
	double rdt = now() - t1;
	close(fd);
	unlink(path);
	free(buf);
	printf("mb=%ld\nwrite_seconds=%.9f\nwrite_mb_per_s=%.3f\nread_bytes=%ld\nread_seconds=%.9f\n"
	       "read_mb_per_s=%.3f\nread_cached=1\n",
	       mb, wdt, mb / wdt, total, rdt, (double)total / MIB / rdt);
	return 0;
}

static int listen_loopback(int *port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 128) < 0) {
		close(s);
		return -1;
	}
	socklen_t len = sizeof(a);
	getsockname(s, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return s;
}

static int connect_loopback(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

static int read_full(int fd, char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, buf, len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Host <-> instance TCP: `netserve` runs on one end (the host), `netclient` on the other
 * (inside the instance), over the backend's bridge, veth or tap (or the host's loopback
 * for native).  One connection: a header line, MB MiB client->server (ended by a 1-byte
 * acknowledgement), MB MiB server->client, then ROUNDS 1-byte round trips.  The client
 * times everything, inside the instance, with CLOCK_MONOTONIC.
 */
#define NET_HEADER "VLNET1"
#define NET_TIMEOUT_S 60

static int parse_addr(const char *s, struct sockaddr_in *a, int port)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, s, &a->sin_addr) == 1 ? 0 : -1;
}

static void set_timeouts(int s, int seconds)
{
	struct timeval tv = {.tv_sec = seconds};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int write_full(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int cmd_netserve(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: virtlab-probe netserve ADDR [PORT]\n");
		return 2;
	}
	int port = argc > 3 ? (int)parse_long(argv[3], "port", 0, 65535) : 0;
	struct sockaddr_in a;
	if (parse_addr(argv[2], &a, port) < 0) {
		fprintf(stderr, "virtlab-probe: invalid IPv4 address %s\n", argv[2]);
		return 2;
	}
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 4) < 0) {
		fprintf(stderr, "virtlab-probe: listen on %s:%d: %s\n", argv[2], port, strerror(errno));
		return 1;
	}
	socklen_t len = sizeof(a);
	getsockname(ls, (struct sockaddr *)&a, &len);
	printf("port=%d\n", ntohs(a.sin_port));
	fflush(stdout);
	announce_ready();
	set_timeouts(ls, NET_TIMEOUT_S); /* accept gives up too: a client that never comes is an error */
	int c = accept(ls, NULL, NULL);
	if (c < 0) {
		fprintf(stderr, "virtlab-probe: no client within %ds: %s\n", NET_TIMEOUT_S, strerror(errno));
		return 1;
	}
	close(ls);
	set_timeouts(c, NET_TIMEOUT_S);
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	char hdr[64] = {0};
	size_t got = 0;
	while (got < sizeof(hdr) - 1 && (got == 0 || hdr[got - 1] != '\n')) {
		ssize_t n = read(c, hdr + got, 1);
		if (n <= 0) {
			fprintf(stderr, "virtlab-probe: no header from the client\n");
			return 1;
		}
		got += (size_t)n;
	}
	long mb = 0, rounds = 0;
	if (sscanf(hdr, NET_HEADER " %ld %ld", &mb, &rounds) != 2 || mb < 1 || mb > (1L << 20) || rounds < 0 ||
	    rounds > (1L << 24)) {
		fprintf(stderr, "virtlab-probe: bad header %s\n", hdr);
		return 1;
	}
	size_t chunk = 128 * 1024;
	char *buf = calloc(1, chunk);
	for (long left = mb * (long)MIB; left > 0;) {
		ssize_t n = read(c, buf, left < (long)chunk ? (size_t)left : chunk);
		if (n <= 0) {
			fprintf(stderr, "virtlab-probe: upload cut short: %s\n", n < 0 ? strerror(errno) : "EOF");
			return 1;
		}
		left -= n;
	}
	if (write_full(c, "k", 1) < 0)
		return 1;
	for (long left = mb * (long)MIB; left > 0; left -= (long)chunk)
		if (write_full(c, buf, left < (long)chunk ? (size_t)left : chunk) < 0) {
			fprintf(stderr, "virtlab-probe: download cut short: %s\n", strerror(errno));
			return 1;
		}
	char b;
	for (long r = 0; r < rounds; r++) {
		if (read_full(c, &b, 1) < 0 || write_full(c, &b, 1) < 0) {
			fprintf(stderr, "virtlab-probe: round trip %ld failed\n", r);
			return 1;
		}
	}
	close(c);
	free(buf);
	printf("served_mb=%ld\nserved_rounds=%ld\n", mb, rounds);
	return 0;
}

static int cmd_netclient(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: virtlab-probe netclient ADDR PORT MB [ROUNDS]\n");
		return 2;
	}
	int port = (int)parse_long(argv[3], "port", 1, 65535);
	long mb = parse_long(argv[4], "MB", 1, 1 << 20);
	long rounds = argc > 5 ? parse_long(argv[5], "rounds", 1, 1 << 24) : 1000;
	struct sockaddr_in a;
	if (parse_addr(argv[2], &a, port) < 0) {
		fprintf(stderr, "virtlab-probe: invalid IPv4 address %s\n", argv[2]);
		return 2;
	}
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	set_timeouts(s, 10); /* SO_SNDTIMEO bounds connect() too: an unreachable host fails in 10 s */
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "virtlab-probe: connect to %s:%d: %s\n", argv[2], port, strerror(errno));
		return 1;
	}
	set_timeouts(s, NET_TIMEOUT_S);
	int one = 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	char hdr[64];
	int hl = snprintf(hdr, sizeof(hdr), NET_HEADER " %ld %ld\n", mb, rounds);
	if (write_full(s, hdr, (size_t)hl) < 0)
		return 1;
	size_t chunk = 128 * 1024;
	char *buf = calloc(1, chunk);
	double t0 = now();
	for (long left = mb * (long)MIB; left > 0; left -= (long)chunk)
		if (write_full(s, buf, left < (long)chunk ? (size_t)left : chunk) < 0) {
			fprintf(stderr, "virtlab-probe: upload to %s failed: %s\n", argv[2], strerror(errno));
			return 1;
		}
	char ack;
	if (read_full(s, &ack, 1) < 0) {
		fprintf(stderr, "virtlab-probe: no acknowledgement from %s\n", argv[2]);
		return 1;
	}
	double up = now() - t0;
	double t1 = now();
	for (long left = mb * (long)MIB; left > 0;) {
		ssize_t n = read(s, buf, left < (long)chunk ? (size_t)left : chunk);
		if (n <= 0) {
			fprintf(stderr, "virtlab-probe: download from %s cut short\n", argv[2]);
			return 1;
		}
		left -= n;
	}
	double down = now() - t1;
	double t2 = now();
	for (long r = 0; r < rounds; r++) {
		char b = 'x';
		if (write_full(s, &b, 1) < 0 || read_full(s, &b, 1) < 0) {
			fprintf(stderr, "virtlab-probe: round trip %ld to %s failed\n", r, argv[2]);
			return 1;
		}
	}
	double rdt = now() - t2;
	close(s);
	free(buf);
	printf("peer=%s\nmb=%ld\nup_seconds=%.9f\ngbit_per_s=%.6f\ndown_seconds=%.9f\nrx_gbit_per_s=%.6f\n"
	       "rounds=%ld\nrtt_us=%.3f\n",
	       argv[2], mb, up, (double)mb * MIB * 8 / up / 1e9, down, (double)mb * MIB * 8 / down / 1e9, rounds,
	       rdt * 1e6 / rounds);
	return 0;
}

/*
 * Give an interface an IPv4 address and bring it up (ioctl, no `ip` needed in the image).
 * For guests whose init does not apply the address the VM driver assigned (the full profile).
 */
static int cmd_netup(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: virtlab-probe netup ADDR/PREFIX [IFACE]\n");
		return 2;
	}
	char addr[64];
	snprintf(addr, sizeof(addr), "%s", argv[2]);
	char *slash = strchr(addr, '/');
	long prefix = 24;
	if (slash) {
		*slash = 0;
		prefix = parse_long(slash + 1, "prefix", 1, 32);
	}
	char ifname[IFNAMSIZ] = {0};
	if (argc > 3) {
		snprintf(ifname, sizeof(ifname), "%.15s", argv[3]);
	} else {
		/* The first interface that is not the loopback (eth0, enp1s0, ...). */
		DIR *d = opendir("/sys/class/net");
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.' || !strcmp(e->d_name, "lo"))
				continue;
			if (!ifname[0] || strcmp(e->d_name, ifname) < 0)
				snprintf(ifname, sizeof(ifname), "%.15s", e->d_name);
		}
		if (d)
			closedir(d);
	}
	if (!ifname[0]) {
		fprintf(stderr, "virtlab-probe: no network interface besides lo\n");
		return 1;
	}
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, ifname, sizeof(ifr.ifr_name));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) {
		fprintf(stderr, "virtlab-probe: invalid IPv4 address %s\n", addr);
		return 2;
	}
	if (s < 0 || ioctl(s, SIOCSIFADDR, &ifr) < 0) {
		fprintf(stderr, "virtlab-probe: set address of %s: %s\n", ifname, strerror(errno));
		return 1;
	}
	sin->sin_addr.s_addr = prefix == 32 ? 0xffffffffu : htonl(~((1u << (32 - prefix)) - 1));
	if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) {
		fprintf(stderr, "virtlab-probe: set netmask of %s: %s\n", ifname, strerror(errno));
		return 1;
	}
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr)) < 0) {
		fprintf(stderr, "virtlab-probe: bring %s up: %s\n", ifname, strerror(errno));
		return 1;
	}
	close(s);
	printf("iface=%s\naddr=%s/%ld\n", ifname, addr, prefix);
	return 0;
}

static const char HTTP_REPLY[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n"
				 "Connection: close\r\n\r\nhello virtlab\n";

static void http_serve(int ls, long max)
{
	char req[2048];
	for (long i = 0; max < 0 || i < max; i++) {
		int c = accept(ls, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		size_t got = 0;
		while (got < sizeof(req) - 1) {
			ssize_t n = read(c, req + got, sizeof(req) - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			req[got] = 0;
			if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
				break;
		}
		write_all(c, HTTP_REPLY, sizeof(HTTP_REPLY) - 1);
		close(c);
	}
}

static int cmd_http(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: virtlab-probe http PORT [N]\n");
		return 2;
	}
	int port = (int)parse_long(argv[2], "port", 0, 65535);
	long n = argc > 3 ? parse_long(argv[3], "N", 1, 1L << 30) : -1;
	if (n < 0) {
		/* Serve on every address, forever: the application workload seen from outside. */
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 128) < 0) {
			fprintf(stderr, "virtlab-probe: listen on port %d: %s\n", port, strerror(errno));
			return 1;
		}
		handle_term();
		announce_ready();
		http_serve(s, -1);
		return 0;
	}
	int ls = listen_loopback(&port);
	if (ls < 0) {
		fprintf(stderr, "virtlab-probe: listen on loopback: %s\n", strerror(errno));
		return 1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		http_serve(ls, n);
		_exit(0);
	}
	close(ls);
	char resp[512];
	const char req[] = "GET / HTTP/1.0\r\nHost: probe\r\n\r\n";
	double t0 = now();
	long ok = 0;
	for (long i = 0; i < n; i++) {
		int s = connect_loopback(port);
		if (s < 0)
			break;
		write_all(s, req, sizeof(req) - 1);
		size_t got = 0;
		for (;;) {
			ssize_t r = read(s, resp + got, sizeof(resp) - 1 - got);
			if (r <= 0)
				break;
			got += (size_t)r;
			if (got >= sizeof(resp) - 1)
				break;
		}
		resp[got] = 0;
		close(s);
		if (strncmp(resp, "HTTP/1.0 200", 12) == 0)
			ok++;
	}
	double dt = now() - t0;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	printf("requests=%ld\nok=%ld\nseconds=%.9f\nreq_per_s=%.3f\n", n, ok, dt, ok / dt);
	return ok == n ? 0 : 1;
}

static void print_file_line(const char *path, const char *prefix, const char *key)
{
	FILE *f = fopen(path, "r");
	char line[512];
	if (!f) {
		printf("%s=\n", key);
		return;
	}
	size_t plen = strlen(prefix);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, prefix, plen) == 0) {
			char *v = line + plen;
			while (*v == ' ' || *v == '\t')
				v++;
			v[strcspn(v, "\n")] = 0;
			printf("%s=%s\n", key, v);
			fclose(f);
			return;
		}
	}
	printf("%s=\n", key);
	fclose(f);
}

static int cmdline_has(pid_t pid, const char *needle, size_t nlen)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	return n > 0 && memmem(buf, (size_t)n, needle, nlen) != NULL;
}

static const char *errname(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOENT: return "ENOENT";
	case EROFS: return "EROFS";
	case ESRCH: return "ESRCH";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	case ENXIO: return "ENXIO";
	case EEXIST: return "EEXIST";
	default: return "EOTHER";
	}
}

static void escape_result(const char *name, int rc, int err)
{
	if (rc == 0)
		printf("escape.%s=allowed\n", name);
	else
		printf("escape.%s=blocked:%s\n", name, errname(err));
}

static int cmd_isolation(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: virtlab-probe isolation TOKEN CANARY_PID\n");
		return 2;
	}
	const char *token = argv[2];
	pid_t canary = (pid_t)parse_long(argv[3], "pid", 0, 1 << 30);
	char needle[256];
	int nlen = snprintf(needle, sizeof(needle), "canary%c%s", 0, token);
	struct utsname u;
	uname(&u);
	printf("kernel=%s\nhostname=%s\n", u.release, u.nodename);
	print_file_line("/proc/sys/kernel/random/boot_id", "", "boot_id");
	const char *nss[] = {"mnt", "net", "pid", "uts", "ipc", "user", "cgroup"};
	for (size_t i = 0; i < sizeof(nss) / sizeof(nss[0]); i++) {
		char p[64], l[128];
		snprintf(p, sizeof(p), "/proc/self/ns/%s", nss[i]);
		ssize_t n = readlink(p, l, sizeof(l) - 1);
		l[n > 0 ? n : 0] = 0;
		printf("ns.%s=%s\n", nss[i], l);
	}
	print_file_line("/proc/self/status", "Seccomp:", "seccomp");
	print_file_line("/proc/self/status", "Seccomp_filters:", "seccomp_filters");
	print_file_line("/proc/self/status", "NoNewPrivs:", "no_new_privs");
	print_file_line("/proc/self/status", "CapEff:", "cap_eff");
	print_file_line("/proc/self/uid_map", "", "uid_map");

	/* Processes: how many are visible, and whether the host's canary is among them. */
	long pids = 0;
	int canary_seen = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		pids++;
		pid_t p = (pid_t)atol(e->d_name);
		if (p != getpid() && cmdline_has(p, needle, (size_t)nlen))
			canary_seen = 1;
	}
	if (d)
		closedir(d);
	printf("pids_visible=%ld\ncanary_visible=%d\n", pids, canary_seen);

	FILE *mi = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	while (mi && fgets(line, sizeof(line), mi)) {
		char mp[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1)
			printf("mount=%s\n", mp);
	}
	if (mi)
		fclose(mi);

	d = opendir("/dev");
	while (d && (e = readdir(d))) {
		struct stat st;
		char p[512];
		snprintf(p, sizeof(p), "/dev/%s", e->d_name);
		if (lstat(p, &st) == 0 && (S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode)))
			printf("dev=%s:%c:%u:%u\n", e->d_name, S_ISBLK(st.st_mode) ? 'b' : 'c', major(st.st_rdev),
			       minor(st.st_rdev));
	}
	if (d)
		closedir(d);
	d = opendir("/sys/class/net");
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			printf("netif=%s\n", e->d_name);
	if (d)
		closedir(d);

	/* Escape probes: each must fail in an isolated instance. They change nothing that stays. */
	char tmpl[] = "/tmp/.virtlab-probe-XXXXXX";
	mkdir("/tmp", 01777);
	char *dir = mkdtemp(tmpl);
	if (dir) {
		int rc = mount("virtlab-probe", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k");
		int err = errno;
		if (rc == 0)
			umount2(dir, MNT_DETACH);
		escape_result("mount", rc, err);
		/* mknod of a real block device, then open it: creating a node is harmless, reading the disk is not. */
		unsigned maj = 8, min = 0;
		DIR *bd = opendir("/sys/dev/block");
		struct dirent *be;
		while (bd && (be = readdir(bd)))
			if (sscanf(be->d_name, "%u:%u", &maj, &min) == 2)
				break;
		if (bd)
			closedir(bd);
		char node[600];
		snprintf(node, sizeof(node), "%s/blk", dir);
		rc = mknod(node, S_IFBLK | 0600, makedev(maj, min));
		err = errno;
		if (rc == 0) {
			int bfd = open(node, O_RDONLY | O_CLOEXEC);
			err = errno;
			rc = bfd >= 0 ? 0 : -1;
			if (bfd >= 0)
				close(bfd);
			unlink(node);
		}
		printf("mknod_device=%u:%u\n", maj, min);
		escape_result("mknod", rc, err);
		rmdir(dir);
	} else {
		printf("escape.mount=untested:%s\nescape.mknod=untested:%s\n", errname(errno), errname(errno));
	}
	int fd = open("/dev/mem", O_RDONLY | O_CLOEXEC);
	int err = errno;
	if (fd >= 0)
		close(fd);
	escape_result("devmem", fd >= 0 ? 0 : -1, err);
	/* Opening for writing is the test; nothing is written. */
	fd = open("/proc/sys/kernel/hostname", O_WRONLY | O_CLOEXEC);
	err = errno;
	if (fd >= 0)
		close(fd);
	escape_result("procsys", fd >= 0 ? 0 : -1, err);
	/* Attach only to the host's canary: if that process is not visible, the attempt is blocked. */
	if (canary > 0 && cmdline_has(canary, needle, (size_t)nlen)) {
		long rc = ptrace(PTRACE_ATTACH, canary, NULL, NULL);
		err = errno;
		if (rc == 0) {
			waitpid(canary, NULL, __WALL);
			ptrace(PTRACE_DETACH, canary, NULL, NULL);
		}
		escape_result("ptrace", rc == 0 ? 0 : -1, err);
	} else {
		escape_result("ptrace", -1, ESRCH);
	}
	return 0;
}

static int cmd_canary(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	handle_term();
	sleep_forever(0);
	return 0;
}

static int cmd_memhog(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: virtlab-probe memhog MB\n");
		return 2;
	}
	long mb = parse_long(argv[2], "MB", 0, 1 << 24);
	size_t size = (size_t)mb * MIB;
	char *p = size ? malloc(size) : NULL;
	if (size && !p) {
		fprintf(stderr, "virtlab-probe: cannot allocate %ld MiB\n", mb);
		return 1;
	}
	for (size_t i = 0; i < size; i += 4096)
		p[i] = 1;
	printf("touched_mb=%ld\n", mb);
	fflush(stdout);
	handle_term();
	announce_ready();
	sleep_forever(0);
	return 0;
}

static int cmd_forkbomb(int argc, char **argv)
{
	long max = argc > 2 ? parse_long(argv[2], "max", 1, 1 << 22) : 4096;
	pid_t *kids = calloc((size_t)max, sizeof(pid_t));
	long n = 0;
	int err = 0;
	while (n < max) {
		pid_t pid = fork();
		if (pid < 0) {
			err = errno;
			break;
		}
		if (pid == 0) {
			for (;;)
				pause();
		}
		kids[n++] = pid;
	}
	for (long i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	for (long i = 0; i < n; i++)
		waitpid(kids[i], NULL, 0);
	printf("forked=%ld\nstopped_by=%s\n", n, err ? errname(err) : "max");
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: virtlab-probe ready|noop|cpu|mem|syscall|fork|fileio|net|netserve|netclient|netup|"
			"http|isolation|"
			"canary|memhog|forkbomb ARGS\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage();
		return 2;
	}
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	const char *c = argv[1];
	int rc;
	if (!strcmp(c, "ready"))
		rc = cmd_ready(argc, argv);
	else if (!strcmp(c, "noop"))
		rc = 0;
	else if (!strcmp(c, "cpu"))
		rc = cmd_cpu(argc, argv);
	else if (!strcmp(c, "mem"))
		rc = cmd_mem(argc, argv);
	else if (!strcmp(c, "syscall"))
		rc = cmd_syscall(argc, argv);
	else if (!strcmp(c, "fork"))
		rc = cmd_fork(argc, argv);
	else if (!strcmp(c, "fileio"))
		rc = cmd_fileio(argc, argv);
	else if (!strcmp(c, "netserve"))
		rc = cmd_netserve(argc, argv);
	else if (!strcmp(c, "netclient"))
		rc = cmd_netclient(argc, argv);
	else if (!strcmp(c, "netup"))
		rc = cmd_netup(argc, argv);
	else if (!strcmp(c, "http"))
		rc = cmd_http(argc, argv);
	else if (!strcmp(c, "isolation"))
		rc = cmd_isolation(argc, argv);
	else if (!strcmp(c, "canary"))
		rc = cmd_canary(argc, argv);
	else if (!strcmp(c, "memhog"))
		rc = cmd_memhog(argc, argv);
	else if (!strcmp(c, "forkbomb"))
		rc = cmd_forkbomb(argc, argv);
	else {
		usage();
		return 2;
	}
	fflush(stdout);
	return rc;
}
