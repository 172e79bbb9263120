// edgedistill runner: load a TensorRT engine (and the plugin library), read the bundle's manifest.tsv, run
// the inputs from a binary file, print the outputs and the latency. A starting point to copy into an app.
//
//   edgedistill_runner model.engine manifest.tsv inputs.bin [--plugin libplugin.so] [--iterations 100]
//
// inputs.bin holds every input of manifest.tsv, in its order, as raw little-endian values of its dtype and
// shape (the profile's opt shape). Uses the name-based tensor API (TensorRT 8.5 and later).
#include <NvInfer.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

class Logger : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override {
    if (severity <= Severity::kWARNING) std::cerr << "[TensorRT] " << msg << "\n";
  }
};

struct TensorSpec {
  bool is_input = false;
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;  // inputs only: the opt shape
};

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> dims;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, 'x');) dims.push_back(std::stoll(part));
  return dims;
}

std::vector<TensorSpec> read_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open manifest " + path);
  std::vector<TensorSpec> specs;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::vector<std::string> cols;
    std::stringstream row(line);
    for (std::string col; std::getline(row, col, '\t');) cols.push_back(col);
    if (cols.size() < 3) throw std::runtime_error("bad manifest line: " + line);
    TensorSpec spec;
    spec.is_input = cols[0] == "input";
    spec.name = cols[1];
    spec.dtype = cols[2];
    if (spec.is_input && cols.size() > 3) spec.shape = parse_shape(cols[3]);
    specs.push_back(spec);
  }
  return specs;
}

size_t element_size(nvinfer1::DataType type) {
  switch (type) {
    case nvinfer1::DataType::kFLOAT: return 4;
    case nvinfer1::DataType::kHALF: return 2;
    case nvinfer1::DataType::kINT32: return 4;
    case nvinfer1::DataType::kINT8: return 1;
    case nvinfer1::DataType::kBOOL: return 1;
    case nvinfer1::DataType::kUINT8: return 1;
#if NV_TENSORRT_MAJOR >= 10
    case nvinfer1::DataType::kINT64: return 8;
    case nvinfer1::DataType::kBF16: return 2;
#endif
    default: throw std::runtime_error("unsupported tensor data type");
  }
}

int64_t volume(const nvinfer1::Dims& dims) {
  int64_t n = 1;
  for (int i = 0; i < dims.nbDims; ++i) n *= dims.d[i];
  return n;
}

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Buffer {
  void* device = nullptr;
  size_t bytes = 0;
  ~Buffer() { if (device) cudaFree(device); }
};

void print_output(const std::string& name, nvinfer1::DataType type, const std::vector<char>& host, int64_t count) {
  std::cout << name << " (" << count << " values):";
  for (int64_t i = 0; i < std::min<int64_t>(count, 8); ++i) {
    if (type == nvinfer1::DataType::kFLOAT) std::cout << " " << reinterpret_cast<const float*>(host.data())[i];
    else if (type == nvinfer1::DataType::kINT32) std::cout << " " << reinterpret_cast<const int32_t*>(host.data())[i];
    else std::cout << " ?";
  }
  std::cout << (count > 8 ? " ..." : "") << "\n";
}

struct Args {
  std::string engine, manifest, inputs, plugin;
  int iterations = 100;
};

Args parse_args(int argc, char** argv) {
  if (argc < 4) throw std::runtime_error(
      "usage: edgedistill_runner ENGINE MANIFEST_TSV INPUTS_BIN [--plugin LIB.so] [--iterations N]");
  Args args{argv[1], argv[2], argv[3], "", 100};
  for (int i = 4; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    if (key == "--plugin") args.plugin = argv[i + 1];
    else if (key == "--iterations") args.iterations = std::max(1, std::stoi(argv[i + 1]));
    else throw std::runtime_error("unknown option " + key);
  }
  return args;
}

