// berth_native: the few system calls Node does not expose.
//
// flock(2) makes the embedded file store safe for concurrent processes: the
// kernel drops the lock when its holder dies, so a crashed CNI plugin can never
// wedge the store the way a stale lock file can.
//
// A netlink socket created in a network namespace stays there: netlinkOpen
// moves the calling thread into the container's namespace with setns(2) just
// long enough to create one, so a plugin configures a container's interfaces
// in-process, with no `ip netns exec` subprocess.
//
// rtnetlink requests run on the libuv thread pool. The kernel does a
// request's work inside sendmsg(), on the sender's thread: a veth is deleted
// there (~15 ms of RCU grace periods), and in a container start storm a
// request first waits, up to seconds, for the lock every link change on the
// host takes. On the JavaScript thread that wait stopped everything else the
// thread had in flight: the IPAM request of the same DEL, or, in the agent,
// the other containers' ADDs.
//
// A container announces its address from inside its namespace, on a packet
// socket made there (packetOpen); the repeats of a one-shot plugin are sent
// by a small forked process (packetSendLater), so the plugin answers at once.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <node_api.h>
#include "sys-error.h"
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
#include <vector>

namespace {

// Reads (fd, operation); throws a TypeError naming `usage` and returns false when they are not two integers.
bool FdAndOp(napi_env env, napi_callback_info info, const char* usage, int32_t* fd, int32_t* op) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 2 || napi_get_value_int32(env, argv[0], fd) != napi_ok || napi_get_value_int32(env, argv[1], op) != napi_ok) {
    napi_throw_type_error(env, nullptr, usage);
    return false;
  }
  return true;
}

// Reads one integer argument; throws a TypeError naming `usage` and returns false otherwise.
bool OneInt(napi_env env, napi_callback_info info, const char* usage, int32_t* value) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 1 || napi_get_value_int32(env, argv[0], value) != napi_ok) {
    napi_throw_type_error(env, nullptr, usage);
    return false;
  }
  return true;
}

