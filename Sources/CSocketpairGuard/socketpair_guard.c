#define _GNU_SOURCE
#include "socketpair_guard.h"

#include <dlfcn.h>
#include <errno.h>
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
