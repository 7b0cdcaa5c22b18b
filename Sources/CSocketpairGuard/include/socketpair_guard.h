#ifndef SOCKETPAIR_GUARD_H
#define SOCKETPAIR_GUARD_H

/// libmosquitto 2.0.x opens a socketpair in `mosquitto_new` only to wake its own select() loop;
/// an external loop never needs it, and it costs two descriptors per client plus a write per
/// queued packet. When refusal is enabled, `socketpair()` fails with EMFILE on a thread while
/// that thread is inside `SocketpairGuard_begin()`/`SocketpairGuard_end()`, and libmosquitto
/// carries on without it (a logged warning). Everywhere else the real `socketpair` runs.
///
/// For this to work the executable must export `socketpair` (check with `nm -D`): it does,
/// because libmosquitto, a shared library it links, refers to it.

/// Turns refusal on or off for the whole process (off by default).
void SocketpairGuard_setEnabled(int enabled);
int SocketpairGuard_isEnabled(void);
/// Marks the calling thread as inside `mosquitto_new` (refuse when enabled).
void SocketpairGuard_begin(void);
void SocketpairGuard_end(void);
/// How many socketpairs were refused so far (process-wide).
long SocketpairGuard_refusals(void);
/// 1 when this object's `socketpair` is the one the process uses (the interposition works).
int SocketpairGuard_isInterposed(void);

#endif
