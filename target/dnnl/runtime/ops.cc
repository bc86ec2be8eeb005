// oneDNN implementations of the ops declared in tvmext_dnnl/ops.h.
#include "tvmext_dnnl/ops.h"

#include <dlfcn.h>
#include <tvm/ffi/container/shape.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/function.h>

#include <dnnl.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tvmext_dnnl {
namespace {

using dnnl::memory;
using dt = memory::data_type;

// The PyPI build of oneDNN runs its CPU engine through SYCL, which finds the CPU only
// through the OpenCL CPU runtime installed beside libdnnl.so (libintelocl.so). Unless
// the user chose an OpenCL runtime, point the OpenCL loader at that one before the
// first engine is created, so that artifacts need no environment variables.
void use_bundled_opencl_cpu_runtime() {
#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_SYCL
  if (std::getenv("OCL_ICD_FILENAMES") != nullptr) return;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&dnnl_engine_create), &info) == 0 || !info.dli_fname) return;
  std::string path = info.dli_fname;
  path = path.substr(0, path.find_last_of('/') + 1) + "libintelocl.so";
  setenv("OCL_ICD_FILENAMES", path.c_str(), 0);
#endif
}

// After each parallel kernel TVM's worker threads spin (300,000 sched_yield rounds) in
// case another kernel follows, on the cores oneDNN's OpenMP threads run the next
// primitive on, and those spin in turn while TVM's kernels run. On 2 cores this made
// ConvNeXt-T's TVM kernels between oneDNN calls 40× slower and the whole model 2.5×
// (benchmarks/real_models.py). An artifact that calls oneDNN therefore asks TVM's pool,
// which reads the variable when it first starts, to let idle workers sleep at once,
// unless the user set it.
const bool tvm_workers_sleep_when_idle = [] {
  return setenv("TVM_THREAD_POOL_SPIN_COUNT", "0", /*overwrite=*/0) == 0;
}();

