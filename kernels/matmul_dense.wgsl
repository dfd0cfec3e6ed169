// Dense linear: y[t, out_offset + o] = Σ_k x[t, k] · W[o, k] (+ bias[out_offset + o])
//   x    f32 [tokens, in_features], rows packed densely (bound for exactly `tokens` rows)
//   W    [slice_rows, row_stride4 · 4]: one slice of the weight's rows, each row padded with zeros
//        to a multiple of 4 elements; f32, or f16 (native `f16` with W_F16, or as u32 pairs read
//        with unpack2x16float with W_F16_PACKED when the adapter lacks shader-f16)
//   y    f32 [tokens, out_total] (bound for exactly `tokens` rows; tokens = arrayLength(&y) / out_total)
// Accumulation is f32. Two entry points:
//   gemv  one token per workgroup row (decode): a workgroup owns GEMV_ROWS output rows, its GEMV_WG
//         threads stride over k in vec4 steps (coalesced row reads, x loaded once per step and reused
//         for every row), then a fixed-order workgroup tree reduction (deterministic).
//   gemm  tiled (prefill): a workgroup owns a TM×TN tile of y and walks k in steps of TK through
//         workgroup memory; each thread accumulates RM×RN outputs strided by the thread grid so that
//         neighbouring threads read neighbouring workgroup-memory words and write neighbouring y.
#ifdef W_F16
enable f16;
#endif

struct Params {
  in_features: u32,  // K, in elements
  row_stride4: u32,  // weight row stride, in vec4s (ceil(K / 4))
  out_total: u32,    // y row stride, in elements (all slices together)
  out_offset: u32,   // first output row of this slice, in elements of y's row
  slice_rows: u32,   // output rows held by this slice's weight buffer
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#ifdef W_F16
@group(0) @binding(2) var<storage, read> w: array<vec4<f16>>;
#else
#ifdef W_F16_PACKED
@group(0) @binding(2) var<storage, read> w: array<vec2<u32>>;
#else
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
#endif
#endif
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
#ifdef HAS_BIAS
@group(0) @binding(4) var<storage, read> bias: array<f32>;
#endif

fn load_w4(i: u32) -> vec4<f32> {
#ifdef W_F16
  return vec4<f32>(w[i]);
#else
#ifdef W_F16_PACKED
  let v = w[i];
  return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));
#else
  return w[i];
#endif
#endif
}

// x[row, k..k+3], zero past in_features (the weight padding is zero, but x past the row end is the
// next row or garbage, and 0 · Inf would be NaN).
fn load_x4(row_base: u32, k: u32) -> vec4<f32> {
  let n = p.in_features;
  if (k + 3u < n) {
    return vec4<f32>(x[row_base + k], x[row_base + k + 1u], x[row_base + k + 2u], x[row_base + k + 3u]);
  }
  var v = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) {
    if (k + i < n) { v[i] = x[row_base + k + i]; }
  }
  return v;
}

fn finish(t: u32, o: u32, acc: f32) {
  let col = p.out_offset + o;
  var v = acc;
#ifdef HAS_BIAS
  v += bias[col];
#endif
  y[t * p.out_total + col] = v;
}

// ---------------------------------------------------------------- GEMV (decode)
const GW: u32 = GEMV_WG;
const GR: u32 = GEMV_ROWS;
var<workgroup> red: array<f32, GEMV_WG * GEMV_ROWS>;

