// Exercises the TensorRT plugin classes without libnvinfer: compiled against a TensorRT version's public headers,
// with the CUDA launch replaced by the host reference, so the plugin's build-time checks, serialisation round trip
// and enqueue plumbing (dims -> problem, mask pointer) run on the CPU. Driven by test_trt_plugin_headers.py.
#include "attention_kernel.cuh"
#include "fused_attention_plugin.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <type_traits>
#include <string>
#include <vector>

using namespace nvinfer1;

// Link stubs for what libnvinfer / the CUDA kernel would provide.
extern "C" IPluginRegistry* getPluginRegistry() noexcept
{
    return nullptr;
}

namespace edfa
{
int32_t launch_attention(EdfaProblem const& p, void const* q, void const* k, void const* v, int32_t const* mask,
    void* out, cudaStream_t)
{
    return edfa_host_attention(&p, q, k, v, mask, out);
}
} // namespace edfa

extern "C" void edgedistill_set_logger(void* logger);

namespace
{

struct CountingLogger : ILogger
{
    int errors = 0;
    std::string last;
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity <= Severity::kERROR)
        {
            ++errors;
            last = msg;
        }
    }
};

CountingLogger gLog;
int gFailures = 0;

void check(bool ok, char const* what)
{
    if (!ok)
    {
        ++gFailures;
        std::printf("FAIL %s (last error: %s)\n", what, gLog.last.c_str());
    }
}

struct Fields
{
    int32_t num_heads = 2, head_size = 64, causal = 1, mask_type = 2, num_kv_heads = 0;
    float scale = 0.0f;
    std::vector<PluginField> list;
    PluginFieldCollection fc{};
    PluginFieldCollection const* get()
    {
        using namespace edfa::spec;
        list = {PluginField(kFieldNames[kField_num_heads], &num_heads, PluginFieldType::kINT32, 1),
            PluginField(kFieldNames[kField_head_size], &head_size, PluginFieldType::kINT32, 1),
            PluginField(kFieldNames[kField_scale], &scale, PluginFieldType::kFLOAT32, 1),
            PluginField(kFieldNames[kField_causal], &causal, PluginFieldType::kINT32, 1),
            PluginField(kFieldNames[kField_mask_type], &mask_type, PluginFieldType::kINT32, 1),
            PluginField(kFieldNames[kField_num_kv_heads], &num_kv_heads, PluginFieldType::kINT32, 1)};
        fc.nbFields = static_cast<int32_t>(list.size());
        fc.fields = list.data();
        return &fc;
    }
};

Dims dims(std::vector<int64_t> d)
{
    Dims out{};
    out.nbDims = static_cast<int32_t>(d.size());
    for (size_t i = 0; i < d.size(); ++i)
    {
        out.d[i] = static_cast<std::remove_reference_t<decltype(out.d[0])>>(d[i]);
    }
    return out;
}

PluginTensorDesc desc(DataType type, Dims const& d)
{
    PluginTensorDesc out{};
    out.type = type;
    out.format = TensorFormat::kLINEAR;
    out.dims = d;
    out.scale = 1.0f;
    return out;
}

// Q (B=2, S_q=5, hidden), K, V (B, S_kv=7, kv_hidden; default: hidden), lengths (B,), output.
std::vector<PluginTensorDesc> io(DataType type, int64_t hidden = 128, DataType mask = DataType::kINT32,
    int64_t kv_hidden = 0)
{
    int64_t const kv = kv_hidden ? kv_hidden : hidden;
    return {desc(type, dims({2, 5, hidden})), desc(type, dims({2, 7, kv})), desc(type, dims({2, 7, kv})),
        desc(mask, dims({2})), desc(type, dims({2, 5, hidden}))};
}

bool supports_all(std::vector<PluginTensorDesc> const& d, int32_t nb_inputs,
    std::function<bool(int32_t, PluginTensorDesc const*, int32_t)> const& supports)
{
    bool ok = true;
    for (int32_t pos = 0; pos < static_cast<int32_t>(d.size()); ++pos)
    {
        ok = ok && supports(pos, d.data(), nb_inputs);
    }
    return ok;
}

