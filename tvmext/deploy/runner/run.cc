// run: the inference application of `tvmext compile --emit-app DIR` (and
// tvmext.Module.export_app), a native program that needs no Python.
//
// It loads model.so from its own folder with TVM's runtime (lib/libtvm_runtime.so,
// lib/libtvm_ffi.so, found through the RPATH $ORIGIN/lib), reads the inputs' names,
// shapes and dtypes from the model's tvmext_signature function (JSON), checks the given
// inputs against them or makes random ones, runs main and writes or summarizes the
// outputs the way tvmext.Module.run returns them: nested tuples flattened, shapes as
// int64 arrays, named output_0, output_1, ... It uses the tvm-ffi C++ API only (TVM's
// runtime/vm headers need files the wheel does not ship).
#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/shape.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/extra/json.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include "npy.h"

namespace ffi = tvm::ffi;

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kAllocatorPooled = 2;  // the Relax VM's pooled allocator, as tvmext.load uses
constexpr int kSummaryValues = 6;

const char kUsage[] =
    R"(usage: run [--inputs IN.npz | --input NAME=FILE.npy ...] [--params WEIGHTS.npz]
           [--outputs OUT.npz] [--print-time] [--repeat N] [--help]

Runs the model compiled into model.so (in this program's folder) on the CPU, without
Python. Inputs are checked against the names, shapes and dtypes the model was compiled
for; a mismatch is one line naming the input, the expected and the given shape (exit 1).

  --inputs IN.npz       one array per input name (as np.savez writes it: stored entries;
                        np.savez_compressed archives are refused)
  --input NAME=FILE.npy the input NAME from a .npy file (repeat for every input)
                        Without --inputs or --input, inputs are random, of the model's
                        shapes: floats standard normal, integers 0 to 9, bools 0 or 1.
  --params WEIGHTS.npz  the weights of a model compiled with --keep-params-in-input
                        (default: params.npz beside this program, when there)
  --outputs OUT.npz     write the outputs as output_0, output_1, ... (np.load reads it);
                        without it, print each output's shape, dtype, mean and first values
  --print-time          time main: mean, median, max, min and std per call, in ms
  --repeat N            timed calls for --print-time (default 10), after one warm-up call
  --help                this help, and the model's inputs

Dtypes: float16/32/64, int8/16/32/64, uint8/16/32/64, bool; little-endian, C order.
Threads: TVM_NUM_THREADS (default: the physical cores this process may run on).
Exit status: 0 success, 1 an input, a file or the model failed (one line on stderr),
2 a usage error.
)";

// A problem the user can fix: printed as one line, exit status 1.
struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DType {
  const char* name;   // as in tvmext_signature (NumPy's names)
  const char* descr;  // .npy dtype string, without its byte-order character
  DLDataType dl;
};

const DType kDTypes[] = {
    {"float32", "f4", {kDLFloat, 32, 1}}, {"float64", "f8", {kDLFloat, 64, 1}},
    {"float16", "f2", {kDLFloat, 16, 1}}, {"int8", "i1", {kDLInt, 8, 1}},
    {"int16", "i2", {kDLInt, 16, 1}},     {"int32", "i4", {kDLInt, 32, 1}},
    {"int64", "i8", {kDLInt, 64, 1}},     {"uint8", "u1", {kDLUInt, 8, 1}},
    {"uint16", "u2", {kDLUInt, 16, 1}},   {"uint32", "u4", {kDLUInt, 32, 1}},
    {"uint64", "u8", {kDLUInt, 64, 1}},   {"bool", "b1", {kDLBool, 8, 1}},
};