// Queues w (a struct with `work` and `deferred`) on the thread pool: execute
// runs there, complete back on the JavaScript thread, which settles the
// returned promise.
template <typename Work>
napi_value QueueWork(napi_env env, Work* w, const char* name, napi_async_execute_callback execute, napi_async_complete_callback complete) {
  napi_value promise, resource;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  napi_create_async_work(env, nullptr, resource, execute, complete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return promise;
}

int FlockRetrying(int fd, int op) {
  int rc;
  do {
    rc = flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

// flock(fd, operation): operation is a bitmask of LOCK_SH/LOCK_EX/LOCK_UN/LOCK_NB.
// Returns true when the lock was taken, false when LOCK_NB was set and it is held elsewhere.
napi_value Flock(napi_env env, napi_callback_info info) {
  int32_t fd = -1, op = 0;
  if (!FdAndOp(env, info, "flock(fd, operation) takes two integers", &fd, &op)) return nullptr;
  int err = FlockRetrying(fd, op);
  napi_value result;
  if (err != 0 && !(err == EWOULDBLOCK && (op & LOCK_NB))) {
    napi_throw(env, SysError(env, "flock", err));
    return nullptr;
  }
  napi_get_boolean(env, err == 0, &result);
  return result;
}

// flockWait(fd, operation): a blocking flock(2) on the libuv thread pool, so the
// kernel queues the waiters instead of them polling. Resolves when the lock is
// held. The caller must not issue a second one on the same fd while one waits.
struct FlockWork {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int op;
  int err;
};

void FlockExecute(napi_env, void* data) {
  FlockWork* w = static_cast<FlockWork*>(data);
  w->err = FlockRetrying(w->fd, w->op);
}

void FlockComplete(napi_env env, napi_status, void* data) {
  FlockWork* w = static_cast<FlockWork*>(data);
  if (w->err == 0) {
    napi_value t;
    napi_get_boolean(env, true, &t);
    napi_resolve_deferred(env, w->deferred, t);
  } else {
    napi_reject_deferred(env, w->deferred, SysError(env, "flock", w->err));
  }
  napi_delete_async_work(env, w->work);
  delete w;
}

napi_value FlockWait(napi_env env, napi_callback_info info) {
  int32_t fd = -1, op = 0;
  if (!FdAndOp(env, info, "flockWait(fd, operation) takes two integers", &fd, &op)) return nullptr;
  return QueueWork(env, new FlockWork{nullptr, nullptr, fd, op & ~LOCK_NB, 0}, "berth:flock", FlockExecute, FlockComplete);
}

// A socket made in the namespace open at ns (-1: the calling thread's own).
// The thread switches in and back within this call; nothing else runs on it
// meanwhile. Returns the fd, or -1 with *err and *syscall set.
int SocketIn(int ns, int domain, int type, int protocol, int* err, const char** syscall) {
  int own = -1;
  if (ns >= 0) {
    own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (own < 0) {
      *err = errno;
      *syscall = "open";
      return -1;
    }
    if (setns(ns, CLONE_NEWNET) != 0) {
      *err = errno;
      *syscall = "setns";
      close(own);
      return -1;
    }
  }
  int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
  *err = errno;
  *syscall = "socket";
  if (own >= 0) {
    // The thread must not stay in the container's namespace: every later
    // socket it made (the store's, the Docker API's) would be made there.
    if (setns(own, CLONE_NEWNET) != 0) abort();
    close(own);
  }
  return fd;
}

// Reads the namespace fd argument of netlinkOpen/packetOpen and makes the socket, or throws.
napi_value OpenIn(napi_env env, napi_callback_info info, const char* usage, int domain, int type, int protocol, int* fd) {
  int32_t ns = -1;
  if (!OneInt(env, info, usage, &ns)) return nullptr;
  int err = 0;
  const char* syscall = "socket";
  *fd = SocketIn(ns, domain, type, protocol, &err, &syscall);
  if (*fd < 0) {
    napi_throw(env, SysError(env, syscall, err));
    return nullptr;
  }
  napi_value result;
  napi_create_int32(env, *fd, &result);
  return result;
}

// netlinkOpen(nsFd): a blocking NETLINK_ROUTE socket in the namespace open
// at nsFd (-1: the calling thread's own), returned as an fd. Replies wait at
// most kReplyTimeoutSec, so a pool thread is never lost.
constexpr int kReplyTimeoutSec = 60;

napi_value NetlinkOpen(napi_env env, napi_callback_info info) {
  int fd = -1;
  napi_value result = OpenIn(env, info, "netlinkOpen(nsFd) takes an integer (-1: this namespace)", AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, &fd);
  if (!result) return nullptr;
  struct timeval tv = {kReplyTimeoutSec, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return result;
}

// netlinkRequest(fd, messages): sends netlink messages (headers included,
// NLM_F_ACK set by the caller, sequence numbers rising) in one sendto() on
// the thread pool and resolves with everything the kernel answered, up to
// and including the NLMSG_ERROR (an ACK or an error) or NLMSG_DONE that ends
// the answer to the last one: the kernel takes them in order and answers
// each. The caller reads the error codes. One request at a time per socket.
struct NetlinkWork {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  std::vector<char> request;
  std::vector<char> answer;
  int err;
  const char* syscall;
};

// True when the messages in buf..buf+len end the answer to seq.
bool AnswerEnds(const char* buf, size_t len, uint32_t seq) {
  for (size_t at = 0; at + sizeof(nlmsghdr) <= len;) {
    const nlmsghdr* h = reinterpret_cast<const nlmsghdr*>(buf + at);
    if (h->nlmsg_len < sizeof(nlmsghdr) || at + h->nlmsg_len > len) return true;  // malformed: stop, the caller refuses it
    if (h->nlmsg_seq == seq && (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE)) return true;
    at += NLMSG_ALIGN(h->nlmsg_len);
  }
  return false;
}

void NetlinkExecute(napi_env, void* data) {
  NetlinkWork* w = static_cast<NetlinkWork*>(data);
  // the last message's sequence number: its answer comes last
  uint32_t lastSeq = 0;
  for (size_t at = 0; at + sizeof(nlmsghdr) <= w->request.size();) {
    const nlmsghdr* h = reinterpret_cast<const nlmsghdr*>(w->request.data() + at);
    if (h->nlmsg_len < sizeof(nlmsghdr)) break;
    lastSeq = h->nlmsg_seq;
    at += NLMSG_ALIGN(h->nlmsg_len);
  }
  sockaddr_nl kernel = {};
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(w->fd, w->request.data(), w->request.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    w->err = errno;
    w->syscall = "sendto";
    return;
  }
  std::vector<char> buf(64 * 1024);
  for (;;) {
    do {
      n = recv(w->fd, buf.data(), buf.size(), MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      w->err = errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
      w->syscall = "recv";
      return;
    }
    if (static_cast<size_t>(n) > buf.size()) {
      w->err = EMSGSIZE;
      w->syscall = "recv";
      return;
    }
    w->answer.insert(w->answer.end(), buf.data(), buf.data() + n);
    if (AnswerEnds(buf.data(), n, lastSeq)) return;
  }
}

void NetlinkComplete(napi_env env, napi_status, void* data) {
  NetlinkWork* w = static_cast<NetlinkWork*>(data);
  if (w->err == 0) {
    napi_value out;
    void* bytes = nullptr;
    napi_create_buffer_copy(env, w->answer.size(), w->answer.data(), &bytes, &out);
    napi_resolve_deferred(env, w->deferred, out);
  } else {
    napi_reject_deferred(env, w->deferred, SysError(env, w->syscall, w->err));
  }
  napi_delete_async_work(env, w->work);
  delete w;
}

napi_value NetlinkRequest(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1;
  bool isBuffer = false;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc >= 2) napi_is_buffer(env, argv[1], &isBuffer);
  void* bytes = nullptr;
  size_t len = 0;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || !isBuffer || napi_get_buffer_info(env, argv[1], &bytes, &len) != napi_ok ||
      len < sizeof(nlmsghdr)) {
    napi_throw_type_error(env, nullptr, "netlinkRequest(fd, messages) takes an integer and a Buffer holding whole netlink messages");
    return nullptr;
  }
  const char* b = static_cast<const char*>(bytes);
  return QueueWork(env, new NetlinkWork{nullptr, nullptr, fd, std::vector<char>(b, b + len), {}, 0, nullptr}, "berth:netlink", NetlinkExecute, NetlinkComplete);
}

// closeFd(fd): closes a socket from netlinkOpen or packetOpen. (Node's fs.closeSync
// would too, but on a worker thread it warns about every fd it did not open itself.)
napi_value CloseFd(napi_env env, napi_callback_info info) {
  int32_t fd = -1;
  if (!OneInt(env, info, "closeFd(fd) takes an integer", &fd)) return nullptr;
  if (close(fd) != 0 && errno != EINTR) napi_throw(env, SysError(env, "close", errno));
  return nullptr;
}

// linkByName(fd, name): the index, MAC and flags (IFF_*) of link `name` in
// the namespace of socket fd (a netlink socket from netlinkOpen), or
// undefined when there is none. SIOCGIFINDEX, SIOCGIFHWADDR and SIOCGIFFLAGS
// read the link under RCU: unlike an RTM_GETLINK they do not wait for the
// kernel's link lock, which in a start storm is held for up to seconds at a
// time, and unlike sysfs they do not wait for the sysfs tree's lock, which
// registering a link takes (a read of /sys/class/net waited up to 0.6 s).
napi_value LinkByName(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1;
  struct ifreq ifr = {};
  char name[64];
  size_t len = 0;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_string_utf8(env, argv[1], name, sizeof name, &len) != napi_ok ||
      len == 0 || len >= IFNAMSIZ) {
    napi_throw_type_error(env, nullptr, "linkByName(fd, name) takes an integer and an interface name of 1 to 15 bytes");
    return nullptr;
  }
  memcpy(ifr.ifr_name, name, len + 1);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) != 0) {
    if (errno == ENODEV) return nullptr;
    napi_throw(env, SysError(env, "ioctl", errno));
    return nullptr;
  }
  napi_value out, value;
  napi_create_object(env, &out);
  napi_create_int32(env, ifr.ifr_ifindex, &value);
  napi_set_named_property(env, out, "index", value);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER) {
    void* bytes = nullptr;
    napi_create_buffer_copy(env, 6, ifr.ifr_hwaddr.sa_data, &bytes, &value);
    napi_set_named_property(env, out, "mac", value);
  }
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
    napi_create_uint32(env, static_cast<uint16_t>(ifr.ifr_flags), &value);
    napi_set_named_property(env, out, "flags", value);
  }
  return out;
}

