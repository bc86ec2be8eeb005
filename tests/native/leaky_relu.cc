#include <tvmext/layer.h>
using tvmext::TensorView;
void leaky_forward(TensorView x, TensorView y, double alpha) {
  tvmext::check_float32(x, "leaky", "x");
  tvmext::check_same_shape(x, y, "leaky", "x", "y");
  const float* a = static_cast<const float*>(x.data_ptr());
  float* b = static_cast<float*>(y.data_ptr());
  int64_t n = tvmext::numel(x);
  for (int64_t i = 0; i < n; ++i) b[i] = a[i] > 0 ? a[i] : static_cast<float>(alpha) * a[i];
}
void leaky_backward(TensorView x, TensorView y, TensorView dy, TensorView dx, double alpha) {
  const float* a = static_cast<const float*>(x.data_ptr());
  const float* g = static_cast<const float*>(dy.data_ptr());
  float* d = static_cast<float*>(dx.data_ptr());
  int64_t n = tvmext::numel(x);
  for (int64_t i = 0; i < n; ++i) d[i] = a[i] > 0 ? g[i] : static_cast<float>(alpha) * g[i];
}
TVM_FFI_DLL_EXPORT_TYPED_FUNC(leaky_fwd, leaky_forward);
TVM_FFI_DLL_EXPORT_TYPED_FUNC(leaky_bwd, leaky_backward);
