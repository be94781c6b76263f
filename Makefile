# plexus build. This Makefile owns all C code; rebar3 (rebar.config hook) and Mix
# (mix.exs compiler step) call `make nif`, so `rebar3 compile` or `mix compile` alone
# builds a usable app, also when plexus is a dependency.
#
#   make deps    install missing Debian packages (no-op when all are present)
#   make         build priv/plexus_nif.so, and priv/plexus_cnode when its headers exist
#   make test    build and run every test; ends with "total: N passed, N failed"
#   make demo    run the demo on a local loopback cluster
#   make bench   benchmarks (side-by-side ratios)
#   make fuzz    longer libFuzzer runs (FUZZ_SECONDS per target)
#   make soak    long simulator runs
#
# Knobs for people who build plexus as a dependency (doc/BUILDING.md):
#   CC, CFLAGS, CPPFLAGS, LDFLAGS  honoured; CFLAGS come last, so they win
#   V=1               print full command lines (quiet by default)
#   WERROR=1          warnings are errors (`make test` sets it; dependents do not get it)
#   PLEXUS_CNODE=auto build the C node when ei.h, sodium.h and jansson.h are found
#                     (default); =yes fails when they are not, =no never builds it
#   PKG_CONFIG        how the libsodium and jansson headers and libraries are found

SHELL := /bin/bash
.DEFAULT_GOAL := all
.SECONDARY:

# Parallel by default (GNU make >= 4.3 honours -j set here); an explicit -j wins.
ifeq ($(filter -j%,$(MAKEFLAGS))$(findstring j,$(firstword -$(MAKEFLAGS))),)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

# make's built-in CC is `cc`; an environment CC overrides it as usual.
CLANG ?= clang
ERL ?= erl
REBAR3 ?= rebar3
PKG_CONFIG ?= pkg-config
PLEXUS_CNODE ?= auto
WERROR ?=
V ?=

# Quiet output: one short line per step, full command lines with V=1.
ifeq ($(V),1)
say :=
else
say = @printf '  %-6s %s\n' $(1) $(2);
endif

DEB_PACKAGES := gcc make erlang-nox erlang-dev erlang-eunit erlang-common-test \
	erlang-dialyzer erlang-proper erlang-proper-dev erlang-tools erlang-edoc rebar3 \
	libsodium-dev libjansson-dev clang libclang-rt-14-dev valgrind pkg-config dnsmasq-base \
	elixir iproute2 clang-format

# ERTS and erl_interface locations come from erl itself (doc/STYLE.md habit 11). Only
# asked when erl exists, so `make deps` works on a bare machine.
ifneq ($(shell command -v $(ERL) 2>/dev/null),)
ERL_PATHS := $(shell $(ERL) -noshell -eval 'io:format("~s/erts-~s/include ~s", [code:root_dir(), erlang:system_info(version), code:lib_dir(erl_interface)]), halt().' 2>/dev/null)
ERTS_INCLUDE := $(word 1,$(ERL_PATHS))
EI_DIR := $(word 2,$(ERL_PATHS))
endif

# ---------------------------------------------------------------- dependencies
# Each C library is looked up before the compiler runs, so a missing -dev package is
# reported in one line that names it. pkg-config answers when it is installed (that is
# also how a build is pointed elsewhere: PKG_CONFIG_PATH, or PKG_CONFIG_LIBDIR=/nowhere
# to see the messages); without pkg-config the compiler's preprocessor is asked.
HAVE_PKG_CONFIG := $(shell command -v $(PKG_CONFIG) >/dev/null 2>&1 && echo yes)
# lib_found PC-NAME HEADER -> "yes" or ""
ifeq ($(HAVE_PKG_CONFIG),yes)
lib_found = $(shell $(PKG_CONFIG) --exists $(1) && echo yes)
lib_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
lib_libs = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)
lib_dir = $(shell $(PKG_CONFIG) --variable=libdir $(1) 2>/dev/null)
else
lib_found = $(shell printf '\043include <%s>\n' $(2) | $(CC) $(CPPFLAGS) $(CFLAGS) -E -x c - >/dev/null 2>&1 && echo yes)
lib_cflags =
lib_libs = -l$(patsubst lib%,%,$(1))
lib_dir =
endif