// packetOpen(nsFd[, ifindex]): an AF_PACKET raw socket in the namespace open
// at nsFd (-1: the calling thread's own), for whole Ethernet frames. Without
// ifindex it receives nothing (protocol 0), so nothing queues up on it; with
// one it is bound to that link and receives every frame arriving there.
napi_value PacketOpen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t ns = -1, ifindex = 0;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &ns) != napi_ok || (argc >= 2 && napi_get_value_int32(env, argv[1], &ifindex) != napi_ok) || ifindex < 0) {
    napi_throw_type_error(env, nullptr, "packetOpen(nsFd[, ifindex]) takes integers (nsFd -1: this namespace)");
    return nullptr;
  }
  int err = 0;
  const char* syscall = "socket";
  int fd = SocketIn(ns, AF_PACKET, SOCK_RAW, ifindex > 0 ? htons(ETH_P_ALL) : 0, &err, &syscall);
  if (fd < 0) {
    napi_throw(env, SysError(env, syscall, err));
    return nullptr;
  }
  if (ifindex > 0) {
    sockaddr_ll at = {};
    at.sll_family = AF_PACKET;
    at.sll_protocol = htons(ETH_P_ALL);
    at.sll_ifindex = ifindex;
    if (bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) {
      err = errno;
      close(fd);
      napi_throw(env, SysError(env, "bind", err));
      return nullptr;
    }
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

// The link-layer address a frame goes to: its own destination and EtherType.
sockaddr_ll FrameAddress(int ifindex, const unsigned char* frame) {
  sockaddr_ll to = {};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex;
  to.sll_halen = ETH_ALEN;
  memcpy(to.sll_addr, frame, ETH_ALEN);
  memcpy(&to.sll_protocol, frame + 12, 2);  // network byte order, as in the frame
  return to;
}

// packetSend(fd, ifindex, frame): sends one whole Ethernet frame out of link ifindex.
napi_value PacketSend(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t fd = -1, ifindex = 0;
  void* bytes = nullptr;
  size_t len = 0;
  bool isBuffer = false;
  if (argc >= 3) napi_is_buffer(env, argv[2], &isBuffer);
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &ifindex) != napi_ok || !isBuffer ||
      napi_get_buffer_info(env, argv[2], &bytes, &len) != napi_ok || len < ETH_HLEN) {
    napi_throw_type_error(env, nullptr, "packetSend(fd, ifindex, frame) takes two integers and a Buffer holding an Ethernet frame");
    return nullptr;
  }
  sockaddr_ll to = FrameAddress(ifindex, static_cast<unsigned char*>(bytes));
  ssize_t n;
  do {
    n = sendto(fd, bytes, len, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  } while (n < 0 && errno == EINTR);
  if (n < 0) napi_throw(env, SysError(env, "sendto", errno));
  return nullptr;
}

