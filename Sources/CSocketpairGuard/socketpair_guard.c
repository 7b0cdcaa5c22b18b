#define _GNU_SOURCE
#include "socketpair_guard.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/socket.h>

static atomic_int enabled = 0;
static atomic_long refusals = 0;
static _Thread_local int inside = 0;

typedef int (*socketpair_fn)(int, int, int, int[2]);
static _Atomic(socketpair_fn) real_socketpair = NULL;

void SocketpairGuard_setEnabled(int value) { atomic_store(&enabled, value ? 1 : 0); }
int SocketpairGuard_isEnabled(void) { return atomic_load(&enabled); }
void SocketpairGuard_begin(void) { inside = 1; }
void SocketpairGuard_end(void) { inside = 0; }
long SocketpairGuard_refusals(void) { return atomic_load(&refusals); }

int SocketpairGuard_isInterposed(void) {
    void *found = dlsym(RTLD_DEFAULT, "socketpair");
    return found == (void *)&socketpair;
}

__attribute__((visibility("default")))
int socketpair(int domain, int type, int protocol, int sv[2]) {
    if (inside && atomic_load(&enabled)) {
        atomic_fetch_add(&refusals, 1);
        errno = EMFILE;
        return -1;
    }
    socketpair_fn fn = atomic_load(&real_socketpair);
    if (fn == NULL) {
        fn = (socketpair_fn)dlsym(RTLD_NEXT, "socketpair");
        if (fn == NULL) { errno = ENOSYS; return -1; }
        atomic_store(&real_socketpair, fn);
    }
    return fn(domain, type, protocol, sv);
}

// Non-blocking connect for the libmosquitto calls that connect blocking (see the header).
static _Thread_local int nonblocking_connect = 0;
static atomic_long nonblocking_connects = 0;
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
static _Atomic(connect_fn) real_connect = NULL;

void ConnectGuard_begin(void) { nonblocking_connect = 1; }
void ConnectGuard_end(void) { nonblocking_connect = 0; }
long ConnectGuard_count(void) { return atomic_load(&nonblocking_connects); }

int ConnectGuard_isInterposed(void) {
    void *found = dlsym(RTLD_DEFAULT, "connect");
    return found == (void *)&connect;
}

__attribute__((visibility("default")))
int connect(int fd, const struct sockaddr *address, socklen_t length) {
    if (nonblocking_connect) {
        int flags = fcntl(fd, F_GETFL, 0);
        if (flags >= 0 && (flags & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0) {
            atomic_fetch_add(&nonblocking_connects, 1);
        }
    }
    connect_fn fn = atomic_load(&real_connect);
    if (fn == NULL) {
        fn = (connect_fn)dlsym(RTLD_NEXT, "connect");
        if (fn == NULL) { errno = ENOSYS; return -1; }
        atomic_store(&real_connect, fn);
    }
    return fn(fd, address, length);
}