# Each HAVE_ can be set on the command line (e.g. `make nif HAVE_JANSSON=`) to see
# what a machine without that package gets.
HAVE_SODIUM := $(call lib_found,libsodium,sodium.h)
HAVE_JANSSON := $(call lib_found,jansson,jansson.h)
HAVE_ERL_NIF := $(if $(wildcard $(ERTS_INCLUDE)/erl_nif.h),yes)
HAVE_EI := $(if $(wildcard $(EI_DIR)/include/ei.h),yes)

SODIUM_CFLAGS := $(call lib_cflags,libsodium)
SODIUM_LIBS := $(or $(call lib_libs,libsodium),-lsodium)
JANSSON_CFLAGS := $(call lib_cflags,jansson)
# The C node links libsodium and jansson statically when their .a files are there
# (Debian's -dev packages ship them), so a release needs neither libsodium23 nor
# libjansson4 for it. The NIF cannot do the same: Debian's libsodium.a is not built
# as position-independent code, so plexus_nif.so needs libsodium23 at run time.
# The .a is looked up where pkg-config says, else where the compiler would find it.
static_lib = $(firstword $(wildcard $(call lib_dir,$(1))/$(2)) $(filter /%,$(shell $(CC) $(LDFLAGS) -print-file-name=$(2) 2>/dev/null)))
static_or_dynamic = $(or $(call static_lib,$(1),lib$(patsubst lib%,%,$(1)).a),$(call lib_libs,$(1)),-l$(patsubst lib%,%,$(1)))
CNODE_SODIUM_LIBS := $(call static_or_dynamic,libsodium)
CNODE_JANSSON_LIBS := $(call static_or_dynamic,jansson)

MISSING_NIF := $(if $(HAVE_ERL_NIF),,erl_nif.h(erlang-dev)) $(if $(HAVE_SODIUM),,sodium.h(libsodium-dev))
MISSING_CNODE := $(if $(HAVE_EI),,ei.h(erlang-dev)) $(if $(HAVE_SODIUM),,sodium.h(libsodium-dev)) \
	$(if $(HAVE_JANSSON),,jansson.h(libjansson-dev))
LP := (
RP := )
missing_pkgs = $(sort $(foreach m,$(1),$(subst $(RP),,$(word 2,$(subst $(LP), ,$(m))))))
missing_hdrs = $(foreach m,$(1),$(word 1,$(subst $(LP), ,$(m))))

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes $(if $(filter 1 yes,$(WERROR)),-Werror)
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -g -fPIC -fvisibility=hidden $(WARN) -Iinclude -Ic_src \
	$(SODIUM_CFLAGS) $(CPPFLAGS)
# -O3 + LTO: the merge loop runs ~45% faster than at -O2 (make bench, 100k elements).
# The caller's CFLAGS follow, so `CFLAGS=-O2` or `CFLAGS=-fno-lto` take effect.
CFLAGS_OPT := -O3 -flto=auto $(CFLAGS)
SAN_FLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
NIF_CFLAGS := -I$(ERTS_INCLUDE)
LIBS := $(SODIUM_LIBS)