// Reads frames (an array of Buffers holding Ethernet frames) and delaysMs (as
// many integers, 0 to 1 h) into w, each frame's link-layer address with it;
// false when they are not that.
bool ReadFrames(napi_env env, napi_value frames, napi_value delays, int ifindex, std::vector<std::vector<unsigned char>>* out, std::vector<sockaddr_ll>* to,
                std::vector<int64_t>* ms) {
  bool framesArray = false, delaysArray = false;
  uint32_t count = 0, delayCount = 0;
  napi_is_array(env, frames, &framesArray);
  napi_is_array(env, delays, &delaysArray);
  if (!framesArray || !delaysArray || napi_get_array_length(env, frames, &count) != napi_ok || napi_get_array_length(env, delays, &delayCount) != napi_ok ||
      count != delayCount) {
    return false;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value frame, delay;
    bool isBuffer = false;
    void* bytes = nullptr;
    size_t len = 0;
    int64_t d = -1;
    napi_get_element(env, frames, i, &frame);
    napi_get_element(env, delays, i, &delay);
    napi_is_buffer(env, frame, &isBuffer);
    if (!isBuffer || napi_get_buffer_info(env, frame, &bytes, &len) != napi_ok || len < ETH_HLEN || napi_get_value_int64(env, delay, &d) != napi_ok || d < 0 ||
        d > 3600 * 1000) {
      return false;
    }
    const unsigned char* b = static_cast<const unsigned char*>(bytes);
    out->emplace_back(b, b + len);
    to->push_back(FrameAddress(ifindex, b));
    ms->push_back(d);
  }
  return true;
}