const DType* DTypeByName(const std::string& name) {
  for (const DType& d : kDTypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const DType* DTypeByDL(DLDataType dl) {
  for (const DType& d : kDTypes) {
    if (d.dl.code == dl.code && d.dl.bits == dl.bits && d.dl.lanes == dl.lanes) return &d;
  }
  return nullptr;
}

// The dtype of a .npy descr ("<f4", "|b1"); nullptr if not one of kDTypes.
const DType* DTypeByDescr(const std::string& descr, const std::string& where) {
  if (descr.size() < 2) return nullptr;
  std::string code = descr.substr(1);
  if (descr[0] == '>' && code.back() != '1') {
    throw UserError("'" + where + "' is big-endian (" + descr +
                    "); save it little-endian (arr.astype(arr.dtype.newbyteorder('<')))");
  }
  for (const DType& d : kDTypes) {
    if (code == d.descr) return &d;
  }
  return nullptr;
}

// One dimension of a signature shape: a number, or a symbol shared between inputs
// (with the bound the model was compiled for, if any).
struct Dim {
  int64_t value = -1;
  std::string symbol;
  int64_t low = 0;
  int64_t high = INT64_MAX;
};

// An input or weight of the model, from tvmext_signature.
struct Spec {
  std::string name;
  bool any_shape = false;  // the signature knows not even the rank
  std::vector<Dim> dims;
  std::string dtype;  // empty when unknown
};

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string ShapeText(const Spec& spec) {
  if (spec.any_shape) return "?";
  std::string s = "[";
  for (size_t i = 0; i < spec.dims.size(); ++i) {
    const Dim& d = spec.dims[i];
    s += (i ? ", " : "") + (d.symbol.empty() ? std::to_string(d.value) : d.symbol);
  }
  return s + "]";
}

std::string Join(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
  return s.empty() ? "none" : s;
}

std::vector<Spec> ReadSpecs(const ffi::json::Object& signature, const char* key) {
  std::vector<Spec> specs;
  if (signature.count(key) == 0) return specs;
  ffi::json::Object bounds;
  if (signature.count("shape_bounds") != 0) {
    bounds = signature.at("shape_bounds").cast<ffi::json::Object>();
  }
  for (const ffi::Any& item : signature.at(key).cast<ffi::json::Array>()) {
    ffi::json::Object obj = item.cast<ffi::json::Object>();
    Spec spec;
    spec.name = obj.at("name").cast<ffi::String>();
    spec.dtype = obj.at("dtype").cast<ffi::String>();
    ffi::Any shape = obj.at("shape");
    spec.any_shape = shape == nullptr;
    if (!spec.any_shape) {
      for (const ffi::Any& d : shape.cast<ffi::json::Array>()) {
        Dim dim;
        if (d.type_index() == ffi::TypeIndex::kTVMFFIInt) {
          dim.value = d.cast<int64_t>();
        } else {
          dim.symbol = d.cast<ffi::String>();
          if (bounds.count(dim.symbol) != 0) {
            ffi::json::Array bound = bounds.at(dim.symbol).cast<ffi::json::Array>();
            dim.low = bound[0].cast<int64_t>();
            dim.high = bound[1].cast<int64_t>();
          }
        }
        spec.dims.push_back(dim);
      }
    }
    specs.push_back(spec);
  }
  return specs;
}

// Tensors the runner allocates: 64-byte aligned, as TVM's own CPU allocator does.
struct AlignedAlloc {
  void AllocData(DLTensor* t) {
    size_t bytes = (ffi::GetDataSize(*t) + 63) / 64 * 64;
    t->data = std::aligned_alloc(64, bytes ? bytes : 64);
    if (t->data == nullptr) throw std::bad_alloc();
  }
  void FreeData(DLTensor* t) { std::free(t->data); }
};

ffi::Tensor Empty(const std::vector<int64_t>& shape, DLDataType dtype) {
  return ffi::Tensor::FromNDAlloc(AlignedAlloc(), ffi::Shape(shape), dtype, DLDevice{kDLCPU, 0});
}

// Checks a given array's dtype and shape against `spec`; `symbols` binds symbolic dims
// across the inputs of one call.
void Check(const Spec& spec, const DType* given, const std::string& given_descr,
           const std::vector<int64_t>& shape, std::map<std::string, int64_t>* symbols,
           const char* what) {
  bool fits = spec.dtype.empty() || (given != nullptr && spec.dtype == given->name);
  if (fits && !spec.any_shape) {
    fits = shape.size() == spec.dims.size();
    for (size_t i = 0; fits && i < shape.size(); ++i) {
      const Dim& d = spec.dims[i];
      if (d.symbol.empty()) {
        fits = d.value == shape[i];
      } else {
        fits = symbols->emplace(d.symbol, shape[i]).first->second == shape[i];
      }
    }
  }
  if (!fits) {
    std::string expected = (spec.dtype.empty() ? "any dtype" : spec.dtype) + " of " +
                           (spec.any_shape ? "any shape" : "shape " + ShapeText(spec));
    std::string got = (given ? std::string(given->name) : "dtype '" + given_descr + "'") +
                      " of shape " + ShapeText(shape);
    throw UserError(std::string(what) + " '" + spec.name + "': expected " + expected + ", got " +
                    got);
  }
  for (size_t i = 0; !spec.any_shape && i < shape.size(); ++i) {
    const Dim& d = spec.dims[i];
    if (!d.symbol.empty() && (shape[i] < d.low || shape[i] > d.high)) {
      throw UserError(std::string(what) + " '" + spec.name + "': dim " + std::to_string(i) +
                      " (" + d.symbol + ") is " + std::to_string(shape[i]) +
                      ", outside the bound " + d.symbol + "=" + std::to_string(d.low) + ".." +
                      std::to_string(d.high) + " the model was compiled for");
    }
  }
}

ffi::Tensor Load(const npy::Entry& entry, const Spec& spec,
                 std::map<std::string, int64_t>* symbols, const char* what) {
  npy::Header header = npy::ReadHeader(entry);
  const DType* dtype = DTypeByDescr(header.descr, entry.where);
  Check(spec, dtype, header.descr, header.shape, symbols, what);
  if (dtype == nullptr) {  // the model takes any dtype, but not this one
    throw UserError("'" + entry.where + "' has dtype '" + header.descr +
                    "'; the runner reads float16/32/64, int8/16/32/64, uint8/16/32/64 and bool");
  }
  // The header's shape must fit the bytes the entry holds before anything is allocated:
  // a corrupt header must not overflow the size or allocate more than the file has.
  uint64_t bytes = (dtype->dl.bits * dtype->dl.lanes + 7) / 8;
  for (int64_t dim : header.shape) {
    if (dim < 0 || (dim != 0 && bytes > UINT64_MAX / static_cast<uint64_t>(dim))) {
      throw UserError("'" + entry.where + "': shape " + ShapeText(header.shape) +
                      " in its header is not a valid array size");
    }
    bytes *= static_cast<uint64_t>(dim);
  }
  if (header.data_offset > entry.size || bytes > entry.size - header.data_offset) {
    throw UserError("'" + entry.where + "': shape " + ShapeText(header.shape) + " needs " +
                    std::to_string(bytes) + " bytes of data, it holds " +
                    std::to_string(entry.size - std::min(entry.size, header.data_offset)));
  }
  ffi::Tensor tensor = Empty(header.shape, dtype->dl);
  npy::ReadData(entry, header, tensor.data_ptr(), ffi::GetDataSize(tensor));
  return tensor;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, mantissa = x & 0x7FFFFF;
  int exponent = static_cast<int>((x >> 23) & 0xFF) - 127 + 15;
  if (exponent <= 0) return static_cast<uint16_t>(sign);  // underflow to zero
  if (exponent >= 31) return static_cast<uint16_t>(sign | 0x7C00);
  uint32_t half = sign | (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
  uint32_t rest = mantissa & 0x1FFF;  // round to nearest, ties to even
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;
  return static_cast<uint16_t>(half);
}

double HalfToDouble(uint16_t h) {
  int exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  if (exponent == 31) return mantissa ? NAN : sign * INFINITY;
  return sign * std::ldexp(mantissa + 1024, exponent - 25);
}

ffi::Tensor Random(const Spec& spec, std::mt19937_64* gen) {
  const DType* dtype = DTypeByName(spec.dtype);
  bool known = !spec.any_shape && dtype != nullptr;
  std::vector<int64_t> shape;
  for (const Dim& d : spec.dims) {
    known = known && d.symbol.empty();
    shape.push_back(d.value);
  }
  if (!known) {
    std::string why = dtype == nullptr && !spec.dtype.empty()
                          ? "has a dtype the runner has no random values for"
                          : "is not fully known (symbolic or unknown shape or dtype)";
    throw UserError("input '" + spec.name + "' (" + ShapeText(spec) + " " +
                    (spec.dtype.empty() ? "?" : spec.dtype) + ") " + why +
                    ": give inputs with --inputs or --input");
  }
  ffi::Tensor t = Empty(shape, dtype->dl);
  size_t n = static_cast<size_t>(t.numel());
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> digit(0, dtype->dl.code == kDLBool ? 1 : 9);
  void* p = t.data_ptr();
  for (size_t i = 0; i < n; ++i) {
    switch (dtype->dl.code) {
      case kDLFloat:
        if (dtype->dl.bits == 16) static_cast<uint16_t*>(p)[i] = FloatToHalf(normal(*gen));
        if (dtype->dl.bits == 32) static_cast<float*>(p)[i] = normal(*gen);
        if (dtype->dl.bits == 64) static_cast<double*>(p)[i] = normal(*gen);
        break;
      default: {  // integers and bools, little-endian: the low byte holds the digit
        std::memset(static_cast<char*>(p) + i * dtype->dl.bits / 8, 0, dtype->dl.bits / 8);
        static_cast<unsigned char*>(p)[i * dtype->dl.bits / 8] =
            static_cast<unsigned char>(digit(*gen));
      }
    }
  }
  return t;
}

double ValueAt(const void* data, DLDataType dtype, size_t i) {
  switch (dtype.code) {
    case kDLFloat:
      if (dtype.bits == 16) return HalfToDouble(static_cast<const uint16_t*>(data)[i]);
      if (dtype.bits == 32) return static_cast<const float*>(data)[i];
      return static_cast<const double*>(data)[i];
    case kDLInt:
      if (dtype.bits == 8) return static_cast<const int8_t*>(data)[i];
      if (dtype.bits == 16) return static_cast<const int16_t*>(data)[i];
      if (dtype.bits == 32) return static_cast<const int32_t*>(data)[i];
      return static_cast<double>(static_cast<const int64_t*>(data)[i]);
    case kDLUInt:
      if (dtype.bits == 8) return static_cast<const uint8_t*>(data)[i];
      if (dtype.bits == 16) return static_cast<const uint16_t*>(data)[i];
      if (dtype.bits == 32) return static_cast<const uint32_t*>(data)[i];
      return static_cast<double>(static_cast<const uint64_t*>(data)[i]);
    default:  // bool
      return static_cast<const uint8_t*>(data)[i] != 0;
  }
}

// An output: a tensor the VM returned, or one the runner made for a shape or a scalar.
struct Output {
  ffi::Tensor tensor;
  const char* Data() const {
    return static_cast<const char*>(tensor.data_ptr()) + tensor.byte_offset();
  }
};

ffi::Tensor Scalar(DLDataType dtype, const void* value) {
  ffi::Tensor t = Empty({}, dtype);
  std::memcpy(t.data_ptr(), value, dtype.bits / 8);
  return t;
}

// Flattens a result as tvmext.Module.run does: tuples recursively, shapes as int64.
void Flatten(const ffi::Any& value, std::vector<Output>* out) {
  switch (value.type_index()) {
    case ffi::TypeIndex::kTVMFFITensor:
      out->push_back({value.cast<ffi::Tensor>()});
      return;
    case ffi::TypeIndex::kTVMFFIShape: {
      ffi::Shape shape = value.cast<ffi::Shape>();
      ffi::Tensor t = Empty({static_cast<int64_t>(shape.size())}, DLDataType{kDLInt, 64, 1});
      std::copy(shape.begin(), shape.end(), static_cast<int64_t*>(t.data_ptr()));
      out->push_back({t});
      return;
    }
    case ffi::TypeIndex::kTVMFFIArray:
      for (const ffi::Any& item : value.cast<ffi::Array<ffi::Any>>()) Flatten(item, out);
      return;
    case ffi::TypeIndex::kTVMFFIInt: {
      int64_t v = value.cast<int64_t>();
      out->push_back({Scalar(DLDataType{kDLInt, 64, 1}, &v)});
      return;
    }
    case ffi::TypeIndex::kTVMFFIFloat: {
      double v = value.cast<double>();
      out->push_back({Scalar(DLDataType{kDLFloat, 64, 1}, &v)});
      return;
    }
    case ffi::TypeIndex::kTVMFFIBool: {
      uint8_t v = value.cast<bool>();
      out->push_back({Scalar(DLDataType{kDLBool, 8, 1}, &v)});
      return;
    }
    default:
      throw UserError("the model returned a value of type " + value.GetTypeKey() +
                      ", which has no array form");
  }
}

std::vector<int64_t> ShapeOf(const ffi::Tensor& t) {
  ffi::ShapeView s = t.shape();
  return std::vector<int64_t>(s.begin(), s.end());
}

// The physical cores (distinct package and core ids) among the CPUs this process may
// run on, as tvmext.runtime.cpu_threads counts them: TVM's default of half the logical
// CPUs leaves cores idle on machines without SMT.
int PhysicalCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  std::set<std::string> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    std::string topology = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream package(topology + "physical_package_id"), core(topology + "core_id");
    std::string p, c;
    if (package >> p && core >> c) {
      cores.insert(p + ":" + c);
    } else {
      cores.insert("cpu" + std::to_string(cpu));
    }
  }
  return std::max<int>(1, static_cast<int>(cores.size()));
}

// Points fd 2 at a temporary file while the model loads, then passes on every line but
// TVM's per-scope "Warning: Scope Loaded:" log, which tells a user nothing.
class QuietLoad {
 public:
  QuietLoad() {
    std::fflush(stderr);
    captured_ = std::tmpfile();
    if (captured_ == nullptr) return;  // no writable temporary folder: show everything
    saved_ = dup(2);
    dup2(fileno(captured_), 2);
  }
  ~QuietLoad() {
    if (captured_ == nullptr) return;
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    std::rewind(captured_);
    char line[4096];
    while (std::fgets(line, sizeof(line), captured_) != nullptr) {
      if (std::strstr(line, "executable.cc:") && std::strstr(line, "Warning: Scope ")) continue;
      std::fputs(line, stderr);
    }
    std::fclose(captured_);
  }

 private:
  FILE* captured_ = nullptr;
  int saved_ = -1;
};

std::string ProgramFolder() {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) throw UserError("cannot find this program's folder (/proc/self/exe)");
  path[n] = '\0';
  std::string s(path);
  return s.substr(0, s.rfind('/'));
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

struct Options {
  std::string inputs;
  std::vector<std::pair<std::string, std::string>> input_files;
  std::string params;
  std::string outputs;
  bool print_time = false;
  bool help = false;
  int repeat = 10;
};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    size_t eq = arg.find('=');
    bool inline_value = arg.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inline_value) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    auto take = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else if (arg == "--print-time") {
      o.print_time = true;
    } else if (arg == "--inputs") {
      o.inputs = take();
    } else if (arg == "--input") {
      std::string pair = take();
      size_t at = pair.find('=');
      if (at == std::string::npos || at == 0 || at + 1 == pair.size()) {
        throw UsageError("--input takes NAME=FILE.npy, got '" + pair + "'");
      }
      o.input_files.emplace_back(pair.substr(0, at), pair.substr(at + 1));
    } else if (arg == "--params") {
      o.params = take();
    } else if (arg == "--outputs") {
      o.outputs = take();
    } else if (arg == "--repeat") {
      std::string text = take();
      char* end = nullptr;
      long n = std::strtol(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || n < 1 || n > 1000000000) {
        throw UsageError("--repeat takes a whole number of at least 1, got '" + text + "'");
      }
      o.repeat = static_cast<int>(n);
    } else {
      throw UsageError("unknown argument '" + std::string(argv[i]) + "'");
    }
  }
  if (!o.inputs.empty() && !o.input_files.empty()) {
    throw UsageError("give inputs either as --inputs FILE.npz or as --input NAME=FILE.npy");
  }
  return o;
}