dnnl::engine& cpu_engine() {
  static dnnl::engine engine = [] {
    use_bundled_opencl_cpu_runtime();
    return dnnl::engine(dnnl::engine::kind::cpu, 0);
  }();
  return engine;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

memory::desc md(const Desc& d, dt type = dt::f32) {
  memory::dims dims(d.dims, d.dims + d.ndim), strides(d.strides, d.strides + d.ndim);
  return memory::desc(dims, type, strides);
}

memory::desc any_md(const Desc& d, dt type = dt::f32) {
  return memory::desc(memory::dims(d.dims, d.dims + d.ndim), type, memory::format_tag::any);
}

memory::dims two(const int64_t v[2]) { return {v[0], v[1]}; }

// The first n values of v, or of v minus one (oneDNN counts dilation from 0).
memory::dims spatial(const int64_t* v, int n, int64_t minus = 0) {
  memory::dims out(n);
  for (int i = 0; i < n; ++i) out[i] = v[i] - minus;
  return out;
}

dnnl::algorithm eltwise_algorithm(int kind) {
  switch (kind) {
    case kRelu: return dnnl::algorithm::eltwise_relu;
    case kGeluErf: return dnnl::algorithm::eltwise_gelu_erf;
    case kGeluTanh: return dnnl::algorithm::eltwise_gelu_tanh;
    case kSigmoid: return dnnl::algorithm::eltwise_logistic;
    case kSwish: return dnnl::algorithm::eltwise_swish;
    default: return dnnl::algorithm::eltwise_clip;
  }
}

// A binary post-op's second input: its oneDNN argument id and memory descriptor.
using BinaryInputs = std::vector<std::pair<int, memory::desc>>;

// Post-ops as a primitive attribute; src1_md describes each binary post-op's input.
template <class Src1Md>
dnnl::primitive_attr attr_with(const PostOp* post, int n_post, BinaryInputs* inputs,
                               Src1Md src1_md) {
  dnnl::post_ops ops;
  for (int i = 0; i < n_post; ++i) {
    const PostOp& p = post[i];
    if (p.kind == kAdd || p.kind == kMul) {
      auto alg = p.kind == kAdd ? dnnl::algorithm::binary_add : dnnl::algorithm::binary_mul;
      memory::desc src1 = src1_md(p.src1);
      ops.append_binary(alg, src1);
      inputs->emplace_back(DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1, src1);
    } else {
      ops.append_eltwise(eltwise_algorithm(p.kind), p.alpha, p.beta);
    }
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  return attr;
}

dnnl::primitive_attr attr_with(const PostOp* post, int n_post, BinaryInputs* inputs) {
  return attr_with(post, n_post, inputs, [](const Desc& d) { return md(d); });
}

bool starts_with(const std::string& text, const char* prefix) {
  return text.rfind(prefix, 0) == 0;
}

// Attributes that let a primitive on f32 tensors multiply in bf16.
dnnl::primitive_attr bf16_math() {
  dnnl::primitive_attr attr;
  attr.set_fpmath_mode(dnnl::fpmath_mode::bf16);
  return attr;
}

// Whether oneDNN's implementation of a primitive asked for bf16 (bf16 math, or bf16
// tensors) is a bf16 kernel: it names an ISA with bf16 instructions. Where it is not
// (depthwise convolutions have no AMX kernel), bf16 tensors would only add conversions,
// 2 to 3 times the f32 time, so the primitive stays f32.
bool has_bf16_kernel(const std::string& implementation) {
  return implementation.find("bf16") != std::string::npos ||
         implementation.find("amx") != std::string::npos;
}

// Whether bf16 math on f32 tensors (bf16_math()) can reach a bf16 kernel here. oneDNN 3.2
// has such kernels only for AMX; with AVX512-BF16 alone its f32 primitives stay f32
// whatever the fpmath mode, and only a primitive on bf16 tensors runs a bf16 kernel.
bool fpmath_reaches_bf16() {
  static const bool amx = [] {
    auto amx_isa = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_amx);
    return (static_cast<unsigned>(dnnl::get_effective_cpu_isa()) & amx_isa) == amx_isa;
  }();
  return amx;
}

// Whether oneDNN's int8 kernels compute the exact integer product here. Without VNNI
// (AVX2 or AVX-512 alone) they multiply with vpmaddubsw, which adds each pair of
// u8 x s8 products in int16 and saturates (255 * 127 * 2 > 32767), and with s8 sources
// they halve the weights instead: wrong results, so an int8 primitive is refused there
// (the compiler, asking on such a CPU, keeps the integer product on TVM).
void require_exact_int8(const char* kind) {
#if defined(__x86_64__)
  auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  auto has = [isa](dnnl::cpu_isa set) {
    auto bits = static_cast<unsigned>(set);
    return (isa & bits) == bits;
  };
  if (has(dnnl::cpu_isa::avx2_vnni) || has(dnnl::cpu_isa::avx512_core_vnni)) return;
  throw std::runtime_error(
      std::string("oneDNN's int8 ") + kind +
      " kernels add pairs of u8 x s8 products in int16 and saturate on a CPU without VNNI, "
      "as this one is; compiled on this CPU, a model keeps its integer products exact (on "
      "TVM, or as a QDQ model's float products)");
#else
  (void)kind;
#endif
}

// oneDNN's reference implementations ("ref:any", ...) are plain loops, 10 to 100 times
// slower than its jit and brgemm kernels: a primitive never runs one where avoidable.
bool is_reference(const std::string& implementation) {
  return starts_with(implementation, "ref");
}

// What an op that has only oneDNN's reference kernel says on its first call (the
// compiler keeps such ops on TVM, but an artifact may run on another CPU than the one
// it was compiled on); empty for any other implementation.
std::string reference_warning(const char* kind, const std::string& implementation,
                              const memory::desc& dst) {
  if (!is_reference(implementation)) return "";
  std::string dims;
  for (auto d : dst.get_dims()) dims += (dims.empty() ? "" : "x") + std::to_string(d);
  return "tvmext: oneDNN has only its reference kernel (" + implementation + ") for a " +
         kind + " -> " + dims + " on this CPU\n";
}

// The primitive descriptor ``make(attr)`` with the post-ops fused, unless oneDNN then
// picks its reference kernel and has a faster one without them: that one is returned
// and ``*apart`` says the post-ops must run as primitives of their own.
template <class Make>
auto fused_unless_reference(Make make, const dnnl::primitive_attr& attr, int n_post,
                            bool* apart) {
  auto pd = make(attr);
  *apart = false;
  if (n_post > 0 && is_reference(pd.impl_info_str())) {
    auto plain = make(dnnl::primitive_attr());
    if (!is_reference(plain.impl_info_str())) {
      *apart = true;
      return plain;
    }
  }
  return pd;
}

memory::desc zero_point_md() { return memory::desc({1}, dt::s32, memory::format_tag::x); }

// Weights reordered once into the layout a primitive prefers, keyed by the buffer.
// Weights of another data type (int8 values held as s32) are converted in their own
// layout first: oneDNN has no reorder from s32 into an int8 layout with compensation.
class PackedWeights {
 public:
  void* get(const memory::desc& user, const memory::desc& wanted, void* data) {
    if (user == wanted) return data;
    std::lock_guard<std::mutex> lock(mutex_);
    auto& packings = packed_[data];
    for (const auto& [desc, packed] : packings) {
      if (desc == wanted) return packed.get_data_handle();
    }
    memory src(user, cpu_engine(), data), dst(wanted, cpu_engine());
    if (user.get_data_type() != wanted.get_data_type()) {
      memory converted(memory::desc(user.get_dims(), wanted.get_data_type(), user.get_strides()),
                       cpu_engine());
      dnnl::reorder(src, converted).execute(cpu_stream(), src, converted);
      src = converted;
    }
    dnnl::reorder(src, dst).execute(cpu_stream(), src, dst);
    cpu_stream().wait();
    packings.emplace_back(wanted, dst);
    return dst.get_data_handle();
  }

 private:
  std::mutex mutex_;
  std::unordered_map<void*, std::vector<std::pair<memory::desc, memory>>> packed_;
};

// One store for all ops of the library: the ops a dynamic composite creates per shape
// (see Composite) find the weights packed once, as long as oneDNN wants the same layout.
PackedWeights& packed_weights() {
  static PackedWeights* const store = new PackedWeights();  // outlives every op
  return *store;
}

// dst = src0 (+ or *) src1 over f32 tensors of any strides, src1 broadcast (its dims
// of 1): for a binary post-op whose broadcast oneDNN has only its reference kernel for
// (e.g. along the last dim of a result while varying over several others), a plain
// strided loop is several times faster than that kernel.
class BroadcastLoop {
 public:
  BroadcastLoop(int kind, const memory::desc& dst, const memory::desc& src1)
      : add_(kind == kAdd), dims_(dst.get_dims()), dst_strides_(dst.get_strides()) {
    memory::dims src1_dims = src1.get_dims(), src1_strides = src1.get_strides();
    src1_strides_.resize(dims_.size());
    for (size_t i = 0; i < dims_.size(); ++i)
      src1_strides_[i] = src1_dims[i] == 1 ? 0 : src1_strides[i];
  }

  void run(const float* src0, const float* src1, float* dst) const {
    loop(0, src0, src1, dst);
  }

 private:
  void loop(size_t dim, const float* a, const float* b, float* d) const {
    int64_t n = dims_[dim], sd = dst_strides_[dim], sb = src1_strides_[dim];
    if (dim + 1 == dims_.size()) {
      for (int64_t i = 0; i < n; ++i) d[i * sd] = add_ ? a[i * sd] + b[i * sb] : a[i * sd] * b[i * sb];
      return;
    }
    for (int64_t i = 0; i < n; ++i) loop(dim + 1, a + i * sd, b + i * sb, d + i * sd);
  }

  bool add_;
  memory::dims dims_, dst_strides_, src1_strides_;
};

// An op that records oneDNN's implementation names when it creates its primitives.
class NamedOp : public Op {
 public:
  const char* implementation() const override { return implementation_.c_str(); }

 protected:
  std::string implementation_;
};

// A primitive with its memories; run() points them at the call's buffers. Post-ops
// that oneDNN could fuse only into its reference kernel run after it as eltwise and
// binary primitives of their own, in place on its dst (the last argument).
class PrimitiveOp : public NamedOp {
 public:
  void run(void* const* args) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!warning_.empty()) {
      std::fputs(warning_.c_str(), stderr);
      warning_.clear();
    }
    dnnl::stream& stream = cpu_stream();
    for (size_t i = 0; i < slots_.size(); ++i) {
      void* data = args[i];
      auto converted = converted_.find(i);
      if (converted != converted_.end()) {
        converted->second.user.set_data_handle(data);
        converted->second.reorder.execute(stream, converted->second.user, slots_[i].second);
        continue;
      }
      if (i == packed_slot_) data = packed_weights().get(packed_user_, slots_[i].second.get_desc(), data);
      slots_[i].second.set_data_handle(data);
    }
    execute_args_.clear();
    for (auto& slot : slots_)
      if (slot.first != kApart) execute_args_.insert(slot);
    primitive_.execute(stream, execute_args_);
    memory& dst = slots_.back().second;
    for (auto& post : apart_) {
      if (post.loop) {
        auto* out = static_cast<float*>(dst.get_data_handle());
        post.loop->run(out, static_cast<const float*>(args[post.src1_slot]), out);
      } else if (post.src1_slot < 0) {
        post.primitive.execute(stream, {{DNNL_ARG_SRC, dst}, {DNNL_ARG_DST, dst}});
      } else {
        post.primitive.execute(stream, {{DNNL_ARG_SRC_0, dst},
                                        {DNNL_ARG_SRC_1, slots_[post.src1_slot].second},
                                        {DNNL_ARG_DST, dst}});
      }
    }
    stream.wait();
  }

 protected:
  // Slots in argument order: (oneDNN argument id, memory descriptor).
  void add(int arg, const memory::desc& desc) {
    slots_.emplace_back(arg, memory(desc, cpu_engine(), DNNL_MEMORY_NONE));
  }
  void pack(size_t slot, const memory::desc& user) {
    packed_slot_ = slot;
    packed_user_ = user;
  }
  // The last slot added reads another data type or layout than the caller's buffer
  // (``user``): each call reorders the buffer into memory the op owns.
  void convert(const memory::desc& user) {
    size_t slot = slots_.size() - 1;
    memory& owned = slots_[slot].second;
    owned = memory(owned.get_desc(), cpu_engine());
    dnnl::reorder::primitive_desc pd(cpu_engine(), user, cpu_engine(), owned.get_desc());
    converted_[slot] = {memory(user, cpu_engine(), DNNL_MEMORY_NONE), dnnl::reorder(pd)};
  }
  // The post-ops' inputs: fused, arguments of the primitive; apart, each post-op
  // becomes its own primitive on ``dst``.
  void add_post_ops(const PostOp* post, int n_post, const BinaryInputs& inputs, bool apart,
                    const memory::desc& dst) {
    if (!apart) {
      for (const auto& [arg, desc] : inputs) add(arg, desc);
      return;
    }
    auto prop = dnnl::prop_kind::forward_inference;
    size_t next_input = 0;
    for (int i = 0; i < n_post; ++i) {
      const PostOp& p = post[i];
      Apart step;
      if (p.kind == kAdd || p.kind == kMul) {
        auto alg = p.kind == kAdd ? dnnl::algorithm::binary_add : dnnl::algorithm::binary_mul;
        const memory::desc& src1 = inputs[next_input++].second;
        dnnl::binary::primitive_desc pd(cpu_engine(), alg, dst, src1, dst);
        step.src1_slot = static_cast<int>(slots_.size());
        if (is_reference(pd.impl_info_str())) {
          step.loop = std::make_shared<BroadcastLoop>(p.kind, dst, src1);
          implementation_ += "; binary tvmext:broadcast_loop";
        } else {
          step.primitive = dnnl::binary(pd);
          implementation_ += std::string("; binary ") + pd.impl_info_str();
        }
        add(kApart, src1);
      } else {
        dnnl::eltwise_forward::primitive_desc pd(cpu_engine(), prop, eltwise_algorithm(p.kind),
                                                 dst, dst, p.alpha, p.beta);
        step.primitive = dnnl::eltwise_forward(pd);
        implementation_ += std::string("; eltwise ") + pd.impl_info_str();
      }
      apart_.push_back(step);
    }
  }
  // Record the primitive's implementation (a reference one is said on the first call).
  void chose(const char* kind, const std::string& implementation, const memory::desc& dst) {
    implementation_ = std::string(kind) + " " + implementation + implementation_;
    warning_ += reference_warning(kind, implementation, dst);
  }
  dnnl::primitive primitive_;

 private:
  // The argument id of a slot that only a post-op run apart reads.
  static constexpr int kApart = -1;
  struct Converted {
    memory user;
    dnnl::reorder reorder;
  };
  struct Apart {
    dnnl::primitive primitive;
    int src1_slot = -1;  // the binary post-op's input, -1 for an eltwise one
    std::shared_ptr<BroadcastLoop> loop;  // instead of a binary reference kernel
  };
  std::mutex mutex_;
  std::string warning_;
  std::vector<std::pair<int, memory>> slots_;
  std::vector<Apart> apart_;
  std::unordered_map<int, memory> execute_args_;
  std::unordered_map<size_t, Converted> converted_;
  size_t packed_slot_ = static_cast<size_t>(-1);
  memory::desc packed_user_;
};

