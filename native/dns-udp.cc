// berth dns's UDP socket, read and answered on a thread of its own.
//
// Node's dgram delivers one datagram per event-loop turn and sends one per
// system call; on loopback that capped berth dns below dnsmasq with the
// answering itself ~5% of the time. Here a thread takes datagrams in batches
// (recvmmsg) and answers every query whose bytes after the 2-byte id it has
// been given an answer for (udpAnswererKeep), in batches (sendmmsg), with the
// query's id copied in. Nothing here reads DNS: every other datagram goes to
// JavaScript (onQuery), which decodes it with dns-packet, sends its answer
// (udpAnswererSend) and decides whether that answer may be kept. The zone
// changing forgets every kept answer at once (udpAnswererForget).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sys-error.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace {

// Datagrams taken or sent per system call.
constexpr int BATCH = 64;
// A datagram longer than this is cut (MSG_TRUNC) and left to JavaScript, which answers FORMERR.
constexpr size_t DATAGRAM_MAX = 4096;
// Kept answers: slots of an open-addressed table, probed this far from a key's hash.
constexpr uint32_t SLOTS = 16384;
constexpr uint32_t PROBE = 8;
// A kept question (bytes after the id) is at most a header, a 255-byte name, type, class and an OPT record; a kept answer fits a UDP answer (EDNS 1232).
constexpr size_t KEY_MAX = 320;
constexpr size_t ANSWER_MAX = 1232;
// Datagrams queued for JavaScript beyond this are dropped: the client asks again.
constexpr size_t PASS_QUEUE = 4096;

struct Slot {
  uint32_t generation = 0;  // 0: never used
  uint32_t hash = 0;
  uint16_t keyLen = 0;
  uint16_t answerLen = 0;
  uint8_t* bytes = nullptr;  // the key, then the answer
};

struct Passed {
  std::vector<uint8_t> query;
  sockaddr_storage peer;
  socklen_t peerLen;
};

struct Answerer {
  int fd = -1;
  int stopPipe[2] = {-1, -1};
  std::thread thread;
  std::mutex lock;  // guards slots and generation
  uint32_t generation = 1;
  std::vector<Slot> slots = std::vector<Slot>(SLOTS);
  napi_threadsafe_function onQuery = nullptr;
  std::atomic<uint64_t> kept{0}, passed{0}, dropped{0};
  bool closed = false;
};

uint32_t Hash(const uint8_t* p, size_t n) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

// The kept answer's length for key (copied into out, ANSWER_MAX long), or 0.
size_t Lookup(Answerer* a, const uint8_t* key, size_t keyLen, uint8_t* out) {
  uint32_t h = Hash(key, keyLen);
  std::lock_guard<std::mutex> guard(a->lock);
  for (uint32_t i = 0; i < PROBE; i++) {
    Slot& s = a->slots[(h + i) & (SLOTS - 1)];
    if (s.generation != a->generation) continue;
    if (s.hash == h && s.keyLen == keyLen && memcmp(s.bytes, key, keyLen) == 0) {
      memcpy(out, s.bytes + keyLen, s.answerLen);
      return s.answerLen;
    }
  }
  return 0;
}

void Keep(Answerer* a, const uint8_t* key, size_t keyLen, const uint8_t* answer, size_t answerLen) {
  uint32_t h = Hash(key, keyLen);
  auto* bytes = static_cast<uint8_t*>(malloc(keyLen + answerLen));
  if (!bytes) return;
  memcpy(bytes, key, keyLen);
  memcpy(bytes + keyLen, answer, answerLen);
  std::lock_guard<std::mutex> guard(a->lock);
  // the same key, else a slot of an older zone, else the first probed
  Slot* target = &a->slots[h & (SLOTS - 1)];
  for (uint32_t i = 0; i < PROBE; i++) {
    Slot& s = a->slots[(h + i) & (SLOTS - 1)];
    if (s.generation == a->generation && s.hash == h && s.keyLen == keyLen && memcmp(s.bytes, key, keyLen) == 0) {
      target = &s;
      break;
    }
    if (s.generation != a->generation && target->generation == a->generation) target = &s;
  }
  free(target->bytes);
  *target = Slot{a->generation, h, static_cast<uint16_t>(keyLen), static_cast<uint16_t>(answerLen), bytes};
}