// Runs enqueue on host buffers and compares with a direct host-reference call of the same problem: 2 heads of 64
// over 2 key/value heads by default; `gqa`: 4 query heads over 2 key/value heads, bottom-right causal.
template <typename Plugin>
void check_enqueue(Plugin* plugin, bool gqa = false)
{
    int32_t const batch = 2, seq_q = 5, seq_kv = 7, heads = gqa ? 4 : 2, hidden = heads * 64, kv_hidden = 128;
    std::vector<float> q(batch * seq_q * hidden), k(batch * seq_kv * kv_hidden), v(k.size()), out(q.size(), -1.0f);
    for (size_t i = 0; i < k.size(); ++i)
    {
        k[i] = std::sin(0.37f * i);
        v[i] = std::cos(0.11f * i);
    }
    for (size_t i = 0; i < q.size(); ++i)
    {
        q[i] = std::sin(0.05f * i + 1.0f);
    }
    std::vector<int32_t> lengths = {3, 7};
    auto const d = io(DataType::kFLOAT, hidden, DataType::kINT32, kv_hidden);
    void const* inputs[] = {q.data(), k.data(), v.data(), lengths.data()};
    void* outputs[] = {out.data()};
    check(plugin->enqueue(d.data(), d.data() + 4, inputs, outputs, nullptr, nullptr) == 0, "enqueue succeeds");
    EdfaProblem const p{batch, seq_q, seq_kv, heads, 64, 0, 2, gqa ? 2 : 1, 0.0f, gqa ? 2 : 0};
    std::vector<float> expected(q.size());
    edfa_host_attention(&p, q.data(), k.data(), v.data(), lengths.data(), expected.data());
    check(std::memcmp(out.data(), expected.data(), out.size() * sizeof(float)) == 0, "enqueue output = reference");
}

} // namespace

