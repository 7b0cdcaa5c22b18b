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

/// libmosquitto 2.0.11 has no asynchronous connect that takes MQTT 5 CONNECT properties (the
/// session expiry interval): `mosquitto_connect_bind_v5` connects its TCP socket blocking, then
/// makes it non-blocking and goes on exactly like `mosquitto_connect_bind_async` (the TLS
/// handshake continues in `loop_read`; EINPROGRESS from `connect()` is accepted on both paths,
/// lib/net_mosq.c `net__try_connect`). Between `ConnectGuard_begin()` and `ConnectGuard_end()`
/// on a thread, `connect()` first makes its socket non-blocking, so that call cannot hold the
/// reactor for a round trip (or a SYN time-out). Everywhere else the real `connect` runs.
void ConnectGuard_begin(void);
void ConnectGuard_end(void);
/// How many sockets were made non-blocking that way (process-wide).
long ConnectGuard_count(void);
/// 1 when this object's `connect` is the one the process uses.
int ConnectGuard_isInterposed(void);

#endif