// Sends n prepared datagrams, going on after one the kernel refuses.
void SendAll(int fd, mmsghdr* msgs, int n) {
  for (int done = 0; done < n;) {
    int sent = sendmmsg(fd, msgs + done, n - done, 0);
    if (sent > 0) done += sent;
    else if (sent < 0 && errno == EINTR) continue;
    else done++;  // that datagram is lost, as a full socket buffer would lose it: the client asks again
  }
}

void Serve(Answerer* a) {
  std::vector<uint8_t> inBytes(BATCH * DATAGRAM_MAX), outBytes(BATCH * ANSWER_MAX);
  uint8_t* in[BATCH];
  uint8_t* out[BATCH];
  for (int i = 0; i < BATCH; i++) {
    in[i] = &inBytes[i * DATAGRAM_MAX];
    out[i] = &outBytes[i * ANSWER_MAX];
  }
  sockaddr_storage peers[BATCH];
  iovec inIov[BATCH], outIov[BATCH];
  mmsghdr inMsgs[BATCH], outMsgs[BATCH];
  pollfd fds[2] = {{a->fd, POLLIN, 0}, {a->stopPipe[0], POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    for (int i = 0; i < BATCH; i++) {
      inIov[i] = {in[i], DATAGRAM_MAX};
      inMsgs[i].msg_hdr = msghdr{&peers[i], sizeof(peers[i]), &inIov[i], 1, nullptr, 0, 0};
    }
    int n = recvmmsg(a->fd, inMsgs, BATCH, MSG_DONTWAIT, nullptr);
    if (n <= 0) continue;
    int answers = 0;
    for (int i = 0; i < n; i++) {
      size_t len = inMsgs[i].msg_len;
      bool whole = !(inMsgs[i].msg_hdr.msg_flags & MSG_TRUNC);
      size_t found = whole && len >= 12 && len - 2 <= KEY_MAX ? Lookup(a, in[i] + 2, len - 2, out[answers]) : 0;
      if (found > 0) {
        out[answers][0] = in[i][0];
        out[answers][1] = in[i][1];
        outIov[answers] = {out[answers], found};
        outMsgs[answers].msg_hdr = msghdr{&peers[i], inMsgs[i].msg_hdr.msg_namelen, &outIov[answers], 1, nullptr, 0, 0};
        answers++;
        a->kept++;
        continue;
      }
      auto* p = new Passed{std::vector<uint8_t>(in[i], in[i] + len), peers[i], inMsgs[i].msg_hdr.msg_namelen};
      if (napi_call_threadsafe_function(a->onQuery, p, napi_tsfn_nonblocking) == napi_ok) {
        a->passed++;
      } else {
        delete p;
        a->dropped++;
      }
    }
    if (answers > 0) SendAll(a->fd, outMsgs, answers);
  }
}

// On the JavaScript thread: onQuery(query, peer); with no env the queue is being torn down.
void CallJs(napi_env env, napi_value fn, void*, void* data) {
  auto* p = static_cast<Passed*>(data);
  if (env != nullptr && fn != nullptr) {
    napi_value args[2], global;
    void* copy;
    napi_create_buffer_copy(env, p->query.size(), p->query.data(), &copy, &args[0]);
    napi_create_buffer_copy(env, p->peerLen, &p->peer, &copy, &args[1]);
    napi_get_global(env, &global);
    napi_call_function(env, global, fn, 2, args, nullptr);
  }
  delete p;
}

void Close(Answerer* a) {
  if (a->closed) return;
  a->closed = true;
  if (write(a->stopPipe[1], "x", 1) < 0) {
    // the pipe is empty and ours: a write cannot fail but for a signal, and close() below ends the poll too
  }
  if (a->thread.joinable()) a->thread.join();
  close(a->stopPipe[0]);
  close(a->stopPipe[1]);
  close(a->fd);
  napi_release_threadsafe_function(a->onQuery, napi_tsfn_abort);
  for (Slot& s : a->slots) free(s.bytes);
  a->slots.clear();
}

// An answerer never closed is left as it is: its thread-safe function may already be gone with the environment.
void Finalize(napi_env, void* data, void*) {
  auto* a = static_cast<Answerer*>(data);
  if (a->closed) delete a;
}

Answerer* HandleOf(napi_env env, napi_value v) {
  void* data = nullptr;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == nullptr) {
    napi_throw_type_error(env, nullptr, "expected a handle from udpAnswererOpen");
    return nullptr;
  }
  auto* a = static_cast<Answerer*>(data);
  if (a->closed) {
    napi_throw_error(env, nullptr, "the UDP answerer is closed");
    return nullptr;
  }
  return a;
}

