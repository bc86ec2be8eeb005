// oneDNN implementations of the ops declared in tvmext_dnnl/ops.h.
#include "tvmext_dnnl/ops.h"

#include <dlfcn.h>
#include <dnnl.hpp>

#include <cstdlib>
#include <mutex>
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

memory::desc md(const Desc& d) {
  memory::dims dims(d.dims, d.dims + d.ndim), strides(d.strides, d.strides + d.ndim);
  return memory::desc(dims, dt::f32, strides);
}

memory::desc any_md(const Desc& d) {
  return memory::desc(memory::dims(d.dims, d.dims + d.ndim), dt::f32, memory::format_tag::any);
}

memory::dims two(const int64_t v[2]) { return {v[0], v[1]}; }

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

// Post-ops as a primitive attribute, plus the memory descriptors of binary inputs.
dnnl::primitive_attr attr_with(const PostOp* post, int n_post, std::vector<int>* binary_index) {
  dnnl::post_ops ops;
  for (int i = 0; i < n_post; ++i) {
    const PostOp& p = post[i];
    if (p.kind == kAdd || p.kind == kMul) {
      auto alg = p.kind == kAdd ? dnnl::algorithm::binary_add : dnnl::algorithm::binary_mul;
      ops.append_binary(alg, md(p.src1));
      binary_index->push_back(i);
    } else {
      ops.append_eltwise(eltwise_algorithm(p.kind), p.alpha, p.beta);
    }
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  return attr;
}

// Weights reordered once into the layout a primitive prefers, keyed by the buffer.
class PackedWeights {
 public:
  void* get(const memory::desc& user, const memory::desc& wanted, void* data) {
    if (user == wanted) return data;
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = packed_.find(data);
    if (found != packed_.end()) return found->second.get_data_handle();
    memory src(user, cpu_engine(), data), dst(wanted, cpu_engine());
    dnnl::reorder(src, dst).execute(cpu_stream(), src, dst);
    cpu_stream().wait();
    packed_.emplace(data, dst);
    return dst.get_data_handle();
  }

 private:
  std::mutex mutex_;
  std::unordered_map<void*, memory> packed_;
};

// A primitive with its memories; run() points them at the call's buffers.
class PrimitiveOp : public Op {
 public:
  void run(void* const* args) override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < slots_.size(); ++i) {
      void* data = args[i];
      if (i == packed_slot_) data = packed_.get(packed_user_, slots_[i].second.get_desc(), data);
      slots_[i].second.set_data_handle(data);
    }
    execute_args_.clear();
    for (auto& slot : slots_) execute_args_.insert(slot);
    primitive_.execute(cpu_stream(), execute_args_);
    cpu_stream().wait();
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
  void add_post_op_inputs(const PostOp* post, const std::vector<int>& binary_index) {
    for (int i : binary_index) add(DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1, md(post[i].src1));
  }
  dnnl::primitive primitive_;

 private:
  std::mutex mutex_;
  std::vector<std::pair<int, memory>> slots_;
  std::unordered_map<int, memory> execute_args_;
  size_t packed_slot_ = static_cast<size_t>(-1);
  memory::desc packed_user_;
  PackedWeights packed_;
};

