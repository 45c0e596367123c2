/* path.c — how src/io opens files given by name, which may come from
 * strangers (docs/file-formats.md, "Every file is untrusted"): inputs
 * opened without blocking and refused unless regular files; outputs replaced
 * atomically through a temporary file that nothing planted beforehand can
 * redirect; and an advisory lock for checkpoint paths.
 *
 * Output decisions:
 *  - An existing target must be a regular file.  A device, FIFO, socket or
 *    directory is refused (run as root, `--out /dev/null` would otherwise
 *    replace the device with a file).  A symbolic link is refused too,
 *    whatever it points to: the rename that makes a save atomic would
 *    replace the link itself, not the file it names, which surprises the
 *    owner of the link; writing through it instead would let a link planted
 *    in a shared directory aim root's save at any file.  The message says to
 *    give the link's target.
 *  - The temporary file is ".<name>.wick-tmp.<12 random characters>" in the
 *    target's directory (the rename must not cross file systems), created
 *    with O_CREAT | O_EXCL | O_NOFOLLOW: a link or file planted at that name
 *    makes the open fail and another name is drawn; it is never followed or
 *    reused.  Its name comes from getrandom, so it cannot be guessed ahead.
 *    The writer holds flock(LOCK_EX) on it while it lives.
 *  - Permissions: a new file gets 0666 & ~umask, as any program's (cp,
 *    Python's open).  Over an existing file the temporary is created 0600
 *    and given the old file's permission bits (0777 of them: set-user-ID and
 *    set-group-ID are not carried over to a data file) and, when we are
 *    root, its owner and group (when we own it, its group where allowed), so
 *    a 0600 model stays 0600 and root saving a user's model leaves it
 *    theirs.  ACLs and extended attributes are not copied.
 *  - A save killed mid-file (SIGKILL, power) leaves its temporary behind.
 *    The next save of the same target removes those that are certainly
 *    wick's and dead: the exact name pattern for this target, a regular file
 *    (not a link) with one link, owned by our effective uid, untouched for
 *    TMP_STALE_S, and not locked (a live writer holds its flock; the kernel
 *    drops it when the writer dies).  Anything else is left alone. */
#include "core/core.h"
#include "io/io.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A temporary untouched this long, unlocked, is a dead save's. */
#define TMP_STALE_S 600
#define TMP_TAG ".wick-tmp."
#define TMP_RAND 12
static const char tmp_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const char *wick_io_kind(unsigned mode) {
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
    }
    return "of an unknown file type";
}

/* ---------------------------------------------------------------------------
 * Inputs
 * ------------------------------------------------------------------------- */

