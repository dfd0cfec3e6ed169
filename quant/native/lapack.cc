// Thin N-API binding over LAPACKE / CBLAS (Debian liblapacke-dev + libopenblas-dev), double precision.
// Every function works in place on Float64Arrays owned by JavaScript and checks each array's length
// against the shape it is told, so a wrong shape is a JS TypeError/RangeError, never a stray write.
// LAPACK calls are column-major; the BLAS calls (gemm, syrk, symm, trmm) take row-major operands,
// which CBLAS supports without copies. quant/linalg.ts turns this into a row-major TypeScript API.
// LAPACK `info` values are returned (> 0 carries meaning: "not positive definite at minor k",
// "did not converge"); an illegal argument (info < 0) is thrown, since it is a bug in the caller.
#include <napi.h>
#include <lapacke.h>
#include <cblas.h>

#include <cstdint>
#include <string>
#include <vector>

extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}

namespace {

int64_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min = 0) {
  if (i >= info.Length() || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string("argument ") + name + " must be a number");
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v != static_cast<double>(static_cast<int64_t>(v)) || v < static_cast<double>(min) || v > 2147483647.0) {
    throw Napi::RangeError::New(info.Env(), std::string("argument ") + name + " must be an integer >= " + std::to_string(min));
  }
  return static_cast<int64_t>(v);
}

double NumArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string("argument ") + name + " must be a number");
  }
  return info[i].As<Napi::Number>().DoubleValue();
}

char CharArg(const Napi::CallbackInfo& info, size_t i, const char* name, const char* allowed) {
  if (i >= info.Length() || !info[i].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string("argument ") + name + " must be a one-letter string");
  }
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.size() != 1 || std::string(allowed).find(s[0]) == std::string::npos) {
    throw Napi::RangeError::New(info.Env(), std::string("argument ") + name + " must be one of '" + allowed + "', got '" + s + "'");
  }
  return s[0];
}

bool BoolArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsBoolean()) {
    throw Napi::TypeError::New(info.Env(), std::string("argument ") + name + " must be a boolean");
  }
  return info[i].As<Napi::Boolean>().Value();
}

// A Float64Array of at least `need` elements (need = 0 accepts any length, including 0).
double* F64Arg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw Napi::TypeError::New(info.Env(), std::string("argument ") + name + " must be a Float64Array");
  }
  auto arr = info[i].As<Napi::Float64Array>();
  if (static_cast<int64_t>(arr.ElementLength()) < need) {
    throw Napi::RangeError::New(info.Env(), std::string("argument ") + name + " has " + std::to_string(arr.ElementLength()) +
                                                 " elements, needs at least " + std::to_string(need));
  }
  return arr.Data();
}

// Elements a row-major rows x cols operand with leading dimension ld spans.
int64_t Span(int64_t rows, int64_t cols, int64_t ld) { return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols; }

void CheckLd(const Napi::Env& env, int64_t ld, int64_t cols, const char* name) {
  if (ld < (cols > 1 ? cols : 1)) {
    throw Napi::RangeError::New(env, std::string("leading dimension ") + name + " = " + std::to_string(ld) + " is below " + std::to_string(cols));
  }
}

Napi::Value Info(const Napi::Env& env, lapack_int info, const char* routine) {
  if (info < 0) {
    throw Napi::Error::New(env, std::string(routine) + ": illegal value in argument " + std::to_string(-info) +
                                    (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR ? " (out of memory)" : ""));
  }
  return Napi::Number::New(env, info);
}

// potrf(uplo, n, a): Cholesky in place, column-major n x n. Returns info (k > 0: leading minor k not positive definite).
Napi::Value Potrf(const Napi::CallbackInfo& info) {
  char uplo = CharArg(info, 0, "uplo", "LU");
  int64_t n = IntArg(info, 1, "n");
  double* a = F64Arg(info, 2, "a", n * n);
  return Info(info.Env(), LAPACKE_dpotrf(LAPACK_COL_MAJOR, uplo, n, a, n > 0 ? n : 1), "dpotrf");
}

// trtrs(uplo, trans, diag, n, nrhs, a, b): solves op(A) X = B in place of B; column-major, lda = ldb = n.
Napi::Value Trtrs(const Napi::CallbackInfo& info) {
  char uplo = CharArg(info, 0, "uplo", "LU");
  char trans = CharArg(info, 1, "trans", "NT");
  char diag = CharArg(info, 2, "diag", "NU");
  int64_t n = IntArg(info, 3, "n");
  int64_t nrhs = IntArg(info, 4, "nrhs");
  double* a = F64Arg(info, 5, "a", n * n);
  double* b = F64Arg(info, 6, "b", n * nrhs);
  lapack_int ld = n > 0 ? n : 1;
  return Info(info.Env(), LAPACKE_dtrtrs(LAPACK_COL_MAJOR, uplo, trans, diag, n, nrhs, a, ld, b, ld), "dtrtrs");
}