int main()
{
    edgedistill_set_logger(&gLog);
    edfa::plugin::FusedAttentionPluginCreator creator;
    check(std::strcmp(creator.getPluginName(), edfa::spec::kName) == 0, "creator name");
    check(std::strcmp(creator.getPluginVersion(), edfa::spec::kVersion) == 0, "creator version");
    check(std::strcmp(creator.getPluginNamespace(), edfa::spec::kNamespace) == 0, "creator namespace");
    check(creator.getFieldNames()->nbFields == edfa::spec::kFieldCount, "creator field count");

    Fields good, bad_head, bad_mask, gqa, bad_kv_heads;
    bad_head.head_size = 48;
    bad_mask.mask_type = 5;
    gqa.num_heads = 4;
    gqa.num_kv_heads = 2;
    gqa.causal = 2;
    bad_kv_heads.num_heads = 4;
    bad_kv_heads.num_kv_heads = 3;
    int const errors_before = gLog.errors;
#if EDFA_TRT_V3
    auto create = [&](Fields& f, TensorRTPhase phase = TensorRTPhase::kBUILD) {
        return static_cast<edfa::plugin::FusedAttentionPlugin*>(creator.createPlugin("attn", f.get(), phase));
    };
#else
    auto create = [&](Fields& f) {
        return static_cast<edfa::plugin::FusedAttentionPlugin*>(creator.createPlugin("attn", f.get()));
    };
#endif
    check(create(bad_head) == nullptr, "head_size 48 rejected at creation");
    check(create(bad_kv_heads) == nullptr, "num_kv_heads 3 of 4 heads rejected at creation");
    check(create(bad_mask) == nullptr, "mask_type 5 rejected at creation");
    check(gLog.errors == errors_before + 3 && gLog.last.find(edfa::spec::kFieldNames[edfa::spec::kField_mask_type]) != std::string::npos
            && gLog.last.find(edfa::spec::kName) != std::string::npos,
        "rejections logged through the TensorRT logger");
    auto* plugin = create(good);
    check(plugin != nullptr, "valid attributes create a plugin");
    if (plugin == nullptr)
    {
        return 1;
    }

#if EDFA_TRT_V3
    auto to_dyn = [](std::vector<PluginTensorDesc> const& d) {
        std::vector<DynamicPluginTensorDesc> out(d.size());
        for (size_t i = 0; i < d.size(); ++i)
        {
            out[i].desc = d[i];
            out[i].min = d[i].dims;
            out[i].max = d[i].dims;
        }
        return out;
    };
    auto supports = [&](int32_t pos, PluginTensorDesc const* d, int32_t nb_inputs) {
        std::vector<PluginTensorDesc> v(d, d + nb_inputs + 1);
        auto dyn = to_dyn(v);
        return plugin->supportsFormatCombination(pos, dyn.data(), nb_inputs, 1);
    };
    auto configure = [&](std::vector<PluginTensorDesc> const& d) {
        auto dyn = to_dyn(d);
        return plugin->configurePlugin(dyn.data(), 4, dyn.data() + 4, 1) == 0;
    };
#else
    auto supports = [&](int32_t pos, PluginTensorDesc const* d, int32_t nb_inputs) {
        return plugin->supportsFormatCombination(pos, d, nb_inputs, 1);
    };
    auto configure = [&](std::vector<PluginTensorDesc> const& d) {
        int const before = gLog.errors;
        std::vector<DynamicPluginTensorDesc> dyn(d.size());
        for (size_t i = 0; i < d.size(); ++i)
        {
            dyn[i].desc = d[i];
        }
        plugin->configurePlugin(dyn.data(), 4, dyn.data() + 4, 1);
        return gLog.errors == before;
    };
#endif
    check(supports_all(io(DataType::kFLOAT), 4, supports), "float32 + int32 lengths supported");
    check(supports_all(io(DataType::kHALF), 4, supports), "float16 supported");
#if NV_TENSORRT_MAJOR >= 9
    check(supports_all(io(DataType::kBF16), 4, supports), "bfloat16 supported");
#endif
    check(!supports(0, io(DataType::kINT8).data(), 4), "int8 query rejected");
    check(!supports(3, io(DataType::kHALF, 128, DataType::kFLOAT).data(), 4), "float mask rejected");
    auto mixed = io(DataType::kHALF);
    mixed[1].type = DataType::kFLOAT;
    check(!supports(1, mixed.data(), 4), "key dtype != query dtype rejected");
    check(!supports(0, io(DataType::kHALF).data(), 3), "missing mask input rejected");

    check(configure(io(DataType::kFLOAT)), "matching shapes configure");
    check(!configure(io(DataType::kFLOAT, 96)), "hidden != num_heads * head_size rejected at configure");
    auto bad_kv = io(DataType::kFLOAT);
    bad_kv[2].dims = dims({2, 6, 128});
    check(!configure(bad_kv), "key/value length mismatch rejected at configure");
    auto bad_len = io(DataType::kFLOAT);
    bad_len[3].dims = dims({2, 7});
    check(!configure(bad_len), "lengths of shape (B, S) rejected at configure");
    auto dynamic = io(DataType::kFLOAT);
    dynamic[0].dims = dims({-1, -1, 128});
    check(configure(dynamic), "dynamic batch / sequence accepted at configure");

    auto* grouped = create(gqa);
    check(grouped != nullptr, "grouped-query attributes create a plugin");
    if (grouped != nullptr)
    {
#if EDFA_TRT_V3
        auto configure_grouped = [&](std::vector<PluginTensorDesc> const& d) {
            auto dyn = to_dyn(d);
            return grouped->configurePlugin(dyn.data(), 4, dyn.data() + 4, 1) == 0;
        };
#else
        auto configure_grouped = [&](std::vector<PluginTensorDesc> const& d) {
            int const before = gLog.errors;
            std::vector<DynamicPluginTensorDesc> dyn(d.size());
            for (size_t i = 0; i < d.size(); ++i)
            {
                dyn[i].desc = d[i];
            }
            grouped->configurePlugin(dyn.data(), 4, dyn.data() + 4, 1);
            return gLog.errors == before;
        };
#endif
        check(configure_grouped(io(DataType::kFLOAT, 256, DataType::kINT32, 128)), "K/V of num_kv_heads configure");
        check(!configure_grouped(io(DataType::kFLOAT, 256)), "K/V of num_heads rejected for num_kv_heads 2");
        check_enqueue(grouped, true);
#if EDFA_TRT_V3
        delete grouped;
#else
        grouped->destroy();
#endif
    }

#if EDFA_TRT_V3
    check(plugin->getNbOutputs() == 1, "one output");
    DataType in_types[4] = {DataType::kHALF, DataType::kHALF, DataType::kHALF, DataType::kINT32};
    DataType out_type = DataType::kFLOAT;
    check(plugin->getOutputDataTypes(&out_type, 1, in_types, 4) == 0 && out_type == DataType::kHALF, "output dtype");
    auto dyn_io = to_dyn(io(DataType::kFLOAT));
    check(plugin->getWorkspaceSize(dyn_io.data(), 4, dyn_io.data() + 4, 1) == 0, "no workspace");
    // Serialisation: the runtime phase rebuilds the plugin from getFieldsToSerialize.
    PluginFieldCollection const* serial = plugin->getFieldsToSerialize();
    auto* restored = static_cast<edfa::plugin::FusedAttentionPlugin*>(
        creator.createPlugin("attn", serial, TensorRTPhase::kRUNTIME));
    check(restored != nullptr, "plugin rebuilt from its serialised fields");
    PluginFieldCollection const* again = restored->getFieldsToSerialize();
    bool same = again->nbFields == serial->nbFields;
    for (int32_t i = 0; same && i < again->nbFields; ++i)
    {
        same = std::strcmp(again->fields[i].name, serial->fields[i].name) == 0
            && std::memcmp(again->fields[i].data, serial->fields[i].data, 4) == 0;
    }
    check(same, "serialised fields round-trip");
    check(restored->getCapabilityInterface(PluginCapabilityType::kRUNTIME) != nullptr, "runtime capability");
    auto* runtime = static_cast<edfa::plugin::FusedAttentionPlugin*>(restored->attachToContext(nullptr));
    check_enqueue(runtime);
    delete runtime;
    delete restored;
    delete plugin;
#else
    check(plugin->getOutputDataType(0, std::vector<DataType>(4, DataType::kHALF).data(), 4) == DataType::kHALF,
        "output dtype");
    auto d = io(DataType::kFLOAT);
    check(plugin->getWorkspaceSize(d.data(), 4, d.data() + 4, 1) == 0, "no workspace");
    std::vector<char> blob(plugin->getSerializationSize());
    plugin->serialize(blob.data());
    auto* restored = static_cast<edfa::plugin::FusedAttentionPlugin*>(
        creator.deserializePlugin("attn", blob.data(), blob.size()));
    check(restored != nullptr, "plugin deserialised");
    std::vector<char> blob2(restored->getSerializationSize());
    restored->serialize(blob2.data());
    check(blob == blob2, "serialisation round-trips");
    check(std::strcmp(restored->getPluginNamespace(), edfa::spec::kNamespace) == 0, "namespace kept");
    check(creator.deserializePlugin("attn", blob.data(), blob.size() - 1) == nullptr, "truncated blob rejected");
    auto* runtime = static_cast<edfa::plugin::FusedAttentionPlugin*>(restored->clone());
    check_enqueue(runtime);
    runtime->destroy();
    restored->destroy();
    plugin->destroy();
#endif
    std::printf("%s: TensorRT %d.%d, %d failure(s)\n", gFailures ? "FAILED" : "OK", NV_TENSORRT_MAJOR,
        NV_TENSORRT_MINOR, gFailures);
    return gFailures ? 1 : 0;
}
