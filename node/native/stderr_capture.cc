// Diverts file descriptor 2 into an anonymous temporary file while a native call runs, and hands back
// what was written there. Dawn prints some notices (limit clamping) straight to stderr from C++, where
// no JavaScript hook or Dawn toggle reaches them; node/gpu.ts wraps the adapter request with this and
// re-emits every line it does not recognise, so real native errors still reach the user.
#include <napi.h>

#ifndef _WIN32
#include <cstdio>
#include <string>
#include <unistd.h>

namespace {

int savedFd = -1;
FILE* captureFile = nullptr;

// begin(): true when stderr now goes to the capture file; false when it could not be diverted
// (stderr is left as it was).
Napi::Value Begin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (savedFd >= 0) throw Napi::Error::New(env, "stderr capture already active");
  fflush(stderr);
  captureFile = tmpfile();
  if (!captureFile) return Napi::Boolean::New(env, false);
  savedFd = dup(STDERR_FILENO);
  if (savedFd < 0 || dup2(fileno(captureFile), STDERR_FILENO) < 0) {
    if (savedFd >= 0) close(savedFd);
    savedFd = -1;
    fclose(captureFile);
    captureFile = nullptr;
    return Napi::Boolean::New(env, false);
  }
  return Napi::Boolean::New(env, true);
}

// end(): restores stderr and returns the captured text ("" when nothing was captured).
Napi::Value End(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (savedFd < 0) return Napi::String::New(env, "");
  fflush(stderr);
  dup2(savedFd, STDERR_FILENO);
  close(savedFd);
  savedFd = -1;
  std::string text;
  if (fseek(captureFile, 0, SEEK_SET) == 0) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, captureFile)) > 0) text.append(buf, n);
  }
  fclose(captureFile);
  captureFile = nullptr;
  return Napi::String::New(env, text);
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("begin", Napi::Function::New(env, Begin));
  exports.Set("end", Napi::Function::New(env, End));
  return exports;
}
#else
// Windows: no capture; node/gpu.ts then leaves Dawn's notices on stderr.
Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }
#endif

NODE_API_MODULE(aser_stderr_capture, Init)