// A depthwise convolution: grouped weights (G, O/G, I/G, spatial...) of one input and one
// output channel per group. Memory-bound: in bf16 its conversions would cost more than
// its products save, so it stays f32 (see has_bf16_kernel).
bool depthwise(const Desc& src, const Desc& weights) {
  return weights.ndim == src.ndim + 1 && weights.dims[1] == 1 && weights.dims[2] == 1;
}

// A convolution or a transposed convolution (oneDNN's deconvolution), with post-ops.
template <class Forward>
class ConvolutionLike : public PrimitiveOp {
 public:
  ConvolutionLike(const char* kind, dnnl::algorithm alg, const Desc& src, const Desc& weights,
                  const Desc* bias, const Desc& dst, const int64_t* stride,
                  const int64_t* pad_l, const int64_t* pad_r, const int64_t* dilation,
                  const PostOp* post, int n_post, Math math) {
    BinaryInputs binary;
    auto attr = attr_with(post, n_post, &binary);
    memory::desc src_md = md(src);
    dt weights_type = dt::f32;
    int n = src.ndim - 2;
    memory::dims strides = spatial(stride, n), dil = spatial(dilation, n, 1);
    memory::dims left = spatial(pad_l, n), right = spatial(pad_r, n);
    auto prop = dnnl::prop_kind::forward_inference;
    auto make = [&](const dnnl::primitive_attr& a) {
      return bias ? typename Forward::primitive_desc(cpu_engine(), prop, alg, src_md,
                                                     any_md(weights, weights_type), md(*bias),
                                                     md(dst), strides, dil, left, right, a)
                  : typename Forward::primitive_desc(cpu_engine(), prop, alg, src_md,
                                                     any_md(weights, weights_type), md(dst),
                                                     strides, dil, left, right, a);
    };
    bool bf16 = false;
    if (math == kBf16 && fpmath_reaches_bf16()) {
      bf16 = has_bf16_kernel(make(bf16_math()).impl_info_str());
    } else if (math == kBf16 && !depthwise(src, weights)) {
      src_md = any_md(src, dt::bf16);  // asked on the bf16 tensors it would run on
      weights_type = dt::bf16;
      bf16 = has_bf16_kernel(make(dnnl::primitive_attr()).impl_info_str());
    }
    // bf16 activations are converted per call anyway: into the layout oneDNN prefers.
    src_md = bf16 ? any_md(src, dt::bf16) : md(src);
    weights_type = bf16 ? dt::bf16 : dt::f32;
    bool apart;
    auto pd = fused_unless_reference(make, attr, n_post, &apart);
    chose(kind, pd.impl_info_str(), pd.dst_desc());
    primitive_ = Forward(pd);
    add(DNNL_ARG_SRC, pd.src_desc());
    if (bf16) convert(md(src));
    add(DNNL_ARG_WEIGHTS, pd.weights_desc());
    pack(1, md(weights));
    if (bias) add(DNNL_ARG_BIAS, md(*bias));
    add_post_ops(post, n_post, binary, apart, pd.dst_desc());
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

// oneDNN's int8 convolution kernels (jit, brgemm) take src and dst only in the layouts
// they choose (NHWC or blocked); given another, oneDNN runs its reference kernel, tens
// of times slower. So the primitive picks its layouts, and src and dst are reordered
// from and to the caller's buffers when those differ.
// oneDNN's scales divide the destination (dst = sum * weights scale / dst scale) and
// its bias is added after the weights scale, so an s32 bias is taken to f32 times the
// scale, and the f32 zero point to s32, from the call's constants: again only when
// they are other buffers (one composite function can serve several call sites).
class Requantizer {
 public:
  // bias_dims: as the primitive takes its bias, one value per output channel
  Requantizer(const Requant& requant, int weights_mask, const memory::dims& bias_dims,
              dnnl::primitive_attr& attr)
      : requant_(requant), channels_(bias_dims.back()) {
    attr.set_scales_mask(DNNL_ARG_WEIGHTS, requant.scales == 1 ? 0 : weights_mask);
    attr.set_scales_mask(DNNL_ARG_DST, 0);
    attr.set_zero_points_mask(DNNL_ARG_DST, 0);
    scales_ = memory(memory::desc({requant.scales}, dt::f32, memory::format_tag::x),
                     cpu_engine(), DNNL_MEMORY_NONE);
    out_scale_ = memory(memory::desc({1}, dt::f32, memory::format_tag::x), cpu_engine(),
                        DNNL_MEMORY_NONE);
    out_zero_point_ = memory(zero_point_md(), cpu_engine());
    memory::desc bias(bias_dims, dt::f32,
                      bias_dims.size() == 1 ? memory::format_tag::x : memory::format_tag::ab);
    if (requant.bias == kIntBias) bias_ = memory(bias, cpu_engine());
    if (requant.bias == kFloatBias) bias_ = memory(bias, cpu_engine(), DNNL_MEMORY_NONE);
  }
  int inputs() const { return requant_.bias == kNoBias ? 3 : 4; }
  memory::desc bias_desc() const { return bias_ ? bias_.get_desc() : memory::desc(); }
  // args: this requantization's inputs; adds the memories the primitive reads to ``args``.
  void bind(void* const* args, std::unordered_map<int, memory>& exec) {
    const int first = requant_.bias == kNoBias ? 0 : 1;
    const float* scale = static_cast<const float*>(args[first]);
    std::vector<void*> constants(args, args + inputs());
    if (constants != converted_from_) {
      if (requant_.bias == kIntBias) {
        const int32_t* bias = static_cast<const int32_t*>(args[0]);
        float* out = static_cast<float*>(bias_.get_data_handle());
        for (memory::dim c = 0; c < channels_; ++c)
          out[c] = static_cast<float>(bias[c]) * scale[requant_.scales == 1 ? 0 : c];
      }
      float zero_point = *static_cast<const float*>(args[first + 2]);
      *static_cast<int32_t*>(out_zero_point_.get_data_handle()) =
          static_cast<int32_t>(std::lrint(zero_point));
      converted_from_ = constants;
    }
    if (requant_.bias == kFloatBias) bias_.set_data_handle(args[0]);
    scales_.set_data_handle(const_cast<float*>(scale));
    out_scale_.set_data_handle(args[first + 1]);
    exec[DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS] = scales_;
    exec[DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST] = out_scale_;
    exec[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST] = out_zero_point_;
    if (bias_) exec[DNNL_ARG_BIAS] = bias_;
  }

 private:
  Requant requant_;
  memory::dim channels_;
  memory scales_, out_scale_, out_zero_point_, bias_;
  std::vector<void*> converted_from_;
};

// What an integer product reads after its src and weights, each if it has it: the src
// zero point (one value for the whole tensor, a one-element s32 buffer) and the
// requantization's inputs; and the primitive attributes they need.
class IntegerInputs {
 public:
  // weights_mask, bias_dims: see Requantizer
  IntegerInputs(bool src_zero_point, const Requant* requant, int weights_mask,
                const memory::dims& bias_dims) {
    if (src_zero_point) {
      attr_.set_zero_points_mask(DNNL_ARG_SRC, 0);
      zero_point_ = memory(zero_point_md(), cpu_engine(), DNNL_MEMORY_NONE);
    }
    if (requant)
      requantizer_ = std::make_unique<Requantizer>(*requant, weights_mask, bias_dims, attr_);
  }
  const dnnl::primitive_attr& attr() const { return attr_; }
  // The f32 bias the primitive adds, if the requantization has one.
  memory::desc bias_desc() const {
    return requantizer_ ? requantizer_->bias_desc() : memory::desc();
  }
  // Binds the inputs that follow src and weights in ``args`` into ``exec``; the index of
  // the argument after them (the dst).
  int bind(void* const* args, std::unordered_map<int, memory>& exec) {
    int next = 2;
    if (zero_point_) {
      zero_point_.set_data_handle(args[next++]);
      exec[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC] = zero_point_;
    }
    if (requantizer_) {
      requantizer_->bind(args + next, exec);
      next += requantizer_->inputs();
    }
    return next;
  }

 private:
  dnnl::primitive_attr attr_;
  memory zero_point_;
  std::unique_ptr<Requantizer> requantizer_;
};

class Conv2dInt8 : public NamedOp {
 public:
  Conv2dInt8(const Desc& src, bool src_signed, bool src_zero_point, const Desc& weights,
             const Desc& dst, const int64_t stride[2], const int64_t pad_l[2],
             const int64_t pad_r[2], const int64_t dilation[2], const Requant* requant)
      : user_weights_(md(weights, dt::s32)),
        // weights (O, I, H, W) or grouped (G, O/G, I/G, H, W): the output channel's dims
        inputs_(src_zero_point, requant, weights.ndim == 5 ? 3 : 1, {dst.dims[1]}) {
    require_exact_int8("convolution");
    dt dst_type = !requant ? dt::s32 : requant->dst_signed ? dt::s8 : dt::u8;
    memory::desc user_src = md(src, src_signed ? dt::s8 : dt::u8), user_dst = md(dst, dst_type);
    memory::dims dil = {dilation[0] - 1, dilation[1] - 1};
    auto src_any = any_md(src, user_src.get_data_type());
    auto weights_any = any_md(weights, dt::s8), dst_any = any_md(dst, dst_type);
    pd_ = dnnl::convolution_forward::primitive_desc(
        cpu_engine(), dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
        src_any, weights_any, inputs_.bias_desc(), dst_any, two(stride), dil, two(pad_l),
        two(pad_r), inputs_.attr());
    implementation_ = std::string("convolution ") + pd_.impl_info_str();
    primitive_ = dnnl::convolution_forward(pd_);
    user_src_ = memory(user_src, cpu_engine(), DNNL_MEMORY_NONE);
    user_dst_ = memory(user_dst, cpu_engine(), DNNL_MEMORY_NONE);
    weights_ = memory(pd_.weights_desc(), cpu_engine(), DNNL_MEMORY_NONE);
    if (pd_.src_desc() != user_src) {
      src_ = memory(pd_.src_desc(), cpu_engine());
      src_reorder_ = dnnl::reorder(
          dnnl::reorder::primitive_desc(cpu_engine(), user_src, cpu_engine(), pd_.src_desc()));
    }
    if (pd_.dst_desc() != user_dst) {
      dst_ = memory(pd_.dst_desc(), cpu_engine());
      dst_reorder_ = dnnl::reorder(
          dnnl::reorder::primitive_desc(cpu_engine(), pd_.dst_desc(), cpu_engine(), user_dst));
    }
    args_ = {{DNNL_ARG_SRC, src_ ? src_ : user_src_},
             {DNNL_ARG_WEIGHTS, weights_},
             {DNNL_ARG_DST, dst_ ? dst_ : user_dst_}};
  }

  // args: src, weights, [zero point], [the requantization's inputs], dst
  void run(void* const* args) override {
    std::lock_guard<std::mutex> lock(mutex_);
    dnnl::stream& stream = cpu_stream();
    user_src_.set_data_handle(args[0]);
    weights_.set_data_handle(packed_weights().get(user_weights_, pd_.weights_desc(), args[1]));
    user_dst_.set_data_handle(args[inputs_.bind(args, args_)]);
    if (src_) src_reorder_.execute(stream, user_src_, src_);
    primitive_.execute(stream, args_);
    if (dst_) dst_reorder_.execute(stream, dst_, user_dst_);
    stream.wait();
  }

 private:
  std::mutex mutex_;
  memory::desc user_weights_;
  IntegerInputs inputs_;
  dnnl::convolution_forward::primitive_desc pd_;
  dnnl::primitive primitive_;
  // The caller's buffers (handles set per call), and the primitive's own src/dst when
  // its layouts differ from the caller's.
  memory user_src_, weights_, user_dst_, src_, dst_;
  dnnl::reorder src_reorder_, dst_reorder_;
  std::unordered_map<int, memory> args_;
};

class DenseInt8 : public NamedOp {
 public:
  DenseInt8(const Desc& src, bool src_signed, bool src_zero_point, const Desc& weights,
            const Desc& dst, const Requant* requant)
      : user_weights_(md(weights, dt::s32)),
        // weights [K, N]: one scale per output channel is per column
        inputs_(src_zero_point, requant, 1 << 1, {1, weights.dims[1]}) {
    require_exact_int8("matmul");
    dt dst_type = !requant ? dt::s32 : requant->dst_signed ? dt::s8 : dt::u8;
    pd_ = dnnl::matmul::primitive_desc(cpu_engine(), md(src, src_signed ? dt::s8 : dt::u8),
                                       any_md(weights, dt::s8), inputs_.bias_desc(),
                                       md(dst, dst_type), inputs_.attr());
    implementation_ = std::string("matmul ") + pd_.impl_info_str();
    warning_ = reference_warning("matmul", pd_.impl_info_str(), pd_.dst_desc());
    primitive_ = dnnl::matmul(pd_);
    src_ = memory(pd_.src_desc(), cpu_engine(), DNNL_MEMORY_NONE);
    weights_ = memory(pd_.weights_desc(), cpu_engine(), DNNL_MEMORY_NONE);
    dst_ = memory(pd_.dst_desc(), cpu_engine(), DNNL_MEMORY_NONE);
    args_ = {{DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst_}};
  }

  // args: src, weights, [zero point], [the requantization's inputs], dst
  void run(void* const* args) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!warning_.empty()) {
      std::fputs(warning_.c_str(), stderr);
      warning_.clear();
    }
    src_.set_data_handle(args[0]);
    weights_.set_data_handle(packed_weights().get(user_weights_, pd_.weights_desc(), args[1]));
    dst_.set_data_handle(args[inputs_.bind(args, args_)]);
    dnnl::stream& stream = cpu_stream();
    primitive_.execute(stream, args_);
    stream.wait();
  }