class Conv2d : public PrimitiveOp {
 public:
  Conv2d(const Desc& src, const Desc& weights, const Desc* bias, const Desc& dst,
         const int64_t stride[2], const int64_t pad_l[2], const int64_t pad_r[2],
         const int64_t dilation[2], const PostOp* post, int n_post) {
    std::vector<int> binary;
    auto attr = attr_with(post, n_post, &binary);
    memory::dims dil = {dilation[0] - 1, dilation[1] - 1};
    auto prop = dnnl::prop_kind::forward_inference;
    auto alg = dnnl::algorithm::convolution_direct;
    dnnl::convolution_forward::primitive_desc pd =
        bias ? dnnl::convolution_forward::primitive_desc(
                   cpu_engine(), prop, alg, md(src), any_md(weights), md(*bias), md(dst),
                   two(stride), dil, two(pad_l), two(pad_r), attr)
             : dnnl::convolution_forward::primitive_desc(
                   cpu_engine(), prop, alg, md(src), any_md(weights), md(dst), two(stride), dil,
                   two(pad_l), two(pad_r), attr);
    primitive_ = dnnl::convolution_forward(pd);
    add(DNNL_ARG_SRC, pd.src_desc());
    add(DNNL_ARG_WEIGHTS, pd.weights_desc());
    pack(1, md(weights));
    if (bias) add(DNNL_ARG_BIAS, md(*bias));
    add_post_op_inputs(post, binary);
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

class MatMul : public PrimitiveOp {
 public:
  MatMul(const Desc& src, const Desc& weights, const Desc* bias, const Desc& dst,
         bool const_weights, const PostOp* post, int n_post) {
    std::vector<int> binary;
    auto attr = attr_with(post, n_post, &binary);
    auto wei = const_weights ? any_md(weights) : md(weights);
    dnnl::matmul::primitive_desc pd =
        bias ? dnnl::matmul::primitive_desc(cpu_engine(), md(src), wei, md(*bias), md(dst), attr)
             : dnnl::matmul::primitive_desc(cpu_engine(), md(src), wei, md(dst), attr);
    primitive_ = dnnl::matmul(pd);
    add(DNNL_ARG_SRC, pd.src_desc());
    add(DNNL_ARG_WEIGHTS, pd.weights_desc());
    if (const_weights) pack(1, md(weights));
    if (bias) add(DNNL_ARG_BIAS, md(*bias));
    add_post_op_inputs(post, binary);
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

class Pool2d : public PrimitiveOp {
 public:
  Pool2d(int kind, const Desc& src, const Desc& dst, const int64_t kernel[2],
         const int64_t stride[2], const int64_t pad_l[2], const int64_t pad_r[2],
         const int64_t dilation[2]) {
    auto alg = kind == 0   ? dnnl::algorithm::pooling_max
               : kind == 1 ? dnnl::algorithm::pooling_avg_include_padding
                           : dnnl::algorithm::pooling_avg_exclude_padding;
    memory::dims dil = {dilation[0] - 1, dilation[1] - 1};
    dnnl::pooling_forward::primitive_desc pd(
        cpu_engine(), dnnl::prop_kind::forward_inference, alg, md(src), md(dst), two(stride),
        two(kernel), dil, two(pad_l), two(pad_r));
    primitive_ = dnnl::pooling_forward(pd);
    add(DNNL_ARG_SRC, pd.src_desc());
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

class ReduceMean : public PrimitiveOp {
 public:
  ReduceMean(const Desc& src, const Desc& dst) {
    dnnl::reduction::primitive_desc pd(cpu_engine(), dnnl::algorithm::reduction_mean, md(src),
                                       md(dst), 0.f, 0.f);
    primitive_ = dnnl::reduction(pd);
    add(DNNL_ARG_SRC, pd.src_desc());
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

class Binary : public PrimitiveOp {
 public:
  Binary(int kind, const Desc& src0, const Desc& src1, const Desc& dst, const PostOp* post,
         int n_post) {
    std::vector<int> binary;
    auto attr = attr_with(post, n_post, &binary);
    auto alg = kind == kAdd ? dnnl::algorithm::binary_add : dnnl::algorithm::binary_mul;
    dnnl::binary::primitive_desc pd(cpu_engine(), alg, md(src0), md(src1), md(dst), attr);
    primitive_ = dnnl::binary(pd);
    add(DNNL_ARG_SRC_0, pd.src0_desc());
    add(DNNL_ARG_SRC_1, pd.src1_desc());
    add_post_op_inputs(post, binary);
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

class Reorder : public PrimitiveOp {
 public:
  Reorder(const Desc& src, const Desc& dst) {
    dnnl::reorder::primitive_desc pd(cpu_engine(), md(src), cpu_engine(), md(dst));
    primitive_ = dnnl::reorder(pd);
    add(DNNL_ARG_FROM, md(src));
    add(DNNL_ARG_TO, md(dst));
  }
};

class Softmax : public PrimitiveOp {
 public:
  Softmax(const Desc& src, const Desc& dst, int axis) {
    dnnl::softmax_forward::primitive_desc pd(cpu_engine(), dnnl::prop_kind::forward_inference,
                                             dnnl::algorithm::softmax_accurate, md(src), md(dst),
                                             axis);
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
    primitive_ = dnnl::layer_normalization_forward(pd);
    memory::desc channel({src.dims[src.ndim - 1]}, dt::f32, memory::format_tag::a);
    add(DNNL_ARG_SRC, pd.src_desc());
    add(DNNL_ARG_SCALE, channel);
    add(DNNL_ARG_SHIFT, channel);
    add(DNNL_ARG_DST, pd.dst_desc());
  }
};

}  // namespace

std::unique_ptr<Op> conv2d(const Desc& src, const Desc& weights, const Desc* bias,
                           const Desc& dst, const int64_t stride[2], const int64_t pad_l[2],
                           const int64_t pad_r[2], const int64_t dilation[2],
                           const PostOp* post, int n_post) {
  return std::make_unique<Conv2d>(src, weights, bias, dst, stride, pad_l, pad_r, dilation, post,
                                  n_post);
}

std::unique_ptr<Op> matmul(const Desc& src, const Desc& weights, const Desc* bias, const Desc& dst,
                           bool const_weights, const PostOp* post, int n_post) {
  return std::make_unique<MatMul>(src, weights, bias, dst, const_weights, post, n_post);
}

std::unique_ptr<Op> pool2d(int kind, const Desc& src, const Desc& dst, const int64_t kernel[2],
                           const int64_t stride[2], const int64_t pad_l[2],
                           const int64_t pad_r[2], const int64_t dilation[2]) {
  return std::make_unique<Pool2d>(kind, src, dst, kernel, stride, pad_l, pad_r, dilation);
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

std::unique_ptr<Op> softmax(const Desc& src, const Desc& dst, int axis) {
  return std::make_unique<Softmax>(src, dst, axis);
}

std::unique_ptr<Op> layer_norm(const Desc& src, const Desc& dst, float epsilon) {
  return std::make_unique<LayerNorm>(src, dst, epsilon);
}

}  // namespace tvmext_dnnl