std::vector<std::string> Names(const std::vector<Spec>& specs) {
  std::vector<std::string> names;
  for (const Spec& s : specs) names.push_back(s.name);
  return names;
}

// The arrays `specs` names from an .npz archive; `what` (input or weight) words errors.
std::vector<ffi::Tensor> FromNpz(const std::string& path, const std::vector<Spec>& specs,
                                 const char* what) {
  if (!Exists(path)) throw UserError(std::string(what) + "s file '" + path + "' does not exist");
  std::map<std::string, npy::Entry> entries = npy::ReadNpz(path);
  std::vector<std::string> missing, held;
  for (const Spec& s : specs) {
    if (entries.count(s.name) == 0) missing.push_back(s.name);
  }
  if (!missing.empty()) {
    for (const auto& e : entries) held.push_back(e.first);
    throw UserError(std::string(what) + "s file '" + path + "' lacks " + what + "(s) " +
                    Join(missing) + "; it holds " + Join(held));
  }
  std::map<std::string, int64_t> symbols;
  std::vector<ffi::Tensor> tensors;
  for (const Spec& s : specs) tensors.push_back(Load(entries.at(s.name), s, &symbols, what));
  return tensors;
}

std::vector<ffi::Tensor> FromNpyFiles(const Options& o, const std::vector<Spec>& specs) {
  std::map<std::string, std::string> files;
  std::set<std::string> names;
  for (const Spec& s : specs) names.insert(s.name);
  for (const auto& [name, file] : o.input_files) {
    if (names.count(name) == 0) {
      throw UserError("unknown input '" + name + "'; inputs are " + Join(Names(specs)));
    }
    if (!files.emplace(name, file).second) throw UserError("input '" + name + "' given twice");
  }
  std::vector<std::string> missing;
  for (const Spec& s : specs) {
    if (files.count(s.name) == 0) missing.push_back(s.name);
  }
  if (!missing.empty()) {
    throw UserError("missing input(s) " + Join(missing) +
                    ": give every input with --input NAME=FILE.npy, or all with --inputs");
  }
  std::map<std::string, int64_t> symbols;
  std::vector<ffi::Tensor> tensors;
  for (const Spec& s : specs) {
    const std::string& file = files.at(s.name);
    if (!Exists(file)) throw UserError("input file '" + file + "' does not exist");
    tensors.push_back(Load(npy::NpyFile(file), s, &symbols, "input"));
  }
  return tensors;
}

