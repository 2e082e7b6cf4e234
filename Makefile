# Vigil: build, test, demo. `make test` and `make demo` install what they need from Debian's
# packages first, so they work on a fresh Debian 12 machine.
SWIFT ?= swift
# prometheus brings promtool, which checks the /metrics exposition. The second line is the
# kernel lab's (QEMU guest with Debian's kernel, where IPVS is tested;
# gcc and libc6-dev build the benchmarks' static helper, contrib/bench/benchtool.c).
DEB_PACKAGES := libnl-3-dev libnl-genl-3-dev libnl-route-3-dev libssl-dev keepalived iproute2 tcpdump ipvsadm iputils-ping python3 prometheus nftables dnsmasq-base openssl libpcre2-dev procps frr libpam-modules bird2 \
	qemu-system-x86 busybox-static cpio kmod xz-utils gcc libc6-dev

.PHONY: all build release test unit integration kernel-lab demo demo-ecmp deps fuzz faults bench bench-config bench-ipvs bench-tcpcheck bench-httpget bench-sslget bench-jitter bench-reload bench-status bench-scrape-ipvs clean

all: build

# Installs only what is missing; needs root (as the tests do, for network namespaces).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@# Debian starts keepalived, prometheus, frr and bird on install: make sure no reference
	@# daemon runs on the host's interfaces and nothing scrapes or listens on the host's behalf.
	@systemctl stop keepalived prometheus frr bird 2>/dev/null || true

build: deps
	$(SWIFT) build

# Fully static executables: no shared libc/libstdc++/libnl pages to map, which takes the
# daemon's idle RSS from 9.3 MB to 6.1 MB. A static glibc must not load the host's NSS modules
# (they are built for the shared libc and crashed it in getpwnam), so a static Vigil looks users
# and groups up in /etc/passwd and /etc/group only (UserDatabase in HostChecks.swift).
release: deps
	$(SWIFT) build -c release -Xswiftc -static-executable

# Every test: unit tests and the namespace wire tests, then the lab integration tests one at a
# time (they measure failover timing, which parallel CPU load would blur).
test: build
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip IntegrationTests
	$(SWIFT) test --filter IntegrationTests --skip 'FaultLabTests|ScaleLabTests' --no-parallel

# The fault matrix on the lab pair and in namespaces (partition, a frozen master, link loss,
# hung track scripts, a flood of bad adverts, SIGKILL and restart, a full disk, 255 instances, VRRPv3 at
# 0.05 s with both cores busy for SOAK_SECONDS). CI runs it after `make test`.
SOAK_SECONDS ?= 600
faults: build
	$(SWIFT) build --build-tests
	VIGIL_SOAK_SECONDS=$(SOAK_SECONDS) $(SWIFT) test --filter 'FaultLabTests|ScaleLabTests' --no-parallel

# Only the IPVS scenarios in the QEMU guest (part of `make test` too).
kernel-lab: build
	contrib/kernel-lab/ipvs-suite.sh

unit: build
	$(SWIFT) test --skip IntegrationTests --skip VigilSystemTests

demo: build
	@contrib/demo.sh

# Three directors behind an FRR router doing BGP ECMP, in the QEMU guest (IPVS): one is lost,
# established connections survive with lvs_sync_daemon and are lost without (both rounds shown).
demo-ecmp: build
	@contrib/ecmp-lab/run.sh

# libFuzzer (with AddressSanitizer) over every decoder of outside input, FUZZ_SECONDS per target
# (FUZZ_RUNS=N: N executions instead); fails on any crash, leak, hang or runaway memory.
# Its own build directory (.build-fuzz); contrib/fuzz/run.sh says more.
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) contrib/fuzz/run.sh

# `vigil -t` against `keepalived -t` on a generated 500 VS x 8 RS + 50 instance config.
bench-config: release
	contrib/bench/config-test.sh

# IPVS in the QEMU guest: installing 1,000 services x 10 real servers against ipvsadm-restore.
bench-ipvs: release
	contrib/bench/ipvs-apply.sh

# CPU of 2,000 TCP_CHECKs against keepalived 2.2.7 in the QEMU guest.
bench-tcpcheck: release
	contrib/bench/tcpcheck-cpu.sh

# CPU of 2,000 HTTP_GETs (a page and its digest) against keepalived 2.2.7 in the QEMU guest.
bench-httpget: release
	CHECK=HTTP_GET contrib/bench/tcpcheck-cpu.sh

# CPU of 100 SSL_GETs (TLS 1.3, P-256, 10 handshakes/s) against keepalived 2.2.7 in the QEMU guest.
bench-sslget: release
	CHECK=SSL_GET contrib/bench/tcpcheck-cpu.sh

# Advert jitter of a MASTER instance alone and with 2,000 HTTP_GETs running, against keepalived 2.2.7
# in the QEMU guest.
bench-jitter: release
	contrib/bench/jitter.sh

# SIGHUP reload of the 500 VS x 8 RS + 50 instance config against keepalived 2.2.7 in the QEMU guest.
bench-reload: release
	contrib/bench/reload.sh

# Idle memory with the control socket and metrics on, and the CPU of a scrape, against keepalived
# 2.2.7 plus a minimal client_golang exporter (contrib/bench/exporter-floor).
bench-status: release
	contrib/bench/status.sh

# The CPU of a scrape with IPVS's counters (50 instances, 1,000 real servers) in the QEMU guest,
# with ipvsadm -Ln --stats reading the same table as the reference.
bench-scrape-ipvs: release
	contrib/bench/scrape-ipvs.sh

# Every benchmark above and the idle, soak and failover ones, against keepalived 2.2.7 in one run;
# rewrites the ratio table at the top of BENCHMARKS.md (contrib/bench/all.sh). About 45 minutes.
bench: release
	contrib/bench/all.sh

clean:
	rm -rf .build
