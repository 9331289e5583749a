// Batched float32 matrix products by oneDNN, for the stacked models of batched sweeps
// (precond.problems.stacked, through precond.optim.kernels.matmul).
//
// torch's CPU bmm calls MKL, which on CPUs other than Intel's runs its AVX2 code; oneDNN picks
// the widest ISA the CPU has (AVX-512 on the AMD EPYC core this was measured on: 117-190 GFLOPS
// against MKL's 56-89 on the products of the batched digits_mlp and mnist1d_cnn steps;
// docs/experiments.md). oneDNN is reached through ATen's own at::native::mkldnn_matmul (the
// function torch's bf16 bmm uses; fp32 in its default strict math mode, so the results are fp32
// products), declared weak here: a torch without it leaves the symbol null and only this op
// unavailable (dnnl_matmul_available), never the rules' kernels beside it.
#include <ATen/Context.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Optional.h>
#include <torch/library.h>

namespace at {
namespace native {
__attribute__((weak)) void mkldnn_matmul(const Tensor& mat1, const Tensor& mat2, const Tensor& result, float beta,
                                         float alpha);
}  // namespace native
}  // namespace at

namespace precond_kernels {

bool dnnl_matmul_available() { return &at::native::mkldnn_matmul != nullptr && at::hasMKLDNN(); }

// a @ b (+ bias): a (C, M, K), b (C, K, N) float32 CPU tensors, contiguous or with their last two
// dimensions transposed (other layouts are copied by mkldnn_matmul); bias broadcastable to (C, M, N).
at::Tensor dnnl_bmm(const at::Tensor& a, const at::Tensor& b, const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(dnnl_matmul_available(), "precond::dnnl_bmm: this torch has no oneDNN matmul (at::native::mkldnn_matmul)");
  TORCH_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0) && a.size(2) == b.size(1),
              "precond::dnnl_bmm: needs a (C, M, K) and b (C, K, N), got ", a.sizes(), " and ", b.sizes());
  TORCH_CHECK(a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat && a.device().is_cpu() && b.device().is_cpu(),
              "precond::dnnl_bmm: float32 CPU tensors only");
  const std::vector<int64_t> shape{a.size(0), a.size(1), b.size(2)};
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->scalar_type() == at::kFloat, "precond::dnnl_bmm: a float32 bias only");
    at::Tensor out = bias->expand(shape).clone(at::MemoryFormat::Contiguous);  // fresh: the caller's bias is never written
    at::native::mkldnn_matmul(a, b, out, 1.0f, 1.0f);  // out = a @ b + out
    return out;
  }
  at::Tensor out = at::empty(shape, a.options());
  at::native::mkldnn_matmul(a, b, out, 0.0f, 1.0f);
  return out;
}

}  // namespace precond_kernels

TORCH_LIBRARY_FRAGMENT(precond, m) {
  m.def("dnnl_bmm(Tensor a, Tensor b, Tensor? bias=None) -> Tensor");
  m.def("dnnl_matmul_available() -> bool", &precond_kernels::dnnl_matmul_available);
}

TORCH_LIBRARY_IMPL(precond, CPU, m) { m.impl("dnnl_bmm", &precond_kernels::dnnl_bmm); }
