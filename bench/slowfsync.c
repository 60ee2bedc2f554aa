// LD_PRELOAD shim: every fsync/fdatasync first sleeps SLOWFSYNC_MS (default 8 ms), as network
// block storage or a busy disk does: to see whether a server's event loop waits on the disk.
// With SLOWFSYNC_HOLD=PATH, an fsync also waits for as long as the file PATH exists, having
// first appended a line to PATH.held: "main" on the process's main thread, else "thread".
// Build: cc -shared -fPIC -O2 -o slowfsync.so slowfsync.c -ldl
// Use:   SLOWFSYNC_MS=8 LD_PRELOAD=$PWD/slowfsync.so widget-server serve ...
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void nap(long ns) {
  struct timespec t = {ns / 1000000000L, ns % 1000000000L};
  while (nanosleep(&t, &t) != 0) {
  }
}

static void hold(void) {
  const char *path = getenv("SLOWFSYNC_HOLD");
  if (!path || access(path, F_OK) != 0) return;
  char held[4096];
  snprintf(held, sizeof held, "%s.held", path);
  int fd = open(held, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    const char *who = syscall(SYS_gettid) == getpid() ? "main\n" : "thread\n";
    if (write(fd, who, strlen(who)) < 0) {
    }
    close(fd);
  }
  while (access(path, F_OK) == 0) nap(1000000L);
}

static void slow(void) {
  const char *s = getenv("SLOWFSYNC_MS");
  double ms = s ? atof(s) : 8.0;
  if (ms > 0) nap((long)(ms * 1e6));
  hold();
}

int fsync(int fd) {
  static int (*real)(int) = NULL;
  if (!real) real = dlsym(RTLD_NEXT, "fsync");
  slow();
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int) = NULL;
  if (!real) real = dlsym(RTLD_NEXT, "fdatasync");
  slow();
  return real(fd);
}