ffi::Function Get(const ffi::Module& vm, const char* name, const std::string& model) {
  ffi::Optional<ffi::Function> f = vm->GetFunction(name);
  if (!f.has_value()) {
    throw UserError("'" + model + "' has no function '" + name +
                    "': it is not an artifact of tvmext compile");
  }
  return *f;
}

ffi::Any Call(const ffi::Function& f, const std::vector<ffi::Any>& args) {
  std::vector<ffi::AnyView> views(args.begin(), args.end());
  ffi::Any result;
  f.CallPacked(views.data(), static_cast<int32_t>(views.size()), &result);
  return result;
}

void PrintSummary(const std::vector<Output>& outputs) {
  std::printf("%zu output(s):\n", outputs.size());
  for (size_t k = 0; k < outputs.size(); ++k) {
    const ffi::Tensor& t = outputs[k].tensor;
    const DType* dtype = DTypeByDL(t.dtype());
    size_t n = static_cast<size_t>(t.numel());
    std::printf("  output_%zu: %s %s", k, ShapeText(ShapeOf(t)).c_str(),
                dtype ? dtype->name : "?");
    if (dtype == nullptr || n == 0) {
      std::printf("\n");
      continue;
    }
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += ValueAt(outputs[k].Data(), t.dtype(), i);
    std::printf("  mean %.6g  values", sum / static_cast<double>(n));
    for (size_t i = 0; i < n && i < static_cast<size_t>(kSummaryValues); ++i) {
      std::printf(" %.6g", ValueAt(outputs[k].Data(), t.dtype(), i));
    }
    std::printf("%s\n", n > static_cast<size_t>(kSummaryValues) ? " ..." : "");
  }
}