// packetSendLater(fd, ifindex, frames, delaysMs): sends frames[i] out of link
// ifindex delaysMs[i] after this call, from a detached process, so that a
// one-shot plugin answers at once. The child is forked twice (the first
// exits at once and is reaped here: nothing is left for this process to
// wait for), keeps only socket fd open, so no pipe of the runtime's stays
// open, and from the fork on makes only async-signal-safe system calls on
// memory prepared before it.
napi_value PacketSendLater(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t fd = -1, ifindex = 0;
  std::vector<std::vector<unsigned char>> frames;
  std::vector<sockaddr_ll> to;
  std::vector<int64_t> delays;
  if (argc < 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &ifindex) != napi_ok ||
      !ReadFrames(env, argv[2], argv[3], ifindex, &frames, &to, &delays)) {
    napi_throw_type_error(env, nullptr, "packetSendLater(fd, ifindex, frames, delaysMs) takes two integers, an array of Buffers holding Ethernet frames and an array of as many delays up to 1 h");
    return nullptr;
  }
  size_t count = frames.size();
  std::vector<timespec> at;
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  for (int64_t ms : delays) {
    timespec t = now;
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
      t.tv_sec++;
      t.tv_nsec -= 1000000000;
    }
    at.push_back(t);
  }
  if (count == 0) return nullptr;
  pid_t child = fork();
  if (child < 0) {
    napi_throw(env, SysError(env, "fork", errno));
    return nullptr;
  }
  if (child == 0) {
    if (fork() != 0) _exit(0);
    setsid();
    if (fd > 0) close_range(0, fd - 1, 0);
    close_range(fd + 1, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (size_t i = 0; i < count; i++) {
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at[i], nullptr) == EINTR) {
      }
      sendto(fd, frames[i].data(), frames[i].size(), 0, reinterpret_cast<const sockaddr*>(&to[i]), sizeof to[i]);
    }
    _exit(0);
  }
  while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
  }
  return nullptr;
}

// packetExchange(fd, ifindex, frames, delaysMs, listenMs): on the thread
// pool, sends frames[i] out of link ifindex delaysMs[i] after the call and
// resolves, listenMs after the call, with the frames that arrived on the
// bound socket fd meanwhile (not the ones it sent; at most kMaxFrames, each
// cut to kMaxFrameBytes).
constexpr size_t kMaxFrames = 256;
constexpr size_t kMaxFrameBytes = 256;

struct ExchangeWork {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  std::vector<std::vector<unsigned char>> frames;
  std::vector<sockaddr_ll> to;
  std::vector<int64_t> delays;
  int64_t listenMs;
  std::vector<std::vector<unsigned char>> received;
  int err;
  const char* syscall;
};

int64_t MsSince(const timespec& start) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
}

