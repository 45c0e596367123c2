/* io.h — internal entry points of src/io that the tests and fuzz harnesses
 * use: parsers over memory (no temporary file per fuzz input) and a hook that
 * makes the n-th write of the safetensors writer fail.  Not installed. */
#ifndef WICK_IO_H
#define WICK_IO_H

#include "core/core.h"

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

#endif