CORE_SRC := $(wildcard c_src/core/*.c)
NIF_SRC := $(wildcard c_src/nif/*.c)
CNODE_SRC := $(wildcard c_src/cnode/*.c)
CTEST_SRC := $(wildcard test/c/test_*.c)
SIM_SRC := $(wildcard test/sim/*.c)
FUZZ_SRC := $(wildcard test/fuzz/fuzz_*.c)

CORE_OBJ := $(CORE_SRC:%.c=build/obj/%.o)
NIF_OBJ := $(NIF_SRC:%.c=build/obj/%.o)
# The C node (c_src/cnode/, issue 4): core objects + ei (static) + libsodium + jansson.
CNODE_OBJ := $(CNODE_SRC:%.c=build/obj/%.o)
ifeq ($(PLEXUS_CNODE),no)
CNODE_BIN :=
else ifeq ($(PLEXUS_CNODE),yes)
CNODE_BIN := $(if $(CNODE_SRC),priv/plexus_cnode)
else
CNODE_BIN := $(if $(CNODE_SRC),$(if $(strip $(MISSING_CNODE)),,priv/plexus_cnode))
endif
EI_CFLAGS := -I$(EI_DIR)/include -D_REENTRANT $(JANSSON_CFLAGS)
CNODE_LIBS := $(EI_DIR)/lib/libei.a $(CNODE_SODIUM_LIBS) $(CNODE_JANSSON_LIBS) -lpthread
# Test helpers that speak ei link libsodium the ordinary way.
EI_TEST_LIBS := $(EI_DIR)/lib/libei.a $(LIBS) -lpthread
CORE_SAN_OBJ := $(CORE_SRC:%.c=build/san/%.o)

# test/c/test_cnode_*.c link C node objects: only where the C node builds.
CTEST_SRC := $(filter-out $(if $(CNODE_BIN),,test/c/test_cnode_%.c),$(CTEST_SRC))
CTESTS := $(CTEST_SRC:test/c/%.c=build/test/plain/%)
CTESTS_SAN := $(CTEST_SRC:test/c/%.c=build/test/san/%)
SIM := $(if $(SIM_SRC),build/test/plain/plexus_sim)
SIM_SAN := $(if $(SIM_SRC),build/test/san/plexus_sim)
FUZZERS := $(FUZZ_SRC:test/fuzz/%.c=build/fuzz/%)

.PHONY: FORCE all nif cnode check-nif check-cnode cnode-note doc-chunks deps test ctest ctest-san fuzz-smoke fuzz bench demo soak clean clean-c \
	format format-check dialyzer eunit ct c-build

all: nif

nif: check-nif priv/plexus_nif.so $(CNODE_BIN) cnode-note

# One line that names what to install, before any compiler error.
check-nif:
ifneq ($(strip $(MISSING_NIF)),)
	@echo "plexus: cannot build the NIF: missing $(call missing_hdrs,$(MISSING_NIF)); install $(call missing_pkgs,$(MISSING_NIF)) (Debian/Ubuntu)" >&2; exit 1
endif

check-cnode:
ifneq ($(strip $(MISSING_CNODE)),)
	@echo "plexus: cannot build the C node: missing $(call missing_hdrs,$(MISSING_CNODE)); install $(call missing_pkgs,$(MISSING_CNODE)) (Debian/Ubuntu)" >&2; exit 1
endif

cnode-note: priv/plexus_nif.so
ifeq ($(PLEXUS_CNODE)$(if $(CNODE_SRC),$(if $(strip $(MISSING_CNODE)),skip)),autoskip)
	@echo "plexus: C node skipped (the NIF is built): missing $(call missing_hdrs,$(MISSING_CNODE)); install $(call missing_pkgs,$(MISSING_CNODE)) (Debian/Ubuntu)"
endif

cnode: check-cnode priv/plexus_cnode

# With -j the checks must come before any compiler call.
$(CORE_OBJ) $(NIF_OBJ): | check-nif
$(CNODE_OBJ): | check-cnode

# ---------------------------------------------------------------- objects

# Objects depend on a stamp that holds the flags they were built with, so switching
# WERROR, CC or CFLAGS rebuilds them instead of mixing objects of two configurations.
FLAGS_STAMP := build/flags.stamp
FLAGS_NOW := $(CC) $(BASE_CFLAGS) $(CFLAGS_OPT) $(LDFLAGS) $(LIBS) $(CNODE_LIBS)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(FLAGS_NOW)' ]; then echo '$(FLAGS_NOW)' > $@; fi

FORCE:

build/obj/c_src/nif/%.o: c_src/nif/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(BASE_CFLAGS) $(CFLAGS_OPT) $(NIF_CFLAGS) -MMD -MP -c $< -o $@

build/san/c_src/nif/%.o: c_src/nif/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) $(NIF_CFLAGS) -MMD -MP -c $< -o $@

build/obj/c_src/cnode/%.o: c_src/cnode/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(BASE_CFLAGS) $(CFLAGS_OPT) $(EI_CFLAGS) -MMD -MP -c $< -o $@

build/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(BASE_CFLAGS) $(CFLAGS_OPT) -MMD -MP -c $< -o $@

build/san/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -MMD -MP -c $< -o $@

-include $(shell find build -name '*.d' 2>/dev/null)

priv/plexus_nif.so: $(CORE_OBJ) $(NIF_OBJ) $(FLAGS_STAMP)
	@mkdir -p priv
	$(call say,LD,$@)$(CC) $(CFLAGS_OPT) $(LDFLAGS) -shared -o $@ $(filter %.o,$^) $(LIBS)

# The NIF library built with ASan+UBSan, in a priv dir of its own: test/nif_sanitized.sh
# runs the EUnit and PropEr suites that call the NIFs against it.
NIF_SAN := build/nif-san/plexus/priv/plexus_nif.so
$(NIF_SAN): $(CORE_SAN_OBJ) $(NIF_SRC:%.c=build/san/%.o) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(SAN_FLAGS) $(LDFLAGS) -shared -o $@ $(filter %.o,$^) $(LIBS)

priv/plexus_cnode: $(CORE_OBJ) $(CNODE_OBJ) $(FLAGS_STAMP)
	@mkdir -p priv
	$(call say,LD,$@)$(CC) $(CFLAGS_OPT) $(LDFLAGS) -o $@ $(filter %.o,$^) $(CNODE_LIBS)

# Lightweight ei test nodes for the C node's benchmark and valgrind cycles.
build/test/plexus_ei_peers: test/bench/ei_peers.c
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) $(EI_CFLAGS) -o $@ $< $(EI_TEST_LIBS)

# A gossip and registry counterpart (same core codecs) for the C node's valgrind run.
build/test/plexus_disco_peer: test/bench/disco_peer.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(BASE_CFLAGS) $(CFLAGS_OPT) -o $@ $< $(CORE_OBJ) $(LIBS)

# ---------------------------------------------------------------- C tests

build/test/plain/%: build/obj/test/c/%.o build/obj/test/c/harness.o $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(CFLAGS_OPT) $(LDFLAGS) -o $@ $^ $(LIBS) -lm

build/test/san/%: build/san/test/c/%.o build/san/test/c/harness.o $(CORE_SAN_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -lm

# C node unit tests: the test and the C node files it needs (config.c, log.c, backoff.c)
# see ei.h.
CNODE_TEST_OBJ := config.o log.o backoff.o
build/obj/test/c/test_cnode_%.o build/san/test/c/test_cnode_%.o build/san/c_src/cnode/%.o: \
	BASE_CFLAGS += $(EI_CFLAGS)
build/test/plain/test_cnode_%: build/obj/test/c/test_cnode_%.o build/obj/test/c/harness.o \
		$(addprefix build/obj/c_src/cnode/,$(CNODE_TEST_OBJ)) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(CFLAGS_OPT) $(LDFLAGS) -o $@ $^ $(LIBS) -lm

build/test/san/test_cnode_%: build/san/test/c/test_cnode_%.o build/san/test/c/harness.o \
		$(addprefix build/san/c_src/cnode/,$(CNODE_TEST_OBJ)) $(CORE_SAN_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -lm

build/test/plain/plexus_sim: $(SIM_SRC:%.c=build/obj/%.o) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(CFLAGS_OPT) $(LDFLAGS) -o $@ $^ $(LIBS) -lm

build/test/san/plexus_sim: $(SIM_SRC:%.c=build/san/%.o) $(CORE_SAN_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -lm

c-build: $(CTESTS) $(SIM)

ctest: $(CTESTS) $(SIM)
	@rc=0; for t in $(CTESTS); do $$t || rc=1; done; exit $$rc

ctest-san: $(CTESTS_SAN) $(SIM_SAN)
	@rc=0; for t in $(CTESTS_SAN); do $$t || rc=1; done; exit $$rc

# ---------------------------------------------------------------- fuzzing

build/fuzz/%: test/fuzz/%.c $(CORE_SRC)
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)$(CLANG) $(BASE_CFLAGS) -O1 -fsanitize=fuzzer,address,undefined -o $@ $< $(CORE_SRC) $(LIBS)

# The ei message decoder of the C node needs ei's headers and library.
build/fuzz/fuzz_cnode_msg: test/fuzz/fuzz_cnode_msg.c c_src/cnode/msg.c c_src/cnode/msg.h
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)$(CLANG) $(BASE_CFLAGS) $(EI_CFLAGS) -O1 -fsanitize=fuzzer,address,undefined -o $@ $< \
	  c_src/cnode/msg.c $(EI_DIR)/lib/libei.a -lpthread

FUZZ_SECONDS ?= 300
fuzz: $(FUZZERS)
	@for f in $(FUZZERS); do \
	  n=$$(basename $$f); mkdir -p build/fuzz/corpus-$$n; \
	  echo "== $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build/fuzz/corpus-$$n test/fuzz/seeds/$$n || exit 1; \
	done

# ---------------------------------------------------------------- everything

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi

# The project's own tests build with -Werror and need the C node (PLEXUS_CNODE=yes); the
# exported WERROR reaches the `make nif` that rebar3's hook runs inside the stages.
test: deps
	@$(MAKE) --no-print-directory WERROR=1 PLEXUS_CNODE=yes nif cnode c-build $(CTESTS_SAN) $(SIM_SAN) \
	  $(NIF_SAN) $(FUZZERS) build/test/plexus_ei_peers build/test/plexus_disco_peer
	@WERROR=1 MAKEFLAGS= bash test/run_tests.sh

eunit: deps nif
	$(REBAR3) eunit --module=$$(bash test/eunit_modules.sh)

ct: deps nif
	$(REBAR3) ct

dialyzer: deps nif
	$(REBAR3) dialyzer

demo: deps
	@$(MAKE) --no-print-directory nif
	@$(REBAR3) compile >/dev/null
	@bash test/demo.sh

bench: deps
	@$(MAKE) --no-print-directory nif
	@bash test/bench/run.sh

soak: deps
	@$(MAKE) --no-print-directory $(SIM)
	@bash test/soak.sh

# Every C source and header of the project, for clang-format (.clang-format).
FORMAT_SRC = $(CORE_SRC) $(NIF_SRC) $(CNODE_SRC) $(wildcard c_src/*/*.h) include/plexus/*.h \
	test/c/*.[ch] $(wildcard test/sim/*.[ch]) $(FUZZ_SRC) $(wildcard test/bench/*.c)

format:
	clang-format -i $(FORMAT_SRC)

# Fails on the first file clang-format would change (a stage of make test).
format-check:
	@clang-format --dry-run -Werror $(FORMAT_SRC) && echo "format-check: 1 passed, 0 failed" \
	  || { echo "format-check: 0 passed, 1 failed (run make format)"; exit 1; }

clean-c:
	rm -rf build priv/plexus_nif.so priv/plexus_cnode

clean: clean-c
	rm -rf _build logs

# ---------------------------------------------------------------- benchmarks

CRDT_OBJ = $(filter build/obj/c_src/core/common.o build/obj/c_src/core/crdt_%,$(CORE_OBJ))
build/bench/bench_floor: build/obj/test/bench/bench_floor.o $(CRDT_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(CFLAGS_OPT) $(LDFLAGS) -o $@ $^ $(LIBS)