void ExchangeExecute(napi_env, void* data) {
  ExchangeWork* w = static_cast<ExchangeWork*>(data);
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  size_t next = 0;
  unsigned char buf[2048];
  for (;;) {
    int64_t t = MsSince(start);
    while (next < w->frames.size() && w->delays[next] <= t) {
      ssize_t n;
      do {
        n = sendto(w->fd, w->frames[next].data(), w->frames[next].size(), 0, reinterpret_cast<sockaddr*>(&w->to[next]), sizeof w->to[next]);
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        w->err = errno;
        w->syscall = "sendto";
        return;
      }
      next++;
    }
    if (t >= w->listenMs && next >= w->frames.size()) return;
    int64_t until = next < w->frames.size() && w->delays[next] < w->listenMs ? w->delays[next] : w->listenMs;
    pollfd p = {w->fd, POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(until > t ? until - t : 0));
    if (ready < 0 && errno != EINTR) {
      w->err = errno;
      w->syscall = "poll";
      return;
    }
    for (;;) {
      sockaddr_ll from = {};
      socklen_t fromLen = sizeof from;
      ssize_t n = recvfrom(w->fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fromLen);
      if (n < 0) break;
      if (from.sll_pkttype == PACKET_OUTGOING || w->received.size() >= kMaxFrames) continue;
      size_t keep = static_cast<size_t>(n) < kMaxFrameBytes ? static_cast<size_t>(n) : kMaxFrameBytes;
      w->received.emplace_back(buf, buf + keep);
    }
  }
}

void ExchangeComplete(napi_env env, napi_status, void* data) {
  ExchangeWork* w = static_cast<ExchangeWork*>(data);
  if (w->err == 0) {
    napi_value out;
    napi_create_array_with_length(env, w->received.size(), &out);
    for (size_t i = 0; i < w->received.size(); i++) {
      napi_value b;
      void* bytes = nullptr;
      napi_create_buffer_copy(env, w->received[i].size(), w->received[i].data(), &bytes, &b);
      napi_set_element(env, out, static_cast<uint32_t>(i), b);
    }
    napi_resolve_deferred(env, w->deferred, out);
  } else {
    napi_reject_deferred(env, w->deferred, SysError(env, w->syscall, w->err));
  }
  napi_delete_async_work(env, w->work);
  delete w;
}

napi_value PacketExchange(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  auto* w = new ExchangeWork{nullptr, nullptr, -1, {}, {}, {}, 0, {}, 0, nullptr};
  int32_t ifindex = 0;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &w->fd) != napi_ok || napi_get_value_int32(env, argv[1], &ifindex) != napi_ok ||
      !ReadFrames(env, argv[2], argv[3], ifindex, &w->frames, &w->to, &w->delays) || napi_get_value_int64(env, argv[4], &w->listenMs) != napi_ok || w->listenMs < 0 ||
      w->listenMs > 60 * 1000) {
    delete w;
    napi_throw_type_error(env, nullptr, "packetExchange(fd, ifindex, frames, delaysMs, listenMs) takes two integers, an array of Buffers holding Ethernet frames, as many delays and a listening time of at most 60 s");
    return nullptr;
  }
  return QueueWork(env, w, "berth:packet", ExchangeExecute, ExchangeComplete);
}

napi_value Init(napi_env env, napi_value exports) {
  const struct { const char* name; napi_callback fn; } functions[] = {
    {"flock", Flock}, {"flockWait", FlockWait}, {"netlinkOpen", NetlinkOpen}, {"netlinkRequest", NetlinkRequest}, {"closeFd", CloseFd}, {"linkByName", LinkByName},
    {"packetOpen", PacketOpen}, {"packetSend", PacketSend}, {"packetSendLater", PacketSendLater}, {"packetExchange", PacketExchange},
  };
  for (const auto& f : functions) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
  const struct { const char* name; int value; } constants[] = {
    {"LOCK_SH", LOCK_SH}, {"LOCK_EX", LOCK_EX}, {"LOCK_UN", LOCK_UN}, {"LOCK_NB", LOCK_NB},
  };
  for (const auto& c : constants) {
    napi_value v;
    napi_create_int32(env, c.value, &v);
    napi_set_named_property(env, exports, c.name, v);
  }
  DnsUdpInit(env, exports);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
