/* test_io_paths.c — the file-system side of src/io (docs/file-formats.md,
 * "Every file is untrusted"): inputs that are not regular files (a FIFO must
 * be refused at once, not hang), output targets that are not regular files
 * (never replace a device), the writer's temporary file (unpredictable name,
 * O_EXCL|O_NOFOLLOW, nothing planted there is followed or reused), the old
 * file's mode and owner kept, stale temporaries of killed saves removed and
 * nothing else, and the advisory lock on a checkpoint path.
 *
 * Cases that need root (mknod, files of another owner, a second uid) print a
 * SKIP line otherwise.  Device nodes are made in the scratch directory: the
 * real /dev/null is never touched. */
#include "check.h"
#include "core/core.h"
#include "io/io.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define NOBODY 65534   /* a uid and gid that are not ours (Debian's nobody/nogroup) */

static const float W[4] = {1, 2, 3, 4};
static const wick_st_tensor T1 = {"w", WICK_DT_F32, 1, {4}, W};

static wick_status save(const char *path) { return wick_st_write(path, &T1, 1, NULL, 0); }

/* Runs fn(arg) in a child and waits at most secs seconds: 0 when the child
 * returned 0, 1 when it returned non-zero, -1 when it hung (killed). */
static int in_child(int (*fn)(const char *), const char *arg, double secs) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) _exit(fn(arg) ? 1 : 0);
    for (double t = 0; t < secs; t += 0.01) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* Does the last error say "<path>: not a regular file (<kind>)"? */
static const char *want_kind;
static int refused_as(wick_status s, const char *path) {
    char want[700];
    snprintf(want, sizeof want, "%s: not a regular file (%s)", path, want_kind);
    if (s == WICK_EIO && strstr(wick_last_error(), want)) return 1;
    fprintf(stderr, "    got %s: \"%s\", want \"%s\"\n", wick_strerror(s), wick_last_error(), want);
    return 0;
}

/* Each reader on path: 0 when all refused it with the expected message. */
static int all_readers_refuse(const char *path) {
    wick_st_file *f = NULL;
    wick_idx *x = NULL;
    wick_dataset *d = NULL;
    double *v = NULL;
    size_t r, c;
    int ok = refused_as(wick_st_read(path, &f), path) && !f;
    ok &= refused_as(wick_idx_read(path, &x), path) && !x;
    ok &= refused_as(wick_csv_read(path, 0, &v, &r, &c), path) && !v;
    ok &= refused_as(wick_dataset_load_csv(path, -1, 0, &d), path) && !d;
    ok &= refused_as(wick_dataset_load_idx(path, path, 0, &d), path) && !d;
    return ok ? 0 : 1;
}

/* ---- inputs -------------------------------------------------------------- */

/* Opening a FIFO for reading blocks until a writer comes: every reader must
 * refuse it at once. */
static void test_fifo_input_refused(void) {
    const char *p = chk_tmp("in.fifo");
    unlink(p);
    if (mkfifo(p, 0600) != 0) SKIP("mkfifo failed");
    want_kind = "a FIFO";
    int r = in_child(all_readers_refuse, p, 10);
    if (r < 0) chk_report(__FILE__, __LINE__, "a reader blocked on a FIFO (killed after 10 s)");
    CHECK(r == 0);
    unlink(p);
}

static void test_directory_input_refused(void) {
    want_kind = "a directory";
    CHECK(all_readers_refuse(chk_tmp("")) == 0);
}

/* A character device (a copy of /dev/null's node, made in the scratch
 * directory): refused by its type, before it is opened. */
static void test_device_input_refused(void) {
    if (geteuid() != 0) SKIP("not root: mknod needs CAP_MKNOD");
    const char *p = chk_tmp("in.chardev");
    unlink(p);
    if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) != 0) SKIP("mknod refused (no CAP_MKNOD here)");
    want_kind = "a character device";
    CHECK(in_child(all_readers_refuse, p, 10) == 0);
    unlink(p);
}

/* ---- output targets ------------------------------------------------------ */

