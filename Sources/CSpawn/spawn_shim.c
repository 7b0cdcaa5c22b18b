#define _GNU_SOURCE
#include "spawn_shim.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>

int CSpawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
#else
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL) return errno;
    int own = dirfd(dir);
    struct dirent *entry;
    int rc = 0;
    while (rc == 0 && (entry = readdir(dir)) != NULL) {
        char *end;
        long fd = strtol(entry->d_name, &end, 10);
        if (*end != '\0' || end == entry->d_name || fd < lowest || fd == own) continue;
        rc = posix_spawn_file_actions_addclose(actions, (int)fd);
    }
    closedir(dir);
    return rc;
#endif
}
