// berth's CNI plugin executables: bin/berth-bridge, bin/berth-ovs and
// bin/berth-ipam are links to this program, which a runtime runs once per
// call. It hands the call to the host agent when one answers on its socket
// (the agent runs berth's plugins in-process with warm store connections),
// and otherwise runs the plugin itself on Node, as before. A Node process
// costs tens of ms to start before it does anything; this program costs
// about one.
//
// The rules it keeps:
// - VERSION is answered here, whatever else happens.
// - The agent is used only when the connection to its socket is made
//   (BERTH_AGENT_SOCKET, default /run/berth/agent.sock; empty: never). A
//   socket that is missing, refuses or is not ours to open means no agent:
//   the call runs on Node.
// - Once a request has reached the agent it is never run a second time:
//   the plugin's stdout, stderr and exit code are passed on unchanged; no answer within
//   BERTH_AGENT_TIMEOUT_MS (default 120000) is CNI error 11, try again later.
//   The one exception is an answer that says the agent did not run it
//   (X-Berth-Not-Run: an agent shutting down, or one without the fast path).
// - Nothing from the environment or stdin is interpreted here: the CNI_*
//   variables go to the agent as headers, percent-encoded, and stdin as the
//   body, for the agent to check as strictly as the plugin would.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char kVersion[] = "{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}\n";
static const char* const kPlugins[] = {"berth-bridge", "berth-ovs", "berth-ipam", NULL};
static const char* const kPassed[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH", NULL};
// stdin beyond this is refused: a CNI config with its prevResult is a few KiB
enum { kMaxInput = 16 << 20, kMaxAnswer = 16 << 20 };

struct buf {
  char* data;
  size_t len, cap;
};

static void put(struct buf* b, const char* s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (b->len + n + 1 > cap) cap *= 2;
    char* d = realloc(b->data, cap);
    if (!d) abort();
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
}

static void puts_(struct buf* b, const char* s) { put(b, s, strlen(s)); }

// A CNI error on stdout, as the plugin would print it, and exit 1.
static void fail(int code, const char* msg) {
  struct buf out = {0};
  puts_(&out, "{\"cniVersion\":\"1.0.0\",\"code\":");
  char n[16];
  snprintf(n, sizeof n, "%d", code);
  puts_(&out, n);
  puts_(&out, ",\"msg\":\"");
  for (const char* p = msg; *p; p++) {
    if (*p == '"' || *p == '\\') put(&out, "\\", 1);
    if ((unsigned char)*p >= 0x20) put(&out, p, 1);
  }
  puts_(&out, "\"}\n");
  if (write(1, out.data, out.len) < 0) _exit(1);
  _exit(1);
}

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

// Runs the plugin on Node: the Node entry beside this program's build, with
// stdin (already read) given back through a memfd.
static void run_on_node(const char* plugin, const struct buf* input) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) fail(999, "berth: cannot find its own installation (/proc/self/exe)");
  self[n] = 0;
  // build/Release/berth-launcher -> the repository root
  for (int up = 0; up < 3; up++) {
    char* slash = strrchr(self, '/');
    if (!slash) fail(999, "berth: cannot find its installation above build/Release");
    *slash = 0;
  }
  char entry[PATH_MAX];
  if (snprintf(entry, sizeof entry, "%s/cni/entry.cjs", self) >= (int)sizeof entry) fail(999, "berth: installation path too long");
  int in = memfd_create("berth-stdin", MFD_CLOEXEC);
  if (in < 0 || write_all(in, input->data ? input->data : "", input->len) != 0 || lseek(in, 0, SEEK_SET) != 0) fail(999, "berth: cannot hand stdin on");
  if (dup2(in, 0) < 0) fail(999, "berth: cannot hand stdin on");
  char* argv[] = {(char*)"node", entry, (char*)plugin, NULL};
  execvp("node", argv);
  fail(999, "berth: cannot run node (is Node.js on PATH?)");
}

// Percent-encodes a header value: every byte outside printable ASCII, and "%".
static void put_encoded(struct buf* b, const char* v) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char* p = (const unsigned char*)v; *p; p++) {
    if (*p > 0x20 && *p < 0x7f && *p != '%') {
      put(b, (const char*)p, 1);
    } else {
      char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      put(b, e, 3);
    }
  }
}