bool BufferArg(napi_env env, napi_value v, uint8_t** data, size_t* len) {
  bool is = false;
  napi_is_buffer(env, v, &is);
  return is && napi_get_buffer_info(env, v, reinterpret_cast<void**>(data), len) == napi_ok;
}

// udpAnswererOpen(host, port, onQuery): binds a UDP socket to host:port (port 0: a free one) and starts its thread; returns { handle, port }.
napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  char host[INET6_ADDRSTRLEN + 1] = {0};
  size_t hostLen = 0;
  int32_t port = -1;
  napi_valuetype fnType = napi_undefined;
  if (argc == 3) napi_typeof(env, argv[2], &fnType);
  sockaddr_storage addr{};
  socklen_t addrLen = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  bool ok = argc == 3 && napi_get_value_string_utf8(env, argv[0], host, sizeof(host), &hostLen) == napi_ok && napi_get_value_int32(env, argv[1], &port) == napi_ok && port >= 0 &&
            port <= 65535 && fnType == napi_function;
  if (ok && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    addrLen = sizeof(*v4);
  } else if (ok && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    addrLen = sizeof(*v6);
  } else {
    napi_throw_type_error(env, nullptr, "udpAnswererOpen(host, port, onQuery) takes an IP address, a port from 0 to 65535 and a function");
    return nullptr;
  }
  int fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    napi_throw(env, SysError(env, "socket", errno));
    return nullptr;
  }
  int recvBuffer = 4 * 1024 * 1024;  // a burst is queued, not dropped
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &recvBuffer, sizeof(recvBuffer));
  if (addr.ss_family == AF_INET6) {
    int only = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof(only));
  }
  socklen_t boundLen = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), addrLen) < 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &boundLen) < 0) {
    int err = errno;
    close(fd);
    napi_throw(env, SysError(env, "bind", err));
    return nullptr;
  }
  auto* a = new Answerer();
  a->fd = fd;
  if (pipe2(a->stopPipe, O_CLOEXEC) < 0) {
    int err = errno;
    close(fd);
    delete a;
    napi_throw(env, SysError(env, "pipe2", err));
    return nullptr;
  }
  napi_value name;
  napi_create_string_utf8(env, "berth:dns-udp", NAPI_AUTO_LENGTH, &name);
  napi_create_threadsafe_function(env, argv[2], nullptr, name, PASS_QUEUE, 1, nullptr, nullptr, nullptr, CallJs, &a->onQuery);
  a->thread = std::thread(Serve, a);
  napi_value result, handle, boundPort;
  napi_create_object(env, &result);
  napi_create_external(env, a, Finalize, nullptr, &handle);
  napi_create_int32(env, ntohs(addr.ss_family == AF_INET6 ? v6->sin6_port : v4->sin_port), &boundPort);
  napi_set_named_property(env, result, "handle", handle);
  napi_set_named_property(env, result, "port", boundPort);
  return result;
}

