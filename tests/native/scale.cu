// A CUDA layer: y = x * alpha (compile-only here; runs where a GPU is present).
#include <tvmext/layer.h>

__global__ void scale_kernel(const float* x, float* y, float alpha, int64_t n) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) y[i] = x[i] * alpha;
}

void scale_forward(tvmext::TensorView x, tvmext::TensorView y, double alpha) {
  int64_t n = tvmext::numel(x);
  int threads = 256;
  int blocks = static_cast<int>((n + threads - 1) / threads);
  scale_kernel<<<blocks, threads>>>(static_cast<const float*>(x.data_ptr()),
                                    static_cast<float*>(y.data_ptr()),
                                    static_cast<float>(alpha), n);
}
TVM_FFI_DLL_EXPORT_TYPED_FUNC(scale_fwd, scale_forward);
