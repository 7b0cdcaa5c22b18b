#ifndef SENSORFLEET_CEPOLL_H
#define SENSORFLEET_CEPOLL_H

// The Linux calls the reactor waits with (epoll, eventfd), and nothing else. glibc declares the
// epoll flags in an enum and `struct epoll_event` packed, both awkward from Swift: these small
// functions, prefixed CEpoll_, hide that.
#include <stdint.h>
#include <stddef.h>

static const uint32_t CEpoll_IN = 0x001;
static const uint32_t CEpoll_OUT = 0x004;
static const uint32_t CEpoll_ERR = 0x008;
static const uint32_t CEpoll_HUP = 0x010;

/// epoll_create1(EPOLL_CLOEXEC); -1 and errno on failure.
int CEpoll_create(void);
/// eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); -1 and errno on failure.
int CEpoll_eventfd(void);
/// Adds `fd` (or modifies it when it is already there) with `events` and the token `data`.
int CEpoll_watch(int epfd, int fd, uint32_t events, uint64_t data);
/// Changes the events of a watched `fd`.
int CEpoll_modify(int epfd, int fd, uint32_t events, uint64_t data);
/// Waits; fills `tokens` and `events` (each `capacity` long) and returns how many are ready
/// (0 on time-out or EINTR, -1 on other errors).
int CEpoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int capacity, int timeoutMillis);
/// The last errno of this thread.
int CEpoll_errno(void);

#endif