// udpAnswererSend(handle, peer, bytes): one datagram to a peer given to onQuery; false when the socket's buffer is full (dropped).
napi_value Send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Answerer* a = argc == 3 ? HandleOf(env, argv[0]) : nullptr;
  if (a == nullptr) {
    if (argc != 3) napi_throw_type_error(env, nullptr, "udpAnswererSend(handle, peer, bytes) takes three arguments");
    return nullptr;
  }
  uint8_t *peer, *bytes;
  size_t peerLen, len;
  if (!BufferArg(env, argv[1], &peer, &peerLen) || !BufferArg(env, argv[2], &bytes, &len) || peerLen < sizeof(sa_family_t) || peerLen > sizeof(sockaddr_storage)) {
    napi_throw_type_error(env, nullptr, "udpAnswererSend(handle, peer, bytes) takes a peer from onQuery and a Buffer");
    return nullptr;
  }
  ssize_t sent;
  do sent = sendto(a->fd, bytes, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(peer), static_cast<socklen_t>(peerLen));
  while (sent < 0 && errno == EINTR);
  napi_value result;
  napi_get_boolean(env, sent >= 0, &result);
  return result;
}

// udpAnswererKeep(handle, query, answer): answers the same bytes after the id with `answer` (its id replaced) until udpAnswererForget.
napi_value KeepAnswer(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Answerer* a = argc == 3 ? HandleOf(env, argv[0]) : nullptr;
  if (a == nullptr) {
    if (argc != 3) napi_throw_type_error(env, nullptr, "udpAnswererKeep(handle, query, answer) takes three arguments");
    return nullptr;
  }
  uint8_t *query, *answer;
  size_t queryLen, answerLen;
  if (!BufferArg(env, argv[1], &query, &queryLen) || !BufferArg(env, argv[2], &answer, &answerLen) || queryLen < 12 || answerLen < 12) {
    napi_throw_type_error(env, nullptr, "udpAnswererKeep(handle, query, answer) takes two DNS messages as Buffers");
    return nullptr;
  }
  // longer ones are answered by JavaScript each time
  if (queryLen - 2 <= KEY_MAX && answerLen <= ANSWER_MAX) Keep(a, query + 2, queryLen - 2, answer, answerLen);
  return nullptr;
}

// udpAnswererForget(handle): no kept answer is given again.
napi_value Forget(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Answerer* a = argc == 1 ? HandleOf(env, argv[0]) : nullptr;
  if (a == nullptr) return nullptr;
  std::lock_guard<std::mutex> guard(a->lock);
  // generation 0 marks a slot never used
  a->generation = a->generation == UINT32_MAX ? 1 : a->generation + 1;
  if (a->generation == 1) {
    for (Slot& s : a->slots) {
      free(s.bytes);
      s = Slot{};
    }
  }
  return nullptr;
}

// udpAnswererStats(handle): datagrams answered from kept answers, passed to onQuery, and dropped with that queue full.
napi_value Stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Answerer* a = argc == 1 ? HandleOf(env, argv[0]) : nullptr;
  if (a == nullptr) return nullptr;
  napi_value result, v;
  napi_create_object(env, &result);
  napi_create_double(env, static_cast<double>(a->kept.load()), &v);
  napi_set_named_property(env, result, "kept", v);
  napi_create_double(env, static_cast<double>(a->passed.load()), &v);
  napi_set_named_property(env, result, "passed", v);
  napi_create_double(env, static_cast<double>(a->dropped.load()), &v);
  napi_set_named_property(env, result, "dropped", v);
  return result;
}

// udpAnswererClose(handle): stops the thread and closes the socket; queued datagrams are not passed on.
napi_value CloseAnswerer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Answerer* a = argc == 1 ? HandleOf(env, argv[0]) : nullptr;
  if (a != nullptr) Close(a);
  return nullptr;
}

}  // namespace

void DnsUdpInit(napi_env env, napi_value exports) {
  const struct { const char* name; napi_callback fn; } functions[] = {
    {"udpAnswererOpen", Open}, {"udpAnswererSend", Send}, {"udpAnswererKeep", KeepAnswer},
    {"udpAnswererForget", Forget}, {"udpAnswererStats", Stats}, {"udpAnswererClose", CloseAnswerer},
  };
  for (const auto& f : functions) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
}