static int count_matching(const char *dir, const char *needle) {
    int k = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) k += strstr(e->d_name, needle) != NULL;
    if (d) closedir(d);
    return k;
}

static int save_fifo_target(const char *p) {
    wick_status s = save(p);
    return !(s == WICK_EIO && strstr(wick_last_error(), "is a FIFO"));
}

/* An existing target that is not a regular file is never replaced. */
static void test_write_special_targets(void) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s", chk_tmp("targets"));
    mkdir(dir, 0755);
    char p[700];
    struct stat st;
    /* a FIFO: refused without opening it (today's writer never blocks on it,
     * but rename would replace it) */
    snprintf(p, sizeof p, "%s/model.fifo", dir);
    mkfifo(p, 0600);
    CHECK(in_child(save_fifo_target, p, 10) == 0);
    CHECK_FAILS(save(p), WICK_EIO, "model.fifo: is a FIFO, not a regular file");
    CHECK(lstat(p, &st) == 0 && S_ISFIFO(st.st_mode));
    /* a socket */
    snprintf(p, sizeof p, "%s/model.sock", dir);
    int sk = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(p) < sizeof sa.sun_path) memcpy(sa.sun_path, p, strlen(p) + 1);
    if (strlen(p) < sizeof sa.sun_path && bind(sk, (struct sockaddr *)&sa, sizeof sa) == 0) {
        CHECK_FAILS(save(p), WICK_EIO, "model.sock: is a socket, not a regular file");
        CHECK(lstat(p, &st) == 0 && S_ISSOCK(st.st_mode));
    }
    close(sk);
    /* a directory */
    snprintf(p, sizeof p, "%s/model.dir", dir);
    mkdir(p, 0755);
    CHECK_FAILS(save(p), WICK_EIO, "model.dir: is a directory, not a regular file");
    CHECK(lstat(p, &st) == 0 && S_ISDIR(st.st_mode));
    /* a device node (root): `--out /dev/null` must not replace the device */
    snprintf(p, sizeof p, "%s/null", dir);
    if (geteuid() == 0 && mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0) {
        CHECK_FAILS(save(p), WICK_EIO, "null: is a character device, not a regular file");
        CHECK(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
    } else {
        fprintf(stderr, "  SKIP part of test_write_special_targets: no mknod (not root)\n");
    }
    /* symbolic links, whatever they point to: refused (documented in
     * src/io/path.c), the link and its target untouched */
    char victim[700], link[700];
    snprintf(victim, sizeof victim, "%s/victim", dir);
    FILE *v = fopen(victim, "w");
    fputs("precious", v);
    fclose(v);
    snprintf(link, sizeof link, "%s/model.link", dir);
    CHECK(symlink(victim, link) == 0);
    CHECK_FAILS(save(link), WICK_EIO, "model.link: is a symbolic link (to a regular file)");
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    size_t n = 0;
    uint8_t *b = chk_read_file(victim, &n);
    CHECK(b && n == 8 && memcmp(b, "precious", 8) == 0);
    free(b);
    snprintf(link, sizeof link, "%s/fifo.link", dir);
    snprintf(p, sizeof p, "%s/model.fifo", dir);
    CHECK(symlink(p, link) == 0);
    CHECK_FAILS(save(link), WICK_EIO, "fifo.link: is a symbolic link (to a FIFO)");
    snprintf(link, sizeof link, "%s/dangling.link", dir);
    CHECK(symlink("/nonexistent/wick-test", link) == 0);
    CHECK_FAILS(save(link), WICK_EIO, "dangling.link: is a symbolic link (dangling)");
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(count_matching(dir, "wick-tmp") == 0);
}

/* The names the writer used to give its temporary, for this process:
 * <dir>/.<name>.tmp.<pid>.<n>, n counting saves from 0. */
static void old_tmp_name(char *buf, size_t cap, const char *path, int n) {
    const char *slash = strrchr(path, '/');
    snprintf(buf, cap, "%.*s/.%s.tmp.%ld.%d", (int)(slash - path), path, slash + 1, (long)getpid(), n);
}

/* Symlinks planted at every name the temporary file could have had redirect
 * nothing: the file they point to is unchanged. */
