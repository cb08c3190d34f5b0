# Generates include/sigattn/tile/wgmma.cuh's instruction wrappers (m64nNk16, fp32 accumulators):
# everything from the first `template <>` to the closing namespace line.
# Usage: python3 tools/gen_wgmma.py > /tmp/w.txt, then splice it in.
def regs(n): return ", ".join("%%%d" % i for i in range(n))
out = []
for dt, ptx in (("__nv_bfloat16", "bf16"), ("__half", "f16")):
    for n in (64, 128, 160, 176):
        nreg = n // 2
        outs = ", ".join('"+f"(d[%d])' % i for i in range(nreg))
        # SS: A and B from shared memory descriptors
        out.append(f'''template <>
struct Wgmma<{dt}, {n}> {{
  /// D (+)= A * B with A and B in shared memory (K-major both, 128-byte swizzle).
  SIGATTN_DEVICE static void ss(float (&d)[{nreg}], uint64_t desc_a, uint64_t desc_b, int accumulate) {{
#if SIGATTN_ARCH_SM90A
    asm volatile(
        "{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{nreg + 2}, 0;\\n"
        "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{ptx}.{ptx} "
        "{{{regs(nreg)}}}, %{nreg}, %{nreg + 1}, p, 1, 1, 0, 0;\\n}}\\n"
        : {outs}
        : "l"(desc_a), "l"(desc_b), "r"(accumulate));
#endif
  }}
  /// D (+)= A * B with both operands in shared memory and transposed: A M-major (M contiguous),
  /// B N-major (N contiguous), 128-byte swizzle; descriptors as n_major_desc builds them.
  SIGATTN_DEVICE static void ss_mn(float (&d)[{nreg}], uint64_t desc_a, uint64_t desc_b, int accumulate) {{
#if SIGATTN_ARCH_SM90A
    asm volatile(
        "{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{nreg + 2}, 0;\\n"
        "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{ptx}.{ptx} "
        "{{{regs(nreg)}}}, %{nreg}, %{nreg + 1}, p, 1, 1, 1, 1;\\n}}\\n"
        : {outs}
        : "l"(desc_a), "l"(desc_b), "r"(accumulate));
#endif
  }}
  /// D += A * B with A in registers (the m64k16 fragment) and B in shared memory, N-major.
  SIGATTN_DEVICE static void rs(float (&d)[{nreg}], uint32_t const (&a)[4], uint64_t desc_b) {{
#if SIGATTN_ARCH_SM90A
    asm volatile(
        "{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{nreg + 5}, 0;\\n"
        "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{ptx}.{ptx} "
        "{{{regs(nreg)}}}, {{%{nreg}, %{nreg + 1}, %{nreg + 2}, %{nreg + 3}}}, %{nreg + 4}, p, 1, 1, 1;\\n}}\\n"
        : {outs}
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
#endif
  }}
}};
''')
print("\n".join(out))