void WriteOutputs(const std::string& path, const std::vector<Output>& outputs) {
  std::vector<npy::Member> members;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const ffi::Tensor& t = outputs[k].tensor;
    const DType* dtype = DTypeByDL(t.dtype());
    if (dtype == nullptr) {
      throw UserError("output_" + std::to_string(k) + " has dtype " +
                      std::string(ffi::DLDataTypeToString(t.dtype())) + ", which .npy cannot hold");
    }
    if (!t.IsContiguous()) throw UserError("output_" + std::to_string(k) + " is not contiguous");
    std::string descr = std::string(dtype->dl.bits == 8 ? "|" : "<") + dtype->descr;
    members.push_back({"output_" + std::to_string(k), descr, ShapeOf(t), outputs[k].Data(),
                       ffi::GetDataSize(t)});
  }
  npy::WriteNpz(path, members);
}

void PrintTime(const ffi::Function& main_fn, const std::vector<ffi::Any>& args, int repeat) {
  Call(main_fn, args);  // warm-up: the first call also sets up the thread pool and pools
  std::vector<double> ms;
  for (int i = 0; i < repeat; ++i) {
    auto start = std::chrono::steady_clock::now();
    Call(main_fn, args);
    auto stop = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  size_t n = sorted.size();
  double median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  double mean = 0, var = 0;
  for (double v : ms) mean += v / static_cast<double>(n);
  for (double v : ms) var += (v - mean) * (v - mean) / static_cast<double>(n);
  std::printf("Execution time summary (%d calls):\n", repeat);
  std::printf(" %10s %12s %10s %10s %10s\n", "mean (ms)", "median (ms)", "max (ms)", "min (ms)",
              "std (ms)");
  std::printf(" %10.4f %12.4f %10.4f %10.4f %10.4f\n", mean, median, sorted.back(), sorted[0],
              std::sqrt(var));
}

ffi::Module LoadVm(const std::string& model) {
  QuietLoad quiet;
  ffi::Module library = ffi::Module::LoadFromFile(model);
  ffi::Optional<ffi::Function> load = library->GetFunction("vm_load_executable");
  if (!load.has_value()) {
    throw UserError("'" + model + "' holds no Relax VM executable (vm_load_executable)");
  }
  return (*load)().cast<ffi::Module>();
}

std::string SpecText(const Spec& s) {
  return s.name + ": " + ShapeText(s) + " " + (s.dtype.empty() ? "?" : s.dtype);
}

int Run(const Options& o) {
  std::string folder = ProgramFolder();
  std::string model = folder + "/model.so";
  if (!Exists(model)) throw UserError("model '" + model + "' does not exist");
  // Before TVM's thread pool starts (at the first parallel kernel); the user's wins.
  setenv("TVM_NUM_THREADS", std::to_string(PhysicalCores()).c_str(), 0);
  setenv("TVM_BIND_THREADS", "0", 0);  // pinned workers contend with oneDNN's OpenMP team
  ffi::Module vm = LoadVm(model);
  Get(vm, "vm_initialization", model)(static_cast<int>(kDLCPU), 0, kAllocatorPooled);
  std::string text = Get(vm, "tvmext_signature", model)().cast<ffi::String>();
  ffi::json::Object signature = ffi::json::Parse(text).cast<ffi::json::Object>();
  std::vector<Spec> inputs = ReadSpecs(signature, "inputs");
  std::vector<Spec> params = ReadSpecs(signature, "params");
  if (o.help) {
    std::fputs(kUsage, stdout);
    std::printf("\nThis model (%s):\n", model.c_str());
    for (const Spec& s : inputs) std::printf("  input  %s\n", SpecText(s).c_str());
    for (const Spec& s : params) std::printf("  weight %s\n", SpecText(s).c_str());
    return 0;
  }

  std::vector<ffi::Any> args;
  if (!o.inputs.empty()) {
    for (ffi::Tensor& t : FromNpz(o.inputs, inputs, "input")) args.emplace_back(t);
  } else if (!o.input_files.empty()) {
    for (ffi::Tensor& t : FromNpyFiles(o, inputs)) args.emplace_back(t);
  } else {
    std::mt19937_64 gen(0);
    std::vector<std::string> described;
    for (const Spec& s : inputs) {
      args.emplace_back(Random(s, &gen));
      described.push_back(SpecText(s));
    }
    std::printf("random inputs: %s\n", Join(described).c_str());
  }
  if (!params.empty()) {
    std::string file = !o.params.empty()                     ? o.params
                       : Exists(folder + "/params.npz") ? folder + "/params.npz"
                                                              : "";
    if (file.empty()) {
      throw UserError("the model takes its weights at run time (" + Join(Names(params)) +
                      "): pass them with --params FILE.npz");
    }
    ffi::Array<ffi::Any> weights;
    for (ffi::Tensor& t : FromNpz(file, params, "weight")) weights.push_back(t);
    ffi::Any converted = Get(vm, "main_transform_params", model)(weights);
    for (const ffi::Any& w : converted.cast<ffi::Array<ffi::Any>>()) args.push_back(w);
  } else if (!o.params.empty()) {
    throw UserError("the model takes no weights at run time (it was compiled without "
                    "--keep-params-in-input); drop --params");
  }

  ffi::Function main_fn = Get(vm, "main", model);
  std::vector<Output> outputs;
  Flatten(Call(main_fn, args), &outputs);
  if (!o.outputs.empty()) {
    WriteOutputs(o.outputs, outputs);
    std::printf("wrote %zu output(s) to %s\n", outputs.size(), o.outputs.c_str());
  } else {
    PrintSummary(outputs);
  }
  if (o.print_time) PrintTime(main_fn, args, o.repeat);
  return 0;
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

int main(int argc, char** argv) {
  std::string program = argc > 0 ? argv[0] : "run";
  program = program.substr(program.rfind('/') + 1);
  Options options;
  try {
    options = Parse(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: usage error: %s (see %s --help)\n", program.c_str(), e.what(),
                 program.c_str());
    return kExitUsage;
  }
  try {
    return Run(options);
  } catch (const ffi::Error& e) {
    std::fprintf(stderr, "%s: error: %s: %s\n", program.c_str(), e.kind().c_str(),
                 FirstLine(e.message()).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", program.c_str(), FirstLine(e.what()).c_str());
  }
  return kExitError;
}