static void test_write_planted_symlinks(void) {
    const char *p = chk_tmp("planted.safetensors");
    const char *victim = chk_write_file("planted-victim", "precious", 8);
    char t[700];
    for (int i = 0; i < 400; i++) {
        old_tmp_name(t, sizeof t, p, i);
        unlink(t);
        CHECK(symlink(victim, t) == 0);
    }
    CHECK_OK(save(p));
    size_t n = 0;
    uint8_t *b = chk_read_file(victim, &n);
    CHECK(b && n == 8 && memcmp(b, "precious", 8) == 0);
    free(b);
    struct stat st;
    CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode));
    for (int i = 0; i < 400; i++) {
        old_tmp_name(t, sizeof t, p, i);
        unlink(t);
    }
}

/* Files another user created at the temporary names are never written
 * into: the model would be theirs (owner, mode 0666). */
static void test_write_precreated_tmp(void) {
    if (geteuid() != 0) SKIP("not root: cannot make files of another owner");
    const char *p = chk_tmp("precreated.safetensors");
    char t[700];
    for (int i = 0; i < 400; i++) {
        old_tmp_name(t, sizeof t, p, i);
        int fd = open(t, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        CHECK(fd >= 0 && fchown(fd, NOBODY, NOBODY) == 0 && fchmod(fd, 0666) == 0);
        close(fd);
    }
    mode_t old = umask(022);
    CHECK_OK(save(p));
    umask(old);
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_uid == 0 && (st.st_mode & 0777) == 0644);
    for (int i = 0; i < 400; i++) {
        old_tmp_name(t, sizeof t, p, i);
        CHECK(stat(t, &st) == 0 && st.st_size == 0);   /* nothing written into them */
        unlink(t);
    }
}

/* A new file gets 0666 & ~umask, as any program's; a save over an existing
 * file keeps its permissions (a 0600 model stays 0600). */
static void test_write_mode(void) {
    const char *p = chk_tmp("mode.safetensors");
    struct stat st;
    mode_t old = umask(002);
    unlink(p);
    CHECK_OK(save(p));
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0664);
    umask(077);
    unlink(p);
    CHECK_OK(save(p));
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
    umask(022);
    static const mode_t modes[] = {0600, 0640, 0444, 0660, 0604};
    for (size_t i = 0; i < WICK_ARRAY_LEN(modes); i++) {
        CHECK(chmod(p, modes[i]) == 0);
        CHECK_OK(save(p));
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == modes[i]);
    }
    /* set-user-ID and set-group-ID bits are not carried over */
    CHECK(chmod(p, 04755) == 0);
    CHECK_OK(save(p));
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0755);
    umask(old);
}

/* Root saving over another user's model keeps it theirs. */
static void test_write_owner_kept(void) {
    if (geteuid() != 0) SKIP("not root: cannot make files of another owner");
    const char *p = chk_tmp("owner.safetensors");
    CHECK_OK(save(p));
    CHECK(chown(p, NOBODY, NOBODY) == 0 && chmod(p, 0640) == 0);
    CHECK_OK(save(p));
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_uid == NOBODY && st.st_gid == NOBODY && (st.st_mode & 0777) == 0640);
}

/* An unprivileged owner: the mode is kept without fchown. */
static int unprivileged_save(const char *dir) {
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0) return 1;
    char p[700];
    snprintf(p, sizeof p, "%s/m.safetensors", dir);
    umask(022);
    if (save(p) || chmod(p, 0600) || save(p)) return 1;
    struct stat st;
    return stat(p, &st) != 0 || (st.st_mode & 0777) != 0600 || st.st_uid != NOBODY;
}

static void test_write_mode_unprivileged(void) {
    if (geteuid() != 0) SKIP("not root: cannot switch to a second uid");
    char dir[] = "/tmp/wick-io-paths.XXXXXX";
    if (!mkdtemp(dir)) SKIP("mkdtemp failed");
    CHECK(chown(dir, NOBODY, NOBODY) == 0);
    CHECK(in_child(unprivileged_save, dir, 30) == 0);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* ---- stale temporaries ----------------------------------------------------- */

static void age(const char *path, int seconds) {
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= seconds;
    ts[1] = ts[0];
    CHECK(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) == 0);
}

