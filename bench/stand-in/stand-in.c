/*
 * stand-in: a light crosvm for fleet benchmarks. It accepts the `crosvm [--extended-status] run
 * [options] KERNEL` command line vmwarden builds, keeps every descriptor it inherits open (as a VMM
 * holds its disks and serial files), serves the control socket of `--socket PATH` and exits 0 when
 * asked to stop. `stand-in stop|suspend|resume SOCKET` is the matching client.
 *
 * The control protocol is crosvm-sim's (tools/crosvm-sim/control-protocol.ts): one JSON value per
 * line over a Unix stream socket, requests spelled as crosvm's serde spells `VmRequest` ("Exit",
 * "SuspendVcpus", "ResumeVcpus"), every carried-out request answered "Ok".
 *
 * It boots nothing: crosvm-sim stays the faithful simulator for tests; this one only weighs a few
 * hundred KiB, so ten thousand of them fit where five hundred Node processes did not.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST_BYTES 4096

static const char *bound_path;

static void unlink_socket(void) {
	if (bound_path != NULL) {
		unlink(bound_path);
	}
}

static int fail(const char *what) {
	fprintf(stderr, "stand-in: %s: %s\n", what, strerror(errno));
	return 1;
}

static int socket_address(const char *path, struct sockaddr_un *address) {
	memset(address, 0, sizeof(*address));
	address->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(address->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(address->sun_path, path);
	return 0;
}

static int write_all(int fd, const char *text) {
	size_t left = strlen(text);
	while (left > 0) {
		ssize_t written = write(fd, text, left);
		if (written < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -1;
		}
		text += written;
		left -= (size_t)written;
	}
	return 0;
}

/* Reads one line (without the newline) into `line`; 0 on success. */
static int read_line(int fd, char *line, size_t size) {
	size_t used = 0;
	while (used + 1 < size) {
		ssize_t got = read(fd, line + used, size - 1 - used);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got <= 0) {
			break;
		}
		used += (size_t)got;
		char *newline = memchr(line, '\n', used);
		if (newline != NULL) {
			*newline = '\0';
			return 0;
		}
	}
	line[used] = '\0';
	return used > 0 ? 0 : -1;
}

/* `stand-in stop|suspend|resume SOCKET`: one request, exit 0 on "Ok", as `crosvm stop` does. */
static int control_client(const char *command, const char *path) {
	const char *request = strcmp(command, "stop") == 0 ? "\"Exit\"\n" : strcmp(command, "suspend") == 0 ? "\"SuspendVcpus\"\n" : "\"ResumeVcpus\"\n";
	struct sockaddr_un address;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return fail("socket");
	}
	if (socket_address(path, &address) != 0 || connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
		fprintf(stderr, "stand-in: failed to connect to socket at '%s': %s\n", path, strerror(errno));
		return 1;
	}
	if (write_all(fd, request) != 0) {
		return fail("write");
	}
	char answer[MAX_REQUEST_BYTES];
	if (read_line(fd, answer, sizeof(answer)) != 0) {
		fprintf(stderr, "stand-in: no response to the request\n");
		return 1;
	}
	if (strcmp(answer, "\"Ok\"") != 0) {
		fprintf(stderr, "stand-in: unexpected response: %s\n", answer);
		return 1;
	}
	return 0;
}

/* Answers one connection; returns 1 when the VM must exit. */
static int serve(int connection) {
	char request[MAX_REQUEST_BYTES];
	if (read_line(connection, request, sizeof(request)) != 0) {
		return 0;
	}
	if (strcmp(request, "\"Exit\"") == 0) {
		write_all(connection, "\"Ok\"\n");
		return 1;
	}
	if (strcmp(request, "\"SuspendVcpus\"") == 0 || strcmp(request, "\"ResumeVcpus\"") == 0) {
		write_all(connection, "\"Ok\"\n");
		return 0;
	}
	write_all(connection, "{\"Err\":\"unsupported request\"}\n");
	return 0;
}

static int run(int argc, char **argv) {
	const char *socket_path = NULL;
	const char *kernel = NULL;
	for (int index = 0; index < argc; index++) {
		const char *argument = argv[index];
		if (strcmp(argument, "--socket") == 0 && index + 1 < argc) {
			socket_path = argv[++index];
		} else if (strncmp(argument, "--socket=", 9) == 0) {
			socket_path = argument + 9;
		} else if (argument[0] == '-' && argument[1] == '-') {
			/* Every other option of vmwarden's command line takes a value unless it is a switch. */
			if (strcmp(argument, "--disable-sandbox") != 0 && strcmp(argument, "--protected-vm") != 0 && strchr(argument, '=') == NULL && index + 1 < argc) {
				index++;
			}
		} else {
			kernel = argument;
		}
	}
	if (kernel == NULL) {
		fprintf(stderr, "stand-in: run needs a kernel (the last argument)\n");
		return 1;
	}
	if (socket_path == NULL) {
		/* Nothing can ask it to stop: it runs until a signal ends it. */
		for (;;) {
			pause();
		}
	}

	struct sockaddr_un address;
	int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (server < 0) {
		return fail("socket");
	}
	if (socket_address(socket_path, &address) != 0 || bind(server, (struct sockaddr *)&address, sizeof(address)) != 0) {
		fprintf(stderr, "stand-in: failed to create control server: %s\n", strerror(errno));
		return 1;
	}
	bound_path = socket_path;
	atexit(unlink_socket);
	if (listen(server, 16) != 0) {
		return fail("listen");
	}
	for (;;) {
		int connection = accept4(server, NULL, NULL, SOCK_CLOEXEC);
		if (connection < 0) {
			if (errno == EINTR || errno == ECONNABORTED) {
				continue;
			}
			return fail("accept");
		}
		int exit_now = serve(connection);
		close(connection);
		if (exit_now) {
			unlink_socket();
			bound_path = NULL;
			/* For latency benchmarks: the last instant before the exit, on the clock Node's hrtime reads. */
			if (getenv("STAND_IN_EXIT_STAMP") != NULL) {
				struct timespec now;
				clock_gettime(CLOCK_MONOTONIC, &now);
				fprintf(stderr, "exit-ns %lld\n", (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
			}
			return 0;
		}
	}
}

int main(int argc, char **argv) {
	/* A stop client whose VM vanished must not die of SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	int index = 1;
	while (index < argc && argv[index][0] == '-') {
		/* Global options: --extended-status, --log-level LEVEL, --syslog-tag TAG, --no-syslog. */
		if ((strcmp(argv[index], "--log-level") == 0 || strcmp(argv[index], "--syslog-tag") == 0) && index + 1 < argc) {
			index++;
		}
		index++;
	}
	if (index >= argc) {
		fprintf(stderr, "usage: stand-in [--extended-status] run [OPTIONS] KERNEL | stop|suspend|resume SOCKET\n");
		return 1;
	}
	const char *command = argv[index];
	if (strcmp(command, "run") == 0) {
		return run(argc - index - 1, argv + index + 1);
	}
	if ((strcmp(command, "stop") == 0 || strcmp(command, "suspend") == 0 || strcmp(command, "resume") == 0) && index + 2 == argc) {
		return control_client(command, argv[index + 1]);
	}
	fprintf(stderr, "stand-in: unknown command line (run, stop, suspend or resume)\n");
	return 1;
}
