/* locale_de.h — puts a test program in a German locale the way a user's
 * shell does: LC_ALL=de_DE.UTF-8, then setlocale(LC_ALL, "").  Where the
 * system has no de_DE.UTF-8 (locale -a), it is compiled into the test's
 * scratch directory with glibc's localedef and found through LOCPATH.
 * chk_locale_de() returns 1 when printf now writes a decimal comma, else 0
 * with the C locale restored (the caller SKIPs). */
#ifndef WICK_LOCALE_DE_H
#define WICK_LOCALE_DE_H

#include "check.h"
#include <locale.h>

static inline void chk_locale_c(void) {
    setlocale(LC_ALL, "C");
    unsetenv("LC_ALL");
    unsetenv("LOCPATH");
}

static inline int chk_locale_de(void) {
    setenv("LC_ALL", "de_DE.UTF-8", 1);
    if (!setlocale(LC_ALL, "")) {
        char cmd[1200];
        const char *dir = chk_tmp("locales");
        mkdir(dir, 0755);
        snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 -c '%s/de_DE.UTF-8' >/dev/null 2>&1",
                 dir);
        if (system(cmd) != 0 && access(chk_tmp("locales/de_DE.UTF-8"), F_OK) != 0) {
            chk_locale_c();
            return 0;
        }
        setenv("LOCPATH", dir, 1);
        if (!setlocale(LC_ALL, "")) {
            chk_locale_c();
            return 0;
        }
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%.1f", 1.5);
    if (strcmp(buf, "1,5") != 0) {
        chk_locale_c();
        return 0;
    }
    return 1;
}

#endif