static const char *make_file(const char *dir, const char *name) {
    static char buf[16][700];
    static int k;
    char *p = buf[k++ % 16];
    snprintf(p, 700, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs("x", f);
    fclose(f);
    return p;
}

/* A save removes its target's stale temporaries (wick's own pattern, old,
 * ours, not locked by a live writer) and nothing else. */
static void test_stale_tmp_removed(void) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s", chk_tmp("stale"));
    mkdir(dir, 0755);
    char p[700];
    snprintf(p, sizeof p, "%s/m.safetensors", dir);
    const char *stale = make_file(dir, ".m.safetensors.wick-tmp.AbCdEf012345");
    const char *young = make_file(dir, ".m.safetensors.wick-tmp.YoungYoung12");
    const char *other = make_file(dir, ".n.safetensors.wick-tmp.AbCdEf012345");
    const char *shortn = make_file(dir, ".m.safetensors.wick-tmp.AbC");
    const char *longer = make_file(dir, ".m.safetensors.wick-tmp.AbCdEf012345x");
    const char *locked = make_file(dir, ".m.safetensors.wick-tmp.LockedLocked");
    const char *user = make_file(dir, "m.safetensors.tmp.1.0");
    const char *foreign = make_file(dir, ".m.safetensors.wick-tmp.ForeignOwner");
    char lnk[700];
    snprintf(lnk, sizeof lnk, "%s/.m.safetensors.wick-tmp.SymlinkSymli", dir);
    const char *target = make_file(dir, "link-target");
    CHECK(symlink(target, lnk) == 0);
    int is_root = geteuid() == 0;
    if (is_root) CHECK(chown(foreign, NOBODY, NOBODY) == 0);
    const char *all[] = {stale, young, other, shortn, longer, locked, user, foreign, lnk, target};
    for (size_t i = 0; i < WICK_ARRAY_LEN(all); i++)
        if (all[i] != young) age(all[i], 3 * 3600);
    /* a live writer holds a lock on its temporary */
    int lfd = open(locked, O_RDONLY);
    CHECK(lfd >= 0 && flock(lfd, LOCK_EX) == 0);
    CHECK_OK(save(p));
    CHECK(access(stale, F_OK) != 0);
    const char *kept[] = {young, other, shortn, longer, locked, user, lnk, target};
    for (size_t i = 0; i < WICK_ARRAY_LEN(kept); i++) {
        struct stat st;
        if (lstat(kept[i], &st) != 0) {
            char m[800];
            snprintf(m, sizeof m, "%s was removed", kept[i]);
            chk_report(__FILE__, __LINE__, m);
        }
    }
    if (is_root) CHECK(access(foreign, F_OK) == 0);
    close(lfd);
    /* once the writer is gone, the next save removes it */
    CHECK_OK(save(p));
    CHECK(access(locked, F_OK) != 0);
    CHECK(access(young, F_OK) == 0);
}

/* Saves killed by SIGKILL leave their temporaries; a later save (once they
 * are old enough) removes them, and the file is always whole. */
static void test_killed_saves_cleaned(void) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s", chk_tmp("killed"));
    mkdir(dir, 0755);
    char p[700];
    snprintf(p, sizeof p, "%s/k.safetensors", dir);
    size_t n = 1 << 20;
    float *big = calloc(n, sizeof *big);
    wick_st_tensor t = {"w", WICK_DT_F32, 1, {(int64_t)n}, big};
    CHECK_OK(wick_st_write(p, &t, 1, NULL, 0));
    int left = 0;
    for (int k = 0; k < 8 && !left; k++) {
        pid_t pid = fork();
        if (pid == 0)
            for (;;) wick_st_write(p, &t, 1, NULL, 0);
        usleep(20000 + 5000 * (useconds_t)k);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        left = count_matching(dir, ".wick-tmp.");
    }
    if (!left) SKIP("no save was caught mid-file");
    DIR *d = opendir(dir);
    struct dirent *e;
    char q[1000];
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".wick-tmp.")) {
            snprintf(q, sizeof q, "%s/%s", dir, e->d_name);
            age(q, 3600);
        }
    closedir(d);
    CHECK_OK(save(p));
    CHECK(count_matching(dir, ".wick-tmp.") == 0);
    free(big);
}