// gesdd(jobz, m, n, a, s, u, vt): SVD of the column-major m x n matrix a (destroyed).
// jobz 'N': values only (u, vt ignored); 'S': thin, u m x k, vt k x n (k = min(m, n)).
Napi::Value Gesdd(const Napi::CallbackInfo& info) {
  char jobz = CharArg(info, 0, "jobz", "NS");
  int64_t m = IntArg(info, 1, "m");
  int64_t n = IntArg(info, 2, "n");
  int64_t k = m < n ? m : n;
  double* a = F64Arg(info, 3, "a", m * n);
  double* s = F64Arg(info, 4, "s", k);
  double* u = nullptr;
  double* vt = nullptr;
  double dummy = 0;
  if (jobz == 'S') {
    u = F64Arg(info, 5, "u", m * k);
    vt = F64Arg(info, 6, "vt", k * n);
  } else {
    u = vt = &dummy;
  }
  lapack_int lda = m > 0 ? m : 1;
  lapack_int ldu = jobz == 'S' ? lda : 1;
  lapack_int ldvt = jobz == 'S' && k > 0 ? k : 1;
  return Info(info.Env(), LAPACKE_dgesdd(LAPACK_COL_MAJOR, jobz, m, n, a, lda, s, u, ldu, vt, ldvt), "dgesdd");
}

// syevd(jobz, n, a, w): all eigenvalues (ascending, into w) and, for jobz 'V', eigenvectors (columns of a).
Napi::Value Syevd(const Napi::CallbackInfo& info) {
  char jobz = CharArg(info, 0, "jobz", "NV");
  int64_t n = IntArg(info, 1, "n");
  double* a = F64Arg(info, 2, "a", n * n);
  double* w = F64Arg(info, 3, "w", n);
  return Info(info.Env(), LAPACKE_dsyevd(LAPACK_COL_MAJOR, jobz, 'L', n, a, n > 0 ? n : 1, w), "dsyevd");
}

// syevr(n, a, il, iu, w, z): eigenpairs il..iu (1-based, ascending order) by MRRR; w gets them
// (at least iu-il+1 slots), z the vectors (column-major n x (iu-il+1)). Returns the number found.
Napi::Value Syevr(const Napi::CallbackInfo& info) {
  int64_t n = IntArg(info, 0, "n", 1);
  double* a = F64Arg(info, 1, "a", n * n);
  int64_t il = IntArg(info, 2, "il", 1);
  int64_t iu = IntArg(info, 3, "iu", il);
  if (iu > n) throw Napi::RangeError::New(info.Env(), "syevr: iu exceeds n");
  int64_t count = iu - il + 1;
  double* w = F64Arg(info, 4, "w", n);
  double* z = F64Arg(info, 5, "z", n * count);
  lapack_int found = 0;
  std::vector<lapack_int> isuppz(2 * count);
  lapack_int res = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', 'I', 'L', n, a, n, 0, 0, il, iu, 0.0, &found, w, z, n, isuppz.data());
  if (res != 0) return Info(info.Env(), res, "dsyevr");
  return Napi::Number::New(info.Env(), found);
}

// sytrd(n, a, d, e, tau): reduces symmetric a (lower triangle, column-major) to tridiagonal T = Qᵀ A Q:
// diagonal d (n), off-diagonal e (n-1), reflectors left in a and tau (n-1). First step of symEigTop in
// quant/linalg.ts, which then takes every eigenvalue from T (sterf), chooses how many vectors it
// needs, and computes only those (stemr + ormtr): one reduction serves both.
Napi::Value Sytrd(const Napi::CallbackInfo& info) {
  int64_t n = IntArg(info, 0, "n", 1);
  double* a = F64Arg(info, 1, "a", n * n);
  double* d = F64Arg(info, 2, "d", n);
  double* e = F64Arg(info, 3, "e", n - 1);
  double* tau = F64Arg(info, 4, "tau", n - 1);
  double one = 0;
  // LAPACKE rejects null e/tau even for n = 1.
  if (n == 1) e = tau = &one;
  return Info(info.Env(), LAPACKE_dsytrd(LAPACK_COL_MAJOR, 'L', n, a, n, d, e, tau), "dsytrd");
}

// sterf(n, d, e): all eigenvalues of the tridiagonal (d, e) into d, ascending; e is destroyed.
Napi::Value Sterf(const Napi::CallbackInfo& info) {
  int64_t n = IntArg(info, 0, "n", 1);
  double* d = F64Arg(info, 1, "d", n);
  double* e = F64Arg(info, 2, "e", n - 1);
  double one = 0;
  if (n == 1) e = &one;
  return Info(info.Env(), LAPACKE_dsterf(n, d, e), "dsterf");
}

