// oneDNN primitives behind a small C++ interface, so that generated code compiles
// without oneDNN's or tvm-ffi's C++ headers (only tvm-ffi's C ABI): each generated
// function is a Composite, which creates its op once (per shape, in a bounded cache,
// when the shapes are symbolic); the op's primitive descriptor and primitive are built
// on the first call and reused, and constant weights are reordered into oneDNN's
// preferred layout once.
#pragma once
#include <tvm/ffi/c_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace tvmext_dnnl {

// A tensor as oneDNN sees it: logical dims (N, C, H, W order for convolutions) and
// the strides, in elements, of the buffer Relax hands over.
struct Desc {
  int ndim;
  int64_t dims[8];
  int64_t strides[8];
};

// A post-op applied after the primitive, in order. kAdd and kMul read one more input
// (the next extra argument) broadcast to the output.
enum PostKind : int { kRelu = 0, kGeluErf, kGeluTanh, kSigmoid, kClip, kAdd, kMul, kSwish };

struct PostOp {
  int kind;
  float alpha;
  float beta;
  Desc src1;  // for kAdd / kMul
};

// The data type the multiplications of a convolution or matmul run in. kBf16: inputs
// converted to bf16 (constant weights once, activations per call), products summed in
// f32, results and post-ops in f32 (oneDNN's AMX and AVX512-BF16 kernels), where oneDNN
// has a bf16 kernel for the primitive; f32 where it has none (depthwise convolutions).
enum Math : int { kF32 = 0, kBf16 };

class Op {
 public:
  virtual ~Op() = default;
  // args: the op's inputs in the order its factory documents, then the extra inputs
  // of the post-ops, then the output.
  virtual void run(void* const* args) = 0;
  // The primitives the op runs and oneDNN's name for each implementation, separated by
  // "; ", e.g. "matmul brg:avx512_core; binary jit:uni" (a post-op run apart). The
  // compiler reads it to keep ops that only have oneDNN's reference kernel ("ref...")
  // on TVM.
  virtual const char* implementation() const = 0;
};

// Where a symbolic input dim of a composite is read: dim ``axis`` of packed argument
// ``arg``'s shape, or, with ``from_shape``, value ``axis`` of a shape argument (TVM's
// symbolic dims that no tensor has by itself).
struct DimSource {
  int arg;
  int axis;
  bool from_shape;
};

// One generated function: the composite (pattern row) it runs, its arguments, and the
// factory of its op. ``make`` receives the values of the symbolic dims (``dims``,
// none for a composite of fixed shapes).
struct CompositeSpec {
  const char* composite;  // e.g. "dnnl.conv2d"
  const char* symbol;     // the function's global symbol
  int n_args;             // packed arguments: the function's parameters, then its output
  const int* op_args;     // the packed arguments the op reads, in Op::run's order
  int n_op_args;
  const DimSource* dims;
  int n_dims;
  const int64_t* probe;  // the dims' values when the compiler asks for implementation()
  std::unique_ptr<Op> (*make)(const int64_t* dims);
};

// The ops of a composite whose shapes are symbolic are kept per value of its shape
// variables (batch, sequence length, ...), created on the first call at those values:
// at most TVMEXT_DNNL_OP_CACHE_SIZE of them (kDefaultOpCacheSize when the variable is
// unset), the least recently used dropped; constant weights are packed once for all.
constexpr size_t kDefaultOpCacheSize = 16;