/* ---- the advisory lock ------------------------------------------------------ */

static const char *lock_path;
static int lock_in_child(const char *msg_want) {
    int fd = -1;
    wick_status s = wick_path_lock(lock_path, &fd);
    return !(s == WICK_EIO && fd == -1 && strstr(wick_last_error(), msg_want));
}

static void test_path_lock(void) {
    const char *p = chk_tmp("ckpt.safetensors");
    lock_path = p;
    int fd = -1, fd2 = 123;
    CHECK_OK(wick_path_lock(p, &fd));
    CHECK(fd >= 0);
    char want[400];
    snprintf(want, sizeof want, "%s is locked by another wick run (pid %ld)", p, (long)getpid());
    /* a second lock, in this process or another, is refused naming the holder */
    CHECK_FAILS(wick_path_lock(p, &fd2), WICK_EIO, want);
    CHECK(fd2 == -1);
    CHECK(in_child(lock_in_child, want, 10) == 0);
    /* saving the locked path itself is still possible (the lock is advisory
     * and beside it, in PATH.lock) */
    CHECK_OK(save(p));
    wick_path_unlock(fd);
    CHECK_OK(wick_path_lock(p, &fd2));
    wick_path_unlock(fd2);
    wick_path_unlock(-1);
    /* the sidecar must be a regular file, and is not followed if a link */
    char side[700];
    snprintf(side, sizeof side, "%s.lock", chk_tmp("fifo-ckpt"));
    mkfifo(side, 0600);
    CHECK_FAILS(wick_path_lock(chk_tmp("fifo-ckpt"), &fd), WICK_EIO, "fifo-ckpt.lock: is a FIFO, not a regular file");
    const char *victim = chk_write_file("lock-victim", "precious", 8);
    snprintf(side, sizeof side, "%s.lock", chk_tmp("link-ckpt"));
    CHECK(symlink(victim, side) == 0);
    CHECK_FAILS(wick_path_lock(chk_tmp("link-ckpt"), &fd), WICK_EIO, "link-ckpt.lock: is a symbolic link");
    size_t n = 0;
    uint8_t *b = chk_read_file(victim, &n);
    CHECK(b && n == 8 && memcmp(b, "precious", 8) == 0);
    free(b);
    CHECK_FAILS(wick_path_lock(chk_tmp("no/such/dir/x"), &fd), WICK_EIO, "No such file or directory");
    CHECK(fd == -1);
}

/* ---- plots: the destination too ---------------------------------------------- */

static int plot_to(const char *p) {
    double x[2] = {0, 1};
    wick_series s = {"s", x, x, NULL, 2, 0, 0};
    wick_status st = wick_plot_png(p, "t", "x", "y", &s, 1, 0, 0);
    return !(st == WICK_EIO && strstr(wick_last_error(), "is a FIFO, not a regular file"));
}

static void test_plot_target(void) {
    const char *p = chk_tmp("plot.fifo");
    mkfifo(p, 0600);
    int r = in_child(plot_to, p, 10);
    if (r < 0) chk_report(__FILE__, __LINE__, "wick_plot_png blocked on a FIFO (killed after 10 s)");
    CHECK(r == 0);
}

int main(void) {
    RUN(test_fifo_input_refused);
    RUN(test_directory_input_refused);
    RUN(test_device_input_refused);
    RUN(test_write_special_targets);
    RUN(test_write_planted_symlinks);
    RUN(test_write_precreated_tmp);
    RUN(test_write_mode);
    RUN(test_write_owner_kept);
    RUN(test_write_mode_unprivileged);
    RUN(test_stale_tmp_removed);
    RUN(test_killed_saves_cleaned);
    RUN(test_path_lock);
    RUN(test_plot_target);
    return chk_finish();
}
