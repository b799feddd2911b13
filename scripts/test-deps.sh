#!/usr/bin/env bash
# Installs the Debian packages the integration tests start for real. Safe to
# run again; uses sudo when not root. The tests themselves start every
# component on private ports and names: nothing here is left running.
set -euo pipefail

packages=(
  redis-server   # the Redis store (tests start their own on a free port, plain, AUTH and TLS; Sentinel is redis-server --sentinel; redis-cli --cluster makes clusters)
  iptables       # the failover tests cut a master off from its replicas and sentinels on loopback
  openssl        # certificates for the Redis TLS test
  iproute2       # network namespaces for the CNI tests
  containernetworking-plugins  # the reference plugins: berth-ipam under the reference bridge; host-local in the benchmark
  podman runc    # podman with its CNI backend runs containers on berth networks (runc: crun refuses the cgroup layout here)
  busybox-static # the container image the podman tests import (no registry is reachable)
  hyperfine      # npm run bench times plugin processes
  openvswitch-switch  # the OVSDB client's tests start their own ovsdb-server + ovs-vswitchd (userspace datapath)
  docker.io      # the agent's tests start their own dockerd (private socket, data root and containerd namespace)
  haproxy        # the load-balancer tests run a real HAProxy (master-worker) on private sockets
  keepalived     # keepalived -t validates the rendered LVS virtual servers
  tcpdump        # the OVS trunk test reads the VLAN tags on a trunk port's frames; the announcement tests count gratuitous ARPs
  prometheus     # a real Prometheus scrapes the agent and discovers containers through /v1/sd
  python3        # ... and sends 802.1Q-tagged frames from a raw socket (node-gyp needs it too)
  strace         # the durability tests read from a trace that each acknowledgement follows its fsync
  chromium       # the console's tests drive it headless through puppeteer-core (no browser download works here)
  fonts-dejavu-core  # the fonts its pages and screenshots are drawn with
  bind9-dnsutils # dig asks berth dns its records, over UDP and TCP
  unbound        # a real recursive resolver forwards the zone to berth dns
  dnsmasq-base   # ... and another; in the benchmark, the established server beside berth dns
  dnsperf        # the DNS benchmark's load generator
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "test-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  # No service may start from a package's postinst: the tests run their own.
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  $sudo rm -f /usr/sbin/policy-rc.d
fi
echo "test-deps: ready (${packages[*]})"
