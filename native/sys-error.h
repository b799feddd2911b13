// What the addon's sources share: Node-like errors for failed system calls,
// and the registration of the DNS UDP answerer (dns-udp.cc).
#pragma once
#include <node_api.h>
#include <errno.h>
#include <string.h>

// An Error like Node's own for a failed system call: message, code, errno, syscall.
inline napi_value SysError(napi_env env, const char* syscall, int err) {
  napi_value msg, error, value;
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, nullptr, msg, &error);
  napi_create_int32(env, -err, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "syscall", value);
  const char* name = err == EWOULDBLOCK     ? "EWOULDBLOCK"
                     : err == EBADF         ? "EBADF"
                     : err == EINTR         ? "EINTR"
                     : err == EINVAL        ? "EINVAL"
                     : err == EPERM         ? "EPERM"
                     : err == EACCES        ? "EACCES"
                     : err == ENOENT        ? "ENOENT"
                     : err == EMSGSIZE      ? "EMSGSIZE"
                     : err == ETIMEDOUT     ? "ETIMEDOUT"
                     : err == EPROTO        ? "EPROTO"
                     : err == EADDRINUSE    ? "EADDRINUSE"
                     : err == EADDRNOTAVAIL ? "EADDRNOTAVAIL"
                                            : "EIO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "code", value);
  return error;
}

// Adds udpAnswererOpen and its companions (dns-udp.cc) to the exports.
void DnsUdpInit(napi_env env, napi_value exports);