wick_status wick_io_open_input(const char *path, int *fd_out, struct stat *st_out) {
    *fd_out = -1;
    struct stat st;
    /* stat first, so that a device is refused without being opened (an open
     * alone can act on some); then the opened file itself is checked */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return wick_fail(WICK_EIO, "%s: not a regular file (%s)", path, wick_io_kind(st.st_mode));
    /* O_NONBLOCK: a FIFO put there since the stat must not hang the open */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return wick_fail(WICK_EIO, "%s: cannot open: %s", path, strerror(errno));
    wick_status s = WICK_OK;
    int fl;
    if (fstat(fd, &st) != 0)
        s = wick_fail(WICK_EIO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s = wick_fail(WICK_EIO, "%s: not a regular file (%s)", path, wick_io_kind(st.st_mode));
    else if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        s = wick_fail(WICK_EIO, "%s: fcntl: %s", path, strerror(errno));
    if (s) {
        close(fd);
        return s;
    }
    if (st_out) *st_out = st;
    *fd_out = fd;
    return WICK_OK;
}

/* ---------------------------------------------------------------------------
 * Output targets
 * ------------------------------------------------------------------------- */

wick_status wick_io_check_output(const char *path, struct stat *old, int *exists) {
    struct stat st;
    *exists = 0;
    if (lstat(path, &st) != 0) {
        /* missing (the usual case), or a directory we cannot reach: creating
         * the temporary file reports the latter with its reason */
        return WICK_OK;
    }
    if (S_ISLNK(st.st_mode)) {
        struct stat to;
        char what[64];
        if (stat(path, &to) != 0) snprintf(what, sizeof what, "dangling");
        else snprintf(what, sizeof what, "to %s", wick_io_kind(to.st_mode));
        return wick_fail(WICK_EIO, "%s: is a symbolic link (%s): wick replaces a file by renaming "
                         "over it and would replace the link; give the link's target", path, what);
    }
    if (!S_ISREG(st.st_mode))
        return wick_fail(WICK_EIO, "%s: is %s, not a regular file: refusing to replace it", path,
                         wick_io_kind(st.st_mode));
    if (old) *old = st;
    *exists = 1;
    return WICK_OK;
}

/* 12 characters of tmp_alphabet from 72 random bits. */
static void random_tag(char *out) {
    unsigned char r[9];
    ssize_t got = getrandom(r, sizeof r, GRND_NONBLOCK);
    if (got != (ssize_t)sizeof r) {
        /* no entropy yet (early boot) or no getrandom: O_EXCL still makes
         * the name safe, only guessable; mix the clock and pid */
        static _Atomic unsigned long serial;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec << 20 ^
                     (uint64_t)getpid() << 40 ^ serial++;
        for (int i = 0; i < 9; i++) {
            x ^= x >> 29;
            x *= 0xBF58476D1CE4E5B9ull;
            r[i] = (unsigned char)(x >> 56);
        }
    }
    for (int i = 0; i < 3; i++) {   /* 3 bytes -> 4 characters */
        uint32_t v = (uint32_t)r[3 * i] << 16 | (uint32_t)r[3 * i + 1] << 8 | r[3 * i + 2];
        for (int k = 0; k < 4; k++) out[4 * i + k] = tmp_alphabet[(v >> (18 - 6 * k)) & 63];
    }
    out[TMP_RAND] = 0;
}

/* Is name this target's temporary: prefix, then exactly TMP_RAND
 * characters of the alphabet? */
static int tmp_name_matches(const char *name, const char *prefix, size_t plen) {
    if (strncmp(name, prefix, plen) != 0) return 0;
    const char *r = name + plen;
    if (strlen(r) != TMP_RAND) return 0;
    for (int i = 0; i < TMP_RAND; i++)
        if (!r[i] || !strchr(tmp_alphabet, r[i])) return 0;
    return 1;
}

/* Removes this target's temporaries left by dead saves (the rules are in the
 * comment at the top).  Best effort: never fails the save. */
static void remove_stale(int dfd, const char *prefix) {
    int d2 = dup(dfd);
    if (d2 < 0) return;
    DIR *dir = fdopendir(d2);
    if (!dir) {
        close(d2);
        return;
    }
    rewinddir(dir);
    size_t plen = strlen(prefix);
    time_t now = time(NULL);
    uid_t me = geteuid();
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!tmp_name_matches(e->d_name, prefix, plen)) continue;
        struct stat st, st2;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
            st.st_uid != me || st.st_nlink != 1 || now - st.st_mtime < TMP_STALE_S)
            continue;
        int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) continue;
        /* the same file as was checked, and no live writer holds it */
        if (fstat(fd, &st2) == 0 && st2.st_dev == st.st_dev && st2.st_ino == st.st_ino &&
            flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == st2.st_dev &&
            st.st_ino == st2.st_ino)
            unlinkat(dfd, e->d_name, 0);
        close(fd);
    }
    closedir(dir);
}

void wick_io_out_abort(wick_io_out *o) {
    if (o->fd >= 0) close(o->fd);
    if (o->tmp && o->tmp[0] && o->dfd >= 0) unlinkat(o->dfd, o->tmp, 0);
    if (o->dfd >= 0) close(o->dfd);
    wick_free(o->tmp);
    wick_free(o->dir);
    o->fd = o->dfd = -1;
    o->tmp = o->dir = NULL;
}

