// TensorRT plugin for FusedMultiHeadAttention: IPluginV3 for TensorRT >= 10, IPluginV2DynamicExt for 8.5 - 9.x.
// Every noexcept override catches exceptions and reports them through TensorRT's logger.
#include "fused_attention_plugin.h"

#include "attention_kernel.cuh"
#include "attention_math.cuh"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>

using namespace nvinfer1;

namespace edfa
{
namespace plugin
{
namespace
{

std::atomic<ILogger*> gLogger{nullptr};
#if EDFA_TRT_V3
std::atomic<ILoggerFinder*> gLoggerFinder{nullptr};
#endif

char const* field_name(int32_t index)
{
    return spec::kFieldNames[index];
}

PluginFieldType field_type(int32_t index)
{
    return std::strcmp(spec::kFieldTypes[index], "float32") == 0 ? PluginFieldType::kFLOAT32 : PluginFieldType::kINT32;
}

int64_t read_int(PluginField const& field)
{
    if (field.data == nullptr || field.length < 1)
    {
        throw std::invalid_argument(std::string("attribute ") + field.name + " has no value");
    }
    switch (field.type)
    {
    case PluginFieldType::kINT32: return *static_cast<int32_t const*>(field.data);
    case PluginFieldType::kINT16: return *static_cast<int16_t const*>(field.data);
    case PluginFieldType::kINT8: return *static_cast<int8_t const*>(field.data);
#if NV_TENSORRT_MAJOR >= 10
    case PluginFieldType::kINT64: return *static_cast<int64_t const*>(field.data);
#endif
    default: throw std::invalid_argument(std::string("attribute ") + field.name + " must be an integer");
    }
}

float read_float(PluginField const& field)
{
    if (field.data == nullptr || field.length < 1)
    {
        throw std::invalid_argument(std::string("attribute ") + field.name + " has no value");
    }
    switch (field.type)
    {
    case PluginFieldType::kFLOAT32: return *static_cast<float const*>(field.data);
    case PluginFieldType::kFLOAT64: return static_cast<float>(*static_cast<double const*>(field.data));
    default: return static_cast<float>(read_int(field));
    }
}

bool is_float_type(DataType type)
{
#if NV_TENSORRT_MAJOR >= 9
    if (type == DataType::kBF16)
    {
        return true;
    }
#endif
    return type == DataType::kFLOAT || type == DataType::kHALF;
}

bool known(int64_t dim)
{
    return dim >= 0;
}

void expect(bool condition, std::string const& message)
{
    if (!condition)
    {
        throw std::invalid_argument(message);
    }
}

std::string dims_string(Dims const& dims)
{
    std::string text = "(";
    for (int32_t i = 0; i < dims.nbDims; ++i)
    {
        text += (i ? ", " : "") + std::to_string(dims.d[i]);
    }
    return text + ")";
}

void report(std::exception const& e)
{
    log(ILogger::Severity::kERROR, e.what());
}

void report_unknown()
{
    log(ILogger::Severity::kERROR, "unknown exception");
}

} // namespace

void log(ILogger::Severity severity, std::string const& message)
{
    std::string const text = std::string(spec::kNamespace) + "::" + spec::kName + ": " + message;
    ILogger* logger = gLogger.load();
#if EDFA_TRT_V3
    if (logger == nullptr && gLoggerFinder.load() != nullptr)
    {
        logger = gLoggerFinder.load()->findLogger();
        gLogger.store(logger);
    }
#endif
    if (logger != nullptr)
    {
        logger->log(severity, text.c_str());
    }
    else if (severity <= ILogger::Severity::kWARNING)
    {
        std::fprintf(stderr, "%s\n", text.c_str());
    }
}

Params Params::from_fields(PluginFieldCollection const* fc)
{
    Params params;
    bool seen[spec::kFieldCount] = {};
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
    {
        PluginField const& field = fc->fields[i];
        int32_t index = -1;
        for (int32_t j = 0; j < spec::kFieldCount; ++j)
        {
            if (field.name != nullptr && std::strcmp(field.name, field_name(j)) == 0)
            {
                index = j;
            }
        }
        if (index < 0)
        {
            log(ILogger::Severity::kWARNING,
                std::string("ignoring unknown attribute ") + (field.name ? field.name : "<null>"));
            continue;
        }
        seen[index] = true;
        switch (index)
        {
        case spec::kField_num_heads: params.num_heads = static_cast<int32_t>(read_int(field)); break;
        case spec::kField_head_size: params.head_size = static_cast<int32_t>(read_int(field)); break;
        case spec::kField_scale: params.scale = read_float(field); break;
        case spec::kField_causal: params.causal = static_cast<int32_t>(read_int(field)); break;
        case spec::kField_mask_type: params.mask_type = static_cast<int32_t>(read_int(field)); break;
        case spec::kField_num_kv_heads: params.num_kv_heads = static_cast<int32_t>(read_int(field)); break;
        default: break;
        }
    }
    expect(seen[spec::kField_num_heads], std::string("missing required attribute ") + field_name(spec::kField_num_heads));
    expect(seen[spec::kField_head_size], std::string("missing required attribute ") + field_name(spec::kField_head_size));
    params.validate();
    return params;
}

void Params::validate() const
{
    expect(num_heads > 0, std::string(field_name(spec::kField_num_heads)) + " must be positive, got "
            + std::to_string(num_heads));
    expect(is_supported_head_size(head_size), std::string(field_name(spec::kField_head_size)) + " "
            + std::to_string(head_size) + " is not supported (32, 64 or 128)");
    expect(scale >= 0.0f && std::isfinite(scale), std::string(field_name(spec::kField_scale))
            + " must be finite and >= 0 (0: 1/sqrt(head_size))");
    expect(causal >= 0 && causal <= 2, std::string(field_name(spec::kField_causal))
            + " must be 0 (none), 1 (top-left) or 2 (bottom-right, after a KV cache)");
    expect(num_kv_heads >= 0 && num_kv_heads <= num_heads && (num_kv_heads == 0 || num_heads % num_kv_heads == 0),
        std::string(field_name(spec::kField_num_kv_heads)) + " " + std::to_string(num_kv_heads)
            + " must divide num_heads " + std::to_string(num_heads) + " (0: num_heads)");
    expect(mask_type >= 0 && mask_type <= 2, std::string(field_name(spec::kField_mask_type))
            + " must be 0 (none), 1 (key padding mask) or 2 (valid lengths)");
}

bool supports_format(
    int32_t pos, PluginTensorDesc const* in_out, int32_t nb_inputs, int32_t nb_outputs, Params const& params)
{
    if (nb_inputs != params.nb_inputs() || nb_outputs != 1 || pos < 0 || pos >= nb_inputs + nb_outputs)
    {
        return false;
    }
    PluginTensorDesc const& desc = in_out[pos];
    if (desc.format != TensorFormat::kLINEAR)
    {
        return false;
    }
    if (pos == 0)
    {
        return is_float_type(desc.type);
    }
    if (pos == 3 && nb_inputs == 4)
    {
        return desc.type == DataType::kINT32;
    }
    return desc.type == in_out[0].type; // key, value, output
}

void check_shapes(Dims const* dims, int32_t nb_inputs, Params const& params)
{
    expect(nb_inputs == params.nb_inputs(), "expected " + std::to_string(params.nb_inputs()) + " inputs for "
            + field_name(spec::kField_mask_type) + "=" + std::to_string(params.mask_type) + ", got "
            + std::to_string(nb_inputs));
    Dims const& q = dims[0];
    Dims const& k = dims[1];
    Dims const& v = dims[2];
    expect(q.nbDims == 3 && k.nbDims == 3 && v.nbDims == 3, "query/key/value must be (B, S, num_heads * head_size), got "
            + dims_string(q) + ", " + dims_string(k) + ", " + dims_string(v));
    int64_t const hidden = static_cast<int64_t>(params.num_heads) * params.head_size;
    int64_t const kv_hidden = static_cast<int64_t>(params.kv_heads()) * params.head_size;
    expect(!known(q.d[2]) || q.d[2] == hidden, "query's last dimension must be num_heads * head_size = "
            + std::to_string(hidden) + ", got " + dims_string(q));
    for (Dims const* t : {&k, &v})
    {
        expect(!known(t->d[2]) || t->d[2] == kv_hidden, "key/value's last dimension must be num_kv_heads * head_size = "
                + std::to_string(kv_hidden) + ", got " + dims_string(*t));
    }
    expect(!known(q.d[0]) || !known(k.d[0]) || q.d[0] == k.d[0], "query and key batch differ");
    expect(!known(k.d[0]) || !known(v.d[0]) || k.d[0] == v.d[0], "key and value batch differ");
    expect(!known(k.d[1]) || !known(v.d[1]) || k.d[1] == v.d[1], "key and value sequence lengths differ");
    if (params.mask_type == 1)
    {
        Dims const& m = dims[3];
        expect(m.nbDims == 2 && (!known(m.d[0]) || !known(q.d[0]) || m.d[0] == q.d[0])
                && (!known(m.d[1]) || !known(k.d[1]) || m.d[1] == k.d[1]),
            "key padding mask must be (B, S_kv), got " + dims_string(m));
    }
    else if (params.mask_type == 2)
    {
        Dims const& m = dims[3];
        expect(m.nbDims == 1 && (!known(m.d[0]) || !known(q.d[0]) || m.d[0] == q.d[0]),
            "valid lengths must be (B,), got " + dims_string(m));
    }
}

EdfaProblem make_problem(PluginTensorDesc const* inputs, Params const& params)
{
    EdfaProblem problem{};
    problem.batch = static_cast<int32_t>(inputs[0].dims.d[0]);
    problem.seq_q = static_cast<int32_t>(inputs[0].dims.d[1]);
    problem.seq_kv = static_cast<int32_t>(inputs[1].dims.d[1]);
    problem.num_heads = params.num_heads;
    problem.head_size = params.head_size;
    problem.mask_type = params.mask_type;
    problem.causal = params.causal;
    problem.scale = params.scale;
    problem.num_kv_heads = params.num_kv_heads;
    switch (inputs[0].type)
    {
    case DataType::kFLOAT: problem.dtype = static_cast<int32_t>(DType::kFloat32); break;
    case DataType::kHALF: problem.dtype = static_cast<int32_t>(DType::kFloat16); break;
#if NV_TENSORRT_MAJOR >= 9
    case DataType::kBF16: problem.dtype = static_cast<int32_t>(DType::kBFloat16); break;
#endif
    default: throw std::invalid_argument("unsupported input data type");
    }
    return problem;
}

std::vector<PluginField> const& field_descriptors()
{
    static std::vector<PluginField> const fields = [] {
        std::vector<PluginField> f;
        for (int32_t i = 0; i < spec::kFieldCount; ++i)
        {
            f.emplace_back(field_name(i), nullptr, field_type(i), 1);
        }
        return f;
    }();
    return fields;
}

namespace
{

// Runs the kernel; shared by both plugin generations.
int32_t run(PluginTensorDesc const* inputDesc, void const* const* inputs, void* const* outputs, cudaStream_t stream,
    Params const& params)
{
    Dims dims[4];
    for (int32_t i = 0; i < params.nb_inputs(); ++i)
    {
        dims[i] = inputDesc[i].dims;
    }
    check_shapes(dims, params.nb_inputs(), params);
    EdfaProblem const problem = make_problem(inputDesc, params);
    int32_t const* mask = params.mask_type != 0 ? static_cast<int32_t const*>(inputs[3]) : nullptr;
    int32_t const status = launch_attention(problem, inputs[0], inputs[1], inputs[2], mask, outputs[0], stream);
    if (status != EDFA_OK)
    {
        log(ILogger::Severity::kERROR, std::string("enqueue failed: ") + edfa_error_string(status));
        return -1;
    }
    return 0;
}

} // namespace

#if EDFA_TRT_V3

// ---------------------------------------------------------------- TensorRT >= 10: IPluginV3

FusedAttentionPlugin::FusedAttentionPlugin(Params const& params)
    : mParams(params)
{
    mParams.validate();
}

IPluginCapability* FusedAttentionPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept
{
    try
    {
        switch (type)
        {
        case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
        case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
        case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
        }
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return nullptr;
}

IPluginV3* FusedAttentionPlugin::clone() noexcept
{
    try
    {
        return new FusedAttentionPlugin(mParams);
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return nullptr;
}

char const* FusedAttentionPlugin::getPluginName() const noexcept
{
    return spec::kName;
}

char const* FusedAttentionPlugin::getPluginVersion() const noexcept
{
    return spec::kVersion;
}

char const* FusedAttentionPlugin::getPluginNamespace() const noexcept
{
    return spec::kNamespace;
}

int32_t FusedAttentionPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const*, int32_t nbOutputs) noexcept
{
    try
    {
        expect(nbOutputs == 1, "expected 1 output");
        Dims dims[4];
        for (int32_t i = 0; i < nbInputs && i < 4; ++i)
        {
            dims[i] = in[i].desc.dims;
        }
        check_shapes(dims, nbInputs, mParams);
        return 0;
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    catch (...)
    {
        report_unknown();
    }
    return -1;
}

int32_t FusedAttentionPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    try
    {
        expect(nbOutputs == 1 && nbInputs == mParams.nb_inputs(), "wrong number of inputs or outputs");
        expect(is_float_type(inputTypes[0]), "query must be float32, float16 or bfloat16");
        outputTypes[0] = inputTypes[0];
        return 0;
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return -1;
}

int32_t FusedAttentionPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const*, int32_t,
    DimsExprs* outputs, int32_t nbOutputs, IExprBuilder&) noexcept
{
    try
    {
        expect(nbOutputs == 1 && nbInputs == mParams.nb_inputs(), "wrong number of inputs or outputs");
        expect(inputs[0].nbDims == 3, "query must be (B, S_q, num_heads * head_size)");
        outputs[0] = inputs[0]; // (B, S_q, num_heads * head_size)
        return 0;
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return -1;
}

bool FusedAttentionPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    try
    {
        PluginTensorDesc descs[5];
        for (int32_t i = 0; i < nbInputs + nbOutputs && i < 5; ++i)
        {
            descs[i] = inOut[i].desc;
        }
        return nbInputs + nbOutputs <= 5 && supports_format(pos, descs, nbInputs, nbOutputs, mParams);
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return false;
}

int32_t FusedAttentionPlugin::getNbOutputs() const noexcept
{
    return 1;
}

size_t FusedAttentionPlugin::getWorkspaceSize(
    DynamicPluginTensorDesc const*, int32_t, DynamicPluginTensorDesc const*, int32_t) const noexcept
{
    return 0; // tiles live in shared memory, running max/sum and accumulators in registers
}

int32_t FusedAttentionPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const*, int32_t nbOutputs) noexcept
{
    try
    {
        expect(nbOutputs == 1, "expected 1 output");
        Dims dims[4];
        for (int32_t i = 0; i < nbInputs && i < 4; ++i)
        {
            dims[i] = in[i].dims;
        }
        check_shapes(dims, nbInputs, mParams);
        return 0;
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return -1;
}

int32_t FusedAttentionPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const*,
    void const* const* inputs, void* const* outputs, void*, cudaStream_t stream) noexcept
{
    try
    {
        return run(inputDesc, inputs, outputs, stream, mParams);
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    catch (...)
    {
        report_unknown();
    }
    return -1;
}

IPluginV3* FusedAttentionPlugin::attachToContext(IPluginResourceContext*) noexcept
{
    return clone();
}

PluginFieldCollection const* FusedAttentionPlugin::getFieldsToSerialize() noexcept
{
    try
    {
        mSerialFields.clear();
        for (int32_t i = 0; i < spec::kFieldCount; ++i)
        {
            void const* data = nullptr;
            switch (i)
            {
            case spec::kField_num_heads: data = &mParams.num_heads; break;
            case spec::kField_head_size: data = &mParams.head_size; break;
            case spec::kField_scale: data = &mParams.scale; break;
            case spec::kField_causal: data = &mParams.causal; break;
            case spec::kField_mask_type: data = &mParams.mask_type; break;
            case spec::kField_num_kv_heads: data = &mParams.num_kv_heads; break;
            default: break;
            }
            mSerialFields.emplace_back(field_name(i), data, field_type(i), 1);
        }
        mSerialCollection.nbFields = static_cast<int32_t>(mSerialFields.size());
        mSerialCollection.fields = mSerialFields.data();
        return &mSerialCollection;
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return nullptr;
}

FusedAttentionPluginCreator::FusedAttentionPluginCreator()
{
    mFieldCollection.nbFields = static_cast<int32_t>(field_descriptors().size());
    mFieldCollection.fields = field_descriptors().data();
}

IPluginV3* FusedAttentionPluginCreator::createPlugin(
    char const*, PluginFieldCollection const* fc, TensorRTPhase) noexcept
{
    try
    {
        // Build and runtime phases read the same fields: getFieldsToSerialize writes every spec field.
        return new FusedAttentionPlugin(Params::from_fields(fc));
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return nullptr;
}

PluginFieldCollection const* FusedAttentionPluginCreator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

char const* FusedAttentionPluginCreator::getPluginName() const noexcept
{
    return spec::kName;
}

char const* FusedAttentionPluginCreator::getPluginVersion() const noexcept
{
    return spec::kVersion;
}

char const* FusedAttentionPluginCreator::getPluginNamespace() const noexcept
{
    return spec::kNamespace;
}

#else

// ---------------------------------------------------------------- TensorRT 8.5 - 9.x: IPluginV2DynamicExt

namespace
{

constexpr uint32_t kSerialMagic = 0x45444641u; // "EDFA"
constexpr uint32_t kSerialVersion = 2u; // 2: num_kv_heads

struct SerialBlob
{
    uint32_t magic;
    uint32_t version;
    int32_t num_heads;
    int32_t head_size;
    float scale;
    int32_t causal;
    int32_t mask_type;
    int32_t num_kv_heads;
};

} // namespace

FusedAttentionPlugin::FusedAttentionPlugin(Params const& params)
    : mParams(params)
    , mNamespace(spec::kNamespace)
{
    mParams.validate();
}

FusedAttentionPlugin::FusedAttentionPlugin(void const* data, size_t length)
    : mNamespace(spec::kNamespace)
{
    SerialBlob blob{};
    expect(data != nullptr && length == sizeof(blob), "serialized plugin has the wrong size");
    std::memcpy(&blob, data, sizeof(blob));
    expect(blob.magic == kSerialMagic && blob.version == kSerialVersion, "serialized plugin has a foreign header");
    mParams = Params{blob.num_heads, blob.head_size, blob.scale, blob.causal, blob.mask_type, blob.num_kv_heads};
    mParams.validate();
}

IPluginV2DynamicExt* FusedAttentionPlugin::clone() const noexcept
{
    try
    {
        auto* copy = new FusedAttentionPlugin(mParams);
        copy->setPluginNamespace(mNamespace.c_str());
        return copy;
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return nullptr;
}

DimsExprs FusedAttentionPlugin::getOutputDimensions(
    int32_t outputIndex, DimsExprs const* inputs, int32_t nbInputs, IExprBuilder&) noexcept
{
    try
    {
        expect(outputIndex == 0 && nbInputs == mParams.nb_inputs(), "wrong number of inputs or outputs");
        return inputs[0]; // (B, S_q, num_heads * head_size)
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return DimsExprs{};
}

bool FusedAttentionPlugin::supportsFormatCombination(
    int32_t pos, PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    try
    {
        return supports_format(pos, inOut, nbInputs, nbOutputs, mParams);
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return false;
}

void FusedAttentionPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const*, int32_t nbOutputs) noexcept
{
    try
    {
        // configurePlugin cannot fail in this API: the error is logged at build time and enqueue refuses the shapes.
        expect(nbOutputs == 1, "expected 1 output");
        Dims dims[4];
        for (int32_t i = 0; i < nbInputs && i < 4; ++i)
        {
            dims[i] = in[i].desc.dims;
        }
        check_shapes(dims, nbInputs, mParams);
    }
    catch (std::exception const& e)
    {
        report(e);
    }
}

size_t FusedAttentionPlugin::getWorkspaceSize(
    PluginTensorDesc const*, int32_t, PluginTensorDesc const*, int32_t) const noexcept
{
    return 0; // tiles live in shared memory, running max/sum and accumulators in registers
}

int32_t FusedAttentionPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const*,
    void const* const* inputs, void* const* outputs, void*, cudaStream_t stream) noexcept
{
    try
    {
        return run(inputDesc, inputs, outputs, stream, mParams);
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    catch (...)
    {
        report_unknown();
    }
    return -1;
}

DataType FusedAttentionPlugin::getOutputDataType(int32_t, DataType const* inputTypes, int32_t) const noexcept
{
    return inputTypes[0];
}

char const* FusedAttentionPlugin::getPluginType() const noexcept
{
    return spec::kName;
}

char const* FusedAttentionPlugin::getPluginVersion() const noexcept
{
    return spec::kVersion;
}

int32_t FusedAttentionPlugin::getNbOutputs() const noexcept
{
    return 1;
}

int32_t FusedAttentionPlugin::initialize() noexcept
{
    return 0;
}

void FusedAttentionPlugin::terminate() noexcept {}

size_t FusedAttentionPlugin::getSerializationSize() const noexcept
{
    return sizeof(SerialBlob);
}

void FusedAttentionPlugin::serialize(void* buffer) const noexcept
{
    SerialBlob const blob{kSerialMagic, kSerialVersion, mParams.num_heads, mParams.head_size, mParams.scale,
        mParams.causal, mParams.mask_type, mParams.num_kv_heads};
    std::memcpy(buffer, &blob, sizeof(blob));
}

void FusedAttentionPlugin::destroy() noexcept
{
    delete this;
}

void FusedAttentionPlugin::setPluginNamespace(char const* pluginNamespace) noexcept
{
    try
    {
        mNamespace = pluginNamespace != nullptr ? pluginNamespace : "";
    }
    catch (std::exception const& e)
    {
        report(e);
    }
}

char const* FusedAttentionPlugin::getPluginNamespace() const noexcept
{
    return mNamespace.c_str();
}

FusedAttentionPluginCreator::FusedAttentionPluginCreator()
    : mNamespace(spec::kNamespace)
{
    mFieldCollection.nbFields = static_cast<int32_t>(field_descriptors().size());
    mFieldCollection.fields = field_descriptors().data();
}

char const* FusedAttentionPluginCreator::getPluginName() const noexcept
{
    return spec::kName;
}

char const* FusedAttentionPluginCreator::getPluginVersion() const noexcept
{
    return spec::kVersion;
}

PluginFieldCollection const* FusedAttentionPluginCreator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

IPluginV2* FusedAttentionPluginCreator::createPlugin(char const*, PluginFieldCollection const* fc) noexcept
{
    try
    {
        auto* plugin = new FusedAttentionPlugin(Params::from_fields(fc));
        plugin->setPluginNamespace(mNamespace.c_str());
        return plugin;
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return nullptr;
}

IPluginV2* FusedAttentionPluginCreator::deserializePlugin(
    char const*, void const* serialData, size_t serialLength) noexcept
{
    try
    {
        auto* plugin = new FusedAttentionPlugin(serialData, serialLength);
        plugin->setPluginNamespace(mNamespace.c_str());
        return plugin;
    }
    catch (std::exception const& e)
    {
        report(e);
    }
    return nullptr;
}

void FusedAttentionPluginCreator::setPluginNamespace(char const* pluginNamespace) noexcept
{
    try
    {
        mNamespace = pluginNamespace != nullptr ? pluginNamespace : "";
    }
    catch (std::exception const& e)
    {
        report(e);
    }
}

char const* FusedAttentionPluginCreator::getPluginNamespace() const noexcept
{
    return mNamespace.c_str();
}

#endif

namespace
{

FusedAttentionPluginCreator& creator()
{
    static FusedAttentionPluginCreator instance;
    return instance;
}

} // namespace

} // namespace plugin
} // namespace edfa

// ---------------------------------------------------------------- library entry points

extern "C" {

// Logger for plugin messages when loaded with ctypes (TensorRT 8.x); `logger` is an nvinfer1::ILogger*.
EDFA_API void edgedistill_set_logger(void* logger)
{
    edfa::plugin::gLogger.store(static_cast<ILogger*>(logger));
}

// Registers the creator under the spec's namespace (dlopen / ctypes path). Returns 1 on success.
EDFA_API int32_t edgedistill_register_plugins(void)
{
    static bool const registered = [] {
        try
        {
            return getPluginRegistry()->registerCreator(edfa::plugin::creator(), edfa::spec::kNamespace);
        }
        catch (std::exception const& e)
        {
            edfa::plugin::report(e);
        }
        return false;
    }();
    return registered ? 1 : 0;
}

#if EDFA_TRT_V3
// Entry points of IPluginRegistry::loadLibrary and trtexec --dynamicPlugins (TensorRT >= 10).
EDFA_API void setLoggerFinder(ILoggerFinder* finder)
{
    edfa::plugin::gLoggerFinder.store(finder);
    edfa::plugin::gLogger.store(nullptr);
}

EDFA_API IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static IPluginCreatorInterface* const creators[] = {&edfa::plugin::creator()};
    nbCreators = 1;
    return creators;
}
#else
// Entry point of IPluginRegistry::loadLibrary (TensorRT 8.6 - 9.x).
EDFA_API IPluginCreator* const* getPluginCreators(int32_t& nbCreators)
{
    static IPluginCreator* const creators[] = {&edfa::plugin::creator()};
    nbCreators = 1;
    return creators;
}
#endif

} // extern "C"
