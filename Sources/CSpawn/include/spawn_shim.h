#ifndef SENSORFLEET_CSPAWN_H
#define SENSORFLEET_CSPAWN_H

// What a child started with posix_spawn may inherit. libmosquitto opens its sockets without
// SOCK_CLOEXEC (lib/net_mosq.c, 2.0.11), so a child spawned while devices connect would hold
// their sockets: the broker would not see a close until the child exits, and our epoll set
// would keep reporting the closed socket's hang-up under the device's token (a registration
// lives as long as its open file does, in any process).
#include <spawn.h>

/// Adds to `actions` the closing, in the child, of every descriptor from `lowest` up:
/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34 and later; Debian 12 and Raspberry Pi
/// OS bookworm have 2.36), or, on an older C library, one close action per descriptor open
/// now (/proc/self/fd). Returns 0, or an errno value.
int CSpawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

#endif
