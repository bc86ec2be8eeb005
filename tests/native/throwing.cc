// A layer that validates its input and throws: the message must reach Python.
#include <tvmext/layer.h>

void checked_forward(tvmext::TensorView x, tvmext::TensorView y) {
  tvmext::check_shape(x, {-1, 4}, "checked", "x");
  const float* a = static_cast<const float*>(x.data_ptr());
  for (int64_t i = 0; i < tvmext::numel(x); ++i) {
    TVMEXT_CHECK(a[i] >= 0, "checked: input 'x' must be non-negative, got " << a[i]);
  }
  float* b = static_cast<float*>(y.data_ptr());
  for (int64_t i = 0; i < tvmext::numel(x); ++i) b[i] = a[i];
}
TVM_FFI_DLL_EXPORT_TYPED_FUNC(checked_fwd, checked_forward);