// stemr(n, d, e, il, iu, w, z): eigenpairs il..iu (1-based, ascending) of the tridiagonal (d, e) by
// MRRR; d and e (length n, last unused) are destroyed. z is column-major n x (iu-il+1). Returns count found.
Napi::Value Stemr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t n = IntArg(info, 0, "n", 1);
  double* d = F64Arg(info, 1, "d", n);
  double* e = F64Arg(info, 2, "e", n);
  int64_t il = IntArg(info, 3, "il", 1);
  int64_t iu = IntArg(info, 4, "iu", il);
  if (iu > n) throw Napi::RangeError::New(env, "stemr: iu exceeds n");
  int64_t k = iu - il + 1;
  double* w = F64Arg(info, 5, "w", n);
  double* z = F64Arg(info, 6, "z", n * k);
  lapack_int found = 0;
  lapack_logical tryrac = 1;
  std::vector<lapack_int> isuppz(2 * k);
  lapack_int res = LAPACKE_dstemr(LAPACK_COL_MAJOR, 'V', 'I', n, d, e, 0, 0, il, iu, &found, w, z, n, k, isuppz.data(), &tryrac);
  if (res != 0) return Info(env, res, "dstemr");
  return Napi::Number::New(env, found);
}

// ormtr(n, k, a, tau, z): z (column-major n x k) <- Q z with Q from sytrd's reflectors (a, tau).
Napi::Value Ormtr(const Napi::CallbackInfo& info) {
  int64_t n = IntArg(info, 0, "n", 1);
  int64_t k = IntArg(info, 1, "k", 1);
  double* a = F64Arg(info, 2, "a", n * n);
  double* tau = F64Arg(info, 3, "tau", n - 1);
  double* z = F64Arg(info, 4, "z", n * k);
  double one = 0;
  if (n == 1) tau = &one;
  return Info(info.Env(), LAPACKE_dormtr(LAPACK_COL_MAJOR, 'L', 'L', 'N', n, k, a, n, tau, z, n), "dormtr");
}

// gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc): C = alpha op(A) op(B) + beta C, row-major.
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ta = BoolArg(info, 0, "transA");
  bool tb = BoolArg(info, 1, "transB");
  int64_t m = IntArg(info, 2, "m"), n = IntArg(info, 3, "n"), k = IntArg(info, 4, "k");
  double alpha = NumArg(info, 5, "alpha");
  int64_t lda = IntArg(info, 7, "lda", 1), ldb = IntArg(info, 9, "ldb", 1), ldc = IntArg(info, 12, "ldc", 1);
  int64_t aRows = ta ? k : m, aCols = ta ? m : k, bRows = tb ? n : k, bCols = tb ? k : n;
  CheckLd(env, lda, aCols, "lda");
  CheckLd(env, ldb, bCols, "ldb");
  CheckLd(env, ldc, n, "ldc");
  double* a = F64Arg(info, 6, "a", Span(aRows, aCols, lda));
  double* b = F64Arg(info, 8, "b", Span(bRows, bCols, ldb));
  double beta = NumArg(info, 10, "beta");
  double* c = F64Arg(info, 11, "c", Span(m, n, ldc));
  if (m == 0 || n == 0) return env.Undefined();
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  return env.Undefined();
}

// syrk(trans, n, k, alpha, a, lda, beta, c, ldc): upper triangle of C = alpha op(A) op(A)^T + beta C, row-major.
// trans = false: A is n x k (C = A A^T); trans = true: A is k x n (C = A^T A).
Napi::Value Syrk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool t = BoolArg(info, 0, "trans");
  int64_t n = IntArg(info, 1, "n"), k = IntArg(info, 2, "k");
  double alpha = NumArg(info, 3, "alpha");
  int64_t lda = IntArg(info, 5, "lda", 1);
  int64_t aRows = t ? k : n, aCols = t ? n : k;
  CheckLd(env, lda, aCols, "lda");
  double* a = F64Arg(info, 4, "a", Span(aRows, aCols, lda));
  double beta = NumArg(info, 6, "beta");
  int64_t ldc = IntArg(info, 8, "ldc", 1);
  CheckLd(env, ldc, n, "ldc");
  double* c = F64Arg(info, 7, "c", Span(n, n, ldc));
  if (n == 0) return env.Undefined();
  cblas_dsyrk(CblasRowMajor, CblasUpper, t ? CblasTrans : CblasNoTrans, n, k, alpha, a, lda, beta, c, ldc);
  return env.Undefined();
}

