// TensorRT plugin for FusedMultiHeadAttention (name, version, namespace and fields from spec.json via the generated
// fused_attention_spec.h).
//
//   TensorRT >= 10      IPluginV3 (OneCore / OneBuild / OneRuntime) + IPluginCreatorV3One
//   TensorRT 8.5 - 9.x  IPluginV2DynamicExt + IPluginCreator (JetPack 5)
// selected at compile time from NV_TENSORRT_MAJOR. Unsupported head sizes, dtypes and shapes are rejected while the
// engine is built (supportsFormatCombination / configurePlugin), never at enqueue.
#pragma once

#include "attention_api.h"
#include "fused_attention_spec.h"

#include <NvInfer.h>
#include <NvInferVersion.h>

#include <cstdint>
#include <string>
#include <vector>

#define EDFA_TRT_V3 (NV_TENSORRT_MAJOR >= 10)

namespace edfa
{
namespace plugin
{

// Plugin attributes, one per spec field.
struct Params
{
    int32_t num_heads{0};
    int32_t head_size{0};
    float scale{0.0f};
    int32_t causal{0};
    int32_t mask_type{0};
    int32_t num_kv_heads{0}; // 0: num_heads

    int32_t kv_heads() const
    {
        return num_kv_heads > 0 ? num_kv_heads : num_heads;
    }
    // Parses a field collection (fields by spec name; unknown fields are reported and ignored). Throws on bad values.
    static Params from_fields(nvinfer1::PluginFieldCollection const* fc);
    // Throws std::invalid_argument naming the bad attribute.
    void validate() const;
    int32_t nb_inputs() const
    {
        return mask_type == 0 ? 3 : 4;
    }
};

// Shared build-time checks (both plugin generations).
bool supports_format(int32_t pos, nvinfer1::PluginTensorDesc const* in_out, int32_t nb_inputs, int32_t nb_outputs,
    Params const& params);
// Throws std::invalid_argument if the input shapes (some dims may be -1) do not fit the attributes.
void check_shapes(nvinfer1::Dims const* dims, int32_t nb_inputs, Params const& params);
// Problem description for the kernel from runtime tensor descriptions. Throws on unsupported types.
EdfaProblem make_problem(nvinfer1::PluginTensorDesc const* inputs, Params const& params);

// Reports through TensorRT's logger (set by setLoggerFinder / edgedistill_set_logger), stderr when none.
void log(nvinfer1::ILogger::Severity severity, std::string const& message);

// The field descriptors advertised by the creators (names from the spec).
std::vector<nvinfer1::PluginField> const& field_descriptors();

#if EDFA_TRT_V3

class FusedAttentionPlugin final : public nvinfer1::IPluginV3,
                                   public nvinfer1::IPluginV3OneCore,
                                   public nvinfer1::IPluginV3OneBuild,
                                   public nvinfer1::IPluginV3OneRuntime
{
public:
    explicit FusedAttentionPlugin(Params const& params);
    ~FusedAttentionPlugin() override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

private:
    Params mParams;
    std::vector<nvinfer1::PluginField> mSerialFields;
    nvinfer1::PluginFieldCollection mSerialCollection{};
};

class FusedAttentionPluginCreator final : public nvinfer1::IPluginCreatorV3One
{
public:
    FusedAttentionPluginCreator();
    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

private:
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

#else // TensorRT 8.5 - 9.x

class FusedAttentionPlugin final : public nvinfer1::IPluginV2DynamicExt
{
public:
    explicit FusedAttentionPlugin(Params const& params);
    // Deserialisation; throws std::invalid_argument on a truncated or foreign buffer.
    FusedAttentionPlugin(void const* data, size_t length);

    // IPluginV2DynamicExt
    nvinfer1::IPluginV2DynamicExt* clone() const noexcept override;
    nvinfer1::DimsExprs getOutputDimensions(int32_t outputIndex, nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(
        int32_t pos, nvinfer1::PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept override;
    void configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    size_t getWorkspaceSize(nvinfer1::PluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::PluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;

    // IPluginV2Ext
    nvinfer1::DataType getOutputDataType(
        int32_t index, nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;

    // IPluginV2
    char const* getPluginType() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    int32_t getNbOutputs() const noexcept override;
    int32_t initialize() noexcept override;
    void terminate() noexcept override;
    size_t getSerializationSize() const noexcept override;
    void serialize(void* buffer) const noexcept override;
    void destroy() noexcept override;
    void setPluginNamespace(char const* pluginNamespace) noexcept override;
    char const* getPluginNamespace() const noexcept override;

private:
    Params mParams;
    std::string mNamespace;
};

class FusedAttentionPluginCreator final : public nvinfer1::IPluginCreator
{
public:
    FusedAttentionPluginCreator();
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    nvinfer1::IPluginV2* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc) noexcept override;
    nvinfer1::IPluginV2* deserializePlugin(
        char const* name, void const* serialData, size_t serialLength) noexcept override;
    void setPluginNamespace(char const* pluginNamespace) noexcept override;
    char const* getPluginNamespace() const noexcept override;

private:
    nvinfer1::PluginFieldCollection mFieldCollection{};
    std::string mNamespace;
};

#endif

} // namespace plugin
} // namespace edfa
