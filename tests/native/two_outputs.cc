// Two outputs and two attributes (int and bool): y = x * scale, z = clamp or copy.
#include <tvmext/layer.h>

void split_forward(tvmext::TensorView x, tvmext::TensorView y, tvmext::TensorView z,
                   int64_t scale, bool clamp) {
  const float* a = static_cast<const float*>(x.data_ptr());
  float* p = static_cast<float*>(y.data_ptr());
  float* q = static_cast<float*>(z.data_ptr());
  for (int64_t i = 0; i < tvmext::numel(x); ++i) {
    p[i] = a[i] * static_cast<float>(scale);
    q[i] = clamp ? (a[i] < 0 ? 0.0f : a[i]) : a[i];
  }
}

void split_backward(tvmext::TensorView x, tvmext::TensorView y, tvmext::TensorView z,
                    tvmext::TensorView dy, tvmext::TensorView dz, tvmext::TensorView dx,
                    int64_t scale, bool clamp) {
  const float* a = static_cast<const float*>(x.data_ptr());
  const float* gy = static_cast<const float*>(dy.data_ptr());
  const float* gz = static_cast<const float*>(dz.data_ptr());
  float* g = static_cast<float*>(dx.data_ptr());
  for (int64_t i = 0; i < tvmext::numel(x); ++i) {
    g[i] = gy[i] * static_cast<float>(scale) + ((clamp && a[i] < 0) ? 0.0f : gz[i]);
  }
}
TVM_FFI_DLL_EXPORT_TYPED_FUNC(split_fwd, split_forward);
TVM_FFI_DLL_EXPORT_TYPED_FUNC(split_bwd, split_backward);