wick_status wick_io_out_open(wick_io_out *o, const char *path) {
    memset(o, 0, sizeof *o);
    o->fd = o->dfd = -1;
    o->path = path;
    wick_status s = wick_io_check_output(path, &o->old, &o->exists);
    if (s) return s;
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    o->base = slash ? slash + 1 : path;
    if (!*o->base) return wick_fail(WICK_EINVAL, "%s: path names a directory", path);
    /* ".<base>.wick-tmp.XXXXXXXXXXXX" within NAME_MAX: a long base is cut
     * (the same way every time, so that stale ones still match) */
    size_t blen = strlen(o->base), bmax = NAME_MAX - 1 - strlen(TMP_TAG) - TMP_RAND;
    if (blen > bmax) blen = bmax;
    o->dir = wick_malloc(dlen + 2);
    o->tmp = wick_malloc(NAME_MAX + 1);
    if (!o->dir || !o->tmp) {
        s = wick_fail(WICK_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (slash) {
        memcpy(o->dir, path, dlen ? dlen : 1);   /* "/x" -> "/" */
        o->dir[dlen ? dlen : 1] = 0;
    } else {
        strcpy(o->dir, ".");
    }
    o->tmp[0] = 0;
    o->dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (o->dfd < 0) {
        s = wick_fail(WICK_EIO, "%s: cannot create the temporary file in '%s': %s", path, o->dir,
                      strerror(errno));
        goto fail;
    }
    char prefix[NAME_MAX + 1];
    snprintf(prefix, sizeof prefix, ".%.*s%s", (int)blen, o->base, TMP_TAG);
    remove_stale(o->dfd, prefix);
    /* 0600 while it is written when it replaces a file (its permissions are
     * applied at commit); 0666 & ~umask for a new file */
    mode_t mode = o->exists ? 0600 : 0666;
    for (int tries = 0;; tries++) {
        char tag[TMP_RAND + 1];
        random_tag(tag);
        snprintf(o->tmp, NAME_MAX + 1, "%s%s", prefix, tag);
        o->fd = openat(o->dfd, o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                       mode);
        if (o->fd >= 0) break;
        int err = errno;
        if (err == EEXIST && tries < 16) continue;   /* something is at that name: never touch it */
        o->tmp[0] = 0;
        s = wick_fail(WICK_EIO, "%s: cannot create the temporary file in '%s': %s", path, o->dir,
                      strerror(err));
        goto fail;
    }
    /* marks it live for remove_stale in other processes; a file system
     * without flock only loses that mark (the age rule still holds) */
    (void)flock(o->fd, LOCK_EX | LOCK_NB);
    return WICK_OK;
fail:
    wick_io_out_abort(o);
    return s;
}

wick_status wick_io_out_commit(wick_io_out *o) {
    const char *path = o->path;
    wick_status s = WICK_OK;
    if (o->exists) {
        uid_t me = geteuid();
        if (me == 0) {
            if (fchown(o->fd, o->old.st_uid, o->old.st_gid) != 0) {
                s = wick_fail(WICK_EIO, "%s: cannot give the new file the old one's owner %ld:%ld: %s",
                              path, (long)o->old.st_uid, (long)o->old.st_gid, strerror(errno));
                goto fail;
            }
        } else if (o->old.st_uid == me && o->old.st_gid != getegid()) {
            (void)fchown(o->fd, (uid_t)-1, o->old.st_gid);   /* allowed only for our groups */
        }
        if (fchmod(o->fd, o->old.st_mode & 0777) != 0) {
            s = wick_fail(WICK_EIO, "%s: cannot give the new file mode %04o: %s", path,
                          (unsigned)(o->old.st_mode & 0777), strerror(errno));
            goto fail;
        }
    }
    if (fsync(o->fd) != 0) {
        s = wick_fail(WICK_EIO, "%s: fsync of '%s' failed: %s", path, o->tmp, strerror(errno));
        goto fail;
    }
    int rc = close(o->fd);
    o->fd = -1;
    if (rc != 0) {
        s = wick_fail(WICK_EIO, "%s: closing '%s' failed: %s", path, o->tmp, strerror(errno));
        goto fail;
    }
    /* the target again, just before replacing it: it may have changed while
     * the file was written */
    struct stat st;
    if (fstatat(o->dfd, o->base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
        s = wick_fail(WICK_EIO, "%s: is %s now, not a regular file: refusing to replace it", path,
                      wick_io_kind(st.st_mode));
        goto fail;
    }
    if (renameat(o->dfd, o->tmp, o->dfd, o->base) != 0) {
        s = wick_fail(WICK_EIO, "%s: cannot rename '%s' over it: %s", path, o->tmp, strerror(errno));
        goto fail;
    }
    o->tmp[0] = 0;
    /* the rename is durable only once the directory is on disk */
    if (fsync(o->dfd) != 0)
        s = wick_fail(WICK_EIO, "%s: written, but syncing directory '%s' failed: %s", path, o->dir,
                      strerror(errno));
fail:
    wick_io_out_abort(o);
    return s;
}

/* ---------------------------------------------------------------------------
 * The advisory lock
 * ------------------------------------------------------------------------- */

wick_status wick_path_lock(const char *path, int *fd_out) {
    if (!fd_out) return wick_fail(WICK_EINVAL, "wick_path_lock: NULL argument");
    *fd_out = -1;
    if (!path || !*path) return wick_fail(WICK_EINVAL, "wick_path_lock: no path");
    size_t n = strlen(path);
    char *lp = wick_malloc(n + 6);
    if (!lp) return wick_fail(WICK_ENOMEM, "%s: out of memory", path);
    memcpy(lp, path, n);
    memcpy(lp + n, ".lock", 6);
    wick_status s = WICK_OK;
    struct stat st;
    int fd = -1, writable = 1;
    /* lstat first: a device or FIFO planted at the name is never opened */
    if (lstat(lp, &st) == 0 && !S_ISREG(st.st_mode)) {
        s = wick_fail(WICK_EIO, "%s: is %s, not a regular file", lp, wick_io_kind(st.st_mode));
        goto out;
    }
    int fl = O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
    fd = open(lp, O_RDWR | O_CREAT | fl, 0666);
    if (fd < 0 && errno == EACCES) {
        /* someone else's lock file that we may only read: flock works on
         * it all the same, our pid just cannot be written */
        fd = open(lp, O_RDONLY | fl);
        writable = 0;
    }
    if (fd < 0) {
        if (errno == ELOOP)
            s = wick_fail(WICK_EIO, "%s: is a symbolic link, not a regular file", lp);
        else
            s = wick_fail(WICK_EIO, "%s: cannot open the lock file: %s", lp, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s = wick_fail(WICK_EIO, "%s: is %s, not a regular file", lp, wick_io_kind(st.st_mode));
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            char b[32] = {0};
            ssize_t r = pread(fd, b, sizeof b - 1, 0);
            char *end;
            long pid = r > 0 ? strtol(b, &end, 10) : 0;
            if (r > 0 && pid > 0 && (*end == '\n' || *end == 0))
                s = wick_fail(WICK_EIO, "%s is locked by another wick run (pid %ld)", path, pid);
            else
                s = wick_fail(WICK_EIO, "%s is locked by another wick run (pid unknown)", path);
        } else {
            s = wick_fail(WICK_EIO, "%s: cannot lock: %s", lp, strerror(errno));
        }
        goto out;
    }
    if (writable) {
        char b[32];
        int k = snprintf(b, sizeof b, "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, b, (size_t)k, 0) != k) {
            /* the lock holds; only the pid in a competitor's message is lost */
        }
    }
    *fd_out = fd;
    fd = -1;
out:
    if (fd >= 0) close(fd);
    wick_free(lp);
    return s;
}

void wick_path_unlock(int fd) {
    if (fd < 0) return;
    /* the file stays: removing it would let a second run lock a new file
     * while a third still waits on the old one */
    if (ftruncate(fd, 0) != 0) { /* only the pid stays behind */ }
    flock(fd, LOCK_UN);
    close(fd);
}
