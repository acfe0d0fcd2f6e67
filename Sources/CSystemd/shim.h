#pragma once
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <systemd/sd-event.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <signal.h>

/* glibc declares accept4 only under _GNU_SOURCE, which Swift's Glibc module is built without. */
extern int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

#include <sys/syscall.h>
#include <unistd.h>
/* The calling thread's id (glibc 2.36 has gettid(), but only under _GNU_SOURCE). */
static inline pid_t onekey_gettid(void) { return (pid_t)syscall(SYS_gettid); }
