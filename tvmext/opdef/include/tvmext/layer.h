/*!
 * \file tvmext/layer.h
 * \brief Calling convention and checks for native tvmext layers (tvmext.native_op).
 *
 * A layer exports its functions with TVM_FFI_DLL_EXPORT_TYPED_FUNC(symbol, fn) and
 * takes tensors as tvm::ffi::TensorView, in destination-passing style:
 *
 *   forward(inputs..., outputs..., attrs...)
 *   backward(inputs..., outputs..., output_grads..., input_grads..., attrs...)
 *
 * Outputs and input gradients are preallocated by the caller (shapes from the op's
 * infer function); the layer writes them. Attributes arrive in the order of the
 * op's `attrs` mapping: float as double, int as int64_t, bool as bool.
 * Errors: TVMEXT_CHECK / TVM_FFI_THROW(ValueError) << "..."; they surface in Python
 * as exceptions carrying the message.
 */
#ifndef TVMEXT_LAYER_H_
#define TVMEXT_LAYER_H_

#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/function.h>

#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>

namespace tvmext {

using tvm::ffi::TensorView;

/*! \brief Throw ValueError(message) unless cond holds. */
#define TVMEXT_CHECK(cond, message)                                        \
  do {                                                                     \
    if (!(cond)) TVM_FFI_THROW(ValueError) << message;                     \
  } while (0)

/*! \brief Number of elements of a tensor. */
inline int64_t numel(const TensorView& t) {
  int64_t n = 1;
  for (int i = 0; i < t.ndim(); ++i) n *= t.size(i);
  return n;
}

/*! \brief The shape of a tensor as "[d0, d1, ...]". */
inline std::string shape_str(const TensorView& t) {
  std::ostringstream os;
  os << "[";
  for (int i = 0; i < t.ndim(); ++i) os << (i ? ", " : "") << t.size(i);
  os << "]";
  return os.str();
}

/*! \brief Check that `t` is a contiguous float32 tensor; `layer`/`name` go in the message. */
inline void check_float32(const TensorView& t, const char* layer, const char* name) {
  DLDataType dt = t.dtype();
  TVMEXT_CHECK(dt.code == kDLFloat && dt.bits == 32 && dt.lanes == 1,
               layer << ": input '" << name << "' must be float32");
  TVMEXT_CHECK(t.IsContiguous(), layer << ": input '" << name << "' must be contiguous");
}

/*! \brief Check the rank and (where not -1) the dimensions of `t`. */
inline void check_shape(const TensorView& t, std::initializer_list<int64_t> expected,
                        const char* layer, const char* name) {
  bool ok = t.ndim() == static_cast<int>(expected.size());
  int i = 0;
  for (int64_t d : expected) {
    if (ok && d >= 0 && t.size(i) != d) ok = false;
    ++i;
  }
  if (!ok) {
    std::ostringstream want;
    want << "[";
    i = 0;
    for (int64_t d : expected) want << (i++ ? ", " : "") << (d < 0 ? "?" : std::to_string(d));
    want << "]";
    TVM_FFI_THROW(ValueError) << layer << ": input '" << name << "' has shape " << shape_str(t)
                              << ", expected " << want.str();
  }
}

/*! \brief Check that two tensors have the same shape. */
inline void check_same_shape(const TensorView& a, const TensorView& b, const char* layer,
                             const char* name_a, const char* name_b) {
  bool ok = a.ndim() == b.ndim();
  for (int i = 0; ok && i < a.ndim(); ++i) ok = a.size(i) == b.size(i);
  TVMEXT_CHECK(ok, layer << ": '" << name_a << "' " << shape_str(a) << " and '" << name_b
                         << "' " << shape_str(b) << " must have the same shape");
}

}  // namespace tvmext

#endif  // TVMEXT_LAYER_H_
