# wick — one `make` builds the library (static and shared), the CLI and the tests.
#   make            build/libwick.a build/libwick.so build/wick
#   make test       build and run every test (tests/run.sh prints "N passed, N failed")
#   make install    PREFIX=/usr/local DESTDIR= : header, libraries, wick, wick.pc
#   make SANITIZE=1 BUILD=build-asan test   the suite under ASan + UBSan
#   make CC=clang SANITIZE=ubsan BUILD=build-ubsan test   under clang's UBSan
BUILD    ?= build
PREFIX   ?= /usr/local
CC       ?= gcc
NATIVE   ?= -march=native
OPT      ?= -O3
CFLAGS   ?= $(OPT) $(NATIVE) -g
WARN     := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes
CPPFLAGS += -Iinclude -Isrc -D_GNU_SOURCE
# OpenBLAS threaded with OpenMP (Debian's libopenblas0-openmp) when installed:
# then OpenBLAS and oneDNN share libgomp's thread pool.  Debian's default
# pthread OpenBLAS keeps its own spinning workers beside the OpenMP team, and
# on 2 cores the two pools starve each other (bench/README.md).
# OPENBLAS_VARIANT=pthread links the system default instead.
OPENBLAS_VARIANT ?= openmp
OPENBLAS_DIR := /usr/lib/x86_64-linux-gnu/openblas-$(OPENBLAS_VARIANT)
ifneq ($(wildcard $(OPENBLAS_DIR)/libopenblas.so),)
  BLASLINK := -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -Wl,--disable-new-dtags
endif
LIBS     := $(BLASLINK) -lopenblas -llapacke -ldnnl -ljansson -lz -lm
ifeq ($(SANITIZE),1)
  CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=address,undefined
endif
# clang's UndefinedBehaviorSanitizer alone (CC=clang SANITIZE=ubsan): checks gcc's lacks
# (local array bounds, function pointer types) and no ASan slowdown
ifeq ($(SANITIZE),ubsan)
  CFLAGS += -fsanitize=undefined,local-bounds -fno-sanitize-recover=all -fno-omit-frame-pointer -Wno-pass-failed
  LDFLAGS += -fsanitize=undefined,local-bounds
endif
# -fno-math-errno: wick never reads errno after a math call, and with it set
# loops over sqrtf, expf, tanhf can vectorise.  -ffp-contract=off: gcc in ISO C
# mode never fuses a*b+c into an FMA, clang does within a statement; the fast
# paths that must give the general path's bits (test_conv_fastpath) need one rule.
ALLFLAGS := -std=c11 $(WARN) $(CFLAGS) -fno-math-errno -ffp-contract=off -fopenmp -fPIC -fvisibility=hidden

# src/dist/ (MPI data parallelism) goes into the wick program only: libwick
# needs no MPI runtime (docs/distributed.md).  Without Open MPI's headers it
# builds as a stub that says so when started by mpirun.
SRC      := $(sort $(filter-out src/dist/%,$(wildcard src/*/*.c)))
DISTOBJ  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/dist/*.c))
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null)
ifeq ($(MPI_LIBS),)
  MPI_CFLAGS := -DWICK_NO_MPI
endif
OBJ      := $(SRC:%.c=$(BUILD)/%.o)
TOOLSRC  := $(sort $(wildcard tools/*.c))
TOOLOBJ  := $(TOOLSRC:%.c=$(BUILD)/%.o)
TESTSRC  := $(sort $(wildcard tests/test_*.c))
TESTBIN  := $(TESTSRC:tests/%.c=$(BUILD)/tests/%)
TESTLIB  := $(sort $(wildcard tests/lib/*.c))
# a test is rebuilt when the harness or a shared helper's header changes
TESTHDR  := $(wildcard tests/*.h tests/lib/*.h)
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
# helper programs the tests run (e.g. tests/tools/optim_trace for the torch cross-check)
TESTTOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))
# kern_ab.c and step_ab*.c link against an older revision: bench/kern_ab.sh and bench/step_ab.sh build them
BENCHBIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(filter-out bench/kern_ab.c bench/step_ab.c bench/step_ab_side.c,$(wildcard bench/*.c)))

all: $(BUILD)/libwick.a $(BUILD)/libwick.so $(BUILD)/wick $(TESTBIN) $(TESTTOOLS) $(EXAMPLES)

# clang spends over 12 minutes on finite.c's two-input recursions at -O3 with UBSan's
# checks (21 s at -O1): that build compiles it at -O1.
ifeq ($(SANITIZE),ubsan)
$(BUILD)/src/theory/finite.o: ALLFLAGS += -O1
endif
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/src/dist/%.o: src/dist/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(MPI_CFLAGS) $(ALLFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libwick.a: $(OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libwick.so: $(OBJ)
	$(CC) -shared -fopenmp $(LDFLAGS) -Wl,-soname,libwick.so.0 -o $@ $^ $(LIBS)

$(BUILD)/wick: $(TOOLOBJ) $(DISTOBJ) $(BUILD)/libwick.a
	$(CC) -fopenmp $(LDFLAGS) -o $@ $(TOOLOBJ) $(DISTOBJ) $(BUILD)/libwick.a $(LIBS) $(MPI_LIBS)

# Tests link the static library, so they may call internal functions too.
$(BUILD)/tests/%: tests/%.c $(TESTLIB) $(TESTHDR) $(BUILD)/libwick.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(ALLFLAGS) $(LDFLAGS) -o $@ $< $(TESTLIB) $(BUILD)/libwick.a $(LIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libwick.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libwick.a $(LIBS)

# Benchmarks (bench/*.c), not part of `all`: libxsmm is linked only here.
bench: $(BENCHBIN)

$(BUILD)/bench/%: bench/%.c $(wildcard bench/*.h) $(BUILD)/libwick.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libwick.a -lxsmmext -lxsmm $(LIBS) -ldl -lpthread

test: all
	BUILD=$(BUILD) WICK_CC="$(CC)" WICK_LDFLAGS="$(LDFLAGS)" bash tests/run.sh

wick.pc: wick.pc.in
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@BLASLINK@|$(BLASLINK)|' -e 's|@VERSION@|$(shell sed -n 's/^#define WICK_VERSION "\(.*\)"/\1/p' include/wick.h)|' $< > $(BUILD)/wick.pc

install: all wick.pc
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/wick.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libwick.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libwick.so $(DESTDIR)$(PREFIX)/lib/libwick.so.0
	ln -sf libwick.so.0 $(DESTDIR)$(PREFIX)/lib/libwick.so
	install -m 644 $(BUILD)/wick.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(BUILD)/wick $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf $(BUILD)

.PHONY: all test bench install clean wick.pc
-include $(OBJ:.o=.d) $(TOOLOBJ:.o=.d) $(DISTOBJ:.o=.d)