// syr2k(n, k, alpha, a, lda, b, ldb, beta, c, ldc): upper triangle of C = alpha (A Bᵀ + B Aᵀ) + beta C,
// A and B n x k, row-major.
Napi::Value Syr2k(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t n = IntArg(info, 0, "n"), k = IntArg(info, 1, "k");
  double alpha = NumArg(info, 2, "alpha");
  int64_t lda = IntArg(info, 4, "lda", 1), ldb = IntArg(info, 6, "ldb", 1), ldc = IntArg(info, 9, "ldc", 1);
  CheckLd(env, lda, k, "lda");
  CheckLd(env, ldb, k, "ldb");
  CheckLd(env, ldc, n, "ldc");
  double* a = F64Arg(info, 3, "a", Span(n, k, lda));
  double* b = F64Arg(info, 5, "b", Span(n, k, ldb));
  double beta = NumArg(info, 7, "beta");
  double* c = F64Arg(info, 8, "c", Span(n, n, ldc));
  if (n == 0) return env.Undefined();
  cblas_dsyr2k(CblasRowMajor, CblasUpper, CblasNoTrans, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  return env.Undefined();
}

// symmRight(m, n, alpha, a, lda, b, ldb, beta, c, ldc): C = alpha B A + beta C with A n x n symmetric
// (upper triangle read), B and C m x n; row-major.
Napi::Value SymmRight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t m = IntArg(info, 0, "m"), n = IntArg(info, 1, "n");
  double alpha = NumArg(info, 2, "alpha");
  int64_t lda = IntArg(info, 4, "lda", 1), ldb = IntArg(info, 6, "ldb", 1), ldc = IntArg(info, 9, "ldc", 1);
  CheckLd(env, lda, n, "lda");
  CheckLd(env, ldb, n, "ldb");
  CheckLd(env, ldc, n, "ldc");
  double* a = F64Arg(info, 3, "a", Span(n, n, lda));
  double* b = F64Arg(info, 5, "b", Span(m, n, ldb));
  double beta = NumArg(info, 7, "beta");
  double* c = F64Arg(info, 8, "c", Span(m, n, ldc));
  if (m == 0 || n == 0) return env.Undefined();
  cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, m, n, alpha, a, lda, b, ldb, beta, c, ldc);
  return env.Undefined();
}

// trmm(side, lower, transA, m, n, alpha, a, lda, b, ldb): B = alpha op(A) B (side 'L') or alpha B op(A)
// (side 'R'), A triangular with non-unit diagonal; row-major, B is m x n.
Napi::Value Trmm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  char side = CharArg(info, 0, "side", "LR");
  bool lower = BoolArg(info, 1, "lower");
  bool ta = BoolArg(info, 2, "transA");
  int64_t m = IntArg(info, 3, "m"), n = IntArg(info, 4, "n");
  double alpha = NumArg(info, 5, "alpha");
  int64_t na = side == 'L' ? m : n;
  int64_t lda = IntArg(info, 7, "lda", 1), ldb = IntArg(info, 9, "ldb", 1);
  CheckLd(env, lda, na, "lda");
  CheckLd(env, ldb, n, "ldb");
  double* a = F64Arg(info, 6, "a", Span(na, na, lda));
  double* b = F64Arg(info, 8, "b", Span(m, n, ldb));
  if (m == 0 || n == 0) return env.Undefined();
  cblas_dtrmm(CblasRowMajor, side == 'L' ? CblasLeft : CblasRight, lower ? CblasLower : CblasUpper, ta ? CblasTrans : CblasNoTrans,
              CblasNonUnit, m, n, alpha, a, lda, b, ldb);
  return env.Undefined();
}

Napi::Value Threads(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsNumber()) openblas_set_num_threads(static_cast<int>(IntArg(info, 0, "threads", 1)));
  return Napi::Number::New(info.Env(), openblas_get_num_threads());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("potrf", Napi::Function::New(env, Potrf, "potrf"));
  exports.Set("trtrs", Napi::Function::New(env, Trtrs, "trtrs"));
  exports.Set("gesdd", Napi::Function::New(env, Gesdd, "gesdd"));
  exports.Set("syevd", Napi::Function::New(env, Syevd, "syevd"));
  exports.Set("syevr", Napi::Function::New(env, Syevr, "syevr"));
  exports.Set("sytrd", Napi::Function::New(env, Sytrd, "sytrd"));
  exports.Set("sterf", Napi::Function::New(env, Sterf, "sterf"));
  exports.Set("stemr", Napi::Function::New(env, Stemr, "stemr"));
  exports.Set("ormtr", Napi::Function::New(env, Ormtr, "ormtr"));
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  exports.Set("syrk", Napi::Function::New(env, Syrk, "syrk"));
  exports.Set("syr2k", Napi::Function::New(env, Syr2k, "syr2k"));
  exports.Set("symmRight", Napi::Function::New(env, SymmRight, "symmRight"));
  exports.Set("trmm", Napi::Function::New(env, Trmm, "trmm"));
  exports.Set("threads", Napi::Function::New(env, Threads, "threads"));
  return exports;
}

}  // namespace

NODE_API_MODULE(aser_lapack, Init)