 private:
  std::mutex mutex_;
  std::string warning_;
  memory::desc user_weights_;
  IntegerInputs inputs_;
  dnnl::matmul::primitive_desc pd_;
  dnnl::primitive primitive_;
  memory src_, weights_, dst_;
  std::unordered_map<int, memory> args_;
};

// In bf16, src and weights are converted (see PrimitiveOp::convert) into the layouts
// oneDNN prefers; in f32 only constant weights are.
dnnl::matmul::primitive_desc matmul_pd(const Desc& src, const Desc& weights, const Desc* bias,
                                       const Desc& dst, bool const_weights, Math math,
                                       const dnnl::primitive_attr& attr) {
  bool bf16 = math == kBf16;
  auto in = bf16 ? any_md(src, dt::bf16) : md(src);
  auto wei = bf16 ? any_md(weights, dt::bf16) : const_weights ? any_md(weights) : md(weights);
  return bias ? dnnl::matmul::primitive_desc(cpu_engine(), in, wei, md(*bias), md(dst), attr)
              : dnnl::matmul::primitive_desc(cpu_engine(), in, wei, md(dst), attr);
}

class MatMul : public PrimitiveOp {
 public:
  MatMul(const dnnl::matmul::primitive_desc& pd, const Desc& src, const Desc& weights,
         const Desc* bias, bool const_weights, Math math, const PostOp* post, int n_post,
         const BinaryInputs& binary, bool apart) {
    chose("matmul", pd.impl_info_str(), pd.dst_desc());
    primitive_ = dnnl::matmul(pd);
    add(DNNL_ARG_SRC, pd.src_desc());
    if (math == kBf16) convert(md(src));
    add(DNNL_ARG_WEIGHTS, pd.weights_desc());
    if (const_weights) pack(1, md(weights));
    else if (math == kBf16) convert(md(weights));
    if (bias) add(DNNL_ARG_BIAS, md(*bias));
    add_post_ops(post, n_post, binary, apart, pd.dst_desc());
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

// Rows of a tensor [..., R, C]: its leading dims flattened into R rows of C contiguous
// values R_stride apart. False when they do not flatten (e.g. a permuted view).
bool as_rows(const Desc& d, int64_t* rows, int64_t* row_stride) {
  int last = d.ndim - 1;
  if (last < 0 || (d.dims[last] != 1 && d.strides[last] != 1)) return false;
  *rows = 1;
  *row_stride = d.dims[last];
  int64_t next = -1;  // the stride the next non-trivial leading dim must have
  for (int i = last - 1; i >= 0; --i) {
    if (d.dims[i] == 1) continue;
    if (next == -1) *row_stride = d.strides[i];
    else if (d.strides[i] != next) return false;
    next = d.strides[i] * d.dims[i];
    *rows *= d.dims[i];
  }
  return true;
}

// A 2-D view [R, C] as a convolution's NHWC tensor of C channels at R×1 pixels.
memory::desc pixels_md(int64_t rows, int64_t row_stride, int64_t channels, int64_t channel_stride) {
  return memory::desc({1, channels, rows, 1}, dt::f32,
                      {rows * row_stride, channel_stride, row_stride, row_stride});
}

// A matmul by constant weights [K, N] as a 1×1 convolution: src [M, K] is M pixels of K
// channels. oneDNN 3.2 has no brgemm matmul below AVX-512; its gemm-based matmul ran
// 1.1 to 3× slower than its brgemm 1×1 convolution on the same problem (AVX2, 2 cores,
// the shapes of ConvNeXt's, ViT's and BERT's linear layers).
class DenseAsConv : public PrimitiveOp {
 public:
  DenseAsConv(const memory::desc& src, const memory::desc& weights, const memory::desc* bias,
              const memory::desc& dst, const dnnl::primitive_attr& attr, const PostOp* post,
              int n_post, const BinaryInputs& binary) {
    auto prop = dnnl::prop_kind::forward_inference;
    auto alg = dnnl::algorithm::convolution_direct;
    auto wanted = memory::desc(weights.get_dims(), dt::f32, memory::format_tag::any);
    memory::dims one = {1, 1}, zero = {0, 0};
    auto make = [&](const dnnl::primitive_attr& a) {
      return bias ? dnnl::convolution_forward::primitive_desc(
                        cpu_engine(), prop, alg, src, wanted, *bias, dst, one, zero, zero, zero, a)
                  : dnnl::convolution_forward::primitive_desc(cpu_engine(), prop, alg, src,
                                                              wanted, dst, one, zero, zero, zero, a);
    };
    bool apart;
    auto pd = fused_unless_reference(make, attr, n_post, &apart);
    convolution_implementation_ = pd.impl_info_str();
    chose("convolution", convolution_implementation_, pd.dst_desc());
    primitive_ = dnnl::convolution_forward(pd);
    add(DNNL_ARG_SRC, pd.src_desc());
    add(DNNL_ARG_WEIGHTS, pd.weights_desc());
    pack(1, weights);
    if (bias) add(DNNL_ARG_BIAS, *bias);
    add_post_ops(post, n_post, binary, apart, pd.dst_desc());
    add(DNNL_ARG_DST, pd.dst_desc());
  }

  // oneDNN's name for the convolution it chose, e.g. "brgconv_1x1:avx2".
  const std::string& convolution_implementation() const { return convolution_implementation_; }

 private:
  std::string convolution_implementation_;
};

// The convolution for a matmul by constant weights, or null when the tensors are not
// plain rows, a binary post-op's input is broadcast over only some rows, or oneDNN has
// no convolution for the post-ops.
std::unique_ptr<DenseAsConv> dense_as_conv(const Desc& src, const Desc& weights,
                                           const Desc* bias, const Desc& dst,
                                           const PostOp* post, int n_post) {
  int64_t m, src_stride, dst_rows, dst_stride;
  int w = weights.ndim - 1;  // weights [1.., K, N], any strides (e.g. transposed)
  if (w < 1) return nullptr;
  for (int i = 0; i < w - 1; ++i)
    if (weights.dims[i] != 1) return nullptr;
  if (!as_rows(src, &m, &src_stride) || !as_rows(dst, &dst_rows, &dst_stride) || dst_rows != m)
    return nullptr;
  int64_t k = src.dims[src.ndim - 1], n = dst.dims[dst.ndim - 1];
  memory::desc wei({n, k, 1, 1}, dt::f32, {weights.strides[w], weights.strides[w - 1], 1, 1});
  memory::desc bias_md;
  if (bias) {
    int64_t rows, stride;
    if (!as_rows(*bias, &rows, &stride) || rows != 1) return nullptr;
    bias_md = memory::desc({n}, dt::f32, {1});
  }
  bool rows_fit = true;
  auto src1_md = [&](const Desc& d) {
    int64_t rows, stride, channels = d.dims[d.ndim - 1];
    if (!as_rows(d, &rows, &stride) || (rows != 1 && rows != m)) rows_fit = false;
    return pixels_md(rows, stride, channels, channels == 1 ? 1 : d.strides[d.ndim - 1]);
  };
  BinaryInputs binary;
  auto attr = attr_with(post, n_post, &binary, src1_md);
  if (!rows_fit) return nullptr;
  try {
    return std::make_unique<DenseAsConv>(pixels_md(m, src_stride, k, 1), wei,
                                         bias ? &bias_md : nullptr,
                                         pixels_md(m, dst_stride, n, 1), attr, post, n_post,
                                         binary);
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

// How a matmul by constant weights runs: $TVMEXT_ONEDNN_DENSE is "matmul" or
// "convolution" (where the tensors allow one) to force either; unset or "auto": as a
// convolution when oneDNN's matmul is gemm-based and its convolution brgemm-based.
enum class DenseChoice { kAuto, kMatmul, kConvolution };

DenseChoice dense_choice() {
  static const DenseChoice choice = [] {
    const char* value = std::getenv("TVMEXT_ONEDNN_DENSE");
    std::string text = value ? value : "auto";
    if (text == "matmul") return DenseChoice::kMatmul;
    if (text == "convolution") return DenseChoice::kConvolution;
    if (text != "auto")
      std::fprintf(stderr, "tvmext: TVMEXT_ONEDNN_DENSE=%s is not matmul, convolution or auto; "
                   "using auto\n", value);
    return DenseChoice::kAuto;
  }();
  return choice;
}

class Pooling : public PrimitiveOp {
 public:
  Pooling(PoolKind kind, const Desc& src, const Desc& dst, const int64_t* kernel,
          const int64_t* stride, const int64_t* pad_l, const int64_t* pad_r,
          const int64_t* dilation) {
    auto alg = kind == kMaxPool                ? dnnl::algorithm::pooling_max
               : kind == kAvgPoolWithPadding ? dnnl::algorithm::pooling_avg_include_padding
                                             : dnnl::algorithm::pooling_avg_exclude_padding;
    int n = src.ndim - 2;
    dnnl::pooling_forward::primitive_desc pd(
        cpu_engine(), dnnl::prop_kind::forward_inference, alg, md(src), md(dst),
        spatial(stride, n), spatial(kernel, n), spatial(dilation, n, 1), spatial(pad_l, n),
        spatial(pad_r, n));
    chose("pooling", pd.impl_info_str(), pd.dst_desc());
    primitive_ = dnnl::pooling_forward(pd);
    add(DNNL_ARG_SRC, pd.src_desc());
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

class Resampling : public PrimitiveOp {
 public:
  Resampling(bool linear, const Desc& src, const Desc& dst) {
    auto alg = linear ? dnnl::algorithm::resampling_linear : dnnl::algorithm::resampling_nearest;
    dnnl::resampling_forward::primitive_desc pd(
        cpu_engine(), dnnl::prop_kind::forward_inference, alg, md(src), md(dst));
    chose("resampling", pd.impl_info_str(), pd.dst_desc());
    primitive_ = dnnl::resampling_forward(pd);
    add(DNNL_ARG_SRC, pd.src_desc());
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

class ReduceMean : public PrimitiveOp {
 public:
  ReduceMean(const Desc& src, const Desc& dst) {
    dnnl::reduction::primitive_desc pd(cpu_engine(), dnnl::algorithm::reduction_mean, md(src),
                                       md(dst), 0.f, 0.f);
    chose("reduction", pd.impl_info_str(), pd.dst_desc());
    primitive_ = dnnl::reduction(pd);
    add(DNNL_ARG_SRC, pd.src_desc());
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

class Binary : public PrimitiveOp {
 public:
  Binary(int kind, const Desc& src0, const Desc& src1, const Desc& dst, const PostOp* post,
         int n_post) {
    BinaryInputs binary;
    auto attr = attr_with(post, n_post, &binary);
    auto alg = kind == kAdd ? dnnl::algorithm::binary_add : dnnl::algorithm::binary_mul;
    auto make = [&](const dnnl::primitive_attr& a) {
      return dnnl::binary::primitive_desc(cpu_engine(), alg, md(src0), md(src1), md(dst), a);
    };
    bool apart;
    auto pd = fused_unless_reference(make, attr, n_post, &apart);
    chose("binary", pd.impl_info_str(), pd.dst_desc());
    primitive_ = dnnl::binary(pd);
    add(DNNL_ARG_SRC_0, pd.src0_desc());
    add(DNNL_ARG_SRC_1, pd.src1_desc());
    add_post_ops(post, n_post, binary, apart, pd.dst_desc());
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

class Reorder : public PrimitiveOp {
 public:
  Reorder(const Desc& src, const Desc& dst) {
    dnnl::reorder::primitive_desc pd(cpu_engine(), md(src), cpu_engine(), md(dst));
    chose("reorder", pd.impl_info_str(), md(dst));
    primitive_ = dnnl::reorder(pd);
    add(DNNL_ARG_FROM, md(src));
    add(DNNL_ARG_TO, md(dst));
  }
};

class Softmax : public PrimitiveOp {
 public:
  Softmax(const Desc& src, const Desc& dst, int axis, bool log) {
    auto alg = log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
    dnnl::softmax_forward::primitive_desc pd(cpu_engine(), dnnl::prop_kind::forward_inference,
                                             alg, md(src), md(dst), axis);
    chose("softmax", pd.impl_info_str(), pd.dst_desc());
    primitive_ = dnnl::softmax_forward(pd);
    add(DNNL_ARG_SRC, pd.src_desc());
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

class LayerNorm : public PrimitiveOp {
 public:
  LayerNorm(const Desc& src, const Desc& dst, float epsilon) {
    auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    dnnl::layer_normalization_forward::primitive_desc pd(
        cpu_engine(), dnnl::prop_kind::forward_inference, md(src), md(dst), epsilon, flags);
    chose("layer_norm", pd.impl_info_str(), pd.dst_desc());
    primitive_ = dnnl::layer_normalization_forward(pd);
    memory::desc channel({src.dims[src.ndim - 1]}, dt::f32, memory::format_tag::a);
    add(DNNL_ARG_SRC, pd.src_desc());
    add(DNNL_ARG_SCALE, channel);
    add(DNNL_ARG_SHIFT, channel);
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

}  // namespace

std::unique_ptr<Op> convolution(const Desc& src, const Desc& weights, const Desc* bias,
                                const Desc& dst, const int64_t* stride, const int64_t* pad_l,
                                const int64_t* pad_r, const int64_t* dilation,
                                const PostOp* post, int n_post, Math math) {
  return std::make_unique<ConvolutionLike<dnnl::convolution_forward>>(
      "convolution", dnnl::algorithm::convolution_direct, src, weights, bias, dst, stride, pad_l,
      pad_r, dilation, post, n_post, math);
}

std::unique_ptr<Op> deconvolution(const Desc& src, const Desc& weights, const Desc* bias,
                                  const Desc& dst, const int64_t* stride, const int64_t* pad_l,
                                  const int64_t* pad_r, const int64_t* dilation,
                                  const PostOp* post, int n_post, Math math) {
  return std::make_unique<ConvolutionLike<dnnl::deconvolution_forward>>(
      "deconvolution", dnnl::algorithm::deconvolution_direct, src, weights, bias, dst, stride,
      pad_l, pad_r, dilation, post, n_post, math);
}

std::unique_ptr<Op> matmul(const Desc& src, const Desc& weights, const Desc* bias, const Desc& dst,
                           bool const_weights, const PostOp* post, int n_post, Math math) {
  BinaryInputs binary;
  auto attr = attr_with(post, n_post, &binary);
  if (math == kBf16) {
    auto probe = fpmath_reaches_bf16()
                     ? matmul_pd(src, weights, bias, dst, const_weights, kF32, bf16_math())
                     : matmul_pd(src, weights, bias, dst, const_weights, kBf16, {});
    if (!has_bf16_kernel(probe.impl_info_str())) math = kF32;
  }
  bool apart;
  auto pd = fused_unless_reference(
      [&](const dnnl::primitive_attr& a) {
        return matmul_pd(src, weights, bias, dst, const_weights, math, a);
      },
      attr, n_post, &apart);
  // bf16 matmuls are brgemm-based wherever oneDNN has bf16 kernels (AVX512-BF16, AMX).
  DenseChoice choice = dense_choice();
  bool forced = choice == DenseChoice::kConvolution;
  bool gemm = starts_with(pd.impl_info_str(), "gemm");
  if (math == kF32 && const_weights && (forced || (choice == DenseChoice::kAuto && gemm))) {
    auto conv = dense_as_conv(src, weights, bias, dst, post, n_post);
    if (conv && (forced || starts_with(conv->convolution_implementation(), "brg"))) return conv;
  }
  return std::make_unique<MatMul>(pd, src, weights, bias, const_weights, math, post, n_post,
                                  binary, apart);
}

std::unique_ptr<Op> conv2d_int8(const Desc& src, bool src_signed, bool src_zero_point,
                                const Desc& weights, const Desc& dst, const int64_t stride[2],
                                const int64_t pad_l[2], const int64_t pad_r[2],
                                const int64_t dilation[2], const Requant* requant) {
  return std::make_unique<Conv2dInt8>(src, src_signed, src_zero_point, weights, dst, stride,
                                      pad_l, pad_r, dilation, requant);
}

std::unique_ptr<Op> dense_int8(const Desc& src, bool src_signed, bool src_zero_point,
                               const Desc& weights, const Desc& dst, const Requant* requant) {
  return std::make_unique<DenseInt8>(src, src_signed, src_zero_point, weights, dst, requant);
}

std::unique_ptr<Op> pooling(PoolKind kind, const Desc& src, const Desc& dst,
                            const int64_t* kernel, const int64_t* stride, const int64_t* pad_l,
                            const int64_t* pad_r, const int64_t* dilation) {
  return std::make_unique<Pooling>(kind, src, dst, kernel, stride, pad_l, pad_r, dilation);
}

std::unique_ptr<Op> resampling(bool linear, const Desc& src, const Desc& dst) {
  return std::make_unique<Resampling>(linear, src, dst);
}

std::unique_ptr<Op> reduce_mean(const Desc& src, const Desc& dst) {
  return std::make_unique<ReduceMean>(src, dst);
}

std::unique_ptr<Op> binary(int kind, const Desc& src0, const Desc& src1, const Desc& dst,
                           const PostOp* post, int n_post) {
  return std::make_unique<Binary>(kind, src0, src1, dst, post, n_post);
}

std::unique_ptr<Op> reorder(const Desc& src, const Desc& dst) {
  return std::make_unique<Reorder>(src, dst);
}

std::unique_ptr<Op> softmax(const Desc& src, const Desc& dst, int axis, bool log) {
  return std::make_unique<Softmax>(src, dst, axis, log);
}

std::unique_ptr<Op> layer_norm(const Desc& src, const Desc& dst, float epsilon) {
  return std::make_unique<LayerNorm>(src, dst, epsilon);
}

namespace {

// The ops of a dynamic composite, by the values of its symbolic dims, most recently
// used first.
class OpCache {
 public:
  OpCache() {
    const char* bound = std::getenv("TVMEXT_DNNL_OP_CACHE_SIZE");
    capacity_ = bound != nullptr && std::atoi(bound) > 0 ? static_cast<size_t>(std::atoi(bound))
                                                         : kDefaultOpCacheSize;
  }

  // The op for ``values``, made by ``spec.make`` if it is not cached (shared: a call that
  // is running keeps its op when another call evicts it).
  std::shared_ptr<Op> get(const CompositeSpec& spec, std::vector<int64_t> values) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == values) {
        entries_.splice(entries_.begin(), entries_, it);
        return entries_.front().second;
      }
    }
    std::shared_ptr<Op> op(spec.make(values.data()));
    entries_.emplace_front(std::move(values), op);
    if (entries_.size() > capacity_) entries_.pop_back();
    return op;
  }

 private:
  size_t capacity_;
  std::mutex mutex_;
  std::list<std::pair<std::vector<int64_t>, std::shared_ptr<Op>>> entries_;
};

}  // namespace

struct Composite::State {
  explicit State(const CompositeSpec& spec) : spec(spec) {}

  // The op for the dims ``values`` (none for a composite of fixed shapes).
  std::shared_ptr<Op> op(std::vector<int64_t> values) {
    if (spec.n_dims > 0) return cache.get(spec, std::move(values));
    // Made under the lock, once; a failure is retried by the next call.
    std::lock_guard<std::mutex> lock(mutex);
    if (!fixed) fixed = spec.make(nullptr);
    return fixed;
  }

  const CompositeSpec spec;
  std::mutex mutex;
  std::shared_ptr<Op> fixed;
  OpCache cache;
  std::string implementation;
};

Composite::Composite(const CompositeSpec& spec) : state_(std::make_unique<State>(spec)) {}

Composite::~Composite() = default;

int Composite::call(const TVMFFIAny* args, int32_t num_args) noexcept {
  const CompositeSpec& spec = state_->spec;
  TVM_FFI_SAFE_CALL_BEGIN();
  auto name = [&spec] {  // for errors only: a call builds no string
    return std::string("oneDNN ") + spec.composite + " (" + spec.symbol + "): ";
  };
  if (num_args != spec.n_args) {
    TVM_FFI_THROW(TypeError) << name() << num_args << " arguments, expected " << spec.n_args;
  }
  const auto* any = reinterpret_cast<const tvm::ffi::AnyView*>(args);
  std::vector<int64_t> values(spec.n_dims);
  std::vector<void*> buffers(spec.n_op_args);
  try {
    for (int i = 0; i < spec.n_dims; ++i) {
      const DimSource& d = spec.dims[i];
      values[i] = d.from_shape ? any[d.arg].cast<tvm::ffi::Shape>()[d.axis]
                               : any[d.arg].cast<tvm::ffi::TensorView>().shape()[d.axis];
    }
    for (int i = 0; i < spec.n_op_args; ++i) {
      tvm::ffi::TensorView t = any[spec.op_args[i]].cast<tvm::ffi::TensorView>();
      buffers[i] = static_cast<char*>(t.data_ptr()) + t.byte_offset();
    }
  } catch (const tvm::ffi::Error& err) {
    TVM_FFI_THROW(TypeError) << name() << err.message();
  }
  try {
    state_->op(std::move(values))->run(buffers.data());
  } catch (const std::exception& err) {
    TVM_FFI_THROW(RuntimeError) << name() << err.what();
  }
  TVM_FFI_SAFE_CALL_END();
}

const char* Composite::implementation() noexcept {
  const CompositeSpec& spec = state_->spec;
  try {
    std::vector<int64_t> probe(spec.probe, spec.probe + spec.n_dims);
    state_->implementation = state_->op(std::move(probe))->implementation();
  } catch (const std::exception& err) {
    state_->implementation = std::string("error: ") + err.what();
  }
  return state_->implementation.c_str();
}

}  // namespace tvmext_dnnl
