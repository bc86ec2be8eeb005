// LayerNorm over the last axis as a native tvmext layer (forward and backward).
//
//   y = (x - mean) / sqrt(var + eps) * gamma + beta        x: [rows, d], gamma/beta: [d]
//
// Calling convention (tvmext/layer.h): destination-passing style, attributes last.
#include <tvmext/layer.h>

#include <cmath>
#include <vector>

namespace {

struct Rows {
  int64_t rows;
  int64_t d;
};

Rows check_inputs(const tvmext::TensorView& x, const tvmext::TensorView& gamma,
                  const tvmext::TensorView& beta) {
  tvmext::check_float32(x, "layer_norm", "x");
  tvmext::check_float32(gamma, "layer_norm", "gamma");
  tvmext::check_float32(beta, "layer_norm", "beta");
  TVMEXT_CHECK(x.ndim() >= 1, "layer_norm: input 'x' must have at least one axis");
  int64_t d = x.size(x.ndim() - 1);
  tvmext::check_shape(gamma, {d}, "layer_norm", "gamma");
  tvmext::check_shape(beta, {d}, "layer_norm", "beta");
  return {tvmext::numel(x) / (d ? d : 1), d};
}

// Mean and inverse standard deviation of one row.
inline void row_stats(const float* row, int64_t d, double eps, float* mean, float* inv_std) {
  double sum = 0.0;
  for (int64_t j = 0; j < d; ++j) sum += row[j];
  double m = sum / static_cast<double>(d);
  double sq = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    double c = row[j] - m;
    sq += c * c;
  }
  *mean = static_cast<float>(m);
  *inv_std = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(d) + eps));
}

}  // namespace

void layer_norm_forward(tvmext::TensorView x, tvmext::TensorView gamma, tvmext::TensorView beta,
                        tvmext::TensorView y, double eps) {
  Rows shape = check_inputs(x, gamma, beta);
  tvmext::check_same_shape(x, y, "layer_norm", "x", "y");
  const float* xs = static_cast<const float*>(x.data_ptr());
  const float* g = static_cast<const float*>(gamma.data_ptr());
  const float* b = static_cast<const float*>(beta.data_ptr());
  float* ys = static_cast<float*>(y.data_ptr());
  for (int64_t r = 0; r < shape.rows; ++r) {
    const float* row = xs + r * shape.d;
    float mean, inv_std;
    row_stats(row, shape.d, eps, &mean, &inv_std);
    float* out = ys + r * shape.d;
    for (int64_t j = 0; j < shape.d; ++j) out[j] = (row[j] - mean) * inv_std * g[j] + b[j];
  }
}

void layer_norm_backward(tvmext::TensorView x, tvmext::TensorView gamma, tvmext::TensorView beta,
                         tvmext::TensorView y, tvmext::TensorView dy, tvmext::TensorView dx,
                         tvmext::TensorView dgamma, tvmext::TensorView dbeta, double eps) {
  Rows shape = check_inputs(x, gamma, beta);
  const float* xs = static_cast<const float*>(x.data_ptr());
  const float* g = static_cast<const float*>(gamma.data_ptr());
  const float* gy = static_cast<const float*>(dy.data_ptr());
  float* gx = static_cast<float*>(dx.data_ptr());
  float* gg = static_cast<float*>(dgamma.data_ptr());
  float* gb = static_cast<float*>(dbeta.data_ptr());
  std::vector<double> acc_g(shape.d, 0.0), acc_b(shape.d, 0.0);
  const double inv_d = 1.0 / static_cast<double>(shape.d);
  for (int64_t r = 0; r < shape.rows; ++r) {
    const float* row = xs + r * shape.d;
    const float* grad = gy + r * shape.d;
    float mean, inv_std;
    row_stats(row, shape.d, eps, &mean, &inv_std);
    // dx = inv_std * (g*dy - mean(g*dy) - xhat * mean(g*dy*xhat))
    double sum_gdy = 0.0, sum_gdy_xhat = 0.0;
    for (int64_t j = 0; j < shape.d; ++j) {
      double xhat = (row[j] - mean) * inv_std;
      double gdy = static_cast<double>(g[j]) * grad[j];
      sum_gdy += gdy;
      sum_gdy_xhat += gdy * xhat;
      acc_g[j] += grad[j] * xhat;
      acc_b[j] += grad[j];
    }
    for (int64_t j = 0; j < shape.d; ++j) {
      double xhat = (row[j] - mean) * inv_std;
      double gdy = static_cast<double>(g[j]) * grad[j];
      gx[r * shape.d + j] =
          static_cast<float>(inv_std * (gdy - sum_gdy * inv_d - xhat * sum_gdy_xhat * inv_d));
    }
  }
  for (int64_t j = 0; j < shape.d; ++j) {
    gg[j] = static_cast<float>(acc_g[j]);
    gb[j] = static_cast<float>(acc_b[j]);
  }
}

TVM_FFI_DLL_EXPORT_TYPED_FUNC(layer_norm_fwd, layer_norm_forward);
TVM_FFI_DLL_EXPORT_TYPED_FUNC(layer_norm_bwd, layer_norm_backward);