int run(const Args& args) {
  if (!args.plugin.empty() && !dlopen(args.plugin.c_str(), RTLD_NOW | RTLD_GLOBAL))
    throw std::runtime_error(std::string("cannot load plugin library: ") + dlerror());
  Logger logger;
  std::unique_ptr<nvinfer1::IRuntime> runtime(nvinfer1::createInferRuntime(logger));
  std::vector<char> plan = read_file(args.engine);
  std::unique_ptr<nvinfer1::ICudaEngine> engine(runtime->deserializeCudaEngine(plan.data(), plan.size()));
  if (!engine) throw std::runtime_error("cannot deserialise " + args.engine + " (built for another GPU or TensorRT?)");
  std::unique_ptr<nvinfer1::IExecutionContext> context(engine->createExecutionContext());
  std::vector<TensorSpec> specs = read_manifest(args.manifest);
  std::vector<char> inputs = read_file(args.inputs);

  std::vector<std::unique_ptr<Buffer>> buffers;
  size_t offset = 0;
  for (const TensorSpec& spec : specs) {
    if (!spec.is_input) continue;
    nvinfer1::Dims dims{};
    dims.nbDims = static_cast<int32_t>(spec.shape.size());
    for (size_t i = 0; i < spec.shape.size(); ++i) dims.d[i] = spec.shape[i];
    if (!context->setInputShape(spec.name.c_str(), dims))
      throw std::runtime_error("input " + spec.name + ": shape outside the engine's profile");
    auto buffer = std::make_unique<Buffer>();
    buffer->bytes = volume(dims) * element_size(engine->getTensorDataType(spec.name.c_str()));
    if (offset + buffer->bytes > inputs.size()) throw std::runtime_error("inputs file too short for " + spec.name);
    check_cuda(cudaMalloc(&buffer->device, buffer->bytes), "cudaMalloc");
    check_cuda(cudaMemcpy(buffer->device, inputs.data() + offset, buffer->bytes, cudaMemcpyHostToDevice), "copy in");
    offset += buffer->bytes;
    context->setTensorAddress(spec.name.c_str(), buffer->device);
    buffers.push_back(std::move(buffer));
  }
  std::vector<std::pair<const TensorSpec*, Buffer*>> outputs;
  for (const TensorSpec& spec : specs) {
    if (spec.is_input) continue;
    auto buffer = std::make_unique<Buffer>();
    nvinfer1::Dims dims = context->getTensorShape(spec.name.c_str());
    buffer->bytes = volume(dims) * element_size(engine->getTensorDataType(spec.name.c_str()));
    check_cuda(cudaMalloc(&buffer->device, buffer->bytes), "cudaMalloc");
    context->setTensorAddress(spec.name.c_str(), buffer->device);
    outputs.emplace_back(&spec, buffer.get());
    buffers.push_back(std::move(buffer));
  }

  cudaStream_t stream;
  check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
  for (int i = 0; i < 10; ++i) context->enqueueV3(stream);  // warm-up
  check_cuda(cudaStreamSynchronize(stream), "warm-up");
  std::vector<double> ms;
  for (int i = 0; i < args.iterations; ++i) {
    auto start = std::chrono::steady_clock::now();
    if (!context->enqueueV3(stream)) throw std::runtime_error("enqueueV3 failed");
    check_cuda(cudaStreamSynchronize(stream), "inference");
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  check_cuda(cudaStreamDestroy(stream), "cudaStreamDestroy");

  for (const auto& [spec, buffer] : outputs) {
    std::vector<char> host(buffer->bytes);
    check_cuda(cudaMemcpy(host.data(), buffer->device, buffer->bytes, cudaMemcpyDeviceToHost), "copy out");
    nvinfer1::DataType type = engine->getTensorDataType(spec->name.c_str());
    print_output(spec->name, type, host, static_cast<int64_t>(buffer->bytes / element_size(type)));
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))]; };
  std::printf("latency ms over %d runs: p50 %.3f  p90 %.3f  p99 %.3f  (host wall clock, inputs on device)\n",
              args.iterations, pct(0.50), pct(0.90), pct(0.99));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& err) {
    std::cerr << "error: " << err.what() << "\n";
    return 1;
  }
}
