/* io.h — internal entry points of src/io: parsers over memory for the tests
 * and fuzz harnesses (no temporary file per fuzz input), a hook that makes
 * the n-th write of the safetensors writer fail, and the helpers every
 * reader and writer of wick uses on files from strangers (path.c: opening
 * inputs, replacing outputs; text.c: escaping names for messages, the C
 * locale).  Other parts may use them too (e.g. src/nn for its messages).
 * Not installed. */
#ifndef WICK_IO_H
#define WICK_IO_H

#include "core/core.h"
#include <locale.h>
#include <sys/stat.h>

/* wick_st_read over a buffer holding a whole file; `name` is used in messages.
 * The buffer is copied: the result does not refer to it. */
wick_status wick_st_read_mem(const char *name, const void *buf, size_t len, wick_st_file **out);

/* wick_csv_read over a buffer; *first_line is the line number (1-based) of
 * data row 0: 2 when a header row was skipped, else 1.  Data rows are on
 * consecutive lines (blank lines are only accepted at the end). */
wick_status wick_csv_read_mem(const char *name, const char *buf, size_t len, int allow_nonfinite,
                              double **out, size_t *rows, size_t *cols, size_t *first_line);

/* Test hook: the n-th write(2) of wick_st_write from now fails with ENOSPC
 * (n >= 1); 0 disables.  Lets a test fail a save mid-file. */
void wick_io_fail_write_at(long n);

/* ---- path.c: opening files by name (the decisions are listed there) ---- */

/* "a FIFO", "a directory", "a character device", ... for a st_mode. */
const char *wick_io_kind(unsigned mode);

/* Opens an input for reading: O_RDONLY | O_NONBLOCK | O_CLOEXEC (a FIFO
 * cannot hang the open), fstat, anything but a regular file refused with
 * "PATH: not a regular file (a FIFO)", then O_NONBLOCK cleared.  *fd is the
 * descriptor (the caller closes it), or -1 on failure; st may be NULL. */
wick_status wick_io_open_input(const char *path, int *fd, struct stat *st);

/* An output path: OK when it does not exist (*exists = 0) or is a regular
 * file (*exists = 1, *old its lstat when old is not NULL); a symbolic link,
 * device, FIFO, socket or directory is refused, naming what it is. */
wick_status wick_io_check_output(const char *path, struct stat *old, int *exists);

/* Atomic replacement of a file: wick_io_out_open checks the target and
 * creates the temporary (o->fd, open for writing); the caller writes it and
 * then calls wick_io_out_commit (owner and mode, fsync, rename over the
 * target, fsync of the directory) or wick_io_out_abort (the temporary is
 * removed).  Both release everything; on any failure the target is
 * untouched. */
typedef struct {
    const char *path;
    const char *base;       /* the target's name within dir */
    char *dir;              /* the target's directory, for messages */
    char *tmp;              /* the temporary's name within dir; "" once gone */
    int dfd;                /* dir, open: every name below is relative to it */
    int fd;                 /* the temporary */
    int exists;             /* the target existed; old is its lstat */
    struct stat old;
} wick_io_out;
wick_status wick_io_out_open(wick_io_out *o, const char *path);
wick_status wick_io_out_commit(wick_io_out *o);
void        wick_io_out_abort(wick_io_out *o);

/* ---- text.c ---------------------------------------------------------- */

/* Copies s into buf (cap >= 8 bytes) for a message: C0 controls and DEL as
 * \xNN, bytes that are not UTF-8 as \xNN, a backslash doubled, C1 controls
 * and bidirectional overrides as \uNNNN; cut with "..." to fit.  Every
 * file-supplied name or token that goes into a message passes through it, so
 * that a crafted file cannot drive the user's terminal.  Returns buf. */
const char *wick_io_esc(char *buf, size_t cap, const char *s);

/* The C locale, created once; (locale_t)0 when out of memory. */
locale_t wick_io_c_locale(void);
/* Makes this thread use the C locale (numbers printed and parsed with '.')
 * until wick_io_locale_leave(returned value). */
locale_t wick_io_locale_enter(void);
void     wick_io_locale_leave(locale_t prev);

#endif
