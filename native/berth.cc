// berth_native: the few system calls Node does not expose.
//
// flock(2) makes the embedded file store safe for concurrent processes: the
// kernel drops the lock when its holder dies, so a crashed CNI plugin can never
// wedge the store the way a stale lock file can.
//
// setns(2) moves the calling thread into a network namespace: a netlink socket
// created there stays there, so a plugin configures a container's interfaces
// in-process, with no `ip netns exec` subprocess.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <node_api.h>
#include <sched.h>
#include <sys/file.h>
#include <errno.h>
#include <string.h>

namespace {

// An Error like Node's own for a failed system call: message, code, errno, syscall.
napi_value SysError(napi_env env, const char* syscall, int err) {
  napi_value msg, error, value;
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, nullptr, msg, &error);
  napi_create_int32(env, -err, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "syscall", value);
  const char* name = err == EWOULDBLOCK ? "EWOULDBLOCK" : err == EBADF ? "EBADF" : err == EINTR ? "EINTR" : err == EINVAL ? "EINVAL" : err == EPERM ? "EPERM" : "EIO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "code", value);
  return error;
}

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
  FlockWork* w = new FlockWork{nullptr, nullptr, fd, op & ~LOCK_NB, 0};
  napi_value promise, name;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, "berth:flock", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, nullptr, name, FlockExecute, FlockComplete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return promise;
}

// setns(fd, nstype): moves the calling thread into the namespace open at fd.
napi_value Setns(napi_env env, napi_callback_info info) {
  int32_t fd = -1, nstype = 0;
  if (!FdAndOp(env, info, "setns(fd, nstype) takes two integers", &fd, &nstype)) return nullptr;
  if (setns(fd, nstype) != 0) {
    napi_throw(env, SysError(env, "setns", errno));
    return nullptr;
  }
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "flock", NAPI_AUTO_LENGTH, Flock, nullptr, &fn);
  napi_set_named_property(env, exports, "flock", fn);
  napi_create_function(env, "flockWait", NAPI_AUTO_LENGTH, FlockWait, nullptr, &fn);
  napi_set_named_property(env, exports, "flockWait", fn);
  napi_create_function(env, "setns", NAPI_AUTO_LENGTH, Setns, nullptr, &fn);
  napi_set_named_property(env, exports, "setns", fn);
  const struct { const char* name; int value; } constants[] = {
    {"LOCK_SH", LOCK_SH}, {"LOCK_EX", LOCK_EX}, {"LOCK_UN", LOCK_UN}, {"LOCK_NB", LOCK_NB}, {"CLONE_NEWNET", CLONE_NEWNET},
  };
  for (const auto& c : constants) {
    napi_value v;
    napi_create_int32(env, c.value, &v);
    napi_set_named_property(env, exports, c.name, v);
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