@compute @workgroup_size(GEMV_WG)
fn gemv(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  // Row groups may be spread over x and z when they exceed maxComputeWorkgroupsPerDimension.
  let row0 = (wid.x + wid.z * nwg.x) * GR;
  if (row0 >= p.slice_rows) { return; }
  let t = wid.y;
  let xbase = t * p.in_features;
  let k4n = p.row_stride4;

  var acc: array<f32, GEMV_ROWS>;
  for (var r = 0u; r < GR; r++) { acc[r] = 0.0; }
  for (var k4 = lid; k4 < k4n; k4 += GW) {
    let xv = load_x4(xbase, k4 * 4u);
    for (var r = 0u; r < GR; r++) {
      let row = min(row0 + r, p.slice_rows - 1u);
      acc[r] += dot(xv, load_w4(row * k4n + k4));
    }
  }
  for (var r = 0u; r < GR; r++) { red[r * GW + lid] = acc[r]; }
  workgroupBarrier();
  for (var s = GW / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      for (var r = 0u; r < GR; r++) { red[r * GW + lid] += red[r * GW + lid + s]; }
    }
    workgroupBarrier();
  }
  if (lid < GR && row0 + lid < p.slice_rows) {
    finish(t, row0 + lid, red[lid * GW]);
  }
}

// ---------------------------------------------------------------- GEMM (prefill)
const TM_: u32 = TM;
const TN_: u32 = TN;
const TK_: u32 = TK;
const WGX: u32 = TN / RN;  // threads along out
const WGY: u32 = TM / RM;  // threads along tokens
var<workgroup> xs: array<f32, TK * TM>;  // [k][token]
var<workgroup> ws: array<f32, TK * TN>;  // [k][out]

@compute @workgroup_size(TN / RN, TM / RM)
fn gemm(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let tokens = arrayLength(&y) / p.out_total;
  let tx = lid3.x;
  let ty = lid3.y;
  let lid = ty * WGX + tx;
  let o0 = wid.x * TN_;
  let t0 = wid.y * TM_;
  let k4n = p.row_stride4;

  var acc: array<array<f32, RN>, RM>;
  for (var i = 0u; i < RM; i++) { for (var j = 0u; j < RN; j++) { acc[i][j] = 0.0; } }

  for (var kb = 0u; kb < p.in_features; kb += TK_) {
    // x tile: TM tokens × TK k, read along k (x rows are not padded: scalar, guarded loads).
    for (var e = lid; e < TM_ * TK_; e += WGX * WGY) {
      let tt = e / TK_;
      let kk = e % TK_;
      let t = t0 + tt;
      let k = kb + kk;
      var v = 0.0;
      if (t < tokens && k < p.in_features) { v = x[t * p.in_features + k]; }
      xs[kk * TM_ + tt] = v;
    }
    // W tile: TN rows × TK k as vec4s (rows are zero-padded to whole vec4s, so no k guard needed
    // beyond the row's padded length).
    for (var e = lid; e < TN_ * (TK_ / 4u); e += WGX * WGY) {
      let oo = e / (TK_ / 4u);
      let kq = e % (TK_ / 4u);
      let o = min(o0 + oo, p.slice_rows - 1u);
      let k4 = kb / 4u + kq;
      var v = vec4<f32>(0.0);
      if (k4 < k4n) { v = load_w4(o * k4n + k4); }
      let kk = kq * 4u;
      ws[(kk + 0u) * TN_ + oo] = v.x;
      ws[(kk + 1u) * TN_ + oo] = v.y;
      ws[(kk + 2u) * TN_ + oo] = v.z;
      ws[(kk + 3u) * TN_ + oo] = v.w;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK_; kk++) {
      var a: array<f32, RM>;
      var b: array<f32, RN>;
      for (var i = 0u; i < RM; i++) { a[i] = xs[kk * TM_ + ty + i * WGY]; }
      for (var j = 0u; j < RN; j++) { b[j] = ws[kk * TN_ + tx + j * WGX]; }
      for (var i = 0u; i < RM; i++) {
        for (var j = 0u; j < RN; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < RM; i++) {
    let t = t0 + ty + i * WGY;
    if (t >= tokens) { continue; }
    for (var j = 0u; j < RN; j++) {
      let o = o0 + tx + j * WGX;
      if (o < p.slice_rows) { finish(t, o, acc[i][j]); }
    }
  }
}