// A generated function's state in a loaded module: its op, or its ops per shape.
class Composite {
 public:
  explicit Composite(const CompositeSpec& spec);
  ~Composite();
  Composite(const Composite&) = delete;
  Composite& operator=(const Composite&) = delete;
  // The function itself (TVMFFISafeCallType's arguments): runs the op on the call's
  // tensors; 0, or -1 with a TVM FFI error raised that names the composite.
  int call(const TVMFFIAny* args, int32_t num_args) noexcept;
  // Op::implementation() of the op (at the probe dims), or "error: ..." when oneDNN
  // cannot create it; for the compiler.
  const char* implementation() noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::unique_ptr<Op> convolution(const Desc& src, const Desc& weights, const Desc* bias,
                                const Desc& dst, const int64_t* stride, const int64_t* pad_l,
                                const int64_t* pad_r, const int64_t* dilation,
                                const PostOp* post, int n_post, Math math);
// inputs: src, weights, [bias]; const_weights: reorder the weights once into the layout
// oneDNN prefers (the buffer must stay the same constant across calls).
std::unique_ptr<Op> matmul(const Desc& src, const Desc& weights, const Desc* bias, const Desc& dst,
                           bool const_weights, const PostOp* post, int n_post, Math math);
// A 1-D or 2-D transposed convolution (oneDNN's deconvolution), arguments as for
// convolution; weights as (G,) O, I, spatial dims.
std::unique_ptr<Op> deconvolution(const Desc& src, const Desc& weights, const Desc* bias,
                                  const Desc& dst, const int64_t* stride, const int64_t* pad_l,
                                  const int64_t* pad_r, const int64_t* dilation,
                                  const PostOp* post, int n_post, Math math);
// The requantization of an integer product's s32 sum, fused into its primitive:
// dst = saturate(round((float(sum + bias) * scale + float_bias) / out_scale) +
// out_zero_point) in u8 (s8 with dst_signed), as QuantizeLinear after DequantizeLinear
// computes it. Its inputs follow the product's: [bias: s32 per output channel, added
// to the sum (kIntBias), or f32 per output channel, added after the scale
// (kFloatBias)], scale (f32, one or one per output channel), out_scale (one f32),
// out_zero_point (one f32 of an integer).
enum BiasKind : int { kNoBias = 0, kIntBias, kFloatBias };
struct Requant {
  BiasKind bias;
  int64_t scales;  // 1 or the output channels
  bool dst_signed;
};
// Integer products, exact: src u8 (or s8 with src_signed), minus its zero point when
// src_zero_point, times weights given as an s32 constant of s8 values (reordered into
// s8 once), summed into an s32 dst, or requantized into u8/s8 with requant.
// inputs: src, weights, [zero point: one s32], [the requantization's].
std::unique_ptr<Op> conv2d_int8(const Desc& src, bool src_signed, bool src_zero_point,
                                const Desc& weights, const Desc& dst, const int64_t stride[2],
                                const int64_t pad_l[2], const int64_t pad_r[2],
                                const int64_t dilation[2], const Requant* requant);
// src [M, K] rows (any strides), weights [K, N].
std::unique_ptr<Op> dense_int8(const Desc& src, bool src_signed, bool src_zero_point,
                               const Desc& weights, const Desc& dst, const Requant* requant);
// 1-D, 2-D or 3-D pooling (arrays: one value per spatial dim). inputs: src.
enum PoolKind : int { kMaxPool = 0, kAvgPoolWithPadding, kAvgPoolWithoutPadding };
std::unique_ptr<Op> pooling(PoolKind kind, const Desc& src, const Desc& dst,
                            const int64_t* kernel, const int64_t* stride, const int64_t* pad_l,
                            const int64_t* pad_r, const int64_t* dilation);
// Resizing N, C, spatial dims to dst's spatial size: linear with half-pixel centers, or
// nearest. inputs: src.
std::unique_ptr<Op> resampling(bool linear, const Desc& src, const Desc& dst);
// inputs: src; dst has the reduced dims as 1.
std::unique_ptr<Op> reduce_mean(const Desc& src, const Desc& dst);
// inputs: src0, src1 (broadcast to dst, which has src0's dims); kind: kAdd or kMul.
std::unique_ptr<Op> binary(int kind, const Desc& src0, const Desc& src1, const Desc& dst,
                           const PostOp* post, int n_post);
// inputs: src; copies src's elements into dst's layout (e.g. a transpose).
std::unique_ptr<Op> reorder(const Desc& src, const Desc& dst);
// inputs: src; log: log-softmax
std::unique_ptr<Op> softmax(const Desc& src, const Desc& dst, int axis, bool log);
// inputs: src, scale, shift; normalizes over the last dim.
std::unique_ptr<Op> layer_norm(const Desc& src, const Desc& dst, float epsilon);

}  // namespace tvmext_dnnl