// The value of header `name` in an HTTP head (case-insensitive), or NULL.
static const char* header(const char* head, const char* name, char* out, size_t cap) {
  size_t len = strlen(name);
  for (const char* line = strstr(head, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
    const char* h = line + 2;
    if (strncasecmp(h, name, len) == 0 && h[len] == ':') {
      const char* v = h + len + 1;
      while (*v == ' ') v++;
      size_t n = strcspn(v, "\r");
      if (n >= cap) n = cap - 1;
      memcpy(out, v, n);
      out[n] = 0;
      return out;
    }
  }
  return NULL;
}

int main(int argc, char** argv) {
  (void)argc;
  const char* plugin = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  int known = 0;
  for (int i = 0; kPlugins[i]; i++) known |= strcmp(plugin, kPlugins[i]) == 0;
  if (!known) fail(999, "berth: run as berth-bridge, berth-ovs or berth-ipam (a link named so)");

  const char* command = getenv("CNI_COMMAND");
  struct buf input = {0};
  if (!isatty(0)) {
    char chunk[65536];
    for (;;) {
      ssize_t r = read(0, chunk, sizeof chunk);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      put(&input, chunk, (size_t)r);
      if (input.len > kMaxInput) fail(7, "berth: the network config on stdin is larger than 16 MiB");
    }
  }
  if (command && strcmp(command, "VERSION") == 0) {
    if (write_all(1, kVersion, sizeof kVersion - 1) != 0) return 1;
    return 0;
  }

  const char* path = getenv("BERTH_AGENT_SOCKET");
  if (!path) path = "/run/berth/agent.sock";
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (path[0] == 0 || strlen(path) >= sizeof addr.sun_path) run_on_node(plugin, &input);
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    // no agent here (not installed, stopped, restarting, not ours to reach): the plugin runs itself
    if (fd >= 0) close(fd);
    run_on_node(plugin, &input);
  }

  struct buf req = {0};
  puts_(&req, "POST /v1/cni/");
  puts_(&req, plugin);
  puts_(&req, " HTTP/1.1\r\nHost: berth-agent\r\nConnection: close\r\nContent-Type: application/json\r\n");
  for (int i = 0; kPassed[i]; i++) {
    const char* v = getenv(kPassed[i]);
    if (!v) continue;
    puts_(&req, "X-");
    puts_(&req, kPassed[i]);
    puts_(&req, ": ");
    put_encoded(&req, v);
    puts_(&req, "\r\n");
  }
  char len[64];
  snprintf(len, sizeof len, "Content-Length: %zu\r\n\r\n", input.len);
  puts_(&req, len);
  if (input.len) put(&req, input.data, input.len);
  // reached the agent from here on: no second run, whatever happens
  if (write_all(fd, req.data, req.len) != 0) fail(11, "berth: the agent closed the connection before answering; try again");

  const char* t = getenv("BERTH_AGENT_TIMEOUT_MS");
  long long timeout = t && *t ? atoll(t) : 120000;
  if (timeout <= 0) timeout = 120000;
  long long deadline = now_ms() + timeout;
  struct buf ans = {0};
  char chunk[65536];
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) fail(11, "berth: the agent did not answer in time; try again");
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int ready = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(11, "berth: the connection to the agent failed before its answer; try again");
    if (r == 0) break;
    put(&ans, chunk, (size_t)r);
    if (ans.len > kMaxAnswer) fail(11, "berth: the agent's answer is larger than 16 MiB");
  }
  close(fd);
  char* body = ans.data ? strstr(ans.data, "\r\n\r\n") : NULL;
  if (!body || strncmp(ans.data, "HTTP/1.", 7) != 0) fail(11, "berth: the agent ended the call without a whole answer; try again");
  *body = 0;
  body += 4;
  char value[32];
  if (header(ans.data, "X-Berth-Not-Run", value, sizeof value)) run_on_node(plugin, &input);
  int status = atoi(ans.data + 9);
  if (status != 200 || !header(ans.data, "X-Berth-Exit", value, sizeof value)) fail(11, "berth: the agent could not run the call; try again");
  int code = atoi(value);
  size_t n = ans.len - (size_t)(body - ans.data);
  // the body is the plugin's stdout, then its stderr (its logs): as many bytes of stdout as the header says
  size_t out = n;
  if (header(ans.data, "X-Berth-Stdout-Length", value, sizeof value)) {
    long long len = atoll(value);
    if (len >= 0 && (size_t)len <= n) out = (size_t)len;
  }
  if (out && write_all(1, body, out) != 0) return 1;
  if (n > out && write_all(2, body + out, n - out) != 0) return 1;
  return code;
}
